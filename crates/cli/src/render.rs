//! Pure renderers for run records (tables and summaries).

use std::fmt::Write;

use shipline_core::run::RunRecord;

fn fmt_ms(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// One line per run.
pub fn runs_table(records: &[RunRecord]) -> String {
    let mut out = String::new();
    if records.is_empty() {
        out.push_str("no runs recorded yet\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<24} {:<17} {:<8} {:<8} {:<20} DIGEST",
        "RUN", "STATUS", "BRANCH", "ENV", "STARTED"
    );
    for r in records {
        let digest = r
            .image
            .as_ref()
            .and_then(|i| i.digest.as_deref())
            .map(short_digest)
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<24} {:<17} {:<8} {:<8} {:<20} {}",
            r.id,
            r.status.as_str(),
            r.branch.as_deref().unwrap_or("-"),
            r.environment.as_deref().unwrap_or("-"),
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            digest
        );
    }
    out
}

/// `sha256:0123456789ab…`
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => match hex.get(..12) {
            Some(short) => format!("{alg}:{short}"),
            None => d.to_string(),
        },
        _ => d.to_string(),
    }
}

/// `repository[:tag][@digest]`.
fn image_ref(img: &shipline_core::run::ImageInfo) -> String {
    let mut s = img.repository.clone();
    if let Some(t) = &img.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &img.digest {
        s.push('@');
        s.push_str(d);
    }
    s
}

/// The summary table shown at the end of a run and by `runs show`.
pub fn run_summary(r: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  {}  branch {}  env {}",
        r.id,
        r.status.as_str(),
        r.branch.as_deref().unwrap_or("-"),
        r.environment.as_deref().unwrap_or("-")
    );
    if let Some(commit) = &r.commit {
        let _ = writeln!(out, "commit {commit}");
    }
    if let Some(img) = &r.image {
        let _ = writeln!(out, "image  {}", image_ref(img));
    }
    let width = r
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:<10} {:>8}  DETAIL",
        "STAGE", "STATUS", "TIME"
    );
    for s in &r.stages {
        let _ = writeln!(
            out,
            "{:<width$}  {:<10} {:>8}  {}",
            s.id,
            s.status.as_str(),
            fmt_ms(s.duration_ms),
            s.message
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    if let Some(f) = &r.findings {
        let counts: Vec<String> = f.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            out,
            "findings: verdict {}{}",
            f.verdict,
            if counts.is_empty() {
                String::new()
            } else {
                format!(" ({})", counts.join(", "))
            }
        );
        for s in &f.scanners {
            if s.status != "ok" {
                let _ = writeln!(
                    out,
                    "  scanner {}: {}{}",
                    s.name,
                    s.status.to_uppercase(),
                    s.message
                        .as_deref()
                        .map(|m| format!(" - {m}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}

/// Markdown pipe-table cell: no line breaks, pipes escaped.
fn md_cell(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .replace('\\', "\\\\")
        .replace('|', "\\|")
}

/// The run summary as markdown, for `$GITHUB_STEP_SUMMARY`.
pub fn run_summary_markdown(r: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### shipline run `{}`: {}\n", r.id, r.status.as_str());
    if let Some(img) = &r.image {
        let _ = writeln!(out, "Image: `{}`\n", image_ref(img));
    }
    let _ = writeln!(
        out,
        "| Stage | Status | Time | Detail |\n|---|---|---:|---|"
    );
    for s in &r.stages {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md_cell(&s.id),
            s.status.as_str(),
            fmt_ms(s.duration_ms),
            md_cell(s.message.as_deref().unwrap_or(""))
        );
    }
    out
}
