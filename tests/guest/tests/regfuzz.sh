# A hostile guest: random values at random offsets of every BAR and of the
# config space of the e1000 and then of the NVMe controller (regfuzz), each
# with its driver unbound. Meanwhile the other device must keep working, and
# afterwards each device must come back when its driver binds again (the
# driver's reset brings it to a known state); then the RTC's ports and the
# host bridge's config space, with both devices working throughout. The VMM
# stays up throughout.
# guest.fuzz_seed (default 1) and guest.fuzz_count (accesses per BAR,
# default 20000) make a run repeatable.
. /tests/lib.sh
. /tests/devlib.sh
TEST=regfuzz
seed=$(cmdline_get guest.fuzz_seed) || seed=1
count=$(cmdline_get guest.fuzz_count) || count=20000
# guest.fuzz_opts=A,B: regfuzz options (master, msix-only) for every device
opts=$(cmdline_get guest.fuzz_opts | tr ',' ' ') || opts=

# bdf_of DRIVER: the PCI address of the device DRIVER is bound to.
bdf_of() {
    for l in /sys/bus/pci/drivers/$1/0000:*; do
        [ -e "$l" ] && basename "$l" && return 0
    done
    return 1
}

# fuzz DRIVER: unbind, fuzz, and leave the device unbound.
fuzz() {
    bdf=$(bdf_of "$1") || fail "no device bound to $1"
    echo "$bdf" >/sys/bus/pci/drivers/$1/unbind || fail "cannot unbind $bdf from $1"
    echo 1 >/sys/bus/pci/devices/$bdf/enable 2>/dev/null
    # shellcheck disable=SC2086
    regfuzz "$bdf" "$seed" "$count" $opts || fail "regfuzz could not reach $bdf"
    FUZZED=$bdf
}

# rebind DRIVER BDF
rebind() {
    echo "$2" >/sys/bus/pci/drivers/$1/bind || fail "$1 does not bind to $2 again after the fuzzing"
}

# guest.fuzz_driver=NAME: instead, only the device NAME drives (an assigned
# function, say: its config space goes through the VMM's permission table,
# its MSI-X table is trapped, the rest of its BARs is the device itself),
# then NAME binds again; the guest tests after this one check it works.
if drv=$(cmdline_get guest.fuzz_driver); then
    fuzz "$drv"
    rebind "$drv" "$FUZZED"
    echo "guest: $TEST: $drv $FUZZED fuzzed and bound again; seed $seed, $count accesses per BAR"
    exit 0
fi

disk=$(disk_dev)
dd if=/dev/urandom of=/tmp/fuzz.pattern bs=1M count=8 iflag=fullblock 2>/dev/null || fail "no random data"
want=$(sha_of /tmp/fuzz.pattern)
dd if=/tmp/fuzz.pattern of="$disk" bs=1M oflag=direct conv=fsync 2>/dev/null || fail "cannot write $disk"

# 1. the NIC under attack; the disk goes on working.
fuzz e1000
got=$(sha_of "$disk" 0 8 direct)
[ "$got" = "$want" ] || fail "the disk read back wrong data ($got) while the NIC was fuzzed"
dd if=/tmp/fuzz.pattern of="$disk" bs=1M seek=8 oflag=direct conv=fsync 2>/dev/null ||
    fail "cannot write $disk while the NIC was fuzzed"
rebind e1000 "$FUZZED"
net_up
echo "guest: $TEST: e1000 $FUZZED back with carrier after the fuzzing"

# 2. the disk controller under attack; the NIC goes on working.
fuzz nvme
ping -c 3 -W 2 "$NET_PEER" >/dev/null 2>&1 || fail "eth0 cannot ping $NET_PEER while the NVMe controller was fuzzed"
rebind nvme "$FUZZED"
disk=$(disk_dev)
got=$(sha_of "$disk" 8 8 direct)
[ "$got" = "$want" ] || fail "after the NVMe fuzzing and rebind, the disk reads back $got, wrote $want"

# 3. The platform: the CMOS RTC's ports and the PCI host bridge's config
# space; the disk and the NIC go on working. Register B goes back to what
# Linux set (24-hour, no interrupts) so a periodic interrupt the noise
# turned on does not outlive the test.
regfuzz ports 0x70 2 "$seed" "$count" || fail "regfuzz could not reach the RTC ports"
printf '\013' | dd of=/dev/port bs=1 seek=$((0x70)) count=1 2>/dev/null
printf '\002' | dd of=/dev/port bs=1 seek=$((0x71)) count=1 2>/dev/null
regfuzz 0000:00:00.0 "$seed" "$count" || fail "regfuzz could not reach the host bridge 0000:00:00.0"
ping -c 3 -W 2 "$NET_PEER" >/dev/null 2>&1 || fail "eth0 cannot ping $NET_PEER after the platform fuzzing"
got=$(sha_of "$disk" 8 8 direct)
[ "$got" = "$want" ] || fail "after the platform fuzzing, the disk reads back $got, wrote $want"
echo "guest: $TEST: nvme $FUZZED back, data intact; RTC and host bridge fuzzed, disk and NIC still fine; seed $seed, $count accesses per BAR"
