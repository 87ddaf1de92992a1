//! A stand-in for Traefik: a loopback TCP proxy that routes each connection round-robin to
//! the containers of one compose service whose health is `healthy`, resolving their IPs on
//! the compose network through the engine and refreshing the set on every engine event of the
//! project (start, die, health_status, destroy, ...). Like Traefik it does not retry.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use shipline_core::engine::{Engine, Health};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The running proxy; stops on drop.
pub struct Edge {
    /// Where it listens.
    pub addr: SocketAddr,
    backends: Arc<RwLock<Vec<SocketAddr>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn refresh(
    engine: &Engine,
    project: &str,
    service: &str,
    network: &str,
    backends: &RwLock<Vec<SocketAddr>>,
) {
    let Ok(list) = engine
        .project_containers(project, Some(service), true)
        .await
    else {
        return;
    };
    let healthy: Vec<SocketAddr> = list
        .iter()
        .filter(|c| c.health == Health::Healthy)
        .filter_map(|c| c.networks.get(network))
        .filter_map(|ip| format!("{ip}:80").parse().ok())
        .collect();
    if let Ok(mut b) = backends.write() {
        *b = healthy;
    }
}

impl Edge {
    /// Starts routing to healthy containers of `service` in compose project `project` on
    /// network `network` (compose's default: `<project>_default`).
    pub async fn start(engine: Engine, project: &str, service: &str, network: &str) -> Edge {
        let backends = Arc::new(RwLock::new(Vec::new()));
        refresh(&engine, project, service, network, &backends).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind edge");
        let addr = listener.local_addr().expect("edge addr");
        let (p, s, n) = (
            project.to_string(),
            service.to_string(),
            network.to_string(),
        );
        let b = backends.clone();
        let watcher = tokio::spawn(async move {
            loop {
                let mut events = Box::pin(engine.container_events(Some(&p)));
                // refresh once the subscription is live, then on every event
                refresh(&engine, &p, &s, &n, &b).await;
                while let Some(ev) = events.next().await {
                    if ev.is_err() {
                        break;
                    }
                    refresh(&engine, &p, &s, &n, &b).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let b = backends.clone();
        let next = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let pick = {
                    let list = b.read().map(|l| l.clone()).unwrap_or_default();
                    if list.is_empty() {
                        None
                    } else {
                        Some(list[next.fetch_add(1, Ordering::Relaxed) % list.len()])
                    }
                };
                tokio::spawn(async move {
                    let Some(backend) = pick else {
                        let _ = client
                            .write_all(
                                b"HTTP/1.0 503 Service Unavailable\r\n\r\nno healthy backend\n",
                            )
                            .await;
                        return;
                    };
                    match TcpStream::connect(backend).await {
                        Ok(mut upstream) => {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                        Err(_) => {
                            let _ = client
                                .write_all(b"HTTP/1.0 502 Bad Gateway\r\n\r\nbackend refused\n")
                                .await;
                        }
                    }
                });
            }
        });
        Edge {
            addr,
            backends,
            tasks: vec![watcher, acceptor],
        }
    }

    /// How many backends are routable now.
    pub fn backend_count(&self) -> usize {
        self.backends.read().map(|b| b.len()).unwrap_or(0)
    }

    /// Waits until at least `n` backends are routable.
    pub async fn wait_backends(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.backend_count() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One `GET /version` through the proxy; Ok(body) on a 200.
pub async fn get_version(addr: SocketAddr) -> Result<String, String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /version HTTP/1.0\r\nHost: edge\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.lines().next().unwrap_or("").to_string();
        if status.contains(" 200 ") {
            Ok(text
                .rsplit("\r\n\r\n")
                .next()
                .unwrap_or("")
                .trim()
                .to_string())
        } else if status.is_empty() {
            Err("empty response".into())
        } else {
            Err(status)
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| Err("timeout".into()))
}

/// Counts of a load run.
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    /// Requests sent.
    pub total: usize,
    /// Requests that did not get a 200.
    pub failures: usize,
    /// Distinct versions seen, in order of first appearance.
    pub versions: Vec<String>,
    /// A few failure reasons.
    pub sample_errors: Vec<String>,
}

/// Sends sequential requests through the proxy until `stop` is set and at least `min` were
/// sent.
pub async fn load(addr: SocketAddr, min: usize, stop: Arc<AtomicBool>) -> LoadResult {
    let mut r = LoadResult::default();
    while r.total < min || !stop.load(Ordering::Relaxed) {
        r.total += 1;
        match get_version(addr).await {
            Ok(v) => {
                if !r.versions.contains(&v) {
                    r.versions.push(v);
                }
            }
            Err(e) => {
                r.failures += 1;
                if r.sample_errors.len() < 5 {
                    r.sample_errors.push(e);
                }
            }
        }
        // keep the loop from starving the deploy on a 2-core machine
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    r
}
