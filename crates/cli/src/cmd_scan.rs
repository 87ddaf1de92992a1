//! `shipline scan`: run Trivy/Semgrep or ingest their reports, gate, render.
//!
//! ```text
//! shipline scan trivy IMAGE [--offline] [--cache-dir DIR] [--timeout 10m]
//! shipline scan semgrep [PATH] --config RULES.yml
//! shipline scan --report trivy:FILE --report semgrep:FILE --report sarif:FILE
//!               [--policy FILE] [--baseline FILE] [--format table|json|sarif|markdown|github]
//!               [--output FILE]
//! shipline scan baseline --output FILE --report ...
//! ```
//! Exit codes: 0 pass, 1 findings over threshold, 2 usage or policy error, 3 scanner error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use shipline_scanners::gate::{gate, Baseline, Outcome, Verdict};
use shipline_scanners::policy::Policy;
use shipline_scanners::render;
use shipline_scanners::semgrep::SemgrepOptions;
use shipline_scanners::trivy::{TrivyOptions, TrivyTarget};
use shipline_scanners::{ScanReport, ScannerRun, ScannerState};

use crate::{CliError, Global};

/// Arguments of `shipline scan`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct ScanArgs {
    /// Run a scanner (optional: `--report` alone ingests existing reports).
    #[command(subcommand)]
    pub command: Option<ScanCommand>,
    /// Ingest an existing report: `trivy:FILE` (Trivy JSON), `semgrep:FILE` (Semgrep JSON) or
    /// `sarif:FILE` (any SARIF 2.1.0 producer). Repeatable.
    #[arg(long = "report", value_name = "KIND:FILE", global = true, value_parser = parse_report)]
    pub reports: Vec<ReportSource>,
    /// Gate policy (TOML or YAML, see docs/policy.md). Default: fail on high and critical
    /// (any secret), no ignores.
    #[arg(long, value_name = "FILE", global = true)]
    pub policy: Option<PathBuf>,
    /// Baseline file: findings listed in it do not fail the gate.
    #[arg(long, value_name = "FILE", global = true)]
    pub baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Shorthand for `--format json`.
    #[arg(long, global = true)]
    pub json: bool,
    /// Write the output to FILE instead of stdout (atomically).
    #[arg(long, short, value_name = "FILE", global = true)]
    pub output: Option<PathBuf>,
    /// Directory that report paths are relative to, for reading the code snippets that identify
    /// SAST findings [default: the current directory].
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
}

/// `shipline scan` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan a container image (or, with --fs, a directory) with Trivy.
    Trivy(TrivyArgs),
    /// Scan source code with Semgrep and local rules.
    Semgrep(SemgrepArgs),
    /// Write a baseline of the current findings (from --report sources) to --output.
    Baseline,
}

/// `shipline scan trivy`.
#[derive(Debug, Args)]
pub struct TrivyArgs {
    /// Image reference (or a directory with --fs, or an archive with --input).
    pub target: String,
    /// Scan a filesystem path instead of an image.
    #[arg(long, conflicts_with = "input")]
    pub fs: bool,
    /// TARGET is an image archive (`docker save` / OCI tar).
    #[arg(long)]
    pub input: bool,
    /// Air-gapped: skip DB, Java DB and version-check downloads, no telemetry.
    #[arg(long)]
    pub offline: bool,
    /// Trivy cache directory.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Kill Trivy after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Trivy executable.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "trivy",
        env = "SHIPLINE_TRIVY"
    )]
    pub trivy_bin: PathBuf,
    /// Trivy `--scanners` (e.g. vuln,secret,misconfig).
    #[arg(long, value_delimiter = ',')]
    pub scanners: Vec<String>,
}

/// `shipline scan semgrep`.
#[derive(Debug, Args)]
pub struct SemgrepArgs {
    /// Directory to scan.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Local rule file or directory (repeatable; registry rulesets need the network).
    #[arg(long = "config", value_name = "RULES", required = true)]
    pub configs: Vec<PathBuf>,
    /// Kill Semgrep after this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Semgrep executable.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "semgrep",
        env = "SHIPLINE_SEMGREP"
    )]
    pub semgrep_bin: PathBuf,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Terminal table grouped by severity.
    Table,
    /// Versioned JSON (`"version": 1`).
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// Markdown for $GITHUB_STEP_SUMMARY (under 1 MiB).
    Markdown,
    /// GitHub Actions annotations.
    Github,
}

/// Kind of an ingested report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Trivy JSON.
    Trivy,
    /// Semgrep JSON.
    Semgrep,
    /// SARIF 2.1.0.
    Sarif,
}

/// One `--report KIND:FILE`.
#[derive(Debug, Clone)]
pub struct ReportSource {
    /// Kind.
    pub kind: ReportKind,
    /// File.
    pub path: PathBuf,
}

