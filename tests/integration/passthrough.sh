#!/bin/bash
# Passthrough-path scenarios: host PCI functions assigned to a Linux guest
# through VFIO behind L1's (emulated) VT-d, driven by the guest's own drivers.
# Runs inside an L1 that tests/kvm-run built for it:
#
#     KVM_RUN_PASSTHROUGH=1 tests/kvm-run tests/integration/passthrough.sh
#
# (L1 then has intel_iommu=on, an SR-IOV NVMe PF with a shared namespace of
# PASSTHROUGH_DISK_MIB, and two e1000e functions of one slot on QEMU user
# networking; see tests/kvm-run.) Needs root (sysfs binds).
#
# Scenarios, in order:
#   refused before boot, each with its cause in the VMM's message and no
#   guest started: a bad address (absent, malformed), no IOMMU (simulated:
#   IOVMM_SYSFS_ROOT points the VMM at an empty sysfs), a device still bound
#   to its host driver, a group that is not viable (the NIC's other function
#   keeps e1000e; its address must be named), a VF index past TotalVFs;
#   nic: the e1000e (function 0, the group's other function on vfio-pci too)
#   assigned whole; the guest's e1000e gets link and pings QEMU's gateway
#   10.0.2.2 (tests/guest/tests/ptnet.sh); meanwhile a second VMM asking
#   for the same device is refused (in use); nic-intx: the same with the
#   guest on legacy INTx (pci=nomsi); nic-hostile: the guest writes random
#   values to the assigned NIC's config space and MSI-X table (the VMM
#   stays up), and the next VM's e1000e pings (the VMM's reset cleared the
#   function);
#   vf: a device file with pf = PF, vf = 0: the VMM creates the VF,
#   provisions it (NVMe virtualization management) and binds it to vfio-pci;
#   the guest's nvme driver writes 64 MiB, flushes, drops caches and reads
#   back the same sha256 (tests/guest/tests/disk.sh), then blkbench reads
#   PASSTHROUGH_BENCH_COUNT random 4 KiB blocks at queue depth 32: VM exits
#   during it (KVM's counters in debugfs) per I/O, all of them and those that
#   reached the VMM (PIO + MMIO), the latter under 0.05;
#   vf-released / vf-again: after the VM, the VF is gone from vfio-pci and the
#   same device file assigns it again (disk test again), this time with the
#   e1000e in the same VM (two-devices-one-vm: one container, two groups),
#   and blkbench at QD1 (exits per I/O shown, not judged);
#   switch-*: one disk file switched emulated -> virtio -> passthrough ->
#   emulated on the PF's namespace, data checked chunk by chunk across the
#   boots and against the media (guest test blkdigest).
# Prints PASS/FAIL per scenario, ends with "N passed, M failed", exits
# non-zero on any failure.
#
# PASSTHROUGH_VMM          the VMM binary (default build/vmm)
# PASSTHROUGH_TIMEOUT      seconds per VM (default 480)
# PASSTHROUGH_DISK_MIB     the namespace size kvm-run gave (default 256)
# PASSTHROUGH_BENCH_COUNT  I/Os of the QD32 phase (default 8192)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMM=${PASSTHROUGH_VMM:-$ROOT/build/vmm}
TIMEOUT=${PASSTHROUGH_TIMEOUT:-480}
DISK_MIB=${PASSTHROUGH_DISK_MIB:-${KVM_RUN_PT_DISK_MIB:-256}}
BENCH_COUNT=${PASSTHROUGH_BENCH_COUNT:-8192}
KERNEL=$ROOT/build/kernel/vmlinuz
INITRD=$ROOT/build/guest/initramfs.cpio.gz
USERSPACE_EXITS_PER_IO_MAX=0.05

SUITE=passthrough
source "$ROOT/tests/integration/suite-lib.sh"

