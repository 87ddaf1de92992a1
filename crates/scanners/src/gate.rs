//! The gate: a [`ScanReport`] plus a [`Policy`] (plus an optional [`Baseline`]) gives a
//! [`Verdict`]. It fails closed: a scanner in error, a required scanner that did not run, or a
//! report with no scanner at all ends in [`Outcome::Error`] unless the policy allows skipping it.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingKind, Severity, Suppression};
use crate::policy::Policy;
use crate::report::{ScanReport, ScannerState, ScannerStatus, SEVERITIES};

/// The gate's overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every scanner ran and nothing is over threshold.
    Pass,
    /// Findings over threshold.
    Fail,
    /// A scanner is missing, crashed or reported errors: the build was not (fully) scanned.
    Error,
}

impl Outcome {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// The process exit code: 0 pass, 1 fail, 3 error (see `shipline_core::exit`).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Error => 3,
        }
    }
}

/// What the gate decided about one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Over threshold: fails the gate.
    Blocking,
    /// Reported, below threshold (or no fix with `fixed_only`).
    Allowed,
    /// Suppressed by the tool, the policy or the baseline.
    Suppressed,
}

impl State {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Blocking => "blocking",
            State::Allowed => "allowed",
            State::Suppressed => "suppressed",
        }
    }
}

/// The gate's decision for the finding at the same index of [`ScanReport::findings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Blocking, allowed or suppressed.
    pub state: State,
    /// Why it is suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
    /// Why it is allowed (below threshold, no fix available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Not present in the baseline (always true without a baseline).
    pub new: bool,
    /// An ignore matched but has expired (index into [`Verdict::expired_ignores`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_ignore: Option<usize>,
}

/// An ignore that has expired and no longer applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredIgnore {
    /// The ignore's label (rule or id).
    pub ignore: String,
    /// Its reason.
    pub reason: String,
    /// The day it expired.
    pub expired: String,
    /// How many findings it would have covered.
    pub findings: usize,
}

/// Counts over the gated findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// All findings.
    pub total: usize,
    /// Failing the gate.
    pub blocking: usize,
    /// Reported but not failing.
    pub allowed: usize,
    /// Suppressed (tool, policy, baseline).
    pub suppressed: usize,
    /// Not in the baseline and not suppressed.
    pub new: usize,
    /// Ignores that expired.
    pub expired_ignores: usize,
    /// Unsuppressed findings by severity (every level present).
    pub by_severity: std::collections::BTreeMap<String, usize>,
    /// Blocking findings by severity (every level present).
    pub blocking_by_severity: std::collections::BTreeMap<String, usize>,
}

/// The gate's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Pass, fail or error.
    pub outcome: Outcome,
    /// One decision per finding, aligned with the report's findings.
    pub decisions: Vec<Decision>,
    /// Scanner statuses after the policy (errors it allows are `skipped`), plus required
    /// scanners that did not run.
    pub scanners: Vec<ScannerStatus>,
    /// Ignores that expired (shown prominently by every renderer).
    pub expired_ignores: Vec<ExpiredIgnore>,
    /// Why the outcome is `error`.
    pub problems: Vec<String>,
    /// Counts.
    pub counts: Counts,
}

impl Verdict {
    /// The process exit code (0 pass, 1 fail, 3 error).
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }
}

/// The baseline file format version.
pub const BASELINE_VERSION: u32 = 1;

/// Known findings: only findings not in the baseline fail the gate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Format version (1).
    pub version: u32,
    /// Known findings, sorted by id.
    pub findings: Vec<BaselineEntry>,
}

/// One known finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaselineEntry {
    /// Stable finding id.
    pub id: String,
    /// Tool.
    pub tool: String,
    /// Rule id.
    pub rule_id: String,
    /// Path, for humans reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Reading failed.
    #[error("failed to read baseline {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a baseline file.
    #[error("failed to parse baseline {path}")]
    Parse {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Unknown version.
    #[error("failed to load baseline {path}: unsupported version {version} (expected 1)")]
    Version {
        /// The path.
        path: String,
        /// Its version.
        version: u32,
    },
}

