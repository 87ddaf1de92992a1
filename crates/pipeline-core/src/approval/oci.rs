//! Approvals travelling with the image: an OCI artifact whose `subject` is the approved image
//! manifest, found again through the referrers API (or its `sha256-<hex>` tag fallback).
//!
//! The artifact manifest has `artifactType` [`ARTIFACT_TYPE`], the empty config, and two layers:
//! the payload ([`PAYLOAD_MEDIA_TYPE`]) and the armored SSHSIG ([`SIGNATURE_MEDIA_TYPE`]), i.e.
//! exactly the two files of the local store. Nothing in the artifact is trusted: a deploy host
//! verifies what it fetches with [`super::verify_approvals`] like any other candidate.

use std::collections::BTreeMap;

use shipline_registry::manifest::Manifest;
use shipline_registry::{
    attach_artifact, list_referrers, ArtifactBlob, Digest, Reference, RegistryClient, RegistryError,
};

use super::sign::{Origin, SignedApproval};
use super::storage::Revocation;
use super::ApprovalError;

/// `artifactType` of approval artifacts.
pub const ARTIFACT_TYPE: &str = "application/vnd.shipline.approval.v1";
/// Media type of the payload layer (canonical JSON of the approval).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.shipline.approval.v1+json";
/// Media type of the signature layer (`-----BEGIN SSH SIGNATURE-----`).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.shipline.approval.sig.v1+sshsig";
/// `artifactType` of revocation artifacts.
pub const REVOCATION_ARTIFACT_TYPE: &str = "application/vnd.shipline.revocation.v1";
/// Media type of the revocation layer (the [`Revocation`] as JSON).
pub const REVOCATION_MEDIA_TYPE: &str = "application/vnd.shipline.revocation.v1+json";

/// What the registry holds for one image digest: approvals (unverified candidates) and
/// revocations.
#[derive(Debug, Clone, Default)]
pub struct RemoteApprovals {
    /// Approval artifacts, to be verified like any other candidate.
    pub approvals: Vec<SignedApproval>,
    /// Revocation artifacts. They are not signed: a revocation can only take an approval away,
    /// and whoever may push to the repository can already delete the image itself.
    pub revocations: Vec<Revocation>,
}

fn remote(what: String) -> impl FnOnce(RegistryError) -> ApprovalError {
    move |e| ApprovalError::Remote {
        source_name: what,
        source: Box::new(e),
    }
}

/// `repository@digest` as a registry reference.
fn subject_ref(repository: &str, digest: &str) -> Result<Reference, ApprovalError> {
    Reference::parse(&format!("{repository}@{digest}"))
        .map_err(remote(format!("{repository}@{digest}")))
}

/// Attaches a signed approval to the image it approves (`approval.image@approval.digest`).
/// Returns the artifact manifest's digest. The image must exist in the registry.
pub async fn push_approval(
    client: &RegistryClient,
    signed: &SignedApproval,
) -> Result<Digest, ApprovalError> {
    let approval = signed
        .approval_unverified()
        .map_err(|e| ApprovalError::InvalidApproval {
            reason: format!("payload does not parse: {e}"),
        })?;
    let subject = subject_ref(&approval.image, &approval.digest)?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        approval.created.to_rfc3339(),
    );
    annotations.insert(
        "dev.shipline.approval.environment".to_string(),
        approval.environment.clone(),
    );
    annotations.insert(
        "dev.shipline.approval.approver".to_string(),
        approval.approver.clone(),
    );
    annotations.insert("dev.shipline.approval.id".to_string(), signed.id());
    let blobs = vec![
        ArtifactBlob {
            media_type: PAYLOAD_MEDIA_TYPE.to_string(),
            data: signed.payload.clone().into(),
            annotations: BTreeMap::new(),
        },
        ArtifactBlob {
            media_type: SIGNATURE_MEDIA_TYPE.to_string(),
            data: signed.signature.clone().into_bytes().into(),
            annotations: BTreeMap::new(),
        },
    ];
    attach_artifact(client, &subject, ARTIFACT_TYPE, blobs, annotations)
        .await
        .map_err(remote(format!("{}@{}", approval.image, approval.digest)))
}

