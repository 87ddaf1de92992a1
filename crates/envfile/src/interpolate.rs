//! Compose interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`, ...), emulating compose-go's
//! `template.Substitute` exactly, including its regular-expression quirks:
//!
//! - names are `[_a-z][_a-z0-9]*` matched case-insensitively (so Go's case folding also lets
//!   `ſ` and the Kelvin sign `K` through);
//! - `$$` is a literal `$`; a `$` that starts no match (`$1`, a trailing `$`) stays literal;
//! - `${` that does not continue as `name}` or `name<op>...}` on the same line is an error;
//! - for `${name<op>arg}` the regex takes everything up to the *last* `}` on the line, and the
//!   result is then cut at the first balanced `}` (counted the way compose-go counts: the
//!   character after each `{` is skipped); the text after that brace is interpolated again;
//! - the operator right after the name decides: `:-` `-` `:+` `+` `:?` `?`.

/// Why an interpolation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubstError {
    /// A `${` that is not a valid template (Compose: "Invalid template").
    Invalid,
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable unset (or empty for `:?`).
    /// `reason` is the message as written in the file, not interpolated.
    MissingRequired { var: String, reason: String },
}

/// The six operators, in the spelling compose-go uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `:-`: default when unset or empty.
    DefaultEmpty,
    /// `-`: default when unset.
    Default,
    /// `:+`: alternative when set and not empty.
    AltNonEmpty,
    /// `+`: alternative when set.
    Alt,
    /// `:?`: error when unset or empty.
    RequiredNonEmpty,
    /// `?`: error when unset.
    Required,
}

impl Op {
    fn sep_len(self) -> usize {
        match self {
            Op::DefaultEmpty | Op::AltNonEmpty | Op::RequiredNonEmpty => 2,
            Op::Default | Op::Alt | Op::Required => 1,
        }
    }
}

/// One variable reference found by [`scan_refs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    pub name: String,
    /// The operator, if any (`None` for `$X` and `${X}`).
    pub op: Option<Op>,
    /// Whether the reference sits inside another reference's default/alternative/message.
    pub nested: bool,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// What the regex matches at a `$`.
enum Match<'a> {
    /// `$$`.
    Escaped,
    /// `$name`.
    Named(&'a str),
    /// `${name}`.
    Braced(&'a str),
    /// `${name<op>...}`: the whole content up to the first balanced brace, and the rest after it.
    BracedOp {
        name: &'a str,
        op: Op,
        arg: &'a str,
        rest: &'a str,
    },
    /// `${` that is neither: an error.
    Invalid,
}

/// Length of a run of name characters at the start of `s` (in bytes), or 0.
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    for (i, c) in s.char_indices().skip(1) {
        if !is_name_char(c) {
            return i;
        }
    }
    s.len()
}

fn parse_op(s: &str) -> Option<Op> {
    let b = s.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(b':'), Some(b'-')) => Some(Op::DefaultEmpty),
        (Some(b':'), Some(b'+')) => Some(Op::AltNonEmpty),
        (Some(b':'), Some(b'?')) => Some(Op::RequiredNonEmpty),
        (Some(b'-'), _) => Some(Op::Default),
        (Some(b'+'), _) => Some(Op::Alt),
        (Some(b'?'), _) => Some(Op::Required),
        _ => None,
    }
}

