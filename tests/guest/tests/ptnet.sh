# An assigned NIC (passthrough path): eth0 is driven by the guest's own
# driver (guest.expect_driver, default e1000e), gets carrier with guest.ip
# (default 10.0.2.15/24), and the peer (guest.peer; for QEMU user networking
# behind L1's NIC, its gateway 10.0.2.2) answers pings, before and after a
# link down/up cycle (the driver resets the function).
. /tests/lib.sh
. /tests/devlib.sh
TEST=ptnet
want=$(cmdline_get guest.expect_driver) || want=e1000e
net_up
driver=$(basename "$(readlink /sys/class/net/$NET_IF/device/driver)")
[ "$driver" = "$want" ] || fail "$NET_IF is driven by '$driver', expected $want"
out=$(ping -c 5 -W 3 "$NET_PEER" 2>&1)
echo "$out" | grep -q ' 0% packet loss' || fail "ping $NET_PEER: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
ip link set $NET_IF down || fail "ip link set $NET_IF down failed"
net_up
again=$(ping -c 3 -W 3 "$NET_PEER" 2>&1)
echo "$again" | grep -q ' 0% packet loss' || fail "ping $NET_PEER after link down/up: $(echo "$again" | tail -n 2 | tr '\n' ' ')"
echo "guest: $TEST: $NET_IF ($driver, $(cat /sys/class/net/$NET_IF/address)) up, $(echo "$out" | grep 'packet loss'); fine again after a link down/up"
