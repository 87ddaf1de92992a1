//! Traefik configuration as the audit sees it: the static configuration (files and the edge
//! container's `--flags`), and the dynamic routers and middlewares from Docker labels and the
//! file provider.

use std::collections::BTreeMap;

use super::tree::{Kind, Node, Pos};

/// Flattened static configuration: lowercase dotted keys (`entrypoints.web.address`).
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticConfig {
    pub entries: BTreeMap<String, (String, Pos)>,
    /// Whether any static configuration was seen at all.
    pub present: bool,
}

impl StaticConfig {
    pub fn get(&self, key: &str) -> Option<&(String, Pos)> {
        self.entries.get(key)
    }

    /// Whether any key starts with `prefix.` (or equals it).
    pub fn has(&self, prefix: &str) -> bool {
        let dotted = format!("{prefix}.");
        self.entries
            .keys()
            .any(|k| k == prefix || k.starts_with(&dotted))
    }

    /// The first position of a key under `prefix`.
    pub fn pos_of(&self, prefix: &str) -> Option<Pos> {
        let dotted = format!("{prefix}.");
        self.entries
            .iter()
            .find(|(k, _)| *k == prefix || k.starts_with(&dotted))
            .map(|(_, (_, p))| *p)
    }

    /// The distinct names one level below `prefix` (`entrypoints` → `web`, `websecure`).
    pub fn children(&self, prefix: &str) -> Vec<String> {
        let dotted = format!("{prefix}.");
        let mut out: Vec<String> = Vec::new();
        for k in self.entries.keys() {
            if let Some(rest) = k.strip_prefix(&dotted) {
                let name = rest.split('.').next().unwrap_or(rest).to_string();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Adds a flattened file tree.
    pub fn add_tree(&mut self, node: &Node) {
        self.present = true;
        flatten(node, String::new(), true, &mut |k, v, p| {
            self.entries.insert(k, (v, p));
        });
    }

    /// Adds `--a.b.c=value` command-line flags.
    pub fn add_flag(&mut self, flag: &str, pos: Pos) -> bool {
        let Some(body) = flag.trim().strip_prefix("--") else {
            return false;
        };
        let (k, v) = body.split_once('=').unwrap_or((body, "true"));
        self.present = true;
        self.entries
            .insert(k.to_ascii_lowercase(), (v.to_string(), pos));
        true
    }
}

/// Flattens a tree into dotted keys; scalar lists are joined with `,`.
pub(crate) fn flatten(
    node: &Node,
    prefix: String,
    lower: bool,
    f: &mut dyn FnMut(String, String, Pos),
) {
    let join = |prefix: &str, key: &str| {
        let key = if lower {
            key.to_ascii_lowercase()
        } else {
            key.to_string()
        };
        if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        }
    };
    match &node.kind {
        Kind::Map(entries) => {
            if entries.is_empty() && !prefix.is_empty() {
                f(prefix.clone(), String::new(), node.pos);
            }
            for e in entries {
                let key = join(&prefix, &e.key);
                if matches!(&e.value.kind, Kind::Map(m) if !m.is_empty()) {
                    // The table itself, so findings about it point at its key.
                    f(key.clone(), String::new(), e.key_pos);
                }
                flatten(&e.value, key, lower, f);
            }
        }
        Kind::Seq(items) => {
            if items
                .iter()
                .all(|i| !matches!(i.kind, Kind::Map(_) | Kind::Seq(_)))
            {
                let joined: Vec<&str> = items.iter().filter_map(Node::text).collect();
                f(prefix, joined.join(","), node.pos);
            } else {
                for (i, item) in items.iter().enumerate() {
                    flatten(item, format!("{prefix}[{i}]"), lower, f);
                }
            }
        }
        Kind::Scalar(s) => f(prefix, s.text.clone(), node.pos),
        Kind::Null => f(prefix, String::new(), node.pos),
    }
}

/// Which Traefik provider defined a router or middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Provider {
    Docker,
    File,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Docker => "docker",
            Provider::File => "file",
        }
    }
}

/// Where a dynamic object was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub provider: Provider,
    /// Index of the stack for Docker labels.
    pub stack: Option<usize>,
    /// Compose service for Docker labels.
    pub service: Option<String>,
}

/// A router or a middleware: a name and its lowercase dotted properties.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub name: String,
    pub origin: Origin,
    pub pos: Pos,
    pub props: BTreeMap<String, (String, Pos)>,
}

impl Object {
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(|(v, _)| v.as_str())
    }
    pub fn prop_pos(&self, key: &str) -> Pos {
        self.props.get(key).map_or(self.pos, |(_, p)| *p)
    }
    pub fn has(&self, prefix: &str) -> bool {
        let dotted = format!("{prefix}.");
        self.props
            .keys()
            .any(|k| k == prefix || k.starts_with(&dotted))
    }
    /// A comma-separated list property.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.prop(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The middleware type (`basicauth`, `headers`, ...): the first property segment.
    pub fn middleware_type(&self) -> Option<String> {
        self.props
            .keys()
            .next()
            .map(|k| k.split('.').next().unwrap_or(k).to_string())
    }
}

/// All dynamic configuration known to one daemon.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dynamic {
    pub routers: Vec<Object>,
    pub middlewares: Vec<Object>,
}

/// Router properties Traefik knows (lowercase).
pub(crate) const ROUTER_KEYS: &[&str] = &[
    "entrypoints",
    "rule",
    "rulesyntax",
    "priority",
    "middlewares",
    "service",
    "tls",
    "observability",
];

