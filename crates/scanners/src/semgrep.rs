//! Semgrep: run `semgrep scan --json` with local rules, or ingest its JSON report.
//!
//! `extra.fingerprint` and `extra.lines` may be the literal text `requires login` (logged-out
//! runs of Semgrep ≥ 1.100): they are never used as identity. The identity of a SAST finding
//! is rule + path + a hash of the matched lines, read from the file under the scan root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::finding::{stable_id, Finding, FindingKind, Location, Severity, Suppression};
use crate::process::{self, ProcessSpec};
use crate::report::{ScanError, ScannerRun};

/// The placeholder Semgrep prints instead of real data for logged-out users.
pub const REQUIRES_LOGIN: &str = "requires login";

/// How to run Semgrep.
#[derive(Debug, Clone)]
pub struct SemgrepOptions {
    /// The executable (default `semgrep` on PATH).
    pub binary: PathBuf,
    /// Paths to scan (relative to `root`); empty means `.`.
    pub paths: Vec<PathBuf>,
    /// `--config` values: local rule files or directories (registry rulesets need the network).
    pub configs: Vec<PathBuf>,
    /// Working directory and root for reading snippets.
    pub root: PathBuf,
    /// Kills Semgrep after this long.
    pub timeout: Duration,
    /// `--jobs` (None: Semgrep's default).
    pub jobs: Option<u32>,
    /// Extra arguments.
    pub extra_args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl SemgrepOptions {
    /// Defaults for scanning `root` with the given rule files.
    pub fn new(root: impl Into<PathBuf>, configs: Vec<PathBuf>) -> Self {
        SemgrepOptions {
            binary: PathBuf::from("semgrep"),
            paths: Vec::new(),
            configs,
            root: root.into(),
            timeout: Duration::from_secs(600),
            jobs: None,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The command line and environment for `opts`.
pub fn command(opts: &SemgrepOptions) -> ProcessSpec {
    let mut args: Vec<String> = vec![
        "scan".into(),
        "--json".into(),
        "--metrics=off".into(),
        "--disable-version-check".into(),
        "--quiet".into(),
        "--timeout".into(),
        opts.timeout.as_secs().max(1).to_string(),
    ];
    for c in &opts.configs {
        args.push("--config".into());
        args.push(c.display().to_string());
    }
    if let Some(j) = opts.jobs {
        args.push("--jobs".into());
        args.push(j.to_string());
    }
    args.extend(opts.extra_args.iter().cloned());
    if opts.paths.is_empty() {
        args.push(".".into());
    } else {
        args.extend(opts.paths.iter().map(|p| p.display().to_string()));
    }
    let mut spec = ProcessSpec::new(opts.binary.clone().into_os_string())
        .args(args)
        .cwd(&opts.root)
        .timeout(opts.timeout)
        // Without this a run on a closed network stalls on the update check.
        .env("SEMGREP_ENABLE_VERSION_CHECK", "0")
        .env("SEMGREP_SEND_METRICS", "off");
    for (k, v) in &opts.env {
        spec = spec.env(k, v);
    }
    spec
}

/// Runs Semgrep and parses its report; every failure becomes a run with status `error`.
///
/// Semgrep exits 0 (no `--error`) or 1 (findings with `--error`); anything else, or an
/// `errors[]` entry at level `error`, fails closed.
pub fn run(opts: &SemgrepOptions) -> ScannerRun {
    match run_inner(opts) {
        Ok(r) => r.with_source("run"),
        Err(e) => ScannerRun::failed("semgrep", &e).with_source("run"),
    }
}

/// [`run`] on tokio's blocking pool.
pub async fn run_async(opts: SemgrepOptions) -> ScannerRun {
    match tokio::task::spawn_blocking(move || run(&opts)).await {
        Ok(r) => r,
        Err(e) => ScannerRun::failed("semgrep", &std::io::Error::other(e.to_string())),
    }
}

fn run_inner(opts: &SemgrepOptions) -> Result<ScannerRun, ScanError> {
    let out = process::run(&command(opts))?;
    let stderr = out.stderr_tail(2000);
    if !matches!(
        out.exit,
        process::ExitKind::Code(0) | process::ExitKind::Code(1)
    ) {
        return Err(ScanError::Exit {
            tool: "semgrep".into(),
            exit: out.exit,
            stderr,
        });
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(ScanError::EmptyOutput {
            tool: "semgrep".into(),
            stderr,
        });
    }
    parse(&out.stdout, "stdout", Some(&opts.root))
}

/// Reads a Semgrep JSON report file; snippets are read relative to `root` when given.
pub fn ingest_file(path: &Path, root: Option<&Path>) -> ScannerRun {
    let name = path.display().to_string();
    let res = std::fs::read(path)
        .map_err(|source| ScanError::Read {
            path: name.clone(),
            source,
        })
        .and_then(|b| parse(&b, &name, root));
    match res {
        Ok(r) => r.with_source(name),
        Err(e) => ScannerRun::failed("semgrep", &e).with_source(name),
    }
}

#[derive(Deserialize)]
struct RawReport {
    results: Option<Vec<RawResult>>,
    #[serde(default)]
    errors: Vec<RawError>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Pos {
    line: u32,
}

#[derive(Deserialize)]
struct RawResult {
    check_id: String,
    path: String,
    start: Pos,
    end: Option<Pos>,
    extra: RawExtra,
}

#[derive(Deserialize, Default)]
struct RawExtra {
    #[serde(default)]
    message: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    metadata: serde_json::Value,
    lines: Option<String>,
    #[serde(default)]
    is_ignored: bool,
    fix: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    level: Option<String>,
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
    message: Option<String>,
    path: Option<String>,
}

/// Parses Semgrep's JSON output.
pub fn parse(
    bytes: &[u8],
    source_name: &str,
    root: Option<&Path>,
) -> Result<ScannerRun, ScanError> {
    let report: RawReport = serde_json::from_slice(bytes).map_err(|source| ScanError::Json {
        tool: "semgrep".into(),
        source_name: source_name.into(),
        source,
    })?;
    let Some(results) = report.results else {
        return Err(ScanError::Json {
            tool: "semgrep".into(),
            source_name: source_name.into(),
            source: serde::de::Error::missing_field("results"),
        });
    };
    let mut fatal = Vec::new();
    let mut warnings = Vec::new();
    for e in &report.errors {
        let kind = match &e.kind {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .first()
                .and_then(|v| v.as_str())
                .unwrap_or("error")
                .to_string(),
            _ => "error".into(),
        };
        let text = format!(
            "{kind}{}: {}",
            e.path
                .as_deref()
                .map(|p| format!(" in {p}"))
                .unwrap_or_default(),
            e.message.as_deref().unwrap_or("").trim()
        );
        match e.level.as_deref() {
            Some("warn") | Some("warning") | Some("info") => warnings.push(text),
            _ => fatal.push(text),
        }
    }
    if let Some(first) = fatal.first() {
        return Err(ScanError::ToolErrors {
            tool: "semgrep".into(),
            count: fatal.len(),
            first: first.clone(),
        });
    }
    let version = report.version.clone();
    let findings = results
        .into_iter()
        .map(|r| to_finding(r, root, version.as_deref()))
        .collect();
    let mut run = ScannerRun::ok("semgrep", version, findings);
    run.status.warnings = warnings;
    Ok(run)
}

/// Maps a Semgrep severity (`ERROR`, `WARNING`, `INFO`, or the newer `CRITICAL`..`LOW`).
pub fn severity(s: &str) -> Severity {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "ERROR" | "HIGH" => Severity::High,
        "WARNING" | "MEDIUM" => Severity::Medium,
        "INFO" | "LOW" => Severity::Low,
        "EXPERIMENT" | "INVENTORY" => Severity::Info,
        _ => Severity::Unknown,
    }
}

/// Reads lines `start..=end` (1-based) of `root/path`, or `None`.
pub fn read_snippet(root: &Path, path: &str, start: u32, end: u32) -> Option<String> {
    let text = std::fs::read_to_string(root.join(path)).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .skip(start.saturating_sub(1) as usize)
        .take((end.saturating_sub(start) + 1) as usize)
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Hash of a snippet with whitespace normalized (re-indenting code keeps the identity).
pub fn snippet_hash(snippet: &str) -> String {
    let norm: Vec<&str> = snippet.split_whitespace().collect();
    stable_id(&[&norm.join(" ")])
}

/// Strings from a metadata value that is a string or a list of strings.
pub(crate) fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `CWE-79: Improper ...` → `CWE-79`.
pub(crate) fn cwe_id(s: &str) -> String {
    s.split(':').next().unwrap_or(s).trim().to_string()
}

fn to_finding(r: RawResult, root: Option<&Path>, version: Option<&str>) -> Finding {
    let start = r.start.line;
    let end = r.end.map_or(start, |e| e.line.max(start));
    let lines = r.extra.lines.filter(|l| l.trim() != REQUIRES_LOGIN);
    let snippet = root
        .and_then(|root| read_snippet(root, &r.path, start, end))
        .or(lines);
    let snippet_key = match &snippet {
        Some(s) => snippet_hash(s),
        // Without a snippet the line number is the best remaining key.
        None => format!("line:{start}"),
    };
    let id = stable_id(&["semgrep", "sast", &r.check_id, &r.path, &snippet_key]);
    let md = &r.extra.metadata;
    let cwe = strings(md.get("cwe")).iter().map(|c| cwe_id(c)).collect();
    let owasp = strings(md.get("owasp"));
    let mut references = strings(md.get("references"));
    for key in ["source", "shortlink"] {
        if let Some(u) = md.get(key).and_then(|v| v.as_str()) {
            if !references.iter().any(|r| r == u) {
                references.push(u.to_string());
            }
        }
    }
    let title = r
        .check_id
        .rsplit('.')
        .next()
        .unwrap_or(&r.check_id)
        .to_string();
    Finding {
        id,
        tool: "semgrep".into(),
        tool_version: version.map(str::to_string),
        kind: FindingKind::Sast,
        title,
        message: r.extra.message.trim().to_string(),
        severity: severity(&r.extra.severity),
        tool_severity: Some(r.extra.severity),
        rule_id: r.check_id,
        aliases: Vec::new(),
        cvss: None,
        cwe,
        owasp,
        location: Location {
            path: Some(r.path),
            start_line: Some(start),
            end_line: Some(end),
            ..Location::default()
        },
        package: None,
        references,
        fix: r.extra.fix,
        suppression: r.extra.is_ignored.then(|| Suppression {
            by: "nosemgrep".into(),
            reason: Some("nosemgrep comment in source".into()),
            expires: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_login_is_not_identity() {
        let doc = |fp: &str| {
            format!(
                r#"{{"results":[{{"check_id":"r.x","path":"a.py","start":{{"line":3}},"end":{{"line":3}},
                "extra":{{"message":"m","severity":"ERROR","fingerprint":"{fp}","lines":"requires login"}}}}],"errors":[]}}"#
            )
        };
        let a = parse(doc("requires login").as_bytes(), "a", None).expect("parses");
        let b = parse(doc("0xdeadbeef").as_bytes(), "b", None).expect("parses");
        assert_eq!(a.findings[0].id, b.findings[0].id);
    }

    /// The id of a SAST finding is rule + path + a hash of the code read from the file: it
    /// survives the code moving to another line, and changes when the code changes.
    #[test]
    fn identity_is_the_snippet_read_from_the_file_not_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let doc = |line: u32| {
            format!(
                r#"{{"results":[{{"check_id":"r.x","path":"app.py","start":{{"line":{line}}},"end":{{"line":{line}}},
                "extra":{{"message":"m","severity":"ERROR","fingerprint":"requires login","lines":"requires login"}}}}],"errors":[]}}"#
            )
        };
        let write = |text: &str| std::fs::write(dir.path().join("app.py"), text).expect("write");
        write("import os\nos.system(cmd)\n");
        let before = parse(doc(2).as_bytes(), "a", Some(dir.path())).expect("parses");
        write("import os\n\n\nos.system(cmd)\n");
        let moved = parse(doc(4).as_bytes(), "b", Some(dir.path())).expect("parses");
        assert_eq!(
            before.findings[0].id, moved.findings[0].id,
            "moved code keeps its id"
        );
        write("import os\n\n\nos.system(other)\n");
        let changed = parse(doc(4).as_bytes(), "c", Some(dir.path())).expect("parses");
        assert_ne!(
            moved.findings[0].id, changed.findings[0].id,
            "changed code is new"
        );
        // without the file, the line number is all that is left (and the id moves with it)
        let a = parse(doc(2).as_bytes(), "d", None).expect("parses");
        let b = parse(doc(4).as_bytes(), "e", None).expect("parses");
        assert_ne!(a.findings[0].id, b.findings[0].id);
    }

    /// Offline and quiet: no metrics, no version check (flag and environment), local rules.
    #[test]
    fn the_command_runs_offline_with_local_rules() {
        let mut opts = SemgrepOptions::new("/src", vec![PathBuf::from("rules/local.yml")]);
        opts.paths = vec![PathBuf::from("api")];
        // the spec's fields are private to the process module; its Debug shows them all
        let spec = format!("{:?}", command(&opts));
        for want in [
            r#"args: ["scan", "--json", "--metrics=off", "--disable-version-check""#,
            r#""--config", "rules/local.yml""#,
            r#""api"]"#,
            r#""SEMGREP_ENABLE_VERSION_CHECK=0""#,
            r#"cwd: Some("/src")"#,
        ] {
            assert!(spec.contains(want), "{want} missing: {spec}");
        }
    }

    #[test]
    fn error_level_fails_warn_does_not() {
        let bad = br#"{"results":[],"errors":[{"level":"error","type":"Rule parse error","message":"bad rule"}]}"#;
        let err = parse(bad, "x", None).unwrap_err();
        assert!(
            err.to_string().contains("semgrep reported 1 error"),
            "{err}"
        );
        let warn =
            br#"{"results":[],"errors":[{"level":"warn","type":"Timeout","message":"slow"}]}"#;
        let run = parse(warn, "x", None).expect("warnings are not fatal");
        assert_eq!(run.status.warnings.len(), 1);
    }
}
