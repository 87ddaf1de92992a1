//! Trivy: run `trivy image|fs ... --format json` or ingest its JSON report (SchemaVersion 2).
//!
//! The parser streams: every `Vulnerabilities` entry becomes a [`Finding`] as soon as it is
//! read, so a 100,000-vulnerability report never exists twice in memory. Reports are read a
//! large block at a time and each vulnerability is parsed straight from the block (see
//! `splice`); anything that path does not accept is parsed again by the plain serde_json
//! reader, whose result (or error message) is the answer.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::finding::{stable_id, Finding, FindingKind, Location, Package, Severity, Suppression};
use crate::process::{self, ProcessSpec};
use crate::report::{ScanError, ScannerRun};

mod splice;

/// The Trivy report schema version this adapter understands.
pub const SCHEMA_VERSION: u32 = 2;

/// What Trivy scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrivyTarget {
    /// `trivy image REF` (a reference, or `--input ARCHIVE` when it is a path to a tar).
    Image(String),
    /// `trivy image --input ARCHIVE` (a `docker save` / OCI archive).
    ImageArchive(PathBuf),
    /// `trivy fs PATH`.
    Fs(PathBuf),
}

/// How to run Trivy.
#[derive(Debug, Clone)]
pub struct TrivyOptions {
    /// The executable (default `trivy`, looked up on `PATH`).
    pub binary: PathBuf,
    /// What to scan.
    pub target: TrivyTarget,
    /// Air-gapped mode: no DB, Java DB or version-check downloads, no telemetry.
    pub offline: bool,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// Kills Trivy after this long (also passed as Trivy's own `--timeout`).
    pub timeout: Duration,
    /// `--scanners` (empty: Trivy's default).
    pub scanners: Vec<String>,
    /// Extra arguments, placed before the target.
    pub extra_args: Vec<String>,
    /// Extra environment for the child (e.g. `TRIVY_USERNAME`), on top of PATH/HOME/...
    pub env: Vec<(String, String)>,
    /// Largest report accepted on stdout.
    pub stdout_cap: usize,
}

impl TrivyOptions {
    /// Defaults for scanning `target`: `trivy` on PATH, online, 10 minutes.
    pub fn new(target: TrivyTarget) -> Self {
        TrivyOptions {
            binary: PathBuf::from("trivy"),
            target,
            offline: false,
            cache_dir: None,
            timeout: Duration::from_secs(600),
            scanners: Vec::new(),
            extra_args: Vec::new(),
            env: Vec::new(),
            stdout_cap: process::DEFAULT_STDOUT_CAP,
        }
    }
}

/// The flags an air-gapped runner needs.
pub const OFFLINE_FLAGS: &[&str] = &[
    "--skip-db-update",
    "--skip-java-db-update",
    "--offline-scan",
    "--skip-check-update",
    "--skip-version-check",
    "--disable-telemetry",
];

/// The command line (and environment) for `opts`.
pub fn command(opts: &TrivyOptions) -> ProcessSpec {
    let mut args: Vec<String> = Vec::new();
    let (sub, target): (&str, Option<String>) = match &opts.target {
        TrivyTarget::Image(r) => ("image", Some(r.clone())),
        TrivyTarget::ImageArchive(p) => ("image", {
            args.push("--input".into());
            args.push(p.display().to_string());
            None
        }),
        TrivyTarget::Fs(p) => ("fs", Some(p.display().to_string())),
    };
    let mut all = vec![sub.to_string()];
    all.extend([
        "--format".into(),
        "json".into(),
        "--exit-code".into(),
        "0".into(),
        "--quiet".into(),
        "--timeout".into(),
        format!("{}s", opts.timeout.as_secs().max(1)),
    ]);
    if let Some(dir) = &opts.cache_dir {
        all.push("--cache-dir".into());
        all.push(dir.display().to_string());
    }
    if !opts.scanners.is_empty() {
        all.push("--scanners".into());
        all.push(opts.scanners.join(","));
    }
    if opts.offline {
        all.extend(OFFLINE_FLAGS.iter().map(|s| (*s).to_string()));
    }
    all.extend(opts.extra_args.iter().cloned());
    all.extend(args);
    if let Some(t) = target {
        all.push(t);
    }
    let mut spec = ProcessSpec::new(opts.binary.clone().into_os_string())
        .args(all)
        .timeout(opts.timeout)
        .stdout_cap(opts.stdout_cap);
    if opts.offline {
        spec = spec.env("TRIVY_DISABLE_TELEMETRY", "true");
    }
    for (k, v) in &opts.env {
        spec = spec.env(k, v);
    }
    spec
}

