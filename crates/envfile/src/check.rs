//! `check`: what Compose would refuse (errors) and what it reads differently from how it
//! looks (warnings). Messages never contain values of secret-looking keys.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::document::{Document, Entry};
use crate::error::EnvError;
use crate::interpolate::{self, Op};
use crate::parse::EntryData;
use crate::quote::QuoteStyle;
use crate::secret::{is_secret_key, is_secret_value, placeholder_reason};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Severity {
    /// Compose refuses the file, or it would deploy something clearly wrong.
    Error,
    /// Compose reads it, but probably not as intended.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Diagnostic {
    /// 1-based line (0 for the file as a whole).
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// Stable kebab-case code, e.g. `duplicate-key`.
    pub code: &'static str,
    /// Human-readable explanation (no secret values).
    pub message: String,
    /// The key concerned, if any.
    pub key: Option<String>,
}

fn diag(
    line: usize,
    severity: Severity,
    code: &'static str,
    key: Option<&str>,
    message: String,
) -> Diagnostic {
    Diagnostic {
        line,
        severity,
        code,
        message,
        key: key.map(str::to_string),
    }
}

/// Shows a value in a message unless it may be secret.
fn show(key: &str, value: &str) -> String {
    if is_secret_key(key) || is_secret_value(value) {
        "<redacted>".to_string()
    } else {
        format!("{value:?}")
    }
}

fn portable_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Checks a parsed document (everything except file permissions; see [`check_file`]).
/// Diagnostics are sorted by line, errors first.
pub fn check(doc: &Document) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for p in doc.problems() {
        out.push(diag(
            p.line,
            Severity::Error,
            p.kind.code(),
            p.key.as_deref(),
            format!("{}; Compose refuses the file", p.kind),
        ));
    }
    let entries: Vec<Entry<'_>> = doc.occurrences().collect();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for e in &entries {
        first_line.entry(e.key()).or_insert(e.line());
    }
    let mut defined: HashSet<&str> = HashSet::new();
    for e in &entries {
        check_entry(e, &defined, &first_line, &mut out);
        defined.insert(e.key());
    }
    check_duplicates(&entries, &mut out);
    check_values(doc, &entries, &mut out);
    out.sort_by(|a, b| (a.line, a.severity, a.code).cmp(&(b.line, b.severity, b.code)));
    out
}

fn check_entry(
    e: &Entry<'_>,
    defined: &HashSet<&str>,
    first_line: &HashMap<&str, usize>,
    out: &mut Vec<Diagnostic>,
) {
    let data: &EntryData = e.data();
    let key = e.key();
    let line = e.line();
    if e.is_bare_at_eof() {
        out.push(diag(
            line,
            Severity::Warning,
            "bare-key-at-eof",
            None,
            "a bare key on the last line without a final newline is read by Compose as the value of an empty key, not as a variable from the environment; add a newline".to_string(),
        ));
        return;
    }
    if data.problem.is_some() {
        return;
    }
    if !portable_key(key) {
        let why = if key.starts_with(|c: char| c.is_ascii_digit()) {
            "starts with a digit (compose-go's Read API drops such keys)"
        } else {
            "is not a portable variable name and cannot be used in `${...}`"
        };
        out.push(diag(
            line,
            Severity::Warning,
            "unusual-key",
            Some(key),
            format!("key `{key}` {why}"),
        ));
    }
    if data.text_after_quote {
        out.push(diag(
            line,
            Severity::Warning,
            "text-after-quote",
            Some(key),
            format!("text after the closing quote of `{key}` is not part of the value: Compose reads it as another entry"),
        ));
    }
    if e.style() == QuoteStyle::Unquoted {
        check_unquoted(e, out);
    }
    if matches!(e.style(), QuoteStyle::Unquoted | QuoteStyle::Double) {
        let scan = interpolate::scan_refs(&data.template);
        if scan.nested_invalid {
            out.push(diag(
                line,
                Severity::Error,
                "malformed-interpolation",
                Some(key),
                format!("a default or alternative in `{key}` holds a malformed `${{`; Compose fails when it is used"),
            ));
        }
        let mut seen = HashSet::new();
        for r in scan.refs {
            if defined.contains(r.name.as_str()) || !seen.insert(r.name.clone()) {
                continue;
            }
            let name = &r.name;
            match r.op {
                Some(Op::Default | Op::DefaultEmpty | Op::Alt | Op::AltNonEmpty) => {}
                Some(Op::Required | Op::RequiredNonEmpty) => out.push(diag(
                    line,
                    Severity::Warning,
                    "required-variable",
                    Some(key),
                    format!("`{key}` requires `{name}`, which is not set earlier in the file: Compose fails unless the environment sets it"),
                )),
                None => {
                    let msg = match first_line.get(name.as_str()) {
                        Some(&l) if l > line => format!("`{key}` uses `{name}`, which is set only later (line {l}); Compose resolves variables in file order, so it takes `{name}` from the environment or uses an empty string"),
                        _ => format!("`{key}` uses `{name}`, which is never set in this file; Compose takes it from the environment or uses an empty string"),
                    };
                    out.push(diag(line, Severity::Warning, "undefined-variable", Some(key), msg));
                }
            }
        }
    }
}

