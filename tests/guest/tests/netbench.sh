# The network workload of perf/three-paths: ping-pong with the host side
# (guest.peer, default 10.0.2.2: the L1 tap for the emulated and virtio
# NICs, QEMU's user-network gateway behind an assigned NIC), each echo sent
# as soon as the last reply came back (busybox ping -A), guest.net_count
# round trips (default 2000) with 56-byte and 1400-byte payloads. Like
# fiobench.sh: stats marks (port 0x502) right around each run, whose numbers
# the console gives: "GUEST-BENCH-START net-pingpong-56 mark=N" ... "END ...
# mark=N+1"; then "GUEST-NET-RESULT name count received seconds rtt_min/avg/max".
# Marks continue after fiobench's when both run in one boot (guest.mark_base,
# default 101). With guest.net_bulk_mib=N, a bulk job follows (see below).
. /tests/lib.sh
. /tests/devlib.sh
TEST=netbench
count=$(cmdline_get guest.net_count) || count=2000
n=$(cmdline_get guest.mark_base) || n=101
net_up
# The first echoes resolve the peer's address and warm the path up.
ping -c 3 -W 5 "$NET_PEER" >/dev/null 2>&1 || fail "no answer from $NET_PEER over $NET_IF ($(basename "$(readlink /sys/class/net/$NET_IF/device/driver)"))"

mark() {
    printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=$((0x502)) count=1 2>/dev/null
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

for size in 56 1400; do
    job=net-pingpong-$size
    echo "GUEST-BENCH-START $job mark=$n"
    sleep 1
    t0=$(uptime_s)
    mark $n
    out=$(ping -A -q -c "$count" -s "$size" -W 5 "$NET_PEER" 2>&1)
    mark $((n + 1))
    t1=$(uptime_s)
    echo "GUEST-BENCH-END $job mark=$((n + 1))"
    # Idle a moment: hosts that read their counters at this line (perf/net-exits)
    # must find the VM still there after the last job.
    sleep 1
    n=$((n + 2))
    got=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    rtt=$(echo "$out" | sed -n 's/.*= \([0-9.]*\/[0-9.]*\/[0-9.]*\) ms.*/\1/p')
    echo "GUEST-NET-RESULT $job $count ${got:-0} $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') ${rtt:-none}"
    [ "${got:-0}" -gt 0 ] || fail "$job: no replies from $NET_PEER: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
done
# Optional bulk job (guest.net_bulk_mib=N): N MiB to a sink the host runs on
# port 5003 of the peer (nc -l), counted in packets both ways (data and
# ACKs): "GUEST-NET-RESULT net-bulk-tx packets packets seconds none".
if bulk=$(cmdline_get guest.net_bulk_mib); then
    job=net-bulk-tx
    st=/sys/class/net/$NET_IF/statistics
    echo "GUEST-BENCH-START $job mark=$n"
    sleep 1
    p0=$(($(cat $st/tx_packets) + $(cat $st/rx_packets)))
    t0=$(uptime_s)
    mark $n
    # Bounded: the transfer has stalled now and then on every NIC, QEMU's
    # included (perf/net-exits); a stalled job fails, the rest is kept.
    dd if=/dev/zero bs=64k count=$((bulk * 16)) 2>/dev/null | timeout 240 nc "$NET_PEER" 5003 ||
        fail "$job: nc to $NET_PEER:5003 failed or took over 240 s"
    mark $((n + 1))
    t1=$(uptime_s)
    p1=$(($(cat $st/tx_packets) + $(cat $st/rx_packets)))
    echo "GUEST-BENCH-END $job mark=$((n + 1))"
    sleep 1
    n=$((n + 2))
    echo "GUEST-NET-RESULT $job $((p1 - p0)) $((p1 - p0)) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') none"
fi
echo "guest: $TEST: $count round trips of 56 and 1400 bytes with $NET_PEER over $NET_IF${bulk:+, $bulk MiB to it}"
