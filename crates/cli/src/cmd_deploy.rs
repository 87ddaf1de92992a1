//! Deploy commands: deploy, rollback, status, lock.

use std::time::Duration;

use shipline_core::deploy::{
    self, DeployError, DeployEvent, DeployReport, DeployRequest, DeployTarget, LockStatus,
};
use shipline_core::engine::Engine;

use crate::cmd_pipeline::ConfigArg;
use crate::{CliError, Global};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::tool(format!("failed to start the async runtime: {e}")))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn target(config: &ConfigArg, env: &str) -> anyhow::Result<DeployTarget> {
    let cfg = config.load()?;
    DeployTarget::from_config(&cfg, env).ok_or_else(|| {
        let known: Vec<&str> = cfg.environments.keys().map(String::as_str).collect();
        CliError::usage(format!(
            "failed to find environment {env} in {}: known environments: {}",
            cfg.path.display(),
            known.join(", ")
        ))
    })
}

async fn connect() -> anyhow::Result<Engine> {
    Engine::connect().await.map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        CliError::tool(format!("{e}{cause}"))
    })
}

fn deploy_error(e: DeployError) -> anyhow::Error {
    let msg = shipline_scanners::report::error_chain(&e);
    let code = e.exit_code();
    anyhow::Error::new(CliError { code, message: msg })
}

fn render_event(global: &Global, ev: DeployEvent) {
    match ev {
        DeployEvent::Step { step, message } => global.info(format!("[{step}] {message}")),
        DeployEvent::Warning { message } => global.warn(message),
    }
}

/// Prints a deploy report (stdout: result; stderr: failure details) and returns the exit code.
fn finish(report: &DeployReport, json: bool, global: &Global) -> anyhow::Result<i32> {
    if json {
        let v = serde_json::json!({"version": 1, "deployment": report});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let r = &report.record;
        println!(
            "{}: {} {} (previous {}, {} via {}, {} ms)",
            r.env,
            match r.outcome {
                deploy::Outcome::Succeeded => "deployed",
                deploy::Outcome::RolledBack =>
                    "ROLLED BACK, still running the previous version instead of",
                deploy::Outcome::Failed => "FAILED (rollback failed too) deploying",
                deploy::Outcome::Repaired => "repaired",
            },
            r.image,
            r.previous_tag.as_deref().unwrap_or("none"),
            r.strategy,
            report.compose.display_name(),
            r.duration_ms
        );
    }
    if let Some(f) = &report.failure {
        global.warn(format!("{} failed: {}", f.step, f.message));
        for (container, lines) in &f.containers {
            eprintln!("  {container}:");
            for l in lines {
                eprintln!("    {l}");
            }
        }
        if let Some(rb) = &f.rollback_error {
            global.warn(format!(
                "rollback failed: {rb}; the next deploy will repair"
            ));
        }
    }
    if let Some(gh) = crate::gha::detect() {
        let r = &report.record;
        let (repository, _) = shipline_core::engine::split_reference(&r.image);
        let mut summary = format!(
            "### shipline deploy {}: {:?}\n\n`{}`{} (previous {}, {}, {} ms)\n",
            r.env,
            r.outcome,
            r.image,
            r.digest
                .as_deref()
                .map(|d| format!(" `{d}`"))
                .unwrap_or_default(),
            r.previous_tag.as_deref().unwrap_or("none"),
            r.strategy,
            r.duration_ms
        );
        if let Some(f) = &report.failure {
            summary.push_str(&format!("\n**{} failed**: {}\n", f.step, f.message));
        }
        crate::gha::publish(
            &gh,
            global,
            &summary,
            &crate::gha::image_outputs(repository, Some(&r.tag), r.digest.as_deref()),
        );
    }
    Ok(if report.succeeded() {
        shipline_core::exit::OK
    } else {
        shipline_core::exit::FAILED
    })
}

/// Arguments of `shipline deploy`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["tag", "digest", "run"]))]
pub struct DeployArgs {
    /// The environment (a key of `[environments]`).
    pub env: String,
    /// The image tag to deploy (`repository:TAG`).
    #[arg(long)]
    pub tag: Option<String>,
    /// The manifest digest the image must have (`sha256:...`); without --tag, the local image
    /// of the repository carrying this digest is deployed.
    #[arg(long)]
    pub digest: Option<String>,
    /// Continue the stopped `shipline run` RUN_ID that deploys to this environment (the same
    /// as `shipline run --resume RUN_ID`: its approval gate and deploy stages run again).
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["tag", "digest"])]
    pub run: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Wait this long for another deploy of the environment (e.g. `5m`).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Why (recorded with the lock and the deployment).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the deployment record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Count only the approvals in the local store; by default the approvals attached to the
    /// image in the registry (`shipline approve --push`) count too, and a registry that cannot
    /// be read fails the deploy.
    #[arg(long)]
    pub local_approvals: bool,
    #[command(flatten)]
    pub registry: crate::regopts::RegistryFlags,
}

