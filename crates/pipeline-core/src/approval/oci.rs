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
use super::ApprovalError;

/// `artifactType` of approval artifacts.
pub const ARTIFACT_TYPE: &str = "application/vnd.shipline.approval.v1";
/// Media type of the payload layer (canonical JSON of the approval).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.shipline.approval.v1+json";
/// Media type of the signature layer (`-----BEGIN SSH SIGNATURE-----`).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.shipline.approval.sig.v1+sshsig";

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
    let where_ = format!("{repository}@{digest}");
    let subject = subject_ref(repository, digest)?;
    let descriptors = list_referrers(client, &subject, Some(ARTIFACT_TYPE))
        .await
        .map_err(remote(where_.clone()))?;
    let mut out = Vec::new();
    for desc in descriptors {
        let artifact = subject.with_digest(desc.digest.clone());
        let fetched = client
            .get_manifest(&artifact)
            .await
            .map_err(remote(format!("{repository}@{}", desc.digest)))?;
        let Ok(manifest) = Manifest::parse(&fetched.bytes, "approval artifact") else {
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
        out.push(SignedApproval {
            payload,
            signature: String::from_utf8_lossy(&signature).into_owned(),
            origin: Origin::Registry(format!("{repository}@{}", desc.digest)),
        });
    }
    Ok(out)
}
