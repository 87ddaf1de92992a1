//! Reading and writing values in each quoting style, exactly as compose-go decodes them.

use crate::interpolate;

/// How a value is written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum QuoteStyle {
    /// `KEY=value`: trimmed, cut at ` #`, interpolated, no escapes.
    Unquoted,
    /// `KEY='value'`: literal except `\'`; never interpolated; may span lines.
    Single,
    /// `KEY="value"`: escapes (`\n`, `\t`, `\\`, `\"`, `\$`, ...) then interpolation; may span lines.
    Double,
    /// `KEY` alone on its line: the value comes from the environment, or the key is skipped.
    Bare,
}

/// Scans a quoted value. `src` starts at the opening quote. Returns the decoded characters
/// (before escape expansion and interpolation) and the byte index of the closing quote, or
/// `None` when the quote is never closed. This is compose-go's loop: a backslash before the
/// quote character yields the quote; a backslash before anything else is kept with it.
pub(crate) fn scan_quoted(src: &str) -> Option<(String, usize)> {
    let bytes = src.as_bytes();
    let quote = *bytes.first()?;
    let mut out: Vec<u8> = Vec::new();
    let mut escape = false;
    let mut i = 1;
    while i < bytes.len() {
        let c = bytes[i];
        if c != quote {
            if !escape && c == b'\\' {
                escape = true;
                i += 1;
                continue;
            }
            if escape {
                escape = false;
                out.push(b'\\');
            }
            out.push(c);
            i += 1;
            continue;
        }
        if escape {
            escape = false;
            out.push(c);
            i += 1;
            continue;
        }
        // Only ASCII bytes were removed, so this is valid UTF-8.
        return Some((String::from_utf8_lossy(&out).into_owned(), i));
    }
    None
}

/// compose-go's `expandEscapes` for double-quoted values: `\a \b \f \n \r \t \v \\ \"`, octal
/// `\0ooo`, and `\$` (which becomes `$$`, a literal dollar for the interpolation that follows).
/// Anything else (`\c`, `\x41`) stays as written, except that a failed octal escape loses its
/// `0` (`\0` reads as `\`, `\01` as `\1`), as in compose-go.
pub(crate) fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let here = &rest[pos..];
        let next = here[1..].chars().next();
        let (replacement, used): (Option<String>, usize) = match next {
            Some('$') => (Some("$$".to_string()), 2),
            Some(c @ ('a' | 'b' | 'c' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\\')) => {
                let r = match c {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    _ => None, // `\c`: in the regex class, rejected by strconv.UnquoteChar
                };
                (r.map(String::from), 2)
            }
            Some('0') => {
                let digits: usize = here[2..]
                    .bytes()
                    .take(3)
                    .take_while(u8::is_ascii_digit)
                    .count();
                let d = &here[2..2 + digits];
                // compose-go rewrites `\0ddd` to `\ddd` before unquoting and, when that fails,
                // returns the rewritten text: `\0` becomes `\`, `\01` becomes `\1`.
                let r = octal(d).map_or_else(|| format!("\\{d}"), String::from);
                (Some(r), 2 + digits)
            }
            _ => (None, 1),
        };
        match replacement {
            Some(r) => out.push_str(&r),
            None => out.push_str(&here[..used]),
        }
        rest = &here[used..];
    }
    out.push_str(rest);
    out
}

/// `strconv.UnquoteChar` on `\ddd`: exactly three octal digits, at most 255.
fn octal(d: &str) -> Option<char> {
    if d.len() != 3 || !d.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let v = u32::from_str_radix(d, 8).ok()?;
    if v > 255 {
        return None;
    }
    char::from_u32(v)
}

/// Go's `unicode.IsSpace` minus the line feed: what compose-go treats as blanks on a line.
pub(crate) fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

/// compose-go's `isSpace`: the blanks it skips around keys and after the separator.
pub(crate) fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{A0}')
}

/// Decodes a raw value exactly as compose-go would, without interpolation: returns the
/// template (for unquoted and double-quoted values) or the literal (single-quoted).
pub(crate) fn decode(style: QuoteStyle, raw: &str) -> Option<String> {
    match style {
        QuoteStyle::Unquoted | QuoteStyle::Bare => Some(raw.to_string()),
        QuoteStyle::Single => {
            let (v, end) = scan_quoted(raw)?;
            (end + 1 == raw.len()).then_some(v)
        }
        QuoteStyle::Double => {
            let (v, end) = scan_quoted(raw)?;
            (end + 1 == raw.len()).then(|| expand_escapes(&v))
        }
    }
}

/// The literal value a raw value stands for, if it involves no variable at all.
fn literal(style: QuoteStyle, raw: &str) -> Option<String> {
    let t = decode(style, raw)?;
    match style {
        QuoteStyle::Single => Some(t),
        _ => {
            let used = std::cell::Cell::new(false);
            let v = interpolate::substitute(&t, &|_| {
                used.set(true);
                None
            })
            .ok()?;
            (!used.get()).then_some(v)
        }
    }
}

fn has_bad_control(value: &str, allow_newline: bool) -> bool {
    value.chars().any(|c| {
        (c.is_control() && !(c == '\t' || (allow_newline && c == '\n')))
            || c == '\u{2028}'
            || c == '\u{2029}'
    })
}