/// Runs Trivy and parses its report. Never returns a pass on failure: every problem
/// (missing binary, crash, timeout, empty or invalid output, `ERROR`/`FATAL` log lines,
/// unknown schema) yields a run with status `error`.
pub fn run(opts: &TrivyOptions) -> ScannerRun {
    let artifact = match &opts.target {
        TrivyTarget::Image(r) => r.clone(),
        TrivyTarget::ImageArchive(p) | TrivyTarget::Fs(p) => p.display().to_string(),
    };
    match run_inner(opts) {
        Ok(run) => run.with_source("run"),
        Err(e) => {
            let mut r = ScannerRun::failed("trivy", &e).with_source("run");
            r.status.message = r
                .status
                .message
                .map(|m| format!("{m} (scanning {artifact})"));
            r
        }
    }
}

/// [`run`] on tokio's blocking pool.
pub async fn run_async(opts: TrivyOptions) -> ScannerRun {
    match tokio::task::spawn_blocking(move || run(&opts)).await {
        Ok(r) => r,
        Err(e) => ScannerRun::failed("trivy", &std::io::Error::other(e.to_string())),
    }
}

fn run_inner(opts: &TrivyOptions) -> Result<ScannerRun, ScanError> {
    let spec = command(opts);
    let out = process::run(&spec)?;
    let stderr = out.stderr_tail(2000);
    if !out.success() {
        return Err(ScanError::Exit {
            tool: "trivy".into(),
            exit: out.exit,
            stderr,
        });
    }
    if out.stdout_truncated {
        return Err(ScanError::OutputTooLarge {
            tool: "trivy".into(),
            cap: opts.stdout_cap,
        });
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(ScanError::EmptyOutput {
            tool: "trivy".into(),
            stderr,
        });
    }
    let errors = log_errors(&out.stderr_lossy());
    if let Some(first) = errors.first() {
        return Err(ScanError::ToolErrors {
            tool: "trivy".into(),
            count: errors.len(),
            first: first.clone(),
        });
    }
    parse(&out.stdout, "stdout")
}

/// Lines of Trivy's stderr log at level `ERROR` or `FATAL` (Trivy can log those and still
/// exit 0).
pub fn log_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            let first = words.next().unwrap_or("");
            let second = words.next().unwrap_or("");
            ["ERROR", "FATAL"].contains(&first) || ["ERROR", "FATAL"].contains(&second)
        })
        .map(|l| l.trim().to_string())
        .collect()
}

/// Reads a Trivy JSON report file, streaming it: memory holds the findings and one block of
/// the file, never the whole file.
pub fn ingest_file(path: &std::path::Path) -> ScannerRun {
    let name = path.display().to_string();
    let fast = std::fs::File::open(path)
        .ok()
        .and_then(|f| splice::parse(f, splice::BLOCK));
    let res = match fast {
        Some(report) => finish(report, &name),
        None => ingest_file_slow(path, &name),
    };
    match res {
        Ok(r) => r.with_source(name),
        Err(e) => ScannerRun::failed("trivy", &e).with_source(name),
    }
}

/// The reference reader (`serde_json::from_reader`): used when the fast path gives up, so it
/// decides every error message.
fn ingest_file_slow(path: &std::path::Path, name: &str) -> Result<ScannerRun, ScanError> {
    let open = || {
        std::fs::File::open(path)
            .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
            .map_err(|source| ScanError::Read {
                path: name.to_string(),
                source,
            })
    };
    open().and_then(|mut r| {
        use std::io::BufRead;
        // Empty or blank file: say so rather than "EOF while parsing".
        loop {
            let buf = r.fill_buf().map_err(|source| ScanError::Read {
                path: name.to_string(),
                source,
            })?;
            if buf.is_empty() {
                return Err(ScanError::EmptyOutput {
                    tool: "trivy".into(),
                    stderr: format!("report file {name} is empty"),
                });
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(_) => break,
                None => {
                    let n = buf.len();
                    r.consume(n);
                }
            }
        }
        match serde_json::from_reader::<_, RawReport>(r) {
            Ok(report) => finish(report, name),
            Err(source) => {
                let schema = open()
                    .ok()
                    .and_then(|r| serde_json::from_reader::<_, SchemaOnly>(r).ok());
                match schema {
                    Some(v) if v.schema_version != Some(SCHEMA_VERSION) => {
                        Err(schema_error(v.schema_version, name))
                    }
                    _ => Err(ScanError::Json {
                        tool: "trivy".into(),
                        source_name: name.to_string(),
                        source,
                    }),
                }
            }
        }
    })
}

