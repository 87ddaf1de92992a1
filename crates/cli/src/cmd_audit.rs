//! `shipline audit` commands.

use crate::{CliError, Global};

/// Arguments of `shipline audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline audit`.
pub fn run(_args: AuditArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline audit"))
}
