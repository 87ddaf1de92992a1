//! A throwaway registry: Debian's `docker-registry` (CNCF distribution) on a free loopback
//! port, storage in a temp dir, stopped on drop. The engine treats `127.0.0.1:PORT` as an
//! insecure registry by default, so it can push to and pull from it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry or panics saying what is missing.
    pub fn start() -> Registry {
        let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .expect("these tests need Debian's docker-registry; run scripts/prereqs.sh");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let start = Instant::now();
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
