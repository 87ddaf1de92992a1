//! GitHub Actions workflow commands (`::error file=...,line=...::message`).

use std::fmt::Write;

use crate::finding::Severity;
use crate::gate::{State, Verdict};
use crate::report::{ScanReport, ScannerState};

/// Escapes the message of a workflow command (`::error ...::MESSAGE`) as the runner expects.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command (`file=`, `title=`): as [`escape_data`],
/// plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Renders annotations: `::error` for blocking findings and scanner errors, `::warning` for
/// allowed findings of medium severity or more and for expired ignores and skipped scanners,
/// `::notice` for other allowed findings. Suppressed findings are not annotated.
pub fn render_github(report: &ScanReport, verdict: &Verdict) -> String {
    let mut out = String::new();
    for p in &verdict.problems {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property("shipline scan"),
            escape_data(p)
        );
    }
    for s in verdict
        .scanners
        .iter()
        .filter(|s| s.status == ScannerState::Skipped)
    {
        let _ = writeln!(
            out,
            "::warning title={}::{}",
            escape_property(&format!("scanner {} skipped", s.name)),
            escape_data(s.message.as_deref().unwrap_or("skipped"))
        );
    }
    for e in &verdict.expired_ignores {
        let _ = writeln!(
            out,
            "::warning title={}::{}",
            escape_property(&format!("expired ignore {}", e.ignore)),
            escape_data(&format!(
                "the ignore for {} expired on {} and no longer applies ({} finding(s)); reason was: {}",
                e.ignore, e.expired, e.findings, e.reason
            ))
        );
    }
    for i in super::by_state(report, verdict) {
        let f = &report.findings[i];
        let cmd = match super::state_of(verdict, i) {
            State::Suppressed => continue,
            State::Blocking => "error",
            State::Allowed if f.severity >= Severity::Medium => "warning",
            State::Allowed => "notice",
        };
        let mut props = Vec::new();
        if let Some(p) = &f.location.path {
            props.push(format!("file={}", escape_property(p)));
            if let Some(l) = f.location.start_line {
                props.push(format!("line={l}"));
                if let Some(e) = f.location.end_line.filter(|e| *e > l) {
                    props.push(format!("endLine={e}"));
                }
            }
        }
        props.push(format!(
            "title={}",
            escape_property(&format!(
                "{} {} ({})",
                super::sev_upper(f.severity),
                f.rule_id,
                f.tool
            ))
        ));
        let mut msg = f.title.clone();
        if f.message != f.title {
            msg.push_str(": ");
            msg.push_str(&super::one_line(&f.message, 500));
        }
        if let Some(p) = super::package_of(f) {
            msg.push_str(&format!(" [{p}]"));
        }
        if f.location.path.is_none() {
            let w = super::where_of(f);
            if !w.is_empty() {
                msg.push_str(&format!(" in {w}"));
            }
        }
        let _ = writeln!(out, "::{cmd} {}::{}", props.join(","), escape_data(&msg));
    }
    out
}
