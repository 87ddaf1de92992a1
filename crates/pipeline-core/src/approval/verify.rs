//! Checking candidate approvals against an environment's policy.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::{Approval, APPROVAL_VERSION};
use super::sign::{check_signature, SigCheck, SignedApproval, TrustedApprovers};
use super::storage::Revocations;
use super::ApprovalError;
use crate::config::ApprovalPolicy;

/// Tolerated clock difference between the approver's machine and the deploy host.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The check an approval failed. Ordered from the most to the least serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The signature is not a valid SSHSIG over the payload in the shipline namespace.
    ForgedSignature,
    /// The signing key is not a trusted approver (or not the approver the payload names).
    UntrustedKey,
    /// The payload is not a shipline approval.
    Malformed,
    /// The approval is for another environment.
    WrongEnvironment,
    /// The approval is for another digest (the tag moved).
    WrongDigest,
    /// The approval was revoked.
    Revoked,
    /// The approval expired, is older than the policy's maximum age, or is dated in the future.
    Expired,
    /// The approver approved their own change and the policy forbids it.
    SelfApproval,
    /// Fewer valid approvals than the policy requires.
    TooFewApprovals,
}

impl Check {
    /// Stable machine name (`forged_signature`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::ForgedSignature => "forged_signature",
            Check::UntrustedKey => "untrusted_key",
            Check::Malformed => "malformed",
            Check::WrongEnvironment => "wrong_environment",
            Check::WrongDigest => "wrong_digest",
            Check::Revoked => "revoked",
            Check::Expired => "expired",
            Check::SelfApproval => "self_approval",
            Check::TooFewApprovals => "too_few_approvals",
        }
    }

    /// Human description (`forged signature`, ...).
    pub fn describe(self) -> &'static str {
        match self {
            Check::ForgedSignature => "forged signature",
            Check::UntrustedKey => "untrusted key",
            Check::Malformed => "malformed approval",
            Check::WrongEnvironment => "wrong environment",
            Check::WrongDigest => "wrong digest",
            Check::Revoked => "revoked",
            Check::Expired => "expired",
            Check::SelfApproval => "self-approval not allowed",
            Check::TooFewApprovals => "too few approvals",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A candidate that failed a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Approval id (hex SHA-256 of the payload).
    pub id: String,
    /// Where it was found.
    pub origin: String,
    /// The approver the payload names, when it parsed.
    pub approver: Option<String>,
    /// The failed check.
    pub check: Check,
    /// What exactly was wrong.
    pub detail: String,
}

/// A candidate that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedApproval {
    /// Approval id.
    pub id: String,
    /// Where it was found.
    pub origin: String,
    /// The verified approval.
    pub approval: Approval,
}

/// The outcome of a successful check: enough valid approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalDecision {
    /// Environment.
    pub environment: String,
    /// Digest the approvals were checked for.
    pub digest: String,
    /// Approvals the policy requires (0 when the environment needs none).
    pub required: usize,
    /// Valid approvals (one per approver identity counts).
    pub accepted: Vec<AcceptedApproval>,
    /// Candidates that failed a check (other digests, expired, ...).
    pub rejected: Vec<Rejection>,
}

impl ApprovalDecision {
    /// Distinct approver identities among the accepted approvals.
    pub fn approvers(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .accepted
            .iter()
            .map(|a| a.approval.approver.as_str())
            .collect();
        set.into_iter().collect()
    }
}

/// Why a deploy is refused: the failed check and every rejected candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Environment.
    pub environment: String,
    /// Digest asked for.
    pub digest: String,
    /// The check that decided the refusal.
    pub check: Check,
    /// Explanation of that check's failure.
    pub detail: String,
    /// Approvals required.
    pub required: usize,
    /// Distinct approvers with a valid approval.
    pub valid: usize,
    /// Every rejected candidate.
    pub rejected: Vec<Rejection>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "approval refused for environment {} and digest {}: {}: {}",
            self.environment, self.digest, self.check, self.detail
        )
    }
}

/// Everything one verification needs besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    /// The environment's policy.
    pub policy: &'a ApprovalPolicy,
    /// Environment name.
    pub environment: &'a str,
    /// The digest about to be deployed.
    pub digest: &'a str,
    /// The current time.
    pub now: DateTime<Utc>,
    /// Revoked approval ids.
    pub revocations: &'a Revocations,
}

