//! CI integration: GitHub Actions workflows generated from the config, and the helpers commands
//! use inside Actions (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, annotations).
//!
//! ```no_run
//! use shipline_core::ci::github::{generate_workflows, write_workflows, GithubOptions};
//! use shipline_core::config::Config;
//!
//! let config = Config::load(std::path::Path::new("shipline.toml"))?;
//! let workflows = generate_workflows(&config, &GithubOptions::default())?;
//! write_workflows(std::path::Path::new(".github/workflows"), &workflows)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod actions;
pub mod github;

pub use actions::{annotation, format_output, AnnotationLevel, GithubActions};
pub use github::{generate_workflows, write_workflows, GithubOptions, Workflow};

use std::path::PathBuf;

/// Errors of the CI module.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// The config has no environment to generate a workflow for.
    #[error("failed to generate workflows from {path}: it defines no environments")]
    NoEnvironments {
        /// The config file.
        path: PathBuf,
    },
    /// A name that goes into the workflow is not a plain identifier.
    #[error("failed to generate workflows: {what} {value:?} may only contain letters, digits, '-', '_', '.' and '/'")]
    UnsafeName {
        /// What the name is (branch, environment name, ...).
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A `$GITHUB_OUTPUT` name is not a plain identifier.
    #[error(
        "failed to set step output {name:?}: names may only contain letters, digits, '-' and '_'"
    )]
    OutputName {
        /// The offending name.
        name: String,
    },
    /// A file could not be written.
    #[error("failed to {action} {path}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}
