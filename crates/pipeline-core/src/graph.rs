//! A Mermaid `graph TD` of the configured pipeline, shaped like the reference architecture
//! diagram: developer → branches → build/test/scan → push → approval → deploy per environment.

use std::fmt::Write;

use crate::config::{Config, DeployMode};

/// Escapes a label for a Mermaid `["..."]` node or `|"..."|` edge.
fn label(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// A node id safe for Mermaid (letters, digits, `_`).
fn node_id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

/// Renders the pipeline for every environment as Mermaid.
pub fn mermaid(config: &Config) -> String {
    let mut out = String::new();
    let registry = config
        .registry
        .as_ref()
        .map(|r| r.host.clone())
        .unwrap_or_else(|| "embedded OCI store".to_string());
    let scanners: Vec<&str> = config.scan.scanners.iter().map(|s| s.as_str()).collect();
    let _ = writeln!(out, "graph TD");
    let _ = writeln!(
        out,
        "    dev_user[\"Developer\"] -->|git clone| local_repo[\"Local Repository\"]"
    );
    let _ = writeln!(
        out,
        "    local_repo -->|shipline run --local| local_test[\"Local Testing: build, test, scan\"]"
    );
    let _ = writeln!(
        out,
        "    local_test -->|git push| git_repo[\"Git Repository: {}\"]",
        label(&config.project.name)
    );
    for env in config.environments.values() {
        let e = &env.name;
        let ci = node_id("ci", e);
        let build = node_id("build", e);
        let scan = node_id("scan", e);
        let push = node_id("push", e);
        let deploy = node_id("deploy", e);
        let target = node_id("env", e);
        let _ = writeln!(out);
        let _ = writeln!(out, "    %% environment {}", label(e));
        let _ = writeln!(
            out,
            "    git_repo -->|\"push to {}\"| {ci}[\"CI: branch {}\"]",
            label(&env.branch),
            label(&env.branch)
        );
        if let Some(from) = &env.promote_from {
            let _ = writeln!(
                out,
                "    {ci} -->|\"promote digest of {}\"| {push}[\"{}: {} (same digest)\"]",
                label(from),
                label(&registry),
                label(&config.image.repository)
            );
        } else {
            let test = if config.test.is_some() {
                "Build & Test"
            } else {
                "Build"
            };
            let _ = writeln!(out, "    {ci} -->|build| {build}[\"{test}\"]");
            let scan_label = if scanners.is_empty() {
                "Security Scanning: none configured".to_string()
            } else {
                format!("Security Scanning: {}", scanners.join(", "))
            };
            let _ = writeln!(
                out,
                "    {build} -->|scan| {scan}[\"{}\"]",
                label(&scan_label)
            );
            let _ = writeln!(
                out,
                "    {scan} -->|\"gate passed: push by digest\"| {push}[\"{}: {}\"]",
                label(&registry),
                label(&config.image.repository)
            );
        }
        let runner = node_id("runner", e);
        match env.deploy {
            DeployMode::Auto => {
                let _ = writeln!(
                    out,
                    "    {push} -->|auto deploy| {runner}[\"Self-hosted Runner: {}\"]",
                    label(e)
                );
            }
            DeployMode::Approval => {
                let approve = node_id("approve", e);
                let (required, signers) = env
                    .approval
                    .as_ref()
                    .map(|a| (a.required, a.approvers.len()))
                    .unwrap_or((1, 0));
                let _ = writeln!(
                    out,
                    "    {push} -->|manual approval| {approve}{{\"Signed approval of the digest: {required} of {signers} approvers\"}}"
                );
                let _ = writeln!(
                    out,
                    "    {approve} -->|approved| {runner}[\"Self-hosted Runner: {}\"]",
                    label(e)
                );
            }
        }
        let file = env
            .env_file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hook = if env.deploy_hook.is_some() {
            ", deploy hook"
        } else {
            ""
        };
        let strategy = env.rollout.strategy.as_str();
        let _ = writeln!(
            out,
            "    {runner} -->|\"pull, set {} in {}{hook}\"| {deploy}[\"docker compose -p {} ({strategy})\"]",
            label(&env.tag_variable),
            label(&file),
            label(&env.compose_project)
        );
        let _ = writeln!(
            out,
            "    {deploy} -->|\"healthy, else roll back\"| {target}((\"{} environment\"))",
            label(e)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "    classDef developer fill:#f9f,stroke:#333,stroke-width:2px"
    );
    let _ = writeln!(
        out,
        "    classDef security fill:#cb2431,color:#fff,stroke:#333"
    );
    let _ = writeln!(
        out,
        "    classDef environment fill:#0366d6,color:#fff,stroke:#333"
    );
    let _ = writeln!(out, "    class dev_user,local_repo,local_test developer");
    let sec: Vec<String> = config
        .environments
        .values()
        .filter(|e| e.promote_from.is_none())
        .map(|e| node_id("scan", &e.name))
        .collect();
    if !sec.is_empty() {
        let _ = writeln!(out, "    class {} security", sec.join(","));
    }
    let envs: Vec<String> = config
        .environments
        .values()
        .map(|e| node_id("env", &e.name))
        .collect();
    if !envs.is_empty() {
        let _ = writeln!(out, "    class {} environment", envs.join(","));
    }
    out
}
