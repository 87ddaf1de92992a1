//! `docker save` archives (the legacy format Docker 20.10 writes, and an OCI layout inside as
//! Docker 25+ writes) and oci-archive tarballs.

use std::process::Command;

use shipline_registry::{copy, resolve_digest, CopyOptions, ImageStore};

use crate::support::image::{bytes, make_image};
use crate::support::open_client;
use crate::support::registry::TestRegistry;

fn store(s: &str) -> ImageStore {
    ImageStore::parse(s).unwrap()
}

fn docker(args: &[&str]) -> std::process::Output {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("prerequisite missing: the docker CLI (and a running engine)");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn docker_save_archive_pushes_and_pulls_back() {
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "prerequisite missing: /bin/busybox (Debian package busybox-static)"
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(busybox, ctx.path().join("busybox")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"true\"]\n",
    )
    .unwrap();
    let image = format!("shipline-registry-it:{:x}", rand::random::<u32>());
    docker(&[
        "build",
        "-q",
        "-t",
        &image,
        &ctx.path().display().to_string(),
    ]);
    let tar = ctx.path().join("saved.tar");
    let saved =
        std::panic::catch_unwind(|| docker(&["save", "-o", &tar.display().to_string(), &image]));
    docker(&["rmi", "-f", &image]);
    saved.unwrap();

    let reg = TestRegistry::open();
    let client = open_client();
    let src = store(&format!("docker-archive:{}", tar.display()));
    let local = resolve_digest(&client, &src).await.unwrap();
    let dst = format!("{}/saved/app:1", reg.host);
    let r = copy(&client, &src, &store(&dst), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(r.digest, local, "the pushed digest is the archive's");
    assert_eq!(r.blobs_uploaded, 2, "config and the busybox layer");
    let again = copy(&client, &src, &store(&dst), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!((again.digest, again.bytes_sent), (local.clone(), 0));
    // pull back; the layer is the uncompressed tar docker saved (its digest is the diff_id)
    let out = tempfile::tempdir().unwrap();
    let p = copy(
        &client,
        &store(&dst),
        &store(&format!("oci:{}:1", out.path().display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(p.digest, local);
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("blobs/sha256").join(local.hex())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let blob = std::fs::read(out.path().join("blobs/sha256").join(&layer[7..])).unwrap();
    let mut a = tar::Archive::new(blob.as_slice());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("bin/busybox")),
        "{names:?}"
    );
}

#[tokio::test]
async fn oci_archive_round_trip_and_docker25_style_archive() {
    let reg = TestRegistry::open();
    let client = open_client();
    let src = tempfile::tempdir().unwrap();
    let digest = make_image(
        src.path(),
        "v1",
        &[bytes(1, 70_000), bytes(2, 5)],
        "2024-01-01T00:00:00Z",
    );
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("image.tar");
    let w = copy(
        &client,
        &store(&format!("oci:{}:v1", src.path().display())),
        &store(&format!("oci-archive:{}", file.display())),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(w.digest.as_str(), digest);
    // nothing but the archive is left in the directory (the staging layout is gone)
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("image.tar")]);
    for scheme in ["oci-archive", "docker-archive"] {
        let dst = format!("{}/arch/{scheme}:1", reg.host);
        let r = copy(
            &client,
            &store(&format!("{scheme}:{}", file.display())),
            &store(&dst),
            &CopyOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(r.digest.as_str(), digest, "{scheme}");
    }
}

/// A file that is not a tar archive is refused clearly, without quoting its bytes (the tar
/// parser's own message would echo them, and the file may hold secrets).
#[tokio::test]
async fn a_non_archive_is_refused_without_echoing_it() {
    let work = tempfile::tempdir().unwrap();
    let canary = "CANARY-not-a-tar root:x:0:0:secret-value\n".repeat(40);
    let file = work.path().join("notes.txt");
    std::fs::write(&file, &canary).unwrap();
    let short = work.path().join("short.tar");
    std::fs::write(&short, b"x").unwrap();
    let client = shipline_registry::RegistryClient::new(Default::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    for src in [
        format!("docker-archive:{}", file.display()),
        format!("oci-archive:{}", short.display()),
    ] {
        let err = copy(
            &client,
            &store(&src),
            &store(&format!("oci:{}:x", out.path().display())),
            &CopyOptions::default(),
        )
        .await
        .unwrap_err();
        let msg = error_chain(&err);
        assert!(msg.contains("not a tar archive"), "{src}: {msg}");
        assert!(!msg.contains("secret-value"), "{src}: {msg}");
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
