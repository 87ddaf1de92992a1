//! Splits an env file into items (trivia, entries, invalid statements) that together hold every
//! byte, following compose-go's `dotenv/parser.go` statement by statement.
//!
//! compose-go stops at the first error; this parser records the error on an [`ItemKind::Invalid`]
//! item (the rest of the line, or the rest of the file for an unterminated quote) and goes on,
//! so that a document with a mistake can still be inspected and repaired.

use std::ops::Range;

use crate::interpolate;
use crate::problem::{Problem, ProblemKind};
use crate::quote::{self, is_blank, is_go_space, QuoteStyle};

/// One span of the source.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub span: Range<usize>,
    pub kind: ItemKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    /// Blank lines, comments, the BOM, trailing whitespace.
    Trivia,
    /// A statement Compose rejects.
    Invalid(Problem),
    /// A key with a value (or a bare key).
    Entry(EntryData),
}

#[derive(Debug, Clone)]
pub(crate) struct EntryData {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// Absolute byte range of the raw value, quotes included. Empty for a bare key
    /// (positioned right after the key).
    pub value_span: Range<usize>,
    pub style: QuoteStyle,
    /// Unquoted / double-quoted: the template before interpolation. Single-quoted: the literal.
    pub template: String,
    pub exported: bool,
    /// compose-go quirk: a bare key on the last line without a newline is read as the
    /// *value* of the empty key.
    pub eof_bare: bool,
    /// Non-comment text follows the closing quote on the same line (read as another entry).
    pub text_after_quote: bool,
    /// An interpolation error that Compose hits whatever the environment.
    pub problem: Option<Problem>,
    /// Whether the value as written cuts an inline comment (unquoted only): the byte range of
    /// the cut text (` #...`), absolute.
    pub comment_span: Option<Range<usize>>,
}

impl EntryData {
    fn new(
        key: String,
        line: usize,
        value_span: Range<usize>,
        style: QuoteStyle,
        exported: bool,
    ) -> Self {
        EntryData {
            key,
            line,
            value_span,
            style,
            template: String::new(),
            exported,
            eof_bare: false,
            text_after_quote: false,
            problem: None,
            comment_span: None,
        }
    }
}

/// Go's `unicode.IsLetter`/`unicode.IsNumber`, approximated with Rust's Unicode tables
/// (`is_alphabetic` also accepts a few combining marks Go rejects).
pub(crate) fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphabetic() || c.is_numeric()
}

struct Lines<'a> {
    src: &'a str,
    /// Byte offsets of every `\n`.
    newlines: Vec<usize>,
}

impl Lines<'_> {
    fn line_of(&self, pos: usize) -> usize {
        self.newlines.partition_point(|&n| n < pos) + 1
    }
    /// End of the line containing `pos`, including its `\n` (or the end of the source).
    fn line_end(&self, pos: usize) -> usize {
        match self.src[pos..].find('\n') {
            Some(i) => pos + i + 1,
            None => self.src.len(),
        }
    }
}

/// Parses `src` into items covering it exactly.
pub(crate) fn parse(src: &str) -> Vec<Item> {
    let lines = Lines {
        src,
        newlines: src.match_indices('\n').map(|(i, _)| i).collect(),
    };
    let mut items = Vec::new();
    let mut pos = 0;
    if src.starts_with('\u{FEFF}') {
        items.push(Item {
            span: 0..3,
            kind: ItemKind::Trivia,
        });
        pos = 3;
    }
    while pos < src.len() {
        let rest = &src[pos..];
        let ws = rest.find(|c: char| !is_blank(c)).unwrap_or(rest.len());
        let stmt = pos + ws;
        if stmt == src.len() {
            items.push(trivia(pos..stmt));
            break;
        }
        let next = src[stmt..].chars().next().unwrap_or('\n');
        if next == '\n' {
            items.push(trivia(pos..stmt + 1));
            pos = stmt + 1;
            continue;
        }
        if next == '#' {
            let end = lines.line_end(stmt);
            items.push(trivia(pos..end));
            pos = end;
            continue;
        }
        let (item, end) = statement(&lines, pos, stmt);
        items.push(item);
        pos = end;
    }
    items
}

fn trivia(span: Range<usize>) -> Item {
    Item {
        span,
        kind: ItemKind::Trivia,
    }
}

fn invalid(
    lines: &Lines<'_>,
    start: usize,
    at: usize,
    end: usize,
    kind: ProblemKind,
) -> (Item, usize) {
    (
        Item {
            span: start..end,
            kind: ItemKind::Invalid(Problem {
                line: lines.line_of(at),
                kind,
                key: None,
            }),
        },
        end,
    )
}