/// Every approval artifact attached to `repository@digest`, as unverified candidates.
///
/// Artifacts that lack a payload or a signature layer are skipped (they could never verify);
/// registry and network errors are returned, so a deploy fails closed rather than silently
/// ignoring the registry.
pub async fn fetch_approvals(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
) -> Result<Vec<SignedApproval>, ApprovalError> {
    Ok(fetch(client, repository, digest, false).await?.approvals)
}

/// The approvals and the revocations attached to `repository@digest` (what a deploy checks).
///
/// Errors as [`fetch_approvals`]; a revocation artifact that cannot be read is an error too
/// (ignoring it could let a revoked approval through).
pub async fn fetch_remote(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
) -> Result<RemoteApprovals, ApprovalError> {
    fetch(client, repository, digest, true).await
}

/// Attaches a revocation to the image the revoked approval approves (`repository@digest`),
/// so that every deploy host reading the registry honours it. Returns the artifact digest.
pub async fn push_revocation(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    revocation: &Revocation,
) -> Result<Digest, ApprovalError> {
    let subject = subject_ref(repository, digest)?;
    let data = serde_json::to_vec(revocation).map_err(|e| ApprovalError::InvalidApproval {
        reason: format!("failed to encode the revocation: {e}"),
    })?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        revocation.revoked_at.to_rfc3339(),
    );
    annotations.insert(
        "dev.shipline.approval.id".to_string(),
        revocation.id.clone(),
    );
    let blobs = vec![ArtifactBlob {
        media_type: REVOCATION_MEDIA_TYPE.to_string(),
        data: data.into(),
        annotations: BTreeMap::new(),
    }];
    attach_artifact(
        client,
        &subject,
        REVOCATION_ARTIFACT_TYPE,
        blobs,
        annotations,
    )
    .await
    .map_err(remote(format!("{repository}@{digest}")))
}

async fn fetch(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    revocations: bool,
) -> Result<RemoteApprovals, ApprovalError> {
    let where_ = format!("{repository}@{digest}");
    let subject = subject_ref(repository, digest)?;
    let descriptors = list_referrers(client, &subject, None)
        .await
        .map_err(remote(where_.clone()))?;
    let mut out = RemoteApprovals::default();
    for desc in descriptors {
        let kind = desc.artifact_type.as_deref();
        let is_revocation = kind == Some(REVOCATION_ARTIFACT_TYPE);
        if kind != Some(ARTIFACT_TYPE) && !(revocations && is_revocation) {
            continue;
        }
        let artifact = subject.with_digest(desc.digest.clone());
        let fetched = client
            .get_manifest(&artifact)
            .await
            .map_err(remote(format!("{repository}@{}", desc.digest)))?;
        let manifest = Manifest::parse(&fetched.bytes, "approval artifact");
        if is_revocation {
            let unreadable = |reason: String| ApprovalError::InvalidApproval {
                reason: format!(
                    "revocation {repository}@{} cannot be read: {reason}",
                    desc.digest
                ),
            };
            let manifest = manifest.map_err(|e| unreadable(e.to_string()))?;
            let layer = manifest
                .layers
                .iter()
                .find(|l| l.media_type == REVOCATION_MEDIA_TYPE)
                .ok_or_else(|| unreadable("no revocation layer".into()))?;
            let bytes = client
                .get_blob_bytes(&subject, layer)
                .await
                .map_err(remote(format!("{repository}@{}", layer.digest)))?;
            let rev: Revocation =
                serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
            out.revocations.push(rev);
            continue;
        }
        let Ok(manifest) = manifest else {
            continue;
        };
        let layer = |mt: &str| manifest.layers.iter().find(|l| l.media_type == mt).cloned();
        let (Some(p), Some(s)) = (layer(PAYLOAD_MEDIA_TYPE), layer(SIGNATURE_MEDIA_TYPE)) else {
            continue;
        };
        let payload = client
            .get_blob_bytes(&subject, &p)
            .await
            .map_err(remote(format!("{repository}@{}", p.digest)))?;
        let signature = client
            .get_blob_bytes(&subject, &s)
            .await
            .map_err(remote(format!("{repository}@{}", s.digest)))?;
        out.approvals.push(SignedApproval {
            payload,
            signature: String::from_utf8_lossy(&signature).into_owned(),
            origin: Origin::Registry(format!("{repository}@{}", desc.digest)),
        });
    }
    Ok(out)
}
