//! Safe writes: sidecar lock, atomic replace, mode and owner preserved, optional backup.
//!
//! # How a write happens
//!
//! 1. The path is resolved: **a symlink is followed** and its final target is edited in place
//!    (the link itself stays a link; the target is replaced atomically inside the target's own
//!    directory). `sed -i` would instead replace the link with a regular file, silently
//!    detaching `.env -> .env.prod`. A dangling link is an error; it is never replaced.
//! 2. An exclusive advisory lock (`flock`) is taken on a sidecar file next to the target,
//!    `<name>.lock` (created with mode 0600 and left in place). The env file itself is never
//!    locked: the rename swaps its inode, so a lock on it would protect nothing. Every writer
//!    in this crate takes the lock before reading, so read-modify-write cycles serialize.
//! 3. The previous content is copied to the backup path, if one is asked for (atomically, mode
//!    0600).
//! 4. The new content goes to a temporary file `.<name>.tmp-<pid>-<n>` created in the same
//!    directory with `O_EXCL`; it gets the original mode (0600 stays 0600; new files get
//!    [`WriteOptions::create_mode`]) and owner, is fsynced, renamed over the target, and the
//!    directory is fsynced. A crash at any moment leaves either the old or the new file. Temp
//!    files left by a crashed writer are removed by the next writer (under the lock).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use crate::document::{Document, SetOptions};
use crate::error::EnvError;

/// Options of every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Copy the previous content here before replacing the file (only when the file exists).
    pub backup: Option<PathBuf>,
    /// Create the file when it does not exist (otherwise [`EnvError::NotFound`]).
    pub create: bool,
    /// Permission bits of a newly created file.
    pub create_mode: u32,
    /// How long to wait for another writer's lock; `None` waits forever.
    pub lock_timeout: Option<Duration>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            backup: None,
            create: true,
            create_mode: 0o600,
            lock_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The file actually written (the symlink target when the path was a link).
    pub path: PathBuf,
    /// Whether the content changed (an edit that changes nothing writes nothing).
    pub changed: bool,
    /// Whether the file did not exist before.
    pub created: bool,
    /// Where the previous content was saved, if a backup was asked for and written.
    pub backup: Option<PathBuf>,
}

/// The result of [`set_keys`].
#[derive(Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// For each key, its effective value before the edit (from the file alone), `None` when
    /// it was not set.
    pub previous: Vec<(String, Option<String>)>,
    /// What the write did.
    pub write: WriteOutcome,
}

impl SetOutcome {
    /// The backup path, if one was written.
    pub fn backup(&self) -> Option<&Path> {
        self.write.backup.as_deref()
    }
}

impl std::fmt::Debug for SetOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<(&str, &str)> = self
            .previous
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if v.is_some() { "<redacted>" } else { "<unset>" },
                )
            })
            .collect();
        f.debug_struct("SetOutcome")
            .field("previous", &previous)
            .field("write", &self.write)
            .finish()
    }
}

