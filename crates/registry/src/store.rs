//! Where images live: [`ImageStore`] (parsed from `oci:DIR[:TAG]`, `oci-archive:FILE`,
//! `docker-archive:FILE`, `docker://REF` or a plain reference), and the read/write sides the
//! copy engine drives.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::files::{BlobReader, Files};
use crate::layout::{LayoutReader, OciLayout, MANIFEST_LIMIT};
use crate::manifest::{
    effective_media_type, Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST,
};
use crate::reference::valid_tag;
use crate::{Digest, Reference, RegistryClient, RegistryError};

/// An image location: a registry or a local store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStore {
    /// A registry (`docker://REF` or a plain reference).
    Remote(Reference),
    /// An OCI image layout directory (`oci:DIR[:TAG]`), read and write.
    Layout {
        /// The directory.
        dir: PathBuf,
        /// The image name in `index.json`.
        tag: Option<String>,
    },
    /// An OCI layout in a tarball (`oci-archive:FILE[:TAG]`).
    OciArchive {
        /// The tarball.
        path: PathBuf,
        /// The image name in its `index.json`.
        tag: Option<String>,
    },
    /// A `docker save` tarball (`docker-archive:FILE`): the legacy `manifest.json` format or,
    /// from Docker 25, an OCI layout inside.
    DockerArchive {
        /// The tarball.
        path: PathBuf,
    },
    /// An image in the local Docker engine (`docker-daemon:IMAGE`), not supported yet.
    DockerDaemon(String),
}

fn split_tag(rest: &str) -> (PathBuf, Option<String>) {
    if let Some((dir, tag)) = rest.rsplit_once(':') {
        if !dir.is_empty() && valid_tag(tag) {
            return (PathBuf::from(dir), Some(tag.to_owned()));
        }
    }
    (PathBuf::from(rest), None)
}

impl ImageStore {
    /// Parses a location.
    ///
    /// ```
    /// use shipline_registry::ImageStore;
    /// assert!(matches!(ImageStore::parse("oci:.shipline/oci:v1").unwrap(),
    ///     ImageStore::Layout { tag: Some(t), .. } if t == "v1"));
    /// assert!(matches!(ImageStore::parse("docker://ghcr.io/org/app:1").unwrap(), ImageStore::Remote(_)));
    /// assert!(matches!(ImageStore::parse("ghcr.io/org/app:1").unwrap(), ImageStore::Remote(_)));
    /// assert!(ImageStore::parse("oci:").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<ImageStore, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidLocation {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let nonempty = |s: &str| {
            if s.is_empty() {
                Err(bad("missing path"))
            } else {
                Ok(())
            }
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            nonempty(rest)?;
            let (dir, tag) = split_tag(rest);
            Ok(ImageStore::Layout { dir, tag })
        } else if let Some(rest) = input.strip_prefix("oci-archive:") {
            nonempty(rest)?;
            let (path, tag) = split_tag(rest);
            Ok(ImageStore::OciArchive { path, tag })
        } else if let Some(rest) = input.strip_prefix("docker-archive:") {
            nonempty(rest)?;
            Ok(ImageStore::DockerArchive {
                path: PathBuf::from(rest),
            })
        } else if let Some(rest) = input.strip_prefix("docker-daemon:") {
            nonempty(rest)?;
            Ok(ImageStore::DockerDaemon(rest.to_owned()))
        } else if let Some(rest) = input.strip_prefix("docker://") {
            Ok(ImageStore::Remote(Reference::parse(rest)?))
        } else if input.contains("://") {
            Err(bad("unknown transport; use oci:, oci-archive:, docker-archive:, docker-daemon: or docker://"))
        } else {
            Ok(ImageStore::Remote(Reference::parse(input)?))
        }
    }
}

impl fmt::Display for ImageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tagged = |f: &mut fmt::Formatter<'_>, scheme: &str, p: &Path, t: &Option<String>| {
            write!(f, "{scheme}:{}", p.display())?;
            if let Some(t) = t {
                write!(f, ":{t}")?;
            }
            Ok(())
        };
        match self {
            ImageStore::Remote(r) => write!(f, "docker://{r}"),
            ImageStore::Layout { dir, tag } => tagged(f, "oci", dir, tag),
            ImageStore::OciArchive { path, tag } => tagged(f, "oci-archive", path, tag),
            ImageStore::DockerArchive { path } => write!(f, "docker-archive:{}", path.display()),
            ImageStore::DockerDaemon(i) => write!(f, "docker-daemon:{i}"),
        }
    }
}

