# The virtio-net NIC (vhost-user backend): eth0 is driven by virtio_net, has
# the configured MAC (guest.expect_mac), comes up with guest.ip (default
# 10.0.2.15/24) and carrier, and guest.peer (default 10.0.2.1) answers
# pings, waiting up to guest.ping_wait seconds (default 30) for the first
# answer (a second guest may still be booting). Optional checks:
#   guest.expect_pairs=N  N queue pairs in use (rx-*/tx-* under
#                         /sys/class/net/eth0/queues), and pings sent from
#                         every CPU (so every transmit queue is used)
#   guest.expect_mtu=N    the MTU the device announced
#   guest.linger=S        after the checks, stay up S seconds (a peer guest
#                         may still be pinging this one)
#   guest.restart_wait=S  at the end, print GUEST-VNET-PAUSE (the host then
#                         kills and restarts the backend), see the peer go
#                         silent within S seconds, answer again within S
#                         seconds, and 20 pings from every CPU come back
# Prints GUEST-VNET <mac> <rx queues> <tx queues> <mtu>.
. /tests/lib.sh
. /tests/devlib.sh
TEST=vnet
net_up
want=$(cmdline_get guest.expect_mac) || fail "guest.expect_mac=MAC missing on the command line"
mac=$(cat /sys/class/net/$NET_IF/address)
[ "$mac" = "$want" ] || fail "$NET_IF has MAC $mac, expected $want"
driver=$(basename "$(readlink /sys/class/net/$NET_IF/device/driver)")
[ "$driver" = virtio_net ] || fail "$NET_IF is driven by '$driver', expected virtio_net"
rxq=$(ls -d /sys/class/net/$NET_IF/queues/rx-* | wc -l)
txq=$(ls -d /sys/class/net/$NET_IF/queues/tx-* | wc -l)
mtu=$(cat /sys/class/net/$NET_IF/mtu)
echo "GUEST-VNET $mac $rxq $txq $mtu"
if pairs=$(cmdline_get guest.expect_pairs); then
    [ "$rxq" = "$pairs" ] && [ "$txq" = "$pairs" ] ||
        fail "$NET_IF uses $rxq rx and $txq tx queues, expected $pairs of each"
fi
if want_mtu=$(cmdline_get guest.expect_mtu); then
    [ "$mtu" = "$want_mtu" ] || fail "$NET_IF has MTU $mtu, expected $want_mtu"
fi

wait_s=$(cmdline_get guest.ping_wait) || wait_s=30
i=0
until ping -c 1 -W 1 "$NET_PEER" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -ge "$wait_s" ] && fail "no answer from $NET_PEER for $wait_s s"
done
out=$(ping -c 5 -W 3 "$NET_PEER" 2>&1)
echo "$out" | grep -q ' 0% packet loss' || fail "ping $NET_PEER: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
# From each CPU: the driver picks the transmit queue by CPU, so with
# several pairs this sends on each of them.
ncpu=$(grep -c ^processor /proc/cpuinfo)
cpu=0
while [ $cpu -lt "$ncpu" ]; do
    o=$(taskset "$(printf %x $((1 << cpu)))" ping -c 20 -i 0.05 -W 3 "$NET_PEER" 2>&1)
    echo "$o" | grep -q ' 0% packet loss' ||
        fail "ping $NET_PEER from CPU $cpu: $(echo "$o" | tail -n 2 | tr '\n' ' ')"
    cpu=$((cpu + 1))
done
big=$(ping -c 3 -W 3 -s 4000 "$NET_PEER" 2>&1)
echo "$big" | grep -q ' 0% packet loss' || fail "ping -s 4000 $NET_PEER: $(echo "$big" | tail -n 2 | tr '\n' ' ')"
echo "guest: $TEST: $NET_IF $mac ($driver, $rxq/$txq queues, MTU $mtu) up, $(echo "$out" | grep 'packet loss'); 20 pings from each of $ncpu CPUs and 4000-byte pings fine"
# guest.linger=S: stay up S seconds more, answering pings, so a peer guest
# that started its checks a little later does not lose its last pings to
# this VM powering off.
if linger=$(cmdline_get guest.linger); then
    sleep "$linger"
fi

# Across a backend restart: the VMM reconnects and replays the rings with
# the queue pairs the driver enabled; the guest sees no link change.
if rw=$(cmdline_get guest.restart_wait); then
    echo "GUEST-VNET-PAUSE"
    i=0
    while ping -c 1 -W 1 "$NET_PEER" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -ge "$rw" ] && fail "the peer kept answering for $rw s after GUEST-VNET-PAUSE (backend not restarted?)"
    done
    t0=$(date +%s)
    i=0
    until ping -c 1 -W 1 "$NET_PEER" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -ge "$rw" ] && fail "no answer from $NET_PEER for $rw s after the backend went away"
    done
    cpu=0
    while [ $cpu -lt "$ncpu" ]; do
        o=$(taskset "$(printf %x $((1 << cpu)))" ping -c 20 -i 0.05 -W 3 "$NET_PEER" 2>&1)
        echo "$o" | grep -q ' 0% packet loss' ||
            fail "ping $NET_PEER from CPU $cpu after the restart: $(echo "$o" | tail -n 2 | tr '\n' ' ')"
        cpu=$((cpu + 1))
    done
    echo "guest: $TEST: the peer answered again $(($(date +%s) - t0)) s after it went silent; 20 pings from each CPU fine"
fi
