//! The lossless [`Document`]: parse, inspect, evaluate and edit an env file.

use std::collections::HashMap;

use crate::interpolate;
use crate::parse::{self, EntryData, Item, ItemKind};
use crate::problem::{Problem, ProblemKind};
use crate::quote::{self, QuoteStyle};

/// A lookup for variables outside the file (in Compose: the process environment).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A lookup that knows no variables: only the file itself is used.
pub fn no_lookup(_: &str) -> Option<String> {
    None
}

/// Why an edit was refused. Messages name the key, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The key is not one Compose accepts (letters, digits, `_ . - [ ]`, not empty).
    #[error("failed to set key {key:?}: not a valid env file key")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// The value holds a NUL character, which no environment variable can carry.
    #[error("failed to set key {key}: the value contains a NUL character")]
    InvalidValue {
        /// The key.
        key: String,
    },
    /// The edited file would not read back as intended (for example when an unterminated
    /// quote earlier in the file swallows the appended line).
    #[error("failed to set key {key}: the edited file would not read back the new value{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unrepresentable {
        /// The key.
        key: String,
        /// What is in the way, if known.
        hint: Option<String>,
    },
}

/// What to do with earlier occurrences of a key that [`Document::set_with`] sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Duplicates {
    /// Leave them alone (Compose ignores them: the last occurrence wins).
    #[default]
    Keep,
    /// Delete their lines.
    Remove,
    /// Write the new value into them too.
    Rewrite,
}

/// Options of [`Document::set_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Earlier occurrences of the key.
    pub duplicates: Duplicates,
}

/// The result of evaluating a document: effective values and every problem met on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Effective key/values, ordered by the line of the occurrence that wins.
    pub values: Vec<(String, String)>,
    /// Problems (parse errors and interpolation errors), in file order. Compose would refuse
    /// the file if this is not empty.
    pub problems: Vec<Problem>,
}

impl Evaluation {
    /// The effective value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A read-only view of one key occurrence in a [`Document`].
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    text: &'a str,
    item: &'a Item,
    data: &'a EntryData,
}

impl<'a> Entry<'a> {
    /// The key as Compose reads it.
    pub fn key(&self) -> &'a str {
        &self.data.key
    }
    /// 1-based line of the key.
    pub fn line(&self) -> usize {
        self.data.line
    }
    /// How the value is quoted ([`QuoteStyle::Bare`] for a key without `=`).
    pub fn style(&self) -> QuoteStyle {
        self.data.style
    }
    /// Whether the line starts with `export `.
    pub fn is_exported(&self) -> bool {
        self.data.exported
    }
    /// The whole statement as written, with indentation, comment and line ending.
    pub fn raw(&self) -> &'a str {
        &self.text[self.item.span.clone()]
    }
    /// Byte range of the whole statement in [`Document::as_str`].
    pub fn span(&self) -> std::ops::Range<usize> {
        self.item.span.clone()
    }
    /// Byte range of the value as written (quotes included) in [`Document::as_str`]; for a
    /// bare key, the empty range right after the key.
    pub fn value_range(&self) -> std::ops::Range<usize> {
        self.data.value_span.clone()
    }
    /// The value as written, quotes included.
    pub fn raw_value(&self) -> &'a str {
        &self.text[self.data.value_span.clone()]
    }
    /// The compose-go quirk of a bare key on the last line without a final newline, which
    /// Compose reads as the value of the empty key.
    pub fn is_bare_at_eof(&self) -> bool {
        self.data.eof_bare
    }
    pub(crate) fn data(&self) -> &'a EntryData {
        self.data
    }
    pub(crate) fn raw_comment(&self, span: &std::ops::Range<usize>) -> &'a str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

/// An env file, parsed without losing a byte.
///
/// `render()` of an unedited document returns the input exactly. Reading follows Docker
/// Compose v2 (compose-go's `dotenv` package); see the crate documentation.
#[derive(Debug, Clone)]
pub struct Document {
    text: String,
    items: Vec<Item>,
}

/// A comparable summary of the entries, used to verify that an edit changed only what it meant to.
type Signature = Vec<(String, QuoteStyle, String, bool)>;

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(parse::is_key_char)
}

impl Document {
    /// Parses `text`. Never fails: statements Compose would reject are kept verbatim and
    /// reported by [`Document::problems`].
    pub fn parse(text: &str) -> Document {
        Document {
            text: text.to_string(),
            items: parse::parse(text),
        }
    }

