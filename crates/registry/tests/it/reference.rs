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