impl Baseline {
    /// A baseline of every finding in `report` the tools did not suppress themselves.
    pub fn from_report(report: &ScanReport) -> Baseline {
        let set: BTreeSet<BaselineEntry> = report
            .findings
            .iter()
            .filter(|f| f.suppression.is_none())
            .map(|f| BaselineEntry {
                id: f.id.clone(),
                tool: f.tool.clone(),
                rule_id: f.rule_id.clone(),
                path: f
                    .location
                    .path
                    .clone()
                    .or_else(|| f.location.target.clone()),
            })
            .collect();
        Baseline {
            version: BASELINE_VERSION,
            findings: set.into_iter().collect(),
        }
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| BaselineError::Read {
            path: name.clone(),
            source,
        })?;
        let b: Baseline =
            serde_json::from_slice(&bytes).map_err(|source| BaselineError::Parse {
                path: name.clone(),
                source,
            })?;
        if b.version != BASELINE_VERSION {
            return Err(BaselineError::Version {
                path: name,
                version: b.version,
            });
        }
        Ok(b)
    }

    /// The file contents (pretty JSON, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    fn ids(&self) -> BTreeSet<&str> {
        self.findings.iter().map(|e| e.id.as_str()).collect()
    }
}

/// Gates `report` with `policy` and an optional `baseline`, using today's date (UTC) for
/// ignore expiry.
pub fn gate(report: &ScanReport, policy: &Policy, baseline: Option<&Baseline>) -> Verdict {
    gate_at(report, policy, baseline, chrono::Utc::now().date_naive())
}

/// [`gate`] with an explicit date (for reproducible tests and replays).
pub fn gate_at(
    report: &ScanReport,
    policy: &Policy,
    baseline: Option<&Baseline>,
    today: NaiveDate,
) -> Verdict {
    let mut problems = Vec::new();
    let mut scanners = Vec::with_capacity(report.scanners.len());
    for s in &report.scanners {
        let mut s = s.clone();
        if s.status == ScannerState::Error {
            let msg = s.message.clone().unwrap_or_else(|| "failed".into());
            if policy.may_skip(&s.name) {
                s.status = ScannerState::Skipped;
                s.message = Some(format!("skipped (allowed by policy): {msg}"));
            } else {
                problems.push(format!("{}: {msg}", s.name));
            }
        }
        scanners.push(s);
    }
    for req in &policy.require {
        if !report.scanners.iter().any(|s| s.name == *req) {
            let skipped = policy.may_skip(req);
            let message = if skipped {
                "skipped (allowed by policy): did not run".to_string()
            } else {
                format!("required scanner {req} did not run")
            };
            if !skipped {
                problems.push(message.clone());
            }
            scanners.push(ScannerStatus {
                name: req.clone(),
                version: None,
                status: if skipped {
                    ScannerState::Skipped
                } else {
                    ScannerState::Error
                },
                message: Some(message),
                source: None,
                findings: 0,
                warnings: Vec::new(),
            });
        }
    }
    if report.scanners.is_empty() && policy.require.is_empty() {
        problems.push("no scanner ran: nothing was scanned".into());
    }

    let known = baseline.map(Baseline::ids).unwrap_or_default();
    let mut expired: Vec<ExpiredIgnore> = Vec::new();
    let mut expired_index: Vec<Option<usize>> = vec![None; policy.ignores.len()];
    let decisions: Vec<Decision> = report
        .findings
        .iter()
        .map(|f| {
            decide(
                f,
                policy,
                &known,
                baseline.is_some(),
                today,
                &mut expired,
                &mut expired_index,
            )
        })
        .collect();

    let mut counts = Counts {
        total: report.findings.len(),
        expired_ignores: expired.len(),
        ..Counts::default()
    };
    for s in SEVERITIES {
        counts.by_severity.insert(s.as_str().into(), 0);
        counts.blocking_by_severity.insert(s.as_str().into(), 0);
    }
    for (f, d) in report.findings.iter().zip(&decisions) {
        match d.state {
            State::Blocking => {
                counts.blocking += 1;
                *counts
                    .blocking_by_severity
                    .entry(f.severity.as_str().into())
                    .or_default() += 1;
            }
            State::Allowed => counts.allowed += 1,
            State::Suppressed => counts.suppressed += 1,
        }
        if d.state != State::Suppressed {
            *counts
                .by_severity
                .entry(f.severity.as_str().into())
                .or_default() += 1;
            if d.new {
                counts.new += 1;
            }
        }
    }
    let outcome = if !problems.is_empty() {
        Outcome::Error
    } else if counts.blocking > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    Verdict {
        outcome,
        decisions,
        scanners,
        expired_ignores: expired,
        problems,
        counts,
    }
}