/// Runs `shipline deploy`. An environment that requires approval is deployed only by digest,
/// and only when the approvals in the store and those attached to the image in the registry
/// meet its policy for that digest (checked under the deploy lock).
pub fn deploy(args: DeployArgs, global: &Global) -> anyhow::Result<i32> {
    let cfg = args.config.load()?;
    if let Some(run_id) = &args.run {
        return resume_run(&cfg, &args.env, args.resume_args(run_id), global);
    }
    let target = target(&args.config, &args.env)?;
    let env = cfg
        .environment(&args.env)
        .cloned()
        .ok_or_else(|| CliError::usage(format!("failed to find environment {}", args.env)))?;
    let needs_approval =
        env.deploy == shipline_core::config::DeployMode::Approval || env.approval.is_some();
    if let Some(d) = &args.digest {
        shipline_core::approval::validate_digest(d).map_err(|e| CliError::usage(e.to_string()))?;
    }
    if needs_approval && args.digest.is_none() {
        return Err(CliError::usage(format!(
            "environment {} requires approval, which names a digest: deploy with --digest sha256:...",
            env.name
        )));
    }
    runtime()?.block_on(async {
        let engine = connect().await?;
        let tag = match (&args.tag, &args.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => tag_for_digest(&engine, &target.repository, d).await?,
            (None, None) => return Err(CliError::usage("give --tag or --digest")),
        };
        let store_dir = target.store_dir.clone();
        let registry = match &args.digest {
            Some(digest) => {
                let approvals = needs_approval && !args.local_approvals;
                registry_view(&cfg, &args.registry, digest, approvals, global).await?
            }
            None => RegistryView::default(),
        };
        let remote = registry.approvals;
        let mut req = DeployRequest::new(target, tag.clone());
        req.digest = args.digest.clone();
        req.digest_config = registry.config_digest;
        req.lock_wait = args.lock_wait;
        // the engine reads no docker config: hand it the login the registry commands use (the
        // env vars `[registry]` names for its host, else the docker config)
        if let Ok(r) = shipline_registry::Reference::parse(&req.target.repository) {
            let host = r.registry().to_owned();
            let creds = crate::regopts::credentials_for_host(&cfg, &host).await;
            match creds {
                Ok(c) if !c.is_anonymous() => req.pull_credentials = Some(c),
                Ok(_) => {}
                Err(e) => global.warn(format!(
                    "could not read registry credentials for {host} (pulling anonymously): {e:#}"
                )),
            }
        }
        if let Some(r) = &args.reason {
            req.reason = r.clone();
        }
        if needs_approval {
            req.gate = Some(deploy::DeployGate(std::sync::Arc::new(move |input| {
                let digest = input.digest.as_deref().unwrap_or_default();
                let store =
                    shipline_core::store::Store::open(&store_dir).map_err(|e| e.to_string())?;
                shipline_core::approval::check_for_deploy_remote(
                    &store,
                    &env,
                    digest,
                    chrono::Utc::now(),
                    || Ok(remote.clone()),
                )
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "{e}; approve with `shipline approve {} --digest {digest}`",
                        input.env
                    )
                })
            })));
        }
        let report = deploy::deploy(&engine, &req, &|ev| render_event(global, ev))
            .await
            .map_err(deploy_error)?;
        finish(&report, args.json, global)
    })
}

impl DeployArgs {
    /// The `shipline run --resume RUN_ID` this deploy stands for.
    fn resume_args(&self, run_id: &str) -> crate::cmd_pipeline::RunArgs {
        crate::cmd_pipeline::RunArgs {
            branch: None,
            local: false,
            resume: Some(run_id.to_string()),
            commit: None,
            registry: self.registry.clone(),
            config: self.config.clone(),
            json: self.json,
        }
    }
}

