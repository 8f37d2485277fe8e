# Sourced by the VM suites that keep one folder per VM under $WORK: the
# PASS/FAIL bookkeeping, the closing "N passed, M failed" line, and reading a
# guest's verdict from its console ($WORK/NAME/console.log). The suite sets
# SUITE (its name in messages) and WORK before calling these, and rc (the
# VMM's exit status) before guest_reason.

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

# console_field NAME PATTERN N: the Nth word of the first line starting with PATTERN.
console_field() {
    tr -d '\r' <"$WORK/$1/console.log" 2>/dev/null | awk -v p="$2" -v n="$3" 'index($0, p) == 1 { print $n; exit }'
}

# guest_test_ok NAME TEST: the guest printed "GUEST-TEST TEST: PASS".
guest_test_ok() { grep -q "^GUEST-TEST $2: PASS" "$WORK/$1/console.log" 2>/dev/null; }

# guest_reason NAME TEST: the guest's own explanation of TEST's failure.
guest_reason() {
    local r
    r=$(tr -d '\r' <"$WORK/$1/console.log" 2>/dev/null | grep "^guest: $2: " | tail -n1 | sed "s/^guest: $2: //")
    if [[ -n $r ]]; then echo "$r"
    elif ! grep -q '^GUEST-INIT-REACHED' "$WORK/$1/console.log" 2>/dev/null; then echo "the guest did not reach init (vmm status $rc)"
    else echo "the guest did not report $2 (vmm status $rc)"
    fi
}

# scenario_from_guest NAME SCENARIO TEST: PASS when the guest test passed.
scenario_from_guest() {
    if guest_test_ok "$1" "$3"; then pass "$2"; else fail "$2" "$(guest_reason "$1" "$3")" "$1"; fi
}

# hostile_verdict NAME SCENARIO TEST SEED: after a hostile-guest VM (rc set
# by the caller's wait): it ended by itself with status 0, no vhost-user
# backend went away under it, the VMM logged once per kind of problem (not
# per access: at most 100 lines) and the guest test TEST passed. Then a
# line on what it did.
hostile_verdict() {
    local name=$1 scenario=$2 test=$3 seed=$4 d=$WORK/$1 lines
    lines=$(grep -c '' "$d/stderr" 2>/dev/null || true)
    if ((rc == 124)); then fail "$scenario" "timed out (seed $seed)" "$name"
    elif ((${lines:-0} > 100)); then
        fail "$scenario" "the VMM wrote $lines lines to stderr: not once per problem (seed $seed)" "$name"
    elif grep -q 'lost the backend' "$d/stderr" 2>/dev/null; then
        fail "$scenario" "the backend went away under the fuzzing (seed $seed)" "$name"
    elif ((rc != 0)); then fail "$scenario" "vmm status $rc, expected 0 (seed $seed): $(guest_reason "$name" "$test")" "$name"
    else scenario_from_guest "$name" "$scenario" "$test"
    fi
    echo "    $name: seed $seed; $(grep -c '^regfuzz:' "$d/console.log" 2>/dev/null) BARs/config spaces fuzzed; VMM stderr: ${lines:-0} lines"
}
