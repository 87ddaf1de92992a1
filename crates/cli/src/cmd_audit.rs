//! `shipline audit`: security audit of compose stacks and their Traefik setup.
//!
//! `shipline audit compose -f FILE...` audits one stack (or several with `--stack`);
//! `shipline audit --config shipline.toml` audits every environment of the config together.
//! Findings go through the same policy gate and renderers as `shipline scan`; the exit code is
//! the gate's (0 pass, 1 findings fail the gate, 3 error), 2 for unreadable or invalid input.

use std::path::{Path, PathBuf};

use shipline_scanners::audit::{audit_stacks, AuditOptions, Profile, StackInput};
use shipline_scanners::gate::gate;
use shipline_scanners::policy::Policy;
use shipline_scanners::render::{render_json, render_markdown, render_sarif, render_table};
use shipline_scanners::ScanReport;

use crate::{CliError, Global};

/// Arguments of `shipline audit`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Audit every environment of this shipline.toml together (as stacks sharing one daemon).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `shipline audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Audit compose files (merged in order, as `docker compose -f ... -f ...` reads them).
    Compose(ComposeArgs),
}

/// Arguments of `shipline audit compose`.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// Compose file; repeat to merge several in order.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Compose project name (`-p`).
    #[arg(short = 'p', long = "project-name", value_name = "PROJECT")]
    pub project: Option<String>,
    /// Env file used for interpolation (default: `.env` beside the first compose file).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Several stacks sharing one daemon: `NAME=FILE[,FILE...]` (enables cross-stack rules).
    #[arg(long = "stack", value_name = "NAME=FILE[,FILE...]")]
    pub stacks: Vec<String>,
    /// Env file of a `--stack`: `NAME=FILE` (default: `.env` beside its first compose file).
    #[arg(long = "stack-env-file", value_name = "NAME=FILE")]
    pub stack_env_files: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options shared by both forms.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Traefik static or dynamic configuration file or directory (YAML or TOML); repeatable.
    #[arg(long = "traefik-config", value_name = "PATH", num_args = 1..)]
    pub traefik_config: Vec<PathBuf>,
    /// Which expectations apply: dev (basic auth + IP allowlist) or prod (security headers).
    /// Default: taken from the stack or environment name when it is dev/prod.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Traefik sits behind a CDN or another proxy.
    #[arg(long)]
    pub behind_cdn: bool,
    /// Gate policy file (TOML or YAML), as for `shipline scan`.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--profile` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Development expectations.
    Dev,
    /// Production expectations.
    Prod,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Dev => Profile::Dev,
            ProfileArg::Prod => Profile::Prod,
        }
    }
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// Versioned JSON (same shape as `shipline scan`).
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// Markdown summary.
    Markdown,
}

/// Runs `shipline audit`.
pub fn run(args: AuditArgs, global: &Global) -> anyhow::Result<i32> {
    match (args.command, args.config) {
        (Some(AuditCommand::Compose(c)), _) => run_compose(c, global),
        (None, Some(config)) => run_config(&config, args.output, global),
        (None, None) => Err(CliError::usage(
            "shipline audit: give `compose -f FILE...` or `--config shipline.toml`",
        )),
    }
}

