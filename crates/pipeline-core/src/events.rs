//! Typed events the executor and stages emit; the CLI renders them, tests subscribe to them.

use serde::Serialize;
use tokio::sync::mpsc;

use crate::run::{RunStatus, StageStatus};

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started with these stages.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Stage ids in plan order.
        stages: Vec<String>,
    },
    /// A stage started.
    StageStarted {
        /// Stage id.
        stage: String,
    },
    /// A line of output from a stage (build output, test output, compose output).
    StageLog {
        /// Stage id.
        stage: String,
        /// The line, without its newline.
        line: String,
    },
    /// Progress in bytes or items.
    StageProgress {
        /// Stage id.
        stage: String,
        /// Done so far.
        current: u64,
        /// Total, when known.
        total: Option<u64>,
        /// `bytes`, `blobs`, `services`, ...
        unit: String,
    },
    /// A stage finished.
    StageFinished {
        /// Stage id.
        stage: String,
        /// Outcome.
        status: StageStatus,
        /// Duration in milliseconds.
        duration_ms: u64,
        /// Summary or error.
        message: Option<String>,
    },
    /// The run finished.
    RunFinished {
        /// Run id.
        run_id: String,
        /// Outcome.
        status: RunStatus,
    },
}

/// Where events go. Cloning is cheap; sending never blocks and never fails the sender
/// (a closed receiver just drops events).
#[derive(Debug, Clone, Default)]
pub struct EventSink {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl EventSink {
    /// A sink and the receiver that gets its events.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventSink { tx: Some(tx) }, rx)
    }

    /// A sink that drops everything.
    pub fn discard() -> EventSink {
        EventSink { tx: None }
    }

    /// Sends an event.
    pub fn emit(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }

    /// Sends a log line for `stage`.
    pub fn log(&self, stage: &str, line: impl Into<String>) {
        self.emit(Event::StageLog {
            stage: stage.to_string(),
            line: line.into(),
        });
    }
}
