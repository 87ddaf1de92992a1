//! Secret rules: literal secrets, weak defaults, env files in images and build contexts.

use std::path::Path;

use super::super::compose::{Project, Service};
use super::super::make_finding;
use super::super::rules::rule_by_id;
use super::super::tree::Node;
use super::Sink;

pub(super) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let tokens: Vec<&str> = upper.split(['_', '-', '.']).collect();
    let last = tokens.last().copied().unwrap_or("");
    if matches!(
        last,
        "FILE"
            | "PATH"
            | "DIR"
            | "TIMEOUT"
            | "TTL"
            | "EXPIRY"
            | "EXPIRES"
            | "LENGTH"
            | "USER"
            | "USERNAME"
            | "NAME"
            | "HEADER"
            | "ALGORITHM"
            | "ENABLED"
            | "ID"
            | "URL"
            | "URI"
            | "HOST"
            | "PORT"
            | "ENDPOINT"
            | "ISSUER"
            | "AUDIENCE"
            | "TYPE"
            | "MODE"
            | "LIFETIME"
            | "AGE"
            | "SECONDS"
            | "MINUTES"
            | "HOURS"
            | "DAYS"
            | "SIZE"
            | "POLICY"
    ) {
        return false;
    }
    tokens.iter().enumerate().any(|(i, t)| {
        matches!(
            *t,
            "PASSWORD" | "PASSWD" | "PASS" | "PWD" | "SECRET" | "TOKEN" | "APIKEY" | "CREDENTIALS"
        ) || (*t == "KEY"
            && i > 0
            && matches!(
                tokens[i - 1],
                "API"
                    | "PRIVATE"
                    | "ACCESS"
                    | "SECRET"
                    | "SIGNING"
                    | "ENCRYPTION"
                    | "MASTER"
                    | "LICENSE"
                    | "AUTH"
            ))
    })
}

/// Whether a raw value contains an interpolation (after `$$` escapes).
pub(super) fn has_variable(raw: &str) -> bool {
    raw.replace("$$", "").contains('$')
}

pub(super) fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let auth = rest.split(['/', '?']).next().unwrap_or(rest);
    auth.rsplit_once('@')
        .and_then(|(cred, _)| cred.split_once(':'))
        .is_some_and(|(_, pw)| !pw.is_empty())
}

pub(super) fn secret_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let stack = Some(project.stack.as_str());
    for (key, value, pos) in s.environment() {
        let Some(v) = value else {
            continue;
        };
        if v.raw.is_empty() || has_variable(&v.raw) {
            continue;
        }
        let literal_secret = is_secret_name(key)
            && !v.raw.starts_with("/run/secrets/")
            && crate::audit::tree::parse_bool(&v.raw).is_none();
        let url = url_with_password(&v.raw);
        if literal_secret || url {
            let what = if url && !literal_secret {
                "a URL with an embedded password"
            } else {
                "a literal value"
            };
            sink.report(
                "SA501",
                pos,
                stack,
                &format!("{}/{}:{key}", project.stack, s.name),
                format!(
                    "service `{}` sets `{key}` to {what} in `environment:` (value not shown)",
                    s.name
                ),
            );
        }
    }
}

pub(super) const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "password",
    "passw0rd",
    "password1",
    "password123",
    "secret",
    "admin",
    "root",
    "test",
    "example",
    "default",
    "123456",
    "12345678",
    "qwerty",
    "letmein",
    "pass",
    "xxx",
    "todo",
    "replaceme",
    "replace-me",
    "dev",
    "postgres",
];

pub(super) fn weak_defaults(sink: &mut Sink<'_>, project: &Project) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (r, pos) in &project.var_refs {
        let Some(d) = &r.default else {
            continue;
        };
        if d.is_empty() || has_variable(d) {
            continue;
        }
        let placeholder = PLACEHOLDERS.contains(&d.to_ascii_lowercase().as_str());
        if !(is_secret_name(&r.name) || placeholder && looks_credential_context(&r.name)) {
            continue;
        }
        if seen.contains(&(r.name.clone(), pos.file)) {
            continue;
        }
        seen.push((r.name.clone(), pos.file));
        let why = if placeholder {
            "a placeholder default"
        } else {
            "a literal default"
        };
        sink.report(
            "SA502",
            *pos,
            Some(project.stack.as_str()),
            &format!("{}:${}", project.stack, r.name),
            format!(
                "`${{{}:-...}}` falls back to {why} when the variable is unset (value not shown)",
                r.name
            ),
        );
    }
}

/// Names that are not secret by their name alone but hold credentials when defaulted to a
/// placeholder (`DB_USER:-admin` is fine; `AUTH:-changeme` is not).
pub(super) fn looks_credential_context(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["AUTH", "CRED", "HTPASSWD", "SALT"]
        .iter()
        .any(|t| upper.contains(t))
}

pub(super) fn is_env_file_name(name: &str) -> bool {
    name == ".env" || name.starts_with(".env.") || name.ends_with(".env")
}

