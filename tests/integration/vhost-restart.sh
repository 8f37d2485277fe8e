#!/bin/bash
# vhost-restart.sh: the vhost-user backend dies under I/O and comes back, and
# the guest never notices. build/vhost-user-blk is started here (not by the
# VMM) on a fresh 64 MiB image; a 512 MiB guest runs the blkverify guest test
# on /dev/vda (write 8 x 4 MiB of fresh random data with O_DIRECT, read each
# back and compare sha256s, over and over for guest.verify_secs). About 3 s
# and 8 s into the workload the backend gets SIGKILL and is started again
# ~0.5 s later; the VMM reconnects, hands the kept inflight region to the
# new backend (which resubmits what was in flight) and replays the rings.
# The backend holds finished requests 200 ms before publishing them
# (--publish-delay-us), so the kills find requests in flight, some of them
# done but not yet in the used ring: the case that loses requests when the
# inflight log is cleared too early.
# PASS when the guest's every checksum matched, the VMM logged both
# reconnections and exited 0.
# A second, shorter VM has the VMM start the backend itself ([virtio]
# backend =, file =): it is killed once and the VMM must start it again and
# reconnect. Needs /dev/kvm: l1-suite.sh runs it in L1.
# Ends with "N passed, M failed"; about 60 s in L1.
#
# RESTART_TIMEOUT  seconds for the VM (default 120)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=$ROOT/build/vmm
BACKEND=$ROOT/build/vhost-user-blk
KERNEL=$ROOT/build/kernel/vmlinuz
INITRD=$ROOT/build/guest/initramfs.cpio.gz
TIMEOUT=${RESTART_TIMEOUT:-120}
KILLS="3 5"        # seconds before each SIGKILL: at ~3 s and ~8 s into the workload

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
early_exit() { echo "FAIL vhost-restart: $1"; echo "0 passed, 1 failed"; exit 1; }

