//! Registry commands: push, pull, copy (alias promote), tags, prune, digest.
//!
//! Credentials come from the docker config (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`, credential helpers included) and, for `ghcr.io` when the config has
//! none, from `GITHUB_TOKEN` (user `GITHUB_ACTOR`). They are never printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipline_registry::{
    ClientOptions, CopyOptions, CopyReport, ImageStore, Platform, ProgressEvent, PruneAction,
    PruneOptions, PruneReport, Reference, RegistryClient, RegistryError, UploadMode,
};

use crate::{CliError, Global};

/// Connection flags shared by every registry command.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Allow plain HTTP (and unverified TLS) for this registry host; repeatable.
    /// Loopback hosts may always fall back to plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Trust this PEM certificate for registry TLS (repeatable).
    #[arg(long = "ca-cert", value_name = "PEM", value_parser = crate::regopts::read_ca_cert)]
    pub ca_cert: Vec<crate::regopts::CaCert>,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Upload in chunks of this many bytes instead of one streamed request per blob
    /// (capped at 4194304 on ghcr.io, which refuses larger chunks).
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
    /// Print the result as JSON (`"version": 1`).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `shipline push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// What to push: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE
    /// docker-daemon:IMAGE (exported from the local Docker engine).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Where to: a registry reference (REGISTRY/REPO:TAG or docker://...).
    #[arg(value_name = "DEST")]
    pub dest: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `shipline pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image reference (by tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The local store: oci:DIR[:TAG] (or oci-archive:FILE).
    #[arg(long, value_name = "oci:DIR[:TAG]")]
    pub to: String,
    /// From a multi-platform index, pull only OS/ARCH[/VARIANT] (default: the whole index).
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `shipline copy` / `shipline promote`.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// Source: a reference, docker://REF, oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Destination: a reference, docker://REF, oci:DIR[:TAG] or oci-archive:FILE.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// From a multi-platform index, copy only OS/ARCH[/VARIANT] (changes the digest).
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `shipline tags`.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// The repository (REGISTRY/REPO; a tag is ignored).
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `shipline prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The repository (REGISTRY/REPO).
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Always keep this many newest matching tags.
    #[arg(long)]
    pub keep: usize,
    /// Delete only tags older than this (`7d`, `36h`); default: any age beyond --keep.
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Only tags matching this glob (e.g. `build-*`).
    #[arg(long, value_name = "GLOB")]
    pub pattern: Option<String>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `shipline digest`.
#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    /// A reference, or oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE.
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs `shipline push`.
pub fn push(args: PushArgs, global: &Global) -> anyhow::Result<i32> {
    let src = parse_store(&args.src)?;
    if matches!(src, ImageStore::Remote(_)) {
        return Err(CliError::usage(format!(
            "`{}` is a registry reference; push takes a local image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE); use `shipline copy` between registries",
            args.src
        )));
    }
    let dest = parse_store(&args.dest)?;
    if !matches!(dest, ImageStore::Remote(_)) {
        return Err(CliError::usage(format!(
            "`{}` is not a registry reference; use `shipline copy` for local destinations",
            args.dest
        )));
    }
    if let ImageStore::DockerDaemon(image) = &src {
        return push_from_daemon(image, dest, &args.connect, global);
    }
    run_copy("push", src, dest, None, &args.connect, global)
}

/// `push docker-daemon:IMAGE DEST`: the engine streams the image into a temporary OCI layout
/// (never held in memory), which is then pushed like any layout and removed.
fn push_from_daemon(
    image: &str,
    dest: ImageStore,
    connect: &ConnectArgs,
    global: &Global,
) -> anyhow::Result<i32> {
    let dir = std::env::temp_dir().join(format!(
        "shipline-daemon-export-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let exported = runtime()?.block_on(async {
        let engine = shipline_core::engine::Engine::connect()
            .await
            .map_err(|e| CliError::tool(format!("failed to reach the Docker engine: {e}")))?;
        global.info(format!("exporting {image} from the Docker engine"));
        engine
            .export_scratch(image, dir, "export", &|_| {})
            .await
            .map_err(|e| {
                let mut msg = format!("failed to export {image} from the Docker engine: {e}");
                if let Some(src) = std::error::Error::source(&e) {
                    msg.push_str(&format!(": {src}"));
                }
                CliError::tool(msg)
            })
    })?;
    // `exported` removes the scratch layout when it goes out of scope, after the copy.
    run_copy("push", exported.store(), dest, None, connect, global)
}

