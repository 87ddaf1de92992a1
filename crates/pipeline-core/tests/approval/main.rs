//! Approval and CI tests: signed approvals bound to a digest, OpenSSH interop, GitHub workflows.

mod ci;
mod common;
mod openssh;
mod props;
mod registry;
#[path = "../deploy/support/registry.rs"]
mod registry_support;
mod storage;
mod verify;
