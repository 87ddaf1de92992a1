//! Integration tests of shipline-envfile.

mod conformance;
mod edit;
mod files;
mod fixtures;
mod kill;
mod props;

use std::path::PathBuf;

/// `<workspace>/fixtures/envfile`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/envfile")
}

/// All of our own fixtures, sorted.
pub fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/envfile exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "env"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected the envfile fixtures");
    files
}
