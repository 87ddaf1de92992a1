//! Real semgrep and zizmor from the test venv, gated.

use std::time::Duration;

use shipline_scanners::gate::{gate_at, Outcome, State};
use shipline_scanners::policy::{Policy, PolicyFormat};
use shipline_scanners::process::ProcessSpec;
use shipline_scanners::semgrep::SemgrepOptions;
use shipline_scanners::{ScanReport, ScannerState, Severity};

use crate::common::{fixtures, venv_tool};
use crate::snapshots::gate_day;

#[test]
fn real_semgrep_with_local_rules_is_gated() {
    let mut opts = SemgrepOptions::new(
        fixtures().join("semgrep-project"),
        vec![fixtures().join("semgrep-rules/rules.yml")],
    );
    opts.binary = venv_tool("semgrep");
    opts.timeout = Duration::from_secs(300);
    let run = shipline_scanners::semgrep::run(&opts);
    assert_eq!(run.status.status, ScannerState::Ok, "{:?}", run.status);
    assert!(run.status.version.is_some());
    let rules: Vec<&str> = run
        .findings
        .iter()
        .map(|f| f.rule_id.rsplit('.').next().unwrap_or(""))
        .collect();
    assert!(rules.contains(&"eval-used"), "{rules:?}");
    assert!(rules.contains(&"subprocess-shell"), "{rules:?}");
    assert!(rules.contains(&"assert-used"), "{rules:?}");
    // The nosemgrep line is not reported as a live finding.
    assert!(!run
        .findings
        .iter()
        .any(|f| f.location.start_line == Some(13) && f.suppression.is_none()));
    // Snippets were read from the file, not from "requires login".
    let eval = run
        .findings
        .iter()
        .find(|f| f.rule_id.ends_with("eval-used"))
        .expect("eval");
    assert_eq!(eval.severity, Severity::High);
    assert_eq!(eval.cwe, ["CWE-95"]);
    // ... which is what its identity is made of: rule + path + hash of the code at its lines
    let path = eval.location.path.clone().expect("path");
    let line = eval.location.start_line.expect("line");
    let code = shipline_scanners::semgrep::read_snippet(
        &fixtures().join("semgrep-project"),
        &path,
        line,
        eval.location.end_line.unwrap_or(line),
    )
    .expect("the flagged code");
    assert!(code.contains("eval(expr)"), "{code}");
    assert_eq!(
        eval.id,
        shipline_scanners::stable_id(&[
            "semgrep",
            "sast",
            &eval.rule_id,
            &path,
            &shipline_scanners::semgrep::snippet_hash(&code),
        ])
    );

    let mut report = ScanReport::new();
    report.add(run);
    report.sort();
    let v = gate_at(&report, &Policy::default(), None, gate_day());
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.exit_code(), 1);
    assert_eq!(
        v.counts.blocking, 1,
        "only the ERROR rule is over the default high threshold"
    );

    let lenient = Policy::parse(
        "version: 1\nfail_on:\n  sast: critical\n",
        PolicyFormat::Yaml,
        "p.yaml",
    )
    .expect("policy");
    assert_eq!(
        gate_at(&report, &lenient, None, gate_day()).outcome,
        Outcome::Pass
    );
}

#[test]
fn real_zizmor_sarif_is_imported_and_gated() {
    let root = fixtures().join("zizmor-project");
    let spec = ProcessSpec::new(venv_tool("zizmor"))
        .args(["--offline", "--format", "sarif", "."])
        .cwd(&root)
        .timeout(Duration::from_secs(120));
    let runs = shipline_scanners::sarif::run_tool("zizmor", &spec, &[0], Some(&root));
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status.status, ScannerState::Ok, "{:?}", run.status);
    assert_eq!(run.status.name, "zizmor");
    let ids: Vec<&str> = run.findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert!(ids.contains(&"zizmor/template-injection"), "{ids:?}");
    assert!(ids.contains(&"zizmor/dangerous-triggers"), "{ids:?}");
    // zizmor reports paths relative to the git root.
    assert!(run.findings.iter().all(|f| f
        .location
        .path
        .as_deref()
        .is_some_and(|p| p.ends_with(".github/workflows/ci.yml"))));

    let mut report = ScanReport::new();
    for r in runs {
        report.add(r);
    }
    report.sort();
    let v = gate_at(&report, &Policy::default(), None, gate_day());
    assert_eq!(v.outcome, Outcome::Fail);
    let blocking: Vec<&str> = report
        .findings
        .iter()
        .zip(&v.decisions)
        .filter(|(_, d)| d.state == State::Blocking)
        .map(|(f, _)| f.rule_id.as_str())
        .collect();
    assert!(
        blocking.contains(&"zizmor/template-injection"),
        "{blocking:?}"
    );
    // GitHub annotations point at the workflow file.
    let gh = shipline_scanners::render::render_github(&report, &v);
    assert!(gh.contains(".github/workflows/ci.yml,line="), "{gh}");
    assert!(gh.lines().any(|l| l.starts_with("::error file=")), "{gh}");
}

#[test]
fn sarif_tool_failure_fails_closed() {
    let root = fixtures().join("zizmor-project");
    let spec = ProcessSpec::new(venv_tool("zizmor"))
        .args(["--offline", "--format", "sarif", "no-such-dir-here"])
        .cwd(&root)
        .timeout(Duration::from_secs(120));
    let runs = shipline_scanners::sarif::run_tool("zizmor", &spec, &[0], Some(&root));
    assert_eq!(
        runs[0].status.status,
        ScannerState::Error,
        "{:?}",
        runs[0].status
    );
    let mut report = ScanReport::new();
    for r in runs {
        report.add(r);
    }
    assert_eq!(
        gate_at(&report, &Policy::default(), None, gate_day()).exit_code(),
        3
    );
}
