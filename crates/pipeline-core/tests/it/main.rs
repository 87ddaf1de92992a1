//! Integration tests of shipline-core's pipeline model: config, plan, graph, executor, store.

mod config;
mod executor;
mod plan_graph;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
