# Traffic the host drives (tests/integration/emulated.sh follows the same
# sequence; every step has a timeout on both sides):
#   guest: link up, listen on TCP guest.port_rx (default 5001), print
#          GUEST-NET-READY
#   host:  flood ping, then send its file to the guest's port
#   guest: print GUEST-NET-RX <bytes> <sha256> of what arrived, make
#          guest.tx_mib (default 64) MiB of random data, print
#          GUEST-NET-TX <bytes> <sha256>, send it to the host's port
#          guest.port_tx (default 5002), retrying until the host listens,
#          then print GUEST-NETSTAT rx_packets tx_packets rx_errors tx_errors
# The host compares the sums; this script only fails on its own errors.
. /tests/lib.sh
. /tests/devlib.sh
TEST=nethost
net_up
port_rx=$(cmdline_get guest.port_rx) || port_rx=5001
port_tx=$(cmdline_get guest.port_tx) || port_tx=5002
tx_mib=$(cmdline_get guest.tx_mib) || tx_mib=64

echo "GUEST-NET-READY"
timeout 600 nc -l -p "$port_rx" </dev/null >/tmp/net.rx || fail "receiving on port $port_rx: nc failed or timed out"
echo "GUEST-NET-RX $(wc -c </tmp/net.rx) $(sha_of /tmp/net.rx)"
rm -f /tmp/net.rx

dd if=/dev/urandom of=/tmp/net.tx bs=1M count="$tx_mib" iflag=fullblock 2>/dev/null ||
    fail "cannot make $tx_mib MiB of random data"
echo "GUEST-NET-TX $(wc -c </tmp/net.tx) $(sha_of /tmp/net.tx)"
t0=$(date +%s)
i=0
until nc "$NET_PEER" "$port_tx" </tmp/net.tx 2>/dev/null; do
    i=$((i + 1))
    [ $i -ge 120 ] && fail "could not send to $NET_PEER:$port_tx for 120 s"
    sleep 1
done
secs=$(($(date +%s) - t0))
rm -f /tmp/net.tx
st=/sys/class/net/$NET_IF/statistics
# For the host's per-packet figures: packets and errors as the driver counted them.
echo "GUEST-NETSTAT $(cat $st/rx_packets) $(cat $st/tx_packets) $(cat $st/rx_errors) $(cat $st/tx_errors)"
# TCP's retransmissions tell a lossy NIC from a slow one.
echo "guest: $TEST: sent $tx_mib MiB to $NET_PEER:$port_tx in $secs s; TCP $(awk '/^Tcp: [0-9]/ { print "out", $12, "retransmitted", $13, "in", $11, "bad", $14 }' /proc/net/snmp)"
