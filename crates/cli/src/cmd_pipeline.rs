//! Pipeline commands: validate, plan, graph, run, runs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use shipline_core::config::{self, Config, ConfigError};
use shipline_core::plan;
use shipline_core::store::{Store, StoreError};

use crate::{CliError, Global};

/// `--config PATH`, shared by every command that reads shipline.toml.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Path to shipline.toml (default: found in the current directory or the nearest parent).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// Finds and loads the config; config errors exit 2 with their diagnostics.
    pub fn load(&self) -> anyhow::Result<Config> {
        let path = match &self.config {
            Some(p) => p.clone(),
            None => {
                let cwd =
                    std::env::current_dir().context("failed to read the current directory")?;
                config::discover(&cwd).map_err(config_error)?
            }
        };
        Config::load(&path).map_err(config_error)
    }
}

/// Maps a config error to exit code 2 with its full text.
pub fn config_error(e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::Read {
            ref path,
            ref source,
        } => CliError::usage(format!(
            "failed to read config {}: {source}",
            path.display()
        )),
        other => CliError::usage(other.to_string()),
    }
}

/// Opens the run store of a config.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.store_dir).map_err(store_error)
}

fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound { .. } => CliError::usage(e.to_string()),
        other => {
            let mut msg = other.to_string();
            if let Some(src) = std::error::Error::source(&other) {
                msg.push_str(&format!(": {src}"));
            }
            CliError::tool(msg)
        }
    }
}

/// Arguments of `shipline validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the result as JSON (`{"version":1,"valid":...}`).
    #[arg(long)]
    pub json: bool,
}

/// `shipline validate`: exit 0 (valid) or 2 (invalid).
pub fn validate(args: ValidateArgs, _global: &Global) -> anyhow::Result<i32> {
    match args.config.load() {
        Ok(config) => {
            if args.json {
                let v = serde_json::json!({
                    "version": 1,
                    "valid": true,
                    "config": config.path,
                    "environments": config.environments.values().map(|e| serde_json::json!({
                        "name": e.name, "branch": e.branch, "deploy": e.deploy,
                    })).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let envs: Vec<String> = config
                    .environments
                    .values()
                    .map(|e| format!("{} (branch {})", e.name, e.branch))
                    .collect();
                println!(
                    "{} is valid: project {}, environments: {}",
                    display_path(&config.path),
                    config.project.name,
                    envs.join(", ")
                );
            }
            Ok(shipline_core::exit::OK)
        }
        Err(e) if args.json => {
            let message = e.to_string();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "version": 1, "valid": false, "error": message,
                }))?
            );
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// Arguments of `shipline plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The branch that was pushed (`dev`, `main`).
    #[arg(long, required_unless_present = "local")]
    pub branch: Option<String>,
    /// Plan the local check instead: build, test and scan only.
    #[arg(long, conflicts_with = "branch")]
    pub local: bool,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `shipline plan`: the stages that would run, in order, without side effects.
pub fn plan(args: PlanArgs, _global: &Global) -> anyhow::Result<i32> {
    let config = args.config.load()?;
    let plan = if args.local {
        plan::plan_local(&config)
    } else {
        let branch = args.branch.as_deref().unwrap_or_default();
        plan::plan_for_branch(&config, branch).map_err(|e| CliError::usage(e.to_string()))?
    };
    if args.json {
        let v = serde_json::json!({
            "version": 1,
            "branch": plan.branch,
            "environment": plan.environment,
            "local": plan.local,
            "stages": plan.stages,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_plan(&plan));
    }
    Ok(shipline_core::exit::OK)
}

/// Human rendering of a plan.
pub fn render_plan(plan: &plan::Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match (&plan.branch, &plan.environment) {
        (Some(b), Some(e)) => {
            let _ = writeln!(out, "plan for branch `{b}` -> environment `{e}`");
        }
        _ => {
            let _ = writeln!(
                out,
                "plan for a local check (nothing is pushed or deployed)"
            );
        }
    }
    let width = plan.stages.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for (i, s) in plan.stages.iter().enumerate() {
        let needs = if s.needs.is_empty() {
            String::new()
        } else {
            format!("  [needs {}]", s.needs.join(", "))
        };
        let _ = writeln!(
            out,
            "{:>3}. {:<width$}  {}{}",
            i + 1,
            s.id,
            s.description,
            needs
        );
    }
    out
}

/// Arguments of `shipline graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print `{"version":1,"format":"mermaid","graph":"..."}` instead of the bare diagram.
    #[arg(long)]
    pub json: bool,
}

/// `shipline graph`: Mermaid on stdout.
pub fn graph(args: GraphArgs, _global: &Global) -> anyhow::Result<i32> {
    let config = args.config.load()?;
    let mermaid = shipline_core::graph::mermaid(&config);
    if args.json {
        let v = serde_json::json!({"version": 1, "format": "mermaid", "graph": mermaid});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{mermaid}");
    }
    Ok(shipline_core::exit::OK)
}

/// Arguments of `shipline run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The branch that was pushed; selects the environment.
    #[arg(long, conflicts_with_all = ["local", "resume"], required_unless_present_any = ["local", "resume"])]
    pub branch: Option<String>,
    /// Build, test and scan only; nothing is pushed or deployed.
    #[arg(long)]
    pub local: bool,
    /// Continue a run that stopped at the approval gate (or failed).
    #[arg(long, value_name = "RUN_ID", conflicts_with = "local")]
    pub resume: Option<String>,
    /// The commit being built (default: $GITHUB_SHA, else `git rev-parse HEAD` in the config's
    /// directory).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    #[command(flatten)]
    pub registry: crate::regopts::RegistryFlags,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the run record as JSON on stdout (events go to stderr as JSON lines).
    #[arg(long)]
    pub json: bool,
}

