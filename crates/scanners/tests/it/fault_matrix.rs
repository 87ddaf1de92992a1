//! Fail closed: every way a scanner can break ends in verdict `error` (exit 3) with a clear
//! message. Trivy cannot be installed here, so a fake `trivy` shell script stands in for it.

use std::path::Path;
use std::time::Duration;

use shipline_scanners::gate::{gate_at, Outcome};
use shipline_scanners::policy::Policy;
use shipline_scanners::semgrep::SemgrepOptions;
use shipline_scanners::trivy::{TrivyOptions, TrivyTarget};
use shipline_scanners::{ScanReport, ScannerRun, ScannerState};

use crate::common::{fake_tool, fixtures};
use crate::snapshots::gate_day;

const VALID: &str =
    r#"{"SchemaVersion":2,"ArtifactName":"app:1","ArtifactType":"container_image","Results":[]}"#;

fn trivy_with(dir: &Path, body: &str) -> ScannerRun {
    let bin = fake_tool(dir, "trivy", body);
    let mut opts = TrivyOptions::new(TrivyTarget::Image("app:1".into()));
    opts.binary = bin;
    opts.timeout = Duration::from_secs(20);
    shipline_scanners::trivy::run(&opts)
}

fn assert_fails_closed(run: ScannerRun, expect: &str) {
    assert_eq!(run.status.status, ScannerState::Error, "{:?}", run.status);
    let msg = run.status.message.clone().unwrap_or_default();
    assert!(msg.contains(expect), "message {msg:?} lacks {expect:?}");
    let mut report = ScanReport::new();
    report.add(run);
    let verdict = gate_at(&report, &Policy::default(), None, gate_day());
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(verdict.exit_code(), 3);
    assert!(
        verdict.problems.iter().any(|p| p.contains(expect)),
        "{:?}",
        verdict.problems
    );
    let table = shipline_scanners::render::render_table(&report, &verdict);
    assert!(table.starts_with("shipline scan: ERROR"), "{table}");
}

#[test]
fn missing_binary() {
    let mut opts = TrivyOptions::new(TrivyTarget::Image("app:1".into()));
    opts.binary = "/nonexistent/shipline-test/trivy".into();
    assert_fails_closed(shipline_scanners::trivy::run(&opts), "program not found");
    let mut opts = TrivyOptions::new(TrivyTarget::Image("app:1".into()));
    opts.binary = "shipline-test-no-such-trivy".into();
    assert_fails_closed(shipline_scanners::trivy::run(&opts), "program not found");
}

#[test]
fn crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_fails_closed(
        trivy_with(
            dir.path(),
            "echo 'panic: runtime error: invalid memory address' >&2\nexit 2",
        ),
        "exited with exit code 2; stderr: panic: runtime error",
    );
    assert_fails_closed(
        trivy_with(dir.path(), "kill -SEGV $$"),
        "exited with signal 11",
    );
}

#[test]
fn timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = fake_tool(dir.path(), "trivy", "sleep 30");
    let mut opts = TrivyOptions::new(TrivyTarget::Image("app:1".into()));
    opts.binary = bin;
    opts.timeout = Duration::from_millis(500);
    assert_fails_closed(shipline_scanners::trivy::run(&opts), "timed out after 0.5s");
}

#[test]
fn empty_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_fails_closed(
        trivy_with(dir.path(), "exit 0"),
        "printed nothing on stdout",
    );
    assert_fails_closed(
        trivy_with(dir.path(), "echo '   '"),
        "printed nothing on stdout",
    );
}

#[test]
fn truncated_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let half = &VALID[..VALID.len() / 2];
    assert_fails_closed(
        trivy_with(dir.path(), &format!("printf '%s' '{half}'")),
        "failed to parse trivy report stdout: invalid JSON: EOF while parsing",
    );
}

