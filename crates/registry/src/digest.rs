//! Content digests (`sha256:<hex>`) and streaming verification.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::RegistryError;

/// A validated `sha256:<64 lowercase hex>` content digest.
///
/// Only sha256 is accepted: it is the only algorithm registries and `docker save` use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses and validates a digest.
    ///
    /// ```
    /// let d = shipline_registry::Digest::parse(
    ///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    /// ).unwrap();
    /// assert_eq!(d.hex().len(), 64);
    /// assert!(shipline_registry::Digest::parse("sha256:xyz").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &str| RegistryError::invalid(format!("digest `{s}`"), reason);
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX"))?;
        if alg != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("expected 64 lowercase hexadecimal characters"));
        }
        Ok(Digest(s.to_owned()))
    }

    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The hexadecimal part.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The tag the OCI referrers tag-schema fallback uses for this digest: `sha256-<hex>`.
    pub fn referrers_tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = RegistryError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// Hashes bytes as they stream past and checks them against an expected digest and size.
#[derive(Clone)]
pub(crate) struct Verifier {
    hasher: Sha256,
    len: u64,
}

impl Verifier {
    pub(crate) fn new() -> Self {
        Verifier {
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Finishes and compares; `size` is checked when known.
    pub(crate) fn verify(self, expected: &Digest, size: Option<u64>) -> Result<(), RegistryError> {
        let len = self.len;
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != expected.as_str() {
            return Err(RegistryError::DigestMismatch {
                expected: expected.to_string(),
                actual,
                size: len,
            });
        }
        if let Some(size) = size {
            if size != len {
                return Err(RegistryError::SizeMismatch {
                    digest: expected.to_string(),
                    expected: size,
                    actual: len,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_accepts_and_refuses() {
        let d = Digest::of(b"hello");
        let mut v = Verifier::new();
        v.update(b"hel");
        v.update(b"lo");
        assert!(v.clone().verify(&d, Some(5)).is_ok());
        assert!(matches!(
            v.clone().verify(&d, Some(6)),
            Err(RegistryError::SizeMismatch { .. })
        ));
        let mut w = Verifier::new();
        w.update(b"hellO");
        assert!(matches!(
            w.verify(&d, None),
            Err(RegistryError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn referrers_tag() {
        let d = Digest::of(b"");
        assert_eq!(
            d.referrers_tag(),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Digest::parse(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        )
        .is_err());
        assert!(Digest::parse("md5:abc").is_err());
    }
}