/// Runs `shipline pull`.
pub fn pull(args: PullArgs, global: &Global) -> anyhow::Result<i32> {
    let src = match parse_store(&args.reference)? {
        r @ ImageStore::Remote(_) => r,
        _ => {
            return Err(CliError::usage(format!(
                "`{}` is not a registry reference",
                args.reference
            )))
        }
    };
    let dest = parse_store(&args.to)?;
    if !matches!(
        dest,
        ImageStore::Layout { .. } | ImageStore::OciArchive { .. }
    ) {
        return Err(CliError::usage(format!(
            "--to `{}` must be oci:DIR[:TAG] or oci-archive:FILE",
            args.to
        )));
    }
    run_copy(
        "pull",
        src,
        dest,
        args.platform.as_deref(),
        &args.connect,
        global,
    )
}

/// Runs `shipline copy` (and `shipline promote`).
pub fn copy(args: CopyArgs, global: &Global) -> anyhow::Result<i32> {
    let src = parse_store(&args.src)?;
    let dest = parse_store(&args.dest)?;
    run_copy(
        "copy",
        src,
        dest,
        args.platform.as_deref(),
        &args.connect,
        global,
    )
}

/// Runs `shipline tags`.
pub fn tags(args: TagsArgs, global: &Global) -> anyhow::Result<i32> {
    let r = parse_reference(&args.reference)?;
    let rt = runtime()?;
    let tags = rt.block_on(async {
        let client = client_for(&[&r], &args.connect).await?;
        client.list_tags(&r).await
    });
    let tags = tags.map_err(registry_error)?;
    let _ = global;
    print!("{}", render_tags(&r, &tags, args.connect.json));
    Ok(shipline_core::exit::OK)
}

/// Runs `shipline prune`.
pub fn prune(args: PruneArgs, global: &Global) -> anyhow::Result<i32> {
    let r = parse_reference(&args.repo)?;
    let opts = PruneOptions {
        keep: args.keep,
        older_than: args.older_than,
        pattern: args.pattern.clone(),
        dry_run: args.dry_run,
        now: chrono::Utc::now(),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let client = client_for(&[&r], &args.connect).await?;
        shipline_registry::prune(&client, &r, &opts).await
    });
    let report = report.map_err(registry_error)?;
    if report.dry_run && !args.connect.json {
        global.info("dry run: nothing was deleted");
    }
    print!("{}", render_prune(&report, args.connect.json));
    Ok(if report.failed() > 0 {
        shipline_core::exit::FAILED
    } else {
        shipline_core::exit::OK
    })
}

/// Runs `shipline digest`.
pub fn digest(args: DigestArgs, _global: &Global) -> anyhow::Result<i32> {
    let store = parse_store(&args.reference)?;
    let rt = runtime()?;
    let refs: Vec<&Reference> = match &store {
        ImageStore::Remote(r) => vec![r],
        _ => vec![],
    };
    let d = rt.block_on(async {
        let client = client_for(&refs, &args.connect).await?;
        shipline_registry::resolve_digest(&client, &store).await
    });
    let d = d.map_err(registry_error)?;
    if args.connect.json {
        println!(
            "{}",
            serde_json::json!({"version": 1, "reference": store.to_string(), "digest": d})
        );
    } else {
        println!("{d}");
    }
    Ok(shipline_core::exit::OK)
}

