//! Tag retention: keep the newest N, delete tags older than D matching a pattern, dry-run
//! first.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::manifest::{Manifest, ANNOTATION_CREATED};
use crate::{Digest, Reference, RegistryClient, RegistryError};

/// A retention policy.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Always keep this many newest matching tags.
    pub keep: usize,
    /// Only delete tags older than this (by image creation time); `None`: any age.
    pub older_than: Option<Duration>,
    /// Only consider tags matching this glob (`*` when `None`).
    pub pattern: Option<String>,
    /// Plan only, delete nothing.
    pub dry_run: bool,
    /// "Now" for the age computation.
    pub now: DateTime<Utc>,
}

/// What happens to one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneAction {
    /// Kept, with the reason.
    Keep(String),
    /// Would be deleted (dry run).
    WouldDelete,
    /// Deleted.
    Deleted,
    /// Deletion failed (the message says why).
    Failed(String),
}

/// One tag's line in a prune plan or report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneEntry {
    /// The tag.
    pub tag: String,
    /// Its manifest digest.
    pub digest: Option<Digest>,
    /// Its image creation time, when known.
    pub created: Option<DateTime<Utc>>,
    /// The decision.
    pub action: PruneAction,
}

/// The outcome of [`prune`], newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// The repository.
    pub repository: String,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// One entry per tag.
    pub entries: Vec<PruneEntry>,
}

impl PruneReport {
    /// How many tags were (or would be) deleted.
    pub fn deleted(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, PruneAction::Deleted | PruneAction::WouldDelete))
            .count()
    }

    /// How many deletions failed.
    pub fn failed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, PruneAction::Failed(_)))
            .count()
    }
}

/// The creation time of the image a tag points to: the config's `created`, or the manifest's
/// `org.opencontainers.image.created` annotation; for an index, its first child's.
pub async fn image_created(
    client: &RegistryClient,
    r: &Reference,
) -> Result<Option<DateTime<Utc>>, RegistryError> {
    let mut m = client.get_manifest(r).await?;
    for _ in 0..4 {
        let parsed = Manifest::parse(&m.bytes, &format!("manifest of {r}"))?;
        if let Some(c) = parsed.annotations.get(ANNOTATION_CREATED) {
            if let Ok(t) = DateTime::parse_from_rfc3339(c) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
        }
        if parsed.is_index(&m.media_type) {
            let Some(child) = parsed.manifests.first() else {
                return Ok(None);
            };
            m = client
                .get_manifest(&r.with_digest(child.digest.clone()))
                .await?;
            continue;
        }
        let Some(config) = parsed.config else {
            return Ok(None);
        };
        if config.size > 1 << 20 {
            return Ok(None);
        }
        #[derive(serde::Deserialize)]
        struct Config {
            created: Option<String>,
        }
        let bytes = client.get_blob_bytes(r, &config).await?;
        let created = serde_json::from_slice::<Config>(&bytes)
            .ok()
            .and_then(|c| c.created)
            .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
            .map(|t| t.with_timezone(&Utc));
        return Ok(created);
    }
    Ok(None)
}

