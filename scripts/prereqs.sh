#!/usr/bin/env bash
# Installs everything shipline's tests and the bundled example need on a fresh machine of this
# kind (Debian + Rust + a running Docker engine). Idempotent: a second run is quick.
#   - Debian packages: docker-registry (CNCF distribution), busybox-static (test images),
#     skopeo (benchmarks), jq (benchmarks), openssh-client (ssh-keygen -Y), apache2-utils (htpasswd)
#   - a Python venv at .venv with semgrep and zizmor (binary wheels from PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
if ! { [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x httpd >/dev/null; }; then need_apt+=(busybox-static); fi
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "prereqs: installing Debian packages: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  # the Debian package starts a registry service on :5000; tests start their own
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
  service docker-registry stop >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/semgrep ] || [ ! -x .venv/bin/zizmor ]; then
  echo "prereqs: creating .venv with semgrep and zizmor" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --only-binary=:all: semgrep zizmor >&2
fi

docker info >/dev/null 2>&1 || { echo "prereqs: the Docker engine is not reachable (docker info failed)" >&2; exit 3; }
echo "prereqs: ok" >&2
