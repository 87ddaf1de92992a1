//! Deploy: roll an image out to an environment with docker compose, verify it, roll back on
//! failure, never leave a half-deployed stack.
//!
//! One deploy, holding the environment's lock ([`DeployLock`]) from start to record:
//! 1. repair an interrupted previous deploy if its journal is still there;
//! 2. preflight: compose CLI, compose files, `config` with the new tag, external networks,
//!    the image (present or pullable, digest verified), env file writable, rolling services
//!    without `container_name`/published ports, tag variable absent from the process env;
//! 3. write the tag into the env file (atomic, backup kept);
//! 4. run the deploy hook;
//! 5. roll out (`recreate`, or `rolling`: scale ×2 with `--no-recreate`, wait healthy, drain
//!    the old containers, remove them);
//! 6. verify every service healthy (and the optional HTTP check);
//! 7. on any failure after 3: restore the env file, bring the previous version back;
//! 8. record (history + audit log) and prune old images.
//!
//! # Draining, generically
//! An edge like Traefik routes only to containers whose HEALTHCHECK reports healthy. Draining
//! an old container therefore means making *its* health check fail while it keeps serving
//! in-flight requests. shipline runs the drain command in the container with `docker exec`:
//! the service's label `io.shipline.drain` (a JSON array or a whitespace-separated command),
//! default `touch /tmp/drain` (the docker-rollout convention: the image's health check fails
//! when `/tmp/drain` exists). It then waits until the engine reports the container unhealthy
//! (bounded by the health timeout), waits the drain time (for the edge to notice and in-flight
//! requests to finish) and only then stops it. A container without a health check cannot be
//! drained this way: shipline warns and just waits the drain time. A rollback before the old
//! containers were removed un-drains them with `io.shipline.undrain` (default
//! `rm -f /tmp/drain`).
//!
//! ```no_run
//! # async fn demo(target: shipline_core::deploy::DeployTarget) -> Result<(), Box<dyn std::error::Error>> {
//! use shipline_core::deploy::{deploy, DeployRequest};
//! use shipline_core::engine::Engine;
//! let engine = Engine::connect().await?;
//! let req = DeployRequest::new(target, "0123abc".into());
//! let report = deploy(&engine, &req, &|ev| eprintln!("{ev:?}")).await?;
//! println!("{:?}", report.record.outcome);
//! # Ok(()) }
//! ```

mod compose;
mod envwrite;
mod error;
mod lock;
mod process;
mod record;
mod rollout;
mod run;
mod status;

pub use compose::{ComposeCli, ComposeFlavor, ComposeProject};
pub use envwrite::{read_var, restore as restore_env_file, set_var};
pub use error::DeployError;
pub use lock::{lock_status, pid_alive, DeployLock, LockState, LockStatus, Phase};
pub use record::{history, last_good, DeploymentRecord, Outcome};
pub use run::{deploy, release_lock, rollback, DeployReport, FailureReport};
pub use status::{status, ContainerStatus, EnvStatus};

use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::Strategy;

/// Everything a deploy needs to know about one environment (built from the config's
/// environment section, or by hand in tests).
#[derive(Debug, Clone)]
pub struct DeployTarget {
    /// Environment name.
    pub env: String,
    /// Image repository (`ghcr.io/org/app`); the deployed image is `repository:tag`.
    pub repository: String,
    /// The env file compose reads (`--env-file`).
    pub env_file: PathBuf,
    /// The variable holding the tag (default `IMAGE_TAG`).
    pub tag_variable: String,
    /// `-p`.
    pub compose_project: String,
    /// `-f`, in order.
    pub compose_files: Vec<PathBuf>,
    /// Compose project directory.
    pub compose_dir: PathBuf,
    /// Optional deploy hook (run with `SHIPLINE_ENV`, `IMAGE_TAG`, `SHIPLINE_PREVIOUS_TAG`).
    pub deploy_hook: Option<PathBuf>,
    /// External networks shipline may create.
    pub create_networks: Vec<String>,
    /// How long services may take to become healthy.
    pub health_timeout: Duration,
    /// How often health is polled.
    pub health_interval: Duration,
    /// Optional URL that must answer 2xx/3xx after the rollout.
    pub http_check: Option<String>,
    /// Rollout strategy.
    pub strategy: Strategy,
    /// Services rolled one by one with the rolling strategy.
    pub rolling_services: Vec<String>,
    /// Drain time for old containers.
    pub drain: Duration,
    /// Remove this repository's images older than this (never the current or previous).
    pub prune_after: Option<Duration>,
    /// Always keep this many newest images.
    pub keep: usize,
    /// The store directory (`.shipline/`): locks, backups, records, audit log.
    pub store_dir: PathBuf,
}

