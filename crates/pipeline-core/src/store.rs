//! The embedded run store: `.shipline/` beside the config, no server.
//!
//! Layout: `runs/<id>.json` (versioned run records), `audit.log` (JSON lines, append-only),
//! `locks/<env>.lock`, `approvals/<env>/`, `backups/<env>/`, `deployments/<env>.json`,
//! `oci/` (the OCI image layout used as the registry when none is configured).
//!
//! Every file is written with [`atomic_write`]: a crash leaves the old or the new content,
//! never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::run::RunRecord;

/// Errors of the run store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem trouble.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A record that is not valid JSON of a known version.
    #[error("failed to parse run record {}", path.display())]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No run with that id.
    #[error("no run `{id}` in {}", dir.display())]
    NotFound {
        /// The id asked for.
        id: String,
        /// The runs directory.
        dir: PathBuf,
    },
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename over
/// the target, fsync the directory. An existing file's permission bits are kept.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The store directory and its layout.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store root (`.shipline/`).
    pub dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store {
            dir: dir.to_path_buf(),
        };
        for sub in ["runs", "locks", "approvals", "backups", "deployments"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|source| StoreError::Io {
                action: "create store directory",
                path: p.clone(),
                source,
            })?;
        }
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            let _ = atomic_write(&ignore, b"# shipline's local run store\n*\n");
        }
        Ok(store)
    }

    /// `runs/`.
    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }
    /// `locks/`.
    pub fn locks_dir(&self) -> PathBuf {
        self.dir.join("locks")
    }
    /// `approvals/<env>/`.
    pub fn approvals_dir(&self, env: &str) -> PathBuf {
        self.dir.join("approvals").join(env)
    }
    /// `backups/<env>/`.
    pub fn backups_dir(&self, env: &str) -> PathBuf {
        self.dir.join("backups").join(env)
    }
    /// `deployments/`.
    pub fn deployments_dir(&self) -> PathBuf {
        self.dir.join("deployments")
    }
    /// `oci/`: the embedded OCI image layout.
    pub fn oci_dir(&self) -> PathBuf {
        self.dir.join("oci")
    }
    /// `reports/<run>/`: the gate's full reports of one run (`scan.json`, `scan.sarif`,
    /// `scan.md` for a CI step summary, `scan.annotations` as GitHub workflow commands).
    pub fn reports_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join("reports").join(run_id)
    }
    /// `audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Appends one JSON line to the audit log (opened in append mode, fsynced).
    pub fn append_audit(&self, event: &serde_json::Value) -> Result<(), StoreError> {
        let path = self.audit_log();
        let io_err = |source| StoreError::Io {
            action: "append to audit log",
            path: path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(event).map_err(|e| io_err(io::Error::other(e)))?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        // one write call: O_APPEND keeps concurrent lines whole
        f.write_all(&line).map_err(io_err)?;
        f.sync_data().map_err(io_err)
    }

    /// Writes a run record atomically.
    pub fn save_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        let path = self.runs_dir().join(format!("{}.json", record.id));
        let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Io {
            action: "serialize run record",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        atomic_write(&path, &bytes).map_err(|source| StoreError::Io {
            action: "write run record",
            path,
            source,
        })
    }

    /// Reads a run record by id.
    pub fn load_run(&self, id: &str) -> Result<RunRecord, StoreError> {
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(StoreError::NotFound {
                id: id.to_string(),
                dir: self.runs_dir(),
            });
        }
        let path = self.runs_dir().join(format!("{id}.json"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    id: id.to_string(),
                    dir: self.runs_dir(),
                })
            }
            Err(source) => {
                return Err(StoreError::Io {
                    action: "read run record",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path, source })
    }

    /// All run records, newest first. Unreadable records are returned as errors beside them.
    pub fn list_runs(&self) -> Result<Vec<Result<RunRecord, StoreError>>, StoreError> {
        let dir = self.runs_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    action: "list runs in",
                    path: dir,
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (!name.starts_with('.'))
                    .then(|| name.strip_suffix(".json").map(str::to_string))
                    .flatten()
            })
            .collect();
        ids.sort();
        ids.reverse();
        Ok(ids.iter().map(|id| self.load_run(id)).collect())
    }
}
