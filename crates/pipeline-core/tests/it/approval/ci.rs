//! `shipline ci github`: the generated workflows are snapshot-tested, structurally hardened and
//! zizmor-clean (zizmor --offline, default settings, zero findings).

use std::path::{Path, PathBuf};
use std::process::Command;

use shipline_core::ci::github::{
    generate_workflows, stale_workflows, write_workflows, GithubOptions, Workflow, PINNED_ACTIONS,
};
use shipline_core::config::Config;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The configs whose workflows are checked: this area's fixture and the bundled example.
fn configs() -> Vec<(&'static str, PathBuf)> {
    let root = workspace_root();
    vec![
        (
            "fixture",
            root.join("fixtures/approval/project/shipline.toml"),
        ),
        ("example", root.join("examples/hestami/shipline.toml")),
    ]
}

fn generate(path: &Path) -> Vec<Workflow> {
    let config =
        Config::load(path).unwrap_or_else(|e| panic!("failed to load {}: {e}", path.display()));
    generate_workflows(&config, &GithubOptions::default()).expect("generate workflows")
}

#[test]
fn workflows_snapshot() {
    for (name, path) in configs() {
        if !path.exists() {
            panic!("config {} is missing", path.display());
        }
        for w in generate(&path) {
            insta::with_settings!({
                filters => vec![(r"--version \d+\.\d+\.\d+\S*", "--version [VERSION]")],
                snapshot_suffix => format!("{name}-{}", w.file_name),
            }, {
                insta::assert_snapshot!("workflow", w.contents);
            });
        }
    }
}

#[test]
fn one_workflow_per_environment_with_the_reference_shape() {
    let wfs = generate(&configs()[0].1);
    let names: Vec<&str> = wfs.iter().map(|w| w.file_name.as_str()).collect();
    assert_eq!(names, ["shipline-dev.yml", "shipline-prod.yml"]);
    let dev = &wfs[0].contents;
    let prod = &wfs[1].contents;
    assert!(dev.contains("      - 'dev'\n"));
    assert!(prod.contains("      - 'main'\n"));
    assert!(dev.contains("runs-on: [self-hosted, dev]"));
    assert!(prod.contains("runs-on: [self-hosted, prod]"));
    assert!(!dev.contains("environment:"), "dev deploys automatically");
    assert!(prod.contains("    environment: 'production'\n"));
    for w in &wfs {
        let y = &w.contents;
        assert!(
            y.contains("\npermissions: {}\n"),
            "{}: top-level permissions",
            w.file_name
        );
        assert!(
            y.contains("group: 'shipline-deploy-"),
            "{}: concurrency",
            w.file_name
        );
        assert!(y.contains("cancel-in-progress: false"));
        assert!(y.contains("digest: ${{ steps.push.outputs.digest }}"));
        assert!(y.contains("DIGEST: ${{ needs.build.outputs.digest }}"));
        assert!(y.contains("TAG: ${{ needs.build.outputs.tag }}"));
        // the runner pulls the pushed tag and refuses it unless it is exactly that digest
        assert!(y.contains("shipline deploy \"$SHIPLINE_ENV\" --tag \"$TAG\" --digest \"$DIGEST\""));
        assert!(y.contains("GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}"));
        assert!(y.contains(">> \"$GITHUB_OUTPUT\"") && y.contains(">> \"$GITHUB_STEP_SUMMARY\""));
        assert!(y.contains("upload-sarif@"));
    }
}

/// Every generated workflow can push to and pull from GHCR: the example has no `[registry]`
/// section, so the workflow token is handed over as `GITHUB_TOKEN`, which shipline uses for
/// ghcr.io when no docker login exists.
#[test]
fn ghcr_credentials_reach_the_push_and_the_deploy() {
    for (name, path) in configs() {
        for w in generate(&path) {
            let n = w.contents.matches("${{ secrets.GITHUB_TOKEN }}").count();
            assert_eq!(n, 2, "{name}/{}: push and deploy steps", w.file_name);
        }
    }
}

