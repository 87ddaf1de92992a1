//! SARIF 2.1.0 for code scanning: one run per tool, `partialFingerprints`,
//! `security-severity`, rules with short and full descriptions and help, at most
//! [`SARIF_RESULT_CAP`] results per run with a note when capped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, Notification,
    PhysicalLocation, PropertyBag, Region, ReportingDescriptor, Result as SarifResult, ResultLevel,
    Run, Sarif, Suppression, Tool, ToolComponent,
};

use crate::finding::{Finding, Severity};
use crate::gate::{State, Verdict};
use crate::report::{ScanReport, ScannerState};

/// GitHub code scanning accepts at most 5,000 results per run (25,000 per upload).
pub const SARIF_RESULT_CAP: usize = 5000;

/// `security-severity` for a severity (GitHub's bands: >= 9.0 critical, >= 7.0 high, ...).
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Info | Severity::Unknown => "0.0",
    }
}

fn text(s: impl Into<String>) -> Message {
    Message::builder().text(s.into()).build()
}

fn mtext(t: impl Into<String>, md: Option<String>) -> MultiformatMessageString {
    match md {
        Some(md) => MultiformatMessageString::builder()
            .text(t.into())
            .markdown(md)
            .build(),
        None => MultiformatMessageString::builder().text(t.into()).build(),
    }
}

fn help_of(f: &Finding) -> MultiformatMessageString {
    let mut t = f.message.clone();
    let mut md = f.message.clone();
    if let Some(fix) = &f.fix {
        t.push_str(&format!("\n\nFix: {fix}"));
        md.push_str(&format!("\n\n**Fix:** {fix}"));
    }
    if !f.references.is_empty() {
        md.push_str("\n\n**References:**\n");
        for r in f.references.iter().take(10) {
            md.push_str(&format!("- <{r}>\n"));
        }
        t.push_str(&format!(
            "\n\nReferences: {}",
            f.references
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    mtext(t, Some(md))
}

fn rule_of(f: &Finding, max_sev: Severity) -> ReportingDescriptor {
    let mut props = BTreeMap::new();
    props.insert(
        "security-severity".to_string(),
        json!(security_severity(max_sev)),
    );
    props.insert(
        "shipline/kind".to_string(),
        json!(crate::gate::kind_name(f.kind)),
    );
    let mut tags = vec![
        "security".to_string(),
        crate::gate::kind_name(f.kind).to_string(),
    ];
    tags.extend(f.cwe.iter().cloned());
    let bag = PropertyBag::builder()
        .tags(tags)
        .additional_properties(props)
        .build();
    let short = super::one_line(&f.title, 1000);
    let full = super::one_line(&f.message, 1000);
    let b = ReportingDescriptor::builder()
        .id(f.rule_id.clone())
        .name(f.rule_id.clone())
        .short_description(mtext(short, None))
        .full_description(mtext(full, None))
        .help(help_of(f))
        .properties(bag);
    match f.references.first() {
        Some(u) => b.help_uri(u.clone()).build(),
        None => b.build(),
    }
}

fn level_of(f: &Finding, state: State) -> ResultLevel {
    match state {
        State::Blocking => ResultLevel::Error,
        _ if f.severity >= Severity::Medium => ResultLevel::Warning,
        _ => ResultLevel::Note,
    }
}

fn location_of(f: &Finding) -> Location {
    let uri = f
        .location
        .path
        .clone()
        .or_else(|| f.location.target.clone())
        .or_else(|| f.location.artifact.clone())
        .unwrap_or_else(|| "unknown".into());
    let start = i64::from(f.location.start_line.unwrap_or(1).max(1));
    let end = i64::from(f.location.end_line.unwrap_or(0)).max(start);
    Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri).build())
                .region(Region::builder().start_line(start).end_line(end).build())
                .build(),
        )
        .build()
}

