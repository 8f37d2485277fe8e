#!/bin/bash
# Virtio-net scenarios: a Linux guest's virtio_net drives eth0 through our
# virtio-pci device and vhost-user frontend (the control queue served in the
# VMM), its rings served by a vhost-user net backend in another process.
# Needs a working /dev/kvm and root (taps), so it runs inside L1
# (tests/kvm-run), best with KVM_RUN_SMP=2: the backends poll.
#
# VMs (512 MiB each), guest 10.0.2.15, L1 host 10.0.2.1 on the backend's tap:
#   tp:   DPDK's testpmd as the backend (a peer no one here wrote:
#         net_vhost0 <-> net_tap0 dtap0, io forwarding), 1 vCPU, 1 pair:
#         eth0 up with the configured MAC, virtio_net, MTU 1500, pings from
#         every CPU and 4000-byte ones (guest test vnet), then 8 MiB each
#         way with netcat, sha256 compared (guest test nethost);
#   mq:   testpmd with 2 queues (--rxq=2 --txq=2), 2 vCPUs, queues = 2,
#         mtu = 1400: the guest sees 2 pairs (queues/rx-*, tx-*) and the MTU,
#         its VQ_PAIRS_SET 2 reached the VMM ("uses 2 of 2 queue pairs") and
#         20 pings from each CPU (each transmit queue) come back; then
#         testpmd is SIGKILLed and started again: the VMM reconnects,
#         replays both pairs enabled, and the pings from each CPU come back;
#   own:  our build/vhost-user-net between the guest and a net_tap port:
#         vnet, a 10,000-packet flood ping from the host (0% loss), 64 MiB
#         each way (VNET_MIB); telemetry: KVM exits per packet over the
#         flood and over the bulk transfer (KVM's debugfs counters around
#         them, printed against the issue's 0.05 target), the device's MMIO
#         accesses per packet (kicks go through ioeventfds: asserted < 0.05);
#         then a hostile guest on the same backend writes random values to
#         every register of its virtio-net function and pings again (vfuzz);
#   two:  one build/vhost-user-net with two vhost ports paired, two guests
#         (10.0.3.1, 10.0.3.2) ping each other.
# The own and two scenarios FAIL (not skip) without build/vhost-user-net.
# Prints PASS/FAIL per scenario with the reason, ends with "N passed, M
# failed", exits non-zero on any failure.
#
# VNET_VMM      the VMM binary (default build/vmm)
# VNET_TIMEOUT  seconds per VM (default 600; under a loaded nested host a
#               64 MiB transfer each way took up to 5 minutes)
# VNET_MIB      MiB each way through our backend (default 64; testpmd: 8)
# VNET_ONLY     a space-separated subset of "tp mq own two" to run
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=${VNET_VMM:-$ROOT/build/vmm}
OURS=$ROOT/build/vhost-user-net
TIMEOUT=${VNET_TIMEOUT:-600}
ONLY=${VNET_ONLY:-tp mq own two}
KERNEL=$ROOT/build/kernel/vmlinuz
INITRD=$ROOT/build/guest/initramfs.cpio.gz
HOST_IP=10.0.2.1
GUEST_IP=10.0.2.15
MAC=52:54:00:12:34:56
NET_MIB=${VNET_MIB:-64}
TP_MIB=8
FLOOD=10000

SUITE=virtio-net
source "$ROOT/tests/integration/suite-lib.sh"

[[ -x $VMM ]] || { echo "FAIL virtio-net: no VMM binary at $VMM (run 'make')"; echo "0 passed, 1 failed"; exit 1; }
for f in "$KERNEL" "$INITRD"; do
    [[ -e $f ]] || { echo "FAIL virtio-net: missing $f (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done
for c in ip ping nc sha256sum python3 dpdk-testpmd; do
    command -v $c >/dev/null || { echo "FAIL virtio-net: $c not found (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/virtio-net.XXXXXX")   # configs and logs, kept on failure
DATA=$(mktemp -d /tmp/virtio-net-data.XXXXXX)                  # sockets and payloads: tmpfs in L1
declare -a BG_PIDS=()
BACKEND_PID=
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n $BACKEND_PID ]] && kill "$BACKEND_PID" 2>/dev/null
    rm -rf "$DATA"
}
trap cleanup EXIT

