//! End to end, against the real Docker engine and a real registry (Debian's docker-registry
//! with TLS and htpasswd): dev, then main → approve → prod; a planted HIGH finding fails the
//! run before push; a planted failing health check rolls back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{stderr, stdout, workspace};

#[path = "../../../registry/tests/it/support/registry.rs"]
#[allow(dead_code)]
pub(crate) mod registry_support;

use registry_support::{Auth, TestRegistry};

const USER: &str = "shipline-e2e";
const PASSWORD: &str = "e2e-canary-password-7f3a9c";

struct Project {
    dir: tempfile::TempDir,
    /// kept alive for the test; stopped on drop (none: the embedded OCI store under .shipline/)
    _registry: Option<TestRegistry>,
    ca: PathBuf,
    host: String,
    repository: String,
    dev_project: String,
    prod_project: String,
    key: PathBuf,
    /// `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` of every command: the commands run as
    /// steps of a workflow would
    actions: tempfile::TempDir,
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() == ".shipline" {
                continue;
            }
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Commits everything in `dir` as a fixed test author.
fn git_commit(dir: &Path, msg: &str) {
    let id = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.com"];
    let add: Vec<&str> = id.iter().copied().chain(["add", "-A"]).collect();
    sh(dir, "git", &add);
    let commit: Vec<&str> = id
        .iter()
        .copied()
        .chain(["commit", "-q", "-m", msg])
        .collect();
    sh(dir, "git", &commit);
}

fn sh(dir: &Path, program: &str, args: &[&str]) -> Output {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("prerequisite missing: {program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

impl Project {
    /// The example pushing to a real registry (TLS, htpasswd).
    fn new() -> Project {
        Project::setup(true)
    }

    /// The example as shipped: no `[registry]`, so the run pushes to its embedded OCI store.
    fn embedded() -> Project {
        Project::setup(false)
    }

    fn setup(with_registry: bool) -> Project {
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.exists(), "prerequisite missing: /bin/busybox (Debian package busybox-static; run scripts/prereqs.sh)");
        let registry = with_registry.then(|| {
            TestRegistry::start(
                Auth::Htpasswd {
                    user: USER.into(),
                    password: PASSWORD.into(),
                },
                true,
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        copy_dir(&workspace().join("examples/hestami"), root);
        std::fs::copy(busybox, root.join("app/busybox")).unwrap();
        let host = registry
            .as_ref()
            .map_or_else(|| "ghcr.io".to_string(), |r| r.host.clone());
        // the registry commands read credentials from the docker config, as docker does
        let auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{PASSWORD}"),
        );
        std::fs::create_dir_all(root.join("docker-config")).unwrap();
        std::fs::write(
            root.join("docker-config/config.json"),
            format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"),
        )
        .unwrap();
        let ca = root.join("registry-ca.pem");
        if let Some(r) = &registry {
            std::fs::write(&ca, r.ca_pem.as_ref().unwrap()).unwrap();
        }
        let suffix = format!("{:08x}", rand_u32());
        let repository = match &registry {
            Some(r) => format!("{}/hestami/api-{suffix}", r.host),
            // never pushed anywhere: a unique name keeps parallel tests' images apart
            None => format!("ghcr.io/hestami-ai/api-{suffix}"),
        };
        let dev_project = format!("e2edev{suffix}");
        let prod_project = format!("e2eprod{suffix}");
        // the approver: a fresh ed25519 key in the trusted list
        let key = root.join("approver_key");
        sh(
            root,
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "carol@example.com",
                "-f",
                key.to_str().unwrap(),
            ],
        );
        let pubkey = std::fs::read_to_string(root.join("approver_key.pub")).unwrap();
        let cfg = std::fs::read_to_string(root.join("shipline.toml"))
            .unwrap()
            .replace("ghcr.io/hestami-ai/api", &repository)
            .replace("compose_project = \"dev\"", &format!("compose_project = \"{dev_project}\""))
            .replace("compose_project = \"prod\"", &format!("compose_project = \"{prod_project}\""))
            .replace(
                "approvers = [\n",
                &format!("approvers = [\n  {{ identity = \"carol@example.com\", public_key = \"{}\" }},\n", pubkey.trim()),
            )
            .replace(
                "# No [registry]",
                &match &registry {
                    Some(r) => format!("[registry]\nhost = \"{}\"\nusername_env = \"E2E_REGISTRY_USER\"\npassword_env = \"E2E_REGISTRY_PASSWORD\"\n\n# No [registry]", r.host),
                    None => "# No [registry]".to_string(),
                },
            );
        std::fs::write(root.join("shipline.toml"), cfg).unwrap();
        let compose = root.join("compose.common.yaml");
        let text = std::fs::read_to_string(&compose)
            .unwrap()
            .replace("ghcr.io/hestami-ai/api", &repository);
        std::fs::write(&compose, text).unwrap();
        sh(root, "git", &["init", "-q", "-b", "dev"]);
        git_commit(root, "v1");
        Project {
            dir,
            host,
            _registry: registry,
            ca,
            repository,
            dev_project,
            prod_project,
            key,
            actions: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs shipline on a pseudo-terminal (util-linux `script`), as a developer at a terminal
    /// would: returns the exit code and everything the terminal showed.
    fn shipline_on_a_terminal(&self, args: &[&str]) -> (i32, String) {
        let cmd = self.shipline_command(args);
        let line = std::iter::once(env!("CARGO_BIN_EXE_shipline"))
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        script.current_dir(self.root());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        // colour is wanted here: the terminal decides
        script.env_remove("NO_COLOR");
        let o = script
            .output()
            .unwrap_or_else(|e| panic!("prerequisite missing: script (util-linux): {e}"));
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    fn shipline(&self, args: &[&str]) -> Output {
        self.shipline_command(args).output().expect("run shipline")
    }

    fn shipline_command(&self, args: &[&str]) -> Command {
        let venv = std::env::var_os("SHIPLINE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join(".venv"));
        let semgrep = venv.join("bin/semgrep");
        assert!(
            semgrep.exists(),
            "prerequisite missing: {} (run scripts/prereqs.sh)",
            semgrep.display()
        );
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipline"));
        cmd.args(args)
            .current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("PATH", path)
            .env("DOCKER_CONFIG", self.root().join("docker-config"))
            .env("E2E_REGISTRY_USER", USER)
            .env("E2E_REGISTRY_PASSWORD", PASSWORD)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.actions.path().join("output"))
            .env("GITHUB_STEP_SUMMARY", self.actions.path().join("summary"))
            .env_remove("GITHUB_SHA")
            .env_remove("IMAGE_TAG");
        cmd
    }

    /// The config digest (the image ID) named by the manifest `digest` in the registry, read
    /// by pulling the manifest into an OCI layout.
    fn config_digest_in_registry(&self, digest: &str) -> String {
        let out = self.root().join(format!("pulled-{}", &digest[7..19]));
        let o = self.shipline(&[
            "pull",
            &format!("{}@{digest}", self.repository),
            "--to",
            &format!("oci:{}:check", out.display()),
            "--insecure-registry",
            &self.host,
        ]);
        assert_eq!(o.status.code(), Some(0), "pull: {}", stderr(&o));
        let manifest = std::fs::read(out.join("blobs/sha256").join(&digest[7..])).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        manifest["config"]["digest"].as_str().unwrap().to_string()
    }

    fn run(&self, args: &[&str]) -> (i32, serde_json::Value, Output) {
        let ca = self.ca.to_str().unwrap().to_string();
        let mut full: Vec<&str> = args.to_vec();
        if self.ca.exists() {
            full.extend(["--ca-cert", &ca]);
        }
        full.push("--json");
        let o = self.shipline(&full);
        let text = stdout(&o);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "run printed no JSON record ({e}):\nstdout: {text}\nstderr: {}",
                stderr(&o)
            )
        });
        // nor into what a workflow step would keep: its outputs and its summary
        let read =
            |f: &str| std::fs::read_to_string(self.actions.path().join(f)).unwrap_or_default();
        for out in [stdout(&o), stderr(&o), read("output"), read("summary")] {
            assert!(
                !out.contains(PASSWORD),
                "the registry password leaked into output"
            );
        }
        (o.status.code().unwrap_or(-1), v, o)
    }

    fn commit(&self, msg: &str) {
        git_commit(self.root(), msg);
    }

    fn env_value(&self, file: &str) -> String {
        let text = std::fs::read_to_string(self.root().join(file)).unwrap();
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix("IMAGE_TAG="))
            .unwrap()
            .to_string()
    }

    /// Image ids of the running containers of a compose project.
    fn running_images(&self, project: &str) -> Vec<String> {
        let o = sh(
            self.root(),
            "docker",
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
            ],
        );
        let ids: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
        assert!(!ids.is_empty(), "no running containers in {project}");
        ids.iter()
            .map(|id| {
                let o = sh(self.root(), "docker", &["inspect", "-f", "{{.Image}}", id]);
                stdout(&o).trim().to_string()
            })
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for p in [&self.dev_project, &self.prod_project] {
            let ids = Command::new("docker")
                .args([
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label=com.docker.compose.project={p}"),
                ])
                .output();
            if let Ok(o) = ids {
                for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(["rm", "-f", id]).output();
                }
            }
            let _ = Command::new("docker")
                .args(["network", "rm", &format!("{p}_backend")])
                .output();
        }
        let o = Command::new("docker")
            .args(["images", "-q", &self.repository])
            .output();
        if let Ok(o) = o {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rmi", "-f", id]).output();
            }
        }
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.subsec_nanos() ^ std::process::id().rotate_left(16)) as u32
}

