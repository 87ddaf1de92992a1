//! Read access to files in a directory or inside a tarball (indexed once, then read by
//! seeking, so nothing is extracted).

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use crate::RegistryError;

/// A boxed async byte stream of one blob.
pub(crate) type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// Where the regular files of a tarball are: relative path → (offset, size).
#[derive(Debug)]
pub(crate) struct TarIndex {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl TarIndex {
    /// Reads the tar headers of `path` (sync; call from a blocking task).
    fn build(path: &Path) -> Result<TarIndex, RegistryError> {
        let file =
            std::fs::File::open(path).map_err(|e| RegistryError::io("open archive", path, e))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let iter = archive
            .entries_with_seek()
            .map_err(|e| RegistryError::io("read archive", path, e))?;
        for entry in iter {
            // The tar crate quotes the offending header bytes in its message: never echo them
            // (the file may be anything, even a secret).
            let entry = entry.map_err(|e| match e.raw_os_error() {
                // an OS error is a real I/O failure; anything else is the tar format's
                Some(_) => RegistryError::io("read archive entry in", path, e),
                None => RegistryError::invalid(
                    format!("archive {}", path.display()),
                    "not a tar archive, or a truncated one (expected what `docker save` or an OCI archive writes)",
                ),
            })?;
            let name = entry
                .path()
                .map_err(|e| RegistryError::io("read archive entry name in", path, e))?
                .to_string_lossy()
                .into_owned();
            let name = normalize(&name);
            let kind = entry.header().entry_type();
            if kind.is_file() {
                entries.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = entry.link_name() {
                    let target = target.to_string_lossy().into_owned();
                    let resolved = if kind.is_symlink() && !target.starts_with('/') {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        normalize(&format!("{dir}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    links.push((name, resolved));
                }
            }
        }
        // links, possibly chained, resolved a few rounds deep
        for _ in 0..4 {
            for (name, target) in &links {
                if let Some(v) = entries.get(target).copied() {
                    entries.entry(name.clone()).or_insert(v);
                }
            }
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            entries,
        })
    }
}

/// Files of a directory or a tarball.
#[derive(Debug, Clone)]
pub(crate) enum Files {
    Dir(PathBuf),
    Tar(Arc<TarIndex>),
}

impl Files {
    pub(crate) async fn tar(path: &Path) -> Result<Files, RegistryError> {
        let p = path.to_path_buf();
        let index = tokio::task::spawn_blocking(move || TarIndex::build(&p))
            .await
            .map_err(|e| RegistryError::io("index archive", path, std::io::Error::other(e)))??;
        Ok(Files::Tar(Arc::new(index)))
    }

    /// A printable location of `rel`.
    pub(crate) fn display(&self, rel: &str) -> PathBuf {
        match self {
            Files::Dir(d) => d.join(rel),
            Files::Tar(t) => PathBuf::from(format!("{}:{rel}", t.path.display())),
        }
    }

    pub(crate) async fn size(&self, rel: &str) -> Option<u64> {
        match self {
            Files::Dir(d) => tokio::fs::metadata(d.join(rel)).await.ok().map(|m| m.len()),
            Files::Tar(t) => t.entries.get(&normalize(rel)).map(|e| e.1),
        }
    }

    pub(crate) async fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let (mut reader, size) = self.open_at(rel, 0).await?;
        if size > limit {
            return Err(RegistryError::invalid(
                self.display(rel).display().to_string(),
                format!("{size} bytes is larger than the {limit}-byte limit"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        reader
            .read_to_end(&mut buf)
            .await
            .map_err(|e| RegistryError::io("read", self.display(rel), e))?;
        Ok(buf)
    }

    /// Opens `rel` at `offset`; returns the reader and the file's full size.
    pub(crate) async fn open_at(
        &self,
        rel: &str,
        offset: u64,
    ) -> Result<(BlobReader, u64), RegistryError> {
        let not_found = || RegistryError::NotFound {
            what: self.display(rel).display().to_string(),
        };
        match self {
            Files::Dir(d) => {
                let path = d.join(rel);
                let mut f = tokio::fs::File::open(&path).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        not_found()
                    } else {
                        RegistryError::io("open", &path, e)
                    }
                })?;
                let size = f
                    .metadata()
                    .await
                    .map_err(|e| RegistryError::io("stat", &path, e))?
                    .len();
                if offset > 0 {
                    f.seek(SeekFrom::Start(offset))
                        .await
                        .map_err(|e| RegistryError::io("seek", &path, e))?;
                }
                Ok((Box::pin(f), size))
            }
            Files::Tar(t) => {
                let (start, size) = *t.entries.get(&normalize(rel)).ok_or_else(not_found)?;
                let mut f = tokio::fs::File::open(&t.path)
                    .await
                    .map_err(|e| RegistryError::io("open archive", &t.path, e))?;
                f.seek(SeekFrom::Start(start + offset.min(size)))
                    .await
                    .map_err(|e| RegistryError::io("seek in archive", &t.path, e))?;
                Ok((Box::pin(f.take(size.saturating_sub(offset))), size))
            }
        }
    }
}
