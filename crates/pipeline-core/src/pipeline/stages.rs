//! The built-in stages. One type, [`PipelineStage`], dispatches on the planned stage id so
//! every stage shares the run's typed state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use shipline_registry::{CopyOptions, ImageStore, Reference};
use shipline_scanners::ScannerRun;

use super::{Destination, PipelineOptions, RunState};
use crate::config::{Config, DeployMode, ScannerName};
use crate::engine::{BuildRequest, ContextPolicy, Engine, EngineEvent, TestRequest};
use crate::executor::{Stage, StageContext, StageError, StageErrorKind, StageOutput};
use crate::plan::{PlannedStage, StageKind};
use crate::run::{FindingsSummary, ImageInfo, ScannerStatus};
use crate::store::{atomic_write, Store};

pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub opts: PipelineOptions,
    pub destination: Destination,
    pub run_id: String,
    pub branch: Option<String>,
    pub environment: Option<String>,
    pub state: Arc<Mutex<RunState>>,
    pub engine: tokio::sync::OnceCell<Engine>,
}

impl Shared {
    async fn engine(&self) -> Result<&Engine, StageError> {
        self.engine
            .get_or_try_init(Engine::connect)
            .await
            .map_err(|e| StageError::tool(chain(&e)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn image(&self) -> Result<ImageInfo, StageError> {
        self.state()
            .image
            .clone()
            .ok_or_else(|| StageError::failed("no image: the build (or promote) stage did not run"))
    }

    fn local_ref(&self, tag: &str) -> String {
        format!("{}:{tag}", self.config.image.repository)
    }
}

/// Formats an error with its causes.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// A built-in stage.
pub struct PipelineStage {
    id: String,
    kind: StageKind,
    needs: Vec<String>,
    shared: Arc<Shared>,
}

impl PipelineStage {
    pub(crate) fn new(p: &PlannedStage, shared: Arc<Shared>) -> Self {
        PipelineStage {
            id: p.id.clone(),
            kind: p.kind,
            needs: p.needs.clone(),
            shared,
        }
    }
}

impl Stage for PipelineStage {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> StageKind {
        self.kind
    }
    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }
    fn run(&self, ctx: StageContext) -> BoxFuture<'_, Result<StageOutput, StageError>> {
        Box::pin(async move {
            let s = &self.shared;
            match self.id.as_str() {
                "build" => build(s, &ctx).await,
                "test" => test(s, &ctx).await,
                "scan:trivy" => scan(s, &ctx, ScannerName::Trivy).await,
                "scan:semgrep" => scan(s, &ctx, ScannerName::Semgrep).await,
                "scan:audit" => scan(s, &ctx, ScannerName::Audit).await,
                "scan:sarif" => scan(s, &ctx, ScannerName::Sarif).await,
                "gate" => gate(s, &ctx).await,
                "push" => push(s, &ctx).await,
                "promote" => promote(s, &ctx).await,
                "approve" => approve(s, &ctx).await,
                id if id.starts_with("deploy:") => deploy(s, &ctx, &id["deploy:".len()..]).await,
                other => Err(StageError::not_implemented(other)),
            }
        })
    }
}

fn engine_logger(ctx: &StageContext) -> impl Fn(EngineEvent) + Send + Sync + '_ {
    move |ev| match ev {
        EngineEvent::BuildOutput { line } => ctx.log(line),
        EngineEvent::Warning { message } => ctx.log(format!("warning: {message}")),
        EngineEvent::TestOutput { line, .. } => ctx.log(line),
        EngineEvent::ExportProgress { bytes } => {
            ctx.events.emit(crate::events::Event::StageProgress {
                stage: ctx.stage_id.clone(),
                current: bytes,
                total: None,
                unit: "bytes".into(),
            })
        }
    }
}

/// Renders a tag template (`{sha}`, `{sha7}`, `{branch}`, `{run}`).
pub(crate) fn render_tag(
    template: &str,
    commit: &str,
    branch: Option<&str>,
    run_id: &str,
) -> String {
    let branch = branch
        .unwrap_or("local")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect::<String>();
    template
        .replace("{sha7}", &commit[..commit.len().min(7)])
        .replace("{sha}", commit)
        .replace("{branch}", &branch)
        .replace("{run}", run_id)
}

