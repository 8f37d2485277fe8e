# The storage workload of perf/three-paths: each section of /perf/three-paths.fio
# (guest.fio_jobs=a,b,... picks some; default all) on the disk (guest.disk;
# by default whichever of /dev/vda and /dev/nvme0n1 appears, so one command
# line serves every path) for guest.fio_runtime seconds (default 10), one at a
# time. Around each job, the VMM's stats marks (port 0x502, `stats-marks =
# on`) record KVM's counters right before fio starts and right after it ends;
# the console says which marks belong to which job: "GUEST-BENCH-START job
# mark=N" (then 1 s of idling, so the host can sample its processes' CPU
# time), the job between marks N and N+1, "GUEST-BENCH-END job mark=N+1",
# then fio's JSON output, gzip'd and base64'd between GUEST-FIO-JSON-BEGIN/END
# lines (the console is a 16550: every byte costs an exit, so it comes after
# the END mark and is kept short). First an idle window of 3 s between marks
# 1 and 2, so the report can tell what an idle second costs.
. /tests/lib.sh
. /tests/devlib.sh
TEST=fiobench
JOBFILE=/perf/three-paths.fio
[ -x /usr/bin/fio ] || fail "no fio in this initramfs (build it with tests/guest/mkinitramfs --with-fio)"
[ -f $JOBFILE ] || fail "no $JOBFILE in this initramfs"
if cmdline_get guest.disk >/dev/null; then
    dev=$(disk_dev)
else
    i=0
    while :; do
        for dev in /dev/vda /dev/nvme0n1; do [ -b $dev ] && break 2; done
        [ $i -ge 100 ] && fail "neither /dev/vda nor /dev/nvme0n1 after 10 s (block devices: $(ls /sys/block | tr '\n' ' '))"
        sleep 0.1
        i=$((i + 1))
    done
fi
runtime=$(cmdline_get guest.fio_runtime) || runtime=10
jobs=$(cmdline_get guest.fio_jobs) || jobs=$(sed -n 's/^\[\(.*\)\]$/\1/p' $JOBFILE | grep -v '^global$')
jobs=$(echo "$jobs" | tr ',' ' ')

# mark N: stats mark N in the VMM (a no-op where the port is not there).
mark() {
    printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=$((0x502)) count=1 2>/dev/null
}

sleep 1
echo "GUEST-BENCH-START idle mark=1"
mark 1
sleep 3
mark 2
echo "GUEST-BENCH-END idle mark=2"
n=3
for job in $jobs; do
    echo "GUEST-BENCH-START $job mark=$n"
    sleep 1
    mark $n
    DISK=$dev RUNTIME=$runtime fio --section="$job" --output-format=json \
        --output=/tmp/fio.json $JOBFILE >/tmp/fio.err 2>&1
    r=$?
    mark $((n + 1))
    echo "GUEST-BENCH-END $job mark=$((n + 1))"
    n=$((n + 2))
    [ $r = 0 ] || fail "fio $job failed: $(tail -n 3 /tmp/fio.err | tr '\n' ' ')"
    echo "GUEST-FIO-JSON-BEGIN $job"
    gzip -9 -c /tmp/fio.json | base64
    echo "GUEST-FIO-JSON-END $job"
done
echo "guest: $TEST: $(echo $jobs | wc -w) jobs on $dev, ${runtime} s each"