early_exit() { echo "FAIL passthrough: $*"; echo "0 passed, 1 failed"; exit 1; }
[[ -x $VMM ]] || early_exit "no VMM binary at $VMM (run 'make')"
for f in "$KERNEL" "$INITRD"; do [[ -e $f ]] || early_exit "missing $f (run 'make deps')"; done
[[ -c /dev/kvm ]] || early_exit "no /dev/kvm: run me as KVM_RUN_PASSTHROUGH=1 tests/kvm-run $0"
[[ -d /sys/class/iommu/dmar0 ]] ||
    early_exit "no VT-d in this machine (/sys/class/iommu: $(ls /sys/class/iommu 2>/dev/null | tr '\n' ' ')): run me as KVM_RUN_PASSTHROUGH=1 tests/kvm-run $0"

mkdir -p "$ROOT/build/integration"
WORK=$(mktemp -d "$ROOT/build/integration/passthrough.XXXXXX")
declare -a BG_PIDS=()
cleanup() { local p; for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
truncate -s 16M "$WORK/unused.img"   # the [emulated] sections' file (not used)

# --- L1's modules: Debian's, from the unpacked kernel (L0's /lib/modules is
# another kernel's). A fixed table: a find over the whole tree through 9p
# takes minutes under TCG.
KMOD=$ROOT/build/kernel/root/lib/modules/$(uname -r)/kernel
declare -A MODPATH=(
    [irqbypass]=virt/lib/irqbypass.ko [vfio]=drivers/vfio/vfio.ko
    [vfio_virqfd]=drivers/vfio/vfio_virqfd.ko [vfio_iommu_type1]=drivers/vfio/vfio_iommu_type1.ko
    [vfio_pci_core]=drivers/vfio/pci/vfio-pci-core.ko [vfio_pci]=drivers/vfio/pci/vfio-pci.ko
    [crct10dif_common]=crypto/crct10dif_common.ko [crct10dif_generic]=crypto/crct10dif_generic.ko
    [crc_t10dif]=lib/crc-t10dif.ko [crc64]=lib/crc64.ko
    [crc64_rocksoft_generic]=crypto/crc64_rocksoft_generic.ko [crc64_rocksoft]=lib/crc64-rocksoft.ko
    [t10_pi]=block/t10-pi.ko [nvme_core]=drivers/nvme/host/nvme-core.ko
    [nvme]=drivers/nvme/host/nvme.ko [e1000e]=drivers/net/ethernet/intel/e1000e/e1000e.ko
)
# mod_load NAME [PARAM=VALUE...]: NAME after its dependencies.
mod_load() {
    local name=${1//-/_} dep
    shift
    [[ -d /sys/module/$name ]] && return 0
    [[ -n ${MODPATH[$name]:-} ]] || { echo "no module path known for $name"; return 1; }
    for dep in $(modinfo -F depends "$KMOD/${MODPATH[$name]}" | tr ',' ' '); do
        mod_load "$dep" || return 1
    done
    insmod "$KMOD/${MODPATH[$name]}" "$@" 2>&1 || [[ -d /sys/module/$name ]]
}
t0=$SECONDS
# The checksum drivers first: t10-pi and crc64-rocksoft look them up by name
# and nothing could load them on demand here.
for m in crct10dif_generic crc64_rocksoft_generic nvme e1000e "vfio_iommu_type1 allow_unsafe_interrupts=1" vfio_pci; do
    # shellcheck disable=SC2086
    out=$(mod_load $m) || early_exit "loading $m: $out"
done
echo "--- L1: modules loaded in $((SECONDS - t0))s; IOMMU $(ls /sys/class/iommu | tr '\n' ' ')"

# --- the devices kvm-run gave L1 ----------------------------------------------
PF= NIC0= NIC1=
for d in /sys/bus/pci/devices/*; do
    b=${d##*/}
    if [[ -e $d/sriov_totalvfs && $(cat "$d/class") == 0x010802 ]]; then PF=$b; fi
    if [[ $(cat "$d/vendor") == 0x8086 && $(cat "$d/device") == 0x10d3 ]]; then
        case $b in *.0) NIC0=$b ;; *.1) NIC1=$b ;; esac
    fi
