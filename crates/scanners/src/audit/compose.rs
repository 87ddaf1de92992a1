//! Loading a compose stack the way Compose does: every `-f` file parsed, interpolated with the
//! `.env`/`--env-file` variables, normalized and merged in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::interp::{interpolate, parse_dotenv, InterpError, VarRef};
use super::tree::{load_yaml, Entry, Kind, Node, Pos, Scalar};
use super::{AuditError, Files, Profile, StackInput};

/// Top-level keys of the compose specification.
const TOP_LEVEL_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models",
];

/// A loaded, merged compose stack.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// Stack name as given by the caller.
    pub stack: String,
    /// Compose project name.
    pub project: String,
    /// Which expectations apply.
    pub profile: Option<Profile>,
    /// The project directory (directory of the first compose file).
    pub dir: PathBuf,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Top-level networks.
    pub networks: Vec<NetworkDecl>,
    /// Variable references with defaults, for the weak-default rule: (var, position).
    pub var_refs: Vec<(VarRef, Pos)>,
}

/// One service of a merged stack.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub pos: Pos,
    pub node: Node,
}

/// A top-level network declaration.
#[derive(Debug, Clone)]
pub(crate) struct NetworkDecl {
    pub key: String,
    /// The engine-side name.
    pub name: String,
    pub external: bool,
    pub pos: Pos,
}

impl Service {
    /// The interpolated image reference, if any.
    pub fn image(&self) -> Option<(&str, Pos)> {
        let n = self.node.get("image")?;
        n.text().map(|t| (t, n.pos))
    }

