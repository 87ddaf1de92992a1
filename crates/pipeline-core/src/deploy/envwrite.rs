//! The env-file edits a deploy makes: read the tag variable, set it atomically with a backup,
//! restore the backup.
//!
//! This is a thin adapter over the `shipline_envfile` crate's lossless editor; until that API
//! is available it edits only the one `KEY=VALUE` line and keeps every other byte as is.

use std::path::{Path, PathBuf};

use super::DeployError;

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        return v[1..v.len() - 1].to_string();
    }
    // an unquoted value ends at ` #` (inline comment)
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

fn line_key(line: &str) -> Option<(&str, &str)> {
    let l = line.trim_start();
    if l.starts_with('#') {
        return None;
    }
    let l = l.strip_prefix("export ").unwrap_or(l);
    let (k, v) = l.split_once('=')?;
    Some((k.trim(), v))
}

/// The value of `key` in the env file (last assignment wins, as compose reads it), or `None`
/// when unset or when the file does not exist.
pub fn read_var(path: &Path, key: &str) -> Result<Option<String>, DeployError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DeployError::io(path)(e)),
    };
    Ok(text
        .lines()
        .filter_map(line_key)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| unquote(v))
        .next_back())
}

/// Sets `key=value` in the env file atomically, after copying the current file to
/// `backup_dir`. Returns the backup path (`None` when the file did not exist yet).
pub fn set_var(
    path: &Path,
    key: &str,
    value: &str,
    backup_dir: &Path,
) -> Result<Option<PathBuf>, DeployError> {
    let old = match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(DeployError::io(path)(e)),
    };
    let backup = match &old {
        Some(bytes) => {
            std::fs::create_dir_all(backup_dir).map_err(DeployError::io(backup_dir))?;
            let name = format!(
                "{}.{}.bak",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "env".into()),
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            );
            let b = backup_dir.join(name);
            super::record::atomic_write(&b, bytes).map_err(DeployError::io(&b))?;
            Some(b)
        }
        None => None,
    };
    let text = old
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if let Some((k, _)) = line_key(line) {
            if k == key {
                if !done {
                    out.push_str(&format!("{key}={value}"));
                    out.push_str(if line.ends_with('\n') { "\n" } else { "" });
                    done = true;
                }
                continue;
            }
        }
        out.push_str(line);
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    super::record::atomic_write(path, out.as_bytes()).map_err(DeployError::io(path))?;
    Ok(backup)
}

/// Restores the env file from `backup` (atomically); with no backup the file is removed (it
/// did not exist before the deploy).
pub fn restore(path: &Path, backup: Option<&Path>) -> Result<(), DeployError> {
    match backup {
        Some(b) => {
            let bytes = std::fs::read(b).map_err(DeployError::io(b))?;
            super::record::atomic_write(path, &bytes).map_err(DeployError::io(path))
        }
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DeployError::io(path)(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_other_lines_and_backs_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join(".env.prod");
        std::fs::write(&env, "# prod\nA=1\nIMAGE_TAG=\"v1\" \nB='x y'\n").expect("write");
        assert_eq!(
            read_var(&env, "IMAGE_TAG").expect("read"),
            Some("v1".into())
        );
        let backup = set_var(&env, "IMAGE_TAG", "v2", &dir.path().join("b"))
            .expect("set")
            .expect("backup");
        assert_eq!(
            std::fs::read_to_string(&env).expect("read"),
            "# prod\nA=1\nIMAGE_TAG=v2\nB='x y'\n"
        );
        assert_eq!(read_var(&env, "B").expect("read"), Some("x y".into()));
        restore(&env, Some(&backup)).expect("restore");
        assert_eq!(
            read_var(&env, "IMAGE_TAG").expect("read"),
            Some("v1".into())
        );
        let fresh = dir.path().join("new.env");
        assert!(set_var(&fresh, "IMAGE_TAG", "v3", dir.path())
            .expect("set")
            .is_none());
        assert_eq!(
            std::fs::read_to_string(&fresh).expect("read"),
            "IMAGE_TAG=v3\n"
        );
    }
}
