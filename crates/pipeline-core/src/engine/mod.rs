//! Docker engine work through bollard: build, test containers, export, health, events (work in progress).
