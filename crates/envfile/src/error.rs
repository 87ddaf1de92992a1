//! Errors of file operations.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::document::EditError;

/// Errors of reading, locking and writing env files. Messages name paths and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The file could not be read.
    #[error("failed to read env file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file does not exist (and creating it was not allowed).
    #[error("failed to read env file {}: it does not exist", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("failed to read env file {}: not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The path exists but is not a regular file (after following symlinks).
    #[error("failed to edit env file {}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A symlink that cannot be followed (dangling, or a loop).
    #[error("failed to resolve symlink {}", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The sidecar lock could not be taken.
    #[error("failed to lock {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another writer held the lock for too long.
    #[error("failed to lock {}: still held by another writer after {} s", path.display(), waited.as_secs())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// Writing the temporary file, renaming it or syncing failed; the original is untouched.
    #[error("failed to write env file {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The new file could not be given the original owner; the original is untouched.
    #[error("failed to preserve the owner of env file {}", path.display())]
    Owner {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The backup copy could not be written; the original is untouched.
    #[error("failed to write backup {}", path.display())]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<EnvError>,
    },
    /// The requested edit is not possible.
    #[error("failed to edit env file {}", path.display())]
    Edit {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: EditError,
    },
}
