//! The executor: runs [`Stage`]s as their dependency DAG allows, concurrently on tokio.
//!
//! A failed stage stops its dependents (recorded as skipped); independent stages go on.
//! Cancellation (Ctrl-C in the CLI) stops running stages cleanly and records them as cancelled.
//! After every transition the run record is written atomically to the store, so a crash leaves
//! a readable record of everything finished so far.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink};
use crate::plan::{check_dag, PlanError, PlannedStage, StageKind};
use crate::run::{RunRecord, RunStatus, StageStatus};
use crate::store::{Store, StoreError};

/// What a stage produced, readable by the stages that need it.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutput {
    /// Nothing to pass on.
    None,
    /// A one-line result.
    Message(String),
    /// Structured output (image, digest, findings summary, deployment...).
    Value(serde_json::Value),
}

/// How a stage failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageErrorKind {
    /// The stage ran and decided no (build error, test failed, gate failed, deploy rolled back).
    Failed,
    /// A tool or the infrastructure broke (engine unreachable, scanner crashed).
    Tool,
    /// The stage is not built yet.
    NotImplemented,
    /// The stage waits for an approval; the run stops here and can be resumed.
    WaitingApproval,
    /// The stage stopped because the run was cancelled.
    Cancelled,
}

/// A stage's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    /// How it failed.
    pub kind: StageErrorKind,
    /// What happened (and how to fix it).
    pub message: String,
}

impl StageError {
    /// The stage decided no.
    pub fn failed(message: impl Into<String>) -> Self {
        StageError {
            kind: StageErrorKind::Failed,
            message: message.into(),
        }
    }
    /// A tool or infrastructure error.
    pub fn tool(message: impl Into<String>) -> Self {
        StageError {
            kind: StageErrorKind::Tool,
            message: message.into(),
        }
    }
    /// A stage that is not built yet: fails loudly, never pretends.
    pub fn not_implemented(stage: &str) -> Self {
        StageError {
            kind: StageErrorKind::NotImplemented,
            message: format!("stage `{stage}` is not implemented yet"),
        }
    }
}

/// Outputs of finished stages, by stage id.
#[derive(Debug, Default)]
pub struct Outputs {
    map: Mutex<BTreeMap<String, StageOutput>>,
}

impl Outputs {
    /// The output of a finished stage.
    pub fn get(&self, stage: &str) -> Option<StageOutput> {
        self.map.lock().ok()?.get(stage).cloned()
    }
    /// The structured output of a finished stage.
    pub fn value(&self, stage: &str) -> Option<serde_json::Value> {
        match self.get(stage)? {
            StageOutput::Value(v) => Some(v),
            _ => None,
        }
    }
    fn insert(&self, stage: &str, out: StageOutput) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(stage.to_string(), out);
        }
    }
}

/// What a running stage gets.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// The run id.
    pub run_id: String,
    /// This stage's id.
    pub stage_id: String,
    /// Where to send log lines and progress.
    pub events: EventSink,
    /// Cancelled when the run is cancelled: long operations must watch it.
    pub cancel: CancellationToken,
    /// Outputs of the stages this one needs (and every other finished stage).
    pub outputs: Arc<Outputs>,
}

impl StageContext {
    /// Sends a log line.
    pub fn log(&self, line: impl Into<String>) {
        self.events.log(&self.stage_id, line);
    }
}

/// A pipeline stage. Implement it to add your own stages to a pipeline.
pub trait Stage: Send + Sync {
    /// Unique id in the run.
    fn id(&self) -> &str;
    /// Kind.
    fn kind(&self) -> StageKind;
    /// Ids of the stages that must succeed first.
    fn needs(&self) -> Vec<String>;
    /// Runs the stage.
    fn run(&self, ctx: StageContext) -> BoxFuture<'_, Result<StageOutput, StageError>>;
}

