//! The one helper that runs external programs (scanners, compose, deploy hooks).
//!
//! A [`ProcessSpec`] is an argument vector (never a shell string), an explicit environment
//! (the child starts from an empty environment plus the names listed in
//! [`ProcessSpec::inherit`]), an optional working directory, a timeout that kills the whole
//! process group, and caps on how much stdout/stderr is kept. [`run`] returns a typed
//! [`ProcessOutput`] or a [`ProcessError`]; a non-zero exit is *not* an error here, the caller
//! maps exit codes.
//!
//! ```no_run
//! use std::time::Duration;
//! use shipline_scanners::process::{run, ProcessSpec};
//!
//! let spec = ProcessSpec::new("echo")
//!     .arg("hello")
//!     .env("LANG", "C")
//!     .timeout(Duration::from_secs(5));
//! let out = run(&spec)?;
//! assert_eq!(out.stdout_lossy().trim(), "hello");
//! # Ok::<(), shipline_scanners::process::ProcessError>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Default cap on captured stdout (1 GiB).
pub const DEFAULT_STDOUT_CAP: usize = 1 << 30;
/// Default cap on captured stderr (1 MiB).
pub const DEFAULT_STDERR_CAP: usize = 1 << 20;
/// Names inherited from the parent environment unless changed with [`ProcessSpec::inherit`].
pub const DEFAULT_INHERIT: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"];

/// An environment value; secret values never show in `Debug` output.
#[derive(Clone)]
enum EnvValue {
    Plain(OsString),
    Secret(OsString),
}

impl EnvValue {
    fn value(&self) -> &OsStr {
        match self {
            EnvValue::Plain(v) | EnvValue::Secret(v) => v,
        }
    }
}

/// What to run and how.
#[derive(Clone)]
pub struct ProcessSpec {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, EnvValue)>,
    inherit: Vec<String>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    stdout_cap: usize,
    stderr_cap: usize,
    stdin: Option<Vec<u8>>,
}

impl fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| match v {
                EnvValue::Plain(v) => format!("{}={}", k.to_string_lossy(), v.to_string_lossy()),
                EnvValue::Secret(_) => format!("{}=<redacted>", k.to_string_lossy()),
            })
            .collect();
        f.debug_struct("ProcessSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &env)
            .field("inherit", &self.inherit)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ProcessSpec {
    /// A spec for `program` (a path, or a name looked up in the child's `PATH`).
    pub fn new(program: impl Into<OsString>) -> Self {
        ProcessSpec {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            inherit: DEFAULT_INHERIT.iter().map(|s| (*s).to_string()).collect(),
            cwd: None,
            timeout: None,
            stdout_cap: DEFAULT_STDOUT_CAP,
            stderr_cap: DEFAULT_STDERR_CAP,
            stdin: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), EnvValue::Plain(value.into())));
        self
    }

    /// Sets an environment variable whose value is secret (redacted in `Debug`).
    pub fn env_secret(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), EnvValue::Secret(value.into())));
        self
    }

    /// Replaces the list of variable names copied from this process's environment.
    pub fn inherit<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inherit = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Kills the process group when it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Keeps at most `cap` bytes of stdout (the rest is read and dropped).
    pub fn stdout_cap(mut self, cap: usize) -> Self {
        self.stdout_cap = cap;
        self
    }

    /// Keeps at most `cap` bytes of stderr (the rest is read and dropped).
    pub fn stderr_cap(mut self, cap: usize) -> Self {
        self.stderr_cap = cap;
        self
    }

    /// Bytes written to the child's stdin (otherwise stdin is `/dev/null`).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, in order.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The value this spec sets for `key`, if any (explicit variables only).
    pub fn get_env(&self, key: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.value())
    }

    /// The timeout, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Program and arguments as one display string (for messages; never run through a shell).
    pub fn display_command(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Code(c) => write!(f, "exit code {c}"),
            ExitKind::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What a finished child left behind.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    /// How it ended.
    pub exit: ExitKind,
    /// Captured stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// Stdout was longer than the cap and was cut.
    pub stdout_truncated: bool,
    /// Stderr was longer than the cap and was cut.
    pub stderr_truncated: bool,
    /// Wall-clock duration.
    pub duration: Duration,
}

