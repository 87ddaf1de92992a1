//! Approvals on disk: `approvals/<env>/<id>.json` (payload) + `<id>.json.sig` (SSHSIG), and the
//! revocation list `approvals/<env>/revoked.json`.
//!
//! The payload/signature pair is exactly what `ssh-keygen -Y verify -s <id>.json.sig < <id>.json`
//! expects.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::sign::{Origin, SignedApproval};
use super::ApprovalError;
use crate::store::atomic_write;

/// File name of the revocation list inside an environment's approval directory.
pub const REVOCATIONS_FILE: &str = "revoked.json";

/// One revoked approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Approval id (hex SHA-256 of the payload).
    pub id: String,
    /// Who revoked it.
    pub revoked_by: String,
    /// When.
    pub revoked_at: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
}

/// The revocation list of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// Schema version (1).
    pub version: u32,
    /// Revoked approvals.
    pub revoked: Vec<Revocation>,
}

impl Revocations {
    /// The revocation of `id`, if any.
    pub fn find(&self, id: &str) -> Option<&Revocation> {
        self.revoked.iter().find(|r| r.id == id)
    }
}

/// The approval directory of one environment (`<store>/approvals/<env>/`).
#[derive(Debug, Clone)]
pub struct ApprovalDir {
    env: String,
    dir: PathBuf,
}

impl ApprovalDir {
    /// The directory for `env` under an explicit path (usually `Store::approvals_dir(env)`).
    pub fn new(env: impl Into<String>, dir: impl Into<PathBuf>) -> ApprovalDir {
        ApprovalDir {
            env: env.into(),
            dir: dir.into(),
        }
    }

    /// The directory for `env` in a store.
    pub fn in_store(store: &crate::store::Store, env: &str) -> ApprovalDir {
        ApprovalDir::new(env, store.approvals_dir(env))
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Payload path of an approval id.
    pub fn payload_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Signature path of an approval id.
    pub fn signature_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json.sig"))
    }

    /// Writes an approval (signature first, then payload, each atomically); returns the payload path.
    pub fn save(&self, approval: &SignedApproval) -> Result<PathBuf, ApprovalError> {
        let id = approval.id();
        let sig_path = self.signature_path(&id);
        let payload_path = self.payload_path(&id);
        std::fs::create_dir_all(&self.dir).map_err(|source| ApprovalError::Io {
            action: "create",
            path: self.dir.clone(),
            source,
        })?;
        atomic_write(&sig_path, approval.signature.as_bytes()).map_err(|source| {
            ApprovalError::Io {
                action: "write",
                path: sig_path.clone(),
                source,
            }
        })?;
        atomic_write(&payload_path, &approval.payload).map_err(|source| ApprovalError::Io {
            action: "write",
            path: payload_path.clone(),
            source,
        })?;
        Ok(payload_path)
    }

    /// Every stored approval, sorted by id. A payload without a signature file is returned with an
    /// empty signature (verification rejects it as forged rather than hiding it).
    pub fn load_all(&self) -> Result<Vec<SignedApproval>, ApprovalError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ApprovalError::Io {
                    action: "list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ApprovalError::Io {
                action: "list",
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".json") {
                if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        ids.iter().map(|id| self.load(id)).collect()
    }

    /// Loads one approval by full id.
    pub fn load(&self, id: &str) -> Result<SignedApproval, ApprovalError> {
        let payload_path = self.payload_path(id);
        let payload = std::fs::read(&payload_path).map_err(|source| ApprovalError::Io {
            action: "read",
            path: payload_path.clone(),
            source,
        })?;
        let sig_path = self.signature_path(id);
        let signature = match std::fs::read_to_string(&sig_path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ApprovalError::Io {
                    action: "read",
                    path: sig_path,
                    source,
                })
            }
        };
        Ok(SignedApproval {
            payload,
            signature,
            origin: Origin::Local(payload_path),
        })
    }

    /// Resolves an id prefix (at least 4 hex digits) to a stored approval's full id.
    pub fn resolve(&self, prefix: &str) -> Result<String, ApprovalError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let not_found = || ApprovalError::NotFound {
            env: self.env.clone(),
            id: prefix.clone(),
        };
        if prefix.len() < 4 {
            return Err(not_found());
        }
        let matches: Vec<String> = self
            .load_all()?
            .into_iter()
            .map(|a| a.id())
            .filter(|id| id.starts_with(&prefix))
            .collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            count => Err(ApprovalError::Ambiguous {
                env: self.env.clone(),
                id: prefix,
                count,
            }),
        }
    }

    /// Path of the revocation list.
    pub fn revocations_path(&self) -> PathBuf {
        self.dir.join(REVOCATIONS_FILE)
    }

    /// The revocation list (empty when the file does not exist).
    pub fn revocations(&self) -> Result<Revocations, ApprovalError> {
        let path = self.revocations_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| ApprovalError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Revocations {
                version: 1,
                revoked: Vec::new(),
            }),
            Err(source) => Err(ApprovalError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Adds `id` to the revocation list (idempotent: an existing revocation is kept).
    /// Concurrent revocations serialize on `revoked.json.lock`, so none is lost.
    pub fn revoke(&self, revocation: Revocation) -> Result<Revocation, ApprovalError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ApprovalError::Io {
            action: "create",
            path: self.dir.clone(),
            source,
        })?;
        let lock_path = self.dir.join(format!("{REVOCATIONS_FILE}.lock"));
        let lock_err = |source| ApprovalError::Io {
            action: "lock",
            path: lock_path.clone(),
            source,
        };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        fs4::fs_std::FileExt::lock_exclusive(&lock).map_err(lock_err)?;
        // The lock is released when `lock` is dropped (closed) at the end of this function.
        let mut list = self.revocations()?;
        if let Some(existing) = list.find(&revocation.id) {
            return Ok(existing.clone());
        }
        list.version = 1;
        list.revoked.push(revocation.clone());
        let path = self.revocations_path();
        let mut bytes = serde_json::to_vec_pretty(&list).map_err(|source| ApprovalError::Json {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        atomic_write(&path, &bytes).map_err(|source| ApprovalError::Io {
            action: "write",
            path,
            source,
        })?;
        Ok(revocation)
    }
}
