//! GitHub Actions workflows generated from `shipline.toml`.
//!
//! One workflow per environment (`shipline-<env>.yml`), triggered by a push to the environment's
//! branch, reproducing the reference pipeline:
//!
//! 1. `build` (GitHub-hosted): build, test and scan with the gate (`shipline run --local`), keep
//!    the SARIF report, push the image to the registry and export `image`, `tag` and `digest` as
//!    job outputs.
//! 2. `code-scanning`: upload the SARIF report to code scanning (even when the gate failed).
//! 3. `deploy` (self-hosted runner labelled with the environment's runner label, one deploy per
//!    environment at a time): `shipline deploy ENV --tag "$TAG" --digest "$DIGEST"`: the runner
//!    pulls exactly the digest the build job pushed and gives it that tag. An environment with
//!    `deploy = "approval"` also runs in a GitHub Environment (`production` for `prod`), whose
//!    protection rule is the human gate; shipline additionally checks the signed approvals for
//!    that digest.
//!
//! Hardening, checked by `zizmor --offline` in the tests: top-level `permissions: {}` and
//! least-privilege permissions per job, actions pinned to full commit SHAs, no `${{ }}` inside
//! `run:` (values pass through `env:`), `persist-credentials: false` on checkout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::CiError;
use crate::config::{Config, DeployMode, Environment};

/// A pinned third-party action: `uses: <name>@<sha> # <version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedAction {
    /// `owner/repo[/path]`.
    pub name: &'static str,
    /// Full 40-hex commit SHA.
    pub sha: &'static str,
    /// The release tag the SHA belongs to (comment only).
    pub version: &'static str,
}

impl PinnedAction {
    fn uses(&self) -> String {
        format!("{}@{} # {}", self.name, self.sha, self.version)
    }
}

/// `actions/checkout` v4.2.2.
pub const CHECKOUT: PinnedAction = PinnedAction {
    name: "actions/checkout",
    sha: "11bd71901bbe5b1630ceea73d27597364c9af683",
    version: "v4.2.2",
};
/// `actions/upload-artifact` v4.6.2.
pub const UPLOAD_ARTIFACT: PinnedAction = PinnedAction {
    name: "actions/upload-artifact",
    sha: "ea165f8d65b6e75b540449e92b4886f43607fa02",
    version: "v4.6.2",
};
/// `actions/download-artifact` v4.3.0.
pub const DOWNLOAD_ARTIFACT: PinnedAction = PinnedAction {
    name: "actions/download-artifact",
    sha: "d3f86a106a0bac45b974a628896c90dbdf5c8093",
    version: "v4.3.0",
};
/// `github/codeql-action/upload-sarif` v4.31.9.
pub const UPLOAD_SARIF: PinnedAction = PinnedAction {
    name: "github/codeql-action/upload-sarif",
    sha: "5d4e8d1aca955e8d8589aabd499c5cae939e33c7",
    version: "v4.31.9",
};

/// Every action the generated workflows use.
pub const PINNED_ACTIONS: [PinnedAction; 4] =
    [CHECKOUT, UPLOAD_ARTIFACT, DOWNLOAD_ARTIFACT, UPLOAD_SARIF];

/// Options of the generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubOptions {
    /// Shell command that installs shipline on GitHub-hosted runners.
    pub install_command: String,
    /// GitHub-hosted runner for the build and scan jobs.
    pub hosted_runner: String,
    /// Self-hosted runner label per environment (default: the environment's name).
    pub runner_labels: BTreeMap<String, String>,
    /// GitHub Environment per environment. Default: approval environments get one (`production`
    /// for `prod`/`production`, else the environment's name); auto-deploy environments none.
    pub github_environments: BTreeMap<String, String>,
}

impl Default for GithubOptions {
    fn default() -> Self {
        GithubOptions {
            install_command: format!(
                "cargo install --locked shipline --version {}",
                env!("CARGO_PKG_VERSION")
            ),
            hosted_runner: "ubuntu-latest".to_string(),
            runner_labels: BTreeMap::new(),
            github_environments: BTreeMap::new(),
        }
    }
}

/// One generated workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// File name inside the workflows directory (`shipline-prod.yml`).
    pub file_name: String,
    /// YAML text.
    pub contents: String,
}

/// Generates one workflow per environment of the config, sorted by file name.
pub fn generate_workflows(
    config: &Config,
    options: &GithubOptions,
) -> Result<Vec<Workflow>, CiError> {
    if config.environments.is_empty() {
        return Err(CiError::NoEnvironments {
            path: config.path.clone(),
        });
    }
    config
        .environments
        .values()
        .map(|env| generate_one(config, env, options))
        .collect()
}

