//! v1 -> v2 -> rollback through compose; env file, containers and records agree.

use shipline_core::deploy::{deploy, history, rollback, status, DeployRequest, Outcome, Strategy};

use crate::support::{build_test_image, engine, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn deploy_v1_v2_then_rollback() {
    let engine = engine().await;
    let stack = Stack::new("flow", "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let target = stack.target(Strategy::Recreate);

    for tag in ["v1", "v2"] {
        let report = deploy(
            &engine,
            &DeployRequest::new(target.clone(), tag.into()),
            &|_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("deploy {tag}: {e}"));
        assert!(report.succeeded(), "{:?}", report.failure);
        assert_eq!(stack.env_tag().as_deref(), Some(tag));
        assert_eq!(
            stack.running_images(&engine).await,
            [format!("{}:{tag}", stack.repository)]
        );
    }
    let records = history(&target.store_dir, &target.env).expect("history");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].tag, "v2");
    assert_eq!(records[1].previous_tag.as_deref(), Some("v1"));
    assert_eq!(records[1].outcome, Outcome::Succeeded);

    let st = status(&engine, std::slice::from_ref(&target))
        .await
        .expect("status");
    assert_eq!(st[0].running_tags, ["v2"]);
    assert!(st[0].matches_record);

    let back = rollback(
        &engine,
        target.clone(),
        None,
        std::time::Duration::ZERO,
        &|_| {},
    )
    .await
    .expect("rollback");
    assert!(back.succeeded());
    assert_eq!(back.record.tag, "v1");
    assert_eq!(stack.env_tag().as_deref(), Some("v1"));
    assert_eq!(
        stack.running_images(&engine).await,
        [format!("{}:v1", stack.repository)]
    );
    let audit = std::fs::read_to_string(target.store_dir.join("audit.log")).expect("audit");
    assert_eq!(audit.lines().count(), 3);
}
