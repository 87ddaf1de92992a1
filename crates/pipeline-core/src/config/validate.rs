//! Parsing `shipline.toml` into [`Config`] and checking it, collecting every problem with its
//! location.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{ImDocument, Item};

use super::raw::*;
use super::*;

/// A step in a key path (`environments.prod.compose_files[1]`).
#[derive(Debug, Clone)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

use Seg::{Index as I, Key as K};

struct Checker<'t> {
    file: PathBuf,
    text: &'t str,
    doc: Option<ImDocument<&'t str>>,
    root: PathBuf,
    diags: Vec<Diagnostic>,
}

impl<'t> Checker<'t> {
    fn node(&self, path: &[Seg<'_>]) -> Option<(Option<Range<usize>>, Item)> {
        let doc = self.doc.as_ref()?;
        let mut item: Item = doc.as_item().clone();
        let mut key_span = None;
        for seg in path {
            let next = match seg {
                Seg::Key(k) => {
                    let t = item.as_table_like()?;
                    let (key, it) = t.get_key_value(k)?;
                    key_span = key.span();
                    it.clone()
                }
                Seg::Index(i) => {
                    if let Some(a) = item.as_array() {
                        Item::Value(a.get(*i)?.clone())
                    } else if let Some(a) = item.as_array_of_tables() {
                        Item::Table(a.get(*i)?.clone())
                    } else {
                        return None;
                    }
                }
            };
            item = next;
        }
        Some((key_span, item))
    }

    /// Span of the value at `path`, else of its key, else of the nearest parent.
    fn value_span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        for len in (0..=path.len()).rev() {
            if let Some((key_span, item)) = self.node(&path[..len]) {
                let span = match &item {
                    Item::Value(v) => v.span(),
                    Item::Table(t) => t.span(),
                    _ => None,
                };
                if let Some(s) = span.or(key_span) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// Span of the key at `path`, else of its value.
    fn key_span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        match self.node(path) {
            Some((Some(k), _)) => Some(k),
            _ => self.value_span(path),
        }
    }

    fn error(&mut self, path: &[Seg<'_>], message: impl Into<String>, hint: Option<String>) {
        let span = self.value_span(path);
        self.error_at(span, message, hint);
    }

    fn error_key(&mut self, path: &[Seg<'_>], message: impl Into<String>, hint: Option<String>) {
        let span = self.key_span(path);
        self.error_at(span, message, hint);
    }

    fn error_at(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diags.push(Diagnostic::at(
            self.file.clone(),
            self.text,
            span,
            message.into(),
            hint,
        ));
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// Resolves a path that must exist (as a file when `file` is true, else a directory).
    fn existing(&mut self, path: &[Seg<'_>], value: &str, what: &str, dir: bool) -> PathBuf {
        let p = self.resolve(value);
        let ok = if dir { p.is_dir() } else { p.exists() };
        if !ok {
            self.error(
                path,
                format!("{what} `{value}` does not exist"),
                Some(format!(
                    "paths are relative to the directory of {}; create it or fix the path",
                    FILE_NAME
                )),
            );
        }
        p
    }

    fn duration(
        &mut self,
        path: &[Seg<'_>],
        value: Option<&String>,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v) {
                Some(d) => d,
                None => {
                    self.error(
                        path,
                        format!("invalid duration `{v}`"),
                        Some("write a number and a unit: `90s`, `5m`, `2h`, `7d`".into()),
                    );
                    default
                }
            },
        }
    }
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = PathBuf::from(
        path.file_name()
            .map(|n| n.to_owned())
            .unwrap_or_else(|| path.as_os_str().to_owned()),
    );
    let root = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let mut ck = Checker {
        file: path.to_path_buf(),
        text,
        doc: ImDocument::parse(text).ok(),
        root: root.clone(),
        diags: Vec::new(),
    };
    let _ = file;

    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (message, hint) = explain_serde_error(e.message());
            ck.error_at(e.span(), message, hint);
            return Err(ConfigError::Invalid {
                diagnostics: ck.diags,
            });
        }
    };
    let config = check(&mut ck, raw, path);
    if ck.diags.is_empty() {
        Ok(config)
    } else {
        ck.diags.sort_by_key(|d| (d.line, d.column));
        Err(ConfigError::Invalid {
            diagnostics: ck.diags,
        })
    }
}

/// Turns serde's messages into ours, with "did you mean" for unknown keys and variants.
fn explain_serde_error(message: &str) -> (String, Option<String>) {
    let message = message.trim();
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (name, rest) = rest.split_once('`').unwrap_or((rest, ""));
            let expected: Vec<&str> = rest
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|s| !s.is_empty())
                .collect();
            let mut hint = None;
            if what == "key"
                && matches!(
                    name,
                    "password" | "token" | "username" | "secret" | "auth" | "pat"
                )
            {
                hint = Some(
                    "secrets never go in shipline.toml: name the environment variables that hold them with `username_env` / `password_env`".to_string(),
                );
            } else if let Some(best) = expected
                .iter()
                .map(|c| (strsim::jaro_winkler(name, c), *c))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
            {
                hint = Some(format!("did you mean `{}`?", best.1));
            } else if !expected.is_empty() {
                hint = Some(format!("expected one of: {}", expected.join(", ")));
            }
            if what == "value" && expected.contains(&"trivy") {
                return (format!("unknown scanner `{name}`"), hint);
            }
            return (format!("unknown {what} `{name}`"), hint);
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (
            format!("missing required key `{name}`"),
            Some(format!("add `{name} = ...` to this table")),
        );
    }
    if message.starts_with("invalid type") {
        return (
            message.to_string(),
            Some("check the value's type: strings need quotes, lists need [ ]".into()),
        );
    }
    (
        format!("invalid TOML: {message}"),
        Some("check the quotes, brackets and `key = value` syntax at this position".into()),
    )
}

fn valid_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_compose_project(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks an image repository (no tag, no digest): `[host[:port]/]path` in lowercase.
pub(crate) fn repository_problem(repo: &str) -> Option<String> {
    if repo.is_empty() {
        return Some("is empty".into());
    }
    if repo.contains('@') {
        return Some("must not carry a digest".into());
    }
    let last = repo.rsplit('/').next().unwrap_or(repo);
    if last.contains(':') {
        return Some("must not carry a tag (tags come from [image] tags and the commit)".into());
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    for p in parts {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            || !p.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Some(format!(
                "has an invalid path component `{p}` (lowercase letters, digits, `.`, `_`, `-`)"
            ));
        }
    }
    None
}

fn check(ck: &mut Checker<'_>, raw: RawConfig, path: &Path) -> Config {
    let root = ck.root.clone();
    if raw.project.name.trim().is_empty() {
        ck.error(
            &[K("project"), K("name")],
            "project name is empty",
            Some("name the project, e.g. `name = \"api\"`".into()),
        );
    }

    // [image]
    let img = &raw.image;
    if let Some(problem) = repository_problem(&img.repository) {
        ck.error(
            &[K("image"), K("repository")],
            format!("image repository `{}` {problem}", img.repository),
            Some("write it like `ghcr.io/org/app`".into()),
        );
    }
    let context = match &img.context {
        Some(c) => ck.existing(&[K("image"), K("context")], c, "build context", true),
        None => root.clone(),
    };
    let dockerfile = match &img.dockerfile {
        Some(d) => ck.existing(&[K("image"), K("dockerfile")], d, "Dockerfile", false),
        None => {
            let d = context.join("Dockerfile");
            if !d.is_file() {
                ck.error(
                    &[K("image")],
                    format!("no Dockerfile in the build context {}", context.display()),
                    Some("set `dockerfile = \"path/to/Dockerfile\"`".into()),
                );
            }
            d
        }
    };
    for (i, tag) in img.tags.iter().enumerate() {
        let mut rest = tag.as_str();
        let mut bad = None;
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                bad = Some("an unclosed `{`".to_string());
                break;
            };
            let name = &rest[start + 1..start + end];
            if !matches!(name, "sha" | "sha7" | "branch" | "run") {
                bad = Some(format!("an unknown placeholder `{{{name}}}`"));
                break;
            }
            rest = &rest[start + end + 1..];
        }
        let literal = tag
            .replace("{sha}", "a")
            .replace("{sha7}", "a")
            .replace("{branch}", "a")
            .replace("{run}", "a");
        if bad.is_none()
            && (literal.is_empty()
                || literal.len() > 128
                || !literal
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                || literal.starts_with(['.', '-']))
        {
            bad = Some("characters a tag cannot hold".to_string());
        }
        if let Some(bad) = bad {
            ck.error(
                &[K("image"), K("tags"), I(i)],
                format!("tag template `{tag}` has {bad}"),
                Some("tags use letters, digits, `.`, `_`, `-` and the placeholders {sha}, {sha7}, {branch}, {run}".into()),
            );
        }
    }

