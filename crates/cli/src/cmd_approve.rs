//! Approval and CI commands: approve, approvals (list|show|revoke|verify|allowed-signers), ci github.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use shipline_core::approval::{
    self, evaluate_one, load_signing_key, short_id, sign_approval, Approval, ApprovalDir,
    ApprovalError, ApprovalRequest, Revocation, SignedApproval, TrustedApprovers, VerifyContext,
    NAMESPACE,
};
use shipline_core::ci::github::{
    generate_workflows, stale_workflows, write_workflows, GithubOptions,
};
use shipline_core::ci::GithubActions;
use shipline_core::config::{ApprovalPolicy, Config, Environment};

use crate::cmd_pipeline::{open_store, ConfigArg};
use crate::{CliError, Global};

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn environment<'c>(config: &'c Config, env: &str) -> anyhow::Result<&'c Environment> {
    config.environment(env).ok_or_else(|| {
        let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        CliError::usage(format!(
            "failed to find environment {env} in {}: known environments: {}",
            config.path.display(),
            known.join(", ")
        ))
    })
}

fn policy(env: &Environment) -> anyhow::Result<&ApprovalPolicy> {
    env.approval.as_ref().ok_or_else(|| {
        CliError::usage(format!(
            "environment {} has no approval policy ([environments.{}.approval]); it deploys without approval",
            env.name, env.name
        ))
    })
}

/// Maps an approval error to its exit code, keeping the message.
fn approval_error(e: ApprovalError) -> anyhow::Error {
    let msg = shipline_scanners::report::error_chain(&e);
    match e.exit_code() {
        shipline_core::exit::FAILED => CliError::failed(msg),
        shipline_core::exit::USAGE => CliError::usage(msg),
        _ => CliError::tool(msg),
    }
}

/// Runs git in the config's directory; `None` when git or the repository is unavailable.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// `ghcr.io/a/b:tag@sha256:..` → (`ghcr.io/a/b`, digest).
fn split_image(reference: &str) -> (String, Option<String>) {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let repo = match name[last_slash..].find(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    };
    (repo.to_string(), digest)
}

/// Arguments of `shipline approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The environment to approve the image for (a key of `[environments]`).
    pub env: String,
    /// The manifest digest of the approved image (`sha256:...`). Only this digest is approved.
    #[arg(long)]
    pub digest: String,
    /// The image (repository, optionally with tag or digest); default: `[image] repository`.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Why it is approved (recorded in the signed approval).
    #[arg(long)]
    pub reason: Option<String>,
    /// How long the approval stays valid (default and upper bound: the policy's `max_age`).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub expires: Option<Duration>,
    /// The approver's OpenSSH private key [env: SHIPLINE_APPROVAL_KEY; default ~/.ssh/id_ed25519].
    /// An encrypted key reads its passphrase from SHIPLINE_KEY_PASSPHRASE.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Who asked for the change (default: the author e-mail of --commit).
    #[arg(long)]
    pub requester: Option<String>,
    /// The source commit of the image (default: `git rev-parse HEAD` beside shipline.toml).
    #[arg(long)]
    pub commit: Option<String>,
    /// The scan verdict/report the approver saw; its SHA-256 is signed into the approval.
    #[arg(long, value_name = "FILE")]
    pub scan_report: Option<PathBuf>,
    /// Also attach the approval to the image in the registry (an OCI artifact whose subject is
    /// the image manifest; referrers API or the `sha256-<hex>` tag fallback).
    #[arg(long)]
    pub push: bool,
    /// Allow plain HTTP for this registry host with --push; repeatable (loopback always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shipline approve`.
