# guest.expect_cpus=N: the guest sees N CPUs, all online.
. /tests/lib.sh
TEST=cpus
n=$(cmdline_get guest.expect_cpus) || fail "guest.expect_cpus=N missing on the command line"
got=$(grep -c '^processor' /proc/cpuinfo)
[ "$got" = "$n" ] || fail "/proc/cpuinfo lists $got processors, expected $n"
want_online=0
[ "$n" -gt 1 ] && want_online="0-$((n - 1))"
online=$(cat /sys/devices/system/cpu/online)
[ "$online" = "$want_online" ] || fail "cpu/online is '$online', expected '$want_online'"
echo "guest: $TEST: $got CPUs, online $online"
