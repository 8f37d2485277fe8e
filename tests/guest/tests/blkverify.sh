# A write-and-verify loop on the disk for guest.verify_secs seconds (default
# 12), for tests that disturb the disk's backend meanwhile (vhost-restart):
# each round writes 8 chunks of 4 MiB of fresh random data with O_DIRECT,
# then reads each back with O_DIRECT and compares sha256s. Every request
# must complete and every chunk must read back as written, however often
# the backend restarts. A background reader keeps O_DIRECT reads of the same
# region going meanwhile, so the disk nearly always has requests in flight
# (its reads must not fail either). Prints GUEST-VERIFY-START when the I/O
# begins.
. /tests/lib.sh
. /tests/devlib.sh
TEST=blkverify
dev=$(disk_dev)
secs=$(cmdline_get guest.verify_secs) || secs=12
chunks=8

echo "GUEST-VERIFY-START"
start=$(date +%s)
(
    while [ ! -e /tmp/verify.stop ]; do
        dd if="$dev" of=/dev/null bs=4M count=$chunks iflag=direct 2>/tmp/reader.err ||
            { echo "reader: $(tail -n 1 /tmp/reader.err)" >/tmp/reader.failed; break; }
    done
) &
reader=$!
round=0
verified=0
while [ $(($(date +%s) - start)) -lt "$secs" ]; do
    round=$((round + 1))
    i=0
    while [ $i -lt $chunks ]; do
        dd if=/dev/urandom of=/tmp/chunk.$i bs=1M count=4 iflag=fullblock 2>/dev/null ||
            fail "round $round: cannot make random data"
        sum=$(sha_of /tmp/chunk.$i)
        eval "want_$i=$sum"
        dd if=/tmp/chunk.$i of="$dev" bs=4M seek=$i count=1 oflag=direct 2>/tmp/dd.err ||
            fail "round $round: writing chunk $i: $(tail -n 1 /tmp/dd.err)"
        i=$((i + 1))
    done
    i=0
    while [ $i -lt $chunks ]; do
        got=$(dd if="$dev" bs=4M skip=$i count=1 iflag=direct 2>/tmp/dd.err | sha256sum | cut -d' ' -f1)
        eval "want=\$want_$i"
        [ "$got" = "$want" ] ||
            fail "round $round: chunk $i read back with sha256 $got, wrote $want ($(tail -n 1 /tmp/dd.err))"
        verified=$((verified + 1))
        i=$((i + 1))
    done
    echo "guest: $TEST: round $round verified"
done
touch /tmp/verify.stop
wait $reader
rm -f /tmp/chunk.* /tmp/verify.stop
[ ! -e /tmp/reader.failed ] || fail "background reader: $(cat /tmp/reader.failed)"
echo "guest: $TEST: $dev: $round rounds, $verified chunks of 4 MiB written and read back intact"
