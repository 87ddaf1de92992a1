//! Build, test container and export through the engine.

use shipline_core::engine::{BuildRequest, ContextPolicy, EngineError, EngineEvent, TestRequest};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::deploy::support::{build_test_image, engine, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn build_test_and_export() {
    let engine = engine().await;
    let stack = Stack::new("eng", "");
    let image = build_test_image(&engine, &stack.repository, "v1", true).await;
    let info = engine.image_digests(&image).await.expect("inspect");
    assert!(info.id.starts_with("sha256:"));

    // the test command decides by its exit code; output is streamed
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let on = move |ev: EngineEvent| {
        if let EngineEvent::TestOutput { line, .. } = ev {
            sink.lock().expect("lock").push(line);
        }
    };
    let ok = engine
        .run_test(
            &TestRequest {
                image: image.clone(),
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "cat /www/version; exit 0".into(),
                ],
                env: vec![],
                timeout: Duration::from_secs(60),
            },
            &on,
        )
        .await
        .expect("run");
    assert!(ok.passed());
    assert_eq!(lines.lock().expect("lock").as_slice(), ["v1"]);
    let failed = engine
        .run_test(
            &TestRequest {
                image: image.clone(),
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo boom >&2; exit 7".into(),
                ],
                env: vec![],
                timeout: Duration::from_secs(60),
            },
            &|_| {},
        )
        .await
        .expect("run");
    assert_eq!(failed.exit_code, 7);
    assert_eq!(failed.tail, ["boom"]);
    let timeout = engine
        .run_test(
            &TestRequest {
                image: image.clone(),
                command: vec!["/bin/sleep".into(), "30".into()],
                env: vec![],
                timeout: Duration::from_secs(2),
            },
            &|_| {},
        )
        .await;
    assert!(matches!(timeout, Err(EngineError::TestTimeout { .. })));
    // no test container is left behind
    let left = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=io.shipline.test=1",
            "--filter",
        ])
        .arg(format!("ancestor={image}"))
        .output()
        .expect("docker ps");
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());

    // export to an OCI layout (streamed through a docker-archive file)
    let out = tempfile::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let exported = engine
        .export_oci_layout(&image, &layout, "v1", &|_| {})
        .await
        .expect("export");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(
        index["manifests"][0]["digest"],
        exported.manifest_digest.as_str()
    );
    let hex = exported.manifest_digest.trim_start_matches("sha256:");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(hex)).expect("manifest"),
    )
    .expect("json");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    assert_eq!(config_digest, info.id, "the config blob is the image ID");
    assert!(!manifest["layers"].as_array().expect("layers").is_empty());
    // an independent reader (skopeo, a prerequisite) accepts the layout
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .expect("these tests need skopeo (run scripts/prereqs.sh)");
    assert!(
        inspect.status.success(),
        "skopeo rejected the layout: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let raw: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("manifest json");
    assert_eq!(raw, manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn build_failure_and_context_refusal() {
    let engine = engine().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nRUN [\"/nope\"]\n",
    )
    .expect("write");
    let req = BuildRequest::new(
        dir.path().to_path_buf(),
        vec!["shipline-test/broken:abc".into()],
    );
    let err = engine.build(&req, &|_| {}).await.expect_err("build fails");
    assert!(matches!(err, EngineError::Build { .. }), "{err}");

    std::fs::write(dir.path().join(".env.prod"), "SECRET=1\n").expect("write");
    let err = engine.build(&req, &|_| {}).await.expect_err("refused");
    assert!(matches!(err, EngineError::ForbiddenContext { .. }), "{err}");
    let mut allowed = req.clone();
    allowed.policy = ContextPolicy {
        allow_env_files: true,
    };
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = warnings.clone();
    let _ = engine
        .build(&allowed, &move |ev| {
            if let EngineEvent::Warning { message } = ev {
                w.lock().expect("lock").push(message);
            }
        })
        .await;
    assert_eq!(warnings.lock().expect("lock").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn build_args_target_labels_and_tags() {
    let engine = engine().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hello.txt"), "hi\n").expect("write");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch AS base\nARG GREETING\nCOPY hello.txt /hello.txt\nLABEL greeting=$GREETING\n\nFROM base AS final\nLABEL stage=final\n",
    )
    .expect("write");
    let repo = format!("shipline-test/{}", crate::deploy::support::unique("args"));
    let mut req = BuildRequest::new(
        dir.path().to_path_buf(),
        vec![format!("{repo}:abc1234"), format!("{repo}:latest")],
    );
    req.build_args.insert("GREETING".into(), "hello".into());
    req.target = Some("base".into());
    req.labels =
        shipline_core::engine::oci_labels("abc1234", "https://example.com/app", chrono::Utc::now());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let built = engine
        .build(&req, &move |ev| {
            if let EngineEvent::BuildOutput { line } = ev {
                sink.lock().expect("lock").push(line);
            }
        })
        .await
        .expect("build");
    let inspect = engine
        .docker()
        .inspect_image(&format!("{repo}:abc1234"))
        .await
        .expect("inspect");
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(
        labels.get("stage"),
        None,
        "built only up to the target stage"
    );
    assert_eq!(
        labels
            .get("org.opencontainers.image.revision")
            .map(String::as_str),
        Some("abc1234")
    );
    assert!(labels.contains_key("org.opencontainers.image.created"));
    let mut tags = inspect.repo_tags.unwrap_or_default();
    tags.sort();
    assert_eq!(tags, [format!("{repo}:abc1234"), format!("{repo}:latest")]);
    assert_eq!(built.image_id, inspect.id.unwrap_or_default());
    assert!(
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.starts_with("Step 1/")),
        "build output is streamed"
    );
    // only `latest` is refused: images are tagged with the commit
    let only_latest = BuildRequest::new(dir.path().to_path_buf(), vec![format!("{repo}:latest")]);
    assert!(matches!(
        engine.build(&only_latest, &|_| {}).await,
        Err(EngineError::InvalidRequest(_))
    ));
    for t in ["abc1234", "latest"] {
        engine
            .remove_image(&format!("{repo}:{t}"))
            .await
            .expect("remove");
    }
}
