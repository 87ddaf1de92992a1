//! Everything one audit knows about a daemon: the stacks, the Traefik static configuration and
//! every router and middleware, plus findings about misplaced Traefik keys found while loading.

use std::path::{Path, PathBuf};

use super::compose::{volume_parts, Project};
use super::traefik::{
    is_traefik_image, Dynamic, Origin, Provider, StaticConfig, DYNAMIC_KEYS, HTTP_SECTIONS,
    MIDDLEWARE_TYPES, ROUTER_KEYS, STATIC_KEYS,
};
use super::tree::{load_toml, load_yaml, Node, Pos};
use super::{AuditError, AuditOptions, Files, Profile};

/// A misplaced key found while loading Traefik files (rule SA701).
#[derive(Debug, Clone)]
pub(crate) struct Misnested {
    pub pos: Pos,
    pub subject: String,
    pub message: String,
}

/// The audit's view of one daemon.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub projects: Vec<Project>,
    pub statics: StaticConfig,
    pub dynamic: Dynamic,
    pub behind_cdn: bool,
    pub files: Files,
    pub misnested: Vec<Misnested>,
    pub warnings: Vec<String>,
}

impl World {
    pub fn build(
        projects: Vec<Project>,
        traefik_configs: &[PathBuf],
        options: &AuditOptions,
        files: &mut Files,
    ) -> Result<World, AuditError> {
        let mut statics = StaticConfig::default();
        let mut dynamic = Dynamic::default();
        let mut misnested = Vec::new();
        let mut warnings = Vec::new();

        // Traefik files: explicit ones, then configuration mounted into the edge container.
        let mut config_files: Vec<PathBuf> = Vec::new();
        for p in traefik_configs {
            collect_config_files(p, &mut config_files, files, 0)?;
        }
        for project in &projects {
            for s in &project.services {
                if !s.image().is_some_and(|(i, _)| is_traefik_image(i)) {
                    continue;
                }
                for v in s.node.get("volumes").map(Node::items).unwrap_or_default() {
                    let Some((src, _, _)) = volume_parts(v) else {
                        continue;
                    };
                    if !(src.starts_with('.') || src.starts_with('/')) {
                        continue;
                    }
                    let host = project.dir.join(&src);
                    let is_config = host.is_dir()
                        || [".yml", ".yaml", ".toml"].iter().any(|e| src.ends_with(e));
                    if is_config && host.exists() {
                        collect_config_files(&host, &mut config_files, files, 0)?;
                    }
                }
            }
        }
        let mut seen: Vec<PathBuf> = Vec::new();
        for path in config_files {
            let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.contains(&canon) {
                continue;
            }
            seen.push(canon);
            load_traefik_file(
                &path,
                files,
                &mut statics,
                &mut dynamic,
                &mut misnested,
                &mut warnings,
            )?;
        }

        // Static flags of the edge containers.
        for project in &projects {
            for s in &project.services {
                if !s.image().is_some_and(|(i, _)| is_traefik_image(i)) {
                    continue;
                }
                if let Some(cmd) = s.node.get("command") {
                    match cmd.text() {
                        Some(t) => {
                            for w in t.split_whitespace() {
                                statics.add_flag(w, cmd.pos);
                            }
                        }
                        None => {
                            for item in cmd.items() {
                                if let Some(t) = item.text() {
                                    statics.add_flag(t, item.pos);
                                }
                            }
                        }
                    }
                }
            }
        }

        // Docker labels of the containers Traefik will see.
        let exposed_by_default = statics
            .get("providers.docker.exposedbydefault")
            .map(|(v, _)| super::tree::parse_bool(v) != Some(false))
            .unwrap_or(true);
        for (i, project) in projects.iter().enumerate() {
            for s in &project.services {
                let labels = s.labels();
                let enabled = labels
                    .iter()
                    .find(|(k, _, _)| k.eq_ignore_ascii_case("traefik.enable"))
                    .and_then(|(_, v, _)| super::tree::parse_bool(v));
                let active = match enabled {
                    Some(e) => e,
                    None => exposed_by_default,
                };
                if !active {
                    continue;
                }
                dynamic.add_labels(
                    &labels,
                    &Origin {
                        provider: Provider::Docker,
                        stack: Some(i),
                        service: Some(s.name.clone()),
                    },
                );
            }
        }

        let behind_cdn = options.behind_cdn
            || statics.entries.iter().any(|(k, (v, _))| {
                k.starts_with("entrypoints.")
                    && (k.contains(".forwardedheaders.trustedips")
                        || (k.ends_with(".forwardedheaders.insecure")
                            && super::tree::parse_bool(v) == Some(true))
                        || k.contains(".proxyprotocol."))
            });

        Ok(World {
            projects,
            statics,
            dynamic,
            behind_cdn,
            files: files.clone(),
            misnested,
            warnings,
        })
    }

    /// The profile that applies to a router or middleware.
    pub fn profile_of(&self, origin: &Origin) -> Option<Profile> {
        match origin.stack {
            Some(i) => self.projects.get(i).and_then(|p| p.profile),
            None => {
                let first = self.projects.first().and_then(|p| p.profile)?;
                self.projects
                    .iter()
                    .all(|p| p.profile == Some(first))
                    .then_some(first)
            }
        }
    }
}