impl DeployTarget {
    /// Builds the target of environment `env` from the loaded config.
    pub fn from_config(config: &crate::config::Config, env: &str) -> Option<DeployTarget> {
        let e = config.environments.get(env)?;
        Some(DeployTarget {
            env: e.name.clone(),
            repository: config.image.repository.clone(),
            env_file: e.env_file.clone(),
            tag_variable: e.tag_variable.clone(),
            compose_project: e.compose_project.clone(),
            compose_files: e.compose_files.clone(),
            compose_dir: e.compose_dir.clone(),
            deploy_hook: e.deploy_hook.clone(),
            create_networks: e.create_networks.clone(),
            health_timeout: e.health.timeout,
            health_interval: e.health.interval,
            http_check: e.health.http_check.clone(),
            strategy: e.rollout.strategy,
            rolling_services: e.rollout.services.clone(),
            drain: e.rollout.drain,
            prune_after: e.retention.prune_after,
            keep: e.retention.keep,
            store_dir: config.store_dir.clone(),
        })
    }

    /// `repository:tag`.
    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repository)
    }
}

/// One deploy request.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Where to.
    pub target: DeployTarget,
    /// The tag to deploy.
    pub tag: String,
    /// The manifest digest the image must have (`sha256:...`), when deploying by digest.
    pub digest: Option<String>,
    /// The config digest of the manifest `digest` names, read from the registry by the caller.
    /// An image the engine built itself has no repo digest, since repo digests are only
    /// recorded by a pull or a `docker push`; it is accepted when its image ID (its config
    /// digest) equals this one, which identifies the same image.
    pub digest_config: Option<String>,
    /// Why (recorded with the lock and the record).
    pub reason: String,
    /// How long to wait for another deploy of the same environment.
    pub lock_wait: Duration,
    /// Timeout of the deploy hook.
    pub hook_timeout: Duration,
    /// Timeout of each compose call.
    pub compose_timeout: Duration,
    /// A last check run under the lock after preflight, before anything changes (e.g. the
    /// approval policy of the environment for `digest`); refusing aborts the deploy.
    pub gate: Option<DeployGate>,
    /// Credentials for pulling the image when the engine does not have it. The engine reads no
    /// `~/.docker/config.json` itself (the docker CLI does that), so a deploy host logged in
    /// to a private registry must hand them over here; `None` pulls anonymously.
    pub pull_credentials: Option<shipline_registry::Credentials>,
}

/// What a [`DeployGate`] decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateInput {
    /// The environment.
    pub env: String,
    /// `repository:tag`.
    pub image: String,
    /// The local image ID.
    pub image_id: String,
    /// The verified manifest digest, when deploying by digest.
    pub digest: Option<String>,
}

/// The function of a [`DeployGate`]: `Err(reason)` refuses.
pub type GateFn = dyn Fn(&GateInput) -> Result<(), String> + Send + Sync;

/// A check the deploy runs under the environment's lock before changing anything.
#[derive(Clone)]
pub struct DeployGate(pub std::sync::Arc<GateFn>);

impl std::fmt::Debug for DeployGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeployGate(..)")
    }
}

impl DeployRequest {
    /// A request with defaults: no digest, reason `deploy TAG`, no lock wait, 10 min timeouts.
    pub fn new(target: DeployTarget, tag: String) -> Self {
        DeployRequest {
            reason: format!("deploy {tag}"),
            target,
            tag,
            digest: None,
            digest_config: None,
            lock_wait: Duration::ZERO,
            hook_timeout: Duration::from_secs(600),
            compose_timeout: Duration::from_secs(600),
            gate: None,
            pull_credentials: None,
        }
    }
}

/// A progress event of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeployEvent {
    /// A step started or made progress.
    Step {
        /// `lock`, `repair`, `preflight`, `pull`, `env`, `hook`, `rollout`, `drain`, `verify`,
        /// `rollback`, `record`, `prune`.
        step: String,
        /// What happens.
        message: String,
    },
    /// Something the user must see.
    Warning {
        /// What and why.
        message: String,
    },
}

pub(crate) fn step(on: &(dyn Fn(DeployEvent) + Send + Sync), step: &str, message: String) {
    on(DeployEvent::Step {
        step: step.to_string(),
        message,
    });
}
