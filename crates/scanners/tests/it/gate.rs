//! Gate behaviour: thresholds, overrides, fixed-only, ignores and their expiry, baselines,
//! skipped scanners, and the renderers' caps.

use chrono::NaiveDate;
use shipline_scanners::gate::{gate_at, Baseline, Outcome, State};
use shipline_scanners::policy::{Policy, PolicyFormat};
use shipline_scanners::render;
use shipline_scanners::{
    Finding, FindingKind, Location, Package, ScanReport, ScannerRun, Severity,
};

use crate::common::fixtures;
use crate::snapshots::{gate_day, ingest};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn toml(text: &str) -> Policy {
    Policy::parse(text, PolicyFormat::Toml, "test.toml").expect("policy parses")
}

fn vuln(rule: &str, sev: Severity, fixed: Option<&str>, path: &str) -> Finding {
    Finding {
        id: shipline_scanners::stable_id(&[rule, path]),
        tool: "trivy".into(),
        tool_version: None,
        kind: FindingKind::Vulnerability,
        rule_id: rule.into(),
        aliases: vec![],
        title: format!("{rule} title"),
        message: format!("{rule} message"),
        severity: sev,
        tool_severity: None,
        cvss: None,
        cwe: vec![],
        owasp: vec![],
        location: Location {
            path: Some(path.into()),
            ..Location::default()
        },
        package: Some(Package {
            name: "pkg".into(),
            fixed: fixed.map(str::to_string),
            ..Package::default()
        }),
        references: vec![],
        fix: None,
        suppression: None,
    }
}

fn report_of(findings: Vec<Finding>) -> ScanReport {
    let mut r = ScanReport::new();
    r.add(ScannerRun::ok("trivy", Some("0.58.1".into()), findings));
    r.sort();
    r
}

fn fixture_report(rel: &str) -> ScanReport {
    let mut r = ScanReport::new();
    for run in ingest(&fixtures().join(rel)) {
        r.add(run);
    }
    r.sort();
    r
}

#[test]
fn thresholds_and_exit_codes() {
    let r = report_of(vec![vuln("CVE-1", Severity::Medium, Some("2"), "a")]);
    let v = gate_at(&r, &Policy::default(), None, gate_day());
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(v.exit_code(), 0);
    let strict = toml("version = 1\n[fail_on]\nvulnerability = \"medium\"\n");
    let v = gate_at(&r, &strict, None, gate_day());
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.exit_code(), 1);
    let off = toml("version = 1\n[fail_on]\nvulnerability = \"none\"\n");
    assert_eq!(gate_at(&r, &off, None, gate_day()).outcome, Outcome::Pass);
}

#[test]
fn fixed_only_allows_unfixed() {
    let r = report_of(vec![
        vuln("CVE-1", Severity::Critical, None, "a"),
        vuln("CVE-2", Severity::Critical, Some(""), "a"),
    ]);
    let p = toml("version = 1\nfixed_only = true\n");
    let v = gate_at(&r, &p, None, gate_day());
    assert_eq!(v.outcome, Outcome::Pass);
    assert!(v
        .decisions
        .iter()
        .all(|d| d.note.as_deref() == Some("no fixed version (fixed_only)")));
    let v = gate_at(&r, &Policy::default(), None, gate_day());
    assert_eq!(v.outcome, Outcome::Fail);
}

#[test]
fn overrides_by_tool_and_path() {
    let r = report_of(vec![
        vuln("CVE-1", Severity::High, Some("2"), "tests/fixtures/a.json"),
        vuln("CVE-2", Severity::High, Some("2"), "src/b.json"),
    ]);
    let p = toml("version = 1\n[[overrides]]\npath = \"tests/**\"\nfail_on = \"none\"\n");
    let v = gate_at(&r, &p, None, gate_day());
    let blocking: Vec<&str> = r
        .findings
        .iter()
        .zip(&v.decisions)
        .filter(|(_, d)| d.state == State::Blocking)
        .map(|(f, _)| f.rule_id.as_str())
        .collect();
    assert_eq!(blocking, ["CVE-2"]);
    let p = toml("version = 1\n[[overrides]]\ntool = \"trivy\"\nfail_on = \"critical\"\n");
    assert_eq!(gate_at(&r, &p, None, gate_day()).outcome, Outcome::Pass);
}

