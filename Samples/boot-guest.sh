#!/usr/bin/env bash
# Boots the test guest (Samples/build-guest.sh) on a disk and prints its serial output.
#
#   bash Samples/boot-guest.sh [-a ACTION] [-t SECONDS] [-f FORMAT] [-k KVM|TCG] DISK
#
#   -a ACTION   vmimg.action value (default ls), e.g. write:file2.txt:hello,ls
#   -t SECONDS  kill QEMU after this long (default 120)
#   -f FORMAT   disk format for -drive (default qcow2)
#   -k ACCEL    tcg (default) or kvm; KVM hangs on the CI machines, so it is never chosen by itself
#
# Exits 0 when the guest printed "VMIMG-DONE status=0", 1 otherwise (timeout, mount or action
# failure). The guest (vmlinuz, initrd.gz) comes from $VMIMG_GUEST_DIR if set, else the cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
action=ls
limit=120
format=qcow2
accel=tcg
while getopts "a:t:f:k:" opt; do
    case "$opt" in
        a) action=$OPTARG ;;
        t) limit=$OPTARG ;;
        f) format=$OPTARG ;;
        k) accel=$OPTARG ;;
        *) echo "usage: $0 [-a ACTION] [-t SECONDS] [-f FORMAT] [-k ACCEL] DISK" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || { echo "usage: $0 [-a ACTION] [-t SECONDS] [-f FORMAT] [-k ACCEL] DISK" >&2; exit 2; }
disk=$1

guest=${VMIMG_GUEST_DIR:-}
if [[ -z "$guest" ]]; then
    guest=${VMIMG_CACHE:-$HOME/.cache/vmimg}/guest/out
    bash "$here/build-guest.sh" "$guest"
fi

out=$(mktemp "${TMPDIR:-/tmp}/vmimg-serial.XXXXXX")
trap 'rm -f "$out"' EXIT
status=0
timeout --kill-after=5 "$limit" qemu-system-x86_64 -machine q35 -accel "$accel" -m 256 \
    -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 vmimg.action=$action" \
    -drive "file=$disk,if=virtio,format=$format" < /dev/null > "$out" || status=$?
tr -d '\r' < "$out"
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "boot-guest: timed out after ${limit}s" >&2
fi
grep -q '^VMIMG-DONE status=0' <(tr -d '\r' < "$out")
