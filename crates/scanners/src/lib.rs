//! shipline-scanners: scanner adapters, one finding model, a fail-closed gate and renderers.
//!
//! Work in progress: the model lives in [`finding`].

pub mod audit;
pub mod finding;

pub use finding::{stable_id, Finding, FindingKind, Location, Package, Severity, Suppression};