/// Finds the commit being built.
pub fn resolve_commit(explicit: Option<&str>, dir: &Path) -> anyhow::Result<String> {
    let sha = match explicit {
        Some(s) => s.to_string(),
        None => match std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => {
                let out = std::process::Command::new("git")
                    .args(["rev-parse", "HEAD"])
                    .current_dir(dir)
                    .output();
                match out {
                    Ok(o) if o.status.success() => {
                        String::from_utf8_lossy(&o.stdout).trim().to_string()
                    }
                    _ => {
                        return Err(CliError::usage(format!(
                        "failed to find the commit: {} is not in a git checkout; pass --commit SHA",
                        dir.display()
                    )))
                    }
                }
            }
        },
    };
    if sha.len() < 7 || sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::usage(format!(
            "`{sha}` is not a commit SHA (7 to 64 hex digits)"
        )));
    }
    Ok(sha.to_ascii_lowercase())
}

/// `shipline run`.
pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<i32> {
    let config = args.config.load()?;
    let commit = resolve_commit(args.commit.as_deref(), &config.root)?;
    let rt = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
    rt.block_on(run_async(args, config, commit, global))
}

async fn run_async(
    args: RunArgs,
    config: Config,
    commit: String,
    global: &Global,
) -> anyhow::Result<i32> {
    use shipline_core::pipeline::{Pipeline, PipelineOptions};
    use shipline_core::run::{RunStatus, StageStatus};
    let client = crate::regopts::client(Some(&config), &args.registry).await?;
    let store_dir = config.store_dir.clone();
    let (events, rx) = shipline_core::events::EventSink::channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = PipelineOptions {
        commit,
        registry_override: args.registry.registry.clone(),
        client: std::sync::Arc::new(client),
        events: events.clone(),
        cancel: cancel.clone(),
        // Compose lets the shell environment override the env file; so does the audit stage.
        environment: std::env::vars().collect(),
    };
    let pipeline = Pipeline::new(config, opts).map_err(|e| CliError::tool(e.to_string()))?;
    let mode = crate::progress::Mode::pick(global, args.json);
    let renderer = tokio::spawn(crate::progress::render(rx, mode, global.color));
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let result = match &args.resume {
        Some(id) => pipeline.resume(id).await,
        None if args.local => pipeline.run(None).await,
        None => pipeline.run(args.branch.as_deref()).await,
    };
    drop(events);
    drop(pipeline);
    let _ = renderer.await;
    let record = result.map_err(|e| match e {
        shipline_core::pipeline::PipelineError::Plan(p) => CliError::usage(p.to_string()),
        shipline_core::pipeline::PipelineError::Resume { .. } => CliError::usage(e.to_string()),
        shipline_core::pipeline::PipelineError::Store(
            shipline_core::store::StoreError::NotFound { .. },
        ) => CliError::usage(e.to_string()),
        other => CliError::tool(other.to_string()),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", crate::render::run_summary(&record));
    }
    publish_run(global, &store_dir, &record);
    let code = match record.status {
        RunStatus::Succeeded => shipline_core::exit::OK,
        RunStatus::WaitingApproval => {
            if !args.json {
                if let Some(s) = record
                    .stages
                    .iter()
                    .find(|s| s.status == StageStatus::Waiting)
                {
                    global.info(format!(
                        "\nstopped at the approval gate:\n  {}",
                        s.message.as_deref().unwrap_or("")
                    ));
                }
            }
            shipline_core::exit::OK
        }
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Running => {
            let tool = record.stages.iter().any(|s| {
                s.status == StageStatus::Failed
                    && matches!(
                        s.error_kind,
                        Some(shipline_core::executor::StageErrorKind::Tool)
                            | Some(shipline_core::executor::StageErrorKind::NotImplemented)
                    )
            });
            if tool {
                shipline_core::exit::TOOL
            } else {
                shipline_core::exit::FAILED
            }
        }
    };
    Ok(code)
}

/// Inside GitHub Actions: the run's summary and the gate's findings in the step summary, the
/// findings as annotations, and `run_id`, `status`, `image`, `tag`, `digest` as step outputs.
fn publish_run(global: &Global, store_dir: &Path, record: &shipline_core::run::RunRecord) {
    let Some(gh) = crate::gha::detect() else {
        return;
    };
    let reports = shipline_core::store::Store {
        dir: store_dir.to_path_buf(),
    }
    .reports_dir(&record.id);
    let mut summary = crate::render::run_summary_markdown(record);
    if let Ok(findings) = std::fs::read_to_string(reports.join("scan.md")) {
        summary.push('\n');
        summary.push_str(&findings);
    }
    if let Ok(annotations) = std::fs::read_to_string(reports.join("scan.annotations")) {
        eprint!("{annotations}");
    }
    let mut outputs = vec![
        ("run_id", record.id.as_str()),
        ("status", record.status.as_str()),
    ];
    if let Some(img) = &record.image {
        outputs.extend(crate::gha::image_outputs(
            &img.repository,
            img.tag.as_deref(),
            img.digest.as_deref(),
        ));
    }
    crate::gha::publish(&gh, global, &summary, &outputs);
}

/// Arguments of `shipline runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub cmd: Option<RunsCmd>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `shipline runs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCmd {
    /// Show one run record.
    Show {
        /// Run id.
        id: String,
    },
}

/// `shipline runs [show ID]`.
pub fn runs(args: RunsArgs, _global: &Global) -> anyhow::Result<i32> {
    let config = args.config.load()?;
    let store = open_store(&config)?;
    match args.cmd {
        Some(RunsCmd::Show { id }) => {
            let record = store.load_run(&id).map_err(store_error)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print!("{}", crate::render::run_summary(&record));
            }
        }
        None => {
            let mut records = Vec::new();
            for r in store.list_runs().map_err(store_error)? {
                match r {
                    Ok(r) => records.push(r),
                    Err(e) => eprintln!("warning: {e}"),
                }
            }
            if args.json {
                let v = serde_json::json!({"version": 1, "runs": records});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", crate::render::runs_table(&records));
            }
        }
    }
    Ok(shipline_core::exit::OK)
}