/// compose-go's `getFirstBraceClosingIndex`, on bytes.
fn first_brace_closing(s: &[u8]) -> Option<usize> {
    let mut open = 0i64;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if s[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Tries to match at `t` (which starts with `$`). Returns the match and its length in bytes,
/// or `None` when no match starts here (the `$` is literal).
fn match_at(t: &str) -> Option<(Match<'_>, usize)> {
    let after = &t[1..];
    if after.starts_with('$') {
        return Some((Match::Escaped, 2));
    }
    let n = name_len(after);
    if n > 0 {
        return Some((Match::Named(&after[..n]), 1 + n));
    }
    if !after.starts_with('{') {
        return None;
    }
    let inner = &after[1..];
    let n = name_len(inner);
    if n == 0 {
        return Some((Match::Invalid, 2));
    }
    let name = &inner[..n];
    let tail = &inner[n..];
    if tail.starts_with('}') {
        return Some((Match::Braced(name), 2 + n + 1));
    }
    let Some(op) = parse_op(tail) else {
        return Some((Match::Invalid, 2));
    };
    // `(.*)}` greedy: up to the last `}` before a newline.
    let arg_start = 2 + n + op.sep_len();
    let line = &t[arg_start..];
    let line = line.split('\n').next().unwrap_or("");
    let Some(last) = line.rfind('}') else {
        return Some((Match::Invalid, 2));
    };
    let whole_len = arg_start + last + 1;
    let whole = &t[..whole_len];
    let (sub, rest) = match first_brace_closing(whole.as_bytes()) {
        Some(close) => (&whole[..=close], &whole[close + 1..]),
        None => (whole, ""),
    };
    // `sub` is `${name<op>arg}`: the arg is between the operator and the final brace.
    let arg = sub.get(arg_start..sub.len() - 1).unwrap_or("");
    Some((
        Match::BracedOp {
            name,
            op,
            arg,
            rest,
        },
        whole_len,
    ))
}

/// Interpolates `template` the way Compose does. `lookup` answers "is this variable set, and
/// to what". The first error (in text order) wins, as in compose-go.
pub(crate) fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let here = &rest[pos..];
        match match_at(here) {
            None => {
                out.push('$');
                rest = &here[1..];
            }
            Some((m, len)) => {
                match m {
                    Match::Escaped => out.push('$'),
                    Match::Named(name) | Match::Braced(name) => {
                        out.push_str(&lookup(name).unwrap_or_default());
                    }
                    Match::BracedOp {
                        name,
                        op,
                        arg,
                        rest: after,
                    } => {
                        let value = lookup(name);
                        let v = match op {
                            Op::DefaultEmpty => match value {
                                Some(v) if !v.is_empty() => v,
                                _ => substitute(arg, lookup)?,
                            },
                            Op::Default => match value {
                                Some(v) => v,
                                None => substitute(arg, lookup)?,
                            },
                            Op::AltNonEmpty => match value {
                                Some(v) if !v.is_empty() => substitute(arg, lookup)?,
                                other => other.unwrap_or_default(),
                            },
                            Op::Alt => match value {
                                Some(_) => substitute(arg, lookup)?,
                                None => String::new(),
                            },
                            Op::RequiredNonEmpty | Op::Required => match value {
                                Some(v) if op == Op::Required || !v.is_empty() => v,
                                _ => {
                                    return Err(SubstError::MissingRequired {
                                        var: name.to_string(),
                                        reason: arg.to_string(),
                                    })
                                }
                            },
                        };
                        out.push_str(&v);
                        out.push_str(&substitute(after, lookup)?);
                    }
                    Match::Invalid => return Err(SubstError::Invalid),
                }
                rest = &here[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Walks every branch of a template without a lookup: collects every variable reference and
/// reports whether any part (also inside defaults, which Compose only evaluates when taken) is
/// malformed. `top_level_invalid` is set only for errors Compose hits unconditionally.
#[derive(Debug, Default)]
pub(crate) struct RefScan {
    pub refs: Vec<VarRef>,
    pub top_level_invalid: bool,
    pub nested_invalid: bool,
}

pub(crate) fn scan_refs(template: &str) -> RefScan {
    let mut scan = RefScan::default();
    walk(template, false, &mut scan);
    scan
}

fn walk(template: &str, nested: bool, scan: &mut RefScan) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        let here = &rest[pos..];
        match match_at(here) {
            None => rest = &here[1..],
            Some((m, len)) => {
                match m {
                    Match::Escaped => {}
                    Match::Named(name) | Match::Braced(name) => scan.refs.push(VarRef {
                        name: name.to_string(),
                        op: None,
                        nested,
                    }),
                    Match::BracedOp {
                        name,
                        op,
                        arg,
                        rest: after,
                    } => {
                        scan.refs.push(VarRef {
                            name: name.to_string(),
                            op: Some(op),
                            nested,
                        });
                        walk(arg, true, scan);
                        walk(after, nested, scan);
                    }
                    Match::Invalid => {
                        if nested {
                            scan.nested_invalid = true;
                        } else {
                            scan.top_level_invalid = true;
                        }
                    }
                }
                rest = &here[len..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sub(t: &str, vars: &[(&str, &str)]) -> Result<String, SubstError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        substitute(t, &|k| map.get(k).cloned())
    }

    #[test]
    fn plain_forms() {
        assert_eq!(sub("$A ${A} $$A $", &[("A", "x")]).unwrap(), "x x $A $");
        assert_eq!(sub("$1 $-", &[]).unwrap(), "$1 $-");
        assert_eq!(sub("${A}_${B}", &[("A", "1"), ("B", "2")]).unwrap(), "1_2");
        assert_eq!(sub("$A.B", &[("A", "1")]).unwrap(), "1.B");
        assert_eq!(sub("$UNSET!", &[]).unwrap(), "!");
    }

    #[test]
    fn operators() {
        let e = [("E", ""), ("S", "s")];
        assert_eq!(sub("${E:-d}", &e).unwrap(), "d");
        assert_eq!(sub("${E-d}", &e).unwrap(), "");
        assert_eq!(sub("${U-d}", &e).unwrap(), "d");
        assert_eq!(sub("${S:+a}", &e).unwrap(), "a");
        assert_eq!(sub("${E:+a}", &e).unwrap(), "");
        assert_eq!(sub("${E+a}", &e).unwrap(), "a");
        assert_eq!(sub("${U+a}", &e).unwrap(), "");
        assert_eq!(sub("${E?m}", &e).unwrap(), "");
        assert_eq!(
            sub("${E:?need it}", &e),
            Err(SubstError::MissingRequired {
                var: "E".into(),
                reason: "need it".into()
            })
        );
        assert!(sub("${U?}", &e).is_err());
    }

    #[test]
    fn nesting_and_rest() {
        assert_eq!(sub("${A:-${B:-c}}", &[]).unwrap(), "c");
        assert_eq!(sub("${A:-x}_${B}", &[("B", "b")]).unwrap(), "x_b");
        assert_eq!(sub("${A:-{}}", &[]).unwrap(), "{}");
        assert_eq!(sub("${A:-{}", &[]).unwrap(), "{");
        assert_eq!(sub("${A-}}", &[]).unwrap(), "}");
    }

    #[test]
    fn invalid_templates() {
        for t in [
            "${",
            "${}",
            "${A",
            "${A.B}",
            "${A:}",
            "${A:-x",
            "${1}",
            "${A:-x\n}",
        ] {
            assert_eq!(sub(t, &[]), Err(SubstError::Invalid), "{t:?}");
            assert!(scan_refs(t).top_level_invalid, "{t:?}");
        }
        let s = scan_refs("${A:-${}");
        assert!(!s.top_level_invalid);
        assert_eq!(sub("${A:-${}", &[("A", "a")]).unwrap(), "a");
    }

    #[test]
    fn refs_are_collected() {
        let s = scan_refs("$A ${B:-$C} $$D");
        let names: Vec<_> = s.refs.iter().map(|r| (r.name.as_str(), r.nested)).collect();
        assert_eq!(names, [("A", false), ("B", false), ("C", true)]);
    }
}
