//! Starts Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary, overridable with `SHIPLINE_DOCKER_REGISTRY`.
fn binary() -> PathBuf {
    let p = std::env::var_os("SHIPLINE_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
    assert!(
        p.exists(),
        "prerequisite missing: {} (Debian package docker-registry; run scripts/prereqs.sh)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Authentication of a test registry.
pub enum Auth {
    Open,
    /// htpasswd basic auth over TLS with this user and password.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Token auth: the realm URL and the token-signing certificate (PEM).
    Token {
        realm: String,
        cert_pem: String,
    },
}

/// A running registry, killed on drop.
pub struct TestRegistry {
    pub host: String,
    /// PEM of the TLS certificate, when TLS is on.
    pub ca_pem: Option<Vec<u8>>,
    child: Child,
    pub dir: TempDir,
}

impl TestRegistry {
    pub fn open() -> TestRegistry {
        Self::start(Auth::Open, false)
    }

    pub fn start(auth: Auth, tls: bool) -> TestRegistry {
        let bin = binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  secret: shipline-test-secret\n",
                dir.path().join("data").display()
            );
            let mut ca_pem = None;
            if tls {
                let key = rcgen::KeyPair::generate().expect("key");
                let params = rcgen::CertificateParams::new(vec![
                    "127.0.0.1".to_owned(),
                    "localhost".to_owned(),
                ])
                .expect("params");
                let cert = params.self_signed(&key).expect("cert");
                std::fs::write(dir.path().join("tls.crt"), cert.pem()).expect("write cert");
                std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).expect("write key");
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("tls.crt").display(),
                    dir.path().join("tls.key").display()
                ));
                ca_pem = Some(cert.pem().into_bytes());
            }
            match &auth {
                Auth::Open => {}
                Auth::Htpasswd { user, password } => {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", user, password])
                        .output()
                        .expect("prerequisite missing: htpasswd (Debian package apache2-utils)");
                    assert!(out.status.success(), "htpasswd failed");
                    std::fs::write(dir.path().join("htpasswd"), out.stdout)
                        .expect("write htpasswd");
                    yaml.push_str(&format!(
                        "auth:\n  htpasswd:\n    realm: shipline-test\n    path: {}\n",
                        dir.path().join("htpasswd").display()
                    ));
                }
                Auth::Token { realm, cert_pem } => {
                    std::fs::write(dir.path().join("token.crt"), cert_pem)
                        .expect("write token cert");
                    yaml.push_str(&format!(
                        "auth:\n  token:\n    realm: {realm}\n    service: shipline-test\n    issuer: shipline-test-issuer\n    rootcertbundle: {}\n",
                        dir.path().join("token.crt").display()
                    ));
                }
            }
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, yaml).expect("write config");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.path().join("registry.log")).expect("log"),
                ))
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(&host).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if up {
                return TestRegistry {
                    host,
                    ca_pem,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_err = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start: {last_err}");
    }

    /// The registry's own log (for debugging failed tests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
