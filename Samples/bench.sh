#!/usr/bin/env bash
# Side-by-side benchmark of vmimg and qemu-img on the same inputs (issue 7).
#
# Usage: Samples/bench.sh [--quick] [--runs N] [--only REGEX] [--keep]
#   --quick   ~200 MB allocated inputs (iteration); default ~1 GB (the figures we publish)
#   --runs N  paired runs per row (default 5; the table shows medians)
#   --only R  run only the rows whose key matches the extended regex R (e.g. 'convert|check')
#   --keep    keep the work directory (inputs are reused by a later run with the same size)
#   --no-warmup  skip the untimed run of each tool before a row's timed runs
# Environment: VMIMG (binary, default .build-perf/release/vmimg), QEMU_IMG (default qemu-img),
#   BENCH_DIR (work directory, default /tmp/vmimg-bench-{quick,full}).
#
# Each row runs vmimg and qemu-img back to back, alternating which goes first, N times. Ratio is the
# median of the per-pair ratios vmimg/qemu-img (time; for bench rows IOPS), so slow drift in machine
# load cancels out. "cpu" is the same ratio for user+sys CPU time: it ignores waiting and other load,
# but also hides parallel speedups. Peak RSS is the largest resident set of any vmimg run of that row.
# Needs: qemu-img, qemu-io, mke2fs (e2fsprogs), GNU time (/usr/bin/time).
set -euo pipefail
export LC_ALL=C.UTF-8   # ${#s} counts characters (→, ≤) when padding the table

here=$(cd "$(dirname "$0")/.." && pwd)
quick=0
runs=5
only=''
keep=0
warmup=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --runs) runs=$2; shift ;;
        --no-warmup) warmup=0 ;;
        --only) only=$2; shift ;;
        --keep) keep=1 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument '$1'" >&2; exit 1 ;;
    esac
    shift
done

VMIMG=${VMIMG:-$here/.build-perf/release/vmimg}
QEMU_IMG=${QEMU_IMG:-qemu-img}
for tool in "$VMIMG" "$QEMU_IMG" qemu-io mke2fs /usr/bin/time; do
    command -v "$tool" > /dev/null || { echo "bench.sh: '$tool' not found" >&2; exit 1; }
done

if [ $quick = 1 ]; then
    mode=quick
    tree=/usr/include          # ~130 MB of small files
    fs_mib=192 rand1_mib=48 zero_mib=64 rand2_mib=16
    snap_mib=128               # 512-byte clusters: 256K clusters
    bench_count=50000
else
    mode=full
    tree=/usr/share            # ~760 MB of mixed files
    fs_mib=1024 rand1_mib=192 zero_mib=256 rand2_mib=64
    snap_mib=512               # 512-byte clusters: 1M clusters
    bench_count=200000