pub fn approve(args: ApproveArgs, global: &Global) -> anyhow::Result<i32> {
    let config = args.config.load()?;
    let env = environment(&config, &args.env)?;
    let policy = policy(env)?;
    approval::validate_digest(&args.digest).map_err(approval_error)?;

    let (image, ref_digest) = match &args.image {
        Some(r) => split_image(r),
        None => (config.image.repository.clone(), None),
    };
    if let Some(d) = ref_digest {
        if d != args.digest {
            return Err(CliError::usage(format!(
                "--image names digest {d} but --digest is {}; approve exactly one digest",
                args.digest
            )));
        }
    }

    let key_path = match (&args.key, std::env::var_os("SHIPLINE_APPROVAL_KEY")) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".ssh/id_ed25519"),
            None => return Err(CliError::usage("no signing key: pass --key PATH")),
        },
    };
    let passphrase = std::env::var("SHIPLINE_KEY_PASSPHRASE").ok();
    let key = load_signing_key(&key_path, passphrase.as_deref()).map_err(approval_error)?;
    let trusted = TrustedApprovers::from_policy(policy).map_err(approval_error)?;
    let approver = trusted
        .identity_of(&key)
        .ok_or_else(|| {
            approval_error(ApprovalError::SignerNotTrusted {
                env: env.name.clone(),
                fingerprint: approval::fingerprint(key.public_key()),
            })
        })?
        .to_string();

    let commit = args
        .commit
        .clone()
        .or_else(|| git(&config.root, &["rev-parse", "HEAD"]));
    let requester = match &args.requester {
        Some(r) => r.clone(),
        None => commit
            .as_deref()
            .and_then(|c| git(&config.root, &["log", "-1", "--format=%ae", c]))
            .ok_or_else(|| {
                CliError::usage(
                    "failed to determine who requested the change: pass --requester (or --commit of a git checkout)",
                )
            })?,
    };
    let scan_verdict = match &args.scan_report {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| {
                CliError::usage(format!("failed to read scan report {}: {e}", p.display()))
            })?;
            Some(approval::scan_verdict_hash(&bytes))
        }
        None => None,
    };
    let valid_for = args.expires.unwrap_or(policy.max_age);
    if valid_for > policy.max_age {
        global.warn(format!(
            "--expires {} is longer than the policy's max_age {}; deploys will treat it as expired after {}",
            humantime::format_duration(valid_for),
            humantime::format_duration(policy.max_age),
            humantime::format_duration(policy.max_age)
        ));
    }
    let valid_for = chrono::Duration::from_std(valid_for)
        .map_err(|_| CliError::usage("--expires is out of range"))?;

    let approval = Approval::new(ApprovalRequest {
        environment: env.name.clone(),
        image,
        digest: args.digest.clone(),
        commit,
        scan_verdict,
        requester,
        approver,
        created: Utc::now(),
        valid_for,
        reason: args.reason.clone(),
    })
    .map_err(approval_error)?;
    let signed = sign_approval(&approval, &key).map_err(approval_error)?;
    let store = open_store(&config)?;
    let dir = ApprovalDir::in_store(&store, &env.name);
    let path = dir.save(&signed).map_err(approval_error)?;
    let id = signed.id();
    if let Err(e) = store.append_audit(&serde_json::json!({
        "event": "approval",
        "time": approval.created,
        "environment": env.name,
        "digest": approval.digest,
        "approver": approval.approver,
        "id": id,
    })) {
        global.warn(format!(
            "failed to record the approval in the audit log: {e}"
        ));
    }

    if let Some(gh) = GithubActions::detect(|k| std::env::var(k).ok()) {
        let summary = format!(
            "### Approval {}\n\n`{}@{}` approved for **{}** by {} until {}\n",
            short_id(&id),
            approval.image,
            approval.digest,
            approval.environment,
            approval.approver,
            approval.expires.to_rfc3339()
        );
        if let Err(e) = gh.append_summary(&summary) {
            global.warn(e);
        }
        let outputs = [
            ("image", approval.image.as_str()),
            ("digest", approval.digest.as_str()),
            ("approval_id", id.as_str()),
        ];
        if let Err(e) = gh.set_outputs(&outputs) {
            global.warn(e);
        }
    }

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": 1,
                "id": id,
                "path": path,
                "signature": dir.signature_path(&id),
                "approval": approval,
            }))?
        );
    } else {
        println!(
            "approved {}@{} for {} as {} until {} (id {})",
            approval.image,
            approval.digest,
            approval.environment,
            approval.approver,
            approval.expires.to_rfc3339(),
            short_id(&id)
        );
        global.info(format!("wrote {}", path.display()));
        global.info(format!(
            "verify with: ssh-keygen -Y verify -f allowed_signers -I {} -n {NAMESPACE} -s {} < {}",
            approval.approver,
            dir.signature_path(&id).display(),
            path.display()
        ));
    }
    if args.push {
        let artifact = push_to_registry(&config, &args.insecure_registry, &signed)?;
        if args.json {
            global.info(format!(
                "attached to {}@{} as {artifact}",
                approval.image, approval.digest
            ));
        } else {
            println!(
                "attached to {}@{} as artifact {artifact}",
                approval.image, approval.digest
            );
        }
    }
    Ok(shipline_core::exit::OK)
}

