//! `shipline.toml`: one file describes a project's pipeline.
//!
//! [`Config::load`] parses the file, resolves relative paths against its directory and checks
//! everything it can without side effects: types, unknown keys (with a "did you mean"), branch
//! mappings, scanners, durations, approver keys, and the files the config points to. Every
//! problem is reported at once as a [`Diagnostic`] with file:line:column and a hint.
//!
//! ```no_run
//! let config = shipline_core::config::Config::load(std::path::Path::new("shipline.toml"))?;
//! let dev = config.environment_for_branch("dev").expect("dev is configured");
//! assert_eq!(dev.tag_variable, "IMAGE_TAG");
//! # Ok::<(), shipline_core::config::ConfigError>(())
//! ```

mod error;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use error::{ConfigError, Diagnostic};
pub use raw::ScannerName;

/// The file name searched for by [`discover`].
pub const FILE_NAME: &str = "shipline.toml";

/// A loaded, validated pipeline configuration. Paths are absolute.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The config file.
    pub path: PathBuf,
    /// Its directory; relative paths resolve against it.
    pub root: PathBuf,
    /// `[project]`.
    pub project: Project,
    /// `[image]`: what to build and how to tag it.
    pub image: ImageConfig,
    /// `[test]`: a command run inside the built image.
    pub test: Option<TestConfig>,
    /// `[scan]`: scanners and the gate policy.
    pub scan: ScanConfig,
    /// `[registry]`: where images go. `None`: the embedded OCI layout under the store.
    pub registry: Option<RegistryConfig>,
    /// `[environments.NAME]`, by name.
    pub environments: BTreeMap<String, Environment>,
    /// The run store, lock and approval directory (default `.shipline/` beside the config).
    pub store_dir: PathBuf,
}

/// `[project]`.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Project name.
    pub name: String,
}

/// `[image]`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageConfig {
    /// Image repository without tag (`ghcr.io/hestami-ai/api`).
    pub repository: String,
    /// Build context directory.
    pub context: PathBuf,
    /// Dockerfile.
    pub dockerfile: PathBuf,
    /// Multi-stage build target.
    pub target: Option<String>,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// Extra tag templates (`{sha}`, `{sha7}`, `{branch}`); the commit SHA tag is always applied.
    pub tags: Vec<String>,
    /// Allow env files (`.env*`) in the build context.
    pub allow_env_files: bool,
}

/// `[test]`.
#[derive(Debug, Clone, Serialize)]
pub struct TestConfig {
    /// Command (argv) run in a container from the built image.
    pub command: Vec<String>,
    /// Time limit.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// `[scan]`.
#[derive(Debug, Clone, Serialize)]
pub struct ScanConfig {
    /// Scanners to run, in a stable order.
    pub scanners: Vec<ScannerName>,
    /// Gate policy file.
    pub policy: Option<PathBuf>,
    /// Baseline file (only new findings fail).
    pub baseline: Option<PathBuf>,
    /// Trivy options.
    pub trivy: TrivyConfig,
    /// Semgrep options.
    pub semgrep: SemgrepConfig,
    /// SARIF reports to import.
    pub sarif: Vec<PathBuf>,
    /// Extra Traefik config files for the audit.
    pub audit_traefik_config: Vec<PathBuf>,
}

/// `[scan.trivy]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrivyConfig {
    /// Air-gapped flags.
    pub offline: bool,
    /// Cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Time limit.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Ingest this report instead of running trivy.
    pub report: Option<PathBuf>,
    /// The trivy binary (default: `trivy` on PATH).
    pub binary: Option<PathBuf>,
}

/// `[scan.semgrep]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SemgrepConfig {
    /// Local rule files or directories (`--config`).
    pub config: Vec<PathBuf>,
    /// Paths to scan (default: the build context).
    pub paths: Vec<PathBuf>,
    /// Time limit.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Ingest this report instead of running semgrep.
    pub report: Option<PathBuf>,
    /// The semgrep binary (default: `semgrep` on PATH).
    pub binary: Option<PathBuf>,
}

/// `[registry]`: names where credentials come from, never the secrets.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryConfig {
    /// Registry host (`ghcr.io`, `localhost:5000`).
    pub host: String,
    /// Env var holding the user name.
    pub username_env: Option<String>,
    /// Env var holding the password or token.
    pub password_env: Option<String>,
    /// Also read `~/.docker/config.json` and credential helpers.
    pub docker_config: bool,
    /// Allow plain HTTP to this host.
    pub insecure: bool,
}

/// How an environment is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployMode {
    /// Deploy as soon as the image is pushed.
    Auto,
    /// Deploy only with enough valid approvals for the digest.
    Approval,
}

/// Rollout strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// `up -d --remove-orphans`: brief downtime.
    Recreate,
    /// Scale up, wait healthy, drain and remove old containers: zero downtime.
    Rolling,
}

impl Strategy {
    /// Lowercase name (`rolling`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::Rolling => "rolling",
        }
    }
}

