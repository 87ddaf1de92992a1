#!/usr/bin/env bash
# The main job on the bundled example (examples/hestami): builds shipline, installs what the
# example needs (busybox-static, a venv with semgrep), copies the example into a scratch
# directory (target/example-run) so the repository stays clean, and runs the pipeline there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bash scripts/prereqs.sh
cargo build --release --locked -p shipline >&2
bin=$repo/target/release/shipline
export PATH="$repo/.venv/bin:$PATH"

work=$repo/target/example-run
rm -rf "$work"
mkdir -p "$work"
cp -a examples/hestami/. "$work/"
cp /bin/busybox "$work/app/busybox"
cd "$work"

echo "== shipline validate" >&2
"$bin" validate
echo "== shipline plan --branch dev" >&2
"$bin" plan --branch dev
echo "== shipline plan --branch main" >&2
"$bin" plan --branch main
echo "== shipline graph" >&2
"$bin" graph
