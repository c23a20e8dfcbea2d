#!/usr/bin/env bash
# Builds the hostile-input corpus: malformed qcow2 images made from valid ones written by real
# qemu-img/qemu-io 7.2, one named damage per image, poked at spec offsets (qemu-iotests' poke_file).
# Nothing is committed but this script; HostileImageTests runs it into a scratch dir and holds the
# expected verdict of every case.
#
#   bash Samples/make-malformed.sh OUTDIR [CASE...]   build the named cases (default: all)
#   bash Samples/make-malformed.sh --list             print the case names
#
# Each case writes OUTDIR/CASE.qcow2 (plus the companion files it names: backing files, data files).
# Header offsets are the spec's (Formats/qcow2.md): version 4, backing_file_offset 8,
# backing_file_size 16, cluster_bits 20, crypt_method 32, l1_size 36, l1_table_offset 40,
# refcount_table_offset 48, refcount_table_clusters 56, nb_snapshots 60, snapshots_offset 64,
# incompatible_features 72, header_length 100, compression_type 104.
set -euo pipefail

cases=(
    bad-magic version-1 version-4 cluster-bits-8 cluster-bits-22 cluster-bits-33
    header-length-96 header-length-past-cluster backing-offset-past-cluster backing-name-too-long
    l1-too-large l1-past-eof l1-misaligned
    refcount-table-past-eof refcount-table-too-large refcount-table-zero
    snapshots-too-many snapshot-table-past-eof snapshot-extra-too-large snapshot-l1-past-eof
    incompat-unknown incompat-unknown-named compression-byte-without-bit compression-bit-without-byte
    crypt-aes crypt-luks extended-l2-4k
    l2-past-eof l2-unaligned compressed-past-eof compressed-garbage
    backing-json backing-nbd backing-passwd-noformat backing-passwd-raw backing-loop chain-65 chain-64
    data-file-not-allowed raw-with-qcow2-header leaked-cluster refcount-zero refblock-far-past-eof
)

if [[ ${1:-} == --list ]]; then
    printf '%s\n' "${cases[@]}"
    exit 0
