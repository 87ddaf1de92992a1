//! The error type of every registry operation.

use std::path::PathBuf;

/// Everything that can go wrong while talking to a registry or an image store.
///
/// Messages are lowercase and never contain credentials: URLs carry no user info and
/// response bodies are reduced to the registry's error codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A malformed image reference.
    #[error("failed to parse image reference `{input}`: {reason}")]
    InvalidReference {
        /// What the user wrote.
        input: String,
        /// Why it is not a reference.
        reason: String,
    },
    /// A malformed image location (`oci:DIR`, `docker://REF`, ...).
    #[error("failed to parse image location `{input}`: {reason}")]
    InvalidLocation {
        /// What the user wrote.
        input: String,
        /// Why it is not a location.
        reason: String,
    },
    /// A transport-level failure (connection refused, reset, TLS).
    #[error("failed to {op} {url}")]
    Http {
        /// The operation, e.g. "upload blob".
        op: String,
        /// The URL (never with credentials).
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("failed to {op} {url}: registry answered HTTP {status}{detail}")]
    Status {
        /// The operation.
        op: String,
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error codes, if it sent any (`: CODE message`).
        detail: String,
        /// The delay the registry asked for with `Retry-After`, if any.
        retry_after: Option<std::time::Duration>,
    },
    /// Authentication was refused or could not be negotiated.
    #[error("failed to authenticate to {registry}: {reason}")]
    Auth {
        /// The registry host.
        registry: String,
        /// What went wrong (never the credential).
        reason: String,
    },
    /// A retryable failure that kept failing.
    #[error("failed to {op} {url}: gave up after {attempts} attempts")]
    RetriesExhausted {
        /// The operation.
        op: String,
        /// The URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<RegistryError>,
    },
    /// Content did not hash to the digest it was fetched by.
    #[error("failed to verify blob {expected}: content has digest {actual} ({size} bytes)")]
    DigestMismatch {
        /// The digest the content should have.
        expected: String,
        /// The digest it has.
        actual: String,
        /// How many bytes were read.
        size: u64,
    },
    /// Content had another size than its descriptor says.
    #[error("failed to verify blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: String,
        /// The size in the descriptor.
        expected: u64,
        /// The size read.
        actual: u64,
    },
    /// A local file operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// The operation, e.g. "write blob".
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, index, config) could not be parsed.
    #[error("failed to parse {what}")]
    Json {
        /// What was parsed, e.g. "manifest of ghcr.io/org/app:1".
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A document is well-formed JSON but not what it should be.
    #[error("failed to read {what}: {reason}")]
    Invalid {
        /// What was read.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something asked for does not exist.
    #[error("failed to find {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The registry does not allow deleting this (HTTP 400 or 405).
    #[error("failed to delete {what}: the registry does not allow it (HTTP {status}{detail})")]
    DeleteUnsupported {
        /// What should have been deleted.
        what: String,
        /// 400 or 405.
        status: u16,
        /// The registry's error codes.
        detail: String,
    },
    /// Credentials could not be read from the docker config or a helper.
    #[error("failed to read credentials for {registry}: {reason}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// Why (never the credential).
        reason: String,
    },
    /// A feature that does not exist yet.
    #[error("{what}: not implemented yet")]
    NotImplemented {
        /// The missing feature.
        what: String,
    },
}

impl RegistryError {
    /// Whether retrying the same request may succeed (408, 429, 5xx, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Http { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body()
                    || source.is_decode()
            }
            RegistryError::Status { status, .. } => is_retryable_status(*status),
            RegistryError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
            ),
            // a corrupted transfer may be a flaky proxy: fetching again is cheap and safe
            RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn io(
        op: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RegistryError::Io {
            op: op.into(),
            path: path.into(),
            source,
        }
    }

    /// The `Retry-After` delay the registry asked for, if this is such an answer.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        RegistryError::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        RegistryError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Statuses worth retrying: request timeout, too many requests and server errors
/// (except 501 Not Implemented, which will not change).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505)
}
