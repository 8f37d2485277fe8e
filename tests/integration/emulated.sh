#!/bin/bash
# Emulated-path scenarios: a Linux guest drives our e1000 NIC and NVMe disk
# with its own drivers. Needs a working /dev/kvm and root (it makes a tap
# device), so tests/integration/l1-suite.sh runs it inside L1, whose only
# network is this tap: 10.0.2.1 here, 10.0.2.15 in the guest.
#
# Two VMs, each with a 16550 console, 512 MiB:
#   disk:    2 vCPUs, NVMe on a fresh 256 MiB file in /tmp; guest tests disk
#            (64 MiB O_DIRECT write, flush, drop caches, read back),
#            nvmereset (a controller reset keeps data and I/O working),
#            discard (blkdiscard and BLKZEROOUT read back zeroes), fswrite
#            (ext2 with files), then the guest powers off. The stats JSON gives the
#            exits per I/O.
#   restart: 1 vCPU, the same file plus the e1000 on the tap; guest tests
#            fsverify (the files survived the restart), net (MAC, carrier,
#            ping, fragmented ping, link down/up) and nethost, while this script flood-pings the guest and
#            moves 64 MiB each way with netcat, comparing sha256 sums.
# Prints PASS/FAIL per scenario with the reason, ends with "N passed, M
# failed", exits non-zero on any failure.
#
# EMULATED_VMM        the VMM binary (default build/vmm)
# EMULATED_REFERENCE  "qemu": run the same guests under QEMU's e1000 and nvme
#                     instead (to tell a guest-side problem from a model bug)
# EMULATED_TIMEOUT    seconds per VM (default 360; a passing one takes 40-120)
# EMULATED_TAP        the tap device's name (default iovmm-tap0)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=${EMULATED_VMM:-$ROOT/build/vmm}
REFERENCE=${EMULATED_REFERENCE:-}
TIMEOUT=${EMULATED_TIMEOUT:-360}
TAP=${EMULATED_TAP:-iovmm-tap0}
KERNEL=$ROOT/build/kernel/vmlinuz
INITRD=$ROOT/build/guest/initramfs.cpio.gz
HOST_IP=10.0.2.1
GUEST_IP=10.0.2.15
MAC=52:54:00:12:34:56
DISK_MIB=256
NET_MIB=64

SUITE=emulated
source "$ROOT/tests/integration/suite-lib.sh"

if [[ -z $REFERENCE && ! -x $VMM ]]; then
    echo "FAIL emulated: no VMM binary at $VMM (run 'make')"; echo "0 passed, 1 failed"; exit 1