/// Executor failures that are not a stage's (the stages' DAG, the store).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The stages do not form a DAG.
    #[error("invalid pipeline")]
    Plan(#[from] PlanError),
    /// The run record could not be written.
    #[error("failed to write the run record")]
    Store(#[from] StoreError),
}

/// Runs a set of stages.
pub struct Executor {
    stages: Vec<Arc<dyn Stage>>,
    events: EventSink,
    cancel: CancellationToken,
    store: Option<Store>,
    grace: Duration,
}

impl Executor {
    /// An executor for these stages.
    pub fn new(stages: Vec<Arc<dyn Stage>>) -> Self {
        Executor {
            stages,
            events: EventSink::discard(),
            cancel: CancellationToken::new(),
            store: None,
            grace: Duration::from_secs(10),
        }
    }
    /// Sends events to `events`.
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }
    /// Uses `cancel` as the run's cancellation token.
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
    /// Writes the run record to `store` after every transition.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }
    /// How long cancelled stages get to stop by themselves before they are aborted.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The planned stages (for a record).
    pub fn planned(&self) -> Vec<PlannedStage> {
        self.stages
            .iter()
            .map(|s| PlannedStage {
                id: s.id().to_string(),
                kind: s.kind(),
                needs: s.needs(),
                description: String::new(),
            })
            .collect()
    }

    /// Runs every stage the DAG allows and returns the final record. `record` must list the
    /// stages (see [`RunRecord::new`]); stages already `succeeded` in it are not run again
    /// (resume), and `seed` gives their outputs.
    pub async fn run(
        self,
        mut record: RunRecord,
        seed: BTreeMap<String, StageOutput>,
    ) -> Result<RunRecord, ExecutorError> {
        let planned = self.planned();
        check_dag(&planned)?;
        for p in &planned {
            if record.stage(&p.id).is_none() {
                record.stages.push(crate::run::StageRecord {
                    id: p.id.clone(),
                    kind: p.kind,
                    needs: p.needs.clone(),
                    status: StageStatus::Pending,
                    started_at: None,
                    duration_ms: None,
                    message: None,
                    error_kind: None,
                });
            }
        }
        let outputs = Arc::new(Outputs::default());
        for (k, v) in seed {
            outputs.insert(&k, v);
        }
        record.status = RunStatus::Running;
        record.finished_at = None;
        self.save(&record)?;
        self.events.emit(Event::RunStarted {
            run_id: record.id.clone(),
            stages: planned.iter().map(|p| p.id.clone()).collect(),
        });

        let by_id: BTreeMap<String, Arc<dyn Stage>> = self
            .stages
            .iter()
            .map(|s| (s.id().to_string(), s.clone()))
            .collect();
        let mut running: JoinSet<(String, Instant, Result<StageOutput, StageError>)> =
            JoinSet::new();
        let mut cancelled = false;
        loop {
            if !cancelled && !self.cancel.is_cancelled() {
                // start every pending stage whose needs all succeeded; skip those blocked
                loop {
                    let mut changed = false;
                    for p in &planned {
                        let status = record.stage(&p.id).map(|s| s.status);
                        if status != Some(StageStatus::Pending) {
                            continue;
                        }
                        let need_status: Vec<StageStatus> = p
                            .needs
                            .iter()
                            .filter_map(|n| record.stage(n).map(|s| s.status))
                            .collect();
                        if need_status.iter().all(|s| *s == StageStatus::Succeeded) {
                            let stage = by_id[&p.id].clone();
                            let ctx = StageContext {
                                run_id: record.id.clone(),
                                stage_id: p.id.clone(),
                                events: self.events.clone(),
                                cancel: self.cancel.child_token(),
                                outputs: outputs.clone(),
                            };
                            if let Some(s) = record.stage_mut(&p.id) {
                                s.status = StageStatus::Running;
                                s.started_at = Some(chrono::Utc::now());
                            }
                            self.events.emit(Event::StageStarted {
                                stage: p.id.clone(),
                            });
                            let id = p.id.clone();
                            running.spawn(async move {
                                let start = Instant::now();
                                let result = stage.run(ctx).await;
                                (id, start, result)
                            });
                            changed = true;
                        } else if let Some(blocker) = need_status.iter().find(|s| {
                            matches!(
                                s,
                                StageStatus::Failed
                                    | StageStatus::Skipped
                                    | StageStatus::Cancelled
                                    | StageStatus::Waiting
                            )
                        }) {
                            let why = match blocker {
                                StageStatus::Waiting => "waiting for approval",
                                StageStatus::Cancelled => "a stage it needs was cancelled",
                                _ => "a stage it needs did not succeed",
                            };
                            self.finish(
                                &mut record,
                                &p.id,
                                StageStatus::Skipped,
                                0,
                                Some(why.into()),
                            );
                            changed = true;
                        }
                    }
                    if !changed {
                        break;
                    }
                }
                self.save(&record)?;
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next() => {
                    let Some(joined) = joined else { break };
                    match joined {
                        Ok((id, start, result)) => {
                            let ms = start.elapsed().as_millis() as u64;
                            match result {
                                Ok(out) => {
                                    let msg = match &out {
                                        StageOutput::Message(m) => Some(m.clone()),
                                        _ => None,
                                    };
                                    outputs.insert(&id, out);
                                    self.finish(&mut record, &id, StageStatus::Succeeded, ms, msg);
                                }
                                Err(e) => {
                                    let status = match e.kind {
                                        StageErrorKind::WaitingApproval => StageStatus::Waiting,
                                        StageErrorKind::Cancelled => StageStatus::Cancelled,
                                        // a stage that stopped because the run was
                                        // cancelled is cancelled, whichever branch saw it first
                                        _ if cancelled || self.cancel.is_cancelled() => {
                                            StageStatus::Cancelled
                                        }
                                        _ => StageStatus::Failed,
                                    };
                                    self.finish(&mut record, &id, status, ms, Some(e.message));
                                    if let Some(s) = record.stage_mut(&id) {
                                        s.error_kind = Some(e.kind);
                                    }
                                }
                            }
                        }
                        Err(join_err) => {
                            // a panicking stage is a failed stage, never a crashed run
                            let id = record
                                .stages
                                .iter()
                                .find(|s| s.status == StageStatus::Running)
                                .map(|s| s.id.clone());
                            if join_err.is_panic() {
                                if let Some(id) = id {
                                    self.finish(&mut record, &id, StageStatus::Failed, 0, Some("stage panicked".into()));
                                }
                            }
                        }
                    }
                    self.save(&record)?;
                }
                _ = self.cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    let grace = tokio::time::sleep(self.grace);
                    tokio::pin!(grace);
                    // stages see the token; give them the grace period to stop by themselves
                    loop {
                        tokio::select! {
                            joined = running.join_next() => {
                                match joined {
                                    Some(Ok((id, start, result))) => {
                                        let ms = start.elapsed().as_millis() as u64;
                                        let (status, msg) = match result {
                                            Ok(out) => { outputs.insert(&id, out); (StageStatus::Succeeded, None) }
                                            Err(e) => (StageStatus::Cancelled, Some(e.message)),
                                        };
                                        self.finish(&mut record, &id, status, ms, msg);
                                    }
                                    Some(Err(_)) => {}
                                    None => break,
                                }
                            }
                            _ = &mut grace => {
                                running.abort_all();
                                while running.join_next().await.is_some() {}
                                break;
                            }
                        }
                    }
                    for s in record.stages.iter_mut() {
                        if matches!(s.status, StageStatus::Running | StageStatus::Pending) {
                            s.status = StageStatus::Cancelled;
                            s.message = Some("cancelled".into());
                            self.events.emit(Event::StageFinished {
                                stage: s.id.clone(),
                                status: StageStatus::Cancelled,
                                duration_ms: s.started_at.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as u64).unwrap_or(0),
                                message: Some("cancelled".into()),
                            });
                        }
                    }
                    self.save(&record)?;
                    break;
                }
            }
        }
        if self.cancel.is_cancelled() {
            // stages that never started because the run was cancelled
            for s in record.stages.iter_mut() {
                if matches!(s.status, StageStatus::Running | StageStatus::Pending) {
                    s.status = StageStatus::Cancelled;
                    s.message = Some("cancelled".into());
                    self.events.emit(Event::StageFinished {
                        stage: s.id.clone(),
                        status: StageStatus::Cancelled,
                        duration_ms: 0,
                        message: Some("cancelled".into()),
                    });
                }
            }
            cancelled = true;
        }
        record.status = overall(&record, cancelled);
        record.finished_at = Some(chrono::Utc::now());
        self.save(&record)?;
        self.events.emit(Event::RunFinished {
            run_id: record.id.clone(),
            status: record.status,
        });
        Ok(record)
    }

    fn finish(
        &self,
        record: &mut RunRecord,
        id: &str,
        status: StageStatus,
        ms: u64,
        message: Option<String>,
    ) {
        if let Some(s) = record.stage_mut(id) {
            s.status = status;
            if status != StageStatus::Skipped {
                s.duration_ms = Some(ms);
            }
            s.message = message.clone();
        }
        self.events.emit(Event::StageFinished {
            stage: id.to_string(),
            status,
            duration_ms: ms,
            message,
        });
    }

    fn save(&self, record: &RunRecord) -> Result<(), ExecutorError> {
        if let Some(store) = &self.store {
            store.save_run(record)?;
        }
        Ok(())
    }
}

fn overall(record: &RunRecord, cancelled: bool) -> RunStatus {
    let any = |st: StageStatus| record.stages.iter().any(|s| s.status == st);
    if cancelled || any(StageStatus::Cancelled) {
        RunStatus::Cancelled
    } else if any(StageStatus::Failed) {
        RunStatus::Failed
    } else if any(StageStatus::Waiting) {
        RunStatus::WaitingApproval
    } else if record
        .stages
        .iter()
        .all(|s| s.status == StageStatus::Succeeded)
    {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    }
}
