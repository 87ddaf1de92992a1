//! OCI image layouts: read (from a directory or a tarball) and write (directory), every file
//! written atomically (temp file, fsync, rename).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::digest::Verifier;
use crate::files::{BlobReader, Files};
use crate::manifest::{Descriptor, Manifest, ANNOTATION_REF_NAME};
use crate::{Digest, RegistryError};

/// Largest manifest or index accepted (the distribution spec suggests 4 MiB).
pub(crate) const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

pub(crate) fn blob_rel(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Reads an OCI image layout stored in `files`.
#[derive(Debug, Clone)]
pub(crate) struct LayoutReader {
    pub(crate) files: Files,
}

impl LayoutReader {
    pub(crate) async fn index(&self) -> Result<Manifest, RegistryError> {
        let bytes = self.files.read("index.json", MANIFEST_LIMIT).await?;
        Manifest::parse(
            &bytes,
            &self.files.display("index.json").display().to_string(),
        )
    }

    /// The manifest named `tag` (matched against `org.opencontainers.image.ref.name`, then
    /// against the tag part of `io.containerd.image.name`), or the only one.
    pub(crate) async fn resolve(&self, tag: Option<&str>) -> Result<Descriptor, RegistryError> {
        let index = self.index().await?;
        let where_ = self.files.display("index.json").display().to_string();
        match tag {
            Some(tag) => index
                .manifests
                .iter()
                .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag))
                .or_else(|| {
                    index.manifests.iter().find(|d| {
                        d.annotations
                            .get("io.containerd.image.name")
                            .is_some_and(|n| {
                                n.rsplit_once(':').map(|(_, t)| t) == Some(tag) || n == tag
                            })
                    })
                })
                .cloned()
                .ok_or_else(|| RegistryError::NotFound {
                    what: format!("image `{tag}` in {where_}"),
                }),
            None => match index.manifests.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(RegistryError::NotFound {
                    what: format!("any image in {where_}"),
                }),
                many => Err(RegistryError::invalid(
                    where_,
                    format!("it holds {} images; name one with oci:DIR:TAG", many.len()),
                )),
            },
        }
    }

    pub(crate) async fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let bytes = self.files.read(&blob_rel(d), limit).await?;
        let mut v = Verifier::new();
        v.update(&bytes);
        v.verify(d, None)?;
        Ok(bytes)
    }

    pub(crate) async fn open_blob(
        &self,
        d: &Digest,
        offset: u64,
    ) -> Result<BlobReader, RegistryError> {
        Ok(self.files.open_at(&blob_rel(d), offset).await?.0)
    }
}

/// A writable OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Opens `root`, creating an empty layout (`oci-layout`, `index.json`, `blobs/sha256`) when
    /// it does not exist yet.
    pub async fn create(root: &Path) -> Result<OciLayout, RegistryError> {
        tokio::fs::create_dir_all(root.join("blobs/sha256"))
            .await
            .map_err(|e| RegistryError::io("create layout", root, e))?;
        let layout = OciLayout {
            root: root.to_path_buf(),
        };
        if tokio::fs::metadata(root.join("oci-layout")).await.is_err() {
            layout
                .write_atomic("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .await?;
        }
        if tokio::fs::metadata(root.join("index.json")).await.is_err() {
            layout
                .write_atomic(
                    "index.json",
                    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                )
                .await?;
        }
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn reader(&self) -> LayoutReader {
        LayoutReader {
            files: Files::Dir(self.root.clone()),
        }
    }

    /// Whether a complete blob with this digest and size is present.
    pub(crate) async fn has_blob(&self, d: &Descriptor) -> bool {
        tokio::fs::metadata(self.root.join(blob_rel(&d.digest)))
            .await
            .is_ok_and(|m| m.len() == d.size)
    }

    async fn write_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let target = self.root.join(rel);
        let guard = TempGuard(Some(temp_name(&target)));
        let tmp = guard.path().to_path_buf();
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| RegistryError::io("create", &tmp, e))?;
        f.write_all(bytes)
            .await
            .map_err(|e| RegistryError::io("write", &tmp, e))?;
        f.sync_all()
            .await
            .map_err(|e| RegistryError::io("sync", &tmp, e))?;
        drop(f);
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(|e| RegistryError::io("rename into place", &target, e))?;
        guard.disarm();
        Ok(())
    }

    /// Streams `reader` into the blob store: hashed on the way into a temp file, verified
    /// against `desc`, fsynced and renamed into place. On any error nothing is left behind.
    /// `on_bytes` is called with the running byte count.
    pub(crate) async fn write_blob(
        &self,
        desc: &Descriptor,
        mut reader: impl AsyncRead + Unpin,
        on_bytes: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, RegistryError> {
        let target = self.root.join(blob_rel(&desc.digest));
        // removes the temp file on error and when the future is dropped half-way
        let guard = TempGuard(Some(temp_name(&target)));
        let tmp = guard.path().to_path_buf();
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| RegistryError::io("create", &tmp, e))?;
        let mut v = Verifier::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| RegistryError::io("read blob for", &target, e))?;
            if n == 0 {
                break;
            }
            v.update(&buf[..n]);
            if v.len() > desc.size {
                return Err(RegistryError::SizeMismatch {
                    digest: desc.digest.to_string(),
                    expected: desc.size,
                    actual: v.len(),
                });
            }
            f.write_all(&buf[..n])
                .await
                .map_err(|e| RegistryError::io("write", &tmp, e))?;
            on_bytes(v.len());
        }
        let len = v.len();
        v.verify(&desc.digest, Some(desc.size))?;
        f.sync_all()
            .await
            .map_err(|e| RegistryError::io("sync", &tmp, e))?;
        drop(f);
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(|e| RegistryError::io("rename into place", &target, e))?;
        guard.disarm();
        Ok(len)
    }

    /// Stores a manifest blob; a root manifest is also recorded in `index.json`, named `tag` if
    /// given (replacing an entry of the same name), else as an unnamed entry (once).
    pub(crate) async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
        root: bool,
    ) -> Result<Digest, RegistryError> {
        let desc = Descriptor::for_bytes(media_type, bytes);
        if !self.has_blob(&desc).await {
            self.write_blob(&desc, bytes, &mut |_| {}).await?;
        }
        if root {
            self.record(tag, desc.clone()).await?;
        }
        Ok(desc.digest)
    }

    async fn record(&self, tag: Option<&str>, mut desc: Descriptor) -> Result<(), RegistryError> {
        let mut index = self.reader().index().await?;
        match tag {
            Some(tag) => {
                index.manifests.retain(|d| {
                    d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(tag)
                });
                desc.annotations
                    .insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
            }
            None => {
                if index.manifests.iter().any(|d| d.digest == desc.digest) {
                    return Ok(());
                }
            }
        }
        index.manifests.push(desc);
        let bytes =
            serde_json::to_vec_pretty(&index).map_err(|e| RegistryError::json("index.json", e))?;
        self.write_atomic("index.json", &bytes).await
    }
}

/// Deletes a temp file on drop unless disarmed.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()))
}
