//! The build context: a tar of the context directory that honours `.dockerignore` and keeps
//! secrets (env files, keys) out of images.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::EngineError;

/// What the context collector may let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextPolicy {
    /// Send `.env.prod`-style files instead of refusing them (they are still warned about).
    pub allow_env_files: bool,
}

/// A collected build context, ready to send to the daemon.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The tar archive.
    pub tar: Vec<u8>,
    /// The paths included, relative to the context, sorted.
    pub files: Vec<String>,
    /// Warnings about files that look like secrets but were sent anyway.
    pub warnings: Vec<String>,
}

struct Rule {
    matcher: GlobMatcher,
    /// The same pattern with a `/**` suffix, so a directory pattern covers its contents.
    below: GlobMatcher,
    exception: bool,
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

fn parse_dockerignore(path: &Path, text: &str) -> Result<Vec<Rule>, EngineError> {
    let mut rules = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (exception, pat) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/').trim_end_matches('/');
        let pat = pat.strip_prefix("./").unwrap_or(pat);
        if pat.is_empty() || pat == "." {
            continue;
        }
        let err = |source| EngineError::Ignore {
            path: path.to_path_buf(),
            pattern: raw.to_string(),
            source,
        };
        rules.push(Rule {
            matcher: glob(pat).map_err(err)?,
            below: glob(&format!("{pat}/**")).map_err(err)?,
            exception,
        });
    }
    Ok(rules)
}

/// True when `rel` is excluded: the last rule matching it (or a parent directory) decides.
fn excluded(rules: &[Rule], rel: &str) -> bool {
    let mut out = false;
    for r in rules {
        if r.matcher.is_match(rel) || r.below.is_match(rel) {
            out = !r.exception;
        }
    }
    out
}

/// The verdict on a file name that may hold secrets.
#[derive(Debug, PartialEq, Eq)]
enum Secret {
    None,
    /// Warn, send anyway.
    Warn,
    /// Refuse unless allowed.
    Refuse,
}

fn classify(name: &str) -> Secret {
    const TEMPLATES: [&str; 4] = ["example", "sample", "template", "dist"];
    if name == ".env" {
        return Secret::Refuse;
    }
    if let Some(suffix) = name.strip_prefix(".env.") {
        return if TEMPLATES.contains(&suffix) {
            Secret::Warn
        } else {
            Secret::Refuse
        };
    }
    if name.starts_with(".env") || name.ends_with(".pem") || name.ends_with(".key") {
        return Secret::Warn;
    }
    Secret::None
}

/// Collects `dir` into a tar, honouring `dir/.dockerignore` (the Dockerfile and `.dockerignore`
/// are always sent, as the Docker CLI does). Files named `.env` / `.env.<name>` are refused
/// unless `policy.allow_env_files`; other `.env*`, `*.pem` and `*.key` files produce warnings.
pub fn collect_context(
    dir: &Path,
    dockerfile: &Path,
    policy: ContextPolicy,
) -> Result<BuildContext, EngineError> {
    let ignore_path = dir.join(".dockerignore");
    let rules = match std::fs::read_to_string(&ignore_path) {
        Ok(text) => parse_dockerignore(&ignore_path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(EngineError::Context {
                path: ignore_path,
                source,
            })
        }
    };
    let dockerfile_rel = dockerfile
        .strip_prefix(dir)
        .unwrap_or(dockerfile)
        .to_string_lossy()
        .replace('\\', "/");
    let has_exceptions = rules.iter().any(|r| r.exception);

    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut refused = Vec::new();
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.map_err(|e| EngineError::Context {
            path: e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.into()),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        let always = rel == dockerfile_rel || rel == ".dockerignore";
        if !always && excluded(&rules, &rel) {
            if entry.file_type().is_dir() && !has_exceptions {
                walker.skip_current_dir();
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_dir() {
            match classify(&name) {
                Secret::None => {}
                Secret::Warn => warnings.push(format!(
                    "build context of {} contains {rel}, which looks like a secret; add it to .dockerignore",
                    dir.display()
                )),
                Secret::Refuse if policy.allow_env_files => warnings.push(format!(
                    "build context of {} contains env file {rel} (allowed by allow_env_files); it will be baked into the image",
                    dir.display()
                )),
                Secret::Refuse => refused.push(rel.clone()),
            }
        }
        builder
            .append_path_with_name(entry.path(), &rel)
            .map_err(|source| EngineError::Context {
                path: entry.path().to_path_buf(),
                source,
            })?;
        files.push(rel);
    }
    if !refused.is_empty() {
        return Err(EngineError::ForbiddenContext {
            context: dir.to_path_buf(),
            files: refused,
        });
    }
    let tar = builder
        .into_inner()
        .map_err(|source| EngineError::Context {
            path: PathBuf::from(dir),
            source,
        })?;
    Ok(BuildContext {
        tar,
        files,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, f).expect("write");
        }
        dir
    }

    fn collect(dir: &Path, allow: bool) -> Result<BuildContext, EngineError> {
        collect_context(
            dir,
            &dir.join("Dockerfile"),
            ContextPolicy {
                allow_env_files: allow,
            },
        )
    }

    #[test]
    fn dockerignore_excludes_with_exceptions() {
        let dir = tree(&[
            "Dockerfile",
            "src/main.rs",
            "target/debug/x",
            "docs/a.md",
            "docs/keep.md",
            "notes.txt",
        ]);
        std::fs::write(
            dir.path().join(".dockerignore"),
            "# comment\n/target\ndocs\n!docs/keep.md\n*.txt\nDockerfile\n",
        )
        .expect("write");
        let ctx = collect(dir.path(), false).expect("collect");
        let files: Vec<&str> = ctx
            .files
            .iter()
            .map(String::as_str)
            .filter(|f| !f.ends_with('/') && !["src", "docs"].contains(f))
            .collect();
        assert_eq!(
            files,
            [".dockerignore", "Dockerfile", "docs/keep.md", "src/main.rs"]
        );
    }

    #[test]
    fn env_files_are_refused_unless_allowed() {
        let dir = tree(&["Dockerfile", ".env.prod", ".env.example", "certs/tls.pem"]);
        let err = collect(dir.path(), false).expect_err("refused");
        assert!(
            matches!(&err, EngineError::ForbiddenContext { files, .. } if files == &[".env.prod"])
        );
        let ctx = collect(dir.path(), true).expect("allowed");
        assert_eq!(ctx.warnings.len(), 3, "{:?}", ctx.warnings);
        std::fs::write(dir.path().join(".dockerignore"), ".env*\n**/*.pem\n").expect("write");
        let ctx = collect(dir.path(), false).expect("ignored");
        assert!(ctx.warnings.is_empty());
    }

    #[test]
    fn classify_names() {
        assert_eq!(classify(".env"), Secret::Refuse);
        assert_eq!(classify(".env.local"), Secret::Refuse);
        assert_eq!(classify(".env.sample"), Secret::Warn);
        assert_eq!(classify("server.key"), Secret::Warn);
        assert_eq!(classify("main.rs"), Secret::None);
    }
}
