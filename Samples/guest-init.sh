#!/bin/sh
# /init of the vmimg test guest (busybox sh). Built into initrd.gz by Samples/build-guest.sh, which
# documents the vmimg.action interface. Output goes to the serial console; tests parse the
# VMIMG-* marker lines, so every marker starts a line and nothing else starts with "VMIMG-".
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# The firmware leaves terminal escapes on the current line; start ours on a fresh one.
echo
echo "VMIMG-BOOT"
failed=0

while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "VMIMG-ERROR insmod $m"
done < /lib/modules/order

# Kernel parameters with a dot are not passed to init, so read them from /proc/cmdline.
action=ls
ro=0
for word in $(cat /proc/cmdline); do
    case "$word" in
        vmimg.action=*) action=${word#vmimg.action=} ;;
        vmimg.ro=1) ro=1 ;;
    esac
done

decode() {  # %XX -> byte
    printf '%b' "$(echo "$1" | sed 's/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')"
}

# virtio_blk probes asynchronously; wait up to ~10 s for the disk node.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

opts=rw
[ "$ro" = 1 ] && opts=ro
if mount -t ext4 -o "$opts" /dev/vda /mnt; then
    echo "VMIMG-MOUNTED"
    mounted=1
else
    echo "VMIMG-ERROR mount /dev/vda"
    mounted=0
    failed=1
fi

do_ls() {
    echo "VMIMG-LS-BEGIN"
    (cd /mnt && find . -path ./lost+found -prune -o \( -type f -o -type l \) -print | sed 's|^\./||' | sort)
    echo "VMIMG-LS-END"
}

run_action() {
    verb=${1%%:*}
    rest=${1#*:}
    name=$(decode "${rest%%:*}")
    text=$(decode "${rest#*:}")
    case "$verb" in
        ls) do_ls ;;
        write)
            mkdir -p "$(dirname "/mnt/$name")" && echo "$text" > "/mnt/$name" && sync || return 1
            echo "VMIMG-WROTE $name" ;;
        append)
            mkdir -p "$(dirname "/mnt/$name")" && echo "$text" >> "/mnt/$name" && sync || return 1
            echo "VMIMG-WROTE $name" ;;
        cat)
            echo "VMIMG-CAT-BEGIN $name"
            cat "/mnt/$name" || return 1
            echo "VMIMG-CAT-END $name" ;;
        sha256)
            sum=$(sha256sum "/mnt/$name") || return 1
            echo "VMIMG-SHA256 ${sum%% *} $name" ;;
        rm)
            rm -f "/mnt/$name" && sync || return 1
            echo "VMIMG-REMOVED $name" ;;
        run)
            echo "VMIMG-RUN-BEGIN"
            sh /mnt/vmimg-run.sh
            rc=$?
            echo "VMIMG-RUN-END status=$rc"
            [ $rc -eq 0 ] || return 1 ;;
        *) echo "VMIMG-ERROR unknown action $verb"; return 1 ;;
    esac
}

if [ "$mounted" = 1 ]; then
    IFS_SAVED=$IFS
    IFS=,
    set -- $action
    IFS=$IFS_SAVED
    for a in "$@"; do
        run_action "$a" || { echo "VMIMG-ERROR action $a"; failed=$((failed + 1)); }
    done
    sync
    umount /mnt || { echo "VMIMG-ERROR umount"; failed=$((failed + 1)); }
fi

echo "VMIMG-DONE status=$failed"
poweroff -f
