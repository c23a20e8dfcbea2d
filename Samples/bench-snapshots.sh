#!/usr/bin/env bash
# Times internal snapshot create / apply / delete: qemu-img against vmimg, on copies of one image
# with over a million allocated 512-byte clusters (520 MiB written, one older snapshot, 100 MiB
# rewritten since). Prints one line per operation with both times and the ratio.
#
#   Samples/bench-snapshots.sh [workdir]
#
# Until `vmimg snapshot` is wired in the CLI this runs the gated test SnapshotBenchmark in release
# mode; once it is, set VMIMG=path/to/vmimg to time the binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
base=$work/bench.qcow2
if [[ ! -f $base ]]; then
    qemu-img create -q -f qcow2 -o cluster_size=512 "$base" 600M
    qemu-io -c 'write -P 0x5a 0 520M' "$base" >/dev/null
    qemu-img snapshot -c old "$base"
    qemu-io -c 'write -P 0x5b 0 100M' "$base" >/dev/null
fi
qemu-img check "$base" | tail -2

if [[ -n ${VMIMG:-} ]]; then
    cp "$base" "$work/q.qcow2"; cp "$base" "$work/v.qcow2"
    for step in "-c s1" "-a old" "-d s1" "-d old"; do
        read -r op name <<<"$step"
        tq=$( { /usr/bin/time -f %e qemu-img snapshot "$op" "$name" "$work/q.qcow2"; } 2>&1 | tail -1)
        tv=$( { /usr/bin/time -f %e "$VMIMG" snapshot "$op" "$name" "$work/v.qcow2"; } 2>&1 | tail -1)
        awk -v o="$op $name" -v q="$tq" -v v="$tv" \
            'BEGIN { printf "snapshot %s: qemu-img %.3fs vmimg %.3fs ratio %.1fx\n", o, q, v, (v > 0 ? q / v : 0) }'
    done
    qemu-img check "$work/v.qcow2" | head -1
    qemu-img compare "$work/q.qcow2" "$work/v.qcow2"
else
    VMIMG_LONG=1 VMIMG_BENCH_DIR="$work" swift test -c release --scratch-path .build-bench \
        --filter SnapshotBenchmark 2>&1 | grep -E '^snapshot |✘|passed|failed'
fi