/// Parses one statement starting at `stmt` (the item starts at `start`, before the indent).
fn statement(lines: &Lines<'_>, start: usize, stmt: usize) -> (Item, usize) {
    let src = lines.src;
    let line = lines.line_of(stmt);
    let mut p = stmt;
    let mut exported = false;
    // `^export\s+` (RE2 \s: tab, newline, form feed, carriage return, space).
    if src[p..].starts_with("export")
        && src[p + 6..]
            .chars()
            .next()
            .is_some_and(|c| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '))
    {
        exported = true;
        p += 6;
        p += src[p..]
            .find(|c: char| !is_go_space(c))
            .unwrap_or(src.len() - p);
    }
    let key_start = p;
    let mut brk: Option<(usize, char)> = None;
    for (off, c) in src[p..].char_indices() {
        if is_go_space(c) {
            continue;
        }
        match c {
            '=' | ':' | '\n' => {
                brk = Some((p + off, c));
                break;
            }
            c if is_key_char(c) => {}
            c => {
                let end = lines.line_end(stmt);
                return invalid(lines, start, stmt, end, ProblemKind::UnexpectedCharacter(c));
            }
        }
    }
    let Some((sep_at, sep)) = brk else {
        // No separator before the end of the file.
        if key_start == src.len() {
            return invalid(lines, start, stmt, src.len(), ProblemKind::ZeroLength);
        }
        // compose-go: the key stays empty and the whole text becomes its value.
        let text = &src[key_start..];
        let cut = text.find(" #").unwrap_or(text.len());
        let value = text[..cut].trim_end();
        let mut entry = EntryData::new(
            String::new(),
            line,
            key_start..key_start + value.len(),
            QuoteStyle::Unquoted,
            exported,
        );
        entry.template = value.to_string();
        entry.eof_bare = true;
        return (
            Item {
                span: start..src.len(),
                kind: ItemKind::Entry(entry),
            },
            src.len(),
        );
    };
    let key_raw = &src[key_start..sep_at];
    let key = key_raw.trim_end();
    let key_span = key_start..key_start + key.len();
    if key.contains(' ') {
        let end = lines.line_end(stmt);
        return invalid(lines, start, stmt, end, ProblemKind::KeyContainsSpace);
    }
    let key = key.to_string();
    if sep == '\n' {
        let entry = EntryData::new(
            key,
            line,
            key_span.end..key_span.end,
            QuoteStyle::Bare,
            exported,
        );
        return (
            Item {
                span: start..sep_at + 1,
                kind: ItemKind::Entry(entry),
            },
            sep_at + 1,
        );
    }
    // Skip compose-go's `isSpace` after the separator.
    let after_sep = sep_at + 1;
    let skipped = src[after_sep..]
        .find(|c: char| !is_go_space(c))
        .unwrap_or(src.len() - after_sep);
    let v = after_sep + skipped;
    let quote_char = src[v..].chars().next();
    let mut entry = EntryData::new(key, line, v..v, QuoteStyle::Unquoted, exported);
    let end;
    match quote_char {
        Some(q @ ('\'' | '"')) => {
            let Some((chars, close)) = quote::scan_quoted(&src[v..]) else {
                return invalid(lines, start, v, src.len(), ProblemKind::UnterminatedQuote);
            };
            let close = v + close;
            entry.value_span = v..close + 1;
            if q == '"' {
                entry.style = QuoteStyle::Double;
                entry.template = quote::expand_escapes(&chars);
            } else {
                entry.style = QuoteStyle::Single;
                entry.template = chars;
            }
            // Trailer: blanks, then a comment or the newline; anything else starts a new
            // statement on the same line.
            let t = close + 1;
            let blanks = src[t..]
                .find(|c: char| !is_blank(c))
                .unwrap_or(src.len() - t);
            let u = t + blanks;
            end = match src[u..].chars().next() {
                None => src.len(),
                Some('\n') | Some('#') => lines.line_end(u),
                Some(_) => {
                    entry.text_after_quote = true;
                    u
                }
            };
        }
        _ => {
            let line_end = lines.line_end(v);
            let text = src[v..line_end]
                .strip_suffix('\n')
                .unwrap_or(&src[v..line_end]);
            let cut = text.find(" #");
            let value = text[..cut.unwrap_or(text.len())].trim_end();
            if value.is_empty() {
                // Insert new values before a `\r` the separator skip swallowed.
                let insert = src[after_sep..v].find('\r').map_or(v, |i| after_sep + i);
                entry.value_span = insert..insert;
            } else {
                entry.value_span = v..v + value.len();
            }
            if let Some(c) = cut {
                entry.comment_span = Some(v + c..v + text.len());
            }
            entry.template = value.to_string();
            end = line_end;
        }
    }
    if entry.style != QuoteStyle::Single {
        let scan = interpolate::scan_refs(&entry.template);
        if scan.top_level_invalid {
            entry.problem = Some(Problem {
                line,
                kind: ProblemKind::InvalidTemplate,
                key: Some(entry.key.clone()),
            });
        }
    }
    (
        Item {
            span: start..end,
            kind: ItemKind::Entry(entry),
        },
        end,
    )
}
