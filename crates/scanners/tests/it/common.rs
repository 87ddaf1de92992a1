//! Shared helpers: workspace paths, the shared corpora, the venv, fake executables.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fixtures/scanners`.
pub fn fixtures() -> PathBuf {
    workspace().join("fixtures/scanners")
}

/// `shared/corpora/<name>` or `None` (after printing a visible SKIP line).
pub fn corpus(name: &str) -> Option<PathBuf> {
    let base = match std::env::var_os("SHIPLINE_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let candidates = [base.join("corpora").join(name), base.join(name)];
    match candidates
        .iter()
        .find(|p| p.join("expected.json").is_file())
    {
        Some(p) => Some(p.clone()),
        None => {
            eprintln!(
                "SKIP: corpus {name} not found under {} (set SHIPLINE_SHARED_DIR)",
                base.display()
            );
            None
        }
    }
}

/// A program from the test venv (`SHIPLINE_VENV`, else `<workspace>/.venv`); panics with a
/// clear message when it is missing (run `bash scripts/prereqs.sh`).
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("SHIPLINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"));
    let p = venv.join("bin").join(name);
    assert!(
        p.is_file(),
        "prerequisite missing: {} not found; run `bash scripts/prereqs.sh` (or set SHIPLINE_VENV)",
        p.display()
    );
    p
}

/// Writes an executable shell script `name` into `dir` and returns its path.
pub fn fake_tool(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write fake tool");
    let mut perm = std::fs::metadata(&p).expect("stat").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(&p, perm).expect("chmod");
    p
}
