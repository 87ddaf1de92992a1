//! Approvals bound to an image digest, signed in the SSHSIG format (work in progress).