impl ProcessOutput {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.exit == ExitKind::Code(0)
    }
    /// Stdout as text (lossy).
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Stderr as text (lossy).
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The last `max` characters of stderr, trimmed, for error messages.
    pub fn stderr_tail(&self, max: usize) -> String {
        tail(&self.stderr_lossy(), max)
    }
}

/// Last `max` characters of `s`, trimmed.
pub(crate) fn tail(s: &str, max: usize) -> String {
    let t = s.trim();
    let n = t.chars().count();
    if n <= max {
        t.to_string()
    } else {
        let skip = n - max;
        format!("...{}", t.chars().skip(skip).collect::<String>())
    }
}

/// Why a program could not be run to completion.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program does not exist (not found on `PATH` or at the given path).
    #[error("failed to run {program}: program not found (is it installed and on PATH?)")]
    NotFound {
        /// The program.
        program: String,
    },
    /// Spawning failed for another reason (permissions, ...).
    #[error("failed to run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The child ran past its timeout and its process group was killed.
    #[error("failed to run {program}: timed out after {}s and was killed", timeout.as_secs_f64())]
    TimedOut {
        /// The program.
        program: String,
        /// The timeout.
        timeout: Duration,
        /// What it had written to stderr.
        stderr: String,
    },
    /// Waiting for the child failed.
    #[error("failed to wait for {program}")]
    Wait {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `spec` to completion (blocking) and captures its output.
pub fn run(spec: &ProcessSpec) -> Result<ProcessOutput, ProcessError> {
    let program = spec.program.to_string_lossy().into_owned();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args);
    cmd.env_clear();
    for name in &spec.inherit {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    for (k, v) in &spec.env {
        cmd.env(k, v.value());
    }
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped());
    cmd.stderr(Stdio::piped());
    // Own process group, so a timeout kills the child and everything it started.
    cmd.process_group(0);

    let start = Instant::now();
    // ETXTBSY: a script written just now may still be open for writing in a child that another
    // thread forked; the window is short, so retry briefly.
    let mut spawned = cmd.spawn();
    for _ in 0..20 {
        match &spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(25));
                spawned = cmd.spawn();
            }
            _ => break,
        }
    }
    let mut child = spawned.map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ProcessError::NotFound {
                program: program.clone(),
            }
        } else {
            ProcessError::Spawn {
                program: program.clone(),
                source,
            }
        }
    })?;
    let pid = child.id();

    if let (Some(data), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            // A child that does not read its stdin is not an error.
            let _ = stdin.write_all(&data);
        });
    }

    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let cap = spec.stdout_cap;
        std::thread::spawn(move || {
            let _ = out_tx.send(read_capped(stdout, cap));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let cap = spec.stderr_cap;
        std::thread::spawn(move || {
            let _ = err_tx.send(read_capped(stderr, cap));
        });
    }
    let (wait_tx, wait_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = wait_tx.send(child.wait());
    });

    let deadline = spec.timeout.map(|t| start + t);
    let remaining = |deadline: Option<Instant>| -> Option<Duration> {
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    };

    let status = match remaining(deadline) {
        Some(left) => match wait_rx.recv_timeout(left) {
            Ok(s) => s,
            Err(_) => {
                kill_group(pid);
                let stderr = collect_after_kill(&err_rx);
                // Reap the child so it does not linger as a zombie.
                let _ = wait_rx.recv_timeout(Duration::from_secs(5));
                return Err(ProcessError::TimedOut {
                    program,
                    timeout: spec.timeout.unwrap_or_default(),
                    stderr,
                });
            }
        },
        None => wait_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("wait thread ended without a result"))),
    };
    let status = status.map_err(|source| ProcessError::Wait {
        program: program.clone(),
        source,
    })?;

    // The child has exited; a grandchild may still hold the pipes open. Give the readers
    // until the deadline (or a short grace period), then kill the group and move on.
    let grace = remaining(deadline).unwrap_or(Duration::from_secs(10));
    let read_deadline = Instant::now() + grace;
    let recv = |rx: &mpsc::Receiver<(Vec<u8>, bool)>| -> (Vec<u8>, bool) {
        let left = read_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => v,
            Err(_) => {
                kill_group(pid);
                rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
            }
        }
    };
    let (stdout, stdout_truncated) = recv(&out_rx);
    let (stderr, stderr_truncated) = recv(&err_rx);

    let exit = match status.code() {
        Some(c) => ExitKind::Code(c),
        None => ExitKind::Signal(status.signal().unwrap_or(0)),
    };
    Ok(ProcessOutput {
        exit,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration: start.elapsed(),
    })
}