/// A registry client with the credentials of `host`, on a fresh single-threaded runtime.
fn with_client<T>(
    config: &Config,
    insecure: &[String],
    host: &str,
    f: impl AsyncFnOnce(&shipline_registry::RegistryClient) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::tool(format!("failed to start the async runtime: {e}")))?;
    runtime.block_on(async {
        let creds = crate::regopts::credentials_for_host(config, host)
            .await
            .map_err(|e| CliError::tool(format!("{e:#}")))?;
        let mut credentials = std::collections::HashMap::new();
        credentials.insert(host.to_string(), creds);
        let client = shipline_registry::RegistryClient::new(shipline_registry::ClientOptions {
            credentials,
            insecure_registries: insecure.to_vec(),
            ..shipline_registry::ClientOptions::default()
        })
        .map_err(|e| CliError::tool(e.to_string()))?;
        f(&client).await
    })
}

/// Approvals attached to `repository@digest` in the registry. Registry errors are kept (not
/// raised here) so the check reports them and fails closed.
fn fetch_from_registry(
    config: &Config,
    insecure: &[String],
    repository: &str,
    digest: &str,
) -> anyhow::Result<Result<approval::RemoteApprovals, ApprovalError>> {
    let reference = shipline_registry::Reference::parse(repository)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let host = reference.registry().to_string();
    with_client(config, insecure, &host, async |client| {
        Ok(approval::fetch_remote(client, repository, digest).await)
    })
}

/// Attaches a signed approval to its image in the registry; returns the artifact digest.
fn push_to_registry(
    config: &Config,
    insecure: &[String],
    signed: &SignedApproval,
) -> anyhow::Result<String> {
    let approval = signed
        .approval_unverified()
        .map_err(|e| CliError::tool(format!("failed to read the approval just made: {e}")))?;
    let reference = shipline_registry::Reference::parse(&approval.image)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let host = reference.registry().to_string();
    with_client(config, insecure, &host, async |client| {
        let digest = approval::push_approval(client, signed)
            .await
            .map_err(approval_error)?;
        Ok(digest.to_string())
    })
}

/// Arguments of `shipline approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