/// `deploy ENV --run RUN_ID`: resumes that run after checking it deploys to ENV.
fn resume_run(
    cfg: &shipline_core::config::Config,
    env: &str,
    args: crate::cmd_pipeline::RunArgs,
    global: &Global,
) -> anyhow::Result<i32> {
    let id = args.resume.clone().unwrap_or_default();
    let store = shipline_core::store::Store::open(&cfg.store_dir)
        .map_err(|e| CliError::tool(e.to_string()))?;
    let record = store.load_run(&id).map_err(|e| {
        CliError::usage(format!(
            "{e}; `shipline runs` lists the runs of this project"
        ))
    })?;
    match record.environment.as_deref() {
        Some(e) if e == env => {}
        Some(e) => {
            return Err(CliError::usage(format!(
                "run {id} deploys to {e}, not {env}: `shipline deploy {e} --run {id}`"
            )))
        }
        None => {
            return Err(CliError::usage(format!(
                "run {id} deploys nowhere (a local run); nothing to continue"
            )))
        }
    }
    crate::cmd_pipeline::run(args, global)
}

/// What the registry says about the image being deployed by digest.
#[derive(Default)]
struct RegistryView {
    /// Approvals and revocations attached to the digest (when asked for).
    approvals: shipline_core::approval::RemoteApprovals,
    /// The config digest the manifest names (an image ID to compare with a local image).
    config_digest: Option<String>,
}

/// Reads, from the registry the image is pushed to (nothing when the pipeline keeps images in
/// its embedded store), the config digest of `digest` and, with `approvals`, the approvals
/// attached to it. An unreadable registry fails the deploy when approvals are needed: it must
/// not look like "no approvals" nor be skipped silently; the config digest is only a help for
/// images built on this host, so failing to read it is a warning.
async fn registry_view(
    cfg: &shipline_core::config::Config,
    flags: &crate::regopts::RegistryFlags,
    digest: &str,
    approvals: bool,
    global: &Global,
) -> anyhow::Result<RegistryView> {
    let store = shipline_core::store::Store::open(&cfg.store_dir)
        .map_err(|e| CliError::tool(e.to_string()))?;
    let repository =
        match shipline_core::pipeline::destination(cfg, flags.registry.as_deref(), &store) {
            shipline_core::pipeline::Destination::Remote { repository } => repository,
            shipline_core::pipeline::Destination::Embedded { .. } => {
                return Ok(RegistryView::default())
            }
        };
    let client = crate::regopts::client(Some(cfg), flags).await?;
    let mut view = RegistryView::default();
    let manifest = shipline_registry::Reference::parse(&format!("{repository}@{digest}"))
        .map_err(|e| CliError::usage(e.to_string()))?;
    match client.get_manifest(&manifest).await {
        Ok(m) => {
            view.config_digest = shipline_registry::manifest::Manifest::parse(&m.bytes, "manifest")
                .ok()
                .and_then(|m| m.config)
                .map(|c| c.digest.to_string());
        }
        Err(e) => global.warn(format!(
            "could not read {repository}@{digest} from the registry: {}",
            chain(&e)
        )),
    }
    if !approvals {
        return Ok(view);
    }
    global.info(format!(
        "reading approvals attached to {repository}@{digest}"
    ));
    view.approvals = shipline_core::approval::fetch_remote(&client, &repository, digest)
        .await
        .map_err(|e| {
            CliError::tool(format!(
                "{}; pass --local-approvals to count only the approvals in the local store",
                chain(&e)
            ))
        })?;
    global.info(format!(
        "{} approval(s) and {} revocation(s) attached in the registry",
        view.approvals.approvals.len(),
        view.approvals.revocations.len()
    ));
    Ok(view)
}

/// An error and its sources on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    shipline_scanners::report::error_chain(e)
}

async fn tag_for_digest(engine: &Engine, repository: &str, digest: &str) -> anyhow::Result<String> {
    let images = engine
        .list_repository_images(repository)
        .await
        .map_err(|e| CliError::tool(e.to_string()))?;
    images
        .iter()
        .find(|i| i.digests.iter().any(|d| d.ends_with(&format!("@{digest}"))))
        .and_then(|i| i.tags.iter().find_map(|t| t.rsplit_once(':').map(|(_, t)| t.to_string())))
        .ok_or_else(|| {
            CliError::usage(format!(
                "no local image of {repository} has digest {digest}; pass --tag too so it can be pulled"
            ))
        })
}

/// Arguments of `shipline rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The environment.
    pub env: String,
    /// The tag to return to (default: the last successful deployment before the current one).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Wait this long for another deploy of the environment.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Print the deployment record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shipline rollback`.
pub fn rollback(args: RollbackArgs, global: &Global) -> anyhow::Result<i32> {
    let target = target(&args.config, &args.env)?;
    runtime()?.block_on(async {
        let engine = connect().await?;
        let report = deploy::rollback(&engine, target, args.to.clone(), args.lock_wait, &|ev| {
            render_event(global, ev)
        })
        .await
        .map_err(deploy_error)?;
        finish(&report, args.json, global)
    })
}

