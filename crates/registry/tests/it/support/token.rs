//! A token server for distribution's `auth: token`: checks basic credentials and issues ES256
//! JWTs (with an `x5c` header) granting the requested scopes.

use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use tokio::net::TcpListener;

pub struct TokenServer {
    pub realm: String,
    pub cert_pem: String,
    /// Every `scope` parameter requested, in order.
    pub scopes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    pub async fn start(user: &str, password: &str) -> TokenServer {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["shipline-token".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let cert_pem = cert.pem();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let rng = ring::rand::SystemRandom::new();
        let signer = Arc::new(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .expect("signing key"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("addr"));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let sc = scopes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let io = hyper_util::rt::TokioIo::new(stream);
                let signer = signer.clone();
                let x5c = x5c.clone();
                let expected = expected.clone();
                let sc = sc.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let resp = issue(&req, &signer, &x5c, &expected, &sc);
                            async move { Ok::<_, std::convert::Infallible>(resp) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        TokenServer {
            realm,
            cert_pem,
            scopes,
            task,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn issue(
    req: &Request<hyper::body::Incoming>,
    signer: &EcdsaKeyPair,
    x5c: &str,
    expected: &str,
    scopes_seen: &Mutex<Vec<String>>,
) -> Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    let reply = |code: u16, body: String| {
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)).boxed())
            .expect("response")
    };
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let authorized = match auth {
        Some(a) if a == expected => true,
        Some(_) => return reply(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.into()),
        None => false,
    };
    let query = req.uri().query().unwrap_or("");
    let mut access = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "scope" {
            scopes_seen.lock().unwrap().push(v.to_string());
            // repository:NAME:ACTIONS
            let parts: Vec<&str> = v.splitn(3, ':').collect();
            if let [kind, name, actions] = parts.as_slice() {
                let actions: Vec<&str> = if authorized {
                    actions.split(',').collect()
                } else {
                    Vec::new()
                };
                access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "shipline-test-issuer",
        "sub": if authorized { "canary-user" } else { "" },
        "aud": "shipline-test",
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{:x}", rand::random::<u64>()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let sig = signer.sign(&rng, signing_input.as_bytes()).expect("sign");
    let token = format!("{signing_input}.{}", b64(sig.as_ref()));
    reply(
        200,
        serde_json::json!({"token": token, "expires_in": 300}).to_string(),
    )
}
