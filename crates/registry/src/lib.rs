//! shipline-registry: an OCI registry client that streams, skips, mounts, retries and promotes
//! by digest.
//!
//! Speaks the OCI distribution API with `reqwest` directly and provides what `oci-client` 0.18
//! lacks (`oci-client` =0.18 is the test oracle for the reference grammar; see ARCHITECTURE.md,
//! "Decisions", for why it is not the transport): `HEAD` before upload, cross-repository mount with the spec-legal
//! 202 fallback and pull scope on the source, retries honouring `Retry-After`, re-auth on 401,
//! docker `config.json` and credential helpers, deletion, paginated tags, referrers with the
//! tag fallback, and OCI layouts / `docker save` archives as local stores. Blobs are always
//! streamed (never held in memory) and manifests travel as their exact bytes, so a copy
//! preserves the digest.
//!
//! ```no_run
//! use shipline_registry::{copy, ClientOptions, CopyOptions, ImageStore, RegistryClient};
//! # async fn demo() -> Result<(), shipline_registry::RegistryError> {
//! let client = RegistryClient::new(ClientOptions::default())?;
//! let src = ImageStore::parse("oci:.shipline/oci:build-42")?;
//! let dst = ImageStore::parse("ghcr.io/org/app:build-42")?;
//! let report = copy(&client, &src, &dst, &CopyOptions::default()).await?;
//! // promote the exact bytes: same digest, zero blob bytes sent
//! let prod = ImageStore::parse("ghcr.io/org/app:prod")?;
//! let promoted = copy(&client, &dst, &prod, &CopyOptions::default()).await?;
//! assert_eq!(report.digest, promoted.digest);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod auth;
mod client;
mod copy;
mod digest;
mod error;
mod files;
mod layout;
pub mod manifest;
mod reference;
mod referrers;
mod remote;
mod retry;
mod store;
mod tags;

pub use auth::{credentials_from_docker_config, docker_config_path, Credentials, Secret};
pub use client::{ClientOptions, RegistryClient};
pub use copy::{copy, resolve_digest, CopyOptions, CopyReport, ProgressEvent, ProgressSink};
pub use digest::Digest;
pub use error::RegistryError;
pub use layout::OciLayout;
pub use manifest::{Descriptor, Platform};
pub use reference::{valid_tag, Reference};
pub use referrers::{attach_artifact, list_referrers, ArtifactBlob};
pub use remote::{chunk_size_for, UploadMode, GHCR_MAX_CHUNK};
pub use retry::RetryPolicy;
pub use store::{FetchedManifest, ImageStore};
pub use tags::{image_created, prune, PruneAction, PruneEntry, PruneOptions, PruneReport};
