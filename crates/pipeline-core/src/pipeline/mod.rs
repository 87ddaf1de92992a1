//! The main job: the built-in stages wired to the engine, the scanners, the registry, approvals
//! and deploy, run by the [`Executor`](crate::executor::Executor).
//!
//! [`Pipeline::run`] plans a branch (or a local check), runs it, and writes the run record;
//! [`Pipeline::resume`] continues a run that stopped at the approval gate. Each stage calls the
//! same library code the single-stage commands (`scan`, `push`, `approve`, `deploy`) use.

mod stages;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::events::EventSink;
use crate::executor::{Executor, ExecutorError, Stage, StageOutput};
use crate::plan::{self, Plan, PlanError};
use crate::run::{FindingsSummary, ImageInfo, RunRecord, RunStatus, StageStatus};
use crate::store::{Store, StoreError};

pub use stages::PipelineStage;

/// Where pushed images go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// The embedded OCI image layout (`.shipline/oci`); no registry server.
    Embedded {
        /// The layout directory.
        dir: PathBuf,
    },
    /// A registry: `repository` is `host/path`.
    Remote {
        /// Repository with its registry host (`ghcr.io/org/app`).
        repository: String,
    },
}

/// How a run is set up.
#[derive(Clone)]
pub struct PipelineOptions {
    /// The commit being built (full SHA).
    pub commit: String,
    /// Push to this registry host instead of the configured one (`--registry HOST`).
    pub registry_override: Option<String>,
    /// The registry client (credentials, insecure hosts, retries), built by the caller: the
    /// library never looks credentials up on its own.
    pub client: Arc<shipline_registry::RegistryClient>,
    /// Events for the renderer.
    pub events: EventSink,
    /// Cancellation (Ctrl-C).
    pub cancel: CancellationToken,
    /// Variables that take precedence over the env files when the audit interpolates compose
    /// files, as the shell's do for compose (the CLI passes its process environment). The
    /// library never reads the process environment itself.
    pub environment: BTreeMap<String, String>,
}

/// Errors that stop a run before or outside its stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The branch or the stages are invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The executor could not write the run record.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A run cannot be resumed.
    #[error("failed to resume run {id}: {reason}")]
    Resume {
        /// Run id.
        id: String,
        /// Why.
        reason: String,
    },
}

/// State the built-in stages share during one run (typed, never serialized as a whole).
#[derive(Debug, Default)]
pub struct RunState {
    /// The image built (or promoted), with its digest once pushed.
    pub image: Option<ImageInfo>,
    /// The scanners' results.
    pub scanner_runs: Vec<shipline_scanners::ScannerRun>,
    /// The gate's summary.
    pub findings: Option<FindingsSummary>,
    /// The approvals the deploy relied on.
    pub approval: Option<serde_json::Value>,
    /// The deploy outcome.
    pub deploy: Option<serde_json::Value>,
}

/// One configured pipeline.
pub struct Pipeline {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) opts: PipelineOptions,
}

