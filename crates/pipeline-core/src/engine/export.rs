//! Image export: `docker save` streamed to disk, then converted into an OCI image layout
//! without holding layers in memory.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError, EngineEvent};
use crate::store::atomic_write;

/// The result of an export to an OCI layout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportOutput {
    /// The layout directory.
    pub layout: PathBuf,
    /// The manifest digest (`sha256:...`) recorded in `index.json`.
    pub manifest_digest: String,
    /// The tag recorded as `org.opencontainers.image.ref.name`.
    pub tag: String,
}

/// An image exported into a scratch OCI layout, on its way to another store.
///
/// The directory is removed when this value is dropped, so it never outlives the push that
/// needed it, whether that push succeeds, fails, panics or is cancelled mid-way.
#[derive(Debug)]
pub struct ScratchExport {
    output: ExportOutput,
    _dir: RemoveOnDrop,
}

impl ScratchExport {
    /// What the export produced (layout directory, manifest digest, tag).
    pub fn output(&self) -> &ExportOutput {
        &self.output
    }

    /// The exported image as a copy source.
    pub fn store(&self) -> shipline_registry::ImageStore {
        shipline_registry::ImageStore::Layout {
            dir: self.output.layout.clone(),
            tag: Some(self.output.tag.clone()),
        }
    }
}

/// Removes a directory tree when dropped.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Engine {
    /// Exports `image` into the scratch directory `dir` (replacing whatever is there) as an OCI
    /// layout tagged `tag`; the directory is removed when the returned value is dropped, or at
    /// once if the export fails or is cancelled.
    pub async fn export_scratch(
        &self,
        image: &str,
        dir: PathBuf,
        tag: &str,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<ScratchExport, EngineError> {
        let guard = RemoveOnDrop(dir);
        let _ = std::fs::remove_dir_all(&guard.0);
        let output = self
            .export_oci_layout(image, &guard.0, tag, on_event)
            .await?;
        Ok(ScratchExport {
            output,
            _dir: guard,
        })
    }

    /// Streams `docker save IMAGE` into `dest` (a docker-archive tar), never holding it in memory.
    pub async fn save_image(
        &self,
        image: &str,
        dest: &Path,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<u64, EngineError> {
        let werr = |source| EngineError::Write {
            path: dest.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(werr)?;
        let mut stream = self.docker.export_image(image);
        let mut written = 0u64;
        let mut last_report = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(EngineError::api(format!("export image {image}")))?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(werr)?;
            written += chunk.len() as u64;
            if written - last_report >= 4 << 20 {
                last_report = written;
                on_event(EngineEvent::ExportProgress { bytes: written });
            }
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(werr)?;
        file.sync_all().await.map_err(werr)?;
        on_event(EngineEvent::ExportProgress { bytes: written });
        Ok(written)
    }

    /// Exports `image` into the OCI image layout `layout` (created if missing; an existing
    /// layout gains a manifest), tagging it `tag` in `index.json`. Streamed through a temporary
    /// docker-archive file in the layout directory.
    pub async fn export_oci_layout(
        &self,
        image: &str,
        layout: &Path,
        tag: &str,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<ExportOutput, EngineError> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EngineError::Write { path, source }
        };
        std::fs::create_dir_all(layout.join("blobs/sha256")).map_err(werr(layout))?;
        let archive = layout.join(format!(".shipline-save-{:016x}.tar", rand::random::<u64>()));
        let saved = self.save_image(image, &archive, on_event).await;
        let result = match saved {
            Ok(_) => {
                let (layout2, archive2, image2, tag2) = (
                    layout.to_path_buf(),
                    archive.clone(),
                    image.to_string(),
                    tag.to_string(),
                );
                tokio::task::spawn_blocking(move || {
                    archive_to_layout(&archive2, &layout2, &image2, &tag2)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(EngineError::Archive {
                        image: image.to_string(),
                        message: e.to_string(),
                    })
                })
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&archive);
        let manifest_digest = result?;
        Ok(ExportOutput {
            layout: layout.to_path_buf(),
            manifest_digest,
            tag: tag.to_string(),
        })
    }
}

#[derive(serde::Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Copies `reader` into `blobs/sha256/<digest>` of `layout`, returning (digest hex, size).
fn write_blob(layout: &Path, reader: &mut dyn Read) -> Result<(String, u64), EngineError> {
    let dir = layout.join("blobs/sha256");
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let werr = |source| EngineError::Write {
        path: tmp.clone(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(werr)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(werr)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(werr)?;
        size += n as u64;
    }
    file.sync_all().map_err(werr)?;
    let hex = hex::encode(hasher.finalize());
    std::fs::rename(&tmp, dir.join(&hex)).map_err(werr)?;
    Ok((hex, size))
}

fn write_json_blob(layout: &Path, value: &serde_json::Value) -> Result<(String, u64), EngineError> {
    let bytes = serde_json::to_vec(value).map_err(|e| EngineError::Archive {
        image: String::new(),
        message: e.to_string(),
    })?;
    write_blob(layout, &mut bytes.as_slice())
}

fn archive_to_layout(
    archive: &Path,
    layout: &Path,
    image: &str,
    tag: &str,
) -> Result<String, EngineError> {
    let bad = |message: String| EngineError::Archive {
        image: image.to_string(),
        message,
    };
    let rerr = |source| EngineError::Context {
        path: archive.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(archive).map_err(rerr)?;
    let mut tar = tar::Archive::new(file);
    // archive path -> (digest hex, size)
    let mut blobs: HashMap<String, (String, u64)> = HashMap::new();
    let mut manifest: Option<Vec<SaveManifest>> = None;
    for entry in tar.entries().map_err(rerr)? {
        let mut entry = entry.map_err(rerr)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(rerr)?.to_string_lossy().into_owned();
        if path == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(rerr)?;
            manifest =
                Some(serde_json::from_str(&text).map_err(|e| bad(format!("manifest.json: {e}")))?);
        } else if path.ends_with("/layer.tar")
            || (path.ends_with(".json") && !path.contains('/') && path != "repositories")
        {
            let blob = write_blob(layout, &mut entry)?;
            blobs.insert(path, blob);
        }
    }
    let manifest = manifest
        .and_then(|m| m.into_iter().next())
        .ok_or_else(|| bad("no manifest.json".into()))?;
    let (config_hex, config_size) = blobs
        .get(&manifest.config)
        .cloned()
        .ok_or_else(|| bad(format!("config {} missing", manifest.config)))?;
    let mut layers = Vec::new();
    for l in &manifest.layers {
        let (hex, size) = blobs
            .get(l)
            .cloned()
            .ok_or_else(|| bad(format!("layer {l} missing")))?;
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"),
            "size": size,
        }));
    }
    let oci_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_hex}"),
            "size": config_size,
        },
        "layers": layers,
    });
    let (mhex, msize) = write_json_blob(layout, &oci_manifest)?;
    let digest = format!("sha256:{mhex}");
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| bad(format!("index.json: {e}")))?,
        Err(_) => serde_json::json!({"schemaVersion": 2, "manifests": []}),
    };
    let entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    });
    if let Some(list) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(|v| v.as_str())
                != Some(tag)
        });
        list.push(entry);
    }
    let werr = |path: PathBuf| move |source| EngineError::Write { path, source };
    atomic_write(
        &layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(werr(layout.join("oci-layout")))?;
    let bytes = serde_json::to_vec_pretty(&index).map_err(|e| bad(e.to_string()))?;
    atomic_write(&index_path, &bytes).map_err(werr(index_path.clone()))?;
    Ok(digest)
}
