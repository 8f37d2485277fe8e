# Second half of the persistence test (see fswrite): in a new VM on the same
# backing file, the filesystem mounts without errors and its files have the
# digest guest.expect_fs_digest that fswrite printed.
. /tests/lib.sh
. /tests/devlib.sh
TEST=fsverify
dev=$(disk_dev)
want=$(cmdline_get guest.expect_fs_digest) || fail "guest.expect_fs_digest=DIGEST missing on the command line"
mkdir -p /mnt/disk
out=$(mount -t ext2 -o ro "$dev" /mnt/disk 2>&1) || fail "mount -t ext2 $dev: $out"
n=$(find /mnt/disk -type f | wc -l)
got=$(fs_digest /mnt/disk)
umount /mnt/disk
[ "$got" = "$want" ] || fail "the $n files on $dev have digest $got, fswrite wrote $want"
if dmesg | grep -q 'EXT4-fs error'; then
    fail "the kernel reported filesystem errors: $(dmesg | grep 'EXT4-fs error' | head -n 1)"
fi
echo "guest: $TEST: $n files on $dev, digest $got as written by the previous VM"