/// Applies a retention policy to `repo`'s tags.
///
/// Matching tags are ordered newest first by image creation time; the newest `keep` are kept,
/// and of the rest those older than `older_than` (all of them when `None`) are deleted. Tags
/// whose age is unknown are kept. Deleting uses `DELETE /manifests/<tag>`; where the registry
/// does not support that (distribution 2.x answers 400), the manifest is deleted by digest,
/// but only when no kept tag shares that digest, tags outside the pattern included, and no kept
/// index lists it as a child.
///
/// Referrer tags (`sha256-<hex>` fallback indexes and the `sha256-<hex>.<artifact>` tags of
/// attached artifacts such as approvals) are not images: they neither count towards `keep` nor
/// are ever deleted by age, since an image that is kept must keep its approvals.
pub async fn prune(
    client: &RegistryClient,
    repo: &Reference,
    opts: &PruneOptions,
) -> Result<PruneReport, RegistryError> {
    let glob = match &opts.pattern {
        Some(p) => Some(
            globset::Glob::new(p)
                .map_err(|e| RegistryError::invalid(format!("tag pattern `{p}`"), e.to_string()))?
                .compile_matcher(),
        ),
        None => None,
    };
    let mut rows = Vec::new();
    // tags outside the pattern are never pruned, nor may a delete by digest take them along
    let mut unmatched = Vec::new();
    for tag in client.list_tags(repo).await? {
        if is_referrers_tag(&tag) {
            continue;
        }
        if glob.as_ref().is_some_and(|g| !g.is_match(&tag)) {
            unmatched.push(tag);
            continue;
        }
        let r = repo.with_tag(&tag)?;
        let digest = client.resolve_digest(&r).await?;
        let created = image_created(client, &r.with_digest(digest.clone())).await?;
        rows.push((tag, digest, created));
    }
    // newest first; unknown dates last; ties by tag for determinism
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut entries = Vec::new();
    for (i, (tag, digest, created)) in rows.into_iter().enumerate() {
        let action = if i < opts.keep {
            PruneAction::Keep(format!("among the newest {}", opts.keep))
        } else {
            match (opts.older_than, created) {
                (None, _) => PruneAction::WouldDelete,
                (Some(_), None) => PruneAction::Keep("creation time unknown".into()),
                (Some(age), Some(c)) => {
                    let limit = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
                    if opts.now.signed_duration_since(c) > limit {
                        PruneAction::WouldDelete
                    } else {
                        PruneAction::Keep("newer than the age limit".into())
                    }
                }
            }
        };
        entries.push(PruneEntry {
            tag,
            digest: Some(digest),
            created,
            action,
        });
    }
    if !opts.dry_run {
        let kept: Vec<Digest> = entries
            .iter()
            .filter(|e| matches!(e.action, PruneAction::Keep(_)))
            .filter_map(|e| e.digest.clone())
            .collect();
        // what a delete by digest must spare, worked out at the first one needed
        let mut protected: Option<Result<HashSet<Digest>, String>> = None;
        let mut deleted_digests: BTreeMap<Digest, ()> = BTreeMap::new();
        for e in entries
            .iter_mut()
            .filter(|e| e.action == PruneAction::WouldDelete)
        {
            let Some(digest) = e.digest.clone() else {
                continue;
            };
            if deleted_digests.contains_key(&digest) {
                e.action = PruneAction::Deleted;
                continue;
            }
            let r = repo.with_tag(&e.tag)?;
            e.action = match client.delete_tag(&r).await {
                Ok(()) => PruneAction::Deleted,
                Err(RegistryError::NotFound { .. }) => PruneAction::Deleted,
                // the registry deletes by digest only: allowed when no kept tag, inside the
                // pattern or outside it, names that digest
                Err(RegistryError::DeleteUnsupported { status: 400, .. }) => {
                    let protected = match protected {
                        Some(ref p) => p,
                        None => protected
                            .insert(protected_digests(client, repo, &kept, &unmatched).await),
                    };
                    match protected {
                        Err(why) => PruneAction::Failed(format!(
                            "the registry cannot delete tags alone, and {why}: not deleting by digest"
                        )),
                        Ok(p) if p.contains(&digest) => PruneAction::Failed(
                            "the registry cannot delete tags alone and a kept tag shares this digest"
                                .into(),
                        ),
                        Ok(_) => match client.delete_manifest(repo, &digest).await {
                            Ok(()) | Err(RegistryError::NotFound { .. }) => {
                                deleted_digests.insert(digest, ());
                                PruneAction::Deleted
                            }
                            Err(err) => PruneAction::Failed(err.to_string()),
                        },
                    }
                }
                Err(err) => PruneAction::Failed(err.to_string()),
            };
        }
    }
    Ok(PruneReport {
        repository: repo.repository_url_name(),
        dry_run: opts.dry_run,
        entries,
    })
}

/// The digests a delete by digest must spare: the kept tags' manifests, those of the tags
/// outside the pattern, and the children of any of them that is a multi-platform index.
/// `Err` says which of them could not be read: then nothing may be deleted by digest, since
/// unknown is not "not shared".
async fn protected_digests(
    client: &RegistryClient,
    repo: &Reference,
    kept: &[Digest],
    unmatched: &[String],
) -> Result<HashSet<Digest>, String> {
    let mut roots: HashSet<Digest> = kept.iter().cloned().collect();
    for tag in unmatched {
        let resolved = match repo.with_tag(tag) {
            Ok(r) => client.resolve_digest(&r).await,
            Err(e) => Err(e),
        };
        roots.insert(
            resolved.map_err(|e| {
                format!("tag {tag} outside the pattern could not be resolved ({e})")
            })?,
        );
    }
    let mut protected = roots.clone();
    for d in roots {
        let m = client
            .get_manifest(&repo.with_digest(d.clone()))
            .await
            .map_err(|e| format!("the kept manifest {d} could not be read ({e})"))?;
        if let Ok(parsed) = Manifest::parse(&m.bytes, "manifest") {
            protected.extend(parsed.manifests.into_iter().map(|c| c.digest));
        }
    }
    Ok(protected)
}

/// Whether `tag` belongs to the referrers tag schema: `sha256-<64 hex>` or that followed by
/// `.<suffix>`.
pub(crate) fn is_referrers_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let (hex, tail) = rest.split_at(rest.len().min(64));
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && (tail.is_empty() || tail.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::is_referrers_tag;

    #[test]
    fn referrers_tags_are_recognized() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(is_referrers_tag(&format!("sha256-{hex}")));
        assert!(is_referrers_tag(&format!("sha256-{hex}.0123abcd")));
        assert!(!is_referrers_tag(&format!("sha256-{hex}x")));
        assert!(!is_referrers_tag("sha256-abc"));
        assert!(!is_referrers_tag("v1.2.3"));
        assert!(!is_referrers_tag("sha256-"));
    }
}
