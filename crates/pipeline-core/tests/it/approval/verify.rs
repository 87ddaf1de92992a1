//! verify_approvals: every refusal names its check; a valid approval is accepted.

use chrono::{Duration, Utc};
use shipline_core::approval::{
    ApprovalError, Check, Refusal, Revocation, Revocations, SignedApproval,
};

use crate::approval::common::*;

fn refused(result: Result<shipline_core::approval::ApprovalDecision, ApprovalError>) -> Refusal {
    match result {
        Ok(d) => panic!("expected a refusal, got acceptance by {:?}", d.approvers()),
        Err(ApprovalError::Refused(r)) => *r,
        Err(e) => panic!("expected a refusal, got error {e}"),
    }
}

fn none() -> Revocations {
    Revocations::default()
}

#[test]
fn accepts_a_valid_approval() {
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.alice);
    let decision = verify(
        &keys.policy(1, false),
        &digest('a'),
        std::slice::from_ref(&signed),
        &none(),
    )
    .expect("accepted");
    assert_eq!(decision.approvers(), ["alice@example.com"]);
    assert_eq!(decision.accepted[0].id, signed.id());
    assert_eq!(decision.accepted[0].approval.digest, digest('a'));
    assert!(decision.rejected.is_empty());
}

#[test]
fn refuses_a_forged_signature() {
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.alice);
    // The attacker swaps the digest in the payload but keeps alice's signature.
    let text = String::from_utf8(signed.payload.clone()).expect("utf8");
    let forged = SignedApproval {
        payload: text.replace(&digest('a'), &digest('b')).into_bytes(),
        ..signed.clone()
    };
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('b'),
        &[forged],
        &none(),
    ));
    assert_eq!(r.check, Check::ForgedSignature);
    assert!(r.detail.contains("does not match"), "{}", r.detail);
    assert!(r.to_string().contains("forged signature"), "{r}");

    // Garbage instead of a signature, and a valid SSHSIG from another namespace.
    let garbage = SignedApproval {
        signature: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n".into(),
        ..signed.clone()
    };
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[garbage],
        &none(),
    ));
    assert_eq!(r.check, Check::ForgedSignature);
    let other_ns = keys
        .alice
        .sign("file", ssh_key::HashAlg::Sha512, &signed.payload)
        .expect("sign")
        .to_pem(ssh_key::LineEnding::LF)
        .expect("pem");
    let wrong_ns = SignedApproval {
        signature: other_ns,
        ..signed
    };
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[wrong_ns],
        &none(),
    ));
    assert_eq!(r.check, Check::ForgedSignature);
    assert!(r.detail.contains("namespace"), "{}", r.detail);
}

#[test]
fn refuses_an_untrusted_key() {
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.mallory);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[signed],
        &none(),
    ));
    assert_eq!(r.check, Check::UntrustedKey);
    assert!(
        r.detail.contains("not a trusted approver of prod"),
        "{}",
        r.detail
    );
}

#[test]
fn refuses_a_trusted_key_claiming_another_identity() {
    let keys = Keys::new();
    // carol signs an approval that claims to come from alice.
    let signed = sign(request("alice@example.com"), &keys.carol);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[signed],
        &none(),
    ));
    assert_eq!(r.check, Check::UntrustedKey);
    assert!(r.detail.contains("carol@example.com"), "{}", r.detail);
}

#[test]
fn refuses_an_expired_approval() {
    let keys = Keys::new();
    let mut req = request("alice@example.com");
    req.created = now() - Duration::hours(3);
    req.valid_for = Duration::hours(2);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[sign(req, &keys.alice)],
        &none(),
    ));
    assert_eq!(r.check, Check::Expired);
    assert!(r.detail.contains("expired at"), "{}", r.detail);

    // Valid for a week, but the policy's maximum age is 24h.
    let mut req = request("alice@example.com");
    req.created = now() - Duration::hours(25);
    req.valid_for = Duration::days(7);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[sign(req, &keys.alice)],
        &none(),
    ));
    assert_eq!(r.check, Check::Expired);
    assert!(r.detail.contains("maximum age"), "{}", r.detail);

    // Dated in the future beyond the clock skew.
    let mut req = request("alice@example.com");
    req.created = now() + Duration::hours(1);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[sign(req, &keys.alice)],
        &none(),
    ));
    assert_eq!(r.check, Check::Expired);
    assert!(r.detail.contains("future"), "{}", r.detail);
}

