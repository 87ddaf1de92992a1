//! SARIF 2.1.0 import: any producer (zizmor, checkov, bandit, CodeQL, Trivy or Semgrep SARIF)
//! becomes findings, one [`ScannerRun`] per SARIF run.
//!
//! Severity comes from, in order: `security-severity` (result, then rule properties, a CVSS-like
//! score), a `<tool>/severity` or `severity` property naming a level, then the effective
//! SARIF level (`result.level`, else the rule's `defaultConfiguration.level`, else `warning`):
//! `error` → high, `warning` → medium, `note` → low, `none` → info.
//! A run whose invocation says `executionSuccessful: false` or carries an `error`
//! notification fails closed.

use std::collections::BTreeMap;
use std::path::Path;

use serde_sarif::sarif::{self, PropertyBag, ReportingDescriptor, ResultLevel, Sarif};

use crate::finding::{stable_id, Finding, FindingKind, Location, Severity, Suppression};
use crate::process::{self, ExitKind, ProcessSpec};
use crate::report::{ScanError, ScannerRun};
use crate::semgrep::{cwe_id, read_snippet, snippet_hash};

/// Runs any SARIF-producing tool (zizmor, checkov, bandit, ...) and imports its stdout.
///
/// `ok_codes` are the exit codes that mean "ran" (tools differ: some exit non-zero when they
/// find something). Every failure becomes a run named `name` with status `error`.
pub fn run_tool(
    name: &str,
    spec: &ProcessSpec,
    ok_codes: &[i32],
    root: Option<&Path>,
) -> Vec<ScannerRun> {
    let res = process::run(spec).map_err(ScanError::from).and_then(|out| {
        let stderr = out.stderr_tail(2000);
        match out.exit {
            ExitKind::Code(c) if ok_codes.contains(&c) => {}
            exit => {
                return Err(ScanError::Exit {
                    tool: name.to_string(),
                    exit,
                    stderr,
                })
            }
        }
        if out.stdout_truncated {
            return Err(ScanError::OutputTooLarge {
                tool: name.to_string(),
                cap: out.stdout.len(),
            });
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Err(ScanError::EmptyOutput {
                tool: name.to_string(),
                stderr,
            });
        }
        parse(&out.stdout, "stdout", root)
    });
    match res {
        Ok(runs) if runs.is_empty() => {
            let err = ScanError::EmptyOutput {
                tool: name.to_string(),
                stderr: "the SARIF log has no runs".into(),
            };
            vec![ScannerRun::failed(name, &err).with_source("run")]
        }
        Ok(runs) => runs.into_iter().map(|r| r.with_source("run")).collect(),
        Err(e) => vec![ScannerRun::failed(name, &e).with_source("run")],
    }
}

/// Reads a SARIF file.
pub fn ingest_file(path: &Path, root: Option<&Path>) -> Vec<ScannerRun> {
    let name = path.display().to_string();
    let res = std::fs::read(path)
        .map_err(|source| ScanError::Read {
            path: name.clone(),
            source,
        })
        .and_then(|b| parse(&b, &name, root));
    match res {
        Ok(runs) => runs
            .into_iter()
            .map(|r| r.with_source(name.clone()))
            .collect(),
        Err(e) => vec![ScannerRun::failed("sarif", &e).with_source(name)],
    }
}

/// Parses a SARIF 2.1.0 log. A run that reports failure becomes a run with status `error`.
pub fn parse(
    bytes: &[u8],
    source_name: &str,
    root: Option<&Path>,
) -> Result<Vec<ScannerRun>, ScanError> {
    let log: Sarif = serde_json::from_slice(bytes).map_err(|source| ScanError::Json {
        tool: "sarif".into(),
        source_name: source_name.into(),
        source,
    })?;
    let version = log.version.as_str().unwrap_or("");
    if version != "2.1.0" {
        return Err(ScanError::UnknownSchema {
            tool: "sarif".into(),
            source_name: source_name.into(),
            found: if version.is_empty() {
                "missing".into()
            } else {
                version.into()
            },
            expected: "2.1.0".into(),
        });
    }
    Ok(log.runs.iter().map(|r| convert_run(r, root)).collect())
}

