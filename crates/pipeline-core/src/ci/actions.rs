//! Running inside GitHub Actions: `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY` and annotations.

use shipline_scanners::render::{escape_data, escape_property};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CiError;

/// Largest step summary GitHub accepts per step (1 MiB); longer summaries are truncated.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// The GitHub Actions files of the current step, when running inside Actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubActions {
    /// `$GITHUB_OUTPUT`: step outputs (`name=value` lines or heredocs).
    pub output: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`: markdown shown on the run page.
    pub step_summary: Option<PathBuf>,
}

impl GithubActions {
    /// Detects Actions from environment variables read through `var` (pass `|k| std::env::var(k).ok()`):
    /// `Some` only when `GITHUB_ACTIONS=true`.
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Option<GithubActions> {
        if var("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        let path = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(GithubActions {
            output: path("GITHUB_OUTPUT"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
        })
    }

    /// Appends step outputs (e.g. `image`, `tag`, `digest`) to `$GITHUB_OUTPUT`.
    pub fn set_outputs(&self, outputs: &[(&str, &str)]) -> Result<(), CiError> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        let mut text = String::new();
        for (name, value) in outputs {
            text.push_str(&format_output(name, value)?);
        }
        append(path, text.as_bytes())
    }

    /// Appends markdown to `$GITHUB_STEP_SUMMARY` (truncated with a note past 1 MiB).
    pub fn append_summary(&self, markdown: &str) -> Result<(), CiError> {
        let Some(path) = &self.step_summary else {
            return Ok(());
        };
        append(path, truncate_summary(markdown).as_bytes())
    }
}

/// One `$GITHUB_OUTPUT` entry: `name=value\n`, or a heredoc with a delimiter absent from the value
/// when the value spans lines.
pub fn format_output(name: &str, value: &str) -> Result<String, CiError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CiError::OutputName {
            name: name.to_string(),
        });
    }
    if !value.contains('\n') && !value.contains('\r') {
        return Ok(format!("{name}={value}\n"));
    }
    let mut n = 0u32;
    let delimiter = loop {
        let d = format!("SHIPLINE_EOF_{n}");
        if !value.lines().any(|l| l == d) {
            break d;
        }
        n += 1;
    };
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Severity of a workflow-command annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    /// `::error`.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

/// A `::error file=F,line=L,title=T::message` workflow command, escaped as GitHub requires.
pub fn annotation(
    level: AnnotationLevel,
    file: Option<&str>,
    line: Option<u64>,
    title: Option<&str>,
    message: &str,
) -> String {
    let cmd = match level {
        AnnotationLevel::Error => "error",
        AnnotationLevel::Warning => "warning",
        AnnotationLevel::Notice => "notice",
    };
    let mut props = Vec::new();
    if let Some(f) = file {
        props.push(format!("file={}", escape_property(f)));
    }
    if let Some(l) = line {
        props.push(format!("line={l}"));
    }
    if let Some(t) = title {
        props.push(format!("title={}", escape_property(t)));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{cmd}{props}::{}", escape_data(message))
}

/// Truncates markdown to [`STEP_SUMMARY_LIMIT`] on a character boundary, with a note.
pub fn truncate_summary(markdown: &str) -> String {
    const NOTE: &str = "\n\n_(summary truncated: GitHub accepts at most 1 MiB per step)_\n";
    if markdown.len() <= STEP_SUMMARY_LIMIT {
        return markdown.to_string();
    }
    let mut end = STEP_SUMMARY_LIMIT - NOTE.len();
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &markdown[..end])
}

fn append(path: &Path, bytes: &[u8]) -> Result<(), CiError> {
    let io = |source| CiError::Io {
        action: "append to",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_heredocs_for_multiline_values() {
        assert_eq!(
            format_output("digest", "sha256:ab").ok(),
            Some("digest=sha256:ab\n".into())
        );
        assert_eq!(
            format_output("notes", "a\nSHIPLINE_EOF_0\nb").ok(),
            Some("notes<<SHIPLINE_EOF_1\na\nSHIPLINE_EOF_0\nb\nSHIPLINE_EOF_1\n".into())
        );
        assert!(format_output("bad name", "x").is_err());
        assert!(format_output("x=y", "x").is_err());
    }

    #[test]
    fn annotations_escape_properties_and_data() {
        assert_eq!(
            annotation(
                AnnotationLevel::Error,
                Some("src/a,b.rs"),
                Some(3),
                Some("CVE: bad"),
                "50% done\nnext"
            ),
            "::error file=src/a%2Cb.rs,line=3,title=CVE%3A bad::50%25 done%0Anext"
        );
        assert_eq!(
            annotation(AnnotationLevel::Notice, None, None, None, "hi"),
            "::notice::hi"
        );
    }

    #[test]
    fn detect_needs_github_actions_true() {
        assert_eq!(GithubActions::detect(|_| None), None);
        let gh = GithubActions::detect(|k| match k {
            "GITHUB_ACTIONS" => Some("true".into()),
            "GITHUB_OUTPUT" => Some("/tmp/out".into()),
            _ => None,
        });
        assert_eq!(
            gh,
            Some(GithubActions {
                output: Some(PathBuf::from("/tmp/out")),
                step_summary: None
            })
        );
    }

    #[test]
    fn writes_outputs_and_truncated_summary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gh = GithubActions {
            output: Some(dir.path().join("out")),
            step_summary: Some(dir.path().join("summary")),
        };
        gh.set_outputs(&[("image", "ghcr.io/a/b"), ("digest", "sha256:00")])
            .expect("outputs");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).expect("read"),
            "image=ghcr.io/a/b\ndigest=sha256:00\n"
        );
        gh.append_summary(&"é".repeat(STEP_SUMMARY_LIMIT))
            .expect("summary");
        let s = std::fs::read_to_string(dir.path().join("summary")).expect("read");
        assert!(s.len() <= STEP_SUMMARY_LIMIT);
        assert!(s.ends_with("per step)_\n"));
    }
}
