//! Cross-stack rules: only when several stacks share one daemon.

use std::collections::BTreeMap;

use super::super::traefik::{Object, Provider};
use super::super::tree::Pos;
use super::routers::router_stack;
use super::Sink;

// ---------------------------------------------------------------- cross-stack

pub(super) fn cross_stack_rules(sink: &mut Sink<'_>) {
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
