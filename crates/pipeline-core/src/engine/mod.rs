//! The Docker engine, spoken to through bollard: build, test containers, export, health,
//! container inspection and engine events.
//!
//! This is the only module of shipline that talks to the engine. Every long operation reports
//! progress as typed [`EngineEvent`]s through a callback; nothing here prints.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shipline_core::engine::EngineError> {
//! use shipline_core::engine::{BuildRequest, Engine};
//! let engine = Engine::connect().await?;
//! let req = BuildRequest::new("./app".into(), vec!["example/app:0123abc".into()]);
//! let built = engine.build(&req, &|ev| eprintln!("{ev:?}")).await?;
//! println!("built {}", built.image_id);
//! # Ok(()) }
//! ```

mod build;
mod containers;
mod context;
mod error;
mod events;
mod export;
mod run;

pub use build::{oci_labels, split_reference, BuildOutput, BuildRequest};
pub use containers::{ContainerInfo, Health, ImageInfo};
pub use context::{collect_context, BuildContext, ContextPolicy};
pub use error::EngineError;
pub use events::ContainerEvent;
pub use export::{ExportOutput, ScratchExport};
pub use run::{TestOutcome, TestRequest};

use bollard::Docker;

/// A progress event from a long engine operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A line of build output from the daemon.
    BuildOutput {
        /// The line, without its trailing newline.
        line: String,
    },
    /// A warning the caller must show (e.g. an env file in the build context).
    Warning {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A line of output from a test container.
    TestOutput {
        /// `stdout` or `stderr`.
        stream: String,
        /// The line, without its trailing newline.
        line: String,
    },
    /// Bytes of an image export written so far.
    ExportProgress {
        /// Bytes written.
        bytes: u64,
    },
}

/// A connection to the Docker engine, with the API version negotiated with the daemon.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects with the local defaults (`DOCKER_HOST` or the unix socket) and negotiates the
    /// API version, so older daemons (API 1.41) are spoken to in their own version.
    pub async fn connect() -> Result<Engine, EngineError> {
        let docker = Docker::connect_with_local_defaults().map_err(EngineError::Connect)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(EngineError::Connect)?;
        docker.ping().await.map_err(EngineError::Connect)?;
        Ok(Engine { docker })
    }

    /// The underlying bollard client, for operations this module does not wrap yet.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}
