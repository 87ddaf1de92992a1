//! SSHSIG signing and the trusted-approver set, compatible with `ssh-keygen -Y sign|verify`.

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::record::{approval_id, Approval};
use super::ApprovalError;
use crate::config::ApprovalPolicy;

/// The SSHSIG namespace of shipline approvals (`ssh-keygen -Y sign -n shipline-approval`).
pub const NAMESPACE: &str = "shipline-approval";

/// Where a candidate approval was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A payload file in the local store.
    Local(PathBuf),
    /// An OCI artifact in a registry (the artifact's reference).
    Registry(String),
    /// Made in memory (just signed, or given by a test).
    Memory,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Local(p) => write!(f, "{}", p.display()),
            Origin::Registry(r) => write!(f, "{r}"),
            Origin::Memory => f.write_str("memory"),
        }
    }
}

/// A candidate approval: the exact payload bytes and the armored SSHSIG over them.
///
/// Nothing about it is trusted until [`super::verify_approvals`] has checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedApproval {
    /// Payload bytes exactly as signed (canonical JSON of an [`Approval`] when shipline made it).
    pub payload: Vec<u8>,
    /// `-----BEGIN SSH SIGNATURE-----` armored signature.
    pub signature: String,
    /// Where it was found.
    pub origin: Origin,
}

impl SignedApproval {
    /// The approval id: hex SHA-256 of the payload.
    pub fn id(&self) -> String {
        approval_id(&self.payload)
    }

    /// The payload parsed, without any verification.
    pub fn approval_unverified(&self) -> Result<Approval, serde_json::Error> {
        Approval::from_payload(&self.payload)
    }
}

/// Reads an OpenSSH private key; an encrypted key needs `passphrase`.
pub fn load_signing_key(
    path: &Path,
    passphrase: Option<&str>,
) -> Result<PrivateKey, ApprovalError> {
    let key = PrivateKey::read_openssh_file(path).map_err(|source| ApprovalError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let Some(pass) = passphrase else {
        return Err(ApprovalError::DecryptKey {
            path: path.to_path_buf(),
            hint: "the key is encrypted; pass its passphrase in SHIPLINE_KEY_PASSPHRASE".into(),
        });
    };
    key.decrypt(pass).map_err(|_| ApprovalError::DecryptKey {
        path: path.to_path_buf(),
        hint: "wrong passphrase".into(),
    })
}

/// Signs an approval with `key` in the SSHSIG format (namespace [`NAMESPACE`], SHA-512).
pub fn sign_approval(
    approval: &Approval,
    key: &PrivateKey,
) -> Result<SignedApproval, ApprovalError> {
    let payload = approval.to_canonical_json();
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, &payload)
        .map_err(|source| ApprovalError::Sign { source })?;
    let signature = sig
        .to_pem(LineEnding::LF)
        .map_err(|source| ApprovalError::Sign { source })?;
    Ok(SignedApproval {
        payload,
        signature,
        origin: Origin::Memory,
    })
}

/// One trusted approver with its parsed key.
#[derive(Debug, Clone)]
pub struct TrustedApprover {
    /// Identity as written in the config.
    pub identity: String,
    /// Parsed public key.
    pub key: PublicKey,
}

/// The trusted approvers of one environment, parsed from its [`ApprovalPolicy`].
#[derive(Debug, Clone)]
pub struct TrustedApprovers {
    approvers: Vec<TrustedApprover>,
}

impl TrustedApprovers {
    /// Parses every approver key of the policy; an unparsable key is a config error.
    pub fn from_policy(policy: &ApprovalPolicy) -> Result<TrustedApprovers, ApprovalError> {
        let approvers = policy
            .approvers
            .iter()
            .map(|a| {
                PublicKey::from_openssh(a.public_key.trim())
                    .map(|key| TrustedApprover {
                        identity: a.identity.clone(),
                        key,
                    })
                    .map_err(|source| ApprovalError::ApproverKey {
                        identity: a.identity.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedApprovers { approvers })
    }

    /// The approvers, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &TrustedApprover> {
        self.approvers.iter()
    }

    /// Identities that hold exactly this key (key material compared, comments ignored).
    pub fn identities_for(&self, key: &ssh_key::public::KeyData) -> Vec<&str> {
        self.approvers
            .iter()
            .filter(|a| a.key.key_data() == key)
            .map(|a| a.identity.as_str())
            .collect()
    }

    /// The identity of the private key's public half, if trusted (first match in config order).
    pub fn identity_of(&self, key: &PrivateKey) -> Option<&str> {
        self.identities_for(key.public_key().key_data())
            .into_iter()
            .next()
    }

    /// An OpenSSH `allowed_signers` file for these approvers, restricted to [`NAMESPACE`]:
    /// use it with `ssh-keygen -Y verify -f FILE -I IDENTITY -n shipline-approval -s SIG < PAYLOAD`.
    pub fn allowed_signers(&self) -> String {
        let mut out = String::new();
        for a in &self.approvers {
            let key = a.key.to_openssh().unwrap_or_default();
            out.push_str(&format!(
                "{} namespaces=\"{NAMESPACE}\" {key}\n",
                allowed_signers_principal(&a.identity)
            ));
        }
        out
    }
}

/// Quotes a principal for an allowed_signers line when it contains spaces or quotes.
fn allowed_signers_principal(identity: &str) -> String {
    if identity
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '#')
    {
        format!("\"{}\"", identity.replace('"', ""))
    } else {
        identity.to_string()
    }
}

/// Outcome of checking the signature alone.
pub(crate) enum SigCheck {
    /// Signature valid for NAMESPACE; the signer's key.
    Valid(ssh_key::public::KeyData),
    /// Not an SSHSIG, wrong namespace, or the signature does not match the payload.
    Invalid(String),
}

/// Verifies the SSHSIG over the payload with the key embedded in the signature.
pub(crate) fn check_signature(candidate: &SignedApproval) -> SigCheck {
    let sig = match SshSig::from_pem(candidate.signature.trim()) {
        Ok(sig) => sig,
        Err(e) => return SigCheck::Invalid(format!("not an SSH signature ({e})")),
    };
    if sig.namespace() != NAMESPACE {
        return SigCheck::Invalid(format!(
            "signature namespace is {:?}, expected {NAMESPACE:?}",
            sig.namespace()
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    match key.verify(NAMESPACE, &candidate.payload, &sig) {
        Ok(()) => SigCheck::Valid(sig.public_key().clone()),
        Err(_) => SigCheck::Invalid("the signature does not match the approval's content".into()),
    }
}

/// SHA256 fingerprint of a key (as `ssh-keygen -l` prints it).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}
