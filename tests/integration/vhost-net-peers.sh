#!/bin/bash
# vhost-net-peers.sh: build/vhost-user-net against a vhost-user frontend no
# one here wrote: dpdk-testpmd's virtio-user (no VM, no KVM: runs on L0).
# Scenarios (PASS/FAIL lines, then "N passed, M failed"):
#   bad-options   each bad option exits 2 with "vhost-user-net: --flag: ..."
#   ring          --pair x,net_ring0 (ring loops back): same, 2 queue pairs
#   sigkill       testpmd SIGKILLed mid-burst; the backend stays up, a new
#                 testpmd reconnects and traffic flows again
#   client        --vhost x=SOCK,client against testpmd's server=1 socket;
#                 after testpmd restarts we reconnect on our own
#   sigusr1       SIGUSR1 prints the per-port JSON counters on stdout
#   sigterm       SIGTERM: exit 0, server socket unlinked
#   jumbo         --pair x,x (hairpin) with 9000-byte frames (chained mbufs)
#   tap           --pair x,net_tap0 in a network namespace made here: testpmd's
#                 frames reach the kernel's tap, the kernel's ARP requests
#                 reach testpmd
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
IN_NS=

NS=$TAG
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
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
EAL_BE=(--lcores 0@0,1@0 --no-huge -m 128 --no-pci --no-telemetry)
EAL_FE=(--lcores 0@1,1@1 --no-huge -m 256 --single-file-segments --no-pci --no-telemetry)

# start_backend NAME ARGS...: runs the backend with --file-prefix $TAG-NAME.
start_backend() {
    local name=$1; shift
    $IN_NS "$BE" "${EAL_BE[@]}" --file-prefix "$TAG-$name" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    BE_PID=$!
    PIDS+=("$BE_PID")
}

# start_testpmd NAME VDEV [testpmd args]: io forwarding, a first burst sent.
start_testpmd() {
    local name=$1 vdev=$2; shift 2
    dpdk-testpmd "${EAL_FE[@]}" --file-prefix "$TAG-$name" --vdev "$vdev" -- \
        --forward-mode=io --tx-first --auto-start --stats-period 1 --total-num-mbufs=4096 "$@" \
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

# testpmd_rx LOG: RX-packets of its last stats block (printed every second).
testpmd_rx() { grep -a -o 'RX-packets: *[0-9]*' "$1" | tail -n1 | grep -o '[0-9]*$' || echo 0; }

# wait_rx LOG MIN SECS: until testpmd has printed RX-packets > MIN.
wait_rx() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        (($(testpmd_rx "$1") > $2)) && return 0
        sleep 0.1
    done
    return 1
}

# kill_fe PID: testpmd's counters are read from its periodic stats, so no
# need for its graceful exit (seconds on a loaded machine).
kill_fe() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

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

# --- net_ring, 2 queue pairs ------------------------------------------------
S=$WORK/r.sock
start_backend rbe --vdev net_ring0 -- --vhost x="$S,queues=2" --pair x,net_ring0 --stats "$WORK/r.json"
be=$BE_PID
if wait_socket "$S"; then
    start_testpmd rfe "net_virtio_user0,path=$S,queues=2" --rxq=2 --txq=2
    fe=$FE_PID
    wait_rx "$WORK/rfe.log" 5000 15
    kill_fe "$fe"
    wait_counter "$WORK/r.json" x tx_packets 5000 3
    rx=$(testpmd_rx "$WORK/rfe.log")
    tx=$(counter "$WORK/r.json" x tx_packets)
    ring_rx=$(counter "$WORK/r.json" net_ring0 rx_packets)
    if ((rx > 5000 && tx > 5000 && ring_rx > 5000)); then
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
    wait_counter "$WORK/r.json" x tx_packets $((before + 5000)) 15
    kill -9 "$FE_PID"
    wait "$FE_PID" 2>/dev/null
    for _ in $(seq 50); do grep -q '"connected":false' "$WORK/r.json" && break; sleep 0.1; done
    sleep 1
    mid=$(counter "$WORK/r.json" x tx_packets)
    alive_after_kill=0
    kill -0 "$be" 2>/dev/null && grep -q '"connected":false' "$WORK/r.json" && alive_after_kill=1
    start_testpmd kfe2 "net_virtio_user0,path=$S,queues=2" --rxq=2 --txq=2
    fe=$FE_PID
    wait_rx "$WORK/kfe2.log" 5000 15
    kill_fe "$fe"
    wait_counter "$WORK/r.json" x tx_packets $((mid + 5000)) 3
    rx=$(testpmd_rx "$WORK/kfe2.log")
    after=$(counter "$WORK/r.json" x tx_packets)
    if ((alive_after_kill && rx > 5000 && after > mid + 5000)); then
        pass "sigkill (backend survived, saw the disconnect; the new testpmd got $rx back)"
    else
        fail sigkill "alive+disconnected=$alive_after_kill, new testpmd RX $rx, backend tx $mid -> $after"
        tail -n 8 "$WORK/rbe.log"
    fi
else
    fail sigkill "backend died in the ring scenario"; tail -n 8 "$WORK/rbe.log"
fi

