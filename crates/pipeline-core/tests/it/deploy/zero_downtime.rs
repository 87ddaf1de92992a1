//! Zero downtime, measured: ≥2,000 requests through the stand-in edge proxy during a `rolling`
//! deploy see no failure; the same loop during a `recreate` deploy sees failures.
//! `scripts/bench-rollout.sh` runs this test and records the numbers in docs/BENCHMARKS.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shipline_core::deploy::{deploy, DeployRequest, Strategy};

use crate::deploy::support::edge::{load, Edge, LoadResult};
use crate::deploy::support::{build_test_image, deploy_ok, engine, Stack};

const MIN_REQUESTS: usize = 2_000;

async fn measure(strategy: Strategy) -> LoadResult {
    let engine = engine().await;
    let stack = Stack::new(&format!("zd{}", &strategy.as_str()[..3]), "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let target = stack.target(strategy);
    deploy_ok(&engine, &target, "v1").await;
    let edge = Edge::start(
        engine.clone(),
        &stack.project,
        "web",
        &format!("{}_default", stack.project),
    )
    .await;
    assert!(
        edge.wait_backends(1, Duration::from_secs(30)).await,
        "the edge never saw a healthy backend"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(edge.addr, MIN_REQUESTS, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = deploy(&engine, &DeployRequest::new(target, "v2".into()), &|_| {})
        .await
        .expect("deploy v2");
    assert!(report.succeeded(), "{:?}", report.failure);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let result = loader.await.expect("load task");
    assert_eq!(
        stack.running_images(&engine).await,
        [format!("{}:v2", stack.repository)]
    );
    eprintln!(
        "BENCH strategy={} requests={} failures={} versions={:?} sample_errors={:?}",
        strategy.as_str(),
        result.total,
        result.failures,
        result.versions,
        result.sample_errors
    );
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_has_no_failures_recreate_has_some() {
    let rolling = measure(Strategy::Rolling).await;
    assert!(rolling.total >= MIN_REQUESTS);
    assert_eq!(rolling.versions, ["v1", "v2"], "the loop saw both versions");
    assert_eq!(
        rolling.failures, 0,
        "rolling deploy dropped requests: {:?}",
        rolling.sample_errors
    );
    let recreate = measure(Strategy::Recreate).await;
    assert!(recreate.total >= MIN_REQUESTS);
    assert!(
        recreate.failures > 0,
        "recreate showed no failures: the measurement cannot tell the strategies apart"
    );
}