async fn build(s: &Shared, ctx: &StageContext) -> Result<StageOutput, StageError> {
    let engine = s.engine().await?;
    let commit = &s.opts.commit;
    let mut tags = vec![s.local_ref(commit)];
    for t in &s.config.image.tags {
        let r = s.local_ref(&render_tag(t, commit, s.branch.as_deref(), &s.run_id));
        if !tags.contains(&r) {
            tags.push(r);
        }
    }
    let cfg = &s.config.image;
    let mut req = BuildRequest::new(cfg.context.clone(), tags.clone());
    req.dockerfile = cfg.dockerfile.clone();
    req.build_args = cfg.build_args.clone();
    req.target = cfg.target.clone();
    req.labels = crate::engine::oci_labels(commit, &cfg.repository, chrono::Utc::now());
    req.policy = ContextPolicy {
        allow_env_files: cfg.allow_env_files,
    };
    let log = engine_logger(ctx);
    let built = tokio::select! {
        r = engine.build(&req, &log) => r.map_err(|e| StageError::failed(chain(&e)))?,
        _ = ctx.cancel.cancelled() => return Err(cancelled()),
    };
    s.state().image = Some(ImageInfo {
        repository: cfg.repository.clone(),
        tag: Some(commit.clone()),
        digest: None,
        image_id: Some(built.image_id.clone()),
    });
    Ok(StageOutput::Message(format!(
        "built {} ({})",
        tags.join(", "),
        short(&built.image_id)
    )))
}

fn cancelled() -> StageError {
    StageError {
        kind: StageErrorKind::Cancelled,
        message: "cancelled".into(),
    }
}

fn short(id: &str) -> String {
    match id.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => id.to_string(),
    }
}

async fn test(s: &Shared, ctx: &StageContext) -> Result<StageOutput, StageError> {
    let Some(test) = &s.config.test else {
        return Ok(StageOutput::Message("no test configured".into()));
    };
    let engine = s.engine().await?;
    let image = s.image()?;
    let req = TestRequest {
        image: s.local_ref(image.tag.as_deref().unwrap_or(&s.opts.commit)),
        command: test.command.clone(),
        env: Vec::new(),
        timeout: test.timeout,
    };
    let log = engine_logger(ctx);
    let outcome = tokio::select! {
        r = engine.run_test(&req, &log) => r.map_err(|e| StageError::failed(chain(&e)))?,
        _ = ctx.cancel.cancelled() => return Err(cancelled()),
    };
    if outcome.passed() {
        Ok(StageOutput::Message(format!(
            "`{}` passed",
            test.command.join(" ")
        )))
    } else {
        Err(StageError::failed(format!(
            "`{}` exited {}{}",
            test.command.join(" "),
            outcome.exit_code,
            outcome
                .tail
                .last()
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )))
    }
}

async fn scan(
    s: &Shared,
    ctx: &StageContext,
    which: ScannerName,
) -> Result<StageOutput, StageError> {
    let cfg = &s.config.scan;
    let runs: Vec<ScannerRun> = match which {
        ScannerName::Trivy => {
            let run = match &cfg.trivy.report {
                Some(report) => shipline_scanners::trivy::ingest_file(report),
                None => {
                    let image = s.image()?;
                    let target = shipline_scanners::trivy::TrivyTarget::Image(
                        s.local_ref(image.tag.as_deref().unwrap_or(&s.opts.commit)),
                    );
                    let mut o = shipline_scanners::trivy::TrivyOptions::new(target);
                    if let Some(b) = &cfg.trivy.binary {
                        o.binary = b.clone();
                    }
                    o.offline = cfg.trivy.offline;
                    o.cache_dir = cfg.trivy.cache_dir.clone();
                    o.timeout = cfg.trivy.timeout;
                    tokio::select! {
                        r = shipline_scanners::trivy::run_async(o) => r,
                        _ = ctx.cancel.cancelled() => return Err(cancelled()),
                    }
                }
            };
            vec![run]
        }
        ScannerName::Semgrep => {
            let run = match &cfg.semgrep.report {
                Some(report) => {
                    shipline_scanners::semgrep::ingest_file(report, Some(&s.config.root))
                }
                None => {
                    let mut o = shipline_scanners::semgrep::SemgrepOptions::new(
                        s.config.root.clone(),
                        cfg.semgrep.config.clone(),
                    );
                    if let Some(b) = &cfg.semgrep.binary {
                        o.binary = b.clone();
                    }
                    o.paths = if cfg.semgrep.paths.is_empty() {
                        vec![s.config.image.context.clone()]
                    } else {
                        cfg.semgrep.paths.clone()
                    };
                    o.timeout = cfg.semgrep.timeout;
                    tokio::select! {
                        r = shipline_scanners::semgrep::run_async(o) => r,
                        _ = ctx.cancel.cancelled() => return Err(cancelled()),
                    }
                }
            };
            vec![run]
        }
        ScannerName::Sarif => {
            let mut runs = Vec::new();
            for p in &cfg.sarif {
                runs.extend(shipline_scanners::sarif::ingest_file(
                    p,
                    Some(&s.config.root),
                ));
            }
            runs
        }
        ScannerName::Audit => {
            let config = s.config.clone();
            let environment = s.opts.environment.clone();
            let run = tokio::task::spawn_blocking(move || audit_run(&config, environment))
                .await
                .map_err(|e| StageError::tool(format!("audit task failed: {e}")))?;
            vec![run]
        }
    };
    let mut parts = Vec::new();
    for r in &runs {
        let st = &r.status;
        let what = match st.status {
            shipline_scanners::ScannerState::Ok => {
                format!("{}: {} findings", st.name, r.findings.len())
            }
            // collected, not decided here: the gate fails closed on it unless the policy
            // allows this scanner to be skipped, and says which in the run summary
            _ => format!(
                "{}: DID NOT SCAN ({}); the gate fails closed unless the policy allows skipping {}",
                st.name,
                st.message.as_deref().unwrap_or("no message"),
                st.name
            ),
        };
        ctx.log(what.clone());
        parts.push(what);
    }
    s.state().scanner_runs.extend(runs);
    Ok(StageOutput::Message(parts.join("; ")))
}