wants() { [[ " $ONLY " == *" $1 "* ]]; }

# The tun module for the backends' taps (L1's kernel has it as a module).
load_tun() {
    if [[ ! -e /dev/net/tun ]]; then
        local ko
        ko=$(find "$ROOT/build/kernel/root/lib/modules/$(uname -r)" -name tun.ko 2>/dev/null | head -n1)
        [[ -n $ko ]] && insmod "$ko" 2>/dev/null
    fi
    [[ -e /dev/net/tun ]] || { echo "no /dev/net/tun (tun module for $(uname -r) not loadable)"; return 1; }
}

# KVM's per-VM counters (debugfs sums them over the vCPUs).
mount_debugfs() {
    [[ -d /sys/kernel/debug/kvm ]] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
}

# --- backends ------------------------------------------------------------------
# backend_start NAME CMD...: run a backend in the background, log in $WORK.
backend_start() {
    local name=$1
    shift
    "$@" </dev/null >"$WORK/$name.log" 2>&1 &
    BACKEND_PID=$!
}

backend_stop() {
    [[ -n $BACKEND_PID ]] || return 0
    kill -TERM "$BACKEND_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$BACKEND_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BACKEND_PID" 2>/dev/null || true
    wait "$BACKEND_PID" 2>/dev/null || true
    BACKEND_PID=
}

