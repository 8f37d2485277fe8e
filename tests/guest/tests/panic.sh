# A real kernel panic ("Kernel panic - not syncing: sysrq triggered crash"):
# the VMM must notice it and exit non-zero.
echo 1 >/proc/sys/kernel/sysrq
echo c >/proc/sysrq-trigger
sleep 5
echo "guest: panic: still alive after sysrq-c"
exit 1