/// `shipline approvals` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List an environment's stored approvals with their status.
    List {
        /// The environment.
        env: String,
        /// Check against this digest (default: each approval's own digest).
        #[arg(long)]
        digest: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one approval, its status and how to verify it with ssh-keygen.
    Show {
        /// The environment.
        env: String,
        /// Approval id (or a unique prefix of at least 4 digits).
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an approval: deploys refuse it from now on.
    Revoke {
        /// The environment.
        env: String,
        /// Approval id (or a unique prefix).
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        /// Who revokes (default: git config user.email, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Also attach the revocation to the approved image in the registry, so that deploy
        /// hosts reading approvals from the registry honour it.
        #[arg(long)]
        push: bool,
        /// Allow plain HTTP for this registry host with --push; repeatable (loopback always may).
        #[arg(long = "insecure-registry", value_name = "HOST")]
        insecure_registry: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check, as a deploy would, that enough valid approvals exist for a digest (exit 0 or 1).
    Verify {
        /// The environment.
        env: String,
        /// The digest about to be deployed.
        #[arg(long)]
        digest: String,
        /// Also look for approvals attached to the image in the registry.
        #[arg(long)]
        registry: bool,
        /// The image repository to look in with --registry (default: `[image] repository`).
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// Allow plain HTTP for this registry host; repeatable (loopback always may).
        #[arg(long = "insecure-registry", value_name = "HOST")]
        insecure_registry: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the environment's trusted approvers as an OpenSSH allowed_signers file.
    AllowedSigners {
        /// The environment.
        env: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Runs `shipline approvals`.
pub fn approvals(args: ApprovalsArgs, global: &Global) -> anyhow::Result<i32> {
    match args.command {
        ApprovalsCommand::List {
            env,
            digest,
            config,
            json,
        } => list(&config, &env, digest.as_deref(), json),
        ApprovalsCommand::Show {
            env,
            id,
            config,
            json,
        } => show(&config, &env, &id, json),
        ApprovalsCommand::Revoke {
            env,
            id,
            reason,
            by,
            push,
            insecure_registry,
            config,
            json,
        } => {
            let push = push.then_some(insecure_registry);
            revoke(&config, &env, &id, reason, by, push, json, global)
        }
        ApprovalsCommand::Verify {
            env,
            digest,
            registry,
            image,
            insecure_registry,
            config,
            json,
        } => {
            let remote = registry.then_some(RemoteLookup {
                image,
                insecure: insecure_registry,
            });
            verify(&config, &env, &digest, remote, json, global)
        }
        ApprovalsCommand::AllowedSigners { env, config } => {
            let cfg = config.load()?;
            let env = environment(&cfg, &env)?;
            let trusted = TrustedApprovers::from_policy(policy(env)?).map_err(approval_error)?;
            print!("{}", trusted.allowed_signers());
            Ok(shipline_core::exit::OK)
        }
    }
}

/// One approval's status as `list`/`show` report it.
fn status_of(
    policy: &ApprovalPolicy,
    env: &str,
    digest: Option<&str>,
    revocations: &approval::Revocations,
    candidate: &SignedApproval,
) -> anyhow::Result<(Option<Approval>, serde_json::Value)> {
    let parsed = candidate.approval_unverified().ok();
    let own_digest = parsed
        .as_ref()
        .map(|a| a.digest.clone())
        .unwrap_or_default();
    let digest = digest.unwrap_or(&own_digest);
    let ctx = VerifyContext {
        policy,
        environment: env,
        digest,
        now: Utc::now(),
        revocations,
    };
    let status = match evaluate_one(&ctx, candidate).map_err(approval_error)? {
        Ok(_) => serde_json::json!({"valid": true}),
        Err(r) => serde_json::json!({"valid": false, "check": r.check, "detail": r.detail}),
    };
    Ok((parsed, status))
}

fn list(config: &ConfigArg, env: &str, digest: Option<&str>, json: bool) -> anyhow::Result<i32> {
    let cfg = config.load()?;
    let env = environment(&cfg, env)?;
    let policy = policy(env)?;
    let store = open_store(&cfg)?;
    let dir = ApprovalDir::in_store(&store, &env.name);
    let revocations = dir.revocations().map_err(approval_error)?;
    let mut rows = Vec::new();
    for c in dir.load_all().map_err(approval_error)? {
        let (parsed, status) = status_of(policy, &env.name, digest, &revocations, &c)?;
        rows.push(serde_json::json!({
            "id": c.id(),
            "approver": parsed.as_ref().map(|a| &a.approver),
            "digest": parsed.as_ref().map(|a| &a.digest),
            "created": parsed.as_ref().map(|a| a.created),
            "expires": parsed.as_ref().map(|a| a.expires),
            "status": status,
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": 1,
                "environment": env.name,
                "approvals": rows,
            }))?
        );
        return Ok(shipline_core::exit::OK);
    }
    if rows.is_empty() {
        println!("no approvals for {}", env.name);
        return Ok(shipline_core::exit::OK);
    }
    println!(
        "{:<12}  {:<24}  {:<19}  {:<25}  STATUS",
        "ID", "APPROVER", "DIGEST", "EXPIRES"
    );
    for r in &rows {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
        let digest = s(&r["digest"]);
        let status = if r["status"]["valid"] == true {
            "valid".to_string()
        } else {
            format!(
                "{}: {}",
                s(&r["status"]["check"]).replace('_', " "),
                s(&r["status"]["detail"])
            )
        };
        println!(
            "{:<12}  {:<24}  {:<19}  {:<25}  {status}",
            short_id(&s(&r["id"])),
            s(&r["approver"]),
            digest.get(..19).unwrap_or(&digest),
            s(&r["expires"]),
        );
    }
    Ok(shipline_core::exit::OK)
}

fn show(config: &ConfigArg, env: &str, id: &str, json: bool) -> anyhow::Result<i32> {
    let cfg = config.load()?;
    let env = environment(&cfg, env)?;
    let policy = policy(env)?;
    let store = open_store(&cfg)?;
    let dir = ApprovalDir::in_store(&store, &env.name);
    let id = dir.resolve(id).map_err(approval_error)?;
    let c = dir.load(&id).map_err(approval_error)?;
    let revocations = dir.revocations().map_err(approval_error)?;
    let (parsed, status) = status_of(policy, &env.name, None, &revocations, &c)?;
    let payload_path = dir.payload_path(&id);
    let sig_path = dir.signature_path(&id);
    let identity = parsed
        .as_ref()
        .map(|a| a.approver.clone())
        .unwrap_or_else(|| "IDENTITY".into());
    let verify_cmd = format!(
        "shipline approvals allowed-signers {} > allowed_signers && ssh-keygen -Y verify -f allowed_signers -I {identity} -n {NAMESPACE} -s {} < {}",
        env.name,
        sig_path.display(),
        payload_path.display()
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": 1,
                "id": id,
                "payload": payload_path,
                "signature": sig_path,
                "approval": parsed,
                "status": status,
                "revocation": revocations.find(&id),
                "verify_command": verify_cmd,
            }))?
        );
        return Ok(shipline_core::exit::OK);
    }
    println!("id:          {id}");
    if let Some(a) = &parsed {
        println!("environment: {}", a.environment);
        println!("image:       {}@{}", a.image, a.digest);
        println!("commit:      {}", a.commit.as_deref().unwrap_or("-"));
        println!("scan:        {}", a.scan_verdict.as_deref().unwrap_or("-"));
        println!("requester:   {}", a.requester);
        println!("approver:    {}", a.approver);
        println!("created:     {}", a.created.to_rfc3339());
        println!("expires:     {}", a.expires.to_rfc3339());
        println!("reason:      {}", a.reason.as_deref().unwrap_or("-"));
    } else {
        println!("payload:     (does not parse as an approval)");
    }
    if status["valid"] == true {
        println!("status:      valid");
    } else {
        println!(
            "status:      {}: {}",
            status["check"].as_str().unwrap_or("?").replace('_', " "),
            status["detail"].as_str().unwrap_or("")
        );
    }
    println!(
        "files:       {} + {}",
        payload_path.display(),
        sig_path.display()
    );
    println!("verify:      {verify_cmd}");
    Ok(shipline_core::exit::OK)
}

