#!/bin/bash
# Paired runs (vmimg then qemu-img each round): tiny vs default L2 cache, medians of N.
V=${V:-$(pwd)/.build/release/vmimg}
N=${N:-5}
cd "${DIR:-/tmp/cachebench}"
[ -f big.qcow2 ] || qemu-img create -q -f qcow2 -o cluster_size=64k,preallocation=metadata big.qcow2 8G
STEP=$((512*1024*1024+65536))
one() { "$@" 2>&1 | sed -n 's/Run completed in \([0-9.]*\) seconds./\1/p'; }
for opts in "" ",l2-cache-size=4k" ",l2-cache-size=128k" ; do
  a=(); b=()
  for i in $(seq $N); do
    a+=($(one $V bench -c 100000 -S $STEP --image-opts "driver=qcow2,file.filename=big.qcow2$opts"))
    b+=($(one qemu-img bench -c 100000 -S $STEP --image-opts "driver=qcow2,file.filename=big.qcow2$opts"))
  done
  ma=$(printf "%s\n" "${a[@]}" | sort -n | sed -n "$(( (N+1)/2 ))p")
  mb=$(printf "%s\n" "${b[@]}" | sort -n | sed -n "$(( (N+1)/2 ))p")
  echo "opts='$opts' vmimg=[${a[*]}] median=$ma qemu-img=[${b[*]}] median=$mb ratio=$(echo "scale=2; $ma/$mb" | bc)"
done