/// Audits every environment's compose stack together (cross-stack rules included).
pub(crate) fn audit_run(config: &Config, environment: BTreeMap<String, String>) -> ScannerRun {
    use shipline_scanners::audit::{audit_stacks, AuditOptions};
    let stacks = config.audit_stacks(None);
    let opts = AuditOptions {
        environment,
        base_dir: Some(config.root.clone()),
        ..AuditOptions::default()
    };
    match audit_stacks(&stacks, &config.scan.audit_traefik_config, &opts) {
        Ok(report) => {
            let mut run = ScannerRun::ok(
                "shipline-audit",
                Some(env!("CARGO_PKG_VERSION").to_string()),
                report.findings,
            );
            run.status.warnings = report.warnings;
            run
        }
        Err(e) => ScannerRun::failed("shipline-audit", &e),
    }
}

async fn gate(s: &Shared, ctx: &StageContext) -> Result<StageOutput, StageError> {
    use shipline_scanners::gate::{gate, Baseline, Outcome};
    use shipline_scanners::policy::Policy;
    let policy = match &s.config.scan.policy {
        Some(p) => Policy::from_path(p).map_err(|e| StageError::tool(chain(&e)))?,
        None => Policy::default(),
    };
    let baseline = match &s.config.scan.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| StageError::tool(chain(&e)))?),
        None => None,
    };
    let mut report = shipline_scanners::ScanReport::new();
    let runs = std::mem::take(&mut s.state().scanner_runs);
    for r in runs {
        report.add(r);
    }
    report.sort();
    let verdict = gate(&report, &policy, baseline.as_ref());
    let dir = s.store.reports_dir(&s.run_id);
    // the full reports, a CI step summary and annotations (see `Store::reports_dir`); losing
    // them loses no decision, so a failed write is not the stage's failure
    use shipline_scanners::render as out;
    for (file, text) in [
        ("scan.json", out::render_json(&report, &verdict)),
        ("scan.sarif", out::render_sarif(&report, &verdict)),
        ("scan.md", out::render_markdown(&report, &verdict)),
        ("scan.annotations", out::render_github(&report, &verdict)),
    ] {
        if let Err(e) = atomic_write(&dir.join(file), text.as_bytes()) {
            ctx.log(format!("warning: failed to keep {file}: {e}"));
        }
    }
    let table = shipline_scanners::render::render_table(&report, &verdict);
    for line in table.lines() {
        ctx.log(line.to_string());
    }
    let c = &verdict.counts;
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("total".to_string(), c.total);
    counts.insert("blocking".to_string(), c.blocking);
    for (sev, n) in &c.by_severity {
        if *n > 0 {
            counts.insert(sev.clone(), *n);
        }
    }
    let scanners: Vec<ScannerStatus> = verdict
        .scanners
        .iter()
        .map(|st| ScannerStatus {
            name: st.name.clone(),
            status: st.status.as_str().to_string(),
            message: st.message.clone(),
        })
        .collect();
    let skipped: Vec<String> = scanners
        .iter()
        .filter(|st| st.status == "skipped")
        .map(|st| st.name.clone())
        .collect();
    s.state().findings = Some(FindingsSummary {
        verdict: verdict.outcome.as_str().to_string(),
        counts,
        scanners,
    });
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!("; SKIPPED (allowed by policy): {}", skipped.join(", "))
    };
    match verdict.outcome {
        Outcome::Pass => Ok(StageOutput::Message(format!(
            "pass: {} findings, none blocking{skipped_note}",
            c.total
        ))),
        Outcome::Fail => Err(StageError::failed(format!(
            "gate failed: {} blocking finding(s){}{skipped_note}",
            c.blocking,
            blocking_detail(&c.blocking_by_severity)
        ))),
        Outcome::Error => Err(StageError::tool(format!(
            "gate error (fails closed): {}",
            verdict.problems.join("; ")
        ))),
    }
}

