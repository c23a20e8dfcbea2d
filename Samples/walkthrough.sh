#!/usr/bin/env bash
# The seed scenario, end to end, with vmimg only: build a tiny guest, import an ext4 disk holding
# file1.txt into "my images", create an instance from it, snapshot it, let the guest write
# file2.txt, rebuild the instance from the snapshot, boot again: only file1.txt remains.
#
#   bash Samples/walkthrough.sh [WORKDIR]      (default: a temp dir, removed unless VMIMG_KEEP_TMP=1)
#
# vmimg is $VMIMG_BIN if set, else .build/debug/vmimg (built with `swift build --product vmimg`
# when missing). The vmimg home (catalog, images, drives) is WORKDIR/home.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
if [[ $# -ge 1 ]]; then
    work=$(mkdir -p "$1" && cd "$1" && pwd)
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/vmimg-walkthrough.XXXXXX")
    [[ "${VMIMG_KEEP_TMP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
fi
started=$SECONDS
n=0
step() { n=$((n + 1)); printf '\n== %d. %s  (t=%ds)\n' "$n" "$*" "$((SECONDS - started))"; }
run() { printf '$ %s\n' "$*"; "$@"; }
files_of() { tr -d '\r' < "$1" | sed -n '/^VMIMG-LS-BEGIN$/,/^VMIMG-LS-END$/p' | sed '1d;$d'; }
markers() { tr -d '\r' < "$1" | sed -n '/^VMIMG-BOOT/,/^VMIMG-DONE/p' | sed 's/^/  | /'; }
fail() { echo "walkthrough: $*" >&2; exit 1; }

step "vmimg itself"
vmimg=${VMIMG_BIN:-$root/.build/debug/vmimg}
if [[ ! -x "$vmimg" ]]; then
    (cd "$root" && run swift build --product vmimg)
fi
run "$vmimg" --version
export VMIMG_HOME=$work/home
echo "\$ export VMIMG_HOME=$VMIMG_HOME      (every vmimg command below uses this home; --home DIR does the same)"

step "build the tiny guest (Debian kernel + busybox initrd, cached)"
guest=${VMIMG_GUEST_DIR:-${VMIMG_CACHE:-$HOME/.cache/vmimg}/guest/out}
[[ -n "${VMIMG_GUEST_DIR:-}" ]] || run bash "$here/build-guest.sh" "$guest"
kernel=$guest/vmlinuz
initrd=$guest/initrd.gz

# Boots the instance with the guest actions $2 (vmimg.action=…), waits for it to power off and
# keeps the serial console in $1.
boot() {
    local append="console=ttyS0 quiet panic=-1 vmimg.action=$2"
    printf '$ %s instance start demo --kernel %s --initrd %s --append "%s" --wait 180 > %s\n' \
        "$vmimg" "$kernel" "$initrd" "$append" "$1"
    "$vmimg" instance start demo --kernel "$kernel" --initrd "$initrd" --append "$append" --wait 180 > "$1"
    head -n 1 "$1"
    echo "  serial console, between the guest's markers:"
    markers "$1"
    grep -q '^VMIMG-DONE status=0' <(tr -d '\r' < "$1") || fail "the guest did not finish its actions ($2)"
}

step "make an ext4 disk holding file1.txt and import it into \"my images\""
run bash "$here/make-disk.sh" -s 64M -f "file1.txt=hello from the host" "$work/base.raw"
run "$vmimg" images import base-disk "$work/base.raw" -f raw
run "$vmimg" images list

step "create the instance 'demo' from the image"
run "$vmimg" instance create demo --image base-disk
run "$vmimg" instance list

step "boot: show the files"
boot "$work/boot0.log" ls
echo "files on the instance:"
files_of "$work/boot0.log" | sed 's/^/  /'
[[ "$(files_of "$work/boot0.log" | tr '\n' ' ')" == "file1.txt " ]] || fail "expected only file1.txt at first"

step "snapshot the instance"
run "$vmimg" instance snapshot create demo before-change
run "$vmimg" instance snapshot list demo

step "boot: the guest writes file2.txt"
boot "$work/boot1.log" "write:file2.txt:written%20by%20the%20guest,ls"
echo "files after the guest ran:"
files_of "$work/boot1.log" | sed 's/^/  /'
[[ "$(files_of "$work/boot1.log" | tr '\n' ' ')" == "file1.txt file2.txt " ]] \
    || fail "expected file1.txt and file2.txt after the first boot"
run "$vmimg" instance snapshot list demo

step "rebuild the instance from the snapshot"
run "$vmimg" instance rebuild demo --snapshot before-change --dry-run
echo "(without a terminal to ask on, rebuild refuses unless --yes is given:)"
if run "$vmimg" instance rebuild demo --snapshot before-change < /dev/null; then
    fail "rebuild without --yes and without a terminal should have been refused"
fi
run "$vmimg" instance rebuild demo --snapshot before-change --yes

step "boot again and list the files"
boot "$work/boot2.log" ls
echo "files after the rebuild:"
files_of "$work/boot2.log" | sed 's/^/  /'
final=$(files_of "$work/boot2.log" | tr '\n' ' ')

step "show the instance and its files on the host"
run "$vmimg" instance show demo
run "$vmimg" images list
run ls -la "$VMIMG_HOME" "$VMIMG_HOME/images" "$VMIMG_HOME"/instances/*

[[ "$final" == "file1.txt " ]] || fail "expected only file1.txt after the rebuild, got: $final"
printf '\nwalkthrough: OK, only file1.txt remains (%ds)\n' "$((SECONDS - started))"
