//! `shipline scan` commands.

use crate::{CliError, Global};

/// Arguments of `shipline scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline scan`.
pub fn run(_args: ScanArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline scan"))
}
