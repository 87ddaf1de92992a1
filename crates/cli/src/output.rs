//! Shared CLI plumbing: global flags, colour, error reporting and exit-code mapping.

use std::fmt;
use std::io::IsTerminal;

use crate::ColorChoice;

/// Global flags every command sees.
#[derive(Debug, Clone)]
pub struct Global {
    /// Colour on stderr.
    pub color: bool,
    /// `--quiet`: no progress output.
    pub quiet: bool,
    /// stderr is a terminal (progress bars allowed).
    pub stderr_tty: bool,
}

impl Global {
    /// Resolves `--color` against NO_COLOR and the terminal.
    pub fn new(choice: ColorChoice, quiet: bool) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_tty && !no_color,
        };
        Global {
            color,
            quiet,
            stderr_tty,
        }
    }

    /// Prints a progress/log line on stderr unless `--quiet`.
    pub fn info(&self, msg: impl fmt::Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// Prints a warning on stderr (always).
    pub fn warn(&self, msg: impl fmt::Display) {
        if self.color {
            eprintln!("\x1b[33mwarning\x1b[0m: {msg}");
        } else {
            eprintln!("warning: {msg}");
        }
    }
}

/// An error that carries the exit code it must end the process with.
#[derive(Debug)]
pub struct CliError {
    /// One of [`shipline_core::exit`].
    pub code: i32,
    /// The message (what, where, how to fix).
    pub message: String,
}

impl CliError {
    /// Usage or config error (exit 2).
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code: shipline_core::exit::USAGE,
            message: message.into(),
        })
    }
    /// Tool or infrastructure error (exit 3).
    pub fn tool(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code: shipline_core::exit::TOOL,
            message: message.into(),
        })
    }
    /// A failed gate, approval or deploy (exit 1).
    pub fn failed(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code: shipline_core::exit::FAILED,
            message: message.into(),
        })
    }
    /// A command that is not built yet: fails loudly (exit 3), never pretends.
    pub fn not_implemented(what: &str) -> anyhow::Error {
        Self::tool(format!("{what}: not implemented yet"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Prints an error chain on stderr and returns its exit code.
pub fn report_error(global: &Global, err: &anyhow::Error) -> i32 {
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<CliError>().map(|c| c.code))
        .unwrap_or(shipline_core::exit::TOOL);
    let label = if global.color {
        "\x1b[31merror\x1b[0m"
    } else {
        "error"
    };
    eprintln!("{label}: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    code
}
