# Sourced by the VM suites that keep one folder per VM under $WORK: the
# PASS/FAIL bookkeeping and the closing "N passed, M failed" line. The suite
# sets SUITE (its name in messages) and WORK before calling these.

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
# fail NAME REASON [VM]: the VM's logs, if named, show what happened.
fail() {
    local name=$1 why=$2 vm=${3:-}
    echo "FAIL $name: $why"
    failed=$((failed + 1))
    [[ -n $vm ]] || return 0
    local d=$WORK/$vm
    if [[ -s $d/stderr ]]; then echo "  --- $vm: vmm stderr (tail):"; tail -n 15 "$d/stderr" | sed 's/^/  | /'; fi
    if [[ -s $d/console.log ]]; then echo "  --- $vm: guest console (tail):"; tail -n 25 "$d/console.log" | sed 's/^/  | /'; fi
}
finish() {
    if ((failed == 0)); then rm -rf "$WORK"; else echo "$SUITE: logs kept in $WORK"; fi
    echo "$passed passed, $failed failed"
    exit $((failed > 0))
}