fn run_compose(args: ComposeArgs, global: &Global) -> anyhow::Result<i32> {
    let profile = args.output.profile.map(Profile::from);
    let mut stacks = Vec::new();
    if !args.files.is_empty() {
        let name = args
            .project
            .clone()
            .unwrap_or_else(|| "default".to_string());
        stacks.push(StackInput {
            profile: profile.or_else(|| Profile::parse(&name)),
            name,
            compose_files: args.files.clone(),
            env_file: args.env_file.clone(),
            project: args.project.clone(),
        });
    } else if args.env_file.is_some() || args.project.is_some() {
        return Err(CliError::usage(
            "--env-file and -p apply to -f FILE; with --stack, each stack uses the .env beside its first file",
        ));
    }
    for spec in &args.stacks {
        let Some((name, files)) = spec.split_once('=') else {
            return Err(CliError::usage(format!(
                "--stack {spec}: expected NAME=FILE[,FILE...]"
            )));
        };
        let files: Vec<PathBuf> = files
            .split(',')
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .collect();
        if name.is_empty() || files.is_empty() {
            return Err(CliError::usage(format!(
                "--stack {spec}: expected NAME=FILE[,FILE...]"
            )));
        }
        stacks.push(StackInput {
            name: name.to_string(),
            profile: profile.or_else(|| Profile::parse(name)),
            compose_files: files,
            env_file: None,
            project: Some(name.to_string()),
        });
    }
    for spec in &args.stack_env_files {
        let stack = spec.split_once('=').and_then(|(name, file)| {
            let s = stacks.iter_mut().find(|s| s.name == name)?;
            Some((s, file))
        });
        match stack {
            Some((s, file)) if !file.is_empty() => s.env_file = Some(PathBuf::from(file)),
            _ => {
                return Err(CliError::usage(format!(
                    "--stack-env-file {spec}: expected NAME=FILE for a NAME given with --stack"
                )))
            }
        }
    }
    if stacks.is_empty() {
        return Err(CliError::usage(
            "shipline audit compose: give at least one -f FILE or --stack NAME=FILE",
        ));
    }
    emit(audit_and_render(&stacks, &args.output, None, global)?)
}

fn run_config(path: &Path, output: OutputArgs, global: &Global) -> anyhow::Result<i32> {
    let config =
        shipline_core::config::Config::load(path).map_err(|e| CliError::usage(format!("{e:#}")))?;
    let stacks = config.audit_stacks(output.profile.map(Profile::from));
    if stacks.is_empty() {
        return Err(CliError::usage(format!(
            "{}: no [environments] to audit",
            path.display()
        )));
    }
    let mut output = output;
    output
        .traefik_config
        .extend(config.scan.audit_traefik_config.iter().cloned());
    if output.policy.is_none() {
        output.policy = config.scan.policy.clone();
    }
    emit(audit_and_render(
        &stacks,
        &output,
        Some(&config.root),
        global,
    )?)
}

/// Prints the rendered results on stdout and returns the exit code.
fn emit((text, code): (String, i32)) -> anyhow::Result<i32> {
    print!("{text}");
    Ok(code)
}