/// A manifest as fetched: exact bytes, media type, digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// sha256 of the bytes.
    pub digest: Digest,
}

impl FetchedManifest {
    pub(crate) fn new(bytes: Vec<u8>, declared: Option<&str>) -> Self {
        FetchedManifest {
            media_type: effective_media_type(declared, &bytes),
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// A descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::for_bytes(&self.media_type, &self.bytes)
    }
}

/// The read side of a copy.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Remote {
        client: RegistryClient,
        reference: Reference,
    },
    Layout {
        reader: LayoutReader,
        tag: Option<String>,
    },
    /// A legacy `docker save` archive, presented as one OCI image.
    Legacy {
        files: Files,
        manifest: Vec<u8>,
        paths: HashMap<Digest, String>,
        tag: Option<String>,
    },
}

impl Source {
    pub(crate) async fn open(
        client: &RegistryClient,
        store: &ImageStore,
    ) -> Result<Source, RegistryError> {
        match store {
            ImageStore::Remote(r) => Ok(Source::Remote {
                client: client.clone(),
                reference: r.clone(),
            }),
            ImageStore::Layout { dir, tag } => {
                if tokio::fs::metadata(dir.join("index.json")).await.is_err() {
                    return Err(RegistryError::NotFound {
                        what: format!("an OCI layout at {} (no index.json)", dir.display()),
                    });
                }
                Ok(Source::Layout {
                    reader: LayoutReader {
                        files: Files::Dir(dir.clone()),
                    },
                    tag: tag.clone(),
                })
            }
            ImageStore::OciArchive { path, tag } => Ok(Source::Layout {
                reader: LayoutReader {
                    files: Files::tar(path).await?,
                },
                tag: tag.clone(),
            }),
            ImageStore::DockerArchive { path } => {
                let files = Files::tar(path).await?;
                if files.size("index.json").await.is_some() {
                    // Docker 25+: an OCI layout inside
                    return Ok(Source::Layout {
                        reader: LayoutReader { files },
                        tag: None,
                    });
                }
                legacy_archive(files).await
            }
            ImageStore::DockerDaemon(image) => Err(RegistryError::NotImplemented {
                what: format!("reading docker-daemon:{image} (the Docker engine transport)"),
            }),
        }
    }

    /// The tag the source names, if any (a destination without a tag inherits it).
    pub(crate) fn tag(&self) -> Option<String> {
        match self {
            Source::Remote { reference, .. } => reference.tag().map(str::to_owned),
            Source::Layout { tag, .. } | Source::Legacy { tag, .. } => tag.clone(),
        }
    }

    pub(crate) fn remote(&self) -> Option<&Reference> {
        match self {
            Source::Remote { reference, .. } => Some(reference),
            _ => None,
        }
    }

    pub(crate) async fn root(&self) -> Result<FetchedManifest, RegistryError> {
        match self {
            Source::Remote { client, reference } => client.get_manifest(reference).await,
            Source::Layout { reader, tag } => {
                let desc = reader.resolve(tag.as_deref()).await?;
                self.manifest(&desc).await
            }
            Source::Legacy { manifest, .. } => {
                Ok(FetchedManifest::new(manifest.clone(), Some(OCI_MANIFEST)))
            }
        }
    }

    pub(crate) async fn manifest(
        &self,
        desc: &Descriptor,
    ) -> Result<FetchedManifest, RegistryError> {
        match self {
            Source::Remote { client, reference } => {
                let m = client
                    .get_manifest(&reference.with_digest(desc.digest.clone()))
                    .await?;
                Ok(m)
            }
            Source::Layout { reader, .. } => {
                let bytes = reader.read_blob(&desc.digest, MANIFEST_LIMIT).await?;
                Ok(FetchedManifest::new(bytes, Some(&desc.media_type)))
            }
            Source::Legacy { manifest, .. } => {
                let m = FetchedManifest::new(manifest.clone(), Some(OCI_MANIFEST));
                if m.digest != desc.digest {
                    return Err(RegistryError::NotFound {
                        what: format!("manifest {}", desc.digest),
                    });
                }
                Ok(m)
            }
        }
    }

