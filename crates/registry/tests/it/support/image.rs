//! Synthetic OCI image layouts.

use std::path::Path;

use sha2::{Digest as _, Sha256};

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    d
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes an image manifest with these layers and creation time into a layout (created if
/// needed) and names it `tag`. Returns the manifest digest.
pub fn make_image(dir: &Path, tag: &str, layers: &[Vec<u8>], created: &str) -> String {
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let d = write_blob(dir, l);
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": l.len()})
        })
        .collect();
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layer_descs.iter().map(|d| d["digest"].clone()).collect::<Vec<_>>()},
        "config": {},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(dir, &config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descs,
    });
    // pretty-printed on purpose: a re-serializing client would change the digest
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let digest = write_blob(dir, &manifest_bytes);
    add_to_index(
        dir,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &digest,
        manifest_bytes.len(),
        None,
    );
    digest
}

/// Adds a descriptor to `index.json`, creating the layout files.
pub fn add_to_index(
    dir: &Path,
    tag: &str,
    media_type: &str,
    digest: &str,
    size: usize,
    platform: Option<serde_json::Value>,
) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    let list = index["manifests"].as_array_mut().unwrap();
    list.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != tag);
    let mut desc = serde_json::json!({
        "mediaType": media_type, "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    });
    if let Some(p) = platform {
        desc["platform"] = p;
    }
    list.push(desc);
    std::fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A two-platform index (amd64, arm64) of small images; returns (index digest, [child digests]).
pub fn make_index(dir: &Path, tag: &str) -> (String, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let mut entries = Vec::new();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let d = make_image(
            tmp.path(),
            arch,
            &[bytes(100 + i as u64, 3000), bytes(7, 1000)],
            "2024-01-01T00:00:00Z",
        );
        children.push(d.clone());
        let m = std::fs::read(tmp.path().join("blobs/sha256").join(&d[7..])).unwrap();
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    // copy the blobs over
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for e in std::fs::read_dir(tmp.path().join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let b = serde_json::to_vec(&index).unwrap();
    let d = write_blob(dir, &b);
    add_to_index(
        dir,
        tag,
        "application/vnd.oci.image.index.v1+json",
        &d,
        b.len(),
        None,
    );
    (d, children)
}

/// Files in a directory tree (relative paths), sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
