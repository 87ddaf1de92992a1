//! Property tests: parsing never fails or loses a byte; set -> render -> parse -> get returns
//! exactly the value for arbitrary values, and nothing else changes.

use proptest::prelude::*;
use shipline_envfile::{Document, QuoteStyle};

/// Values with the characters that break naive editors.
fn value() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("#".to_string()),
        Just(" #".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("$".to_string()),
        Just("${".to_string()),
        Just("$$".to_string()),
        Just("}".to_string()),
        Just("\\".to_string()),
        Just("\\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just("=".to_string()),
        Just(":".to_string()),
        Just("é".to_string()),
        Just("🚀".to_string()),
        Just("\u{A0}".to_string()),
        Just("\u{1}".to_string()),
        Just("\\0101".to_string()),
        "[a-zA-Z0-9_./-]{1,6}",
        any::<char>()
            .prop_filter("no NUL", |c| *c != '\0')
            .prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

/// Documents in which `K` appears in various forms (or not at all).
fn base() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("K=old".to_string()),
        Just("export K='old' # note".to_string()),
        Just("K = \"old $A\"".to_string()),
        Just("K".to_string()),
        Just("K: old # c".to_string()),
        Just("K=".to_string()),
        Just("A=1".to_string()),
        Just("B='two words'".to_string()),
        Just("# comment".to_string()),
        Just(String::new()),
        Just("C=\"multi\nline\"".to_string()),
        Just("D=${A:-x}".to_string()),
    ];
    (
        prop::collection::vec(line, 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_nl)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut s = lines.join(eol);
            if final_nl && !s.is_empty() {
                s.push_str(eol);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_and_round_trips(text in "\\PC*") {
        let doc = Document::parse(&text);
        prop_assert_eq!(doc.render(), text);
        let _ = doc.evaluate(&|_| Some("x".to_string()));
        let _ = shipline_envfile::check(&doc);
    }

    #[test]
    fn parse_round_trips_env_like_text(text in "[A-Za-z_ =:'\"#$\\\\{}\\-\n\r\t.]{0,80}") {
        let doc = Document::parse(&text);
        prop_assert_eq!(doc.render(), text);
        let _ = shipline_envfile::check(&doc);
    }

    #[test]
    fn set_then_get_returns_the_value(base in base(), v in value()) {
        let before = Document::parse(&base);
        let mut doc = before.clone();
        doc.set("K", &v).expect("set must succeed on a valid document");
        let text = doc.render();
        let reparsed = Document::parse(&text);
        prop_assert!(reparsed.problems().is_empty(), "problems in {:?}", text);
        // Exactly the value, also with an environment around (it must not be interpolated).
        prop_assert_eq!(reparsed.get("K"), Some(v.clone()));
        let env = |k: &str| Some(format!("env-{k}"));
        let resolved = reparsed.resolve(&env).expect("Compose would read it");
        prop_assert_eq!(resolved.iter().find(|(k, _)| k == "K").map(|(_, v)| v.clone()), Some(v.clone()));
        // Every other key keeps its value (K itself may feed interpolation, so compare those not using it).
        for (k, old) in before.entries() {
            if k != "K" && !k.is_empty() && !base.contains("$K") {
                prop_assert_eq!(reparsed.get(&k), Some(old));
            }
        }
        // Only the winning occurrence's value bytes changed, or one line was appended.
        match before.occurrences().filter(|e| e.key() == "K").last() {
            Some(last) => {
                let r = last.value_range();
                prop_assert!(text.as_bytes().starts_with(&base.as_bytes()[..r.start]));
                prop_assert!(text.as_bytes().ends_with(&base.as_bytes()[r.end..]));
            }
            None => {
                let eol = before.line_ending();
                let mut prefix = base.clone();
                if !prefix.is_empty() && !prefix.ends_with('\n') {
                    prefix.push_str(eol);
                }
                prop_assert!(text.starts_with(&prefix));
                let added = &text[prefix.len()..];
                prop_assert!(added.starts_with("K=") && added.ends_with(eol));
            }
        }
        // The quoting style is kept when the old style can hold the value.
        if let Some(last) = before.occurrences().filter(|e| e.key() == "K").last() {
            let new_style = reparsed.occurrences().filter(|e| e.key() == "K").last().map(|e| e.style());
            if last.style() == QuoteStyle::Double {
                prop_assert_eq!(new_style, Some(QuoteStyle::Double));
            }
        }
    }

    #[test]
    fn unset_removes_the_key_only(base in base()) {
        let before = Document::parse(&base);
        let mut doc = before.clone();
        doc.unset("K");
        prop_assert_eq!(doc.get("K"), None);
        prop_assert!(!doc.contains_key("K"));
        for (k, old) in before.entries() {
            if k != "K" && !k.is_empty() && !base.contains("$K") {
                prop_assert_eq!(doc.get(&k), Some(old));
            }
        }
    }
}
