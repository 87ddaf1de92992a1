//! Shared test support for tests that need the Docker engine.
//!
//! Reuse from another test binary with
//! `#[path = "../deploy/support/mod.rs"] mod support;` (e.g. in `tests/it/main.rs`).
//!
//! - [`engine`]: connects (API version negotiated) or fails with a clear message;
//! - [`build_test_image`]: a tiny `FROM scratch` image with the static busybox from Debian's
//!   `busybox-static`, serving `/www` with `busybox httpd` on port 80, a HEALTHCHECK every
//!   second (`/health` must answer and `/tmp/drain` must not exist), `/version` answering the
//!   version string; `healthy = false` builds one whose health check always fails;
//! - [`Stack`]: a temp compose project (unique project name, compose file, env file, store)
//!   that takes itself down and removes its images on drop;
//! - [`edge::Edge`]: a stand-in for Traefik: a loopback TCP proxy routing only to healthy
//!   containers of a service, refreshed on engine events; [`edge::load`] counts failures.

#![allow(dead_code)]

pub mod edge;
pub mod registry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shipline_core::deploy::{deploy, DeployReport, DeployRequest, DeployTarget, Strategy};
use shipline_core::engine::{BuildRequest, Engine};

/// Connects to the engine or panics with what to do.
pub async fn engine() -> Engine {
    match Engine::connect().await {
        Ok(e) => e,
        Err(e) => panic!(
            "these tests need a running Docker engine (docker info must work): {e}; run scripts/prereqs.sh"
        ),
    }
}

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.is_file(),
        "these tests need the static busybox at /bin/busybox (Debian package busybox-static); run scripts/prereqs.sh"
    );
    p
}

/// `fixtures/deploy/` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/deploy")
}

/// A unique lowercase suffix for project and repository names.
pub fn unique(prefix: &str) -> String {
    let prefix = prefix.to_ascii_lowercase();
    format!("{prefix}{:x}{:04x}", std::process::id(), rand_u16())
}

fn rand_u16() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t as u16) ^ N.fetch_add(7919, Ordering::Relaxed)
}

/// Builds `repository:version` (see the module doc) and returns the reference.
pub async fn build_test_image(
    engine: &Engine,
    repository: &str,
    version: &str,
    healthy: bool,
) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path();
    std::fs::copy(busybox(), ctx.join("busybox")).expect("copy busybox");
    std::fs::create_dir_all(ctx.join("www")).expect("mkdir www");
    std::fs::write(ctx.join("www/version"), format!("{version}\n")).expect("write");
    std::fs::write(ctx.join("www/index.html"), format!("<h1>{version}</h1>\n")).expect("write");
    if healthy {
        std::fs::write(ctx.join("www/health"), "ok\n").expect("write");
    }
    std::fs::copy(
        fixtures().join("stack/image/Dockerfile"),
        ctx.join("Dockerfile"),
    )
    .expect("copy the test image Dockerfile from fixtures/deploy");
    let reference = format!("{repository}:{version}");
    let mut req = BuildRequest::new(ctx.to_path_buf(), vec![reference.clone()]);
    req.labels.insert("io.shipline.test".into(), "1".into());
    engine
        .build(&req, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("failed to build test image {reference}: {e}"));
    reference
}

/// A compose project in a temp directory: `compose.yaml` with one service `web` running
/// `${REPO}:${IMAGE_TAG}`, `.env.test` with `REPO`, a store under `.shipline/`.
pub struct Stack {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Compose project name (unique).
    pub project: String,
    /// Image repository (unique).
    pub repository: String,
}

