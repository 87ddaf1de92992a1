//! The compose-go dotenv corpus: every fixture parses to the values Compose's own tests expect.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::Value;
use shipline_envfile::Document;

fn corpus_dir() -> Option<PathBuf> {
    let shared = match std::env::var_os("SHIPLINE_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    // Accept SHIPLINE_SHARED_DIR pointing at `shared/` or at `shared/corpora/`.
    [
        shared.join("corpora/dotenv/compose-go"),
        shared.join("dotenv/compose-go"),
    ]
    .into_iter()
    .find(|dir| dir.join("expected.json").is_file())
}

fn as_map(v: &Value) -> HashMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one expectation (the main one or a variant) against our reading of `text`.
fn check_case(name: &str, text: &str, case: &Value, failures: &mut Vec<String>) {
    let env = as_map(&case["env"]);
    let lookup = |k: &str| env.get(k).cloned();
    let doc = Document::parse(text);
    assert_eq!(doc.render(), text, "{name}: round trip must be byte-exact");
    let result = doc.resolve(&lookup);
    if case["error"].as_bool() == Some(true) {
        match result {
            Ok(_) => failures.push(format!("{name}: expected a parse error, got values")),
            Err(p) => {
                let want = case["error_contains"].as_str().unwrap_or("");
                if !p.to_string().contains(want) {
                    failures.push(format!("{name}: error {p:?} does not contain {want:?}"));
                }
            }
        }
        return;
    }
    let values: BTreeMap<String, String> = match result {
        Ok(v) => v.into_iter().collect(),
        Err(p) => {
            failures.push(format!("{name}: unexpected error {p}"));
            return;
        }
    };
    let expected = as_map(&case["expected"]);
    for (k, want) in &expected {
        match values.get(k) {
            Some(got) if got == want => {}
            got => failures.push(format!(
                "{name} (env {env:?}): {k} = {got:?}, want {want:?}"
            )),
        }
    }
    if case["exact"].as_bool() == Some(true) {
        // compose-go's Read/ReadWithLookup drop keys starting with a digit (see NOTES.md).
        let ours: Vec<&String> = values
            .keys()
            .filter(|k| !k.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        let mut theirs: Vec<&String> = expected.keys().collect();
        theirs.sort();
        if ours != theirs {
            failures.push(format!("{name}: keys {ours:?}, want exactly {theirs:?}"));
        }
    }
    for k in case["absent"].as_array().into_iter().flatten() {
        let k = k.as_str().unwrap_or_default();
        if values.contains_key(k) {
            failures.push(format!("{name}: {k} must be absent"));
        }
    }
}

#[test]
fn compose_go_corpus() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP: compose-go dotenv corpus not found (set SHIPLINE_SHARED_DIR or place shared/ beside the clone)");
        return;
    };
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("read expected.json"),
    )
    .expect("expected.json is JSON");
    let cases = expected.as_object().expect("object of fixtures");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, case) in cases {
        let text = std::fs::read_to_string(dir.join(name)).expect("read fixture");
        check_case(name, &text, case, &mut failures);
        checked += 1;
        for variant in case["variants"].as_array().into_iter().flatten() {
            check_case(&format!("{name} (variant)"), &text, variant, &mut failures);
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The NOTES.md items that follow from compose-go's code but are not asserted by its tests.
#[test]
fn compose_go_notes() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP: compose-go dotenv corpus not found");
        return;
    };
    let read = |n: &str| Document::parse(&std::fs::read_to_string(dir.join(n)).expect("read"));
    // 1. GetEnvFromFile keeps the digit-leading key.
    assert_eq!(read("plain.env").get("456").as_deref(), Some("ABC"));
    // 2. The BOM file equals plain.env.
    let bom = read("utf8-bom.env").entries();
    assert_eq!(bom, read("plain.env").entries());
    // 4. invalid1.env fails on line 7 after reading the multi-line value.
    let doc = read("invalid1.env");
    assert_eq!(
        doc.problems()[0].to_string(),
        "line 7: key cannot contain a space"
    );
    assert_eq!(
        doc.get("foo").as_deref(),
        Some("\n  a\n  multine\n  value\n")
    );
    // 8. Unset variables interpolate to "".
    assert_eq!(
        read("substitutions.env").get("OPTION_E").as_deref(),
        Some("")
    );
}

