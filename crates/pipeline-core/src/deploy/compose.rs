//! The compose CLI driver: `docker compose` (v2 plugin) or `docker-compose` (v1). Every call
//! gets `-p PROJECT`, every `-f FILE` in order, `--env-file ENVFILE` and the project directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{Proc, ProcOutput};
use super::DeployError;

/// Which compose CLI was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComposeFlavor {
    /// The `docker compose` plugin (v2).
    V2,
    /// The standalone `docker-compose` (v1).
    V1,
}

/// A compose CLI found on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComposeCli {
    /// v1 or v2.
    pub flavor: ComposeFlavor,
    /// The program (`docker` or `docker-compose`).
    pub program: PathBuf,
    /// The version it reported.
    pub version: String,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl ComposeCli {
    /// Finds `docker compose` (preferred) or `docker-compose`; the answer is cached for the
    /// life of the process (probing costs a second with the Python v1).
    pub async fn detect() -> Result<ComposeCli, DeployError> {
        static FOUND: tokio::sync::OnceCell<ComposeCli> = tokio::sync::OnceCell::const_new();
        FOUND.get_or_try_init(Self::probe).await.cloned()
    }

    async fn probe() -> Result<ComposeCli, DeployError> {
        if let Some(docker) = which("docker") {
            let p = Proc::new(
                &docker,
                vec!["compose".into(), "version".into(), "--short".into()],
                Duration::from_secs(20),
            );
            if let Ok(o) = p.run().await {
                if o.success() && !o.stdout.trim().is_empty() {
                    return Ok(ComposeCli {
                        flavor: ComposeFlavor::V2,
                        program: docker,
                        version: o.stdout.trim().to_string(),
                    });
                }
            }
        }
        if let Some(dc) = which("docker-compose") {
            let p = Proc::new(
                &dc,
                vec!["version".into(), "--short".into()],
                Duration::from_secs(20),
            );
            if let Ok(o) = p.run().await {
                if o.success() {
                    return Ok(ComposeCli {
                        flavor: ComposeFlavor::V1,
                        program: dc,
                        version: o.stdout.trim().to_string(),
                    });
                }
            }
        }
        Err(DeployError::NoCompose)
    }

    /// `docker compose` or `docker-compose`, for messages.
    pub fn display_name(&self) -> &'static str {
        match self.flavor {
            ComposeFlavor::V2 => "docker compose",
            ComposeFlavor::V1 => "docker-compose",
        }
    }
}

/// One compose project as a deploy drives it.
#[derive(Debug, Clone)]
pub struct ComposeProject {
    /// The CLI.
    pub cli: ComposeCli,
    /// `-p`.
    pub project: String,
    /// `-f`, in order.
    pub files: Vec<PathBuf>,
    /// `--env-file`.
    pub env_file: PathBuf,
    /// `--project-directory` and working directory.
    pub dir: PathBuf,
    /// The variable that must not come from the process environment (e.g. `IMAGE_TAG`).
    pub tag_variable: String,
    /// Timeout per compose call.
    pub timeout: Duration,
}

impl ComposeProject {
    /// The full argument vector for `sub` (after the program).
    pub fn args(&self, env_file: &Path, sub: &[String]) -> Vec<String> {
        let mut a = Vec::new();
        if self.cli.flavor == ComposeFlavor::V2 {
            a.push("compose".to_string());
        }
        a.push("-p".into());
        a.push(self.project.clone());
        for f in &self.files {
            a.push("-f".into());
            a.push(f.to_string_lossy().into_owned());
        }
        a.push("--env-file".into());
        a.push(env_file.to_string_lossy().into_owned());
        a.push("--project-directory".into());
        a.push(self.dir.to_string_lossy().into_owned());
        a.extend(sub.iter().cloned());
        a
    }

    async fn run_with(&self, env_file: &Path, sub: &[String]) -> Result<ProcOutput, DeployError> {
        let args = self.args(env_file, sub);
        let mut p = Proc::new(&self.cli.program, args.clone(), self.timeout);
        p.cwd = Some(self.dir.clone());
        // The tag comes from the env file only: a process variable would silently override it.
        p.env_remove.push(self.tag_variable.clone());
        p.run().await.map_err(|source| DeployError::Spawn {
            program: self.cli.program.clone(),
            source,
        })
    }

    /// Runs `sub`, failing with the compose error when it exits non-zero.
    pub(crate) async fn run(&self, sub: &[&str]) -> Result<ProcOutput, DeployError> {
        let sub: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
        self.run_checked(&self.env_file.clone(), &sub).await
    }

    pub(crate) async fn run_checked(
        &self,
        env_file: &Path,
        sub: &[String],
    ) -> Result<ProcOutput, DeployError> {
        let out = self.run_with(env_file, sub).await?;
        if !out.success() {
            return Err(DeployError::Compose {
                command: format!("{} {}", self.cli.display_name(), sub.join(" ")),
                code: out.code,
                stderr: out.tail(20),
            });
        }
        Ok(out)
    }

    /// `config` with the given env file: validates and returns the resolved model as JSON.
    pub async fn config(&self, env_file: &Path) -> Result<serde_json::Value, DeployError> {
        let out = self.run_checked(env_file, &["config".to_string()]).await?;
        yaml_to_json(&out.stdout).map_err(|message| DeployError::Compose {
            command: format!("{} config", self.cli.display_name()),
            code: out.code,
            stderr: format!("unreadable output: {message}"),
        })
    }
}

