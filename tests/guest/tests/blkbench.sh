# The disk workload of perf/emulated: guest.bench_count (default 10000)
# random 4 KiB O_DIRECT reads at queue depth guest.bench_qd (default 1) on
# the disk (guest.disk, default /dev/nvme0n1). guest.bench_mode=poll (a
# virtio disk with 2 or more queues): virtio_blk is loaded again with one
# poll queue and the reads go through io_uring with IOPOLL, so completions
# are polled for and the device sends no interrupts. GUEST-BENCH-START and
# GUEST-BENCH-END bracket the workload, each followed by 2 s of idling, in
# which the host reads the VM's KVM counters. A count of 0 is the baseline:
# the markers and no I/O.
. /tests/lib.sh
. /tests/devlib.sh
TEST=blkbench
dev=$(disk_dev)
count=$(cmdline_get guest.bench_count) || count=10000
qd=$(cmdline_get guest.bench_qd) || qd=1
mode=$(cmdline_get guest.bench_mode) || mode=irq
op=randread
if [ "$mode" = poll ]; then
    ko=$(grep '/virtio_blk\.ko$' /etc/modules.list) || fail "no virtio_blk module in /etc/modules.list"
    rmmod virtio_blk || fail "cannot unload virtio_blk"
    insmod "$ko" poll_queues=1 || fail "cannot load virtio_blk with poll_queues=1"
    dev=$(disk_dev)
    [ "$(cat /sys/block/${dev#/dev/}/queue/io_poll 2>/dev/null)" = 1 ] ||
        fail "$dev has no poll queue (does the device offer 2 queues?)"
    op=pollread
fi
# Whatever the boot left in flight (partition scan) settles first.
sleep 1
echo "GUEST-BENCH-START"
sleep 2
if [ "$count" -gt 0 ]; then
    out=$(blkio $op "$dev" "$count" "$qd" 2>&1)
    r=$?
else
    out="blkio: baseline, no I/O"
    r=0
fi
echo "GUEST-BENCH-END"
sleep 2
echo "GUEST-BENCH-RESULT $out"
[ $r = 0 ] || fail "$out"
