//! Errors of the approval module.

use std::path::PathBuf;

use super::verify::Refusal;

/// Everything that can go wrong while making, storing or checking approvals.
///
/// A refused approval ([`ApprovalError::Refused`]) is a gate outcome (exit 1); the other variants
/// are configuration, usage or I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The approvals do not allow the deploy; the refusal names the check that failed.
    #[error("{0}")]
    Refused(Box<Refusal>),

    /// The environment requires approvals but has no approval policy.
    #[error("failed to check approvals for environment {env}: it requires approval but has no [environments.{env}.approval] policy")]
    NoPolicy {
        /// Environment name.
        env: String,
    },

    /// The environment requires approval and the deploy names no digest (deploy by tag).
    #[error("failed to check approvals for environment {env}: approvals name an image digest; deploy with --digest sha256:...")]
    DigestRequired {
        /// Environment name.
        env: String,
    },

    /// A trusted approver's public key in the config does not parse.
    #[error("failed to parse the public key of approver {identity}")]
    ApproverKey {
        /// The approver's identity.
        identity: String,
        /// Parse error.
        #[source]
        source: ssh_key::Error,
    },

    /// A digest is not `sha256:<64 hex>` (or `sha512:<128 hex>`).
    #[error("failed to parse digest {digest:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest {
        /// The offending value.
        digest: String,
    },

    /// An approval field is invalid (empty environment, expiry before creation, ...).
    #[error("failed to build approval: {reason}")]
    InvalidApproval {
        /// What is wrong.
        reason: String,
    },

    /// The signing key could not be read or parsed.
    #[error("failed to read signing key {path}")]
    ReadKey {
        /// Key path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: ssh_key::Error,
    },

    /// The signing key is encrypted and no passphrase was given, or the passphrase is wrong.
    #[error("failed to decrypt signing key {path}: {hint}")]
    DecryptKey {
        /// Key path.
        path: PathBuf,
        /// How to fix it.
        hint: String,
    },

    /// The signing key does not belong to a trusted approver of the environment.
    #[error("failed to sign approval for environment {env}: key {fingerprint} is not one of its trusted approvers")]
    SignerNotTrusted {
        /// Environment name.
        env: String,
        /// SHA256 fingerprint of the key.
        fingerprint: String,
    },

    /// SSHSIG signing failed.
    #[error("failed to sign approval")]
    Sign {
        /// Cause.
        #[source]
        source: ssh_key::Error,
    },

    /// A file could not be read or written.
    #[error("failed to {action} {path}")]
    Io {
        /// `read`, `write`, `list`, ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file of the approval store does not parse.
    #[error("failed to parse {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },

    /// No stored approval matches the given id (prefix).
    #[error("failed to find approval {id} for environment {env}")]
    NotFound {
        /// Environment.
        env: String,
        /// Id or prefix asked for.
        id: String,
    },

    /// More than one stored approval matches the given id prefix.
    #[error("failed to find approval {id} for environment {env}: the prefix matches {count} approvals, give more digits")]
    Ambiguous {
        /// Environment.
        env: String,
        /// Prefix asked for.
        id: String,
        /// How many matched.
        count: usize,
    },

    /// Approvals could not be fetched from a remote source (the registry).
    #[error("failed to fetch approvals from {source_name}")]
    Remote {
        /// Where we looked (e.g. the image reference).
        source_name: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ApprovalError {
    /// The process exit code this error maps to ([`crate::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            ApprovalError::Refused(_) | ApprovalError::DigestRequired { .. } => crate::exit::FAILED,
            ApprovalError::NoPolicy { .. }
            | ApprovalError::ApproverKey { .. }
            | ApprovalError::InvalidDigest { .. }
            | ApprovalError::InvalidApproval { .. }
            | ApprovalError::ReadKey { .. }
            | ApprovalError::DecryptKey { .. }
            | ApprovalError::SignerNotTrusted { .. }
            | ApprovalError::NotFound { .. }
            | ApprovalError::Ambiguous { .. } => crate::exit::USAGE,
            ApprovalError::Sign { .. }
            | ApprovalError::Io { .. }
            | ApprovalError::Json { .. }
            | ApprovalError::Remote { .. } => crate::exit::TOOL,
        }
    }

    /// The refusal, when this error is a refused approval.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ApprovalError::Refused(r) => Some(r),
            _ => None,
        }
    }
}
