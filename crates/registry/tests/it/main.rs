//! Integration tests against a real registry (Debian's `docker-registry`).

mod archive;
mod auth;
mod copy;
mod faults;
mod reference;
mod referrers;
mod rss;
mod support;
mod tags;
