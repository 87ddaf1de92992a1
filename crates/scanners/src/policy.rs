//! The gate policy: a versioned TOML or YAML file (format in `docs/policy.md` and the crate
//! docs).

use std::path::Path;

use chrono::NaiveDate;
use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::finding::{Finding, FindingKind, Severity};

/// The policy format version this crate reads.
pub const POLICY_VERSION: u32 = 1;

/// A minimum failing severity, or `none` (never fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Findings at or above this severity fail the gate.
    AtLeast(Severity),
    /// Nothing of this kind fails the gate.
    Never,
}

impl Threshold {
    /// Parses `critical|high|medium|low|info|unknown|none`.
    pub fn parse(s: &str) -> Option<Threshold> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Threshold::AtLeast(Severity::Critical),
            "high" => Threshold::AtLeast(Severity::High),
            "medium" => Threshold::AtLeast(Severity::Medium),
            "low" => Threshold::AtLeast(Severity::Low),
            "info" => Threshold::AtLeast(Severity::Info),
            "unknown" | "any" => Threshold::AtLeast(Severity::Unknown),
            "none" | "never" => Threshold::Never,
            _ => return None,
        })
    }

    /// Whether a finding of `sev` fails.
    pub fn fails(self, sev: Severity) -> bool {
        match self {
            Threshold::AtLeast(min) => sev >= min,
            Threshold::Never => false,
        }
    }

    /// Name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Threshold::AtLeast(s) => s.as_str(),
            Threshold::Never => "none",
        }
    }
}

/// Minimum failing severity per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailOn {
    /// Vulnerabilities (default `high`).
    pub vulnerability: Threshold,
    /// Misconfigurations (default `high`).
    pub misconfiguration: Threshold,
    /// Secrets (default `low`: any real secret fails).
    pub secret: Threshold,
    /// Licenses (default `high`).
    pub license: Threshold,
    /// Static analysis (default `high`).
    pub sast: Threshold,
}

impl Default for FailOn {
    fn default() -> Self {
        FailOn {
            vulnerability: Threshold::AtLeast(Severity::High),
            misconfiguration: Threshold::AtLeast(Severity::High),
            secret: Threshold::AtLeast(Severity::Low),
            license: Threshold::AtLeast(Severity::High),
            sast: Threshold::AtLeast(Severity::High),
        }
    }
}

impl FailOn {
    /// The threshold for `kind`.
    pub fn get(&self, kind: FindingKind) -> Threshold {
        match kind {
            FindingKind::Vulnerability => self.vulnerability,
            FindingKind::Misconfiguration => self.misconfiguration,
            FindingKind::Secret => self.secret,
            FindingKind::License => self.license,
            FindingKind::Sast => self.sast,
        }
    }
}

/// A rule that changes thresholds for findings of a tool, kind and/or path glob.
#[derive(Debug, Clone)]
pub struct Override {
    /// Only findings of this tool.
    pub tool: Option<String>,
    /// Only findings of this kind.
    pub kind: Option<FindingKind>,
    /// Only findings whose path matches this glob.
    pub path: Option<String>,
    matcher: Option<GlobMatcher>,
    /// Threshold for matching findings.
    pub fail_on: Option<Threshold>,
    /// `fixed_only` for matching findings.
    pub fixed_only: Option<bool>,
}

impl Override {
    /// Whether this override applies to `f`.
    pub fn matches(&self, f: &Finding) -> bool {
        self.tool.as_ref().is_none_or(|t| *t == f.tool)
            && self.kind.is_none_or(|k| k == f.kind)
            && self
                .matcher
                .as_ref()
                .is_none_or(|m| finding_paths(f).any(|p| m.is_match(p)))
    }
}

fn finding_paths(f: &Finding) -> impl Iterator<Item = &str> {
    [f.location.path.as_deref(), f.location.target.as_deref()]
        .into_iter()
        .flatten()
}

/// An accepted risk: findings it matches do not count, until it expires.
#[derive(Debug, Clone)]
pub struct Ignore {
    /// Rule id or alias (`CVE-2019-14697`, `DS002`).
    pub rule: Option<String>,
    /// Stable finding id.
    pub id: Option<String>,
    /// Only findings of this tool.
    pub tool: Option<String>,
    /// Only findings whose path matches this glob.
    pub path: Option<String>,
    matcher: Option<GlobMatcher>,
    /// Only findings about this package name.
    pub package: Option<String>,
    /// Why (required).
    pub reason: String,
    /// Last day it applies (`YYYY-MM-DD`).
    pub expires: Option<NaiveDate>,
}

