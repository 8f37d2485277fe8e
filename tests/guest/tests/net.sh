# The emulated NIC: eth0 has the configured MAC (guest.expect_mac), comes up
# with guest.ip (default 10.0.2.15/24) and carrier, and the host side
# (guest.peer, default 10.0.2.1) answers pings.
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
echo "guest: $TEST: $NET_IF $mac up, $(echo "$out" | grep 'packet loss')"