/// Parses a Trivy JSON report (SchemaVersion 2) into findings.
///
/// `source_name` names where the bytes came from, for messages.
pub fn parse(bytes: &[u8], source_name: &str) -> Result<ScannerRun, ScanError> {
    if let Some(report) = splice::parse(bytes, splice::BLOCK) {
        return finish(report, source_name);
    }
    let report: RawReport = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(source) => {
            // A different schema may fail to parse: say so rather than "invalid JSON".
            if let Ok(v) = serde_json::from_slice::<SchemaOnly>(bytes) {
                if v.schema_version != Some(SCHEMA_VERSION) {
                    return Err(schema_error(v.schema_version, source_name));
                }
            }
            return Err(ScanError::Json {
                tool: "trivy".into(),
                source_name: source_name.into(),
                source,
            });
        }
    };
    finish(report, source_name)
}

fn finish(report: RawReport, source_name: &str) -> Result<ScannerRun, ScanError> {
    if report.schema_version != Some(SCHEMA_VERSION) {
        return Err(schema_error(report.schema_version, source_name));
    }
    let artifact = report.artifact_name;
    let repo = artifact
        .as_deref()
        .map(|a| artifact_repository(a, report.artifact_type.as_deref()));
    let mut findings = Vec::new();
    for r in report.results.unwrap_or_default() {
        let mut fs = r.findings;
        if findings.is_empty() {
            std::mem::swap(&mut findings, &mut fs);
        } else {
            findings.append(&mut fs);
        }
    }
    let version = report.trivy.and_then(|t| t.version);
    for f in &mut findings {
        f.tool_version.clone_from(&version);
        f.location.artifact.clone_from(&artifact);
        if f.id.is_empty() {
            f.id = identity(f, repo.as_deref().unwrap_or(""));
        }
    }
    Ok(ScannerRun::ok("trivy", version, findings))
}

fn schema_error(found: Option<u32>, source_name: &str) -> ScanError {
    ScanError::UnknownSchema {
        tool: "trivy".into(),
        source_name: source_name.into(),
        found: found.map_or_else(|| "missing".to_string(), |v| v.to_string()),
        expected: SCHEMA_VERSION.to_string(),
    }
}

/// The image repository without tag or digest (`ghcr.io/a/b:1.2@sha256:..` → `ghcr.io/a/b`);
/// other artifacts are returned as they are.
pub fn artifact_repository(artifact: &str, artifact_type: Option<&str>) -> String {
    if artifact_type.is_some_and(|t| t != "container_image") {
        return artifact.to_string();
    }
    let no_digest = artifact.split('@').next().unwrap_or(artifact);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i + 1..].contains('/') => no_digest[..i].to_string(),
        _ => no_digest.to_string(),
    }
}

/// A package URL without its version, qualifiers or subpath.
pub fn purl_without_version(purl: &str) -> &str {
    let end = purl
        .bytes()
        .position(|b| matches!(b, b'@' | b'?' | b'#'))
        .unwrap_or(purl.len());
    &purl[..end]
}

/// Canonical form of a Trivy check id: `DS002`, `DS-0002` and `AVD-DS-0002` → `DS-0002`.
pub fn canonical_check_id(id: &str) -> String {
    let s = id.strip_prefix("AVD-").unwrap_or(id);
    let letters: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let rest = s[letters.len()..].trim_start_matches('-');
    if letters.is_empty() || rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
        return id.to_string();
    }
    let n: u64 = rest.parse().unwrap_or(0);
    format!("{}-{:04}", letters.to_ascii_uppercase(), n)
}

fn identity(f: &Finding, repo: &str) -> String {
    match f.kind {
        FindingKind::Vulnerability | FindingKind::License => {
            let pkg = f.package.as_ref().map_or("", |p| {
                p.purl
                    .as_deref()
                    .map_or(p.name.as_str(), purl_without_version)
            });
            stable_id(&[
                "trivy",
                kind_str(f.kind),
                &f.rule_id,
                pkg,
                f.location.path.as_deref().unwrap_or(""),
                repo,
            ])
        }
        _ => stable_id(&[
            "trivy",
            kind_str(f.kind),
            &canonical_check_id(&f.rule_id),
            f.location.path.as_deref().unwrap_or(""),
            &hex::encode(sha_short(&f.message)),
            repo,
        ]),
    }
}

