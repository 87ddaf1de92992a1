//! The HTTP core: per-host scheme, the auth dance (basic, bearer tokens by scope, re-auth on
//! 401) and retries. Every distribution API call in this crate goes through
//! [`RegistryClient::request`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::{parse_challenge, Challenge};
use crate::error::is_retryable_status;
use crate::retry::{exhausted, parse_retry_after};
use crate::{Credentials, RegistryError, RetryPolicy, Secret};

/// How a [`RegistryClient`] connects and authenticates.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Credentials by registry host as written in references (`ghcr.io`, `localhost:5000`,
    /// `docker.io`). Hosts not listed are anonymous.
    pub credentials: HashMap<String, Credentials>,
    /// Hosts that may be reached over plain HTTP or HTTPS without certificate verification
    /// (loopback hosts may always fall back to plain HTTP).
    pub insecure_registries: Vec<String>,
    /// Extra trusted root certificates (PEM), e.g. a test registry's self-signed certificate.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
    /// Retries of 408/429/5xx and connection failures.
    pub retry: RetryPolicy,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: HashMap::new(),
            insecure_registries: Vec::new(),
            extra_root_certificates_pem: Vec::new(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(15),
            user_agent: format!("shipline/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The token scopes one request needs, e.g. `repository:org/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope(Vec<String>);

impl Scope {
    pub(crate) fn pull(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull")])
    }
    pub(crate) fn push(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }
    pub(crate) fn delete(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:delete")])
    }
    /// Push on the target and pull on the mount source (what oci-client#235 lacks).
    pub(crate) fn mount(target: &str, source: &str) -> Self {
        Scope(vec![
            format!("repository:{target}:pull,push"),
            format!("repository:{source}:pull"),
        ])
    }
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

#[derive(Debug, Clone)]
struct HostState {
    base: String,
    insecure_tls: bool,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Secret>,
}

struct Inner {
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    opts: ClientOptions,
    hosts: Mutex<HashMap<String, HostState>>,
    auth: Mutex<HashMap<String, AuthState>>,
}

/// A registry client: cheap to clone, shares connections, tokens and host probes.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("credentials", &self.inner.opts.credentials)
            .field("insecure_registries", &self.inner.opts.insecure_registries)
            .finish_non_exhaustive()
    }
}

/// Whether `host` (with optional port) is a loopback address.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

pub(crate) type MakeRequest<'a> =
    dyn FnMut(&reqwest::Client, &str) -> Result<RequestBuilder, RegistryError> + Send + 'a;

impl RegistryClient {
    /// Builds a client.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let build = |insecure: bool| -> Result<reqwest::Client, RegistryError> {
            let mut b = reqwest::Client::builder()
                .user_agent(opts.user_agent.clone())
                .connect_timeout(opts.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .danger_accept_invalid_certs(insecure);
            for pem in &opts.extra_root_certificates_pem {
                let cert =
                    reqwest::Certificate::from_pem(pem).map_err(|e| RegistryError::Http {
                        op: "load root certificate".into(),
                        url: "(pem)".into(),
                        source: e,
                    })?;
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(|e| RegistryError::Http {
                op: "build http client".into(),
                url: String::new(),
                source: e,
            })
        };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http: build(false)?,
                http_insecure: build(true)?,
                opts,
                hosts: Mutex::new(HashMap::new()),
                auth: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    fn credentials(&self, host: &str) -> Credentials {
        let creds = &self.inner.opts.credentials;
        creds
            .get(host)
            .or_else(|| {
                (host == "registry-1.docker.io")
                    .then(|| creds.get("docker.io"))
                    .flatten()
            })
            .cloned()
            .unwrap_or_default()
    }

    /// The `scheme://host` base for `host`: HTTPS, falling back to plain HTTP only for loopback
    /// hosts and `--insecure-registry` hosts.
    pub(crate) async fn base(&self, host: &str) -> (String, bool) {
        if let Some(h) = self.lock_hosts().get(host) {
            return (h.base.clone(), h.insecure_tls);
        }
        let insecure = self
            .inner
            .opts
            .insecure_registries
            .iter()
            .any(|h| h == host);
        let state = if insecure || is_loopback(host) {
            let client = if insecure {
                &self.inner.http_insecure
            } else {
                &self.inner.http
            };
            let probe = client
                .get(format!("https://{host}/v2/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match probe {
                Ok(_) => HostState {
                    base: format!("https://{host}"),
                    insecure_tls: insecure,
                },
                Err(_) => HostState {
                    base: format!("http://{host}"),
                    insecure_tls: false,
                },
            }
        } else {
            HostState {
                base: format!("https://{host}"),
                insecure_tls: false,
            }
        };
        self.lock_hosts().insert(host.to_owned(), state.clone());
        (state.base, state.insecure_tls)
    }

    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostState>> {
        self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, HashMap<String, AuthState>> {
        self.inner.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn auth_header(&self, host: &str, scope: &Scope) -> Option<HeaderValue> {
        let auth = self.lock_auth();
        let state = auth.get(host)?;
        let value = match state.challenge.as_ref()? {
            Challenge::Basic => match self.credentials(host) {
                Credentials::Basic { username, password } => basic_value(&username, &password),
                Credentials::Bearer(t) => format!("Bearer {}", t.expose()),
                _ => return None,
            },
            Challenge::Bearer { .. } => {
                format!("Bearer {}", state.tokens.get(&scope.key())?.expose())
            }
        };
        let mut v = HeaderValue::from_str(&value).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// One logical request: sends it, answers a 401 challenge once (fetching a token for the
    /// scope), and turns retryable statuses into errors. Other statuses are returned.
    async fn execute(
        &self,
        host: &str,
        scope: &Scope,
        op: &str,
        make: &mut MakeRequest<'_>,
    ) -> Result<Response, RegistryError> {
        let (base, insecure) = self.base(host).await;
        let client = if insecure {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        };
        // a known bearer challenge but no token for this scope yet: get one first so that
        // streamed bodies are not sent twice
        let needs_token = {
            let auth = self.lock_auth();
            auth.get(host).is_some_and(|s| {
                matches!(s.challenge, Some(Challenge::Bearer { .. }))
                    && !s.tokens.contains_key(&scope.key())
            })
        };
        if needs_token {
            self.authenticate(host, scope, None).await?;
        }
        let mut reauthed = false;
        loop {
            let mut req = make(client, &base)?;
            if let Some(h) = self.auth_header(host, scope) {
                req = req.header(AUTHORIZATION, h);
            }
            let req = req.build().map_err(|e| RegistryError::Http {
                op: op.to_owned(),
                url: base.clone(),
                source: e,
            })?;
            let url = redact_url(req.url());
            let resp = client.execute(req).await.map_err(|e| RegistryError::Http {
                op: op.to_owned(),
                url: url.clone(),
                source: e.without_url(),
            })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if reauthed {
                    return Err(RegistryError::Auth {
                        registry: host.to_owned(),
                        reason: if self.credentials(host).is_anonymous() {
                            "the registry requires credentials and none were given".into()
                        } else {
                            "the registry refused the credentials".into()
                        },
                    });
                }
                reauthed = true;
                let Some(challenge) = challenge else {
                    return Err(RegistryError::Auth {
                        registry: host.to_owned(),
                        reason: "401 without a usable WWW-Authenticate challenge".into(),
                    });
                };
                self.authenticate(host, scope, Some(challenge)).await?;
                continue;
            }
            if is_retryable_status(status.as_u16()) {
                return Err(status_error(op, &url, resp).await);
            }
            return Ok(resp);
        }
    }

    /// Sends a request built by `make` (given the HTTP client and the `scheme://host` base),
    /// with auth and retries. `make` is called again for every attempt, so bodies are rebuilt.
    pub(crate) async fn request(
        &self,
        host: &str,
        scope: &Scope,
        op: &str,
        make: &mut MakeRequest<'_>,
    ) -> Result<Response, RegistryError> {
        let policy = self.inner.opts.retry.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.execute(host, scope, op, make).await {
                Ok(r) => return Ok(r),
                Err(e) => match policy.delay_after(attempt, &e) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(exhausted(op, host, attempt, e)),
                },
            }
        }
    }

    /// One attempt without retries (for requests whose body cannot simply be replayed at the
    /// same URL, like a streamed upload into a session).
    pub(crate) async fn execute_once(
        &self,
        host: &str,
        scope: &Scope,
        op: &str,
        make: &mut MakeRequest<'_>,
    ) -> Result<Response, RegistryError> {
        self.execute(host, scope, op, make).await
    }

    /// The retry policy.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.opts.retry
    }

    async fn authenticate(
        &self,
        host: &str,
        scope: &Scope,
        challenge: Option<Challenge>,
    ) -> Result<(), RegistryError> {
        let challenge = match challenge {
            Some(c) => {
                let mut auth = self.lock_auth();
                let state = auth.entry(host.to_owned()).or_default();
                state.challenge = Some(c.clone());
                // a 401 with a cached token means it expired or lacks scope: drop it
                state.tokens.remove(&scope.key());
                c
            }
            None => {
                let auth = self.lock_auth();
                match auth.get(host).and_then(|s| s.challenge.clone()) {
                    Some(c) => c,
                    None => return Ok(()),
                }
            }
        };
        let creds = self.credentials(host);
        match challenge {
            Challenge::Basic => match creds {
                Credentials::Basic { .. } | Credentials::Bearer(_) => Ok(()),
                _ => Err(RegistryError::Auth {
                    registry: host.to_owned(),
                    reason: "the registry requires a user name and password and none were given"
                        .into(),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: _,
            } => {
                let token = match &creds {
                    Credentials::Bearer(t) => t.clone(),
                    _ => {
                        self.fetch_token(host, &realm, service.as_deref(), scope, &creds)
                            .await?
                    }
                };
                let mut auth = self.lock_auth();
                auth.entry(host.to_owned())
                    .or_default()
                    .tokens
                    .insert(scope.key(), token);
                Ok(())
            }
        }
    }

    async fn fetch_token(
        &self,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        creds: &Credentials,
    ) -> Result<Secret, RegistryError> {
        let realm_url = url::Url::parse(realm).map_err(|_| RegistryError::Auth {
            registry: host.to_owned(),
            reason: format!("invalid token realm `{realm}`"),
        })?;
        let client = if self
            .inner
            .opts
            .insecure_registries
            .iter()
            .any(|h| h == host)
        {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        };
        let policy = self.inner.opts.retry.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = match creds {
                Credentials::IdentityToken(refresh) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_owned()),
                        ("refresh_token", refresh.expose().to_owned()),
                        ("client_id", "shipline".to_owned()),
                        ("scope", scope.0.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_owned()));
                    }
                    client.post(realm_url.clone()).form(&form)
                }
                _ => {
                    let mut u = realm_url.clone();
                    {
                        let mut q = u.query_pairs_mut();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in &scope.0 {
                            q.append_pair("scope", s);
                        }
                    }
                    let mut r = client.get(u);
                    if let Credentials::Basic { username, password } = creds {
                        let mut v = HeaderValue::from_str(&basic_value(username, password))
                            .map_err(|_| RegistryError::Auth {
                                registry: host.to_owned(),
                                reason:
                                    "the credentials contain characters not allowed in a header"
                                        .into(),
                            })?;
                        v.set_sensitive(true);
                        r = r.header(AUTHORIZATION, v);
                    }
                    r
                }
            };
            let result = async {
                let resp = req.send().await.map_err(|e| RegistryError::Http {
                    op: "fetch token".into(),
                    url: redact_url(&realm_url),
                    source: e.without_url(),
                })?;
                let status = resp.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(RegistryError::Auth {
                        registry: host.to_owned(),
                        reason: format!(
                            "the token service refused the credentials (HTTP {status})"
                        ),
                    });
                }
                if !status.is_success() {
                    return Err(status_error("fetch token", &redact_url(&realm_url), resp).await);
                }
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body: TokenResponse = resp.json().await.map_err(|e| RegistryError::Http {
                    op: "read token".into(),
                    url: redact_url(&realm_url),
                    source: e.without_url(),
                })?;
                body.token
                    .or(body.access_token)
                    .filter(|t| !t.is_empty())
                    .map(Secret::new)
                    .ok_or_else(|| RegistryError::Auth {
                        registry: host.to_owned(),
                        reason: "the token service answered without a token".into(),
                    })
            }
            .await;
            match result {
                Ok(t) => return Ok(t),
                Err(e) => match policy.delay_after(attempt, &e) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(exhausted("fetch token", realm, attempt, e)),
                },
            }
        }
    }
}

