#!/usr/bin/env bash
# The main job on the bundled example (examples/hestami), from a fresh clone:
#   builds shipline, installs what the example needs (busybox-static, a venv with semgrep),
#   copies the example into a scratch directory (target/example-run, so the repository stays
#   clean) and runs the pipeline there against the local Docker engine:
#   1. push to `dev`  -> build, test, scan (Trivy is not installable here: the policy allows it
#      to be skipped and the summary says so), push to the embedded OCI store, rolling deploy
#   2. push to `main` -> the same for prod, stopping at the approval gate
#   3. an approver signs the digest (a throwaway SSH key registered in the scratch copy)
#   4. the run resumes and deploys exactly that digest to prod
# The compose projects are renamed shipline-example-dev/-prod so no real stack is touched;
# `bash scripts/example.sh --down` removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/target/example-run

down() {
  for p in shipline-example-dev shipline-example-prod; do
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p")
    [ -n "$ids" ] && docker rm -f $ids >/dev/null
    docker network rm "${p}_backend" >/dev/null 2>&1 || true
  done
}
if [ "${1:-}" = "--down" ]; then down; exit 0; fi

bash scripts/prereqs.sh
if [ -n "${SHIPLINE_BIN:-}" ]; then
  bin=$SHIPLINE_BIN            # a prebuilt binary (e.g. from a debug build)
else
  cargo build --release --locked -p shipline >&2
  bin=$repo/target/release/shipline
fi
export PATH="$repo/.venv/bin:$PATH"

rm -rf "$work"
mkdir -p "$work"
cp -a examples/hestami/. "$work/"
cp /bin/busybox "$work/app/busybox"
cd "$work"
sed -i 's/^compose_project = "dev"/compose_project = "shipline-example-dev"/; s/^compose_project = "prod"/compose_project = "shipline-example-prod"/' shipline.toml
ssh-keygen -q -t ed25519 -N '' -C approver@example.com -f approver_key
pub=$(cat approver_key.pub)
sed -i "s#^approvers = \[#approvers = [\n  { identity = \"approver@example.com\", public_key = \"$pub\" },#" shipline.toml
commit=$(git -C "$repo" rev-parse HEAD)

echo "== shipline validate" >&2
"$bin" validate
echo "== shipline run --branch dev" >&2
"$bin" run --branch dev --commit "$commit"
echo "== shipline run --branch main (stops at the approval gate)" >&2
"$bin" run --branch main --commit "$commit"
run_id=$("$bin" runs --json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)["runs"] if x["status"]=="waiting_approval"]; print(r[0]["id"])')
digest=$("$bin" runs show "$run_id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"]["digest"])')
echo "== shipline approve prod --digest $digest" >&2
"$bin" approve prod --digest "$digest" --key approver_key --requester ci@example.com --reason "example release"
echo "== shipline run --resume $run_id" >&2
"$bin" run --resume "$run_id" --commit "$commit"
echo "== shipline status" >&2
"$bin" status || true
