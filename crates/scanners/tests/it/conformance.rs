//! Every report of the shared Trivy and Semgrep corpora ingests with the counts of its
//! expected.json.

use std::collections::BTreeMap;

use serde_json::Value;
use shipline_scanners::{FindingKind, ScannerState};

use crate::common::corpus;

fn count_by<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.to_string()).or_insert(0) += 1;
    }
    m
}

fn expected_map(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn trivy_corpus_counts() {
    let Some(dir) = corpus("trivy") else { return };
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
            .expect("expected.json parses");
    let files = expected.as_object().expect("object");
    assert!(files.len() >= 10, "corpus has {} files", files.len());
    for (file, exp) in files {
        let run = shipline_scanners::trivy::ingest_file(&dir.join(file));
        assert_eq!(
            run.status.status,
            ScannerState::Ok,
            "{file}: {:?}",
            run.status.message
        );
        let f = &run.findings;
        let live = |k: FindingKind| {
            f.iter()
                .filter(move |x| x.kind == k && x.suppression.is_none())
        };

        let vulns = &exp["vulnerabilities"];
        assert_eq!(
            live(FindingKind::Vulnerability).count() as u64,
            vulns["total"].as_u64().unwrap_or(0),
            "{file}: vulnerabilities"
        );
        assert_eq!(
            count_by(
                live(FindingKind::Vulnerability).map(|x| x.tool_severity.as_deref().unwrap_or(""))
            ),
            expected_map(&vulns["by_severity"]),
            "{file}: vulnerabilities by severity"
        );
        assert_eq!(
            count_by(live(FindingKind::Vulnerability).map(|x| {
                x.package
                    .as_ref()
                    .and_then(|p| p.status.as_deref())
                    .unwrap_or("")
            })),
            expected_map(&vulns["by_status"]),
            "{file}: vulnerabilities by status"
        );
        let distinct: std::collections::BTreeSet<&str> = live(FindingKind::Vulnerability)
            .map(|x| x.rule_id.as_str())
            .collect();
        assert_eq!(
            distinct.len() as u64,
            vulns["distinct_vulnerability_ids"].as_u64().unwrap_or(0),
            "{file}: distinct ids"
        );

        let mis = &exp["misconfigurations"];
        assert_eq!(
            live(FindingKind::Misconfiguration).count() as u64,
            mis["fail_total"].as_u64().unwrap_or(0),
            "{file}: misconfigurations FAIL"
        );
        assert_eq!(
            count_by(
                live(FindingKind::Misconfiguration)
                    .map(|x| x.tool_severity.as_deref().unwrap_or(""))
            ),
            expected_map(&mis["fail_by_severity"]),
            "{file}: misconfigurations by severity"
        );
        let exceptions = f
            .iter()
            .filter(|x| {
                x.suppression
                    .as_ref()
                    .is_some_and(|s| s.by == "trivy-exception")
            })
            .count() as u64;
        assert_eq!(
            exceptions,
            mis["by_status"]["EXCEPTION"].as_u64().unwrap_or(0),
            "{file}: exceptions"
        );

        let sec = &exp["secrets"];
        assert_eq!(
            live(FindingKind::Secret).count() as u64,
            sec["total"].as_u64().unwrap_or(0),
            "{file}: secrets"
        );
        assert_eq!(
            count_by(live(FindingKind::Secret).map(|x| x.tool_severity.as_deref().unwrap_or(""))),
            expected_map(&sec["by_severity"]),
            "{file}: secrets by severity"
        );

        let modified = f
            .iter()
            .filter(|x| {
                x.suppression
                    .as_ref()
                    .is_some_and(|s| s.by.starts_with("trivy (") || s.by == "trivy")
            })
            .count() as u64;
        assert_eq!(
            modified,
            exp["experimental_modified_findings"].as_u64().unwrap_or(0),
            "{file}: modified findings"
        );

        if exp["results_absent"].as_bool() == Some(true) {
            assert!(f.is_empty(), "{file}: no Results means no findings");
        }
        // Ids are stable hashes, never empty.
        assert!(f.iter().all(|x| x.id.len() == 16), "{file}: ids");
    }
}

#[test]
fn semgrep_corpus_counts() {
    let Some(dir) = corpus("semgrep") else { return };
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
            .expect("expected.json parses");
    let files = expected.as_object().expect("object");
    assert!(files.len() >= 5);
    for (file, exp) in files {
        let path = dir.join(file);
        let runs = match exp["format"].as_str() {
            Some("semgrep-json") => vec![shipline_scanners::semgrep::ingest_file(&path, None)],
            Some("sarif") => shipline_scanners::sarif::ingest_file(&path, None),
            other => panic!("{file}: unknown format {other:?}"),
        };
        let errors_level_error = exp["errors_by_level"]["error"].as_u64().unwrap_or(0);
        for r in &runs {
            if errors_level_error > 0 {
                assert_eq!(r.status.status, ScannerState::Error, "{file}");
            } else {
                assert_eq!(
                    r.status.status,
                    ScannerState::Ok,
                    "{file}: {:?}",
                    r.status.message
                );
            }
            assert_eq!(r.status.name, "semgrep", "{file}: tool name");
        }
        let findings: Vec<_> = runs.iter().flat_map(|r| r.findings.iter()).collect();
        assert_eq!(
            findings.len() as u64,
            exp["results_total"].as_u64().unwrap_or(0),
            "{file}: results"
        );
        assert_eq!(
            count_by(
                findings
                    .iter()
                    .map(|x| x.tool_severity.as_deref().unwrap_or(""))
            ),
            expected_map(&exp["results_by_severity"]),
            "{file}: by severity"
        );
        assert_eq!(
            count_by(
                findings
                    .iter()
                    .filter(|x| x.suppression.is_none())
                    .map(|x| x.tool_severity.as_deref().unwrap_or(""))
            ),
            expected_map(&exp["results_by_severity_excluding_suppressed"]),
            "{file}: by severity excluding suppressed"
        );
        let suppressed = findings.iter().filter(|x| x.suppression.is_some()).count() as u64;
        assert_eq!(
            suppressed,
            exp["suppressed_count"].as_u64().unwrap_or(0),
            "{file}: suppressed"
        );
        let warnings: usize = runs.iter().map(|r| r.status.warnings.len()).sum();
        assert_eq!(
            warnings as u64 + errors_level_error,
            exp["errors_total"].as_u64().unwrap_or(0),
            "{file}: errors"
        );
        if let Some(n) = exp["distinct_check_ids"].as_u64() {
            let ids: std::collections::BTreeSet<&str> =
                findings.iter().map(|x| x.rule_id.as_str()).collect();
            assert_eq!(ids.len() as u64, n, "{file}: distinct check ids");
        }
        assert!(findings.iter().all(|x| x.kind == FindingKind::Sast));
    }
}
