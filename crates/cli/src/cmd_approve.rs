//! Approval and CI commands: approve, approvals, ci.

use crate::{CliError, Global};

/// Arguments of `shipline approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline approve`.
pub fn approve(_args: ApproveArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline approve"))
}

/// Arguments of `shipline approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline approvals`.
pub fn approvals(_args: ApprovalsArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline approvals"))
}

/// Arguments of `shipline ci`.
#[derive(Debug, clap::Args)]
pub struct CiArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline ci`.
pub fn ci(_args: CiArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline ci"))
}
