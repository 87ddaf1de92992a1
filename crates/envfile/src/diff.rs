//! Comparing the effective values of two env files, with secrets masked.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::secret::should_mask;

/// A value as it may be shown.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Shown {
    /// A value that is safe to show.
    Value(String),
    /// A secret-looking value: never shown.
    #[cfg_attr(feature = "serde", serde(serialize_with = "redacted"))]
    Redacted,
}

#[cfg(feature = "serde")]
fn redacted<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Value(v) => f.write_str(v),
            Shown::Redacted => f.write_str("<redacted>"),
        }
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Value(v) => write!(f, "{v:?}"),
            Shown::Redacted => f.write_str("<redacted>"),
        }
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Change {
    /// Only in the new file.
    Added,
    /// Only in the old file.
    Removed,
    /// In both, with different values.
    Changed,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DiffEntry {
    /// The key.
    pub key: String,
    /// Added, removed or changed.
    pub change: Change,
    /// The old value (masked when secret), absent for `Added`.
    pub old: Option<Shown>,
    /// The new value (masked when secret), absent for `Removed`.
    pub new: Option<Shown>,
}

/// Differences between two sets of effective values, sorted by key. A value is masked when
/// its key looks secret or either value looks like one (URL with a password, private key);
/// both sides are masked together, so nothing leaks through comparison.
pub fn diff(old: &[(String, String)], new: &[(String, String)]) -> Vec<DiffEntry> {
    let a: BTreeMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let b: BTreeMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut keys: Vec<&str> = a.keys().chain(b.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (o, n) = (a.get(key).copied(), b.get(key).copied());
        let change = match (o, n) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(_), Some(_)) => Change::Changed,
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (None, None) => continue,
        };
        let mask = o.is_some_and(|v| should_mask(key, v)) || n.is_some_and(|v| should_mask(key, v));
        let shown = |v: &str| {
            if mask {
                Shown::Redacted
            } else {
                Shown::Value(v.to_string())
            }
        };
        out.push(DiffEntry {
            key: key.to_string(),
            change,
            old: o.map(shown),
            new: n.map(shown),
        });
    }
    out
}

fn quoted(v: &Shown) -> String {
    match v {
        Shown::Redacted => "<redacted>".to_string(),
        Shown::Value(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '"') =>
        {
            s.clone()
        }
        Shown::Value(s) => format!("{s:?}"),
    }
}

/// Renders a diff as `+ KEY=value`, `- KEY=value`, `~ KEY: old -> new` lines.
pub fn render_diff_text(entries: &[DiffEntry]) -> String {
    let mut s = String::new();
    for e in entries {
        let _ = match (e.change, &e.old, &e.new) {
            (Change::Added, _, Some(n)) => writeln!(s, "+ {}={}", e.key, quoted(n)),
            (Change::Removed, Some(o), _) => writeln!(s, "- {}={}", e.key, quoted(o)),
            (Change::Changed, Some(Shown::Redacted), _) => {
                writeln!(s, "~ {}: <redacted> (changed)", e.key)
            }
            (_, Some(o), Some(n)) => writeln!(s, "~ {}: {} -> {}", e.key, quoted(o), quoted(n)),
            _ => writeln!(s, "~ {}", e.key),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn diff_masks_secrets() {
        let a = kv(&[("A", "1"), ("DB_PASSWORD", "hunter2"), ("GONE", "x")]);
        let b = kv(&[("A", "2"), ("DB_PASSWORD", "hunter3"), ("NEW", "y z")]);
        let text = render_diff_text(&diff(&a, &b));
        assert_eq!(
            text,
            "~ A: 1 -> 2\n~ DB_PASSWORD: <redacted> (changed)\n- GONE=x\n+ NEW=\"y z\"\n"
        );
        assert!(!text.contains("hunter"));
    }
}