/// Writes workflows into `dir` (atomically, creating it); returns the paths written.
pub fn write_workflows(
    dir: &Path,
    workflows: &[Workflow],
) -> Result<Vec<std::path::PathBuf>, CiError> {
    std::fs::create_dir_all(dir).map_err(|source| CiError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    workflows
        .iter()
        .map(|w| {
            let path = dir.join(&w.file_name);
            crate::store::atomic_write(&path, w.contents.as_bytes()).map_err(|source| {
                CiError::Io {
                    action: "write",
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(path)
        })
        .collect()
}

/// Workflows in `dir` that differ from (or are missing for) the generated ones.
pub fn stale_workflows(dir: &Path, workflows: &[Workflow]) -> Vec<String> {
    workflows
        .iter()
        .filter(|w| {
            std::fs::read_to_string(dir.join(&w.file_name))
                .ok()
                .as_deref()
                != Some(w.contents.as_str())
        })
        .map(|w| w.file_name.clone())
        .collect()
}

fn check_name(what: &'static str, value: &str) -> Result<(), CiError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(CiError::UnsafeName {
            what,
            value: value.to_string(),
        })
    }
}

/// A YAML single-quoted scalar.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn github_environment(env: &Environment, options: &GithubOptions) -> Option<String> {
    if let Some(name) = options.github_environments.get(&env.name) {
        return Some(name.clone());
    }
    match env.deploy {
        DeployMode::Auto => None,
        DeployMode::Approval => Some(match env.name.as_str() {
            "prod" | "production" => "production".to_string(),
            other => other.to_string(),
        }),
    }
}

fn generate_one(
    config: &Config,
    env: &Environment,
    options: &GithubOptions,
) -> Result<Workflow, CiError> {
    check_name("environment name", &env.name)?;
    check_name("branch", &env.branch)?;
    let label = options
        .runner_labels
        .get(&env.name)
        .cloned()
        .unwrap_or_else(|| env.name.clone());
    check_name("runner label", &label)?;
    let gh_env = github_environment(env, options);
    if let Some(e) = &gh_env {
        check_name("GitHub environment", e)?;
    }
    let registry_env = registry_env_lines(config)?;
    let image = &config.image.repository;

    let mut y = String::new();
    // Writing to a String cannot fail; `let _ =` keeps clippy quiet without unwrap.
    let _ = writeln!(
        y,
        "# Generated by `shipline ci github` from shipline.toml: do not edit by hand.\n\
         # Regenerate with `shipline ci github --output .github/workflows`.\n\
         name: {}\n\n\
         on:\n  push:\n    branches:\n      - {}\n\n\
         permissions: {{}}\n\n\
         jobs:",
        q(&format!(
            "shipline {} ({} -> {})",
            config.project.name, env.branch, env.name
        )),
        q(&env.branch),
    );

    // build: build, test, scan, push; exports image/tag/digest.
    let sarif_steps = sarif_steps(config)?;
    let _ = writeln!(
        y,
        r#"  build:
    name: Build, test, scan and push
    runs-on: {runner}
    permissions:
      contents: read # check out the sources
      packages: write # push the image to the registry (GHCR)
    outputs:
      image: ${{{{ steps.push.outputs.image }}}}
      tag: ${{{{ steps.push.outputs.tag }}}}
      digest: ${{{{ steps.push.outputs.digest }}}}
    steps:
      - name: Check out
        uses: {checkout}
        with:
          persist-credentials: false
      - name: Install shipline
        run: {install}
      - name: Build, test and scan (fails on findings over the gate)
        run: shipline run --local --commit "$GITHUB_SHA"
{sarif_steps}      - name: Keep the SARIF reports
        if: ${{{{ !cancelled() }}}}
        uses: {upload}
        with:
          name: shipline-sarif
          path: sarif/
          if-no-files-found: warn
      - name: Push the image by digest
        id: push
        env:
          IMAGE: {image}
{registry_env}        run: |
          tag="$GITHUB_SHA"
          docker save "$IMAGE:$tag" -o image.tar
          shipline push docker-archive:image.tar "$IMAGE:$tag"
          digest="$(shipline digest "$IMAGE:$tag")"
          case "$digest" in
            sha256:*) ;;
            *) echo "::error::unexpected digest '$digest'"; exit 1 ;;
          esac
          {{
            echo "image=$IMAGE"
            echo "tag=$tag"
            echo "digest=$digest"
          }} >> "$GITHUB_OUTPUT"
          echo "Pushed \`$IMAGE@$digest\`" >> "$GITHUB_STEP_SUMMARY"
