//! Executor: concurrency, failure propagation, cancellation, resume, crash-safe run records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use shipline_core::events::{Event, EventSink};
use shipline_core::executor::{Executor, Stage, StageContext, StageError, StageOutput};
use shipline_core::plan::{Plan, PlannedStage, StageKind};
use shipline_core::run::{RunRecord, RunStatus, StageStatus};
use shipline_core::store::Store;
use tokio::sync::Barrier;

type Body =
    Arc<dyn Fn(StageContext) -> BoxFuture<'static, Result<StageOutput, StageError>> + Send + Sync>;

struct FnStage {
    id: String,
    needs: Vec<String>,
    body: Body,
}

impl Stage for FnStage {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> StageKind {
        StageKind::Custom
    }
    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }
    fn run(&self, ctx: StageContext) -> BoxFuture<'_, Result<StageOutput, StageError>> {
        (self.body)(ctx)
    }
}

fn stage<F>(id: &str, needs: &[&str], f: F) -> Arc<dyn Stage>
where
    F: Fn(StageContext) -> BoxFuture<'static, Result<StageOutput, StageError>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(FnStage {
        id: id.into(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        body: Arc::new(f),
    })
}

fn ok(id: &str, needs: &[&str]) -> Arc<dyn Stage> {
    let msg = format!("{id} done");
    stage(id, needs, move |_| {
        let msg = msg.clone();
        Box::pin(async move { Ok(StageOutput::Message(msg)) })
    })
}

fn record_for(stages: &[Arc<dyn Stage>]) -> RunRecord {
    let plan = Plan {
        branch: Some("dev".into()),
        environment: Some("dev".into()),
        local: false,
        stages: stages
            .iter()
            .map(|s| PlannedStage {
                id: s.id().into(),
                kind: s.kind(),
                needs: s.needs(),
                description: String::new(),
            })
            .collect(),
    };
    RunRecord::new("test", "run", &plan)
}

fn status(r: &RunRecord, id: &str) -> StageStatus {
    r.stage(id).unwrap().status
}

