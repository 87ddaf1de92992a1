//! Basic auth over TLS (htpasswd), token auth, re-auth, and a canary secret that must never
//! appear in any output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shipline_registry::{
    copy, credentials_from_docker_config, ClientOptions, CopyOptions, Credentials, ImageStore,
    Reference, RegistryClient, RegistryError,
};

use crate::support::image::{bytes, make_image};
use crate::support::registry::{Auth, TestRegistry};
use crate::support::token::TokenServer;
use crate::support::{fast_retry, redact};

const CANARY: &str = "canary-Zq9xW4-s3cret";

fn store(s: &str) -> ImageStore {
    ImageStore::parse(s).unwrap()
}

fn client(reg: &TestRegistry, creds: Option<Credentials>) -> RegistryClient {
    let mut credentials = HashMap::new();
    if let Some(c) = creds {
        credentials.insert(reg.host.clone(), c);
    }
    RegistryClient::new(ClientOptions {
        credentials,
        extra_root_certificates_pem: reg.ca_pem.iter().cloned().collect(),
        retry: fast_retry(),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// Everything a caller could print about an outcome: Display, Debug, the source chain, and the
/// JSON of reports and events.
fn all_output<T: std::fmt::Debug>(r: &Result<T, RegistryError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => {
            let mut s = format!("{e} {e:?}");
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(&format!(" {c} {c:?}"));
                src = c.source();
            }
            s
        }
    }
}

#[tokio::test]
async fn htpasswd_over_tls_with_canary_secret() {
    let reg = TestRegistry::start(
        Auth::Htpasswd {
            user: "canary-user".into(),
            password: CANARY.into(),
        },
        true,
    );
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(1, 10_000)],
        "2024-01-01T00:00:00Z",
    );
    let layout = format!("oci:{}:v1", src.path().display());
    let dst = format!("{}/secure/app:1", reg.host);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let opts = CopyOptions {
        progress: Some(Arc::new(move |e| ev.lock().unwrap().push(e))),
        ..CopyOptions::default()
    };

    // credentials read from a docker config.json, as the CLI does
    let cfg = tempfile::tempdir().unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("canary-user:{CANARY}"));
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let creds = credentials_from_docker_config(&cfg.path().join("config.json"), &reg.host)
        .await
        .unwrap();
    let good = client(&reg, Some(creds.clone()));
    let mut outputs = vec![format!("{creds:?} {creds} {good:?}")];
    let r = copy(&good, &store(&layout), &store(&dst), &opts).await;
    outputs.push(all_output(&r));
    assert_eq!(r.unwrap().digest.as_str(), digest);
    let tags = good.list_tags(&Reference::parse(&dst).unwrap()).await;
    outputs.push(all_output(&tags));
    assert_eq!(tags.unwrap(), vec!["1".to_owned()]);

    // anonymous: refused with a clear message
    let anon = client(&reg, None);
    let r = anon.list_tags(&Reference::parse(&dst).unwrap()).await;
    outputs.push(all_output(&r));
    insta::assert_snapshot!(redact(&r.unwrap_err().to_string()), @"failed to authenticate to 127.0.0.1:PORT: the registry requires a user name and password and none were given");

    // wrong password containing the canary: refused, and the canary shows nowhere
    let bad = client(
        &reg,
        Some(Credentials::basic("canary-user", format!("{CANARY}-wrong"))),
    );
    let r = copy(&bad, &store(&layout), &store(&dst), &opts).await;
    outputs.push(all_output(&r));
    insta::assert_snapshot!(redact(&r.unwrap_err().to_string()), @"failed to authenticate to 127.0.0.1:PORT: the registry refused the credentials");

    outputs.push(format!("{:?}", events.lock().unwrap()));
    outputs.push(serde_json::to_string(&*events.lock().unwrap()).unwrap());
    let all = outputs.join("\n");
    assert!(!all.contains(CANARY), "canary leaked: {all}");
    assert!(!all.contains(&auth), "encoded canary leaked: {all}");
    assert!(!all.contains("canary-user"), "user name leaked: {all}");
}

#[tokio::test]
async fn token_auth_scopes_mount_and_reauth() {
    let tokens = TokenServer::start("canary-user", CANARY).await;
    let reg = TestRegistry::start(
        Auth::Token {
            realm: tokens.realm.clone(),
            cert_pem: tokens.cert_pem.clone(),
        },
        false,
    );
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(4, 20_000), bytes(5, 30_000)],
        "2024-01-01T00:00:00Z",
    );
    let good = client(&reg, Some(Credentials::basic("canary-user", CANARY)));
    let dev = format!("{}/team/app:dev", reg.host);
    let r = copy(
        &good,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dev),
        &CopyOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:?}\n{}", reg.log()));
    assert_eq!(r.digest.as_str(), digest);
    // promotion across repositories mounts: the token asks pull on the source repository
    let prod = format!("{}/prod/app:1", reg.host);
    let m = copy(&good, &store(&dev), &store(&prod), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!((m.blobs_mounted, m.bytes_sent), (3, 0));
    let scopes = tokens.scopes.lock().unwrap().clone();
    assert!(
        scopes.contains(&"repository:team/app:pull".to_owned()),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"repository:prod/app:pull,push".to_owned()),
        "{scopes:?}"
    );

    // anonymous tokens carry no access: the push is refused, clearly
    let anon = client(&reg, None);
    let err = copy(
        &anon,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dev),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Auth { .. }), "{err:?}");
    // a wrong password is refused by the token service
    let bad = client(&reg, Some(Credentials::basic("canary-user", "nope")));
    let err = bad
        .list_tags(&Reference::parse(&dev).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the token service refused the credentials"),
        "{err}"
    );
    assert!(!format!("{err:?}").contains(CANARY));
}

#[tokio::test]
async fn a_401_on_a_cached_token_triggers_reauth() {
    use crate::support::proxy::{Fault, FaultProxy, Rule};
    let tokens = TokenServer::start("canary-user", CANARY).await;
    let reg = TestRegistry::start(
        Auth::Token {
            realm: tokens.realm.clone(),
            cert_pem: tokens.cert_pem.clone(),
        },
        false,
    );
    let proxy = FaultProxy::start(&reg.host).await;
    let mut credentials = HashMap::new();
    credentials.insert(
        proxy.host.clone(),
        Credentials::basic("canary-user", CANARY),
    );
    let c = RegistryClient::new(ClientOptions {
        credentials,
        retry: fast_retry(),
        ..ClientOptions::default()
    })
    .unwrap();
    let src = tempfile::tempdir().unwrap();
    make_image(src.path(), "v1", &[bytes(4, 2_000)], "2024-01-01T00:00:00Z");
    let dst = format!("{}/reauth/app:1", proxy.host);
    copy(
        &c,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&dst),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    let before = tokens.scopes.lock().unwrap().len();
    // the registry now rejects the cached token once
    proxy.add(Rule::new(
        Some("GET"),
        "/tags/list",
        Fault::Challenge(format!(r#"Bearer realm="{}",service="shipline-test",scope="repository:reauth/app:pull",error="invalid_token""#, tokens.realm)),
        1,
    ));
    let tags = c.list_tags(&Reference::parse(&dst).unwrap()).await.unwrap();
    assert_eq!(tags, vec!["1".to_owned()]);
    let after = tokens.scopes.lock().unwrap().clone();
    assert_eq!(after.len(), before + 1, "exactly one new token: {after:?}");
    assert_eq!(
        after.last().map(String::as_str),
        Some("repository:reauth/app:pull")
    );
}
