# Shared by tests/guest/mkinitramfs and tests/l1/mkinitramfs (sourced, not run):
# stage a busybox root, add kernel modules with their dependencies, pack it.
# Expects ROOT (project root) to be set.

KROOT=$ROOT/build/kernel/root
KVER=$(cat "$ROOT/build/kernel/version" 2>/dev/null || true)
MODDIR=$KROOT/lib/modules/$KVER/kernel

die() { echo "mkinitramfs: $*" >&2; exit 1; }

[[ -n $KVER && -d $MODDIR ]] || die "no unpacked kernel in build/kernel: run 'make deps'"
BUSYBOX=$(command -v busybox) || die "busybox not found: run 'make deps'"
# The initramfs has no libc: only the static busybox works there.
file_out=$(LC_ALL=C file -L "$BUSYBOX" 2>/dev/null || true)
[[ -z $file_out || $file_out == *static* ]] || die "$BUSYBOX is not static (install busybox-static)"

# is_stale OUT INPUT...: true when OUT is missing or older than any input file.
is_stale() {
    local out=$1; shift
    [[ -e $out ]] || return 0
    [[ -n $(find "$@" -newer "$out" -print -quit 2>/dev/null) ]]
}

# stage_busybox DIR: a minimal root with busybox and its applet links.
stage_busybox() {
    local d=$1 a
    mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules,mnt}
    cp "$BUSYBOX" "$d/bin/busybox"
    # Links made at build time so init needs no --install step before its marker.
    for a in $("$BUSYBOX" --list-full); do
        [[ -e $d/$a ]] || ln -s /bin/busybox "$d/$a"
    done
    # The kernel's built-in initramfs has /dev/console, but do not rely on it.
    if [[ $(id -u) == 0 ]]; then
        mknod -m 600 "$d/dev/console" c 5 1
    fi
}

# modpath NAME: path of NAME.ko under the kernel's module tree ('-' == '_').
modpath() {
    local n=$1 alt p
    alt=$(echo "$n" | tr '_-' '-_')
    p=$(find "$MODDIR" \( -name "$n.ko" -o -name "$alt.ko" \) -print -quit)
    [[ -n $p ]] || die "module $n not found under $MODDIR"
    echo "$p"
}

# add_modules DIR NAME...: copy the modules and everything they depend on into
# DIR/lib/modules and list them, dependencies first, in DIR/etc/modules.list
# (read by init, which loads them with insmod in that order).
add_modules() {
    local d=$1; shift
    local -A seen=()
    local -a order=()
    _add_mod() {
        local n=${1//-/_} p dep
        [[ -n ${seen[$n]:-} ]] && return 0
        seen[$n]=1
        p=$(modpath "$1")
        for dep in $(modinfo -F depends "$p" | tr ',' ' '); do
            _add_mod "$dep"
        done
        order+=("$p")
    }
    local m
    for m in "$@"; do _add_mod "$m"; done
    : >"$d/etc/modules.list"
    for p in "${order[@]}"; do
        cp "$p" "$d/lib/modules/"
        echo "/lib/modules/$(basename "$p")" >>"$d/etc/modules.list"
    done
}

# pack DIR OUT: newc cpio, gzip; written atomically so concurrent users never
# see half an image.
pack() {
    local d=$1 out=$2
    mkdir -p "$(dirname "$out")"
    (cd "$d" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc -R 0:0 --quiet) | gzip -6 >"$out.tmp.$$"
    mv "$out.tmp.$$" "$out"
}