    /// Opens a blob at `offset` (for resuming).
    pub(crate) async fn open_blob(
        &self,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<BlobReader, RegistryError> {
        match self {
            Source::Remote { client, reference } => client.open_blob(reference, desc, offset).await,
            Source::Layout { reader, .. } => reader.open_blob(&desc.digest, offset).await,
            Source::Legacy { files, paths, .. } => {
                let rel = paths
                    .get(&desc.digest)
                    .ok_or_else(|| RegistryError::NotFound {
                        what: format!("blob {} in the archive", desc.digest),
                    })?;
                Ok(files.open_at(rel, offset).await?.0)
            }
        }
    }
}

/// Presents a legacy `docker save` archive (`manifest.json`, `<id>.json`, `<id>/layer.tar`) as
/// an OCI image with uncompressed layers. The generated manifest is deterministic, so the same
/// archive always yields the same digest.
async fn legacy_archive(files: Files) -> Result<Source, RegistryError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<Digest>,
    }
    let what = files.display("manifest.json").display().to_string();
    let bytes = files.read("manifest.json", MANIFEST_LIMIT).await?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::json(&what, e))?;
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(RegistryError::invalid(&what, "it lists no image")),
        many => {
            return Err(RegistryError::invalid(
                &what,
                format!("it lists {} images; save one image per archive", many.len()),
            ))
        }
    };
    let config_bytes = files.read(&entry.config, MANIFEST_LIMIT).await?;
    let config: Config = serde_json::from_slice(&config_bytes)
        .map_err(|e| RegistryError::json(format!("{what}: {}", entry.config), e))?;
    if config.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(RegistryError::invalid(
            &what,
            "the config's rootfs.diff_ids do not match the layer list",
        ));
    }
    let config_desc = Descriptor::for_bytes(OCI_CONFIG, &config_bytes);
    let mut paths = HashMap::new();
    paths.insert(config_desc.digest.clone(), entry.config.clone());
    let mut layers = Vec::new();
    for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let size = files
            .size(path)
            .await
            .ok_or_else(|| RegistryError::NotFound {
                what: files.display(path).display().to_string(),
            })?;
        layers.push(Descriptor {
            media_type: OCI_LAYER_TAR.to_owned(),
            digest: diff_id.clone(),
            size,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
            urls: Vec::new(),
        });
        paths.insert(diff_id.clone(), path.clone());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Some(config_desc),
        layers,
        ..Manifest::default()
    };
    let manifest = serde_json::to_vec(&manifest).map_err(|e| RegistryError::json(&what, e))?;
    let tag = entry
        .repo_tags
        .as_ref()
        .and_then(|t| t.first())
        .and_then(|t| t.rsplit_once(':'))
        .map(|(_, t)| t.to_owned());
    Ok(Source::Legacy {
        files,
        manifest,
        paths,
        tag,
    })
}

/// The write side of a copy.
#[derive(Debug)]
pub(crate) enum Dest {
    Remote {
        client: RegistryClient,
        reference: Reference,
    },
    Layout {
        layout: OciLayout,
        tag: Option<String>,
    },
    /// Staged in a temporary layout, then written as one tarball.
    OciArchive {
        staging: tempfile_dir::TempDir,
        layout: OciLayout,
        path: PathBuf,
        tag: Option<String>,
    },
}

/// A minimal self-deleting temporary directory (no dependency on `tempfile` at runtime).
pub(crate) mod tempfile_dir {
    use std::path::{Path, PathBuf};

