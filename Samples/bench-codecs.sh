#!/bin/sh
# Benchmarks qcow2 cluster codecs on 64 KiB clusters of host binaries and text.
# Usage: Samples/bench-codecs.sh [MiB-per-corpus]   (needs gcc, zlib, libdeflate, libisal, libzstd dev packages)
set -eu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
here=$(dirname "$0")
gcc -O2 -o "$dir/bench" "$here/bench-codecs.c" -lz -ldeflate -lisal -lzstd
mib=${1:-48}
find /usr/bin /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -size +64k 2>/dev/null | sort > "$dir/bin.list"
find /usr/include /usr/share/doc /usr/share/perl* /usr/lib/python3* -type f \
    \( -name '*.h' -o -name '*.txt' -o -name '*.py' -o -name '*.pm' -o -name 'copyright' \) 2>/dev/null | sort > "$dir/text.list"
echo "== binaries"; "$dir/bench" "$dir/bin.list" "$mib"
echo "== text"; "$dir/bench" "$dir/text.list" "$mib"
