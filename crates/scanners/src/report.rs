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
        if self.findings.is_empty() {
            self.findings = run.findings;
        } else {
            self.findings.extend(run.findings);
        }
    }

    /// Sorts findings deterministically: severity (most severe first), tool, kind, rule,
    /// path, line, id.
    pub fn sort(&mut self) {
        sort_findings(&mut self.findings);
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

/// Sorts `findings` by [`finding_order`] (stable), as `findings.sort_by(finding_order)` would.
///
/// Comparing findings directly chases two heap pointers per string per comparison; this sorts
/// small keys instead (severity, kind and inline prefixes of tool and rule id), falls back to
/// [`finding_order`] only when the keys cannot decide, then moves every finding once.
pub fn sort_findings(findings: &mut [Finding]) {
    let Ok(n) = u32::try_from(findings.len()) else {
        findings.sort_by(finding_order);
        return;
    };
    let mut keys: Vec<SortKey> = findings
        .iter()
        .zip(0..n)
        .map(|(f, i)| SortKey::new(f, i))
        .collect();
    keys.sort_by(|a, b| {
        a.quick_cmp(b).unwrap_or_else(|| {
            finding_order(&findings[a.index as usize], &findings[b.index as usize])
        })
    });
    // Apply the permutation in place: position i receives the finding at keys[i].index.
    let mut from: Vec<u32> = keys.into_iter().map(|k| k.index).collect();
    for start in 0..from.len() {
        let mut cur = start;
        loop {
            let next = from[cur] as usize;
            from[cur] = u32::try_from(cur).unwrap_or(u32::MAX);
            if next == start || next == cur {
                break;
            }
            findings.swap(cur, next);
            cur = next;
        }
    }
}

/// The first bytes of a string, for comparisons that need not look at the heap.
#[derive(Clone, Copy)]
struct Prefix<const N: usize> {
    bytes: [u8; N],
    len: u8,
    truncated: bool,
}

impl<const N: usize> Prefix<N> {
    fn new(s: &str) -> Self {
        let s = s.as_bytes();
        let len = s.len().min(N);
        let mut bytes = [0u8; N];
        bytes[..len].copy_from_slice(&s[..len]);
        Prefix {
            bytes,
            len: u8::try_from(len).unwrap_or(u8::MAX),
            truncated: s.len() > N,
        }
    }

    /// The order of the full strings when the prefixes decide it; `None` when they do not
    /// (equal prefixes, one of them cut).
    fn cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        let a = &self.bytes[..usize::from(self.len)];
        let b = &other.bytes[..usize::from(other.len)];
        match a.cmp(b) {
            std::cmp::Ordering::Equal if self.truncated || other.truncated => None,
            // Unequal prefixes differ at a byte both have (the strings differ there too), or
            // one is shorter and therefore not cut: the whole string is a prefix of the other.
            o => Some(o),
        }
    }
}

/// What [`sort_findings`] sorts.
struct SortKey {
    severity: Severity,
    kind: crate::finding::FindingKind,
    tool: Prefix<8>,
    rule: Prefix<22>,
    index: u32,
}

impl SortKey {
    fn new(f: &Finding, index: u32) -> SortKey {
        SortKey {
            severity: f.severity,
            kind: f.kind,
            tool: Prefix::new(&f.tool),
            rule: Prefix::new(&f.rule_id),
            index,
        }
    }

    /// [`finding_order`] as far as the key knows it; `None` when it needs the findings.
    fn quick_cmp(&self, other: &SortKey) -> Option<std::cmp::Ordering> {
        use std::cmp::Ordering::Equal;
        let o = other.severity.cmp(&self.severity);
        if o != Equal {
            return Some(o);
        }
        let o = self.tool.cmp(&other.tool)?;
        if o != Equal {
            return Some(o);
        }
        let o = self.kind.cmp(&other.kind);
        if o != Equal {
            return Some(o);
        }
        match self.rule.cmp(&other.rule)? {
            Equal => None,
            o => Some(o),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{FindingKind, Location, Package};

    fn finding(n: u64) -> Finding {
        // A small deterministic generator: many ties, shared and cut prefixes.
        let pick = |k: u64, m: u64| (n.wrapping_mul(2_654_435_761).rotate_left(k as u32) ^ n) % m;
        let tools = ["trivy", "semgrep", "semgrep-pro-x", "semgrep-pro-y", "t"];
        let rules = [
            "CVE-2024-1",
            "CVE-2024-10",
            "CVE-2024-1000",
            "python.lang.security.audit.a",
            "python.lang.security.audit.b",
            "python.lang.security.audit",
            "",
        ];
        let kinds = [
            FindingKind::Vulnerability,
            FindingKind::Sast,
            FindingKind::Secret,
        ];
        let sevs = SEVERITIES;
        Finding {
            id: format!("id{}", pick(3, 5)),
            tool: tools[pick(5, tools.len() as u64) as usize].into(),
            tool_version: None,
            kind: kinds[pick(7, kinds.len() as u64) as usize],
            rule_id: rules[pick(11, rules.len() as u64) as usize].into(),
            aliases: Vec::new(),
            title: String::new(),
            message: format!("{n}"),
            severity: sevs[pick(13, sevs.len() as u64) as usize],
            tool_severity: None,
            cvss: None,
            cwe: Vec::new(),
            owasp: Vec::new(),
            location: Location {
                path: (pick(17, 3) > 0).then(|| format!("p{}", pick(19, 3))),
                start_line: (pick(23, 2) > 0).then(|| pick(29, 3) as u32),
                ..Location::default()
            },
            package: (pick(31, 2) > 0).then(|| Package {
                name: format!("pkg{}", pick(37, 3)),
                ..Package::default()
            }),
            references: Vec::new(),
            fix: None,
            suppression: None,
        }
    }

    #[test]
    fn sort_findings_is_sort_by_finding_order() {
        for len in [0usize, 1, 2, 3, 10, 100, 2000] {
            let v: Vec<Finding> = (0..len as u64).map(finding).collect();
            let mut expected = v.clone();
            expected.sort_by(finding_order);
            let mut got = v;
            sort_findings(&mut got);
            // `message` is unique: equal messages mean the very same order, ties included.
            let msgs = |v: &[Finding]| v.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
            assert_eq!(msgs(&got), msgs(&expected), "len {len}");
        }
    }
}