    // [test]
    let test = raw.test.as_ref().map(|t| {
        if t.command.is_empty() || t.command[0].trim().is_empty() {
            ck.error(&[K("test"), K("command")], "test command is empty", Some("give the argv to run in the image, e.g. `command = [\"/bin/app\", \"--self-test\"]`".into()));
        }
        TestConfig {
            command: t.command.clone(),
            timeout: ck.duration(&[K("test"), K("timeout")], t.timeout.as_ref(), Duration::from_secs(300)),
        }
    });

    // [scan]
    let scan = check_scan(ck, raw.scan.as_ref());

    // [registry]
    let registry = raw.registry.as_ref().map(|r| {
        if r.host.is_empty() || r.host.contains('/') || r.host.contains("://") {
            ck.error(&[K("registry"), K("host")], format!("registry host `{}` is not a host name", r.host), Some("write only the host (and port): `ghcr.io`, `localhost:5000`".into()));
        }
        for (key, v) in [("username_env", &r.username_env), ("password_env", &r.password_env)] {
            if let Some(v) = v {
                if !valid_var_name(v) {
                    ck.error(&[K("registry"), K(key)], format!("`{v}` is not an environment variable name"), Some(format!("`{key}` names the variable that holds the credential (e.g. `GITHUB_TOKEN`), never the credential itself")));
                }
            }
        }
        RegistryConfig {
            host: r.host.clone(),
            username_env: r.username_env.clone(),
            password_env: r.password_env.clone(),
            docker_config: r.docker_config,
            insecure: r.insecure,
        }
    });

