#!/usr/bin/env bash
# Benchmark (not a test): `vmimg instance list` on a home with many instances.
#
#   bash Samples/bench-instance-list.sh [VMIMG_BINARY] [--instances N] [--snapshots M] [--runs R] [--home DIR]
#
# Creates N instances (64 MiB empty drives, default 100) and gives each drive M internal snapshots
# (default 2) with qemu-img (the first list adopts them, as snapshots made outside vmimg), then
# times R runs (default 50) of `vmimg instance list`, one after another and from two clients at
# once, and prints lists/s. With --home DIR an existing home is reused (nothing is created).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

vmimg=.build/release/vmimg
instances=100
snapshots=2
runs=50
home=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --instances) instances=$2; shift ;;
        --snapshots) snapshots=$2; shift ;;
        --runs) runs=$2; shift ;;
        --home) home=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) vmimg=$1 ;;
    esac
    shift
done

if [[ -z "$home" ]]; then
    home=$(mktemp -d /tmp/vmimg-bench-list.XXXXXX)
    trap 'rm -rf "$home"' EXIT
    start=$(date +%s.%N)
    for i in $(seq "$instances"); do
        "$vmimg" instance create --home "$home" --size 64M "inst-$i" >/dev/null
    done
    for drive in "$home"/instances/*/disk-*.qcow2; do
        for s in $(seq "$snapshots"); do qemu-img snapshot -c "snap-$s" "$drive"; done
    done
    "$vmimg" instance list --home "$home" >/dev/null 2>&1
    echo "setup: $instances instances x $snapshots snapshots in $(echo "$(date +%s.%N) - $start" | bc) s"
fi
count=$("$vmimg" instance list --home "$home" --output json | grep -c '"name"')
echo "home $home: $count instances"

"$vmimg" instance list --home "$home" >/dev/null
start=$(date +%s.%N)
for _ in $(seq "$runs"); do "$vmimg" instance list --home "$home" >/dev/null; done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "sequential: $runs lists in ${elapsed} s = $(echo "scale=1; $runs / $elapsed" | bc) lists/s"

start=$(date +%s.%N)
for _ in 1 2; do
    (for _ in $(seq "$runs"); do "$vmimg" instance list --home "$home" >/dev/null; done) &
done
wait
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "2 clients: $((2 * runs)) lists in ${elapsed} s = $(echo "scale=1; 2 * $runs / $elapsed" | bc) lists/s"
