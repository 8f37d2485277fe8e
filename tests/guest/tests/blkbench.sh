# The disk workload of perf/emulated: guest.bench_count (default 10000)
# random 4 KiB O_DIRECT reads at queue depth guest.bench_qd (default 1) on
# the disk (guest.disk, default /dev/nvme0n1). GUEST-BENCH-START and
# GUEST-BENCH-END bracket the workload, each followed by 2 s of idling, in
# which the host reads the VM's KVM counters. A count of 0 is the baseline:
# the markers and no I/O.
. /tests/lib.sh
. /tests/devlib.sh
TEST=blkbench
dev=$(disk_dev)
count=$(cmdline_get guest.bench_count) || count=10000
qd=$(cmdline_get guest.bench_qd) || qd=1
# Whatever the boot left in flight (partition scan) settles first.
sleep 1
echo "GUEST-BENCH-START"
sleep 2
if [ "$count" -gt 0 ]; then
    out=$(blkio randread "$dev" "$count" "$qd" 2>&1)
    r=$?
else
    out="blkio: baseline, no I/O"
    r=0
fi
echo "GUEST-BENCH-END"
sleep 2
echo "GUEST-BENCH-RESULT $out"
[ $r = 0 ] || fail "$out"