fi
for f in "$KERNEL" "$INITRD"; do
    [[ -e $f ]] || { echo "FAIL emulated: missing $f (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done
for c in ip ping nc sha256sum python3 e2fsck; do
    command -v $c >/dev/null || { echo "FAIL emulated: $c not found (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/emulated.XXXXXX")   # configs and logs, kept on failure
DATA=$(mktemp -d /tmp/emulated-data.XXXXXX)                  # disk image and payloads: tmpfs in L1
declare -a BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip link del "$TAP" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

# --- the tap: L1's kernel has tun as a module, in the unpacked kernel tree ---
setup_tap() {
    if [[ ! -e /dev/net/tun ]]; then
        local ko
        ko=$(find "$ROOT/build/kernel/root/lib/modules/$(uname -r)" -name tun.ko 2>/dev/null | head -n1)
        [[ -n $ko ]] && insmod "$ko" 2>/dev/null
    fi
    [[ -e /dev/net/tun ]] || { echo "no /dev/net/tun (tun module for $(uname -r) not loadable)"; return 1; }
    ip link del "$TAP" 2>/dev/null || true
    ip tuntap add dev "$TAP" mode tap &&
        ip addr add "$HOST_IP/24" dev "$TAP" &&
        ip link set "$TAP" up
}

# --- one VM: config files, launch in the background, wait ------------------
# vm_conf NAME VCPUS MEMORY CMDLINE_EXTRA: write NAME's VM file and console.
vm_conf() {
    local name=$1 vcpus=$2 mem=$3 extra=$4 d=$WORK/$1
    mkdir -p "$d/devices"
    echo "$vcpus $mem console=ttyS0 quiet $extra" >"$d/params"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $name
memory  = $mem
vcpus   = $vcpus
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet $extra
devices = devices/*.conf
debug-exit = on
CONF
    printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
        "$d/console.log" >"$d/devices/console.conf"
}

# vm_nic NAME: the e1000 on the tap.
vm_nic() {
    echo "$MAC" >"$WORK/$1/nic"
    cat >"$WORK/$1/devices/net0.conf" <<CONF
[device]
id    = net0
class = net
path  = emulated

[emulated]
model = e1000
tap   = $TAP
mac   = $MAC
CONF
}

# vm_disk NAME FILE: the NVMe disk on FILE.
vm_disk() {
    echo "$2" >"$WORK/$1/disk"
    cat >"$WORK/$1/devices/disk0.conf" <<CONF
[device]
id    = disk0
class = block
path  = emulated

[emulated]
model  = nvme
file   = $2
size   = ${DISK_MIB}M
serial = iovmm-disk0
CONF
}

# vm_start NAME: run the VM in the background; sets VM_PID.
vm_start() {
    local name=$1 d=$WORK/$1
    rm -f "$d/console.log" "$d/stats.json"
    echo "--- $name: $(cut -d' ' -f1-2 "$d/params" | sed 's/ / vCPU, /'), '$(cut -d' ' -f5- "$d/params")'"
    VM_T0=$SECONDS
    if [[ $REFERENCE == qemu ]]; then
        local vcpus mem cmdline
        read -r vcpus mem cmdline <"$d/params"
        local -a args=(-enable-kvm -cpu host -M q35 -m "${mem%M}" -smp "$vcpus" -nodefaults -no-user-config
            -display none -no-reboot -serial "file:$d/console.log" -kernel "$KERNEL" -initrd "$INITRD"
            -append "$cmdline" -device isa-debug-exit,iobase=0x501,iosize=1)
        [[ -e $d/nic ]] && args+=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no"
            -device "e1000,netdev=n0,mac=$(cat "$d/nic")")
        [[ -e $d/disk ]] && args+=(-drive "file=$(cat "$d/disk"),if=none,id=d0,format=raw,discard=unmap"
            -device nvme,drive=d0,serial=iovmm-disk0)
        timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" </dev/null >"$d/stdout" 2>"$d/stderr" &
    else
        timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" --stats "$d/stats.json" \
            </dev/null >"$d/stdout" 2>"$d/stderr" &
    fi
    VM_PID=$!
    BG_PIDS+=("$VM_PID")
}

# vm_wait NAME: wait for the VM to end; sets rc (QEMU's debug-exit status
# (N << 1) | 1 is mapped back to N).
vm_wait() {
    set +e
    wait "$VM_PID"
    rc=$?
    set -e
    if [[ $REFERENCE == qemu ]] && ((rc % 2 == 1 && rc < 124)); then rc=$(((rc - 1) / 2)); fi
    echo "    exit status $rc after $((SECONDS - VM_T0))s"
}

# while_vm_lives PID: wait for PID (started in the background) while the
# VM runs; once the VM has ended, give PID 5 s, then kill it. Returns PID's
# status (nonzero when killed).
while_vm_lives() {
    local pid=$1 grace=10
    while kill -0 "$pid" 2>/dev/null; do
        if ! kill -0 "$VM_PID" 2>/dev/null; then
            ((grace-- > 0)) || { kill "$pid" 2>/dev/null; break; }
        fi
        sleep 0.5
    done
    wait "$pid"
}

# driver_notes NAME: show what the guest kernel said about the NIC and disk
# (with "quiet", only warnings and errors reach the console: a Tx unit hang,
# an I/O timeout, a controller reset). Shown, not judged: under a heavily
# loaded nested host such a watchdog can fire without a model bug.
driver_notes() {
    tr -d '\r' <"$WORK/$1/console.log" 2>/dev/null | grep -E '^\[ *[0-9.]+\] .*(nvme|e1000|eth0)' | head -n 10 |
        sed 's/^/    guest kernel: /' || true
}

# console_wait NAME PATTERN SECONDS: true once a console line starts with
# PATTERN; false on timeout or when the VM ended first.
console_wait() {
    local f=$WORK/$1/console.log end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        grep -q "^$2" "$f" 2>/dev/null && return 0
        kill -0 "$VM_PID" 2>/dev/null || { grep -q "^$2" "$f" 2>/dev/null; return; }
        sleep 0.5
    done
    return 1
}

# json_query FILE EXPR: evaluate a Python expression over the stats JSON (s),
# with dev(model) giving that device's entry.
json_query() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
s = json.load(open(sys.argv[1]))
def dev(model):
    return next(d for d in s["devices"] if d.get("model") == model)
print(eval(sys.argv[2]))
PY
}

# telemetry NAME MODEL UNITS UNIT_NAME: print the device's counters per unit
# of work (I/Os, packets) and check what cannot flake: the guest reached the
# device's registers and got interrupts from it.
telemetry() {
    local name=$1 model=$2 units=$3 unit=$4 f=$WORK/$1/stats.json mmio irqs exits
    if [[ $REFERENCE == qemu ]]; then echo "    (telemetry-$model: no stats under QEMU)"; return; fi
    if ! mmio=$(json_query "$f" "dev('$model')['mmio_accesses']") ||
        ! irqs=$(json_query "$f" "dev('$model')['irqs_injected']") ||
        ! exits=$(json_query "$f" "s['vm']['exits']"); then
        fail "telemetry-$model" "no $model device with mmio_accesses/irqs_injected in $f" "$name"
        return
    fi
    if [[ $units =~ ^[0-9]+$ ]] && ((units > 0)); then
        awk -v u="$units" -v m="$mmio" -v i="$irqs" -v e="$exits" -v n="$unit" -v d="$model" 'BEGIN {
            printf "    telemetry %s: %d %s; per %s: %.2f MMIO accesses, %.2f interrupts, %.2f VM exits (whole run, boot included)\n",
                d, u, n "s", n, m / u, i / u, e / u }'
    else
        echo "    telemetry $model: the guest did not report its $unit count; $mmio MMIO accesses, $irqs interrupts, $exits VM exits"
    fi
    if ((mmio > 0 && irqs > 0)); then
        pass "telemetry-$model"
    else
        fail "telemetry-$model" "stats.json counts $mmio MMIO accesses and $irqs interrupts for the $model device (both must be > 0)" "$name"
    fi
}

# --- scenarios --------------------------------------------------------------
if [[ $REFERENCE == qemu ]]; then echo "emulated: REFERENCE RUN under QEMU's e1000 and nvme, not our VMM"; fi
tap_err=$(setup_tap 2>&1) || { fail emulated "cannot set up tap $TAP: $tap_err"; finish; }
IMG=$DATA/disk0.img
truncate -s "${DISK_MIB}M" "$IMG"

# VM 1: the disk alone, so its exits per I/O are the disk's.
vm_conf disk 2 512M "guest.test=disk,nvmereset,discard,fswrite,blkstat guest.expect_disk_mib=$DISK_MIB guest.exit=poweroff"
vm_disk disk "$IMG"
vm_start disk
vm_wait disk
driver_notes disk
if ((rc == 124)); then fail nvme-vm "timed out after ${TIMEOUT}s" disk
elif ((rc != 0)); then fail nvme-vm "vmm exited $rc, expected 0 (guest power-off)" disk
fi
scenario_from_guest disk nvme-64M-checksum disk
scenario_from_guest disk nvme-controller-reset nvmereset
scenario_from_guest disk nvme-discard-write-zeroes discard
digest=$(console_field disk GUEST-FS-DIGEST 2)
ios=$(tr -d '\r' <"$WORK/disk/console.log" 2>/dev/null | awk '/^GUEST-BLKSTAT/ { print $2 + $3 + $4 + $5; exit }' || true)
telemetry disk nvme "$ios" I/O

# The filesystem the guest wrote must be consistent as a file, too.
fsck_err=
if [[ -n $digest ]] && ! out=$(e2fsck -fn "$IMG" 2>&1); then
    fsck_err="e2fsck -fn on the image after the first VM: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
fi

# VM 2: the same disk after a restart, and the NIC with host-driven traffic.
vm_conf restart 1 512M "guest.test=fsverify,net,nethost guest.expect_fs_digest=${digest:-none} guest.expect_mac=$MAC guest.tx_mib=$NET_MIB"
vm_disk restart "$IMG"
vm_nic restart
dd if=/dev/urandom of="$DATA/to-guest" bs=1M count=$NET_MIB iflag=fullblock 2>/dev/null
to_guest_sum=$(sha256sum <"$DATA/to-guest" | cut -d' ' -f1)
to_guest_bytes=$((NET_MIB << 20))
# Listening before the guest wants to send: it retries until it connects.
timeout -k 5 900 nc -d -l 5002 >"$DATA/from-guest" 2>"$WORK/nc-listen.err" &
listener=$!
BG_PIDS+=("$listener")
vm_start restart

flood= rx= tx=
if ! console_wait restart GUEST-NET-READY 180; then
    flood="the guest never printed GUEST-NET-READY (net setup failed?)"
    rx=$flood tx=$flood
else
    t0=$SECONDS
    out=$(ping -f -c 10000 -q -w 600 "$GUEST_IP" 2>&1) || true
    line=$(echo "$out" | grep 'packets transmitted' || true)
    if [[ $line != "10000 packets transmitted, 10000 received,"*" 0% packet loss"* ]]; then
        flood="ping -f -c 10000: ${line:-$(echo "$out" | tail -n 2 | tr '\n' ' ')}"
    fi
    echo "    flood ping in $((SECONDS - t0))s: $line; $(echo "$out" | grep rtt || true)"

    t0=$SECONDS sent=
    for _ in $(seq 1 30); do
        timeout 300 nc -N "$GUEST_IP" 5001 <"$DATA/to-guest" 2>/dev/null &
        if while_vm_lives $!; then sent=1; break; fi
        kill -0 "$VM_PID" 2>/dev/null || break
        sleep 1
    done
    if [[ -z $sent ]]; then
        rx="could not send to the guest's port 5001 for 30 s"
    elif ! console_wait restart GUEST-NET-RX 300; then
        rx="the guest did not report what it received (GUEST-NET-RX)"
    else
        got_bytes=$(console_field restart GUEST-NET-RX 2)
        got_sum=$(console_field restart GUEST-NET-RX 3)
        echo "    host -> guest: $got_bytes bytes in $((SECONDS - t0))s"
        [[ $got_bytes == "$to_guest_bytes" && $got_sum == "$to_guest_sum" ]] ||
            rx="the guest received $got_bytes bytes with sha256 $got_sum; sent $to_guest_bytes bytes with sha256 $to_guest_sum"
    fi

    t0=$SECONDS
    set +e
    while_vm_lives "$listener"
    lrc=$?
    set -e
    if ! console_wait restart GUEST-NET-TX 60; then
        tx="the guest did not report what it sent (GUEST-NET-TX)"
    elif ((lrc != 0)); then
        tx="the host's listener on port 5002 failed ($lrc): $(tail -n1 "$WORK/nc-listen.err" 2>/dev/null)"
    else
        want_bytes=$(console_field restart GUEST-NET-TX 2)
        want_sum=$(console_field restart GUEST-NET-TX 3)
        got_bytes=$(stat -c %s "$DATA/from-guest")
        got_sum=$(sha256sum <"$DATA/from-guest" | cut -d' ' -f1)
        echo "    guest -> host: $got_bytes bytes in $((SECONDS - t0))s (the guest makes and hashes them first)"
        [[ $got_bytes == "$want_bytes" && $got_sum == "$want_sum" ]] ||
            tx="the host received $got_bytes bytes with sha256 $got_sum; the guest sent $want_bytes bytes with sha256 $want_sum"
    fi
fi
vm_wait restart
driver_notes restart
# Where throughput went: the guest's TCP counters, L1's, and the tap's drops
# (tx_dropped: frames for the guest the VMM did not take in time).
tr -d '\r' <"$WORK/restart/console.log" 2>/dev/null | grep '^guest: nethost: sent' | sed 's/^guest: nethost: /    guest /' || true
echo "    L1 TCP: $(awk '/^Tcp: [0-9]/ { print "out", $12, "retransmitted", $13, "in", $11, "bad", $14 }' /proc/net/snmp); tap $TAP:$(
    for c in rx_packets rx_dropped tx_packets tx_dropped; do printf ' %s %s' $c "$(cat /sys/class/net/$TAP/statistics/$c 2>/dev/null)"; done)"
if ((rc == 124)); then fail e1000-vm "timed out after ${TIMEOUT}s" restart
elif ((rc != 0)); then fail e1000-vm "vmm exited $rc, expected 0 (all guest tests passed)" restart
fi

if [[ -z $digest ]]; then
    fail fs-survives-restart "the first VM printed no GUEST-FS-DIGEST: $(guest_reason disk fswrite)" disk
elif [[ -n $fsck_err ]]; then
    fail fs-survives-restart "$fsck_err" disk
else
    scenario_from_guest restart fs-survives-restart fsverify
fi
scenario_from_guest restart e1000-link-ping net
if [[ -n $flood ]]; then fail e1000-flood-ping-10000 "$flood" restart; else pass e1000-flood-ping-10000; fi
if [[ -n $rx ]]; then fail e1000-64M-host-to-guest "$rx" restart; else pass e1000-64M-host-to-guest; fi
if [[ -n $tx ]]; then fail e1000-64M-guest-to-host "$tx" restart; else pass e1000-64M-guest-to-host; fi
packets=$(tr -d '\r' <"$WORK/restart/console.log" 2>/dev/null | awk '/^GUEST-NETSTAT/ { print $2 + $3; exit }' || true)
telemetry restart e1000 "$packets" packet

# VM 3: a hostile guest writes random values to every register of the NIC
# and then of the disk controller (tests/guest/tests/regfuzz.sh); the VMM
# must stay up, the other device keep working, each device come back when
# its driver binds again, and the VMM warn once per kind of problem, not per
# access.
seed=$RANDOM
vm_conf hostile 1 256M "guest.test=regfuzz guest.fuzz_seed=$seed guest.fuzz_count=20000"
vm_disk hostile "$IMG"
vm_nic hostile
vm_start hostile
vm_wait hostile
driver_notes hostile
hostile_verdict hostile hostile-registers regfuzz "$seed"
finish