for f in "$VMM" "$BACKEND"; do [[ -x $f ]] || early_exit "no binary at $f (run 'make')"; done
for f in "$KERNEL" "$INITRD"; do [[ -e $f ]] || early_exit "missing $f (run 'make deps')"; done
zcat "$INITRD" | cpio -t --quiet 2>/dev/null | grep -q '^tests/blkverify.sh$' ||
    early_exit "$INITRD has no tests/blkverify.sh (rebuild it: tests/guest/mkinitramfs)"

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/vhost-restart.XXXXXX")   # logs, kept on failure
DATA=$(mktemp -d /tmp/vhost-restart.XXXXXX)                        # image and socket
SOCK=$DATA/vda.sock
BPID=
VPID=
cleanup() {
    if [[ -n $BPID ]]; then kill -9 "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; fi
    if [[ -n $VPID ]]; then kill -9 "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

# start_backend: a new backend process on the same image and socket.
start_backend() {
    rm -f "$SOCK"
    "$BACKEND" --socket "$SOCK" --file "$DATA/disk.img" --poll-us 0 --publish-delay-us 200000 >>"$WORK/backend.log" 2>&1 &
    BPID=$!
    for _ in $(seq 50); do [[ -S $SOCK ]] && return 0; sleep 0.1; done
    return 1
}

truncate -s 64M "$DATA/disk.img"
start_backend || early_exit "the backend did not create $SOCK"

# run_vm NAME VERIFY_SECS VIRTIO_KEYS: start the VM in the background (VPID).
run_vm() {
    local d=$WORK/$1
    mkdir -p "$d/devices"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $1
memory  = 512M
vcpus   = 1
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet guest.test=blkverify guest.disk=/dev/vda guest.verify_secs=$2 guest.exit=poweroff
devices = devices/*.conf
debug-exit = on
CONF
    printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
        "$d/console.log" >"$d/devices/console.conf"
    printf '[device]\nid = vda\nclass = block\npath = virtio\n\n[virtio]\n%s\n' "$3" >"$d/devices/vda.conf"
    timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" </dev/null >"$d/stdout" 2>"$d/stderr" &
    VPID=$!
}

# wait_workload NAME: until the guest prints GUEST-VERIFY-START (started=1).
wait_workload() {
    started=0
    for _ in $(seq $((TIMEOUT * 10))); do
        grep -q GUEST-VERIFY-START "$WORK/$1/console.log" 2>/dev/null && { started=1; return; }
        kill -0 "$VPID" 2>/dev/null || return 0
        sleep 0.1
    done
}

# verdict NAME WANT_KILLS BACKEND_LOG: PASS/FAIL lines for one VM after it ended.
verdict() {
    local name=$1 want=$2 d=$WORK/$1 blog=$3 con reconnects resubmitted r
    set +e
    wait "$VPID"
    rc=$?
    set -e
    VPID=
    con=$(tr -d '\r' <"$d/console.log" 2>/dev/null || true)
    reconnects=$(grep -c 'reconnected to' "$d/stderr" || true)
    resubmitted=$(grep -c 'left in flight' "$blog" 2>/dev/null || true)
    echo "--- $name: vmm exit status $rc; backend killed $kills times; VMM reconnected $reconnects times;" \
        "backends resubmitted in-flight requests $resubmitted times"
    echo "$con" | grep '^guest: blkverify' | tail -n 2 | sed 's/^/    /' || true
    if ((!started)); then
        fail $name-workload "the guest never started the verify workload"
    elif ((kills < want)); then
        fail $name-kills "the VM ended before the backend was killed $want times ($kills)"
    else
        pass $name-kills
    fi
    if echo "$con" | grep -q '^GUEST-TEST blkverify: PASS' && ((rc == 0)); then
        pass $name-checksums
    else
        r=$(echo "$con" | grep '^guest: blkverify: ' | tail -n1 || true)
        ((rc == 124)) && r="timed out after ${TIMEOUT}s; $r"
        fail $name-checksums "${r:-no verdict from the guest} (vmm status $rc, expected 0)"
    fi
    if ((reconnects >= kills && kills > 0)); then
        pass $name-reconnect
    else
        fail $name-reconnect "the VMM logged $reconnects reconnections for $kills kills"
    fi
    if ((failed)); then
        echo "--- $name: vmm stderr (tail)"; tail -n 20 "$d/stderr"
        echo "--- backend log (tail)"; tail -n 20 "$blog"
        echo "--- $name: guest console (tail)"; echo "$con" | tail -n 25
    fi
}

# VM 1: a backend started here, killed and started again twice.
run_vm external 12 "socket = $SOCK"
wait_workload external
kills=0
if ((started)); then
    for wait_s in $KILLS; do
        sleep "$wait_s"
        kill -0 "$VPID" 2>/dev/null || break
        echo "--- external: SIGKILL backend $BPID at $(date +%T.%N | cut -c1-12)"
        kill -9 "$BPID"
        wait "$BPID" 2>/dev/null || true
        BPID=
        sleep 0.5
        start_backend || { fail backend-restart "the restarted backend did not create $SOCK"; break; }
        kills=$((kills + 1))
    done
fi
verdict external 2 "$WORK/backend.log"
grep 'left in flight' "$WORK/backend.log" | sed 's/^/    backend: /' || true
kill -9 "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null || true
BPID=

# VM 2: the VMM's own backend, killed once; the VMM starts it again.
OWN_SOCK=$DATA/own.sock
run_vm own 6 "socket = $OWN_SOCK
backend = $BACKEND
file = $DATA/disk.img"
wait_workload own
kills=0
if ((started)); then
    sleep 3
    pid=$(pgrep -f -- "--socket $OWN_SOCK" | head -n1 || true)
    if [[ -n $pid ]]; then
        echo "--- own: SIGKILL the VMM's backend $pid"
        kill -9 "$pid"
        kills=1
    fi
fi
verdict own 1 "$WORK/own/stderr"
grep 'starting it again' "$WORK/own/stderr" | sed 's/^/    vmm: /' || true

if ((failed)); then echo "vhost-restart: logs kept in $WORK"; else rm -rf "$WORK"; fi
echo "$passed passed, $failed failed"
exit $((failed > 0))