/// Runs `spec` on tokio's blocking pool (for async callers such as the executor).
pub async fn run_async(spec: ProcessSpec) -> Result<ProcessOutput, ProcessError> {
    let program = spec.program.to_string_lossy().into_owned();
    match tokio::task::spawn_blocking(move || run(&spec)).await {
        Ok(r) => r,
        Err(e) => Err(ProcessError::Wait {
            program,
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

fn collect_after_kill(err_rx: &mpsc::Receiver<(Vec<u8>, bool)>) -> String {
    match err_rx.recv_timeout(Duration::from_secs(5)) {
        Ok((buf, _)) => tail(&String::from_utf8_lossy(&buf), 2000),
        Err(_) => String::new(),
    }
}

fn kill_group(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group we created with
    // process_group(0); it has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn read_capped(mut r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(buf.len());
                if room >= n {
                    buf.extend_from_slice(&chunk[..n]);
                } else {
                    buf.extend_from_slice(&chunk[..room]);
                    truncated = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    (buf, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_stderr_and_code() {
        let out = run(&ProcessSpec::new("sh")
            .arg("-c")
            .arg("echo out; echo err >&2; exit 7"))
        .expect("sh runs");
        assert_eq!(out.exit, ExitKind::Code(7));
        assert_eq!(out.stdout_lossy(), "out\n");
        assert_eq!(out.stderr_lossy(), "err\n");
    }

    #[test]
    fn env_is_explicit() {
        std::env::var_os("PATH").expect("PATH set in tests");
        let out = run(&ProcessSpec::new("sh")
            .arg("-c")
            .arg("echo \"${FOO:-unset}:${CARGO:-unset}\"")
            .env("FOO", "bar"))
        .expect("sh runs");
        assert_eq!(out.stdout_lossy(), "bar:unset\n");
    }

    #[test]
    fn missing_program_is_not_found() {
        let err = run(&ProcessSpec::new("shipline-no-such-program-xyz")).unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("program not found"));
    }

    #[test]
    fn timeout_kills_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("grandchild-survived");
        let script = format!("(sleep 2; touch '{}') & sleep 30", marker.display());
        let err = run(&ProcessSpec::new("sh")
            .arg("-c")
            .arg(script)
            .timeout(Duration::from_millis(300)))
        .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err:?}");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "grandchild was not killed");
    }

    #[test]
    fn stdout_cap_truncates() {
        let out = run(&ProcessSpec::new("sh")
            .arg("-c")
            .arg("head -c 100000 /dev/zero")
            .stdout_cap(1000))
        .expect("sh runs");
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.stdout_truncated);
    }

    #[test]
    fn secret_env_is_redacted_in_debug() {
        let spec = ProcessSpec::new("x").env_secret("TOKEN", "hunter2");
        let dbg = format!("{spec:?}");
        assert!(dbg.contains("TOKEN=<redacted>"));
        assert!(!dbg.contains("hunter2"));
    }
}
