//! v1 -> v2 -> rollback through compose; env file, containers and records agree. The HTTP
//! check (through an edge in front of the service) gates v2 once.

use std::time::Duration;

use shipline_core::deploy::{deploy, history, rollback, status, DeployRequest, Outcome, Strategy};

use crate::deploy::support::edge::Edge;
use crate::deploy::support::{build_test_image, deploy_ok, engine, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn deploy_v1_v2_then_rollback() {
    let engine = engine().await;
    let stack = Stack::new("flow", "");
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;
    let target = stack.target(Strategy::Recreate);
    let image = |tag: &str| format!("{}:{tag}", stack.repository);

    deploy_ok(&engine, &target, "v1").await;
    assert_eq!(stack.env_tag().as_deref(), Some("v1"));
    assert_eq!(stack.running_images(&engine).await, [image("v1")]);

    // a failing HTTP check rolls v2 back
    let edge = Edge::start(
        engine.clone(),
        &stack.project,
        "web",
        &format!("{}_default", stack.project),
    )
    .await;
    let mut failing = target.clone();
    failing.http_check = Some(format!("http://{}/missing", edge.addr));
    failing.health_timeout = Duration::from_secs(5);
    let r = deploy(&engine, &DeployRequest::new(failing, "v2".into()), &|_| {})
        .await
        .expect("deploy runs");
    assert_eq!(r.record.outcome, Outcome::RolledBack);
    let failure = r.failure.expect("failure");
    assert!(failure.message.contains("404"), "{}", failure.message);
    assert_eq!(stack.env_tag().as_deref(), Some("v1"));
    assert_eq!(stack.running_images(&engine).await, [image("v1")]);

    // a passing one lets it through
    let mut checked = target.clone();
    checked.http_check = Some(format!("http://{}/version", edge.addr));
    let v2 = deploy(&engine, &DeployRequest::new(checked, "v2".into()), &|_| {})
        .await
        .expect("deploy v2");
    assert!(v2.succeeded(), "{:?}", v2.failure);
    assert_eq!(stack.env_tag().as_deref(), Some("v2"));
    assert_eq!(stack.running_images(&engine).await, [image("v2")]);

    let records = history(&target.store_dir, &target.env).expect("history");
    let summary: Vec<(&str, Option<&str>, Outcome)> = records
        .iter()
        .map(|r| (r.tag.as_str(), r.previous_tag.as_deref(), r.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            ("v1", None, Outcome::Succeeded),
            ("v2", Some("v1"), Outcome::RolledBack),
            ("v2", Some("v1"), Outcome::Succeeded)
        ]
    );
    let v2_id = engine
        .inspect_image_id(&image("v2"))
        .await
        .expect("image id");
    assert_eq!(records[2].image_id.as_deref(), Some(v2_id.as_str()));

    let st = status(&engine, std::slice::from_ref(&target))
        .await
        .expect("status");
    assert_eq!(st[0].running_tags, ["v2"]);
    assert_eq!(st[0].env_file_tag.as_deref(), Some("v2"));
    assert!(st[0].matches_record);

    let back = rollback(&engine, target.clone(), None, Duration::ZERO, &|_| {})
        .await
        .expect("rollback");
    assert!(back.succeeded(), "{:?}", back.failure);
    assert_eq!(back.record.tag, "v1");
    assert_eq!(back.record.reason, "rollback to v1");
    assert_eq!(stack.env_tag().as_deref(), Some("v1"));
    assert_eq!(stack.running_images(&engine).await, [image("v1")]);
    let st = status(&engine, std::slice::from_ref(&target))
        .await
        .expect("status");
    assert!(st[0].matches_record);
    let audit = std::fs::read_to_string(target.store_dir.join("audit.log")).expect("audit");
    assert_eq!(audit.lines().count(), 4, "one audit line per deployment");
}
