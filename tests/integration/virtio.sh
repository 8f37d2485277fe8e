#!/bin/bash
# Virtio-path scenarios: a Linux guest's virtio_blk drives /dev/vda through
# our virtio-pci device and vhost-user frontend, served by a vhost-user-blk
# backend in another process. Needs a working /dev/kvm, so
# tests/integration/l1-suite.sh runs it inside L1.
#
# Four VMs, 512 MiB each, on one fresh 256 MiB image in /tmp, the first
# three running the guest tests disk (64 MiB O_DIRECT write, flush, drop caches, read back
# with the same sha256) and blkstat (the request counts) on /dev/vda:
#   own: build/vhost-user-blk started by the VMM itself ([virtio] backend =,
#        file =, serial =: the guest reads it back), 1 vCPU, 1 queue, plus
#        2000 random 4 KiB reads (blkbench);
#        its --stats JSON gives the telemetry (the device's MMIO accesses,
#        asserted to be under a tenth of the I/Os, and the VM's exits per I/O);
#   qsd: the same image served by qemu-storage-daemon (a backend no one here
#        wrote), 1 vCPU, 1 queue; stopped with SIGTERM afterwards;
#   mq:  build/vhost-user-blk with 4 queues, 2 vCPUs;
#   hostile: build/vhost-user-blk (2 queues) under a guest that writes
#        random values to every register of the virtio-blk function, then
#        checks its data (guest test vfuzz instead of disk and blkstat).
# Prints PASS/FAIL per scenario with the reason, ends with "N passed, M
# failed", exits non-zero on any failure. About 20 s per VM.
#
# VIRTIO_VMM      the VMM binary (default build/vmm)
# VIRTIO_TIMEOUT  seconds per VM (default 180; a passing one takes ~20)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=${VIRTIO_VMM:-$ROOT/build/vmm}
BACKEND=$ROOT/build/vhost-user-blk
TIMEOUT=${VIRTIO_TIMEOUT:-180}
KERNEL=$ROOT/build/kernel/vmlinuz
INITRD=$ROOT/build/guest/initramfs.cpio.gz
DISK_MIB=256

SUITE=virtio
source "$ROOT/tests/integration/suite-lib.sh"

for f in "$VMM" "$BACKEND"; do
    [[ -x $f ]] || { echo "FAIL virtio: no binary at $f (run 'make')"; echo "0 passed, 1 failed"; exit 1; }