impl Ignore {
    /// Whether this ignore names `f` (regardless of expiry).
    pub fn matches(&self, f: &Finding) -> bool {
        let rule_ok = self.rule.as_ref().is_none_or(|r| {
            f.rule_id.eq_ignore_ascii_case(r)
                || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(r))
                || (f.tool == "trivy"
                    && crate::trivy::canonical_check_id(r)
                        == crate::trivy::canonical_check_id(&f.rule_id))
        });
        rule_ok
            && self.id.as_ref().is_none_or(|i| *i == f.id)
            && self.tool.as_ref().is_none_or(|t| *t == f.tool)
            && self
                .package
                .as_ref()
                .is_none_or(|p| f.package.as_ref().is_some_and(|fp| fp.name == *p))
            && self
                .matcher
                .as_ref()
                .is_none_or(|m| finding_paths(f).any(|p| m.is_match(p)))
    }

    /// Whether it has expired on `today` (the expiry day itself still applies).
    pub fn expired(&self, today: NaiveDate) -> bool {
        self.expires.is_some_and(|e| today > e)
    }

    /// A short label (`CVE-2019-14697`, `id 1a2b...`).
    pub fn label(&self) -> String {
        match (&self.rule, &self.id) {
            (Some(r), _) => r.clone(),
            (None, Some(i)) => format!("id {i}"),
            (None, None) => "ignore".into(),
        }
    }
}

/// The gate policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Minimum failing severity per kind.
    pub fail_on: FailOn,
    /// Vulnerabilities without a fixed version never fail.
    pub fixed_only: bool,
    /// Accept ignores without `expires`.
    pub allow_ignores_without_expiry: bool,
    /// Scanners whose absence or failure is accepted (reported as skipped).
    pub allow_skip: Vec<String>,
    /// Scanners that must appear in every report.
    pub require: Vec<String>,
    /// Threshold overrides, applied in order (later wins).
    pub overrides: Vec<Override>,
    /// Accepted risks.
    pub ignores: Vec<Ignore>,
}

/// Why a policy file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("failed to read policy {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML/YAML or has unknown keys.
    #[error("failed to parse policy {path}: {message}")]
    Syntax {
        /// The path.
        path: String,
        /// What is wrong, with the location when the parser gives one.
        message: String,
    },
    /// The file parses but breaks a rule (version, missing reason or expiry, bad glob, ...).
    #[error("failed to load policy {path}: {key}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// The key (`ignores[2].expires`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Option<u32>,
    #[serde(default)]
    fail_on: RawFailOn,
    #[serde(default)]
    fixed_only: bool,
    #[serde(default)]
    allow_ignores_without_expiry: bool,
    #[serde(default)]
    allow_skip: Vec<String>,
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
    #[serde(default)]
    ignores: Vec<RawIgnore>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFailOn {
    vulnerability: Option<String>,
    misconfiguration: Option<String>,
    secret: Option<String>,
    license: Option<String>,
    sast: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    tool: Option<String>,
    kind: Option<FindingKind>,
    path: Option<String>,
    fail_on: Option<String>,
    fixed_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIgnore {
    rule: Option<String>,
    id: Option<String>,
    tool: Option<String>,
    path: Option<String>,
    package: Option<String>,
    reason: Option<String>,
    expires: Option<String>,
}

/// Policy file syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFormat {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
}

