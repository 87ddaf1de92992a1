//! The fixture stack (`fixtures/deploy/stack`) deployed through its `shipline.toml`: two
//! compose files in `-f` order, a deploy hook, an external network created by preflight, a
//! rolling service next to a recreated one and a one-shot job.

use shipline_core::config::Config;
use shipline_core::deploy::{deploy, DeployRequest, DeployTarget};

use crate::support::{build_test_image, engine, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn fixture_stack_from_config() {
    let engine = engine().await;
    let stack = Stack::from_fixture("stack");
    let config = Config::load(&stack.path().join("shipline.toml")).expect("fixture config loads");
    let target = DeployTarget::from_config(&config, "test").expect("environment test");
    assert_eq!(target.compose_files.len(), 2);
    assert_eq!(target.repository, stack.repository);
    build_test_image(&engine, &stack.repository, "v1", true).await;
    build_test_image(&engine, &stack.repository, "v2", true).await;

    for tag in ["v1", "v2"] {
        let r = deploy(
            &engine,
            &DeployRequest::new(target.clone(), tag.into()),
            &|_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("deploy {tag}: {e}"));
        assert!(r.succeeded(), "{:?}", r.failure);
        let image = format!("{}:{tag}", stack.repository);
        assert_eq!(stack.running_images(&engine).await, [image.clone(), image]);
    }
    // the one-shot job ran on v2 and exited 0, which verification accepted
    let migrate = engine
        .project_containers(&stack.project, Some("migrate"), false)
        .await
        .expect("containers");
    assert_eq!(migrate.len(), 1);
    assert_eq!(migrate[0].exit_code, Some(0));
    assert_eq!(migrate[0].image, format!("{}:v2", stack.repository));
    // the edge network was created by preflight (create_networks)
    assert!(engine
        .network_exists(&format!("{}-edge", stack.project))
        .await
        .expect("inspect network"));
    // the second -f file was applied on top of the first
    let web = engine
        .project_containers(&stack.project, Some("web"), true)
        .await
        .expect("containers");
    let inspect = engine
        .docker()
        .inspect_container(&web[0].id, None)
        .await
        .expect("inspect");
    let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
    assert!(
        env.iter().any(|e| e == "SHIPLINE_FIXTURE_ENV=test"),
        "{env:?}"
    );
    assert!(web[0]
        .networks
        .contains_key(&format!("{}-edge", stack.project)));
    // the hook ran with the environment, previous and new tags
    let log = std::fs::read_to_string(stack.path().join("hook.log")).expect("hook log");
    assert_eq!(log, "test  -> v1\ntest v1 -> v2\n");
}
