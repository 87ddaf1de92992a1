//! Inside GitHub Actions (`GITHUB_ACTIONS=true`), commands write their step summary, emit
//! annotations for findings (on stderr, keeping stdout for the result) and set step outputs;
//! and the scan commands the generated workflows run, through the binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::{stderr, stdout, workspace};

struct Actions {
    dir: tempfile::TempDir,
}

impl Actions {
    fn new() -> Actions {
        Actions {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn output_file(&self) -> std::path::PathBuf {
        self.dir.path().join("github_output")
    }

    fn summary_file(&self) -> std::path::PathBuf {
        self.dir.path().join("step_summary")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Runs shipline as a step of a workflow would.
    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_shipline"))
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.output_file())
            .env("GITHUB_STEP_SUMMARY", self.summary_file())
            .output()
            .expect("run shipline")
    }
}

#[test]
fn scan_writes_summary_annotations_and_verdict_inside_actions() {
    let gh = Actions::new();
    let root = workspace();
    let report = root.join("fixtures/scanners/reports/trivy/image-mixed.json");
    let arg = format!("trivy:{}", report.display());
    let o = gh.run(&root, &["scan", "--report", &arg, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // stdout is the JSON result alone
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    assert_eq!(v["verdict"], "fail");
    // annotations on stderr, one per finding
    let err = stderr(&o);
    let findings = v["findings"].as_array().expect("findings").len();
    let annotations = err
        .lines()
        .filter(|l| {
            l.starts_with("::error") || l.starts_with("::warning") || l.starts_with("::notice")
        })
        .count();
    assert!(
        annotations >= 1 && annotations <= findings,
        "{annotations} of {findings}: {err}"
    );
    assert!(Actions::read(&gh.output_file()).contains("verdict=fail\n"));
    let summary = Actions::read(&gh.summary_file());
    assert!(
        summary.contains("FAIL") || summary.contains("fail"),
        "{summary}"
    );
    assert!(summary.contains('|'), "a markdown table: {summary}");

    // outside Actions none of it happens
    let quiet = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args(["scan", "--report", &arg, "--json"])
        .current_dir(&root)
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_OUTPUT", quiet.path().join("out"))
        .output()
        .expect("run shipline");
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("::error"));
    assert!(!quiet.path().join("out").exists());
}

#[test]
fn copy_sets_image_tag_and_digest_outputs_inside_actions() {
    let gh = Actions::new();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    make_layout(&src);
    let dest = work.path().join("dest");
    let o = gh.run(
        work.path(),
        &[
            "copy",
            &format!("oci:{}:v1", src.display()),
            &format!("oci:{}:v1", dest.display()),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    let digest = v["digest"].as_str().expect("digest");
    let outputs = Actions::read(&gh.output_file());
    assert!(outputs.contains(&format!("digest={digest}\n")), "{outputs}");
    assert!(outputs.contains("tag=v1\n"), "{outputs}");
    assert!(outputs.contains("image="), "{outputs}");
    assert!(Actions::read(&gh.summary_file()).contains(digest));
}

/// Writes a minimal valid OCI image layout (one empty layer) tagged `v1`.
pub(crate) fn make_layout(dir: &Path) {
    use sha2::{Digest as _, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).expect("write blob");
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer, layer_len) = put(b"not really a tarball, but the copy does not care");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]},
        "config": {}
    });
    let (config, config_len) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_len}]
    });
    let (manifest, manifest_len) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest, "size": manifest_len,
            "annotations": {"org.opencontainers.image.ref.name": "v1"}
        }]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
}

/// `shipline scan semgrep` through the binary, as the generated workflows call it: real Semgrep
/// with local rules, SARIF written to a file, the gate's exit code.
#[test]
fn scan_semgrep_writes_sarif_and_gates() {
    let root = workspace();
    let venv = std::env::var_os("SHIPLINE_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let semgrep = venv.join("bin/semgrep");
    assert!(
        semgrep.exists(),
        "prerequisite missing: {} (run scripts/prereqs.sh)",
        semgrep.display()
    );
    let out = tempfile::tempdir().expect("tempdir");
    let sarif = out.path().join("semgrep.sarif");
    let o = Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args([
            "scan",
            "semgrep",
            "fixtures/scanners/semgrep-project",
            "--config",
            "fixtures/scanners/semgrep-rules/rules.yml",
            "--format",
            "sarif",
            "--output",
        ])
        .arg(&sarif)
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .env("SHIPLINE_SEMGREP", &semgrep)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run shipline");
    // the ERROR rule (eval) is over the default threshold
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "the result went to --output");
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("sarif written"))
            .expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "semgrep");
    let rules: Vec<&str> = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["ruleId"].as_str())
        .collect();
    assert!(rules.iter().any(|r| r.ends_with("eval-used")), "{rules:?}");
}
