//! What scanners produced: findings plus, per scanner, whether it ran cleanly.

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::process::ProcessError;

/// Whether a scanner's results can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScannerState {
    /// It ran (or its report was read) and reported no errors.
    Ok,
    /// It did not run and the policy allows that; the report says so.
    Skipped,
    /// It is missing, crashed, timed out, printed invalid or empty output or reported errors.
    Error,
}

impl ScannerState {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScannerState::Ok => "ok",
            ScannerState::Skipped => "skipped",
            ScannerState::Error => "error",
        }
    }
}

/// One scanner's status in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerStatus {
    /// Scanner name (`trivy`, `semgrep`, `zizmor`, ...).
    pub name: String,
    /// Its version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Ok, skipped or error.
    pub status: ScannerState,
    /// Why it is skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the results came from (`run`, or the report file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Number of findings it contributed.
    pub findings: usize,
    /// Non-fatal problems it reported (semgrep `warn` errors, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The result of running one scanner or reading one report (one SARIF run).
#[derive(Debug, Clone)]
pub struct ScannerRun {
    /// Status of the scanner.
    pub status: ScannerStatus,
    /// What it found (empty on error).
    pub findings: Vec<Finding>,
}

impl ScannerRun {
    /// A run that succeeded.
    pub fn ok(name: impl Into<String>, version: Option<String>, findings: Vec<Finding>) -> Self {
        ScannerRun {
            status: ScannerStatus {
                name: name.into(),
                version,
                status: ScannerState::Ok,
                message: None,
                source: None,
                findings: findings.len(),
                warnings: Vec::new(),
            },
            findings,
        }
    }

    /// A run that failed: no findings, status error, the error chain as message.
    pub fn failed(name: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> Self {
        ScannerRun {
            status: ScannerStatus {
                name: name.into(),
                version: None,
                status: ScannerState::Error,
                message: Some(error_chain(err)),
                source: None,
                findings: 0,
                warnings: Vec::new(),
            },
            findings: Vec::new(),
        }
    }

    /// Sets where the results came from.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.status.source = Some(source.into());
        self
    }
}

/// An error and its causes as one line (`a: b: c`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Findings of every scanner in one build, plus each scanner's status.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// All findings, in [`ScanReport::sort`] order once sorted.
    pub findings: Vec<Finding>,
    /// One entry per scanner run or report.
    pub scanners: Vec<ScannerStatus>,
}

impl ScanReport {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one scanner's run.
    pub fn add(&mut self, run: ScannerRun) {
        self.scanners.push(run.status);
        self.findings.extend(run.findings);
    }

    /// Sorts findings deterministically: severity (most severe first), tool, kind, rule,
    /// path, line, id.
    pub fn sort(&mut self) {
        self.findings.sort_by(finding_order);
    }

    /// Number of findings per severity (suppressed ones included).
    pub fn count_by_severity(&self) -> [(Severity, usize); 6] {
        let mut counts = SEVERITIES.map(|s| (s, 0usize));
        for f in &self.findings {
            if let Some(c) = counts.iter_mut().find(|(s, _)| *s == f.severity) {
                c.1 += 1;
            }
        }
        counts
    }
}

/// Every severity, most severe first.
pub const SEVERITIES: [Severity; 6] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
    Severity::Unknown,
];

/// The deterministic order of findings used by every renderer.
pub fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.tool.cmp(&b.tool))
        .then_with(|| a.kind.cmp(&b.kind))
        .then_with(|| a.rule_id.cmp(&b.rule_id))
        .then_with(|| a.location.path.cmp(&b.location.path))
        .then_with(|| a.location.target.cmp(&b.location.target))
        .then_with(|| a.location.start_line.cmp(&b.location.start_line))
        .then_with(|| {
            let pa = a.package.as_ref().map(|p| &p.name);
            let pb = b.package.as_ref().map(|p| &p.name);
            pa.cmp(&pb)
        })
        .then_with(|| a.id.cmp(&b.id))
}

/// Why a scanner run or a report could not be turned into findings.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Running the program failed (missing, timeout, ...).
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The program exited with an unexpected status.
    #[error("failed to run {tool}: it exited with {exit}{}", stderr_suffix(.stderr))]
    Exit {
        /// The tool.
        tool: String,
        /// How it ended.
        exit: crate::process::ExitKind,
        /// Tail of its stderr.
        stderr: String,
    },
    /// The program printed nothing.
    #[error("failed to read {tool} output: it printed nothing on stdout{}", stderr_suffix(.stderr))]
    EmptyOutput {
        /// The tool.
        tool: String,
        /// Tail of its stderr.
        stderr: String,
    },
    /// The output was larger than the capture cap.
    #[error("failed to read {tool} output: larger than the {cap}-byte cap")]
    OutputTooLarge {
        /// The tool.
        tool: String,
        /// The cap in bytes.
        cap: usize,
    },
    /// The output (or report file) is not valid JSON of the expected shape.
    #[error("failed to parse {tool} report {source_name}: invalid JSON")]
    Json {
        /// The tool.
        tool: String,
        /// Where the report came from (`stdout` or a path).
        source_name: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The report's schema version is not one shipline understands.
    #[error("failed to parse {tool} report {source_name}: unsupported schema version {found} (expected {expected})")]
    UnknownSchema {
        /// The tool.
        tool: String,
        /// Where the report came from.
        source_name: String,
        /// What the report says (`missing` when absent).
        found: String,
        /// What shipline understands.
        expected: String,
    },
    /// The tool reported errors of its own (and may have exited 0 anyway).
    #[error("{tool} reported {count} error(s): {first}")]
    ToolErrors {
        /// The tool.
        tool: String,
        /// How many.
        count: usize,
        /// The first one.
        first: String,
    },
    /// A report file could not be read.
    #[error("failed to read report {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", stderr.trim())
    }
}
