#!/usr/bin/env bash
# The seed scenario, end to end: build a tiny guest, create an instance disk holding file1.txt,
# snapshot it, let the guest write file2.txt, rebuild from the snapshot, boot again: only file1.txt
# remains.
#
#   bash Samples/walkthrough.sh [WORKDIR]      (default: a temp dir, removed unless VMIMG_KEEP_TMP=1)
#
# TODO(issue 5): use vmimg instance create / snapshot / rebuild / boot instead of qemu-img and
# Samples/boot-guest.sh; until then this stub shows the same scenario with QEMU's own tools.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -ge 1 ]]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/vmimg-walkthrough.XXXXXX")
    [[ "${VMIMG_KEEP_TMP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
fi
started=$SECONDS
n=0
step() { n=$((n + 1)); printf '\n== %d. %s  (t=%ds)\n' "$n" "$*" "$((SECONDS - started))"; }
run() { printf '$ %s\n' "$*"; "$@"; }
files_of() { sed -n '/^VMIMG-LS-BEGIN$/,/^VMIMG-LS-END$/p' "$1" | sed '1d;$d'; }

step "build the tiny guest (Debian kernel + busybox initrd, cached)"
run bash "$here/build-guest.sh"

step "make the instance's disk: ext4 holding file1.txt"
run bash "$here/make-disk.sh" -s 64M -f "file1.txt=hello from the host" "$work/base.raw"
# TODO(issue 5): vmimg convert -O qcow2 / vmimg instance create
run qemu-img convert -f raw -O qcow2 "$work/base.raw" "$work/instance.qcow2"
run qemu-img info "$work/instance.qcow2"

step "snapshot the instance"
# TODO(issue 5): vmimg instance snapshot
run qemu-img snapshot -c clean "$work/instance.qcow2"
run qemu-img snapshot -l "$work/instance.qcow2"

step "boot: the guest writes file2.txt"
run bash "$here/boot-guest.sh" -a "write:file2.txt:written%20by%20the%20guest,ls" "$work/instance.qcow2" \
    | tee "$work/boot1.log" | sed -n '/^VMIMG-BOOT/,/^VMIMG-DONE/p'
echo "files after the guest ran:"
files_of "$work/boot1.log" | sed 's/^/  /'
[[ "$(files_of "$work/boot1.log" | tr '\n' ' ')" == "file1.txt file2.txt " ]] \
    || { echo "walkthrough: expected file1.txt and file2.txt after the first boot" >&2; exit 1; }

step "rebuild the instance from the snapshot"
# TODO(issue 5): vmimg instance rebuild --from clean
run qemu-img snapshot -a clean "$work/instance.qcow2"
run qemu-img check "$work/instance.qcow2"

step "boot again and list the files"
run bash "$here/boot-guest.sh" -a ls "$work/instance.qcow2" | tee "$work/boot2.log" | sed -n '/^VMIMG-BOOT/,/^VMIMG-DONE/p'
echo "files after the rebuild:"
files_of "$work/boot2.log" | sed 's/^/  /'
[[ "$(files_of "$work/boot2.log" | tr '\n' ' ')" == "file1.txt " ]] \
    || { echo "walkthrough: expected only file1.txt after the rebuild" >&2; exit 1; }

printf '\nwalkthrough: OK, only file1.txt remains (%ds)\n' "$((SECONDS - started))"
