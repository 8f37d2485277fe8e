# The emulated disk keeps what is written to it: the disk (guest.disk,
# default /dev/nvme0n1) has guest.expect_disk_mib MiB; 64 MiB of random data
# written with O_DIRECT, flushed, read back with O_DIRECT after dropping the
# caches, has the same sha256. (Buffered I/O is fswrite's and fsverify's.)
# guest.expect_serial=S: the disk reports serial S (virtio_blk's
# /sys/block/X/serial, nvme's controller serial).
. /tests/lib.sh
. /tests/devlib.sh
TEST=disk
dev=$(disk_dev)
want_mib=$(cmdline_get guest.expect_disk_mib) || fail "guest.expect_disk_mib=M missing on the command line"
name=${dev#/dev/}
sectors=$(cat /sys/block/$name/size)
[ $((sectors * 512)) = $((want_mib * 1024 * 1024)) ] ||
    fail "$dev has $sectors 512-byte sectors ($((sectors / 2048)) MiB), expected $want_mib MiB"
if want_serial=$(cmdline_get guest.expect_serial); then
    serial=$(cat /sys/block/$name/serial 2>/dev/null || cat /sys/block/$name/device/serial 2>/dev/null)
    serial=$(echo $serial)   # NVMe pads it with spaces
    [ "$serial" = "$want_serial" ] || fail "$dev reports serial '$serial', expected '$want_serial'"
fi

dd if=/dev/urandom of=/tmp/disk.pattern bs=1M count=64 iflag=fullblock 2>/dev/null ||
    fail "cannot make 64 MiB of random data"
want=$(sha_of /tmp/disk.pattern)
dd if=/tmp/disk.pattern of="$dev" bs=1M oflag=direct conv=fsync 2>/tmp/dd.err ||
    fail "writing 64 MiB to $dev: $(tail -n 1 /tmp/dd.err)"
rm -f /tmp/disk.pattern
drop_caches "$dev"
got=$(sha_of "$dev" 0 64 direct)
[ "$got" = "$want" ] || fail "64 MiB read back from $dev has sha256 $got, wrote $want"
echo "guest: $TEST: $dev $want_mib MiB, 64 MiB written and read back, sha256 $want"
