#!/usr/bin/env bash
# The whole test suite: installs prerequisites, then runs every test of the workspace.
# This is the command README.md documents and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prereqs.sh
export PATH="$PWD/.venv/bin:$PATH"
export SHIPLINE_VENV="$PWD/.venv"
# A one-shot full build gains nothing from incremental caches, which double the target size.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --all-targets --locked -- --test-threads="${SHIPLINE_TEST_THREADS:-4}"