fi
dir=${BENCH_DIR:-/tmp/vmimg-bench-$mode}
mkdir -p "$dir"
[ $keep = 1 ] || trap 'rm -rf "$dir"' EXIT

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- inputs
# disk.raw: [ext4 of $tree][random][zeros][random], sparse where zero.
make_inputs() {
    [ -f "$dir/.ready" ] && return
    log "building inputs in $dir ($mode)"
    rm -f "$dir"/*
    mke2fs -q -t ext4 -F -d "$tree" "$dir/disk.raw" "${fs_mib}M" 2> /dev/null
    local at=$fs_mib
    head -c "$((rand1_mib << 20))" /dev/urandom \
        | dd of="$dir/disk.raw" bs=1M seek="$at" conv=notrunc status=none iflag=fullblock
    at=$((at + rand1_mib + zero_mib))
    head -c "$((rand2_mib << 20))" /dev/urandom \
        | dd of="$dir/disk.raw" bs=1M seek="$at" conv=notrunc status=none iflag=fullblock
    truncate -s "$(((at + rand2_mib) << 20))" "$dir/disk.raw"
    "$QEMU_IMG" convert -f raw -O qcow2 "$dir/disk.raw" "$dir/disk.qcow2"
    # Backing chain: base = the disk; top overwrites scattered ranges of it.
    "$QEMU_IMG" create -q -f qcow2 -b disk.qcow2 -F qcow2 "$dir/top.qcow2"
    qemu-io -f qcow2 "$dir/top.qcow2" -c "write -P 0x5a 1M 32M" -c "write -P 0x11 $((fs_mib / 2))M 16M" \
        -c "write -z $((fs_mib + 8))M 8M" -c "write -P 0x77 $((fs_mib + rand1_mib + 4))M 24M" > /dev/null
    # 512-byte clusters, every one allocated: the snapshot and metadata-heavy check input.
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=512 "$dir/snap.qcow2" "${snap_mib}M"
    qemu-io -f qcow2 "$dir/snap.qcow2" -c "write -P 0x3c 0 ${snap_mib}M" > /dev/null
    # A full copy for bench -w (written in place; never a conversion input).
    cp "$dir/disk.qcow2" "$dir/bench.qcow2"
    touch "$dir/.ready"
}

# ---------------------------------------------------------------- timing
# timed CMD...: runs CMD, sets $elapsed and $cpu (seconds), $rss (KiB); output to $dir/out.txt.
timed() {
    local start end
    start=$(date +%s%N)
    if /usr/bin/time -f '%M %U %S' -o "$dir/rss.txt" "$@" > "$dir/out.txt" 2> "$dir/err.txt"; then
        status=0
    else
        status=$?
    fi
    end=$(date +%s%N)
    elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    read -r rss user sys < <(tail -1 "$dir/rss.txt")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s + 0.001 }')
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# row KEY LABEL TARGET KIND: KIND is time (ratio of seconds) or iops (ratio of requests per second).
# Calls prep_<KEY> TOOL (untimed), cmd_<KEY> TOOL (timed), post_<KEY> TOOL (untimed, may echo a size).
# pad TEXT WIDTH [right]: TEXT padded with spaces to WIDTH characters.
pad() { local n=$(($2 - ${#1})); ((n < 0)) && n=0; if [ "${3:-}" = right ]; then printf '%*s%s' $n '' "$1"; else printf '%s%*s' "$1" $n ''; fi; }
line() {
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$(pad "$1" 40)" "$(pad "$2" 9 right)" \
        "$(pad "$3" 9 right)" "$(pad "$4" 7 right)" "$(pad "$5" 6 right)" "$(pad "$6" 6)" "$(pad "$7" 6 right)" \
        "$(pad "$8" 9 right)" "$9"
}

results=()
row() {
    local key=$1 label=$2 target=$3 kind=$4
    if [ -n "$only" ] && ! [[ $key =~ $only ]]; then return; fi
    log "== $label"
    local i tool first second vt qt vc qc vs qs vr=0 ratios=() cratios=() sratios=() vtimes=() qtimes=() failed=''
    # One untimed run of each tool first: on this VM the first run after a pause pays for memory
    # the host took back (page faults on fresh guest pages), up to 3× a short row's time, and
    # would land on whichever tool goes first.
    if [ "$warmup" = 1 ]; then
        for tool in "$VMIMG" "$QEMU_IMG"; do
            if declare -F "prep_$key" > /dev/null; then "prep_$key" "$tool"; fi
            # shellcheck disable=SC2046
            timed $("cmd_$key" "$tool")
        done
    fi
    for ((i = 0; i < runs; i++)); do
        if ((i % 2 == 0)); then first=$VMIMG second=$QEMU_IMG; else first=$QEMU_IMG second=$VMIMG; fi
        for tool in "$first" "$second"; do
            if declare -F "prep_$key" > /dev/null; then "prep_$key" "$tool"; fi
            # shellcheck disable=SC2046
            timed $("cmd_$key" "$tool")
            if [ $status != 0 ]; then
                [ "$tool" = "$VMIMG" ] && failed="vmimg exit $status: $(head -c 160 "$dir/err.txt" | tr '\n' ' ')"
                [ "$tool" = "$QEMU_IMG" ] && failed="qemu-img exit $status: $(head -c 160 "$dir/err.txt" | tr '\n' ' ')"
            fi
            local size=0
            if declare -F "post_$key" > /dev/null; then size=$("post_$key" "$tool"); fi
            if [ "$tool" = "$VMIMG" ]; then
                vt=$elapsed vc=$cpu vs=$size
                ((rss > vr)) && vr=$rss
            else
                qt=$elapsed qc=$cpu qs=$size
            fi
        done
        [ -n "$failed" ] && break
        vtimes+=("$vt") qtimes+=("$qt")
        ratios+=("$(awk -v v="$vt" -v q="$qt" 'BEGIN { printf "%.4f", v / q }')")
        cratios+=("$(awk -v v="$vc" -v q="$qc" 'BEGIN { printf "%.4f", v / q }')")
        if [ "$qs" != 0 ]; then sratios+=("$(awk -v v="$vs" -v q="$qs" 'BEGIN { printf "%.4f", v / q }')"); fi
    done
    if [ -n "$failed" ]; then
        results+=("$(line "$label" - - - - "$target" - - "FAIL: $failed")")
        return
    fi
    local mv mq mr mc ms='-' met
    mv=$(printf '%s\n' "${vtimes[@]}" | median)
    mq=$(printf '%s\n' "${qtimes[@]}" | median)
    mr=$(printf '%s\n' "${ratios[@]}" | median)
    mc=$(printf '%s\n' "${cratios[@]}" | median)
    [ ${#sratios[@]} -gt 0 ] && ms=$(printf '%s\n' "${sratios[@]}" | median)
    if [ "$kind" = iops ]; then
        # IOPS ratio = qemu time / vmimg time for the same request count.
        mr=$(awk -v r="$mr" 'BEGIN { printf "%.4f", 1 / r }')
        mc=$(awk -v r="$mc" 'BEGIN { printf "%.4f", 1 / r }')
        met=$(awk -v r="$mr" -v t="${target#≥ }" 'BEGIN { print (r >= t + 0) ? "yes" : "no" }')
    elif [ "$target" = - ]; then
        met=-
    else
        met=$(awk -v r="$mr" -v t="${target#≤ }" 'BEGIN { print (r <= t + 0) ? "yes" : "no" }')
    fi
    if [ "$ms" != - ] && [[ $label == *-c* ]]; then
        met="$met$(awk -v s="$ms" 'BEGIN { print (s <= 1.02) ? "" : " (size no)" }')"
    fi
    [ "$ms" != - ] && ms=$(printf '%.3f' "$ms")
    results+=("$(line "$label" "$(printf '%.3fs' "$mv")" "$(printf '%.3fs' "$mq")" "$(printf '%.2f×' "$mr")" \
        "$(printf '%.2f×' "$mc")" "$target" "$ms" "$((vr / 1024)) MiB" "$met")")
}

is_vmimg() { [ "$1" = "$VMIMG" ]; }

# ---------------------------------------------------------------- rows
prep_raw2q() { rm -f "$dir/o.qcow2"; }
cmd_raw2q() { echo "$1 convert -f raw -O qcow2 $dir/disk.raw $dir/o.qcow2"; }

prep_q2raw() { rm -f "$dir/o.raw"; }
cmd_q2raw() { echo "$1 convert -f qcow2 -O raw $dir/disk.qcow2 $dir/o.raw"; }

prep_zlib() { rm -f "$dir/o.qcow2"; }
cmd_zlib() { echo "$1 convert -c -f raw -O qcow2 -o compression_type=zlib $dir/disk.raw $dir/o.qcow2"; }
post_zlib() { stat -c %s "$dir/o.qcow2"; }

prep_zstd() { rm -f "$dir/o.qcow2"; }
cmd_zstd() { echo "$1 convert -c -f raw -O qcow2 -o compression_type=zstd $dir/disk.raw $dir/o.qcow2"; }
post_zstd() { stat -c %s "$dir/o.qcow2"; }

# Decompression: a zlib-compressed source (made once by qemu-img) to raw.
prep_cq2raw() {
    [ -f "$dir/c.qcow2" ] || "$QEMU_IMG" convert -c -f raw -O qcow2 "$dir/disk.raw" "$dir/c.qcow2"
    rm -f "$dir/o.raw"
}
cmd_cq2raw() { echo "$1 convert -f qcow2 -O raw $dir/c.qcow2 $dir/o.raw"; }

prep_chain() { rm -f "$dir/o.qcow2"; }
cmd_chain() { echo "$1 convert -O qcow2 $dir/top.qcow2 $dir/o.qcow2"; }

cmd_check() { echo "$1 check $dir/disk.qcow2"; }
cmd_check1m() { echo "$1 check $dir/snap.qcow2"; }

# Snapshots: each tool works on its own copy, made once. Untimed set-up (by qemu-img) leaves no
# snapshot before -c and one named "bench" before -a and -d, whatever the previous run left.
snapimg() { if is_vmimg "$1"; then echo "$dir/snap-v.qcow2"; else echo "$dir/snap-q.qcow2"; fi; }
has_snap() { "$QEMU_IMG" snapshot -l "$1" 2> /dev/null | awk '$2 == "bench" { f = 1 } END { exit !f }'; }
prep_snapc() {
    local f; f=$(snapimg "$1")
    [ -f "$f" ] || cp "$dir/snap.qcow2" "$f"
    while has_snap "$f"; do "$QEMU_IMG" snapshot -d bench "$f"; done
}
prep_snapa() {
    local f; f=$(snapimg "$1")
    [ -f "$f" ] || cp "$dir/snap.qcow2" "$f"
    has_snap "$f" || "$QEMU_IMG" snapshot -c bench "$f"
}
prep_snapd() { prep_snapa "$1"; }
cmd_snapc() { echo "$1 snapshot -c bench $(snapimg "$1")"; }
cmd_snapa() { echo "$1 snapshot -a bench $(snapimg "$1")"; }
cmd_snapd() { echo "$1 snapshot -d bench $(snapimg "$1")"; }

bench_args="-f qcow2 -c $bench_count -d 1 -s 4096 -S 1052672"
cmd_bread() { echo "$1 bench -q $bench_args $dir/disk.qcow2"; }
cmd_bwrite() { echo "$1 bench -q $bench_args -w --pattern=90 $dir/bench.qcow2"; }

make_inputs
log "vmimg: $VMIMG"
log "qemu-img: $($QEMU_IMG --version | head -1)"
log "inputs: $(du -h --apparent-size "$dir/disk.raw" | cut -f1) virtual, $(du -h "$dir/disk.raw" | cut -f1) allocated; $runs paired runs"

row raw2q   'convert raw→qcow2'                '≤ 0.9'   time
row q2raw   'convert qcow2→raw'                '≤ 0.9'   time
row zlib    'convert -c zlib (time, size)'     '≤ 0.4'   time
row zstd    'convert -c zstd (time, size)'     '-'       time
row cq2raw  'convert zlib qcow2→raw'           '-'       time
row chain   'convert qcow2→qcow2 (backing)'    '-'       time
row check   'check (64 KiB clusters)'          '≤ 1.0'   time
row check1m "check ($((snap_mib * 2))K clusters of 512 B)" '≤ 1.0' time
row snapc   "snapshot -c ($((snap_mib * 2))K clusters)"    '≤ 0.5' time
row snapa   "snapshot -a ($((snap_mib * 2))K clusters)"    '-'     time
row snapd   "snapshot -d ($((snap_mib * 2))K clusters)"    '≤ 0.5' time
row bread   'bench 4 KiB read IOPS'            '≥ 1.5'   iops
row bwrite  'bench 4 KiB write IOPS'           '≥ 1.5'   iops

echo
echo "vmimg vs qemu-img ($($QEMU_IMG --version | head -1 | awk '{print $3}')), $mode inputs," \
    "median of $runs paired runs, $(nproc) cores"
echo
line operation vmimg qemu-img ratio cpu target size 'vmimg RSS' met
echo
echo '|------------------------------------------|----------:|----------:|--------:|-------:|--------|-------:|----------:|-----|'
printf '%s\n' "${results[@]}"
