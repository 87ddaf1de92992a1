#!/usr/bin/env bash
# Benchmark: parse + gate + SARIF of a generated Trivy report with 100,000 vulnerabilities
# (~175 MB), shipline (release build) side by side with jq counting HIGH and CRITICAL.
#
#   bash scripts/bench-scan.sh            # 100,000 vulnerabilities, 3 runs each
#   N=20000 RUNS=1 bash scripts/bench-scan.sh
#
# Needs python3, jq and GNU time (/usr/bin/time, for peak RSS). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-100000}"
RUNS="${RUNS:-3}"
OUT="${BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-scan}"
mkdir -p "$OUT"
REPORT="$OUT/trivy-$N.json"

command -v jq >/dev/null || { echo "bench-scan: jq not found (bash scripts/prereqs.sh)" >&2; exit 3; }
[ -x /usr/bin/time ] || { echo "bench-scan: GNU time not found at /usr/bin/time (apt-get install time)" >&2; exit 3; }

if [ ! -s "$REPORT" ]; then
  echo "bench-scan: generating $REPORT ($N vulnerabilities)" >&2
  python3 - "$N" "$REPORT" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(42)
sev = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
words = ("buffer overflow heap use-after-free integer signedness race condition in the parser "
         "allows remote attackers to cause a denial of service or possibly execute arbitrary code "
         "via a crafted input file when processing untrusted certificates").split()
def text(k):
    return " ".join(rnd.choice(words) for _ in range(k))
def vuln(i):
    pkg = f"lib{i % 3000}"
    ver = f"1.{i % 17}.{i % 5}-r{i % 9}"
    fixed = f"1.{i % 17}.{i % 5 + 1}-r0" if i % 4 else ""
    return {
        "VulnerabilityID": f"CVE-20{10 + i % 15}-{10000 + i}",
        "PkgID": f"{pkg}@{ver}",
        "PkgName": pkg,
        "PkgIdentifier": {"PURL": f"pkg:apk/alpine/{pkg}@{ver}?arch=x86_64&distro=3.19.1", "UID": f"{i:016x}"},
        "InstalledVersion": ver,
        "FixedVersion": fixed,
        "Status": "fixed" if fixed else "affected",
        "SeveritySource": "nvd",
        "PrimaryURL": f"https://avd.aquasec.com/nvd/cve-20{10 + i % 15}-{10000 + i}",
        "Title": text(8),
        "Description": text(40),
        "Severity": sev[i % 5],
        "CweIDs": [f"CWE-{100 + i % 700}"],
        "VendorSeverity": {"nvd": 1 + i % 4, "redhat": 1 + i % 3},
        "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": round(1 + (i % 90) / 10, 1)},
                 "redhat": {"V3Vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", "V3Score": 5.9}},
        "References": [f"https://example.org/advisories/{i}/{k}" for k in range(4)],
        "PublishedDate": "2024-01-09T10:15:10.447Z",
        "LastModifiedDate": "2024-05-17T01:17:24.28Z",
    }
doc = {"SchemaVersion": 2, "Trivy": {"Version": "0.58.1"}, "CreatedAt": "2026-01-01T00:00:00Z",
       "ArtifactName": "registry.example.test/bench/app:1.0.0", "ArtifactType": "container_image",
       "Metadata": {"OS": {"Family": "alpine", "Name": "3.19.1"}},
       "Results": [{"Target": "registry.example.test/bench/app:1.0.0 (alpine 3.19.1)", "Class": "os-pkgs",
                    "Type": "alpine", "Vulnerabilities": [vuln(i) for i in range(n)]}]}
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
PY
fi
SIZE=$(stat -c %s "$REPORT")

echo "bench-scan: building shipline (release)" >&2
cargo build --release -q -p shipline
BIN="${CARGO_TARGET_DIR:-target}/release/shipline"

# measure CMD...: runs CMD $RUNS times under GNU time; prints "best_wall_s max_rss_kib cpu_s"
# (cpu_s = user + system of the best run: the fair figure on a shared, loaded machine)
measure() {
  local best="" rss=0 cpu="" i log="$OUT/time.log"
  for i in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$OUT/stderr.log" || {
      local rc=$?
      # shipline exits 1 when the gate fails: that is the expected result here
      [ "$rc" = 1 ] || { echo "bench-scan: $* failed ($rc)" >&2; cat "$OUT/stderr.log" >&2; exit 3; }
    }
    local wall r
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    local c
    c=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$log")
    if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$wall; cpu=$c; fi
    [ "$r" -gt "$rss" ] && rss=$r
  done
  echo "$best $rss $cpu"
}

read -r S_T S_R S_C < <(measure "$BIN" scan --quiet --report "trivy:$REPORT" --format sarif --output "$OUT/out.sarif")
read -r J_T J_R J_C < <(measure jq '[.Results[].Vulnerabilities[]? | select(.Severity == "HIGH" or .Severity == "CRITICAL")] | length' "$REPORT")
HC=$(jq '[.Results[].Vulnerabilities[]? | select(.Severity == "HIGH" or .Severity == "CRITICAL")] | length' "$REPORT")

echo
echo "Report: $N vulnerabilities, $((SIZE / 1000000)) MB ($SIZE bytes); best of $RUNS run(s); $(nproc) CPU(s)"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| tool | task | wall time (s) | CPU user+sys (s) | peak RSS (MiB) |"
echo "|---|---|---:|---:|---:|"
echo "| shipline (release) | parse + gate + SARIF (5,000-result cap) | $S_T | $S_C | $((S_R / 1024)) |"
echo "| jq $(jq --version | sed 's/^jq-//') | count HIGH+CRITICAL only ($HC) | $J_T | $J_C | $((J_R / 1024)) |"
