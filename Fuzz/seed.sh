#!/usr/bin/env bash
# Generates the seed corpus: small qcow2 images made by real qemu-img/qemu-io 7.2, one per
# feature the engine parses (cluster sizes, v2/v3, extended L2, compression, snapshots, backing
# and data-file names, refcount widths, dirty bit, bitmaps). The seeds are generated, never
# committed.
#
#   bash Fuzz/seed.sh [DIR]      (default Fuzz/corpus/seeds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
out=${1:-corpus/seeds}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || {
    echo "seed.sh: needs qemu-img and qemu-io (apt-get install qemu-utils)" >&2
    exit 1
}

io() { qemu-io -f qcow2 "$@" >/dev/null; }
# Writes a recognizable pattern, zeroes and a discard into the first MiB of an image.
scribble() {
    local img=$1 cs=$2
    io -c "write -P 0x11 0 $cs" -c "write -P 0x22 $((3 * cs + 512)) $((2 * cs))" \
        -c "write -z $((8 * cs)) $((2 * cs))" -c "write -P 0x33 $((16 * cs)) $cs" \
        -c "discard $((16 * cs)) $cs" -c "write -P 0x44 $((1024 * 1024 - 512)) 512" "$img"
}
make() {  # make NAME SIZE OPTIONS [scribble-cluster-size]
    local name=$1 size=$2 opts=$3 cs=${4:-}
    qemu-img create -q -f qcow2 -o "$opts" "$name.qcow2" "$size"
    [[ -n $cs ]] && scribble "$name.qcow2" "$cs"
    return 0
}

make empty-512 1M cluster_size=512
make data-512 1M cluster_size=512 512
make data-1k-rc1 2M cluster_size=1024,refcount_bits=1 1024
make data-4k-rc64 2M cluster_size=4096,refcount_bits=64 4096
make v2-4k 2M cluster_size=4096,compat=0.10 4096
make data-64k 4M cluster_size=65536 65536
make xl2-16k 4M cluster_size=16384,extended_l2=on 512
io -c "write -P 0x55 16384 1024" -c "write -z 33280 512" xl2-16k.qcow2
make xl2-32k-sub 4M cluster_size=32768,extended_l2=on
io -c "write -P 0x66 1024 1024" -c "write -P 0x67 40960 3072" xl2-32k-sub.qcow2
make big-sparse-4k 100G cluster_size=4096
io -c "write -P 0x77 50G 8k" -c "write -P 0x78 99G 4k" big-sparse-4k.qcow2

# Compressed clusters: zlib and zstd, 4 KiB and 64 KiB clusters.
head -c 393216 /dev/urandom > rnd.raw
qemu-io -f raw -c "write -P 0x5a 0 256k" -c "write -P 0 256k 64k" rnd.raw >/dev/null
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 rnd.raw comp-zlib-4k.qcow2
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=65536,compression_type=zstd rnd.raw comp-zstd-64k.qcow2
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=512 rnd.raw comp-zlib-512.qcow2
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=16384,extended_l2=on rnd.raw comp-xl2-16k.qcow2

# Internal snapshots (table early in the file with small clusters).
make snap-512 1M cluster_size=512 512
qemu-img snapshot -c first snap-512.qcow2
io -c "write -P 0x88 1024 4096" snap-512.qcow2
qemu-img snapshot -c "second snapshot with a longer name" snap-512.qcow2
make snap-v2-4k 1M cluster_size=4096,compat=0.10 4096
qemu-img snapshot -c s1 snap-v2-4k.qcow2

# Names in cluster 0: backing file and format, external data file.
qemu-img create -q -f qcow2 -o cluster_size=4096 base.qcow2 1M
qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.qcow2 -F qcow2 backing-4k.qcow2
scribble backing-4k.qcow2 4096
qemu-img create -q -f qcow2 -u -o cluster_size=512 -b '../../etc/passwd' -F raw backing-raw-512.qcow2 1M
qemu-img create -q -f qcow2 -o cluster_size=4096,data_file=data.raw datafile-4k.qcow2 1M
scribble datafile-4k.qcow2 4096
qemu-img create -q -f qcow2 -o cluster_size=4096,data_file=data2.raw,data_file_raw=on datafile-raw-4k.qcow2 1M

# Dirty bit (lazy refcounts, then a simulated crash), and a persistent bitmap.
make lazy-4k 1M cluster_size=4096,lazy_refcounts=on
sh -c 'qemu-io -f qcow2 -c "write -P 0x99 0 8k" -c abort lazy-4k.qcow2; exit 0' >/dev/null 2>&1
make bitmap-4k 1M cluster_size=4096 4096
qemu-img bitmap -q --add bitmap-4k.qcow2 b0 2>/dev/null || qemu-img bitmap --add bitmap-4k.qcow2 b0

# Writes after the bitmaps exist, so their tables point at data clusters; one disabled.
qemu-img bitmap --add -g 512 bitmap-4k.qcow2 fine
io -c "write -P 0x9a 8192 4096" -c "write -P 0x9b 600k 70k" bitmap-4k.qcow2
qemu-img bitmap --disable bitmap-4k.qcow2 fine

cp ./*.qcow2 "$out"/
ls "$out" | wc -l | xargs echo "seed.sh: seeds in $out:"
