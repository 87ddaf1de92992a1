//! Terminal table grouped by severity, with counts. Plain text (reads correctly without
//! colour).

use std::fmt::Write;

use crate::gate::{State, Verdict};
use crate::report::{ScanReport, SEVERITIES};

/// Renders the terminal summary: verdict line, expired ignores, scanner statuses, then the
/// findings grouped by severity (most severe first) with a count per group.
pub fn render_table(report: &ScanReport, verdict: &Verdict) -> String {
    let mut out = String::new();
    let c = &verdict.counts;
    let _ = writeln!(
        out,
        "shipline scan: {} -- {} blocking, {} allowed, {} suppressed ({} findings)",
        verdict.outcome.as_str().to_ascii_uppercase(),
        c.blocking,
        c.allowed,
        c.suppressed,
        c.total
    );
    for p in &verdict.problems {
        let _ = writeln!(out, "ERROR: {p}");
    }
    if !verdict.expired_ignores.is_empty() {
        let _ = writeln!(out, "\nEXPIRED IGNORES (no longer applied):");
        for e in &verdict.expired_ignores {
            let _ = writeln!(
                out,
                "  ! {} expired {} ({} finding(s) count again) -- reason was: {}",
                e.ignore, e.expired, e.findings, e.reason
            );
        }
    }
    let _ = writeln!(out, "\nSCANNERS");
    let wname = verdict
        .scanners
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let wver = verdict
        .scanners
        .iter()
        .map(|s| s.version.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    for s in &verdict.scanners {
        let _ = write!(
            out,
            "  {:<wname$}  {:<wver$}  {:<7}  {} finding(s)",
            s.name,
            s.version.as_deref().unwrap_or("-"),
            s.status.as_str(),
            s.findings,
        );
        if let Some(m) = &s.message {
            let _ = write!(out, "  {}", super::one_line(m, 300));
        }
        out.push('\n');
        for w in &s.warnings {
            let _ = writeln!(out, "      warning: {}", super::one_line(w, 200));
        }
    }
    if verdict.scanners.is_empty() {
        let _ = writeln!(out, "  (none)");
    }

    let order = super::by_severity(report);
    let mut pos = 0;
    for sev in SEVERITIES {
        let start = pos;
        while pos < order.len() && report.findings[order[pos]].severity == sev {
            pos += 1;
        }
        let group = &order[start..pos];
        if group.is_empty() {
            continue;
        }
        let blocking = group
            .iter()
            .filter(|&&i| super::state_of(verdict, i) == State::Blocking)
            .count();
        let _ = writeln!(
            out,
            "\n{} ({}, {} blocking)",
            super::sev_upper(sev),
            group.len(),
            blocking
        );
        for &i in group {
            let f = &report.findings[i];
            let tag = match super::state_of(verdict, i) {
                State::Blocking => "BLOCK",
                State::Allowed => "allow",
                State::Suppressed => "supp.",
            };
            let mut line = format!("  {tag}  {:<8} {}", f.tool, f.rule_id);
            if let Some(p) = super::package_of(f) {
                let _ = write!(line, "  {p}");
            }
            let w = super::where_of(f);
            if !w.is_empty() {
                let _ = write!(line, "  {w}");
            }
            let _ = write!(line, "  {}", super::one_line(&f.title, 80));
            out.push_str(&line);
            out.push('\n');
            if let Some(d) = verdict.decisions.get(i) {
                if let Some(s) = &d.suppression {
                    let _ = writeln!(
                        out,
                        "         suppressed by {}{}",
                        s.by,
                        s.reason
                            .as_deref()
                            .map(|r| format!(": {}", super::one_line(r, 120)))
                            .unwrap_or_default()
                    );
                }
                if let Some(e) = d
                    .expired_ignore
                    .and_then(|e| verdict.expired_ignores.get(e))
                {
                    let _ = writeln!(out, "         ! ignore {} expired {}", e.ignore, e.expired);
                }
            }
        }
    }
    let _ = write!(out, "\nTOTAL");
    for sev in SEVERITIES {
        let n = c.by_severity.get(sev.as_str()).copied().unwrap_or(0);
        let _ = write!(out, "  {} {}", sev.as_str(), n);
    }
    out.push('\n');
    out
}
