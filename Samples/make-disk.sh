#!/usr/bin/env bash
# Makes an ext4 raw disk image for the test guest, filled from a folder and/or NAME=TEXT pairs,
# without mounting anything (mke2fs -d).
#
#   bash Samples/make-disk.sh [-s SIZE] [-d DIR] [-f NAME=TEXT]... OUT.raw
#
#   -s SIZE       image size as mke2fs takes it (default 64M); the raw file is sparse
#   -d DIR        copy DIR's contents into the root of the file system
#   -f NAME=TEXT  create file NAME holding TEXT and a newline (repeatable)
#
# Convert the result for the guest with e.g. `qemu-img convert -f raw -O qcow2 OUT.raw disk.qcow2`.
set -euo pipefail

size=64M
dir=
files=()
while getopts "s:d:f:" opt; do
    case "$opt" in
        s) size=$OPTARG ;;
        d) dir=$OPTARG ;;
        f) files+=("$OPTARG") ;;
        *) echo "usage: $0 [-s SIZE] [-d DIR] [-f NAME=TEXT]... OUT.raw" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || { echo "usage: $0 [-s SIZE] [-d DIR] [-f NAME=TEXT]... OUT.raw" >&2; exit 2; }
out=$1

stage=$(mktemp -d "${TMPDIR:-/tmp}/vmimg-disk.XXXXXX")
trap 'rm -rf "$stage"' EXIT
[[ -n "$dir" ]] && cp -a "$dir/." "$stage/"
for pair in "${files[@]}"; do
    name=${pair%%=*}
    mkdir -p "$(dirname "$stage/$name")"
    printf '%s\n' "${pair#*=}" > "$stage/$name"
done

rm -f "$out"
# Fixed UUID-free, quiet, no journal-less tricks: a plain ext4 the Debian 6.1 kernel mounts.
mke2fs -q -F -t ext4 -L vmimg -d "$stage" "$out" "$size" > /dev/null
