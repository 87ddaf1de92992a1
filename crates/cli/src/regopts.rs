//! Registry flags shared by the commands that reach a registry, and the client built from them.
//! Credentials are looked up here, in the binary (env vars the config names, docker config),
//! and passed to the library.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use shipline_core::config::Config;
use shipline_registry::{ClientOptions, Credentials, RegistryClient, RegistryError};

use crate::CliError;

/// The bytes of a `--ca-cert` file, read when the arguments are parsed (a missing file is a
/// usage error naming it).
#[derive(Clone)]
pub struct CaCert(Vec<u8>);

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaCert({} bytes)", self.0.len())
    }
}

/// The `value_parser` of `--ca-cert`.
pub fn read_ca_cert(path: &str) -> Result<CaCert, String> {
    std::fs::read(path)
        .map(CaCert)
        .map_err(|e| format!("failed to read {path}: {e}"))
}

/// The PEM bytes the client trusts besides the system roots.
pub fn pems(certs: &[CaCert]) -> Vec<Vec<u8>> {
    certs.iter().map(|c| c.0.clone()).collect()
}

/// `--registry`, `--insecure-registry`, `--ca-cert`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryFlags {
    /// Push to this registry host instead of the configured one (or the embedded store).
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// Allow plain HTTP or unverified TLS to this host (repeatable; loopback is always allowed).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Trust this PEM certificate for registry TLS (repeatable).
    #[arg(long = "ca-cert", value_name = "PEM", value_parser = read_ca_cert)]
    pub ca_cert: Vec<CaCert>,
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The login for pulling or attaching to images on `host`: [`credentials`] when `host` is the
/// configured registry (or none is configured), else the docker config alone.
pub async fn credentials_for_host(config: &Config, host: &str) -> anyhow::Result<Credentials> {
    if config.registry.as_ref().is_none_or(|r| r.host == host) {
        credentials(Some(config), host).await
    } else {
        docker_login(host).await
    }
}

/// The credentials for one registry host: `$DOCKER_CONFIG/config.json` (or
/// `~/.docker/config.json`) and its credential helpers, else, for ghcr.io inside GitHub
/// Actions, `GITHUB_TOKEN` (with `GITHUB_ACTOR` as user name); anonymous otherwise.
pub async fn docker_credentials(host: &str) -> Result<Credentials, RegistryError> {
    let config = shipline_registry::docker_config_path(
        std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .as_deref(),
        std::env::var_os("HOME").map(PathBuf::from).as_deref(),
    );
    let mut creds = match &config {
        Some(file) => shipline_registry::credentials_from_docker_config(file, host).await?,
        None => Credentials::Anonymous,
    };
    if creds.is_anonymous() && host == "ghcr.io" {
        if let Some(token) = env_value("GITHUB_TOKEN") {
            let actor = std::env::var("GITHUB_ACTOR").ok();
            creds = Credentials::github_token(actor.as_deref(), token);
        }
    }
    Ok(creds)
}

/// [`docker_credentials`], its error naming the host.
async fn docker_login(host: &str) -> anyhow::Result<Credentials> {
    docker_credentials(host)
        .await
        .with_context(|| format!("failed to read credentials for {host}"))
}

/// The credentials for `host`: the env vars `[registry]` names (`SHIPLINE_REGISTRY_USERNAME` /
/// `SHIPLINE_REGISTRY_PASSWORD` when it names none), else, unless `docker_config = false`, the
/// docker config and its credential helpers (and `GITHUB_TOKEN` for ghcr.io).
pub async fn credentials(config: Option<&Config>, host: &str) -> anyhow::Result<Credentials> {
    let reg = config.and_then(|c| c.registry.as_ref());
    let user_var = reg
        .and_then(|r| r.username_env.clone())
        .unwrap_or_else(|| "SHIPLINE_REGISTRY_USERNAME".into());
    let pass_var = reg
        .and_then(|r| r.password_env.clone())
        .unwrap_or_else(|| "SHIPLINE_REGISTRY_PASSWORD".into());
    if let (user, Some(pass)) = (env_value(&user_var), env_value(&pass_var)) {
        return Ok(if host == "ghcr.io" {
            Credentials::github_token(user.as_deref(), pass)
        } else {
            Credentials::basic(user.unwrap_or_default(), pass)
        });
    }
    if reg.is_none_or(|r| r.docker_config) {
        docker_login(host).await
    } else {
        Ok(Credentials::Anonymous)
    }
}

/// Builds the registry client: credentials for the configured (or `--registry`) host from the
/// env vars the config names (`SHIPLINE_REGISTRY_USERNAME` / `SHIPLINE_REGISTRY_PASSWORD` when it
/// names none), else from the docker config.
pub async fn client(
    config: Option<&Config>,
    flags: &RegistryFlags,
) -> anyhow::Result<RegistryClient> {
    let mut opts = ClientOptions {
        insecure_registries: flags.insecure_registry.clone(),
        extra_root_certificates_pem: pems(&flags.ca_cert),
        ..ClientOptions::default()
    };
    let reg = config.and_then(|c| c.registry.as_ref());
    if let Some(r) = reg {
        if r.insecure {
            opts.insecure_registries.push(r.host.clone());
        }
    }
    let host = flags
        .registry
        .clone()
        .or_else(|| reg.map(|r| r.host.clone()));
    let mut credentials = HashMap::new();
    if let Some(host) = host {
        let creds = self::credentials(config, &host).await?;
        credentials.insert(host, creds);
    }
    opts.credentials = credentials;
    RegistryClient::new(opts)
        .map_err(|e| CliError::tool(format!("failed to set up the registry client: {e}")))
}
