//! Shared helpers: keys, policies, approvals.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use shipline_core::approval::{
    sign_approval, verify_approvals, Approval, ApprovalDecision, ApprovalError, ApprovalRequest,
    Revocations, SignedApproval, VerifyContext,
};
use shipline_core::config::{ApprovalPolicy, Approver};
use ssh_key::{rand_core::OsRng, Algorithm, PrivateKey};

pub const ENV: &str = "prod";

pub fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub fn new_key() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).expect("generate key")
}

pub fn public_line(key: &PrivateKey) -> String {
    key.public_key().to_openssh().expect("encode public key")
}

/// alice and carol are trusted; mallory is not.
pub struct Keys {
    pub alice: PrivateKey,
    pub carol: PrivateKey,
    pub mallory: PrivateKey,
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            alice: new_key(),
            carol: new_key(),
            mallory: new_key(),
        }
    }

    pub fn policy(&self, required: usize, allow_self_approval: bool) -> ApprovalPolicy {
        ApprovalPolicy {
            required,
            allow_self_approval,
            max_age: Duration::from_secs(24 * 3600),
            approvers: vec![
                Approver {
                    identity: "alice@example.com".into(),
                    public_key: public_line(&self.alice),
                },
                Approver {
                    identity: "carol@example.com".into(),
                    public_key: public_line(&self.carol),
                },
            ],
        }
    }
}

pub fn request(approver: &str) -> ApprovalRequest {
    ApprovalRequest {
        environment: ENV.into(),
        image: "ghcr.io/acme/api".into(),
        digest: digest('a'),
        commit: Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904".into()),
        scan_verdict: Some(shipline_core::approval::scan_verdict_hash(
            b"{\"verdict\":\"pass\"}",
        )),
        requester: "bob@example.com".into(),
        approver: approver.into(),
        created: now() - chrono::Duration::hours(1),
        valid_for: chrono::Duration::hours(8),
        reason: Some("release 1.2".into()),
    }
}

pub fn sign(req: ApprovalRequest, key: &PrivateKey) -> SignedApproval {
    let approval = Approval::new(req).expect("valid approval");
    sign_approval(&approval, key).expect("sign")
}

pub fn verify(
    policy: &ApprovalPolicy,
    digest: &str,
    candidates: &[SignedApproval],
    revocations: &Revocations,
) -> Result<ApprovalDecision, ApprovalError> {
    verify_approvals(
        VerifyContext {
            policy,
            environment: ENV,
            digest,
            now: now(),
            revocations,
        },
        candidates,
    )
}
