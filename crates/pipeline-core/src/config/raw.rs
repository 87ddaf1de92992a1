//! The serde shape of `shipline.toml`, exactly as written (relative paths, duration strings).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub project: RawProject,
    pub image: RawImage,
    #[serde(default)]
    pub test: Option<RawTest>,
    #[serde(default)]
    pub scan: Option<RawScan>,
    #[serde(default)]
    pub registry: Option<RawRegistry>,
    #[serde(default)]
    pub store: Option<RawStore>,
    #[serde(default)]
    pub environments: BTreeMap<String, RawEnvironment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProject {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImage {
    pub repository: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub allow_env_files: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTest {
    pub command: Vec<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScan {
    #[serde(default)]
    pub scanners: Vec<ScannerName>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub baseline: Option<String>,
    #[serde(default)]
    pub trivy: Option<RawTrivy>,
    #[serde(default)]
    pub semgrep: Option<RawSemgrep>,
    #[serde(default)]
    pub sarif: Vec<String>,
    #[serde(default)]
    pub audit: Option<RawAudit>,
}

/// A scanner shipline knows how to run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ScannerName {
    /// Trivy on the built image.
    Trivy,
    /// Semgrep on the source tree.
    Semgrep,
    /// SARIF reports imported from other tools.
    Sarif,
    /// shipline's compose/Traefik audit.
    Audit,
}

impl ScannerName {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScannerName::Trivy => "trivy",
            ScannerName::Semgrep => "semgrep",
            ScannerName::Sarif => "sarif",
            ScannerName::Audit => "audit",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrivy {
    #[serde(default)]
    pub offline: bool,
    #[serde(default)]
    pub cache_dir: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub binary: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSemgrep {
    #[serde(default)]
    pub config: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub binary: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    #[serde(default)]
    pub traefik_config: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    pub host: String,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "yes")]
    pub docker_config: bool,
    #[serde(default)]
    pub insecure: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(default)]
    pub dir: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawDeployMode {
    Auto,
    Approval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    pub branch: String,
    #[serde(default)]
    pub deploy: Option<RawDeployMode>,
    pub env_file: String,
    #[serde(default)]
    pub tag_variable: Option<String>,
    #[serde(default)]
    pub compose_project: Option<String>,
    pub compose_files: Vec<String>,
    #[serde(default)]
    pub compose_dir: Option<String>,
    #[serde(default)]
    pub deploy_hook: Option<String>,
    #[serde(default)]
    pub create_networks: Vec<String>,
    #[serde(default)]
    pub health: Option<RawHealth>,
    #[serde(default)]
    pub rollout: Option<RawRollout>,
    #[serde(default)]
    pub retention: Option<RawRetention>,
    #[serde(default)]
    pub promote_from: Option<String>,
    #[serde(default)]
    pub approval: Option<RawApproval>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub http_check: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawStrategy {
    Recreate,
    Rolling,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    #[serde(default)]
    pub strategy: Option<RawStrategy>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub drain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    #[serde(default)]
    pub prune_after: Option<String>,
    #[serde(default)]
    pub keep: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    #[serde(default)]
    pub required: Option<usize>,
    #[serde(default)]
    pub allow_self_approval: bool,
    #[serde(default)]
    pub max_age: Option<String>,
    #[serde(default)]
    pub approvers: Vec<RawApprover>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprover {
    pub identity: String,
    pub public_key: String,
}
