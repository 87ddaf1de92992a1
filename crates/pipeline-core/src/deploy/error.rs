//! Errors of the deploy module.

use std::path::{Path, PathBuf};

use crate::engine::EngineError;

/// Everything that can stop a deploy. Errors raised after the env file was written never
/// reach the caller unhandled: the deploy rolls back and reports a failed outcome instead.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Neither `docker compose` nor `docker-compose` works.
    #[error("failed to find a compose CLI: neither `docker compose` (v2) nor `docker-compose` (v1) runs")]
    NoCompose,
    /// An external program could not be started.
    #[error("failed to start {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A compose command exited non-zero.
    #[error("failed to run `{command}` (exit {}): {stderr}", code.map_or("signal/timeout".to_string(), |c| c.to_string()))]
    Compose {
        /// The compose subcommand.
        command: String,
        /// Its exit code.
        code: Option<i32>,
        /// The last lines of its error output.
        stderr: String,
    },
    /// A file operation failed.
    #[error("failed to access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The env file could not be read or written.
    #[error(transparent)]
    EnvFile(#[from] shipline_envfile::EnvError),
    /// The store could not be written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Another deploy holds the environment's lock.
    #[error("failed to lock environment {env}: another deploy holds it{}; retry with --lock-wait", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Locked {
        /// The environment.
        env: String,
        /// Who holds it.
        holder: Option<String>,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A preflight check failed; nothing was changed.
    #[error("failed preflight for environment {env}: {reason}")]
    Preflight {
        /// The environment.
        env: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The image is neither present nor pullable.
    #[error("failed to find image {image}: not present locally and the pull failed ({reason})")]
    MissingImage {
        /// The reference.
        image: String,
        /// Why the pull failed.
        reason: String,
    },
    /// The image's digest is not the one asked for.
    #[error("failed to verify digest of {image}: expected {expected}, the image has {found:?}")]
    DigestMismatch {
        /// The reference.
        image: String,
        /// The requested digest.
        expected: String,
        /// The digests the image has.
        found: Vec<String>,
    },
    /// The deploy hook exited non-zero.
    #[error("failed to run deploy hook {} (exit {}): {tail}", path.display(), code.map_or("signal/timeout".to_string(), |c| c.to_string()))]
    Hook {
        /// The hook.
        path: PathBuf,
        /// Its exit code.
        code: Option<i32>,
        /// Its last output lines.
        tail: String,
    },
    /// Services did not become healthy, or the stack runs the wrong version.
    #[error("failed to verify {what}")]
    Unhealthy {
        /// What failed (service, container, state).
        what: String,
    },
    /// The HTTP check failed.
    #[error("failed HTTP check {url}: {reason}")]
    HttpCheck {
        /// The URL.
        url: String,
        /// Status or error.
        reason: String,
    },
    /// The deploy gate (e.g. the approval policy) refused; nothing was changed.
    #[error("failed to pass the deploy gate for environment {env}: {reason}")]
    Refused {
        /// The environment.
        env: String,
        /// Why.
        reason: String,
    },
    /// There is no earlier version to roll back to.
    #[error("failed to roll back environment {env}: no earlier successful deployment is recorded")]
    NothingToRollBack {
        /// The environment.
        env: String,
    },
    /// The environment is not in the config.
    #[error("failed to find environment {0} in the config")]
    UnknownEnvironment(String),
}

impl DeployError {
    pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> DeployError + '_ {
        move |source| DeployError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The process exit code this error maps to (see [`crate::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            DeployError::NoCompose
            | DeployError::Spawn { .. }
            | DeployError::Io { .. }
            | DeployError::Store(_)
            | DeployError::EnvFile(_)
            | DeployError::Engine(_) => crate::exit::TOOL,
            DeployError::UnknownEnvironment(_) => crate::exit::USAGE,
            _ => crate::exit::FAILED,
        }
    }
}
