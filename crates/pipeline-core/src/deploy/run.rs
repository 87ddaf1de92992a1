//! The deploy sequence: lock, repair, preflight, env file, hook, rollout, verify, rollback,
//! record, prune.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::compose::{ComposeCli, ComposeModel, ComposeProject};
use super::lock::{DeployLock, LockState, Phase};
use super::process::Proc;
use super::record::{self, DeploymentRecord, Outcome};
use super::rollout::Ctx;
use super::{envwrite, step, DeployError, DeployEvent, DeployRequest, DeployTarget, Strategy};
use crate::engine::Engine;

/// What went wrong in a deploy that was rolled back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailureReport {
    /// The step that failed (`hook`, `rollout`, `verify`, ...).
    pub step: String,
    /// The error.
    pub message: String,
    /// Failing containers with their last log lines.
    pub containers: Vec<(String, Vec<String>)>,
    /// Set when restoring the previous version failed too.
    pub rollback_error: Option<String>,
}

/// The result of a deploy that got past preflight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeployReport {
    /// The record written.
    pub record: DeploymentRecord,
    /// The compose CLI used.
    pub compose: ComposeCli,
    /// An interrupted deploy found and repaired before this one.
    pub repaired: Option<LockState>,
    /// Set when the deploy failed (and was rolled back).
    pub failure: Option<FailureReport>,
    /// Image references pruned afterwards.
    pub pruned: Vec<String>,
}

