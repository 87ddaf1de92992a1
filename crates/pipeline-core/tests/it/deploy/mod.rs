//! Deploy and engine integration tests against the real Docker engine and compose CLI.
//!
//! Every test builds its own tiny scratch+busybox images under a unique repository and uses a
//! unique compose project, removed again when the test's [`support::Stack`] drops.

pub(crate) mod support;

mod config_stack;
mod engine_ops;
mod faults;
mod flow;
mod images;
mod locking;
mod zero_downtime;
