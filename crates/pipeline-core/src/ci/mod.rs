//! CI integration: GitHub Actions workflows and step outputs (work in progress).