# --- SIGUSR1 prints the counters -----------------------------------------------
kill -USR1 "$be" 2>/dev/null
for _ in $(seq 30); do grep -q '"name":"net_ring0","type":"ethdev"' "$WORK/rbe.log" && break; sleep 0.1; done
if grep -q '"name":"x","type":"vhost"' "$WORK/rbe.log" && grep -q '"name":"net_ring0","type":"ethdev"' "$WORK/rbe.log"; then
    pass sigusr1
else
    fail sigusr1 "no JSON counters on stdout after SIGUSR1"; tail -n 5 "$WORK/rbe.log"
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
wait_counter "$WORK/c.json" x tx_packets 5000 15
first=$(counter "$WORK/c.json" x tx_packets)
kill_fe "$FE_PID"
rm -f "$S"
start_testpmd cfe2 "net_virtio_user0,path=$S,server=1"
fe=$FE_PID
wait_rx "$WORK/cfe2.log" 5000 20
kill_fe "$fe"
wait_counter "$WORK/c.json" x tx_packets $((first + 5000)) 3
rx=$(testpmd_rx "$WORK/cfe2.log")
after=$(counter "$WORK/c.json" x tx_packets)
if ((first > 5000 && rx > 5000 && after > first + 5000)) && kill -0 "$be" 2>/dev/null; then
    pass "client (reconnected to a restarted testpmd; it got $rx back)"
else
    fail client "backend tx first $first then $after, restarted testpmd RX $rx"
    tail -n 8 "$WORK/cbe.log" "$WORK/cfe2.log"
fi
stop "$be"

# --- jumbo: 9000-byte frames, chained mbufs both ways -------------------------
S=$WORK/j.sock
start_backend jbe -- --vhost x="$S" --pair x,x --stats "$WORK/j.json"
be=$BE_PID
if wait_socket "$S"; then
    # Segments of 2000 bytes: the peer's frames are chains too.
    start_testpmd jfe "net_virtio_user0,path=$S" --txpkts=2000,2000,2000,2000,1000 \
        --max-pkt-len=9018 --enable-scatter
    fe=$FE_PID
    wait_rx "$WORK/jfe.log" 2000 15
    kill_fe "$fe"
    wait_counter "$WORK/j.json" x tx_packets 2000 3
    rx=$(testpmd_rx "$WORK/jfe.log")
    pk=$(counter "$WORK/j.json" x rx_packets)
    by=$(counter "$WORK/j.json" x rx_bytes)
    tx=$(counter "$WORK/j.json" x tx_packets)
    if ((pk > 2000 && by / pk == 9000 && tx > 2000 && rx > 2000)) && kill -0 "$be" 2>/dev/null; then
        pass "jumbo ($pk frames of $((by / pk)) bytes in, $tx out; testpmd got $rx back)"
    else
        fail jumbo "backend rx $pk frames / $by bytes, tx $tx; testpmd RX $rx"
        tail -n 5 "$WORK/jbe.log" "$WORK/jfe.log"
    fi
else
    fail jumbo "backend made no socket"; tail -n 5 "$WORK/jbe.log"
fi
stop "$be"

# --- tap: the kernel at the other end, in our own network namespace ----------
S=$WORK/t.sock
if ip netns add "$NS"; then
    IN_NS="ip netns exec $NS"
    start_backend tbe --vdev net_tap0,iface=vnt0 -- --vhost x="$S" --pair x,net_tap0 --stats "$WORK/t.json"
    be=$BE_PID
    IN_NS=
    if wait_socket "$S"; then
        start_testpmd tfe "net_virtio_user0,path=$S" --forward-mode=txonly
        fe=$FE_PID
        wait_counter "$WORK/t.json" net_tap0 tx_packets 5000 15
        kern_rx=$(ip -n "$NS" -s link show vnt0 | awk '/RX:/ {getline; print $2; exit}')
        # The other way: the kernel's ARP requests for a neighbour on vnt0.
        ip -n "$NS" addr add 10.77.0.1/24 dev vnt0
        ip netns exec "$NS" ping -c 3 -i 0.3 -W 1 10.77.0.2 >/dev/null 2>&1
        sleep 1.5
        kill_fe "$fe"
        tap_tx=$(counter "$WORK/t.json" net_tap0 tx_packets)
        tap_rx=$(counter "$WORK/t.json" net_tap0 rx_packets)
        x_tx=$(counter "$WORK/t.json" x tx_packets)
        if ((tap_tx > 5000 && ${kern_rx:-0} > 5000 && tap_rx >= 3 && x_tx >= 3)); then
            pass "tap (to the kernel: $tap_tx, kernel counted ${kern_rx}; from the kernel: $tap_rx, to testpmd: $x_tx)"
        else
            fail tap "net_tap0 tx $tap_tx (kernel rx ${kern_rx:-?}), net_tap0 rx $tap_rx, x tx $x_tx"
            tail -n 8 "$WORK/tbe.log"
        fi
    else
        fail tap "backend made no socket"; tail -n 8 "$WORK/tbe.log"
    fi
    stop "$be"
    ip netns del "$NS"
else
    fail tap "cannot create network namespace $NS (needs root)"
fi

cleanup
finish
