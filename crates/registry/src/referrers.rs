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
        // tag-schema fallback: sha256-<hex> names an index of the referrers
        let tag_ref = repo.with_tag(&subject_desc.digest.referrers_tag())?;
        let mut index = match client.get_manifest(&tag_ref).await {
            Ok(m) => Manifest::parse(&m.bytes, "referrers fallback index")?,
            Err(RegistryError::NotFound { .. }) => Manifest {
                schema_version: 2,
                media_type: Some(OCI_INDEX.to_owned()),
                ..Manifest::default()
            },
            Err(e) => return Err(e),
        };
        if !index.manifests.iter().any(|d| d.digest == digest) {
            let mut d = Descriptor::for_bytes(OCI_MANIFEST, &bytes);
            d.artifact_type = Some(artifact_type.to_owned());
            d.annotations = annotations;
            index.manifests.push(d);
        }
        let index_bytes =
            serde_json::to_vec(&index).map_err(|e| RegistryError::json("referrers index", e))?;
        client
            .push_manifest_raw(&tag_ref, &index_bytes, OCI_INDEX)
            .await?;
    }
    Ok(digest)
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
        None => match client
            .get_manifest(&repo.with_tag(&digest.referrers_tag())?)
            .await
        {
            Ok(m) => Manifest::parse(&m.bytes, "referrers fallback index")?.manifests,
            Err(RegistryError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        },
    };
    Ok(all
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
        .collect())
}
