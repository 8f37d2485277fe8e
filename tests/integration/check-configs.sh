#!/bin/sh
# Config validation, end to end, through `vmm check`:
#  - every case under tests/integration/bad-configs/ must be refused with exit
#    status 2, its stderr must contain the line of the case's `expect` file
#    (a fixed string such as "vm.conf:4: memory:"), and the sanitizers must
#    stay quiet;
#  - every example under configs/ must pass with exit status 0.
# Run from anywhere; VMM overrides the binary (default build/vmm-san).
# Prints "N passed, M failed" and exits non-zero if anything failed.
set -u

cd "$(dirname "$0")/../.." || exit 1
VMM=${VMM:-build/vmm-san}
CASES=tests/integration/bad-configs

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1" >&2
    shift
    for f in "$@"; do
        [ -s "$f" ] && sed 's/^/    | /' "$f" >&2
    done
}

sanitizer_report() {
    grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer' "$1"
}

if [ ! -x "$VMM" ]; then
    echo "check-configs: $VMM not found: build it first (make build/vmm-san) or set VMM" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# --- configs that must be refused ---------------------------------------
for dir in "$CASES"/*/; do
    dir=${dir%/}
    name=${dir##*/}
    if [ ! -f "$dir/expect" ] || [ ! -f "$dir/vm.conf" ]; then
        fail "$name: case needs vm.conf and expect"
        continue
    fi
    expect=$(head -n 1 "$dir/expect")
    if [ -z "$expect" ]; then
        fail "$name: empty expect file"
        continue
    fi
    "$VMM" check "$dir/vm.conf" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if sanitizer_report "$tmp/err"; then
        fail "$name: sanitizer report" "$tmp/err"
    elif [ "$rc" -ne 2 ]; then
        fail "$name: exit status $rc, expected 2" "$tmp/out" "$tmp/err"
    elif ! grep -qF -- "$expect" "$tmp/err"; then
        fail "$name: stderr lacks: $expect" "$tmp/err"
    else
        pass
    fi
done

# --- examples that must be accepted -------------------------------------
# They boot the kernel and initramfs that `make deps` builds.
missing=
for f in build/kernel/vmlinuz build/guest/initramfs.cpio.gz; do
    [ -r "$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    fail "examples under configs/ need$missing: run 'make deps' first"
else
    for vm in configs/*/vm.conf; do
        [ -f "$vm" ] || continue
        "$VMM" check "$vm" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if sanitizer_report "$tmp/err"; then
            fail "$vm: sanitizer report" "$tmp/err"
        elif [ "$rc" -ne 0 ]; then
            fail "$vm: exit status $rc, expected 0" "$tmp/out" "$tmp/err"
        elif ! grep -qF "$vm: ok (" "$tmp/out"; then
            fail "$vm: no '$vm: ok (N devices)' on stdout" "$tmp/out" "$tmp/err"
        else
            pass
        fi
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
