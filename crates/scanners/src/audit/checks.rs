//! The rules applied to services, stacks and the Traefik configuration of one daemon.

use std::collections::BTreeMap;
use std::path::Path;

use super::compose::{volume_parts, Project, Service};
use super::rules::{rule_by_id, RULES};
use super::traefik::{is_traefik_image, Object, Provider, Resolved};
use super::tree::{parse_bool, Node, Pos};
use super::world::World;
use super::{make_finding, Profile};
use crate::finding::Finding;

/// Collects findings.
struct Sink<'a> {
    world: &'a World,
    findings: Vec<Finding>,
}

impl Sink<'_> {
    fn report(
        &mut self,
        rule: &str,
        pos: Pos,
        stack: Option<&str>,
        subject: &str,
        message: String,
    ) {
        let Some(rule) = rule_by_id(rule) else {
            return;
        };
        let path = self
            .world
            .files
            .display
            .get(pos.file)
            .cloned()
            .unwrap_or_default();
        self.findings
            .push(make_finding(rule, &path, pos.line, stack, subject, message));
    }
}

/// Runs every rule.
pub(crate) fn run(world: &mut World) -> Vec<Finding> {
    let world: &World = world;
    let mut sink = Sink {
        world,
        findings: Vec::new(),
    };
    let public = public_networks(world);
    for project in &world.projects {
        for s in &project.services {
            service_rules(&mut sink, project, s, &public);
        }
        weak_defaults(&mut sink, project);
    }
    edge_rules(&mut sink);
    router_rules(&mut sink);
    for m in &world.misnested {
        sink.report("SA701", m.pos, None, &m.subject, m.message.clone());
    }
    if world.projects.len() > 1 {
        cross_stack_rules(&mut sink);
    }
    debug_assert!(RULES.iter().all(|r| !r.id.is_empty()));
    sink.findings
}

// ---------------------------------------------------------------- services

const DATASTORES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgis",
    "pgvector",
    "timescaledb",
    "mysql",
    "mariadb",
    "percona",
    "redis",
    "valkey",
    "keydb",
    "dragonfly",
    "mongo",
    "mongodb",
    "elasticsearch",
    "opensearch",
    "memcached",
    "cassandra",
    "couchdb",
    "influxdb",
    "clickhouse",
    "neo4j",
    "etcd",
];

/// The repository name of an image without registry, namespace, tag or digest.
fn image_name(image: &str) -> &str {
    let repo = image.split('@').next().unwrap_or(image);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last.split(':').next().unwrap_or(last)
}

fn is_datastore(s: &Service) -> bool {
    let Some((image, _)) = s.image() else {
        return false;
    };
    let name = image_name(image).to_ascii_lowercase();
    name.split(['-', '_', '.']).any(|t| DATASTORES.contains(&t))
}

fn is_edge(s: &Service) -> bool {
    s.image().is_some_and(|(i, _)| is_traefik_image(i))
}

fn is_socket_proxy(s: &Service) -> bool {
    s.image()
        .is_some_and(|(i, _)| image_name(i).to_ascii_lowercase().contains("socket-proxy"))
}

