//! Integration tests of the compose/Traefik audit over `fixtures/audit`.
//!
//! Every fixture directory holds a `case.toml` that says which stacks to audit:
//!
//! ```toml
//! traefik = ["traefik"]          # Traefik config files or directories (optional)
//! behind_cdn = false             # optional
//! [env]                          # variables the caller passes (like CI secrets)
//! DB_PASSWORD = "from-ci"
//! [[stack]]
//! name = "dev"
//! files = ["compose.yaml", "compose.dev.yaml"]
//! env_file = ".env.dev"          # optional
//! profile = "dev"                # optional
//! project = "hestami-dev"        # optional
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shipline_scanners::audit::{
    audit_stacks, AuditError, AuditOptions, AuditReport, Profile, StackInput, RULES,
};
use shipline_scanners::Finding;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    traefik: Vec<String>,
    #[serde(default)]
    behind_cdn: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    stack: Vec<CaseStack>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseStack {
    name: String,
    files: Vec<String>,
    env_file: Option<String>,
    profile: Option<String>,
    project: Option<String>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audit")
}

fn run_case(dir: &Path) -> Result<AuditReport, AuditError> {
    let text = std::fs::read_to_string(dir.join("case.toml")).expect("case.toml readable");
    let case: Case = toml::from_str(&text).expect("case.toml valid");
    let stacks: Vec<StackInput> = case
        .stack
        .iter()
        .map(|s| StackInput {
            name: s.name.clone(),
            compose_files: s.files.iter().map(|f| dir.join(f)).collect(),
            env_file: s.env_file.as_ref().map(|f| dir.join(f)),
            profile: s.profile.as_deref().and_then(Profile::parse),
            project: s.project.clone(),
        })
        .collect();
    let traefik: Vec<PathBuf> = case.traefik.iter().map(|t| dir.join(t)).collect();
    let options = AuditOptions {
        environment: case.env,
        behind_cdn: case.behind_cdn,
        base_dir: Some(dir.to_path_buf()),
    };
    audit_stacks(&stacks, &traefik, &options)
}

/// One line per finding: rule, severity, file:line, subject, message.
fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{} {} {}:{} [{}] {}\n",
            f.rule_id,
            f.severity.as_str(),
            f.location.path.as_deref().unwrap_or("?"),
            f.location.start_line.unwrap_or(0),
            f.location.target.as_deref().unwrap_or(""),
            f.message
        ));
    }
    if out.is_empty() {
        out.push_str("(no findings)\n");
    }
    out
}

fn error_text(e: &AuditError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!("\n  caused by: {c}"));
        src = c.source();
    }
    s
}

#[test]
fn every_rule_has_a_bad_and_a_good_fixture() {
    for rule in RULES {
        for kind in ["bad", "good"] {
            let case = fixtures()
                .join("rules")
                .join(rule.id)
                .join(kind)
                .join("case.toml");
            assert!(case.is_file(), "missing fixture {}", case.display());
        }
    }
}

#[test]
fn docs_describe_every_rule() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit-rules.md"),
    )
    .expect("docs/audit-rules.md exists");
    for rule in RULES {
        let heading = format!("### {} {}", rule.id, rule.name);
        assert!(docs.contains(&heading), "docs lack `{heading}`");
        let severity = format!("**Severity:** {}.", rule.severity.as_str());
        let section = docs
            .split(&heading)
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .unwrap_or("");
        assert!(section.contains(&severity), "{}: severity differs", rule.id);
        assert!(section.contains(rule.fix), "{}: fix hint differs", rule.id);
        assert!(
            section.contains("Bad") && section.contains("Good"),
            "{}: examples",
            rule.id
        );
    }
}

#[test]
fn rule_fixtures() {
    insta::glob!(
        "../../../../fixtures/audit",
        "rules/*/*/case.toml",
        |path| {
            let dir = path.parent().expect("case dir");
            let kind = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let rule = dir
                .parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .unwrap_or("");
            let report = run_case(dir).unwrap_or_else(|e| panic!("{}: {}", dir.display(), e));
            let hits = report.findings.iter().filter(|f| f.rule_id == rule).count();
            match kind {
                "bad" => assert!(hits >= 1, "{rule}/bad: rule not reported"),
                "good" => assert_eq!(hits, 0, "{rule}/good: rule reported"),
                other => panic!("unexpected fixture kind {other}"),
            }
            insta::assert_snapshot!(render(&report.findings));
        }
    );
}