#[tokio::test]
async fn independent_stages_overlap_in_time() {
    // Each scanner waits for the other at a barrier: run one after the other, the first one
    // would time out and fail. Both succeeding proves they ran at the same time.
    let barrier = Arc::new(Barrier::new(2));
    let scanner = |id: &str| {
        let b = barrier.clone();
        stage(id, &["build"], move |_| {
            let b = b.clone();
            Box::pin(async move {
                tokio::time::timeout(Duration::from_secs(20), b.wait())
                    .await
                    .map_err(|_| StageError::failed("the other scanner never ran alongside"))?;
                Ok(StageOutput::None)
            })
        })
    };
    let stages = vec![
        ok("build", &[]),
        scanner("scan:trivy"),
        scanner("scan:semgrep"),
        ok("gate", &["scan:trivy", "scan:semgrep"]),
    ];
    let (sink, mut rx) = EventSink::channel();
    let record = record_for(&stages);
    let out = Executor::new(stages)
        .events(sink)
        .run(record, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{out:#?}");
    // both scanners started before either finished
    let mut order = Vec::new();
    while let Ok(e) = rx.try_recv() {
        match e {
            Event::StageStarted { stage } => order.push(format!("start {stage}")),
            Event::StageFinished { stage, .. } => order.push(format!("end {stage}")),
            _ => {}
        }
    }
    let pos = |s: &str| order.iter().position(|x| x == s).unwrap();
    assert!(pos("start scan:trivy") < pos("end scan:semgrep"));
    assert!(pos("start scan:semgrep") < pos("end scan:trivy"));
    assert!(
        pos("end scan:trivy") < pos("start gate") && pos("end scan:semgrep") < pos("start gate")
    );
}

#[tokio::test]
async fn a_failed_stage_stops_its_dependents_only() {
    let stages = vec![
        ok("build", &[]),
        stage("test", &["build"], |_| {
            Box::pin(async { Err(StageError::failed("test exited 1")) })
        }),
        ok("scan:semgrep", &[]),
        ok("gate", &["test", "scan:semgrep"]),
        ok("push", &["gate"]),
        ok("deploy:dev", &["push"]),
    ];
    let record = record_for(&stages);
    let out = Executor::new(stages)
        .run(record, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(status(&out, "build"), StageStatus::Succeeded);
    assert_eq!(status(&out, "test"), StageStatus::Failed);
    assert_eq!(
        out.stage("test").unwrap().message.as_deref(),
        Some("test exited 1")
    );
    assert_eq!(status(&out, "scan:semgrep"), StageStatus::Succeeded);
    for s in ["gate", "push", "deploy:dev"] {
        assert_eq!(status(&out, s), StageStatus::Skipped, "{s}");
    }
    assert!(out
        .stages
        .iter()
        .filter(|s| s.status != StageStatus::Skipped)
        .all(|s| s.duration_ms.is_some()));
}

#[tokio::test]
async fn not_implemented_stages_fail_loudly() {
    let stages = vec![stage("deploy:dev", &[], |_| {
        Box::pin(async { Err(StageError::not_implemented("deploy:dev")) })
    })];
    let record = record_for(&stages);
    let out = Executor::new(stages)
        .run(record, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.stages[0]
        .message
        .as_deref()
        .unwrap()
        .contains("not implemented"));
}

#[tokio::test]
async fn cancellation_stops_running_stages_and_records_them() {
    let token = tokio_util::sync::CancellationToken::new();
    let started = Arc::new(tokio::sync::Notify::new());
    let s1 = started.clone();
    let stages = vec![
        ok("build", &[]),
        // a well-behaved stage: watches the token
        stage("scan:semgrep", &["build"], move |ctx| {
            let s1 = s1.clone();
            Box::pin(async move {
                s1.notify_one();
                ctx.cancel.cancelled().await;
                Err(StageError::failed("semgrep interrupted"))
            })
        }),
        // a stage that ignores the token: aborted after the grace period
        stage("scan:trivy", &["build"], |_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(StageOutput::None)
            })
        }),
        ok("gate", &["scan:semgrep", "scan:trivy"]),
    ];
    let record = record_for(&stages);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = record.id.clone();
    let exec = Executor::new(stages)
        .cancel_token(token.clone())
        .grace(Duration::from_millis(200))
        .store(store.clone());
    let handle = tokio::spawn(exec.run(record, BTreeMap::new()));
    started.notified().await;
    token.cancel();
    let out = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(status(&out, "build"), StageStatus::Succeeded);
    assert_eq!(status(&out, "scan:semgrep"), StageStatus::Cancelled);
    assert_eq!(status(&out, "scan:trivy"), StageStatus::Cancelled);
    assert_eq!(status(&out, "gate"), StageStatus::Cancelled);
    let saved = store.load_run(&id).unwrap();
    assert_eq!(saved, out, "the stored record is the final one");
}

#[tokio::test]
async fn waiting_for_approval_stops_and_resume_skips_finished_stages() {
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r1 = runs.clone();
    let build = move || {
        let r1 = r1.clone();
        stage("build", &[], move |_| {
            r1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                Ok(StageOutput::Value(
                    serde_json::json!({"digest": "sha256:abc"}),
                ))
            })
        })
    };
    let approved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let a = approved.clone();
    let approve = move || {
        let a = a.clone();
        stage("approve", &["build"], move |_| {
            let ok = a.load(std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if ok {
                    Ok(StageOutput::None)
                } else {
                    Err(StageError {
                        kind: shipline_core::executor::StageErrorKind::WaitingApproval,
                        message: "run `shipline approve prod --digest sha256:abc`".into(),
                    })
                }
            })
        })
    };
    let deploy = || {
        stage("deploy:prod", &["approve"], |ctx| {
            Box::pin(async move {
                let v = ctx
                    .outputs
                    .value("build")
                    .ok_or_else(|| StageError::failed("no build output"))?;
                Ok(StageOutput::Message(format!(
                    "deployed {}",
                    v["digest"].as_str().unwrap()
                )))
            })
        })
    };
    let stages = vec![build(), approve(), deploy()];
    let record = record_for(&stages);
    let first = Executor::new(stages)
        .run(record, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::WaitingApproval);
    assert_eq!(status(&first, "approve"), StageStatus::Waiting);
    assert_eq!(status(&first, "deploy:prod"), StageStatus::Skipped);

    approved.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut resumed = first.clone();
    for s in resumed
        .stages
        .iter_mut()
        .filter(|s| s.status != StageStatus::Succeeded)
    {
        s.status = StageStatus::Pending;
    }
    let seed = BTreeMap::from([(
        "build".to_string(),
        StageOutput::Value(serde_json::json!({"digest": "sha256:abc"})),
    )]);
    let stages: Vec<Arc<dyn Stage>> = vec![build(), approve(), deploy()];
    let second = Executor::new(stages).run(resumed, seed).await.unwrap();
    assert_eq!(second.status, RunStatus::Succeeded, "{second:#?}");
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "build ran once"
    );
    assert_eq!(
        second.stage("deploy:prod").unwrap().message.as_deref(),
        Some("deployed sha256:abc")
    );
    assert_eq!(second.id, first.id);
}