/// Networks the edge proxy joins, by engine name.
fn public_networks(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for p in &world.projects {
        for s in &p.services {
            if is_edge(s) {
                for (k, _) in s.network_keys() {
                    out.push(p.network_name(k));
                }
            }
            for (k, v, _) in s.labels() {
                if k.eq_ignore_ascii_case("traefik.docker.network") && !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    if out.is_empty() {
        for p in &world.projects {
            for n in &p.networks {
                let lower = n.name.to_ascii_lowercase();
                if ["traefik", "public", "proxy", "edge"]
                    .iter()
                    .any(|t| lower.contains(t))
                {
                    out.push(n.name.clone());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A published port: (is on all interfaces, label for messages).
fn port_binding(n: &Node) -> Option<(bool, String)> {
    if let Some(t) = n.text() {
        let spec = t.split('/').next().unwrap_or(t);
        let (ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
            let (ip, rest) = stripped.split_once("]:")?;
            (ip.to_string(), rest.to_string())
        } else {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 | 2 => (String::new(), spec.to_string()),
                _ => (
                    parts[..parts.len() - 2].join(":"),
                    parts[parts.len() - 2..].join(":"),
                ),
            }
        };
        let public = matches!(ip.as_str(), "" | "0.0.0.0" | "::" | "[::]");
        return Some((public, rest));
    }
    if n.is_map() {
        let ip = n.get("host_ip").and_then(Node::text).unwrap_or("");
        let public = matches!(ip, "" | "0.0.0.0" | "::");
        let published = n.get("published").and_then(Node::text).unwrap_or("");
        let target = n.get("target").and_then(Node::text).unwrap_or("");
        return Some((public, format!("{published}:{target}")));
    }
    None
}

fn service_rules(sink: &mut Sink<'_>, project: &Project, s: &Service, public: &[String]) {
    let stack = Some(project.stack.as_str());
    let subj = |what: &str| format!("{}/{}{}", project.stack, s.name, what);
    let edge = is_edge(s);
    let datastore = is_datastore(s);

    // Ports.
    let ports = s.node.get("ports").map(Node::items).unwrap_or_default();
    let mut public_ports = Vec::new();
    let mut any_port: Option<Pos> = None;
    for p in ports {
        if let Some((all, label)) = port_binding(p) {
            any_port.get_or_insert(p.pos);
            if all {
                public_ports.push((label, p.pos));
            }
        }
    }
    let nets: Vec<(String, Pos)> = s
        .network_keys()
        .into_iter()
        .map(|(k, pos)| (project.network_name(k), pos))
        .collect();
    if datastore {
        let mut reasons = Vec::new();
        let mut pos = None;
        if let Some(p) = any_port {
            reasons.push("publishes host ports".to_string());
            pos = Some(p);
        }
        if let Some((n, p)) = nets.iter().find(|(n, _)| public.contains(n)) {
            reasons.push(format!("is attached to the public proxy network `{n}`"));
            pos.get_or_insert(*p);
        }
        if let Some(pos) = pos {
            sink.report(
                "SA102",
                pos,
                stack,
                &subj(""),
                format!(
                    "datastore service `{}` ({}) {}",
                    s.name,
                    s.image().map_or("", |(i, _)| i),
                    reasons.join(" and ")
                ),
            );
        }
    } else if !edge && !public_ports.is_empty() {
        let labels: Vec<&str> = public_ports.iter().map(|(l, _)| l.as_str()).collect();
        sink.report(
            "SA101",
            public_ports[0].1,
            stack,
            &subj(""),
            format!(
                "service `{}` publishes {} on all host interfaces; only the edge proxy should",
                s.name,
                labels.join(", ")
            ),
        );
    }

    // Dev and prod backend networks at once.
    let env_of = |name: &str| -> Option<Profile> {
        let lower = name.to_ascii_lowercase();
        let tokens: Vec<&str> = lower.split(['-', '_', '.']).collect();
        if tokens.iter().any(|t| matches!(*t, "dev" | "development")) {
            Some(Profile::Dev)
        } else if tokens.iter().any(|t| matches!(*t, "prod" | "production")) {
            Some(Profile::Prod)
        } else {
            None
        }
    };
    let dev = nets
        .iter()
        .find(|(n, _)| !public.contains(n) && env_of(n) == Some(Profile::Dev));
    let prod = nets
        .iter()
        .find(|(n, _)| !public.contains(n) && env_of(n) == Some(Profile::Prod));
    if let (Some(d), Some(p)) = (dev, prod) {
        sink.report(
            "SA103",
            p.1.max_line(d.1),
            stack,
            &subj(""),
            format!(
                "service `{}` is attached to both `{}` and `{}`, bridging dev and prod",
                s.name, d.0, p.0
            ),
        );
    }

    // Docker socket.
    if !is_socket_proxy(s) {
        for v in s.node.get("volumes").map(Node::items).unwrap_or_default() {
            if let Some((src, _, opts)) = volume_parts(v) {
                if src.ends_with("docker.sock") {
                    let ro = if opts.split(',').any(|o| o == "ro") {
                        " (read-only still lets it call the API and start privileged containers)"
                    } else {
                        ""
                    };
                    sink.report(
                        "SA201",
                        v.pos,
                        stack,
                        &subj(""),
                        format!("service `{}` mounts {src}{ro}", s.name),
                    );
                    break;
                }
            }
        }
    }

    image_rules(sink, project, s);
    secret_rules(sink, project, s);
    build_context_rules(sink, project, s);
    privilege_rules(sink, project, s);
}

trait MaxLine {
    fn max_line(self, other: Pos) -> Pos;
}
impl MaxLine for Pos {
    fn max_line(self, other: Pos) -> Pos {
        if other.file == self.file && other.line > self.line {
            other
        } else {
            self
        }
    }
}

const PRERELEASE: &[&str] = &[
    "rc",
    "alpha",
    "beta",
    "dev",
    "snapshot",
    "nightly",
    "pre",
    "preview",
    "canary",
    "edge",
    "next",
    "experimental",
    "unstable",
    "test",
];

fn image_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let stack = Some(project.stack.as_str());
    let subject = format!("{}/{}", project.stack, s.name);
    let Some((image, pos)) = s.image() else {
        if let Some(b) = s.node.entry("build") {
            sink.report(
                "SA403",
                b.key_pos,
                stack,
                &subject,
                format!(
                    "service `{}` is built on the server (`build:` without `image:`), so the deployed image is never the scanned one",
                    s.name
                ),
            );
        }
        return;
    };
    if image.contains('@') {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        None | Some("") | Some("latest") => {
            let what = if tag == Some("latest") {
                "`latest`"
            } else {
                "no tag"
            };
            sink.report(
                "SA401",
                pos,
                stack,
                &subject,
                format!("service `{}` uses image `{image}` with {what}", s.name),
            );
        }
        Some(t) if project.profile == Some(Profile::Prod) => {
            let lower = t.to_ascii_lowercase();
            let pre = lower
                .split(['-', '.', '_', '+'])
                .map(|tok| tok.trim_end_matches(|c: char| c.is_ascii_digit()))
                .find(|tok| PRERELEASE.contains(tok));
            if let Some(p) = pre {
                sink.report(
                    "SA402",
                    pos,
                    stack,
                    &subject,
                    format!(
                        "prod service `{}` runs pre-release image `{image}` (`{p}`)",
                        s.name
                    ),
                );
            }
        }
        Some(_) => {}
    }
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let tokens: Vec<&str> = upper.split(['_', '-', '.']).collect();
    let last = tokens.last().copied().unwrap_or("");
    if matches!(
        last,
        "FILE"
            | "PATH"
            | "DIR"
            | "TIMEOUT"
            | "TTL"
            | "EXPIRY"
            | "EXPIRES"
            | "LENGTH"
            | "USER"
            | "USERNAME"
            | "NAME"
            | "HEADER"
            | "ALGORITHM"
            | "ENABLED"
            | "ID"
    ) {
        return false;
    }
    tokens.iter().enumerate().any(|(i, t)| {
        matches!(
            *t,
            "PASSWORD" | "PASSWD" | "PASS" | "PWD" | "SECRET" | "TOKEN" | "APIKEY" | "CREDENTIALS"
        ) || (*t == "KEY"
            && i > 0
            && matches!(
                tokens[i - 1],
                "API"
                    | "PRIVATE"
                    | "ACCESS"
                    | "SECRET"
                    | "SIGNING"
                    | "ENCRYPTION"
                    | "MASTER"
                    | "LICENSE"
                    | "AUTH"
            ))
    })
}

/// Whether a raw value contains an interpolation (after `$$` escapes).
fn has_variable(raw: &str) -> bool {
    raw.replace("$$", "").contains('$')
}

fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let auth = rest.split(['/', '?']).next().unwrap_or(rest);
    auth.rsplit_once('@')
        .and_then(|(cred, _)| cred.split_once(':'))
        .is_some_and(|(_, pw)| !pw.is_empty())
}

fn secret_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let stack = Some(project.stack.as_str());
    for (key, value, pos) in s.environment() {
        let Some(v) = value else {
            continue;
        };
        if v.raw.is_empty() || has_variable(&v.raw) {
            continue;
        }
        let literal_secret = is_secret_name(key) && !v.raw.starts_with("/run/secrets/");
        let url = url_with_password(&v.raw);
        if literal_secret || url {
            let what = if url && !literal_secret {
                "a URL with an embedded password"
            } else {
                "a literal value"
            };
            sink.report(
                "SA501",
                pos,
                stack,
                &format!("{}/{}:{key}", project.stack, s.name),
                format!(
                    "service `{}` sets `{key}` to {what} in `environment:` (value not shown)",
                    s.name
                ),
            );
        }
    }
}

const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "password",
    "passw0rd",
    "password1",
    "password123",
    "secret",
    "admin",
    "root",
    "test",
    "example",
    "default",
    "123456",
    "12345678",
    "qwerty",
    "letmein",
    "pass",
    "xxx",
    "todo",
    "replaceme",
    "replace-me",
    "dev",
    "postgres",
];

fn weak_defaults(sink: &mut Sink<'_>, project: &Project) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (r, pos) in &project.var_refs {
        let Some(d) = &r.default else {
            continue;
        };
        if d.is_empty() || has_variable(d) {
            continue;
        }
        let placeholder = PLACEHOLDERS.contains(&d.to_ascii_lowercase().as_str());
        if !(is_secret_name(&r.name) || placeholder && looks_credential_context(&r.name)) {
            continue;
        }
        if seen.contains(&(r.name.clone(), pos.file)) {
            continue;
        }
        seen.push((r.name.clone(), pos.file));
        let why = if placeholder {
            "a placeholder default"
        } else {
            "a literal default"
        };
        sink.report(
            "SA502",
            *pos,
            Some(project.stack.as_str()),
            &format!("{}:${}", project.stack, r.name),
            format!(
                "`${{{}:-...}}` falls back to {why} when the variable is unset (value not shown)",
                r.name
            ),
        );
    }
}

/// Names that are not secret by their name alone but hold credentials when defaulted to a
/// placeholder (`DB_USER:-admin` is fine; `AUTH:-changeme` is not).
fn looks_credential_context(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["AUTH", "CRED", "HTPASSWD", "SALT"]
        .iter()
        .any(|t| upper.contains(t))
}

fn is_env_file_name(name: &str) -> bool {
    name == ".env" || name.starts_with(".env.") || name.ends_with(".env")
}

fn build_context_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let Some(build) = s.node.entry("build") else {
        return;
    };
    let stack = Some(project.stack.as_str());
    let context = build
        .value
        .text()
        .or_else(|| build.value.get("context").and_then(Node::text))
        .unwrap_or(".");
    if context.contains("://") || context.starts_with("git@") {
        return;
    }
    let dir = project.dir.join(context);
    if !dir.is_dir() {
        return;
    }
    let dockerfile = build
        .value
        .get("dockerfile")
        .and_then(Node::text)
        .unwrap_or("Dockerfile");
    let dockerfile_path = dir.join(dockerfile);

    // Explicit COPY/ADD of env files.
    if let Ok(text) = std::fs::read_to_string(&dockerfile_path) {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            let upper = t.to_ascii_uppercase();
            if !(upper.starts_with("COPY ") || upper.starts_with("ADD ")) {
                continue;
            }
            let args: Vec<&str> = t
                .split_whitespace()
                .skip(1)
                .filter(|a| !a.starts_with("--"))
                .collect();
            if args.len() < 2 {
                continue;
            }
            let sources = &args[..args.len() - 1];
            if let Some(src) = sources.iter().find(|a| {
                let base = a.rsplit('/').next().unwrap_or(a);
                is_env_file_name(base) || base == ".env*" || base == "*.env"
            }) {
                let path_str = sink.world.files.display(&dockerfile_path);
                if let Some(rule) = rule_by_id("SA503") {
                    sink.findings.push(make_finding(
                        rule,
                        &path_str,
                        i as u32 + 1,
                        stack,
                        &format!("{}/{}:dockerfile", project.stack, s.name),
                        format!(
                            "the Dockerfile of service `{}` copies env file `{src}` into the image",
                            s.name
                        ),
                    ));
                }
                break;
            }
        }
    }

    // Env files in the context that .dockerignore does not exclude.
    let mut env_files = Vec::new();
    find_env_files(&dir, &dir, 0, &mut env_files);
    if env_files.is_empty() {
        return;
    }
    let ignore_path = {
        let specific = dir.join(format!("{dockerfile}.dockerignore"));
        if specific.is_file() {
            specific
        } else {
            dir.join(".dockerignore")
        }
    };
    let patterns = std::fs::read_to_string(&ignore_path).unwrap_or_default();
    let leaked: Vec<&String> = env_files
        .iter()
        .filter(|f| !dockerignore_excludes(&patterns, f))
        .collect();
    if let Some(first) = leaked.first() {
        let why = if ignore_path.is_file() {
            "its .dockerignore does not exclude"
        } else {
            "it has no .dockerignore, so it sends"
        };
        sink.report(
            "SA503",
            build.key_pos,
            stack,
            &format!("{}/{}:context", project.stack, s.name),
            format!(
                "the build context `{context}` of service `{}` contains env files and {why} them ({}{})",
                s.name,
                first,
                if leaked.len() > 1 {
                    format!(" and {} more", leaked.len() - 1)
                } else {
                    String::new()
                }
            ),
        );
    }
}