    // [environments]
    if raw.environments.is_empty() {
        ck.error_at(Some(0..0), "no environments configured", Some("add at least one `[environments.NAME]` table with `branch`, `env_file` and `compose_files`".into()));
    }
    let mut environments = BTreeMap::new();
    let mut branches: BTreeMap<String, String> = BTreeMap::new();
    let mut projects: BTreeMap<String, String> = BTreeMap::new();
    let mut env_files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (name, e) in &raw.environments {
        let env = check_environment(ck, name, e);
        let base = [K("environments"), K(name.as_str())];
        if let Some(first) = branches.insert(env.branch.clone(), name.clone()) {
            ck.error(
                &[base[0].clone(), base[1].clone(), K("branch")],
                format!("branch `{}` is mapped to two environments: `{first}` and `{name}`", env.branch),
                Some("a push to a branch deploys to exactly one environment; change one of the branches".into()),
            );
        }
        if let Some(first) = projects.insert(env.compose_project.clone(), name.clone()) {
            ck.error(
                &[base[0].clone(), base[1].clone(), K("compose_project")],
                format!("compose project `{}` is used by two environments: `{first}` and `{name}`", env.compose_project),
                Some("each environment needs its own compose project name (`-p`), or one deploy would replace the other's containers".into()),
            );
        }
        if let Some(first) = env_files.insert(env.env_file.clone(), name.clone()) {
            ck.error(
                &[base[0].clone(), base[1].clone(), K("env_file")],
                format!(
                    "env file `{}` is shared by environments `{first}` and `{name}`",
                    e.env_file
                ),
                Some("give each environment its own env file (`.env.local`, `.env.prod`)".into()),
            );
        }
        environments.insert(name.clone(), env);
    }
    for (name, env) in &environments {
        if let Some(from) = &env.promote_from {
            let path = [K("environments"), K(name.as_str()), K("promote_from")];
            if from == name {
                ck.error(&path, format!("environment `{name}` cannot promote from itself"), Some("name the environment whose digest this one deploys, e.g. `promote_from = \"dev\"`".into()));
            } else if !environments.contains_key(from) {
                let known: Vec<&str> = environments.keys().map(|k| k.as_str()).collect();
                ck.error(
                    &path,
                    format!("`promote_from` names unknown environment `{from}`"),
                    Some(format!("configured environments: {}", known.join(", "))),
                );
            } else if environments[from].promote_from.as_deref() == Some(name.as_str()) {
                ck.error(
                    &path,
                    format!("environments `{name}` and `{from}` promote from each other"),
                    Some("promotion must start from an environment that builds".into()),
                );
            }
        }
    }

