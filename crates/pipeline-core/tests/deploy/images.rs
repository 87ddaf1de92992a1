//! Images: pull with digest verification from a registry, retention pruning.

use std::time::Duration;

use futures::StreamExt;
use shipline_core::deploy::{deploy, DeployError, DeployRequest, Strategy};

use crate::support::registry::Registry;
use crate::support::{build_test_image, engine, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn pull_verifies_the_digest() {
    let engine = engine().await;
    let registry = Registry::start();
    let mut stack = Stack::new("dig", "");
    // the stack's repository lives in the registry
    stack.repository = format!("{}/{}", registry.host, stack.repository);
    std::fs::write(stack.env_file(), format!("REPO={}\n", stack.repository)).expect("env");
    let image = build_test_image(&engine, &stack.repository, "v1", true).await;
    let mut push = engine.docker().push_image(
        &stack.repository,
        Some(bollard::image::PushImageOptions { tag: "v1" }),
        None,
    );
    while let Some(item) = push.next().await {
        let info = item.expect("push");
        assert!(info.error.is_none(), "push: {:?}", info.error);
    }
    let pushed = engine.image_digests(&image).await.expect("inspect");
    let digest = pushed.digests[0]
        .rsplit_once('@')
        .expect("repo digest")
        .1
        .to_string();
    // drop the local copy: the deploy must pull it
    engine.remove_image(&image).await.expect("untag");
    assert!(!engine.image_exists(&image).await.expect("inspect"));

    let target = stack.target(Strategy::Recreate);
    let mut wrong = DeployRequest::new(target.clone(), "v1".into());
    wrong.digest = Some(format!("sha256:{}", "0".repeat(64)));
    let err = deploy(&engine, &wrong, &|_| {})
        .await
        .expect_err("digest mismatch");
    assert!(matches!(err, DeployError::DigestMismatch { .. }), "{err}");
    assert_eq!(stack.env_tag(), None, "nothing was written");

    let mut right = DeployRequest::new(target.clone(), "v1".into());
    right.digest = Some(digest.clone());
    let r = deploy(&engine, &right, &|_| {})
        .await
        .expect("deploy by digest");
    assert!(r.succeeded(), "{:?}", r.failure);
    assert_eq!(r.record.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(stack.running_images(&engine).await, [image]);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_old_images_but_keeps_current_and_previous() {
    let engine = engine().await;
    let stack = Stack::new("prune", "");
    for v in ["v1", "v2", "v3"] {
        build_test_image(&engine, &stack.repository, v, true).await;
        // image creation times have a one-second resolution
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let mut target = stack.target(Strategy::Recreate);
    target.prune_after = Some(Duration::ZERO);
    target.keep = 0;
    let mut pruned = Vec::new();
    for v in ["v1", "v2", "v3"] {
        let r = deploy(
            &engine,
            &DeployRequest::new(target.clone(), v.into()),
            &|_| {},
        )
        .await
        .expect("deploy");
        assert!(r.succeeded(), "{:?}", r.failure);
        pruned.extend(r.pruned);
    }
    assert_eq!(pruned, [format!("{}:v1", stack.repository)]);
    let mut left: Vec<String> = engine
        .list_repository_images(&stack.repository)
        .await
        .expect("list")
        .into_iter()
        .flat_map(|i| i.tags)
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!("{}:v2", stack.repository),
            format!("{}:v3", stack.repository)
        ]
    );
}