/// Checks candidates and decides: `Ok` when at least `policy.required` distinct trusted approvers
/// gave a valid approval for exactly this environment and digest; otherwise
/// [`ApprovalError::Refused`] naming the failed check.
///
/// Each candidate is checked in order: signature (SSHSIG, shipline namespace), trusted key, the
/// payload names the key's identity, environment, digest, revocation, expiry (and the policy's
/// `max_age`, and not dated in the future beyond [`CLOCK_SKEW`]), self-approval.
pub fn verify_approvals(
    ctx: VerifyContext<'_>,
    candidates: &[SignedApproval],
) -> Result<ApprovalDecision, ApprovalError> {
    let trusted = TrustedApprovers::from_policy(ctx.policy)?;
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = BTreeSet::new();
    for c in candidates {
        let id = c.id();
        if !seen.insert(id.clone()) {
            continue; // the same approval found twice (store and registry)
        }
        match evaluate(&ctx, &trusted, c) {
            Ok(approval) => accepted.push(AcceptedApproval {
                id,
                origin: c.origin.to_string(),
                approval,
            }),
            Err(r) => rejected.push(r),
        }
    }
    rejected.sort_by(|a, b| (a.check, &a.id).cmp(&(b.check, &b.id)));
    accepted.sort_by(|a, b| (&a.approval.approver, &a.id).cmp(&(&b.approval.approver, &b.id)));
    let required = ctx.policy.required.max(1);
    let decision = ApprovalDecision {
        environment: ctx.environment.to_string(),
        digest: ctx.digest.to_string(),
        required,
        accepted,
        rejected,
    };
    let valid = decision.approvers().len();
    if valid >= required {
        return Ok(decision);
    }
    let (check, detail) = match (valid, decision.rejected.first()) {
        (0, Some(first)) => {
            let others = decision.rejected.len() - 1;
            let more = if others > 0 {
                format!(" ({others} other candidate(s) rejected too)")
            } else {
                String::new()
            };
            (
                first.check,
                format!("approval {}: {}{more}", short_id(&first.id), first.detail),
            )
        }
        (0, None) => (
            Check::TooFewApprovals,
            format!("no approval found; {required} required"),
        ),
        _ => (
            Check::TooFewApprovals,
            format!(
                "{valid} valid approval(s) from {}, {required} required",
                decision.approvers().join(", ")
            ),
        ),
    };
    Err(ApprovalError::Refused(Box::new(Refusal {
        environment: decision.environment,
        digest: decision.digest,
        check,
        detail,
        required,
        valid,
        rejected: decision.rejected,
    })))
}

/// Checks one candidate; `Ok` with the verified approval or the first failed check.
pub fn evaluate_one(
    ctx: &VerifyContext<'_>,
    candidate: &SignedApproval,
) -> Result<Result<Approval, Rejection>, ApprovalError> {
    let trusted = TrustedApprovers::from_policy(ctx.policy)?;
    Ok(evaluate(ctx, &trusted, candidate))
}

fn evaluate(
    ctx: &VerifyContext<'_>,
    trusted: &TrustedApprovers,
    c: &SignedApproval,
) -> Result<Approval, Rejection> {
    let id = c.id();
    let parsed = c.approval_unverified().ok();
    let reject = |check: Check, detail: String| Rejection {
        id: id.clone(),
        origin: c.origin.to_string(),
        approver: parsed.as_ref().map(|a| a.approver.clone()),
        check,
        detail,
    };
    let key = match check_signature(c) {
        SigCheck::Valid(key) => key,
        SigCheck::Invalid(why) => return Err(reject(Check::ForgedSignature, why)),
    };
    let identities = trusted.identities_for(&key);
    if identities.is_empty() {
        let fp = super::sign::fingerprint(&ssh_key::PublicKey::from(key));
        return Err(reject(
            Check::UntrustedKey,
            format!(
                "signed by key {fp}, which is not a trusted approver of {}",
                ctx.environment
            ),
        ));
    }
    let approval = match Approval::from_payload(&c.payload) {
        Ok(a) => a,
        Err(e) => {
            return Err(reject(
                Check::Malformed,
                format!("payload does not parse: {e}"),
            ))
        }
    };
    if approval.version != APPROVAL_VERSION {
        return Err(reject(
            Check::Malformed,
            format!("unsupported approval version {}", approval.version),
        ));
    }
    if !identities.contains(&approval.approver.as_str()) {
        return Err(reject(
            Check::UntrustedKey,
            format!(
                "names approver {} but was signed by the key of {}",
                approval.approver,
                identities.join(", ")
            ),
        ));
    }
    if approval.environment != ctx.environment {
        return Err(reject(
            Check::WrongEnvironment,
            format!(
                "approves environment {}, not {}",
                approval.environment, ctx.environment
            ),
        ));
    }
    if approval.digest != ctx.digest {
        return Err(reject(
            Check::WrongDigest,
            format!(
                "approves digest {}, not {} (the tag may have moved)",
                approval.digest, ctx.digest
            ),
        ));
    }
    if let Some(r) = ctx.revocations.find(&id) {
        return Err(reject(
            Check::Revoked,
            format!(
                "revoked by {} at {}",
                r.revoked_by,
                r.revoked_at.to_rfc3339()
            ),
        ));
    }
    if approval.created > ctx.now + CLOCK_SKEW {
        return Err(reject(
            Check::Expired,
            format!("dated {} in the future", approval.created.to_rfc3339()),
        ));
    }
    if approval.expires <= ctx.now {
        return Err(reject(
            Check::Expired,
            format!("expired at {}", approval.expires.to_rfc3339()),
        ));
    }
    let max_age = chrono::Duration::from_std(ctx.policy.max_age).unwrap_or(chrono::Duration::MAX);
    if approval
        .created
        .checked_add_signed(max_age)
        .is_some_and(|limit| limit <= ctx.now)
    {
        return Err(reject(
            Check::Expired,
            format!(
                "made at {}, older than the maximum age {}",
                approval.created.to_rfc3339(),
                humantime::format_duration(ctx.policy.max_age)
            ),
        ));
    }
    if !ctx.policy.allow_self_approval
        && approval
            .approver
            .trim()
            .eq_ignore_ascii_case(approval.requester.trim())
    {
        return Err(reject(
            Check::SelfApproval,
            format!(
                "{} approved their own change and environment {} does not allow self-approval",
                approval.approver, ctx.environment
            ),
        ));
    }
    Ok(approval)
}

/// First 12 hex digits of an id, for messages.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