fn check_unquoted(e: &Entry<'_>, out: &mut Vec<Diagnostic>) {
    let key = e.key();
    let line = e.line();
    let value = &e.data().template;
    if let Some(span) = &e.data().comment_span {
        let cut = e.raw_comment(span);
        if cut.len() > 2 && !cut[2..].starts_with(char::is_whitespace) && !value.is_empty() {
            out.push(diag(
                line,
                Severity::Warning,
                "inline-comment",
                Some(key),
                format!(
                    "` #` starts a comment: Compose reads `{key}` as {} and drops the rest; quote the value if `#` belongs to it",
                    show(key, value)
                ),
            ));
        }
    }
    let mut prev: Option<char> = None;
    let mut hash_reported = false;
    for c in value.chars() {
        if c == '#' && !hash_reported {
            hash_reported = true;
            let (code, msg) = match prev {
                None => ("hash-value", format!("the value of `{key}` starts with `#`: Compose reads it as the value, not as a comment")),
                Some(p) if p.is_whitespace() => ("tab-before-hash", format!("only a space before `#` starts a comment; Compose keeps the `#...` text in `{key}` (its value is {})", show(key, value))),
                Some(_) => ("hash-in-value", format!("`#` without a space before it is part of the value of `{key}` in Compose (shells and other tools may read a comment); quote the value")),
            };
            out.push(diag(line, Severity::Warning, code, Some(key), msg));
        }
        prev = Some(c);
    }
    if value.contains(['\\']) && value.contains(['n', 't', 'r', '"', '\\', '$']) {
        let escapes = ["\\n", "\\t", "\\r", "\\\"", "\\\\", "\\$"];
        if escapes.iter().any(|s| value.contains(s)) {
            out.push(diag(
                line,
                Severity::Warning,
                "escape-in-unquoted",
                Some(key),
                format!("backslash escapes are not decoded in the unquoted value of `{key}`; use double quotes"),
            ));
        }
    }
    if value.chars().skip(1).any(|c| c == '"' || c == '\'') {
        out.push(diag(
            line,
            Severity::Warning,
            "quote-in-unquoted",
            Some(key),
            format!("the unquoted value of `{key}` contains quote characters, which Compose keeps literally"),
        ));
    }
}

fn check_duplicates(entries: &[Entry<'_>], out: &mut Vec<Diagnostic>) {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for e in entries.iter().filter(|e| !e.is_bare_at_eof()) {
        last.insert(e.key(), e.line());
    }
    for e in entries.iter().filter(|e| !e.is_bare_at_eof()) {
        let win = last.get(e.key()).copied().unwrap_or(e.line());
        if win != e.line() {
            let key = e.key();
            out.push(diag(
                e.line(),
                Severity::Warning,
                "duplicate-key",
                Some(key),
                format!("`{key}` is set again on line {win}; Compose uses the last occurrence (line {win})"),
            ));
        }
    }
}

fn check_values(doc: &Document, entries: &[Entry<'_>], out: &mut Vec<Diagnostic>) {
    let values = doc.entries();
    for (key, value) in &values {
        let Some(e) = entries
            .iter()
            .rev()
            .find(|e| e.key() == key && !e.is_bare_at_eof())
        else {
            continue;
        };
        // Only literal values: a value built from variables depends on the environment.
        let literal = e.style() == QuoteStyle::Single
            || interpolate::scan_refs(&e.data().template).refs.is_empty();
        if !literal || e.style() == QuoteStyle::Bare {
            continue;
        }
        if let Some(reason) = placeholder_reason(key, value) {
            out.push(diag(
                e.line(),
                Severity::Error,
                "placeholder-secret",
                Some(key),
                format!("`{key}` still holds a placeholder ({reason}); set the real value before deploying"),
            ));
        } else if value.is_empty()
            && is_secret_key(key)
            && !key.to_ascii_uppercase().contains("ALLOW")
        {
            out.push(diag(
                e.line(),
                Severity::Warning,
                "empty-secret",
                Some(key),
                format!("`{key}` looks like a secret but is empty"),
            ));
        }
    }
}

/// Checks the permission bits of a file holding secrets: anything wider than 0600 is reported.
pub fn check_mode(doc: &Document, mode: u32) -> Option<Diagnostic> {
    if mode & 0o077 == 0 {
        return None;
    }
    let values = doc.entries();
    let secrets: Vec<&str> = values
        .iter()
        .filter(|(k, v)| !v.is_empty() && (is_secret_key(k) || is_secret_value(v)))
        .map(|(k, _)| k.as_str())
        .collect();
    if secrets.is_empty() {
        return None;
    }
    let mut names = secrets
        .iter()
        .take(3)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if secrets.len() > 3 {
        let _ = write!(names, ", and {} more", secrets.len() - 3);
    }
    Some(diag(
        0,
        Severity::Warning,
        "permissions",
        None,
        format!("file mode {:04o} is wider than 0600 but the file holds secrets ({names}); run chmod 600", mode & 0o7777),
    ))
}

/// Reads and checks a file, including its permission bits.
pub fn check_file(path: &Path) -> Result<Vec<Diagnostic>, EnvError> {
    let doc = crate::file::read_document(path)?;
    let mut out = check(&doc);
    let meta = std::fs::metadata(path).map_err(|source| EnvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(d) = check_mode(&doc, meta.permissions().mode()) {
        out.insert(0, d);
    }
    Ok(out)
}

/// Whether the diagnostics fail a check: any error, or any warning when `strict`.
pub fn fails(diagnostics: &[Diagnostic], strict: bool) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error || strict)
}

/// Renders diagnostics as `file:line: severity[code]: message` lines (`file: ...` for the
/// file as a whole), then a summary line.
pub fn render_text(label: &str, diagnostics: &[Diagnostic]) -> String {
    let mut s = String::new();
    for d in diagnostics {
        let at = if d.line == 0 {
            label.to_string()
        } else {
            format!("{label}:{}", d.line)
        };
        let _ = writeln!(
            s,
            "{at}: {}[{}]: {}",
            d.severity.as_str(),
            d.code,
            d.message
        );
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(s, "{label}: {errors} error(s), {warnings} warning(s)");
    s
}
