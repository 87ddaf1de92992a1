//! `set` changes only the bytes of the edited value, or appends one line: compared as bytes.

use shipline_envfile::{Document, Duplicates, QuoteStyle, SetOptions};

const NEW_VALUES: &[&str] = &[
    "v2",
    "two words",
    "it's $HOME \\ \"q\"",
    "",
    "line1\nline2",
    "#hash",
];

#[test]
fn set_changes_only_the_value_bytes_on_every_fixture() {
    let mut edits = 0;
    for path in super::fixture_files() {
        let text = std::fs::read_to_string(&path).expect("read");
        let doc = Document::parse(&text);
        let keys: Vec<String> = doc
            .occurrences()
            .filter(|e| !e.is_bare_at_eof() && !e.key().is_empty())
            .map(|e| e.key().to_string())
            .collect();
        for key in keys {
            for value in NEW_VALUES {
                let mut edited = doc.clone();
                if edited.set(&key, value).is_err() {
                    // Only a file with a problem may refuse (e.g. an unterminated quote).
                    assert!(!doc.problems().is_empty(), "{}: {key}", path.display());
                    continue;
                }
                let last = doc
                    .occurrences()
                    .filter(|e| e.key() == key && !e.is_bare_at_eof())
                    .last()
                    .expect("occurrence");
                let r = last.value_range();
                let new = edited.render();
                let (prefix, suffix) = (&text.as_bytes()[..r.start], &text.as_bytes()[r.end..]);
                assert!(
                    new.as_bytes().starts_with(prefix) && new.as_bytes().ends_with(suffix),
                    "{}: set {key} changed bytes outside the value:\n{text:?}\n{new:?}",
                    path.display()
                );
                let reparsed = Document::parse(&new);
                assert_eq!(
                    reparsed.get(&key).as_deref(),
                    Some(*value),
                    "{}: {key}",
                    path.display()
                );
                // Every other effective value is unchanged.
                for (k, v) in doc.entries() {
                    let interpolated = doc
                        .occurrences()
                        .any(|e| e.raw_value().contains('$') && e.style() != QuoteStyle::Single);
                    if k != key && !interpolated {
                        assert_eq!(reparsed.get(&k), Some(v), "{}: {k}", path.display());
                    }
                }
                edits += 1;
            }
        }
    }
    assert!(edits > 100, "only {edits} edits");
}

#[test]
fn set_keeps_the_quoting_style_when_possible() {
    let cases = [
        ("A=old\n", "new", "A=new\n"),
        ("A='old'\n", "new value", "A='new value'\n"),
        ("A=\"old\"\n", "new $x", "A=\"new $$x\"\n"),
        ("A='old'\n", "it's", "A='it\\'s'\n"),
        ("A=old # note\n", "two words", "A=two words # note\n"),
        ("A=old\n", "a #b", "A='a #b'\n"),
        ("A=old\n", "x\ny", "A=\"x\\ny\"\n"),
        ("A=old\n", "$5", "A=$$5\n"),
        ("export A = old\n", "new", "export A = new\n"),
        ("A: old\n", "new", "A: new\n"),
        ("A\n", "new", "A=new\n"),
        ("A\r\n", "new", "A=new\r\n"),
        ("A=\n", "new", "A=new\n"),
        ("A=\r\n", "new", "A=new\r\n"),
        ("A=x # c\n", "", "A=\"\" # c\n"),
        ("A=\"a\" B=2\n", "z", "A=\"z\" B=2\n"),
    ];
    for (src, value, want) in cases {
        let mut doc = Document::parse(src);
        doc.set("A", value).expect(src);
        assert_eq!(doc.render(), want, "{src:?} <- {value:?}");
        assert_eq!(doc.get("A").as_deref(), Some(value));
    }
}

#[test]
fn append_adds_exactly_one_line() {
    let cases = [
        ("", "IMAGE_TAG=v1\n"),
        ("A=1\n", "A=1\nIMAGE_TAG=v1\n"),
        ("A=1", "A=1\nIMAGE_TAG=v1\n"),
        ("A=1\r\nB=2", "A=1\r\nB=2\r\nIMAGE_TAG=v1\r\n"),
        ("# only a comment", "# only a comment\nIMAGE_TAG=v1\n"),
        ("\u{FEFF}", "\u{FEFF}IMAGE_TAG=v1\n"),
        ("A='x'", "A='x'\nIMAGE_TAG=v1\n"),
    ];
    for (src, want) in cases {
        let mut doc = Document::parse(src);
        doc.set("IMAGE_TAG", "v1").expect(src);
        assert_eq!(doc.render(), want, "{src:?}");
    }
}

#[test]
fn duplicate_policies() {
    let src = "T=1\nexport T='2'\nX=y\nT=3 # last\n";
    let mut keep = Document::parse(src);
    keep.set("T", "9").unwrap();
    assert_eq!(keep.render(), "T=1\nexport T='2'\nX=y\nT=9 # last\n");
    let mut remove = Document::parse(src);
    let opts = SetOptions {
        duplicates: Duplicates::Remove,
    };
    remove.set_with("T", "9", &opts).unwrap();
    assert_eq!(remove.render(), "X=y\nT=9 # last\n");
    let mut rewrite = Document::parse(src);
    let opts = SetOptions {
        duplicates: Duplicates::Rewrite,
    };
    rewrite.set_with("T", "9", &opts).unwrap();
    assert_eq!(rewrite.render(), "T=9\nexport T='9'\nX=y\nT=9 # last\n");
}

#[test]
fn sed_pitfalls_are_handled() {
    // The shell one-liner edits the first duplicate; Compose reads the last.
    let mut doc = Document::parse("IMAGE_TAG=old\nIMAGE_TAG=stale\n");
    doc.set("IMAGE_TAG", "new").unwrap();
    assert_eq!(doc.get("IMAGE_TAG").as_deref(), Some("new"));
    // `export` lines are edited in place.
    let mut doc = Document::parse("export IMAGE_TAG=old\n");
    doc.set("IMAGE_TAG", "new").unwrap();
    assert_eq!(doc.render(), "export IMAGE_TAG=new\n");
    // A missing key is appended.
    let mut doc = Document::parse("OTHER=1\n");
    doc.set("IMAGE_TAG", "new").unwrap();
    assert_eq!(doc.get("IMAGE_TAG").as_deref(), Some("new"));
}

#[test]
fn unset_removes_every_occurrence_and_nothing_else() {
    let src = "# c\nA=1\nB=2\nexport A='3' # x\nA\nC=\"q\" A=4\nD=5";
    let mut doc = Document::parse(src);
    assert_eq!(doc.unset("A"), 4);
    assert_eq!(doc.render(), "# c\nB=2\nC=\"q\" \nD=5");
    assert_eq!(doc.get("A"), None);
    assert_eq!(doc.unset("A"), 0);
}

#[test]
fn styles_are_reported() {
    let doc = Document::parse("A=1\nB='2'\nC=\"3\"\nD\n");
    let styles: Vec<QuoteStyle> = doc.occurrences().map(|e| e.style()).collect();
    assert_eq!(
        styles,
        [
            QuoteStyle::Unquoted,
            QuoteStyle::Single,
            QuoteStyle::Double,
            QuoteStyle::Bare
        ]
    );
}