    /// Labels as (key, value, position).
    pub fn labels(&self) -> Vec<(&str, &str, Pos)> {
        self.node
            .get("labels")
            .map(|l| {
                l.entries()
                    .iter()
                    .map(|e| (e.key.as_str(), e.value.text().unwrap_or(""), e.key_pos))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Environment entries as (key, value scalar if set, position).
    pub fn environment(&self) -> Vec<(&str, Option<&Scalar>, Pos)> {
        self.node
            .get("environment")
            .map(|l| {
                l.entries()
                    .iter()
                    .map(|e| {
                        let v = match &e.value.kind {
                            Kind::Scalar(s) => Some(s),
                            _ => None,
                        };
                        (e.key.as_str(), v, e.key_pos)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Network keys the service attaches to, with positions. Empty when `network_mode` is set.
    pub fn network_keys(&self) -> Vec<(&str, Pos)> {
        if self.node.get("network_mode").is_some() {
            return Vec::new();
        }
        match self.node.entry("networks") {
            Some(e) if !e.value.entries().is_empty() => e
                .value
                .entries()
                .iter()
                .map(|n| (n.key.as_str(), n.key_pos))
                .collect(),
            _ => vec![("default", self.pos)],
        }
    }

    /// A scalar field's text and position.
    pub fn scalar(&self, key: &str) -> Option<(&str, Pos)> {
        let n = self.node.get(key)?;
        n.text().map(|t| (t, n.pos))
    }
}

impl Project {
    /// The engine-side name of a network key used by a service.
    pub fn network_name(&self, key: &str) -> String {
        match self.networks.iter().find(|n| n.key == key) {
            Some(n) => n.name.clone(),
            None => format!("{}_{}", self.project, key),
        }
    }
}

/// Loads and merges one stack.
pub(crate) fn load_stack(
    input: &StackInput,
    files: &mut Files,
    process_env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Project, AuditError> {
    let first = input
        .compose_files
        .first()
        .ok_or_else(|| AuditError::NoComposeFiles {
            stack: input.name.clone(),
        })?;
    let dir = first
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    // Variables: the env file, then the process environment on top (as Compose does).
    let mut vars = BTreeMap::new();
    let env_path = match &input.env_file {
        Some(p) => Some(p.clone()),
        None => {
            let p = dir.join(".env");
            p.is_file().then_some(p)
        }
    };
    if let Some(p) = env_path {
        let display = files.display(&p);
        let src = super::read_text(&p).map_err(|source| AuditError::Read {
            path: display.clone(),
            source,
        })?;
        vars = parse_dotenv(&src, process_env).map_err(|e| AuditError::Invalid {
            path: display,
            line: e.line,
            message: e.message,
        })?;
    }
    vars.extend(process_env.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut merged: Option<Node> = None;
    let mut var_refs = Vec::new();
    for path in &input.compose_files {
        let doc = load_file(path, files, &vars, &mut var_refs, warnings, 0)?;
        merged = Some(match merged {
            None => doc,
            Some(base) => merge_top(base, doc),
        });
    }
    let doc = merged.unwrap_or_else(|| Node::new(Pos::default(), Kind::Map(Vec::new())));
    for svc in doc.get("services").map(Node::entries).unwrap_or_default() {
        if let Some(ext) = svc.value.entry("extends") {
            let path = files
                .display
                .get(ext.key_pos.file)
                .cloned()
                .unwrap_or_default();
            warnings.push(format!(
                "{path}:{}: service `{}` uses `extends`, which the audit does not follow; the inherited settings are not checked",
                ext.key_pos.line, svc.key
            ));
        }
    }

    let project = sanitize_project(
        input
            .project
            .clone()
            .or_else(|| doc.get("name").and_then(Node::text).map(str::to_string))
            .unwrap_or_else(|| {
                std::fs::canonicalize(&dir)
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| input.name.clone())
            }),
    );

    let services = doc
        .get("services")
        .map(|s| {
            s.entries()
                .iter()
                .map(|e| Service {
                    name: e.key.clone(),
                    pos: e.key_pos,
                    node: e.value.clone(),
                })
                .collect()
        })
        .unwrap_or_default();

    let networks = doc
        .get("networks")
        .map(|n| {
            n.entries()
                .iter()
                .map(|e| {
                    let ext = e.value.get("external");
                    let external = ext.is_some_and(|x| x.as_bool() == Some(true) || x.is_map());
                    let explicit = e
                        .value
                        .get("name")
                        .and_then(Node::text)
                        .or_else(|| ext.and_then(|x| x.get("name")).and_then(Node::text));
                    let name = match (explicit, external) {
                        (Some(n), _) => n.to_string(),
                        (None, true) => e.key.clone(),
                        (None, false) => format!("{project}_{}", e.key),
                    };
                    NetworkDecl {
                        key: e.key.clone(),
                        name,
                        external,
                        pos: e.key_pos,
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    Ok(Project {
        stack: input.name.clone(),
        project,
        profile: input.profile,
        dir,
        services,
        networks,
        var_refs,
    })
}

/// How deep `include:` may nest (and the guard against include cycles).
const MAX_INCLUDE_DEPTH: usize = 5;

/// Reads, checks, interpolates and normalizes one compose file; files it names in `include:`
/// are loaded the same way (paths relative to the including file) and merged underneath it.
fn load_file(
    path: &Path,
    files: &mut Files,
    vars: &BTreeMap<String, String>,
    var_refs: &mut Vec<(VarRef, Pos)>,
    warnings: &mut Vec<String>,
    depth: usize,
) -> Result<Node, AuditError> {
    let display = files.display(path);
    let src = super::read_text(path).map_err(|source| AuditError::Read {
        path: display.clone(),
        source,
    })?;
    let id = files.add(display.clone(), path.to_path_buf());
    let mut doc = load_yaml(&src, id, &display)?;
    if !doc.is_map() {
        return Err(AuditError::Invalid {
            path: display,
            line: doc.pos.line,
            message: "a compose file must be a mapping".into(),
        });
    }
    for e in doc.entries() {
        if !TOP_LEVEL_KEYS.contains(&e.key.as_str()) && !e.key.starts_with("x-") {
            let hint = TOP_LEVEL_KEYS
                .iter()
                .map(|k| (edit_distance(k, &e.key), k))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(AuditError::UnknownKey {
                path: display,
                line: e.key_pos.line,
                key: e.key.clone(),
                hint,
            });
        }
    }
    let mut unset = Vec::new();
    interpolate_tree(&mut doc, vars, &display, var_refs, &mut unset)?;
    for name in unset {
        let w = format!("{display}: variable {name} is not set, defaulting to an empty string");
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    normalize(&mut doc, &display)?;

    let Some(include) = doc.entry("include").cloned() else {
        return Ok(doc);
    };
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(AuditError::Invalid {
            path: display,
            line: include.key_pos.line,
            message: format!("`include` nested more than {MAX_INCLUDE_DEPTH} levels (a cycle?)"),
        });
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut targets: Vec<&Node> = Vec::new();
    for item in include.value.items() {
        match item.get("path") {
            Some(p) if p.text().is_some() => targets.push(p),
            Some(p) => targets.extend(p.items()),
            None => targets.push(item),
        }
    }
    let mut base: Option<Node> = None;
    for t in targets {
        let Some(rel) = t.text() else {
            return Err(AuditError::Invalid {
                path: display,
                line: t.pos.line,
                message: "`include` entries must be paths or mappings with `path`".into(),
            });
        };
        warnings.push(format!(
            "{display}:{}: included file {rel} is merged with this project's variables and directory",
            t.pos.line
        ));
        let included = load_file(&dir.join(rel), files, vars, var_refs, warnings, depth + 1)?;
        base = Some(match base {
            None => included,
            Some(b) => merge_top(b, included),
        });
    }
    if let Kind::Map(entries) = &mut doc.kind {
        entries.retain(|e| e.key != "include");
    }
    Ok(match base {
        None => doc,
        Some(b) => merge_top(b, doc),
    })
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn sanitize_project(name: String) -> String {
    name.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn interpolate_tree(
    node: &mut Node,
    vars: &BTreeMap<String, String>,
    path: &str,
    refs: &mut Vec<(VarRef, Pos)>,
    unset: &mut Vec<String>,
) -> Result<(), AuditError> {
    let pos = node.pos;
    match &mut node.kind {
        Kind::Scalar(s) => {
            if !s.raw.contains('$') {
                return Ok(());
            }
            let r = interpolate(&s.raw, vars).map_err(|e| match e {
                InterpError::Required { name, message } => AuditError::MissingVariable {
                    path: path.to_string(),
                    line: pos.line,
                    name,
                    message,
                },
                InterpError::Syntax(message) => AuditError::Invalid {
                    path: path.to_string(),
                    line: pos.line,
                    message,
                },
            })?;
            s.text = r.text;
            refs.extend(r.refs.into_iter().map(|v| (v, pos)));
            for u in r.unset {
                if !unset.contains(&u) {
                    unset.push(u);
                }
            }
        }
        Kind::Seq(items) => {
            for i in items {
                interpolate_tree(i, vars, path, refs, unset)?;
            }
        }
        Kind::Map(entries) => {
            for e in entries {
                interpolate_tree(&mut e.value, vars, path, refs, unset)?;
            }
        }
        Kind::Null => {}
    }
    Ok(())
}

/// Turns list forms into mappings so files merge by key.
fn normalize(doc: &mut Node, path: &str) -> Result<(), AuditError> {
    let Kind::Map(top) = &mut doc.kind else {
        return Ok(());
    };
    for e in top.iter_mut() {
        if e.key != "services" {
            continue;
        }
        match &mut e.value.kind {
            Kind::Map(services) => {
                for s in services.iter_mut() {
                    if matches!(s.value.kind, Kind::Null) {
                        s.value.kind = Kind::Map(Vec::new());
                    }
                    let Kind::Map(fields) = &mut s.value.kind else {
                        return Err(AuditError::Invalid {
                            path: path.to_string(),
                            line: s.key_pos.line,
                            message: format!("service `{}` must be a mapping", s.key),
                        });
                    };
                    for f in fields.iter_mut() {
                        match f.key.as_str() {
                            "environment" | "labels" | "annotations" | "sysctls" => {
                                list_to_map(&mut f.value, '=')
                            }
                            "networks" | "depends_on" | "links" => list_to_map(&mut f.value, '\0'),
                            "build" => {
                                if let Kind::Map(b) = &mut f.value.kind {
                                    for be in b.iter_mut() {
                                        if be.key == "args" || be.key == "labels" {
                                            list_to_map(&mut be.value, '=');
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Kind::Null => {}
            _ => {
                return Err(AuditError::Invalid {
                    path: path.to_string(),
                    line: e.key_pos.line,
                    message: "`services` must be a mapping".into(),
                })
            }
        }
    }
    Ok(())
}

/// `["K=V", "K2"]` → `{K: V, K2: null}`; with `sep == '\0'`, `["a", "b"]` → `{a: null, b: null}`.
fn list_to_map(node: &mut Node, sep: char) {
    let Kind::Seq(items) = &node.kind else {
        return;
    };
    let mut entries = Vec::new();
    for item in items {
        let Kind::Scalar(s) = &item.kind else {
            continue;
        };
        let (key, value) = if sep == '\0' {
            (s.text.clone(), Node::new(item.pos, Kind::Null))
        } else {
            match (s.text.split_once(sep), s.raw.split_once(sep)) {
                (Some((k, v)), raw) => (
                    k.to_string(),
                    Node::new(
                        item.pos,
                        Kind::Scalar(Scalar {
                            text: v.to_string(),
                            raw: raw.map_or_else(|| v.to_string(), |(_, r)| r.to_string()),
                        }),
                    ),
                ),
                (None, _) => (s.text.clone(), Node::new(item.pos, Kind::Null)),
            }
        };
        entries.push(Entry {
            key,
            key_pos: item.pos,
            value,
        });
    }
    node.kind = Kind::Map(entries);
}

fn merge_top(base: Node, over: Node) -> Node {
    merge_map(base, over, |key, b, o| match key {
        "services" => merge_map(b, o, |_, bs, os| merge_map(bs, os, merge_service_field)),
        _ => deep_merge(b, o),
    })
}

/// Merges two mappings key by key with `f` for keys present in both; `!reset` removes a key and
/// `!override` replaces it.
fn merge_map(base: Node, over: Node, f: impl Fn(&str, Node, Node) -> Node) -> Node {
    let pos = base.pos;
    let (Kind::Map(mut be), Kind::Map(oe)) = (base.kind.clone(), over.kind.clone()) else {
        return over;
    };
    for o in oe {
        let tag = o.value.tag.clone();
        let existing = be.iter().position(|b| b.key == o.key);
        match (tag.as_deref(), existing) {
            (Some("reset"), Some(i)) => {
                be.remove(i);
            }
            (Some("reset"), None) => {}
            (Some("override"), Some(i)) => be[i] = o,
            (_, Some(i)) => {
                let b = be[i].clone();
                be[i] = Entry {
                    key: o.key.clone(),
                    key_pos: o.key_pos,
                    value: f(&o.key, b.value, o.value),
                };
            }
            (_, None) => be.push(o),
        }
    }
    Node::new(pos, Kind::Map(be))
}

fn deep_merge(base: Node, over: Node) -> Node {
    if base.is_map() && over.is_map() {
        merge_map(base, over, |_, b, o| deep_merge(b, o))
    } else {
        over
    }
}

fn merge_service_field(key: &str, base: Node, over: Node) -> Node {
    match key {
        "ports" | "expose" | "dns" | "dns_search" | "tmpfs" | "cap_add" | "cap_drop"
        | "security_opt" | "external_links" | "env_file" | "configs" | "secrets" | "devices"
        | "group_add" => append_unique(base, over, |n| n.clone()),
        "volumes" => append_unique(base, over, volume_target),
        _ => deep_merge(base, over),
    }
}

fn append_unique<K: PartialEq>(base: Node, over: Node, key: impl Fn(&Node) -> K) -> Node {
    let (Kind::Seq(mut b), Kind::Seq(o)) = (base.kind.clone(), over.kind.clone()) else {
        return over;
    };
    for item in o {
        let k = key(&item);
        match b.iter().position(|x| key(x) == k) {
            Some(i) => b[i] = item,
            None => b.push(item),
        }
    }
    Node::new(base.pos, Kind::Seq(b))
}

/// The container path a volume entry mounts at (its merge key).
fn volume_target(n: &Node) -> Node {
    let target = match n.text() {
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            match parts.len() {
                1 => parts[0].to_string(),
                _ => parts[1].to_string(),
            }
        }
        None => n
            .get("target")
            .and_then(Node::text)
            .unwrap_or_default()
            .to_string(),
    };
    Node::scalar(Pos::default(), target)
}

/// Splits a short-syntax volume into (source, target, options).
pub(crate) fn volume_parts(n: &Node) -> Option<(String, String, String)> {
    if let Some(t) = n.text() {
        let parts: Vec<&str> = t.splitn(3, ':').collect();
        return Some(match parts.as_slice() {
            [target] => (String::new(), target.to_string(), String::new()),
            [src, target] => (src.to_string(), target.to_string(), String::new()),
            [src, target, opts] => (src.to_string(), target.to_string(), opts.to_string()),
            _ => return None,
        });
    }
    if n.is_map() {
        let get = |k: &str| n.get(k).and_then(Node::text).unwrap_or("").to_string();
        let ro = n.get("read_only").and_then(Node::as_bool) == Some(true);
        return Some((
            get("source"),
            get("target"),
            if ro { "ro".into() } else { String::new() },
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Node {
        let mut n = load_yaml(src, 0, "f").expect("yaml");
        normalize(&mut n, "f").expect("normalize");
        n
    }

    #[test]
    fn merge_rules() {
        let a = tree(
            "services:\n  api:\n    image: a:1\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['./a:/data']\n    command: [x]\n",
        );
        let b = tree(
            "services:\n  api:\n    image: a:2\n    environment: {B: 3}\n    ports: ['81:81']\n    volumes: ['./b:/data']\n    command: [y]\n    labels: !reset []\n",
        );
        let m = merge_top(a, b);
        let api = m.get("services").and_then(|s| s.get("api")).expect("api");
        assert_eq!(api.get("image").and_then(Node::text), Some("a:2"));
        let env = api.get("environment").expect("env");
        assert_eq!(env.get("A").and_then(Node::text), Some("1"));
        assert_eq!(env.get("B").and_then(Node::text), Some("3"));
        assert_eq!(api.get("ports").map(|p| p.items().len()), Some(2));
        let vols = api.get("volumes").expect("vols");
        assert_eq!(vols.items().len(), 1);
        assert_eq!(vols.items()[0].text(), Some("./b:/data"));
        assert_eq!(
            api.get("command").map(|c| c.items()[0].text()),
            Some(Some("y"))
        );
        assert!(api.get("labels").is_none());
    }
}