fn parse_report(s: &str) -> Result<ReportSource, String> {
    let (kind, path) = s
        .split_once(':')
        .ok_or_else(|| format!("expected KIND:FILE (trivy:, semgrep: or sarif:), got {s:?}"))?;
    let kind = match kind {
        "trivy" => ReportKind::Trivy,
        "semgrep" => ReportKind::Semgrep,
        "sarif" => ReportKind::Sarif,
        other => {
            return Err(format!(
                "unknown report kind {other:?} (expected trivy, semgrep or sarif)"
            ))
        }
    };
    if path.is_empty() {
        return Err("missing file after KIND:".into());
    }
    Ok(ReportSource {
        kind,
        path: PathBuf::from(path),
    })
}

/// Runs `shipline scan`.
pub fn run(args: ScanArgs, global: &Global) -> anyhow::Result<i32> {
    let format = if args.json { Format::Json } else { args.format };
    let policy = match &args.policy {
        Some(p) => Policy::from_path(p).map_err(|e| CliError::usage(chain(&e)))?,
        None => Policy::default(),
    };
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| CliError::usage(chain(&e)))?),
        None => None,
    };
    // Report paths are relative to where the scanner ran, usually the checkout this runs in:
    // snippets (the identity of SAST findings) are read from there unless --root says else.
    let root = args.root.clone().or_else(|| std::env::current_dir().ok());

    let mut report = ScanReport::new();
    let mut baseline_out = false;
    match &args.command {
        Some(ScanCommand::Trivy(t)) => {
            let target = if t.fs {
                TrivyTarget::Fs(PathBuf::from(&t.target))
            } else if t.input {
                TrivyTarget::ImageArchive(PathBuf::from(&t.target))
            } else {
                TrivyTarget::Image(t.target.clone())
            };
            let mut opts = TrivyOptions::new(target);
            opts.binary = t.trivy_bin.clone();
            opts.offline = t.offline;
            opts.cache_dir = t.cache_dir.clone();
            opts.timeout = t.timeout;
            opts.scanners = t.scanners.clone();
            global.info(format!("running trivy on {}", t.target));
            report.add(shipline_scanners::trivy::run(&opts));
        }
        Some(ScanCommand::Semgrep(s)) => {
            let mut opts = SemgrepOptions::new(&s.path, absolute(&s.configs));
            opts.binary = s.semgrep_bin.clone();
            opts.timeout = s.timeout;
            global.info(format!("running semgrep on {}", s.path.display()));
            report.add(shipline_scanners::semgrep::run(&opts));
        }
        Some(ScanCommand::Baseline) => baseline_out = true,
        None => {}
    }
    for src in &args.reports {
        for r in ingest(src, root.as_deref()) {
            report.add(r);
        }
    }
    if report.scanners.is_empty() {
        return Err(CliError::usage(
            "nothing to scan: give a subcommand (trivy, semgrep) or at least one --report KIND:FILE",
        ));
    }
    report.sort();

    if baseline_out {
        let Some(out) = &args.output else {
            return Err(CliError::usage(
                "shipline scan baseline needs --output FILE",
            ));
        };
        if let Some(bad) = report
            .scanners
            .iter()
            .find(|s| s.status == ScannerState::Error)
        {
            return Err(CliError::tool(format!(
                "refusing to write a baseline from a failed scan: {}: {}",
                bad.name,
                bad.message.as_deref().unwrap_or("failed")
            )));
        }
        let b = Baseline::from_report(&report);
        write_atomic(out, b.to_json().as_bytes()).map_err(|e| {
            CliError::tool(format!("failed to write baseline {}: {e}", out.display()))
        })?;
        global.info(format!(
            "wrote baseline of {} finding(s) to {}",
            b.findings.len(),
            out.display()
        ));
        return Ok(shipline_core::exit::OK);
    }

    let verdict = gate(&report, &policy, baseline.as_ref());
    let text = match format {
        Format::Table => render::render_table(&report, &verdict),
        Format::Json => render::render_json(&report, &verdict),
        Format::Sarif => render::render_sarif(&report, &verdict),
        Format::Markdown => render::render_markdown(&report, &verdict),
        Format::Github => render::render_github(&report, &verdict),
    };
    match &args.output {
        Some(p) => write_atomic(p, text.as_bytes())
            .map_err(|e| CliError::tool(format!("failed to write {}: {e}", p.display())))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::tool(format!("failed to write output: {e}")))?;
        }
    }
    summarize(global, &verdict, format, args.output.is_some());
    let printed_annotations = format == Format::Github && args.output.is_none();
    crate::gha::publish_findings(global, &report, &verdict, !printed_annotations);
    let code = verdict.exit_code();
    // The process exits right after this: handing every string of 100,000 findings back to
    // the allocator one at a time costs about as much as sorting them. Exit reclaims it all.
    std::mem::forget((report, verdict));
    Ok(code)
}

