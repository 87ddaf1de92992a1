//! Tag listing (paginated), deletion, retention.

use std::time::Duration;

use shipline_registry::{
    copy, prune, CopyOptions, ImageStore, PruneAction, PruneOptions, Reference, RegistryError,
};

use crate::support::image::{bytes, make_image};
use crate::support::open_client;
use crate::support::proxy::FaultProxy;
use crate::support::registry::TestRegistry;

async fn push_tags(host: &str, repo: &str, tags: &[(&str, &str)]) {
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    for (i, (tag, created)) in tags.iter().enumerate() {
        make_image(src.path(), tag, &[bytes(i as u64 + 10, 500)], created);
        copy(
            &client,
            &ImageStore::parse(&format!("oci:{}:{tag}", src.path().display())).unwrap(),
            &ImageStore::parse(&format!("{host}/{repo}:{tag}")).unwrap(),
            &CopyOptions::default(),
        )
        .await
        .unwrap();
    }
}

/// The retention these tests apply, as on 2024-03-06: of the tags matching `pattern` (all
/// without one), keep the newest and delete those older than 7 days.
fn week_retention(pattern: Option<&str>, dry_run: bool) -> PruneOptions {
    PruneOptions {
        keep: 1,
        older_than: Some(Duration::from_secs(7 * 86400)),
        pattern: pattern.map(str::to_owned),
        dry_run,
        now: chrono::DateTime::parse_from_rfc3339("2024-03-06T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    }
}

#[tokio::test]
async fn tags_are_listed_across_pages() {
    use crate::support::proxy::{Fault, Rule};
    let reg = TestRegistry::open();
    push_tags(
        &reg.host,
        "many/app",
        &[("a", "2024-01-01T00:00:00Z"), ("c", "2024-01-01T00:00:00Z")],
    )
    .await;
    // distribution 2.8 ignores `n`; the proxy serves a first page with a `Link` to the next
    let proxy = FaultProxy::start(&reg.host).await;
    proxy.add(Rule::new(
        Some("GET"),
        "/tags/list?n=1000",
        Fault::Respond(
            200,
            vec![
                ("content-type".into(), "application/json".into()),
                (
                    "link".into(),
                    "</v2/many/app/tags/list?last=b&n=1000>; rel=\"next\"".into(),
                ),
            ],
            r#"{"name":"many/app","tags":["b","a"]}"#.into(),
        ),
        1,
    ));
    let client = open_client();
    let listed = client
        .list_tags(&Reference::parse(&format!("{}/many/app", proxy.host)).unwrap())
        .await
        .unwrap();
    assert_eq!(listed, vec!["a", "b", "c"]);
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.contains("/tags/list?last=b&n=1000 None")),
        "{log:?}"
    );
}