/// Config files under `p` (Traefik's file provider reads directories recursively); the depth
/// limit stops symlink loops.
fn collect_config_files(
    p: &Path,
    out: &mut Vec<PathBuf>,
    files: &Files,
    depth: usize,
) -> Result<(), AuditError> {
    if depth > 8 {
        return Ok(());
    }
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|source| AuditError::Read {
                path: files.display(p),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let name = e.to_string_lossy().to_string();
            if e.is_dir() || [".yml", ".yaml", ".toml"].iter().any(|x| name.ends_with(x)) {
                collect_config_files(&e, out, files, depth + 1)?;
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

fn load_traefik_file(
    path: &Path,
    files: &mut Files,
    statics: &mut StaticConfig,
    dynamic: &mut Dynamic,
    misnested: &mut Vec<Misnested>,
    warnings: &mut Vec<String>,
) -> Result<(), AuditError> {
    let display = files.display(path);
    let src = super::read_text(path).map_err(|source| AuditError::Read {
        path: display.clone(),
        source,
    })?;
    let id = files.add(display.clone(), path.to_path_buf());
    let doc = if display.ends_with(".toml") {
        load_toml(&src, id, &display)?
    } else {
        load_yaml(&src, id, &display)?
    };
    let keys: Vec<String> = doc
        .entries()
        .iter()
        .map(|e| e.key.to_ascii_lowercase())
        .collect();
    let is_static = keys.iter().any(|k| STATIC_KEYS.contains(&k.as_str()));
    let is_dynamic_like = keys
        .iter()
        .any(|k| DYNAMIC_KEYS.contains(&k.as_str()) || HTTP_SECTIONS.contains(&k.as_str()));
    if !is_static && !is_dynamic_like && !keys.is_empty() {
        warnings.push(format!(
            "{display}: neither Traefik static nor dynamic configuration, skipped"
        ));
        return Ok(());
    }
    if is_static {
        // Keep only the static keys; dynamic keys in the static file are ignored by Traefik.
        for e in doc.entries() {
            let k = e.key.to_ascii_lowercase();
            if STATIC_KEYS.contains(&k.as_str()) {
                let mut one = Node::new(doc.pos, super::tree::Kind::Map(vec![e.clone()]));
                one.pos = e.key_pos;
                statics.add_tree(&one);
            } else if DYNAMIC_KEYS.contains(&k.as_str()) || HTTP_SECTIONS.contains(&k.as_str()) {
                misnested.push(Misnested {
                    pos: e.key_pos,
                    subject: format!("{display}:{}", e.key),
                    message: format!(
                        "`{}` is dynamic configuration inside the static configuration file {display}; Traefik ignores it there",
                        e.key
                    ),
                });
            } else {
                misnested.push(Misnested {
                    pos: e.key_pos,
                    subject: format!("{display}:{}", e.key),
                    message: format!("unknown static configuration key `{}`", e.key),
                });
            }
        }
        return Ok(());
    }
    // Dynamic configuration.
    for e in doc.entries() {
        let k = e.key.to_ascii_lowercase();
        if HTTP_SECTIONS.contains(&k.as_str()) {
            misnested.push(Misnested {
                pos: e.key_pos,
                subject: format!("{display}:{}", e.key),
                message: format!(
                    "`{}` at the top level of {display}; it belongs under `http:` and is ignored here",
                    e.key
                ),
            });
        } else if !DYNAMIC_KEYS.contains(&k.as_str()) {
            misnested.push(Misnested {
                pos: e.key_pos,
                subject: format!("{display}:{}", e.key),
                message: format!("unknown dynamic configuration key `{}`", e.key),
            });
        }
    }
    if let Some(http) = doc
        .entries()
        .iter()
        .find(|e| e.key.eq_ignore_ascii_case("http"))
    {
        for e in http.value.entries() {
            if !HTTP_SECTIONS.contains(&e.key.to_ascii_lowercase().as_str()) {
                misnested.push(Misnested {
                    pos: e.key_pos,
                    subject: format!("{display}:http.{}", e.key),
                    message: format!(
                        "`http.{}` is not a section of the HTTP configuration (routers, middlewares, services, serversTransports)",
                        e.key
                    ),
                });
            }
        }
        let section = |name: &str| {
            http.value
                .entries()
                .iter()
                .find(|e| e.key.eq_ignore_ascii_case(name))
                .map(|e| &e.value)
        };
        if let Some(routers) = section("routers") {
            for r in routers.entries() {
                for p in r.value.entries() {
                    if !ROUTER_KEYS.contains(&p.key.to_ascii_lowercase().as_str()) {
                        misnested.push(Misnested {
                            pos: p.key_pos,
                            subject: format!("{display}:router:{}:{}", r.key, p.key),
                            message: format!(
                                "router `{}` has `{}`, which is not a router option; it is ignored",
                                r.key, p.key
                            ),
                        });
                    }
                }
            }
        }
        if let Some(mws) = section("middlewares") {
            for m in mws.entries() {
                for p in m.value.entries() {
                    if !MIDDLEWARE_TYPES.contains(&p.key.to_ascii_lowercase().as_str()) {
                        misnested.push(Misnested {
                            pos: p.key_pos,
                            subject: format!("{display}:middleware:{}:{}", m.key, p.key),
                            message: format!(
                                "middleware `{}` has `{}`, which is not a middleware type; options belong under the type (e.g. `basicAuth:`)",
                                m.key, p.key
                            ),
                        });
                    }
                }
            }
        }
        // Normalize section names to lowercase for the reader.
        let mut lowered = http.value.clone();
        if let super::tree::Kind::Map(entries) = &mut lowered.kind {
            for e in entries.iter_mut() {
                e.key = e.key.to_ascii_lowercase();
            }
        }
        dynamic.add_file(&lowered);
    }
    Ok(())
}
