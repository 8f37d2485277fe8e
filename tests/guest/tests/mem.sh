# guest.expect_mem_mib=M: MemTotal is at most M MiB, and no less than the
# smaller of M-64 MiB and 80% of M (what the kernel itself keeps varies).
. /tests/lib.sh
TEST=mem
m=$(cmdline_get guest.expect_mem_mib) || fail "guest.expect_mem_mib=M missing on the command line"
kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
max=$((m * 1024))
low1=$(((m - 64) * 1024))
low2=$((m * 1024 * 8 / 10))
min=$low1
[ $low2 -lt $min ] && min=$low2
[ "$kib" -le $max ] || fail "MemTotal $kib KiB is more than $m MiB"
[ "$kib" -ge $min ] || fail "MemTotal $kib KiB is less than $min KiB (configured $m MiB)"
echo "guest: $TEST: MemTotal $kib KiB for $m MiB"
