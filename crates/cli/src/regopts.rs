//! Registry flags shared by the commands that reach a registry, and the client built from them.
//! Credentials are looked up here, in the binary (env vars the config names, docker config),
//! and passed to the library.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use shipline_core::config::Config;
use shipline_registry::{ClientOptions, Credentials, RegistryClient};

use crate::CliError;

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
    #[arg(long = "ca-cert", value_name = "PEM")]
    pub ca_cert: Vec<PathBuf>,
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
        Ok(crate::cmd_registry::credentials_for(host)
            .await
            .with_context(|| format!("failed to read credentials for {host}"))?)
    }
}

/// Reads the `--ca-cert` files (a missing one is a usage error naming it).
pub fn read_ca_certs(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    paths
        .iter()
        .map(|pem| {
            std::fs::read(pem).map_err(|e| {
                CliError::usage(format!("failed to read --ca-cert {}: {e}", pem.display()))
            })
        })
        .collect()
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
        Ok(crate::cmd_registry::credentials_for(host)
            .await
            .with_context(|| format!("failed to read credentials for {host}"))?)
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
        ..ClientOptions::default()
    };
    opts.extra_root_certificates_pem = read_ca_certs(&flags.ca_cert)?;
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
