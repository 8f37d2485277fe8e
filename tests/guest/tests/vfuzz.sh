# A hostile guest against a virtio-pci device served by a vhost-user
# backend (guest.vfuzz=blk or net): with virtio-pci unbound from it and bus
# mastering on, random values at random offsets of its BARs and config space
# (regfuzz), so feature bits, status, queue sizes and ring addresses are
# whatever the noise says. The VMM and the backend must refuse what does not
# hold and stay up. Then virtio-pci binds again (its probe resets the
# device): the disk reads back what was written before the fuzzing and takes
# new data; the NIC pings guest.peer again.
# guest.fuzz_seed (default 1) and guest.fuzz_count (accesses per BAR,
# default 20000) make a run repeatable.
. /tests/lib.sh
. /tests/devlib.sh
TEST=vfuzz
kind=$(cmdline_get guest.vfuzz) || fail "guest.vfuzz=blk|net missing on the command line"
seed=$(cmdline_get guest.fuzz_seed) || seed=1
count=$(cmdline_get guest.fuzz_count) || count=20000
case "$kind" in
blk) driver=virtio_blk ;;
net) driver=virtio_net ;;
*) fail "guest.vfuzz=$kind: expected blk or net" ;;
esac

# virtio_bdf DRIVER: the PCI function under the virtio device DRIVER drives.
virtio_bdf() {
    for v in /sys/bus/virtio/drivers/$1/virtio*; do
        [ -e "$v" ] || continue
        basename "$(dirname "$(readlink -f "$v")")"
        return 0
    done
    return 1
}

# wait_bound DRIVER SECONDS: a virtio device is bound to DRIVER again.
wait_bound() {
    i=0
    until virtio_bdf "$1" >/dev/null; do
        [ $i -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}

if [ "$kind" = blk ]; then
    disk=$(disk_dev)
    dd if=/dev/urandom of=/tmp/vfuzz.pattern bs=1M count=8 iflag=fullblock 2>/dev/null || fail "no random data"
    want=$(sha_of /tmp/vfuzz.pattern)
    dd if=/tmp/vfuzz.pattern of="$disk" bs=1M oflag=direct conv=fsync 2>/dev/null || fail "cannot write $disk"
fi

bdf=$(virtio_bdf $driver) || fail "no virtio device bound to $driver"
echo "$bdf" >/sys/bus/pci/drivers/virtio-pci/unbind || fail "cannot unbind $bdf from virtio-pci"
echo 1 >/sys/bus/pci/devices/$bdf/enable 2>/dev/null
regfuzz "$bdf" "$seed" "$count" master || fail "regfuzz could not reach $bdf"
echo "$bdf" >/sys/bus/pci/drivers/virtio-pci/bind || fail "virtio-pci does not bind to $bdf again after the fuzzing"
wait_bound $driver 10 || fail "$driver did not take $bdf again within 10 s of the rebind"

if [ "$kind" = blk ]; then
    disk=$(disk_dev)
    got=$(sha_of "$disk" 0 8 direct)
    [ "$got" = "$want" ] || fail "after the fuzzing and rebind, $disk reads back $got, wrote $want"
    dd if=/tmp/vfuzz.pattern of="$disk" bs=1M seek=8 oflag=direct conv=fsync 2>/dev/null ||
        fail "cannot write $disk after the fuzzing"
    drop_caches "$disk"
    got=$(sha_of "$disk" 8 8 direct)
    [ "$got" = "$want" ] || fail "data written after the fuzzing reads back $got, wrote $want"
    echo "guest: $TEST: $driver $bdf back, data from before intact and new data verified; seed $seed, $count accesses per BAR"
else
    net_up
    out=$(ping -c 5 -W 3 "$NET_PEER" 2>&1)
    echo "$out" | grep -q ' 0% packet loss' ||
        fail "ping $NET_PEER after the fuzzing: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
    echo "guest: $TEST: $driver $bdf back, pings $NET_PEER; seed $seed, $count accesses per BAR"
fi