fn sha_short(s: &str) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(s.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn kind_str(k: FindingKind) -> &'static str {
    match k {
        FindingKind::Vulnerability => "vulnerability",
        FindingKind::Misconfiguration => "misconfiguration",
        FindingKind::Secret => "secret",
        FindingKind::License => "license",
        FindingKind::Sast => "sast",
    }
}

/// Maps a Trivy severity string.
pub fn severity(s: &str) -> Severity {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        "INFO" | "NEGLIGIBLE" => Severity::Info,
        _ => Severity::Unknown,
    }
}

#[derive(Deserialize)]
struct SchemaOnly {
    #[serde(rename = "SchemaVersion")]
    schema_version: Option<u32>,
}

#[derive(Deserialize)]
struct RawReport {
    #[serde(rename = "SchemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "Trivy")]
    trivy: Option<RawTrivy>,
    #[serde(rename = "ArtifactName")]
    artifact_name: Option<String>,
    #[serde(rename = "ArtifactType")]
    artifact_type: Option<String>,
    #[serde(rename = "Results")]
    results: Option<Vec<ParsedResult>>,
}

#[derive(Deserialize)]
struct RawTrivy {
    #[serde(rename = "Version")]
    version: Option<String>,
}

#[derive(Deserialize, Default)]
struct PkgIdentifier {
    #[serde(rename = "PURL")]
    purl: Option<String>,
}

#[derive(Deserialize, Default)]
struct CvssEntry {
    #[serde(rename = "V2Score")]
    v2: Option<f64>,
    #[serde(rename = "V3Score")]
    v3: Option<f64>,
    #[serde(rename = "V40Score")]
    v40: Option<f64>,
}

/// Trivy's `CVSS` object (`{"nvd": {"V3Score": 9.8, ...}, "redhat": {...}}`) reduced to the
/// highest score of any source, each source counting its newest CVSS version. It reads like a
/// map of sources (a later duplicate source replaces the earlier one, sources are folded in
/// key order) without allocating for the usual handful of sources.
#[derive(Default)]
struct Cvss {
    max: Option<f64>,
}

/// Sources kept inline before spilling to the heap.
const CVSS_INLINE: usize = 8;

impl<'de> Deserialize<'de> for Cvss {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CvssVisitor)
    }
}

struct CvssVisitor;

impl<'de> Visitor<'de> for CvssVisitor {
    type Value = Cvss;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cvss, A::Error> {
        type Entry<'a> = (Cow<'a, str>, Option<f64>);
        let mut inline: [Entry<'de>; CVSS_INLINE] = Default::default();
        let mut n = 0;
        let mut spill: Vec<Entry<'de>> = Vec::new();
        while let Some(CowKey(key)) = map.next_key()? {
            let entry: CvssEntry = map.next_value()?;
            let score = entry.v40.or(entry.v3).or(entry.v2);
            if let Some(e) = inline[..n]
                .iter_mut()
                .chain(spill.iter_mut())
                .find(|e| e.0 == key)
            {
                e.1 = score;
            } else if n < CVSS_INLINE {
                inline[n] = (key, score);
                n += 1;
            } else {
                spill.push((key, score));
            }
        }
        let fold = |entries: &mut [Entry<'de>]| {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries
                .iter()
                .filter_map(|e| e.1)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        };
        let max = if spill.is_empty() {
            fold(&mut inline[..n])
        } else {
            let mut all: Vec<Entry<'de>> = inline.into_iter().take(n).collect();
            all.append(&mut spill);
            fold(&mut all)
        };
        Ok(Cvss { max })
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct CowKey<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct RawVuln {
    #[serde(rename = "VulnerabilityID")]
    id: String,
    #[serde(rename = "VendorIDs", default)]
    vendor_ids: Vec<String>,
    #[serde(rename = "PkgName", default)]
    pkg_name: String,
    #[serde(rename = "PkgPath")]
    pkg_path: Option<String>,
    #[serde(rename = "PkgIdentifier", default)]
    pkg_identifier: PkgIdentifier,
    #[serde(rename = "InstalledVersion")]
    installed: Option<String>,
    #[serde(rename = "FixedVersion")]
    fixed: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "Title")]
    title: Option<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: String,
    #[serde(rename = "CweIDs", default)]
    cwe: Vec<String>,
    #[serde(rename = "CVSS", default)]
    cvss: Cvss,
    #[serde(rename = "PrimaryURL")]
    primary_url: Option<String>,
    #[serde(rename = "References", default)]
    references: Vec<String>,
}

#[derive(Deserialize, Default)]
struct CauseMetadata {
    #[serde(rename = "StartLine")]
    start_line: Option<u32>,
    #[serde(rename = "EndLine")]
    end_line: Option<u32>,
}

