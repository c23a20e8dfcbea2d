#!/bin/sh
# Benchmark (not a test): `vmimg compact` of a ~1 GB-allocated image with 5 snapshots, against
# `qemu-img convert -O qcow2` of the same image (which drops the snapshots). Prints both times and
# the ratio compact/convert. Usage: Samples/bench-compact.sh [vmimg-binary] [dir]
set -eu
VMIMG=${1:-.build/release/vmimg}
DIR=${2:-$(mktemp -d)}
IMG=$DIR/bench.qcow2
qemu-img create -q -f qcow2 "$IMG" 2G
for k in 0 1 2 3 4; do
    # 200 MiB per round at a different place, plus 4 KiB rewrites over earlier rounds.
    qemu-io -c "write -P $((k + 1)) $((k * 200))M 200M" -c "write -P $((k + 11)) 0 64M" "$IMG" >/dev/null
    qemu-img snapshot -c "s$k" "$IMG"
done
sync
qemu-img info "$IMG" | grep -E 'disk size|virtual size'
t0=$(date +%s.%N)
qemu-img convert -O qcow2 "$IMG" "$DIR/converted.qcow2"
t1=$(date +%s.%N)
"$VMIMG" compact "$IMG"
t2=$(date +%s.%N)
qemu-img check "$IMG" | head -1
echo "qemu-img convert: $(echo "$t1 - $t0" | bc) s   vmimg compact: $(echo "$t2 - $t1" | bc) s"
echo "ratio compact/convert: $(echo "scale=2; ($t2 - $t1) / ($t1 - $t0)" | bc)"
rm -rf "$DIR"
