//! Fault tests: each ends with the previous version running and the env file restored.

use shipline_core::deploy::{
    deploy, history, DeployError, DeployGate, DeployRequest, GateInput, Outcome, Strategy,
};
use shipline_core::engine::Engine;

use crate::deploy::support::{build_test_image, deploy_ok, engine, write_script, Stack};

async fn stack_on_v1(engine: &Engine, name: &str, strategy: Strategy) -> Stack {
    let stack = Stack::new(name, "");
    build_test_image(engine, &stack.repository, "v1", true).await;
    deploy_ok(engine, &stack.target(strategy), "v1").await;
    stack
}

async fn assert_on_v1(engine: &Engine, stack: &Stack) {
    assert_eq!(stack.env_tag().as_deref(), Some("v1"), "env file restored");
    assert_eq!(
        stack.running_images(engine).await,
        [format!("{}:v1", stack.repository)],
        "previous version running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_health_check_rolls_back() {
    let engine = engine().await;
    for strategy in [Strategy::Rolling, Strategy::Recreate] {
        let stack = stack_on_v1(&engine, "health", strategy).await;
        build_test_image(&engine, &stack.repository, "bad", false).await;
        let mut target = stack.target(strategy);
        target.health_timeout = std::time::Duration::from_secs(30);
        let r = deploy(
            &engine,
            &DeployRequest::new(target.clone(), "bad".into()),
            &|_| {},
        )
        .await
        .expect("deploy runs");
        assert_eq!(r.record.outcome, Outcome::RolledBack, "{strategy:?}");
        let failure = r.failure.expect("failure report");
        assert_eq!(
            failure.step,
            if strategy == Strategy::Rolling {
                "rollout"
            } else {
                "verify"
            }
        );
        assert!(failure.message.contains("unhealthy"), "{}", failure.message);
        // the failing containers are named with their last lines and health probe
        assert!(!failure.containers.is_empty(), "{failure:?}");
        assert!(
            failure
                .containers
                .iter()
                .all(|(name, lines)| name.contains(":bad")
                    && lines
                        .iter()
                        .any(|l| l.starts_with("last health check: exit 1"))),
            "{:?}",
            failure.containers
        );
        assert!(
            failure.rollback_error.is_none(),
            "{:?}",
            failure.rollback_error
        );
        assert_on_v1(&engine, &stack).await;
        let records = history(&target.store_dir, &target.env).expect("history");
        assert_eq!(records.last().map(|r| r.outcome), Some(Outcome::RolledBack));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_image_is_refused_before_any_change() {
    let engine = engine().await;
    let stack = stack_on_v1(&engine, "missing", Strategy::Recreate).await;
    let err = deploy(
        &engine,
        &DeployRequest::new(stack.target(Strategy::Recreate), "v9".into()),
        &|_| {},
    )
    .await
    .expect_err("missing image");
    assert!(matches!(err, DeployError::MissingImage { .. }), "{err}");
    assert_on_v1(&engine, &stack).await;

    // a refusing gate (e.g. no approval for the digest) stops the deploy before any change
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let mut req = DeployRequest::new(stack.target(Strategy::Recreate), "v2".into());
    req.gate = Some(DeployGate(std::sync::Arc::new(|input: &GateInput| {
        assert!(input.image_id.starts_with("sha256:"));
        Err(format!("no approval for {}", input.image))
    })));
    let err = deploy(&engine, &req, &|_| {}).await.expect_err("refused");
    assert!(matches!(err, DeployError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("no approval"), "{err}");
    assert_on_v1(&engine, &stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_config_error_is_refused_before_any_change() {
    let engine = engine().await;
    let stack = stack_on_v1(&engine, "config", Strategy::Recreate).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let compose = stack.path().join("compose.yaml");
    let good = std::fs::read_to_string(&compose).expect("read");
    std::fs::write(
        &compose,
        good.replace("stop_grace_period: 1s", "stop_grace_period: [oops"),
    )
    .expect("write");
    let err = deploy(
        &engine,
        &DeployRequest::new(stack.target(Strategy::Recreate), "v2".into()),
        &|_| {},
    )
    .await
    .expect_err("config error");
    assert!(matches!(err, DeployError::Compose { .. }), "{err}");
    assert_on_v1(&engine, &stack).await;
    // a rolling service may not publish ports
    std::fs::write(
        &compose,
        format!("{good}    ports:\n      - \"127.0.0.1::80\"\n"),
    )
    .expect("write");
    let err = deploy(
        &engine,
        &DeployRequest::new(stack.target(Strategy::Rolling), "v2".into()),
        &|_| {},
    )
    .await
    .expect_err("cannot roll");
    assert!(err.to_string().contains("cannot roll"), "{err}");
    std::fs::write(&compose, good).expect("write");
    assert_on_v1(&engine, &stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_exit_1_rolls_back() {
    let engine = engine().await;
    let stack = stack_on_v1(&engine, "hook", Strategy::Recreate).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let hook = stack.path().join("deploy.sh");
    write_script(
        &hook,
        "echo \"$SHIPLINE_ENV $IMAGE_TAG $SHIPLINE_PREVIOUS_TAG\" > hook.out\necho 'migration failed' >&2\nexit 1",
    );
    let mut target = stack.target(Strategy::Recreate);
    target.deploy_hook = Some(hook);
    let r = deploy(
        &engine,
        &DeployRequest::new(target.clone(), "v2".into()),
        &|_| {},
    )
    .await
    .expect("deploy runs");
    assert_eq!(r.record.outcome, Outcome::RolledBack);
    let failure = r.failure.expect("failure");
    assert_eq!(failure.step, "hook");
    assert!(
        failure.message.contains("migration failed"),
        "{}",
        failure.message
    );
    assert_eq!(
        std::fs::read_to_string(stack.path().join("hook.out"))
            .expect("hook ran")
            .trim(),
        format!("{} v2 v1", target.env)
    );
    assert_on_v1(&engine, &stack).await;
}
