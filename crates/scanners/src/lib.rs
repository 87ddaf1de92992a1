//! shipline-scanners: scanner adapters, one finding model, a fail-closed gate and renderers.
//!
//! - [`trivy`], [`semgrep`]: run the tool (through [`process`], the one helper for external
//!   programs) or ingest its JSON report; [`sarif`]: import any SARIF 2.1.0 log, or run any
//!   SARIF-producing tool ([`sarif::run_tool`], e.g. zizmor). Each yields a [`ScannerRun`]:
//!   findings plus a [`ScannerStatus`] (`ok`, `skipped`, `error`). Adapters never fail open:
//!   a missing binary, crash, timeout, empty or invalid output, tool-reported errors or an
//!   unknown schema become status `error`.
//! - [`Finding`]: the one model (stable id, tool, kind, rule, severity, CVSS, CWE, location,
//!   package, references, suppression).
//! - [`policy::Policy`]: the versioned gate policy, TOML or YAML. Format (version 1):
//!
//!   ```toml
//!   version = 1
//!   fixed_only = false                  # unfixed vulnerabilities never fail when true
//!   allow_ignores_without_expiry = false
//!   allow_skip = ["trivy"]              # scanners whose failure is reported as skipped
//!   require = ["trivy", "semgrep"]      # scanners that must be present
//!   [fail_on]                           # critical|high|medium|low|info|unknown|none
//!   vulnerability = "high"
//!   misconfiguration = "high"
//!   secret = "low"
//!   license = "high"
//!   sast = "high"
//!   [[overrides]]                       # by tool, kind and/or path glob; later wins
//!   path = "tests/**"
//!   fail_on = "none"
//!   [[ignores]]                         # rule or id; reason and expiry required
//!   rule = "CVE-2019-14697"
//!   reason = "not reachable"
//!   expires = "2026-12-31"
//!   ```
//!   (full reference: `docs/policy.md`).
//! - [`gate::gate`]: `(report, policy, baseline) -> Verdict` (`pass`/`fail`/`error`, one
//!   [`gate::Decision`] per finding, expired ignores, counts); [`gate::Verdict::exit_code`]
//!   maps to 0/1/3.
//! - [`render`]: pure renderers (table, JSON, markdown under 1 MiB, GitHub annotations,
//!   SARIF 2.1.0) with a deterministic order.
//!
//! ```
//! use shipline_scanners::{gate, policy::Policy, render, trivy, ScanReport};
//!
//! let json = br#"{"SchemaVersion":2,"ArtifactName":"app:1","ArtifactType":"container_image",
//!   "Results":[{"Target":"app:1 (alpine 3.19)","Class":"os-pkgs","Vulnerabilities":[
//!   {"VulnerabilityID":"CVE-2024-1","PkgName":"openssl","InstalledVersion":"3.1",
//!    "FixedVersion":"3.2","Severity":"CRITICAL"}]}]}"#;
//! let mut report = ScanReport::new();
//! report.add(trivy::parse(json, "example")?);
//! report.sort();
//! let verdict = gate::gate(&report, &Policy::default(), None);
//! assert_eq!(verdict.exit_code(), 1);
//! let sarif = render::render_sarif(&report, &verdict);
//! assert!(sarif.contains("\"CVE-2024-1\""));
//! # Ok::<(), shipline_scanners::ScanError>(())
//! ```

#![warn(missing_docs)]

pub mod audit;
pub mod finding;
pub mod gate;
pub mod policy;
pub mod process;
pub mod render;
pub mod report;
pub mod sarif;
pub mod semgrep;
pub mod trivy;

pub use finding::{stable_id, Finding, FindingKind, Location, Package, Severity, Suppression};
pub use gate::{gate, Baseline, Outcome, Verdict};
pub use policy::Policy;
pub use report::{ScanError, ScanReport, ScannerRun, ScannerState, ScannerStatus};
