//! The approval directory: save, load, resolve ids, revoke; and check_for_deploy's fail-closed
//! handling of a stored approval whose signature file is missing.

use chrono::Utc;
use shipline_core::approval::{ApprovalDir, ApprovalError, Check, Revocation};

use crate::approval::common::*;

#[test]
fn save_load_resolve_and_revoke() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ApprovalDir::new(ENV, tmp.path().join("approvals").join(ENV));
    assert!(dir.load_all().expect("empty dir").is_empty());
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.alice);
    let id = signed.id();
    let path = dir.save(&signed).expect("save");
    assert_eq!(path, dir.payload_path(&id));
    let loaded = dir.load_all().expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].payload, signed.payload);
    assert_eq!(loaded[0].signature, signed.signature);
    assert_eq!(dir.resolve(&id[..8]).expect("prefix"), id);
    assert!(matches!(
        dir.resolve("zzzz"),
        Err(ApprovalError::NotFound { .. })
    ));
    assert!(matches!(
        dir.resolve("ab"),
        Err(ApprovalError::NotFound { .. })
    ));

    verify(
        &keys.policy(1, false),
        &digest('a'),
        &loaded,
        &dir.revocations().expect("none"),
    )
    .expect("valid before revocation");
    let rev = Revocation {
        id: id.clone(),
        revoked_by: "carol@example.com".into(),
        revoked_at: Utc::now(),
        reason: None,
    };
    dir.revoke(rev.clone()).expect("revoke");
    dir.revoke(rev).expect("revoking twice is fine");
    let revocations = dir.revocations().expect("read revocations");
    assert_eq!(revocations.revoked.len(), 1);
    match verify(&keys.policy(1, false), &digest('a'), &loaded, &revocations) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::Revoked),
        other => panic!("expected revoked, got {other:?}"),
    }
}

#[test]
fn a_payload_without_its_signature_is_refused_as_forged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ApprovalDir::new(ENV, tmp.path().join("approvals").join(ENV));
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.alice);
    dir.save(&signed).expect("save");
    std::fs::remove_file(dir.signature_path(&signed.id())).expect("remove sig");
    let loaded = dir.load_all().expect("load");
    match verify(
        &keys.policy(1, false),
        &digest('a'),
        &loaded,
        &dir.revocations().expect("r"),
    ) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::ForgedSignature),
        other => panic!("expected forged, got {other:?}"),
    }
}

#[test]
fn check_for_deploy_reads_the_store_and_fails_closed() {
    use shipline_core::approval::{check_for_deploy, check_for_deploy_opt};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/approval/project/shipline.toml");
    let config = shipline_core::config::Config::load(&path).expect("fixture config");
    let keys = Keys::new();
    let mut prod = config.environment("prod").expect("prod").clone();
    if let Some(p) = prod.approval.as_mut() {
        p.approvers[0].public_key = public_line(&keys.alice);
    }
    let dev = config.environment("dev").expect("dev").clone();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = shipline_core::store::Store::open(tmp.path()).expect("store");
    let now = chrono::Utc::now();
    let none = || Ok(Vec::new());

    // dev deploys automatically: nothing required, with or without a digest.
    assert_eq!(
        check_for_deploy(&store, &dev, &digest('a'), now, none)
            .expect("dev")
            .required,
        0
    );
    assert_eq!(
        check_for_deploy_opt(&store, &dev, None, now, none)
            .expect("dev")
            .required,
        0
    );
    // prod: no approval yet, deploy by tag, then a stored approval.
    match check_for_deploy(&store, &prod, &digest('a'), now, none) {
        Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::TooFewApprovals),
        other => panic!("expected too few approvals, got {other:?}"),
    }
    assert!(matches!(
        check_for_deploy_opt(&store, &prod, None, now, none),
        Err(ApprovalError::DigestRequired { .. })
    ));
    assert!(matches!(
        check_for_deploy(&store, &prod, "latest", now, none),
        Err(ApprovalError::InvalidDigest { .. })
    ));
    let mut req = request("alice@example.com");
    req.created = now - chrono::Duration::minutes(5);
    ApprovalDir::in_store(&store, "prod")
        .save(&sign(req, &keys.alice))
        .expect("save");
    let d = check_for_deploy_opt(&store, &prod, Some(&digest('a')), now, none).expect("approved");
    assert_eq!(d.approvers(), ["alice@example.com"]);
    // A registry error fails the check even when the local store would be enough.
    let remote_down = || {
        Err(ApprovalError::Remote {
            source_name: "registry".into(),
            source: "connection refused".into(),
        })
    };
    assert!(matches!(
        check_for_deploy(&store, &prod, &digest('a'), now, remote_down),
        Err(ApprovalError::Remote { .. })
    ));
}

#[test]
fn concurrent_revocations_are_all_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ApprovalDir::new(ENV, tmp.path().join("approvals").join(ENV));
    let ids: Vec<String> = (0..8).map(|i| format!("{i:064x}")).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let dir = dir.clone();
            s.spawn(move || {
                dir.revoke(Revocation {
                    id: id.clone(),
                    revoked_by: "carol@example.com".into(),
                    revoked_at: Utc::now(),
                    reason: None,
                })
                .expect("revoke");
            });
        }
    });
    let list = dir.revocations().expect("read");
    for id in &ids {
        assert!(list.find(id).is_some(), "lost revocation {id}");
    }
    assert_eq!(list.revoked.len(), ids.len());
}
