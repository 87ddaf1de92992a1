//! The registry commands through the binary, against Debian's docker-registry with TLS and
//! htpasswd: credentials from a docker credential helper, `--ca-cert`, `tags`, `prune`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::e2e::registry_support::{Auth, TestRegistry};
use crate::{stderr, stdout};

const USER: &str = "helper-user";
const PASSWORD: &str = "helper-canary-secret-51d0";

/// Runs shipline with `bin` first on PATH and the docker config in `config_dir`.
fn run(dir: &Path, bin: &Path, config_dir: &Path, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PATH", path)
        .env("DOCKER_CONFIG", config_dir)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run shipline")
}

#[test]
fn registry_commands_use_a_credential_helper_and_never_print_the_secret() {
    let reg = TestRegistry::start(
        Auth::Htpasswd {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        true,
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ca = root.join("ca.pem");
    std::fs::write(&ca, reg.ca_pem.as_ref().unwrap()).unwrap();
    let ca = ca.to_str().unwrap().to_string();
    // docker-credential-shiplinetest: `get` reads the server URL on stdin, prints the secret
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-shiplinetest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}\\n' \"$server\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = root.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"shiplinetest\"}}}}", reg.host),
    )
    .unwrap();
    let src = root.join("src");
    crate::actions::make_layout(&src);
    let repo = format!("{}/helper/app", reg.host);
    let src_loc = format!("oci:{}:v1", src.display());

    // without the helper on PATH the lookup fails clearly (exit 3), naming no secret
    let empty = root.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args(["copy", &src_loc, &format!("{repo}:v1"), "--ca-cert", &ca])
        .current_dir(root)
        .env("PATH", &empty)
        .env("DOCKER_CONFIG", &config)
        .output()
        .expect("run shipline");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("shiplinetest"), "{}", stderr(&o));
    no_secret(&o);

    // with it: push (a copy to the registry) over verified TLS with --ca-cert
    let mut digests = Vec::new();
    for tag in ["v1", "v2"] {
        let o = run(
            root,
            &bin,
            &config,
            &[
                "copy",
                &src_loc,
                &format!("{repo}:{tag}"),
                "--ca-cert",
                &ca,
                "--json",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        no_secret(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        digests.push(v["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1], "one image under two tags");
    let o = run(
        root,
        &bin,
        &config,
        &["tags", &repo, "--ca-cert", &ca, "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    no_secret(&o);
    let tags: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1", "v2"]), "{tags}");

    // prune, dry run first: the layout's image has no creation time, so both tags are kept
    // as "creation time unknown" under an age limit, and nothing is deleted
    let o = run(
        root,
        &bin,
        &config,
        &[
            "prune",
            &repo,
            "--keep",
            "0",
            "--older-than",
            "7d",
            "--dry-run",
            "--ca-cert",
            &ca,
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    no_secret(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dry_run"], true, "{plan}");
    let entries = plan["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{plan}");

    // a missing --ca-cert file is a usage error
    let o = run(
        root,
        &bin,
        &config,
        &["tags", &repo, "--ca-cert", "/nonexistent/ca.pem"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/ca.pem"), "{}", stderr(&o));
    no_secret(&o);
}

/// The canary secret appears in no output.
fn no_secret(o: &Output) {
    assert!(
        !stdout(o).contains(PASSWORD) && !stderr(o).contains(PASSWORD),
        "the secret leaked"
    );
}