"#,
        runner = q(&options.hosted_runner),
        checkout = CHECKOUT.uses(),
        install = options.install_command,
        upload = UPLOAD_ARTIFACT.uses(),
        image = q(image),
        registry_env = registry_env,
        sarif_steps = sarif_steps,
    );

    // code-scanning: SARIF upload, also when the gate failed.
    let _ = writeln!(
        y,
        r#"  code-scanning:
    name: Upload scan results to code scanning
    needs: build
    if: ${{{{ !cancelled() }}}}
    runs-on: {runner}
    permissions:
      actions: read # read the workflow run (needed by upload-sarif in private repositories)
      contents: read # check out metadata for code scanning
      security-events: write # upload SARIF to code scanning
    steps:
      - name: Fetch the SARIF reports
        uses: {download}
        with:
          name: shipline-sarif
          path: sarif
      - name: Upload to code scanning
        uses: {sarif}
        with:
          sarif_file: sarif
"#,
        runner = q(&options.hosted_runner),
        download = DOWNLOAD_ARTIFACT.uses(),
        sarif = UPLOAD_SARIF.uses(),
    );

    // deploy: self-hosted runner, exactly the pushed digest.
    let environment_line = gh_env
        .as_ref()
        .map(|e| format!("    environment: {}\n", q(e)))
        .unwrap_or_default();
    let gate_note = match env.deploy {
        DeployMode::Approval => {
            "exactly the pushed digest; shipline also requires signed approvals for it"
        }
        DeployMode::Auto => "exactly the pushed digest",
    };
    let _ = write!(
        y,
        r#"  deploy:
    name: Deploy to {name}
    needs: build
    runs-on: [self-hosted, {label}]
{environment_line}    concurrency:
      group: {group}
      cancel-in-progress: false
    permissions:
      contents: read # check out the compose files and shipline.toml
      packages: read # pull the image from the registry (GHCR)
    steps:
      - name: Check out
        uses: {checkout}
        with:
          persist-credentials: false
      - name: Deploy ({gate_note})
        env:
          SHIPLINE_ENV: {name_q}
          TAG: ${{{{ needs.build.outputs.tag }}}}
          DIGEST: ${{{{ needs.build.outputs.digest }}}}
{registry_env}        run: |
          case "$DIGEST" in
            sha256:*) ;;
            *) echo "::error::the build job did not export a digest"; exit 1 ;;
          esac
          shipline deploy "$SHIPLINE_ENV" --tag "$TAG" --digest "$DIGEST"
"#,
        name = env.name,
        name_q = q(&env.name),
        label = label,
        environment_line = environment_line,
        group = q(&format!("shipline-deploy-{}", env.name)),
        checkout = CHECKOUT.uses(),
        gate_note = gate_note,
        registry_env = registry_env,
    );

    Ok(Workflow {
        file_name: format!("shipline-{}.yml", env.name),
        contents: y,
    })
}

/// Steps that write SARIF reports for code scanning into `sarif/`, one per configured scanner
/// that `shipline scan` runs. They report, they do not gate (the run step gates), so they run
/// even when the gate failed and never fail the job.
fn sarif_steps(config: &Config) -> Result<String, CiError> {
    use crate::config::ScannerName;
    let rel = |p: &Path| -> Result<String, CiError> {
        let r = p.strip_prefix(&config.root).unwrap_or(p);
        let s = r.to_string_lossy().into_owned();
        let s = if s.is_empty() { ".".to_string() } else { s };
        check_name("scan path", &s)?;
        Ok(s)
    };
    let mut out = String::new();
    let step = |out: &mut String, name: &str, cmd: &str| {
        let _ = write!(
            out,
            "      - name: {name}\n        if: ${{{{ !cancelled() }}}}\n        continue-on-error: true\n        env:\n          IMAGE: {}\n        run: |\n          mkdir -p sarif\n          {cmd}\n",
            q(&config.image.repository)
        );
    };
    for scanner in &config.scan.scanners {
        match scanner {
            ScannerName::Trivy => {
                let offline = if config.scan.trivy.offline {
                    " --offline"
                } else {
                    ""
                };
                step(
                    &mut out,
                    "SARIF of the image (Trivy)",
                    &format!("shipline scan trivy \"$IMAGE:$GITHUB_SHA\"{offline} --format sarif --output sarif/trivy.sarif"),
                );
            }
            ScannerName::Semgrep => {
                let mut args = Vec::new();
                for p in &config.scan.semgrep.paths {
                    args.push(rel(p)?);
                }
                if args.is_empty() {
                    args.push(".".to_string());
                }
                for c in &config.scan.semgrep.config {
                    args.push(format!("--config {}", rel(c)?));
                }
                step(
                    &mut out,
                    "SARIF of the sources (Semgrep)",
                    &format!(
                        "shipline scan semgrep {} --format sarif --output sarif/semgrep.sarif",
                        args.join(" ")
                    ),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `env:` entries that hand the registry credentials to shipline under the names the config
/// reads them from: the workflow token as password, the actor as user name. Without a
/// `[registry]` section, an image on GHCR gets `GITHUB_TOKEN`, which shipline uses for ghcr.io
/// when no docker login is present (Actions sets `GITHUB_ACTOR` itself).
fn registry_env_lines(config: &Config) -> Result<String, CiError> {
    let mut out = String::new();
    let on_ghcr = config.image.repository.starts_with("ghcr.io/");
    let configured = config
        .registry
        .as_ref()
        .is_some_and(|r| r.username_env.is_some() || r.password_env.is_some());
    if on_ghcr && !configured {
        let _ = writeln!(
            out,
            "          GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}"
        );
    }
    if let Some(reg) = &config.registry {
        for (name, value) in [
            (&reg.username_env, "github.actor"),
            (&reg.password_env, "secrets.GITHUB_TOKEN"),
        ] {
            if let Some(name) = name {
                let ok = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(CiError::UnsafeName {
                        what: "registry credential variable",
                        value: name.clone(),
                    });
                }
                let _ = writeln!(out, "          {name}: ${{{{ {value} }}}}");
            }
        }
    }
    Ok(out)
}
