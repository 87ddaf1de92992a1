//! Container and image inspection for deploys: compose project members, health, addresses,
//! exec, stop/remove, logs, image listing and removal.

use std::collections::{BTreeMap, HashMap};

use bollard::container::{
    InspectContainerOptions, ListContainersOptions, LogOutput, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::image::{ListImagesOptions, RemoveImageOptions};
use futures::StreamExt;

use super::{Engine, EngineError};

/// The label compose puts the project name in.
pub(crate) const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label compose puts the service name in.
pub(crate) const SERVICE_LABEL: &str = "com.docker.compose.service";

/// A container's health as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No HEALTHCHECK; running counts as healthy.
    None,
    /// Health check not decided yet.
    Starting,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
    /// The container is not running.
    NotRunning,
}

impl Health {
    /// Healthy, or running without a health check.
    pub fn is_ok(self) -> bool {
        matches!(self, Health::Healthy | Health::None)
    }
}

/// One container as a deploy sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerInfo {
    /// Full ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// The compose service (`com.docker.compose.service`), if any.
    pub service: Option<String>,
    /// The image reference it was created from.
    pub image: String,
    /// The image ID.
    pub image_id: String,
    /// Health.
    pub health: Health,
    /// Start time (RFC 3339) as the engine reports it.
    pub started_at: String,
    /// IP address per network name.
    pub networks: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Compose's container number (`com.docker.compose.container-number`).
    pub number: u32,
    /// Seconds to wait after SIGTERM before SIGKILL (`stop_grace_period`), when set.
    pub stop_timeout: Option<i64>,
    /// The exit code, when the container is not running.
    pub exit_code: Option<i64>,
}

/// A local image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    /// Image ID.
    pub id: String,
    /// `repository:tag` references.
    pub tags: Vec<String>,
    /// `repository@sha256:` digests.
    pub digests: Vec<String>,
    /// Creation time (unix seconds).
    pub created: i64,
}

/// How long a network creator waits for rival creations under way before deciding.
const NETWORK_SETTLE_MS: u64 = 500;

/// A network found by exact name.
struct NamedNetwork {
    id: String,
    created: Option<chrono::DateTime<chrono::Utc>>,
}

/// The engine's answer as `Some`, `None` for a 404 (no such object), or the API error.
fn found<T>(
    result: Result<T, bollard::errors::Error>,
    action: impl FnOnce() -> String,
) -> Result<Option<T>, EngineError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(EngineError::Api {
            action: action(),
            source,
        }),
    }
}

