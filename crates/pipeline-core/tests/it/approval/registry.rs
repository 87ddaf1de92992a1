//! Approvals travel with the image: `push_approval` attaches the signed approval as an OCI
//! artifact whose subject is the image manifest, and a host that only pulls finds and verifies
//! it by digest (real docker-registry = CNCF distribution 2.8, which has no referrers API, so
//! this exercises the `sha256-<hex>` tag fallback).

use shipline_core::approval::{
    check_for_deploy, fetch_approvals, oci, push_approval, ApprovalError, Check,
};
use shipline_core::config::{Approver, DeployMode, Environment};
use std::time::Duration;

use shipline_registry::{ClientOptions, Reference, RegistryClient, RetryPolicy};

use crate::approval::common::*;
use crate::deploy::support::registry::Registry;

/// Pushes a tiny image to `host/acme/api:v1` and returns its manifest digest.
async fn push_image(client: &RegistryClient, host: &str, marker: &str) -> String {
    let repo = Reference::parse(&format!("{host}/acme/api:{marker}")).expect("reference");
    let layer = client
        .push_blob(
            &repo,
            "application/vnd.oci.image.layer.v1.tar",
            format!("layer {marker}").into_bytes().into(),
        )
        .await
        .expect("push layer");
    let config = client
        .push_blob(
            &repo,
            "application/vnd.oci.image.config.v1+json",
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec()
                .into(),
        )
        .await
        .expect("push config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest");
    client
        .push_manifest_raw(&repo, &bytes, "application/vnd.oci.image.manifest.v1+json")
        .await
        .expect("push manifest")
        .to_string()
}

fn environment(keys: &Keys) -> Environment {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/approval/project/shipline.toml");
    let config = shipline_core::config::Config::load(&path).expect("fixture config");
    let mut env = config.environment("prod").expect("prod").clone();
    assert_eq!(env.deploy, DeployMode::Approval);
    let policy = env.approval.as_mut().expect("policy");
    policy.approvers = vec![Approver {
        identity: "alice@example.com".into(),
        public_key: public_line(&keys.alice),
    }];
    env
}

#[tokio::test]
async fn an_approval_attached_in_the_registry_is_found_and_verified_by_digest() {
    let reg = Registry::start();
    let client = RegistryClient::new(ClientOptions::default()).expect("client");
    let digest = push_image(&client, &reg.host, "v1").await;
    let other = push_image(&client, &reg.host, "v2").await;
    let repository = format!("{}/acme/api", reg.host);

    let keys = Keys::new();
    let mut req = request("alice@example.com");
    req.image = repository.clone();
    req.digest = digest.clone();
    req.created = chrono::Utc::now() - chrono::Duration::minutes(1);
    let signed = sign(req, &keys.alice);
    let artifact = push_approval(&client, &signed)
        .await
        .expect("push approval");

    // The artifact names the image manifest as its subject.
    let art = client
        .get_manifest(
            &Reference::parse(&format!("{repository}@{artifact}")).expect("artifact reference"),
        )
        .await
        .expect("get artifact");
    let v: serde_json::Value = serde_json::from_slice(&art.bytes).expect("artifact json");
    assert_eq!(v["subject"]["digest"], digest.as_str());
    assert_eq!(v["artifactType"], oci::ARTIFACT_TYPE);
    // distribution has no referrers API: the fallback tag exists.
    let tags = client
        .list_tags(&Reference::parse(&format!("{repository}:v1")).expect("ref"))
        .await
        .expect("tags");
    assert!(
        tags.contains(&format!("sha256-{}", &digest[7..])),
        "{tags:?}"
    );

    // A pull-only host finds exactly that approval by digest, byte for byte.
    let fetched = fetch_approvals(&client, &repository, &digest)
        .await
        .expect("fetch");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].payload, signed.payload);
    assert_eq!(fetched[0].signature, signed.signature);
    assert!(fetch_approvals(&client, &repository, &other)
        .await
        .expect("fetch other")
        .is_empty());

    // check_for_deploy with an empty local store accepts it from the registry ...
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = shipline_core::store::Store::open(tmp.path()).expect("store");
    let env = environment(&keys);
    let now = chrono::Utc::now();
    let decision = check_for_deploy(&store, &env, &digest, now, || Ok(fetched.clone()))
        .expect("approved from the registry");
    assert_eq!(decision.approvers(), ["alice@example.com"]);
    assert!(decision.accepted[0].origin.contains("@sha256:"));

    // ... refuses the other digest (the tag moved) and fails closed without the registry.
    let for_other = fetch_approvals(&client, &repository, &other)
        .await
        .expect("fetch");
    match check_for_deploy(&store, &env, &other, now, || Ok(for_other)) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::TooFewApprovals),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let unreachable = format!("127.0.0.1:{closed_port}/acme/api");
    let no_retry = RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(1),
        },
        ..ClientOptions::default()
    })
    .expect("client");
    let err = fetch_approvals(&no_retry, &unreachable, &digest).await;
    assert!(matches!(err, Err(ApprovalError::Remote { .. })), "{err:?}");
    match check_for_deploy(&store, &env, &digest, now, || err.map(|_| Vec::new())) {
        Err(ApprovalError::Remote { .. }) => {}
        other => panic!("expected the registry error, got {other:?}"),
    }
    // A revocation in the local store applies to the registry copy too (same id).
    let dir = shipline_core::approval::ApprovalDir::in_store(&store, "prod");
    dir.revoke(shipline_core::approval::Revocation {
        id: signed.id(),
        revoked_by: "carol@example.com".into(),
        revoked_at: now,
        reason: None,
    })
    .expect("revoke");
    match check_for_deploy(&store, &env, &digest, now, || Ok(fetched)) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::Revoked),
        other => panic!("expected revoked, got {other:?}"),
    }

    // A revocation attached in the registry reaches a deploy host with an empty store.
    let fresh = tempfile::tempdir().expect("tempdir");
    let host_store = shipline_core::store::Store::open(fresh.path()).expect("store");
    let remote = shipline_core::approval::fetch_remote(&client, &repository, &digest)
        .await
        .expect("fetch remote");
    assert_eq!((remote.approvals.len(), remote.revocations.len()), (1, 0));
    shipline_core::approval::check_for_deploy_remote(&host_store, &env, &digest, now, || {
        Ok(remote)
    })
    .expect("approved before the revocation is attached");
    let revocation = shipline_core::approval::Revocation {
        id: signed.id(),
        revoked_by: "carol@example.com".into(),
        revoked_at: now,
        reason: Some("wrong build".into()),
    };
    shipline_core::approval::push_revocation(&client, &repository, &digest, &revocation)
        .await
        .expect("push revocation");
    let remote = shipline_core::approval::fetch_remote(&client, &repository, &digest)
        .await
        .expect("fetch remote");
    assert_eq!(remote.revocations, vec![revocation]);
    assert_eq!(remote.approvals.len(), 1, "the approval itself stays");
    match shipline_core::approval::check_for_deploy_remote(&host_store, &env, &digest, now, || {
        Ok(remote)
    }) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::Revoked),
        other => panic!("expected revoked from the registry, got {other:?}"),
    }
    // fetch_approvals (approvals only) is unaffected by revocation artifacts
    assert_eq!(
        fetch_approvals(&client, &repository, &digest)
            .await
            .expect("fetch")
            .len(),
        1
    );
}
