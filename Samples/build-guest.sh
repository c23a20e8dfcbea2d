#!/usr/bin/env bash
# Builds a tiny bootable guest from Debian packages: OUTDIR/vmlinuz and OUTDIR/initrd.gz.
#
#   bash Samples/build-guest.sh [OUTDIR]        (default: $VMIMG_CACHE/guest/out)
#
# Nothing is installed system-wide: linux-image-amd64, busybox-static and cpio are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` under ${VMIMG_CACHE:-$HOME/.cache/vmimg}/guest.
# The result is cached there and only rebuilt when this script or the kernel version changes.
#
# The initrd's /init (busybox sh) loads the virtio and ext4 modules, mounts /dev/vda (ext4) at
# /mnt and runs the actions named on the kernel command line, printing marker lines on the serial
# console, then powers off. Interface (see README.md, "Test guest"):
#
#   vmimg.action=ACTION[,ACTION...]     default: ls
#     ls                  VMIMG-LS-BEGIN / one path per line, relative to /mnt, sorted / VMIMG-LS-END
#     write:NAME:TEXT     writes TEXT and a newline to /mnt/NAME, syncs, then prints VMIMG-WROTE NAME
#     append:NAME:TEXT    like write, but appends
#     cat:NAME            VMIMG-CAT-BEGIN NAME / the file / VMIMG-CAT-END NAME
#     sha256:NAME         VMIMG-SHA256 <hex> NAME
#     rm:NAME             removes /mnt/NAME, syncs, prints VMIMG-REMOVED NAME
#     run                 runs /mnt/vmimg-run.sh with sh (output between VMIMG-RUN-BEGIN/END)
#   TEXT and NAME may not contain spaces or commas; write them as %20 and %2C (any %XX is decoded).
#   vmimg.ro=1 mounts the disk read-only.
#
# Every boot prints VMIMG-BOOT, VMIMG-MOUNTED (or VMIMG-ERROR mount), then the action output, then
# VMIMG-DONE status=N (N = number of failed actions) just before `poweroff -f`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VMIMG_CACHE:-$HOME/.cache/vmimg}/guest
outdir=${1:-$cache/out}
modules=(crc16 mbcache jbd2 crc32c_generic libcrc32c virtio_ring virtio virtio_pci_legacy_dev
    virtio_pci_modern_dev virtio_pci virtio_blk ext4)

log() { echo "build-guest: $*" >&2; }

mkdir -p "$cache/debs" "$outdir"
# Tests and scripts may build at the same time; one builds, the others wait and reuse the cache.
exec 9> "$cache/lock"
flock 9

# The kernel version the metapackage points at decides whether the cache is stale.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [[ -z "$kpkg" ]]; then
    log "apt-cache knows no linux-image-amd64; running apt-get update"
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq; else sudo apt-get update -qq; fi
    kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
stamp="$kpkg $(cat "${BASH_SOURCE[0]}" "$here/guest-init.sh" | sha256sum | cut -c1-16)"

if [[ -f "$cache/out/stamp" && "$(cat "$cache/out/stamp")" == "$stamp" ]]; then
    if [[ "$outdir" != "$cache/out" ]]; then
        cp "$cache/out/vmlinuz" "$cache/out/initrd.gz" "$outdir/"
    fi
    log "cached guest ($kpkg) in $outdir"
    exit 0
fi

fetch() {  # fetch PACKAGE -> unpacks into $cache/root/PACKAGE, once
    local pkg=$1
    if [[ ! -d "$cache/root/$pkg" ]]; then
        log "downloading $pkg"
        # As root, apt's _apt sandbox user cannot write into $HOME; download as root instead.
        local sandbox=()
        [[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
        (cd "$cache/debs" && apt-get download -q "${sandbox[@]}" "$pkg" >&2)
        local deb
        deb=$(ls -t "$cache/debs/${pkg}_"*.deb | head -n 1)
        mkdir -p "$cache/root/$pkg.tmp"
        dpkg-deb -x "$deb" "$cache/root/$pkg.tmp"
        mv "$cache/root/$pkg.tmp" "$cache/root/$pkg"
    fi
}

fetch "$kpkg"
fetch busybox-static
if command -v cpio >/dev/null; then
    cpio=cpio
else
    fetch cpio
    cpio=$cache/root/cpio/bin/cpio
fi

kroot=$cache/root/$kpkg
kver=$(ls "$kroot/lib/modules" | head -n 1)
work=$(mktemp -d "${TMPDIR:-/tmp}/vmimg-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
initrd=$work/initrd
mkdir -p "$initrd"/{bin,dev,proc,sys,mnt,lib/modules}
cp "$cache/root/busybox-static/bin/busybox" "$initrd/bin/busybox"
ln -s busybox "$initrd/bin/sh"

# Modules are loaded by plain insmod in dependency order, so copy them flat and record the order;
# a module built into the kernel (modules.builtin) is simply left out.
: > "$initrd/lib/modules/order"
for m in "${modules[@]}"; do
    ko=$(find "$kroot/lib/modules/$kver" -name "$m.ko" -print -quit)
    if [[ -n "$ko" ]]; then
        cp "$ko" "$initrd/lib/modules/$m.ko"
        echo "$m" >> "$initrd/lib/modules/order"
    elif grep -q "/$m.ko\$" "$kroot/lib/modules/$kver/modules.builtin"; then
        log "$m is built in"
    else
        log "module $m not found in $kver"; exit 1
    fi
done

cp "$here/guest-init.sh" "$initrd/init"
chmod 755 "$initrd/init" "$initrd/bin/busybox"

(cd "$initrd" && find . -print0 | LC_ALL=C sort -z | "$cpio" --null -o -H newc --quiet -R 0:0) \
    | gzip -9 > "$work/initrd.gz"

mkdir -p "$cache/out"
cp "$kroot/boot/vmlinuz-$kver" "$cache/out/vmlinuz"
cp "$work/initrd.gz" "$cache/out/initrd.gz"
echo "$stamp" > "$cache/out/stamp"
if [[ "$outdir" != "$cache/out" ]]; then
    cp "$cache/out/vmlinuz" "$cache/out/initrd.gz" "$outdir/"
fi
log "built guest ($kver, initrd $(stat -c %s "$work/initrd.gz") bytes) in $outdir"
