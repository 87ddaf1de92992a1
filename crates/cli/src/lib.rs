//! The `shipline` command-line interface: parses arguments, calls the libraries, renders.
//!
//! Only this crate prints. Each area of commands lives in its own module; [`run`] maps every
//! outcome to one of the exit codes in [`shipline_core::exit`].

use clap::{Parser, Subcommand, ValueEnum};

mod cmd_approve;
mod cmd_audit;
mod cmd_deploy;
mod cmd_env;
mod cmd_pipeline;
mod cmd_registry;
mod cmd_scan;
mod gha;
mod output;
mod progress;
mod regopts;
mod render;

pub use output::{CliError, Global};

/// shipline: from a commit to a verified deployment.
///
/// Build and test an image, scan it behind a fail-closed gate, push it by digest, hold
/// production behind a signed approval, and roll it out with docker compose behind Traefik.
///
/// Exit codes: 0 ok; 1 findings, gate, approval or deploy failed; 2 usage or config error;
/// 3 tool or infrastructure error.
#[derive(Debug, Parser)]
#[command(
    name = "shipline",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// When to use colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only results and errors; no progress.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr/stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check shipline.toml and exit 0 (valid) or 2 (invalid, with file:line:column).
    Validate(cmd_pipeline::ValidateArgs),
    /// Show the stages that would run for a branch, in order, and the environment it deploys to.
    Plan(cmd_pipeline::PlanArgs),
    /// Print a Mermaid `graph TD` of the configured pipeline for every environment.
    Graph(cmd_pipeline::GraphArgs),
    /// Run the pipeline for a branch: build, test, scan, push, approve, deploy.
    Run(cmd_pipeline::RunArgs),
    /// List recorded runs, or show one.
    Runs(cmd_pipeline::RunsArgs),
    /// Read and edit env files exactly as Docker Compose reads them.
    Env(cmd_env::EnvArgs),
    /// Run scanners or ingest their reports, then gate the findings.
    Scan(cmd_scan::ScanArgs),
    /// Audit compose stacks and their Traefik setup.
    Audit(cmd_audit::AuditArgs),
    /// Push an image (OCI layout, archive or the Docker daemon) to a registry.
    Push(cmd_registry::PushArgs),
    /// Pull an image into an OCI layout directory.
    Pull(cmd_registry::PullArgs),
    /// Copy an image between any two places, preserving its digest.
    #[command(visible_alias = "promote")]
    Copy(cmd_registry::CopyArgs),
    /// List the tags of a repository.
    Tags(cmd_registry::TagsArgs),
    /// Delete old tags of a repository (dry-run first).
    Prune(cmd_registry::PruneArgs),
    /// Print the manifest digest of an image reference.
    Digest(cmd_registry::DigestArgs),
    /// Deploy an image to an environment with docker compose, verify it, roll back on failure.
    Deploy(cmd_deploy::DeployArgs),
    /// Redeploy the previous recorded version of an environment.
    Rollback(cmd_deploy::RollbackArgs),
    /// What each environment runs now, read from the engine.
    Status(cmd_deploy::StatusArgs),
    /// Inspect or release an environment's deploy lock.
    Lock(cmd_deploy::LockArgs),
    /// Sign an approval for exactly one image digest.
    Approve(cmd_approve::ApproveArgs),
    /// List, show or revoke approvals.
    Approvals(cmd_approve::ApprovalsArgs),
    /// Generate CI configuration (GitHub Actions workflows).
    Ci(cmd_approve::CiArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    shipline_core::exit::OK
                }
                _ => shipline_core::exit::USAGE,
            };
            let _ = e.print();
            return code;
        }
    };
    let global = Global::new(cli.color, cli.quiet);
    let result = match cli.command {
        Command::Validate(a) => cmd_pipeline::validate(a, &global),
        Command::Plan(a) => cmd_pipeline::plan(a, &global),
        Command::Graph(a) => cmd_pipeline::graph(a, &global),
        Command::Run(a) => cmd_pipeline::run(a, &global),
        Command::Runs(a) => cmd_pipeline::runs(a, &global),
        Command::Env(a) => cmd_env::run(a, &global),
        Command::Scan(a) => cmd_scan::run(a, &global),
        Command::Audit(a) => cmd_audit::run(a, &global),
        Command::Push(a) => cmd_registry::push(a, &global),
        Command::Pull(a) => cmd_registry::pull(a, &global),
        Command::Copy(a) => cmd_registry::copy(a, &global),
        Command::Tags(a) => cmd_registry::tags(a, &global),
        Command::Prune(a) => cmd_registry::prune(a, &global),
        Command::Digest(a) => cmd_registry::digest(a, &global),
        Command::Deploy(a) => cmd_deploy::deploy(a, &global),
        Command::Rollback(a) => cmd_deploy::rollback(a, &global),
        Command::Status(a) => cmd_deploy::status(a, &global),
        Command::Lock(a) => cmd_deploy::lock(a, &global),
        Command::Approve(a) => cmd_approve::approve(a, &global),
        Command::Approvals(a) => cmd_approve::approvals(a, &global),
        Command::Ci(a) => cmd_approve::ci(a, &global),
    };
    match result {
        Ok(code) => code,
        Err(err) => output::report_error(&global, &err),
    }
}