#[allow(clippy::too_many_arguments)]
fn revoke(
    config: &ConfigArg,
    env: &str,
    id: &str,
    reason: Option<String>,
    by: Option<String>,
    push: Option<Vec<String>>,
    json: bool,
    global: &Global,
) -> anyhow::Result<i32> {
    let cfg = config.load()?;
    let env = environment(&cfg, env)?;
    let store = open_store(&cfg)?;
    let dir = ApprovalDir::in_store(&store, &env.name);
    let id = dir.resolve(id).map_err(approval_error)?;
    let revoked_by = by
        .or_else(|| git(&cfg.root, &["config", "user.email"]))
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let rev = dir
        .revoke(Revocation {
            id: id.clone(),
            revoked_by,
            revoked_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 0),
            reason,
        })
        .map_err(approval_error)?;
    if let Err(e) = store.append_audit(&serde_json::json!({
        "event": "approval_revoked",
        "time": rev.revoked_at,
        "environment": env.name,
        "id": id,
        "by": rev.revoked_by,
    })) {
        global.warn(format!(
            "failed to record the revocation in the audit log: {e}"
        ));
    }
    let pushed = match push {
        None => None,
        Some(insecure) => Some(push_revocation(&cfg, &insecure, &dir, &rev)?),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": 1,
                "revocation": rev,
                "artifact": pushed,
            }))?
        );
    } else {
        println!(
            "revoked {} for {} (by {} at {})",
            short_id(&id),
            env.name,
            rev.revoked_by,
            rev.revoked_at.to_rfc3339()
        );
        if let Some(a) = &pushed {
            println!("attached to the image in the registry as {a}");
        }
    }
    Ok(shipline_core::exit::OK)
}

