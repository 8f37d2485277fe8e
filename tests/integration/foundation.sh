#!/bin/bash
# Foundation scenarios: real Linux guests booted by our VMM. Needs a working
# /dev/kvm, so tests/run-integration runs it through tests/kvm-run (inside L1
# on machines without KVM). Each scenario writes its VM and console config
# under a temporary folder in build/, runs `vmm run VM.conf --stats FILE`
# with a timeout, and prints PASS/FAIL with the reason. Ends with
# "N passed, M failed"; exits non-zero on any failure.
#
# FOUNDATION_VMM      the VMM binary (default build/vmm)
# FOUNDATION_TIMEOUT  seconds per scenario (default 120)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=${FOUNDATION_VMM:-$ROOT/build/vmm}
TIMEOUT=${FOUNDATION_TIMEOUT:-120}
KERNEL=$ROOT/build/kernel/vmlinuz
VMLINUX=$ROOT/build/kernel/vmlinux
INITRD=$ROOT/build/guest/initramfs.cpio.gz

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/foundation.XXXXXX")
passed=0
failed=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
    local name=$1 d=$WORK/$1; shift
    echo "FAIL $name: $*"
    failed=$((failed + 1))
    # Enough context to see why without digging: the VMM's stderr and the
    # end of the guest console. Everything stays in $d.
    if [[ -s $d/stderr ]]; then echo "  --- vmm stderr (tail):"; tail -n 15 "$d/stderr" | sed 's/^/  | /'; fi
    if [[ -s $d/console.log ]]; then echo "  --- guest console (tail):"; tail -n 15 "$d/console.log" | sed 's/^/  | /'; fi
}