#[test]
fn ignores_apply_until_they_expire_and_then_say_so() {
    let r = report_of(vec![vuln("CVE-1", Severity::Critical, Some("2"), "a")]);
    let p = toml(
        "version = 1\n[[ignores]]\nrule = \"CVE-1\"\nreason = \"not reachable\"\nexpires = \"2026-03-01\"\n",
    );
    let before = gate_at(&r, &p, None, day(2026, 3, 1));
    assert_eq!(before.outcome, Outcome::Pass);
    assert_eq!(before.decisions[0].state, State::Suppressed);
    assert!(before.expired_ignores.is_empty());

    let after = gate_at(&r, &p, None, day(2026, 3, 2));
    assert_eq!(after.outcome, Outcome::Fail);
    assert_eq!(after.expired_ignores.len(), 1);
    assert_eq!(after.counts.expired_ignores, 1);
    let table = render::render_table(&r, &after);
    assert!(table.contains("EXPIRED IGNORES"), "{table}");
    assert!(table.contains("CVE-1 expired 2026-03-01"), "{table}");
    let md = render::render_markdown(&r, &after);
    assert!(md.contains("Expired ignores no longer apply"), "{md}");
    let gh = render::render_github(&r, &after);
    assert!(
        gh.contains("::warning title=expired ignore CVE-1::"),
        "{gh}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render::render_json(&r, &after)).expect("json");
    assert_eq!(
        json["findings"][0]["gate"]["expired_ignore"]["expired"],
        "2026-03-01"
    );
}

#[test]
fn trivy_check_ids_match_in_both_styles() {
    let r = fixture_report("reports/trivy/config-secrets-licenses.json");
    let p = toml(
        "version = 1\n[[ignores]]\nrule = \"DS-0002\"\nreason = \"r\"\nexpires = \"2099-01-01\"\n",
    );
    let v = gate_at(&r, &p, None, gate_day());
    let ds = r
        .findings
        .iter()
        .position(|f| f.rule_id == "DS002")
        .expect("DS002 finding");
    assert_eq!(v.decisions[ds].state, State::Suppressed);
    assert!(r.findings[ds].aliases.contains(&"DS-0002".to_string()));
    // PASS is not a finding; EXCEPTION is a suppressed one.
    assert!(!r.findings.iter().any(|f| f.rule_id == "DS-0001"));
    let exc = r
        .findings
        .iter()
        .find(|f| f.rule_id == "DS-0013")
        .expect("exception");
    assert_eq!(
        exc.suppression.as_ref().map(|s| s.by.as_str()),
        Some("trivy-exception")
    );
    assert!(r.findings.iter().any(|f| f.kind == FindingKind::License));
    assert!(r.findings.iter().any(|f| f.kind == FindingKind::Secret));
}

#[test]
fn baseline_lets_only_new_findings_fail() {
    let old = report_of(vec![vuln("CVE-1", Severity::Critical, Some("2"), "a")]);
    let baseline = Baseline::from_report(&old);
    let text = baseline.to_json();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baseline.json");
    std::fs::write(&path, &text).expect("write");
    let loaded = Baseline::load(&path).expect("loads");
    assert_eq!(loaded, baseline);

    let v = gate_at(&old, &Policy::default(), Some(&loaded), gate_day());
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(
        v.decisions[0].suppression.as_ref().map(|s| s.by.as_str()),
        Some("baseline")
    );

    let newer = report_of(vec![
        vuln("CVE-1", Severity::Critical, Some("2"), "a"),
        vuln("CVE-9", Severity::High, Some("2"), "a"),
    ]);
    let v = gate_at(&newer, &Policy::default(), Some(&loaded), gate_day());
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.counts.blocking, 1);
    assert_eq!(v.counts.new, 1);
}

#[test]
fn allowed_skip_is_reported_as_skipped() {
    let mut r = ScanReport::new();
    r.add(ScannerRun::ok("semgrep", None, vec![]));
    r.add(ScannerRun::failed(
        "trivy",
        &std::io::Error::other("trivy: program not found"),
    ));
    let strict = gate_at(&r, &Policy::default(), None, gate_day());
    assert_eq!(strict.outcome, Outcome::Error);
    assert_eq!(strict.exit_code(), 3);

    let p = toml("version = 1\nallow_skip = [\"trivy\"]\n");
    let v = gate_at(&r, &p, None, gate_day());
    assert_eq!(v.outcome, Outcome::Pass);
    let s = v
        .scanners
        .iter()
        .find(|s| s.name == "trivy")
        .expect("trivy listed");
    assert_eq!(s.status.as_str(), "skipped");
    assert!(s
        .message
        .as_deref()
        .unwrap_or("")
        .contains("skipped (allowed by policy)"));
    let json: serde_json::Value = serde_json::from_str(&render::render_json(&r, &v)).expect("json");
    assert_eq!(json["scanners"][1]["status"], "skipped");
}

