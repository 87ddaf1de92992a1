//! Attaching an artifact (an approval) to an image digest and finding it again.

use std::collections::BTreeMap;

use bytes::Bytes;
use shipline_registry::{
    attach_artifact, copy, list_referrers, ArtifactBlob, CopyOptions, ImageStore, Reference,
};

use crate::support::image::{bytes as data, make_image};
use crate::support::open_client;
use crate::support::registry::TestRegistry;

#[tokio::test]
async fn attach_and_list_with_tag_fallback() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(src.path(), "v1", &[data(1, 1000)], "2024-01-01T00:00:00Z");
    let dst = format!("{}/app/web:1", reg.host);
    copy(
        &client,
        &ImageStore::parse(&format!("oci:{}:v1", src.path().display())).unwrap(),
        &ImageStore::parse(&dst).unwrap(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let subject = Reference::parse(&dst).unwrap();
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.created".to_owned(),
        "2024-06-01T00:00:00Z".to_owned(),
    );
    let a1 = attach_artifact(
        &client,
        &subject,
        "application/vnd.shipline.approval.v1",
        vec![ArtifactBlob {
            media_type: "application/vnd.shipline.approval.v1+json".into(),
            data: Bytes::from_static(br#"{"approved":true}"#),
            annotations: BTreeMap::new(),
        }],
        ann.clone(),
    )
    .await
    .unwrap();
    let a2 = attach_artifact(
        &client,
        &subject,
        "application/vnd.example.sbom",
        vec![],
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let all = list_referrers(&client, &subject, None).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(),
        vec![a1.clone(), a2]
    );
    let approvals = list_referrers(
        &client,
        &subject,
        Some("application/vnd.shipline.approval.v1"),
    )
    .await
    .unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].annotations, ann);
    // distribution 2.8 has no referrers API: the fallback tag holds the index
    let tags = client.list_tags(&subject).await.unwrap();
    assert!(
        tags.contains(&format!("sha256-{}", &digest[7..])),
        "{tags:?}"
    );
    // the artifact names its subject
    let art = client.get_manifest(&subject.with_digest(a1)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&art.bytes).unwrap();
    assert_eq!(v["subject"]["digest"], digest);
    // attaching is idempotent for the same content
    let again = attach_artifact(
        &client,
        &subject,
        "application/vnd.shipline.approval.v1",
        vec![ArtifactBlob {
            media_type: "application/vnd.shipline.approval.v1+json".into(),
            data: Bytes::from_static(br#"{"approved":true}"#),
            annotations: BTreeMap::new(),
        }],
        ann,
    )
    .await
    .unwrap();
    assert_eq!(
        list_referrers(&client, &subject, None).await.unwrap().len(),
        2
    );
    assert_eq!(again, approvals[0].digest);
}

/// Without the referrers API every attach rewrites one shared index tag; attaches that race
/// must still all be found (each artifact also carries its own tag).
#[tokio::test]
async fn concurrent_attaches_are_all_listed() {
    let reg = TestRegistry::open();
    let client = std::sync::Arc::new(open_client());
    let src = tempfile::tempdir().unwrap();
    make_image(src.path(), "v1", &[data(2, 1000)], "2024-01-01T00:00:00Z");
    let dst = format!("{}/app/race:1", reg.host);
    copy(
        &client,
        &ImageStore::parse(&format!("oci:{}:v1", src.path().display())).unwrap(),
        &ImageStore::parse(&dst).unwrap(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let subject = Reference::parse(&dst).unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = client.clone();
        let subject = subject.clone();
        tasks.push(tokio::spawn(async move {
            attach_artifact(
                &client,
                &subject,
                "application/vnd.shipline.approval.v1",
                vec![ArtifactBlob {
                    media_type: "application/vnd.shipline.approval.v1+json".into(),
                    data: Bytes::from(format!("{{\"n\":{i}}}")),
                    annotations: BTreeMap::new(),
                }],
                BTreeMap::from([("n".to_owned(), i.to_string())]),
            )
            .await
            .unwrap()
        }));
    }
    let mut attached = Vec::new();
    for t in tasks {
        attached.push(t.await.unwrap());
    }
    attached.sort();
    let listed = list_referrers(
        &client,
        &subject,
        Some("application/vnd.shipline.approval.v1"),
    )
    .await
    .unwrap();
    let mut digests: Vec<_> = listed.iter().map(|d| d.digest.clone()).collect();
    digests.sort();
    assert_eq!(digests, attached, "every concurrent attach is listed once");
    for d in &listed {
        assert!(d.annotations.contains_key("n"), "annotations kept: {d:?}");
    }
    // the other tags of the repository are untouched and the artifacts are not images to list
    let tags = client.list_tags(&subject).await.unwrap();
    assert!(tags.contains(&"1".to_owned()));
}
