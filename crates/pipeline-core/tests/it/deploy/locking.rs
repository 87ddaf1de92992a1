//! Locks: same-environment deploys serialize, different environments run in parallel, a
//! killed deploy is detected and repaired and its lock recovered.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shipline_core::deploy::{
    deploy, history, lock_status, release_lock, DeployRequest, LockStatus, Outcome, Phase, Strategy,
};

use crate::deploy::support::{
    build_test_image, deploy_ok, engine, target_for, write_script, Stack,
};

#[tokio::test(flavor = "multi_thread")]
async fn same_environment_serializes() {
    let engine = engine().await;
    let stack = Stack::new("ser", "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    // the hook fails if another hook of this environment is running at the same time
    let hook = stack.path().join("deploy.sh");
    write_script(
        &hook,
        "[ -e running ] && { echo overlap >&2; exit 1; }\ntouch running\necho \"start $IMAGE_TAG\" >> hook.log\nsleep 2\necho \"end $IMAGE_TAG\" >> hook.log\nrm running",
    );
    let mut target = stack.target(Strategy::Recreate);
    target.deploy_hook = Some(hook);
    let mut a = DeployRequest::new(target.clone(), "v1".into());
    let mut b = DeployRequest::new(target.clone(), "v2".into());
    a.lock_wait = Duration::from_secs(180);
    b.lock_wait = Duration::from_secs(180);
    let (ra, rb) = tokio::join!(deploy(&engine, &a, &|_| {}), deploy(&engine, &b, &|_| {}));
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(
        ra.succeeded() && rb.succeeded(),
        "{:?} {:?}",
        ra.failure,
        rb.failure
    );
    let log = std::fs::read_to_string(stack.path().join("hook.log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].starts_with("start") && lines[1].starts_with("end"),
        "{log}"
    );
    assert_eq!(lines[0][6..], lines[1][4..], "{log}");
    // without waiting, a concurrent deploy is refused with the holder named
    let mut slow = DeployRequest::new(target.clone(), "v1".into());
    slow.reason = "slow deploy".into();
    let mut quick = DeployRequest::new(target.clone(), "v2".into());
    quick.lock_wait = Duration::ZERO;
    let (rs, rq) = tokio::join!(deploy(&engine, &slow, &|_| {}), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        deploy(&engine, &quick, &|_| {}).await
    });
    assert!(rs.expect("slow").succeeded());
    let err = rq.expect_err("refused");
    assert!(err.to_string().contains("slow deploy"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn different_environments_run_in_parallel() {
    let engine = engine().await;
    let one = Stack::new("parA", "");
    let two = Stack::new("parB", "");
    let meeting = tempfile::tempdir().expect("tempdir");
    let mut reqs = Vec::new();
    for (me, other, stack) in [("a", "b", &one), ("b", "a", &two)] {
        build_test_image(&engine, &stack.repository, "v1", true).await;
        // each hook waits (up to 60 s) for the other environment's hook to have started:
        // serialized deploys would time out here and fail
        let hook = stack.path().join("deploy.sh");
        write_script(
            &hook,
            &format!(
                "touch {dir}/{me}\ni=0\nwhile [ ! -e {dir}/{other} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done",
                dir = meeting.path().display()
            ),
        );
        let mut t = stack.target(Strategy::Recreate);
        t.deploy_hook = Some(hook);
        reqs.push(DeployRequest::new(t, "v1".into()));
    }
    let (r1, r2) = tokio::join!(
        deploy(&engine, &reqs[0], &|_| {}),
        deploy(&engine, &reqs[1], &|_| {})
    );
    let (r1, r2) = (r1.expect("one"), r2.expect("two"));
    assert!(
        r1.succeeded() && r2.succeeded(),
        "{:?} {:?}",
        r1.failure,
        r2.failure
    );
}

const CHILD_DIR: &str = "SHIPLINE_TEST_CHILD_DIR";

/// Not a test of its own: the body of the child process that [`killed_deploy_is_repaired`]
/// starts (by re-running this test binary) and kills while its deploy hook runs. Without
/// the child environment variables it returns at once.
#[tokio::test(flavor = "multi_thread")]
async fn child_deploy_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let project = std::env::var("SHIPLINE_TEST_CHILD_PROJECT").expect("project");
    let repo = std::env::var("SHIPLINE_TEST_CHILD_REPO").expect("repo");
    let tag = std::env::var("SHIPLINE_TEST_CHILD_TAG").expect("tag");
    let mut target = target_for(&dir, &project, &repo, Strategy::Rolling);
    target.deploy_hook = Some(dir.join("hang.sh"));
    let engine = engine().await;
    let _ = deploy(&engine, &DeployRequest::new(target, tag), &|_| {}).await;
    panic!("the child deploy was supposed to be killed");
}

/// Starts a child deploy of `tag` whose hook hangs, and SIGKILLs it (and the hook) once the
/// hook runs: the env file already holds the new tag, the lock journal says `hook`.
async fn kill_mid_deploy(stack: &Stack, tag: &str) {
    let marker = stack.path().join("hook.pid");
    let _ = std::fs::remove_file(&marker);
    write_script(
        &stack.path().join("hang.sh"),
        &format!("echo $$ > {}\nexec sleep 300", marker.display()),
    );
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "deploy::locking::child_deploy_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, stack.path())
        .env("SHIPLINE_TEST_CHILD_PROJECT", &stack.project)
        .env("SHIPLINE_TEST_CHILD_REPO", &stack.repository)
        .env("SHIPLINE_TEST_CHILD_TAG", tag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child deploy");
    let start = Instant::now();
    let hook_pid = loop {
        if let Ok(p) = std::fs::read_to_string(&marker) {
            if let Ok(p) = p.trim().parse::<i32>() {
                break p;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the child deploy never reached its hook"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the child deploy ended early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().expect("kill child");
    let _ = child.wait();
    // SAFETY: plain kill(2) of the hook process the child started
    unsafe {
        libc::kill(hook_pid, libc::SIGKILL);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_deploy_is_repaired() {
    let engine = engine().await;
    let stack = Stack::new("kill", "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let target = stack.target(Strategy::Rolling);
    let locks = target.store_dir.join("locks");
    deploy_ok(&engine, &target, "v1").await;

    // 1. killed mid-way; `lock release` repairs
    kill_mid_deploy(&stack, "v2").await;
    assert_eq!(
        stack.env_tag().as_deref(),
        Some("v2"),
        "the child had written the env file"
    );
    match lock_status(&locks, &target.env).expect("status") {
        LockStatus::Interrupted { holder } => assert_eq!(holder.phase, Phase::Hook),
        other => panic!("expected an interrupted lock, got {other:?}"),
    }
    let repaired = release_lock(&engine, &target, &|_| {})
        .await
        .expect("release");
    assert!(repaired.is_some());
    assert_eq!(
        lock_status(&locks, &target.env).expect("status"),
        LockStatus::Free
    );
    assert_eq!(stack.env_tag().as_deref(), Some("v1"), "env file restored");
    assert_eq!(
        stack.running_images(&engine).await,
        [format!("{}:v1", stack.repository)]
    );

    // 2. killed again; the next deploy detects it, repairs, and goes on
    kill_mid_deploy(&stack, "v2").await;
    let r = deploy(
        &engine,
        &DeployRequest::new(target.clone(), "v2".into()),
        &|_| {},
    )
    .await
    .expect("deploy after crash");
    assert!(r.repaired.is_some(), "the interrupted deploy was detected");
    assert!(r.succeeded(), "{:?}", r.failure);
    assert_eq!(stack.env_tag().as_deref(), Some("v2"));
    assert_eq!(
        stack.running_images(&engine).await,
        [format!("{}:v2", stack.repository)]
    );
    let outcomes: Vec<Outcome> = history(&target.store_dir, &target.env)
        .expect("history")
        .iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded,
            Outcome::Repaired,
            Outcome::Repaired,
            Outcome::Succeeded
        ]
    );
}

/// A deploy killed mid-rollout leaves new containers next to drained old ones; the repair
/// removes the new ones, un-drains the old ones and restores the env file.
#[tokio::test(flavor = "multi_thread")]
async fn repair_of_a_half_rolled_stack() {
    let engine = engine().await;
    let stack = Stack::new("half", "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let target = stack.target(Strategy::Rolling);
    deploy_ok(&engine, &target, "v1").await;
    let old = engine
        .project_containers(&stack.project, Some("web"), true)
        .await
        .expect("containers");
    assert_eq!(old.len(), 1);

    // what a deploy killed between "scale up" and "remove old" leaves behind
    let backup_dir = target.store_dir.join("backups").join(&target.env);
    let backup = shipline_core::deploy::set_var(&stack.env_file(), "IMAGE_TAG", "v2", &backup_dir)
        .expect("env file");
    let up = std::process::Command::new("docker-compose")
        .current_dir(stack.path())
        .args([
            "-p",
            &stack.project,
            "-f",
            "compose.yaml",
            "--env-file",
            ".env.test",
        ])
        .args([
            "up",
            "-d",
            "--no-deps",
            "--no-recreate",
            "--scale",
            "web=2",
            "web",
        ])
        .output()
        .expect("docker-compose");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let drained = engine
        .exec(&old[0].id, &["touch".into(), "/tmp/drain".into()])
        .await
        .expect("drain");
    assert_eq!(drained, 0);
    let journal = shipline_core::deploy::LockState {
        env: target.env.clone(),
        pid: 999_999,
        host: "elsewhere".into(),
        user: "test".into(),
        reason: "deploy v2".into(),
        since: "2026-01-01T00:00:00Z".into(),
        phase: Phase::Rollout,
        new_tag: Some("v2".into()),
        previous_tag: Some("v1".into()),
        env_backup: backup,
        scales: vec![("web".into(), 1)],
    };
    let locks = target.store_dir.join("locks");
    std::fs::create_dir_all(&locks).expect("locks dir");
    std::fs::write(
        locks.join(format!("{}.json", target.env)),
        serde_json::to_vec(&journal).expect("json"),
    )
    .expect("journal");
    assert!(matches!(
        lock_status(&locks, &target.env).expect("status"),
        LockStatus::Interrupted { .. }
    ));

    let repaired = release_lock(&engine, &target, &|_| {})
        .await
        .expect("repair");
    assert_eq!(repaired.map(|j| j.phase), Some(Phase::Rollout));
    assert_eq!(stack.env_tag().as_deref(), Some("v1"));
    let now = engine
        .project_containers(&stack.project, Some("web"), true)
        .await
        .expect("containers");
    assert_eq!(now.len(), 1, "the new container was removed");
    assert_eq!(now[0].id, old[0].id, "the old container kept serving");
    // un-drained: its health check passes again
    let start = Instant::now();
    loop {
        let c = engine.inspect(&old[0].id).await.expect("inspect");
        if c.health == shipline_core::engine::Health::Healthy {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still {:?}",
            c.health
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
