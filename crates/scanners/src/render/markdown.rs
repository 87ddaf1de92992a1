//! Markdown for `$GITHUB_STEP_SUMMARY`, kept under 1 MiB (GitHub's limit per step).

use std::fmt::Write;

use crate::gate::{State, Verdict};
use crate::report::{ScanReport, SEVERITIES};

/// Largest markdown output (bytes): GitHub rejects step summaries over 1 MiB.
pub const MARKDOWN_LIMIT: usize = 1024 * 1024;

fn cell(s: &str) -> String {
    super::one_line(s, 200)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// [`render_markdown_capped`] at [`MARKDOWN_LIMIT`].
pub fn render_markdown(report: &ScanReport, verdict: &Verdict) -> String {
    render_markdown_capped(report, verdict, MARKDOWN_LIMIT)
}

/// Renders the summary; finding rows stop before the output would exceed `limit` bytes, and a
/// note says how many were left out. Blocking findings come first.
pub fn render_markdown_capped(report: &ScanReport, verdict: &Verdict, limit: usize) -> String {
    let mut out = String::new();
    let c = &verdict.counts;
    let _ = writeln!(
        out,
        "## shipline scan: {}\n",
        verdict.outcome.as_str().to_ascii_uppercase()
    );
    let _ = writeln!(
        out,
        "**{} blocking** · {} allowed · {} suppressed · {} total\n",
        c.blocking, c.allowed, c.suppressed, c.total
    );
    if !verdict.problems.is_empty() {
        let _ = writeln!(out, "> [!CAUTION]\n> The gate failed closed: a scanner did not produce trustworthy results.");
        for p in &verdict.problems {
            let _ = writeln!(out, "> - {}", cell(p));
        }
        out.push('\n');
    }
    if !verdict.expired_ignores.is_empty() {
        let _ = writeln!(out, "> [!WARNING]\n> Expired ignores no longer apply:");
        for e in &verdict.expired_ignores {
            let _ = writeln!(
                out,
                "> - `{}` expired {} ({} finding(s) count again); reason was: {}",
                cell(&e.ignore),
                e.expired,
                e.findings,
                cell(&e.reason)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "| scanner | version | status | findings | note |\n|---|---|---|---:|---|"
    );
    for s in &verdict.scanners {
        let mut note = s.message.clone().unwrap_or_default();
        if !s.warnings.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!(
                "{} warning(s): {}",
                s.warnings.len(),
                s.warnings[0]
            ));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&s.name),
            cell(s.version.as_deref().unwrap_or("-")),
            s.status.as_str(),
            s.findings,
            cell(&note)
        );
    }
    let _ = writeln!(out, "\n| severity | findings | blocking |\n|---|---:|---:|");
    for sev in SEVERITIES {
        let n = c.by_severity.get(sev.as_str()).copied().unwrap_or(0);
        let b = c
            .blocking_by_severity
            .get(sev.as_str())
            .copied()
            .unwrap_or(0);
        let _ = writeln!(out, "| {} | {n} | {b} |", sev.as_str());
    }
    if report.findings.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n### Findings\n\n| gate | severity | tool | rule | location | title |\n|---|---|---|---|---|---|"
    );
    let order = super::by_state(report, verdict);
    let total = order.len();
    // Room kept for the truncation note.
    let reserve = 300;
    for (n, i) in order.into_iter().enumerate() {
        let f = &report.findings[i];
        let state = match super::state_of(verdict, i) {
            State::Blocking => "**blocking**",
            State::Allowed => "allowed",
            State::Suppressed => "suppressed",
        };
        let mut loc = super::where_of(f);
        if let Some(p) = super::package_of(f) {
            loc = if loc.is_empty() {
                p
            } else {
                format!("{p} in {loc}")
            };
        }
        let row = format!(
            "| {state} | {} | {} | `{}` | {} | {} |\n",
            f.severity.as_str(),
            cell(&f.tool),
            cell(&f.rule_id).replace('`', "'"),
            cell(&loc),
            cell(&f.title)
        );
        if out.len() + row.len() + reserve > limit {
            let _ = writeln!(
                out,
                "\n_{} more finding(s) not shown: the summary is capped at {} bytes. See the JSON or SARIF output for all {total}._",
                total - n,
                limit
            );
            return out;
        }
        out.push_str(&row);
    }
    out
}