/// Parses YAML (compose `config` output) into JSON values.
pub(crate) fn yaml_to_json(text: &str) -> Result<serde_json::Value, String> {
    use saphyr::{LoadableYamlNode, ScalarOwned, YamlOwned};
    fn conv(y: &YamlOwned) -> serde_json::Value {
        match y {
            YamlOwned::Value(ScalarOwned::Null) => serde_json::Value::Null,
            YamlOwned::Value(ScalarOwned::Boolean(b)) => (*b).into(),
            YamlOwned::Value(ScalarOwned::Integer(i)) => (*i).into(),
            YamlOwned::Value(ScalarOwned::FloatingPoint(f)) => f.into_inner().into(),
            YamlOwned::Value(ScalarOwned::String(s)) => s.clone().into(),
            YamlOwned::Representation(s, _, _) => s.clone().into(),
            YamlOwned::Sequence(seq) => seq.iter().map(conv).collect(),
            YamlOwned::Mapping(m) => {
                let mut obj = serde_json::Map::new();
                for (k, v) in m {
                    let key = match conv(k) {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    obj.insert(key, conv(v));
                }
                serde_json::Value::Object(obj)
            }
            _ => serde_json::Value::Null,
        }
    }
    let docs = YamlOwned::load_from_str(text).map_err(|e| e.to_string())?;
    Ok(docs.first().map(conv).unwrap_or(serde_json::Value::Null))
}

/// What preflight reads from the resolved compose model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ComposeModel {
    /// Service names.
    pub services: Vec<String>,
    /// External networks (their engine names).
    pub external_networks: Vec<String>,
    /// Why each service cannot roll (service, reason).
    pub unrollable: Vec<(String, String)>,
    /// Service -> image.
    pub images: Vec<(String, String)>,
}

impl ComposeModel {
    pub fn from_json(v: &serde_json::Value) -> ComposeModel {
        let mut m = ComposeModel::default();
        if let Some(services) = v.get("services").and_then(|s| s.as_object()) {
            for (name, svc) in services {
                m.services.push(name.clone());
                if let Some(img) = svc.get("image").and_then(|i| i.as_str()) {
                    m.images.push((name.clone(), img.to_string()));
                }
                if let Some(cn) = svc.get("container_name").and_then(|c| c.as_str()) {
                    m.unrollable.push((
                        name.clone(),
                        format!(
                            "it sets container_name: {cn} (two containers cannot share a name)"
                        ),
                    ));
                }
                if svc
                    .get("ports")
                    .and_then(|p| p.as_array())
                    .is_some_and(|p| !p.is_empty())
                {
                    m.unrollable.push((
                        name.clone(),
                        "it publishes host ports (old and new containers cannot bind the same port); route through the edge proxy instead".into(),
                    ));
                }
            }
        }
        if let Some(nets) = v.get("networks").and_then(|n| n.as_object()) {
            for (key, net) in nets {
                let external = net.get("external");
                let is_ext = match external {
                    Some(serde_json::Value::Bool(b)) => *b,
                    Some(serde_json::Value::Object(_)) => true,
                    _ => false,
                };
                if is_ext {
                    let name = external
                        .and_then(|e| e.get("name"))
                        .or_else(|| net.get("name"))
                        .and_then(|n| n.as_str())
                        .unwrap_or(key);
                    m.external_networks.push(name.to_string());
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_from_config_output() {
        let yaml = r#"
networks:
  edge:
    external: true
    name: edge-net
  old:
    external:
      name: legacy
  default: {}
services:
  api:
    image: example/api:abc
    ports:
      - published: 8080
        target: 80
  web:
    image: example/web:abc
    container_name: web
  worker:
    image: example/worker:abc
version: '3.9'
"#;
        let v = yaml_to_json(yaml).expect("yaml");
        let m = ComposeModel::from_json(&v);
        assert_eq!(m.services, ["api", "web", "worker"]);
        assert_eq!(m.external_networks, ["edge-net", "legacy"]);
        assert_eq!(m.unrollable.len(), 2);
        assert_eq!(m.images[2], ("worker".into(), "example/worker:abc".into()));
    }

    #[test]
    fn args_carry_project_files_and_env_file() {
        let p = ComposeProject {
            cli: ComposeCli {
                flavor: ComposeFlavor::V1,
                program: "docker-compose".into(),
                version: "1.29.2".into(),
            },
            project: "prod".into(),
            files: vec![
                "/s/compose.common.yaml".into(),
                "/s/compose.prod.yaml".into(),
            ],
            env_file: "/s/.env.prod".into(),
            dir: "/s".into(),
            tag_variable: "IMAGE_TAG".into(),
            timeout: Duration::from_secs(1),
        };
        let a = p.args(Path::new("/s/.env.prod"), &["up".into(), "-d".into()]);
        let expected = "-p prod -f /s/compose.common.yaml -f /s/compose.prod.yaml --env-file /s/.env.prod --project-directory /s up -d";
        assert_eq!(a.join(" "), expected);
        let mut v2 = p.clone();
        v2.cli.flavor = ComposeFlavor::V2;
        let a = v2.args(Path::new("/s/.env.prod"), &["up".into(), "-d".into()]);
        assert_eq!(a.join(" "), format!("compose {expected}"));
    }
}