#[tokio::test]
async fn a_panicking_stage_fails_the_run_without_crashing_it() {
    let stages = vec![
        stage("build", &[], |_| Box::pin(async { panic!("boom") })),
        ok("test", &["build"]),
    ];
    let record = record_for(&stages);
    let out = Executor::new(stages)
        .run(record, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(status(&out, "build"), StageStatus::Failed);
    assert_eq!(status(&out, "test"), StageStatus::Skipped);
}

const CHILD_ENV: &str = "SHIPLINE_TEST_RECORD_WRITER";

/// Not a test on its own: the body of the child process of
/// `run_records_survive_a_crash_mid_write`, which writes records in a loop until killed.
#[test]
fn child_record_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let stages: Vec<Arc<dyn Stage>> = vec![ok("build", &[])];
    let mut record = record_for(&stages);
    record.id = "crash".into();
    let mut i = 0u64;
    loop {
        i += 1;
        record.commit = Some(format!("{i:040}"));
        // records grow and shrink so a torn write would show
        record.deploy = Some(serde_json::json!({"padding": "x".repeat((i % 5000) as usize)}));
        store.save_run(&record).unwrap();
        if i == 1 {
            // the parent kills only after this line: every kill lands in the writing loop
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
        }
    }
}

#[test]
fn run_records_survive_a_crash_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last_commit = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..150 {
        use std::io::BufRead;
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "executor::child_record_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // wait until the writer has saved once (the harness prints its own lines first; a
        // writer that dies first ends the stream and fails the round)
        let stdout = child.stdout.take().unwrap();
        let mut ready = false;
        for line in std::io::BufReader::new(stdout).lines() {
            // libtest has printed `test executor::child_record_writer ... ` with no newline
            if line.unwrap().trim_end().ends_with("ready") {
                ready = true;
                break;
            }
        }
        assert!(ready, "round {round}: the writer never wrote");
        // then kill at a pseudo-random moment: 0..30 ms into the writing loop
        let wait = (round * 7919 % 31) as u64;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        let store = Store::open(dir.path()).unwrap();
        match store.load_run("crash") {
            Ok(r) => {
                let n: u64 = r.commit.unwrap().parse().unwrap();
                assert!(n >= 1);
                last_commit = last_commit.max(n);
                seen.insert(n);
            }
            Err(e) => panic!("round {round}: a crash left a missing or corrupt record: {e}"),
        }
    }
    // each round's writer counts from 1: different counts mean the kills landed at different
    // points of the writing loop, not all at its start
    eprintln!(
        "kills landed after {} distinct write counts (up to {last_commit})",
        seen.len()
    );
    assert!(
        seen.len() >= 3,
        "kills landed at only {} distinct points: {seen:?}",
        seen.len()
    );
    assert!(
        last_commit > 0,
        "the writer never wrote: the test proved nothing"
    );
    // no temp files are mistaken for runs
    let listed = Store::open(dir.path()).unwrap().list_runs().unwrap();
    assert!(listed.iter().all(|r| r.is_ok()));
}