pub(super) fn build_context_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let Some(build) = s.node.entry("build") else {
        return;
    };
    let stack = Some(project.stack.as_str());
    let context = build
        .value
        .text()
        .or_else(|| build.value.get("context").and_then(Node::text))
        .unwrap_or(".");
    if context.contains("://") || context.starts_with("git@") {
        return;
    }
    let dir = project.dir.join(context);
    if !dir.is_dir() {
        return;
    }
    let dockerfile = build
        .value
        .get("dockerfile")
        .and_then(Node::text)
        .unwrap_or("Dockerfile");
    let dockerfile_path = dir.join(dockerfile);

    // Explicit COPY/ADD of env files.
    if let Ok(text) = super::super::read_text(&dockerfile_path) {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            let upper = t.to_ascii_uppercase();
            if !(upper.starts_with("COPY ") || upper.starts_with("ADD ")) {
                continue;
            }
            if t.split_whitespace().any(|a| a.starts_with("--from")) {
                // Copies from another stage or image, not from the build context.
                continue;
            }
            let args: Vec<&str> = t
                .split_whitespace()
                .skip(1)
                .filter(|a| !a.starts_with("--"))
                .collect();
            if args.len() < 2 {
                continue;
            }
            let sources = &args[..args.len() - 1];
            if let Some(src) = sources.iter().find(|a| {
                let base = a.rsplit('/').next().unwrap_or(a);
                is_env_file_name(base) || base == ".env*" || base == "*.env"
            }) {
                let path_str = sink.world.files.display(&dockerfile_path);
                if let Some(rule) = rule_by_id("SA503") {
                    sink.findings.push(make_finding(
                        rule,
                        &path_str,
                        i as u32 + 1,
                        stack,
                        &format!("{}/{}:dockerfile", project.stack, s.name),
                        format!(
                            "the Dockerfile of service `{}` copies env file `{src}` into the image",
                            s.name
                        ),
                    ));
                }
                break;
            }
        }
    }

    // Env files in the context that .dockerignore does not exclude.
    let mut env_files = Vec::new();
    find_env_files(&dir, &dir, 0, &mut env_files);
    if env_files.is_empty() {
        return;
    }
    let ignore_path = {
        let specific = dir.join(format!("{dockerfile}.dockerignore"));
        if specific.is_file() {
            specific
        } else {
            dir.join(".dockerignore")
        }
    };
    let patterns = super::super::read_text(&ignore_path).unwrap_or_default();
    let leaked: Vec<&String> = env_files
        .iter()
        .filter(|f| !dockerignore_excludes(&patterns, f))
        .collect();
    if let Some(first) = leaked.first() {
        let why = if ignore_path.is_file() {
            "its .dockerignore does not exclude"
        } else {
            "it has no .dockerignore, so it sends"
        };
        sink.report(
            "SA503",
            build.key_pos,
            stack,
            &format!("{}/{}:context", project.stack, s.name),
            format!(
                "the build context `{context}` of service `{}` contains env files and {why} them ({}{})",
                s.name,
                first,
                if leaked.len() > 1 {
                    format!(" and {} more", leaked.len() - 1)
                } else {
                    String::new()
                }
            ),
        );
    }
}

pub(super) fn find_env_files(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_dir() {
            if !matches!(name.as_str(), ".git" | "node_modules" | "target" | ".venv") {
                find_env_files(root, &p, depth + 1, out);
            }
        } else if is_env_file_name(&name) && name != ".env.example" && name != ".env.sample" {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

/// Whether `.dockerignore` patterns exclude `rel` (last matching pattern wins; a pattern that
/// matches a parent directory excludes everything below it).
pub(super) fn dockerignore_excludes(patterns: &str, rel: &str) -> bool {
    let mut excluded = false;
    let parts: Vec<&str> = rel.split('/').collect();
    for line in patterns.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/').trim_end_matches('/');
        let pat = pat.strip_prefix("./").unwrap_or(pat);
        let Ok(glob) = globset::GlobBuilder::new(pat)
            .literal_separator(true)
            .build()
        else {
            continue;
        };
        let m = glob.compile_matcher();
        let matched = (1..=parts.len()).any(|n| m.is_match(parts[..n].join("/")));
        if matched {
            excluded = !negate;
        }
    }
    excluded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore() {
        assert!(dockerignore_excludes(".env\n", ".env"));
        assert!(!dockerignore_excludes(".env\n", "sub/.env"));
        assert!(dockerignore_excludes("**/.env\n", "sub/.env"));
        assert!(dockerignore_excludes("*.env\n!prod.env\n", "a.env"));
        assert!(!dockerignore_excludes("*.env\n!prod.env\n", "prod.env"));
        assert!(dockerignore_excludes("config\n", "config/.env"));
        assert!(dockerignore_excludes(".env*\n", ".env.local"));
    }

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASSWORD",
            "API_KEY",
            "JWT_SECRET",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "TOKEN_URL",
            "JWT_ACCESS_TOKEN_LIFETIME",
            "DB_PASSWORD_FILE",
            "DB_USER",
            "TOKEN_TTL",
            "KEY_PATH",
            "PASSWORD_RESET_TIMEOUT",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
