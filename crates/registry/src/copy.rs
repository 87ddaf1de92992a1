//! Copy / promote: any [`ImageStore`] to any other, preserving the manifest digest; blobs that
//! are already there are skipped, same-registry blobs are mounted, the rest are streamed with
//! bounded concurrency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use serde::Serialize;

use crate::manifest::{Descriptor, Manifest, Platform};
use crate::remote::{OnBytes, OpenBlob, UploadMode};
use crate::store::{Dest, FetchedManifest, Source};
use crate::{Digest, ImageStore, RegistryClient, RegistryError};

/// A typed progress event; the CLI renders these as progress bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The manifest(s) were read: `blobs` to consider, `bytes` in total.
    Planned {
        /// Distinct blobs.
        blobs: usize,
        /// Their total size.
        bytes: u64,
    },
    /// A blob was already at the destination.
    BlobSkipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A blob was mounted from another repository of the same registry.
    BlobMounted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A blob transfer started.
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size.
        total: u64,
    },
    /// Bytes of a blob transferred so far (throttled to about every 1 MiB).
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Bytes done.
        done: u64,
        /// Bytes in total.
        total: u64,
    },
    /// A blob transfer finished and was verified.
    BlobDone {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A manifest was written.
    ManifestPushed {
        /// Its digest.
        digest: Digest,
        /// The tag it was written under, if any.
        tag: Option<String>,
    },
}

/// Receives [`ProgressEvent`]s (called from the copy's tasks; keep it cheap).
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// How to copy.
#[derive(Clone)]
pub struct CopyOptions {
    /// Blobs transferred at once (default 4).
    pub concurrency: usize,
    /// From an index, copy only this platform's image (the result digest is then the
    /// platform manifest's). `None` copies the whole index.
    pub platform: Option<Platform>,
    /// Try cross-repository mounts on the same registry (default true).
    pub mount: bool,
    /// How blobs are uploaded to registries.
    pub upload: UploadMode,
    /// Progress events.
    pub progress: Option<ProgressSink>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            concurrency: 4,
            platform: None,
            mount: true,
            upload: UploadMode::Monolithic,
            progress: None,
        }
    }
}

impl std::fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("concurrency", &self.concurrency)
            .field("platform", &self.platform)
            .field("mount", &self.mount)
            .field("upload", &self.upload)
            .finish_non_exhaustive()
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// The digest of the copied (root) manifest, identical at source and destination.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The tag written at the destination, if any.
    pub tag: Option<String>,
    /// Blob bytes sent (or written) to the destination.
    pub bytes_sent: u64,
    /// Blobs already present.
    pub blobs_skipped: usize,
    /// Blobs mounted from the source repository.
    pub blobs_mounted: usize,
    /// Blobs uploaded or written.
    pub blobs_uploaded: usize,
    /// Manifests written (children of an index included).
    pub manifests_pushed: usize,
}

#[derive(Default)]
struct Stats {
    bytes: AtomicU64,
    skipped: AtomicUsize,
    mounted: AtomicUsize,
    uploaded: AtomicUsize,
}

