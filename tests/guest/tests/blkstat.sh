# Prints the disk's request counters (guest.disk, default /dev/nvme0n1) for
# the host's exits-per-I/O figures: GUEST-BLKSTAT reads writes discards flushes
# (completed requests, from /sys/block/DEV/stat).
. /tests/lib.sh
. /tests/devlib.sh
TEST=blkstat
dev=$(disk_dev)
set -- $(cat /sys/block/${dev#/dev/}/stat)
# Fields: 1 reads, 5 writes, 12 discards, 16 flushes (Documentation/block/stat.rst).
echo "GUEST-BLKSTAT $1 $5 ${12:-0} ${16:-0}"