fn stage<'a>(record: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no stage {id}"))
}

#[test]
fn dev_then_main_approve_prod_with_one_digest_everywhere() {
    let p = Project::new();
    let dev_env_before = std::fs::read_to_string(p.root().join(".env.local")).unwrap();

    // ---- dev: build, test, scan, push, deploy
    let (code, dev, o) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 0, "dev run failed:\n{}", stderr(&o));
    assert_eq!(dev["status"], "succeeded");
    let digest = dev["image"]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"));
    let tag = dev["image"]["tag"].as_str().unwrap().to_string();
    let image_id = dev["image"]["image_id"].as_str().unwrap().to_string();
    // as a workflow step, the run handed its image to later steps and summarized itself
    let outputs = std::fs::read_to_string(p.actions.path().join("output")).unwrap();
    assert!(outputs.contains(&format!("digest={digest}\n")), "{outputs}");
    assert!(outputs.contains(&format!("tag={tag}\n")), "{outputs}");
    assert!(outputs.contains("status=succeeded\n"), "{outputs}");
    let summary = std::fs::read_to_string(p.actions.path().join("summary")).unwrap();
    assert!(summary.contains("| deploy:dev | succeeded |"), "{summary}");
    // trivy cannot run here: the run says so plainly
    let scanners = dev["findings"]["scanners"].as_array().unwrap();
    let trivy = scanners
        .iter()
        .find(|s| s["name"] == "trivy")
        .expect("trivy listed");
    assert_eq!(trivy["status"], "skipped");
    // the dev env file changed only in its tag line
    let dev_env_after = std::fs::read_to_string(p.root().join(".env.local")).unwrap();
    let before: Vec<&str> = dev_env_before.lines().collect();
    let after: Vec<&str> = dev_env_after.lines().collect();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        if b.starts_with("IMAGE_TAG=") {
            assert_eq!(*a, format!("IMAGE_TAG={tag}"));
        } else {
            assert_eq!(b, a);
        }
    }
    assert!(p
        .running_images(&p.dev_project)
        .iter()
        .all(|i| *i == image_id));
    // the pushed image has that digest
    let pushed = p.shipline(&[
        "digest",
        &format!("{}:{tag}", p.repository),
        "--insecure-registry",
        &p.host,
    ]);
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    assert!(
        stdout(&pushed).contains(&digest),
        "registry digest {} != {digest}",
        stdout(&pushed)
    );

    // `push docker-daemon:` exports the same bytes: the digest is reproduced exactly
    let copy_ref = format!("{}-copy:{tag}", p.repository);
    let o = p.shipline(&[
        "push",
        &format!("docker-daemon:{}:{tag}", p.repository),
        &copy_ref,
        "--insecure-registry",
        &p.host,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pushed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pushed["digest"], digest.as_str());

    // ---- main: same pipeline for prod, stops at the approval gate
    let (code, main, o) = p.run(&["run", "--branch", "main"]);
    assert_eq!(code, 0, "{}", stderr(&o));
    assert_eq!(main["status"], "waiting_approval");
    assert_eq!(stage(&main, "approve")["status"], "waiting");
    assert!(stage(&main, "approve")["message"]
        .as_str()
        .unwrap()
        .contains("shipline approve prod --digest"));
    assert_eq!(stage(&main, "deploy:prod")["status"], "skipped");
    let prod_digest = main["image"]["digest"].as_str().unwrap().to_string();
    let prod_tag = main["image"]["tag"].as_str().unwrap().to_string();
    let run_id = main["id"].as_str().unwrap().to_string();

    // ---- approve exactly that digest, then resume
    let o = p.shipline(&[
        "approve",
        "prod",
        "--digest",
        &prod_digest,
        "--key",
        p.key.to_str().unwrap(),
        "--requester",
        "ci@example.com",
        "--reason",
        "e2e release",
        "--push",
        "--insecure-registry",
        &p.host,
    ]);
    assert_eq!(o.status.code(), Some(0), "approve failed: {}", stderr(&o));
    // `deploy ENV --run RUN_ID` is `run --resume RUN_ID` for the run that deploys to ENV
    let o = p.shipline(&["deploy", "dev", "--run", &run_id]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "deploys to prod, not dev: `shipline deploy prod --run {run_id}`"
        )),
        "{}",
        stderr(&o)
    );
    let (code, resumed, o) = p.run(&["deploy", "prod", "--run", &run_id]);
    assert_eq!(code, 0, "resume failed:\n{}", stderr(&o));
    assert_eq!(resumed["status"], "succeeded");
    assert_eq!(resumed["id"], main["id"]);
    assert_eq!(resumed["image"]["digest"], prod_digest.as_str());
    // the approval names the digest
    assert_eq!(resumed["approval"]["digest"], prod_digest.as_str());
    let o = p.shipline(&["approvals", "list", "prod", "--json"]);
    assert!(
        stdout(&o).contains(&prod_digest),
        "approvals list: {}",
        stdout(&o)
    );
    // the prod env file names a tag whose registry digest is the approved one
    assert_eq!(p.env_value(".env.prod"), prod_tag);
    let pushed = p.shipline(&[
        "digest",
        &format!("{}:{prod_tag}", p.repository),
        "--insecure-registry",
        &p.host,
    ]);
    assert!(stdout(&pushed).contains(&prod_digest));
    // the running prod containers run the image that digest describes: its config digest, read
    // from the manifest pulled back from the registry, is their image ID
    let prod_image = resumed["image"]["image_id"].as_str().unwrap();
    assert_eq!(
        p.config_digest_in_registry(&prod_digest),
        prod_image,
        "the registry's manifest names the image the run built"
    );
    assert!(p
        .running_images(&p.prod_project)
        .iter()
        .all(|i| i == prod_image));
    // and the stored record agrees
    let o = p.shipline(&["runs", "show", &run_id, "--json"]);
    let stored: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stored["image"]["digest"], prod_digest.as_str());
    assert_eq!(stored["deploy"]["digest"], prod_digest.as_str());

    // a deploy host that holds no local approvals reads the ones attached in the registry
    let approvals_dir = p.root().join(".shipline/approvals/prod");
    assert!(
        approvals_dir.is_dir(),
        "approve stores its approval locally"
    );
    let o = p.shipline(&["approvals", "list", "prod", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let approval_id = listed["approvals"][0]["id"].as_str().unwrap().to_string();
    let saved = p.root().join("approvals-saved");
    std::fs::rename(&approvals_dir, &saved).unwrap();
    let env_before = std::fs::read(p.root().join(".env.prod")).unwrap();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "prod",
            "--digest",
            &prod_digest,
            "--tag",
            &prod_tag,
            "--insecure-registry",
            &p.host,
            "--json",
        ];
        args.extend_from_slice(extra);
        p.shipline(&args)
    };
    let o = deploy(&["--local-approvals"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "no local approval: refused\n{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("approval refused") && !stderr(&o).contains("digest of"),
        "refused by the approval check, not by the digest check: {}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(p.root().join(".env.prod")).unwrap(),
        env_before
    );
    let o = deploy(&[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "registry approval accepted\n{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("1 approval(s) and 0 revocation(s) attached in the registry"),
        "{}",
        stderr(&o)
    );
    assert_eq!(p.env_value(".env.prod"), prod_tag);

    // a revocation attached in the registry reaches that host too
    std::fs::rename(&saved, &approvals_dir).unwrap();
    let o = p.shipline(&[
        "approvals",
        "revoke",
        "prod",
        &approval_id,
        "--reason",
        "e2e: wrong build",
        "--by",
        "carol@example.com",
        "--push",
        "--insecure-registry",
        &p.host,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "revoke --push: {}", stderr(&o));
    let revoked: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(revoked["artifact"].as_str().unwrap().starts_with("sha256:"));
    std::fs::remove_dir_all(&approvals_dir).unwrap();
    let o = deploy(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "revoked in the registry: refused\n{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("1 approval(s) and 1 revocation(s)") && stderr(&o).contains("revoked"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn planted_high_finding_fails_before_push_and_failing_health_rolls_back() {
    let p = Project::new();
    let (code, first, o) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 0, "{}", stderr(&o));
    let good_tag = first["image"]["tag"].as_str().unwrap().to_string();
    let good_image = first["image"]["image_id"].as_str().unwrap().to_string();

    // a HIGH semgrep finding (the example's rule: eval in a page)
    std::fs::write(
        p.root().join("app/www/admin.html"),
        "<script>eval(location.hash)</script>\n",
    )
    .unwrap();
    p.commit("planted finding");
    let (code, bad, _) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 1);
    assert_eq!(bad["status"], "failed");
    assert_eq!(stage(&bad, "gate")["status"], "failed");
    assert_eq!(stage(&bad, "push")["status"], "skipped");
    assert_eq!(stage(&bad, "deploy:dev")["status"], "skipped");
    assert!(bad["image"]["digest"].is_null(), "nothing was pushed");
    assert_eq!(p.env_value(".env.local"), good_tag);

    // a failing health check: the new version never becomes healthy
    std::fs::remove_file(p.root().join("app/www/admin.html")).unwrap();
    std::fs::remove_file(p.root().join("app/www/health")).unwrap();
    // keep the test stage green: it checks a file that still exists
    let cfg = std::fs::read_to_string(p.root().join("shipline.toml"))
        .unwrap()
        .replace("\"/www/health\"]", "\"/www/index.html\"]")
        .replace(
            "timeout = \"60s\"\ninterval = \"1s\"",
            "timeout = \"15s\"\ninterval = \"1s\"",
        );
    std::fs::write(p.root().join("shipline.toml"), cfg).unwrap();
    p.commit("broken health");
    let (code, broken, o) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 1, "{}", stderr(&o));
    assert_eq!(broken["status"], "failed");
    let deploy = stage(&broken, "deploy:dev");
    assert_eq!(deploy["status"], "failed");
    assert!(
        deploy["message"].as_str().unwrap().contains("rolled back"),
        "{deploy}"
    );
    // the previous version runs again and the env file is restored
    assert_eq!(p.env_value(".env.local"), good_tag);
    assert!(p
        .running_images(&p.dev_project)
        .iter()
        .all(|i| *i == good_image));
}

