# Sourced by the benchmarks that read KVM's per-VM counters in L1's debugfs
# (/sys/kernel/debug/kvm/<pid>-<fd>/) at the guest's console markers.

# kvm_counters DIR: the counters named in the caller's COUNTERS array, read
# from DIR, space-separated in that order; NA for one that cannot be read
# (the VM is gone, say), so a report can say so instead of using zeros.
kvm_counters() {
    local c out=
    for c in "${COUNTERS[@]}"; do out+="$(cat "$1/$c" 2>/dev/null || echo NA) "; done
    echo "$out"
}
