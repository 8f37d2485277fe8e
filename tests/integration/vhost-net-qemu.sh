#!/bin/bash
# vhost-net-qemu.sh: interop of our vhost-user-net backend with a frontend no
# one here wrote: QEMU (TCG, no KVM needed) with a vhost-user netdev and
# virtio-net-pci on memfd-shared RAM. build/vhost-user-net pairs the guest's
# port with a net_tap port whose tap carries 10.0.7.1/24 on this host.
# Scenarios (PASS/FAIL lines, then "N passed, M failed"):
#   qemu-guest-vnet   the guest's virtio_net: eth0 with the MAC QEMU gave it,
#                     link, pings to 10.0.7.1 from the guest, 4000-byte pings
#                     (guest test vnet)
#   qemu-host-ping    100 pings from this host to the guest while it lingers,
#                     none lost
# QEMU gets vectors=0 (the guest's virtio_net on INTx): Debian's QEMU 7.2
# without KVM crashes in vhost_net_start when MSI-X vectors are in use (a
# NULL dereference under msix_set_vector_notifiers; seen here, every time).
# The trap removes the processes, the socket and /var/run/dpdk/<prefix>.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=vhost-net-qemu
WORK=$(mktemp -d /tmp/vnqemu.XXXXXX)
source "$ROOT/tests/integration/suite-lib.sh"
BE=$ROOT/build/vhost-user-net
INITRD=$ROOT/build/guest/initramfs.cpio.gz
KERNEL=$ROOT/build/kernel/vmlinuz
TAG=vnq$$
TAP=vnq$(($$ % 100000))
MAC=52:54:00:00:07:02
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf /var/run/dpdk/"$TAG"
    find "$WORK" -type s -delete 2>/dev/null
}
trap cleanup EXIT

refuse() { echo "FAIL $SUITE: $1"; echo "0 passed, 1 failed"; exit 1; }
[[ -x $BE ]] || refuse "build/vhost-user-net missing: run make all"
[[ -f $INITRD && -f $KERNEL ]] || refuse "guest kernel or initramfs missing: run make deps"
command -v qemu-system-x86_64 >/dev/null || refuse "qemu-system-x86_64 missing: run make deps"
[[ -c /dev/net/tun ]] || refuse "no /dev/net/tun for the backend's tap"

# The backend polls on CPU 0; QEMU's TCG thread gets the other CPU.
"$BE" --lcores 0@0,1@0 --no-huge -m 128 --no-pci --no-telemetry --file-prefix "$TAG" \
    --vdev "net_tap0,iface=$TAP" -- --vhost "g0=$WORK/sock" --pair g0,net_tap0 \
    >"$WORK/backend.log" 2>&1 </dev/null &
BE_PID=$!
PIDS+=("$BE_PID")
for _ in $(seq 100); do [[ -S $WORK/sock ]] && ip link show "$TAP" >/dev/null 2>&1 && break; sleep 0.1; done
if [[ ! -S $WORK/sock ]] || ! ip link show "$TAP" >/dev/null 2>&1; then
    refuse "vhost-user-net made no socket or no tap $TAP: $(tail -n 3 "$WORK/backend.log" | tr '\n' ' ')"
fi
ip addr add 10.0.7.1/24 dev "$TAP" && ip link set "$TAP" up || refuse "cannot configure $TAP"

taskset -c 1 timeout 300 qemu-system-x86_64 -M q35 -m 512 -smp 1 -nographic -no-reboot \
    -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
    -chardev socket,id=c0,path="$WORK/sock" -netdev vhost-user,id=n0,chardev=c0 \
    -device virtio-net-pci,netdev=n0,mac=$MAC,vectors=0 \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 guest.test=vnet guest.expect_mac=$MAC guest.ip=10.0.7.2/24 guest.peer=10.0.7.1 guest.ping_wait=90 guest.linger=30 guest.exit=poweroff" \
    >"$WORK/console.log" 2>&1 </dev/null &
QEMU_PID=$!
PIDS+=("$QEMU_PID")

# While the guest lingers after its own checks, the host pings it.
host_ping=
for _ in $(seq 300); do
    grep -q '^guest: vnet: ' "$WORK/console.log" 2>/dev/null && break
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 1
done
if grep -q '^GUEST-TEST vnet: FAIL' "$WORK/console.log" 2>/dev/null; then
    host_ping="not run: the guest's own checks failed"
elif ! grep -q '^guest: vnet: ' "$WORK/console.log" 2>/dev/null; then
    host_ping="the guest never finished its checks"
else
    out=$(ping -c 100 -i 0.1 -W 2 10.0.7.2 2>&1)
    grep -q ' 0% packet loss' <<<"$out" || host_ping="ping -c 100 10.0.7.2: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    echo "    host -> guest: $(grep 'packet loss' <<<"$out")"
fi
wait "$QEMU_PID"
rc=$?
grep -E '^guest: vnet|^GUEST-VNET' "$WORK/console.log" | sed 's/^/    /'
grep -E 'VHOST_CONFIG: .*(negotiated|new device)|vhost-user-net:' "$WORK/backend.log" | head -n 5 | sed 's/^/    backend: /'

if grep -q '^GUEST-TEST vnet: PASS' "$WORK/console.log"; then pass qemu-guest-vnet
else
    fail qemu-guest-vnet "qemu exit $rc: $(tr -d '\r' <"$WORK/console.log" | grep '^guest: vnet: ' | tail -n1)"
    tail -n 20 "$WORK/console.log" | sed 's/^/  | /'
fi
if [[ -n $host_ping ]]; then fail qemu-host-ping "$host_ping"; else pass qemu-host-ping; fi
kill -0 "$BE_PID" 2>/dev/null || fail qemu-backend-alive "build/vhost-user-net exited: $(tail -n 3 "$WORK/backend.log" | tr '\n' ' ')"
finish