fn basic_value(username: &str, password: &Secret) -> String {
    use base64::Engine;
    let raw = format!("{username}:{}", password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A URL for messages: no user info, no query (upload session state stays out of logs).
pub(crate) fn redact_url(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// Turns a non-success answer into [`RegistryError::Status`], keeping only the registry's
/// error codes and messages from the body.
pub(crate) async fn status_error(op: &str, url: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = resp.bytes().await.unwrap_or_default();
    RegistryError::Status {
        op: op.to_owned(),
        url: url.to_owned(),
        status,
        detail: error_detail(&body),
        retry_after,
    }
}

/// `: CODE message; CODE message` from a distribution error body, truncated.
pub(crate) fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(errors) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let parts: Vec<String> = errors
        .errors
        .iter()
        .map(|e| {
            let mut s = e.code.clone().unwrap_or_default();
            if let Some(m) = &e.message {
                s.push(' ');
                s.push_str(m);
            }
            s.chars().take(200).collect()
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn details() {
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#),
            ": BLOB_UNKNOWN blob unknown"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }

    #[test]
    fn debug_redacts() {
        let mut opts = ClientOptions::default();
        opts.credentials
            .insert("ghcr.io".into(), Credentials::basic("u", "canary-xyz"));
        let c = RegistryClient::new(opts).unwrap();
        assert!(!format!("{c:?}").contains("canary"));
    }
}
