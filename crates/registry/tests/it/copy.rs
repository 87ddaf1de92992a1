//! Push, re-push, pull, promotion, indexes, mounts.

use std::sync::{Arc, Mutex};

use shipline_registry::{
    copy, resolve_digest, CopyOptions, ImageStore, Platform, ProgressEvent, Reference, UploadMode,
};

use crate::support::image::{bytes, make_image, make_index, tree};
use crate::support::open_client;
use crate::support::registry::TestRegistry;

fn store(s: &str) -> ImageStore {
    ImageStore::parse(s).unwrap()
}

#[tokio::test]
async fn push_repush_pull_promote_preserve_the_digest() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(1, 300_000), bytes(2, 200_000), bytes(3, 10)],
        "2024-05-01T00:00:00Z",
    );
    let layout = format!("oci:{}:v1", src.path().display());
    let dev = format!("{}/team/app:dev", reg.host);

    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let opts = CopyOptions {
        progress: Some(Arc::new(move |e| ev.lock().unwrap().push(e))),
        ..CopyOptions::default()
    };
    let push = copy(&client, &store(&layout), &store(&dev), &opts)
        .await
        .unwrap();
    assert_eq!(
        push.digest.as_str(),
        digest,
        "pushed digest must be the layout's"
    );
    assert_eq!(
        (push.blobs_uploaded, push.blobs_skipped, push.blobs_mounted),
        (4, 0, 0)
    );
    assert_eq!(
        push.bytes_sent,
        500_010
            + std::fs::metadata(config_path(src.path(), &digest))
                .unwrap()
                .len()
    );
    let events = events.lock().unwrap().clone();
    assert!(events
        .iter()
        .any(|e| matches!(e, ProgressEvent::BlobDone { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, ProgressEvent::BlobProgress { done, total, .. } if done == total)));

    // re-push: every blob is there, zero bytes
    let again = copy(
        &client,
        &store(&layout),
        &store(&dev),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (again.bytes_sent, again.blobs_skipped, again.blobs_uploaded),
        (0, 4, 0)
    );
    assert_eq!(again.digest, push.digest);

    // promotion to another tag in the same repository: zero bytes, same digest
    let prod = format!("{}/team/app:prod", reg.host);
    let p = copy(
        &client,
        &store(&dev),
        &store(&prod),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(p.bytes_sent, 0);
    assert_eq!(p.blobs_skipped, 4);
    // promotion to another repository on the same registry: mounted, not uploaded
    let other = format!("{}/release/app:1.0", reg.host);
    let m = copy(
        &client,
        &store(&dev),
        &store(&other),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((m.blobs_mounted, m.bytes_sent, m.blobs_uploaded), (4, 0, 0));
    // the manifests the registry serves have the same digest everywhere
    for r in [&dev, &prod, &other] {
        let d = client
            .resolve_digest(&Reference::parse(r).unwrap())
            .await
            .unwrap();
        assert_eq!(d.as_str(), digest, "{r}");
        let m = client
            .get_manifest(&Reference::parse(r).unwrap())
            .await
            .unwrap();
        assert_eq!(m.digest.as_str(), digest);
    }

    // pull into a fresh layout, by digest
    let out = tempfile::tempdir().unwrap();
    let by_digest = format!("{}/release/app@{digest}", reg.host);
    let pulled = copy(
        &client,
        &store(&by_digest),
        &store(&format!("oci:{}:pulled", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(pulled.digest.as_str(), digest);
    assert_eq!(pulled.blobs_uploaded, 4);
    let d = resolve_digest(
        &client,
        &store(&format!("oci:{}:pulled", out.path().display())),
    )
    .await
    .unwrap();
    assert_eq!(d.as_str(), digest);
    // pulling again skips everything already in the local store
    let again = copy(
        &client,
        &store(&by_digest),
        &store(&format!("oci:{}:pulled", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((again.blobs_skipped, again.bytes_sent), (4, 0));
    assert!(tree(out.path()).iter().all(|f| !f.contains(".tmp")));
}

fn config_path(dir: &std::path::Path, manifest_digest: &str) -> std::path::PathBuf {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    let c = m["config"]["digest"].as_str().unwrap().to_owned();
    dir.join("blobs/sha256").join(&c[7..])
}

#[tokio::test]
async fn multi_arch_index_children_first_and_platform_pull() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let (index, children) = make_index(src.path(), "multi");
    let dst = format!("{}/multi/app:1", reg.host);
    let r = copy(
        &client,
        &store(&format!("oci:{}:multi", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), index);
    assert_eq!(r.manifests_pushed, 3);
    // shared layer uploaded once: 2 configs + 2 own layers + 1 shared
    assert_eq!(r.blobs_uploaded, 5);
    for c in &children {
        let child = Reference::parse(&format!("{}/multi/app@{c}", reg.host)).unwrap();
        assert_eq!(
            client.get_manifest(&child).await.unwrap().digest.as_str(),
            c
        );
    }
    // pull one platform
    let out = tempfile::tempdir().unwrap();
    let opts = CopyOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..CopyOptions::default()
    };
    let p = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}", out.path().display())),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(p.digest.as_str(), children[1]);
    assert_eq!(
        p.tag.as_deref(),
        Some("1"),
        "an untagged layout destination inherits the source tag"
    );
    let missing = CopyOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..CopyOptions::default()
    };
    let err = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}", out.path().display())),
        &missing,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("linux/s390x"), "{err}");
}

#[tokio::test]
async fn chunked_upload_round_trips() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "c",
        &[bytes(9, 1_000_003)],
        "2024-01-01T00:00:00Z",
    );
    let opts = CopyOptions {
        upload: UploadMode::Chunked(256 * 1024),
        ..CopyOptions::default()
    };
    let dst = format!("{}/chunked/app:c", reg.host);
    let r = copy(
        &client,
        &store(&format!("oci:{}:c", src.path().display())),
        &store(&dst),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.digest.as_str(), digest);
    let out = tempfile::tempdir().unwrap();
    let p = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}:c", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(p.digest.as_str(), digest);
}

#[tokio::test]
async fn clear_errors_for_missing_things() {
    let reg = TestRegistry::open();
    let client = open_client();
    let out = tempfile::tempdir().unwrap();
    let err = copy(
        &client,
        &store(&format!("{}/nope/app:1", reg.host)),
        &store(&format!("oci:{}", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    insta::assert_snapshot!(crate::support::redact(&err.to_string()), @"failed to find 127.0.0.1:PORT/nope/app:1: MANIFEST_UNKNOWN manifest unknown");
    let err = copy(
        &client,
        &store("docker-daemon:app:1"),
        &store(&format!("oci:{}", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not implemented yet"), "{err}");
    let err = copy(
        &client,
        &store(&format!("oci:{}:none", out.path().display())),
        &store(&format!("{}/x/y:1", reg.host)),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to find image `none` in"),
        "{err}"
    );
}

#[tokio::test]
async fn pull_by_digest_into_an_untagged_layout_records_the_image_once() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(src.path(), "v1", &[bytes(11, 1000)], "2024-01-01T00:00:00Z");
    let dst = format!("{}/plain/app:1", reg.host);
    copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let by_digest = store(&format!("{}/plain/app@{digest}", reg.host));
    for _ in 0..2 {
        let r = copy(
            &client,
            &by_digest,
            &store(&format!("oci:{}", out.path().display())),
            &CopyOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(r.tag, None);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    let list = index["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], digest);
    // and the untagged layout can be the source of the next copy
    let again = resolve_digest(&client, &store(&format!("oci:{}", out.path().display())))
        .await
        .unwrap();
    assert_eq!(again.as_str(), digest);
}
