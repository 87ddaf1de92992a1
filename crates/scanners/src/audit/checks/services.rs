//! Rules on one service: exposure, networks, the docker socket, images and privilege.

use super::super::compose::{volume_parts, Project, Service};
use super::super::traefik::is_traefik_image;
use super::super::tree::{Node, Pos};
use super::super::world::World;
use super::super::Profile;
use super::secrets::{build_context_rules, secret_rules};
use super::Sink;

// ---------------------------------------------------------------- services

pub(super) const DATASTORES: &[&str] = &[
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
pub(super) fn image_name(image: &str) -> &str {
    let repo = image.split('@').next().unwrap_or(image);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last.split(':').next().unwrap_or(last)
}

pub(super) fn is_datastore(s: &Service) -> bool {
    let Some((image, _)) = s.image() else {
        return false;
    };
    let name = image_name(image).to_ascii_lowercase();
    name.split(['-', '_', '.']).any(|t| DATASTORES.contains(&t))
}

pub(super) fn is_edge(s: &Service) -> bool {
    s.image().is_some_and(|(i, _)| is_traefik_image(i))
}

pub(super) fn is_socket_proxy(s: &Service) -> bool {
    s.image()
        .is_some_and(|(i, _)| image_name(i).to_ascii_lowercase().contains("socket-proxy"))
}

/// Networks the edge proxy joins, by engine name.
pub(super) fn public_networks(world: &World) -> Vec<String> {
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
pub(super) fn port_binding(n: &Node) -> Option<(bool, String)> {
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

pub(super) fn service_rules(
    sink: &mut Sink<'_>,
    project: &Project,
    s: &Service,
    public: &[String],
) {
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

pub(super) const PRERELEASE: &[&str] = &[
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

pub(super) fn image_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
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

pub(super) fn privilege_rules(sink: &mut Sink<'_>, project: &Project, s: &Service) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
