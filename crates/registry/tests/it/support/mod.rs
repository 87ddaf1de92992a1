//! Test support: a real `docker-registry` (open, TLS + htpasswd, token auth), a fault-injecting
//! proxy, synthetic OCI layouts.

#![allow(dead_code)]

pub mod image;
pub mod proxy;
pub mod registry;
pub mod token;

use shipline_registry::{ClientOptions, RegistryClient, RetryPolicy};
use std::time::Duration;

/// Fast retries for tests (the backoff logic itself is unit-tested).
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A client for an open loopback registry.
pub fn open_client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        retry: fast_retry(),
        ..ClientOptions::default()
    })
    .expect("client")
}

/// Replaces ports and temp paths for snapshots.
pub fn redact(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str("PORT");
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}
