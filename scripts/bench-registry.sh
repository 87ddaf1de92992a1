#!/usr/bin/env bash
# Benchmark: shipline vs `skopeo copy` against the same local registry (Debian docker-registry).
# Synthetic image: LAYERS layers x LAYER_MIB MiB of random data, gzip'd, in an OCI layout.
# Measures push, re-push (all blobs present), pull and promotion to another repository:
# wall time (median of RUNS) and peak RSS (max) from /usr/bin/time -v.
#
#   scripts/bench-registry.sh            # 8 x 64 MiB, 3 runs, prints a markdown table
#   LAYERS=4 LAYER_MIB=16 RUNS=1 scripts/bench-registry.sh
#   SHIPLINE_BIN=path/to/release/shipline scripts/bench-registry.sh   # skip the build
#
# Needs: docker-registry, skopeo, jq, /usr/bin/time (scripts/prereqs.sh), a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYERS=${LAYERS:-8}
LAYER_MIB=${LAYER_MIB:-64}
RUNS=${RUNS:-3}
for tool in docker-registry skopeo jq /usr/bin/time sha256sum gzip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: missing $tool (run scripts/prereqs.sh)" >&2; exit 3; }
done

if [ -n "${SHIPLINE_BIN:-}" ]; then
  SHIPLINE=$SHIPLINE_BIN   # an already built release binary
else
  echo "bench: building shipline (release)" >&2
  cargo build --release -q -p shipline
  target_dir=${CARGO_TARGET_DIR:-target}
  SHIPLINE=$(cd "$target_dir/release" && pwd)/shipline
fi

work=$(mktemp -d)
reg_pid=""
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- synthetic OCI layout ---------------------------------------------------------------------
echo "bench: generating $LAYERS x $LAYER_MIB MiB random gzip'd layers" >&2
src=$work/src
mkdir -p "$src/blobs/sha256"
layers_json="[]"
diff_ids="[]"
for i in $(seq 1 "$LAYERS"); do
  head -c "$((LAYER_MIB * 1024 * 1024))" /dev/urandom > "$work/layer.tar"
  diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -1 -c "$work/layer.tar" > "$work/layer.tgz"
  d=$(sha256sum "$work/layer.tgz" | cut -d' ' -f1)
  size=$(stat -c %s "$work/layer.tgz")
  mv "$work/layer.tgz" "$src/blobs/sha256/$d"
  layers_json=$(jq -c --arg d "sha256:$d" --argjson s "$size" \
    '. + [{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":$d,"size":$s}]' <<<"$layers_json")
  diff_ids=$(jq -c --arg d "sha256:$diff" '. + [$d]' <<<"$diff_ids")
done
rm -f "$work/layer.tar"
jq -cn --argjson ids "$diff_ids" \
  '{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":$ids}}' \
  > "$work/config.json"
cd_=$(sha256sum "$work/config.json" | cut -d' ' -f1)
cs=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$src/blobs/sha256/$cd_"
jq -cn --arg cd "sha256:$cd_" --argjson cs "$cs" --argjson layers "$layers_json" \
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":$cd,"size":$cs},"layers":$layers}' \
  > "$work/manifest.json"
md=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
ms=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$src/blobs/sha256/$md"
echo '{"imageLayoutVersion":"1.0.0"}' > "$src/oci-layout"
jq -cn --arg md "sha256:$md" --argjson ms "$ms" \
  '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":$md,"size":$ms,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  > "$src/index.json"
total_mib=$(du -sm "$src" | cut -f1)

# --- measurement helpers --------------------------------------------------------------------------
# measure NAME CMD... : runs CMD under /usr/bin/time -v, appends "seconds kib" to $work/NAME
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || {
    echo "bench: $name failed:" >&2; cat "$work/err.txt" >&2; exit 3; }
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')
  # m:ss.ss -> seconds
  wall=$(awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$wall")
  echo "$wall $rss" >> "$work/$name"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
stat_line() { # NAME -> "median_s max_rss_mib"
  local t r
  t=$(cut -d' ' -f1 "$work/$1" | median)
  r=$(cut -d' ' -f2 "$work/$1" | sort -n | tail -1)
  printf "%s %s" "$t" "$(awk -v k="$r" 'BEGIN{printf "%.1f", k/1024}')"
}

# --- registry: a fresh one (empty storage, new port) for every run, so that no tool can mount
# blobs remembered from an earlier run (skopeo keeps a blob-info cache keyed by host:port) ---
start_registry() {
  [ -n "$reg_pid" ] && { kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; }
  rm -rf "$work/registry"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  host=127.0.0.1:$port
  cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $host
  secret: bench
YAML
  docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
  reg_pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
}

sent_total=0
for run in $(seq 1 "$RUNS"); do
  echo "bench: run $run/$RUNS" >&2
  start_registry
  # push (fresh repositories each run so every blob is really uploaded)
  measure skopeo_push skopeo copy -q --dest-tls-verify=false "oci:$src:bench" "docker://$host/skopeo$run/app:1"
  measure shipline_push "$SHIPLINE" push --json "oci:$src:bench" "$host/shipline$run/app:1"
  # re-push: everything is there
  measure skopeo_repush skopeo copy -q --dest-tls-verify=false "oci:$src:bench" "docker://$host/skopeo$run/app:1"
  measure shipline_repush "$SHIPLINE" push --json "oci:$src:bench" "$host/shipline$run/app:1"
  sent=$(jq .bytes_sent "$work/out.txt"); sent_total=$((sent_total + sent))
  # pull into a fresh layout
  rm -rf "$work/pull-skopeo" "$work/pull-shipline"
  measure skopeo_pull skopeo copy -q --src-tls-verify=false "docker://$host/skopeo$run/app:1" "oci:$work/pull-skopeo:1"
  measure shipline_pull "$SHIPLINE" pull --json "$host/shipline$run/app:1" --to "oci:$work/pull-shipline:1"
  # promotion to another repository of the same registry
  measure skopeo_promote skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://$host/skopeo$run/app:1" "docker://$host/skopeo$run-prod/app:1"
  measure shipline_promote "$SHIPLINE" copy --json "$host/shipline$run/app:1" "$host/shipline$run-prod/app:1"
  promo_sent=$(jq .bytes_sent "$work/out.txt"); sent_total=$((sent_total + promo_sent))
  promo_mounted=$(jq .blobs_mounted "$work/out.txt")
done

pushed=$(jq -r .digest "$work/out.txt")
echo
echo "Image: $LAYERS layers x $LAYER_MIB MiB random data, gzip -1 ($total_mib MiB), OCI layout; registry: docker-registry $(docker-registry --version | awk '{print $NF}') on loopback; $RUNS runs, median time, max peak RSS; $(nproc) CPUs."
echo
for f in "$work"/skopeo_* "$work"/shipline_*; do echo "raw $(basename "$f"): $(tr '\n' ' ' < "$f")" >&2; done
echo "| operation | skopeo time (s) | shipline time (s) | ratio | skopeo peak RSS (MiB) | shipline peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|"
for op in push repush pull promote; do
  read -r st sr <<<"$(stat_line "skopeo_$op")"
  read -r ht hr <<<"$(stat_line "shipline_$op")"
  ratio=$(awk -v a="$ht" -v b="$st" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')
  echo "| $op | $st | $ht | $ratio | $sr | $hr |"
done
echo
echo "shipline blob bytes sent on re-push + promotion (all runs): $sent_total; promotion mounted $promo_mounted blobs; digest $pushed"
