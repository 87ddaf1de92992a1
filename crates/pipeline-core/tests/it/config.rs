//! Every broken config in fixtures/config/errors gives a precise, located error.

use shipline_core::config::{Config, ConfigError};

use crate::workspace;

#[test]
fn broken_configs_are_reported_precisely() {
    let base = workspace().join("fixtures/config/base");
    let base = std::path::absolute(&base).unwrap();
    let mut count = 0;
    insta::glob!("../../../../fixtures/config/errors", "*.toml", |path| {
        count += 1;
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap();
        let at = base.join(name);
        let err = Config::from_str_at(&text, &at).expect_err("a broken config must not load");
        let ConfigError::Invalid { diagnostics } = &err else {
            panic!("expected located diagnostics, got {err:?}");
        };
        assert!(!diagnostics.is_empty());
        for d in diagnostics {
            assert!(d.line >= 1 && d.column >= 1, "{d:?}");
            assert!(d.hint.is_some(), "every config error carries a hint: {d:?}");
        }
        let rendered = err.to_string().replace(&format!("{}/", base.display()), "");
        insta::assert_snapshot!(rendered);
    });
    assert!(
        count >= 20,
        "at least twenty kinds of broken config, found {count}"
    );
}

#[test]
fn the_base_fixture_and_the_example_are_valid() {
    let base = workspace().join("fixtures/config/base/shipline.toml");
    let config = Config::load(&base).expect("base config is valid");
    assert_eq!(config.environments.len(), 2);
    let dev = config.environment_for_branch("dev").unwrap();
    assert_eq!(dev.tag_variable, "IMAGE_TAG");
    assert_eq!(dev.compose_project, "dev");
    let prod = config.environment("prod").unwrap();
    assert_eq!(prod.approval.as_ref().unwrap().required, 1);
    assert!(!prod.approval.as_ref().unwrap().allow_self_approval);

    let example = Config::load(&workspace().join("examples/hestami/shipline.toml"))
        .expect("the bundled example is valid");
    assert_eq!(example.environment_for_branch("main").unwrap().name, "prod");
    assert!(example
        .environment("dev")
        .unwrap()
        .env_file
        .ends_with(".env.local"));
}

#[test]
fn discover_finds_the_nearest_config() {
    let dir = workspace().join("examples/hestami/app/www");
    let found = shipline_core::config::discover(&dir).unwrap();
    assert!(found.ends_with("examples/hestami/shipline.toml"));
    let tmp = tempfile::tempdir().unwrap();
    let err = shipline_core::config::discover(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("--config"));
}