#[tokio::test]
async fn prune_keeps_newest_and_deletes_old_matching_tags() {
    let reg = TestRegistry::open();
    push_tags(
        &reg.host,
        "ret/app",
        &[
            ("build-1", "2024-01-01T00:00:00Z"),
            ("build-2", "2024-02-01T00:00:00Z"),
            ("build-3", "2024-03-01T00:00:00Z"),
            ("build-4", "2024-03-05T00:00:00Z"),
            ("release", "2023-01-01T00:00:00Z"),
        ],
    )
    .await;
    let client = open_client();
    let repo = Reference::parse(&format!("{}/ret/app", reg.host)).unwrap();
    let mut opts = week_retention(Some("build-*"), true);
    let plan = prune(&client, &repo, &opts).await.unwrap();
    let summary: Vec<String> = plan
        .entries
        .iter()
        .map(|e| format!("{} {:?}", e.tag, e.action))
        .collect();
    insta::assert_debug_snapshot!(summary, @r#"
    [
        "build-4 Keep(\"among the newest 1\")",
        "build-3 Keep(\"newer than the age limit\")",
        "build-2 WouldDelete",
        "build-1 WouldDelete",
    ]
    "#);
    assert_eq!(
        client.list_tags(&repo).await.unwrap().len(),
        5,
        "dry run deletes nothing"
    );
    opts.dry_run = false;
    let done = prune(&client, &repo, &opts).await.unwrap();
    assert_eq!((done.deleted(), done.failed()), (2, 0), "{done:?}");
    assert_eq!(
        client.list_tags(&repo).await.unwrap(),
        vec![
            "build-3".to_owned(),
            "build-4".to_owned(),
            "release".to_owned()
        ]
    );
    assert!(done
        .entries
        .iter()
        .any(|e| e.tag == "build-1" && e.action == PruneAction::Deleted));
}

/// A tag outside the pattern that shares its digest with a pruned tag survives: where the
/// registry deletes only by digest, that manifest is left alone rather than taking the
/// unmatched tag with it.
#[tokio::test]
async fn prune_never_takes_an_unmatched_tag_along_with_a_shared_digest() {
    let reg = TestRegistry::open();
    push_tags(
        &reg.host,
        "share/app",
        &[
            ("build-1", "2024-01-01T00:00:00Z"),
            ("build-2", "2024-01-02T00:00:00Z"),
            ("build-3", "2024-03-05T00:00:00Z"),
        ],
    )
    .await;
    let client = open_client();
    // `stable` is build-1 under another name, outside the pattern
    copy(
        &client,
        &ImageStore::parse(&format!("{}/share/app:build-1", reg.host)).unwrap(),
        &ImageStore::parse(&format!("{}/share/app:stable", reg.host)).unwrap(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let repo = Reference::parse(&format!("{}/share/app", reg.host)).unwrap();
    let opts = week_retention(Some("build-*"), false);
    let done = prune(&client, &repo, &opts).await.unwrap();
    let summary: Vec<String> = done
        .entries
        .iter()
        .map(|e| format!("{} {:?}", e.tag, e.action))
        .collect();
    insta::assert_debug_snapshot!(summary, @r#"
    [
        "build-3 Keep(\"among the newest 1\")",
        "build-2 Deleted",
        "build-1 Failed(\"the registry cannot delete tags alone and a kept tag shares this digest\")",
    ]
    "#);
    assert_eq!(
        client.list_tags(&repo).await.unwrap(),
        vec![
            "build-1".to_owned(),
            "build-3".to_owned(),
            "stable".to_owned()
        ]
    );
}

#[tokio::test]
async fn delete_tag_is_refused_clearly_by_distribution_2() {
    let reg = TestRegistry::open();
    push_tags(&reg.host, "del/app", &[("a", "2024-01-01T00:00:00Z")]).await;
    let client = open_client();
    let r = Reference::parse(&format!("{}/del/app:a", reg.host)).unwrap();
    let err = client.delete_tag(&r).await.unwrap_err();
    // distribution 2.8 deletes by digest only; tag deletion is an OCI 1.1 feature
    assert!(
        matches!(err, RegistryError::DeleteUnsupported { status: 400, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("failed to delete 127.0.0.1:"),
        "{err}"
    );
    let d = client.resolve_digest(&r).await.unwrap();
    client.delete_manifest(&r, &d).await.unwrap();
    assert!(matches!(
        client.resolve_digest(&r).await,
        Err(RegistryError::NotFound { .. })
    ));
}

#[tokio::test]
async fn prune_leaves_referrer_tags_alone() {
    let reg = TestRegistry::open();
    push_tags(
        &reg.host,
        "ref/app",
        &[
            ("build-1", "2024-01-01T00:00:00Z"),
            ("build-2", "2024-03-05T00:00:00Z"),
        ],
    )
    .await;
    let client = open_client();
    let repo = Reference::parse(&format!("{}/ref/app", reg.host)).unwrap();
    // an old approval attached to the image that is kept
    shipline_registry::attach_artifact(
        &client,
        &repo.with_tag("build-2").unwrap(),
        "application/vnd.shipline.approval.v1",
        vec![],
        std::collections::BTreeMap::from([(
            "org.opencontainers.image.created".to_owned(),
            "2023-01-01T00:00:00Z".to_owned(),
        )]),
    )
    .await
    .unwrap();
    let before = client.list_tags(&repo).await.unwrap();
    assert_eq!(
        before.len(),
        4,
        "two images, the index and the artifact: {before:?}"
    );
    let done = prune(&client, &repo, &week_retention(None, false))
        .await
        .unwrap();
    let seen: Vec<&str> = done.entries.iter().map(|e| e.tag.as_str()).collect();
    assert_eq!(
        seen,
        vec!["build-2", "build-1"],
        "referrer tags are not images"
    );
    let after = client.list_tags(&repo).await.unwrap();
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().filter(|t| t.starts_with("sha256-")).count() == 2);
}

/// A kept multi-platform index (here outside the pattern) protects its children: a pruned tag
/// naming one of those child manifests is not deleted by digest, which would break the index.
#[tokio::test]
async fn prune_never_breaks_a_kept_index_through_its_children() {
    use crate::support::image::make_index;
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let (_, children) = make_index(src.path(), "stable");
    copy(
        &client,
        &ImageStore::parse(&format!("oci:{}:stable", src.path().display())).unwrap(),
        &ImageStore::parse(&format!("{}/idx/app:stable", reg.host)).unwrap(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    // build-1 is the index's amd64 child under a tag of its own (created 2024-01-01)
    copy(
        &client,
        &ImageStore::parse(&format!("{}/idx/app@{}", reg.host, children[0])).unwrap(),
        &ImageStore::parse(&format!("{}/idx/app:build-1", reg.host)).unwrap(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    push_tags(&reg.host, "idx/app", &[("build-2", "2024-03-05T00:00:00Z")]).await;
    let repo = Reference::parse(&format!("{}/idx/app", reg.host)).unwrap();
    let opts = week_retention(Some("build-*"), false);
    let done = prune(&client, &repo, &opts).await.unwrap();
    let build1 = done.entries.iter().find(|e| e.tag == "build-1").unwrap();
    assert!(
        matches!(&build1.action, PruneAction::Failed(why) if why.contains("kept tag shares")),
        "{done:?}"
    );
    // the index still resolves, and so does its child
    let stable = Reference::parse(&format!("{}/idx/app:stable", reg.host)).unwrap();
    client.get_manifest(&stable).await.expect("index intact");
    let child = Reference::parse(&format!("{}/idx/app@{}", reg.host, children[0])).unwrap();
    client.get_manifest(&child).await.expect("child intact");
}

/// Registries that delete tags (OCI 1.1) answer 202; those that forbid deletes answer 405 with
/// an error body. The answers are given by the fault proxy in front of distribution, which
/// itself only deletes by digest.
#[tokio::test]
async fn tag_delete_accepted_with_202_and_refused_clearly_with_405() {
    use crate::support::proxy::{Fault, Rule};
    let reg = TestRegistry::open();
    push_tags(&reg.host, "del202/app", &[("a", "2024-01-01T00:00:00Z")]).await;
    let proxy = FaultProxy::start(&reg.host).await;
    proxy.add(Rule::new(
        Some("DELETE"),
        "/manifests/a",
        Fault::Respond(202, vec![], String::new()),
        1,
    ));
    proxy.add(Rule::new(
        Some("DELETE"),
        "/manifests/b",
        Fault::Respond(
            405,
            vec![("content-type".into(), "application/json".into())],
            r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#
                .into(),
        ),
        1,
    ));
    let client = open_client();
    let a = Reference::parse(&format!("{}/del202/app:a", proxy.host)).unwrap();
    client.delete_tag(&a).await.expect("202 is a deleted tag");
    let b = Reference::parse(&format!("{}/del202/app:b", proxy.host)).unwrap();
    let err = client.delete_tag(&b).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DeleteUnsupported { status: 405, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("does not allow it (HTTP 405") && msg.contains("unsupported"),
        "{msg}"
    );
}
