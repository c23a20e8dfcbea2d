#!/usr/bin/env bash
# Benchmark (not a test): wrk against the console's API on loopback.
#
#   bash Samples/bench-console.sh [VMIMG_BINARY] [--instances N] [--snapshots M] [--duration 10s]
#
# Starts `vmimg console` on a scratch home, creates N instances (64 MiB drives, default 100) with M
# snapshots each (default 5) through the API, then runs wrk (2 threads, 16 connections) on
#   GET /api/v1/instances
#   GET /api/v1/instances/inst-1/snapshots
# and prints requests/s and the p99 latency of each. Needs wrk and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

vmimg=.build/debug/vmimg
instances=100
snapshots=5
duration=10s
while [[ $# -gt 0 ]]; do
    case "$1" in
        --instances) instances=$2; shift ;;
        --snapshots) snapshots=$2; shift ;;
        --duration) duration=$2; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) vmimg=$1 ;;
    esac
    shift
done
command -v wrk >/dev/null || { echo "bench-console.sh: install wrk (apt-get install wrk)" >&2; exit 1; }

home=$(mktemp -d /tmp/vmimg-bench-console.XXXXXX)
log=$home.log
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$home" "$log"' EXIT
token=$("$vmimg" console --print-token --home "$home")
"$vmimg" console --home "$home" --port 0 2>"$log" &
pid=$!
for _ in $(seq 100); do grep -q "console on http://" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
auth="Authorization: Bearer $token"
echo "console at $url; creating $instances instances x $snapshots snapshots"
start=$(date +%s)
for i in $(seq "$instances"); do
    curl -sf -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
        -d "{\"name\":\"inst-$i\",\"size\":\"64M\"}" "$url/api/v1/instances"
    for s in $(seq "$snapshots"); do
        curl -sf -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
            -d "{\"name\":\"snap-$s\"}" "$url/api/v1/instances/inst-$i/snapshots"
    done
done
echo "setup took $(( $(date +%s) - start )) s"
for path in /api/v1/instances /api/v1/instances/inst-1/snapshots; do
    echo "== GET $path"
    wrk -t2 -c16 -d"$duration" --latency -H "$auth" "$url$path" | tee "$home/wrk.txt" | sed -n '1,20p' >/dev/null
    rps=$(awk '/Requests\/sec/ {print $2}' "$home/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$home/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$home/wrk.txt")
    echo "requests/s $rps  p99 $p99  non-2xx ${non2xx:-0}"
done
