//! The per-environment deploy lock.
//!
//! Two files under `locks/`: `<env>.lock`, held with an exclusive `flock` for the whole deploy
//! (the kernel releases it when the holder dies, so a crashed deploy never blocks forever), and
//! `<env>.json`, the holder's journal (pid, host, user, time, reason, phase, what to restore),
//! written atomically at each phase and deleted on a clean release. Acquiring the lock while
//! a journal is still there means the previous deploy was interrupted: the caller repairs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::DeployError;

/// How far a deploy got (recorded in the journal).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checks only; nothing changed yet.
    Preflight,
    /// The env file now holds the new tag (a backup exists).
    EnvWritten,
    /// The deploy hook is running.
    Hook,
    /// Containers are being replaced.
    Rollout,
    /// Health verification.
    Verify,
    /// Restoring the previous version.
    Rollback,
    /// Writing the record.
    Record,
}

/// The journal of the lock holder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockState {
    /// The environment.
    pub env: String,
    /// Holder's process id.
    pub pid: u32,
    /// Holder's host name.
    pub host: String,
    /// Who (user name).
    pub user: String,
    /// Why (e.g. `deploy abc123`).
    pub reason: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// How far the deploy got.
    pub phase: Phase,
    /// The tag being deployed.
    pub new_tag: Option<String>,
    /// The tag that ran before.
    pub previous_tag: Option<String>,
    /// The env-file backup to restore.
    pub env_backup: Option<PathBuf>,
    /// Container counts per rolling service before the deploy.
    #[serde(default)]
    pub scales: Vec<(String, usize)>,
}

/// What the lock looks like from outside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockStatus {
    /// Nobody holds it and no deploy was interrupted.
    Free,
    /// A live process holds it.
    Held {
        /// The holder's journal (if readable yet).
        holder: Option<LockState>,
    },
    /// Nobody holds it, but a journal was left behind: that deploy was interrupted.
    Interrupted {
        /// The dead holder's journal.
        holder: LockState,
    },
}

/// A held deploy lock. Dropping it releases the flock but keeps the journal (as a crash
/// would); call [`DeployLock::release`] after a completed deploy.
#[derive(Debug)]
pub struct DeployLock {
    file: File,
    journal: PathBuf,
    /// The current journal.
    pub state: LockState,
}

fn paths(dir: &Path, env: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{env}.lock")),
        dir.join(format!("{env}.json")),
    )
}

fn read_journal(path: &Path) -> Option<LockState> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn open_lock(dir: &Path, env: &str) -> Result<(File, PathBuf, PathBuf), DeployError> {
    let (lock, journal) = paths(dir, env);
    std::fs::create_dir_all(dir).map_err(DeployError::io(dir))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock)
        .map_err(DeployError::io(&lock))?;
    Ok((file, lock, journal))
}

/// Reports the lock of `env` without taking it.
pub fn lock_status(dir: &Path, env: &str) -> Result<LockStatus, DeployError> {
    let (file, lock, journal) = open_lock(dir, env)?;
    let got = file.try_lock_exclusive().map_err(DeployError::io(&lock))?;
    let holder = read_journal(&journal);
    if !got {
        return Ok(LockStatus::Held { holder });
    }
    let _ = FileExt::unlock(&file);
    Ok(match holder {
        Some(h) => LockStatus::Interrupted { holder: h },
        None => LockStatus::Free,
    })
}

/// Whether a process id is alive on this host.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl DeployLock {
    /// Takes the lock of `env`, waiting up to `wait` (polling) for a live holder. Returns the
    /// lock and, when the previous holder died mid-deploy, its journal (to repair).
    pub async fn acquire(
        dir: &Path,
        env: &str,
        reason: &str,
        wait: Duration,
    ) -> Result<(DeployLock, Option<LockState>), DeployError> {
        let (file, lock, journal) = open_lock(dir, env)?;
        let start = Instant::now();
        loop {
            if file.try_lock_exclusive().map_err(DeployError::io(&lock))? {
                break;
            }
            if start.elapsed() >= wait {
                return Err(DeployError::Locked {
                    env: env.to_string(),
                    holder: read_journal(&journal).map(|h| {
                        format!(
                            "pid {} on {} ({}) since {}: {}",
                            h.pid, h.host, h.user, h.since, h.reason
                        )
                    }),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let interrupted = read_journal(&journal);
        let state = LockState {
            env: env.to_string(),
            pid: std::process::id(),
            host: hostname(),
            user: user_name(),
            reason: reason.to_string(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            phase: Phase::Preflight,
            new_tag: None,
            previous_tag: None,
            env_backup: None,
            scales: Vec::new(),
        };
        let mut me = DeployLock {
            file,
            journal,
            state,
        };
        // Keep the interrupted journal on disk until repaired: only write ours when no
        // repair is pending, so a crash during repair still leaves the original to repair.
        if interrupted.is_none() {
            me.write()?;
        }
        Ok((me, interrupted))
    }

    /// Rewrites the journal (atomically).
    pub fn write(&mut self) -> Result<(), DeployError> {
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| DeployError::Io {
            path: self.journal.clone(),
            source: std::io::Error::other(e),
        })?;
        super::record::atomic_write(&self.journal, &bytes).map_err(DeployError::io(&self.journal))
    }

    /// Records a phase in the journal.
    pub fn set_phase(&mut self, phase: Phase) -> Result<(), DeployError> {
        self.state.phase = phase;
        self.write()
    }

    /// Completes the deploy: deletes the journal and unlocks.
    pub fn release(self) -> Result<(), DeployError> {
        match std::fs::remove_file(&self.journal) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DeployError::io(&self.journal)(e)),
        }
        let _ = FileExt::unlock(&self.file);
        Ok(())
    }
}

/// The host name (from `/etc/hostname` or `HOSTNAME`), for lock records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The user name (`USER`/`LOGNAME`, else the uid).
pub fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: getuid never fails.
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_then_times_out_and_journal_detects_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut a, prev) = DeployLock::acquire(dir.path(), "prod", "first", Duration::ZERO)
            .await
            .expect("first");
        assert!(prev.is_none());
        a.set_phase(Phase::EnvWritten).expect("phase");
        let err = DeployLock::acquire(dir.path(), "prod", "second", Duration::from_millis(300))
            .await
            .expect_err("busy");
        assert!(err.to_string().contains("first"), "{err}");
        assert!(matches!(
            lock_status(dir.path(), "prod").expect("status"),
            LockStatus::Held { .. }
        ));
        // other environments are independent
        let (b, _) = DeployLock::acquire(dir.path(), "staging", "x", Duration::ZERO)
            .await
            .expect("staging");
        b.release().expect("release");
        // a crash: the flock goes, the journal stays
        drop(a);
        let st = lock_status(dir.path(), "prod").expect("status");
        assert!(
            matches!(st, LockStatus::Interrupted { ref holder } if holder.phase == Phase::EnvWritten)
        );
        let (c, prev) = DeployLock::acquire(dir.path(), "prod", "third", Duration::ZERO)
            .await
            .expect("third");
        assert_eq!(prev.map(|p| p.reason), Some("first".to_string()));
        c.release().expect("release");
        assert_eq!(
            lock_status(dir.path(), "prod").expect("status"),
            LockStatus::Free
        );
    }
}