impl DeployReport {
    /// True when the new version runs, verified.
    pub fn succeeded(&self) -> bool {
        self.record.outcome == Outcome::Succeeded
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn project(t: &DeployTarget, cli: ComposeCli, timeout: Duration) -> ComposeProject {
    ComposeProject {
        cli,
        project: t.compose_project.clone(),
        files: t.compose_files.clone(),
        env_file: t.env_file.clone(),
        dir: t.compose_dir.clone(),
        tag_variable: t.tag_variable.clone(),
        timeout,
    }
}

/// Deploys `req.tag` to `req.target`. Returns `Err` only when nothing was changed (lock busy,
/// preflight failed, infrastructure missing); once the env file was written the result is a
/// report whose outcome says whether the new version runs or the previous one was restored.
pub async fn deploy(
    engine: &Engine,
    req: &DeployRequest,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<DeployReport, DeployError> {
    let t = &req.target;
    let locks = t.store_dir.join("locks");
    step(on, "lock", format!("locking environment {}", t.env));
    let (mut lock, interrupted) =
        DeployLock::acquire(&locks, &t.env, &req.reason, req.lock_wait).await?;
    let cli = match ComposeCli::detect().await {
        Ok(cli) => cli,
        Err(e) => {
            if interrupted.is_none() {
                lock.release()?;
            }
            return Err(e);
        }
    };
    step(
        on,
        "preflight",
        format!("compose CLI: {} {}", cli.display_name(), cli.version),
    );
    let compose = project(t, cli.clone(), req.compose_timeout);
    let repaired = match interrupted {
        Some(prev) => {
            repair(engine, t, &compose, &prev, on).await?;
            lock.write()?;
            Some(prev)
        }
        None => None,
    };
    let result = deploy_locked(engine, req, compose, &mut lock, on).await;
    match result {
        Ok(mut report) => {
            report.repaired = repaired;
            if report.record.outcome == Outcome::Failed {
                // the stack state is unknown: keep the journal so the next deploy repairs
                drop(lock);
            } else {
                lock.release()?;
            }
            Ok(report)
        }
        Err(e) => {
            let changed = lock.state.phase > Phase::Preflight;
            let _ = record::audit(
                &t.store_dir,
                &serde_json::json!({
                    "event": "deploy_refused", "env": t.env, "tag": req.tag,
                    "error": e.to_string(), "at": now(),
                }),
            );
            if changed {
                // failed after the env file was touched and before a record: keep the
                // journal so the next deploy (or `lock release`) repairs
                drop(lock);
            } else {
                lock.release()?;
            }
            Err(e)
        }
    }
}

/// Repairs an interrupted deploy from its journal: when it had touched the env file, restores
/// it and the previous version and records a `repaired` outcome; otherwise only notes the
/// recovered lock in the audit log.
async fn repair(
    engine: &Engine,
    t: &DeployTarget,
    compose: &ComposeProject,
    prev: &LockState,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<(), DeployError> {
    let started = Instant::now();
    let alive = super::lock::pid_alive(prev.pid) && prev.host == super::lock::hostname();
    on(DeployEvent::Warning {
        message: format!(
            "the previous deploy of {} (pid {} on {}, {}, since {}) was interrupted in phase {:?}{}; repairing",
            t.env,
            prev.pid,
            prev.host,
            prev.reason,
            prev.since,
            prev.phase,
            if alive { " (its pid is alive but does not hold the lock)" } else { "" }
        ),
    });
    if prev.phase < Phase::EnvWritten {
        // nothing was changed yet: only the lock needs recovering
        record::audit(
            &t.store_dir,
            &serde_json::json!({
                "event": "lock_recovered", "env": t.env, "holder": prev, "at": now(),
            }),
        )?;
        step(on, "repair", "nothing had changed; lock recovered".into());
        return Ok(());
    }
    let started_at = now();
    envwrite::restore(&t.env_file, prev.env_backup.as_deref())?;
    step(
        on,
        "repair",
        format!("restored {} from the backup", t.env_file.display()),
    );
    let model = ComposeModel::from_json(&compose.config(&t.env_file).await?);
    let ctx = Ctx {
        engine,
        target: t,
        compose: compose.clone(),
        on,
        rolling: rolling_services(t, &model, prev.previous_tag.as_deref().unwrap_or("")),
        services: model.services.clone(),
    };
    let prev_image = prev.previous_tag.as_deref().map(|p| t.image(p));
    ctx.restore_previous(prev_image.as_deref(), &prev.scales)
        .await?;
    let rec = DeploymentRecord {
        version: 1,
        id: record_id(),
        env: t.env.clone(),
        image: prev_image.clone().unwrap_or_default(),
        tag: prev.previous_tag.clone().unwrap_or_default(),
        image_id: None,
        digest: None,
        previous_tag: prev.new_tag.clone(),
        strategy: t.strategy.as_str().into(),
        who: format!("{}@{}", super::lock::user_name(), super::lock::hostname()),
        reason: format!("repair of interrupted deploy: {}", prev.reason),
        started_at,
        finished_at: now(),
        duration_ms: started.elapsed().as_millis() as u64,
        outcome: Outcome::Repaired,
        error: Some(format!("interrupted in phase {:?}", prev.phase)),
    };
    record::append(&t.store_dir, &rec)?;
    Ok(())
}

fn record_id() -> String {
    format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        rand::random::<u32>()
    )
}

/// The services the rolling strategy rolls: the configured ones, or every service whose image
/// is this repository's.
fn rolling_services(t: &DeployTarget, model: &ComposeModel, tag: &str) -> Vec<String> {
    if t.strategy != Strategy::Rolling {
        return Vec::new();
    }
    if !t.rolling_services.is_empty() {
        return t.rolling_services.clone();
    }
    let prefix = format!("{}:", t.repository);
    let _ = tag;
    model
        .images
        .iter()
        .filter(|(_, img)| img.starts_with(&prefix))
        .map(|(s, _)| s.clone())
        .collect()
}

/// A path in the store's tmp dir for validating compose with the new tag.
fn candidate_env_file(t: &DeployTarget, tag: &str) -> Result<PathBuf, DeployError> {
    let dir = t.store_dir.join("tmp");
    std::fs::create_dir_all(&dir).map_err(DeployError::io(&dir))?;
    let path = dir.join(format!("{}.env", t.env));
    let current = match std::fs::read(&t.env_file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(DeployError::io(&t.env_file)(e)),
    };
    {
        // a copy of the env file may hold secrets: owner-only from the first byte
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(DeployError::io(&path))?;
        f.write_all(&current).map_err(DeployError::io(&path))?;
    }
    envwrite::set_var(&path, &t.tag_variable, tag, &dir.join("unused-backups"))?;
    Ok(path)
}

fn check_writable(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let probe = dir.join(format!(".shipline-probe-{:08x}", rand::random::<u32>()));
    std::fs::write(&probe, b"").map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("{} is not writable: {e}", path.display()))?;
    }
    Ok(())
}

struct Preflight {
    model: ComposeModel,
    rolling: Vec<String>,
    previous_tag: Option<String>,
    image_id: String,
}

async fn preflight(
    engine: &Engine,
    req: &DeployRequest,
    compose: &ComposeProject,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<Preflight, DeployError> {
    let t = &req.target;
    let fail = |reason: String| DeployError::Preflight {
        env: t.env.clone(),
        reason,
    };
    if std::env::var_os(&t.tag_variable).is_some() {
        return Err(fail(format!(
            "{} is set in the process environment, where it would silently override the env file {}; unset it",
            t.tag_variable,
            t.env_file.display()
        )));
    }
    if t.compose_files.is_empty() {
        return Err(fail("no compose files configured".into()));
    }
    for f in &t.compose_files {
        if !f.is_file() {
            return Err(fail(format!("compose file {} does not exist", f.display())));
        }
    }
    check_writable(&t.env_file).map_err(&fail)?;
    let previous_tag = envwrite::read_var(&t.env_file, &t.tag_variable)?;
    let candidate = candidate_env_file(t, &req.tag)?;
    let config = compose.config(&candidate).await;
    let _ = std::fs::remove_file(&candidate);
    let model = ComposeModel::from_json(&config?);
    step(
        on,
        "preflight",
        format!("compose config valid with {}={}", t.tag_variable, req.tag),
    );
    for net in &model.external_networks {
        if engine.network_exists(net).await? {
            continue;
        }
        if t.create_networks.contains(net) {
            engine.ensure_network(net).await?;
            step(on, "preflight", format!("created external network {net}"));
        } else {
            return Err(fail(format!(
                "external network {net} does not exist; create it or list it in create_networks"
            )));
        }
    }
    let rolling = rolling_services(t, &model, &req.tag);
    if t.strategy == Strategy::Rolling {
        if rolling.is_empty() {
            return Err(fail(format!(
                "strategy rolling but no service uses {} and none is listed in rollout.services",
                t.repository
            )));
        }
        for s in &rolling {
            if !model.services.contains(s) {
                return Err(fail(format!(
                    "rolling service {s} is not in the compose files"
                )));
            }
            if let Some((_, why)) = model.unrollable.iter().find(|(n, _)| n == s) {
                return Err(fail(format!("service {s} cannot roll: {why}")));
            }
        }
    }
    let image = t.image(&req.tag);
    let local = engine.image_exists(&image).await?;
    // the image carries `want` by a repo digest (pulled or pushed), or it is the image `want`
    // names by its config digest (built here, never pulled)
    let by_repo_digest = |info: &crate::engine::ImageInfo, want: &str| {
        info.digests
            .iter()
            .any(|d| d.rsplit_once('@').map(|(_, d)| d) == Some(want))
    };
    let by_config =
        |info: &crate::engine::ImageInfo| req.digest_config.as_deref() == Some(info.id.as_str());
    let carries =
        |info: &crate::engine::ImageInfo, want: &str| by_repo_digest(info, want) || by_config(info);
    match &req.digest {
        None if !local => {
            step(on, "pull", format!("pulling {image}"));
            pull(
                engine,
                &t.repository,
                &req.tag,
                req.pull_credentials.as_ref(),
            )
            .await?;
        }
        None => {}
        Some(want) => {
            let fresh = local && carries(&engine.image_digests(&image).await?, want);
            if !fresh {
                // Pull exactly that digest (the engine verifies the bytes), then give it the
                // tag: the tag never names bytes that were not verified, even when the deploy
                // is refused later. A local tag naming other bytes (it moved, or was built
                // elsewhere) is replaced only by the verified image.
                let by_digest = format!("{}@{want}", t.repository);
                step(
                    on,
                    "pull",
                    if local {
                        format!("local {image} is not {want}; pulling {by_digest}")
                    } else {
                        format!("pulling {by_digest}")
                    },
                );
                pull(engine, &t.repository, want, req.pull_credentials.as_ref()).await?;
                engine.tag(&by_digest, &image).await?;
            }
        }
    }
    let info = engine.image_digests(&image).await?;
    if let Some(want) = &req.digest {
        if !carries(&info, want) {
            return Err(DeployError::DigestMismatch {
                image,
                expected: want.clone(),
                found: info.digests,
            });
        }
        if !by_repo_digest(&info, want) {
            step(
                on,
                "pull",
                format!("digest {want} verified (the image ID is its config digest)"),
            );
        } else {
            step(on, "pull", format!("digest {want} verified"));
        }
    }
    Ok(Preflight {
        model,
        rolling,
        previous_tag,
        image_id: info.id,
    })
}

/// Pulls `repository` at `tag_or_digest` (`v1` or `sha256:...`) with the given login.
async fn pull(
    engine: &Engine,
    repo: &str,
    tag_or_digest: &str,
    credentials: Option<&shipline_registry::Credentials>,
) -> Result<(), DeployError> {
    use futures::StreamExt;
    use shipline_registry::Credentials;
    let tag = tag_or_digest;
    let image = if tag.starts_with("sha256:") {
        format!("{repo}@{tag}")
    } else {
        format!("{repo}:{tag}")
    };
    let auth = credentials.and_then(|c| match c {
        Credentials::Anonymous => None,
        Credentials::Basic { username, password } => Some(bollard::auth::DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.expose().to_string()),
            ..Default::default()
        }),
        Credentials::IdentityToken(t) => Some(bollard::auth::DockerCredentials {
            identitytoken: Some(t.expose().to_string()),
            ..Default::default()
        }),
        Credentials::Bearer(t) => Some(bollard::auth::DockerCredentials {
            registrytoken: Some(t.expose().to_string()),
            ..Default::default()
        }),
    });
    let mut s = engine.docker().create_image(
        Some(bollard::image::CreateImageOptions::<String> {
            from_image: repo.to_string(),
            tag: tag.to_string(),
            ..Default::default()
        }),
        None,
        auth,
    );
    while let Some(item) = s.next().await {
        if let Err(e) = item {
            return Err(DeployError::MissingImage {
                image: image.to_string(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

async fn deploy_locked(
    engine: &Engine,
    req: &DeployRequest,
    compose: ComposeProject,
    lock: &mut DeployLock,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<DeployReport, DeployError> {
    let t = &req.target;
    let started = Instant::now();
    let started_at = now();
    let pf = preflight(engine, req, &compose, on).await?;
    if let Some(gate) = &req.gate {
        let input = super::GateInput {
            env: t.env.clone(),
            image: t.image(&req.tag),
            image_id: pf.image_id.clone(),
            digest: req.digest.clone(),
        };
        (gate.0)(&input).map_err(|reason| DeployError::Refused {
            env: t.env.clone(),
            reason,
        })?;
        step(on, "gate", "passed".into());
    }
    let ctx = Ctx {
        engine,
        target: t,
        compose: compose.clone(),
        on,
        services: pf.model.services.clone(),
        rolling: pf.rolling.clone(),
    };
    let mut scales = Vec::new();
    for s in &pf.rolling {
        let n = engine
            .project_container_ids(&t.compose_project, Some(s), true)
            .await?
            .len();
        scales.push((s.clone(), n));
    }
    // 3. the env file
    lock.state.new_tag = Some(req.tag.clone());
    lock.state.previous_tag = pf.previous_tag.clone();
    lock.state.scales = scales.clone();
    lock.write()?;
    let backup_dir = t.store_dir.join("backups").join(&t.env);
    let backup = envwrite::set_var(&t.env_file, &t.tag_variable, &req.tag, &backup_dir)?;
    lock.state.env_backup = backup.clone();
    lock.set_phase(Phase::EnvWritten)?;
    step(
        on,
        "env",
        format!(
            "{}: {}={} (was {})",
            t.env_file.display(),
            t.tag_variable,
            req.tag,
            pf.previous_tag.as_deref().unwrap_or("unset")
        ),
    );
    let image = t.image(&req.tag);
    let outcome = apply(&ctx, req, lock, &pf, &scales, &image).await;
    let (outcome, failure) = match outcome {
        Ok(()) => (Outcome::Succeeded, None),
        Err((failed_step, err)) => {
            let containers = ctx.failing_logs().await;
            on(DeployEvent::Warning {
                message: format!("{failed_step} failed: {err}; rolling back"),
            });
            lock.set_phase(Phase::Rollback)?;
            let rb = async {
                envwrite::restore(&t.env_file, backup.as_deref())?;
                step(on, "rollback", format!("restored {}", t.env_file.display()));
                let prev_image = pf.previous_tag.as_deref().map(|p| t.image(p));
                ctx.restore_previous(prev_image.as_deref(), &scales).await
            }
            .await;
            let rollback_error = rb.err().map(|e| e.to_string());
            let outcome = if rollback_error.is_some() {
                Outcome::Failed
            } else {
                Outcome::RolledBack
            };
            (
                outcome,
                Some(FailureReport {
                    step: failed_step.to_string(),
                    message: err.to_string(),
                    containers,
                    rollback_error,
                }),
            )
        }
    };
    lock.set_phase(Phase::Record)?;
    let rec = DeploymentRecord {
        version: 1,
        id: record_id(),
        env: t.env.clone(),
        image: image.clone(),
        tag: req.tag.clone(),
        image_id: Some(pf.image_id.clone()),
        digest: req.digest.clone(),
        previous_tag: pf.previous_tag.clone(),
        strategy: t.strategy.as_str().into(),
        who: format!("{}@{}", super::lock::user_name(), super::lock::hostname()),
        reason: req.reason.clone(),
        started_at,
        finished_at: now(),
        duration_ms: started.elapsed().as_millis() as u64,
        outcome,
        error: failure
            .as_ref()
            .map(|f| format!("{}: {}", f.step, f.message)),
    };
    record::append(&t.store_dir, &rec)?;
    let pruned = if outcome == Outcome::Succeeded {
        prune(engine, t, &req.tag, pf.previous_tag.as_deref(), on).await
    } else {
        Vec::new()
    };
    Ok(DeployReport {
        record: rec,
        compose: compose.cli.clone(),
        repaired: None,
        failure,
        pruned,
    })
}

/// Steps 4–6: hook, rollout, verify. Errors carry the step name.
async fn apply(
    ctx: &Ctx<'_>,
    req: &DeployRequest,
    lock: &mut DeployLock,
    pf: &Preflight,
    scales: &[(String, usize)],
    image: &str,
) -> Result<(), (&'static str, DeployError)> {
    let t = &req.target;
    if let Some(hook) = &t.deploy_hook {
        lock.set_phase(Phase::Hook).map_err(|e| ("hook", e))?;
        step(ctx.on, "hook", format!("running {}", hook.display()));
        let mut p = Proc::new(hook, Vec::new(), req.hook_timeout);
        p.cwd = Some(t.compose_dir.clone());
        p.env = vec![
            ("SHIPLINE_ENV".into(), t.env.clone()),
            (t.tag_variable.clone(), req.tag.clone()),
            ("IMAGE_TAG".into(), req.tag.clone()),
            (
                "SHIPLINE_PREVIOUS_TAG".into(),
                pf.previous_tag.clone().unwrap_or_default(),
            ),
        ];
        let out = p.run().await.map_err(|source| {
            (
                "hook",
                DeployError::Spawn {
                    program: hook.clone(),
                    source,
                },
            )
        })?;
        if !out.success() {
            return Err((
                "hook",
                DeployError::Hook {
                    path: hook.clone(),
                    code: out.code,
                    tail: out.tail(10),
                },
            ));
        }
    }
    lock.set_phase(Phase::Rollout).map_err(|e| ("rollout", e))?;
    ctx.roll_out(scales).await.map_err(|e| ("rollout", e))?;
    lock.set_phase(Phase::Verify).map_err(|e| ("verify", e))?;
    step(
        ctx.on,
        "verify",
        format!("waiting for every service on {image} to be healthy"),
    );
    ctx.verify(image, true).await.map_err(|e| ("verify", e))?;
    step(ctx.on, "verify", "all services healthy".into());
    Ok(())
}

/// Removes this repository's images older than the retention period and older than the current
/// image, keeping the current and previous tags and the `keep` newest. Images in use are left alone (the engine refuses).
async fn prune(
    engine: &Engine,
    t: &DeployTarget,
    current: &str,
    previous: Option<&str>,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Vec<String> {
    let Some(max_age) = t.prune_after else {
        return Vec::new();
    };
    let Ok(mut images) = engine.list_repository_images(&t.repository).await else {
        return Vec::new();
    };
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    let keep_refs = [Some(t.image(current)), previous.map(|p| t.image(p))];
    let cutoff = chrono::Utc::now().timestamp() - max_age.as_secs() as i64;
    // never prune what is newer than the current image (built, maybe not deployed yet)
    let current_created = images
        .iter()
        .find(|i| i.tags.contains(&t.image(current)))
        .map_or(i64::MIN, |i| i.created);
    let mut pruned = Vec::new();
    for (idx, img) in images.iter().enumerate() {
        if idx < t.keep || img.created >= cutoff || img.created >= current_created {
            continue;
        }
        if img
            .tags
            .iter()
            .any(|tag| keep_refs.contains(&Some(tag.clone())))
        {
            continue;
        }
        for tag in &img.tags {
            match engine.remove_image(tag).await {
                Ok(()) => pruned.push(tag.clone()),
                Err(e) => on(DeployEvent::Warning {
                    message: format!("prune: {e}"),
                }),
            }
        }
    }
    if !pruned.is_empty() {
        step(on, "prune", format!("removed {pruned:?}"));
    }
    pruned
}

/// Redeploys an earlier version through the same path as [`deploy`]: `to`, or the last
/// successful deployment whose tag differs from the one the env file holds now.
pub async fn rollback(
    engine: &Engine,
    target: DeployTarget,
    to: Option<String>,
    lock_wait: Duration,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<DeployReport, DeployError> {
    let tag = match to {
        Some(t) => t,
        None => {
            let current = envwrite::read_var(&target.env_file, &target.tag_variable)?;
            let records = record::history(&target.store_dir, &target.env)?;
            record::last_good(&records, current.as_deref())
                .map(|r| r.tag)
                .ok_or_else(|| DeployError::NothingToRollBack {
                    env: target.env.clone(),
                })?
        }
    };
    let mut req = DeployRequest::new(target, tag.clone());
    req.reason = format!("rollback to {tag}");
    req.lock_wait = lock_wait;
    deploy(engine, &req, on).await
}

/// `shipline lock release ENV`: refuses while a live process holds the lock; repairs an
/// interrupted deploy (restoring the env file and the previous version) and clears its journal.
pub async fn release_lock(
    engine: &Engine,
    target: &DeployTarget,
    on: &(dyn Fn(DeployEvent) + Send + Sync),
) -> Result<Option<LockState>, DeployError> {
    let locks = target.store_dir.join("locks");
    let (lock, interrupted) =
        DeployLock::acquire(&locks, &target.env, "lock release", Duration::ZERO).await?;
    if let Some(prev) = &interrupted {
        let cli = ComposeCli::detect().await?;
        let compose = project(target, cli, Duration::from_secs(600));
        repair(engine, target, &compose, prev, on).await?;
    }
    lock.release()?;
    Ok(interrupted)
}
