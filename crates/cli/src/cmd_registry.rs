//! Registry commands: push, pull, copy, tags, prune, digest.

use crate::{CliError, Global};

/// Arguments of `shipline push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline push`.
pub fn push(_args: PushArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline push"))
}

/// Arguments of `shipline pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline pull`.
pub fn pull(_args: PullArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline pull"))
}

/// Arguments of `shipline copy`.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline copy`.
pub fn copy(_args: CopyArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline copy"))
}

/// Arguments of `shipline tags`.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline tags`.
pub fn tags(_args: TagsArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline tags"))
}

/// Arguments of `shipline prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline prune`.
pub fn prune(_args: PruneArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline prune"))
}

/// Arguments of `shipline digest`.
#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline digest`.
pub fn digest(_args: DigestArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline digest"))
}