    /// The document as text; byte-identical to the input when nothing was edited.
    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The document as text, borrowed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Statements Compose would refuse, whatever the environment: invalid keys, unterminated
    /// quotes, malformed `${`.
    pub fn problems(&self) -> Vec<Problem> {
        self.items
            .iter()
            .filter_map(|item| match &item.kind {
                ItemKind::Invalid(p) => Some(p.clone()),
                ItemKind::Entry(e) => e.problem.clone(),
                ItemKind::Trivia => None,
            })
            .collect()
    }

    /// Every key occurrence, in file order (duplicates included).
    pub fn occurrences(&self) -> impl Iterator<Item = Entry<'_>> {
        self.items.iter().filter_map(|item| match &item.kind {
            ItemKind::Entry(data) => Some(Entry {
                text: &self.text,
                item,
                data,
            }),
            _ => None,
        })
    }

    /// The line ending the file uses: that of its first line (`\n` for a one-line file).
    pub fn line_ending(&self) -> &'static str {
        match self.text.find('\n') {
            Some(i) if i > 0 && self.text.as_bytes()[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        }
    }

    /// Evaluates the file as Compose does, statement by statement: interpolation sees `lookup`
    /// first, then the keys set earlier in the file; a bare `KEY` takes its value from
    /// `lookup`. Unlike Compose, evaluation goes on after a problem (best effort); the problems
    /// are returned alongside.
    pub fn evaluate(&self, lookup: Lookup<'_>) -> Evaluation {
        let mut map: HashMap<String, (String, usize)> = HashMap::new();
        let mut problems = Vec::new();
        for (index, item) in self.items.iter().enumerate() {
            let e = match &item.kind {
                ItemKind::Trivia => continue,
                ItemKind::Invalid(p) => {
                    problems.push(p.clone());
                    continue;
                }
                ItemKind::Entry(e) => e,
            };
            if let Some(p) = &e.problem {
                problems.push(p.clone());
                continue;
            }
            let value = match e.style {
                QuoteStyle::Bare => match lookup(&e.key) {
                    Some(v) => v,
                    None => continue,
                },
                QuoteStyle::Single => e.template.clone(),
                QuoteStyle::Unquoted | QuoteStyle::Double => {
                    let resolve =
                        |k: &str| lookup(k).or_else(|| map.get(k).map(|(v, _)| v.clone()));
                    match interpolate::substitute(&e.template, &resolve) {
                        Ok(v) => v,
                        Err(err) => {
                            let kind = match err {
                                interpolate::SubstError::Invalid => ProblemKind::InvalidTemplate,
                                interpolate::SubstError::MissingRequired { var, reason } => {
                                    ProblemKind::MissingRequired { var, reason }
                                }
                            };
                            problems.push(Problem {
                                line: e.line,
                                kind,
                                key: Some(e.key.clone()),
                            });
                            continue;
                        }
                    }
                }
            };
            map.insert(e.key.clone(), (value, index));
        }
        let mut values: Vec<(String, String, usize)> =
            map.into_iter().map(|(k, (v, i))| (k, v, i)).collect();
        values.sort_by_key(|(_, _, i)| *i);
        Evaluation {
            values: values.into_iter().map(|(k, v, _)| (k, v)).collect(),
            problems,
        }
    }

    /// Exactly what Compose reads: the effective values, or the first problem, which makes
    /// Compose refuse the file.
    pub fn resolve(&self, lookup: Lookup<'_>) -> Result<Vec<(String, String)>, Problem> {
        let eval = self.evaluate(lookup);
        match eval.problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(eval.values),
        }
    }

    /// The effective value of `key` from the file alone (no outside variables): the last
    /// occurrence wins, interpolation resolved against earlier keys. `None` when the key is not
    /// set (or its value cannot be evaluated).
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_with(key, &no_lookup)
    }

    /// [`Document::get`] with outside variables (usually the process environment).
    pub fn get_with(&self, key: &str, lookup: Lookup<'_>) -> Option<String> {
        self.evaluate(lookup)
            .values
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Effective key/values from the file alone, ordered by the line of the winning occurrence.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.evaluate(&no_lookup).values
    }

    /// Whether some line sets `key` (a bare `KEY` line counts).
    pub fn contains_key(&self, key: &str) -> bool {
        self.occurrences()
            .any(|e| e.key() == key && !e.is_bare_at_eof())
    }

    /// Sets `key` to the literal `value` (no interpolation will happen to it): see
    /// [`Document::set_with`]; earlier duplicates are left alone.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        self.set_with(key, value, &SetOptions::default())
    }

    /// Sets `key` to the literal `value`.
    ///
    /// Only the effective (last) occurrence changes, and only the bytes of its value; the
    /// quoting style is kept when it can hold the value, otherwise the safest style is chosen
    /// (unquoted for plain words, single quotes, else double quotes). A missing key is appended
    /// on a new line, using the file's line ending (a missing final newline is added first).
    /// The result is re-parsed and checked before it replaces the document.
    pub fn set_with(&mut self, key: &str, value: &str, opts: &SetOptions) -> Result<(), EditError> {
        if !valid_key(key) {
            return Err(EditError::InvalidKey {
                key: key.to_string(),
            });
        }
        if value.contains('\0') {
            return Err(EditError::InvalidValue {
                key: key.to_string(),
            });
        }
        let occ: Vec<usize> = self.target_items(key);
        let Some((&last, earlier)) = occ.split_last() else {
            return self.append(key, value);
        };
        let candidates = self.candidates(last, value);
        for raw in candidates {
            let mut replace: Vec<(usize, Option<String>)> = vec![(last, Some(raw))];
            for &i in earlier {
                match opts.duplicates {
                    Duplicates::Keep => {}
                    Duplicates::Remove => replace.push((i, None)),
                    Duplicates::Rewrite => {
                        if let Some(r) = self.candidates(i, value).into_iter().next() {
                            replace.push((i, Some(r)));
                        }
                    }
                }
            }
            let text = self.splice(&replace);
            let doc = Document::parse(&text);
            if self.verify(&doc, &self.signature_without(key), key, value) {
                *self = doc;
                return Ok(());
            }
        }
        Err(EditError::Unrepresentable {
            key: key.to_string(),
            hint: self.blocking_hint(),
        })
    }

    /// Removes every occurrence of `key`; returns how many lines were removed.
    pub fn unset(&mut self, key: &str) -> usize {
        let occ = self.target_items(key);
        if occ.is_empty() {
            return 0;
        }
        let replace: Vec<(usize, Option<String>)> = occ.iter().map(|&i| (i, None)).collect();
        let text = self.splice(&replace);
        *self = Document::parse(&text);
        occ.len()
    }

    fn target_items(&self, key: &str) -> Vec<usize> {
        self.items
            .iter()
            .enumerate()
            .filter(
                |(_, item)| matches!(&item.kind, ItemKind::Entry(e) if e.key == key && !e.eof_bare),
            )
            .map(|(i, _)| i)
            .collect()
    }

    /// Replacement texts for item `i` carrying `value`, best first.
    fn candidates(&self, i: usize, value: &str) -> Vec<String> {
        let item = &self.items[i];
        let ItemKind::Entry(e) = &item.kind else {
            return Vec::new();
        };
        let whole = &self.text[item.span.clone()];
        let vs = e.value_span.start - item.span.start..e.value_span.end - item.span.start;
        let mut encodings: Vec<String> = Vec::new();
        if e.style == QuoteStyle::Bare {
            encodings.extend(quote::encode_auto(value).map(|r| format!("={r}")));
            encodings.extend(quote::encode_double(value).map(|r| format!("={r}")));
        } else {
            encodings.extend(quote::encode_in(e.style, value));
            encodings.extend(quote::encode_auto(value));
            encodings.extend(quote::encode_double(value));
        }
        let mut out: Vec<String> = Vec::new();
        for enc in encodings {
            let raw = format!("{}{}{}", &whole[..vs.start], enc, &whole[vs.end..]);
            if !out.contains(&raw) {
                out.push(raw);
            }
        }
        out
    }

    /// Rebuilds the text with some items replaced (`Some`) or removed (`None`).
    fn splice(&self, replace: &[(usize, Option<String>)]) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        for (i, item) in self.items.iter().enumerate() {
            let whole = &self.text[item.span.clone()];
            match replace.iter().find(|(j, _)| *j == i) {
                None => out.push_str(whole),
                Some((_, Some(r))) => out.push_str(r),
                Some((_, None)) => {
                    // A statement that shares its line with the previous one keeps the line
                    // ending, so the lines around it do not merge.
                    if !out.is_empty() && !out.ends_with('\n') {
                        if whole.ends_with("\r\n") {
                            out.push_str("\r\n");
                        } else if whole.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                }
            }
        }
        out
    }

    fn append(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        let eol = self.line_ending();
        let mut base = self.text.clone();
        if !base.is_empty() && base != "\u{FEFF}" && !base.ends_with('\n') {
            base.push_str(eol);
        }
        let baseline = Document::parse(&base).signature_without(key);
        let encodings = [quote::encode_auto(value), quote::encode_double(value)];
        for enc in encodings.into_iter().flatten() {
            let text = format!("{base}{key}={enc}{eol}");
            let doc = Document::parse(&text);
            if self.verify(&doc, &baseline, key, value) {
                *self = doc;
                return Ok(());
            }
        }
        Err(EditError::Unrepresentable {
            key: key.to_string(),
            hint: self.blocking_hint(),
        })
    }

    fn signature_without(&self, key: &str) -> Signature {
        self.occurrences()
            .filter(|e| e.key() != key || e.is_bare_at_eof())
            .map(|e| {
                (
                    e.key().to_string(),
                    e.style(),
                    e.data.template.clone(),
                    e.is_bare_at_eof(),
                )
            })
            .collect()
    }

    /// The edited document must keep every other entry as it was and read `value` for `key`.
    fn verify(&self, new: &Document, baseline: &Signature, key: &str, value: &str) -> bool {
        if new.signature_without(key) != *baseline {
            return false;
        }
        // An edit may fix a problem (a malformed value replaced), never add one.
        if new.problems().len() > self.problems().len() {
            return false;
        }
        let Some(last) = new
            .occurrences()
            .filter(|e| e.key() == key && !e.is_bare_at_eof())
            .last()
        else {
            return false;
        };
        last.style() != QuoteStyle::Bare && literal_value(&last).as_deref() == Some(value)
    }

    fn blocking_hint(&self) -> Option<String> {
        self.problems()
            .into_iter()
            .next()
            .map(|p| format!("the file has a problem on line {}: {}", p.line, p.kind))
    }
}

