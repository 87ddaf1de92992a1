//! Rough speed figures for shipline-envfile (not a test; run with
//! `cargo run --release -p shipline-envfile --example envfile_bench`).

use std::time::Instant;

use shipline_envfile::{set_keys, Document, WriteOptions};

fn main() {
    let mut text = String::new();
    for i in 0..5_000 {
        match i % 4 {
            0 => text.push_str(&format!("# section {i}\nKEY_{i}=value-{i}\n")),
            1 => text.push_str(&format!("export KEY_{i}='single {i}' # note\n")),
            2 => text.push_str(&format!("KEY_{i}=\"double ${{KEY_{}}} \\n {i}\"\n", i - 2)),
            _ => text.push_str(&format!("KEY_{i}=${{UNSET:-default-{i}}}\n")),
        }
    }
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        let doc = Document::parse(&text);
        assert_eq!(doc.render().len(), text.len());
    }
    let parse = start.elapsed() / rounds;
    let doc = Document::parse(&text);
    let start = Instant::now();
    for _ in 0..rounds {
        let _ = doc.entries();
    }
    let eval = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut d = doc.clone();
        d.set("KEY_4999", "new").expect("set");
    }
    let set = start.elapsed() / rounds;
    println!(
        "{} lines, {} bytes: parse+render {parse:?}, evaluate {eval:?}, set {set:?}",
        text.lines().count(),
        text.len()
    );

    let dir = std::env::temp_dir().join(format!("envfile-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(".env");
    std::fs::write(&path, "IMAGE_TAG=0\nDB_PASSWORD='x'\n").expect("write");
    let writes = 50;
    let start = Instant::now();
    for i in 0..writes {
        set_keys(
            &path,
            &[("IMAGE_TAG", i.to_string())],
            &WriteOptions::default(),
        )
        .expect("set_keys");
    }
    println!(
        "set_keys (lock + temp + fsync + rename + dir fsync): {:?} per write",
        start.elapsed() / writes
    );
    let _ = std::fs::remove_dir_all(&dir);
}
