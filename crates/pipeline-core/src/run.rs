//! The versioned run record: what a run did, stage by stage, written atomically to the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of the run record format; bumped on incompatible changes.
pub const RUN_RECORD_VERSION: u32 = 1;

/// Status of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (or the process died: see `finished_at`).
    Running,
    /// Every stage succeeded.
    Succeeded,
    /// A stage failed.
    Failed,
    /// Stopped by the user.
    Cancelled,
    /// Stopped at the approval gate; resume with `shipline run --resume ID`.
    WaitingApproval,
}

impl RunStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::WaitingApproval => "waiting_approval",
        }
    }
}

/// Status of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not started yet.
    Pending,
    /// Running now.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed.
    Failed,
    /// Not run because a stage it needs did not succeed.
    Skipped,
    /// Stopped by cancellation.
    Cancelled,
    /// Waiting for an approval.
    Waiting,
}

impl StageStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pending => "pending",
            StageStatus::Running => "running",
            StageStatus::Succeeded => "succeeded",
            StageStatus::Failed => "failed",
            StageStatus::Skipped => "skipped",
            StageStatus::Cancelled => "cancelled",
            StageStatus::Waiting => "waiting",
        }
    }
}

/// One stage in a run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Stage id (`build`, `scan:semgrep`, `deploy:dev`).
    pub id: String,
    /// Stage kind.
    pub kind: crate::plan::StageKind,
    /// Ids of the stages it needs.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Outcome.
    pub status: StageStatus,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// How long it ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A one-line summary or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the stage failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<crate::executor::StageErrorKind>,
}

/// The image a run built or deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Repository without tag.
    pub repository: String,
    /// Primary tag (the commit SHA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Manifest digest (`sha256:...`), once pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Local engine image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

/// Findings summary of the scan stages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingsSummary {
    /// `pass`, `fail` or `error`.
    pub verdict: String,
    /// Counts by severity of findings that count against the gate.
    #[serde(default)]
    pub counts: BTreeMap<String, usize>,
    /// Per-scanner status (`ok`, `skipped`, `error`) with a message.
    #[serde(default)]
    pub scanners: Vec<ScannerStatus>,
}

/// One scanner's status in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerStatus {
    /// Scanner name.
    pub name: String,
    /// `ok`, `skipped`, `error`.
    pub status: String,
    /// Why, when skipped or errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`RUN_RECORD_VERSION`].
    pub version: u32,
    /// Run id (sortable: `YYYYMMDDTHHMMSSZ-xxxxxx`).
    pub id: String,
    /// Project name.
    pub project: String,
    /// Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Target environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `run`, `local`, `deploy`.
    pub mode: String,
    /// Overall status.
    pub status: RunStatus,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time (absent while running, or when the process died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    /// Stages in plan order.
    pub stages: Vec<StageRecord>,
    /// Findings summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<FindingsSummary>,
    /// The approval(s) the deploy relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<serde_json::Value>,
    /// The deploy outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<serde_json::Value>,
}

/// Makes a new, sortable run id.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>() & 0xff_ffff
    )
}

impl RunRecord {
    /// A fresh record with every planned stage pending.
    pub fn new(project: &str, mode: &str, plan: &crate::plan::Plan) -> RunRecord {
        let now = Utc::now();
        RunRecord {
            version: RUN_RECORD_VERSION,
            id: new_run_id(now),
            project: project.to_string(),
            branch: plan.branch.clone(),
            commit: None,
            environment: plan.environment.clone(),
            mode: mode.to_string(),
            status: RunStatus::Running,
            started_at: now,
            finished_at: None,
            image: None,
            stages: plan
                .stages
                .iter()
                .map(|s| StageRecord {
                    id: s.id.clone(),
                    kind: s.kind,
                    needs: s.needs.clone(),
                    status: StageStatus::Pending,
                    started_at: None,
                    duration_ms: None,
                    message: None,
                    error_kind: None,
                })
                .collect(),
            findings: None,
            approval: None,
            deploy: None,
        }
    }

    /// The record of a stage.
    pub fn stage(&self, id: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// Mutable record of a stage.
    pub fn stage_mut(&mut self, id: &str) -> Option<&mut StageRecord> {
        self.stages.iter_mut().find(|s| s.id == id)
    }
}
