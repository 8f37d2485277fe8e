#!/bin/bash
# Installs what building and testing need, fetches the Debian kernel that the
# test harness boots as L1 and as the L2 guest, and builds the initramfs images.
# Idempotent: when everything is present it only checks and rebuilds the
# (cheap) initramfs images. Run from anywhere as root on Debian 12.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=build

BUILD_PKGS="build-essential pkg-config libpci-dev liburing-dev libcmocka-dev libinih-dev libdpdk-dev acpica-tools clang libclang-rt-14-dev"
# kmod: modinfo reads module dependencies when packing initramfs images.
# python3: the integration tests validate the VMM's stats JSON with it.
# iproute2, iputils-ping (flood ping), netcat-openbsd, e2fsprogs (e2fsck):
# the emulated NIC and disk tests, run in L1 on these binaries.
# fio: the raw io_uring ceiling in perf/. dpdk-dev: dpdk-testpmd, the
# vhost-user net peer (virtio-user and vhost PMDs). nvme-cli: SR-IOV VF
# provisioning checks in L1. gnuplot-nox: the plots of perf/three-paths.
TEST_PKGS="qemu-system-x86 busybox-static cpio gzip xz-utils kmod python3
    iproute2 iputils-ping netcat-openbsd e2fsprogs fio dpdk-dev nvme-cli gnuplot-nox"

log() { echo "deps: $*"; }

missing=()
for p in $BUILD_PKGS $TEST_PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $st == "install ok installed" ]] || missing+=("$p")
done

apt_updated=
apt_update() {
    [[ -n $apt_updated ]] && return 0
    log "apt-get update"
    apt-get update -q
    apt_updated=1
}

if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "all packages present"
fi

# --- the kernel: unpacked into build/, never installed on the host ---------
KDIR=$BUILD/kernel
kernel_ok() {
    [[ -s $KDIR/version && -e $KDIR/vmlinuz ]] &&
        [[ -d $KDIR/root/lib/modules/$(cat "$KDIR/version")/kernel ]]
}

if kernel_ok; then
    log "kernel $(cat "$KDIR/version") present"
else
    # The meta package names the current ABI, e.g. linux-image-6.1.0-NN-amd64.
    kpkg_name() { apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1; }
    kpkg=$(kpkg_name)
    if [[ -z $kpkg ]]; then apt_update; kpkg=$(kpkg_name); fi
    [[ -n $kpkg ]] || { echo "deps: cannot find the linux-image package behind linux-image-amd64" >&2; exit 1; }
    kver=${kpkg#linux-image-}
    log "fetching $kpkg"
    mkdir -p "$BUILD"
    rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
    # apt-get download as root warns that _apt cannot read the folder: harmless.
    if ! (cd "$KDIR.tmp" && apt-get download -q "$kpkg"); then
        apt_update
        (cd "$KDIR.tmp" && apt-get download -q "$kpkg")
    fi
    dpkg -x "$KDIR.tmp"/"$kpkg"_*.deb "$KDIR.tmp/root"
    rm -f "$KDIR.tmp"/*.deb
    [[ -f $KDIR.tmp/root/boot/vmlinuz-$kver ]] || { echo "deps: $kpkg has no boot/vmlinuz-$kver" >&2; exit 1; }
    ln -s "root/boot/vmlinuz-$kver" "$KDIR.tmp/vmlinuz"
    echo "$kver" >"$KDIR.tmp/version"
    rm -rf "$KDIR" && mv "$KDIR.tmp" "$KDIR"
    log "kernel $kver unpacked in $KDIR"
fi

# The same kernel uncompressed, for PVH boot (configs and perf/boot use both).
if [[ ! -s $KDIR/vmlinux || $KDIR/vmlinux -ot $KDIR/vmlinuz ]]; then
    scripts/extract-vmlinux "$KDIR/vmlinuz" "$KDIR/vmlinux"
    log "vmlinux extracted in $KDIR"
fi

# --- initramfs images (seconds; always rebuilt so edits are picked up) ------
tests/guest/mkinitramfs
tests/l1/mkinitramfs
# The benchmark guest with fio (configs/three-paths names it, make demo
# boots it): 35 MB, rebuilt only when its inputs change.
tests/guest/mkinitramfs --with-fio --if-stale

touch "$BUILD/.deps-ok"
log "ok"
