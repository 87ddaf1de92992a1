//! An in-process HTTP proxy in front of a registry that injects faults: statuses with
//! `Retry-After` (429 storms, 503s), connection resets, corrupted bodies, slow responses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, if given) without forwarding.
    Status(u16, Option<u64>),
    /// Answer 401 with this `WWW-Authenticate` challenge (a revoked or expired token).
    Challenge(String),
    /// Answer with this status, headers and body without forwarding.
    Respond(u16, Vec<(String, String)>, String),
    /// Drop the connection without an answer.
    Reset,
    /// Forward, then flip a byte in the response body.
    Corrupt,
    /// Wait, then forward.
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<&'static str>,
    pub path_contains: String,
    pub fault: Fault,
    /// How many more matching requests get the fault (`usize::MAX`: always).
    pub remaining: usize,
}

impl Rule {
    pub fn new(
        method: Option<&'static str>,
        path_contains: &str,
        fault: Fault,
        times: usize,
    ) -> Rule {
        Rule {
            method,
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        }
    }
}

#[derive(Default)]
pub struct State {
    pub rules: Vec<Rule>,
    /// `METHOD path -> status or fault` of every request seen.
    pub log: Vec<String>,
    /// Blob upload requests (`PUT`/`PATCH` under `/blobs/uploads/`) in flight now.
    pub uploads_in_flight: usize,
    /// The most blob upload requests ever in flight at once.
    pub max_uploads_in_flight: usize,
}

/// Counts a blob upload request as in flight until dropped.
struct InFlight(Arc<Mutex<State>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.uploads_in_flight -= 1;
        }
    }
}

pub struct FaultProxy {
    pub host: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`, plain HTTP) on a free loopback port.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let host = addr.to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let upstream = upstream.to_owned();
        let st = state.clone();
        let me = host.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let io = hyper_util::rt::TokioIo::new(stream);
                let client = client.clone();
                let upstream = upstream.clone();
                let st = st.clone();
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(
                            req,
                            client.clone(),
                            upstream.clone(),
                            me.clone(),
                            st.clone(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        FaultProxy { host, state, task }
    }

    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.rules.clear();
        s.log.clear();
    }

    /// The most blob uploads that were in flight at once.
    pub fn max_uploads_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_uploads_in_flight
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    req: Request<Incoming>,
    client: reqwest::Client,
    upstream: String,
    me: String,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fault = {
        let mut s = state.lock().unwrap();
        let f = s
            .rules
            .iter_mut()
            .find(|r| {
                r.remaining > 0
                    && r.method.is_none_or(|m| m == method)
                    && path.contains(&r.path_contains)
            })
            .map(|r| {
                if r.remaining != usize::MAX {
                    r.remaining -= 1;
                }
                r.fault.clone()
            });
        s.log.push(format!("{method} {path} {f:?}"));
        f
    };
    let _in_flight =
        if matches!(method.as_str(), "PUT" | "PATCH") && path.contains("/blobs/uploads/") {
            let mut s = state.lock().unwrap();
            s.uploads_in_flight += 1;
            s.max_uploads_in_flight = s.max_uploads_in_flight.max(s.uploads_in_flight);
            Some(InFlight(state.clone()))
        } else {
            None
        };
    match &fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut b = Response::builder().status(*code);
            if let Some(s) = retry_after {
                b = b.header("retry-after", s.to_string());
            }
            return Ok(b.body(full(Bytes::new())).expect("response"));
        }
        Some(Fault::Challenge(c)) => {
            return Ok(Response::builder()
                .status(401)
                .header("www-authenticate", c.as_str())
                .body(full(Bytes::new()))
                .expect("response"));
        }
        Some(Fault::Respond(code, headers, body)) => {
            let mut b = Response::builder().status(*code);
            for (k, v) in headers {
                b = b.header(k.as_str(), v.as_str());
            }
            return Ok(b.body(full(body.clone())).expect("response"));
        }
        Some(Fault::Reset) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ));
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let url = format!("http://{upstream}{path}");
    let mut out = client.request(req.method().clone(), url);
    for (k, v) in req.headers() {
        if !matches!(
            k.as_str(),
            "host" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            out = out.header(k, v);
        }
    }
    let body_stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    out = out.body(reqwest::Body::wrap_stream(body_stream));
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            return Ok(Response::builder()
                .status(502)
                .body(full(format!("proxy: {e}")))
                .expect("response"))
        }
    };
    let mut b = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if matches!(
            k.as_str(),
            "connection" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        if k.as_str() == "location" {
            let rewritten = v.to_str().unwrap_or("").replace(&upstream, &me);
            b = b.header(k, rewritten);
        } else {
            b = b.header(k, v);
        }
    }
    if matches!(fault, Some(Fault::Corrupt)) {
        let mut bytes = resp.bytes().await.map_err(std::io::Error::other)?.to_vec();
        let mid = bytes.len() / 2;
        if let Some(x) = bytes.get_mut(mid) {
            *x ^= 0xff;
        }
        return Ok(b.body(full(bytes)).expect("response"));
    }
    let stream = resp
        .bytes_stream()
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    Ok(b.body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("response"))
}