fn summarize(global: &Global, verdict: &Verdict, format: Format, to_file: bool) {
    for p in &verdict.problems {
        eprintln!("error: scanner failed, the gate fails closed: {p}");
    }
    for e in &verdict.expired_ignores {
        global.warn(format!(
            "ignore {} expired on {} and no longer applies ({} finding(s))",
            e.ignore, e.expired, e.findings
        ));
    }
    if format != Format::Table || to_file {
        let c = &verdict.counts;
        global.info(format!(
            "shipline scan: {} ({} blocking, {} allowed, {} suppressed)",
            verdict.outcome.as_str(),
            c.blocking,
            c.allowed,
            c.suppressed
        ));
    }
    if verdict.outcome == Outcome::Error && verdict.problems.is_empty() {
        eprintln!("error: the gate failed closed");
    }
}

fn ingest(src: &ReportSource, root: Option<&Path>) -> Vec<ScannerRun> {
    match src.kind {
        ReportKind::Trivy => vec![shipline_scanners::trivy::ingest_file(&src.path)],
        ReportKind::Semgrep => vec![shipline_scanners::semgrep::ingest_file(&src.path, root)],
        ReportKind::Sarif => shipline_scanners::sarif::ingest_file(&src.path, root),
    }
}

fn absolute(paths: &[PathBuf]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_default();
    paths.iter().map(|p| cwd.join(p)).collect()
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    shipline_scanners::report::error_chain(err)
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        scan: ScanArgs,
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scanners")
    }

    fn args(list: &[&str]) -> ScanArgs {
        let mut v = vec!["scan"];
        v.extend_from_slice(list);
        T::try_parse_from(v).expect("arguments parse").scan
    }

    fn quiet() -> Global {
        Global::new(crate::ColorChoice::Never, true)
    }

    fn code_of(err: &anyhow::Error) -> i32 {
        err.chain()
            .find_map(|e| e.downcast_ref::<CliError>().map(|c| c.code))
            .unwrap_or(-1)
    }

    #[test]
    fn reports_gate_and_write_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.json");
        let trivy = format!(
            "trivy:{}",
            fixtures().join("reports/trivy/image-mixed.json").display()
        );
        let semgrep = format!(
            "semgrep:{}",
            fixtures().join("reports/semgrep/logged-out.json").display()
        );
        let sarif = format!(
            "sarif:{}",
            fixtures().join("reports/sarif/codeql-like.sarif").display()
        );
        let a = args(&[
            "--report",
            &trivy,
            "--report",
            &semgrep,
            "--report",
            &sarif,
            "--json",
            "--output",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(run(a, &quiet()).expect("runs"), 1);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).expect("output written")).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["scanners"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn baseline_then_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("baseline.json");
        let trivy = format!(
            "trivy:{}",
            fixtures().join("reports/trivy/image-mixed.json").display()
        );
        let a = args(&[
            "baseline",
            "--output",
            base.to_str().expect("utf8"),
            "--report",
            &trivy,
        ]);
        assert_eq!(run(a, &quiet()).expect("runs"), 0);
        let out = dir.path().join("out.txt");
        let a = args(&[
            "--report",
            &trivy,
            "--baseline",
            base.to_str().expect("utf8"),
            "--output",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(run(a, &quiet()).expect("runs"), 0);
    }

    #[test]
    fn fake_trivy_crash_exits_3() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("trivy");
        std::fs::write(&bin, "#!/bin/sh\necho 'FATAL init error' >&2\nexit 1\n").expect("write");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = dir.path().join("out.txt");
        let a = args(&[
            "trivy",
            "app:1",
            "--trivy-bin",
            bin.to_str().expect("utf8"),
            "--output",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(run(a, &quiet()).expect("runs"), 3);
        let text = std::fs::read_to_string(&out).expect("table written");
        assert!(text.starts_with("shipline scan: ERROR"), "{text}");
        assert!(text.contains("FATAL init error"), "{text}");
    }

    #[test]
    fn missing_trivy_exits_3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.txt");
        let a = args(&[
            "trivy",
            "app:1",
            "--trivy-bin",
            "/nonexistent/trivy",
            "--output",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(run(a, &quiet()).expect("runs"), 3);
    }

    #[test]
    fn usage_and_policy_errors_exit_2() {
        assert!(T::try_parse_from(["scan", "--report", "nmap:x"]).is_err());
        let err = run(args(&[]), &quiet()).unwrap_err();
        assert_eq!(code_of(&err), 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let pol = dir.path().join("p.toml");
        std::fs::write(
            &pol,
            "version = 1\n[[ignores]]\nrule = \"CVE-1\"\nreason = \"r\"\n",
        )
        .expect("write");
        let trivy = format!(
            "trivy:{}",
            fixtures().join("reports/trivy/no-results.json").display()
        );
        let err = run(
            args(&["--report", &trivy, "--policy", pol.to_str().expect("utf8")]),
            &quiet(),
        )
        .unwrap_err();
        assert_eq!(code_of(&err), 2);
        assert!(err.to_string().contains("ignores[0].expires"), "{err}");
    }
}