/// Normalized tool name for a SARIF driver name (`Semgrep OSS` → `semgrep`).
pub fn tool_name(driver: &str) -> String {
    let lower = driver.trim().to_ascii_lowercase();
    for known in ["semgrep", "trivy", "zizmor", "checkov", "bandit", "codeql"] {
        if lower.starts_with(known) {
            return known.to_string();
        }
    }
    let cleaned: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "sarif".into()
    } else {
        cleaned
    }
}

fn convert_run(run: &sarif::Run, root: Option<&Path>) -> ScannerRun {
    let driver = &run.tool.driver;
    let tool = tool_name(&driver.name);
    let version = driver
        .version
        .clone()
        .or_else(|| driver.semantic_version.clone());

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for inv in run.invocations.iter().flatten() {
        if !inv.execution_successful {
            errors.push("the run reports executionSuccessful: false".to_string());
        }
        let notes = inv
            .tool_execution_notifications
            .iter()
            .flatten()
            .chain(inv.tool_configuration_notifications.iter().flatten());
        for n in notes {
            let text = n.message.text.clone().unwrap_or_default();
            match n.level.as_ref().and_then(|l| l.as_str()) {
                Some("error") => errors.push(text),
                _ => warnings.push(text),
            }
        }
    }
    if let Some(first) = errors.first() {
        let err = ScanError::ToolErrors {
            tool: tool.clone(),
            count: errors.len(),
            first: first.clone(),
        };
        let mut r = ScannerRun::failed(tool, &err);
        r.status.version = version;
        return r;
    }

    let rules: &[ReportingDescriptor] = driver.rules.as_deref().unwrap_or(&[]);
    let by_id: BTreeMap<&str, &ReportingDescriptor> =
        rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let findings = run
        .results
        .iter()
        .flatten()
        .map(|res| {
            let rule = res
                .rule_index
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| rules.get(i))
                .or_else(|| res.rule_id.as_deref().and_then(|id| by_id.get(id).copied()));
            convert_result(res, rule, &tool, version.as_deref(), root)
        })
        .collect();
    let mut r = ScannerRun::ok(tool, version, findings);
    r.status.warnings = warnings;
    r
}

fn prop<'a>(bag: Option<&'a PropertyBag>, key: &str) -> Option<&'a serde_json::Value> {
    bag.and_then(|b| b.additional_properties.get(key))
}

fn security_severity(bag: Option<&PropertyBag>) -> Option<f64> {
    match prop(bag, "security-severity")? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Severity for a CVSS-like score (GitHub's code-scanning bands).
pub fn severity_from_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

fn named_severity(bag: Option<&PropertyBag>, tool: &str) -> Option<(Severity, String)> {
    let bag = bag?;
    let v = bag
        .additional_properties
        .get(&format!("{tool}/severity"))
        .or_else(|| bag.additional_properties.get("severity"))?
        .as_str()?;
    let sev = match v.to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "high" | "error" => Severity::High,
        "medium" | "moderate" | "warning" => Severity::Medium,
        "low" => Severity::Low,
        "info" | "informational" | "note" | "none" => Severity::Info,
        _ => return None,
    };
    Some((sev, v.to_string()))
}

fn level_str(l: &ResultLevel) -> &'static str {
    match l {
        ResultLevel::None => "none",
        ResultLevel::Note => "note",
        ResultLevel::Warning => "warning",
        ResultLevel::Error => "error",
    }
}

fn effective_level(res: &sarif::Result, rule: Option<&ReportingDescriptor>) -> String {
    if let Some(l) = &res.level {
        return level_str(l).to_string();
    }
    rule.and_then(|r| r.default_configuration.as_ref())
        .and_then(|c| c.level.as_ref())
        .and_then(|l| l.as_str())
        .unwrap_or("warning")
        .to_string()
}

fn level_severity(level: &str) -> Severity {
    match level {
        "error" => Severity::High,
        "warning" => Severity::Medium,
        "note" => Severity::Low,
        _ => Severity::Info,
    }
}

