//! Plans for branches and the Mermaid graph of the example.

use shipline_core::config::Config;
use shipline_core::plan::{self, PlanError, StageKind};

use crate::workspace;

fn example() -> Config {
    Config::load(&workspace().join("examples/hestami/shipline.toml")).unwrap()
}

fn kinds(p: &plan::Plan) -> Vec<StageKind> {
    let mut k: Vec<StageKind> = p.stages.iter().map(|s| s.kind).collect();
    k.dedup();
    k
}

#[test]
fn dev_plan_has_no_approval_and_main_adds_it_before_deploy() {
    let config = example();
    let dev = plan::plan_for_branch(&config, "dev").unwrap();
    assert_eq!(dev.environment.as_deref(), Some("dev"));
    assert_eq!(
        kinds(&dev),
        [
            StageKind::Build,
            StageKind::Test,
            StageKind::Scan,
            StageKind::Push,
            StageKind::Deploy
        ]
    );
    let main = plan::plan_for_branch(&config, "main").unwrap();
    assert_eq!(main.environment.as_deref(), Some("prod"));
    assert_eq!(
        kinds(&main),
        [
            StageKind::Build,
            StageKind::Test,
            StageKind::Scan,
            StageKind::Push,
            StageKind::Approve,
            StageKind::Deploy
        ]
    );
    let deploy = main.stages.last().unwrap();
    assert_eq!(deploy.id, "deploy:prod");
    assert_eq!(deploy.needs, ["approve"]);
    // scanners are independent of each other: they can run concurrently
    let semgrep = main.stages.iter().find(|s| s.id == "scan:semgrep").unwrap();
    assert!(semgrep.needs.is_empty());
    let gate = main.stages.iter().find(|s| s.id == "gate").unwrap();
    assert!(gate.needs.contains(&"scan:trivy".to_string()));
    assert!(gate.needs.contains(&"test".to_string()));
}

#[test]
fn unknown_branch_names_the_configured_ones() {
    let err = plan::plan_for_branch(&example(), "feature/x").unwrap_err();
    assert_eq!(
        err,
        PlanError::UnknownBranch {
            branch: "feature/x".into(),
            configured: vec!["dev".into(), "main".into()]
        }
    );
    assert!(err.to_string().contains("dev, main"));
}

#[test]
fn local_plan_never_pushes_or_deploys() {
    let p = plan::plan_local(&example());
    assert!(p.local);
    assert!(p
        .stages
        .iter()
        .all(|s| matches!(s.kind, StageKind::Build | StageKind::Test | StageKind::Scan)));
}

#[test]
fn promotion_plans_no_rebuild() {
    let path = workspace().join("examples/hestami/shipline.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("# promote_from = \"dev\"", "promote_from = \"dev\"");
    let config = Config::from_str_at(&text, &path).unwrap();
    let p = plan::plan_for_branch(&config, "main").unwrap();
    let ids: Vec<&str> = p.stages.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["promote", "approve", "deploy:prod"]);
}

#[test]
fn cycles_and_unknown_needs_are_rejected() {
    let s = |id: &str, needs: &[&str]| plan::PlannedStage {
        id: id.into(),
        kind: StageKind::Custom,
        needs: needs.iter().map(|n| n.to_string()).collect(),
        description: String::new(),
    };
    assert!(matches!(
        plan::check_dag(&[s("a", &["b"]), s("b", &["a"])]),
        Err(PlanError::Cycle { .. })
    ));
    assert!(matches!(
        plan::check_dag(&[s("a", &["zzz"])]),
        Err(PlanError::UnknownNeed { .. })
    ));
    assert!(matches!(
        plan::check_dag(&[s("a", &[]), s("a", &[])]),
        Err(PlanError::DuplicateStage { .. })
    ));
    assert_eq!(
        plan::check_dag(&[s("b", &["a"]), s("a", &[])]).unwrap(),
        [1, 0]
    );
}

/// A structural Mermaid check: every statement is a node/edge/class/comment line of the
/// flowchart grammar, node ids are declared before use in `class`, brackets balance.
fn assert_valid_mermaid(src: &str) {
    let mut lines = src.lines();
    assert_eq!(lines.next(), Some("graph TD"));
    let mut ids = std::collections::BTreeSet::new();
    for line in lines {
        let l = line.trim();
        if l.is_empty() || l.starts_with("%%") || l.starts_with("classDef ") {
            continue;
        }
        if let Some(rest) = l.strip_prefix("class ") {
            let (list, _class) = rest.split_once(' ').expect("class ids name");
            for id in list.split(',') {
                assert!(
                    ids.contains(id),
                    "class refers to undeclared node {id}: {l}"
                );
            }
            continue;
        }
        let (from, rest) = l
            .split_once(" -->")
            .unwrap_or_else(|| panic!("not an edge: {l}"));
        let rest = rest.trim_start();
        let rest = if let Some(r) = rest.strip_prefix('|') {
            let (label, after) = r
                .split_once('|')
                .unwrap_or_else(|| panic!("open label: {l}"));
            assert!(!label.is_empty());
            if label.starts_with('"') {
                assert!(
                    label.ends_with('"') && label.len() >= 2,
                    "label quotes: {l}"
                );
            } else {
                assert!(!label.contains('"'), "unquoted label with quote: {l}");
            }
            after.trim_start()
        } else {
            rest
        };
        for node in [from.trim(), rest] {
            let id: String = node
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(!id.is_empty(), "node without id: {l}");
            let shape = &node[id.len()..];
            if !shape.is_empty() {
                let ok = (shape.starts_with("[\"") && shape.ends_with("\"]"))
                    || (shape.starts_with("{\"") && shape.ends_with("\"}"))
                    || (shape.starts_with("((\"") && shape.ends_with("\"))"));
                assert!(ok, "bad node shape `{shape}` in: {l}");
                let inner = shape.trim_matches(|c| "[]{}()".contains(c));
                assert!(
                    !inner[1..inner.len() - 1].contains('"'),
                    "quote inside label: {l}"
                );
            }
            ids.insert(id);
        }
    }
}

#[test]
fn graph_of_the_example_is_valid_mermaid() {
    let g = shipline_core::graph::mermaid(&example());
    assert_valid_mermaid(&g);
    for needle in [
        "Developer",
        "push to dev",
        "push to main",
        "manual approval",
        "-p prod",
    ] {
        assert!(g.contains(needle), "graph lacks {needle}");
    }
    insta::assert_snapshot!("example_graph", g);
}