/// Middleware types Traefik knows (lowercase).
pub(crate) const MIDDLEWARE_TYPES: &[&str] = &[
    "addprefix",
    "basicauth",
    "buffering",
    "chain",
    "circuitbreaker",
    "compress",
    "contenttype",
    "digestauth",
    "errors",
    "forwardauth",
    "grpcweb",
    "headers",
    "ipallowlist",
    "ipwhitelist",
    "inflightreq",
    "passtlsclientcert",
    "plugin",
    "ratelimit",
    "redirectregex",
    "redirectscheme",
    "replacepath",
    "replacepathregex",
    "retry",
    "stripprefix",
    "stripprefixregex",
    "encodedcharacters",
];

impl Dynamic {
    /// Reads `traefik.http.routers.*` and `traefik.http.middlewares.*` labels of one service.
    pub fn add_labels(&mut self, labels: &[(&str, &str, Pos)], origin: &Origin) {
        // Objects of this origin are only ever the ones added by this call.
        let starts = [self.routers.len(), self.middlewares.len()];
        for (key, value, pos) in labels {
            let lower = key.to_ascii_lowercase();
            let (list, rest) = if lower.starts_with("traefik.http.routers.") {
                (0, &key["traefik.http.routers.".len()..])
            } else if lower.starts_with("traefik.http.middlewares.") {
                (1, &key["traefik.http.middlewares.".len()..])
            } else {
                continue;
            };
            let Some((name, prop)) = rest.split_once('.') else {
                continue;
            };
            let objs = if list == 0 {
                &mut self.routers
            } else {
                &mut self.middlewares
            };
            let start = starts[list];
            let obj = match objs[start..]
                .iter()
                .position(|o| o.name == name && o.origin == *origin)
            {
                Some(i) => &mut objs[start + i],
                None => {
                    objs.push(Object {
                        name: name.to_string(),
                        origin: origin.clone(),
                        pos: *pos,
                        props: BTreeMap::new(),
                    });
                    let last = objs.len() - 1;
                    &mut objs[last]
                }
            };
            obj.props
                .insert(prop.to_ascii_lowercase(), (value.to_string(), *pos));
        }
    }

    /// Reads `http.routers` and `http.middlewares` of a file-provider document.
    pub fn add_file(&mut self, http: &Node) {
        let origin = Origin {
            provider: Provider::File,
            stack: None,
            service: None,
        };
        for (section, is_router) in [("routers", true), ("middlewares", false)] {
            let Some(sec) = http.get(section) else {
                continue;
            };
            for e in sec.entries() {
                let mut props = BTreeMap::new();
                flatten(&e.value, String::new(), true, &mut |k, v, p| {
                    props.insert(k, (v, p));
                });
                let obj = Object {
                    name: e.key.clone(),
                    origin: origin.clone(),
                    pos: e.key_pos,
                    props,
                };
                if is_router {
                    self.routers.push(obj);
                } else {
                    self.middlewares.push(obj);
                }
            }
        }
    }

    /// Resolves a middleware reference made by `router`.
    pub fn resolve(&self, reference: &str, router: &Object) -> Resolved<'_> {
        let (name, provider) = match reference.rsplit_once('@') {
            Some((n, p)) => match p {
                "docker" | "swarm" => (n, Some(Provider::Docker)),
                "file" => (n, Some(Provider::File)),
                _ => return Resolved::OtherProvider,
            },
            None => (reference, None),
        };
        let provider = provider.unwrap_or(router.origin.provider);
        match self
            .middlewares
            .iter()
            .find(|m| m.name == name && m.origin.provider == provider)
        {
            Some(m) => Resolved::Found(m),
            None => Resolved::Missing,
        }
    }

    /// The middleware types a router applies, following chains.
    pub fn applied(&self, router: &Object) -> Vec<&Object> {
        let mut out: Vec<&Object> = Vec::new();
        let mut stack: Vec<(String, &Object, usize)> = router
            .list("middlewares")
            .into_iter()
            .map(|r| (r, router, 0))
            .collect();
        while let Some((reference, from, depth)) = stack.pop() {
            if depth > 10 {
                continue;
            }
            if let Resolved::Found(m) = self.resolve(&reference, from) {
                if out.iter().any(|o| std::ptr::eq(*o, m)) {
                    continue;
                }
                out.push(m);
                if m.middleware_type().as_deref() == Some("chain") {
                    for r in m.list("chain.middlewares") {
                        stack.push((r, m, depth + 1));
                    }
                }
            }
        }
        out
    }
}

/// The outcome of resolving a middleware reference.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    Found(&'a Object),
    Missing,
    /// `@internal`, `@kubernetescrd`, ...: not checked.
    OtherProvider,
}

/// Static configuration top-level keys (lowercase).
pub(crate) const STATIC_KEYS: &[&str] = &[
    "entrypoints",
    "providers",
    "api",
    "certificatesresolvers",
    "log",
    "accesslog",
    "global",
    "ping",
    "metrics",
    "tracing",
    "serverstransport",
    "tcpserverstransport",
    "experimental",
    "hostresolver",
    "spiffe",
    "core",
    "ocsp",
];

/// Dynamic configuration sections (lowercase).
pub(crate) const DYNAMIC_KEYS: &[&str] = &["http", "tcp", "udp", "tls"];

/// HTTP sections of the dynamic configuration (lowercase).
pub(crate) const HTTP_SECTIONS: &[&str] =
    &["routers", "middlewares", "services", "serverstransports"];

/// Whether an image reference names Traefik.
pub(crate) fn is_traefik_image(image: &str) -> bool {
    let repo = image.split('@').next().unwrap_or(image);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let name = last.split(':').next().unwrap_or(last);
    name == "traefik"
}