/// The inline cases of compose-go's tests (TestParsing, TestExpanding, the var-expansion tests,
/// parser_test.go), written out here as our own data.
#[test]
fn compose_go_inline_cases() {
    let cases: &[(&str, &str, &str)] = &[
        ("FOO=bar", "FOO", "bar"),
        ("FOO =bar", "FOO", "bar"),
        ("FOO= bar", "FOO", "bar"),
        ("FOO=\"bar\"", "FOO", "bar"),
        ("FOO='bar'", "FOO", "bar"),
        ("FOO=\"escaped\\\"bar\"", "FOO", "escaped\"bar"),
        ("FOO=\"'d'\"", "FOO", "'d'"),
        ("FOO=\"bar\\nbaz\"", "FOO", "bar\nbaz"),
        ("FOO='bar\\nbaz'", "FOO", "bar\\nbaz"),
        ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
        ("FOO=foobar=", "FOO", "foobar="),
        ("FOO=bar ", "FOO", "bar"),
        ("FOO=\"bar\"  ", "FOO", "bar"),
        ("FOO=bar # this is foo", "FOO", "bar"),
        ("FOO=\"bar#baz\" # comment", "FOO", "bar#baz"),
        ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
        ("FOO=\"bar#baz#bang\" # comment", "FOO", "bar#baz#bang"),
        ("FOO=\"test\"\nBAR=\"test\"", "BAR", "test"),
        ("FOO=a#b", "FOO", "a#b"),
        ("FOO=\"\\\\\"", "FOO", "\\"),
        ("FOO=\"\\$\"", "FOO", "$"),
        ("FOO: bar", "FOO", "bar"),
        ("export OPTION_A='2'", "OPTION_A", "2"),
        ("a[1]=x", "a[1]", "x"),
        ("a.propertyKey=x", "a.propertyKey", "x"),
        ("キー=値", "キー", "値"),
        ("A=1\nB=${A:-2}", "B", "1"),
        ("B=${A:-2}", "B", "2"),
        ("A=\nB=${A-2}", "B", ""),
        ("B=${A-2}", "B", "2"),
        ("A=x\nB=${A:+y}", "B", "y"),
        ("B=${A+y}", "B", ""),
        ("FOO=test\nBAR=\"quote $FOO\"", "BAR", "quote test"),
        ("FOO=test\nBAR='quote $FOO'", "BAR", "quote $FOO"),
        ("FOO=test\nBAR=$$FOO", "BAR", "$FOO"),
        ("FOO=test\nBAR=\"$FOO\\\"$FOO\"", "BAR", "test\"test"),
        ("TAB=a\t#b", "TAB", "a\t#b"),
        // Found by the differential run: a failed octal escape loses its `0`.
        ("O=\"\\0!\"", "O", "\\!"),
    ];
    for (src, key, want) in cases {
        let doc = Document::parse(src);
        assert!(doc.problems().is_empty(), "{src:?}: {:?}", doc.problems());
        assert_eq!(doc.get(key).as_deref(), Some(*want), "{src:?}");
    }
    let errors: &[(&str, &str)] = &[
        ("FOO=\"bar", "unterminated quoted value"),
        ("FOO='bar", "unterminated quoted value"),
        ("%FOO=bar", "unexpected character '%'"),
        ("FOO BAR=x", "key cannot contain a space"),
        ("A=${A", "malformed"),
    ];
    for (src, want) in errors {
        let p = Document::parse(src).resolve(&|_| None).expect_err(src);
        assert!(p.to_string().contains(want), "{src:?}: {p}");
    }
    // The lookup beats the file when interpolating, and `:?` fails without it.
    let doc = Document::parse("A=file\nB=$A\nC=${D:?need D}");
    let env = |k: &str| (k == "A").then(|| "env".to_string());
    let err = doc.resolve(&env).expect_err("D is required");
    assert_eq!(
        err.to_string(),
        "line 3: required variable D is missing a value: need D"
    );
    assert_eq!(doc.get_with("B", &env).as_deref(), Some("env"));
    assert_eq!(doc.get_with("A", &env).as_deref(), Some("file"));
}