#[derive(Deserialize)]
struct RawMisconf {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "AVDID")]
    avd_id: Option<String>,
    #[serde(rename = "Title", default)]
    title: String,
    #[serde(rename = "Description", default)]
    description: String,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Resolution")]
    resolution: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: String,
    #[serde(rename = "PrimaryURL")]
    primary_url: Option<String>,
    #[serde(rename = "References", default)]
    references: Vec<String>,
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "CauseMetadata", default)]
    cause: CauseMetadata,
}

#[derive(Deserialize)]
struct RawSecret {
    #[serde(rename = "RuleID", default)]
    rule_id: String,
    #[serde(rename = "Category", default)]
    category: String,
    #[serde(rename = "Severity", default)]
    severity: String,
    #[serde(rename = "Title", default)]
    title: String,
    #[serde(rename = "StartLine")]
    start_line: Option<u32>,
    #[serde(rename = "EndLine")]
    end_line: Option<u32>,
    #[serde(rename = "Match", default)]
    matched: String,
}

#[derive(Deserialize)]
struct RawLicense {
    #[serde(rename = "Severity", default)]
    severity: String,
    #[serde(rename = "Category", default)]
    category: String,
    #[serde(rename = "PkgName", default)]
    pkg_name: String,
    #[serde(rename = "FilePath")]
    file_path: Option<String>,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Link")]
    link: Option<String>,
}

#[derive(Deserialize)]
struct RawModified {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "Statement")]
    statement: Option<String>,
    #[serde(rename = "Source")]
    source: Option<String>,
    #[serde(rename = "Finding")]
    finding: serde_json::Value,
}

fn opt_nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn vuln_finding(v: RawVuln) -> Finding {
    let cvss = v.cvss.max;
    // The primary URL first, then the references; first occurrences only.
    let mut references = v.references;
    if let Some(u) = opt_nonempty(v.primary_url) {
        references.reserve_exact(1);
        references.insert(0, u);
    }
    let mut i = 1;
    while i < references.len() {
        if references[..i].contains(&references[i]) {
            references.remove(i);
        } else {
            i += 1;
        }
    }
    let fixed = opt_nonempty(v.fixed);
    let fix = fixed
        .as_ref()
        .map(|f| format!("upgrade {} to {}", v.pkg_name, f));
    let title = opt_nonempty(v.title).unwrap_or_else(|| v.id.clone());
    let message = opt_nonempty(v.description).unwrap_or_else(|| title.clone());
    Finding {
        id: String::new(),
        tool: "trivy".into(),
        tool_version: None,
        kind: FindingKind::Vulnerability,
        severity: severity(&v.severity),
        tool_severity: Some(v.severity),
        rule_id: v.id,
        aliases: v.vendor_ids,
        title,
        message,
        cvss,
        cwe: v.cwe,
        owasp: Vec::new(),
        location: Location {
            path: opt_nonempty(v.pkg_path),
            ..Location::default()
        },
        package: Some(Package {
            name: v.pkg_name,
            purl: v.pkg_identifier.purl,
            installed: v.installed,
            fixed,
            status: v.status,
        }),
        references,
        fix,
        suppression: None,
    }
}

fn misconf_finding(m: RawMisconf, target: &str) -> Option<Finding> {
    let suppression = match m.status.as_str() {
        "FAIL" | "" => None,
        "EXCEPTION" => Some(Suppression {
            by: "trivy-exception".into(),
            reason: Some("exception in Trivy configuration".into()),
            expires: None,
        }),
        _ => return None, // PASS and anything else is not a finding
    };
    let canonical = canonical_check_id(&m.id);
    let mut aliases = Vec::new();
    if canonical != m.id {
        aliases.push(canonical);
    }
    if let Some(a) = m.avd_id.filter(|a| !a.is_empty() && *a != m.id) {
        aliases.push(a);
    }
    let mut references = Vec::new();
    if let Some(u) = opt_nonempty(m.primary_url) {
        references.push(u);
    }
    for r in m.references {
        if !references.contains(&r) {
            references.push(r);
        }
    }
    let message = if m.message.is_empty() {
        m.description.clone()
    } else {
        m.message
    };
    Some(Finding {
        id: String::new(),
        tool: "trivy".into(),
        tool_version: None,
        kind: FindingKind::Misconfiguration,
        rule_id: m.id,
        aliases,
        title: m.title,
        message,
        severity: severity(&m.severity),
        tool_severity: Some(m.severity),
        cvss: None,
        cwe: Vec::new(),
        owasp: Vec::new(),
        location: Location {
            path: Some(target.to_string()),
            start_line: m.cause.start_line.filter(|l| *l > 0),
            end_line: m.cause.end_line.filter(|l| *l > 0),
            ..Location::default()
        },
        package: None,
        references,
        fix: m.resolution,
        suppression,
    })
}

