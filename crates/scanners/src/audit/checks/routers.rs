//! Edge and router rules: static configuration, TLS, middlewares, profiles, Host rules.

use std::collections::BTreeMap;

use super::super::traefik::{Object, Resolved};
use super::super::tree::parse_bool;
use super::super::world::World;
use super::super::Profile;
use super::Sink;

// ---------------------------------------------------------------- edge (static config)

pub(super) fn address_port(addr: &str) -> Option<u16> {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
}

/// Entry points whose routers get TLS by default.
pub(super) fn tls_entrypoints(world: &World) -> Vec<String> {
    world
        .statics
        .children("entrypoints")
        .into_iter()
        .filter(|ep| world.statics.has(&format!("entrypoints.{ep}.http.tls")))
        .collect()
}

pub(super) fn edge_rules(sink: &mut Sink<'_>) {
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

pub(super) fn router_entrypoints(world: &World, r: &Object) -> Vec<String> {
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

pub(super) fn is_redirect_router(world: &World, r: &Object) -> bool {
    world.dynamic.applied(r).iter().any(|m| {
        m.middleware_type().as_deref() == Some("redirectscheme")
            && m.prop("redirectscheme.scheme")
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    })
}

pub(super) fn router_has_tls(world: &World, r: &Object) -> bool {
    if r.has("tls") && r.prop("tls").is_none_or(|v| parse_bool(v) != Some(false)) {
        return true;
    }
    // Entrypoints with TLS by default are fine; so are entrypoints whose static configuration
    // redirects every request to HTTPS (the redirect router takes precedence).
    let eps = router_entrypoints(world, r);
    let tls_eps = tls_entrypoints(world);
    !eps.is_empty()
        && eps.iter().all(|e| {
            tls_eps.contains(e)
                || world
                    .statics
                    .has(&format!("entrypoints.{e}.http.redirections.entrypoint.to"))
        })
}

pub(super) fn router_stack<'a>(world: &'a World, r: &Object) -> Option<&'a str> {
    r.origin
        .stack
        .and_then(|i| world.projects.get(i))
        .map(|p| p.stack.as_str())
}

pub(super) fn router_subject(world: &World, r: &Object) -> String {
    match router_stack(world, r) {
        Some(s) => format!("{s}:router:{}@{}", r.name, r.origin.provider.as_str()),
        None => format!("router:{}@{}", r.name, r.origin.provider.as_str()),
    }
}

pub(super) fn router_rules(sink: &mut Sink<'_>) {
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

    // IP allowlists behind a CDN: the client address must come from X-Forwarded-For
    // (`ipStrategy`), and Traefik keeps that header only from trusted proxies.
    if world.behind_cdn {
        let trusted = world.statics.entries.iter().any(|(k, (v, _))| {
            k.starts_with("entrypoints.")
                && (k.ends_with(".forwardedheaders.trustedips") && !v.is_empty()
                    || k.ends_with(".forwardedheaders.insecure") && parse_bool(v) == Some(true))
        });
        for m in &world.dynamic.middlewares {
            let Some(t) = m.middleware_type() else {
                continue;
            };
            if !allow_types.contains(&t.as_str()) {
                continue;
            }
            let strategy = m.has(&format!("{t}.ipstrategy.depth"))
                || m.has(&format!("{t}.ipstrategy.excludedips"));
            let mut missing = Vec::new();
            if !strategy {
                missing.push("`ipStrategy.depth`");
            }
            if !trusted {
                missing.push("trusted forwarded-header IPs on the entrypoints");
            }
            if missing.is_empty() {
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
                    "IP allowlist `{}` sits behind a CDN/proxy without {}, so it checks the proxy's address instead of the client's",
                    m.name,
                    missing.join(" and without ")
                ),
            );
        }
    }

    duplicate_host_rules(sink);
}

pub(super) fn normalize_rule(rule: &str) -> String {
    rule.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c == '"' || c == '\'' { '`' } else { c })
        .collect::<String>()
        .to_ascii_lowercase()
}

pub(super) fn duplicate_host_rules(sink: &mut Sink<'_>) {
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