/// Attaches a revocation to the image its approval approves; returns the artifact digest.
/// The revocation is already in the local store: a failure here is reported (exit 3) with
/// how to retry, and loses nothing.
fn push_revocation(
    config: &Config,
    insecure: &[String],
    dir: &ApprovalDir,
    rev: &Revocation,
) -> anyhow::Result<String> {
    let signed = dir
        .load_all()
        .map_err(approval_error)?
        .into_iter()
        .find(|a| a.id() == rev.id)
        .ok_or_else(|| {
            CliError::usage(format!(
                "approval {} is not in the local store, so the image it approves is unknown",
                short_id(&rev.id)
            ))
        })?;
    let approval = signed
        .approval_unverified()
        .map_err(|e| CliError::tool(format!("failed to read approval {}: {e}", rev.id)))?;
    let reference = shipline_registry::Reference::parse(&approval.image)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let host = reference.registry().to_string();
    with_client(config, insecure, &host, async |client| {
        let digest = approval::push_revocation(client, &approval.image, &approval.digest, rev)
            .await
            .map_err(|e| {
                CliError::tool(format!(
                    "the revocation is recorded locally but could not be attached in the registry: {}; run `shipline approvals revoke` with --push again",
                    approval_error(e)
                ))
            })?;
        Ok(digest.to_string())
    })
}

/// Where `approvals verify --registry` looks.
struct RemoteLookup {
    image: Option<String>,
    insecure: Vec<String>,
}

/// Inside GitHub Actions: the step summary and, on refusal, an error annotation.
fn actions_report(
    gh: &GithubActions,
    result: &Result<approval::ApprovalDecision, ApprovalError>,
    global: &Global,
) {
    let summary = match result {
        Ok(d) => format!(
            "### Approval check: passed\n\n**{}** `{}`: {} of {} required approval(s) ({})\n",
            d.environment,
            d.digest,
            d.approvers().len(),
            d.required,
            d.approvers().join(", ")
        ),
        Err(e) => {
            println!(
                "{}",
                shipline_core::ci::annotation(
                    shipline_core::ci::AnnotationLevel::Error,
                    None,
                    None,
                    Some("approval refused"),
                    &e.to_string()
                )
            );
            let mut md = format!("### Approval check: refused\n\n{e}\n");
            if let Some(r) = e.refusal().filter(|r| !r.rejected.is_empty()) {
                md.push_str("\n| approval | approver | check | detail |\n|---|---|---|---|\n");
                for x in &r.rejected {
                    md.push_str(&format!(
                        "| `{}` | {} | {} | {} |\n",
                        short_id(&x.id),
                        x.approver.as_deref().unwrap_or("-"),
                        x.check,
                        x.detail.replace('|', "\\|")
                    ));
                }
            }
            md
        }
    };
    if let Err(e) = gh.append_summary(&summary) {
        global.warn(e);
    }
}

fn verify(
    config: &ConfigArg,
    env: &str,
    digest: &str,
    remote: Option<RemoteLookup>,
    json: bool,
    global: &Global,
) -> anyhow::Result<i32> {
    let cfg = config.load()?;
    let env = environment(&cfg, env)?;
    let store = open_store(&cfg)?;
    approval::validate_digest(digest).map_err(approval_error)?;
    let fetched = match remote {
        None => Ok(approval::RemoteApprovals::default()),
        Some(r) => {
            let repository = match &r.image {
                Some(i) => split_image(i).0,
                None => cfg.image.repository.clone(),
            };
            fetch_from_registry(&cfg, &r.insecure, &repository, digest)?
        }
    };
    let result = approval::check_for_deploy_remote(&store, env, digest, Utc::now(), || fetched);
    if let Some(gh) = GithubActions::detect(|k| std::env::var(k).ok()) {
        actions_report(&gh, &result, global);
    }
    match result {
        Ok(decision) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "version": 1, "approved": true, "decision": decision
                    }))?
                );
            } else {
                println!(
                    "approved: {} of {} required approval(s) for {} at {} ({})",
                    decision.approvers().len(),
                    decision.required,
                    decision.environment,
                    decision.digest,
                    decision.approvers().join(", ")
                );
            }
            Ok(shipline_core::exit::OK)
        }
        Err(ApprovalError::Refused(refusal)) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "version": 1, "approved": false, "refusal": refusal
                }))?
            );
            Ok(shipline_core::exit::FAILED)
        }
        Err(e) => Err(approval_error(e)),
    }
}

