//! Native security audit of compose stacks and their Traefik setup.
//!
//! Reads compose files the way Compose does (several `-f` merged in order, `.env` /
//! `--env-file` interpolation), Traefik labels on services, and Traefik static and dynamic
//! (file provider) configuration in YAML or TOML, then reports [`Finding`]s with the tool name
//! [`TOOL`], each pointing at `file:line`. The rules are listed in [`RULES`].
//!
//! ```no_run
//! use shipline_scanners::audit::{audit_stacks, AuditOptions, Profile, StackInput};
//!
//! let stacks = [StackInput {
//!     name: "dev".into(),
//!     compose_files: vec!["compose.yaml".into(), "compose.dev.yaml".into()],
//!     env_file: Some(".env.dev".into()),
//!     profile: Some(Profile::Dev),
//!     project: None,
//! }];
//! let report = audit_stacks(&stacks, &["traefik/".into()], &AuditOptions::default())?;
//! for f in &report.findings {
//!     println!("{} {:?}:{:?} {}", f.rule_id, f.location.path, f.location.start_line, f.message);
//! }
//! # Ok::<(), shipline_scanners::audit::AuditError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::finding::{stable_id, Finding, Location};
use crate::report::ScannerRun;

mod checks;
mod compose;
mod interp;
mod rules;
mod traefik;
mod tree;
mod world;

pub use rules::{rule_by_id, Rule, RULES};

/// The `tool` of every audit finding.
pub const TOOL: &str = "shipline-audit";

/// Which environment's expectations apply to a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// Development: routers need basic auth and an IP allowlist.
    Dev,
    /// Production: routers need security headers; no pre-release images.
    Prod,
}

impl Profile {
    /// Reads `dev`/`development`/`staging` or `prod`/`production`.
    pub fn parse(s: &str) -> Option<Profile> {
        match s.to_ascii_lowercase().as_str() {
            "dev" | "development" | "staging" | "stage" => Some(Profile::Dev),
            "prod" | "production" | "live" => Some(Profile::Prod),
            _ => None,
        }
    }
}

/// One compose stack to audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackInput {
    /// Stack name (used in messages and for cross-stack rules).
    pub name: String,
    /// Compose files, merged in order (`-f a -f b`).
    pub compose_files: Vec<PathBuf>,
    /// `--env-file`; when `None`, `.env` beside the first compose file if it exists.
    pub env_file: Option<PathBuf>,
    /// Which expectations apply; `None` skips the dev/prod-specific rules.
    pub profile: Option<Profile>,
    /// Compose project name (`-p`); defaults to `name:` in the files or the directory name.
    pub project: Option<String>,
}

/// Options of an audit run. `Debug` prints variable names, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuditOptions {
    /// Variables that take precedence over the env file, as the shell environment does for
    /// Compose. The audit never reads the process environment itself.
    pub environment: BTreeMap<String, String>,
    /// Traefik sits behind a CDN or another proxy (also inferred from
    /// `entryPoints.*.forwardedHeaders`).
    pub behind_cdn: bool,
    /// Paths in findings are made relative to this directory when they are inside it.
    pub base_dir: Option<PathBuf>,
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field(
                "environment",
                &self
                    .environment
                    .keys()
                    .map(|k| (k.as_str(), "<redacted>"))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("behind_cdn", &self.behind_cdn)
            .field("base_dir", &self.base_dir)
            .finish()
    }
}

/// What an audit found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditReport {
    /// Findings, sorted by path, line, rule and id.
    pub findings: Vec<Finding>,
    /// Non-fatal notes (unset variables, files not followed).
    pub warnings: Vec<String>,
    /// The stacks audited, in input order.
    pub stacks: Vec<String>,
}

impl AuditReport {
    /// The findings as one `shipline-audit` scanner run, ready for
    /// [`ScanReport::add`](crate::ScanReport::add) and the gate.
    pub fn into_scanner_run(self) -> ScannerRun {
        ScannerRun::ok(
            TOOL,
            Some(env!("CARGO_PKG_VERSION").to_string()),
            self.findings,
        )
    }
}

/// Why an audit could not run. Every variant names the file and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A YAML or TOML syntax error.
    #[error("failed to parse {path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// The parser's message.
        message: String,
    },
    /// A key the compose specification does not know.
    #[error("failed to load {path}:{line}: unknown top-level key `{key}`{hint} (allowed: version, name, services, networks, volumes, secrets, configs, include, models and x-* extensions)")]
    UnknownKey {
        /// The file.
        path: String,
        /// 1-based line.
        line: u32,
        /// The key.
        key: String,
        /// `; did you mean `services`?` or empty.
        hint: String,
    },
    /// A structurally invalid document or a bad interpolation.
    #[error("failed to load {path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// `${VAR:?message}` with `VAR` unset.
    #[error("failed to interpolate {path}:{line}: required variable {name} is missing a value: {message}")]
    MissingVariable {
        /// The file.
        path: String,
        /// 1-based line.
        line: u32,
        /// The variable.
        name: String,
        /// The message written after `?`.
        message: String,
    },
    /// A stack without compose files.
    #[error("failed to load stack {stack}: no compose files given")]
    NoComposeFiles {
        /// The stack name.
        stack: String,
    },
    /// Two stacks with one name.
    #[error("failed to load stack {stack}: the name is used twice")]
    DuplicateStack {
        /// The stack name.
        stack: String,
    },
}