/// The value of an occurrence when it involves no variable at all.
fn literal_value(e: &Entry<'_>) -> Option<String> {
    match e.style() {
        QuoteStyle::Single => Some(e.data.template.clone()),
        QuoteStyle::Bare => None,
        QuoteStyle::Unquoted | QuoteStyle::Double => {
            let used = std::cell::Cell::new(false);
            let v = interpolate::substitute(&e.data.template, &|_| {
                used.set(true);
                None
            })
            .ok()?;
            (!used.get()).then_some(v)
        }
    }
}

impl std::fmt::Display for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Document {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Document::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_get() {
        let src = "# c\r\nexport A=1\r\nB = \"x $A\" # note\r\nA=2\r\n";
        let doc = Document::parse(src);
        assert_eq!(doc.render(), src);
        assert_eq!(doc.get("A").as_deref(), Some("2"));
        assert_eq!(doc.get("B").as_deref(), Some("x 1"));
        assert_eq!(doc.line_ending(), "\r\n");
    }

    #[test]
    fn set_edits_last_occurrence_only() {
        let mut doc = Document::parse("IMAGE_TAG=old\nX=1\nIMAGE_TAG=older # keep\n");
        doc.set("IMAGE_TAG", "v2").unwrap();
        assert_eq!(doc.render(), "IMAGE_TAG=old\nX=1\nIMAGE_TAG=v2 # keep\n");
        doc.set_with(
            "IMAGE_TAG",
            "v3",
            &SetOptions {
                duplicates: Duplicates::Remove,
            },
        )
        .unwrap();
        assert_eq!(doc.render(), "X=1\nIMAGE_TAG=v3 # keep\n");
    }

