#!/bin/bash
# vhost-net-peers.sh: build/vhost-user-net against a vhost-user frontend no
# one here wrote: dpdk-testpmd's virtio-user (no VM, no KVM: runs on L0).
# Scenarios (PASS/FAIL lines, then "N passed, M failed"):
#   bad-options   each bad option exits 2 with "vhost-user-net: --flag: ..."
#   hairpin       --pair x,x: testpmd io-fwd --tx-first gets its packets back
#   ring          --pair x,net_ring0 (ring loops back): same, 2 queue pairs
#   sigkill       testpmd SIGKILLed mid-burst; the backend stays up, a new
#                 testpmd reconnects and traffic flows again
#   client        --vhost x=SOCK,client against testpmd's server=1 socket;
#                 after testpmd restarts we reconnect on our own
#   sigterm       SIGTERM: exit 0, server socket unlinked
# Everything runs with --no-huge, under unique --file-prefix names; the
# trap removes every process, socket and /var/run/dpdk/<prefix> it made.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=vhost-net-peers
WORK=$(mktemp -d /tmp/vnpeers.XXXXXX)
source "$ROOT/tests/integration/suite-lib.sh"
BE=$ROOT/build/vhost-user-net
TAG=vnp$$
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf /var/run/dpdk/"$TAG"-*
    # hugepage files, should a future edit drop --no-huge
    rm -f /dev/hugepages/"$TAG"-* 2>/dev/null
    [[ -d $WORK ]] && find "$WORK" -type s -delete 2>/dev/null
}
trap cleanup EXIT

refuse() { echo "FAIL $SUITE: $1"; echo "0 passed, 1 failed"; exit 1; }
[[ -x $BE ]] || refuse "build/vhost-user-net missing: run make all"
command -v dpdk-testpmd >/dev/null || refuse "dpdk-testpmd missing (package dpdk): run make deps"

# Both sides pinned, the backend to CPU 0 and testpmd to CPU 1: each polls one core.
EAL_BE=(--lcores 0@0,1@0 --no-huge -m 256 --no-pci --no-telemetry)
EAL_FE=(--lcores 0@1,1@1 --no-huge -m 512 --single-file-segments --no-pci --no-telemetry)

# start_backend NAME ARGS...: runs the backend with --file-prefix $TAG-NAME.
start_backend() {
    local name=$1; shift
    "$BE" "${EAL_BE[@]}" --file-prefix "$TAG-$name" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    BE_PID=$!
    PIDS+=("$BE_PID")
}

# start_testpmd NAME VDEV [testpmd args]: io forwarding, a first burst sent.
start_testpmd() {
    local name=$1 vdev=$2; shift 2
    dpdk-testpmd "${EAL_FE[@]}" --file-prefix "$TAG-$name" --vdev "$vdev" -- \
        --forward-mode=io --tx-first --auto-start --stats-period 1 --total-num-mbufs=8192 "$@" \
        >"$WORK/$name.log" 2>&1 </dev/null &
    FE_PID=$!
    PIDS+=("$FE_PID")
}

