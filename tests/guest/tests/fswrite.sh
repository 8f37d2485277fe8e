# First half of the persistence test: make an ext2 filesystem on the disk
# (guest.disk, default /dev/nvme0n1), fill it with random files, print the
# digest of their contents (GUEST-FS-DIGEST) and unmount. A later VM on the
# same backing file runs fsverify with guest.expect_fs_digest=DIGEST.
. /tests/lib.sh
. /tests/devlib.sh
TEST=fswrite
dev=$(disk_dev)
out=$(mke2fs -F -L emulated "$dev" 2>&1) || fail "mke2fs $dev: $out"
mkdir -p /mnt/disk
out=$(mount -t ext2 "$dev" /mnt/disk 2>&1) || fail "mount -t ext2 $dev: $out"
# One big file (extents of many blocks) and many small ones (metadata).
mkdir -p /mnt/disk/small
dd if=/dev/urandom of=/mnt/disk/big bs=1M count=16 2>/dev/null || fail "writing /mnt/disk/big"
i=0
while [ $i -lt 200 ]; do
    dd if=/dev/urandom of=/mnt/disk/small/f$i bs=$((1000 + i * 37)) count=1 2>/dev/null || fail "writing small/f$i"
    i=$((i + 1))
done
digest=$(fs_digest /mnt/disk)
umount /mnt/disk || fail "umount /mnt/disk failed"
echo "GUEST-FS-DIGEST $digest"
echo "guest: $TEST: ext2 on $dev, 16 MiB + 200 small files, digest $digest"