fn decide(
    f: &Finding,
    policy: &Policy,
    known: &BTreeSet<&str>,
    have_baseline: bool,
    today: NaiveDate,
    expired: &mut Vec<ExpiredIgnore>,
    expired_index: &mut [Option<usize>],
) -> Decision {
    let in_baseline = have_baseline && known.contains(f.id.as_str());
    let mut d = Decision {
        state: State::Allowed,
        suppression: None,
        note: None,
        new: !in_baseline,
        expired_ignore: None,
    };
    if let Some(s) = &f.suppression {
        d.state = State::Suppressed;
        d.suppression = Some(s.clone());
        return d;
    }
    for (i, ig) in policy.ignores.iter().enumerate() {
        if !ig.matches(f) {
            continue;
        }
        if ig.expired(today) {
            let idx = *expired_index[i].get_or_insert_with(|| {
                expired.push(ExpiredIgnore {
                    ignore: ig.label(),
                    reason: ig.reason.clone(),
                    expired: ig.expires.map(|e| e.to_string()).unwrap_or_default(),
                    findings: 0,
                });
                expired.len() - 1
            });
            expired[idx].findings += 1;
            d.expired_ignore.get_or_insert(idx);
            continue;
        }
        d.state = State::Suppressed;
        d.suppression = Some(Suppression {
            by: "policy".into(),
            reason: Some(ig.reason.clone()),
            expires: ig.expires.map(|e| e.to_string()),
        });
        return d;
    }
    if in_baseline {
        d.state = State::Suppressed;
        d.suppression = Some(Suppression {
            by: "baseline".into(),
            reason: Some("present in the baseline".into()),
            expires: None,
        });
        return d;
    }
    let (threshold, fixed_only) = policy.rules_for(f);
    let unfixed = f.kind == FindingKind::Vulnerability
        && f.package
            .as_ref()
            .is_none_or(|p| p.fixed.as_deref().is_none_or(str::is_empty));
    if !threshold.fails(f.severity) {
        d.note = Some(format!(
            "below the {} threshold for {}",
            threshold.as_str(),
            kind_name(f.kind)
        ));
    } else if fixed_only && unfixed {
        d.note = Some("no fixed version (fixed_only)".into());
    } else {
        d.state = State::Blocking;
    }
    d
}

/// Lowercase kind name.
pub fn kind_name(k: FindingKind) -> &'static str {
    match k {
        FindingKind::Vulnerability => "vulnerability",
        FindingKind::Misconfiguration => "misconfiguration",
        FindingKind::Secret => "secret",
        FindingKind::License => "license",
        FindingKind::Sast => "sast",
    }
}

/// Severity names as used in counts, most severe first.
pub fn severity_names() -> impl Iterator<Item = &'static str> {
    SEVERITIES.iter().map(|s: &Severity| s.as_str())
}