# stop PID: SIGINT (testpmd prints its totals), then wait.
stop() {
    kill -INT "$1" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

wait_socket() { for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done; return 1; }

# counter STATSFILE PORT FIELD: one number from our --stats JSON (one port a line).
counter() {
    local v
    v=$(grep "\"name\":\"$2\"" "$1" 2>/dev/null | grep -o "\"$3\":[a-z0-9]*" | cut -d: -f2)
    echo "${v:-0}"
}

# wait_counter STATS PORT FIELD MIN SECS: until FIELD > MIN.
wait_counter() {
    local i
    for ((i = 0; i < $5 * 10; i++)); do
        (($(counter "$1" "$2" "$3") > $4)) && return 0
        sleep 0.1
    done
    return 1
}

# testpmd_rx LOG: RX-packets of its last stats block.
testpmd_rx() { grep -o 'RX-packets: *[0-9]*' "$1" | tail -n1 | grep -o '[0-9]*$' || echo 0; }

# --- bad options ------------------------------------------------------------
bad_case() {
    local want=$1; shift
    local out rc
    out=$(timeout 20 "$BE" "${EAL_BE[@]}" --file-prefix "$TAG-bad" "$@" 2>&1 </dev/null)
    rc=$?
    if ((rc != 2)) || ! grep -q "^vhost-user-net: $want" <<<"$out"; then
        echo "  bad option $*: exit $rc, wanted 2 and 'vhost-user-net: $want'"
        tail -n 3 <<<"$out" | sed 's/^/  | /'
        return 1
    fi
}
long=$WORK/$(printf 'p%.0s' $(seq 110)).sock
ok=1
bad_case "--pair: no pairs" -- --vhost x="$WORK/b.sock" || ok=0
bad_case "--vhost: x: socket path is" -- --vhost x="$long" --pair x,x || ok=0
bad_case "--vhost: duplicate port name 'x'" -- --vhost x="$WORK/b.sock" --vhost x="$WORK/c.sock" --pair x,x || ok=0
bad_case "--vhost: x: queues must be 1..128" -- --vhost x="$WORK/b.sock,queues=0" --pair x,x || ok=0
bad_case "--vhost: x: queues must be 1..128" -- --vhost x="$WORK/b.sock,queues=129" --pair x,x || ok=0
bad_case "--pair: unknown port 'nope'" -- --vhost x="$WORK/b.sock" --pair x,nope || ok=0
bad_case "--pair: x,x@5: lcore 5 is not enabled" -- --vhost x="$WORK/b.sock" --pair x,x@5 || ok=0
bad_case "--pair: x,x@0: lcore 0 is EAL's main lcore" -- --vhost x="$WORK/b.sock" --pair x,x@0 || ok=0
bad_case "--pair: port 'x' is already in another pair" -- --vhost x="$WORK/b.sock" --vhost y="$WORK/c.sock" --pair x,y --pair x,x || ok=0
bad_case "--burst: must be 1..512" -- --vhost x="$WORK/b.sock" --pair x,x --burst 0 || ok=0
bad_case "--frobnicate: unknown option" -- --vhost x="$WORK/b.sock" --pair x,x --frobnicate 1 || ok=0
if ((ok)) && [[ ! -e $WORK/b.sock ]]; then pass bad-options; else fail bad-options "see above"; fi
rm -rf /var/run/dpdk/"$TAG"-bad

# --- hairpin ----------------------------------------------------------------
S=$WORK/h.sock
start_backend hbe -- --vhost x="$S" --pair x,x --stats "$WORK/h.json"
be=$BE_PID
if wait_socket "$S"; then
    start_testpmd hfe "net_virtio_user0,path=$S"
    fe=$FE_PID
    wait_counter "$WORK/h.json" x tx_packets 10000 15
    stop "$fe"
    rx=$(testpmd_rx "$WORK/hfe.log")
    tx=$(counter "$WORK/h.json" x tx_packets)
    if ((rx > 10000 && tx > 10000)); then
        pass "hairpin (testpmd got $rx packets back; backend tx $tx)"
    else
        fail hairpin "testpmd RX $rx, backend tx $tx (wanted > 10000 each)"
        tail -n 5 "$WORK/hbe.log" "$WORK/hfe.log"
    fi
else
    fail hairpin "backend made no socket"; tail -n 5 "$WORK/hbe.log"
fi
stop "$be"

# --- net_ring, 2 queue pairs ------------------------------------------------
S=$WORK/r.sock
start_backend rbe --vdev net_ring0 -- --vhost x="$S,queues=2" --pair x,net_ring0 --stats "$WORK/r.json"
be=$BE_PID
if wait_socket "$S"; then
    start_testpmd rfe "net_virtio_user0,path=$S,queues=2" --rxq=2 --txq=2
    fe=$FE_PID
    wait_counter "$WORK/r.json" x tx_packets 10000 15
    stop "$fe"
    rx=$(testpmd_rx "$WORK/rfe.log")
    tx=$(counter "$WORK/r.json" x tx_packets)
    ring_rx=$(counter "$WORK/r.json" net_ring0 rx_packets)
    if ((rx > 10000 && tx > 10000 && ring_rx > 10000)); then
        pass "ring (2 queues; testpmd got $rx back; net_ring0 rx $ring_rx)"
    else
        fail ring "testpmd RX $rx, backend x tx $tx, net_ring0 rx $ring_rx"
        tail -n 5 "$WORK/rbe.log" "$WORK/rfe.log"
    fi
else
    fail ring "backend made no socket"; tail -n 5 "$WORK/rbe.log"
fi

# --- SIGKILL the frontend mid-burst, then reconnect (same backend) -----------
if kill -0 "$be" 2>/dev/null; then
    start_testpmd kfe1 "net_virtio_user0,path=$S,queues=2" --rxq=2 --txq=2
    before=$(counter "$WORK/r.json" x tx_packets)
    wait_counter "$WORK/r.json" x tx_packets $((before + 10000)) 15
    kill -9 "$FE_PID"
    wait "$FE_PID" 2>/dev/null
    for _ in $(seq 50); do grep -q '"connected":false' "$WORK/r.json" && break; sleep 0.1; done
    sleep 1
    mid=$(counter "$WORK/r.json" x tx_packets)
    alive_after_kill=0
    kill -0 "$be" 2>/dev/null && grep -q '"connected":false' "$WORK/r.json" && alive_after_kill=1
    start_testpmd kfe2 "net_virtio_user0,path=$S,queues=2" --rxq=2 --txq=2
    fe=$FE_PID
    wait_counter "$WORK/r.json" x tx_packets $((mid + 10000)) 15
    stop "$fe"
    rx=$(testpmd_rx "$WORK/kfe2.log")
    after=$(counter "$WORK/r.json" x tx_packets)
    if ((alive_after_kill && rx > 10000 && after > mid + 10000)); then
        pass "sigkill (backend survived, saw the disconnect; the new testpmd got $rx back)"
    else
        fail sigkill "alive+disconnected=$alive_after_kill, new testpmd RX $rx, backend tx $mid -> $after"
        tail -n 8 "$WORK/rbe.log"
    fi
else
    fail sigkill "backend died in the ring scenario"; tail -n 8 "$WORK/rbe.log"
fi

# --- SIGTERM: clean exit, socket gone -----------------------------------------
kill -TERM "$be"
rc=124
for _ in $(seq 100); do kill -0 "$be" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$be" 2>/dev/null; then wait "$be"; rc=$?; fi
if ((rc == 0)) && [[ ! -e $S ]]; then
    pass sigterm
else
    fail sigterm "exit $rc (124: still running after 10 s), socket left: $([[ -e $S ]] && echo yes || echo no)"
    tail -n 5 "$WORK/rbe.log"
fi

# --- client mode: testpmd listens (server=1), we connect and reconnect ------
S=$WORK/c.sock
start_testpmd cfe1 "net_virtio_user0,path=$S,server=1"
wait_socket "$S"
start_backend cbe -- --vhost x="$S,client" --pair x,x --stats "$WORK/c.json"
be=$BE_PID
wait_counter "$WORK/c.json" x tx_packets 10000 15
first=$(counter "$WORK/c.json" x tx_packets)
stop "$FE_PID"
rm -f "$S"
start_testpmd cfe2 "net_virtio_user0,path=$S,server=1"
fe=$FE_PID
wait_counter "$WORK/c.json" x tx_packets $((first + 10000)) 20
stop "$fe"
rx=$(testpmd_rx "$WORK/cfe2.log")
after=$(counter "$WORK/c.json" x tx_packets)
if ((first > 10000 && rx > 10000 && after > first + 10000)) && kill -0 "$be" 2>/dev/null; then
    pass "client (reconnected to a restarted testpmd; it got $rx back)"
else
    fail client "backend tx first $first then $after, restarted testpmd RX $rx"
    tail -n 8 "$WORK/cbe.log" "$WORK/cfe2.log"
fi
stop "$be"

cleanup
finish