/// The stage ids of a run record, in plan order.
fn stage_ids(run: &serde_json::Value) -> Vec<&str> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// `run --local` builds, tests and scans, and pushes and deploys nothing; with `promote_from`,
/// `run --branch main` promotes the digest dev ran (no build) and prod runs exactly that image.
#[test]
fn local_run_pushes_nothing_and_prod_promotes_the_digest_dev_ran() {
    let p = Project::new();
    let cfg = std::fs::read_to_string(p.root().join("shipline.toml"))
        .unwrap()
        .replace("# promote_from = \"dev\"", "promote_from = \"dev\"");
    assert!(
        cfg.contains("\npromote_from = \"dev\""),
        "the example offers promotion"
    );
    std::fs::write(p.root().join("shipline.toml"), cfg).unwrap();
    p.commit("promote prod from dev");
    let dev_env = std::fs::read(p.root().join(".env.local")).unwrap();

    // ---- the developer's local step
    let (code, local, o) = p.run(&["run", "--local"]);
    assert_eq!(code, 0, "local run failed:\n{}", stderr(&o));
    assert_eq!(local["status"], "succeeded");
    assert_eq!(
        stage_ids(&local),
        [
            "build",
            "test",
            "scan:trivy",
            "scan:semgrep",
            "scan:audit",
            "gate"
        ],
        "nothing pushed or deployed"
    );
    assert!(local["image"]["digest"].is_null(), "{}", local["image"]);
    assert_eq!(std::fs::read(p.root().join(".env.local")).unwrap(), dev_env);
    let tags = p.shipline(&[
        "tags",
        &p.repository,
        "--insecure-registry",
        &p.host,
        "--json",
    ]);
    assert!(
        !stdout(&tags).contains(local["image"]["tag"].as_str().unwrap()),
        "the local build is not in the registry: {}",
        stdout(&tags)
    );

    // ---- dev: build, push, deploy
    let (code, dev, o) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 0, "dev run failed:\n{}", stderr(&o));
    let dev_digest = dev["image"]["digest"].as_str().unwrap().to_string();
    let dev_image = dev["image"]["image_id"].as_str().unwrap().to_string();

    // ---- main: promote (no build), stop at the approval gate
    std::fs::write(p.root().join("CHANGELOG.md"), "a later change\n").unwrap();
    p.commit("a later commit on main must not be rebuilt");
    let (code, main, o) = p.run(&["run", "--branch", "main"]);
    assert_eq!(code, 0, "main run failed:\n{}", stderr(&o));
    assert_eq!(main["status"], "waiting_approval");
    assert_eq!(
        stage_ids(&main),
        ["promote", "approve", "deploy:prod"],
        "no rebuild"
    );
    assert_eq!(stage(&main, "promote")["status"], "succeeded");
    assert_eq!(main["image"]["digest"], dev_digest.as_str());

    // ---- approve the promoted digest and resume
    let o = p.shipline(&[
        "approve",
        "prod",
        "--digest",
        &dev_digest,
        "--key",
        p.key.to_str().unwrap(),
        "--requester",
        "ci@example.com",
    ]);
    assert_eq!(o.status.code(), Some(0), "approve: {}", stderr(&o));
    let run_id = main["id"].as_str().unwrap();
    let (code, resumed, o) = p.run(&["run", "--resume", run_id]);
    assert_eq!(code, 0, "resume failed:\n{}", stderr(&o));
    assert_eq!(resumed["status"], "succeeded");
    assert_eq!(resumed["deploy"]["digest"], dev_digest.as_str());
    // prod runs the very image dev ran
    let prod = p.running_images(&p.prod_project);
    assert!(!prod.is_empty());
    assert!(
        prod.iter().all(|i| *i == dev_image),
        "{prod:?} vs {dev_image}"
    );
    assert_eq!(p.config_digest_in_registry(&dev_digest), dev_image);

    // ---- what runs, read from the engine, agrees with the records; no lock is left
    let dev_tag = dev["image"]["tag"].as_str().unwrap().to_string();
    let o = p.shipline(&["status", "prod", "--json"]);
    assert_eq!(o.status.code(), Some(0), "status: {}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let prod_st = &st["environments"][0];
    assert_eq!(prod_st["env"], "prod");
    assert_eq!(prod_st["matches_record"], true, "{prod_st}");
    assert_eq!(prod_st["running_tags"], serde_json::json!([dev_tag]));
    let o = p.shipline(&["lock", "status", "prod", "--json"]);
    let lock: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(lock["lock"]["state"], "free", "{lock}");
    // an explicit rollback target goes through the same deploy path and is recorded
    let o = p.shipline(&["rollback", "dev", "--to", &dev_tag, "--json"]);
    assert_eq!(o.status.code(), Some(0), "rollback --to: {}", stderr(&o));
    let rb: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rb["deployment"]["record"]["tag"], dev_tag.as_str(), "{rb}");
    assert_eq!(p.env_value(".env.local"), dev_tag);
}

