//! Artifacts attached to an image (`subject`), listed through the referrers API with the
//! `sha256-<hex>` tag-schema fallback for registries without it.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::client::Scope;
use crate::manifest::{Descriptor, Manifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use crate::{Digest, Reference, RegistryClient, RegistryError};

/// One blob of an artifact.
#[derive(Debug, Clone)]
pub struct ArtifactBlob {
    /// Its media type (e.g. `application/vnd.shipline.approval.v1+json`).
    pub media_type: String,
    /// The content.
    pub data: Bytes,
    /// Annotations on its descriptor.
    pub annotations: BTreeMap<String, String>,
}

/// Pushes an artifact manifest whose `subject` is `subject` (a tag is resolved to its digest
/// first) and makes it discoverable: registries with the referrers API index it themselves;
/// for the others the `sha256-<subject hex>` fallback index is updated. Returns the artifact
/// manifest's digest.
pub async fn attach_artifact(
    client: &RegistryClient,
    subject: &Reference,
    artifact_type: &str,
    blobs: Vec<ArtifactBlob>,
    annotations: BTreeMap<String, String>,
) -> Result<Digest, RegistryError> {
    let subject_manifest = client.get_manifest(subject).await?;
    let subject_desc = subject_manifest.descriptor();
    let repo = subject.with_digest(subject_desc.digest.clone());
    let config = client
        .push_blob(&repo, OCI_EMPTY, Bytes::from_static(b"{}"))
        .await?;
    let mut layers = Vec::new();
    for b in blobs {
        let mut d = client.push_blob(&repo, &b.media_type, b.data).await?;
        d.annotations = b.annotations;
        layers.push(d);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact_type.to_owned()),
        config: Some(config),
        layers,
        subject: Some(subject_desc.clone()),
        annotations: annotations.clone(),
        ..Manifest::default()
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| RegistryError::json("artifact manifest", e))?;
    let digest = Digest::of(&bytes);
    client
        .push_manifest_raw(&repo.with_digest(digest.clone()), &bytes, OCI_MANIFEST)
        .await?;
    if referrers_api(client, &repo, &subject_desc.digest)
        .await?
        .is_none()
    {
        // Tag-schema fallback. The artifact's own tag is written first and races with nothing:
        // it is what makes the artifact discoverable by `list_referrers` even when two attaches
        // update the shared `sha256-<hex>` index at once and one update is lost.
        let own_tag = repo.with_tag(&artifact_tag(&subject_desc.digest, &digest))?;
        client
            .push_manifest_raw(&own_tag, &bytes, OCI_MANIFEST)
            .await?;
        let mut d = Descriptor::for_bytes(OCI_MANIFEST, &bytes);
        d.artifact_type = Some(artifact_type.to_owned());
        d.annotations = annotations;
        update_fallback_index(client, &repo, &subject_desc.digest, d).await?;
    }
    Ok(digest)
}

/// The per-artifact fallback tag: `sha256-<subject hex>.<first 32 hex of the artifact>` (104
/// characters, within the 128 a tag may have).
fn artifact_tag(subject: &Digest, artifact: &Digest) -> String {
    format!("{}.{}", subject.referrers_tag(), &artifact.hex()[..32])
}

