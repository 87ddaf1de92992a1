//! Deploy commands: deploy, rollback, status, lock.

use crate::{CliError, Global};

/// Arguments of `shipline deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline deploy`.
pub fn deploy(_args: DeployArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline deploy"))
}

/// Arguments of `shipline rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline rollback`.
pub fn rollback(_args: RollbackArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline rollback"))
}

/// Arguments of `shipline status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline status`.
pub fn status(_args: StatusArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline status"))
}

/// Arguments of `shipline lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline lock`.
pub fn lock(_args: LockArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline lock"))
}