impl Policy {
    /// Reads a policy file; `.yml`/`.yaml` are YAML, everything else TOML.
    pub fn from_path(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: name.clone(),
            source,
        })?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("yml") | Some("yaml") => PolicyFormat::Yaml,
            _ => PolicyFormat::Toml,
        };
        Policy::parse(&text, format, &name)
    }

    /// Parses policy text; `name` is used in messages.
    pub fn parse(text: &str, format: PolicyFormat, name: &str) -> Result<Policy, PolicyError> {
        let syntax = |message: String| PolicyError::Syntax {
            path: name.to_string(),
            message,
        };
        let raw: RawPolicy = match format {
            PolicyFormat::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
            PolicyFormat::Yaml => {
                let value = yaml_to_json(text).map_err(syntax)?;
                serde_json::from_value(value).map_err(|e| syntax(e.to_string()))?
            }
        };
        Policy::from_raw(raw, name)
    }

    fn from_raw(raw: RawPolicy, name: &str) -> Result<Policy, PolicyError> {
        let invalid = |key: String, message: String| PolicyError::Invalid {
            path: name.to_string(),
            key,
            message,
        };
        match raw.version {
            Some(POLICY_VERSION) => {}
            Some(v) => {
                return Err(invalid(
                    "version".into(),
                    format!(
                        "unsupported version {v} (this shipline reads version {POLICY_VERSION})"
                    ),
                ))
            }
            None => {
                return Err(invalid(
                    "version".into(),
                    format!("missing; add `version = {POLICY_VERSION}`"),
                ))
            }
        }
        let threshold = |key: &str,
                         v: &Option<String>,
                         d: Threshold|
         -> Result<Threshold, PolicyError> {
            match v {
                None => Ok(d),
                Some(s) => Threshold::parse(s).ok_or_else(|| {
                    invalid(
                        key.to_string(),
                        format!("unknown severity {s:?} (expected critical, high, medium, low, info, unknown or none)"),
                    )
                }),
            }
        };
        let d = FailOn::default();
        let fail_on = FailOn {
            vulnerability: threshold(
                "fail_on.vulnerability",
                &raw.fail_on.vulnerability,
                d.vulnerability,
            )?,
            misconfiguration: threshold(
                "fail_on.misconfiguration",
                &raw.fail_on.misconfiguration,
                d.misconfiguration,
            )?,
            secret: threshold("fail_on.secret", &raw.fail_on.secret, d.secret)?,
            license: threshold("fail_on.license", &raw.fail_on.license, d.license)?,
            sast: threshold("fail_on.sast", &raw.fail_on.sast, d.sast)?,
        };
        let glob = |key: String, g: &Option<String>| -> Result<Option<GlobMatcher>, PolicyError> {
            match g {
                None => Ok(None),
                Some(g) => Glob::new(g)
                    .map(|g| Some(g.compile_matcher()))
                    .map_err(|e| invalid(key, format!("invalid glob: {e}"))),
            }
        };
        let mut overrides = Vec::new();
        for (i, o) in raw.overrides.into_iter().enumerate() {
            let fail_on = match &o.fail_on {
                None => None,
                Some(_) => Some(threshold(
                    &format!("overrides[{i}].fail_on"),
                    &o.fail_on,
                    Threshold::Never,
                )?),
            };
            if o.tool.is_none() && o.kind.is_none() && o.path.is_none() {
                return Err(invalid(
                    format!("overrides[{i}]"),
                    "needs at least one of tool, kind, path".into(),
                ));
            }
            overrides.push(Override {
                matcher: glob(format!("overrides[{i}].path"), &o.path)?,
                tool: o.tool,
                kind: o.kind,
                path: o.path,
                fail_on,
                fixed_only: o.fixed_only,
            });
        }
        let mut ignores = Vec::new();
        for (i, ig) in raw.ignores.into_iter().enumerate() {
            let key = |k: &str| format!("ignores[{i}].{k}");
            if ig.rule.is_none() && ig.id.is_none() {
                return Err(invalid(
                    format!("ignores[{i}]"),
                    "needs a rule or an id".into(),
                ));
            }
            let reason = ig.reason.clone().unwrap_or_default();
            if reason.trim().is_empty() {
                return Err(invalid(
                    key("reason"),
                    "an ignore must say why (reason = \"...\")".into(),
                ));
            }
            let expires = match &ig.expires {
                Some(s) => Some(NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                    invalid(key("expires"), format!("{s:?} is not a date (YYYY-MM-DD)"))
                })?),
                None if raw.allow_ignores_without_expiry => None,
                None => {
                    return Err(invalid(
                        key("expires"),
                        "an ignore must expire (expires = \"YYYY-MM-DD\"), or set allow_ignores_without_expiry = true".into(),
                    ))
                }
            };
            ignores.push(Ignore {
                matcher: glob(key("path"), &ig.path)?,
                rule: ig.rule,
                id: ig.id,
                tool: ig.tool,
                path: ig.path,
                package: ig.package,
                reason,
                expires,
            });
        }
        Ok(Policy {
            fail_on,
            fixed_only: raw.fixed_only,
            allow_ignores_without_expiry: raw.allow_ignores_without_expiry,
            allow_skip: raw.allow_skip,
            require: raw.require,
            overrides,
            ignores,
        })
    }

    /// Threshold and fixed-only flag that apply to `f` after overrides.
    pub fn rules_for(&self, f: &Finding) -> (Threshold, bool) {
        let mut t = self.fail_on.get(f.kind);
        let mut fixed_only = self.fixed_only;
        for o in self.overrides.iter().filter(|o| o.matches(f)) {
            if let Some(x) = o.fail_on {
                t = x;
            }
            if let Some(x) = o.fixed_only {
                fixed_only = x;
            }
        }
        (t, fixed_only)
    }

    /// Whether `scanner` may be skipped.
    pub fn may_skip(&self, scanner: &str) -> bool {
        self.allow_skip.iter().any(|s| s == scanner || s == "*")
    }
}

