//! Images: pull with digest verification from a registry, retention pruning.

use std::time::Duration;

use futures::StreamExt;
use shipline_core::deploy::{deploy, DeployError, DeployRequest, Strategy};

use crate::deploy::support::registry::Registry;
use crate::deploy::support::{build_test_image, engine, Stack};

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
        .expect_err("no such digest");
    // the deploy asks the registry for exactly that digest, which it does not have
    assert!(matches!(err, DeployError::MissingImage { .. }), "{err}");
    assert!(err.to_string().contains(&"0".repeat(64)), "{err}");
    assert_eq!(stack.env_tag(), None, "nothing was written");
    assert!(
        !engine.image_exists(&image).await.expect("inspect"),
        "the tag was not given to anything unverified"
    );

    let mut right = DeployRequest::new(target.clone(), "v1".into());
    right.digest = Some(digest.clone());
    let r = deploy(&engine, &right, &|_| {})
        .await
        .expect("deploy by digest");
    assert!(r.succeeded(), "{:?}", r.failure);
    assert_eq!(r.record.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(stack.running_images(&engine).await, [image]);
}

/// A deploy host logged in to a private registry: the engine reads no docker config, so the
/// pull gets the credentials from the request; without them the image is missing. A local tag
/// that is not the requested digest (the tag moved) is pulled again before the digest check.
#[tokio::test(flavor = "multi_thread")]
async fn private_registry_pull_uses_the_given_credentials_and_refreshes_a_stale_tag() {
    use shipline_registry::Credentials;
    let engine = engine().await;
    let registry = Registry::start_with_auth("deployer", "canary-pull-secret");
    let mut stack = Stack::new("priv", "");
    stack.repository = format!("{}/{}", registry.host, stack.repository);
    std::fs::write(stack.env_file(), format!("REPO={}\n", stack.repository)).expect("env");
    let image = build_test_image(&engine, &stack.repository, "v1", true).await;
    let auth = bollard::auth::DockerCredentials {
        username: Some("deployer".into()),
        password: Some("canary-pull-secret".into()),
        ..Default::default()
    };
    let mut push = engine.docker().push_image(
        &stack.repository,
        Some(bollard::image::PushImageOptions { tag: "v1" }),
        Some(auth),
    );
    while let Some(item) = push.next().await {
        let info = item.expect("push");
        assert!(info.error.is_none(), "push: {:?}", info.error);
    }
    let digest = engine.image_digests(&image).await.expect("inspect").digests[0]
        .rsplit_once('@')
        .expect("repo digest")
        .1
        .to_string();
    engine.remove_image(&image).await.expect("untag");
    let target = stack.target(Strategy::Recreate);

    let mut anonymous = DeployRequest::new(target.clone(), "v1".into());
    anonymous.digest = Some(digest.clone());
    let err = deploy(&engine, &anonymous, &|_| {})
        .await
        .expect_err("an anonymous pull is refused");
    assert!(matches!(err, DeployError::MissingImage { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("canary-pull-secret"));

    // the tag here now names another image (v2 built locally under the v1 tag)
    build_test_image(&engine, &stack.repository, "v2", true).await;
    engine
        .docker()
        .tag_image(
            &format!("{}:v2", stack.repository),
            Some(bollard::image::TagImageOptions {
                repo: stack.repository.clone(),
                tag: "v1".to_string(),
            }),
        )
        .await
        .expect("retag");
    let mut req = DeployRequest::new(target.clone(), "v1".into());
    req.digest = Some(digest.clone());
    req.pull_credentials = Some(Credentials::basic("deployer", "canary-pull-secret"));
    assert!(
        !format!("{req:?}").contains("canary-pull-secret"),
        "Debug redacts"
    );
    let steps = std::sync::Mutex::new(Vec::new());
    let r = deploy(&engine, &req, &|ev| {
        steps.lock().unwrap().push(format!("{ev:?}"))
    })
    .await
    .expect("deploy with credentials");
    assert!(r.succeeded(), "{:?}", r.failure);
    assert_eq!(r.record.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(stack.running_images(&engine).await, [image]);
    let steps = steps.into_inner().unwrap().join("\n");
    assert!(
        steps.contains("is not"),
        "the stale tag was refreshed: {steps}"
    );
    assert!(!steps.contains("canary-pull-secret"));
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
