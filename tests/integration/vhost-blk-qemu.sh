#!/bin/bash
# vhost-blk-qemu.sh: interop of our vhost-user-blk backend with a frontend no
# one here wrote: QEMU (TCG) with vhost-user-blk-pci on memfd-shared RAM.
# The guest's virtio_blk gets /dev/vda from build/vhost-user-blk; the guest
# disk test writes 64 MiB of random data with O_DIRECT, flushes, drops the
# caches and reads it back with the same sha256.
# Uses the guest image as it is when it carries virtio_blk; an older one gets
# the virtio modules added in a throwaway copy under build/vhost-blk-qemu/.
# Ends with "N passed, M failed" (one scenario, vhost-blk-qemu).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$ROOT/build/vhost-blk-qemu
INITRD=$ROOT/build/guest/initramfs.cpio.gz
source "$ROOT/tests/guest/initramfs-lib.sh"

# refuse REASON: the setup is missing something; counted as a failure.
refuse() { echo "FAIL vhost-blk-qemu: $1"; echo "0 passed, 1 failed"; exit 1; }
[[ -x $ROOT/build/vhost-user-blk ]] || refuse "build/vhost-user-blk missing: run make all"
[[ -f $INITRD ]] || refuse "guest initramfs missing: run make deps"
command -v qemu-system-x86_64 >/dev/null || refuse "qemu-system-x86_64 missing"

rm -rf "$W"
mkdir -p "$W"
contents=$(zcat "$INITRD" | cpio -it --quiet 2>/dev/null)
if ! grep -q 'virtio_blk\.ko$' <<<"$contents"; then
    mkdir -p "$W/stage"
    (cd "$W/stage" && zcat "$INITRD" | cpio -id --quiet)
    cp "$W/stage/etc/modules.list" "$W/modules.orig"
    add_modules "$W/stage" virtio_pci virtio_blk
    cat "$W/stage/etc/modules.list" >>"$W/modules.orig"
    cp "$W/modules.orig" "$W/stage/etc/modules.list"
    pack "$W/stage" "$W/initramfs.cpio.gz"
    INITRD=$W/initramfs.cpio.gz
fi

truncate -s 128M "$W/disk.img"
"$ROOT/build/vhost-user-blk" --socket "$W/sock" --file "$W/disk.img" --poll-us 20 \
    >"$W/backend.log" 2>&1 &
backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
for _ in $(seq 50); do [[ -S $W/sock ]] && break; sleep 0.1; done

set +e
timeout 240 qemu-system-x86_64 -M q35 -m 512 -smp 1 -nographic -no-reboot \
    -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
    -chardev socket,id=c0,path="$W/sock" -device vhost-user-blk-pci,chardev=c0 \
    -kernel "$ROOT/build/kernel/vmlinuz" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 guest.test=disk guest.disk=/dev/vda guest.expect_disk_mib=128 guest.exit=poweroff" \
    >"$W/console.log" 2>&1
rc=$?
set -e
grep -E "GUEST-TEST|guest: disk|virtio_blk|vda" "$W/console.log" || true
echo "--- backend log"; cat "$W/backend.log"
if grep -q "GUEST-TEST disk: PASS" "$W/console.log"; then
    echo "PASS vhost-blk-qemu (qemu exit $rc)"
    echo "1 passed, 0 failed"
    exit 0
fi
echo "FAIL vhost-blk-qemu: the guest's disk test did not pass on /dev/vda (qemu exit $rc); console in $W/console.log"
tail -n 30 "$W/console.log"
echo "0 passed, 1 failed"
exit 1
