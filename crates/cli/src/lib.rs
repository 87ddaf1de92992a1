//! The `shipline` command-line interface.
/// Runs the CLI and returns the process exit code.
pub fn run() -> i32 {
    0
}
