//! The rule catalog: every rule the audit can report, with its id, severity and fix hint.
//! `docs/audit-rules.md` documents each one with a bad and a good example.

use crate::finding::{FindingKind, Severity};

/// One audit rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable rule id (`SA101`).
    pub id: &'static str,
    /// Short kebab-case name (`public-host-port`).
    pub name: &'static str,
    /// Severity of every finding of this rule.
    pub severity: Severity,
    /// Finding kind (misconfiguration or secret).
    pub kind: FindingKind,
    /// One-line title.
    pub title: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// Whether the rule only runs when several stacks are audited together.
    pub cross_stack: bool,
}

const fn rule(
    id: &'static str,
    name: &'static str,
    severity: Severity,
    title: &'static str,
    fix: &'static str,
) -> Rule {
    Rule {
        id,
        name,
        severity,
        kind: FindingKind::Misconfiguration,
        title,
        fix,
        cross_stack: false,
    }
}

const fn secret(rule: Rule) -> Rule {
    Rule {
        kind: FindingKind::Secret,
        ..rule
    }
}

const fn cross(rule: Rule) -> Rule {
    Rule {
        cross_stack: true,
        ..rule
    }
}

use Severity::{Critical, High, Low, Medium};

/// Every rule, in id order.
pub const RULES: &[Rule] = &[
    rule("SA101", "public-host-port", High,
        "host port published on all interfaces",
        "publish only the edge proxy; bind other ports to 127.0.0.1 (\"127.0.0.1:8080:80\") or route them through Traefik"),
    rule("SA102", "datastore-exposed", Critical,
        "database or cache reachable outside its backend network",
        "remove `ports:` and the public proxy network; keep the service on an internal backend network only"),
    rule("SA103", "dev-prod-network-bridge", High,
        "service on both a dev and a prod backend network",
        "attach each service to the backend network of one environment only"),
    rule("SA201", "docker-socket-mounted", Critical,
        "docker socket mounted into a container",
        "mount the socket only into a socket proxy (e.g. tecnativa/docker-socket-proxy, read-only, CONTAINERS=1) and point Traefik at `providers.docker.endpoint=tcp://socket-proxy:2375`; `:ro` does not stop API writes"),
    rule("SA202", "router-without-tls", High,
        "router without TLS or on a plain-HTTP entrypoint",
        "attach the router to the TLS entrypoint (websecure) and set `tls=true` or `tls.certresolver=<resolver>`"),
    rule("SA203", "no-https-redirect", Medium,
        "HTTP entrypoint without a redirect to HTTPS",
        "set `entryPoints.web.http.redirections.entryPoint.to=websecure` and `scheme=https` in the static configuration"),
    rule("SA204", "insecure-api", High,
        "Traefik API/dashboard exposed without protection",
        "remove `api.insecure`; expose the dashboard through a router on `api@internal` with TLS, basic auth and an IP allowlist"),
    rule("SA205", "exposed-by-default", Medium,
        "Docker provider exposes every container by default",
        "set `providers.docker.exposedByDefault=false` and opt services in with `traefik.enable=true`"),
    rule("SA301", "undefined-middleware", High,
        "router refers to a middleware defined nowhere",
        "define the middleware in the provider the reference names (`name@file`, `name@docker`; an unqualified name resolves in the router's own provider) or fix the reference"),
    rule("SA302", "dev-router-unprotected", High,
        "dev router without basic auth and an IP allowlist",
        "add a basicAuth (or forwardAuth) middleware and an ipAllowList middleware to every dev router"),
    rule("SA303", "allowlist-without-ip-strategy", Medium,
        "IP allowlist behind a CDN/proxy without an IP strategy",
        "set `ipAllowList.ipStrategy.depth` (or `excludedIPs`) so the client address is taken from X-Forwarded-For, and trust only the CDN in `entryPoints.<ep>.forwardedHeaders.trustedIPs`"),
    rule("SA304", "missing-security-headers", Medium,
        "prod router without strict security headers",
        "apply a headers middleware with stsSeconds, frameDeny, contentTypeNosniff and referrerPolicy to every prod router"),
    rule("SA305", "undefined-cert-resolver", High,
        "certificate resolver referred to but not defined",
        "define it under `certificatesResolvers.<name>` in the static configuration or fix the name"),
    cross(rule("SA306", "router-name-collision", High,
        "router name defined by several stacks on one daemon",
        "prefix router and middleware names with the stack name (`dev-api`, `prod-api`)")),
    rule("SA307", "duplicate-host-rule", Medium,
        "the same Host rule routed twice",
        "give each router its own Host rule or entrypoint, or remove the duplicate router"),
    rule("SA401", "unpinned-image", Medium,
        "image uses `latest` or no tag",
        "pin a version tag or, better, a digest (`image@sha256:...`)"),
    rule("SA402", "prerelease-image-in-prod", Medium,
        "pre-release image tag in prod",
        "deploy a released version to prod"),
    rule("SA403", "build-without-image", Low,
        "service with `build:` but no `image:`",
        "set `image:` to the registry reference the pipeline pushes, so deploys pull the scanned image instead of building on the server"),
    secret(rule("SA501", "literal-secret", High,
        "literal password, token or key in `environment:`",
        "pass the value through `${VAR:?required}` from an env file kept out of git, or use compose `secrets:` and a `*_FILE` variable")),
    secret(rule("SA502", "weak-default", High,
        "weak or placeholder default for a variable",
        "use `${VAR:?VAR is required}` so a missing value fails instead of falling back to a guessable default")),
    secret(rule("SA503", "env-file-in-image", High,
        "env file copied into an image or build context",
        "add `.env`, `.env.*` and `*.env` to the context's `.dockerignore` and never COPY env files; pass values at run time")),
    rule("SA601", "privileged", Critical,
        "container runs privileged",
        "remove `privileged: true`; grant only the capabilities the service needs"),
    rule("SA602", "cap-sys-admin", High,
        "SYS_ADMIN (or ALL) capability added",
        "remove SYS_ADMIN/ALL from `cap_add`; add only narrow capabilities"),
    rule("SA603", "seccomp-unconfined", High,
        "seccomp disabled",
        "remove `seccomp=unconfined` (or `seccomp:unconfined`) from `security_opt`; use the default or a custom profile"),
    rule("SA604", "runs-as-root", Medium,
        "container explicitly runs as root",
        "run as an unprivileged user (`user: \"1000:1000\"`) or drop the `user: 0` override"),
    rule("SA605", "host-network", High,
        "container uses the host network",
        "remove `network_mode: host` and use compose networks"),
    rule("SA701", "traefik-misnested-config", High,
        "Traefik configuration key in the wrong place (silently ignored)",
        "nest routers, middlewares and services under `http:` in a dynamic (file provider) file, and keep static keys in the static file"),
    cross(rule("SA702", "container-name-collision", High,
        "`container_name` shared by several stacks",
        "drop `container_name` or prefix it with the stack name")),
    cross(rule("SA703", "network-external-mismatch", High,
        "network external in one stack but created by another",
        "declare the shared network `external: true` in every stack and create it once (`docker network create`)")),
];

/// Looks a rule up by id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