/// Arguments of `shipline status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One environment (default: all).
    pub env: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shipline status`: exit 0 when every environment runs exactly its recorded version.
pub fn status(args: StatusArgs, global: &Global) -> anyhow::Result<i32> {
    let cfg = args.config.load()?;
    let names: Vec<String> = match &args.env {
        Some(e) => vec![e.clone()],
        None => cfg.environments.keys().cloned().collect(),
    };
    let mut targets = Vec::new();
    for n in &names {
        targets.push(target(&args.config, n)?);
    }
    runtime()?.block_on(async {
        let engine = connect().await?;
        let st = deploy::status(&engine, &targets)
            .await
            .map_err(deploy_error)?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"version": 1, "environments": st}))?
            );
        } else {
            for e in &st {
                let running = if e.running_tags.is_empty() {
                    "nothing".to_string()
                } else {
                    e.running_tags.join(", ")
                };
                println!(
                    "{}: running {} since {} (env file: {}; last record: {}){}",
                    e.env,
                    running,
                    e.since.as_deref().unwrap_or("-"),
                    e.env_file_tag.as_deref().unwrap_or("unset"),
                    e.last_record
                        .as_ref()
                        .map(|r| format!("{} {:?}", r.tag, r.outcome))
                        .unwrap_or_else(|| "none".into()),
                    if e.matches_record { "" } else { " — DOES NOT MATCH the record" }
                );
                for c in &e.containers {
                    println!("  {:<12} {:<40} {:<10} {}", c.service, c.name, c.health, c.image);
                }
                if let LockStatus::Held { holder: Some(h) } = &e.lock {
                    println!("  locked by pid {} on {} since {}: {}", h.pid, h.host, h.since, h.reason);
                } else if let LockStatus::Interrupted { holder } = &e.lock {
                    global.warn(format!(
                        "{}: a deploy was interrupted ({}, phase {:?}); the next deploy or `shipline lock release {}` repairs it",
                        e.env, holder.reason, holder.phase, e.env
                    ));
                }
            }
        }
        Ok(if st.iter().all(|e| e.matches_record) {
            shipline_core::exit::OK
        } else {
            shipline_core::exit::FAILED
        })
    })
}

/// `lock` subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockAction {
    /// Show who holds the lock, or whether a deploy was interrupted.
    Status,
    /// Recover the lock of an interrupted deploy (restores the env file and previous version).
    Release,
}

/// Arguments of `shipline lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// `status` or `release`.
    #[arg(value_enum)]
    pub action: LockAction,
    /// The environment.
    pub env: String,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shipline lock`.
pub fn lock(args: LockArgs, global: &Global) -> anyhow::Result<i32> {
    let target = target(&args.config, &args.env)?;
    let locks = target.store_dir.join("locks");
    match args.action {
        LockAction::Status => {
            let st = deploy::lock_status(&locks, &target.env).map_err(deploy_error)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"version": 1, "env": target.env, "lock": st})
                    )?
                );
            } else {
                match &st {
                    LockStatus::Free => println!("{}: free", target.env),
                    LockStatus::Held { holder: Some(h) } => println!(
                        "{}: held by pid {} on {} ({}) since {}: {} [phase {:?}]",
                        target.env, h.pid, h.host, h.user, h.since, h.reason, h.phase
                    ),
                    LockStatus::Held { holder: None } => println!("{}: held", target.env),
                    LockStatus::Interrupted { holder } => println!(
                        "{}: interrupted deploy by pid {} on {} since {}: {} [phase {:?}]; run `shipline lock release {}`",
                        target.env, holder.pid, holder.host, holder.since, holder.reason, holder.phase, target.env
                    ),
                }
            }
            Ok(shipline_core::exit::OK)
        }
        LockAction::Release => runtime()?.block_on(async {
            let engine = connect().await?;
            let repaired = deploy::release_lock(&engine, &target, &|ev| render_event(global, ev))
                .await
                .map_err(deploy_error)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"version": 1, "env": target.env, "repaired": repaired})
                    )?
                );
            } else if let Some(h) = repaired {
                println!(
                    "{}: repaired the deploy interrupted in phase {:?} ({}); lock released",
                    target.env, h.phase, h.reason
                );
            } else {
                println!("{}: lock was free", target.env);
            }
            Ok(shipline_core::exit::OK)
        }),
    }
}
