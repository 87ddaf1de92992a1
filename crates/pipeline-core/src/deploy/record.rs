//! Deployment records: the per-environment history (`deployments/<env>.json`, rewritten
//! atomically) and the append-only audit log (`audit.log`, JSON lines).

use std::path::{Path, PathBuf};

use super::DeployError;

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new version runs and is verified.
    Succeeded,
    /// The new version failed; the previous one was restored.
    RolledBack,
    /// The new version failed and restoring the previous one failed too.
    Failed,
    /// An interrupted deploy was found and the previous version restored.
    Repaired,
}

/// One deployment, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeploymentRecord {
    /// Record format version (1).
    pub version: u32,
    /// Unique id.
    pub id: String,
    /// The environment.
    pub env: String,
    /// The image reference deployed (`repository:tag`).
    pub image: String,
    /// The tag written to the env file.
    pub tag: String,
    /// The image ID (`sha256:` of the config) that ran.
    pub image_id: Option<String>,
    /// The requested/verified manifest digest, when deploying by digest.
    pub digest: Option<String>,
    /// The tag that ran before.
    pub previous_tag: Option<String>,
    /// `recreate` or `rolling`.
    pub strategy: String,
    /// Who deployed (user@host).
    pub who: String,
    /// Why (free text, e.g. the run id or `rollback`).
    pub reason: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The outcome.
    pub outcome: Outcome,
    /// What failed, when it did.
    pub error: Option<String>,
}

fn history_path(store_dir: &Path, env: &str) -> PathBuf {
    store_dir.join("deployments").join(format!("{env}.json"))
}

/// The recorded deployments of `env`, oldest first.
pub fn history(store_dir: &Path, env: &str) -> Result<Vec<DeploymentRecord>, DeployError> {
    let path = history_path(store_dir, env);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| DeployError::Io {
            path,
            source: std::io::Error::other(e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(DeployError::io(&path)(e)),
    }
}

/// The last successful deployment of `env` other than `tag` (the one to roll back to).
pub fn last_good(
    records: &[DeploymentRecord],
    except_tag: Option<&str>,
) -> Option<DeploymentRecord> {
    records
        .iter()
        .rev()
        .filter(|r| r.outcome == Outcome::Succeeded)
        .find(|r| Some(r.tag.as_str()) != except_tag)
        .cloned()
}

/// Appends `record` to the history and the audit log.
pub fn append(store_dir: &Path, record: &DeploymentRecord) -> Result<(), DeployError> {
    let mut all = history(store_dir, &record.env)?;
    all.push(record.clone());
    let path = history_path(store_dir, &record.env);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(DeployError::io(d))?;
    }
    let bytes = serde_json::to_vec_pretty(&all).map_err(|e| DeployError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    atomic_write(&path, &bytes).map_err(DeployError::io(&path))?;
    audit(
        store_dir,
        &serde_json::json!({"event": "deployment", "record": record}),
    )
}

/// Appends one JSON line to the store's append-only `audit.log`.
pub fn audit(store_dir: &Path, event: &serde_json::Value) -> Result<(), DeployError> {
    crate::store::Store::open(store_dir)?.append_audit(event)?;
    Ok(())
}

pub(crate) use crate::store::atomic_write;