fn secret_finding(s: RawSecret, target: &str) -> Finding {
    let id = stable_id(&[
        "trivy",
        "secret",
        &s.rule_id,
        target,
        &hex::encode(sha_short(s.matched.trim())),
    ]);
    let title = if s.title.is_empty() {
        s.rule_id.clone()
    } else {
        s.title
    };
    let message = format!(
        "{} ({}) found in {}{}",
        title,
        if s.category.is_empty() {
            "secret"
        } else {
            &s.category
        },
        target,
        s.start_line.map(|l| format!(":{l}")).unwrap_or_default()
    );
    Finding {
        id,
        tool: "trivy".into(),
        tool_version: None,
        kind: FindingKind::Secret,
        rule_id: s.rule_id,
        aliases: Vec::new(),
        title,
        message,
        severity: severity(&s.severity),
        tool_severity: Some(s.severity),
        cvss: None,
        cwe: vec!["CWE-798".into()],
        owasp: Vec::new(),
        location: Location {
            path: Some(target.to_string()),
            start_line: s.start_line,
            end_line: s.end_line,
            ..Location::default()
        },
        package: None,
        references: Vec::new(),
        fix: Some("remove the secret from the artifact and rotate it".into()),
        suppression: None,
    }
}

fn license_finding(l: RawLicense, target: &str) -> Finding {
    let title = format!("license {} ({})", l.name, l.category);
    let message = if l.pkg_name.is_empty() {
        format!(
            "{} is licensed {} (category {})",
            target, l.name, l.category
        )
    } else {
        format!(
            "package {} is licensed {} (category {})",
            l.pkg_name, l.name, l.category
        )
    };
    Finding {
        id: String::new(),
        tool: "trivy".into(),
        tool_version: None,
        kind: FindingKind::License,
        rule_id: l.name,
        aliases: Vec::new(),
        title,
        message,
        severity: severity(&l.severity),
        tool_severity: Some(l.severity),
        cvss: None,
        cwe: Vec::new(),
        owasp: Vec::new(),
        location: Location {
            path: Some(opt_nonempty(l.file_path).unwrap_or_else(|| target.to_string())),
            ..Location::default()
        },
        package: (!l.pkg_name.is_empty()).then(|| Package {
            name: l.pkg_name,
            ..Package::default()
        }),
        references: l.link.into_iter().filter(|s| !s.is_empty()).collect(),
        fix: None,
        suppression: None,
    }
}

fn modified_finding(m: RawModified, target: &str) -> Option<Finding> {
    let mut f = match m.kind.as_str() {
        "vulnerability" => vuln_finding(serde_json::from_value(m.finding).ok()?),
        "misconfiguration" => {
            let mut raw: RawMisconf = serde_json::from_value(m.finding).ok()?;
            raw.status = "FAIL".into();
            misconf_finding(raw, target)?
        }
        "secret" => secret_finding(serde_json::from_value(m.finding).ok()?, target),
        "license" => license_finding(serde_json::from_value(m.finding).ok()?, target),
        _ => return None,
    };
    let mut reason = m.status.clone();
    if let Some(s) = m.statement.filter(|s| !s.is_empty()) {
        reason = format!("{reason}: {s}");
    }
    f.suppression = Some(Suppression {
        by: match m.source.filter(|s| !s.is_empty()) {
            Some(s) => format!("trivy ({s})"),
            None => "trivy".into(),
        },
        reason: Some(reason),
        expires: None,
    });
    Some(f)
}

/// One `Results[]` entry, already converted to findings while it was read.
struct ParsedResult {
    findings: Vec<Finding>,
}

impl<'de> Deserialize<'de> for ParsedResult {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ResultVisitor)
    }
}

struct ResultVisitor;

#[derive(Deserialize)]
#[serde(field_identifier)]
enum ResultKey {
    Target,
    Class,
    Vulnerabilities,
    Misconfigurations,
    Secrets,
    Licenses,
    ExperimentalModifiedFindings,
    #[serde(other)]
    Other,
}

/// Converts a sequence of `T` into findings as it is read.
struct SeqSeed<'a, T, F, R> {
    out: &'a mut Vec<T>,
    convert: F,
    raw: std::marker::PhantomData<R>,
}

