//! Pipeline commands: validate, plan, graph, run, runs.

use crate::{CliError, Global};

/// Arguments of `shipline validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline validate`.
pub fn validate(_args: ValidateArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline validate"))
}

/// Arguments of `shipline plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline plan`.
pub fn plan(_args: PlanArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline plan"))
}

/// Arguments of `shipline graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline graph`.
pub fn graph(_args: GraphArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline graph"))
}

/// Arguments of `shipline run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline run`.
pub fn run(_args: RunArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline run"))
}

/// Arguments of `shipline runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `shipline runs`.
pub fn runs(_args: RunsArgs, _global: &Global) -> anyhow::Result<i32> {
    Err(CliError::not_implemented("shipline runs"))
}
