//! Integration tests of the `shipline` binary.

mod actions;
mod e2e;
mod env;
mod pipeline;
mod registry_cli;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the shipline binary with `args` in `dir`.
pub fn shipline(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        // the suite may itself run inside GitHub Actions: commands must not publish there
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run shipline")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