fn find_env_files(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_dir() {
            if !matches!(name.as_str(), ".git" | "node_modules" | "target" | ".venv") {
                find_env_files(root, &p, depth + 1, out);
            }
        } else if is_env_file_name(&name) && name != ".env.example" && name != ".env.sample" {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

/// Whether `.dockerignore` patterns exclude `rel` (last matching pattern wins; a pattern that
/// matches a parent directory excludes everything below it).
pub(crate) fn dockerignore_excludes(patterns: &str, rel: &str) -> bool {
    let mut excluded = false;
    let parts: Vec<&str> = rel.split('/').collect();
    for line in patterns.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/').trim_end_matches('/');
        let pat = pat.strip_prefix("./").unwrap_or(pat);
        let Ok(glob) = globset::GlobBuilder::new(pat)
            .literal_separator(true)
            .build()
        else {
            continue;
        };
        let m = glob.compile_matcher();
        let matched = (1..=parts.len()).any(|n| m.is_match(parts[..n].join("/")));
        if matched {
            excluded = !negate;
        }
    }
    excluded
}

fn privilege_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
    let stack = Some(project.stack.as_str());
    let subject = format!("{}/{}", project.stack, s.name);
    if let Some(p) = s.node.get("privileged") {
        if p.as_bool() == Some(true) {
            sink.report(
                "SA601",
                p.pos,
                stack,
                &subject,
                format!("service `{}` runs privileged", s.name),
            );
        }
    }
    for c in s.node.get("cap_add").map(Node::items).unwrap_or_default() {
        let cap = c.text().unwrap_or("").to_ascii_uppercase();
        let cap = cap.strip_prefix("CAP_").unwrap_or(&cap);
        if cap == "SYS_ADMIN" || cap == "ALL" {
            sink.report(
                "SA602",
                c.pos,
                stack,
                &subject,
                format!("service `{}` adds capability {cap}", s.name),
            );
            break;
        }
    }
    for o in s
        .node
        .get("security_opt")
        .map(Node::items)
        .unwrap_or_default()
    {
        let t = o.text().unwrap_or("").to_ascii_lowercase().replace(' ', "");
        if t == "seccomp=unconfined" || t == "seccomp:unconfined" {
            sink.report(
                "SA603",
                o.pos,
                stack,
                &subject,
                format!("service `{}` disables seccomp", s.name),
            );
            break;
        }
    }
    if let Some((user, pos)) = s.scalar("user") {
        let who = user.split(':').next().unwrap_or(user).trim();
        if who == "0" || who.eq_ignore_ascii_case("root") {
            sink.report(
                "SA604",
                pos,
                stack,
                &subject,
                format!("service `{}` runs as root (`user: {user}`)", s.name),
            );
        }
    }
    if let Some((mode, pos)) = s.scalar("network_mode") {
        if mode == "host" {
            sink.report(
                "SA605",
                pos,
                stack,
                &subject,
                format!("service `{}` uses the host network", s.name),
            );
        }
    }
}

