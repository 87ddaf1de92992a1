//! Rollout strategies, verification and restoring the previous version.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::compose::ComposeProject;
use super::{step, DeployError, DeployEvent, DeployTarget, Strategy};
use crate::engine::{ContainerInfo, Engine, Health};

/// The compose project and what the deploy learned about it in preflight.
pub(crate) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub target: &'a DeployTarget,
    pub compose: ComposeProject,
    pub on: &'a (dyn Fn(DeployEvent) + Send + Sync),
    /// Every service of the project.
    pub services: Vec<String>,
    /// Services rolled with the rolling strategy (empty with recreate).
    pub rolling: Vec<String>,
}

const DEFAULT_DRAIN: [&str; 2] = ["touch", "/tmp/drain"];
const DEFAULT_UNDRAIN: [&str; 3] = ["rm", "-f", "/tmp/drain"];

fn label_command(c: &ContainerInfo, label: &str, default: &[&str]) -> Vec<String> {
    match c.labels.get(label) {
        Some(v) if v.trim_start().starts_with('[') => serde_json::from_str(v)
            .unwrap_or_else(|_| v.split_whitespace().map(str::to_string).collect()),
        Some(v) => v.split_whitespace().map(str::to_string).collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

impl Ctx<'_> {
    fn scale_args(&self, scales: &[(String, usize)]) -> Vec<String> {
        scales
            .iter()
            .flat_map(|(s, n)| ["--scale".to_string(), format!("{s}={n}")])
            .collect()
    }

    async fn up(&self, extra: &[String]) -> Result<(), DeployError> {
        let mut sub = vec!["up".to_string(), "-d".to_string()];
        sub.extend(extra.iter().cloned());
        step(
            self.on,
            "rollout",
            format!("{} {}", self.compose.cli.display_name(), sub.join(" ")),
        );
        self.compose
            .run_checked(&self.compose.env_file.clone(), &sub)
            .await
            .map(|_| ())
    }

    /// Running containers of one service.
    async fn running(&self, service: &str) -> Result<Vec<ContainerInfo>, DeployError> {
        Ok(self
            .engine
            .project_containers(&self.compose.project, Some(service), true)
            .await?)
    }

    /// Rolls the stack out with the target's strategy. `scales` are the rolling services'
    /// container counts before the deploy.
    pub async fn roll_out(&self, scales: &[(String, usize)]) -> Result<(), DeployError> {
        match self.target.strategy {
            Strategy::Recreate => self.up(&["--remove-orphans".to_string()]).await,
            Strategy::Rolling => {
                let others: Vec<String> = self
                    .services
                    .iter()
                    .filter(|s| !self.rolling.contains(s))
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    let mut extra = vec!["--no-deps".to_string(), "--remove-orphans".to_string()];
                    extra.extend(others);
                    self.up(&extra).await?;
                }
                for service in &self.rolling {
                    let n = scales
                        .iter()
                        .find(|(s, _)| s == service)
                        .map_or(1, |(_, n)| (*n).max(1));
                    self.roll_service(service, n).await?;
                }
                Ok(())
            }
        }
    }

    /// docker-rollout: scale to 2n with `--no-recreate`, wait for the new containers to be
    /// healthy, drain the old ones, remove them.
    async fn roll_service(&self, service: &str, n: usize) -> Result<(), DeployError> {
        let old = self.running(service).await?;
        if old.is_empty() {
            step(
                self.on,
                "rollout",
                format!("{service}: no running container, starting {n}"),
            );
            return self
                .up(&[
                    "--no-deps".into(),
                    "--scale".into(),
                    format!("{service}={n}"),
                    service.into(),
                ])
                .await;
        }
        let old_ids: HashSet<String> = old.iter().map(|c| c.id.clone()).collect();
        step(
            self.on,
            "rollout",
            format!(
                "{service}: scaling {} -> {} next to the old containers",
                old.len(),
                old.len() + n
            ),
        );
        self.up(&[
            "--no-deps".into(),
            "--no-recreate".into(),
            "--scale".into(),
            format!("{service}={}", old.len() + n),
            service.into(),
        ])
        .await?;
        let new_ids: Vec<String> = self
            .engine
            .project_container_ids(&self.compose.project, Some(service), false)
            .await?
            .into_iter()
            .filter(|id| !old_ids.contains(id))
            .collect();
        if new_ids.len() < n {
            return Err(DeployError::Unhealthy {
                what: format!(
                    "service {service}: expected {n} new containers, compose started {}",
                    new_ids.len()
                ),
            });
        }
        self.wait_healthy(&new_ids, &format!("new {service} containers"))
            .await?;
        step(
            self.on,
            "drain",
            format!("{service}: draining {} old containers", old.len()),
        );
        for c in &old {
            let cmd = label_command(c, "io.shipline.drain", &DEFAULT_DRAIN);
            let has_check = c.health != Health::None;
            match self.engine.exec(&c.id, &cmd).await {
                Ok(0) if has_check => {}
                Ok(code) if has_check => (self.on)(DeployEvent::Warning {
                    message: format!(
                        "drain command {cmd:?} exited {code} in {}; the edge may keep routing to it until it stops",
                        c.name
                    ),
                }),
                Err(e) => (self.on)(DeployEvent::Warning {
                    message: format!("failed to drain {}: {e}", c.name),
                }),
                _ => (self.on)(DeployEvent::Warning {
                    message: format!(
                        "{} has no health check: it cannot be drained, only waited for",
                        c.name
                    ),
                }),
            }
        }
        // Wait until the engine reports the drained containers unhealthy (the edge drops
        // them on that event), then the drain time for in-flight requests.
        let deadline = Instant::now() + self.target.health_timeout;
        for c in old.iter().filter(|c| c.health != Health::None) {
            while Instant::now() < deadline {
                match self.engine.inspect(&c.id).await {
                    Ok(i) if i.health == Health::Healthy || i.health == Health::Starting => {
                        tokio::time::sleep(self.target.health_interval).await
                    }
                    _ => break,
                }
            }
        }
        tokio::time::sleep(self.target.drain).await;
        for c in &old {
            self.engine
                .stop_and_remove(&c.id, c.stop_timeout.unwrap_or(10))
                .await?;
        }
        step(
            self.on,
            "rollout",
            format!("{service}: {n} new containers serve, old ones removed"),
        );
        Ok(())
    }

    /// Waits until every container in `ids` is healthy (or running without a health check).
    /// Fails early when one turns unhealthy or exits.
    pub async fn wait_healthy(&self, ids: &[String], what: &str) -> Result<(), DeployError> {
        let deadline = Instant::now() + self.target.health_timeout;
        loop {
            let mut pending = Vec::new();
            for id in ids {
                let c = self.engine.inspect(id).await?;
                match c.health {
                    Health::Healthy | Health::None => {}
                    // a one-shot job that finished cleanly (verify rejects it for rolling
                    // services, which must keep running)
                    Health::NotRunning if c.exit_code == Some(0) => {}
                    Health::Starting => pending.push(c),
                    Health::Unhealthy | Health::NotRunning => {
                        return Err(DeployError::Unhealthy {
                            what: format!(
                                "{what}: container {} ({}) is {}",
                                c.name,
                                c.image,
                                health_word(c.health)
                            ),
                        })
                    }
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let names: Vec<String> = pending.iter().map(|c| c.name.clone()).collect();
                return Err(DeployError::Unhealthy {
                    what: format!(
                        "{what}: {names:?} not healthy after {:?}",
                        self.target.health_timeout
                    ),
                });
            }
            tokio::time::sleep(self.target.health_interval).await;
        }
    }

    /// Every service has running containers, all healthy, all on `image` when they run this
    /// repository; then, when `http`, the optional HTTP check.
    pub async fn verify(&self, image: &str, http: bool) -> Result<(), DeployError> {
        let all = self
            .engine
            .project_containers(&self.compose.project, None, false)
            .await?;
        let prefix = format!("{}:", self.target.repository);
        let mut ids = Vec::new();
        for c in &all {
            if c.health == Health::NotRunning {
                // a one-shot job (e.g. migrations) that finished cleanly is fine
                if c.exit_code == Some(0)
                    && !self.rolling.iter().any(|r| Some(r) == c.service.as_ref())
                {
                    continue;
                }
                return Err(DeployError::Unhealthy {
                    what: format!(
                        "container {} ({}) is not running (exit code {})",
                        c.name,
                        c.image,
                        c.exit_code.map_or("unknown".to_string(), |e| e.to_string())
                    ),
                });
            }
            if c.image.starts_with(&prefix) && c.image != image {
                return Err(DeployError::Unhealthy {
                    what: format!(
                        "version: container {} runs {} instead of {image}",
                        c.name, c.image
                    ),
                });
            }
            ids.push(c.id.clone());
        }
        for s in &self.services {
            if !all.iter().any(|c| c.service.as_deref() == Some(s)) {
                return Err(DeployError::Unhealthy {
                    what: format!("service {s}: no container runs"),
                });
            }
        }
        self.wait_healthy(&ids, "services").await?;
        match &self.target.http_check {
            Some(url) if http => {
                http_check(url, self.target.health_timeout, self.target.health_interval).await?
            }
            _ => {}
        }
        Ok(())
    }

    /// Brings `prev_image` back (the env file is already restored): drops containers of the
    /// rolling services that do not run it (when some old ones still do, un-draining those),
    /// then `up -d --remove-orphans` with the previous scales, then waits healthy.
    /// With no previous version, the project is taken down.
    pub async fn restore_previous(
        &self,
        prev_image: Option<&str>,
        scales: &[(String, usize)],
    ) -> Result<(), DeployError> {
        let Some(prev_image) = prev_image else {
            step(
                self.on,
                "rollback",
                "no previous version: taking the project down".into(),
            );
            return self
                .compose
                .run(&["down", "--remove-orphans"])
                .await
                .map(|_| ());
        };
        let mut scale_list = Vec::new();
        for service in &self.rolling {
            let containers = self
                .engine
                .project_containers(&self.compose.project, Some(service), false)
                .await?;
            let (old, new): (Vec<_>, Vec<_>) = containers
                .into_iter()
                .partition(|c| c.image == prev_image && c.health != Health::NotRunning);
            let recorded = scales
                .iter()
                .find(|(s, _)| s == service)
                .map_or(1, |(_, n)| (*n).max(1));
            if !old.is_empty() {
                for c in &new {
                    self.engine
                        .stop_and_remove(&c.id, c.stop_timeout.unwrap_or(10))
                        .await?;
                }
                for c in &old {
                    let cmd = label_command(c, "io.shipline.undrain", &DEFAULT_UNDRAIN);
                    if c.health != Health::None {
                        let _ = self.engine.exec(&c.id, &cmd).await;
                    }
                }
                // an un-drained container reports unhealthy until its next health check
                // passes: give it that time before verifying the way back
                let deadline = Instant::now() + self.target.health_timeout;
                for c in old.iter().filter(|c| c.health != Health::None) {
                    while Instant::now() < deadline {
                        match self.engine.inspect(&c.id).await {
                            Ok(i) if i.health == Health::Unhealthy => {
                                tokio::time::sleep(self.target.health_interval).await
                            }
                            _ => break,
                        }
                    }
                }
                scale_list.push((service.clone(), old.len().max(recorded)));
            } else {
                scale_list.push((service.clone(), recorded));
            }
        }
        let mut extra = vec!["--remove-orphans".to_string()];
        extra.extend(self.scale_args(&scale_list));
        step(self.on, "rollback", format!("bringing {prev_image} back"));
        self.up(&extra).await?;
        // health only: an HTTP check that failed the new version may fail for reasons that
        // are not the version's (the URL, the edge) and must not block the way back
        self.verify(prev_image, false).await
    }

    /// The last log lines of containers that are not healthy (for failure reports).
    pub async fn failing_logs(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let Ok(all) = self
            .engine
            .project_containers(&self.compose.project, None, false)
            .await
        else {
            return out;
        };
        for c in all.iter().filter(|c| !c.health.is_ok()) {
            let mut lines = self.engine.log_tail(&c.id, 20).await.unwrap_or_default();
            // a silent service fails its health check without a log line: say what it said
            if let Ok(Some(probe)) = self.engine.last_health_probe(&c.id).await {
                lines.push(format!("last health check: {probe}"));
            }
            out.push((
                format!("{} ({}, {})", c.name, c.image, health_word(c.health)),
                lines,
            ));
        }
        out
    }
}

pub(crate) fn health_word(h: Health) -> &'static str {
    match h {
        Health::None => "running",
        Health::Starting => "starting",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        Health::NotRunning => "not running",
    }
}

/// GETs `url` (plain `http://host[:port]/path`) until it answers 2xx/3xx or `timeout` passes.
pub(crate) async fn http_check(
    url: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), DeployError> {
    let fail = |reason: String| DeployError::HttpCheck {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs are supported".into()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http_get_status(&addr, hostport, path).await {
            Ok(code) if (200..400).contains(&code) => return Ok(()),
            Ok(code) => last = format!("status {code}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(interval).await;
    }
    Err(fail(last))
}

async fn http_get_status(addr: &str, host: &str, path: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("read timed out"))??;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))
}