/// Audits, gates and renders: the output text and the gate's exit code.
fn audit_and_render(
    stacks: &[StackInput],
    output: &OutputArgs,
    base: Option<&Path>,
    global: &Global,
) -> anyhow::Result<(String, i32)> {
    let policy = match &output.policy {
        Some(p) => Policy::from_path(p).map_err(|e| CliError::usage(format!("{e:#}")))?,
        None => Policy::default(),
    };
    let base_dir = base
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok());
    let options = AuditOptions {
        // Compose lets the shell environment override the env file; so does the audit.
        environment: std::env::vars().collect(),
        behind_cdn: output.behind_cdn,
        base_dir,
    };
    let result = audit_stacks(stacks, &output.traefik_config, &options)
        .map_err(|e| CliError::usage(shipline_scanners::report::error_chain(&e)))?;
    for w in &result.warnings {
        global.warn(w);
    }
    global.info(format!(
        "audited {} stack(s): {} finding(s)",
        result.stacks.len(),
        result.findings.len()
    ));
    let mut report = ScanReport::new();
    report.add(result.into_scanner_run());
    report.sort();
    let verdict = gate(&report, &policy, None);
    let text = match output.format {
        Format::Table => render_table(&report, &verdict),
        Format::Json => render_json(&report, &verdict),
        Format::Sarif => render_sarif(&report, &verdict),
        Format::Markdown => render_markdown(&report, &verdict),
    };
    crate::gha::publish_findings(global, &report, &verdict, true);
    Ok((text, verdict.exit_code()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, ColorChoice, Command};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audit")
    }

    fn audit(args: &[&str]) -> anyhow::Result<i32> {
        let mut argv = vec!["shipline", "--quiet", "audit"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("arguments parse");
        let Command::Audit(a) = cli.command else {
            panic!("not an audit command");
        };
        run(a, &Global::new(ColorChoice::Never, true))
    }

    fn code(r: anyhow::Result<i32>) -> i32 {
        match r {
            Ok(c) => c,
            Err(e) => e
                .chain()
                .find_map(|c| c.downcast_ref::<CliError>().map(|c| c.code))
                .unwrap_or(-1),
        }
    }

    fn file(rel: &str) -> String {
        fixtures().join(rel).display().to_string()
    }

    #[test]
    fn json_has_the_scan_shape() {
        let output = OutputArgs {
            traefik_config: Vec::new(),
            profile: None,
            behind_cdn: false,
            policy: None,
            format: Format::Json,
        };
        let stacks = [StackInput {
            name: "app".into(),
            compose_files: vec![fixtures().join("rules/SA601/bad/compose.yaml")],
            ..StackInput::default()
        }];
        let global = Global::new(ColorChoice::Never, true);
        let (text, code) = audit_and_render(&stacks, &output, None, &global).expect("audits");
        assert_eq!(code, 1);
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["verdict"], "fail");
        assert_eq!(doc["findings"][0]["rule_id"], "SA601");
        assert_eq!(doc["findings"][0]["tool"], "shipline-audit");
        assert_eq!(doc["scanners"][0]["name"], "shipline-audit");
        assert!(doc["counts"].is_object());
    }

    #[test]
    fn traefik_config_takes_several_paths() {
        let cli = Cli::try_parse_from([
            "shipline",
            "audit",
            "compose",
            "-f",
            "a.yaml",
            "--traefik-config",
            "t.yml",
            "dyn/",
            "--profile",
            "prod",
        ])
        .expect("parses");
        let Command::Audit(AuditArgs {
            command: Some(AuditCommand::Compose(c)),
            ..
        }) = cli.command
        else {
            panic!("not audit compose");
        };
        assert_eq!(c.output.traefik_config.len(), 2);
        assert_eq!(c.output.profile, Some(ProfileArg::Prod));
    }

    #[test]
    fn exit_codes_follow_the_gate() {
        let bad = file("rules/SA601/bad/compose.yaml");
        let good = file("rules/SA601/good/compose.yaml");
        assert_eq!(code(audit(&["compose", "-f", &bad, "--format", "json"])), 1);
        assert_eq!(
            code(audit(&["compose", "-f", &good, "--format", "sarif"])),
            0
        );
    }

    #[test]
    fn broken_input_exits_2_naming_the_file() {
        for case in ["bad-yaml", "unknown-top-level-key", "unreadable-file"] {
            let dir = fixtures().join("errors").join(case);
            let mut args = vec!["compose".to_string()];
            for f in ["compose.yaml", "compose.missing.yaml"] {
                if f == "compose.yaml" || case == "unreadable-file" {
                    args.push("-f".into());
                    args.push(dir.join(f).display().to_string());
                }
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = audit(&argv);
            let msg = r.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(code(r), 2, "{case}");
            assert!(msg.contains("compose"), "{case}: {msg}");
        }
    }

    #[test]
    fn stacks_enable_cross_stack_rules() {
        let dir = fixtures().join("rules/SA702/bad");
        let one = format!("one={}", dir.join("one.yaml").display());
        let two = format!("two={}", dir.join("two.yaml").display());
        assert_eq!(
            code(audit(&["compose", "--stack", &one, "--stack", &two])),
            1
        );
        assert_eq!(code(audit(&["compose", "--stack", &one])), 0);
        assert_eq!(code(audit(&["compose", "--stack", "no-files="])), 2);
        assert_eq!(code(audit(&[])), 2);
    }

    #[test]
    fn config_audits_every_environment_together() {
        let config = file("config/shipline.toml");
        // dev lacks an IP allowlist (SA302) and both environments use `container_name: cache`
        // (SA702, cross-stack): the gate fails.
        assert_eq!(
            code(audit(&["--config", &config, "--format", "markdown"])),
            1
        );
        assert_eq!(code(audit(&["--config", &file("config/missing.toml")])), 2);
    }
}