#[test]
fn compose_semantics() {
    // Merging, interpolation and Traefik sources: the snapshot shows where each finding
    // points after the merge, and the warnings.
    insta::glob!(
        "../../../../fixtures/audit",
        "compose/*/case.toml",
        |path| {
            let dir = path.parent().expect("case dir");
            let report = run_case(dir).unwrap_or_else(|e| panic!("{}: {}", dir.display(), e));
            let mut text = render(&report.findings);
            for w in &report.warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            insta::assert_snapshot!(text);
        }
    );
}

#[test]
fn error_fixtures() {
    insta::glob!("../../../../fixtures/audit", "errors/*/case.toml", |path| {
        let dir = path.parent().expect("case dir");
        let err = run_case(dir).expect_err("fixture must fail");
        insta::assert_snapshot!(error_text(&err));
    });
}

fn stack_env() -> BTreeMap<String, String> {
    // Supplied by CI as secrets; the compose files require them with `${DB_PASSWORD:?...}`.
    [("DB_PASSWORD".to_string(), "from-ci-secret".to_string())]
        .into_iter()
        .collect()
}

#[test]
fn reference_stack_audits_clean() {
    let report = run_case(&fixtures().join("stack/clean")).expect("audit runs");
    assert_eq!(render(&report.findings), "(no findings)\n");
    assert!(stack_env().contains_key("DB_PASSWORD"));
}

#[test]
fn planted_stack_reports_each_mistake_once() {
    let report = run_case(&fixtures().join("stack/planted")).expect("audit runs");
    // (rule, file:line) of each planted mistake; see fixtures/audit/stack/planted/PLANTED.md.
    let expected: &[&str] = &[
        "SA101", "SA102", "SA103", "SA201", "SA203", "SA205", "SA301", "SA302", "SA304", "SA305",
        "SA401", "SA402", "SA501", "SA502", "SA503", "SA701",
    ];
    let mut got: Vec<&str> = report.findings.iter().map(|f| f.rule_id.as_str()).collect();
    got.sort();
    assert_eq!(got, expected, "\n{}", render(&report.findings));
    insta::assert_snapshot!(render(&report.findings));
}

#[test]
fn three_stacks_report_each_cross_stack_collision_once() {
    let report = run_case(&fixtures().join("cross/three")).expect("audit runs");
    let cross: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| ["SA306", "SA307", "SA702", "SA703"].contains(&f.rule_id.as_str()))
        .collect();
    let mut rules: Vec<&str> = cross.iter().map(|f| f.rule_id.as_str()).collect();
    rules.sort();
    assert_eq!(
        rules,
        ["SA306", "SA307", "SA702", "SA703"],
        "\n{}",
        render(&report.findings)
    );
    insta::assert_snapshot!(render(&report.findings));

    // Audited one at a time, the same stacks have no cross-stack findings.
    let dir = fixtures().join("cross/three");
    for name in ["alpha", "beta", "gamma"] {
        let stacks = [StackInput {
            name: name.into(),
            compose_files: vec![dir.join(format!("{name}.yaml"))],
            ..StackInput::default()
        }];
        let r = audit_stacks(&stacks, &[], &AuditOptions::default()).expect("audit runs");
        assert!(
            r.findings
                .iter()
                .all(|f| !["SA306", "SA702", "SA703"].contains(&f.rule_id.as_str())),
            "{name}: {}",
            render(&r.findings)
        );
    }
}

#[test]
fn a_mistake_in_a_shared_file_is_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let common = dir.path().join("compose.common.yaml");
    std::fs::write(
        &common,
        "services:\n  agent:\n    image: ghcr.io/example/agent:1.0.0\n    privileged: true\n",
    )
    .expect("write");
    let stacks: Vec<StackInput> = ["dev", "prod"]
        .iter()
        .map(|name| {
            let own = dir.path().join(format!("compose.{name}.yaml"));
            std::fs::write(&own, "services:\n  agent:\n    restart: always\n").expect("write");
            StackInput {
                name: name.to_string(),
                compose_files: vec![common.clone(), own],
                project: Some(format!("app-{name}")),
                ..StackInput::default()
            }
        })
        .collect();
    let report = audit_stacks(&stacks, &[], &AuditOptions::default()).expect("audit runs");
    let privileged: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == "SA601")
        .collect();
    assert_eq!(privileged.len(), 1, "{}", render(&report.findings));
    assert_eq!(
        privileged[0].location.artifact.as_deref(),
        Some("dev, prod")
    );
}

