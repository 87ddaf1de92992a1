//! Image references: `ghcr.io/org/app:tag`, `...@sha256:...`, `localhost:5000/x`, Docker Hub
//! short names.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, RegistryError};

/// A normalized image reference.
///
/// Parsing follows the Docker reference grammar (checked against `oci-client`'s parser by a
/// differential property test): a name without a
/// registry is on Docker Hub (`docker.io`), a single-component Docker Hub name is in `library/`,
/// and a reference with neither tag nor digest means `:latest`.
///
/// ```
/// use shipline_registry::Reference;
/// let r = Reference::parse("nginx").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
/// let r = Reference::parse("localhost:5000/team/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
/// assert_eq!(r.registry(), "localhost:5000");
/// assert_eq!(r.repository(), "team/app");
/// assert!(r.tag().is_none());
/// assert!(Reference::parse("Upper/Case").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference.
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let bad = |reason: String| RegistryError::InvalidReference {
            input: input.to_owned(),
            reason,
        };
        if input.trim() != input || input.is_empty() {
            return Err(bad("empty or surrounded by whitespace".into()));
        }
        if input.contains("://") {
            return Err(bad(
                "a reference has no scheme (write `host/repo:tag`)".into()
            ));
        }
        let (name, tag, digest) = split_reference(input)
            .ok_or_else(|| bad(diagnose(input, "invalid reference format")))?;
        let digest = match digest {
            Some(d) => Some(Digest::parse(d).map_err(|_| bad(diagnose(input, "invalid digest")))?),
            None => None,
        };
        let (registry, repository) = split_domain(name);
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository names must be lowercase".into()));
        }
        if repository.len() > 255 {
            return Err(bad("repository name longer than 255 characters".into()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as written (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host the distribution API is served from (Docker Hub's is `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The repository path (`org/app`, `library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if pinned.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when pinned, else the tag (`latest` by default).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository pinned to `digest` (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The same repository at `tag` (any digest is dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, RegistryError> {
        if !valid_tag(tag) {
            return Err(RegistryError::InvalidReference {
                input: format!("{}/{}:{tag}", self.registry, self.repository),
                reason: "invalid tag format".into(),
            });
        }
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn repository_url_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether two references name the same repository on the same registry.
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

/// Splits `name[:tag][@digest]` and checks the Docker reference grammar (the same grammar as
/// `oci-client`'s regex, without its ~80 ms compile on every start).
fn split_reference(input: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match input.split_once('@') {
        Some((a, d)) => (a, Some(d)),
        None => (input, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || !valid_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

fn valid_name(name: &str) -> bool {
    let comps: Vec<&str> = name.split('/').collect();
    let all_paths = comps.iter().all(|c| valid_path_component(c));
    let domain_then_paths = comps.len() >= 2
        && valid_domain(comps[0])
        && comps[1..].iter().all(|c| valid_path_component(c));
    all_paths || domain_then_paths
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`, host components `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by dots.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit())) {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// Docker's rule: the first component is a registry when it has a `.` or `:` or is
/// `localhost`; Docker Hub names without a slash live in `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((left, right)) if left.contains('.') || left.contains(':') || left == "localhost" => {
            (left.to_owned(), right.to_owned())
        }
        _ => ("docker.io".to_owned(), name.to_owned()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".to_owned();
    }
    if domain == "docker.io" && !rest.contains('/') {
        rest = format!("library/{rest}");
    }
    (domain, rest)
}

/// A more specific reason than the grammar's "invalid reference format".
fn diagnose(input: &str, fallback: &str) -> String {
    let (name_tag, digest) = match input.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (input, None),
    };
    if let Some(d) = digest {
        if let Err(e) = Digest::parse(d) {
            return match e {
                RegistryError::Invalid { reason, .. } => format!("invalid digest `{d}`: {reason}"),
                other => other.to_string(),
            };
        }
    }
    let last = name_tag.rsplit('/').next().unwrap_or(name_tag);
    let (name, tag) = match last.split_once(':') {
        Some((_, t)) if name_tag.contains('/') || !t.bytes().all(|b| b.is_ascii_digit()) => {
            (&name_tag[..name_tag.len() - t.len() - 1], Some(t))
        }
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        if t.is_empty() {
            return "empty tag after `:`".into();
        }
        if t.contains(':') {
            return format!("invalid tag `{t}`: more than one `:`");
        }
        if !valid_tag(t) {
            return format!("invalid tag `{t}`: use letters, digits, `_`, `.` and `-`, not first `.` or `-`, at most 128");
        }
    }
    let path = name.split_once('/').map_or(name, |(first, rest)| {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            rest
        } else {
            name
        }
    });
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return "repository names must be lowercase".into();
    }
    if name.starts_with('[') {
        return "IPv6 registry addresses are not supported; use a host name".into();
    }
    fallback.to_owned()
}

/// Whether `tag` matches `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let cases = [
            ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("me/app:x", "docker.io/me/app:x"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Reference::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            " x",
            "https://ghcr.io/a",
            "ghcr.io/Org/app",
            "a:b:c",
            "ghcr.io/a@sha256:123",
            "ghcr.io/a@md5:d41d8cd98f00b204e9800998ecf8427e",
            "a/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
