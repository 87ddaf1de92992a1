//! Every output format, snapshot-tested over every report in fixtures/scanners/reports.

use std::path::Path;

use chrono::NaiveDate;
use shipline_scanners::gate::{gate_at, Verdict};
use shipline_scanners::policy::Policy;
use shipline_scanners::render;
use shipline_scanners::{ScanReport, ScannerRun};

use crate::common::{fixtures, workspace};

/// The day the snapshot policy is evaluated on.
pub fn gate_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).expect("valid date")
}

/// Ingests one fixture report by its directory (`trivy`, `semgrep`, `sarif`).
pub fn ingest(path: &Path) -> Vec<ScannerRun> {
    let kind = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let rel = path
        .strip_prefix(workspace())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string());
    let runs = match kind {
        "trivy" => vec![shipline_scanners::trivy::ingest_file(path)],
        "semgrep" => vec![shipline_scanners::semgrep::ingest_file(path, None)],
        "sarif" => shipline_scanners::sarif::ingest_file(path, None),
        other => panic!("unknown report directory {other}"),
    };
    runs.into_iter()
        .map(|r| r.with_source(rel.clone()))
        .collect()
}

fn policy() -> Policy {
    Policy::from_path(&fixtures().join("policy.toml")).expect("fixture policy loads")
}

fn all_formats(report: &ScanReport, verdict: &Verdict) -> [(&'static str, String); 5] {
    [
        ("table", render::render_table(report, verdict)),
        ("json", render::render_json(report, verdict)),
        ("markdown", render::render_markdown(report, verdict)),
        ("github", render::render_github(report, verdict)),
        ("sarif", render::render_sarif(report, verdict)),
    ]
}

#[test]
fn every_format_over_every_report() {
    let policy = policy();
    insta::glob!("../../../../fixtures/scanners", "reports/*/*", |path| {
        let mut report = ScanReport::new();
        for r in ingest(path) {
            report.add(r);
        }
        report.sort();
        let verdict = gate_at(&report, &policy, None, gate_day());
        for (name, out) in all_formats(&report, &verdict) {
            if name == "json" || name == "sarif" {
                serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON");
            }
            // report sources are absolute paths: keep the machine's out of the snapshots
            let out = out.replace(&workspace_prefix(), "<workspace>/");
            insta::assert_snapshot!(name, out);
        }
    });
}

/// The absolute workspace root, with a trailing slash, as it appears in report sources.
fn workspace_prefix() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    format!("{}/", root.display())
}

#[test]
fn every_format_over_all_reports_combined() {
    let policy = policy();
    let mut report = ScanReport::new();
    let mut files: Vec<_> = ["trivy", "semgrep", "sarif"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(fixtures().join("reports").join(d))
                .expect("fixture dir")
                .map(|e| e.expect("entry").path())
        })
        .collect();
    files.sort();
    for f in files {
        for r in ingest(&f) {
            report.add(r);
        }
    }
    report.sort();
    let verdict = gate_at(&report, &policy, None, gate_day());
    for (name, out) in all_formats(&report, &verdict) {
        insta::assert_snapshot!(format!("combined_{name}"), out);
    }
}
