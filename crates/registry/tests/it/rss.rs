//! Push memory stays flat whatever the layer size: a child process pushes a 1 GiB layer (a
//! sparse file, so it is fast) and a 16 MiB layer; their peak RSS (VmHWM) are compared.
//!
//! The child is this test binary re-executed with `SHIPLINE_RSS_CHILD` set, running only
//! [`rss_child_entry`].

use std::process::Command;

use shipline_registry::{copy, CopyOptions, ImageStore};

use crate::support::registry::TestRegistry;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Not a test of its own: the body of the child process (does nothing without the variable).
#[test]
fn rss_child_entry() {
    let Ok(args) = std::env::var("SHIPLINE_RSS_CHILD") else {
        return;
    };
    let (src, dst) = args.split_once(' ').unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt
        .block_on(copy(
            &crate::support::open_client(),
            &ImageStore::parse(src).unwrap(),
            &ImageStore::parse(dst).unwrap(),
            &CopyOptions::default(),
        ))
        .unwrap();
    println!(
        "RSS_RESULT {} {} {}",
        vm_hwm_kib(),
        report.bytes_sent,
        report.digest
    );
}

/// A layout with one sparse layer of `size` bytes of zeros; the digest is computed by
/// `sha256sum` (fast even in debug builds).
fn sparse_layout(dir: &std::path::Path, size: u64) {
    let tmp = dir.join("layer.tmp");
    std::fs::File::create(&tmp).unwrap().set_len(size).unwrap();
    let out = Command::new("sha256sum")
        .arg(&tmp)
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = crate::support::image::sha(config);
    std::fs::write(dir.join("blobs/sha256").join(&cd[7..]), config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{hex}"), "size": size}],
    });
    let mb = serde_json::to_vec(&manifest).unwrap();
    let md = crate::support::image::sha(&mb);
    std::fs::write(dir.join("blobs/sha256").join(&md[7..]), &mb).unwrap();
    crate::support::image::add_to_index(
        dir,
        "big",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        mb.len(),
        None,
    );
}

fn child_push(src: &str, dst: &str) -> (u64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "rss::rss_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHIPLINE_RSS_CHILD", format!("{src} {dst}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("RSS_RESULT").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    let parts: Vec<&str> = line.split_whitespace().collect();
    (parts[1].parse().unwrap(), parts[2].parse().unwrap())
}

#[test]
fn push_peak_rss_is_flat_for_a_1_gib_layer() {
    let reg = TestRegistry::open();
    let small = tempfile::tempdir().unwrap();
    sparse_layout(small.path(), 16 << 20);
    let big = tempfile::tempdir().unwrap();
    sparse_layout(big.path(), 1 << 30);
    let (rss_small, sent_small) = child_push(
        &format!("oci:{}:big", small.path().display()),
        &format!("{}/rss/small:1", reg.host),
    );
    let (rss_big, sent_big) = child_push(
        &format!("oci:{}:big", big.path().display()),
        &format!("{}/rss/big:1", reg.host),
    );
    assert!(
        sent_small >= 16 << 20 && sent_big >= 1 << 30,
        "{sent_small} {sent_big}"
    );
    eprintln!("peak RSS: 16 MiB layer {rss_small} KiB, 1 GiB layer {rss_big} KiB");
    assert!(
        rss_big < 64 * 1024,
        "peak RSS {rss_big} KiB for a 1 GiB layer exceeds 64 MiB"
    );
    assert!(
        rss_big < rss_small + 16 * 1024,
        "peak RSS grew with the layer: {rss_small} KiB (16 MiB) -> {rss_big} KiB (1 GiB)"
    );
}