done
[[ -n $PF && -n $NIC0 && -n $NIC1 ]] ||
    early_exit "missing devices: SR-IOV NVMe PF '$PF', e1000e functions '$NIC0' '$NIC1' (is this the L1 of KVM_RUN_PASSTHROUGH=1?)"
group_of() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }
driver_of() { local l; l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) && basename "$l" || echo none; }
echo "--- PF $PF (group $(group_of "$PF"), $(driver_of "$PF"), TotalVFs $(cat "/sys/bus/pci/devices/$PF/sriov_totalvfs"));" \
    "NIC $NIC0 + $NIC1 (groups $(group_of "$NIC0"), $(group_of "$NIC1"), $(driver_of "$NIC0"))"
TOTALVFS=$(cat "/sys/bus/pci/devices/$PF/sriov_totalvfs")

# bind_vfio BDF: onto vfio-pci, whatever had it.
bind_vfio() {
    local d=/sys/bus/pci/devices/$1
    echo vfio-pci >"$d/driver_override"
    [[ -e $d/driver ]] && echo "$1" >"$d/driver/unbind"
    echo "$1" >/sys/bus/pci/drivers_probe
    [[ $(driver_of "$1") == vfio-pci ]]
}

# --- VMs ------------------------------------------------------------------------
# vm_conf NAME VCPUS MEMORY CMDLINE_EXTRA: the VM file and its console.
vm_conf() {
    local d=$WORK/$1
    mkdir -p "$d/devices"
    cat >"$d/vm.conf" <<CONF
[vm]
name    = $1
memory  = $3
vcpus   = $2
kernel  = $KERNEL
initrd  = $INITRD
cmdline = console=ttyS0 quiet $4
devices = devices/*.conf
debug-exit = on
CONF
    printf '[device]\nid = console0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput = %s\n' \
        "$d/console.log" >"$d/devices/console.conf"
}

# vm_pt NAME ID CLASS KEY=VALUE...: a passthrough device file; the same file
# keeps an [emulated] section, as a switch of path would.
vm_pt() {
    local f=$WORK/$1/devices/$2.conf kv
    {
        printf '[device]\nid = %s\nclass = %s\npath = passthrough\n\n[passthrough]\n' "$2" "$3"
        for kv in "${@:4}"; do echo "${kv%%=*} = ${kv#*=}"; done
        if [[ $3 == block ]]; then
            printf '\n[emulated]\nmodel = nvme\nfile = %s\n' "$WORK/unused.img"
        fi
    } >"$f"
}

# vm_start NAME: in the background; sets VM_PID.
vm_start() {
    local d=$WORK/$1
    rm -f "$d/console.log" "$d/stats.json"
    VM_T0=$SECONDS
    timeout -k 5 "$TIMEOUT" "$VMM" run "$d/vm.conf" --stats "$d/stats.json" \
        </dev/null >"$d/stdout" 2>"$d/stderr" &
    VM_PID=$!
    BG_PIDS+=("$VM_PID")
}

vm_wait() {
    set +e
    wait "$VM_PID"
    rc=$?
    set -e
    echo "    $1: exit status $rc after $((SECONDS - VM_T0))s"
}

# console_wait NAME PATTERN SECONDS
console_wait() {
    local f=$WORK/$1/console.log end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        grep -q "^$2" "$f" 2>/dev/null && return 0
        kill -0 "$VM_PID" 2>/dev/null || { grep -q "^$2" "$f" 2>/dev/null; return; }
        sleep 0.2
    done
    return 1
}

# refused NAME SCENARIO PATTERN [ENV...]: the VMM must exit non-zero before
# any guest code runs, saying PATTERN.
refused() {
    local name=$1 scen=$2 pattern=$3 d=$WORK/$1
    shift 3
    set +e
    env "$@" timeout -k 5 60 "$VMM" run "$d/vm.conf" </dev/null >"$d/stdout" 2>"$d/stderr"
    rc=$?
    set -e
    echo "    $name: $(grep -v '^$' "$d/stderr" | head -n 1)"
    if ((rc == 0)); then fail "$scen" "the VMM exited 0" "$name"
    elif grep -q GUEST-INIT-REACHED "$d/console.log" 2>/dev/null; then fail "$scen" "the guest booted" "$name"
    elif ! grep -qF -- "$pattern" "$d/stderr"; then fail "$scen" "no '$pattern' in the VMM's message" "$name"
    else pass "$scen"
    fi
}

# kvm_counter FIELD: the running VM's counter from debugfs (one VM at a time here).
kvm_counter() {
    local dirs=(/sys/kernel/debug/kvm/[0-9]*-[0-9]*)
    cat "${dirs[0]}/$1" 2>/dev/null || echo 0
}

# bench_counters NAME: KVM's counters (all exits, PIO, MMIO) at the guest's
# GUEST-BENCH-START and GUEST-BENCH-END into e0 and e1 (empty if missed).
bench_counters() {
    e0= e1=
    if console_wait "$1" GUEST-BENCH-START 360; then
        e0="$(kvm_counter exits) $(kvm_counter io_exits) $(kvm_counter mmio_exits)"
        if console_wait "$1" GUEST-BENCH-END 300; then
            e1="$(kvm_counter exits) $(kvm_counter io_exits) $(kvm_counter mmio_exits)"
        fi
    fi
}

# bench_line LABEL: prints the exits per I/O between e0 and e1, all of
# them and those that reached the VMM; sets BENCH_USER to the latter.
bench_line() {
    local a0 i0 m0 a1 i1 m1 line
    read -r a0 i0 m0 <<<"$e0"
    read -r a1 i1 m1 <<<"$e1"
    line=$(awk -v n="$BENCH_COUNT" -v a=$((a1 - a0)) -v u=$((i1 - i0 + m1 - m0)) 'BEGIN {
        printf "%.3f %.4f", a / n, u / n }')
    BENCH_USER=${line#* }
    echo "    telemetry $1: $BENCH_COUNT random 4 KiB reads; $((a1 - a0)) VM exits (${line% *} per I/O), $((i1 - i0)) PIO + $((m1 - m0)) MMIO exits to the VMM ($BENCH_USER per I/O)"
}

# --- refusals before boot -----------------------------------------------------
vm_conf bad-bdf 1 256M "guest.exit=poweroff"
vm_pt bad-bdf disk0 block bdf=0000:3f:1f.7
refused bad-bdf refuse-missing-device "no PCI device 0000:3f:1f.7"

vm_conf bad-syntax 1 256M "guest.exit=poweroff"
vm_pt bad-syntax disk0 block bdf=01:00
refused bad-syntax refuse-malformed-bdf "'01:00' is not a PCI address"

# No IOMMU, simulated: the VMM reads sysfs under IOVMM_SYSFS_ROOT, here empty.
mkdir -p "$WORK/no-iommu-root/sys"
vm_conf no-iommu 1 256M "guest.exit=poweroff"
vm_pt no-iommu nic0 net "bdf=$NIC0"
refused no-iommu refuse-no-iommu "no IOMMU in use on this host" "IOVMM_SYSFS_ROOT=$WORK/no-iommu-root"

vm_conf host-driver 1 256M "guest.exit=poweroff"
vm_pt host-driver nic0 net "bdf=$NIC0"
refused host-driver refuse-host-driver "$NIC0 is bound to e1000e, not vfio-pci"

# Function 0 on vfio-pci, function 1 still on e1000e: same group, not viable.
if bind_vfio "$NIC0"; then
    refused host-driver refuse-group-not-viable "$NIC1 (bound to e1000e)"
else
    fail refuse-group-not-viable "cannot bind $NIC0 to vfio-pci (driver: $(driver_of "$NIC0"))"
fi

vm_conf vf-range 1 256M "guest.exit=poweroff"
vm_pt vf-range disk0 block "pf=$PF" "vf=$TOTALVFS"
refused vf-range refuse-vf-out-of-range "VF index $TOTALVFS is out of range"

# --- nic: whole-device assignment of the e1000e ---------------------------------
if ! bind_vfio "$NIC1"; then
    fail nic-ping-gateway "cannot bind $NIC1 to vfio-pci (driver: $(driver_of "$NIC1"))"
else
    vm_conf nic 1 256M "guest.test=ptnet guest.peer=10.0.2.2 guest.exit=poweroff"
    vm_pt nic nic0 net "bdf=$NIC0"
    vm_start nic
    # While it runs, a second VM wants the same device.
    vm_conf busy 1 256M "guest.exit=poweroff"
    vm_pt busy nic0 net "bdf=$NIC0"
    if console_wait nic GUEST-INIT-REACHED 240; then
        refused busy refuse-in-use "in use by another VM"
    else
        fail refuse-in-use "the first VM never reached its init" nic
    fi
    vm_wait nic
    if ((rc == 124)); then fail nic-ping-gateway "timed out after ${TIMEOUT}s" nic
    elif ((rc != 0)); then fail nic-ping-gateway "vmm exited $rc, expected 0: $(guest_reason nic ptnet)" nic
    else scenario_from_guest nic nic-ping-gateway ptnet
    fi
    tr -d '\r' <"$WORK/nic/console.log" | grep '^guest: ptnet' | sed 's/^/    /' || true

    # The same NIC on legacy INTx (the guest told not to use MSI): VFIO's
    # INTx eventfd on a level irqfd, re-armed through the resample eventfd.
    vm_conf nic-intx 1 256M "pci=nomsi guest.test=ptnet guest.peer=10.0.2.2 guest.exit=poweroff"
    vm_pt nic-intx nic0 net "bdf=$NIC0"
    vm_start nic-intx
    vm_wait nic-intx
    if ((rc != 0)); then fail nic-intx-ping-gateway "vmm exited $rc, expected 0: $(guest_reason nic-intx ptnet)" nic-intx
    else scenario_from_guest nic-intx nic-intx-ping-gateway ptnet
    fi

    # A hostile guest on the assigned NIC: random values at random offsets of
    # what the VMM mediates, its config space (our permission table) and its
    # MSI-X table BAR (our trap), with its driver unbound (regfuzz
    # msix-only). Not the function's own registers: those reach the device,
    # and some of what they hold outlives any reset (QEMU's e1000e took
    # EEPROM writes from the noise, and its NVM checksum stayed broken for
    # every later VM). The VMM must stay up and end cleanly, and the next VM
    # must get a working NIC: the bus reset at release clears the function
    # (the PM reset VFIO_DEVICE_RESET falls back to without FLR did not).
    seed=$RANDOM
    vm_conf nic-hostile 1 256M "guest.test=regfuzz guest.fuzz_driver=e1000e guest.fuzz_opts=msix-only guest.fuzz_seed=$seed guest.fuzz_count=20000 guest.exit=poweroff"
    vm_pt nic-hostile nic0 net "bdf=$NIC0"
    vm_start nic-hostile
    vm_wait nic-hostile
    hostile_verdict nic-hostile nic-hostile-registers regfuzz "$seed"
    vm_conf nic-after-hostile 1 256M "guest.test=ptnet guest.peer=10.0.2.2 guest.exit=poweroff"
    vm_pt nic-after-hostile nic0 net "bdf=$NIC0"
    vm_start nic-after-hostile
    vm_wait nic-after-hostile
    if ((rc != 0)); then fail nic-reset-after-hostile "vmm exited $rc: $(guest_reason nic-after-hostile ptnet)" nic-after-hostile
    else scenario_from_guest nic-after-hostile nic-reset-after-hostile ptnet
    fi
fi

# --- vf: a VF created, provisioned and assigned from the device file -----------
vm_conf vf 1 512M "guest.test=disk,blkbench guest.expect_disk_mib=$DISK_MIB guest.bench_qd=32 guest.bench_count=$BENCH_COUNT guest.exit=poweroff"
vm_pt vf disk0 block "pf=$PF" vf=0
vm_start vf
bench_counters vf
vf_bdf=$(sed -n 's/.*VF 0 of [0-9a-f:.]* is \([0-9a-f:.]*\),.*/\1/p' "$WORK/vf/stderr" | head -n1)
vm_wait vf
grep -E '^vmm: disk0' "$WORK/vf/stderr" | sed 's/^/    /' || true
if ((rc == 124)); then fail vf-64M-checksum "timed out after ${TIMEOUT}s" vf
elif ((rc != 0)); then fail vf-64M-checksum "vmm exited $rc, expected 0: $(guest_reason vf disk)" vf
else scenario_from_guest vf vf-64M-checksum disk
fi
result=$(tr -d '\r' <"$WORK/vf/console.log" 2>/dev/null | sed -n 's/^GUEST-BENCH-RESULT //p' | head -n1)
echo "    blkbench: ${result:-no result}"
if [[ -n $e0 && -n $e1 ]] && guest_test_ok vf blkbench; then
    bench_line "vf QD32"
    user=$BENCH_USER
    if awk -v u="$user" -v m="$USERSPACE_EXITS_PER_IO_MAX" 'BEGIN { exit !(u < m) }'; then
        pass telemetry-vf-qd32
    else
        fail telemetry-vf-qd32 "$user exits to the VMM per I/O at QD32 (want < $USERSPACE_EXITS_PER_IO_MAX)" vf
    fi
else
    fail telemetry-vf-qd32 "no counters around the benchmark ($(guest_reason vf blkbench))" vf
fi

# After the VM: the VF no longer on vfio-pci (released: gone, or back to how
# the lease found it).
if [[ -z $vf_bdf ]]; then
    fail vf-released "the VMM did not say which VF it used" vf
elif [[ -e /sys/bus/pci/devices/$vf_bdf && $(driver_of "$vf_bdf") == vfio-pci ]]; then
    fail vf-released "$vf_bdf is still bound to vfio-pci after the VM exited" vf
else
    pass vf-released
    echo "    $vf_bdf after the VM: $([[ -e /sys/bus/pci/devices/$vf_bdf ]] && echo "driver $(driver_of "$vf_bdf")" || echo removed); PF sriov_numvfs $(cat "/sys/bus/pci/devices/$PF/sriov_numvfs")"
fi

# The same file again, and the NIC in the same VM: two groups in one
# container, one KVM VFIO device.
mkdir -p "$WORK/vf-again"
both=
[[ $(driver_of "$NIC0") == vfio-pci && $(driver_of "$NIC1") == vfio-pci ]] && both=1
vm_conf vf-again 1 512M "guest.test=disk${both:+,ptnet},blkbench guest.expect_disk_mib=$DISK_MIB guest.peer=10.0.2.2 guest.bench_qd=1 guest.bench_count=$BENCH_COUNT guest.exit=poweroff"
cp "$WORK/vf/devices/disk0.conf" "$WORK/vf-again/devices/"
[[ -n $both ]] && vm_pt vf-again nic0 net "bdf=$NIC0"
vm_start vf-again
bench_counters vf-again
vm_wait vf-again
# QD1 for comparison (shown, not judged: at QD1 each I/O waits for its
# interrupt, so the guest halts and is woken once per I/O).
if [[ -n $e0 && -n $e1 ]]; then bench_line "vf QD1"; fi
if ((rc != 0)); then fail vf-assigned-again "vmm exited $rc: $(guest_reason vf-again disk)" vf-again
else scenario_from_guest vf-again vf-assigned-again disk
fi
if [[ -z $both ]]; then fail two-devices-one-vm "the NIC functions are not on vfio-pci"
else scenario_from_guest vf-again two-devices-one-vm ptnet
fi

# --- path switch: one disk file, one namespace, the three paths in turn ------
# The device file keeps all three sections; each boot changes only path =:
# emulated (our NVMe model on the PF's namespace as L1 sees it), virtio
# (build/vhost-user-blk, started by the VMM, on the same block device),
# passthrough (VF 0, which shares the namespace), emulated again. Each boot
# rewrites 8 of 32 1-MiB chunks near the end of the namespace (the first
# writes all 32) and prints every chunk's sha256 (guest test blkdigest):
# the chunks it left alone must read as the previous boot left them, and
# after each boot L1 reads the media with O_DIRECT and must find what the
# guest saw. Between paths nothing may be lost or come back stale (the
# emulated path and the backend read through L1's page cache; the VF does
# not).
MEDIA=
for _ in $(seq 50); do
    MEDIA=$(ls /sys/block 2>/dev/null | grep -E '^nvme[0-9]+n1$' | head -n1)
    [[ -n $MEDIA && -b /dev/$MEDIA ]] && break
    sleep 0.1
done
SW_SKIP=$((DISK_MIB - 40)) SW_CHUNKS=32
declare -a SW_PREV=()
# switch_boot NAME PATH GUEST_DISK WRITE: one boot of the switch series.
switch_boot() {
    local name=$1 path=$2 gdisk=$3 write=$4 c got media bad=
    vm_conf "$name" 1 512M "guest.test=blkdigest guest.disk=$gdisk guest.digest_skip=$SW_SKIP guest.digest_mib=$SW_CHUNKS guest.digest_write=$write guest.exit=poweroff"
    cat >"$WORK/$name/devices/disk0.conf" <<CONF
[device]
id    = disk0
class = block
path  = $path

[emulated]
model = nvme
file  = /dev/$MEDIA

[virtio]
socket  = /run/pt-switch.sock
backend = $ROOT/build/vhost-user-blk
file    = /dev/$MEDIA

[passthrough]
pf = $PF
vf = 0
CONF
    vm_start "$name"
    vm_wait "$name"
    if ((rc != 0)) || ! guest_test_ok "$name" blkdigest; then
        fail "switch-$name" "vmm exited $rc: $(guest_reason "$name" blkdigest)" "$name"
        SW_PREV=()
        return
    fi
    declare -a cur=()
    while read -r c got; do cur[c]=$got; done < <(tr -d '\r' <"$WORK/$name/console.log" | sed -n 's/^GUEST-DIGEST \([0-9]*\) \([0-9a-f]\{64\}\)$/\1 \2/p')
    local wfirst=${write%%:*} wn=${write#*:}
    for ((c = 0; c < SW_CHUNKS; c++)); do
        if [[ -z ${cur[c]:-} ]]; then bad="no digest of chunk $c"; break; fi
        if ((c < wfirst || c >= wfirst + wn)) && [[ ${#SW_PREV[@]} -gt 0 && ${cur[c]} != "${SW_PREV[c]}" ]]; then
            bad="chunk $c (not written this boot) reads ${cur[c]:0:16}..., the previous boot left ${SW_PREV[c]:0:16}..."
            break
        fi
        media=$(dd if="/dev/$MEDIA" bs=1M skip=$((SW_SKIP + c)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
        if [[ $media != "${cur[c]}" ]]; then
            bad="chunk $c on the media (O_DIRECT in L1) is ${media:0:16}..., the guest read ${cur[c]:0:16}..."
            break
        fi
    done
    if [[ -n $bad ]]; then fail "switch-$name" "path $path: $bad" "$name"; SW_PREV=()
    else pass "switch-$name"; SW_PREV=("${cur[@]}"); fi
}
if [[ -z $MEDIA ]]; then
    fail switch-paths "no block device of the PF's namespace in L1 (/sys/block: $(ls /sys/block | tr '\n' ' '))"
else
    echo "--- path switch on /dev/$MEDIA, chunks of 1 MiB from MiB $SW_SKIP"
    switch_boot emulated emulated /dev/nvme0n1 0:32
    switch_boot virtio virtio /dev/vda 8:8
    switch_boot passthrough passthrough /dev/nvme0n1 16:8
    switch_boot emulated-again emulated /dev/nvme0n1 24:8
fi

finish