    let store_dir = match raw.store.as_ref().and_then(|s| s.dir.as_ref()) {
        Some(d) => ck.resolve(d),
        None => root.join(".shipline"),
    };

    Config {
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        root,
        project: Project {
            name: raw.project.name.clone(),
        },
        image: ImageConfig {
            repository: img.repository.clone(),
            context,
            dockerfile,
            target: img.target.clone(),
            build_args: img.build_args.clone(),
            tags: img.tags.clone(),
            allow_env_files: img.allow_env_files,
        },
        test,
        scan,
        registry,
        environments,
        store_dir,
    }
}

fn check_scan(ck: &mut Checker<'_>, raw: Option<&RawScan>) -> ScanConfig {
    let Some(s) = raw else {
        return ScanConfig {
            scanners: Vec::new(),
            policy: None,
            baseline: None,
            trivy: TrivyConfig {
                timeout: Duration::from_secs(600),
                ..Default::default()
            },
            semgrep: SemgrepConfig {
                timeout: Duration::from_secs(600),
                ..Default::default()
            },
            sarif: Vec::new(),
            audit_traefik_config: Vec::new(),
        };
    };
    let mut scanners = Vec::new();
    for (i, sc) in s.scanners.iter().enumerate() {
        if scanners.contains(sc) {
            ck.error(
                &[K("scan"), K("scanners"), I(i)],
                format!("scanner `{}` is listed twice", sc.as_str()),
                Some("list each scanner once".into()),
            );
        } else {
            scanners.push(*sc);
        }
    }
    let policy = s
        .policy
        .as_ref()
        .map(|p| ck.existing(&[K("scan"), K("policy")], p, "gate policy file", false));
    let baseline = s
        .baseline
        .as_ref()
        .map(|p| ck.existing(&[K("scan"), K("baseline")], p, "baseline file", false));
    let trivy = match &s.trivy {
        Some(t) => TrivyConfig {
            offline: t.offline,
            cache_dir: t.cache_dir.as_ref().map(|c| ck.resolve(c)),
            timeout: ck.duration(
                &[K("scan"), K("trivy"), K("timeout")],
                t.timeout.as_ref(),
                Duration::from_secs(600),
            ),
            report: t.report.as_ref().map(|r| {
                ck.existing(
                    &[K("scan"), K("trivy"), K("report")],
                    r,
                    "trivy report",
                    false,
                )
            }),
            binary: t.binary.as_ref().map(|b| ck.resolve(b)),
        },
        None => TrivyConfig {
            timeout: Duration::from_secs(600),
            ..Default::default()
        },
    };
    let semgrep = match &s.semgrep {
        Some(sg) => {
            let mut config = Vec::new();
            for (i, c) in sg.config.iter().enumerate() {
                config.push(ck.existing(
                    &[K("scan"), K("semgrep"), K("config"), I(i)],
                    c,
                    "semgrep rule file",
                    false,
                ));
            }
            let mut paths = Vec::new();
            for (i, c) in sg.paths.iter().enumerate() {
                paths.push(ck.existing(
                    &[K("scan"), K("semgrep"), K("paths"), I(i)],
                    c,
                    "semgrep scan path",
                    false,
                ));
            }
            if sg.config.is_empty()
                && sg.report.is_none()
                && scanners.contains(&ScannerName::Semgrep)
            {
                ck.error(
                    &[K("scan"), K("semgrep")],
                    "semgrep needs local rules",
                    Some(
                        "set `config = [\"semgrep-rules/\"]`: registry rulesets need the network"
                            .into(),
                    ),
                );
            }
            SemgrepConfig {
                config,
                paths,
                timeout: ck.duration(
                    &[K("scan"), K("semgrep"), K("timeout")],
                    sg.timeout.as_ref(),
                    Duration::from_secs(600),
                ),
                report: sg.report.as_ref().map(|r| {
                    ck.existing(
                        &[K("scan"), K("semgrep"), K("report")],
                        r,
                        "semgrep report",
                        false,
                    )
                }),
                binary: sg.binary.as_ref().map(|b| ck.resolve(b)),
            }
        }
        None => {
            if scanners.contains(&ScannerName::Semgrep) {
                ck.error(
                    &[K("scan"), K("scanners")],
                    "scanner `semgrep` is enabled but `[scan.semgrep]` has no rules",
                    Some("add `[scan.semgrep]` with `config = [\"semgrep-rules/\"]`".into()),
                );
            }
            SemgrepConfig {
                timeout: Duration::from_secs(600),
                ..Default::default()
            }
        }
    };
    let mut sarif = Vec::new();
    for (i, p) in s.sarif.iter().enumerate() {
        sarif.push(ck.existing(&[K("scan"), K("sarif"), I(i)], p, "SARIF report", false));
    }
    if scanners.contains(&ScannerName::Sarif) && sarif.is_empty() {
        ck.error(
            &[K("scan"), K("scanners")],
            "scanner `sarif` is enabled but no reports are listed",
            Some("add `sarif = [\"reports/zizmor.sarif\"]` to [scan]".into()),
        );
    }
    let mut audit_traefik_config = Vec::new();
    if let Some(a) = &s.audit {
        for (i, p) in a.traefik_config.iter().enumerate() {
            audit_traefik_config.push(ck.existing(
                &[K("scan"), K("audit"), K("traefik_config"), I(i)],
                p,
                "Traefik config",
                false,
            ));
        }
    }
    ScanConfig {
        scanners,
        policy,
        baseline,
        trivy,
        semgrep,
        sarif,
        audit_traefik_config,
    }
}

