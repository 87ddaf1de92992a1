#!/usr/bin/env bash
# Zero-downtime benchmark: runs the deploy test that sends >= 2,000 HTTP requests through the
# stand-in edge proxy (tests/it/deploy/support/edge.rs: routes only to healthy containers,
# refreshed on engine events) while v1 -> v2 is deployed, once with `rolling` and once with
# `recreate`, ROUNDS times, and prints the failure counts (docs/BENCHMARKS.md).
#   ROUNDS=3 scripts/bench-rollout.sh
# Needs: a Docker engine, docker-compose (or the docker compose plugin), /bin/busybox.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-1}"
cargo test -p shipline-core --test it --no-run >&2
printf '%-6s %-9s %9s %9s %s\n' round strategy requests failures versions
for round in $(seq 1 "$ROUNDS"); do
  out=$(cargo test -q -p shipline-core --test it -- --exact \
        deploy::zero_downtime::rolling_has_no_failures_recreate_has_some --nocapture 2>&1) || {
    echo "$out" >&2; echo "bench-rollout: the measurement test failed" >&2; exit 1; }
  echo "$out" | grep '^BENCH ' \
    | sed -E 's/^BENCH strategy=([a-z]+) requests=([0-9]+) failures=([0-9]+) versions=(\[[^]]*\]).*/\1 \2 \3 \4/' \
    | while read -r s r f v; do
        printf '%-6s %-9s %9s %9s %s\n' "$round" "$s" "$r" "$f" "$v"
      done
done
