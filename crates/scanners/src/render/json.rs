//! Versioned JSON: `{"version":1,"verdict":..,"findings":[..],"counts":{..},"scanners":[..]}`.

use serde::Serialize;

use crate::finding::{Finding, Suppression};
use crate::gate::{Counts, ExpiredIgnore, Verdict};
use crate::report::{ScanReport, ScannerStatus};

/// The JSON output's `version`.
pub const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    verdict: &'static str,
    findings: Vec<JsonFinding<'a>>,
    counts: &'a Counts,
    scanners: &'a [ScannerStatus],
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    gate: Gate<'a>,
}

#[derive(Serialize)]
struct Gate<'a> {
    state: &'static str,
    new: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppression: Option<&'a Suppression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_ignore: Option<&'a ExpiredIgnore>,
}

/// Renders the versioned JSON document (pretty-printed, trailing newline).
///
/// Findings are ordered blocking, allowed, suppressed, each in severity order. Each finding
/// carries a `gate` object: `state`, `new`, and `note`/`suppression`/`expired_ignore` when set.
pub fn render_json(report: &ScanReport, verdict: &Verdict) -> String {
    let findings = super::by_state(report, verdict)
        .into_iter()
        .map(|i| {
            let d = verdict.decisions.get(i);
            JsonFinding {
                finding: &report.findings[i],
                gate: Gate {
                    state: super::state_of(verdict, i).as_str(),
                    new: d.is_none_or(|d| d.new),
                    note: d.and_then(|d| d.note.as_deref()),
                    suppression: d.and_then(|d| d.suppression.as_ref()),
                    expired_ignore: d
                        .and_then(|d| d.expired_ignore)
                        .and_then(|e| verdict.expired_ignores.get(e)),
                },
            }
        })
        .collect();
    let doc = Doc {
        version: JSON_VERSION,
        verdict: verdict.outcome.as_str(),
        findings,
        counts: &verdict.counts,
        scanners: &verdict.scanners,
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        format!(
            "{{\"version\":1,\"verdict\":\"error\",\"error\":{:?}}}",
            e.to_string()
        )
    });
    s.push('\n');
    s
}
