//! The small process helper every deploy-side external program goes through (compose, hooks):
//! an argument vector (never a shell string), explicit environment, working directory, timeout
//! that kills the whole process group, captured output with a size cap.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Output kept per stream (the tail is kept when more arrives).
const CAP: usize = 256 * 1024;

/// A program to run.
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to (or overriding) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment.
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
}

/// How it ended.
#[derive(Debug, Clone)]
pub(crate) struct ProcOutput {
    /// Exit code; `None` when killed by a signal or on timeout.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl ProcOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last `n` lines of stderr (stdout when stderr is empty).
    pub fn tail(&self, n: usize) -> String {
        if self.timed_out {
            return self.stderr.clone();
        }
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Proc {
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>, timeout: Duration) -> Self {
        Proc {
            program: program.into(),
            args,
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            timeout,
        }
    }

    /// Runs the program to completion (or the timeout, which kills its process group).
    pub async fn run(&self) -> std::io::Result<ProcOutput> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(o) = out.as_mut() {
                read_capped(o, &mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(e) = err.as_mut() {
                read_capped(e, &mut buf).await;
            }
            buf
        };
        let all = async {
            let (o, e, status) = tokio::join!(read_out, read_err, child.wait());
            (o, e, status)
        };
        match tokio::time::timeout(self.timeout, all).await {
            Ok((o, e, status)) => Ok(ProcOutput {
                code: status?.code(),
                stdout: String::from_utf8_lossy(&o).into_owned(),
                stderr: String::from_utf8_lossy(&e).into_owned(),
                timed_out: false,
            }),
            Err(_) => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    // SAFETY: killpg with a process-group id we created; no memory involved.
                    unsafe {
                        libc::killpg(pid, libc::SIGKILL);
                    }
                }
                Ok(ProcOutput {
                    code: None,
                    stdout: String::new(),
                    stderr: format!("timed out after {:?}", self.timeout),
                    timed_out: true,
                })
            }
        }
    }
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > CAP {
                    let cut = buf.len() - CAP;
                    buf.drain(..cut);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_and_times_out() {
        let p = Proc::new(
            "/bin/sh",
            vec!["-c".into(), "echo out; echo err >&2; exit 3".into()],
            Duration::from_secs(10),
        );
        let o = p.run().await.expect("run");
        assert_eq!(o.code, Some(3));
        assert_eq!(o.stdout.trim(), "out");
        assert_eq!(o.tail(5), "err");
        let p = Proc::new(
            "/bin/sh",
            vec!["-c".into(), "sleep 30".into()],
            Duration::from_millis(200),
        );
        let o = p.run().await.expect("run");
        assert!(o.timed_out);
    }
}
