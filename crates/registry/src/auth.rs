//! Credentials (redacted everywhere), docker `config.json` / credential-helper lookup, and the
//! `WWW-Authenticate` challenge parser.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::RegistryError;

/// A secret string: its `Debug` and `Display` print `<redacted>`.
///
/// ```
/// let s = shipline_registry::Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value; only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to authenticate to one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials; anonymous tokens are still requested when the registry asks.
    #[default]
    Anonymous,
    /// A user name and password (or a personal access token as the password).
    Basic {
        /// The user name (not secret, but not printed either).
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// An OAuth2 refresh token (docker `identitytoken`).
    IdentityToken(Secret),
    /// A ready-made bearer token sent as is.
    Bearer(Secret),
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// GHCR credentials from `GITHUB_TOKEN` or a personal access token: GHCR accepts any user
    /// name with the token as password.
    pub fn github_token(actor: Option<&str>, token: impl Into<String>) -> Self {
        Credentials::basic(actor.unwrap_or("x-access-token"), token)
    }

    /// Whether these are [`Credentials::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { .. } => f.write_str("Basic(<redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The docker config file the Docker CLI would read: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`. The caller passes the environment values in.
pub fn docker_config_path(
    docker_config_env: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    docker_config_env
        .map(Path::to_path_buf)
        .or_else(|| home.map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"))
}

/// Looks up the credentials for `registry` in a docker `config.json` (`auths`, `credHelpers`,
/// `credsStore`), running credential helpers off the async runtime's threads.
///
/// A missing file or an unconfigured registry yields [`Credentials::Anonymous`]; a broken file or
/// a failing helper is an error (whose message never includes the helper's output).
pub async fn credentials_from_docker_config(
    config_file: &Path,
    registry: &str,
) -> Result<Credentials, RegistryError> {
    let file = config_file.to_path_buf();
    let registry = registry.to_owned();
    tokio::task::spawn_blocking(move || lookup_blocking(&file, &registry))
        .await
        .map_err(|e| RegistryError::Credentials {
            registry: "docker config".into(),
            reason: format!("lookup task failed: {e}"),
        })?
}

fn lookup_blocking(file: &Path, registry: &str) -> Result<Credentials, RegistryError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let keys: Vec<String> = if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "index.docker.io".into(),
        ]
    } else {
        vec![registry.to_owned()]
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::Anonymous),
        Err(e) => return Err(RegistryError::io("read docker config", file, e)),
    };
    for key in keys {
        match docker_credential::get_credential_from_reader(bytes.as_slice(), &key) {
            Ok(DockerCredential::UsernamePassword(u, p)) => return Ok(Credentials::basic(u, p)),
            Ok(DockerCredential::IdentityToken(t)) => {
                return Ok(Credentials::IdentityToken(Secret::new(t)))
            }
            Err(E::NoCredentialConfigured) => continue,
            Err(e) => {
                let reason = match e {
                    E::HelperFailure { helper, .. } => {
                        format!("credential helper `docker-credential-{helper}` failed")
                    }
                    E::ConfigReadError => {
                        format!("{} is not a valid docker config", file.display())
                    }
                    // the crate's message names no helper: name the one configured
                    E::HelperCommunicationError => match configured_helper(&bytes, &key) {
                        Some(helper) => format!(
                            "could not run credential helper `docker-credential-{helper}` (is it installed and on PATH?)"
                        ),
                        None => "could not run the credential helper".to_string(),
                    },
                    other => other.to_string().to_lowercase(),
                };
                return Err(RegistryError::Credentials {
                    registry: registry.to_owned(),
                    reason,
                });
            }
        }
    }
    Ok(Credentials::Anonymous)
}

/// The credential helper a docker config names for `key` (`credHelpers`, else `credsStore`).
fn configured_helper(config: &[u8], key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    v.get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| v.get("credsStore"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn redacted() {
        let c = Credentials::basic("user", "canary-s3cret");
        let shown = format!("{c} {c:?} {:?}", Some(&c));
        assert!(!shown.contains("canary"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
    }

    #[tokio::test]
    async fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        assert_eq!(
            credentials_from_docker_config(&file, "ghcr.io")
                .await
                .unwrap(),
            Credentials::Anonymous
        );
        // base64("me:canary-pw")
        std::fs::write(
            &file,
            r#"{"auths":{"ghcr.io":{"auth":"bWU6Y2FuYXJ5LXB3"}}}"#,
        )
        .unwrap();
        assert_eq!(
            credentials_from_docker_config(&file, "ghcr.io")
                .await
                .unwrap(),
            Credentials::basic("me", "canary-pw")
        );
        assert_eq!(
            credentials_from_docker_config(&file, "quay.io")
                .await
                .unwrap(),
            Credentials::Anonymous
        );
        std::fs::write(
            &file,
            r#"{"credHelpers":{"ghcr.io":"shipline-test-missing"}}"#,
        )
        .unwrap();
        let err = credentials_from_docker_config(&file, "ghcr.io")
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("credential helper `docker-credential-shipline-test-missing`"),
            "{err}"
        );
    }
}
