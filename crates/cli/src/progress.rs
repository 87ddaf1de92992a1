//! Renders executor events: live per-stage progress on a terminal, plain lines otherwise,
//! JSON lines with `--json`. Everything goes to stderr; stdout carries only results.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shipline_core::events::Event;
use shipline_core::run::StageStatus;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Global;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners per stage (stderr is a terminal).
    Live,
    /// One line per event.
    Plain,
    /// JSON lines.
    Json,
    /// Nothing (`--quiet`).
    Quiet,
}

impl Mode {
    /// Picks the mode from the global flags.
    pub fn pick(global: &Global, json: bool) -> Mode {
        if json {
            Mode::Json
        } else if global.quiet {
            Mode::Quiet
        } else if global.stderr_tty {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// The status word padded to `width` columns, then coloured (padding a coloured string would
/// count its escape bytes as columns).
fn mark_padded(status: StageStatus, color: bool, width: usize) -> String {
    let word = mark(status, false);
    let pad = " ".repeat(width.saturating_sub(word.len()));
    format!("{}{pad}", mark(status, color))
}

fn mark(status: StageStatus, color: bool) -> String {
    let (sym, code) = match status {
        StageStatus::Succeeded => ("ok", "32"),
        StageStatus::Failed => ("FAILED", "31"),
        StageStatus::Skipped => ("skipped", "90"),
        StageStatus::Cancelled => ("cancelled", "33"),
        StageStatus::Waiting => ("waiting", "33"),
        StageStatus::Pending | StageStatus::Running => ("...", "0"),
    };
    if color {
        format!("\x1b[{code}m{sym}\x1b[0m")
    } else {
        sym.to_string()
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// Consumes events until the channel closes.
pub async fn render(mut rx: UnboundedReceiver<Event>, mode: Mode, color: bool) {
    let multi = MultiProgress::new();
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<14} {elapsed:>4} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    while let Some(ev) = rx.recv().await {
        match mode {
            Mode::Quiet => {}
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(&ev) {
                    eprintln!("{line}");
                }
            }
            Mode::Plain => match &ev {
                Event::RunStarted { run_id, stages } => {
                    eprintln!("run {run_id}: {}", stages.join(" -> "))
                }
                Event::StageStarted { stage } => eprintln!("[{stage}] started"),
                Event::StageLog { stage, line } => eprintln!("[{stage}] {line}"),
                Event::StageProgress { .. } => {}
                Event::StageFinished {
                    stage,
                    status,
                    duration_ms,
                    message,
                } => eprintln!(
                    "[{stage}] {} {}{}",
                    mark(*status, color),
                    secs(*duration_ms),
                    message
                        .as_deref()
                        .map(|m| format!(": {}", m.lines().next().unwrap_or("")))
                        .unwrap_or_default()
                ),
                Event::RunFinished { run_id, status } => {
                    eprintln!("run {run_id} {}", status.as_str())
                }
            },
            Mode::Live => match &ev {
                Event::StageStarted { stage } => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(stage.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(stage.clone(), bar);
                }
                Event::StageLog { stage, line } => {
                    if let Some(bar) = bars.get(stage) {
                        bar.set_message(line.chars().take(120).collect::<String>());
                    }
                }
                Event::StageProgress {
                    stage,
                    current,
                    total,
                    unit,
                } => {
                    if let Some(bar) = bars.get(stage) {
                        let t = total.map(|t| format!("/{t}")).unwrap_or_default();
                        bar.set_message(format!("{current}{t} {unit}"));
                    }
                }
                Event::StageFinished {
                    stage,
                    status,
                    duration_ms,
                    message,
                } => {
                    let line = format!(
                        "{} {:<14} {:>6}  {}",
                        mark_padded(*status, color, 9),
                        stage,
                        secs(*duration_ms),
                        message
                            .as_deref()
                            .and_then(|m| m.lines().next())
                            .unwrap_or("")
                    );
                    if let Some(bar) = bars.remove(stage) {
                        bar.finish_and_clear();
                    }
                    let _ = multi.println(line);
                }
                Event::RunStarted { .. } | Event::RunFinished { .. } => {}
            },
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
}
