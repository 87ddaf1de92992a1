//! `shipline env`: read and edit env files exactly as Docker Compose reads them.
//!
//! Results go to stdout; notes and warnings to stderr. Secret-looking values never appear in
//! `check`, `diff`, notes or error messages (`get` and `dump` print values: that is their job).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use shipline_core::exit;
use shipline_envfile::{
    self as envfile, Change, Diagnostic, Document, Duplicates, EnvError, SetOptions, Severity,
    Shown, WriteOptions,
};

use crate::{CliError, Global};

/// Arguments of `shipline env`.
#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EnvCommand,
}

/// The `shipline env` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EnvCommand {
    /// Print the effective value of KEY as Compose reads it (last duplicate wins, interpolated).
    Get(GetArgs),
    /// Set KEY=VALUE pairs: edits only the winning line's value, appends missing keys;
    /// locked, atomic, mode and owner kept.
    Set(SetArgs),
    /// Remove every occurrence of KEY.
    Unset(UnsetArgs),
    /// Report what Compose refuses (errors) or reads differently from how it looks (warnings).
    Check(CheckArgs),
    /// Print the effective key/value map as Compose sees it.
    Dump(DumpArgs),
    /// Compare the effective values of two env files (secret values masked).
    Diff(DiffArgs),
}

/// `shipline env get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The env file.
    pub file: PathBuf,
    /// The key.
    pub key: String,
    /// Resolve `${VAR}` against the file only, not the process environment.
    #[arg(long)]
    pub no_process_env: bool,
    /// Print `{"version":1,"key":...,"value":...}` instead of the bare value.
    #[arg(long)]
    pub json: bool,
}

/// `--duplicates` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DuplicatesArg {
    /// Leave earlier occurrences alone (Compose ignores them).
    Keep,
    /// Delete earlier occurrences.
    Remove,
    /// Write the new value into earlier occurrences too.
    Rewrite,
}

/// `shipline env set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The env file (created with mode 0600 if missing, unless --no-create).
    pub file: PathBuf,
    /// KEY=VALUE pairs (the value is taken literally: it will not be interpolated).
    #[arg(required_unless_present = "value_from_stdin", value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    /// Also set KEY to the text read from stdin (one trailing newline removed), so a secret
    /// never appears in the command line.
    #[arg(long, value_name = "KEY")]
    pub value_from_stdin: Option<String>,
    /// Save the previous content to FILE.bak first.
    #[arg(long)]
    pub backup: bool,
    /// Save the previous content to this path first.
    #[arg(long, value_name = "PATH", conflicts_with = "backup")]
    pub backup_to: Option<PathBuf>,
    /// What to do with earlier duplicates of a key.
    #[arg(long, value_enum, default_value_t = DuplicatesArg::Keep)]
    pub duplicates: DuplicatesArg,
    /// Fail if the file does not exist.
    #[arg(long)]
    pub no_create: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `shipline env unset`.
#[derive(Debug, clap::Args)]
pub struct UnsetArgs {
    /// The env file.
    pub file: PathBuf,
    /// Keys to remove.
    #[arg(required = true)]
    pub keys: Vec<String>,
    /// Save the previous content to FILE.bak first.
    #[arg(long)]
    pub backup: bool,
}

/// `shipline env check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The env file.
    pub file: PathBuf,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `shipline env dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// The env file.
    pub file: PathBuf,
    /// JSON output: `{"version":1,"values":{...}}`.
    #[arg(long)]
    pub json: bool,
    /// Resolve `${VAR}` and bare keys against the file only, not the process environment.
    #[arg(long)]
    pub no_process_env: bool,
}

/// `shipline env diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old env file.
    pub a: PathBuf,
    /// The new env file.
    pub b: PathBuf,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Resolve against the files only, not the process environment.
    #[arg(long)]
    pub no_process_env: bool,
    /// Exit 1 when the files differ (like `git diff --exit-code`).
    #[arg(long)]
    pub exit_code: bool,
}

