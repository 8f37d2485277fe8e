# Sourced by the guest tests of the emulated NIC and disk (after lib.sh).

# wait_for PATH SECONDS: true once PATH exists (devices probe asynchronously).
wait_for() {
    i=0
    while [ ! -e "$1" ]; do
        [ $i -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# net_up: eth0 up with guest.ip (default 10.0.2.15/24) and carrier, or fail.
net_up() {
    NET_IF=eth0
    NET_IP=$(cmdline_get guest.ip) || NET_IP=10.0.2.15/24
    NET_PEER=$(cmdline_get guest.peer) || NET_PEER=10.0.2.1
    wait_for /sys/class/net/$NET_IF 10 || fail "no $NET_IF after 10 s (is the e1000 driver bound? $(ls /sys/class/net | tr '\n' ' '))"
    if ! ip addr show dev $NET_IF | grep -q "inet ${NET_IP%/*}/"; then
        ip addr add "$NET_IP" dev $NET_IF || fail "ip addr add $NET_IP dev $NET_IF failed"
    fi
    ip link set $NET_IF up || fail "ip link set $NET_IF up failed"
    i=0
    while [ "$(cat /sys/class/net/$NET_IF/carrier 2>/dev/null)" != 1 ]; do
        [ $i -ge 100 ] && fail "$NET_IF has no carrier 10 s after link up (operstate $(cat /sys/class/net/$NET_IF/operstate))"
        sleep 0.1
        i=$((i + 1))
    done
}

# disk_dev: the disk under test (guest.disk, default /dev/nvme0n1), once it
# exists; fails the test after 10 s.
disk_dev() {
    d=$(cmdline_get guest.disk) || d=/dev/nvme0n1
    wait_for "$d" 10 || fail "no $d after 10 s (block devices: $(ls /sys/block | tr '\n' ' '))"
    echo "$d"
}

# sha_of FILE [SKIP_MIB COUNT_MIB] [direct]: sha256 of FILE, or of COUNT_MIB
# MiB of it from SKIP_MIB MiB on, read with O_DIRECT when asked.
sha_of() {
    if [ $# = 1 ]; then
        sha256sum "$1" | cut -d' ' -f1
    else
        flag=
        [ "${4:-}" = direct ] && flag=iflag=direct
        dd if="$1" bs=1M skip="$2" count="$3" $flag 2>/dev/null | sha256sum | cut -d' ' -f1
    fi
}

# drop_caches DEV: what the disk holds, not what the page cache remembers.
drop_caches() {
    sync
    blockdev --flushbufs "$1" || fail "blockdev --flushbufs $1 failed"
    echo 3 >/proc/sys/vm/drop_caches
}

# fs_digest DIR: one sha256 over the names and contents of every file in DIR.
fs_digest() {
    (cd "$1" && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}
