//! Statements Compose refuses to read, with their line numbers.

use std::fmt;

/// Something in the file that makes Docker Compose refuse it. Messages never contain values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Problem {
    /// 1-based line where the statement (or the quoted value) starts.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The key concerned, when known.
    pub key: Option<String>,
}

/// The kinds of [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case", tag = "kind"))]
pub enum ProblemKind {
    /// A character that is not allowed in a key (Compose allows letters, digits, `_ . - [ ]`).
    UnexpectedCharacter(char),
    /// A key with a space inside (`INVALID LINE`).
    KeyContainsSpace,
    /// `export ` with nothing after it at the end of the file.
    ZeroLength,
    /// A quote that is never closed.
    UnterminatedQuote,
    /// A malformed `${...}`.
    InvalidTemplate,
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing.
    MissingRequired {
        /// The variable.
        var: String,
        /// The message as written in the file.
        reason: String,
    },
}

impl ProblemKind {
    /// A short stable code for the problem, used by `check`.
    pub fn code(&self) -> &'static str {
        match self {
            ProblemKind::UnexpectedCharacter(_) => "invalid-key",
            ProblemKind::KeyContainsSpace => "invalid-key",
            ProblemKind::ZeroLength => "invalid-key",
            ProblemKind::UnterminatedQuote => "unterminated-quote",
            ProblemKind::InvalidTemplate => "malformed-interpolation",
            ProblemKind::MissingRequired { .. } => "missing-required",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::UnexpectedCharacter(c) => {
                write!(f, "unexpected character {c:?} in variable name")
            }
            ProblemKind::KeyContainsSpace => f.write_str("key cannot contain a space"),
            ProblemKind::ZeroLength => f.write_str("zero length string"),
            ProblemKind::UnterminatedQuote => f.write_str("unterminated quoted value"),
            ProblemKind::InvalidTemplate => {
                f.write_str("invalid interpolation template (malformed `${`)")
            }
            ProblemKind::MissingRequired { var, reason } => {
                if reason.is_empty() {
                    write!(f, "required variable {var} is missing a value")
                } else {
                    write!(f, "required variable {var} is missing a value: {reason}")
                }
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl std::error::Error for Problem {}