#[test]
fn actions_are_pinned_to_full_shas_and_run_scripts_have_no_expressions() {
    for a in PINNED_ACTIONS {
        assert_eq!(a.sha.len(), 40, "{}", a.name);
        assert!(a.sha.bytes().all(|b| b.is_ascii_hexdigit()), "{}", a.name);
    }
    for (_, path) in configs() {
        for w in generate(&path) {
            let mut run_indent: Option<usize> = None;
            for line in w.contents.lines() {
                let indent = line.len() - line.trim_start().len();
                let t = line.trim_start();
                if let Some(ri) = run_indent {
                    if indent > ri || t.is_empty() {
                        assert!(
                            !line.contains("${{"),
                            "{}: expression in run: {line}",
                            w.file_name
                        );
                        continue;
                    }
                    run_indent = None;
                }
                if let Some(rest) = t.strip_prefix("run:").or_else(|| t.strip_prefix("- run:")) {
                    assert!(
                        !rest.contains("${{"),
                        "{}: expression in run: {line}",
                        w.file_name
                    );
                    run_indent = Some(indent);
                }
                if let Some(uses) = t.strip_prefix("uses: ") {
                    let (_, rest) = uses.split_once('@').expect("uses has @");
                    let sha = rest.split_whitespace().next().unwrap_or("");
                    assert_eq!(sha.len(), 40, "{}: unpinned {uses}", w.file_name);
                    assert!(
                        rest.contains("# v"),
                        "{}: version comment: {uses}",
                        w.file_name
                    );
                }
            }
        }
    }
}

fn zizmor() -> PathBuf {
    let venv = std::env::var_os("SHIPLINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let bin = venv.join("bin/zizmor");
    assert!(
        bin.is_file(),
        "zizmor not found at {}: run `bash scripts/prereqs.sh` (creates the .venv with zizmor) \
         or set SHIPLINE_VENV",
        bin.display()
    );
    bin
}

#[test]
fn generated_workflows_are_zizmor_clean() {
    let zizmor = zizmor();
    for (name, path) in configs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(".github/workflows");
        let wfs = generate(&path);
        write_workflows(&dir, &wfs).expect("write workflows");
        assert!(stale_workflows(&dir, &wfs).is_empty());
        let files: Vec<PathBuf> = wfs.iter().map(|w| dir.join(&w.file_name)).collect();
        let out = Command::new(&zizmor)
            .args(["--offline", "--no-progress", "--format", "plain"])
            .args(&files)
            .env("NO_COLOR", "1")
            .output()
            .expect("run zizmor");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "zizmor reports findings for the {name} workflows (exit {:?}):\n{stdout}\n{stderr}",
            out.status.code()
        );
        assert!(
            stdout.contains("No findings to report"),
            "{name}: {stdout}\n{stderr}"
        );
        // zizmor skips files that are not valid workflows with only a warning: make sure every
        // file was really audited.
        assert!(
            !stderr.contains("failed to validate"),
            "{name}: invalid workflow: {stderr}"
        );
        for f in &files {
            assert!(
                stderr.contains(&format!("completed {}", f.display())),
                "{name}: zizmor did not audit {}: {stderr}",
                f.display()
            );
        }
    }
}

/// The zizmor check can fail: a workflow with the classic mistakes is reported.
#[test]
fn zizmor_reports_an_unhardened_workflow() {
    let zizmor = zizmor();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("bad.yml");
    std::fs::write(
        &file,
        "name: bad\non:\n  push:\njobs:\n  build:\n    name: build\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.head_commit.message }}\"\n",
    )
    .expect("write");
    let out = Command::new(&zizmor)
        .args(["--offline", "--no-progress", "--format", "plain"])
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("run zizmor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "zizmor accepted a bad workflow: {stdout}"
    );
    for audit in [
        "unpinned-uses",
        "template-injection",
        "excessive-permissions",
    ] {
        assert!(stdout.contains(audit), "{audit} not reported: {stdout}");
    }
}

#[test]
fn stale_workflows_are_detected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wfs = generate(&configs()[0].1);
    assert_eq!(stale_workflows(tmp.path(), &wfs).len(), 2);
    write_workflows(tmp.path(), &wfs).expect("write");
    std::fs::write(tmp.path().join("shipline-dev.yml"), "edited").expect("edit");
    assert_eq!(stale_workflows(tmp.path(), &wfs), ["shipline-dev.yml"]);
}
