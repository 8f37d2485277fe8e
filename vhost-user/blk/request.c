/* request.c: turns a walked descriptor chain into a virtio-blk request
 * (virtio 1.2, 5.2.6): a 16-byte header {type, reserved, sector} in readable
 * buffers, data, and a 1-byte status at the end of the writable buffers.
 * The header and status may straddle descriptors; data iovecs are cut out
 * of the segments around them. */
#include "blk.h"

#include <string.h>

/* Copies len bytes at byte offset off of the readable segments. */
static bool copy_out(const struct virtq_chain *c, uint64_t off, void *dst, size_t len)
{
    uint8_t *d = dst;
    for (unsigned i = 0; i < c->nout && len; i++) {
        if (off >= c->segs[i].len) {
            off -= c->segs[i].len;
            continue;
        }
        size_t n = c->segs[i].len - off;
        if (n > len)
            n = len;
        memcpy(d, (uint8_t *)c->segs[i].addr + off, n);
        d += n;
        len -= n;
        off = 0;
    }
    return len == 0;
}

/* Appends segments [first, last) of c, limited to bytes [skip, skip+len), as iovecs. */
static bool take_iov(struct blk_req *r, unsigned max_iov, const struct virtq_chain *c,
                     unsigned first, unsigned last, uint64_t skip, uint64_t len)
{
    for (unsigned i = first; i < last && len; i++) {
        uint64_t slen = c->segs[i].len;
        if (skip >= slen) {
            skip -= slen;
            continue;
        }
        uint64_t n = slen - skip;
        if (n > len)
            n = len;
        if (n == 0)
            continue;
        if (r->niov == max_iov)
            return false;
        r->iov[r->niov++] = (struct iovec){ (uint8_t *)c->segs[i].addr + skip, n };
        r->data_len += n;
        len -= n;
        skip = 0;
    }
    return len == 0;
}

static bool range_ok(const struct blk_dev *dev, uint64_t sector, uint64_t bytes)
{
    uint64_t sectors = bytes / BLK_SECTOR;
    return sector <= dev->capacity && sectors <= dev->capacity - sector;
}

int blk_req_parse(const struct blk_dev *dev, const struct virtq_chain *c, struct blk_req *r,
                  unsigned max_iov)
{
    struct virtio_blk_outhdr hdr;

    r->head = c->head;
    r->status = NULL;
    r->in_len = 0;
    r->niov = 0;
    r->data_len = 0;
    r->done = 0;
    r->type = UINT32_MAX;

    /* the status byte: last byte of the last writable segment */
    if (c->in_len == 0)
        return VIRTIO_BLK_S_IOERR;
    unsigned last = c->nout + c->nin - 1;
    if (c->segs[last].len == 0)
        return VIRTIO_BLK_S_IOERR;
    r->status = (uint8_t *)c->segs[last].addr + c->segs[last].len - 1;
    r->in_len = 1;

    if (!copy_out(c, 0, &hdr, sizeof(hdr)))
        return VIRTIO_BLK_S_IOERR;
    r->type = hdr.type;
    r->sector = hdr.sector;
    uint64_t out_data = c->out_len - sizeof(hdr);
    uint64_t in_data = c->in_len - 1;

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
        if (out_data || in_data % BLK_SECTOR || !range_ok(dev, hdr.sector, in_data))
            return VIRTIO_BLK_S_IOERR;
        if (!take_iov(r, max_iov, c, c->nout, c->nout + c->nin, 0, in_data))
            return VIRTIO_BLK_S_IOERR;
        r->in_len = (uint32_t)(in_data + 1);
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_OUT:
        if (dev->opts.readonly)
            return VIRTIO_BLK_S_IOERR;
        if (in_data || out_data % BLK_SECTOR || !range_ok(dev, hdr.sector, out_data))
            return VIRTIO_BLK_S_IOERR;
        if (!take_iov(r, max_iov, c, 0, c->nout, sizeof(hdr), out_data))
            return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_FLUSH:
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        /* up to 20 bytes, not NUL-terminated when the serial fills them */
        const char *serial = dev->opts.serial ? dev->opts.serial : BLK_SERIAL;
        char id[VIRTIO_BLK_ID_BYTES] = { 0 };
        memcpy(id, serial, strnlen(serial, sizeof(id)));
        uint64_t n = in_data < sizeof(id) ? in_data : sizeof(id);
        uint64_t off = 0;
        for (unsigned i = c->nout; i <= last && off < n; i++) {
            uint64_t k = c->segs[i].len;
            if (k > n - off)
                k = n - off;
            memcpy(c->segs[i].addr, id + off, k);
            off += k;
        }
        r->in_len = (uint32_t)(n + 1);
        return BLK_REQ_DONE;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
        /* exactly one range (max_discard_seg = max_write_zeroes_seg = 1) */
        struct virtio_blk_discard_write_zeroes range;
        if (dev->opts.readonly)
            return VIRTIO_BLK_S_IOERR;
        if (out_data != sizeof(range) || in_data)
            return VIRTIO_BLK_S_UNSUPP;
        if (!copy_out(c, sizeof(hdr), &range, sizeof(range)))
            return VIRTIO_BLK_S_IOERR;
        /* flags: only "unmap" for write zeroes; none for discard */
        uint32_t allowed = hdr.type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
        if (range.flags & ~allowed)
            return VIRTIO_BLK_S_UNSUPP;
        uint64_t bytes = (uint64_t)range.num_sectors * BLK_SECTOR;
        if (!range_ok(dev, range.sector, bytes))
            return VIRTIO_BLK_S_IOERR;
        r->range_sector = range.sector;
        r->range_len = bytes;
        r->range_flags = range.flags;
        return VIRTIO_BLK_S_OK;
    }
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

bool blk_req_advance(struct blk_req *r, uint64_t n)
{
    if (n == 0 || n >= r->data_len - r->done)
        return false;
    r->done += n;
    while (r->niov && n >= r->iov[0].iov_len) {
        n -= r->iov[0].iov_len;
        r->iov++;
        r->niov--;
    }
    /* n < what was left, so an iovec with bytes remaining is always there */
    r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
    r->iov[0].iov_len -= n;
    return true;
}
