//! Approvals bound to an image digest, signed in the SSHSIG format of `ssh-keygen -Y sign`.
//!
//! An [`Approval`] says "approver X allows digest D of image I to run in environment E until T".
//! Its canonical JSON payload is signed with the approver's SSH key ([`sign_approval`],
//! namespace [`NAMESPACE`]); the payload and the armored signature are stored as
//! `approvals/<env>/<id>.json` and `<id>.json.sig` ([`ApprovalDir`]), so stock OpenSSH verifies
//! them offline:
//!
//! ```text
//! ssh-keygen -Y verify -f allowed_signers -I alice@example.com -n shipline-approval \
//!     -s approvals/prod/<id>.json.sig < approvals/prod/<id>.json
//! ```
//!
//! [`verify_approvals`] decides whether enough valid approvals exist for one environment and one
//! digest, and otherwise names the failed [`Check`]; [`check_for_deploy`] is the one call the
//! deploy makes while holding the environment's lock.
//!
//! ```
//! use shipline_core::approval::{
//!     sign_approval, verify_approvals, Approval, ApprovalRequest, Revocations, VerifyContext,
//! };
//! use shipline_core::config::{ApprovalPolicy, Approver};
//! use ssh_key::{rand_core::OsRng, Algorithm, PrivateKey};
//!
//! let key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)?;
//! let policy = ApprovalPolicy {
//!     required: 1,
//!     allow_self_approval: false,
//!     max_age: std::time::Duration::from_secs(24 * 3600),
//!     approvers: vec![Approver {
//!         identity: "alice@example.com".into(),
//!         public_key: key.public_key().to_openssh()?,
//!     }],
//! };
//! let digest = format!("sha256:{}", "ab".repeat(32));
//! let now = chrono::Utc::now();
//! let approval = Approval::new(ApprovalRequest {
//!     environment: "prod".into(),
//!     image: "ghcr.io/acme/api".into(),
//!     digest: digest.clone(),
//!     commit: None,
//!     scan_verdict: None,
//!     requester: "bob@example.com".into(),
//!     approver: "alice@example.com".into(),
//!     created: now,
//!     valid_for: chrono::Duration::hours(1),
//!     reason: None,
//! })?;
//! let signed = sign_approval(&approval, &key)?;
//! let revocations = Revocations::default();
//! let ctx = VerifyContext { policy: &policy, environment: "prod", digest: &digest, now, revocations: &revocations };
//! let decision = verify_approvals(ctx, &[signed])?;
//! assert_eq!(decision.approvers(), ["alice@example.com"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod oci;
mod record;
mod sign;
mod storage;
mod verify;

pub use error::ApprovalError;
pub use oci::{fetch_approvals, fetch_remote, push_approval, push_revocation, RemoteApprovals};
pub use record::{
    approval_id, scan_verdict_hash, validate_digest, Approval, ApprovalRequest, APPROVAL_VERSION,
};
pub use sign::{
    fingerprint, load_signing_key, sign_approval, Origin, SignedApproval, TrustedApprover,
    TrustedApprovers, NAMESPACE,
};
pub use storage::{ApprovalDir, Revocation, Revocations, REVOCATIONS_FILE};
pub use verify::{
    evaluate_one, short_id, verify_approvals, AcceptedApproval, ApprovalDecision, Check, Refusal,
    Rejection, VerifyContext, CLOCK_SKEW,
};

use chrono::{DateTime, Utc};

use crate::config::{DeployMode, Environment};
use crate::store::Store;

/// Checks, for a deploy of `digest` to `env`, that the environment's approval policy is met.
///
/// Call it while holding the environment's deploy lock. Candidates come from the local store
/// (`approvals/<env>/`, with its revocation list) and from `remote` (e.g. the registry's
/// referrers of the image; pass `|| Ok(Vec::new())` when there is none). `remote` is only called
/// when the environment requires approval. With a registry, fetch first (async) and hand the
/// result over:
///
/// ```ignore
/// let fetched = approval::fetch_approvals(&client, &config.image.repository, digest).await;
/// let decision = approval::check_for_deploy(&store, env, digest, Utc::now(), || fetched)?;
/// ```
///
/// An environment with `deploy = "auto"` and no policy needs no approval: the decision has
/// `required == 0`. An environment with `deploy = "approval"` and no policy fails closed.
pub fn check_for_deploy<F>(
    store: &Store,
    env: &Environment,
    digest: &str,
    now: DateTime<Utc>,
    remote: F,
) -> Result<ApprovalDecision, ApprovalError>
where
    F: FnOnce() -> Result<Vec<SignedApproval>, ApprovalError>,
{
    check_for_deploy_remote(store, env, digest, now, || {
        remote().map(|approvals| RemoteApprovals {
            approvals,
            revocations: Vec::new(),
        })
    })
}

/// [`check_for_deploy`] with what [`fetch_remote`] read from the registry: its approvals are
/// candidates and its revocations apply on top of the local revocation list.
pub fn check_for_deploy_remote<F>(
    store: &Store,
    env: &Environment,
    digest: &str,
    now: DateTime<Utc>,
    remote: F,
) -> Result<ApprovalDecision, ApprovalError>
where
    F: FnOnce() -> Result<RemoteApprovals, ApprovalError>,
{
    validate_digest(digest)?;
    let policy = match (&env.approval, env.deploy) {
        (Some(policy), _) => policy,
        (None, DeployMode::Auto) => {
            return Ok(ApprovalDecision {
                environment: env.name.clone(),
                digest: digest.to_string(),
                required: 0,
                accepted: Vec::new(),
                rejected: Vec::new(),
            })
        }
        (None, DeployMode::Approval) => {
            return Err(ApprovalError::NoPolicy {
                env: env.name.clone(),
            })
        }
    };
    let dir = ApprovalDir::in_store(store, &env.name);
    let mut candidates = dir.load_all()?;
    let fetched = remote()?;
    candidates.extend(fetched.approvals);
    let mut revocations = dir.revocations()?;
    for r in fetched.revocations {
        if revocations.find(&r.id).is_none() {
            revocations.revoked.push(r);
        }
    }
    verify_approvals(
        VerifyContext {
            policy,
            environment: &env.name,
            digest,
            now,
            revocations: &revocations,
        },
        &candidates,
    )
}

/// [`check_for_deploy`] for a deploy that may not know its digest (deploy by tag): an
/// environment that needs approval then refuses with [`ApprovalError::DigestRequired`]; one that
/// needs none passes. Meant for the deploy's gate, run under the environment's lock.
pub fn check_for_deploy_opt<F>(
    store: &Store,
    env: &Environment,
    digest: Option<&str>,
    now: DateTime<Utc>,
    remote: F,
) -> Result<ApprovalDecision, ApprovalError>
where
    F: FnOnce() -> Result<Vec<SignedApproval>, ApprovalError>,
{
    match digest {
        Some(d) => check_for_deploy(store, env, d, now, remote),
        None if env.approval.is_none() && env.deploy == DeployMode::Auto => Ok(ApprovalDecision {
            environment: env.name.clone(),
            digest: String::new(),
            required: 0,
            accepted: Vec::new(),
            rejected: Vec::new(),
        }),
        None => Err(ApprovalError::DigestRequired {
            env: env.name.clone(),
        }),
    }
}