/// Resolves the file to write: follows symlinks to their final target.
pub fn resolve_target(path: &Path) -> Result<PathBuf, EnvError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = fs::canonicalize(path).map_err(|source| EnvError::Symlink {
                path: path.to_path_buf(),
                source,
            })?;
            match fs::metadata(&target) {
                Ok(m) if m.is_file() => Ok(target),
                Ok(_) => Err(EnvError::NotAFile { path: target }),
                Err(source) => Err(EnvError::Symlink {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Ok(m) if m.is_file() => Ok(path.to_path_buf()),
        Ok(_) => Err(EnvError::NotAFile {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling symlink reports NotFound from canonicalize but exists as a link:
            // handled above. Here the path really does not exist.
            Ok(path.to_path_buf())
        }
        Err(source) => Err(EnvError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The sidecar lock file of an env file: `<name>.lock` beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    target.with_file_name(name)
}

/// An exclusive lock on an env file's sidecar lock; released on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock of `target` (an already resolved path), waiting up to `timeout`.
    pub fn acquire(target: &Path, timeout: Option<Duration>) -> Result<FileLock, EnvError> {
        let path = lock_path(target);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| EnvError::Lock {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        match timeout {
            None => FileExt::lock_exclusive(&file).map_err(|source| EnvError::Lock {
                path: path.clone(),
                source,
            })?,
            Some(limit) => loop {
                match FileExt::try_lock_exclusive(&file) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(source) => return Err(EnvError::Lock { path, source }),
                }
                if start.elapsed() >= limit {
                    return Err(EnvError::LockTimeout {
                        path,
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            },
        }
        Ok(FileLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads an env file as text; `Ok(None)` when it does not exist.
pub fn read_text(path: &Path) -> Result<Option<String>, EnvError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| EnvError::NotUtf8 {
                path: path.to_path_buf(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EnvError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads and parses an env file (no lock: a reader always sees a whole file, thanks to the
/// atomic renames).
pub fn read_document(path: &Path) -> Result<Document, EnvError> {
    match read_text(path)? {
        Some(text) => Ok(Document::parse(&text)),
        None => Err(EnvError::NotFound {
            path: path.to_path_buf(),
        }),
    }
}

/// Replaces the file's content atomically, under its lock (see the module documentation).
pub fn write_atomic(
    path: &Path,
    contents: &str,
    opts: &WriteOptions,
) -> Result<WriteOutcome, EnvError> {
    let target = resolve_target(path)?;
    let _lock = FileLock::acquire(&target, opts.lock_timeout)?;
    let previous = read_text(&target)?;
    write_locked(&target, contents, previous.as_deref(), opts)
}

/// Entry point for read-modify-write edits of one env file.
#[derive(Debug, Clone, Copy)]
pub struct EnvFile;

impl EnvFile {
    /// Locks the file, parses it (an absent file is an empty document when
    /// [`WriteOptions::create`] is set), runs `edit`, and writes the result atomically if it
    /// changed. The lock is held throughout, so concurrent edits serialize.
    pub fn edit<T>(
        path: &Path,
        opts: &WriteOptions,
        edit: impl FnOnce(&mut Document) -> Result<T, EnvError>,
    ) -> Result<(T, WriteOutcome), EnvError> {
        let target = resolve_target(path)?;
        let _lock = FileLock::acquire(&target, opts.lock_timeout)?;
        let original = read_text(&target)?;
        if original.is_none() && !opts.create {
            return Err(EnvError::NotFound { path: target });
        }
        let mut doc = Document::parse(original.as_deref().unwrap_or(""));
        let value = edit(&mut doc)?;
        let new = doc.render();
        if original.as_deref() == Some(new.as_str()) {
            let outcome = WriteOutcome {
                path: target,
                changed: false,
                created: false,
                backup: None,
            };
            return Ok((value, outcome));
        }
        let outcome = write_locked(&target, &new, original.as_deref(), opts)?;
        Ok((value, outcome))
    }
}

/// Sets several keys in one locked, atomic edit (earlier duplicates are left alone).
pub fn set_keys<K: AsRef<str>, V: AsRef<str>>(
    path: &Path,
    pairs: &[(K, V)],
    opts: &WriteOptions,
) -> Result<SetOutcome, EnvError> {
    set_keys_with(path, pairs, &SetOptions::default(), opts)
}

/// [`set_keys`] with control over earlier duplicates.
pub fn set_keys_with<K: AsRef<str>, V: AsRef<str>>(
    path: &Path,
    pairs: &[(K, V)],
    set: &SetOptions,
    opts: &WriteOptions,
) -> Result<SetOutcome, EnvError> {
    let (previous, write) = EnvFile::edit(path, opts, |doc| {
        let mut previous = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            previous.push((k.to_string(), doc.get(k)));
            doc.set_with(k, v, set).map_err(|source| EnvError::Edit {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(previous)
    })?;
    Ok(SetOutcome { previous, write })
}

/// Removes every occurrence of each key in one locked, atomic edit; returns the number of
/// lines removed.
pub fn unset_keys<K: AsRef<str>>(
    path: &Path,
    keys: &[K],
    opts: &WriteOptions,
) -> Result<(usize, WriteOutcome), EnvError> {
    let opts = WriteOptions {
        create: false,
        ..opts.clone()
    };
    EnvFile::edit(path, &opts, |doc| {
        Ok(keys.iter().map(|k| doc.unset(k.as_ref())).sum())
    })
}

/// Puts a backup written by an earlier edit back in place (locked and atomic, like any write).
pub fn restore_backup(
    path: &Path,
    backup: &Path,
    opts: &WriteOptions,
) -> Result<WriteOutcome, EnvError> {
    let content = read_text(backup)?.ok_or_else(|| EnvError::NotFound {
        path: backup.to_path_buf(),
    })?;
    let opts = WriteOptions {
        backup: None,
        ..opts.clone()
    };
    write_atomic(path, &content, &opts)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_prefix(target: &Path) -> String {
    format!(
        ".{}.tmp-",
        target.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Removes a temp file unless it was renamed into place.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn dir_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `contents` over `target` (resolved, lock held).
fn write_locked(
    target: &Path,
    contents: &str,
    previous: Option<&str>,
    opts: &WriteOptions,
) -> Result<WriteOutcome, EnvError> {
    if previous.is_none() && !opts.create {
        return Err(EnvError::NotFound {
            path: target.to_path_buf(),
        });
    }
    let meta = match fs::metadata(target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(EnvError::Write {
                path: target.to_path_buf(),
                source,
            })
        }
    };
    let mut backup_written = None;
    if let (Some(old), Some(backup)) = (previous, &opts.backup) {
        replace_file(backup, old, 0o600, None, true).map_err(|e| EnvError::Backup {
            path: backup.clone(),
            source: Box::new(e),
        })?;
        backup_written = Some(backup.clone());
    }
    remove_stale_temps(&dir_of(target), &temp_prefix(target));
    let mode = meta
        .as_ref()
        .map_or(opts.create_mode, |m| m.permissions().mode());
    let owner = meta.as_ref().map(|m| (m.uid(), m.gid()));
    replace_file(target, contents, mode, owner, false)?;
    Ok(WriteOutcome {
        path: target.to_path_buf(),
        changed: true,
        created: meta.is_none(),
        backup: backup_written,
    })
}

/// The atomic replace itself: a temp file in the same directory (`O_EXCL`, 0600 while being
/// written), given `owner` and `mode`, fsynced, renamed over `target`, directory fsynced.
fn replace_file(
    target: &Path,
    contents: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
    create_dir: bool,
) -> Result<(), EnvError> {
    let werr = |source: io::Error| EnvError::Write {
        path: target.to_path_buf(),
        source,
    };
    let dir = dir_of(target);
    if create_dir {
        fs::create_dir_all(&dir).map_err(werr)?;
    }
    let temp = dir.join(format!(
        "{}{}-{}",
        temp_prefix(target),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut guard = TempGuard {
        path: temp.clone(),
        armed: true,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(werr)?;
    file.write_all(contents.as_bytes()).map_err(werr)?;
    if let Some((uid, gid)) = owner {
        let mine = file.metadata().map_err(werr)?;
        if mine.uid() != uid || mine.gid() != gid {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|source| {
                EnvError::Owner {
                    path: target.to_path_buf(),
                    source,
                }
            })?;
        }
    }
    // After chown, which may clear set-id bits.
    file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(werr)?;
    file.sync_all().map_err(werr)?;
    drop(file);
    fs::rename(&temp, target).map_err(werr)?;
    guard.armed = false;
    sync_dir(&dir).map_err(werr)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