/// Converts YAML text (one document) to a JSON value, for serde.
fn yaml_to_json(text: &str) -> Result<serde_json::Value, String> {
    use saphyr::{LoadableYamlNode, Scalar, Yaml};
    fn conv(y: &Yaml<'_>) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match y {
            Yaml::Value(s) => match s {
                Scalar::Null => J::Null,
                Scalar::Boolean(b) => J::Bool(*b),
                Scalar::Integer(i) => J::from(*i),
                Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.into_inner())
                    .map(J::Number)
                    .unwrap_or(J::Null),
                Scalar::String(s) => J::String(s.to_string()),
            },
            Yaml::Representation(s, _, _) => J::String(s.to_string()),
            Yaml::Sequence(seq) => J::Array(seq.iter().map(conv).collect::<Result<_, _>>()?),
            Yaml::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let key = match conv(k)? {
                        J::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, conv(v)?);
                }
                J::Object(out)
            }
            Yaml::Tagged(_, inner) => conv(inner)?,
            Yaml::Alias(_) => return Err("YAML aliases are not supported in a policy".into()),
            Yaml::BadValue => return Err("invalid YAML value".into()),
        })
    }
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.first() {
        Some(d) => conv(d),
        None => Ok(serde_json::Value::Object(serde_json::Map::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_yaml_agree() {
        let t = Policy::parse(
            "version = 1\nfixed_only = true\n[fail_on]\nsast = \"medium\"\n[[ignores]]\nrule = \"CVE-1\"\nreason = \"r\"\nexpires = \"2030-01-01\"\n",
            PolicyFormat::Toml,
            "p.toml",
        )
        .expect("toml");
        let y = Policy::parse(
            "version: 1\nfixed_only: true\nfail_on:\n  sast: medium\nignores:\n  - rule: CVE-1\n    reason: r\n    expires: 2030-01-01\n",
            PolicyFormat::Yaml,
            "p.yaml",
        )
        .expect("yaml");
        assert_eq!(t.fail_on, y.fail_on);
        assert_eq!(t.fixed_only, y.fixed_only);
        assert_eq!(t.ignores[0].expires, y.ignores[0].expires);
    }

    #[test]
    fn rejects_ignore_without_expiry_or_reason() {
        let e = Policy::parse(
            "version = 1\n[[ignores]]\nrule = \"CVE-1\"\nreason = \"r\"\n",
            PolicyFormat::Toml,
            "p.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ignores[0].expires"), "{e}");
        let e = Policy::parse(
            "version = 1\n[[ignores]]\nrule = \"CVE-1\"\nexpires = \"2030-01-01\"\n",
            PolicyFormat::Toml,
            "p.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ignores[0].reason"), "{e}");
        let ok = Policy::parse(
            "version = 1\nallow_ignores_without_expiry = true\n[[ignores]]\nrule = \"CVE-1\"\nreason = \"r\"\n",
            PolicyFormat::Toml,
            "p.toml",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn rejects_unknown_keys_and_versions() {
        let e =
            Policy::parse("version = 1\nfail_onn = 3\n", PolicyFormat::Toml, "p.toml").unwrap_err();
        assert!(e.to_string().contains("fail_onn"), "{e}");
        let e = Policy::parse("version = 2\n", PolicyFormat::Toml, "p.toml").unwrap_err();
        assert!(e.to_string().contains("unsupported version 2"), "{e}");
        let e = Policy::parse("fixed_only = true\n", PolicyFormat::Toml, "p.toml").unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
    }
}
