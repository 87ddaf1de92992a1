//! shipline-scanners: scanner adapters, one finding model, a fail-closed gate and renderers.

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
pub use report::{ScanError, ScanReport, ScannerRun, ScannerState, ScannerStatus};
