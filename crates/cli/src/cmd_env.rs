//! `shipline env` commands.

use crate::{CliError, Global};

/// Arguments of `shipline env`.
#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline env`.
pub fn run(_args: EnvArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline env"))
}
