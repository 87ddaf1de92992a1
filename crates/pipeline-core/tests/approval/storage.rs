//! The approval directory: save, load, resolve ids, revoke; and check_for_deploy's fail-closed
//! handling of a stored approval whose signature file is missing.

use chrono::Utc;
use shipline_core::approval::{ApprovalDir, ApprovalError, Check, Revocation};

use crate::common::*;

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
