#!/usr/bin/env bash
# Read throughput over NBD: vmimg's server vs qemu-nbd exporting the same image. A benchmark, not a test.
#
#   Samples/bench-nbd.sh IMAGE [VMIMG_URL]
#
# VMIMG_URL is an nbd:// URL of a vmimg server already exporting IMAGE (read-only). Without it the
# script starts `vmimg serve` (VMIMG_BIN, default: vmimg on PATH). Until the CLI has `serve`, run
#   VMIMG_LONG=1 swift test -c release --filter NBDBenchmark
# which starts the server in-process and calls this script with the URL.
# Sequential: qemu-img convert -f raw nbd://… to a raw file (use a fully allocated image: convert
# skips what block status reports as zero).
# Random-ish: qemu-img bench -f raw, 4 KiB reads striding 1 MiB + 4 KiB (wraps around the image).
set -euo pipefail

image=${1:?usage: bench-nbd.sh IMAGE [VMIMG_URL]}
vmimg_url=${2:-}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d)
pids=()
cleanup() {
    # SIGKILL: children of a Swift test inherit a blocked signal mask, so SIGTERM would be ignored.
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

format=$(qemu-img info --output=json "$image" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')
size=$(qemu-img info --output=json "$image" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')

if [[ -z $vmimg_url ]]; then
    port=$(free_port)
    "${VMIMG_BIN:-vmimg}" serve --read-only --port "$port" --export "disk=$image" &
    pids+=($!)
    wait_port "$port"
    vmimg_url="nbd://127.0.0.1:$port/disk"
fi

qport=$(free_port)
qemu-nbd -r -t -f "$format" -b 127.0.0.1 -p "$qport" -x disk --shared=8 "$image" &
pids+=($!)
wait_port "$qport"
qemu_url="nbd://127.0.0.1:$qport/disk"

# Best of $runs wall-clock seconds for a command.
best() {
    local best_t=""
    for _ in $(seq "$runs"); do
        local s e t
        s=$(date +%s.%N)
        "$@" >/dev/null
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        if [[ -z $best_t ]] || (($(echo "$t < $best_t" | bc -l))); then best_t=$t; fi
    done
    echo "$best_t"
}

count=${BENCH_COUNT:-20000}
seq_cmd() { rm -f "$work/out.raw"; qemu-img convert -f raw -O raw "$1" "$work/out.raw"; }
rand_cmd() { qemu-img bench -f raw -c "$count" -d 16 -s 4k -S 1052672 "$1"; }

v_seq=$(best seq_cmd "$vmimg_url")
q_seq=$(best seq_cmd "$qemu_url")
v_rand=$(best rand_cmd "$vmimg_url")
q_rand=$(best rand_cmd "$qemu_url")

mib=$(echo "$size / 1048576" | bc -l)
reads_mib=$(echo "$count * 4096 / 1048576" | bc -l)
printf 'image: %s (%s, %.0f MiB), best of %d\n' "$image" "$format" "$mib" "$runs"
printf '%-28s %10s %10s %8s\n' "" "vmimg" "qemu-nbd" "ratio"
printf '%-28s %9.1fM %9.1fM %8.2f\n' "sequential (convert) MiB/s" "$(echo "$mib / $v_seq" | bc -l)" \
    "$(echo "$mib / $q_seq" | bc -l)" "$(echo "$q_seq / $v_seq" | bc -l)"
printf '%-28s %9.1fM %9.1fM %8.2f\n' "random 4k (bench) MiB/s" "$(echo "$reads_mib / $v_rand" | bc -l)" \
    "$(echo "$reads_mib / $q_rand" | bc -l)" "$(echo "$q_rand / $v_rand" | bc -l)"
echo "ratio = vmimg throughput / qemu-nbd throughput (1.00 = parity)"