#[test]
fn required_or_absent_scanners_fail_closed() {
    let mut r = ScanReport::new();
    r.add(ScannerRun::ok("semgrep", None, vec![]));
    let p = toml("version = 1\nrequire = [\"trivy\", \"semgrep\"]\n");
    let v = gate_at(&r, &p, None, gate_day());
    assert_eq!(v.outcome, Outcome::Error);
    assert!(v.problems[0].contains("required scanner trivy did not run"));
    let empty = ScanReport::new();
    let v = gate_at(&empty, &Policy::default(), None, gate_day());
    assert_eq!(v.outcome, Outcome::Error);
    assert!(v.problems[0].contains("no scanner ran"));
}

#[test]
fn json_shape_is_exact() {
    let r = fixture_report("reports/trivy/image-mixed.json");
    let v = gate_at(&r, &Policy::default(), None, gate_day());
    let json: serde_json::Value = serde_json::from_str(&render::render_json(&r, &v)).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["counts", "findings", "scanners", "verdict", "version"]
    );
    assert_eq!(json["version"], 1);
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["scanners"][0]["status"], "ok");
}

#[test]
fn sarif_caps_results_per_run() {
    let many: Vec<Finding> = (0..5003)
        .map(|i| vuln(&format!("CVE-{i}"), Severity::High, Some("2"), "a"))
        .collect();
    let r = report_of(many);
    let v = gate_at(&r, &Policy::default(), None, gate_day());
    let sarif: serde_json::Value =
        serde_json::from_str(&render::render_sarif(&r, &v)).expect("sarif");
    let run = &sarif["runs"][0];
    assert_eq!(run["results"].as_array().map(Vec::len), Some(5000));
    assert_eq!(run["properties"]["shipline/omittedResults"], 3);
    let note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap_or("");
    assert!(note.contains("3 of 5003"), "{note}");
    assert!(run["results"][0]["partialFingerprints"]["shiplineFindingId/v1"].is_string());
    assert!(run["tool"]["driver"]["rules"][0]["properties"]["security-severity"].is_string());
}

#[test]
fn markdown_stays_under_one_mib() {
    let many: Vec<Finding> = (0..20_000)
        .map(|i| {
            vuln(
                &format!("CVE-{i}"),
                Severity::High,
                Some("2"),
                &format!("some/long/path/{i}/{}", "x".repeat(60)),
            )
        })
        .collect();
    let r = report_of(many);
    let v = gate_at(&r, &Policy::default(), None, gate_day());
    let md = render::render_markdown(&r, &v);
    assert!(md.len() <= render::MARKDOWN_LIMIT, "{} bytes", md.len());
    assert!(md.contains("more finding(s) not shown"));
    let small = render::render_markdown_capped(&r, &v, 4096);
    assert!(small.len() <= 4096);
}

mod props {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = shipline_scanners::trivy::parse(&bytes, "fuzz");
            let _ = shipline_scanners::semgrep::parse(&bytes, "fuzz", None);
            let _ = shipline_scanners::sarif::parse(&bytes, "fuzz", None);
        }

        #[test]
        fn trivy_json_shapes_never_panic(
            sv in 0u32..4,
            sev in "[A-Z]{0,9}",
            id in "[A-Za-z0-9-]{0,12}",
            status in "(FAIL|PASS|EXCEPTION|)",
        ) {
            let doc = format!(
                r#"{{"SchemaVersion":{sv},"ArtifactName":"a:{id}","Results":[{{"Target":"t","Class":"config",
                "Vulnerabilities":[{{"VulnerabilityID":"{id}","Severity":"{sev}"}}],
                "Misconfigurations":[{{"ID":"{id}","Severity":"{sev}","Status":"{status}"}}],
                "Secrets":[{{"RuleID":"{id}","Severity":"{sev}"}}]}}]}}"#
            );
            match shipline_scanners::trivy::parse(doc.as_bytes(), "prop") {
                Ok(run) => prop_assert_eq!(sv, 2, "only schema 2 parses: {:?}", run.status),
                Err(e) => prop_assert!(sv != 2, "{}", e),
            }
        }

        #[test]
        fn policy_parser_never_panics(text in "\\PC{0,200}") {
            let _ = shipline_scanners::policy::Policy::parse(&text, shipline_scanners::policy::PolicyFormat::Toml, "p");
            let _ = shipline_scanners::policy::Policy::parse(&text, shipline_scanners::policy::PolicyFormat::Yaml, "p");
        }
    }
}
