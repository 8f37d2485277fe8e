# Digests of a region of the disk, chunk by chunk, for checks across VM
# boots (path switches, restarts): the host compares them with the previous
# boot's and with the media. Options:
#   guest.digest_skip=MIB   where the region starts (default 0)
#   guest.digest_mib=N      its size, in 1 MiB chunks (default 32)
#   guest.digest_write=A:N  first overwrite chunks A..A+N-1 of the region
#                           with fresh random data (O_DIRECT, fsync)
# Then, after dropping caches, every chunk is read back with O_DIRECT and
# printed as "GUEST-DIGEST <chunk> <sha256>"; the chunks just written must
# read back as written. Prints GUEST-DIGEST-DONE <chunks> at the end.
. /tests/lib.sh
. /tests/devlib.sh
TEST=blkdigest
disk=$(disk_dev)
skip=$(cmdline_get guest.digest_skip) || skip=0
mib=$(cmdline_get guest.digest_mib) || mib=32

if w=$(cmdline_get guest.digest_write); then
    first=${w%%:*}
    n=${w#*:}
    [ "$first" -ge 0 ] && [ "$n" -gt 0 ] && [ $((first + n)) -le "$mib" ] ||
        fail "guest.digest_write=$w: chunks outside the region of $mib"
    dd if=/dev/urandom of=/tmp/digest.new bs=1M count="$n" iflag=fullblock 2>/dev/null || fail "no random data"
    dd if=/tmp/digest.new of="$disk" bs=1M seek=$((skip + first)) oflag=direct conv=fsync,notrunc 2>/dev/null ||
        fail "cannot write chunks $first..$((first + n - 1)) of $disk"
fi
drop_caches "$disk"
c=0
while [ $c -lt "$mib" ]; do
    got=$(sha_of "$disk" $((skip + c)) 1 direct)
    [ ${#got} = 64 ] || fail "cannot read chunk $c of $disk"
    if [ -n "${n:-}" ] && [ $c -ge "$first" ] && [ $c -lt $((first + n)) ]; then
        want=$(sha_of /tmp/digest.new $((c - first)) 1)
        [ "$got" = "$want" ] || fail "chunk $c reads back $got just after being written as $want"
    fi
    echo "GUEST-DIGEST $c $got"
    c=$((c + 1))
done
echo "GUEST-DIGEST-DONE $mib"
echo "guest: $TEST: $mib MiB from MiB $skip of $disk digested${n:+, chunks $first..$((first + n - 1)) rewritten first}"