fn convert_result(
    res: &sarif::Result,
    rule: Option<&ReportingDescriptor>,
    tool: &str,
    version: Option<&str>,
    root: Option<&Path>,
) -> Finding {
    let rule_id = res
        .rule_id
        .clone()
        .or_else(|| rule.map(|r| r.id.clone()))
        .unwrap_or_else(|| "unknown-rule".into());
    let level = effective_level(res, rule);
    let rule_props = rule.and_then(|r| r.properties.as_ref());
    let score =
        security_severity(res.properties.as_ref()).or_else(|| security_severity(rule_props));
    let (severity, tool_severity) = if let Some(s) = score {
        (severity_from_score(s), format!("security-severity {s}"))
    } else if let Some((s, name)) =
        named_severity(res.properties.as_ref(), tool).or_else(|| named_severity(rule_props, tool))
    {
        (s, name)
    } else {
        (level_severity(&level), level.clone())
    };

    let phys = res
        .locations
        .iter()
        .flatten()
        .find_map(|l| l.physical_location.as_ref());
    let path = phys
        .and_then(|p| p.artifact_location.as_ref())
        .and_then(|a| a.uri.clone())
        .map(|u| u.strip_prefix("file://").map(str::to_string).unwrap_or(u));
    let region = phys.and_then(|p| p.region.as_ref());
    let start = region
        .and_then(|r| r.start_line)
        .and_then(|l| u32::try_from(l).ok());
    let end = region
        .and_then(|r| r.end_line)
        .and_then(|l| u32::try_from(l).ok())
        .or(start);
    let snippet = region
        .and_then(|r| r.snippet.as_ref())
        .and_then(|s| s.text.clone())
        .filter(|s| s.trim() != crate::semgrep::REQUIRES_LOGIN)
        .or_else(|| match (root, path.as_deref(), start) {
            (Some(root), Some(p), Some(s)) => read_snippet(root, p, s, end.unwrap_or(s)),
            _ => None,
        });
    let key = match &snippet {
        Some(s) => snippet_hash(s),
        None => format!("line:{}", start.unwrap_or(0)),
    };
    let id = stable_id(&[tool, "sarif", &rule_id, path.as_deref().unwrap_or(""), &key]);

    let mut tags: Vec<String> = rule_props.and_then(|p| p.tags.clone()).unwrap_or_default();
    tags.extend(
        res.properties
            .as_ref()
            .and_then(|p| p.tags.clone())
            .unwrap_or_default(),
    );
    let mut cwe: Vec<String> = Vec::new();
    let mut owasp = Vec::new();
    for t in &tags {
        let lower = t.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("external/cwe/cwe-") {
            let c = format!("CWE-{}", n.trim_start_matches('0'));
            if !cwe.contains(&c) {
                cwe.push(c);
            }
        } else if lower.starts_with("cwe-") {
            let c = cwe_id(t).to_ascii_uppercase();
            if !cwe.contains(&c) {
                cwe.push(c);
            }
        } else if lower.starts_with("owasp") || lower.starts_with("a0") || lower.starts_with("a1") {
            owasp.push(t.clone());
        }
    }

    let title = rule
        .and_then(|r| r.short_description.as_ref().map(|d| d.text.clone()))
        .or_else(|| rule.and_then(|r| r.name.clone()))
        .unwrap_or_else(|| rule_id.clone());
    let message = res
        .message
        .text
        .clone()
        .or_else(|| res.message.markdown.clone())
        .unwrap_or_else(|| title.clone());
    let references = rule.and_then(|r| r.help_uri.clone()).into_iter().collect();
    let kind = if tool == "trivy" {
        if rule_id.starts_with("CVE-") || rule_id.starts_with("GHSA-") {
            FindingKind::Vulnerability
        } else {
            FindingKind::Misconfiguration
        }
    } else {
        FindingKind::Sast
    };
    let suppression = res.suppressions.iter().flatten().find_map(|s| {
        let status = s
            .status
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("accepted");
        (status == "accepted").then(|| Suppression {
            by: format!("{tool} ({})", s.kind.as_str().unwrap_or("suppression")),
            reason: s.justification.clone(),
            expires: None,
        })
    });
    Finding {
        id,
        tool: tool.to_string(),
        tool_version: version.map(str::to_string),
        kind,
        rule_id,
        aliases: Vec::new(),
        title,
        message,
        severity,
        tool_severity: Some(tool_severity),
        cvss: score,
        cwe,
        owasp,
        location: Location {
            path,
            start_line: start,
            end_line: end,
            ..Location::default()
        },
        package: None,
        references,
        fix: None,
        suppression,
    }
}