impl Pipeline {
    /// A pipeline for `config`, with its store opened.
    pub fn new(config: Config, opts: PipelineOptions) -> Result<Pipeline, PipelineError> {
        let store = Store::open(&config.store_dir)?;
        Ok(Pipeline {
            config: Arc::new(config),
            store,
            opts,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where images are pushed.
    pub fn destination(&self) -> Destination {
        destination(
            &self.config,
            self.opts.registry_override.as_deref(),
            &self.store,
        )
    }

    /// Runs the plan for `branch` (`None`: the local check).
    pub async fn run(&self, branch: Option<&str>) -> Result<RunRecord, PipelineError> {
        let plan = match branch {
            Some(b) => plan::plan_for_branch(&self.config, b)?,
            None => plan::plan_local(&self.config),
        };
        let mode = if plan.local { "local" } else { "run" };
        let mut record = RunRecord::new(&self.config.project.name, mode, &plan);
        record.commit = Some(self.opts.commit.clone());
        self.execute(plan, record, RunState::default(), BTreeMap::new())
            .await
    }

    /// Continues a run that stopped (approval gate, failure, cancellation): stages that
    /// succeeded are kept, the others run again.
    pub async fn resume(&self, id: &str) -> Result<RunRecord, PipelineError> {
        let mut record = self.store.load_run(id)?;
        if record.status == RunStatus::Succeeded {
            return Err(PipelineError::Resume {
                id: id.into(),
                reason: "it already succeeded".into(),
            });
        }
        if record.mode == "local" {
            return Err(PipelineError::Resume {
                id: id.into(),
                reason: "a local check has nothing to resume; run it again".into(),
            });
        }
        let branch = record.branch.clone().ok_or_else(|| PipelineError::Resume {
            id: id.into(),
            reason: "the record names no branch".into(),
        })?;
        let plan = plan::plan_for_branch(&self.config, &branch)?;
        if plan.environment != record.environment {
            return Err(PipelineError::Resume {
                id: id.into(),
                reason: format!(
                    "branch {branch} now deploys to {:?}, the run was for {:?}",
                    plan.environment, record.environment
                ),
            });
        }
        if let Some(commit) = &record.commit {
            if commit != &self.opts.commit {
                return Err(PipelineError::Resume {
                    id: id.into(),
                    reason: format!(
                        "the run built commit {commit}, this checkout is at {}",
                        self.opts.commit
                    ),
                });
            }
        }
        let needs_image = record.stages.iter().any(|s| {
            s.status == StageStatus::Succeeded
                && matches!(s.id.as_str(), "build" | "push" | "promote")
        });
        let mut state = RunState {
            image: record.image.clone(),
            findings: record.findings.clone(),
            ..RunState::default()
        };
        if needs_image && state.image.is_none() {
            return Err(PipelineError::Resume {
                id: id.into(),
                reason: "the record has no image; run the pipeline again".into(),
            });
        }
        let mut seed = BTreeMap::new();
        for s in record.stages.iter_mut() {
            if s.status == StageStatus::Succeeded {
                seed.insert(s.id.clone(), StageOutput::None);
            } else {
                s.status = StageStatus::Pending;
                s.message = None;
                s.duration_ms = None;
                s.started_at = None;
                s.error_kind = None;
            }
        }
        if state.findings.is_none() {
            state.findings = record.findings.clone();
        }
        self.execute(plan, record, state, seed).await
    }

    async fn execute(
        &self,
        plan: Plan,
        record: RunRecord,
        state: RunState,
        seed: BTreeMap<String, StageOutput>,
    ) -> Result<RunRecord, PipelineError> {
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::new(stages::Shared {
            config: self.config.clone(),
            store: self.store.clone(),
            opts: self.opts.clone(),
            destination: self.destination(),
            run_id: record.id.clone(),
            branch: plan.branch.clone(),
            environment: plan.environment.clone(),
            state: state.clone(),
            engine: tokio::sync::OnceCell::new(),
        });
        let stages: Vec<Arc<dyn Stage>> = plan
            .stages
            .iter()
            .map(|p| Arc::new(PipelineStage::new(p, shared.clone())) as Arc<dyn Stage>)
            .collect();
        let exec = Executor::new(stages)
            .events(self.opts.events.clone())
            .cancel_token(self.opts.cancel.clone())
            .store(self.store.clone());
        let mut record = exec.run(record, seed).await?;
        {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            if st.image.is_some() {
                record.image = st.image.clone();
            }
            if st.findings.is_some() {
                record.findings = st.findings.clone();
            }
            if st.approval.is_some() {
                record.approval = st.approval.clone();
            }
            if st.deploy.is_some() {
                record.deploy = st.deploy.clone();
            }
        }
        self.store.save_run(&record)?;
        Ok(record)
    }
}

/// Where a config pushes, given an optional `--registry HOST` override.
pub fn destination(config: &Config, registry_override: Option<&str>, store: &Store) -> Destination {
    let host = registry_override
        .map(str::to_string)
        .or_else(|| config.registry.as_ref().map(|r| r.host.clone()));
    match host {
        None => Destination::Embedded {
            dir: store.oci_dir(),
        },
        Some(host) => Destination::Remote {
            repository: format!("{host}/{}", repository_path(&config.image.repository)),
        },
    }
}

/// The repository without its registry host (`ghcr.io/org/app` → `org/app`).
pub fn repository_path(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    }
}
