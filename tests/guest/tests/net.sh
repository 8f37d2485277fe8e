# The emulated NIC: eth0 has the configured MAC (guest.expect_mac), comes up
# with guest.ip (default 10.0.2.15/24) and carrier, and the host side
# (guest.peer, default 10.0.2.1) answers pings, also 8000-byte ones
# (fragmented) and after the link went down and up again.
. /tests/lib.sh
. /tests/devlib.sh
TEST=net
net_up
want=$(cmdline_get guest.expect_mac) || fail "guest.expect_mac=MAC missing on the command line"
mac=$(cat /sys/class/net/$NET_IF/address)
[ "$mac" = "$want" ] || fail "$NET_IF has MAC $mac, expected $want"
driver=$(basename "$(readlink /sys/class/net/$NET_IF/device/driver)")
[ "$driver" = e1000 ] || fail "$NET_IF is driven by '$driver', expected e1000"
out=$(ping -c 5 -W 3 "$NET_PEER" 2>&1)
echo "$out" | grep -q ' 0% packet loss' || fail "ping $NET_PEER: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
# Bigger than the MTU: the host reassembles fragments, the reply comes back
# as several frames.
big=$(ping -c 3 -W 3 -s 8000 "$NET_PEER" 2>&1)
echo "$big" | grep -q ' 0% packet loss' || fail "ping -s 8000 $NET_PEER: $(echo "$big" | tail -n 2 | tr '\n' ' ')"
# Down and up again: the driver resets the NIC and rebuilds its rings.
ip link set $NET_IF down || fail "ip link set $NET_IF down failed"
net_up
again=$(ping -c 3 -W 3 "$NET_PEER" 2>&1)
echo "$again" | grep -q ' 0% packet loss' || fail "ping $NET_PEER after link down/up: $(echo "$again" | tail -n 2 | tr '\n' ' ')"
echo "guest: $TEST: $NET_IF $mac up, $(echo "$out" | grep 'packet loss'); 8000-byte pings and a link down/up cycle fine"