/// Adds `entry` to the `sha256-<hex>` fallback index (the standard place other tools look).
///
/// The registry offers no compare-and-swap, so the read-modify-write is checked afterwards: the
/// index is read back after a short random pause and rewritten if a concurrent update dropped
/// the entry (a bounded number of times). Readers of shipline do not depend on the index alone:
/// see [`list_referrers`].
async fn update_fallback_index(
    client: &RegistryClient,
    repo: &Reference,
    subject: &Digest,
    entry: Descriptor,
) -> Result<(), RegistryError> {
    let tag_ref = repo.with_tag(&subject.referrers_tag())?;
    for _ in 0..4 {
        let mut index = match client.get_manifest(&tag_ref).await {
            Ok(m) => Manifest::parse(&m.bytes, "referrers fallback index")?,
            Err(RegistryError::NotFound { .. }) => Manifest {
                schema_version: 2,
                media_type: Some(OCI_INDEX.to_owned()),
                ..Manifest::default()
            },
            Err(e) => return Err(e),
        };
        if index.manifests.iter().any(|d| d.digest == entry.digest) {
            return Ok(());
        }
        index.manifests.push(entry.clone());
        let index_bytes =
            serde_json::to_vec(&index).map_err(|e| RegistryError::json("referrers index", e))?;
        client
            .push_manifest_raw(&tag_ref, &index_bytes, OCI_INDEX)
            .await?;
        let pause = 20 + rand::random::<u64>() % 80;
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    // Still racing after several rounds: the artifact stays discoverable through its own tag.
    Ok(())
}

/// `Some(descriptors)` from `GET /v2/<repo>/referrers/<digest>`, `None` when the registry does
/// not implement the API (404 or not an index).
async fn referrers_api(
    client: &RegistryClient,
    repo: &Reference,
    digest: &Digest,
) -> Result<Option<Vec<Descriptor>>, RegistryError> {
    let host = repo.api_host().to_owned();
    let resp = client
        .request(
            &host,
            &Scope::pull(repo.repository()),
            "list referrers",
            &mut |c, base| {
                Ok(c.get(format!(
                    "{base}/v2/{}/referrers/{digest}",
                    repo.repository()
                ))
                .header(reqwest::header::ACCEPT, OCI_INDEX))
            },
        )
        .await?;
    if resp.status() != reqwest::StatusCode::OK {
        return Ok(None);
    }
    let is_index = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(OCI_INDEX));
    if !is_index {
        return Ok(None);
    }
    let bytes = resp.bytes().await.map_err(|e| RegistryError::Http {
        op: "read referrers".into(),
        url: repo.repository_url_name(),
        source: e.without_url(),
    })?;
    Ok(Some(Manifest::parse(&bytes, "referrers index")?.manifests))
}

/// The artifacts attached to `subject`, optionally only those of `artifact_type`: from the
/// referrers API, else from the `sha256-<hex>` fallback tag (none when it does not exist).
pub async fn list_referrers(
    client: &RegistryClient,
    subject: &Reference,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, RegistryError> {
    let digest = client.resolve_digest(subject).await?;
    let repo = subject.with_digest(digest.clone());
    let all = match referrers_api(client, &repo, &digest).await? {
        Some(list) => list,
        None => fallback_referrers(client, &repo, &digest).await?,
    };
    Ok(all
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
        .collect())
}

/// Referrers without the referrers API: the `sha256-<hex>` index, plus the artifacts whose own
/// `sha256-<hex>.<artifact>` tag the index misses (an index update lost to a concurrent attach).
async fn fallback_referrers(
    client: &RegistryClient,
    repo: &Reference,
    subject: &Digest,
) -> Result<Vec<Descriptor>, RegistryError> {
    let mut all = match client
        .get_manifest(&repo.with_tag(&subject.referrers_tag())?)
        .await
    {
        Ok(m) => Manifest::parse(&m.bytes, "referrers fallback index")?.manifests,
        Err(RegistryError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let prefix = format!("{}.", subject.referrers_tag());
    let tags = match client.list_tags(repo).await {
        Ok(t) => t,
        Err(RegistryError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    for tag in tags.iter().filter(|t| t.starts_with(&prefix)) {
        let short = &tag[prefix.len()..];
        if all.iter().any(|d| d.digest.hex().starts_with(short)) {
            continue;
        }
        let fetched = match client.get_manifest(&repo.with_tag(tag)?).await {
            Ok(m) => m,
            // deleted between listing and reading
            Err(RegistryError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let m = Manifest::parse(&fetched.bytes, "referrer artifact manifest")?;
        if m.subject.as_ref().map(|d| &d.digest) != Some(subject) {
            continue;
        }
        let mut d = Descriptor::for_bytes(&fetched.media_type, &fetched.bytes);
        d.artifact_type = m
            .artifact_type
            .clone()
            .or_else(|| m.config.as_ref().map(|c| c.media_type.clone()));
        d.annotations = m.annotations;
        all.push(d);
    }
    Ok(all)
}
