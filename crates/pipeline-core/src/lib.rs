//! shipline-core: the pipeline that takes a commit from build to a verified deployment.
//!
//! [`config`] loads `shipline.toml`; [`plan`] turns a branch into a DAG of stages;
//! [`executor`] runs [`executor::Stage`]s concurrently as the DAG allows, emitting typed
//! [`events::Event`]s and writing a versioned [`run::RunRecord`] to the [`store`] after every
//! step. The Docker engine ([`engine`]), deploy ([`deploy`]) and approvals ([`approval`]) build
//! on the leaf crates [`shipline_envfile`], [`shipline_scanners`] and [`shipline_registry`].
//!
//! ```no_run
//! use shipline_core::{config::Config, plan};
//! let config = Config::load(std::path::Path::new("shipline.toml"))?;
//! let plan = plan::plan_for_branch(&config, "dev")?;
//! for stage in &plan.stages {
//!     println!("{} needs {:?}", stage.id, stage.needs);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod approval;
pub mod ci;
pub mod config;
pub mod deploy;
pub mod engine;
pub mod events;
pub mod executor;
pub mod exit;
pub mod graph;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod store;