fi
[[ $# -ge 1 ]] || { echo "usage: $0 OUTDIR [CASE...] | --list" >&2; exit 2; }
out=$1
shift
selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=("${cases[@]}")
mkdir -p "$out"
cd "$out"

# poke FILE OFFSET WIDTH VALUE: write VALUE big-endian in WIDTH bytes (1, 2, 4, 8) at OFFSET.
poke() {
    perl -e '
        my ($file, $off, $width, $value) = @ARGV;
        my %fmt = (1 => "C", 2 => "n", 4 => "N", 8 => "Q>");
        open(my $fh, "+<:raw", $file) or die "$file: $!\n";
        seek($fh, $off, 0) or die; print $fh pack($fmt{$width}, $value =~ /^0x/ ? hex($value) : $value);
        close($fh) or die;' "$@"
}
# peek FILE OFFSET WIDTH: print the big-endian value at OFFSET in decimal.
peek() {
    perl -e '
        my ($file, $off, $width) = @ARGV;
        my %fmt = (1 => "C", 2 => "n", 4 => "N", 8 => "Q>");
        open(my $fh, "<:raw", $file) or die "$file: $!\n";
        seek($fh, $off, 0) or die; read($fh, my $buf, $width) == $width or die "short read\n";
        print unpack($fmt{$width}, $buf), "\n";' "$@"
}
# poke_bytes FILE OFFSET HEXBYTES: overwrite raw bytes.
poke_bytes() {
    perl -e 'my ($file, $off, $hex) = @ARGV; open(my $fh, "+<:raw", $file) or die;
        seek($fh, $off, 0) or die; print $fh pack("H*", $hex); close($fh) or die;' "$@"
}
# find_ext FILE MAGIC: offset of the header extension with that type (prints nothing if absent).
find_ext() {
    perl -e '
        my ($file, $magic) = @ARGV; $magic = hex($magic);
        open(my $fh, "<:raw", $file) or die; read($fh, my $h, 4096);
        my $pos = unpack("N", substr($h, 100, 4));
        while ($pos + 8 <= length($h)) {
            my ($type, $len) = unpack("NN", substr($h, $pos, 8));
            last if $type == 0;
            if ($type == $magic) { print "$pos\n"; last }
            $pos += 8 + (($len + 7) & ~7);
        }' "$@"
}

qimg() { qemu-img "$@" > /dev/null; }
qio() { local f=$1; shift; local a=(); for c in "$@"; do a+=(-c "$c"); done; qemu-io -f qcow2 "${a[@]}" "$f" > /dev/null; }

# A 64 MiB v3 image, 64 KiB clusters, 64 KiB of data at 0: header 0, reftable 0x10000,
# refblock 0x20000, L1 0x30000, L2 0x40000, data 0x50000; 393,216 bytes.
valid() {
    qimg create -f qcow2 "$1" 64M
    qio "$1" "write -P 0xab 0 64k"
}
# The same with one internal snapshot "s1" taken after the write.
valid_snapshot() {
    valid "$1"
    qimg snapshot -c s1 "$1"
}
# A compressed image: 128 KiB of compressible, non-zero data converted with -c.
valid_compressed() {
    perl -e 'print substr(join("", map { sprintf("line %06d of compressible text\n", $_) } 0..4095), 0, 131072)' > "$1.src"
    qimg convert -c -f raw -O qcow2 "$1.src" "$1"
    rm -f "$1.src"
}
# The first L2 entry of the active table (L1[0] must be set).
first_l2_entry_offset() {
    local l1 l2
    l1=$(peek "$1" 40 8)
    l2=$(( $(peek "$1" "$l1" 8) & 0x00fffffffffffe00 ))
    echo "$l2"
}
# overlay NAME BACKING-NAME [BACKING-FMT]: an overlay naming BACKING-NAME, backing not opened.
overlay() {
    if [[ -n ${3:-} ]]; then
        qimg create -f qcow2 -u -b "$2" -F "$3" "$1" 1M
    else
        # qemu-img 7.2 insists on -F; record one, then rename the extension to an unknown type so
        # the image carries no backing format at all.
        qimg create -f qcow2 -u -b "$2" -F raw "$1" 1M
        local ext
        ext=$(find_ext "$1" 0xe2792aca)
        poke "$1" "$ext" 4 0x7fffff01
    fi
}
chain() {
    local n=$1 name=$2 i
    qimg create -f qcow2 "$name-0.qcow2" 1M
    for ((i = 1; i < n; i++)); do
        qimg create -f qcow2 -u -b "$name-$((i - 1)).qcow2" -F qcow2 "$name-$i.qcow2" 1M
    done
    mv "$name-$((n - 1)).qcow2" "$name.qcow2"
}

make_case() {
    local f=$1.qcow2
    rm -f "$f"
    case $1 in
        bad-magic) valid "$f"; poke "$f" 0 4 0x514649fa ;;
        version-1) valid "$f"; poke "$f" 4 4 1 ;;
        version-4) valid "$f"; poke "$f" 4 4 4 ;;
        cluster-bits-8) valid "$f"; poke "$f" 20 4 8 ;;
        cluster-bits-22) valid "$f"; poke "$f" 20 4 22 ;;
        cluster-bits-33) valid "$f"; poke "$f" 20 4 33 ;;
        header-length-96) valid "$f"; poke "$f" 100 4 96 ;;
        header-length-past-cluster) valid "$f"; poke "$f" 100 4 65544 ;;
        backing-offset-past-cluster) valid "$f"; poke "$f" 8 8 0x20000; poke "$f" 16 4 4 ;;
        backing-name-too-long)
            qimg create -f qcow2 base-for-long.qcow2 1M
            qimg create -f qcow2 -b base-for-long.qcow2 -F qcow2 "$f" 1M
            poke "$f" 16 4 1024 ;;
        l1-too-large) valid "$f"; poke "$f" 36 4 4194305 ;;
        l1-past-eof) valid "$f"; poke "$f" 40 8 0x10000000 ;;
        l1-misaligned) valid "$f"; poke "$f" 40 8 0x30200 ;;
        refcount-table-past-eof) valid "$f"; poke "$f" 48 8 0x10000000 ;;
        refcount-table-too-large) valid "$f"; poke "$f" 56 4 129 ;;
        refcount-table-zero) valid "$f"; poke "$f" 56 4 0 ;;
        snapshots-too-many) valid "$f"; poke "$f" 60 4 65537 ;;
        snapshot-table-past-eof) valid "$f"; poke "$f" 60 4 1; poke "$f" 64 8 0x10000000 ;;
        snapshot-extra-too-large)
            valid_snapshot "$f"
            poke "$f" $(( $(peek "$f" 64 8) + 36 )) 4 1025 ;;
        snapshot-l1-past-eof)
            valid_snapshot "$f"
            poke "$f" "$(peek "$f" 64 8)" 8 0x10000000 ;;
        incompat-unknown) valid "$f"; poke "$f" 72 8 0x20 ;;
        incompat-unknown-named)
            # qcow2-format.md §12.13 named.qcow2: bits 5 and 6 set, the first feature-table entry
            # (incompatible bit 0, "dirty bit") renamed to bit 5 "shiny new feature".
            valid "$f"
            local table
            table=$(find_ext "$f" 0x6803f857)
            poke_bytes "$f" $((table + 8)) "0005$(printf 'shiny new feature' | perl -ne 'print unpack("H*", $_)')00"
            poke "$f" 72 8 0x60 ;;
        compression-byte-without-bit) valid "$f"; poke "$f" 104 1 1 ;;
        compression-bit-without-byte) valid "$f"; poke "$f" 72 8 0x8 ;;
        crypt-aes) valid "$f"; poke "$f" 32 4 1 ;;
        crypt-luks) valid "$f"; poke "$f" 32 4 2 ;;
        extended-l2-4k) qimg create -f qcow2 -o cluster_size=4096 "$f" 1M; poke "$f" 72 8 0x10 ;;
        l2-past-eof) valid "$f"; poke "$f" "$(peek "$f" 40 8)" 8 0x8000000010000000 ;;
        l2-unaligned)
            valid "$f"
            local l1
            l1=$(peek "$f" 40 8)
            poke "$f" "$l1" 8 $(( $(peek "$f" "$l1" 8) | 0x200 )) ;;
        compressed-past-eof)
            # Descriptor offset bits (0..53 with 64 KiB clusters) moved 16 MiB past the end.
            valid_compressed "$f"
            local e d
            e=$(first_l2_entry_offset "$f")
            d=$(peek "$f" "$e" 8)
            poke "$f" "$e" 8 $(( (d & ~((1 << 54) - 1)) | (0x1000000 + $(stat -c %s "$f")) )) ;;
        compressed-garbage)
            # 0xff starts a deflate block of reserved type 3; the zstd magic is absent too.
            valid_compressed "$f"
            local e d
            e=$(first_l2_entry_offset "$f")
            d=$(peek "$f" "$e" 8)
            poke_bytes "$f" $(( d & ((1 << 54) - 1) )) ffffffffffffffffffffffffffffffff ;;
        backing-json) overlay "$f" 'json:{"driver":"file","filename":"/etc/passwd"}' raw ;;
        backing-nbd) overlay "$f" 'nbd://127.0.0.1:10809/export' raw ;;
        backing-passwd-noformat) overlay "$f" /etc/passwd ;;
        backing-passwd-raw) overlay "$f" /etc/passwd raw ;;
        backing-loop)
            # backing-loop.qcow2 -> backing-loop-b.qcow2 -> backing-loop.qcow2
            qimg create -f qcow2 -u -b "$f" -F qcow2 backing-loop-b.qcow2 1M
            qimg create -f qcow2 -u -b backing-loop-b.qcow2 -F qcow2 "$f" 1M ;;
        chain-65) chain 65 chain-65 ;;
        chain-64) chain 64 chain-64 ;;
        data-file-not-allowed)
            qimg create -f qcow2 -o data_file=data-file-not-allowed.data "$f" 1M
            qemu-io -f qcow2 -c "write -P 0x5c 0 64k" "$f" > /dev/null ;;
        raw-with-qcow2-header)
            # A "raw" disk whose first bytes are a qcow2 header naming /etc/passwd as backing file.
            overlay "$f" /etc/passwd raw ;;
        leaked-cluster)
            # The L1 table's cluster (index 3) gets refcount 2: QEMU calls that a leak.
            valid "$f"
            poke "$f" $(( 0x20000 + 3 * 2 )) 2 2 ;;
        refcount-zero)
            # The data cluster (index 5) gets refcount 0 while L2 uses it: a corruption.
            valid "$f"
            poke "$f" $(( 0x20000 + 5 * 2 )) 2 0 ;;
        refblock-far-past-eof)
            # 4 KiB clusters; refcount table entry 1 points 1 TiB out: qemu-img check -r all grows
            # the file to 1 TiB and walks its 2^28 clusters (about 20 s, 530 MB).
            qimg create -f qcow2 -o cluster_size=4096 "$f" 64M
            qio "$f" "write -P 0xab 0 64k"
            poke "$f" $(( $(peek "$f" 48 8) + 8 )) 8 0x10000000000 ;;
        *) echo "unknown case: $1" >&2; return 2 ;;
    esac
}

for name in "${selected[@]}"; do
    make_case "$name"
done