fn check_environment(ck: &mut Checker<'_>, name: &str, e: &RawEnvironment) -> Environment {
    let p = |k: &'static str| -> Vec<Seg<'static>> { vec![K("environments"), K(leak(name)), K(k)] };
    fn leak(s: &str) -> &'static str {
        // environment names are few and small; keeping them for the life of the check is fine
        Box::leak(s.to_string().into_boxed_str())
    }
    let base = vec![K("environments"), K(leak(name))];
    if !valid_compose_project(name) {
        ck.error_key(
            &base,
            format!("environment name `{name}` is not valid"),
            Some("use lowercase letters, digits, `-` and `_`".into()),
        );
    }
    if e.branch.trim().is_empty() {
        ck.error(
            &p("branch"),
            "branch is empty",
            Some("name the branch whose pushes deploy here, e.g. `branch = \"main\"`".into()),
        );
    }
    let env_file = ck.resolve(&e.env_file);
    if let Some(parent) = env_file.parent() {
        if !parent.is_dir() {
            ck.error(
                &p("env_file"),
                format!("the directory of env file `{}` does not exist", e.env_file),
                Some("create the directory or fix the path".into()),
            );
        }
    }
    if env_file.is_dir() {
        ck.error(
            &p("env_file"),
            format!("env file `{}` is a directory", e.env_file),
            Some("point env_file at a file like `.env.prod`".into()),
        );
    }
    let tag_variable = e.tag_variable.clone().unwrap_or_else(|| "IMAGE_TAG".into());
    if !valid_var_name(&tag_variable) {
        ck.error(
            &p("tag_variable"),
            format!("`{tag_variable}` is not a valid variable name"),
            Some(
                "use letters, digits and `_`, not starting with a digit (default `IMAGE_TAG`)"
                    .into(),
            ),
        );
    }
    let compose_project = e
        .compose_project
        .clone()
        .unwrap_or_else(|| name.to_string());
    if e.compose_project.is_some() && !valid_compose_project(&compose_project) {
        ck.error(&p("compose_project"), format!("compose project name `{compose_project}` is not valid"), Some("compose project names use lowercase letters, digits, `-` and `_`, starting with a letter or digit".into()));
    }
    let compose_dir = match &e.compose_dir {
        Some(d) => ck.existing(&p("compose_dir"), d, "compose directory", true),
        None => ck.root.clone(),
    };
    if e.compose_files.is_empty() {
        ck.error(&p("compose_files"), "no compose files listed", Some("list them in `-f` order: `compose_files = [\"compose.common.yaml\", \"compose.dev.yaml\"]`".into()));
    }
    let mut compose_files = Vec::new();
    for (i, f) in e.compose_files.iter().enumerate() {
        let mut path = p("compose_files");
        path.push(I(i));
        compose_files.push(ck.existing(&path, f, "compose file", false));
    }
    let deploy_hook = e
        .deploy_hook
        .as_ref()
        .map(|h| ck.existing(&p("deploy_hook"), h, "deploy hook", false));
    for (i, n) in e.create_networks.iter().enumerate() {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            let mut path = p("create_networks");
            path.push(I(i));
            ck.error(
                &path,
                format!("`{n}` is not a valid network name"),
                Some("network names use letters, digits, `.`, `_`, `-`".into()),
            );
        }
    }
    let h = e.health.as_ref();
    let mut hp = p("health");
    hp.push(K("timeout"));
    let timeout = ck.duration(
        &hp,
        h.and_then(|h| h.timeout.as_ref()),
        Duration::from_secs(120),
    );
    hp.pop();
    hp.push(K("interval"));
    let interval = ck.duration(
        &hp,
        h.and_then(|h| h.interval.as_ref()),
        Duration::from_secs(2),
    );
    let http_check = h.and_then(|h| h.http_check.clone());
    if let Some(url) = &http_check {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            hp.pop();
            hp.push(K("http_check"));
            ck.error(
                &hp,
                format!("http_check `{url}` is not an http(s) URL"),
                Some("write the full URL, e.g. `https://api.dev.example.com/health`".into()),
            );
        }
    }
    let r = e.rollout.as_ref();
    let mut rp = p("rollout");
    rp.push(K("drain"));
    let drain = ck.duration(
        &rp,
        r.and_then(|r| r.drain.as_ref()),
        Duration::from_secs(5),
    );
    let strategy = match r.and_then(|r| r.strategy) {
        Some(RawStrategy::Rolling) => Strategy::Rolling,
        Some(RawStrategy::Recreate) | None => Strategy::Recreate,
    };
    let mut tp = p("retention");
    tp.push(K("prune_after"));
    let prune_after = e
        .retention
        .as_ref()
        .and_then(|t| t.prune_after.as_ref())
        .map(|v| ck.duration(&tp, Some(v), Duration::ZERO));
    let keep = e
        .retention
        .as_ref()
        .and_then(|t| t.keep)
        .unwrap_or(2)
        .max(2);

    let deploy = match e.deploy {
        Some(RawDeployMode::Approval) => DeployMode::Approval,
        Some(RawDeployMode::Auto) => DeployMode::Auto,
        None if e.approval.is_some() => DeployMode::Approval,
        None => DeployMode::Auto,
    };
    let approval = match (&e.approval, deploy) {
        (None, DeployMode::Approval) => {
            ck.error(&p("deploy"), format!("environment `{name}` requires approval but lists no trusted approvers"), Some(format!("add `[environments.{name}.approval]` with `approvers = [{{ identity = \"...\", public_key = \"ssh-ed25519 ...\" }}]`")));
            None
        }
        (Some(_), DeployMode::Auto) => {
            ck.error(
                &p("approval"),
                format!("environment `{name}` has an approval policy but `deploy = \"auto\"`"),
                Some("set `deploy = \"approval\"` or remove the approval table".into()),
            );
            None
        }
        (Some(a), DeployMode::Approval) => Some(check_approval(ck, name, a)),
        (None, DeployMode::Auto) => None,
    };
    Environment {
        name: name.to_string(),
        branch: e.branch.clone(),
        deploy,
        env_file,
        tag_variable,
        compose_project,
        compose_files,
        compose_dir,
        deploy_hook,
        create_networks: e.create_networks.clone(),
        health: HealthConfig {
            timeout,
            interval,
            http_check,
        },
        rollout: RolloutConfig {
            strategy,
            services: r.map(|r| r.services.clone()).unwrap_or_default(),
            drain,
        },
        retention: RetentionConfig { prune_after, keep },
        promote_from: e.promote_from.clone(),
        approval,
    }
}

