//! Reference and location parsing: fixture snapshots and property tests.

use proptest::prelude::*;
use shipline_registry::{ImageStore, Reference};

fn check(input: &str) -> String {
    input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let reference = match Reference::parse(line) {
                Ok(r) => format!(
                    "{r}  [registry={} api={} repo={} tag={:?} digest={}]",
                    r.registry(),
                    r.api_host(),
                    r.repository(),
                    r.tag(),
                    r.digest().map_or("-", |d| d.as_str())
                ),
                Err(e) => format!("error: {e}"),
            };
            let location = match ImageStore::parse(line) {
                Ok(s) => format!("{s}"),
                Err(e) => format!("error: {e}"),
            };
            format!("{line}\n  reference: {reference}\n  location:  {location}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn fixtures() {
    insta::glob!(
        "../../../../fixtures/registry/references",
        "*.txt",
        |path| {
            let input = std::fs::read_to_string(path).unwrap();
            insta::assert_snapshot!(check(&input));
        }
    );
}

proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = Reference::parse(&s);
        let _ = ImageStore::parse(&s);
    }

    #[test]
    fn display_round_trips(
        host in "(ghcr\\.io|localhost:5000|127\\.0\\.0\\.1:[0-9]{2,5}|registry\\.example\\.com)",
        repo in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
    ) {
        let input = match &tag {
            Some(t) => format!("{host}/{repo}:{t}"),
            None => format!("{host}/{repo}"),
        };
        let r = Reference::parse(&input).unwrap();
        let again = Reference::parse(&r.to_string()).unwrap();
        prop_assert_eq!(&r, &again);
        prop_assert_eq!(r.repository(), repo.as_str());
    }
}

fn compare(s: &str) -> Result<(), TestCaseError> {
    let theirs = oci_client::Reference::try_from(s);
    let mine = Reference::parse(s);
    match (&theirs, &mine) {
        (Ok(t), Ok(m)) => {
            prop_assert_eq!(t.registry(), m.registry(), "{}", s);
            prop_assert_eq!(t.repository(), m.repository(), "{}", s);
            prop_assert_eq!(t.tag(), m.tag(), "{}", s);
            prop_assert_eq!(t.digest(), m.digest().map(|d| d.as_str()), "{}", s);
        }
        (Err(_), Ok(m)) => prop_assert!(false, "accepted {s:?} ({m}) which oci-client rejects"),
        (Ok(t), Err(e)) => {
            // stricter on purpose: uppercase repositories (Docker rejects them) and digests
            // other than lowercase sha256
            let upper = t.repository().bytes().any(|b| b.is_ascii_uppercase());
            let odd_digest = t.digest().is_some_and(|d| {
                !d.starts_with("sha256:") || d.bytes().any(|b| b.is_ascii_uppercase())
            });
            let unicode = !s.is_ascii();
            prop_assert!(
                upper || odd_digest || unicode,
                "rejected {s:?} which oci-client accepts: {e}"
            );
        }
        (Err(_), Err(_)) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn agrees_with_oci_client_on_random_strings(s in "[a-zA-Z0-9._:/@-]{1,24}") {
        compare(&s)?;
    }

    #[test]
    fn agrees_with_oci_client_on_structured_references(
        domain in proptest::option::of("(localhost|[a-z0-9-]{1,6}(\\.[a-zA-Z0-9-]{1,5}){0,2})(:[0-9]{1,5})?"),
        path in "[a-z0-9]{1,4}([._-]{1,2}[a-z0-9]{1,3}){0,2}(/[a-z0-9]{1,4}([-_.][a-z0-9]{1,3})?){0,2}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
        digest in proptest::option::of("sha256:[0-9a-f]{64}"),
    ) {
        let mut s = String::new();
        if let Some(d) = &domain {
            s.push_str(d);
            s.push('/');
        }
        s.push_str(&path);
        if let Some(t) = &tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d);
        }
        compare(&s)?;
    }
}
