//! validate, plan, graph, runs and the global CLI contract.

use crate::{shipline, stderr, stdout, workspace};

fn example() -> std::path::PathBuf {
    workspace().join("examples/hestami")
}

#[test]
fn version_and_help_document_every_command() {
    let o = shipline(&workspace(), &["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("shipline "));
    let o = shipline(&workspace(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    for cmd in [
        "validate",
        "plan",
        "graph",
        "run",
        "runs",
        "env",
        "scan",
        "audit",
        "push",
        "pull",
        "copy",
        "tags",
        "prune",
        "digest",
        "deploy",
        "rollback",
        "status",
        "lock",
        "approve",
        "approvals",
        "ci",
    ] {
        assert!(
            help.contains(&format!("\n  {cmd} ")),
            "--help lacks {cmd}:\n{help}"
        );
    }
    let o = shipline(&workspace(), &["plan", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn plan_dev_and_main_on_the_example() {
    let o = shipline(&example(), &["plan", "--branch", "dev", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["environment"], "dev");
    let kinds: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for k in ["build", "test", "scan", "push", "deploy"] {
        assert!(kinds.contains(&k), "dev plan lacks {k}");
    }
    assert!(!kinds.contains(&"approve"));

    let o = shipline(&example(), &["plan", "--branch", "main", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["environment"], "prod");
    let ids: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let approve = ids
        .iter()
        .position(|s| *s == "approve")
        .expect("main plan has approve");
    let deploy = ids
        .iter()
        .position(|s| *s == "deploy:prod")
        .expect("main plan deploys to prod");
    assert!(approve < deploy);
}

#[test]
fn unknown_branch_exits_2_naming_the_configured_ones() {
    let o = shipline(&example(), &["plan", "--branch", "feature/login"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("feature/login") && err.contains("dev, main"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "errors never go to stdout");
}

#[test]
fn validate_exits_0_or_2_with_a_located_error() {
    let o = shipline(&example(), &["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bad = workspace().join("fixtures/config/errors/04-unknown-env-key-did-you-mean.toml");
    let tmp = tempfile::tempdir().unwrap();
    // copy the base project next to the broken config so only the key is wrong
    let base = workspace().join("fixtures/config/base");
    for entry in walk(&base) {
        let rel = entry.strip_prefix(&base).unwrap();
        let dest = tmp.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
    std::fs::copy(&bad, tmp.path().join("shipline.toml")).unwrap();
    let o = shipline(tmp.path(), &["validate"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("shipline.toml:20:1"), "{err}");
    assert!(err.contains("did you mean `branch`?"), "{err}");
    // no config anywhere: exit 2 with a hint
    let empty = tempfile::tempdir().unwrap();
    let o = shipline(empty.path(), &["plan", "--branch", "dev"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--config"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn graph_prints_mermaid_on_stdout() {
    let o = shipline(&example(), &["graph"]);
    assert_eq!(o.status.code(), Some(0));
    let g = stdout(&o);
    assert!(g.starts_with("graph TD\n"));
    insta::assert_snapshot!("example_graph_cli", g);
    let o = shipline(&example(), &["graph", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["format"], "mermaid");
    assert_eq!(v["graph"], g.as_str());
}

#[test]
fn runs_lists_nothing_on_a_fresh_store() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("shipline.toml");
    let text = std::fs::read_to_string(example().join("shipline.toml")).unwrap();
    // the example's files live elsewhere: point the config at them with absolute paths
    let ex = std::path::absolute(example()).unwrap();
    let text = text
        .replace(
            "context = \"app\"",
            &format!("context = \"{}/app\"", ex.display()),
        )
        .replace(
            "\"app/Dockerfile\"",
            &format!("\"{}/app/Dockerfile\"", ex.display()),
        )
        .replace(
            "\"shipline-policy.toml\"",
            &format!("\"{}/shipline-policy.toml\"", ex.display()),
        )
        .replace(
            "\"semgrep-rules\"",
            &format!("\"{}/semgrep-rules\"", ex.display()),
        )
        .replace("[\"app\"]", &format!("[\"{}/app\"]", ex.display()))
        .replace("\"traefik/", &format!("\"{}/traefik/", ex.display()))
        .replace("\"compose.", &format!("\"{}/compose.", ex.display()))
        .replace("\"deploy.sh\"", &format!("\"{}/deploy.sh\"", ex.display()));
    std::fs::write(&cfg, text).unwrap();
    let o = shipline(tmp.path(), &["runs", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["runs"].as_array().unwrap().len(), 0);
    let o = shipline(tmp.path(), &["runs", "show", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Compose lets the process environment override the env file: a deploy with the tag variable
/// set in its environment would silently run that tag, so it is refused before any change.
#[test]
fn deploy_refuses_a_tag_variable_set_in_the_process_environment() {
    let tmp = tempfile::tempdir().unwrap();
    crate::e2e::copy_dir(&example(), tmp.path());
    let env_before = std::fs::read(tmp.path().join(".env.local")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args(["deploy", "dev", "--tag", "v2"])
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .env("IMAGE_TAG", "from-the-shell")
        .output()
        .expect("run shipline");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("IMAGE_TAG is set in the process environment") && err.contains("unset it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(tmp.path().join(".env.local")).unwrap(),
        env_before
    );
}