impl<'de, T, R, F> DeserializeSeed<'de> for SeqSeed<'_, T, F, R>
where
    R: Deserialize<'de>,
    F: FnMut(R) -> Option<T>,
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        struct V<'a, T, F, R>(&'a mut Vec<T>, F, std::marker::PhantomData<R>);
        impl<'de, T, R, F> Visitor<'de> for V<'_, T, F, R>
        where
            R: Deserialize<'de>,
            F: FnMut(R) -> Option<T>,
        {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_none<E: de::Error>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
                if let Some(n) = seq.size_hint() {
                    self.0.reserve(n);
                }
                while let Some(item) = seq.next_element::<R>()? {
                    if let Some(t) = (self.1)(item) {
                        self.0.push(t);
                    }
                }
                Ok(())
            }
        }
        d.deserialize_any(V(self.out, self.convert, std::marker::PhantomData))
    }
}

/// Converts a `Vulnerabilities` array into findings as it is read. In a skeleton parsed by the
/// fast path (see `splice`) the array is an integer: the index of the findings already read.
struct VulnSeed<'a>(&'a mut Vec<Finding>);

impl<'de> DeserializeSeed<'de> for VulnSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VulnSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        match splice::Spliced::take(n) {
            Ok(mut found) => {
                if self.0.is_empty() {
                    *self.0 = found;
                } else {
                    self.0.append(&mut found);
                }
                Ok(())
            }
            Err(()) => Err(E::invalid_type(de::Unexpected::Unsigned(n), &self)),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.0.reserve(n);
        }
        while let Some(v) = seq.next_element::<RawVuln>()? {
            self.0.push(vuln_finding(v));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ResultVisitor {
    type Value = ParsedResult;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Trivy result object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedResult, A::Error> {
        let mut findings: Vec<Finding> = Vec::new();
        let mut target: Option<String> = None;
        let mut class: Option<String> = None;
        // Misconfigurations/secrets/licenses/modified need the target: keep them raw until
        // the end of the object (they are few); vulnerabilities stream.
        let mut misconfs: Vec<RawMisconf> = Vec::new();
        let mut secrets: Vec<RawSecret> = Vec::new();
        let mut licenses: Vec<RawLicense> = Vec::new();
        let mut modified: Vec<RawModified> = Vec::new();
        while let Some(key) = map.next_key::<ResultKey>()? {
            match key {
                ResultKey::Target => target = map.next_value()?,
                ResultKey::Class => class = map.next_value()?,
                ResultKey::Vulnerabilities => map.next_value_seed(VulnSeed(&mut findings))?,
                ResultKey::Misconfigurations => map.next_value_seed(SeqSeed {
                    out: &mut misconfs,
                    convert: Some,
                    raw: std::marker::PhantomData,
                })?,
                ResultKey::Secrets => map.next_value_seed(SeqSeed {
                    out: &mut secrets,
                    convert: Some,
                    raw: std::marker::PhantomData,
                })?,
                ResultKey::Licenses => map.next_value_seed(SeqSeed {
                    out: &mut licenses,
                    convert: Some,
                    raw: std::marker::PhantomData,
                })?,
                ResultKey::ExperimentalModifiedFindings => map.next_value_seed(SeqSeed {
                    out: &mut modified,
                    convert: Some,
                    raw: std::marker::PhantomData,
                })?,
                ResultKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let target = target.unwrap_or_default();
        let lang = class.as_deref() == Some("lang-pkgs");
        let n_vulns = findings.len();
        findings.extend(
            misconfs
                .into_iter()
                .filter_map(|m| misconf_finding(m, &target)),
        );
        findings.extend(secrets.into_iter().map(|s| secret_finding(s, &target)));
        findings.extend(licenses.into_iter().map(|l| license_finding(l, &target)));
        let first_modified = findings.len();
        findings.extend(
            modified
                .into_iter()
                .filter_map(|m| modified_finding(m, &target)),
        );
        let fill = |f: &mut Finding| {
            if !target.is_empty() {
                f.location.target = Some(target.clone());
            }
            if lang && f.location.path.is_none() && !target.is_empty() {
                f.location.path = Some(target.clone());
            }
        };
        findings[..n_vulns].iter_mut().for_each(fill);
        findings[first_modified..]
            .iter_mut()
            .filter(|f| f.kind == FindingKind::Vulnerability)
            .for_each(fill);
        for f in &mut findings[n_vulns..] {
            if f.location.target.is_none() && !target.is_empty() {
                f.location.target = Some(target.clone());
            }
        }
        Ok(ParsedResult { findings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids() {
        assert_eq!(canonical_check_id("DS002"), "DS-0002");
        assert_eq!(canonical_check_id("DS-0002"), "DS-0002");
        assert_eq!(canonical_check_id("AVD-DS-0002"), "DS-0002");
        assert_eq!(canonical_check_id("KSV-0001"), "KSV-0001");
        assert_eq!(canonical_check_id("weird_id"), "weird_id");
    }

    #[test]
    fn repositories_and_purls() {
        assert_eq!(
            artifact_repository("ghcr.io/a/b:1.2", Some("container_image")),
            "ghcr.io/a/b"
        );
        assert_eq!(
            artifact_repository("localhost:5000/a@sha256:abc", None),
            "localhost:5000/a"
        );
        assert_eq!(
            artifact_repository("localhost:5000/a", None),
            "localhost:5000/a"
        );
        assert_eq!(artifact_repository("dir:x", Some("filesystem")), "dir:x");
        assert_eq!(
            purl_without_version("pkg:apk/alpine/musl@1.1.20-r4?arch=x86_64"),
            "pkg:apk/alpine/musl"
        );
    }

    #[test]
    fn stderr_error_lines() {
        let log = "2024-01-01T00:00:00Z\tINFO\tok\n2024-01-01T00:00:00Z\tERROR\tboom\nFATAL bad\n";
        assert_eq!(log_errors(log).len(), 2);
    }

    #[test]
    fn cvss_is_the_max_over_a_map_of_sources() {
        let docs = [
            r#"{}"#,
            r#"{"nvd":{"V3Score":9.8,"V2Score":10},"redhat":{"V3Score":5.9}}"#,
            r#"{"nvd":{"V2Score":7.5},"ghsa":{"V40Score":6.1,"V3Score":9}}"#,
            r#"{"nvd":{"V3Score":9.8},"redhat":{"V3Score":5.9},"nvd":{"V3Score":1.0}}"#,
            r#"{"a":{},"b":{"V3Vector":"x"}}"#,
            r#"{"a":{"V3Score":0.0},"b":{"V3Score":-0.0},"c":{}}"#,
            r#"{"b":{"V3Score":-0.0},"a":{"V3Score":0.0}}"#,
            r#"{"s1":{"V3Score":1},"s2":{"V3Score":2},"s3":{"V3Score":3},"s4":{"V3Score":4},
                "s5":{"V3Score":5},"s6":{"V3Score":6},"s7":{"V3Score":7},"s8":{"V3Score":8},
                "s9":{"V3Score":9},"s10":{"V3Score":10},"s1":{"V3Score":0.5},"s\u0039":{"V3Score":1}}"#,
        ];
        for d in docs {
            let old: std::collections::BTreeMap<String, CvssEntry> =
                serde_json::from_str(d).expect("map");
            let expected = old
                .values()
                .filter_map(|c| c.v40.or(c.v3).or(c.v2))
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            let got: Cvss = serde_json::from_str(d).expect("cvss");
            let from_reader: Cvss = serde_json::from_reader(d.as_bytes()).expect("cvss");
            let bits = |x: Option<f64>| x.map(f64::to_bits);
            assert_eq!(bits(got.max), bits(expected), "{d}");
            assert_eq!(bits(from_reader.max), bits(expected), "{d}");
        }
        for bad in [
            r#"null"#,
            r#"[]"#,
            r#"{"nvd":1}"#,
            r#"{"nvd":{"V3Score":"x"}}"#,
        ] {
            let old = serde_json::from_str::<std::collections::BTreeMap<String, CvssEntry>>(bad)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let new = serde_json::from_str::<Cvss>(bad)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(new, old, "{bad}");
        }
    }

    #[test]
    fn id_survives_tag_change() {
        let doc = |tag: &str, ver: &str| {
            format!(
                r#"{{"SchemaVersion":2,"ArtifactName":"repo/app:{tag}","ArtifactType":"container_image",
                "Results":[{{"Target":"repo/app:{tag} (alpine 3.{ver})","Class":"os-pkgs","Vulnerabilities":[
                {{"VulnerabilityID":"CVE-1","PkgName":"musl","PkgIdentifier":{{"PURL":"pkg:apk/alpine/musl@1.{ver}"}},
                "InstalledVersion":"1.{ver}","Severity":"HIGH"}}]}}]}}"#
            )
        };
        let a = parse(doc("1.0", "1").as_bytes(), "a").expect("parses");
        let b = parse(doc("2.0", "2").as_bytes(), "b").expect("parses");
        assert_eq!(a.findings[0].id, b.findings[0].id);
    }
}
