//! The approval record and its canonical JSON payload.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::ApprovalError;

/// Version of the approval payload schema.
pub const APPROVAL_VERSION: u32 = 1;

/// One approval: "approver allows `digest` of `image` to run in `environment` until `expires`".
///
/// This is exactly what is signed. Its canonical form ([`Approval::to_canonical_json`]) is compact
/// JSON with the fields in this order and a final newline; the signature covers those bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Schema version ([`APPROVAL_VERSION`]).
    pub version: u32,
    /// Environment the approval is for (`prod`).
    pub environment: String,
    /// Image repository (`ghcr.io/hestami-ai/api`), without tag or digest.
    pub image: String,
    /// Manifest digest of the approved image (`sha256:...`).
    pub digest: String,
    /// Source commit the image was built from, when known.
    pub commit: Option<String>,
    /// `sha256:<hex>` of the scan verdict the approver saw, when known.
    pub scan_verdict: Option<String>,
    /// Who asked for the change (commit author or CI actor).
    pub requester: String,
    /// Trusted approver identity (as listed in the environment's approvers).
    pub approver: String,
    /// When the approval was made (UTC, whole seconds).
    pub created: DateTime<Utc>,
    /// When it stops being valid (also capped by the policy's `max_age`).
    pub expires: DateTime<Utc>,
    /// Free-text reason.
    pub reason: Option<String>,
}

/// Parameters for [`Approval::new`].
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// Environment name.
    pub environment: String,
    /// Image repository.
    pub image: String,
    /// Manifest digest.
    pub digest: String,
    /// Source commit.
    pub commit: Option<String>,
    /// Hash of the scan verdict ([`scan_verdict_hash`]).
    pub scan_verdict: Option<String>,
    /// Who asked for the change.
    pub requester: String,
    /// Approver identity.
    pub approver: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Validity duration from `created`.
    pub valid_for: chrono::Duration,
    /// Free-text reason.
    pub reason: Option<String>,
}

impl Approval {
    /// Builds a validated approval from a request (times truncated to whole seconds).
    pub fn new(req: ApprovalRequest) -> Result<Approval, ApprovalError> {
        validate_digest(&req.digest)?;
        for (name, value) in [
            ("environment", &req.environment),
            ("image", &req.image),
            ("requester", &req.requester),
            ("approver", &req.approver),
        ] {
            if value.trim().is_empty() {
                return Err(ApprovalError::InvalidApproval {
                    reason: format!("{name} is empty"),
                });
            }
        }
        if req.valid_for <= chrono::Duration::zero() {
            return Err(ApprovalError::InvalidApproval {
                reason: "expiry must be after creation".to_string(),
            });
        }
        let created = req.created.trunc_subsecs(0);
        let expires = created.checked_add_signed(req.valid_for).ok_or_else(|| {
            ApprovalError::InvalidApproval {
                reason: "expiry is out of range".to_string(),
            }
        })?;
        if let Some(v) = &req.scan_verdict {
            validate_digest(v)?;
        }
        Ok(Approval {
            version: APPROVAL_VERSION,
            environment: req.environment,
            image: req.image,
            digest: req.digest,
            commit: req.commit,
            scan_verdict: req.scan_verdict,
            requester: req.requester,
            approver: req.approver,
            created,
            expires,
            reason: req.reason,
        })
    }

    /// The canonical payload: compact JSON, fields in declaration order, final newline.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, integers and timestamps cannot fail.
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Parses a payload (any JSON formatting is accepted; unknown fields are refused).
    pub fn from_payload(payload: &[u8]) -> Result<Approval, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// The id of an approval: lowercase hex SHA-256 of its exact payload bytes.
///
/// The same approval has the same id in the local store and in the registry, so a revocation
/// applies wherever the approval is found.
pub fn approval_id(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// `sha256:<hex>` of a scan verdict (the bytes of the gate's JSON verdict or report).
pub fn scan_verdict_hash(verdict: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(verdict)))
}

/// Checks that `digest` is `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
pub fn validate_digest(digest: &str) -> Result<(), ApprovalError> {
    let ok = match digest.split_once(':') {
        Some(("sha256", hex)) => is_lower_hex(hex, 64),
        Some(("sha512", hex)) => is_lower_hex(hex, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApprovalError::InvalidDigest {
            digest: digest.to_string(),
        })
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ApprovalRequest {
        ApprovalRequest {
            environment: "prod".into(),
            image: "ghcr.io/acme/api".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            commit: Some("0123abc".into()),
            scan_verdict: None,
            requester: "bob@example.com".into(),
            approver: "alice@example.com".into(),
            created: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            valid_for: chrono::Duration::hours(24),
            reason: None,
        }
    }

    #[test]
    fn canonical_json_is_stable_and_round_trips() {
        let a = Approval::new(request()).expect("valid");
        let bytes = a.to_canonical_json();
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert_eq!(
            text,
            "{\"version\":1,\"environment\":\"prod\",\"image\":\"ghcr.io/acme/api\",\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"commit\":\"0123abc\",\"scan_verdict\":null,\"requester\":\"bob@example.com\",\"approver\":\"alice@example.com\",\"created\":\"2026-01-02T03:04:05Z\",\"expires\":\"2026-01-03T03:04:05Z\",\"reason\":null}\n"
        );
        assert_eq!(Approval::from_payload(&bytes).expect("parse"), a);
    }

    #[test]
    fn rejects_bad_digests_and_fields() {
        for d in [
            "",
            "sha256:",
            "sha256:ABC",
            "md5:aa",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            let mut r = request();
            r.digest = d.to_string();
            assert!(Approval::new(r).is_err(), "{d}");
        }
        let mut r = request();
        r.approver = " ".into();
        assert!(Approval::new(r).is_err());
        let mut r = request();
        r.valid_for = chrono::Duration::zero();
        assert!(Approval::new(r).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let a = Approval::new(request()).expect("valid");
        let mut v = serde_json::to_value(&a).expect("value");
        v["extra"] = serde_json::json!(true);
        assert!(Approval::from_payload(v.to_string().as_bytes()).is_err());
    }
}
