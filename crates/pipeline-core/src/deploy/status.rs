//! `shipline status`: what each environment runs, read from the engine, compared with the
//! last record.

use super::lock::{lock_status, LockStatus};
use super::record::{history, DeploymentRecord, Outcome};
use super::rollout::health_word;
use super::{envwrite, DeployError, DeployTarget};
use crate::engine::Engine;

/// One running container of an environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerStatus {
    /// Compose service.
    pub service: String,
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// `healthy`, `unhealthy`, `starting`, `running` (no health check), `not running`.
    pub health: String,
    /// Since when it runs (RFC 3339).
    pub started_at: String,
}

/// One environment's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvStatus {
    /// Environment.
    pub env: String,
    /// Compose project.
    pub project: String,
    /// The tag the env file holds.
    pub env_file_tag: Option<String>,
    /// The tags of this repository the containers run (sorted, deduplicated).
    pub running_tags: Vec<String>,
    /// Earliest start among the containers running the current tag.
    pub since: Option<String>,
    /// Containers.
    pub containers: Vec<ContainerStatus>,
    /// The last deployment record.
    pub last_record: Option<DeploymentRecord>,
    /// True when exactly one tag runs, it is the env file's, and the last successful record's
    /// (or when nothing was ever deployed).
    pub matches_record: bool,
    /// The deploy lock.
    pub lock: LockStatus,
}

/// Reads each target's state from the engine.
pub async fn status(
    engine: &Engine,
    targets: &[DeployTarget],
) -> Result<Vec<EnvStatus>, DeployError> {
    let mut out = Vec::new();
    for t in targets {
        let containers = engine
            .project_containers(&t.compose_project, None, false)
            .await?;
        let prefix = format!("{}:", t.repository);
        let mut tags: Vec<String> = containers
            .iter()
            .filter_map(|c| c.image.strip_prefix(&prefix).map(str::to_string))
            .collect();
        tags.sort();
        tags.dedup();
        let records = history(&t.store_dir, &t.env)?;
        let last = records.last().cloned();
        let last_good = records
            .iter()
            .rev()
            .find(|r| r.outcome == Outcome::Succeeded)
            .map(|r| r.tag.clone());
        let env_file_tag = envwrite::read_var(&t.env_file, &t.tag_variable)?;
        let never_deployed = tags.is_empty() && env_file_tag.is_none() && last_good.is_none();
        let matches_record = never_deployed
            || tags.len() == 1
                && env_file_tag.as_deref() == Some(tags[0].as_str())
                && last_good.as_deref() == Some(tags[0].as_str());
        let since = tags.first().and_then(|tag| {
            let img = t.image(tag);
            containers
                .iter()
                .filter(|c| c.image == img)
                .map(|c| c.started_at.clone())
                .min()
        });
        out.push(EnvStatus {
            env: t.env.clone(),
            project: t.compose_project.clone(),
            env_file_tag,
            running_tags: tags,
            since,
            containers: containers
                .iter()
                .map(|c| ContainerStatus {
                    service: c.service.clone().unwrap_or_default(),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    health: health_word(c.health).to_string(),
                    started_at: c.started_at.clone(),
                })
                .collect(),
            last_record: last,
            matches_record,
            lock: lock_status(&t.store_dir.join("locks"), &t.env)?,
        });
    }
    Ok(out)
}