impl Stack {
    /// A new stack with `extra_compose` appended under the `web` service (indented 4 spaces).
    pub fn new(name: &str, extra_compose: &str) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = unique(&format!("sl{name}"));
        let repository = format!("shipline-test/{project}");
        std::fs::write(
            dir.path().join("compose.yaml"),
            format!(
                "version: \"3.7\"\nservices:\n  web:\n    image: ${{REPO}}:${{IMAGE_TAG:-none}}\n    stop_grace_period: 1s\n    labels:\n      io.shipline.test: \"1\"\n{extra_compose}"
            ),
        )
        .expect("write compose");
        std::fs::write(
            dir.path().join(".env.test"),
            format!("# test stack\nREPO={repository}\n"),
        )
        .expect("write env");
        Stack {
            dir,
            project,
            repository,
        }
    }

    /// A copy of `fixtures/deploy/<name>` in a temp dir, made unique: in `shipline.toml` the
    /// compose project, the repository and the edge network are replaced, and `.env.test`
    /// gets `REPO` and `EDGE_NETWORK` (`<project>-edge`).
    pub fn from_fixture(name: &str) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = fixtures().join(name);
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.expect("walk fixture");
            let rel = entry.path().strip_prefix(&src).expect("relative");
            let dest = dir.path().join(rel);
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&dest).expect("mkdir");
            } else {
                std::fs::copy(entry.path(), &dest).expect("copy fixture");
            }
        }
        let project = unique(&format!("slfx{name}"));
        let repository = format!("shipline-test/{project}");
        let toml = dir.path().join("shipline.toml");
        let text = std::fs::read_to_string(&toml).expect("read shipline.toml");
        let text = text
            .replace("\"fixture-test\"", &format!("\"{project}\""))
            .replace("\"shipline-fixture/web\"", &format!("\"{repository}\""))
            .replace("\"fixture-edge\"", &format!("\"{project}-edge\""));
        std::fs::write(&toml, text).expect("write shipline.toml");
        std::fs::write(
            dir.path().join(".env.test"),
            format!("# test stack\nREPO={repository}\nEDGE_NETWORK={project}-edge\n"),
        )
        .expect("write env");
        Stack {
            dir,
            project,
            repository,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The env file.
    pub fn env_file(&self) -> PathBuf {
        self.path().join(".env.test")
    }

    /// The tag the env file holds.
    pub fn env_tag(&self) -> Option<String> {
        shipline_core::deploy::read_var(&self.env_file(), "IMAGE_TAG").expect("read env file")
    }

    /// The deploy target for this stack.
    pub fn target(&self, strategy: Strategy) -> DeployTarget {
        target_for(self.path(), &self.project, &self.repository, strategy)
    }

    /// The images (`repository:tag`) the project's running containers use, sorted.
    pub async fn running_images(&self, engine: &Engine) -> Vec<String> {
        let mut v: Vec<String> = engine
            .project_containers(&self.project, None, true)
            .await
            .expect("list containers")
            .into_iter()
            .map(|c| c.image)
            .collect();
        v.sort();
        v
    }
}

/// The deploy target of a stack directory (also usable from a child process that must not
/// own the [`Stack`]): env `env-<project>`, 60 s health timeout, 2 s drain, `web` rolls.
pub fn target_for(dir: &Path, project: &str, repository: &str, strategy: Strategy) -> DeployTarget {
    DeployTarget {
        env: format!("env-{project}"),
        repository: repository.to_string(),
        env_file: dir.join(".env.test"),
        tag_variable: "IMAGE_TAG".into(),
        compose_project: project.to_string(),
        compose_files: vec![dir.join("compose.yaml")],
        compose_dir: dir.to_path_buf(),
        deploy_hook: None,
        create_networks: Vec::new(),
        health_timeout: Duration::from_secs(60),
        health_interval: Duration::from_millis(250),
        http_check: None,
        strategy,
        rolling_services: if strategy == Strategy::Rolling {
            vec!["web".into()]
        } else {
            Vec::new()
        },
        drain: Duration::from_secs(2),
        prune_after: None,
        keep: 3,
        store_dir: dir.join(".shipline"),
    }
}

/// Deploys `tag` and asserts it succeeded.
pub async fn deploy_ok(engine: &Engine, target: &DeployTarget, tag: &str) -> DeployReport {
    let req = DeployRequest::new(target.clone(), tag.to_string());
    let report = deploy(engine, &req, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("deploy {tag}: {e}"));
    assert!(report.succeeded(), "deploy {tag}: {:?}", report.failure);
    report
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl Drop for Stack {
    fn drop(&mut self) {
        // best effort, synchronous: containers, networks, then images of the repository
        let ids = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.project))
            .output();
        if let Ok(o) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm"])
            .arg(format!("{}_default", self.project))
            .arg(format!("{}-edge", self.project))
            .output();
        if let Ok(o) = std::process::Command::new("docker")
            .args(["images", "-q", "--format", "{{.Repository}}:{{.Tag}}"])
            .arg(&self.repository)
            .output()
        {
            let refs: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !refs.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rmi", "-f"])
                    .args(&refs)
                    .output();
            }
        }
    }
}
