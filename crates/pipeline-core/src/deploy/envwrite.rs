//! The env-file edits a deploy makes, through the `shipline_envfile` crate (Compose-exact,
//! lossless, locked atomic writes): read the tag variable, set it with a backup, restore the
//! backup.

use std::path::{Path, PathBuf};

use shipline_envfile::{file::read_text, restore_backup, set_keys, Document, WriteOptions};

use super::DeployError;

/// The value of `key` in the env file as Compose reads it (last assignment wins), or `None`
/// when unset or when the file does not exist.
pub fn read_var(path: &Path, key: &str) -> Result<Option<String>, DeployError> {
    Ok(read_text(path)?.and_then(|text| Document::parse(&text).get(key)))
}

/// Sets `key=value` in the env file (locked, atomic, every other byte kept), after copying
/// the current file into `backup_dir`. Returns the backup path (`None` when the file did not
/// exist yet).
pub fn set_var(
    path: &Path,
    key: &str,
    value: &str,
    backup_dir: &Path,
) -> Result<Option<PathBuf>, DeployError> {
    std::fs::create_dir_all(backup_dir).map_err(DeployError::io(backup_dir))?;
    let name = format!(
        "{}.{}.bak",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "env".into()),
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    );
    let opts = WriteOptions {
        backup: Some(backup_dir.join(name)),
        ..WriteOptions::default()
    };
    let out = set_keys(path, &[(key, value)], &opts)?;
    Ok(out.backup().map(Path::to_path_buf))
}

/// Restores the env file from `backup` (locked, atomic); with no backup the file is removed
/// (it did not exist before the deploy).
pub fn restore(path: &Path, backup: Option<&Path>) -> Result<(), DeployError> {
    match backup {
        Some(b) => {
            restore_backup(path, b, &WriteOptions::default())?;
            Ok(())
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
            "# prod\nA=1\nIMAGE_TAG=\"v2\" \nB='x y'\n",
            "only the value bytes change"
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
