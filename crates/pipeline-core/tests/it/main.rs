//! Integration tests of shipline-core, one binary: the pipeline model (config, plan, graph,
//! executor, store), deploys against the real engine (`deploy`), and approvals, OpenSSH
//! interop and the generated GitHub workflows (`approval`).

mod approval;
mod config;
mod deploy;
mod executor;
mod plan_graph;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
