# The NVMe controller comes back from a reset the way Linux does it after an
# I/O timeout (CC.EN off and on, admin and I/O queues and, if offered, the
# shadow doorbell buffer set up again): the controller is live again, data
# written before reads back the same, and new writes work.
. /tests/lib.sh
. /tests/devlib.sh
TEST=nvmereset
dev=$(disk_dev)
ctrl=/sys/class/nvme/nvme0
[ -e $ctrl/reset_controller ] || fail "no $ctrl/reset_controller"
dd if=/dev/urandom of=/tmp/reset.pattern bs=1M count=4 iflag=fullblock 2>/dev/null || fail "cannot make random data"
dd if=/tmp/reset.pattern of="$dev" bs=1M seek=200 oflag=direct conv=fsync 2>/dev/null || fail "writing before the reset failed"
before=$(sha_of /tmp/reset.pattern)

echo 1 >$ctrl/reset_controller || fail "writing reset_controller failed"
i=0
while [ "$(cat $ctrl/state)" != live ]; do
    [ $i -ge 300 ] && fail "controller state is '$(cat $ctrl/state)' 30 s after a reset"
    sleep 0.1
    i=$((i + 1))
done
got=$(sha_of "$dev" 200 4 direct)
[ "$got" = "$before" ] || fail "the 4 MiB written before the reset read back with sha256 $got, wrote $before"
dd if=/dev/urandom of=/tmp/reset.pattern bs=1M count=4 iflag=fullblock 2>/dev/null
dd if=/tmp/reset.pattern of="$dev" bs=1M seek=204 oflag=direct conv=fsync 2>/dev/null || fail "writing after the reset failed"
want=$(sha_of /tmp/reset.pattern)
drop_caches "$dev"
got=$(sha_of "$dev" 204 4 direct)
[ "$got" = "$want" ] || fail "4 MiB written after the reset read back with sha256 $got, wrote $want"
rm -f /tmp/reset.pattern
echo "guest: $TEST: controller live again after a reset, data before and after it intact"
