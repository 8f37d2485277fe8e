#!/bin/bash
# sriov/ and build/sriovctl against a real SR-IOV NVMe PF: QEMU's nvme with
# sriov_max_vfs=2 and a shared namespace, behind an emulated VT-d, as
# `KVM_RUN_PASSTHROUGH=1 tests/kvm-run tests/integration/sriov.sh` gives L1
# (see shared/TESTING.md, "Passthrough"). Needs root and no /dev/kvm.
#
# Scenarios: list/show and the refusals (bad usage exit 2, out of range and
# not-SR-IOV exit 1 with the cause); create 2 VFs (addresses agree with the
# kernel's virtfnN links, autoprobe off, no host driver on them); provision
# VF 0 and prove it is ready by binding it to the host nvme driver and
# moving 4 MiB through it, checked against the PF's view of the same shared
# namespace; bind to vfio-pci (a /dev/vfio group appears) and restore;
# unprovision; remove; then the VMM's lease (sriovctl lease = sriov_vf_acquire
# + release) twice on VF 1 (a second lease of it meanwhile is refused),
# checking that everything it set up is gone after.
# Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=sriov
WORK=$(mktemp -d /tmp/sriov-suite.XXXXXX)
source "$ROOT/tests/integration/suite-lib.sh"
source "$ROOT/tests/l1/l1-lib.sh"
SYS=/sys/bus/pci/devices

[[ -x $ROOT/build/sriovctl ]] || { fail build "build/sriovctl missing: run make"; finish; }
# A private copy: a concurrent `make` relinking build/sriovctl made one run fail
# with "Permission denied" mid-suite.
cp "$ROOT/build/sriovctl" "$WORK/sriovctl"
S=$WORK/sriovctl
# Without multipath the VF's controller gets its own block device instead of
# becoming a second path to the PF's namespace head.
l1_insmod nvme_core multipath=N && l1_insmod nvme || { fail modules "cannot load nvme"; finish; }
l1_insmod vfio_iommu_type1 allow_unsafe_interrupts=1 && l1_insmod vfio_pci ||
    { fail modules "cannot load vfio-pci"; finish; }

PF=
for _ in $(seq 100); do
    PF=$("$S" list 2>/dev/null | awk '$8 == "nvme" { print $1; exit }')
    [[ -n $PF ]] && [[ $(cat /sys/class/nvme/nvme0/state 2>/dev/null) == live ]] && break
    sleep 0.2
done
[[ -n $PF ]] || { fail list "no SR-IOV PF bound to nvme in: $("$S" list 2>&1)"; finish; }
CTRL=/dev/$(ls "$SYS/$PF/nvme")
echo "PF $PF, controller $CTRL"
"$S" list

# expect_fail NAME RC PATTERN CMD...: CMD exits RC and says PATTERN on stderr.
expect_fail() {
    local name=$1 want=$2 pattern=$3 out rc
    shift 3
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    if ((rc == want)) && grep -q -- "$pattern" <<<"$out"; then pass "$name"; else fail "$name" "rc $rc: $out"; fi
}
numvfs() { cat "$SYS/$PF/sriov_numvfs"; }
driver_of() { local l; l=$(readlink "$SYS/$1/driver" 2>/dev/null) && basename "$l" || echo none; }
online_count() { nvme list-secondary "$CTRL" 2>/dev/null | grep -c 'Online)'; }

# --- list, show, refusals ------------------------------------------------
if "$S" list | grep -q "^$PF .* vfs 0/2 .*driver nvme"; then pass list; else fail list "$("$S" list 2>&1)"; fi
show=$("$S" show "$PF")
if grep -qx "total_vfs 2" <<<"$show" && grep -qx "num_vfs 0" <<<"$show"; then pass show; else fail show "$show"; fi
expect_fail usage 2 "usage:" "$S" create "$PF"
expect_fail too-many-vfs 1 "at most 2" "$S" create "$PF" 3
expect_fail not-sriov 1 "not SR-IOV capable" "$S" show 0000:00:00.0
expect_fail no-device 1 "no such PCI device" "$S" show 0000:7f:00.0
expect_fail lease-out-of-range 1 "out of range" "$S" lease "$PF" 2 true
[[ $(numvfs) == 0 ]] || fail lease-out-of-range "sriov_numvfs is $(numvfs) after a refused lease"

# --- create --------------------------------------------------------------
if "$S" create "$PF" 2 && [[ $(numvfs) == 2 && $(cat "$SYS/$PF/sriov_drivers_autoprobe") == 0 ]]; then
    pass create
else
    fail create "sriov_numvfs $(numvfs)"
fi
show=$("$S" show "$PF")
echo "$show"
ok=1
for i in 0 1; do
    kernel=$(basename "$(readlink "$SYS/$PF/virtfn$i")")
    ours=$(awk -v i="$i" '$1 == "vf" && $2 == i { print $3 }' <<<"$show")
    [[ -n $kernel && $kernel == "$ours" ]] || { ok=0; echo "virtfn$i: kernel $kernel, sriovctl $ours"; }
    [[ $(driver_of "$kernel") == none ]] || { ok=0; echo "$kernel has driver $(driver_of "$kernel")"; }