#[test]
fn refuses_an_approval_for_another_environment() {
    let keys = Keys::new();
    let mut req = request("alice@example.com");
    req.environment = "dev".into();
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[sign(req, &keys.alice)],
        &none(),
    ));
    assert_eq!(r.check, Check::WrongEnvironment);
    assert!(
        r.detail.contains("approves environment dev, not prod"),
        "{}",
        r.detail
    );
}

#[test]
fn refuses_an_approval_for_another_digest_when_the_tag_moved() {
    let keys = Keys::new();
    // alice approved the image the tag pointed to then (digest a); the tag now points to b.
    let signed = sign(request("alice@example.com"), &keys.alice);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('b'),
        &[signed],
        &none(),
    ));
    assert_eq!(r.check, Check::WrongDigest);
    assert!(r.detail.contains("the tag may have moved"), "{}", r.detail);
}

#[test]
fn refuses_self_approval_unless_allowed() {
    let keys = Keys::new();
    let mut req = request("alice@example.com");
    req.requester = "Alice@Example.com".into();
    let signed = sign(req, &keys.alice);
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        std::slice::from_ref(&signed),
        &none(),
    ));
    assert_eq!(r.check, Check::SelfApproval);
    let ok = verify(&keys.policy(1, true), &digest('a'), &[signed], &none()).expect("allowed");
    assert_eq!(ok.approvers(), ["alice@example.com"]);
}

#[test]
fn refuses_a_revoked_approval() {
    let keys = Keys::new();
    let signed = sign(request("alice@example.com"), &keys.alice);
    let revocations = Revocations {
        version: 1,
        revoked: vec![Revocation {
            id: signed.id(),
            revoked_by: "carol@example.com".into(),
            revoked_at: Utc::now(),
            reason: Some("wrong build".into()),
        }],
    };
    let r = refused(verify(
        &keys.policy(1, false),
        &digest('a'),
        &[signed],
        &revocations,
    ));
    assert_eq!(r.check, Check::Revoked);
    assert!(
        r.detail.contains("revoked by carol@example.com"),
        "{}",
        r.detail
    );
}

#[test]
fn refuses_too_few_approvals_and_counts_each_approver_once() {
    let keys = Keys::new();
    let policy = keys.policy(2, false);
    let r = refused(verify(&policy, &digest('a'), &[], &none()));
    assert_eq!(r.check, Check::TooFewApprovals);
    assert!(r.detail.contains("no approval found"), "{}", r.detail);

    // alice twice (different reasons) is still one approver.
    let a1 = sign(request("alice@example.com"), &keys.alice);
    let mut req = request("alice@example.com");
    req.reason = Some("again".into());
    let a2 = sign(req, &keys.alice);
    let r = refused(verify(&policy, &digest('a'), &[a1.clone(), a2], &none()));
    assert_eq!(r.check, Check::TooFewApprovals);
    assert_eq!(r.valid, 1);
    assert!(
        r.detail
            .contains("1 valid approval(s) from alice@example.com, 2 required"),
        "{}",
        r.detail
    );

    let c = sign(request("carol@example.com"), &keys.carol);
    let ok = verify(&policy, &digest('a'), &[a1, c], &none()).expect("two approvers");
    assert_eq!(ok.approvers(), ["alice@example.com", "carol@example.com"]);
}

