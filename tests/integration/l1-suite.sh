#!/bin/bash
# Several VM suites in one place where /dev/kvm works (one L1 boot under
# tests/kvm-run, which costs ~10 s under TCG): the suites named as arguments,
# by default foundation.sh, emulated.sh, virtio.sh, vhost-restart.sh. Each
# suite's output streams through; the last line sums their "N passed, M
# failed" counts. A suite that fails without counting a failure
# counts one.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUITES=("$@")
((${#SUITES[@]})) || SUITES=(foundation.sh emulated.sh virtio.sh vhost-restart.sh)
passed=0
failed=0
LOG=$(mktemp /tmp/l1-suite.XXXXXX)
trap 'rm -f "$LOG"' EXIT

for s in "${SUITES[@]}"; do
    echo "=== tests/integration/$s"
    t0=$SECONDS
    "$ROOT/tests/integration/$s" 2>&1 | tee "$LOG"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG" | tail -n1)
    p=0 f=0
    if [[ -n $line ]]; then
        p=${line%% passed*}
        f=${line#*passed, }
        f=${f%% failed*}
    fi
    ((rc != 0 && f == 0)) && f=1
    echo "=== $s: $p passed, $f failed in $((SECONDS - t0))s"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
((failed == 0))