impl AuditError {
    /// The file and line the error points at, when it has them.
    pub fn location(&self) -> (Option<&str>, Option<u32>) {
        match self {
            AuditError::Read { path, .. } => (Some(path), None),
            AuditError::Parse { path, line, .. }
            | AuditError::UnknownKey { path, line, .. }
            | AuditError::Invalid { path, line, .. }
            | AuditError::MissingVariable { path, line, .. } => (Some(path), Some(*line)),
            AuditError::NoComposeFiles { .. } | AuditError::DuplicateStack { .. } => (None, None),
        }
    }
}

/// Largest file the audit reads (compose, env, Traefik, Dockerfile, .dockerignore).
pub(crate) const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a regular text file of at most [`MAX_FILE_BYTES`]; devices, FIFOs and huge files are
/// refused instead of hanging the audit.
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    std::fs::read_to_string(path)
}

/// The files an audit read; nodes point into it by index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Files {
    pub display: Vec<String>,
    pub paths: Vec<PathBuf>,
    base: Option<PathBuf>,
}

impl Files {
    fn new(base: Option<PathBuf>) -> Self {
        Files {
            base,
            ..Files::default()
        }
    }

    /// How a path is shown in findings and errors.
    pub fn display(&self, p: &Path) -> String {
        let shown = match &self.base {
            Some(b) => match p.strip_prefix(b) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel,
                _ => p,
            },
            None => p,
        };
        shown.to_string_lossy().replace('\\', "/")
    }

    /// Registers a file and returns its index.
    pub fn add(&mut self, display: String, path: PathBuf) -> usize {
        if let Some(i) = self.paths.iter().position(|p| *p == path) {
            return i;
        }
        self.display.push(display);
        self.paths.push(path);
        self.display.len() - 1
    }
}

/// Audits stacks that share one Docker daemon, together with Traefik configuration files or
/// directories (static or dynamic, YAML or TOML; the kind is recognised from the keys).
///
/// Cross-stack rules (router name, `container_name` and network collisions) run only when
/// more than one stack is given.
pub fn audit_stacks(
    stacks: &[StackInput],
    traefik_configs: &[PathBuf],
    options: &AuditOptions,
) -> Result<AuditReport, AuditError> {
    let mut files = Files::new(options.base_dir.clone());
    let mut warnings = Vec::new();
    let mut projects = Vec::new();
    for (i, s) in stacks.iter().enumerate() {
        if stacks[..i].iter().any(|o| o.name == s.name) {
            return Err(AuditError::DuplicateStack {
                stack: s.name.clone(),
            });
        }
        projects.push(compose::load_stack(
            s,
            &mut files,
            &options.environment,
            &mut warnings,
        )?);
    }
    let mut world = world::World::build(projects, traefik_configs, options, &mut files)?;
    let findings = checks::run(&mut world);
    // One finding per mistake: a line of a file shared by several stacks (a common compose
    // file) is reported once, naming every stack it affects.
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        let same = out.iter_mut().find(|o| {
            o.id == f.id
                || (o.rule_id == f.rule_id
                    && o.location.path == f.location.path
                    && o.location.start_line == f.location.start_line
                    && o.message == f.message)
        });
        match same {
            None => out.push(f),
            Some(o) => {
                if let (Some(a), Some(b)) = (&mut o.location.artifact, &f.location.artifact) {
                    if !a.split(", ").any(|s| s == b) {
                        a.push_str(", ");
                        a.push_str(b);
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.location.path, a.location.start_line, &a.rule_id, &a.id).cmp(&(
            &b.location.path,
            b.location.start_line,
            &b.rule_id,
            &b.id,
        ))
    });
    warnings.extend(world.warnings);
    Ok(AuditReport {
        findings: out,
        warnings,
        stacks: stacks.iter().map(|s| s.name.clone()).collect(),
    })
}

/// Builds a finding of `rule` at `path:line` about `subject`.
pub(crate) fn make_finding(
    rule: &Rule,
    path: &str,
    line: u32,
    stack: Option<&str>,
    subject: &str,
    message: String,
) -> Finding {
    Finding {
        id: stable_id(&[rule.id, path, subject]),
        tool: TOOL.to_string(),
        tool_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        kind: rule.kind,
        rule_id: rule.id.to_string(),
        aliases: vec![rule.name.to_string()],
        title: rule.title.to_string(),
        message,
        severity: rule.severity,
        tool_severity: None,
        cvss: None,
        cwe: Vec::new(),
        owasp: Vec::new(),
        location: Location {
            artifact: stack.map(str::to_string),
            target: Some(subject.to_string()),
            path: Some(path.to_string()),
            start_line: Some(line),
            end_line: Some(line),
        },
        package: None,
        references: Vec::new(),
        fix: Some(rule.fix.to_string()),
        suppression: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_redacts_values() {
        let options = AuditOptions {
            environment: [("DB_PASSWORD".to_string(), "hunter2".to_string())]
                .into_iter()
                .collect(),
            ..AuditOptions::default()
        };
        let text = format!("{options:?}");
        assert!(
            text.contains("DB_PASSWORD") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
