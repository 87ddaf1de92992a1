//! shipline-core: the pipeline that takes a commit from build to a verified deployment.
//!
//! Config ([`config`]), plan, stages and executor, the Docker engine, deploy, approvals and the
//! run store. The leaf crates ([`shipline_envfile`], [`shipline_scanners`],
//! [`shipline_registry`]) are composed here.

pub mod exit;
pub mod approval;
pub mod ci;
pub mod deploy;
pub mod engine;