done
((ok)) && pass vf-addresses || fail vf-addresses "see above"
VF0=$(basename "$(readlink "$SYS/$PF/virtfn0")")

# --- provision, and prove the VF works -----------------------------------
if "$S" provision "$PF" 0 && "$S" show "$PF" | grep -q "^vf 0 .* online vq 4 vi 2"; then
    pass provision
else
    fail provision "$("$S" show "$PF" 2>&1)"
fi
nvme list-secondary "$CTRL" | grep -E 'SCID|SCS|NVQ|NVI' | sed 's/^/  /'
(($(online_count) == 1)) || fail provision-nvme-cli "nvme list-secondary shows $(online_count) online"

# The host nvme driver on the provisioned VF: its own controller and block
# device; 4 MiB written there must read back through the PF (same namespace).
echo nvme >"$SYS/$VF0/driver_override"
echo "$VF0" >/sys/bus/pci/drivers_probe 2>/dev/null
vfdisk=
for _ in $(seq 100); do
    c=$(ls "$SYS/$VF0/nvme" 2>/dev/null | head -n1)
    [[ -n $c && -b /dev/${c}n1 ]] && { vfdisk=/dev/${c}n1; break; }
    sleep 0.2
done
if [[ -n $vfdisk ]]; then
    head -c 4M /dev/urandom >"$WORK/data"
    dd if="$WORK/data" of="$vfdisk" bs=1M oflag=direct status=none && sync
    a=$(md5sum <"$WORK/data" | cut -d' ' -f1)
    b=$(dd if="$vfdisk" bs=1M count=4 iflag=direct status=none | md5sum | cut -d' ' -f1)
    c=$(dd if=/dev/nvme0n1 bs=1M count=4 iflag=direct status=none | md5sum | cut -d' ' -f1)
    if [[ $a == "$b" && $a == "$c" ]]; then pass vf-io; else fail vf-io "md5 written $a, via VF $b, via PF $c"; fi
else
    fail vf-io "no block device on $VF0 under the host nvme driver (driver $(driver_of "$VF0"))"
fi
echo "$VF0" >"$SYS/$VF0/driver/unbind" 2>/dev/null
echo >"$SYS/$VF0/driver_override"

# --- bind / restore ------------------------------------------------------
out=$("$S" bind "$VF0")
echo "$out"
group=$(basename "$(readlink "$SYS/$VF0/iommu_group")")
if [[ $(driver_of "$VF0") == vfio-pci && -c /dev/vfio/$group ]] && grep -q "undo: sriovctl restore $VF0" <<<"$out"; then
    pass bind
else
    fail bind "driver $(driver_of "$VF0"), group $group"
fi
if "$S" restore "$VF0" && [[ $(driver_of "$VF0") == none && $(cat "$SYS/$VF0/driver_override") == "(null)" ]]; then
    pass restore
else
    fail restore "driver $(driver_of "$VF0"), override $(cat "$SYS/$VF0/driver_override")"
fi

# --- unprovision, remove -------------------------------------------------
if "$S" unprovision "$PF" 0 && (($(online_count) == 0)); then pass unprovision; else fail unprovision "$(online_count) online"; fi
if "$S" remove "$PF" && [[ $(numvfs) == 0 && ! -e $SYS/$VF0 ]]; then pass remove; else fail remove "sriov_numvfs $(numvfs)"; fi

# --- the VMM's lease, twice ------------------------------------------------
echo 1 >"$SYS/$PF/sriov_drivers_autoprobe"
for round in 1 2; do
    # Inside the lease: VF 1 exists, is online, on vfio-pci, has a VFIO group,
    # and a second lease on it is refused.
    check='d=$(readlink /sys/bus/pci/devices/$SRIOV_VF/driver) && [ "${d##*/}" = vfio-pci ] &&
           g=$(readlink /sys/bus/pci/devices/$SRIOV_VF/iommu_group) && [ -c /dev/vfio/${g##*/} ] &&
           [ "$(nvme list-secondary '"$CTRL"' | grep -c "Online)")" = 1 ] &&
           ! '"$S"' lease '"$PF"' 1 true 2>'"$WORK"'/second.err &&
           grep -q "in use by another VM" '"$WORK"'/second.err'
    out=$("$S" lease "$PF" 1 sh -c "$check" 2>&1)
    rc=$?
    echo "$out"
    if ((rc == 0)) && [[ $(numvfs) == 0 && $(cat "$SYS/$PF/sriov_drivers_autoprobe") == 1 ]] &&
        (($(online_count) == 0)); then
        pass "lease-$round"
    else
        fail "lease-$round" "rc $rc, after release: sriov_numvfs $(numvfs), autoprobe $(cat "$SYS/$PF/sriov_drivers_autoprobe"), $(online_count) online"
    fi
done

finish