/// Encodes `value` as an unquoted value, if that can be done safely: nothing Compose would trim,
/// cut or decode differently, and nothing `check` would warn about.
pub(crate) fn encode_unquoted(value: &str) -> Option<String> {
    if has_bad_control(value, false) || value.contains('\t') {
        return None;
    }
    let first = value.chars().next();
    let last = value.chars().last();
    if first.is_some_and(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '#'))
        || last.is_some_and(char::is_whitespace)
    {
        return None;
    }
    if value.contains('#') && value.contains(|c: char| c.is_whitespace()) {
        let mut prev_ws = false;
        for c in value.chars() {
            if c == '#' && prev_ws {
                return None;
            }
            prev_ws = c.is_whitespace();
        }
    }
    let raw = value.replace('$', "$$");
    (literal(QuoteStyle::Unquoted, &raw).as_deref() == Some(value)).then_some(raw)
}

/// Encodes `value` in single quotes, if it round-trips.
pub(crate) fn encode_single(value: &str) -> Option<String> {
    if has_bad_control(value, true) {
        return None;
    }
    let raw = format!("'{}'", value.replace('\'', "\\'"));
    (literal(QuoteStyle::Single, &raw).as_deref() == Some(value)).then_some(raw)
}

/// Encodes `value` in double quotes; every value can be written this way.
pub(crate) fn encode_double(value: &str) -> Option<String> {
    let mut raw = String::with_capacity(value.len() + 2);
    raw.push('"');
    for c in value.chars() {
        match c {
            '\\' => raw.push_str("\\\\"),
            '"' => raw.push_str("\\\""),
            '$' => raw.push_str("$$"),
            '\n' => raw.push_str("\\n"),
            '\r' => raw.push_str("\\r"),
            '\t' => raw.push('\t'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                raw.push_str(&format!("\\0{:03o}", c as u32));
            }
            c => raw.push(c),
        }
    }
    raw.push('"');
    (literal(QuoteStyle::Double, &raw).as_deref() == Some(value)).then_some(raw)
}

/// Encodes in the given style, if possible.
pub(crate) fn encode_in(style: QuoteStyle, value: &str) -> Option<String> {
    match style {
        QuoteStyle::Unquoted => encode_unquoted(value),
        QuoteStyle::Single => encode_single(value),
        QuoteStyle::Double => encode_double(value),
        QuoteStyle::Bare => None,
    }
}

/// The quoting chosen for a new key (or when the existing style cannot hold the value):
/// unquoted for plain words, single quotes when nothing inside needs escaping, double quotes
/// otherwise.
pub(crate) fn encode_auto(value: &str) -> Option<String> {
    let plain = value.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-' | '.' | ':' | '/' | '@' | '+' | ',' | '=' | '%' | '~' | '^'
            )
    });
    if plain {
        return encode_unquoted(value);
    }
    if !value.contains(['\'', '\\', '\n']) {
        if let Some(raw) = encode_single(value) {
            return Some(raw);
        }
    }
    encode_double(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_handles_escaped_quotes() {
        assert_eq!(scan_quoted(r"'Let\'s go!'"), Some(("Let's go!".into(), 11)));
        assert_eq!(scan_quoted(r#""a\\""#), Some((r"a\\".into(), 4)));
        assert_eq!(scan_quoted(r"'a\'"), None);
        assert_eq!(scan_quoted(r"'\n'"), Some((r"\n".into(), 3)));
    }

    #[test]
    fn escapes_follow_compose() {
        assert_eq!(expand_escapes(r"a\nb\tc\\d"), "a\nb\tc\\d");
        assert_eq!(expand_escapes(r"\$x"), "$$x");
        assert_eq!(expand_escapes(r"\0123"), "S");
        assert_eq!(expand_escapes(r"\01234"), "S4");
        assert_eq!(
            expand_escapes(r"\0 \01 \0999 \c \x41"),
            r"\ \1 \999 \c \x41"
        );
        assert_eq!(expand_escapes(r"\0377"), "\u{FF}");
    }

    #[test]
    fn encoders_round_trip() {
        for v in [
            "",
            "abc",
            "a b",
            "a#b",
            "a $b",
            "it's",
            r"back\slash",
            "x\ny",
            "\u{1}",
            "é",
        ] {
            let d = encode_double(v).expect("double always works");
            assert_eq!(literal(QuoteStyle::Double, &d).as_deref(), Some(v));
            let a = encode_auto(v).expect("auto always works");
            assert!(
                a == d
                    || literal(QuoteStyle::Single, &a).as_deref() == Some(v)
                    || literal(QuoteStyle::Unquoted, &a).as_deref() == Some(v)
            );
        }
        assert_eq!(encode_unquoted("a #b"), None);
        assert_eq!(encode_unquoted("a$b").as_deref(), Some("a$$b"));
        assert_eq!(encode_single(r"ends\"), None);
        assert_eq!(encode_single(r"a\'b"), None);
        assert_eq!(encode_single(r"a\\'b").as_deref(), Some(r"'a\\\'b'"));
    }
}