    /// Removed on drop.
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new_beside(target: &Path) -> std::io::Result<TempDir> {
            let parent = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = parent.join(format!(".shipline-staging-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Dest {
    pub(crate) async fn open(
        client: &RegistryClient,
        store: &ImageStore,
    ) -> Result<Dest, RegistryError> {
        match store {
            ImageStore::Remote(r) => Ok(Dest::Remote {
                client: client.clone(),
                reference: r.clone(),
            }),
            ImageStore::Layout { dir, tag } => Ok(Dest::Layout {
                layout: OciLayout::create(dir).await?,
                tag: tag.clone(),
            }),
            ImageStore::OciArchive { path, tag } => {
                let staging = tempfile_dir::TempDir::new_beside(path)
                    .map_err(|e| RegistryError::io("create staging directory for", path, e))?;
                let layout = OciLayout::create(&staging.0).await?;
                Ok(Dest::OciArchive {
                    staging,
                    layout,
                    path: path.clone(),
                    tag: tag.clone(),
                })
            }
            ImageStore::DockerArchive { path } => Err(RegistryError::NotImplemented {
                what: format!(
                    "writing docker-archive:{} (use oci-archive: or oci:)",
                    path.display()
                ),
            }),
            ImageStore::DockerDaemon(image) => Err(RegistryError::NotImplemented {
                what: format!("writing docker-daemon:{image} (the Docker engine transport)"),
            }),
        }
    }

    /// Writes the staged archive, if this is one.
    pub(crate) async fn finish(self) -> Result<(), RegistryError> {
        if let Dest::OciArchive { staging, path, .. } = self {
            let path2 = path.clone();
            let src = staging.0.clone();
            tokio::task::spawn_blocking(move || write_tar(&src, &path2))
                .await
                .map_err(|e| {
                    RegistryError::io("write archive", &path, std::io::Error::other(e))
                })??;
            drop(staging);
        }
        Ok(())
    }

    pub(crate) fn layout(&self) -> Option<&OciLayout> {
        match self {
            Dest::Layout { layout, .. } | Dest::OciArchive { layout, .. } => Some(layout),
            Dest::Remote { .. } => None,
        }
    }

    pub(crate) fn tag(&self) -> Option<&str> {
        match self {
            Dest::Remote { reference, .. } => {
                if reference.digest().is_some() {
                    None
                } else {
                    reference.tag()
                }
            }
            Dest::Layout { tag, .. } | Dest::OciArchive { tag, .. } => tag.as_deref(),
        }
    }

    pub(crate) async fn has_blob(&self, desc: &Descriptor) -> Result<bool, RegistryError> {
        match self {
            Dest::Remote { client, reference } => client.blob_exists(reference, &desc.digest).await,
            _ => Ok(match self.layout() {
                Some(l) => l.has_blob(desc).await,
                None => false,
            }),
        }
    }

    pub(crate) async fn put_manifest(
        &self,
        m: &FetchedManifest,
        tag: Option<&str>,
        root: bool,
    ) -> Result<(), RegistryError> {
        match self {
            Dest::Remote { client, reference } => {
                let target = match tag {
                    Some(t) => reference.with_tag(t)?,
                    None => reference.with_digest(m.digest.clone()),
                };
                client
                    .push_manifest_raw(&target, &m.bytes, &m.media_type)
                    .await?;
                Ok(())
            }
            _ => {
                if let Some(layout) = self.layout() {
                    layout
                        .put_manifest(&m.bytes, &m.media_type, tag, root)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

fn write_tar(src: &Path, target: &Path) -> Result<(), RegistryError> {
    let tmp = target.with_file_name(format!(
        ".{}.{:016x}.tmp",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let f = std::fs::File::create(&tmp).map_err(|e| RegistryError::io("create", &tmp, e))?;
        let mut b = tar::Builder::new(f);
        b.mode(tar::HeaderMode::Deterministic);
        for rel in ["oci-layout", "index.json"] {
            b.append_path_with_name(src.join(rel), rel)
                .map_err(|e| RegistryError::io("write archive", &tmp, e))?;
        }
        b.append_dir_all("blobs", src.join("blobs"))
            .map_err(|e| RegistryError::io("write archive", &tmp, e))?;
        let f = b
            .into_inner()
            .map_err(|e| RegistryError::io("write archive", &tmp, e))?;
        f.sync_all()
            .map_err(|e| RegistryError::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, target).map_err(|e| RegistryError::io("rename into place", target, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