fn run_copy(
    verb: &str,
    src: ImageStore,
    dest: ImageStore,
    platform: Option<&str>,
    connect: &ConnectArgs,
    global: &Global,
) -> anyhow::Result<i32> {
    let platform = platform
        .map(Platform::parse)
        .transpose()
        .map_err(|e| CliError::usage(format!("--platform: {e}")))?;
    let bar = progress_bar(global, connect.json);
    let mut opts = CopyOptions {
        concurrency: usize::from(connect.concurrency),
        platform,
        upload: connect
            .chunk_size
            .map_or(UploadMode::Monolithic, UploadMode::Chunked),
        ..CopyOptions::default()
    };
    if let Some(bar) = &bar {
        let bar = bar.clone();
        let done: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        opts.progress = Some(Arc::new(move |e| on_progress(&bar, &done, e)));
    }
    let refs: Vec<&Reference> = [&src, &dest]
        .into_iter()
        .filter_map(|s| match s {
            ImageStore::Remote(r) => Some(r),
            _ => None,
        })
        .collect();
    let rt = runtime()?;
    let result = rt.block_on(async {
        let client = client_for(&refs, connect).await?;
        shipline_registry::copy(&client, &src, &dest, &opts).await
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(registry_error)?;
    print!("{}", render_copy(verb, &src, &dest, &report, connect.json));
    if let Some(gh) = crate::gha::detect() {
        let image = match &dest {
            ImageStore::Remote(r) => r.repository_url_name(),
            other => other.to_string(),
        };
        let digest = report.digest.to_string();
        crate::gha::publish(
            &gh,
            global,
            &format!(
                "shipline {verb}: `{dest}` is `{digest}` ({} sent)\n",
                human_bytes(report.bytes_sent)
            ),
            &crate::gha::image_outputs(&image, report.tag.as_deref(), Some(&digest)),
        );
    }
    Ok(shipline_core::exit::OK)
}

fn on_progress(bar: &indicatif::ProgressBar, done: &Mutex<HashMap<String, u64>>, e: ProgressEvent) {
    match e {
        ProgressEvent::Planned { bytes, .. } => bar.set_length(bytes),
        ProgressEvent::BlobSkipped { size, .. } | ProgressEvent::BlobMounted { size, .. } => {
            bar.inc(size)
        }
        ProgressEvent::BlobProgress {
            digest, done: now, ..
        } => {
            let mut map = done.lock().unwrap_or_else(|p| p.into_inner());
            let prev = map.insert(digest.to_string(), now).unwrap_or(0);
            // a retried blob starts again from zero: never move the bar backwards
            if now > prev {
                bar.inc(now - prev);
            }
        }
        ProgressEvent::ManifestPushed { digest, .. } => {
            bar.set_message(format!("manifest {}", short(digest.as_str())))
        }
        _ => {}
    }
}

fn progress_bar(global: &Global, json: bool) -> Option<indicatif::ProgressBar> {
    if !global.stderr_tty || global.quiet || json {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(bar)
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::tool(format!("failed to start the async runtime: {e}")))
}

fn parse_store(s: &str) -> anyhow::Result<ImageStore> {
    ImageStore::parse(s).map_err(|e| CliError::usage(e.to_string()))
}

fn parse_reference(s: &str) -> anyhow::Result<Reference> {
    let s = s.strip_prefix("docker://").unwrap_or(s);
    Reference::parse(s).map_err(|e| CliError::usage(e.to_string()))
}

/// Maps a library error to an exit code; the message carries the whole cause chain.
fn registry_error(e: RegistryError) -> anyhow::Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    match e {
        RegistryError::InvalidReference { .. } | RegistryError::InvalidLocation { .. } => {
            CliError::usage(message)
        }
        RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => {
            CliError::failed(message)
        }
        _ => CliError::tool(message),
    }
}

/// Builds a client with the credentials of every registry involved.
async fn client_for(
    refs: &[&Reference],
    connect: &ConnectArgs,
) -> Result<RegistryClient, RegistryError> {
    let mut credentials = HashMap::new();
    for r in refs {
        let host = r.registry().to_owned();
        if credentials.contains_key(&host) {
            continue;
        }
        let creds = crate::regopts::docker_credentials(&host).await?;
        credentials.insert(host, creds);
    }
    RegistryClient::new(ClientOptions {
        credentials,
        insecure_registries: connect.insecure_registry.clone(),
        extra_root_certificates_pem: crate::regopts::pems(&connect.ca_cert),
        ..ClientOptions::default()
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Renders a copy result (text or JSON), newline-terminated.
fn render_copy(
    verb: &str,
    src: &ImageStore,
    dest: &ImageStore,
    r: &CopyReport,
    json: bool,
) -> String {
    if json {
        let v = serde_json::json!({
            "version": 1,
            "command": verb,
            "source": src.to_string(),
            "destination": dest.to_string(),
            "digest": r.digest,
            "media_type": r.media_type,
            "tag": r.tag,
            "bytes_sent": r.bytes_sent,
            "blobs_skipped": r.blobs_skipped,
            "blobs_mounted": r.blobs_mounted,
            "blobs_uploaded": r.blobs_uploaded,
            "manifests_pushed": r.manifests_pushed,
        });
        return format!("{v}\n");
    }
    let past = match verb {
        "push" => "pushed",
        "pull" => "pulled",
        _ => "copied",
    };
    format!(
        "{past} {dest} {}\n  {} transferred; blobs: {} uploaded, {} mounted, {} already present\n",
        r.digest,
        human_bytes(r.bytes_sent),
        r.blobs_uploaded,
        r.blobs_mounted,
        r.blobs_skipped,
    )
}

/// Renders a tag list (one per line, or JSON).
fn render_tags(r: &Reference, tags: &[String], json: bool) -> String {
    if json {
        let v =
            serde_json::json!({"version": 1, "repository": r.repository_url_name(), "tags": tags});
        return format!("{v}\n");
    }
    tags.iter().map(|t| format!("{t}\n")).collect()
}

/// Renders a prune plan or report.
fn render_prune(report: &PruneReport, json: bool) -> String {
    if json {
        let mut v = serde_json::to_value(report).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("version".into(), 1.into());
        }
        return format!("{v}\n");
    }
    let mut out = String::new();
    for e in &report.entries {
        let (word, why) = match &e.action {
            PruneAction::Keep(why) => ("keep", why.clone()),
            PruneAction::WouldDelete => ("would delete", String::new()),
            PruneAction::Deleted => ("deleted", String::new()),
            PruneAction::Failed(why) => ("FAILED", why.clone()),
        };
        let created = e.created.map_or_else(
            || "unknown".to_owned(),
            |c| c.format("%Y-%m-%d").to_string(),
        );
        let mut line = format!("{word:<12} {:<30} {created}", e.tag);
        if !why.is_empty() {
            line.push_str(&format!("  ({why})"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let verb = if report.dry_run {
        "would be deleted"
    } else {
        "deleted"
    };
    out.push_str(&format!(
        "{} of {} tags {verb}{}\n",
        report.deleted(),
        report.entries.len(),
        if report.failed() > 0 {
            format!(", {} failed", report.failed())
        } else {
            String::new()
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipline_registry::{Digest, PruneEntry};

    fn report() -> CopyReport {
        CopyReport {
            digest: Digest::of(b"x"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            tag: Some("1".into()),
            bytes_sent: 3 * 1024 * 1024 + 5,
            blobs_skipped: 1,
            blobs_mounted: 0,
            blobs_uploaded: 3,
            manifests_pushed: 1,
        }
    }

    #[test]
    fn copy_renders() {
        let src = ImageStore::parse("oci:out:1").unwrap();
        let dst = ImageStore::parse("ghcr.io/org/app:1").unwrap();
        insta::assert_snapshot!(render_copy("push", &src, &dst, &report(), false), @r"
        pushed docker://ghcr.io/org/app:1 sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881
          3.0 MiB transferred; blobs: 3 uploaded, 0 mounted, 1 already present
        ");
        let json: serde_json::Value =
            serde_json::from_str(&render_copy("push", &src, &dst, &report(), true)).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["bytes_sent"], 3 * 1024 * 1024 + 5);
        assert_eq!(json["blobs_uploaded"], 3);
    }

    #[test]
    fn prune_renders() {
        let r = PruneReport {
            repository: "ghcr.io/org/app".into(),
            dry_run: true,
            entries: vec![
                PruneEntry {
                    tag: "build-2".into(),
                    digest: None,
                    created: None,
                    action: PruneAction::Keep("among the newest 1".into()),
                },
                PruneEntry {
                    tag: "build-1".into(),
                    digest: None,
                    created: chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                        .ok()
                        .map(|d| d.with_timezone(&chrono::Utc)),
                    action: PruneAction::WouldDelete,
                },
            ],
        };
        insta::assert_snapshot!(render_prune(&r, false), @r"
        keep         build-2                        unknown  (among the newest 1)
        would delete build-1                        2024-01-01
        1 of 2 tags would be deleted
        ");
        let json: serde_json::Value = serde_json::from_str(&render_prune(&r, true)).unwrap();
        assert_eq!(json["version"], 1);
    }

    #[test]
    fn errors_map_to_exit_codes_without_secrets() {
        let e = registry_error(RegistryError::Auth {
            registry: "ghcr.io".into(),
            reason: "the registry refused the credentials".into(),
        });
        let code = e.downcast_ref::<CliError>().map(|c| c.code);
        assert_eq!(code, Some(shipline_core::exit::TOOL));
        let e = registry_error(Reference::parse("ghcr.io/Org/x").unwrap_err());
        assert_eq!(
            e.downcast_ref::<CliError>().map(|c| c.code),
            Some(shipline_core::exit::USAGE)
        );
        let creds = shipline_registry::Credentials::basic("u", "canary-cli-secret");
        assert!(!format!("{creds:?} {creds}").contains("canary"));
    }
}