impl Engine {
    /// IDs of the containers (running or not, unless `running_only`) of a compose project,
    /// optionally only one service's.
    pub async fn project_container_ids(
        &self,
        project: &str,
        service: Option<&str>,
        running_only: bool,
    ) -> Result<Vec<String>, EngineError> {
        let mut labels = vec![format!("{PROJECT_LABEL}={project}")];
        if let Some(s) = service {
            labels.push(format!("{SERVICE_LABEL}={s}"));
        }
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: !running_only,
                filters: HashMap::from([("label".to_string(), labels)]),
                ..Default::default()
            }))
            .await
            .map_err(EngineError::api(format!(
                "list containers of project {project}"
            )))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// The containers of a compose project (or one service), inspected, sorted by service and
    /// container number.
    pub async fn project_containers(
        &self,
        project: &str,
        service: Option<&str>,
        running_only: bool,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let mut out = Vec::new();
        for id in self
            .project_container_ids(project, service, running_only)
            .await?
        {
            match self.inspect(&id).await {
                Ok(c) => out.push(c),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (&a.service, a.number, &a.id).cmp(&(&b.service, b.number, &b.id)));
        Ok(out)
    }

    /// Inspects one container.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInfo, EngineError> {
        let c = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(EngineError::api(format!("inspect container {id}")))?;
        let state = c.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let exit_code = state.exit_code;
        let health = if !running {
            Health::NotRunning
        } else {
            match state.health.and_then(|h| h.status) {
                Some(bollard::secret::HealthStatusEnum::HEALTHY) => Health::Healthy,
                Some(bollard::secret::HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
                Some(bollard::secret::HealthStatusEnum::STARTING) => Health::Starting,
                _ => Health::None,
            }
        };
        let config = c.config.unwrap_or_default();
        let labels: BTreeMap<String, String> =
            config.labels.unwrap_or_default().into_iter().collect();
        let networks = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, ep)| {
                ep.ip_address
                    .filter(|ip| !ip.is_empty())
                    .map(|ip| (name, ip))
            })
            .collect();
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service: labels.get(SERVICE_LABEL).cloned(),
            number: labels
                .get("com.docker.compose.container-number")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            stop_timeout: config.stop_timeout,
            exit_code: if running { None } else { exit_code },
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            health,
            started_at: state.started_at.unwrap_or_default(),
            networks,
            labels,
        })
    }

    /// Runs `cmd` inside a running container and returns its exit code.
    pub async fn exec(&self, container: &str, cmd: &[String]) -> Result<i64, EngineError> {
        let action = || format!("exec {cmd:?} in container {container}");
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions::<String> {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(EngineError::api(action()))?;
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(EngineError::api(action()))?
        {
            while output.next().await.is_some() {}
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(EngineError::api(action()))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// Stops (SIGTERM, then SIGKILL after `grace_secs`) and removes a container.
    pub async fn stop_and_remove(&self, id: &str, grace_secs: i64) -> Result<(), EngineError> {
        match self
            .docker
            .stop_container(id, Some(StopContainerOptions { t: grace_secs }))
            .await
        {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => {}
            Err(source) => {
                return Err(EngineError::Api {
                    action: format!("stop container {id}"),
                    source,
                })
            }
        }
        let removed = self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        found(removed, || format!("remove container {id}")).map(|_| ())
    }

    /// The last `lines` lines of a container's logs (stdout and stderr).
    pub async fn log_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, EngineError> {
        let mut stream = self.docker.logs(
            id,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(LogOutput::StdOut { message })
                | Ok(LogOutput::StdErr { message })
                | Ok(LogOutput::Console { message }) => {
                    text.push_str(&String::from_utf8_lossy(&message))
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(source) => {
                    return Err(EngineError::Api {
                        action: format!("read logs of container {id}"),
                        source,
                    })
                }
            }
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// The output of the last health probe of a container with a HEALTHCHECK (what the check
    /// printed and its exit code), or `None` when it has no probe yet.
    pub async fn last_health_probe(&self, id: &str) -> Result<Option<String>, EngineError> {
        let r = self.docker.inspect_container(id, None).await;
        let Some(c) = found(r, || format!("inspect container {id}"))? else {
            return Ok(None);
        };
        let last = c
            .state
            .and_then(|s| s.health)
            .and_then(|h| h.log)
            .and_then(|log| log.into_iter().last());
        Ok(last.map(|p| {
            let output = p.output.unwrap_or_default();
            let output = output.trim();
            match p.exit_code {
                Some(code) if output.is_empty() => format!("exit {code}"),
                Some(code) => format!("exit {code}: {output}"),
                None => output.to_string(),
            }
        }))
    }

    /// Whether an image is present locally.
    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        let r = self.docker.inspect_image(image).await;
        Ok(found(r, || format!("inspect image {image}"))?.is_some())
    }

    /// The repo digests (`repo@sha256:...`) and ID of a local image.
    pub async fn image_digests(&self, image: &str) -> Result<ImageInfo, EngineError> {
        let i = self
            .docker
            .inspect_image(image)
            .await
            .map_err(EngineError::api(format!("inspect image {image}")))?;
        Ok(ImageInfo {
            id: i.id.unwrap_or_default(),
            tags: i.repo_tags.unwrap_or_default(),
            digests: i.repo_digests.unwrap_or_default(),
            created: i
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|c| c.timestamp())
                .unwrap_or(0),
        })
    }

    /// Local images of one repository (`reference=repository`).
    pub async fn list_repository_images(
        &self,
        repository: &str,
    ) -> Result<Vec<ImageInfo>, EngineError> {
        let list = self
            .docker
            .list_images(Some(ListImagesOptions::<String> {
                all: false,
                filters: HashMap::from([("reference".to_string(), vec![repository.to_string()])]),
                ..Default::default()
            }))
            .await
            .map_err(EngineError::api(format!("list images of {repository}")))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                tags: i.repo_tags,
                digests: i.repo_digests,
                created: i.created,
            })
            .collect())
    }

    /// Removes a local image reference (untag; the layers go when no reference is left).
    /// An image in use by a container is not removed (the engine refuses; reported as error).
    pub async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        self.docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                }),
                None,
            )
            .await
            .map(|_| ())
            .map_err(EngineError::api(format!("remove image {reference}")))
    }

    /// Creates a bridge network if no network of that name exists; returns true if created.
    ///
    /// Engines before Docker 25 do not enforce unique network names (`CheckDuplicate` is best
    /// effort), so two deploys that create the same external network at once can both succeed
    /// and leave two networks of one name, after which compose refuses the name as ambiguous.
    /// Creation is therefore made convergent: after creating, and a short settle time for
    /// creations under way, every creator lists the networks of that name and keeps the
    /// oldest (ties broken by ID); a creator whose network is not that one removes its own.
    /// Only the creators' own, still unused networks are ever removed.
    pub async fn ensure_network(&self, name: &str) -> Result<bool, EngineError> {
        if !self.networks_named(name).await?.is_empty() {
            return Ok(false);
        }
        let created = self
            .docker
            .create_network(bollard::network::CreateNetworkOptions::<String> {
                name: name.to_string(),
                check_duplicate: true,
                ..Default::default()
            })
            .await;
        let ours = match created {
            Ok(r) => r.id,
            // a rival created it between our check and our create (CheckDuplicate caught it)
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => return Ok(false),
            Err(source) => {
                return Err(EngineError::Api {
                    action: format!("create network {name}"),
                    source,
                })
            }
        };
        // A rival that started creating before us may be listed only after our create returns
        // (the engine stamps the time first and stores the network after), so give creations
        // under way a moment to land before deciding who keeps theirs.
        tokio::time::sleep(std::time::Duration::from_millis(NETWORK_SETTLE_MS)).await;
        let all = self.networks_named(name).await?;
        if let Some(keeper) = all.first() {
            if keeper.id != ours {
                self.remove_network(&ours).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether exactly one network of that name exists. Several networks of one name (left by
    /// an earlier race, or made by hand) are an error naming them, since compose refuses an
    /// ambiguous name; a concurrent creation is given a moment to converge first.
    pub async fn network_exists(&self, name: &str) -> Result<bool, EngineError> {
        let mut attempt = 0;
        loop {
            let all = self.networks_named(name).await?;
            match all.len() {
                0 => return Ok(false),
                1 => return Ok(true),
                _ if attempt < 10 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                _ => {
                    return Err(EngineError::AmbiguousNetwork {
                        name: name.to_string(),
                        ids: all.into_iter().map(|n| n.id).collect(),
                    })
                }
            }
        }
    }

    /// The networks named exactly `name` (the engine's name filter matches substrings),
    /// oldest first, ties broken by ID.
    async fn networks_named(&self, name: &str) -> Result<Vec<NamedNetwork>, EngineError> {
        let mut filters = HashMap::new();
        filters.insert("name".to_string(), vec![name.to_string()]);
        let list = self
            .docker
            .list_networks(Some(bollard::network::ListNetworksOptions { filters }))
            .await
            .map_err(EngineError::api(format!("list networks named {name}")))?;
        let mut out: Vec<NamedNetwork> = list
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| {
                let created = n
                    .created
                    .as_deref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map(|c| c.with_timezone(&chrono::Utc));
                n.id.map(|id| NamedNetwork { id, created })
            })
            .collect();
        // oldest first, unknown creation times last, ties by ID
        out.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.id).cmp(&(b.created.is_none(), b.created, &b.id))
        });
        Ok(out)
    }

    /// Removes a network (ignores a missing one).
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let r = self.docker.remove_network(name).await;
        found(r, || format!("remove network {name}")).map(|_| ())
    }
}
