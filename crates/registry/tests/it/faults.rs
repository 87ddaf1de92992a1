//! Fault injection through the proxy: 429 storms, 503s, resets, corrupted and slow bodies.

use std::time::Duration;

use shipline_registry::{copy, CopyOptions, ImageStore, RegistryError, UploadMode};

use crate::support::image::{bytes, make_image, tree};
use crate::support::open_client;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::registry::TestRegistry;

fn store(s: &str) -> ImageStore {
    ImageStore::parse(s).unwrap()
}

fn count(proxy: &FaultProxy, needle: &str) -> usize {
    proxy.log().iter().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn a_429_storm_succeeds_after_backoff_honouring_retry_after() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(1, 50_000), bytes(2, 60_000)],
        "2024-01-01T00:00:00Z",
    );
    // the first 8 requests of every kind are refused with 429 + Retry-After: 1
    proxy.add(Rule::new(None, "/v2/", Fault::Status(429, Some(1)), 8));
    let dst = format!("{}/storm/app:1", proxy.host);
    let r = copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), digest);
    assert_eq!(count(&proxy, "Status(429"), 8);
    // and the registry really has it
    proxy.clear();
    let out = tempfile::tempdir().unwrap();
    let p = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(p.digest.as_str(), digest);
}

#[tokio::test]
async fn resets_and_503s_on_uploads_and_downloads_are_retried() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let layer = bytes(5, 400_000);
    let digest = make_image(
        src.path(),
        "v1",
        std::slice::from_ref(&layer),
        "2024-01-01T00:00:00Z",
    );
    proxy.add(Rule::new(Some("PUT"), "/blobs/uploads/", Fault::Reset, 2));
    proxy.add(Rule::new(
        Some("POST"),
        "/blobs/uploads/",
        Fault::Status(503, None),
        1,
    ));
    proxy.add(Rule::new(
        Some("PUT"),
        "/manifests/",
        Fault::Status(502, None),
        1,
    ));
    let dst = format!("{}/flaky/app:1", proxy.host);
    let r = copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), digest);
    assert_eq!(count(&proxy, "Reset"), 2);

    proxy.clear();
    let ld = crate::support::image::sha(&layer);
    proxy.add(Rule::new(
        Some("GET"),
        &format!("/blobs/{ld}"),
        Fault::Reset,
        1,
    ));
    proxy.add(Rule::new(
        Some("GET"),
        &format!("/blobs/{ld}"),
        Fault::Corrupt,
        1,
    ));
    proxy.add(Rule::new(
        Some("GET"),
        "/manifests/",
        Fault::Slow(Duration::from_millis(300)),
        1,
    ));
    let out = tempfile::tempdir().unwrap();
    let p = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}:v1", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(p.digest.as_str(), digest);
    assert_eq!(
        std::fs::read(out.path().join("blobs/sha256").join(&ld[7..])).unwrap(),
        layer
    );
}

#[tokio::test]
async fn chunked_upload_resumes_from_the_registry_offset() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(8, 1_000_000)],
        "2024-01-01T00:00:00Z",
    );
    // the third chunk is refused with 416 once, a later one is cut off by a reset
    proxy.add(Rule::new(
        Some("PATCH"),
        "/blobs/uploads/",
        Fault::Slow(Duration::ZERO),
        2,
    ));
    proxy.add(Rule::new(
        Some("PATCH"),
        "/blobs/uploads/",
        Fault::Status(416, None),
        1,
    ));
    proxy.add(Rule::new(Some("PATCH"), "/blobs/uploads/", Fault::Reset, 1));
    let opts = CopyOptions {
        upload: UploadMode::Chunked(200_000),
        ..CopyOptions::default()
    };
    let dst = format!("{}/resume/app:1", proxy.host);
    let r = copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), digest);
    assert!(
        count(&proxy, "GET /v2/resume/app/blobs/uploads/") >= 2,
        "{:#?}",
        proxy.log()
    );
}

