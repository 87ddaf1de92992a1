//! Approval and CI tests: signed approvals bound to a digest, OpenSSH interop, GitHub workflows.

mod ci;
mod common;
mod openssh;
mod props;
mod registry;
mod storage;
mod verify;