/// Runs `shipline env`.
pub fn run(args: EnvArgs, global: &Global) -> anyhow::Result<i32> {
    match args.command {
        EnvCommand::Get(a) => get(a, global),
        EnvCommand::Set(a) => set(a, global),
        EnvCommand::Unset(a) => unset(a, global),
        EnvCommand::Check(a) => check(a),
        EnvCommand::Dump(a) => dump(a, global),
        EnvCommand::Diff(a) => diff(a, global),
    }
}

/// Maps a library error to the CLI's exit codes: bad input is a usage error (2), the rest a
/// tool error (3). The message carries the whole cause chain (which never holds values).
fn env_error(e: EnvError) -> anyhow::Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    match e {
        EnvError::NotFound { .. }
        | EnvError::NotAFile { .. }
        | EnvError::NotUtf8 { .. }
        | EnvError::Symlink { .. }
        | EnvError::Edit { .. } => CliError::usage(message),
        _ => CliError::tool(message),
    }
}

/// Writes a result to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::tool(format!("failed to write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn lookup(no_process_env: bool) -> &'static dyn Fn(&str) -> Option<String> {
    if no_process_env {
        &no_env
    } else {
        &process_env
    }
}

fn read(path: &Path) -> anyhow::Result<Document> {
    envfile::read_document(path).map_err(env_error)
}

fn warn_problems(global: &Global, path: &Path, doc: &Document) {
    for p in doc.problems() {
        global.warn(format!(
            "{}:{}: {} (Compose refuses this file)",
            path.display(),
            p.line,
            p.kind
        ));
    }
}

fn get(a: GetArgs, global: &Global) -> anyhow::Result<i32> {
    let doc = read(&a.file)?;
    warn_problems(global, &a.file, &doc);
    let eval = doc.evaluate(lookup(a.no_process_env));
    match eval.get(&a.key) {
        Some(v) if a.json => {
            let doc = json!({"version": 1, "key": a.key, "value": v});
            emit(&format!("{doc}\n"))?;
            Ok(exit::OK)
        }
        Some(v) => {
            emit(&format!("{v}\n"))?;
            Ok(exit::OK)
        }
        None => Err(CliError::failed(format!(
            "key {} is not set in {}",
            a.key,
            a.file.display()
        ))),
    }
}

fn backup_path(file: &Path, backup: bool, backup_to: Option<PathBuf>) -> Option<PathBuf> {
    backup_to.or_else(|| {
        backup.then(|| {
            let mut name = file.as_os_str().to_os_string();
            name.push(".bak");
            PathBuf::from(name)
        })
    })
}

fn set(a: SetArgs, global: &Global) -> anyhow::Result<i32> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(a.pairs.len());
    for (i, p) in a.pairs.iter().enumerate() {
        // The argument is not echoed: it may be a secret typed without its `=`.
        let Some((k, v)) = p.split_once('=') else {
            return Err(CliError::usage(format!(
                "expected KEY=VALUE: argument {} after the file has no `=`",
                i + 1
            )));
        };
        pairs.push((k.to_string(), v.to_string()));
    }
    if let Some(key) = &a.value_from_stdin {
        let mut value = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut value).map_err(|e| {
            CliError::usage(format!("failed to read the value of {key} from stdin: {e}"))
        })?;
        let value = value
            .strip_suffix("\r\n")
            .or_else(|| value.strip_suffix('\n'))
            .unwrap_or(&value)
            .to_string();
        pairs.push((key.clone(), value));
    }
    if let Some(dir) = a.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(CliError::usage(format!(
                "failed to edit {}: the directory {} does not exist",
                a.file.display(),
                dir.display()
            )));
        }
    }
    let opts = WriteOptions {
        backup: backup_path(&a.file, a.backup, a.backup_to),
        create: !a.no_create,
        ..WriteOptions::default()
    };
    let set_opts = SetOptions {
        duplicates: match a.duplicates {
            DuplicatesArg::Keep => Duplicates::Keep,
            DuplicatesArg::Remove => Duplicates::Remove,
            DuplicatesArg::Rewrite => Duplicates::Rewrite,
        },
    };
    let out = envfile::set_keys_with(&a.file, &pairs, &set_opts, &opts).map_err(env_error)?;
    let mut keys = Vec::new();
    for ((key, new), (_, old)) in pairs.iter().zip(&out.previous) {
        let action = match old {
            None => "added",
            Some(o) if o == new => "unchanged",
            Some(_) => "updated",
        };
        global.info(format!("{key}: {action}"));
        keys.push(json!({ "key": key, "action": action }));
    }
    if let Some(b) = &out.write.backup {
        global.info(format!("previous content saved to {}", b.display()));
    }
    if !out.write.changed {
        global.info(format!("{}: nothing to change", a.file.display()));
    }
    if a.json {
        let v = json!({
            "version": 1,
            "file": out.write.path,
            "changed": out.write.changed,
            "created": out.write.created,
            "keys": keys,
            "backup": out.write.backup,
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    }
    Ok(exit::OK)
}

fn unset(a: UnsetArgs, global: &Global) -> anyhow::Result<i32> {
    let opts = WriteOptions {
        backup: backup_path(&a.file, a.backup, None),
        ..WriteOptions::default()
    };
    let (removed, out) = envfile::unset_keys(&a.file, &a.keys, &opts).map_err(env_error)?;
    global.info(format!(
        "{}: removed {removed} line(s){}",
        a.file.display(),
        if out.changed { "" } else { " (no change)" }
    ));
    Ok(exit::OK)
}

fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "line": d.line,
        "severity": d.severity.as_str(),
        "code": d.code,
        "message": d.message,
        "key": d.key,
    })
}

fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let diags = envfile::check_file(&a.file).map_err(env_error)?;
    let label = a.file.display().to_string();
    if a.json {
        let errors = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let v = json!({
            "version": 1,
            "file": label,
            "errors": errors,
            "warnings": diags.len() - errors,
            "diagnostics": diags.iter().map(diagnostic_json).collect::<Vec<_>>(),
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        emit(&envfile::render_text(&label, &diags))?;
    }
    Ok(if envfile::fails(&diags, a.strict) {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn dump(a: DumpArgs, global: &Global) -> anyhow::Result<i32> {
    let doc = read(&a.file)?;
    let values = doc.resolve(lookup(a.no_process_env)).map_err(|p| {
        CliError::failed(format!(
            "{}:{}: {}; Compose refuses this file",
            a.file.display(),
            p.line,
            p.kind
        ))
    })?;
    if a.json {
        let map: Map<String, Value> = values
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let v = json!({ "version": 1, "values": map });
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        for (k, v) in values {
            match envfile::format_line(&k, &v) {
                Ok(line) => emit(&format!("{line}\n"))?,
                Err(_) => global.warn(format!("{k}: cannot be written as an env-file line")),
            }
        }
    }
    Ok(exit::OK)
}

fn shown(s: &Option<Shown>) -> Value {
    match s {
        None => Value::Null,
        Some(Shown::Redacted) => Value::String("<redacted>".into()),
        Some(Shown::Value(v)) => Value::String(v.clone()),
    }
}

fn diff(a: DiffArgs, global: &Global) -> anyhow::Result<i32> {
    let (da, db) = (read(&a.a)?, read(&a.b)?);
    warn_problems(global, &a.a, &da);
    warn_problems(global, &a.b, &db);
    let l = lookup(a.no_process_env);
    let entries = envfile::diff(&da.evaluate(l).values, &db.evaluate(l).values);
    if a.json {
        let pick = |c: Change| -> Vec<Value> {
            entries
                .iter()
                .filter(|e| e.change == c)
                .map(|e| match c {
                    Change::Added => json!({ "key": e.key, "value": shown(&e.new) }),
                    Change::Removed => json!({ "key": e.key, "value": shown(&e.old) }),
                    Change::Changed => {
                        json!({ "key": e.key, "old": shown(&e.old), "new": shown(&e.new) })
                    }
                })
                .collect()
        };
        let v = json!({
            "version": 1,
            "added": pick(Change::Added),
            "removed": pick(Change::Removed),
            "changed": pick(Change::Changed),
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        emit(&envfile::render_diff_text(&entries))?;
    }
    Ok(if a.exit_code && !entries.is_empty() {
        exit::FAILED
    } else {
        exit::OK
    })
}