/// Arguments of `shipline ci`.
#[derive(Debug, clap::Args)]
pub struct CiArgs {
    #[command(subcommand)]
    pub command: CiCommand,
}

/// `shipline ci` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CiCommand {
    /// Generate GitHub Actions workflows (one per environment) from shipline.toml.
    Github(GithubArgs),
}

/// Arguments of `shipline ci github`.
#[derive(Debug, clap::Args)]
pub struct GithubArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Directory to write the workflows to (relative to the current directory).
    #[arg(long, value_name = "DIR", default_value = ".github/workflows")]
    pub output: PathBuf,
    /// Print the workflows on stdout instead of writing them.
    #[arg(long, conflicts_with = "check")]
    pub stdout: bool,
    /// Do not write; exit 1 when the files in --output differ from what would be generated.
    #[arg(long)]
    pub check: bool,
    /// Self-hosted runner label of an environment (`ENV=LABEL`; default: the environment name).
    #[arg(long = "runner", value_name = "ENV=LABEL")]
    pub runners: Vec<String>,
    /// GitHub Environment of an environment (`ENV=NAME`; default: `production` for an approval
    /// environment named prod, the environment's name for other approval environments).
    #[arg(long = "github-environment", value_name = "ENV=NAME")]
    pub github_environments: Vec<String>,
    /// Command that installs shipline on GitHub-hosted runners.
    #[arg(long, value_name = "CMD")]
    pub install_command: Option<String>,
}

fn key_values(values: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::usage(format!("{flag} expects ENV=VALUE, got {v:?}")))
        })
        .collect()
}

/// Runs `shipline ci`.
pub fn ci(args: CiArgs, global: &Global) -> anyhow::Result<i32> {
    let CiCommand::Github(args) = args.command;
    let config = args.config.load()?;
    let mut options = GithubOptions::default();
    for (env, label) in key_values(&args.runners, "--runner")? {
        environment(&config, &env)?;
        options.runner_labels.insert(env, label);
    }
    for (env, name) in key_values(&args.github_environments, "--github-environment")? {
        environment(&config, &env)?;
        options.github_environments.insert(env, name);
    }
    if let Some(cmd) = args.install_command {
        options.install_command = cmd;
    }
    let workflows =
        generate_workflows(&config, &options).map_err(|e| CliError::usage(e.to_string()))?;
    if args.stdout {
        for w in &workflows {
            println!("# --- {} ---", w.file_name);
            print!("{}", w.contents);
        }
        return Ok(shipline_core::exit::OK);
    }
    if args.check {
        let stale = stale_workflows(&args.output, &workflows);
        if stale.is_empty() {
            println!("workflows in {} are up to date", args.output.display());
            return Ok(shipline_core::exit::OK);
        }
        for f in &stale {
            println!("{}: out of date", args.output.join(f).display());
        }
        global.warn("run `shipline ci github` to regenerate them");
        return Ok(shipline_core::exit::FAILED);
    }
    let paths = write_workflows(&args.output, &workflows).map_err(|e| {
        let msg = match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        };
        CliError::tool(msg)
    })?;
    for p in paths {
        println!("{}", p.display());
    }
    Ok(shipline_core::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn split_image_strips_tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(split_image("ghcr.io/a/b"), ("ghcr.io/a/b".into(), None));
        assert_eq!(split_image("ghcr.io/a/b:v1"), ("ghcr.io/a/b".into(), None));
        assert_eq!(
            split_image(&format!("localhost:5000/a:v1@{d}")),
            ("localhost:5000/a".into(), Some(d.clone()))
        );
        assert_eq!(
            split_image("localhost:5000/a"),
            ("localhost:5000/a".into(), None)
        );
    }
}