/// Builds the SARIF log (serde-sarif types), for embedders that post-process it.
pub fn sarif_log(report: &ScanReport, verdict: &Verdict) -> Sarif {
    let order = super::by_state(report, verdict);
    let mut tools: BTreeSet<&str> = verdict.scanners.iter().map(|s| s.name.as_str()).collect();
    tools.extend(report.findings.iter().map(|f| f.tool.as_str()));
    let tools: Vec<&str> = tools.into_iter().collect();
    // Each finding's tool (index into `tools`), in one pass over the findings in memory
    // order rather than one string comparison per finding and tool in `order`.
    let mut tool_of: Vec<usize> = Vec::with_capacity(report.findings.len());
    let mut last: Option<(&str, usize)> = None;
    for f in &report.findings {
        let t = match last {
            Some((name, t)) if name == f.tool => t,
            _ => {
                let t = tools.binary_search(&f.tool.as_str()).unwrap_or(usize::MAX);
                last = Some((f.tool.as_str(), t));
                t
            }
        };
        tool_of.push(t);
    }
    let mut runs = Vec::new();
    for (t, tool) in tools.iter().copied().enumerate() {
        let idx: Vec<usize> = order.iter().copied().filter(|&i| tool_of[i] == t).collect();
        let total = idx.len();
        let kept = &idx[..total.min(SARIF_RESULT_CAP)];
        // Rules: one per rule id, the most severe finding describes it.
        let mut max_sev: BTreeMap<&str, Severity> = BTreeMap::new();
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in kept {
            let f = &report.findings[i];
            let e = max_sev.entry(f.rule_id.as_str()).or_insert(f.severity);
            *e = (*e).max(f.severity);
            first.entry(f.rule_id.as_str()).or_insert(i);
        }
        let rule_index: BTreeMap<&str, i64> = first
            .keys()
            .enumerate()
            .map(|(n, k)| (*k, i64::try_from(n).unwrap_or(i64::MAX)))
            .collect();
        let rules: Vec<ReportingDescriptor> = first
            .iter()
            .map(|(k, &i)| rule_of(&report.findings[i], max_sev[k]))
            .collect();
        let results: Vec<SarifResult> = kept
            .iter()
            .map(|&i| {
                let f = &report.findings[i];
                let state = super::state_of(verdict, i);
                let mut msg = f.message.clone();
                if let Some(p) = super::package_of(f) {
                    msg = format!("{msg}\n\nPackage: {p}");
                }
                let mut fp = BTreeMap::new();
                fp.insert("shiplineFindingId/v1".to_string(), f.id.clone());
                let mut props = BTreeMap::new();
                props.insert("shipline/state".to_string(), json!(state.as_str()));
                props.insert("shipline/severity".to_string(), json!(f.severity.as_str()));
                let b = SarifResult::builder()
                    .rule_id(f.rule_id.clone())
                    .rule_index(rule_index.get(f.rule_id.as_str()).copied().unwrap_or(0))
                    .level(level_of(f, state))
                    .message(text(msg))
                    .locations(vec![location_of(f)])
                    .partial_fingerprints(fp)
                    .properties(PropertyBag::builder().additional_properties(props).build());
                let supp = verdict
                    .decisions
                    .get(i)
                    .and_then(|d| d.suppression.as_ref());
                match supp.filter(|_| state == State::Suppressed) {
                    Some(s) => {
                        let kind = if s.by == "nosemgrep" {
                            "inSource"
                        } else {
                            "external"
                        };
                        let just = format!(
                            "{}{}",
                            s.by,
                            s.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        );
                        b.suppressions(vec![Suppression::builder()
                            .kind(json!(kind))
                            .status(json!("accepted"))
                            .justification(just)
                            .build()])
                            .build()
                    }
                    None => b.build(),
                }
            })
            .collect();

        let status = verdict.scanners.iter().find(|s| s.name == tool);
        let version = status.and_then(|s| s.version.clone()).or_else(|| {
            kept.first()
                .and_then(|&i| report.findings[i].tool_version.clone())
        });
        let driver = match version {
            Some(v) => ToolComponent::builder()
                .name(tool.to_string())
                .version(v)
                .rules(rules)
                .build(),
            None => ToolComponent::builder()
                .name(tool.to_string())
                .rules(rules)
                .build(),
        };
        let mut notes = Vec::new();
        for s in verdict.scanners.iter().filter(|s| s.name == tool) {
            match s.status {
                ScannerState::Error => notes.push(
                    Notification::builder()
                        .level(json!("error"))
                        .message(text(
                            s.message.clone().unwrap_or_else(|| "scanner failed".into()),
                        ))
                        .build(),
                ),
                ScannerState::Skipped => notes.push(
                    Notification::builder()
                        .level(json!("warning"))
                        .message(text(s.message.clone().unwrap_or_else(|| "skipped".into())))
                        .build(),
                ),
                ScannerState::Ok => {}
            }
            for w in &s.warnings {
                notes.push(
                    Notification::builder()
                        .level(json!("warning"))
                        .message(text(w.clone()))
                        .build(),
                );
            }
        }
        let capped = total > kept.len();
        if capped {
            notes.push(
                Notification::builder()
                    .level(json!("note"))
                    .message(text(format!(
                        "results capped at {SARIF_RESULT_CAP} per run: {} of {total} result(s) omitted (blocking findings first)",
                        total - kept.len()
                    )))
                    .build(),
            );
        }
        let ok = !verdict
            .scanners
            .iter()
            .any(|s| s.name == tool && s.status == ScannerState::Error);
        let inv = if notes.is_empty() {
            Invocation::builder().execution_successful(ok).build()
        } else {
            Invocation::builder()
                .execution_successful(ok)
                .tool_execution_notifications(notes)
                .build()
        };
        let mut run_props = BTreeMap::new();
        run_props.insert(
            "shipline/verdict".to_string(),
            json!(verdict.outcome.as_str()),
        );
        if capped {
            run_props.insert("shipline/resultsCapped".to_string(), json!(true));
            run_props.insert(
                "shipline/omittedResults".to_string(),
                json!(total - kept.len()),
            );
        }
        runs.push(
            Run::builder()
                .tool(Tool::builder().driver(driver).build())
                .results(results)
                .invocations(vec![inv])
                .properties(
                    PropertyBag::builder()
                        .additional_properties(run_props)
                        .build(),
                )
                .build(),
        );
    }
    Sarif::builder()
        .schema(serde_sarif::sarif::SCHEMA_URL.to_string())
        .version(json!("2.1.0"))
        .runs(runs)
        .build()
}

/// Renders the SARIF log as JSON (pretty, trailing newline).
pub fn render_sarif(report: &ScanReport, verdict: &Verdict) -> String {
    let mut s = serde_json::to_string_pretty(&sarif_log(report, verdict)).unwrap_or_default();
    s.push('\n');
    s
}