fn blocking_detail(by: &std::collections::BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = by
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Reads the config digest of manifest `digest` in an OCI layout directory.
fn layout_config_digest(dir: &Path, digest: &str) -> Result<String, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest {digest}"))?;
    let path = dir.join("blobs/sha256").join(hex);
    let bytes =
        std::fs::read(&path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("manifest {digest} is not JSON: {e}"))?;
    v["config"]["digest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("manifest {digest} has no config"))
}

fn copy_options(ctx: &StageContext) -> CopyOptions {
    let events = ctx.events.clone();
    let stage = ctx.stage_id.clone();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    CopyOptions {
        progress: Some(Arc::new(move |ev| {
            use shipline_registry::ProgressEvent as P;
            use std::sync::atomic::Ordering;
            match ev {
                P::Planned { bytes, .. } => total.store(bytes, Ordering::Relaxed),
                P::BlobProgress { done, .. } => {
                    let _ = done;
                }
                P::BlobDone { size, .. } | P::BlobSkipped { size, .. } => {
                    let now = sent.fetch_add(size, Ordering::Relaxed) + size;
                    events.emit(crate::events::Event::StageProgress {
                        stage: stage.clone(),
                        current: now,
                        total: Some(total.load(Ordering::Relaxed)),
                        unit: "bytes".into(),
                    });
                }
                _ => {}
            }
        })),
        ..CopyOptions::default()
    }
}

async fn push(s: &Shared, ctx: &StageContext) -> Result<StageOutput, StageError> {
    let engine = s.engine().await?;
    let mut image = s.image()?;
    let tag = image.tag.clone().unwrap_or_else(|| s.opts.commit.clone());
    let local = s.local_ref(&tag);
    let log = engine_logger(ctx);
    let extra: Vec<String> = s
        .config
        .image
        .tags
        .iter()
        .map(|t| render_tag(t, &s.opts.commit, s.branch.as_deref(), &s.run_id))
        .filter(|t| *t != tag)
        .collect();
    let (digest, where_) = match &s.destination {
        Destination::Embedded { dir } => {
            let out = engine
                .export_oci_layout(&local, dir, &tag, &log)
                .await
                .map_err(|e| StageError::tool(chain(&e)))?;
            check_config(dir, &out.manifest_digest, &image)?;
            for t in &extra {
                let src = ImageStore::Layout {
                    dir: dir.clone(),
                    tag: Some(tag.clone()),
                };
                let dst = ImageStore::Layout {
                    dir: dir.clone(),
                    tag: Some(t.clone()),
                };
                shipline_registry::copy(&s.opts.client, &src, &dst, &copy_options(ctx))
                    .await
                    .map_err(|e| StageError::tool(chain(&e)))?;
            }
            (out.manifest_digest, format!("oci:{}", dir.display()))
        }
        Destination::Remote { repository } => {
            let tmp = s.store.dir.join("tmp").join(format!("push-{}", s.run_id));
            let exported = engine
                .export_scratch(&local, tmp, &tag, &log)
                .await
                .map_err(|e| StageError::tool(chain(&e)))?;
            let manifest_digest = &exported.output().manifest_digest;
            check_config(&exported.output().layout, manifest_digest, &image)?;
            let src = exported.store();
            let mut digest = None;
            for t in std::iter::once(&tag).chain(extra.iter()) {
                let reference = Reference::parse(&format!("{repository}:{t}"))
                    .map_err(|e| StageError::failed(chain(&e)))?;
                let report = shipline_registry::copy(
                    &s.opts.client,
                    &src,
                    &ImageStore::Remote(reference),
                    &copy_options(ctx),
                )
                .await
                .map_err(|e| StageError::tool(chain(&e)))?;
                ctx.log(format!(
                    "pushed {repository}:{t}: {} bytes sent, {} blobs skipped, {} mounted, {} uploaded",
                    report.bytes_sent, report.blobs_skipped, report.blobs_mounted, report.blobs_uploaded
                ));
                digest.get_or_insert(report.digest.to_string());
            }
            let digest = digest.unwrap_or_else(|| manifest_digest.clone());
            (digest, repository.clone())
        }
    };
    image.digest = Some(digest.clone());
    s.state().image = Some(image);
    Ok(StageOutput::Message(format!(
        "pushed {where_}:{tag}@{digest}"
    )))
}

/// The pushed manifest must describe exactly the image that was built and tested.
fn check_config(layout: &Path, digest: &str, image: &ImageInfo) -> Result<(), StageError> {
    let config = layout_config_digest(layout, digest).map_err(StageError::tool)?;
    match &image.image_id {
        Some(id) if *id == config => Ok(()),
        Some(id) => Err(StageError::failed(format!(
            "the exported image {digest} has config {config}, but the build produced {id}"
        ))),
        None => Ok(()),
    }
}

async fn promote(s: &Shared, ctx: &StageContext) -> Result<StageOutput, StageError> {
    let env_name = s.environment.clone().unwrap_or_default();
    let env = s
        .config
        .environment(&env_name)
        .ok_or_else(|| StageError::failed(format!("unknown environment {env_name}")))?;
    let from = env.promote_from.clone().unwrap_or_default();
    // the newest successful run that deployed `from` names the digest it ran
    let mut found = None;
    for r in s
        .store
        .list_runs()
        .map_err(|e| StageError::tool(chain(&e)))?
        .into_iter()
        .flatten()
    {
        if r.environment.as_deref() == Some(from.as_str())
            && r.status == crate::run::RunStatus::Succeeded
            && r.image.as_ref().is_some_and(|i| i.digest.is_some())
        {
            found = Some(r);
            break;
        }
    }
    let Some(source) = found else {
        return Err(StageError::failed(format!(
            "nothing to promote: no successful run has deployed to {from} yet"
        )));
    };
    let image = source.image.clone().unwrap_or_default();
    let digest = image.digest.clone().unwrap_or_default();
    let tag = image.tag.clone().unwrap_or_default();
    let store = match &s.destination {
        Destination::Embedded { dir } => ImageStore::Layout {
            dir: dir.clone(),
            tag: Some(tag.clone()),
        },
        Destination::Remote { repository } => ImageStore::Remote(
            Reference::parse(&format!("{repository}:{tag}"))
                .map_err(|e| StageError::failed(chain(&e)))?,
        ),
    };
    let now = shipline_registry::resolve_digest(&s.opts.client, &store)
        .await
        .map_err(|e| StageError::tool(chain(&e)))?
        .to_string();
    if now != digest {
        return Err(StageError::failed(format!(
            "tag {tag} moved: {from} ran {digest}, the store now has {now}; refusing to promote"
        )));
    }
    ctx.log(format!(
        "promoting {digest} from run {} ({from})",
        source.id
    ));
    s.state().image = Some(image);
    Ok(StageOutput::Message(format!(
        "promoted {digest} from {from} (run {})",
        source.id
    )))
}

/// Approvals attached to the image in the registry (none for the embedded store).
async fn remote_approvals(
    s: &Shared,
    digest: &str,
) -> Result<crate::approval::RemoteApprovals, StageError> {
    match &s.destination {
        Destination::Embedded { .. } => Ok(Default::default()),
        Destination::Remote { repository } => {
            crate::approval::fetch_remote(&s.opts.client, repository, digest)
                .await
                .map_err(|e| StageError::tool(chain(&e)))
        }
    }
}

async fn approve(s: &Shared, _ctx: &StageContext) -> Result<StageOutput, StageError> {
    let env_name = s.environment.clone().unwrap_or_default();
    let env = s
        .config
        .environment(&env_name)
        .ok_or_else(|| StageError::failed(format!("unknown environment {env_name}")))?;
    let image = s.image()?;
    let digest = image
        .digest
        .clone()
        .ok_or_else(|| StageError::failed("no digest: the image was not pushed"))?;
    let remote = remote_approvals(s, &digest).await?;
    match crate::approval::check_for_deploy_remote(&s.store, env, &digest, chrono::Utc::now(), || {
        Ok(remote)
    }) {
        Ok(decision) => {
            let who = decision.approvers().join(", ");
            s.state().approval = serde_json::to_value(&decision).ok();
            Ok(StageOutput::Message(format!(
                "approved by {who} ({} of {} required)",
                decision.accepted.len(),
                decision.required
            )))
        }
        Err(e) => Err(StageError {
            kind: StageErrorKind::WaitingApproval,
            message: format!(
                "waiting for approval of {digest} for {env_name}: {}\n  approve: shipline approve {env_name} --digest {digest} --key ~/.ssh/id_ed25519\n  then:    shipline run --resume {}",
                chain(&e),
                s.run_id
            ),
        }),
    }
}

async fn deploy(s: &Shared, ctx: &StageContext, env_name: &str) -> Result<StageOutput, StageError> {
    let engine = s.engine().await?;
    let image = s.image()?;
    let tag = image
        .tag
        .clone()
        .ok_or_else(|| StageError::failed("no tag to deploy"))?;
    let digest = image.digest.clone();
    // production runs bytes identified by digest: the local image must be the one pushed
    let local = s.local_ref(&tag);
    let info = engine.image_digests(&local).await.map_err(|e| {
        StageError::failed(format!("image {local} is not in the engine: {}", chain(&e)))
    })?;
    if let Some(want) = &image.image_id {
        if &info.id != want {
            return Err(StageError::failed(format!(
                "{local} is {} in the engine, but the pushed digest {} describes {want}; refusing to deploy",
                info.id,
                digest.as_deref().unwrap_or("?")
            )));
        }
    }
    let target = crate::deploy::DeployTarget::from_config(&s.config, env_name)
        .ok_or_else(|| StageError::failed(format!("unknown environment {env_name}")))?;
    let mut req = crate::deploy::DeployRequest::new(target, tag.clone());
    req.reason = format!("shipline run {} ({})", s.run_id, s.opts.commit);
    // checked again under the deploy lock: the image is still the one built and pushed, and
    // an approval environment still has enough valid approvals for this digest
    let env = s
        .config
        .environment(env_name)
        .cloned()
        .ok_or_else(|| StageError::failed(format!("unknown environment {env_name}")))?;
    let remote = match (&digest, env.deploy) {
        (Some(d), DeployMode::Approval) => remote_approvals(s, d).await?,
        _ => Default::default(),
    };
    let store = s.store.clone();
    let expected_id = image.image_id.clone();
    let gate_digest = digest.clone();
    req.gate = Some(crate::deploy::DeployGate(Arc::new(move |input| {
        if let Some(want) = &expected_id {
            if &input.image_id != want {
                return Err(format!(
                    "{} is {} in the engine, not the pushed image {want}",
                    input.image, input.image_id
                ));
            }
        }
        if env.deploy == DeployMode::Approval {
            let d = gate_digest
                .as_deref()
                .ok_or("an approval environment deploys by digest only")?;
            let remote = remote.clone();
            crate::approval::check_for_deploy_remote(
                &store,
                &env,
                d,
                chrono::Utc::now(),
                move || Ok(remote),
            )
            .map_err(|e| chain(&e))?;
        }
        Ok(())
    })));
    let on = |ev: crate::deploy::DeployEvent| match ev {
        crate::deploy::DeployEvent::Step { step, message } => ctx.log(format!("{step}: {message}")),
        crate::deploy::DeployEvent::Warning { message } => ctx.log(format!("warning: {message}")),
    };
    let report = crate::deploy::deploy(engine, &req, &on)
        .await
        .map_err(|e| StageError::failed(chain(&e)))?;
    let mut value = serde_json::to_value(&report.record).unwrap_or_default();
    if let (Some(d), Some(obj)) = (&digest, value.as_object_mut()) {
        obj.insert("digest".into(), serde_json::Value::String(d.clone()));
    }
    s.state().deploy = Some(value);
    if let Some(f) = &report.failure {
        return Err(StageError::failed(format!(
            "deploy failed and was rolled back: {}",
            serde_json::to_string(f).unwrap_or_default()
        )));
    }
    Ok(StageOutput::Message(format!(
        "{env_name} runs {}:{tag}{} ({} {})",
        s.config.image.repository,
        digest.map(|d| format!("@{d}")).unwrap_or_default(),
        report.compose.program.display(),
        report.compose.version
    )))
}