/// With no registry configured (the example as shipped), the run pushes to the OCI image
/// layout under `.shipline/` and deploys from it: no server beyond the Docker engine.
#[test]
fn without_a_registry_the_run_uses_the_embedded_oci_store() {
    let p = Project::embedded();
    let cfg = std::fs::read_to_string(p.root().join("shipline.toml")).unwrap();
    assert!(
        !cfg.contains("\n[registry]"),
        "the example configures no registry"
    );
    let (code, dev, o) = p.run(&["run", "--branch", "dev"]);
    assert_eq!(code, 0, "dev run failed:\n{}", stderr(&o));
    assert_eq!(dev["status"], "succeeded");
    let digest = dev["image"]["digest"].as_str().unwrap().to_string();
    let push = stage(&dev, "push")["message"].as_str().unwrap().to_string();
    assert!(
        push.contains("pushed oci:") && push.contains(".shipline/oci"),
        "{push}"
    );
    assert!(push.contains(&digest), "{push}");
    // the layout holds the manifest under its digest, and its config is the running image
    let oci = p.root().join(".shipline/oci");
    let index = std::fs::read_to_string(oci.join("index.json")).unwrap();
    assert!(index.contains(&digest), "{index}");
    let manifest = std::fs::read(oci.join("blobs/sha256").join(&digest[7..])).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let image_id = dev["image"]["image_id"].as_str().unwrap();
    assert_eq!(manifest["config"]["digest"], image_id);
    assert!(p
        .running_images(&p.dev_project)
        .iter()
        .all(|i| i == image_id));
    assert_eq!(
        p.env_value(".env.local"),
        dev["image"]["tag"].as_str().unwrap()
    );

    // at a terminal: live per-stage lines (coloured status, stage, duration) as stages end,
    // then the summary table with the digest and the findings
    let (code, screen) = p.shipline_on_a_terminal(&["run", "--local"]);
    assert_eq!(code, 0, "{screen}");
    let plain = strip_ansi(&screen);
    // spinners redraw in place, so finished lines may share a row with a spinner: look for
    // the words `ok STAGE 1.2s` in sequence
    let words: Vec<&str> = plain.split_whitespace().collect();
    for stage in ["build", "test", "scan:semgrep", "gate"] {
        assert!(
            words.windows(3).any(|w| w[0] == "ok"
                && w[1] == stage
                && w[2]
                    .strip_suffix('s')
                    .is_some_and(|n| n.parse::<f64>().is_ok())),
            "no live line for {stage}:\n{plain}"
        );
    }
    assert!(
        screen.contains("\x1b[32mok\x1b[0m"),
        "coloured on a terminal"
    );
    assert!(
        !plain.contains("] started"),
        "not the plain log format:\n{plain}"
    );
    assert!(
        plain.contains("STAGE") && plain.contains("findings: verdict pass"),
        "{plain}"
    );
}

/// The text with ANSI escape sequences (CSI ... letter) and carriage returns turned into line
/// breaks: what a redraw overwrote stays apart from what replaced it. Colour codes (`m`)
/// vanish without a break, so `ok` keeps its place in its line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        if c != 'm' {
                            out.push('\n');
                        }
                        break;
                    }
                }
            }
            continue;
        }
        out.push(if c == '\r' { '\n' } else { c });
    }
    out
}