/// Copies `src` to `dst` and returns the digest and what was transferred.
///
/// The root manifest (and every child of an index) travels as its exact bytes, so the digest at
/// the destination equals the source's. A destination without a tag (`oci:DIR`, `REF@digest`)
/// inherits the source's tag, if any; a digest-only remote destination stays untagged.
pub async fn copy(
    client: &RegistryClient,
    src: &ImageStore,
    dst: &ImageStore,
    opts: &CopyOptions,
) -> Result<CopyReport, RegistryError> {
    let source = Source::open(client, src).await?;
    let dest = Dest::open(client, dst).await?;
    let emit = |e: ProgressEvent| {
        if let Some(p) = &opts.progress {
            p(e);
        }
    };

    let mut root = source.root().await?;
    let parsed = Manifest::parse(&root.bytes, &format!("manifest of {src}"))?;
    if let Some(platform) = &opts.platform {
        if parsed.is_index(&root.media_type) {
            let child =
                parsed
                    .select_platform(platform)
                    .ok_or_else(|| RegistryError::NotFound {
                        what: format!(
                            "platform {}/{} in the index of {src}",
                            platform.os, platform.architecture
                        ),
                    })?;
            root = source.manifest(child).await?;
        }
    }

    // walk: children before parents, blobs deduplicated
    let mut manifests: Vec<FetchedManifest> = Vec::new();
    let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut stack = vec![(root.clone(), false)];
    let mut depth_guard = 0;
    while let Some((m, expanded)) = stack.pop() {
        depth_guard += 1;
        if depth_guard > 10_000 {
            return Err(RegistryError::invalid(
                format!("manifest of {src}"),
                "too many nested manifests",
            ));
        }
        let parsed = Manifest::parse(&m.bytes, &format!("manifest {} of {src}", m.digest))?;
        if expanded || !parsed.is_index(&m.media_type) {
            for b in parsed.blobs() {
                blobs.entry(b.digest.clone()).or_insert(b);
            }
            if !manifests.iter().any(|x| x.digest == m.digest) {
                manifests.push(m);
            }
            continue;
        }
        stack.push((m, true));
        for child in parsed.manifests.iter().rev() {
            let cm = source.manifest(child).await?;
            stack.push((cm, false));
        }
    }
    emit(ProgressEvent::Planned {
        blobs: blobs.len(),
        bytes: blobs.values().map(|b| b.size).sum(),
    });

    let stats = Arc::new(Stats::default());
    let source = Arc::new(source);
    let dest = Arc::new(dest);
    futures::stream::iter(blobs.into_values().map(Ok::<_, RegistryError>))
        .map_ok(|desc| {
            let source = source.clone();
            let dest = dest.clone();
            let stats = stats.clone();
            async move { transfer_blob(&source, &dest, desc, opts, &stats).await }
        })
        .try_buffer_unordered(opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;

    let tag = dest.tag().map(str::to_owned).or_else(|| match dst {
        ImageStore::Remote(r) if r.digest().is_some() => None,
        _ => source.tag(),
    });
    let mut pushed = 0;
    let last = manifests.len().saturating_sub(1);
    for (i, m) in manifests.iter().enumerate() {
        let t = if i == last { tag.as_deref() } else { None };
        dest.put_manifest(m, t, i == last).await?;
        pushed += 1;
        emit(ProgressEvent::ManifestPushed {
            digest: m.digest.clone(),
            tag: t.map(str::to_owned),
        });
    }
    let dest = Arc::try_unwrap(dest)
        .map_err(|_| RegistryError::invalid("copy", "destination still in use"))?;
    dest.finish().await?;

    Ok(CopyReport {
        digest: root.digest,
        media_type: root.media_type,
        tag,
        bytes_sent: stats.bytes.load(Ordering::Relaxed),
        blobs_skipped: stats.skipped.load(Ordering::Relaxed),
        blobs_mounted: stats.mounted.load(Ordering::Relaxed),
        blobs_uploaded: stats.uploaded.load(Ordering::Relaxed),
        manifests_pushed: pushed,
    })
}

async fn transfer_blob(
    source: &Arc<Source>,
    dest: &Dest,
    desc: Descriptor,
    opts: &CopyOptions,
    stats: &Stats,
) -> Result<(), RegistryError> {
    let emit = |e: ProgressEvent| {
        if let Some(p) = &opts.progress {
            p(e);
        }
    };
    if dest.has_blob(&desc).await? {
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        emit(ProgressEvent::BlobSkipped {
            digest: desc.digest.clone(),
            size: desc.size,
        });
        return Ok(());
    }
    if let (Dest::Remote { client, reference }, Some(from)) = (dest, source.remote()) {
        if opts.mount
            && from.api_host() == reference.api_host()
            && !from.same_repository(reference)
            && client.mount_blob(reference, &desc, from).await?
        {
            stats.mounted.fetch_add(1, Ordering::Relaxed);
            emit(ProgressEvent::BlobMounted {
                digest: desc.digest.clone(),
                size: desc.size,
            });
            return Ok(());
        }
    }
    emit(ProgressEvent::BlobStarted {
        digest: desc.digest.clone(),
        total: desc.size,
    });
    let progress = opts.progress.clone();
    let digest = desc.digest.clone();
    let total = desc.size;
    let last = Arc::new(AtomicU64::new(0));
    let on_bytes: OnBytes = Arc::new(move |done| {
        let prev = last.load(Ordering::Relaxed);
        if done >= prev + (1 << 20) || done == total || done < prev {
            last.store(done, Ordering::Relaxed);
            if let Some(p) = &progress {
                p(ProgressEvent::BlobProgress {
                    digest: digest.clone(),
                    done,
                    total,
                });
            }
        }
    });
    let sent = match dest {
        Dest::Remote { client, reference } => {
            let src = source.clone();
            let d = desc.clone();
            let open: OpenBlob = Arc::new(move |offset| {
                let src = src.clone();
                let d = d.clone();
                Box::pin(async move { src.open_blob(&d, offset).await })
            });
            client
                .upload_blob(reference, &desc, open, on_bytes, opts.upload)
                .await?
        }
        _ => {
            let Some(layout) = dest.layout() else {
                return Err(RegistryError::invalid("copy", "destination has no layout"));
            };
            write_with_retries(source, layout, &desc, &on_bytes, retry_policy(source)).await?
        }
    };
    stats.bytes.fetch_add(sent, Ordering::Relaxed);
    stats.uploaded.fetch_add(1, Ordering::Relaxed);
    emit(ProgressEvent::BlobDone {
        digest: desc.digest.clone(),
        size: desc.size,
    });
    Ok(())
}

fn retry_policy(source: &Source) -> crate::RetryPolicy {
    match source {
        Source::Remote { client, .. } => client.retry_policy().clone(),
        _ => crate::RetryPolicy::none(),
    }
}

/// Streams a blob into a layout, verified; a transfer that fails verification or breaks off is
/// fetched again (bounded), and on final failure nothing is left behind.
async fn write_with_retries(
    source: &Source,
    layout: &crate::OciLayout,
    desc: &Descriptor,
    on_bytes: &OnBytes,
    policy: crate::RetryPolicy,
) -> Result<u64, RegistryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let reader = source.open_blob(desc, 0).await?;
            let cb = on_bytes.clone();
            layout.write_blob(desc, reader, &mut move |n| cb(n)).await
        }
        .await;
        match result {
            Ok(n) => return Ok(n),
            Err(e) => match policy.delay_after(attempt, &e) {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    return Err(crate::retry::exhausted(
                        "pull blob",
                        desc.digest.as_str(),
                        attempt,
                        e,
                    ))
                }
            },
        }
    }
}

/// The manifest digest of an image anywhere (registry: `HEAD`; local stores: the selected
/// manifest's digest).
pub async fn resolve_digest(
    client: &RegistryClient,
    store: &ImageStore,
) -> Result<Digest, RegistryError> {
    match store {
        ImageStore::Remote(r) => client.resolve_digest(r).await,
        other => Ok(Source::open(client, other).await?.root().await?.digest),
    }
}