fn check_approval(ck: &mut Checker<'_>, name: &str, a: &RawApproval) -> ApprovalPolicy {
    let base = |k: &'static str| -> Vec<Seg<'static>> {
        vec![
            K("environments"),
            K(Box::leak(name.to_string().into_boxed_str())),
            K("approval"),
            K(k),
        ]
    };
    let mut approvers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, ap) in a.approvers.iter().enumerate() {
        let mut path = base("approvers");
        path.push(I(i));
        if ap.identity.trim().is_empty() {
            ck.error(
                &path,
                "approver identity is empty",
                Some("use the signer identity, e.g. `alice@example.com`".into()),
            );
        }
        if !seen.insert(ap.identity.clone()) {
            ck.error(
                &path,
                format!("approver `{}` is listed twice", ap.identity),
                Some("list each approver once".into()),
            );
        }
        if ssh_key::PublicKey::from_openssh(ap.public_key.trim()).is_err() {
            path.push(K("public_key"));
            ck.error(
                &path,
                format!(
                    "public key of approver `{}` is not an OpenSSH public key",
                    ap.identity
                ),
                Some("paste one line of an `.pub` file: `ssh-ed25519 AAAAC3Nza... comment`".into()),
            );
        }
        approvers.push(Approver {
            identity: ap.identity.clone(),
            public_key: ap.public_key.trim().to_string(),
        });
    }
    if a.approvers.is_empty() {
        ck.error(
            &base("approvers"),
            format!("environment `{name}` requires approval but lists no trusted approvers"),
            Some(
                "add `approvers = [{ identity = \"...\", public_key = \"ssh-ed25519 ...\" }]`"
                    .into(),
            ),
        );
    }
    let required = a.required.unwrap_or(1);
    if required == 0 {
        ck.error(
            &base("required"),
            "`required = 0` would let any deploy through",
            Some("require at least 1 approval, or set `deploy = \"auto\"`".into()),
        );
    } else if !a.approvers.is_empty() && required > a.approvers.len() {
        ck.error(
            &base("required"),
            format!(
                "{required} approvals required but only {} approvers are trusted",
                a.approvers.len()
            ),
            Some("lower `required` or add approvers".into()),
        );
    }
    let max_age = ck.duration(
        &base("max_age"),
        a.max_age.as_ref(),
        Duration::from_secs(24 * 3600),
    );
    ApprovalPolicy {
        required,
        allow_self_approval: a.allow_self_approval,
        max_age,
        approvers,
    }
}
