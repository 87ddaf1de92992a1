//! Test containers: run a command in the built image with a timeout; the container is always
//! removed.

use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, LogOutput, LogsOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt;

use super::{Engine, EngineError, EngineEvent};

/// A test run.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The image to run.
    pub image: String,
    /// The command (empty: the image's default command).
    pub command: Vec<String>,
    /// Environment variables (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Kill and fail after this long.
    pub timeout: Duration,
}

/// How a test run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestOutcome {
    /// The container's exit code; 0 passes.
    pub exit_code: i64,
    /// The last lines of output (at most 50), for reports.
    pub tail: Vec<String>,
}

impl TestOutcome {
    /// True when the command exited 0.
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }
}

impl Engine {
    /// Runs `req.command` in a fresh container of `req.image`, streaming its output as
    /// [`EngineEvent::TestOutput`]. The exit code decides; on timeout the container is killed
    /// and [`EngineError::TestTimeout`] returned. The container is removed in every case.
    pub async fn run_test(
        &self,
        req: &TestRequest,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<TestOutcome, EngineError> {
        let name = format!("shipline-test-{:016x}", rand::random::<u64>());
        let config = Config {
            image: Some(req.image.clone()),
            cmd: (!req.command.is_empty()).then(|| req.command.clone()),
            env: Some(req.env.clone()),
            labels: Some([("io.shipline.test".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.clone(),
                    platform: None,
                }),
                config,
            )
            .await
            .map_err(EngineError::api(format!(
                "create test container from {}",
                req.image
            )))?;
        let result = tokio::time::timeout(req.timeout, self.run_attached(&name, on_event)).await;
        let removed = self
            .docker
            .remove_container(
                &name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(EngineError::api(format!("remove test container {name}")));
        match result {
            Err(_elapsed) => Err(EngineError::TestTimeout {
                image: req.image.clone(),
                timeout: req.timeout,
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(outcome)) => {
                removed?;
                Ok(outcome)
            }
        }
    }

    async fn run_attached(
        &self,
        name: &str,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<TestOutcome, EngineError> {
        self.docker
            .start_container::<String>(name, None)
            .await
            .map_err(EngineError::api(format!("start test container {name}")))?;
        let mut logs = self.docker.logs(
            name,
            Some(LogsOptions::<String> {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let mut partial = [String::new(), String::new()];
        while let Some(item) = logs.next().await {
            let (idx, stream, bytes) = match item {
                Ok(LogOutput::StdErr { message }) => (1, "stderr", message),
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    (0, "stdout", message)
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(_) => break,
            };
            partial[idx].push_str(&String::from_utf8_lossy(&bytes));
            while let Some(pos) = partial[idx].find('\n') {
                let line: String = partial[idx].drain(..=pos).collect();
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                push_tail(&mut tail, line.clone());
                on_event(EngineEvent::TestOutput {
                    stream: stream.into(),
                    line,
                });
            }
        }
        for (idx, rest) in partial.into_iter().enumerate() {
            if !rest.is_empty() {
                push_tail(&mut tail, rest.clone());
                on_event(EngineEvent::TestOutput {
                    stream: if idx == 0 { "stdout" } else { "stderr" }.into(),
                    line: rest,
                });
            }
        }
        let mut wait = self.docker.wait_container(
            name,
            Some(WaitContainerOptions {
                condition: "not-running".to_string(),
            }),
        );
        let exit_code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(source)) => {
                return Err(EngineError::Api {
                    action: format!("wait for test container {name}"),
                    source,
                })
            }
            None => self.exit_code(name).await?,
        };
        Ok(TestOutcome {
            exit_code,
            tail: tail.into(),
        })
    }

    async fn exit_code(&self, name: &str) -> Result<i64, EngineError> {
        let c = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(EngineError::api(format!("inspect container {name}")))?;
        Ok(c.state.and_then(|s| s.exit_code).unwrap_or(-1))
    }
}

fn push_tail(tail: &mut std::collections::VecDeque<String>, line: String) {
    if tail.len() == 50 {
        tail.pop_front();
    }
    tail.push_back(line);
}
