//! Errors of the engine module.

use std::path::PathBuf;

/// Everything that can go wrong talking to the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine is not reachable.
    #[error("failed to connect to the docker engine")]
    Connect(#[source] bollard::errors::Error),
    /// An engine API call failed.
    #[error("failed to {action}")]
    Api {
        /// What was being done, e.g. "inspect container web-1".
        action: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading the build context failed.
    #[error("failed to read build context {path}")]
    Context {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The build context holds files that must never be sent to the daemon.
    #[error("refusing to send {files:?} in the build context of {context}: env files with secrets must not be baked into images; add them to .dockerignore or set `allow_env_files = true`")]
    ForbiddenContext {
        /// The context directory.
        context: PathBuf,
        /// The refused files, relative to the context.
        files: Vec<String>,
    },
    /// A `.dockerignore` pattern is invalid.
    #[error("failed to parse .dockerignore pattern {pattern:?} in {path}")]
    Ignore {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// The pattern.
        pattern: String,
        /// The glob error.
        #[source]
        source: globset::Error,
    },
    /// The daemon reported a build failure.
    #[error("failed to build image {tag}: {message}")]
    Build {
        /// The first tag requested.
        tag: String,
        /// The daemon's message.
        message: String,
    },
    /// A build request without any tag, or with only `latest`.
    #[error("failed to build image: {0}")]
    InvalidRequest(String),
    /// The test container did not finish in time (it was killed and removed).
    #[error("failed to run tests in {image}: timed out after {timeout:?}")]
    TestTimeout {
        /// The image.
        image: String,
        /// The timeout.
        timeout: std::time::Duration,
    },
    /// Writing an export failed.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Several networks carry one name; compose refuses such a name as ambiguous.
    #[error("{} networks are named {name} ({}); compose cannot tell them apart: remove the unused ones with `docker network rm ID` (`docker network inspect ID` shows which containers use each)", ids.len(), ids.join(", "))]
    AmbiguousNetwork {
        /// The network name.
        name: String,
        /// The IDs of the networks of that name, oldest first.
        ids: Vec<String>,
    },
    /// The archive produced by `docker save` was not understood.
    #[error("failed to read the image archive of {image}: {message}")]
    Archive {
        /// The image.
        image: String,
        /// What was wrong.
        message: String,
    },
}

impl EngineError {
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |source| EngineError::Api { action, source }
    }

    /// True when the engine answered 404 (no such image/container).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}
