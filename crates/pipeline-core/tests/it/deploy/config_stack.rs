//! The fixture stack (`fixtures/deploy/stack`) deployed through its `shipline.toml`: two
//! compose files in `-f` order, a deploy hook, an external network created by preflight, a
//! rolling service next to a recreated one and a one-shot job.

use shipline_core::config::Config;
use shipline_core::deploy::{deploy, DeployRequest, DeployTarget};

use crate::deploy::support::{build_test_image, engine, Stack};

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

/// Removes every network of a name when dropped, so a failed assertion leaks nothing.
struct NetworksNamed {
    engine: shipline_core::engine::Engine,
    name: String,
}

impl NetworksNamed {
    async fn ids(&self) -> Vec<String> {
        let list = self
            .engine
            .docker()
            .list_networks::<String>(None)
            .await
            .expect("list networks");
        list.into_iter()
            .filter(|n| n.name.as_deref() == Some(self.name.as_str()))
            .filter_map(|n| n.id)
            .collect()
    }
}

impl Drop for NetworksNamed {
    fn drop(&mut self) {
        // drop cannot await: the docker CLI does it
        let o = std::process::Command::new("docker")
            .args([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("name={}", self.name),
            ])
            .output();
        if let Ok(o) = o {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = std::process::Command::new("docker")
                    .args(["network", "rm", id])
                    .output();
            }
        }
    }
}

/// Several deploys creating one external network at once converge on a single network (engines
/// before Docker 25 do not enforce unique names), and names already duplicated are refused
/// clearly.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_network_creation_converges_and_duplicates_are_named() {
    use shipline_core::engine::EngineError;
    let engine = engine().await;
    let guard = NetworksNamed {
        engine: engine.clone(),
        name: crate::deploy::support::unique("shipline-net-race-"),
    };
    let name = guard.name.clone();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let engine = engine.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(
            async move { engine.ensure_network(&name).await },
        ));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.expect("task").expect("ensure_network") {
            created += 1;
        }
    }
    let ids = guard.ids().await;
    assert_eq!(ids.len(), 1, "one network survives: {ids:?}");
    assert_eq!(created, 1, "exactly one creator reports creating it");
    assert!(engine.network_exists(&name).await.expect("exists"));

    // a duplicate made behind our back (as a race without this fix leaves them); engines that
    // enforce unique names refuse to make one, and then there is nothing more to check
    let dup = engine
        .docker()
        .create_network(bollard::network::CreateNetworkOptions::<String> {
            name: name.clone(),
            check_duplicate: false,
            ..Default::default()
        })
        .await;
    if let Err(e) = dup {
        eprintln!("SKIP duplicate network names: this engine refuses them ({e})");
        return;
    }
    let err = engine
        .network_exists(&name)
        .await
        .expect_err("an ambiguous name is refused");
    let msg = err.to_string();
    assert!(
        matches!(err, EngineError::AmbiguousNetwork { ref ids, .. } if ids.len() == 2),
        "{msg}"
    );
    assert!(
        msg.contains(&name) && msg.contains("docker network rm"),
        "{msg}"
    );
}
