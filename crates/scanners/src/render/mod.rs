//! Pure renderers: (report, verdict) in, text out, in a deterministic order.
//!
//! Every renderer orders findings the same way: by gate state (blocking, allowed,
//! suppressed) where it matters, then by [`crate::report::finding_order`].

mod github;
mod json;
mod markdown;
mod sarif;
mod table;

pub use github::{escape_data, escape_property, render_github};
pub use json::{render_json, JSON_VERSION};
pub use markdown::{render_markdown, render_markdown_capped, MARKDOWN_LIMIT};
pub use sarif::{render_sarif, sarif_log, SARIF_RESULT_CAP};
pub use table::render_table;

use crate::finding::{Finding, Severity};
use crate::gate::{State, Verdict};
use crate::report::{finding_order, ScanReport};

/// Indices of the report's findings in severity order (most severe first).
pub(crate) fn by_severity(report: &ScanReport) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..report.findings.len()).collect();
    idx.sort_by(|&a, &b| finding_order(&report.findings[a], &report.findings[b]));
    idx
}

fn state_rank(s: State) -> u8 {
    match s {
        State::Blocking => 0,
        State::Allowed => 1,
        State::Suppressed => 2,
    }
}

/// Indices ordered blocking first, then allowed, then suppressed; each in severity order.
pub(crate) fn by_state(report: &ScanReport, verdict: &Verdict) -> Vec<usize> {
    let mut idx = by_severity(report);
    idx.sort_by_key(|&i| verdict.decisions.get(i).map_or(3, |d| state_rank(d.state)));
    idx
}

/// The decision's state for finding `i` (allowed when the verdict does not cover it).
pub(crate) fn state_of(verdict: &Verdict, i: usize) -> State {
    verdict.decisions.get(i).map_or(State::Allowed, |d| d.state)
}

/// Where a finding is, for humans: `path:line`, else target, else artifact.
pub(crate) fn where_of(f: &Finding) -> String {
    let l = &f.location;
    match (&l.path, l.start_line) {
        (Some(p), Some(line)) => format!("{p}:{line}"),
        (Some(p), None) => p.clone(),
        (None, _) => l
            .target
            .clone()
            .or_else(|| l.artifact.clone())
            .unwrap_or_default(),
    }
}

/// `pkg installed -> fixed` for package findings.
pub(crate) fn package_of(f: &Finding) -> Option<String> {
    let p = f.package.as_ref()?;
    let mut s = p.name.clone();
    if let Some(v) = &p.installed {
        s.push(' ');
        s.push_str(v);
    }
    match &p.fixed {
        Some(fx) if !fx.is_empty() => {
            s.push_str(" -> ");
            s.push_str(fx);
        }
        _ => s.push_str(" (no fix)"),
    }
    Some(s)
}

/// A single line, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut flat = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !flat.is_empty() {
            flat.push(' ');
        }
        flat.push_str(word);
    }
    if flat.chars().count() <= max {
        flat
    } else {
        let mut t: String = flat.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

/// Upper-case severity label.
pub(crate) fn sev_upper(s: Severity) -> String {
    s.as_str().to_ascii_uppercase()
}
