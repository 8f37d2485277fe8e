# Discard and write-zeroes on the emulated disk: a random 24 MiB pattern at
# 120 MiB; discarding (blkdiscard, NVMe Dataset Management) the middle 8 MiB
# reads back zeroes there and the pattern around it; the same after
# rewriting the pattern and zeroing the middle with BLKZEROOUT (NVMe Write
# Zeroes when the controller offers it). The disk needs at least 144 MiB.
. /tests/lib.sh
. /tests/devlib.sh
TEST=discard
dev=$(disk_dev)
name=${dev#/dev/}
[ $(($(cat /sys/block/$name/size) / 2048)) -ge 144 ] || fail "$dev is smaller than the 144 MiB this test needs"
max_discard=$(cat /sys/block/$name/queue/discard_max_bytes)
[ "$max_discard" -gt 0 ] || fail "$dev does not support discard (queue/discard_max_bytes is 0: no DSM in the controller's ONCS?)"

dd if=/dev/urandom of=/tmp/pattern bs=1M count=24 iflag=fullblock 2>/dev/null || fail "cannot make random data"
head_sum=$(sha_of /tmp/pattern 0 8)
tail_sum=$(sha_of /tmp/pattern 16 8)
zero_sum=$(sha_of /dev/zero 0 8)

# check HOW: the 24 MiB at 120 MiB hold pattern, zeroes, pattern.
check() {
    drop_caches "$dev"
    got=$(sha_of "$dev" 120 8 direct)
    [ "$got" = "$head_sum" ] || fail "after $1: the 8 MiB before the range changed"
    got=$(sha_of "$dev" 128 8 direct)
    [ "$got" = "$zero_sum" ] || fail "after $1: the 8 MiB range does not read back as zeroes (sha256 $got)"
    got=$(sha_of "$dev" 136 8 direct)
    [ "$got" = "$tail_sum" ] || fail "after $1: the 8 MiB after the range changed"
}

write_pattern() {
    dd if=/tmp/pattern of="$dev" bs=1M seek=120 oflag=direct conv=fsync 2>/tmp/dd.err ||
        fail "writing the pattern: $(tail -n 1 /tmp/dd.err)"
    got=$(sha_of "$dev" 128 8 direct)
    [ "$got" = "$(sha_of /tmp/pattern 8 8)" ] || fail "the pattern did not read back before $1"
}

write_pattern discard
out=$(blkdiscard -o $((128 << 20)) -l $((8 << 20)) "$dev" 2>&1) || fail "blkdiscard: $out"
check discard

write_pattern write-zeroes
out=$(blkio zeroout "$dev" $((128 << 20)) $((8 << 20)) 2>&1) || fail "$out"
check write-zeroes
rm -f /tmp/pattern
echo "guest: $TEST: discard and write-zeroes of 8 MiB read back zeroes, neighbours intact (discard_max_bytes $max_discard, write_zeroes_max_bytes $(cat /sys/block/$name/queue/write_zeroes_max_bytes))"