#[test]
fn ids_are_stable_and_unique() {
    let a = run_case(&fixtures().join("stack/planted")).expect("audit runs");
    let b = run_case(&fixtures().join("stack/planted")).expect("audit runs");
    let ids: Vec<&str> = a.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        b.findings.iter().map(|f| f.id.as_str()).collect::<Vec<_>>()
    );
    let mut dedup = ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), ids.len());
    assert!(a.findings.iter().all(|f| f.tool == "shipline-audit"));
}

#[test]
fn secrets_never_appear_in_findings() {
    let report = run_case(&fixtures().join("stack/planted")).expect("audit runs");
    let json = serde_json::to_string(&report.findings).expect("serializes");
    for secret in [
        "s3cr3t-django-key-do-not-ship",
        "changeme",
        "from-ci-secret",
    ] {
        assert!(!json.contains(secret), "{secret} leaked into findings");
    }
}

mod random {
    use super::*;
    use proptest::prelude::*;

    fn yaml_fragment() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "services:",
            "  api:",
            "    image: x",
            "    ports:",
            "      - \"80:80\"",
            "- a",
            "  - b: c",
            "x: [1, 2",
            "x: {a: 1}",
            "&a x",
            "*a",
            "<<: *a",
            "? k",
            ": v",
            "\"",
            "'",
            "${A:-b}",
            "${A",
            "$$",
            "!reset []",
            "!!binary x",
            "---",
            "...",
            "\t",
            "  ",
            "networks:",
            "    networks: [n]",
            "labels:",
            "    labels:",
            "      traefik.http.routers.r.rule: Host(`x`)",
            "volumes:",
            "    volumes: [/var/run/docker.sock:/s]",
            "x-a: &x",
            "  k: v",
            "#c",
        ]);
        prop::collection::vec(
            prop_oneof![atoms.prop_map(str::to_string), "[ -~]{0,12}"],
            0..14,
        )
        .prop_map(|lines| lines.join("\n"))
    }

    fn toml_fragment() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "[http.routers.r]",
            "rule = \"Host(`x`)\"",
            "middlewares = [\"a@file\", \"b\"]",
            "[http.middlewares.a.basicAuth]",
            "users = [\"u:p\"]",
            "[entryPoints.web]",
            "address = \":80\"",
            "[providers.docker]",
            "exposedByDefault = true",
            "[api]",
            "insecure = true",
            "[[http.routers.r.tls.domains]]",
            "main = \"x\"",
            "[routers.x]",
            "a = {b = 1, c = [1, {d = 2}]}",
            "x = 1979-05-27T07:32:00Z",
            "=",
            "[",
            "\"",
            "'''",
        ]);
        prop::collection::vec(
            prop_oneof![atoms.prop_map(str::to_string), "[ -~]{0,12}"],
            0..14,
        )
        .prop_map(|lines| lines.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_yaml_never_panics(src in yaml_fragment()) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("compose.yaml");
            std::fs::write(&path, &src).expect("write");
            let stacks = [StackInput {
                name: "p".into(),
                compose_files: vec![path.clone()],
                ..StackInput::default()
            }];
            match audit_stacks(&stacks, &[path], &AuditOptions::default()) {
                Ok(_) => {}
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("compose.yaml"), "error does not name the file: {}", text);
                }
            }
        }

        #[test]
        fn random_traefik_toml_never_panics(src in toml_fragment()) {
            let dir = tempfile::tempdir().expect("tempdir");
            let compose = dir.path().join("compose.yaml");
            std::fs::write(&compose, "services:\n  a:\n    image: x:1\n").expect("write");
            let traefik = dir.path().join("traefik.toml");
            std::fs::write(&traefik, &src).expect("write");
            let stacks = [StackInput {
                name: "p".into(),
                compose_files: vec![compose],
                ..StackInput::default()
            }];
            if let Err(e) = audit_stacks(&stacks, &[traefik], &AuditOptions::default()) {
                let text = e.to_string();
                prop_assert!(text.contains("traefik.toml"), "error does not name the file: {}", text);
            }
        }
    }
}