# wait_ready SOCK... [-- TAP]: the sockets exist and the tap (if any) is
# there; the tap gets the host's address. False after 30 s.
wait_ready() {
    local tap= s
    local -a socks=()
    while (($#)); do
        if [[ $1 == -- ]]; then tap=$2; break; fi
        socks+=("$1")
        shift
    done
    for _ in $(seq 300); do
        local ok=1
        for s in "${socks[@]}"; do [[ -S $s ]] || ok=; done
        [[ -n $tap && ! -e /sys/class/net/$tap ]] && ok=
        if [[ -n $ok ]]; then
            [[ -z $tap ]] && return 0
            ip addr add "$HOST_IP/24" dev "$tap" && ip link set "$tap" up
            return
        fi
        kill -0 "$BACKEND_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

backend_tail() { tail -n 5 "$WORK/$1.log" 2>/dev/null | tr '\n' ' '; }

# testpmd NAME SOCK QUEUES: DPDK's vhost PMD on SOCK forwarding (io) to a
# kernel tap dtap0, main and forwarding lcores on CPU 0.
testpmd() {
    local name=$1 sock=$2 q=$3
    rm -f "$sock"
    ip link del dtap0 2>/dev/null || true
    backend_start "$name-testpmd" dpdk-testpmd --no-huge -m 256 --no-pci --file-prefix "vn$name" \
        --lcores 0@0,1@0 --vdev "net_vhost0,iface=$sock,queues=$q" --vdev net_tap0,iface=dtap0 \
        -- --forward-mode=io --auto-start --rxq="$q" --txq="$q" --total-num-mbufs=8192 --stats-period 30
}

# --- VMs -------------------------------------------------------------------------
# vm_conf NAME VCPUS CMDLINE_EXTRA NET_KEYS: VM file, console and a net
# device net0 with the [virtio] keys NET_KEYS.
vm_conf() {
    local name=$1 vcpus=$2 extra=$3 keys=$4 d=$WORK/$1
    mkdir -p "$d/devices"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $name
memory  = 512M
vcpus   = $vcpus
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet $extra
devices = devices/*.conf
debug-exit = on
CONF
    printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
        "$d/console.log" >"$d/devices/console.conf"
    printf '[device]\nid = net0\nclass = net\npath = virtio\n\n[virtio]\n%s\n' "$keys" >"$d/devices/net0.conf"
    echo "--- $name: $vcpus vCPU, $(echo "$keys" | grep -v '^socket' | tr '\n' ' ')"
}

# vm_start NAME: run it in the background; sets VM_PID (and NAME's pid file).
vm_start() {
    local d=$WORK/$1
    rm -f "$d/console.log" "$d/stats.json"
    timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" --stats "$d/stats.json" \
        </dev/null >"$d/stdout" 2>"$d/stderr" &
    VM_PID=$!
    echo "$VM_PID" >"$d/pid"
    BG_PIDS+=("$VM_PID")
    eval "T0_$1=\$SECONDS"
}

# vm_wait NAME: wait for it; sets rc.
vm_wait() {
    local pid t0
    pid=$(cat "$WORK/$1/pid")
    set +e
    wait "$pid"
    rc=$?
    set -e
    t0=T0_$1
    echo "    $1: exit status $rc after $((SECONDS - ${!t0}))s"
    tr -d '\r' <"$WORK/$1/console.log" 2>/dev/null | grep -E '^\[ *[0-9.]+\] .*(virtio|eth0)' | head -n 5 |
        sed 's/^/    guest kernel: /' || true
    grep -E 'queue pairs|control queue|lost the backend|reconnected' "$WORK/$1/stderr" 2>/dev/null | head -n 5 |
        sed 's/^/    /' || true
}

console_wait() {
    local f=$WORK/$1/console.log end=$((SECONDS + $3)) pid
    pid=$(cat "$WORK/$1/pid")
    while ((SECONDS < end)); do
        grep -q "^$2" "$f" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { grep -q "^$2" "$f" 2>/dev/null; return; }
        sleep 0.5
    done
    return 1
}

json_query() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
s = json.load(open(sys.argv[1]))
def dev(id):
    return next(d for d in s["devices"] if d.get("id") == id)
print(eval(sys.argv[2]))
PY
}

# kvm_exits: KVM's exit count of the one VM running now (debugfs), or empty.
kvm_exits() {
    local dirs=(/sys/kernel/debug/kvm/[0-9]*-*)
    [[ ${#dirs[@]} == 1 && -r ${dirs[0]}/exits ]] && cat "${dirs[0]}/exits"
}

# kvm_breakdown: KVM's exit counters by kind for the one VM running now
# ("name=value ..."), to tell where exits per packet go.
KVM_KINDS="exits halt_exits irq_exits irq_window_exits io_exits mmio_exits request_irq_exits"
kvm_breakdown() {
    local dirs=(/sys/kernel/debug/kvm/[0-9]*-*) k
    [[ ${#dirs[@]} == 1 ]] || return 0
    for k in $KVM_KINDS; do [[ -r ${dirs[0]}/$k ]] && printf '%s=%s ' "$k" "$(cat "${dirs[0]}/$k")"; done
}

tap_packets() { echo $(($(cat /sys/class/net/$1/statistics/rx_packets) + $(cat /sys/class/net/$1/statistics/tx_packets))); }

# traffic NAME TAG TAP MIB FLOOD: with NAME running guest tests vnet,nethost
# (guest.tx_mib=MIB): a FLOOD-packet flood ping (none if 0), MIB MiB each
# way; PASS/FAIL TAG-flood-ping-FLOOD, TAG-<MIB>M-host-to-guest,
# TAG-<MIB>M-guest-to-host.
# Sets FLOOD_EXITS and FLOOD_PACKETS, and prints the exits per packet of
# the host -> guest transfer (bulk TCP: interrupts coalesced by NAPI).
traffic() {
    local name=$1 tag=$2 tap=$3 mib=$4 count=$5 flood= rx= tx= listener sent= t0 e0 e1 p0 p1 out line lrc
    local to_guest=$DATA/to-guest-$mib to_guest_sum to_guest_bytes=$(($4 << 20))
    head -c "$to_guest_bytes" "$DATA/to-guest" >"$to_guest"
    to_guest_sum=$(sha256sum <"$to_guest" | cut -d' ' -f1)
    FLOOD_EXITS= FLOOD_PACKETS=
    rm -f "$DATA/from-guest"
    timeout -k 5 600 nc -d -l 5002 >"$DATA/from-guest" 2>"$WORK/$name/nc-listen.err" &
    listener=$!
    BG_PIDS+=("$listener")
    if ! console_wait "$name" GUEST-NET-READY 180; then
        flood="the guest never printed GUEST-NET-READY ($(guest_reason "$name" vnet))"
        rx=$flood tx=$flood
        kill "$listener" 2>/dev/null || true
    elif grep -q '^GUEST-TEST vnet: FAIL' "$WORK/$name/console.log"; then
        # No link: the guest would wait for the transfers until its timeout.
        flood="not run: the link check failed ($(guest_reason "$name" vnet))"
        rx=$flood tx=$flood
        kill "$listener" "$(cat "$WORK/$name/pid")" 2>/dev/null || true
    elif ((count > 0)); then
        t0=$SECONDS e0=$(kvm_exits || true) p0=$(tap_packets "$tap")
        local b0 b1
        b0=$(kvm_breakdown)
        out=$(ping -f -c "$count" -q -w 150 "$GUEST_IP" 2>&1) || true
        e1=$(kvm_exits || true) p1=$(tap_packets "$tap")
        b1=$(kvm_breakdown)
        # Per packet, by kind of exit.
        [[ -n $b0 && -n $b1 ]] && awk -v a="$b0" -v b="$b1" -v p=$((p1 - p0)) 'BEGIN {
            n = split(a, x, " "); split(b, y, " "); out = ""
            for (i = 1; i <= n; i++) { split(x[i], u, "="); split(y[i], v, "=")
                if (p > 0) out = out sprintf(" %s %.3f", u[1], (v[2] - u[2]) / p) }
            print "    flood: KVM exits per packet by kind:" out }' 
        line=$(echo "$out" | grep 'packets transmitted' || true)
        [[ $line == "$count packets transmitted, $count received,"*" 0% packet loss"* ]] ||
            flood="ping -f -c $count: ${line:-$(echo "$out" | tail -n 2 | tr '\n' ' ')}"
        echo "    flood ping in $((SECONDS - t0))s: $line; $(echo "$out" | grep rtt || true)"
        FLOOD_PACKETS=$((p1 - p0))
        [[ -n $e0 && -n $e1 ]] && FLOOD_EXITS=$((e1 - e0))
    fi
    if [[ -z $rx ]] && grep -q '^GUEST-NET-READY' "$WORK/$name/console.log"; then

        t0=$SECONDS e0=$(kvm_exits || true) p0=$(tap_packets "$tap")
        for _ in $(seq 1 30); do
            if timeout 300 nc -N "$GUEST_IP" 5001 <"$to_guest" 2>/dev/null; then sent=1; break; fi
            sleep 1
        done
        if [[ -z $sent ]]; then
            rx="could not send to the guest's port 5001 for 30 s"
        elif ! console_wait "$name" GUEST-NET-RX 300; then
            rx="the guest did not report what it received (GUEST-NET-RX)"
        else
            local got_bytes got_sum
            got_bytes=$(console_field "$name" GUEST-NET-RX 2)
            got_sum=$(console_field "$name" GUEST-NET-RX 3)
            echo "    host -> guest: $got_bytes bytes in $((SECONDS - t0))s"
            e1=$(kvm_exits || true) p1=$(tap_packets "$tap")
            [[ -n $e0 && -n $e1 ]] && ((p1 > p0)) && awk -v e=$((e1 - e0)) -v p=$((p1 - p0)) 'BEGIN {
                printf "    telemetry %s: bulk host -> guest: %d KVM exits for %d packets = %.3f exits/packet\n", "'"$name"'", e, p, e / p }'
            [[ $got_bytes == "$to_guest_bytes" && $got_sum == "$to_guest_sum" ]] ||
                rx="the guest received $got_bytes bytes with sha256 $got_sum; sent $to_guest_bytes bytes with sha256 $to_guest_sum"
        fi
        t0=$SECONDS
        set +e
        wait "$listener"
        lrc=$?
        set -e
        if ! console_wait "$name" GUEST-NET-TX 60; then
            tx="the guest did not report what it sent (GUEST-NET-TX)"
        elif ((lrc != 0)); then
            tx="the host's listener on port 5002 failed ($lrc): $(tail -n1 "$WORK/$name/nc-listen.err" 2>/dev/null)"
        else
            local want_bytes want_sum got_bytes got_sum
            want_bytes=$(console_field "$name" GUEST-NET-TX 2)
            want_sum=$(console_field "$name" GUEST-NET-TX 3)
            got_bytes=$(stat -c %s "$DATA/from-guest")
            got_sum=$(sha256sum <"$DATA/from-guest" | cut -d' ' -f1)
            echo "    guest -> host: $got_bytes bytes in $((SECONDS - t0))s"
            [[ $got_bytes == "$want_bytes" && $got_sum == "$want_sum" ]] ||
                tx="the host received $got_bytes bytes with sha256 $got_sum; the guest sent $want_bytes bytes with sha256 $want_sum"
        fi
    fi
    if ((count > 0)); then
        if [[ -n $flood ]]; then fail "$tag-flood-ping-$count" "$flood" "$name"; else pass "$tag-flood-ping-$count"; fi
    fi
    if [[ -n $rx ]]; then fail "$tag-${mib}M-host-to-guest" "$rx" "$name"; else pass "$tag-${mib}M-host-to-guest"; fi
    if [[ -n $tx ]]; then fail "$tag-${mib}M-guest-to-host" "$tx" "$name"; else pass "$tag-${mib}M-guest-to-host"; fi
}

# vm_verdict NAME: the VM ended by itself with every guest test passed.
vm_verdict() {
    if ((rc == 124)); then fail "$2" "timed out after ${TIMEOUT}s" "$1"
    elif ((rc != 0)); then fail "$2" "vmm exited $rc, expected 0 (all guest tests passed): $(tr -d '\r' <"$WORK/$1/console.log" | grep '^GUEST-TEST .*FAIL' | tr '\n' ' ')" "$1"
    else pass "$2"; fi
}

# telemetry NAME: KVM exits per packet over the flood (printed against the
# issue's target), and the device's MMIO accesses per packet over the whole
# run, asserted < 0.05 (kicks must reach the backend through ioeventfds,
# not through the VMM).
telemetry() {
    local name=$1 f=$WORK/$1/stats.json pk mmio exits
    pk=$(tr -d '\r' <"$WORK/$name/console.log" 2>/dev/null | awk '/^GUEST-NETSTAT/ { print $2 + $3; exit }' || true)
    if ! mmio=$(json_query "$f" "dev('net0')['mmio_accesses']") || ! exits=$(json_query "$f" "s['vm']['exits']"); then
        fail telemetry-virtio-net "no device net0 with mmio_accesses, or no vm.exits, in $f" "$name"
    elif ! [[ $pk =~ ^[0-9]+$ ]] || ((pk == 0)); then
        fail telemetry-virtio-net "the guest printed no GUEST-NETSTAT packet counts" "$name"
    elif [[ -z $FLOOD_EXITS || -z $FLOOD_PACKETS ]] || ((FLOOD_PACKETS == 0)); then
        fail telemetry-virtio-net "no KVM exit counts around the flood (debugfs /sys/kernel/debug/kvm not readable?)" "$name"
    else
        awk -v fe="$FLOOD_EXITS" -v fp="$FLOOD_PACKETS" -v m="$mmio" -v p="$pk" -v e="$exits" -v n="$name" 'BEGIN {
            printf "    telemetry %s: flood: %d KVM exits for %d packets = %.3f exits/packet (target < 0.05: %s)\n",
                n, fe, fp, fe / fp, fe / fp < 0.05 ? "met" : "NOT met"
            printf "    telemetry %s: whole run: %d packets, %d device MMIO accesses (%.4f/packet), %d VM exits (%.2f/packet, boot included)\n",
                n, p, m, m / p, e, e / p }'
        if ((mmio * 20 < pk)); then pass telemetry-virtio-net
        else fail telemetry-virtio-net "$mmio device MMIO accesses for $pk packets (want < 0.05 per packet): kicks not through ioeventfds?" "$name"
        fi
    fi
}

# --- scenarios -----------------------------------------------------------------
tun_err=$(load_tun 2>&1) || { fail virtio-net "$tun_err"; finish; }
mount_debugfs
dd if=/dev/urandom of="$DATA/to-guest" bs=1M count=$((NET_MIB > TP_MIB ? NET_MIB : TP_MIB)) iflag=fullblock 2>/dev/null
NET_TESTS="guest.test=vnet,nethost guest.expect_mac=$MAC"

# 1. testpmd (DPDK's vhost PMD) as the backend, link, flood, 64 MiB.
if wants tp; then
    testpmd tp "$DATA/tp.sock" 1
    if ! wait_ready "$DATA/tp.sock" -- dtap0; then
        fail tp-backend "testpmd made no socket/tap: $(backend_tail tp-testpmd)"
    else
        vm_conf tp 1 "$NET_TESTS guest.tx_mib=$TP_MIB guest.expect_mtu=1500" "socket = $DATA/tp.sock
mac = $MAC"
        vm_start tp
        traffic tp testpmd dtap0 $TP_MIB 0
        vm_wait tp
        scenario_from_guest tp testpmd-link-mac-ping vnet
        vm_verdict tp testpmd-vm
    fi
    backend_stop
fi

# 2. Two queue pairs on two vCPUs, MTU from the device file; then testpmd
#    is killed and started again under the guest's feet.
if wants mq; then
    testpmd mq "$DATA/mq.sock" 2
    if ! wait_ready "$DATA/mq.sock" -- dtap0; then
        fail testpmd-2-queue-pairs "testpmd made no socket/tap: $(backend_tail mq-testpmd)"
    else
        vm_conf mq 2 "guest.test=vnet guest.expect_mac=$MAC guest.expect_pairs=2 guest.expect_mtu=1400 guest.restart_wait=60" \
            "socket = $DATA/mq.sock
mac = $MAC
queues = 2
mtu = 1400"
        vm_start mq
        restarted=
        if console_wait mq GUEST-VNET-PAUSE 180; then
            kill -KILL "$BACKEND_PID" 2>/dev/null || true
            wait "$BACKEND_PID" 2>/dev/null || true
            BACKEND_PID=
            sleep 2
            testpmd mq-again "$DATA/mq.sock" 2
            wait_ready "$DATA/mq.sock" -- dtap0 && restarted=1
        fi
        vm_wait mq
        if ! grep -q 'the guest uses 2 of 2 queue pairs' "$WORK/mq/stderr"; then
            fail testpmd-2-queue-pairs "the VMM never saw VQ_PAIRS_SET 2 (no 'uses 2 of 2 queue pairs' in its stderr)" mq
        elif ! grep -q '^GUEST-VNET-PAUSE' "$WORK/mq/console.log"; then
            fail testpmd-2-queue-pairs "$(guest_reason mq vnet)" mq
        else
            pass testpmd-2-queue-pairs
        fi
        echo "    $(tr -d '\r' <"$WORK/mq/console.log" | grep '^GUEST-VNET ' || true)"
        if [[ -z $restarted ]]; then
            fail testpmd-restart "testpmd was not restarted (guest not paused, or no socket/tap: $(backend_tail mq-again-testpmd))" mq
        elif ! grep -q 'reconnected to' "$WORK/mq/stderr"; then
            fail testpmd-restart "the VMM did not reconnect to the new testpmd" mq
        else
            scenario_from_guest mq testpmd-restart vnet
        fi
    fi
    backend_stop
fi

# 3. Our backend between the guest and a tap.
if wants own; then
    if [[ ! -x $OURS ]]; then
        fail own-backend "no $OURS (vhost-user/net not built)"
    else
        rm -f "$DATA/own.sock"
        ip link del vtap0 2>/dev/null || true
        backend_start own-backend "$OURS" -l 0,1 --no-huge -m 256 --file-prefix vnown --no-pci \
            --vdev net_tap0,iface=vtap0 -- --vhost "g0=$DATA/own.sock" --pair g0,net_tap0
        if ! wait_ready "$DATA/own.sock" -- vtap0; then
            fail own-backend "vhost-user-net made no socket/tap: $(backend_tail own-backend)"
        else
            vm_conf own 1 "$NET_TESTS guest.tx_mib=$NET_MIB" "socket = $DATA/own.sock
mac = $MAC"
            vm_start own
            traffic own own vtap0 $NET_MIB $FLOOD
            vm_wait own
            scenario_from_guest own own-link-mac-ping vnet
            vm_verdict own own-vm
            telemetry own
            # A hostile guest on the same backend (tests/guest/tests/vfuzz.sh):
            # random values in every register of the virtio-net function with
            # bus mastering on, then virtio_net binds again and pings.
            seed=$RANDOM
            vm_conf hostile 1 "guest.test=vfuzz guest.vfuzz=net guest.fuzz_seed=$seed guest.fuzz_count=20000" \
                "socket = $DATA/own.sock
mac = $MAC"
            vm_start hostile
            vm_wait hostile
            hostile_verdict hostile own-hostile-registers vfuzz "$seed"
        fi
        backend_stop
    fi
fi

# 4. Two guests on two vhost ports of one of our backends.
if wants two; then
    if [[ ! -x $OURS ]]; then
        fail two-guests-ping "no $OURS (vhost-user/net not built)"
    else
        rm -f "$DATA/a.sock" "$DATA/b.sock"
        backend_start two-backend "$OURS" -l 0,1 --no-huge -m 256 --file-prefix vntwo --no-pci \
            -- --vhost "a=$DATA/a.sock" --vhost "b=$DATA/b.sock" --pair a,b
        if ! wait_ready "$DATA/a.sock" "$DATA/b.sock"; then
            fail two-guests-ping "vhost-user-net made no sockets: $(backend_tail two-backend)"
        else
            vm_conf ga 1 "guest.test=vnet guest.expect_mac=52:54:00:00:03:01 guest.ip=10.0.3.1/24 guest.peer=10.0.3.2 guest.ping_wait=90 guest.linger=20" \
                "socket = $DATA/a.sock
mac = 52:54:00:00:03:01"
            vm_conf gb 1 "guest.test=vnet guest.expect_mac=52:54:00:00:03:02 guest.ip=10.0.3.2/24 guest.peer=10.0.3.1 guest.ping_wait=90 guest.linger=20" \
                "socket = $DATA/b.sock
mac = 52:54:00:00:03:02"
            vm_start ga
            vm_start gb
            vm_wait ga
            rca=$rc
            vm_wait gb
            if grep -q '^GUEST-TEST vnet: PASS' "$WORK/ga/console.log" 2>/dev/null &&
                grep -q '^GUEST-TEST vnet: PASS' "$WORK/gb/console.log" 2>/dev/null && ((rca == 0 && rc == 0)); then
                pass two-guests-ping
            else
                fail two-guests-ping "guest a: $(guest_reason ga vnet); guest b: $(guest_reason gb vnet)" ga
            fi
        fi
        backend_stop
    fi
fi
finish