// ---------------------------------------------------------------- edge (static config)

fn address_port(addr: &str) -> Option<u16> {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
}

/// Entry points whose routers get TLS by default.
fn tls_entrypoints(world: &World) -> Vec<String> {
    world
        .statics
        .children("entrypoints")
        .into_iter()
        .filter(|ep| world.statics.has(&format!("entrypoints.{ep}.http.tls")))
        .collect()
}

fn edge_rules(sink: &mut Sink<'_>) {
    let world = sink.world;
    let st = &world.statics;
    if !st.present {
        return;
    }
    // Insecure API.
    if let Some((v, pos)) = st.get("api.insecure") {
        if parse_bool(v) == Some(true) {
            sink.report(
                "SA204",
                *pos,
                None,
                "api.insecure",
                "`api.insecure=true` serves the API and dashboard unauthenticated on the `traefik` entrypoint (port 8080)".into(),
            );
        }
    }
    // exposedByDefault.
    if st.has("providers.docker") {
        let v = st.get("providers.docker.exposedbydefault");
        if v.is_none_or(|(v, _)| parse_bool(v) != Some(false)) {
            let pos = v
                .map(|(_, p)| *p)
                .or_else(|| st.pos_of("providers.docker"))
                .unwrap_or_default();
            sink.report(
                "SA205",
                pos,
                None,
                "providers.docker.exposedByDefault",
                "the Docker provider publishes every container with a default router (`exposedByDefault` is not false)".into(),
            );
        }
    }
    // HTTP entrypoints without a redirect.
    for ep in st.children("entrypoints") {
        let Some((addr, pos)) = st.get(&format!("entrypoints.{ep}.address")) else {
            continue;
        };
        if address_port(addr) != Some(80) {
            continue;
        }
        if st.has(&format!("entrypoints.{ep}.http.redirections.entrypoint.to")) {
            continue;
        }
        let redirected_by_router =
            world.dynamic.routers.iter().any(|r| {
                router_entrypoints(world, r).contains(&ep) && is_redirect_router(world, r)
            });
        if redirected_by_router {
            continue;
        }
        sink.report(
            "SA203",
            *pos,
            None,
            &format!("entrypoint:{ep}"),
            format!("entrypoint `{ep}` ({addr}) serves plain HTTP without redirecting to HTTPS"),
        );
    }
    // Cert resolvers named on entrypoints.
    let resolvers = st.children("certificatesresolvers");
    for ep in st.children("entrypoints") {
        let key = format!("entrypoints.{ep}.http.tls.certresolver");
        if let Some((name, pos)) = st.get(&key) {
            if !resolvers.contains(&name.to_ascii_lowercase()) {
                sink.report(
                    "SA305",
                    *pos,
                    None,
                    &format!("entrypoint:{ep}:{name}"),
                    format!("entrypoint `{ep}` uses certificate resolver `{name}`, which is not defined"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------- routers and middlewares

fn router_entrypoints(world: &World, r: &Object) -> Vec<String> {
    let eps: Vec<String> = r
        .list("entrypoints")
        .into_iter()
        .map(|e| e.to_ascii_lowercase())
        .collect();
    if eps.is_empty() {
        world.statics.children("entrypoints")
    } else {
        eps
    }
}

fn is_redirect_router(world: &World, r: &Object) -> bool {
    world.dynamic.applied(r).iter().any(|m| {
        m.middleware_type().as_deref() == Some("redirectscheme")
            && m.prop("redirectscheme.scheme")
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    })
}

fn router_has_tls(world: &World, r: &Object) -> bool {
    if r.has("tls") && r.prop("tls").is_none_or(|v| parse_bool(v) != Some(false)) {
        return true;
    }
    let eps = router_entrypoints(world, r);
    let tls_eps = tls_entrypoints(world);
    !eps.is_empty() && eps.iter().all(|e| tls_eps.contains(e))
}

fn router_stack<'a>(world: &'a World, r: &Object) -> Option<&'a str> {
    r.origin
        .stack
        .and_then(|i| world.projects.get(i))
        .map(|p| p.stack.as_str())
}

fn router_subject(world: &World, r: &Object) -> String {
    match router_stack(world, r) {
        Some(s) => format!("{s}:router:{}@{}", r.name, r.origin.provider.as_str()),
        None => format!("router:{}@{}", r.name, r.origin.provider.as_str()),
    }
}

fn router_rules(sink: &mut Sink<'_>) {
    let world = sink.world;
    let resolvers = world.statics.children("certificatesresolvers");
    let auth_types = ["basicauth", "digestauth", "forwardauth"];
    let allow_types = ["ipallowlist", "ipwhitelist"];
    for r in &world.dynamic.routers {
        let stack = router_stack(world, r);
        let subject = router_subject(world, r);
        let redirect = is_redirect_router(world, r);

        // Undefined middlewares.
        for reference in r.list("middlewares") {
            if let Resolved::Missing = world.dynamic.resolve(&reference, r) {
                let (name, provider) = match reference.rsplit_once('@') {
                    Some((n, p)) => (n.to_string(), p.to_string()),
                    None => (reference.clone(), r.origin.provider.as_str().to_string()),
                };
                sink.report(
                    "SA301",
                    r.prop_pos("middlewares"),
                    stack,
                    &format!("{subject}:{reference}"),
                    format!(
                        "router `{}` uses middleware `{reference}`, but no middleware `{name}` is defined in the {provider} provider",
                        r.name
                    ),
                );
            }
        }

        // TLS.
        if !redirect && !router_has_tls(world, r) {
            let eps = router_entrypoints(world, r);
            sink.report(
                "SA202",
                r.pos,
                stack,
                &subject,
                format!(
                    "router `{}` serves without TLS (entrypoints: {})",
                    r.name,
                    if eps.is_empty() {
                        "all".to_string()
                    } else {
                        eps.join(", ")
                    }
                ),
            );
        }

        // Cert resolver.
        if let Some(name) = r.prop("tls.certresolver") {
            if world.statics.present && !resolvers.contains(&name.to_ascii_lowercase()) {
                sink.report(
                    "SA305",
                    r.prop_pos("tls.certresolver"),
                    stack,
                    &format!("{subject}:{name}"),
                    format!(
                        "router `{}` uses certificate resolver `{name}`, which is not defined in the static configuration",
                        r.name
                    ),
                );
            }
        }

        let applied = world.dynamic.applied(r);
        let types: Vec<String> = applied.iter().filter_map(|m| m.middleware_type()).collect();

        // Dashboard without auth.
        if r.prop("service") == Some("api@internal")
            && !types.iter().any(|t| auth_types.contains(&t.as_str()))
        {
            sink.report(
                "SA204",
                r.pos,
                stack,
                &subject,
                format!(
                    "router `{}` exposes the Traefik API/dashboard (`api@internal`) without authentication",
                    r.name
                ),
            );
        }

        if redirect {
            continue;
        }
        match world.profile_of(&r.origin) {
            Some(Profile::Dev) => {
                let mut missing = Vec::new();
                if !types.iter().any(|t| auth_types.contains(&t.as_str())) {
                    missing.push("basic auth");
                }
                if !types.iter().any(|t| allow_types.contains(&t.as_str())) {
                    missing.push("an IP allowlist");
                }
                if !missing.is_empty() {
                    sink.report(
                        "SA302",
                        r.pos,
                        stack,
                        &subject,
                        format!("dev router `{}` lacks {}", r.name, missing.join(" and ")),
                    );
                }
            }
            Some(Profile::Prod) => {
                let headers: Vec<&&Object> = applied
                    .iter()
                    .filter(|m| m.middleware_type().as_deref() == Some("headers"))
                    .collect();
                let has = |f: &dyn Fn(&Object) -> bool| headers.iter().any(|m| f(m));
                let mut missing = Vec::new();
                if !has(&|m| {
                    m.prop("headers.stsseconds")
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|v| v > 0)
                }) {
                    missing.push("HSTS (stsSeconds)");
                }
                if !has(&|m| {
                    m.prop("headers.framedeny").and_then(parse_bool) == Some(true)
                        || m.prop("headers.customframeoptionsvalue").is_some()
                }) {
                    missing.push("frame denial (frameDeny)");
                }
                if !has(&|m| {
                    m.prop("headers.contenttypenosniff").and_then(parse_bool) == Some(true)
                }) {
                    missing.push("nosniff (contentTypeNosniff)");
                }
                if !has(&|m| {
                    m.prop("headers.referrerpolicy")
                        .is_some_and(|v| !v.is_empty())
                }) {
                    missing.push("referrerPolicy");
                }
                if !missing.is_empty() {
                    sink.report(
                        "SA304",
                        r.pos,
                        stack,
                        &subject,
                        format!(
                            "prod router `{}` lacks security headers: {}",
                            r.name,
                            missing.join(", ")
                        ),
                    );
                }
            }
            None => {}
        }
    }

    // IP allowlists behind a CDN.
    if world.behind_cdn {
        for m in &world.dynamic.middlewares {
            let Some(t) = m.middleware_type() else {
                continue;
            };
            if !allow_types.contains(&t.as_str()) {
                continue;
            }
            if m.has(&format!("{t}.ipstrategy.depth"))
                || m.has(&format!("{t}.ipstrategy.excludedips"))
            {
                continue;
            }
            let stack = m
                .origin
                .stack
                .and_then(|i| world.projects.get(i))
                .map(|p| p.stack.as_str());
            sink.report(
                "SA303",
                m.pos,
                stack,
                &format!(
                    "{}middleware:{}@{}",
                    stack.map(|s| format!("{s}:")).unwrap_or_default(),
                    m.name,
                    m.origin.provider.as_str()
                ),
                format!(
                    "IP allowlist `{}` sits behind a CDN/proxy but has no `ipStrategy.depth`, so it checks the proxy's address instead of the client's",
                    m.name
                ),
            );
        }
    }

    duplicate_host_rules(sink);
}

fn normalize_rule(rule: &str) -> String {
    rule.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c == '"' || c == '\'' { '`' } else { c })
        .collect::<String>()
        .to_ascii_lowercase()
}

fn duplicate_host_rules(sink: &mut Sink<'_>) {
    let world = sink.world;
    let mut by_rule: BTreeMap<String, Vec<&Object>> = BTreeMap::new();
    for r in &world.dynamic.routers {
        if let Some(rule) = r.prop("rule") {
            if rule.to_ascii_lowercase().contains("host(") {
                by_rule.entry(normalize_rule(rule)).or_default().push(r);
            }
        }
    }
    for routers in by_rule.values() {
        for (i, b) in routers.iter().enumerate() {
            let eps_b = router_entrypoints(world, b);
            let dup = routers[..i].iter().find(|a| {
                let eps_a = router_entrypoints(world, a);
                let same_name = a.name == b.name && a.origin.provider == b.origin.provider;
                !same_name
                    && (eps_a.is_empty()
                        || eps_b.is_empty()
                        || eps_a.iter().any(|e| eps_b.contains(e)))
            });
            if let Some(a) = dup {
                let where_a = router_stack(world, a).unwrap_or("file provider");
                sink.report(
                    "SA307",
                    b.prop_pos("rule"),
                    router_stack(world, b),
                    &format!("rule:{}", normalize_rule(b.prop("rule").unwrap_or(""))),
                    format!(
                        "router `{}` routes `{}`, already routed by router `{}` ({where_a})",
                        b.name,
                        b.prop("rule").unwrap_or(""),
                        a.name
                    ),
                );
                break;
            }
        }
    }
}

// ---------------------------------------------------------------- cross-stack

fn cross_stack_rules(sink: &mut Sink<'_>) {
    let world = sink.world;
    // Router names defined by several stacks.
    let mut by_name: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
    for r in &world.dynamic.routers {
        if r.origin.provider == Provider::Docker {
            by_name.entry(r.name.as_str()).or_default().push(r);
        }
    }
    for (name, routers) in by_name {
        let first = routers[0];
        if let Some(other) = routers
            .iter()
            .find(|r| r.origin.stack != first.origin.stack)
        {
            sink.report(
                "SA306",
                other.pos,
                router_stack(world, other),
                &format!("router:{name}"),
                format!(
                    "router `{name}` is defined by stacks `{}` and `{}` on the same daemon; Traefik merges or drops them",
                    router_stack(world, first).unwrap_or(""),
                    router_stack(world, other).unwrap_or("")
                ),
            );
        }
    }
    // container_name shared across stacks.
    let mut names: BTreeMap<String, Vec<(&str, Pos)>> = BTreeMap::new();
    for p in &world.projects {
        for s in &p.services {
            if let Some((n, pos)) = s.scalar("container_name") {
                names
                    .entry(n.to_string())
                    .or_default()
                    .push((p.stack.as_str(), pos));
            }
        }
    }
    for (name, uses) in names {
        if let Some(other) = uses.iter().find(|u| u.0 != uses[0].0) {
            sink.report(
                "SA702",
                other.1,
                Some(other.0),
                &format!("container_name:{name}"),
                format!(
                    "`container_name: {name}` is used by stacks `{}` and `{}`",
                    uses[0].0, other.0
                ),
            );
        }
    }
    // Networks external in one stack and created by another.
    let mut nets: BTreeMap<&str, Vec<(&str, bool, Pos)>> = BTreeMap::new();
    for p in &world.projects {
        for n in &p.networks {
            nets.entry(n.name.as_str())
                .or_default()
                .push((p.stack.as_str(), n.external, n.pos));
        }
    }
    for (name, decls) in nets {
        let ext = decls.iter().find(|d| d.1);
        let created = decls.iter().find(|d| !d.1);
        if let (Some(e), Some(c)) = (ext, created) {
            if e.0 != c.0 {
                sink.report(
                    "SA703",
                    c.2,
                    Some(c.0),
                    &format!("network:{name}"),
                    format!(
                        "network `{name}` is external in stack `{}` but created by stack `{}`; removing `{}` breaks `{}`",
                        e.0, c.0, c.0, e.0
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore() {
        assert!(dockerignore_excludes(".env\n", ".env"));
        assert!(!dockerignore_excludes(".env\n", "sub/.env"));
        assert!(dockerignore_excludes("**/.env\n", "sub/.env"));
        assert!(dockerignore_excludes("*.env\n!prod.env\n", "a.env"));
        assert!(!dockerignore_excludes("*.env\n!prod.env\n", "prod.env"));
        assert!(dockerignore_excludes("config\n", "config/.env"));
        assert!(dockerignore_excludes(".env*\n", ".env.local"));
    }

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASSWORD",
            "API_KEY",
            "JWT_SECRET",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "DB_PASSWORD_FILE",
            "DB_USER",
            "TOKEN_TTL",
            "KEY_PATH",
            "PASSWORD_RESET_TIMEOUT",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn ports() {
        let n = |s: &str| Node::scalar(Pos::default(), s);
        assert_eq!(port_binding(&n("80:80")).map(|p| p.0), Some(true));
        assert_eq!(
            port_binding(&n("127.0.0.1:80:80")).map(|p| p.0),
            Some(false)
        );
        assert_eq!(
            port_binding(&n("0.0.0.0:80:80/tcp")).map(|p| p.0),
            Some(true)
        );
        assert_eq!(port_binding(&n("[::1]:80:80")).map(|p| p.0), Some(false));
        assert_eq!(port_binding(&n("3000")).map(|p| p.0), Some(true));
    }
}