/// `[environments.NAME]`.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// Environment name (`dev`, `prod`).
    pub name: String,
    /// The branch whose pushes deploy here.
    pub branch: String,
    /// Auto or approval.
    pub deploy: DeployMode,
    /// The env file carrying the tag (`.env.local`).
    pub env_file: PathBuf,
    /// The variable carrying the tag (default `IMAGE_TAG`).
    pub tag_variable: String,
    /// Compose project name (`-p`).
    pub compose_project: String,
    /// Compose files, in `-f` order.
    pub compose_files: Vec<PathBuf>,
    /// Compose project directory.
    pub compose_dir: PathBuf,
    /// Optional deploy script run before the rollout.
    pub deploy_hook: Option<PathBuf>,
    /// External networks shipline may create when missing.
    pub create_networks: Vec<String>,
    /// Health verification.
    pub health: HealthConfig,
    /// Rollout.
    pub rollout: RolloutConfig,
    /// Image retention.
    pub retention: RetentionConfig,
    /// Deploy the digest that this other environment ran (promotion, no rebuild).
    pub promote_from: Option<String>,
    /// Approval policy (set when `deploy = "approval"`).
    pub approval: Option<ApprovalPolicy>,
}

/// `[environments.NAME.health]`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthConfig {
    /// How long services may take to become healthy.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Poll interval.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Optional URL that must answer 2xx after the rollout.
    pub http_check: Option<String>,
}

/// `[environments.NAME.rollout]`.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutConfig {
    /// Strategy.
    pub strategy: Strategy,
    /// Services rolled one by one (rolling); empty: every service using the image.
    pub services: Vec<String>,
    /// Drain time before old containers stop.
    #[serde(with = "humantime_serde_compat")]
    pub drain: Duration,
}

/// `[environments.NAME.retention]`.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionConfig {
    /// Prune images of this repository older than this (current and previous always kept).
    #[serde(with = "humantime_serde_compat::option")]
    pub prune_after: Option<Duration>,
    /// Keep at least this many images.
    pub keep: usize,
}

/// `[environments.NAME.approval]`.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalPolicy {
    /// Approvals needed.
    pub required: usize,
    /// May an approver approve their own change.
    pub allow_self_approval: bool,
    /// Maximum age of an approval.
    #[serde(with = "humantime_serde_compat")]
    pub max_age: Duration,
    /// Trusted approvers (allowed-signers style).
    pub approvers: Vec<Approver>,
}

/// A trusted approver.
#[derive(Debug, Clone, Serialize)]
pub struct Approver {
    /// Identity (`alice@example.com`).
    pub identity: String,
    /// OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
    pub public_key: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str_at(&text, path)
    }

    /// Parses config text as if it were the file at `path` (relative paths resolve against
    /// its directory, files it names must exist there).
    pub fn from_str_at(text: &str, path: &Path) -> Result<Config, ConfigError> {
        validate::parse(text, path)
    }

    /// The environment a branch deploys to.
    pub fn environment_for_branch(&self, branch: &str) -> Option<&Environment> {
        self.environments.values().find(|e| e.branch == branch)
    }

    /// An environment by name.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.get(name)
    }

    /// The compose stacks of every environment, as the audit reads them (`shipline audit
    /// config` and the `audit` scanner of a run use this one list).
    ///
    /// Each stack is audited under `profile` when given, else the profile its name says
    /// (`prod`, `production`, `dev`, `staging`...), else `prod` for an environment that needs an
    /// approval (the strict rules are the safe guess for a gated environment), else none (only
    /// the rules common to both profiles).
    pub fn audit_stacks(
        &self,
        profile: Option<shipline_scanners::audit::Profile>,
    ) -> Vec<shipline_scanners::audit::StackInput> {
        use shipline_scanners::audit::{Profile, StackInput};
        self.environments
            .values()
            .map(|env| StackInput {
                name: env.name.clone(),
                profile: profile
                    .or_else(|| Profile::parse(&env.name))
                    .or((env.deploy == DeployMode::Approval).then_some(Profile::Prod)),
                compose_files: env.compose_files.clone(),
                env_file: env.env_file.is_file().then(|| env.env_file.clone()),
                project: Some(env.compose_project.clone()),
            })
            .collect()
    }

    /// Configured branches, sorted.
    pub fn branches(&self) -> Vec<&str> {
        let mut b: Vec<&str> = self
            .environments
            .values()
            .map(|e| e.branch.as_str())
            .collect();
        b.sort();
        b
    }
}

/// Finds `shipline.toml` in `start` or its nearest parent.
pub fn discover(start: &Path) -> Result<PathBuf, ConfigError> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(ConfigError::NotFound {
        start: start.to_path_buf(),
    })
}

/// Parses a duration written like `90s`, `5m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim()).ok()
}

/// Serializes durations as humantime strings (`"2m"`).
mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub mod option {
        use std::time::Duration;
        pub fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
                None => s.serialize_none(),
            }
        }
    }
}