done
for f in "$KERNEL" "$INITRD"; do
    [[ -e $f ]] || { echo "FAIL virtio: missing $f (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done
for c in python3 qemu-storage-daemon; do
    command -v $c >/dev/null || { echo "FAIL virtio: $c not found (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/virtio.XXXXXX")   # configs and logs, kept on failure
DATA=$(mktemp -d /tmp/virtio-data.XXXXXX)                  # image and sockets: tmpfs in L1
QSD_PID=
cleanup() {
    [[ -n $QSD_PID ]] && kill "$QSD_PID" 2>/dev/null
    rm -rf "$DATA"
}
trap cleanup EXIT

# vm NAME VCPUS DEVICE_LINES: write NAME's configs (console + vda with the
# [virtio] keys DEVICE_LINES), run it to its end with a timeout; sets rc.
# $VM_TESTS (default disk,blkstat) are the guest tests, $VM_ARGS more
# kernel arguments.
vm() {
    local name=$1 vcpus=$2 keys=$3 d=$WORK/$1
    mkdir -p "$d/devices"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $name
memory  = 512M
vcpus   = $vcpus
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet guest.test=${VM_TESTS:-disk,blkstat} ${VM_ARGS:-} guest.disk=/dev/vda guest.expect_disk_mib=$DISK_MIB guest.exit=poweroff
devices = devices/*.conf
debug-exit = on
CONF
    printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
        "$d/console.log" >"$d/devices/console.conf"
    printf '[device]\nid = vda\nclass = block\npath = virtio\n\n[virtio]\n%s\n' "$keys" >"$d/devices/vda.conf"
    echo "--- $name: $vcpus vCPU, $(echo "$keys" | grep -v '^socket' | tr '\n' ' ')"
    local t0=$SECONDS
    set +e
    timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" --stats "$d/stats.json" \
        </dev/null >"$d/stdout" 2>"$d/stderr"
    rc=$?
    set -e
    echo "    exit status $rc after $((SECONDS - t0))s"
    # What the guest's virtio_blk said (queues, capacity, any error).
    tr -d '\r' <"$d/console.log" 2>/dev/null | grep -E 'virtio|vda' | head -n 6 | sed 's/^/    guest kernel: /' || true
}

# disk_verdict NAME SCENARIO: PASS when the VM powered off by itself and the
# guest's disk test passed.
disk_verdict() {
    local name=$1 scenario=$2 f=$WORK/$1/console.log r
    if ((rc == 124)); then fail "$scenario" "timed out after ${TIMEOUT}s" "$name"; return; fi
    if grep -q '^GUEST-TEST disk: PASS' "$f" 2>/dev/null; then
        if ((rc == 0)); then pass "$scenario"; return; fi
        fail "$scenario" "disk passed, but vmm status $rc (expected 0); $(tr -d '\r' <"$f" | grep '^GUEST-TEST .*FAIL' | tr '\n' ' ')" "$name"
        return
    fi
    r=$(tr -d '\r' <"$f" 2>/dev/null | grep '^guest: disk: ' | tail -n1 | sed 's/^guest: disk: //' || true)
    if [[ -z $r ]]; then
        if ! grep -q '^GUEST-INIT-REACHED' "$f" 2>/dev/null; then r="the guest did not reach init"
        else r="the guest did not report the disk test"; fi
    fi
    fail "$scenario" "$r (vmm status $rc, expected 0)" "$name"
}

# ios NAME: the guest's completed requests on /dev/vda (GUEST-BLKSTAT).
ios() {
    tr -d '\r' <"$WORK/$1/console.log" 2>/dev/null | awk '/^GUEST-BLKSTAT/ { print $2 + $3 + $4 + $5; exit }' || true
}

# json_query FILE EXPR: a Python expression over the stats JSON (s), with
# dev(id) giving that device's entry.
json_query() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
s = json.load(open(sys.argv[1]))
def dev(id):
    return next(d for d in s["devices"] if d.get("id") == id)
print(eval(sys.argv[2]))
PY
}

IMG=$DATA/disk.img
truncate -s "${DISK_MIB}M" "$IMG"

# VM 1: our backend, started and stopped by the VMM; after the disk test,
# 2000 random 4 KiB O_DIRECT reads (blkbench) give the telemetry many
# small requests.
VM_TESTS=disk,blkbench,blkstat VM_ARGS="guest.bench_count=2000 guest.bench_qd=1 guest.expect_serial=own-disk-0001" vm own 1 "socket = $DATA/own.sock
queues = 1
backend = $BACKEND
file = $IMG
serial = own-disk-0001"
disk_verdict own virtio-own-backend-64M-checksum

# Telemetry of VM 1. Kicks go through ioeventfds and completions through
# irqfds, so the device's MMIO accesses are the driver's probe and setup
# (~100), not one per request: with over 2000 requests, ten times fewer
# accesses than requests cannot flake; exits per I/O are
# printed, not judged (boot included, the host's load shows in them).
n=$(ios own)
f=$WORK/own/stats.json
if ! mmio=$(json_query "$f" "dev('vda')['mmio_accesses']") || ! exits=$(json_query "$f" "s['vm']['exits']"); then
    fail virtio-telemetry "no device vda with mmio_accesses, or no vm.exits, in $f" own
elif ! [[ $n =~ ^[0-9]+$ ]] || ((n == 0)); then
    fail virtio-telemetry "the guest printed no GUEST-BLKSTAT request counts" own
else
    awk -v u="$n" -v m="$mmio" -v e="$exits" 'BEGIN {
        printf "    telemetry vda: %d I/Os; %d device MMIO accesses (%.3f per I/O), %d VM exits (%.1f per I/O, whole run, boot included)\n",
            u, m, m / u, e, e / u }'
    tr -d '\r' <"$WORK/own/console.log" | grep '^GUEST-BENCH-RESULT' | sed 's/^GUEST-BENCH-RESULT /    guest blkbench: /' || true
    if ((mmio * 10 < n)); then pass virtio-telemetry
    else fail virtio-telemetry "the device saw $mmio MMIO accesses for $n I/Os (want under a tenth): kicks not through ioeventfds?" own
    fi
fi

# VM 2: the same image behind qemu-storage-daemon.
rm -f "$DATA/qsd.sock"
qemu-storage-daemon --blockdev "driver=file,node-name=file0,filename=$IMG" \
    --blockdev driver=raw,node-name=disk0,file=file0 \
    --export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$DATA/qsd.sock,writable=on" \
    >"$WORK/qsd.log" 2>&1 &
QSD_PID=$!
for _ in $(seq 100); do [[ -S $DATA/qsd.sock ]] && break; sleep 0.1; done
if [[ ! -S $DATA/qsd.sock ]]; then
    fail virtio-qsd-backend-64M-checksum "qemu-storage-daemon made no socket: $(tail -n 2 "$WORK/qsd.log" | tr '\n' ' ')"
else
    vm qsd 1 "socket = $DATA/qsd.sock
queues = 1"
    disk_verdict qsd virtio-qsd-backend-64M-checksum
fi
kill -TERM "$QSD_PID" 2>/dev/null || true
set +e
wait "$QSD_PID"
set -e
QSD_PID=

# VM 3: 4 queues on 2 vCPUs (the guest uses min(queues, CPUs) of them).
vm mq 2 "socket = $DATA/mq.sock
queues = 4
backend = $BACKEND
file = $IMG"
disk_verdict mq virtio-own-backend-2vcpu-4queues

# VM 4: a hostile guest (tests/guest/tests/vfuzz.sh): random values at random
# offsets of the virtio-blk function's BARs and config space with bus
# mastering on, then virtio_blk binds again and the data written before is
# still there. Our backend must survive whatever reaches it: the VMM losing
# it would show in its log.
seed=$RANDOM
VM_TESTS=vfuzz VM_ARGS="guest.vfuzz=blk guest.fuzz_seed=$seed guest.fuzz_count=20000" vm hostile 1 "socket = $DATA/hostile.sock
queues = 2
backend = $BACKEND
file = $IMG"
hostile_verdict hostile virtio-hostile-registers vfuzz "$seed"
finish
