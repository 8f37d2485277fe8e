# Sourced by scripts that run inside L1 (through tests/kvm-run). L1 runs
# Debian's kernel from build/kernel while its root filesystem is L0's, whose
# /lib/modules belongs to another kernel: modprobe cannot work there.

# l1_insmod NAME [PARAM=VALUE...]: load NAME's module and, first, the modules
# it depends on, from build/kernel/root; already loaded ones are skipped.
# Fails loudly when a module is missing.
l1_insmod() {
    local name=${1//-/_} p dep kroot kver
    shift
    [[ -d /sys/module/$name ]] && return 0
    kroot=${L1_KROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/kernel/root}
    kver=$(uname -r)
    # modules.order lists every module's path: one read, where a find over
    # the tree costs minutes on 9p under TCG.
    p=$(grep -m1 -E "/(${name}|${name//_/-})\.ko\$" "$kroot/lib/modules/$kver/modules.order" 2>/dev/null)
    [[ -n $p ]] && p=$kroot/lib/modules/$kver/$p
    [[ -n $p ]] || { echo "l1_insmod: no module $name for $kver under $kroot" >&2; return 1; }
    for dep in $(modinfo -F depends "$p" | tr ',' ' '); do
        l1_insmod "$dep" || return 1
    done
    # Built-in "modules" have a /sys/module entry too; a race with another
    # loader shows up as EEXIST, which is fine.
    insmod "$p" "$@" 2>/dev/null || [[ -d /sys/module/$name ]] ||
        { echo "l1_insmod: insmod $p failed" >&2; return 1; }
}
