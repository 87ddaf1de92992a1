//! Snapshot tests over `fixtures/envfile/*.env`: entries, occurrences, problems, check output.

use std::fmt::Write as _;

use shipline_envfile::{check, Document};

/// One readable report per fixture.
fn report(text: &str) -> String {
    let doc = Document::parse(text);
    assert_eq!(doc.render(), text, "round trip must be byte-exact");
    let mut s = String::new();
    let _ = writeln!(s, "== effective values (file only)");
    for (k, v) in doc.entries() {
        let _ = writeln!(s, "{k:?} = {v:?}");
    }
    let _ = writeln!(s, "== occurrences");
    for e in doc.occurrences() {
        let _ = writeln!(
            s,
            "line {}: {:?} {:?}{} raw value {:?}",
            e.line(),
            e.key(),
            e.style(),
            if e.is_exported() { " exported" } else { "" },
            e.raw_value()
        );
    }
    let _ = writeln!(s, "== problems");
    for p in doc.problems() {
        let _ = writeln!(s, "{p}");
    }
    let _ = writeln!(s, "== check");
    s.push_str(&shipline_envfile::render_text("FILE", &check(&doc)));
    s
}

#[test]
fn fixtures_snapshot() {
    insta::glob!("../../../../fixtures/envfile", "*.env", |path| {
        let text = std::fs::read_to_string(path).expect("read fixture");
        insta::assert_snapshot!(report(&text));
    });
}

#[test]
fn fixtures_round_trip_byte_exact() {
    for path in super::fixture_files() {
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert_eq!(
            Document::parse(&text).render().into_bytes(),
            bytes,
            "{}",
            path.display()
        );
    }
}
