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
# reconnections and exited 0. Needs /dev/kvm: l1-suite.sh runs it in L1.
# Ends with "N passed, M failed"; about 30-60 s.
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

mkdir -p "$WORK/devices"
cat >"$WORK/vm.conf" <<CONF
[vm]
name    = vhost-restart
memory  = 512M
vcpus   = 1
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet guest.test=blkverify guest.disk=/dev/vda guest.verify_secs=12 guest.exit=poweroff
devices = devices/*.conf
debug-exit = on
CONF
printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
    "$WORK/console.log" >"$WORK/devices/console.conf"
printf '[device]\nid = vda\nclass = block\npath = virtio\n\n[virtio]\nsocket = %s\n' "$SOCK" \
    >"$WORK/devices/vda.conf"

timeout -k 5 "$TIMEOUT" "$VMM" run "$WORK/vm.conf" </dev/null >"$WORK/stdout" 2>"$WORK/stderr" &
VPID=$!

# Wait for the guest's workload, then kill and restart the backend twice.
started=0
for _ in $(seq $((TIMEOUT * 10))); do
    grep -q GUEST-VERIFY-START "$WORK/console.log" 2>/dev/null && { started=1; break; }
    kill -0 "$VPID" 2>/dev/null || break
    sleep 0.1
done
kills=0
if ((started)); then
    for wait_s in $KILLS; do
        sleep "$wait_s"
        kill -0 "$VPID" 2>/dev/null || break
        echo "--- SIGKILL backend $BPID at $(date +%T.%N | cut -c1-12)"
        kill -9 "$BPID"
        wait "$BPID" 2>/dev/null || true
        BPID=
        sleep 0.5
        start_backend || { fail backend-restart "the restarted backend did not create $SOCK"; break; }
        kills=$((kills + 1))
    done
fi
set +e
wait "$VPID"
rc=$?
set -e
VPID=

con=$(tr -d '\r' <"$WORK/console.log" 2>/dev/null || true)
reconnects=$(grep -c 'reconnected to' "$WORK/stderr" || true)
resubmitted=$(grep -c 'left in flight' "$WORK/backend.log" || true)
echo "    vmm exit status $rc; backend killed $kills times; VMM reconnected $reconnects times;" \
    "restarted backends resubmitted in-flight requests $resubmitted times"
grep -v 'frontend connected\|frontend gone' "$WORK/backend.log" | sed 's/^/    backend: /' || true
echo "$con" | grep '^guest: blkverify' | tail -n 3 | sed 's/^/    /' || true

if ((!started)); then
    fail vhost-restart-workload "the guest never started the verify workload"
elif ((kills < 2)); then
    fail vhost-restart-kills "the VM ended before the backend was killed twice ($kills)"
else
    pass vhost-restart-kills
fi
if echo "$con" | grep -q '^GUEST-TEST blkverify: PASS' && ((rc == 0)); then
    pass vhost-restart-checksums
else
    r=$(echo "$con" | grep '^guest: blkverify: ' | tail -n1 || true)
    ((rc == 124)) && r="timed out after ${TIMEOUT}s; $r"
    fail vhost-restart-checksums "${r:-no verdict from the guest} (vmm status $rc, expected 0)"
fi
if ((reconnects >= kills && kills > 0)); then
    pass vhost-restart-reconnect
else
    fail vhost-restart-reconnect "the VMM logged $reconnects reconnections for $kills kills"
fi

if ((failed)); then
    echo "--- vmm stderr (tail)"; tail -n 20 "$WORK/stderr"
    echo "--- backend log (tail)"; tail -n 20 "$WORK/backend.log"
    echo "--- guest console (tail)"; echo "$con" | tail -n 25
    echo "vhost-restart: logs kept in $WORK"
else
    rm -rf "$WORK"
fi
echo "$passed passed, $failed failed"
exit $((failed > 0))