# vm NAME VCPUS MEMORY CMDLINE_EXTRA: run one VM to its end. Leaves
# $WORK/NAME/{vm.conf,console.log,stdout,stderr,stats.json} and sets $rc.
# $VM_EXTRA, if set, is appended to the [vm] section; $VM_KERNEL replaces the
# bzImage.
vm() {
    local name=$1 vcpus=$2 mem=$3 extra=$4 d=$WORK/$1
    mkdir -p "$d/devices"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $name
memory  = $mem
vcpus   = $vcpus
kernel  = ${VM_KERNEL:-$KERNEL}
initrd  = $INITRD
cmdline = console=ttyS0 quiet $extra
devices = devices/*.conf
debug-exit = ${DEBUG_EXIT:-on}
${VM_EXTRA:-}
CONF
    cat >"$d/devices/console.conf" <<CONF
[device]
id    = console0
class = console
path  = emulated

[emulated]
model  = 16550
output = $d/console.log
CONF
    echo "--- $name: ${vcpus} vCPU, $mem, '$extra'"
    local t0=$SECONDS
    set +e
    timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" --stats "$d/stats.json" \
        </dev/null >"$d/stdout" 2>"$d/stderr"
    rc=$?
    set -e
    echo "    exit status $rc after $((SECONDS - t0))s"
}

# Common verdict: the VM ended by itself with status want_rc, the guest
# reached init, every guest test named in $tests passed and, if given, the
# stats file names the stop reason want_stop.
verdict() {
    local name=$1 want_rc=$2 tests=$3 want_stop=${4:-} d=$WORK/$1 t stop
    if ((rc == 124)); then fail "$name" "timed out after ${TIMEOUT}s"; return; fi
    if ! grep -q '^GUEST-INIT-REACHED' "$d/console.log" 2>/dev/null; then
        fail "$name" "no GUEST-INIT-REACHED on the console (vmm status $rc)"; return
    fi
    for t in ${tests//,/ }; do
        if ! grep -q "^GUEST-TEST $t: PASS" "$d/console.log"; then
            fail "$name" "guest test $t did not pass"; return
        fi
    done
    if ((rc != want_rc)); then fail "$name" "vmm exited with $rc, expected $want_rc"; return; fi
    if [[ -n $want_stop ]]; then
        stop=$(stop_reason "$d/stats.json")
        if [[ $stop != "$want_stop" ]]; then
            fail "$name" "stop reason '$stop' in stats.json, expected '$want_stop'"; return
        fi
    fi
    pass "$name"
}

stop_reason() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vm"]["stop_reason"])' "$1" 2>/dev/null ||
        echo "(no stats)"
}

if [[ ! -x $VMM ]]; then
    echo "FAIL foundation: no VMM binary at $VMM (run 'make')"
    echo "0 passed, 1 failed"
    exit 1
fi
for f in "$KERNEL" "$VMLINUX" "$INITRD"; do
    [[ -e $f ]] || { echo "FAIL foundation: missing $f (run 'make deps')"; echo "0 passed, 1 failed"; exit 1; }
done

# Boot to init with one vCPU; the guest reports 0 through the debug-exit port.
vm boot-1cpu 1 256M "guest.test=boot"
verdict boot-1cpu 0 boot debug-exit

# The stats file of that run: valid JSON with the KVM exit count.
if [[ ! -s $WORK/boot-1cpu/stats.json ]]; then
    fail stats "no stats file written (--stats $WORK/boot-1cpu/stats.json)"
elif ! python3 -m json.tool "$WORK/boot-1cpu/stats.json" >/dev/null 2>"$WORK/boot-1cpu/json.err"; then
    fail stats "stats.json does not parse: $(head -n1 "$WORK/boot-1cpu/json.err")"
elif ! python3 - "$WORK/boot-1cpu/stats.json" <<'PY'
import json, sys
def find(o):
    if isinstance(o, dict):
        return any((k == "exits" and isinstance(v, (int, dict))) or find(v) for k, v in o.items())
    if isinstance(o, list):
        return any(find(v) for v in o)
    return False
sys.exit(0 if find(json.load(open(sys.argv[1]))) else 1)
PY
then
    fail stats "stats.json has no \"exits\" counter"
else
    pass stats
fi

vm cpus-2 2 256M "guest.test=cpus guest.expect_cpus=2"
verdict cpus-2 0 cpus

# The same kernel uncompressed, through its PVH entry point.
VM_KERNEL=$VMLINUX vm pvh-2cpu 2 256M "guest.test=cpus,mem guest.expect_cpus=2 guest.expect_mem_mib=256"
verdict pvh-2cpu 0 cpus,mem debug-exit

vm mem-256M 1 256M "guest.test=mem guest.expect_mem_mib=256"
verdict mem-256M 0 mem

vm mem-1G 1 1G "guest.test=mem guest.expect_mem_mib=1024"
verdict mem-1G 0 mem

# Guest RAM on hugetlbfs pages (kvm-run reserves 2 MiB pages in L1).
VM_EXTRA="hugepages = 2M" vm hugepages-2M 2 128M "guest.test=mem,cpus guest.expect_mem_mib=128 guest.expect_cpus=2"
verdict hugepages-2M 0 mem,cpus

# The guest powers off (ACPI/keyboard-controller/triple-fault path, not the
# debug port): a clean shutdown is exit status 0.
vm poweroff 1 256M "guest.test=boot guest.exit=poweroff"
verdict poweroff 0 boot poweroff

# The guest reboots (ACPI reset register): the VMM does not restart it, it
# ends cleanly with status 0.
vm reboot 1 256M "guest.test=boot guest.exit=reboot"
verdict reboot 0 boot reboot

# Without debug-exit = on the port is not there: the guest's write to it
# changes nothing, and its init falls back to powering off.
DEBUG_EXIT=off vm no-debug-exit 1 256M "guest.test=boot"
verdict no-debug-exit 0 boot poweroff

# A failing guest test reaches the VMM's exit status through the debug port.
vm guest-failure 1 256M "guest.test=boot,nosuchtest"
if ((rc == 1)) && [[ $(stop_reason "$WORK/guest-failure/stats.json") == debug-exit ]]; then
    pass guest-failure
else
    fail guest-failure "vmm exited $rc ($(stop_reason "$WORK/guest-failure/stats.json")), expected 1 via debug-exit"
fi

# A real kernel panic (sysrq-c): the VMM must notice it, exit with status 3
# and say so; once through the guest's pvpanic driver, once with no modules,
# where only the console shows it.
for how in pvpanic console; do
    name=panic-$how
    extra="guest.test=panic"
    [[ $how == console ]] && extra+=" guest.nomodules"
    vm "$name" 1 256M "$extra"
    d=$WORK/$name
    if ((rc == 124)); then
        fail "$name" "timed out after ${TIMEOUT}s: the VMM did not notice the guest's panic"
    elif ! grep -q 'Kernel panic - not syncing' "$d/console.log" 2>/dev/null; then
        fail "$name" "the guest did not panic (vmm status $rc)"
    elif ((rc != 3)); then
        fail "$name" "vmm exited $rc after a guest panic, expected 3"
    elif ! grep -q "panic.*($how" "$d/stderr"; then
        fail "$name" "vmm stderr does not say it saw the panic through $how"
    else
        pass "$name"
    fi
done

if ((failed == 0)); then
    rm -rf "$WORK"
else
    echo "foundation: logs kept in $WORK"
fi
echo "$passed passed, $failed failed"
((failed == 0))
