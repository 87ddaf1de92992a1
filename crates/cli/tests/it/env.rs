//! `shipline env`: get, set, unset, check, dump, diff through the real binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::{shipline, stderr, stdout};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().expect("exit code")
}

#[test]
fn env_set_get_unset_edit_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join(".env.local");
    fs::write(
        &env,
        "# deploy\nIMAGE_TAG=old\nexport IMAGE_TAG=stale # wins\nDB_PASSWORD='Zq9-long-random'\n",
    )
    .expect("write");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).expect("chmod");

    let o = shipline(dir.path(), &["env", "get", ".env.local", "IMAGE_TAG"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "stale\n"),
        "{}",
        stderr(&o)
    );
    let o = shipline(
        dir.path(),
        &["env", "get", ".env.local", "IMAGE_TAG", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).expect("JSON"),
        serde_json::json!({"version": 1, "key": "IMAGE_TAG", "value": "stale"})
    );

    let o = shipline(
        dir.path(),
        &[
            "env",
            "set",
            ".env.local",
            "IMAGE_TAG=v2.0",
            "NEW=a b",
            "--backup",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "set prints results only with --json");
    assert_eq!(
        fs::read_to_string(&env).expect("read"),
        "# deploy\nIMAGE_TAG=old\nexport IMAGE_TAG=v2.0 # wins\nDB_PASSWORD='Zq9-long-random'\nNEW='a b'\n"
    );
    assert_eq!(
        fs::metadata(&env).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    let backup = dir.path().join(".env.local.bak");
    assert!(fs::read_to_string(&backup)
        .expect("backup")
        .contains("IMAGE_TAG=stale"));
    assert!(!stderr(&o).contains("Zq9"));

    let o = shipline(dir.path(), &["env", "unset", ".env.local", "IMAGE_TAG"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = shipline(dir.path(), &["env", "get", ".env.local", "IMAGE_TAG"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("key IMAGE_TAG is not set"));
}

#[test]
fn env_set_usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(".env"), "A=1\n").expect("write");
    for args in [
        &["env", "set", ".env", "NO_EQUALS"][..],
        &["env", "set", ".env", "BAD KEY=1"][..],
        &["env", "set", "missing.env", "A=1", "--no-create"][..],
        &["env", "get", "missing.env", "A"][..],
        &["env", "set", "no-such-dir/.env", "A=1"][..],
    ] {
        let o = shipline(dir.path(), args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        fs::read_to_string(dir.path().join(".env")).expect("read"),
        "A=1\n"
    );
}

#[test]
fn env_check_exit_codes_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warn = dir.path().join("warn.env");
    fs::write(&warn, "A=1\nA=2\n").expect("write");
    let o = shipline(dir.path(), &["env", "check", "warn.env"]);
    assert_eq!(code(&o), 0, "warnings pass without --strict");
    assert!(
        stdout(&o).contains("warn.env:1: warning[duplicate-key]"),
        "{}",
        stdout(&o)
    );
    let o = shipline(dir.path(), &["env", "check", "warn.env", "--strict"]);
    assert_eq!(code(&o), 1);

    let bad = dir.path().join("bad.env");
    fs::write(
        &bad,
        "DB_PASSWORD=changeme\nAPI_TOKEN=s3cr3t-t0ken #x\nOK KEY=1\n",
    )
    .expect("write");
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = shipline(dir.path(), &["env", "check", "bad.env", "--json"]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["errors"], 2);
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        codes,
        [
            "permissions",
            "placeholder-secret",
            "inline-comment",
            "invalid-key"
        ]
    );
    assert!(
        !stdout(&o).contains("s3cr3t"),
        "secret value leaked: {}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("changeme"));
}

#[test]
fn env_dump_resolves_like_compose() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join(".env"),
        "BASE=file\nURL=http://${BASE}/x\nFROM_ENV\n",
    )
    .expect("write");
    let run = |extra: &[&str]| {
        let mut args = vec!["env", "dump", ".env", "--json"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_shipline"))
            .args(&args)
            .current_dir(dir.path())
            .env("BASE", "shell")
            .env("FROM_ENV", "inherited")
            .output()
            .expect("run")
    };
    let o = run(&[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "values": {"BASE": "file", "URL": "http://shell/x", "FROM_ENV": "inherited"}})
    );
    let o = run(&["--no-process-env"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "values": {"BASE": "file", "URL": "http://file/x"}})
    );

    fs::write(dir.path().join("broken.env"), "A=${\n").expect("write");
    let o = shipline(dir.path(), &["env", "dump", "broken.env", "--json"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("broken.env:1:"), "{}", stderr(&o));
}

#[test]
fn env_diff_masks_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("a.env"),
        "TAG=1\nDB_PASSWORD=hunter2\nGONE=x\nDSN=postgres://u:pw1@db/x\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("b.env"),
        "TAG=2\nDB_PASSWORD=hunter3\nNEW=y\nDSN=postgres://u:pw2@db/x\n",
    )
    .expect("write");
    let o = shipline(dir.path(), &["env", "diff", "a.env", "b.env"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        "~ DB_PASSWORD: <redacted> (changed)\n~ DSN: <redacted> (changed)\n- GONE=x\n+ NEW=y\n~ TAG: 1 -> 2\n"
    );
    let o = shipline(
        dir.path(),
        &["env", "diff", "a.env", "b.env", "--json", "--exit-code"],
    );
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(
        !out.contains("hunter") && !out.contains("pw1") && !out.contains("pw2"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(
        v["added"],
        serde_json::json!([{"key": "NEW", "value": "y"}])
    );
    let o = shipline(
        dir.path(),
        &["env", "diff", "a.env", "a.env", "--exit-code"],
    );
    assert_eq!((code(&o), stdout(&o).as_str()), (0, ""));
}

#[test]
fn env_set_value_from_stdin() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shipline"))
        .args([
            "env",
            "set",
            ".env",
            "--value-from-stdin",
            "DB_PASSWORD",
            "TAG=1",
        ])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"p@ss w'rd $x\n")
        .expect("write stdin");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("p@ss"));
    let o = shipline(
        dir.path(),
        &["env", "dump", ".env", "--json", "--no-process-env"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["values"]["DB_PASSWORD"], "p@ss w'rd $x");
    assert_eq!(v["values"]["TAG"], "1");
    let mode = fs::metadata(dir.path().join(".env"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "a new env file is created 0600");
}