#[tokio::test]
async fn a_corrupted_blob_pull_is_refused_and_leaves_nothing_behind() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let layer = bytes(3, 200_000);
    make_image(
        src.path(),
        "v1",
        std::slice::from_ref(&layer),
        "2024-01-01T00:00:00Z",
    );
    let dst = format!("{}/corrupt/app:1", proxy.host);
    copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let ld = crate::support::image::sha(&layer);
    proxy.add(Rule::new(
        Some("GET"),
        &format!("/blobs/{ld}"),
        Fault::Corrupt,
        usize::MAX,
    ));
    let out = tempfile::tempdir().unwrap();
    let err = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}:v1", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    let mismatch = match &err {
        RegistryError::RetriesExhausted { last, attempts, .. } => {
            assert_eq!(*attempts, 6);
            &**last
        }
        other => other,
    };
    assert!(
        matches!(mismatch, RegistryError::DigestMismatch { expected, .. } if *expected == ld),
        "{err:?}"
    );
    // nothing of the corrupted blob, no temp files, and no image recorded in index.json
    let files = tree(out.path());
    assert!(
        !files
            .iter()
            .any(|f| f.contains(&ld[7..]) || f.contains(".tmp")),
        "{files:?}"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn persistent_503_gives_a_clear_final_error() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    proxy.add(Rule::new(
        None,
        "/manifests/",
        Fault::Status(503, None),
        usize::MAX,
    ));
    let err = client
        .resolve_digest(
            &shipline_registry::Reference::parse(&format!("{}/x/y:1", proxy.host)).unwrap(),
        )
        .await
        .unwrap_err();
    insta::assert_snapshot!(crate::support::redact(&err.to_string()), @"failed to resolve digest 127.0.0.1:PORT: gave up after 6 attempts");
    let chain = std::error::Error::source(&err)
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(chain.contains("HTTP 503"), "{chain}");
}

#[tokio::test]
async fn a_mount_answered_202_falls_back_to_upload() {
    let reg = TestRegistry::open();
    let proxy = FaultProxy::start(&reg.host).await;
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(6, 30_000)],
        "2024-01-01T00:00:00Z",
    );
    let dev = format!("{}/m202/dev:1", proxy.host);
    copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dev),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    // the spec lets a registry decline a mount with 202 and an upload session instead
    proxy.add(Rule::new(
        Some("POST"),
        "mount=",
        Fault::Respond(
            202,
            vec![(
                "location".into(),
                "/v2/m202/prod/blobs/uploads/declined-session".into(),
            )],
            String::new(),
        ),
        usize::MAX,
    ));
    let prod = format!("{}/m202/prod:1", proxy.host);
    let r = copy(
        &client,
        &store(&dev),
        &store(&prod),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), digest);
    assert_eq!((r.blobs_mounted, r.blobs_uploaded), (0, 2));
    // each declined session was cancelled
    assert_eq!(
        count(
            &proxy,
            "DELETE /v2/m202/prod/blobs/uploads/declined-session"
        ),
        2,
        "{:#?}",
        proxy.log()
    );
}

#[tokio::test]
async fn blob_uploads_run_in_parallel_but_never_above_the_concurrency_bound() {
    let reg = TestRegistry::open();
    let src = tempfile::tempdir().unwrap();
    let layers: Vec<Vec<u8>> = (0..8).map(|i| bytes(100 + i, 20_000)).collect();
    let digest = make_image(src.path(), "v1", &layers, "2024-01-01T00:00:00Z");
    let client = open_client();
    for (concurrency, repo) in [(4usize, "bound4"), (1, "bound1")] {
        let proxy = FaultProxy::start(&reg.host).await;
        // every upload is slow, so uploads that may overlap do overlap
        proxy.add(Rule::new(
            Some("PUT"),
            "/blobs/uploads/",
            Fault::Slow(Duration::from_millis(250)),
            usize::MAX,
        ));
        let opts = CopyOptions {
            concurrency,
            ..CopyOptions::default()
        };
        let r = copy(
            &client,
            &store(&format!("oci:{}:v1", src.path().display())),
            &store(&format!("{}/{repo}/app:1", proxy.host)),
            &opts,
        )
        .await
        .unwrap();
        assert_eq!(r.digest.as_str(), digest);
        let max = proxy.max_uploads_in_flight();
        assert!(
            max <= concurrency,
            "{max} uploads at once with concurrency {concurrency}"
        );
        if concurrency > 1 {
            assert!(
                max >= 2,
                "uploads never overlapped with concurrency {concurrency}"
            );
        } else {
            assert_eq!(max, 1);
        }
    }
}