#[test]
fn a_valid_approval_wins_over_rejected_ones_which_are_still_reported() {
    let keys = Keys::new();
    let old = sign(
        ApprovalRequestExt::with_digest(request("alice@example.com"), digest('0')),
        &keys.alice,
    );
    let bad = sign(request("alice@example.com"), &keys.mallory);
    let good = sign(request("carol@example.com"), &keys.carol);
    let d = verify(
        &keys.policy(1, false),
        &digest('a'),
        &[old, bad, good],
        &none(),
    )
    .expect("ok");
    assert_eq!(d.approvers(), ["carol@example.com"]);
    let checks: Vec<Check> = d.rejected.iter().map(|r| r.check).collect();
    assert_eq!(checks, [Check::UntrustedKey, Check::WrongDigest]);
}

#[test]
fn an_unparsable_approver_key_is_a_config_error() {
    let keys = Keys::new();
    let mut policy = keys.policy(1, false);
    policy.approvers[0].public_key = "ssh-ed25519 not-base64".into();
    let signed = sign(request("alice@example.com"), &keys.alice);
    match verify(&policy, &digest('a'), &[signed], &none()) {
        Err(ApprovalError::ApproverKey { identity, .. }) => {
            assert_eq!(identity, "alice@example.com")
        }
        other => panic!("expected ApproverKey error, got {other:?}"),
    }
}

trait ApprovalRequestExt {
    fn with_digest(self, digest: String) -> Self;
}

impl ApprovalRequestExt for shipline_core::approval::ApprovalRequest {
    fn with_digest(mut self, digest: String) -> Self {
        self.digest = digest;
        self
    }
}

/// Every refusal message, with keys from fixed seeds so ids and fingerprints are stable.
#[test]
fn refusal_messages_snapshot() {
    use ssh_key::private::Ed25519Keypair;
    let seeded = |b: u8| ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&[b; 32]));
    let keys = Keys {
        alice: seeded(1),
        carol: seeded(2),
        mallory: seeded(3),
    };
    let policy = keys.policy(1, false);
    let alice = || request("alice@example.com");
    let signed = sign(alice(), &keys.alice);
    let mut cases: Vec<(&str, Vec<SignedApproval>, String, Revocations)> = Vec::new();
    let text = String::from_utf8(signed.payload.clone()).expect("utf8");
    cases.push((
        "forged",
        vec![SignedApproval {
            payload: text.replace(&digest('a'), &digest('b')).into_bytes(),
            ..signed.clone()
        }],
        digest('b'),
        none(),
    ));
    cases.push((
        "untrusted",
        vec![sign(alice(), &keys.mallory)],
        digest('a'),
        none(),
    ));
    cases.push((
        "impersonation",
        vec![sign(alice(), &keys.carol)],
        digest('a'),
        none(),
    ));
    let mut r = alice();
    r.created = now() - Duration::hours(10);
    r.valid_for = Duration::hours(2);
    cases.push(("expired", vec![sign(r, &keys.alice)], digest('a'), none()));
    let mut r = alice();
    r.environment = "dev".into();
    cases.push((
        "other environment",
        vec![sign(r, &keys.alice)],
        digest('a'),
        none(),
    ));
    cases.push(("tag moved", vec![signed.clone()], digest('b'), none()));
    let mut r = alice();
    r.requester = "alice@example.com".into();
    cases.push((
        "self-approval",
        vec![sign(r, &keys.alice)],
        digest('a'),
        none(),
    ));
    let revoked = Revocations {
        version: 1,
        revoked: vec![Revocation {
            id: signed.id(),
            revoked_by: "carol@example.com".into(),
            revoked_at: now(),
            reason: None,
        }],
    };
    cases.push(("revoked", vec![signed.clone()], digest('a'), revoked));
    cases.push(("none", vec![], digest('a'), none()));
    let out: Vec<String> = cases
        .into_iter()
        .map(|(name, candidates, d, revs)| {
            let r = refused(verify(&policy, &d, &candidates, &revs));
            format!("{name}: [{}] {r}", r.check.as_str())
        })
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}