#[test]
fn errors_at_level_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Trivy logs an ERROR and still exits 0 with a report (trivy#3487).
    assert_fails_closed(
        trivy_with(
            dir.path(),
            &format!("printf '2024-05-01T10:00:00Z\\tERROR\\tfailed to analyze layer\\n' >&2\necho '{VALID}'"),
        ),
        "trivy reported 1 error(s)",
    );
    // Semgrep reports errors[] at level error and exits 0 (semgrep#7891).
    let sg = fake_tool(
        dir.path(),
        "semgrep",
        r#"echo '{"version":"1.99.0","results":[],"errors":[{"level":"error","type":"InvalidRuleSchemaError","message":"rule x is invalid"}],"paths":{"scanned":[]}}'"#,
    );
    let mut opts =
        SemgrepOptions::new(dir.path(), vec![fixtures().join("semgrep-rules/rules.yml")]);
    opts.binary = sg;
    assert_fails_closed(
        shipline_scanners::semgrep::run(&opts),
        "semgrep reported 1 error(s): InvalidRuleSchemaError: rule x is invalid",
    );
}

#[test]
fn unknown_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_fails_closed(
        trivy_with(
            dir.path(),
            r#"echo '{"SchemaVersion":3,"Results":{"new":"shape"}}'"#,
        ),
        "unsupported schema version 3 (expected 2)",
    );
    assert_fails_closed(
        trivy_with(dir.path(), r#"echo '{"Results":[]}'"#),
        "unsupported schema version missing (expected 2)",
    );
}

#[test]
fn a_clean_fake_run_passes_and_gets_offline_args_and_explicit_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("args.txt");
    let bin = fake_tool(
        dir.path(),
        "trivy",
        &format!(
            "for a in \"$@\"; do echo \"$a\"; done > '{}'\necho \"ENV:$TRIVY_USERNAME:${{SHIPLINE_LEAK:-none}}\" >> '{}'\necho '{VALID}'",
            log.display(),
            log.display()
        ),
    );
    let mut opts = TrivyOptions::new(TrivyTarget::Image("registry.test/app:1".into()));
    opts.binary = bin;
    opts.offline = true;
    opts.cache_dir = Some(dir.path().join("cache"));
    opts.timeout = Duration::from_secs(30);
    opts.env = vec![("TRIVY_USERNAME".into(), "ci".into())];
    let run = shipline_scanners::trivy::run(&opts);
    assert_eq!(run.status.status, ScannerState::Ok, "{:?}", run.status);
    let args = std::fs::read_to_string(&log).expect("args logged");
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(
        &lines[..7],
        [
            "image",
            "--format",
            "json",
            "--exit-code",
            "0",
            "--quiet",
            "--timeout"
        ]
    );
    for flag in shipline_scanners::trivy::OFFLINE_FLAGS {
        assert!(lines.contains(flag), "missing {flag}");
    }
    assert!(lines.contains(&"--cache-dir"));
    assert_eq!(lines[lines.len() - 2], "registry.test/app:1");
    assert_eq!(lines[lines.len() - 1], "ENV:ci:none");
    let mut report = ScanReport::new();
    report.add(run);
    assert_eq!(
        gate_at(&report, &Policy::default(), None, gate_day()).outcome,
        Outcome::Pass
    );
}

#[test]
fn report_files_fail_closed_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let cases = [
        (write("empty.json", "  \n"), "is empty"),
        (
            write("truncated.json", &VALID[..VALID.len() / 2]),
            "invalid JSON",
        ),
        (
            write("v3.json", r#"{"SchemaVersion":3,"Results":{"x":1}}"#),
            "unsupported schema version 3",
        ),
        (dir.path().join("absent.json"), "failed to read report"),
    ];
    for (path, expect) in cases {
        assert_fails_closed(shipline_scanners::trivy::ingest_file(&path), expect);
    }
    let sarif = write(
        "bad.sarif",
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"bandit"}},"invocations":[{"executionSuccessful":false}],"results":[]}]}"#,
    );
    let runs = shipline_scanners::sarif::ingest_file(&sarif, None);
    assert_fails_closed(
        runs.into_iter().next().expect("one run"),
        "executionSuccessful: false",
    );
    let semgrep = write("trunc-semgrep.json", r#"{"results":[{"check_id""#);
    assert_fails_closed(
        shipline_scanners::semgrep::ingest_file(&semgrep, None),
        "invalid JSON",
    );
}