    #[test]
    fn set_appends_with_line_ending() {
        let mut doc = Document::parse("A=1\r\nB=2");
        doc.set("C", "a b").unwrap();
        assert_eq!(doc.render(), "A=1\r\nB=2\r\nC='a b'\r\n");
    }

    #[test]
    fn set_empty_before_comment_quotes() {
        let mut doc = Document::parse("A=x # comment\n");
        doc.set("A", "").unwrap();
        assert_eq!(doc.get("A").as_deref(), Some(""));
        assert!(doc.render().ends_with("# comment\n"));
    }

    #[test]
    fn unset_removes_all() {
        let mut doc = Document::parse("A=1\nB=2\nexport A='3'\n");
        assert_eq!(doc.unset("A"), 2);
        assert_eq!(doc.render(), "B=2\n");
    }

    #[test]
    fn set_repairs_a_broken_value() {
        let mut doc = Document::parse("A=${BROKEN\nB=1\n");
        assert_eq!(doc.problems().len(), 1);
        doc.set("A", "fixed").unwrap();
        assert_eq!(doc.render(), "A=fixed\nB=1\n");
        assert!(doc.problems().is_empty());
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut doc = Document::parse("");
        assert!(doc.set("A B", "x").is_err());
        assert!(doc.set("", "x").is_err());
        assert!(doc.set("A$", "x").is_err());
        assert!(doc.set("A", "x\0").is_err());
    }
}
