/* The NVM command set: Read, Write, Flush, Write Zeroes, Dataset Management,
 * and the PRP walk that turns a command's PRP1/PRP2/lists into host iovecs
 * over guest RAM, so the backend reads and writes guest pages directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk_backend.h"
#include "memory.h"
#include "nvme.h"
#include "pci.h"

enum { IO_FLUSH = 0x00, IO_WRITE = 0x01, IO_READ = 0x02, IO_WRITE_ZEROES = 0x08, IO_DSM = 0x09 };

#define RW_FUA          (1u << 30)
#define WZ_DEAC         (1u << 25)
#define DSM_DEALLOCATE  (1u << 2)
#define DSM_MAX_RANGES  256
#define PAGE_MASK       ((uint64_t)NVME_PAGE_SIZE - 1)

/* --- PRPs ---------------------------------------------------------------- */

struct iov_builder {
    struct nvme_ctrl *c;
    struct iovec *iov;
    unsigned max, n;
};

/* Adds [gpa, gpa+len) (inside one page), merged with the previous entry when
 * the host addresses follow on. */
static uint16_t add_segment(struct iov_builder *b, uint64_t gpa, uint64_t len)
{
    uint8_t *hva = pci_dma_ptr(b->c->pdev, b->c->mem, gpa, len);

    if (!hva) {
        nvme_warn_once(b->c, NVME_WARN_DMA, "PRP entry 0x%llx is not in RAM",
                       (unsigned long long)gpa);
        return NVME_SC_DATA_XFER_ERROR;
    }
    if (b->n && (uint8_t *)b->iov[b->n - 1].iov_base + b->iov[b->n - 1].iov_len == hva) {
        b->iov[b->n - 1].iov_len += len;
        return NVME_SC_SUCCESS;
    }
    if (b->n == b->max)
        return NVME_SC_INVALID_FIELD;
    b->iov[b->n++] = (struct iovec){ .iov_base = hva, .iov_len = len };
    return NVME_SC_SUCCESS;
}

/* PRP lists: every entry but the last of a list page points at a data page;
 * the last one points at the next list page when more than one page of data
 * remains. The walk is bounded by len, so a list that loops ends anyway. */
static uint16_t walk_prp_list(struct iov_builder *b, uint64_t list, uint64_t remaining)
{
    uint16_t status;

    if (list & 7)
        return NVME_SC_PRP_OFFSET_INVALID;
    while (remaining) {
        unsigned entries = (unsigned)((NVME_PAGE_SIZE - (list & PAGE_MASK)) / 8);
        const uint64_t *page = pci_dma_ptr(b->c->pdev, b->c->mem, list, entries * 8ULL);
        uint64_t next = 0;

        if (!page) {
            nvme_warn_once(b->c, NVME_WARN_DMA, "PRP list 0x%llx is not in RAM",
                           (unsigned long long)list);
            return NVME_SC_DATA_XFER_ERROR;
        }
        for (unsigned i = 0; i < entries && remaining; i++) {
            uint64_t entry = __atomic_load_n(&page[i], __ATOMIC_RELAXED);
            uint64_t chunk = remaining < NVME_PAGE_SIZE ? remaining : NVME_PAGE_SIZE;
            if (entry & PAGE_MASK)
                return NVME_SC_PRP_OFFSET_INVALID;
            if (i == entries - 1 && remaining > NVME_PAGE_SIZE) {
                next = entry;
                break;
            }
            if ((status = add_segment(b, entry, chunk)))
                return status;
            remaining -= chunk;
        }
        list = next;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_map_prps(struct nvme_ctrl *c, uint64_t prp1, uint64_t prp2, uint64_t len,
                       struct iovec *iov, unsigned max_iov, unsigned *niov)
{
    struct iov_builder b = { .c = c, .iov = iov, .max = max_iov };
    uint64_t first, remaining;
    uint16_t status;

    *niov = 0;
    if (len == 0)
        return NVME_SC_SUCCESS;
    if (prp1 & 3)
        return NVME_SC_PRP_OFFSET_INVALID;   /* data must start dword aligned */
    first = NVME_PAGE_SIZE - (prp1 & PAGE_MASK);
    if (first > len)
        first = len;
    if ((status = add_segment(&b, prp1, first)))
        return status;
    remaining = len - first;
    if (remaining == 0) {
        status = NVME_SC_SUCCESS;
    } else if (remaining <= NVME_PAGE_SIZE) {
        status = prp2 & PAGE_MASK ? NVME_SC_PRP_OFFSET_INVALID
                                  : add_segment(&b, prp2, remaining);
    } else {
        status = walk_prp_list(&b, prp2, remaining);
    }
    *niov = b.n;
    return status;
}

static uint16_t copy_guest(struct nvme_ctrl *c, const struct nvme_sqe *cmd, void *buf,
                           uint32_t len, uint32_t xfer_len, bool to_guest)
{
    struct iovec iov[NVME_MAX_IOV];
    unsigned niov;
    uint32_t done = 0;
    uint16_t status;

    if (cmd->flags & 0xc0)
        return NVME_SC_INVALID_FIELD;   /* SGLs are not supported */
    status = nvme_map_prps(c, cmd->prp1, cmd->prp2, xfer_len, iov, NVME_MAX_IOV, &niov);
    if (status)
        return status;
    for (unsigned i = 0; i < niov; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t n = iov[i].iov_len;
        size_t from_buf = done >= len ? 0 : (len - done < n ? len - done : n);
        if (to_guest) {
            memcpy(p, (uint8_t *)buf + done, from_buf);
            memset(p + from_buf, 0, n - from_buf);
        } else {
            memcpy((uint8_t *)buf + done, p, from_buf);
        }
        done += (uint32_t)n;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_copy_to_guest(struct nvme_ctrl *c, const struct nvme_sqe *cmd, const void *buf,
                            uint32_t len, uint32_t xfer_len)
{
    return copy_guest(c, cmd, (void *)buf, len, xfer_len, true);
}

uint16_t nvme_copy_from_guest(struct nvme_ctrl *c, const struct nvme_sqe *cmd, void *buf,
                              uint32_t len)
{
    return copy_guest(c, cmd, buf, len, len, false);
}

/* --- requests ------------------------------------------------------------ */

/* One command in the backend. Completion of its last operation posts the
 * CQE, unless a reset came in between (stale generation). */
struct io_request {
    struct nvme_ctrl *c;
    uint64_t generation;
    uint16_t sqid, cid;
    uint16_t status;
    uint8_t opcode;
    unsigned pending;           /* backend operations not yet completed */
    uint64_t bytes;
    unsigned niov;
    struct iovec iov[];
};

static uint16_t errno_status(struct nvme_ctrl *c, uint8_t opcode, int err)
{
    nvme_warn_once(c, NVME_WARN_BACKEND, "I/O error on the image: %s", strerror(-err));
    switch (err) {
    case -EROFS:
        return NVME_SC_NS_WRITE_PROTECTED;
    case -ENOSPC:
    case -EDQUOT:
        return NVME_SC_CAP_EXCEEDED;
    case -EIO:
        return opcode == IO_READ ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT;
    default:
        return NVME_SC_INTERNAL;
    }
}

static void request_done(void *opaque, int result)
{
    struct io_request *r = opaque;
    struct nvme_ctrl *c = r->c;

    if (result < 0 && !r->status)
        r->status = errno_status(c, r->opcode, result);
    if (--r->pending)
        return;
    if (r->generation == c->generation) {
        if (!r->status && r->opcode == IO_READ) {
            c->smart.read_bytes += r->bytes;
            c->smart.read_cmds++;
        } else if (!r->status && r->opcode == IO_WRITE) {
            c->smart.write_bytes += r->bytes;
            c->smart.write_cmds++;
        }
        nvme_post_completion(c, r->sqid, r->cid, r->status, 0);
    }
    free(r);
    nvme_io_request_done(c);
}

static struct io_request *request_new(struct nvme_ctrl *c, uint16_t sqid,
                                      const struct nvme_sqe *cmd, unsigned niov)
{
    struct io_request *r = calloc(1, sizeof(*r) + niov * sizeof(struct iovec));

    if (!r)
        return NULL;
    r->c = c;
    r->generation = c->generation;
    r->sqid = sqid;
    r->cid = cmd->cid;
    r->opcode = cmd->opcode;
    return r;
}

/* After the backend took at least one operation the command completes
 * through request_done; otherwise the caller reports status now. */
static uint16_t request_started(struct nvme_ctrl *c, struct io_request *r, int first_error)
{
    if (r->pending == 0) {
        uint16_t status = first_error ? errno_status(c, r->opcode, first_error)
                                      : NVME_SC_SUCCESS;
        free(r);
        return status;
    }
    if (first_error && !r->status)
        r->status = errno_status(c, r->opcode, first_error);
    c->io_inflight++;
    return NVME_NO_COMPLETION;
}

/* --- commands ------------------------------------------------------------ */

static bool lba_range_ok(const struct nvme_ctrl *c, uint64_t slba, uint64_t nlb)
{
    return slba < c->nsze && nlb <= c->nsze - slba;
}

static uint16_t read_write(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd,
                           bool write)
{
    uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
    uint64_t nlb = (cmd->cdw12 & 0xffff) + 1ULL;
    uint64_t len = nlb << NVME_LBA_SHIFT;
    struct io_request *r;
    uint16_t status;
    int ret;

    if (write && c->read_only)
        return NVME_SC_NS_WRITE_PROTECTED;
    if (!lba_range_ok(c, slba, nlb))
        return NVME_SC_LBA_RANGE;
    if (len > NVME_MAX_XFER)
        return NVME_SC_INVALID_FIELD;   /* beyond MDTS */
    r = request_new(c, sqid, cmd, NVME_MAX_IOV);
    if (!r)
        return NVME_SC_INTERNAL;
    status = nvme_map_prps(c, cmd->prp1, cmd->prp2, len, r->iov, NVME_MAX_IOV, &r->niov);
    if (status) {
        free(r);
        return status;
    }
    r->bytes = len;
    if (write)
        ret = blk_backend_writev(c->blk, r->iov, r->niov, slba << NVME_LBA_SHIFT,
                                 (cmd->cdw12 & RW_FUA) || !c->vwc_enabled ? BLK_FUA : 0,
                                 request_done, r);
    else
        ret = blk_backend_readv(c->blk, r->iov, r->niov, slba << NVME_LBA_SHIFT, request_done,
                                r);
    if (ret == 0)
        r->pending = 1;
    return request_started(c, r, ret);
}

static uint16_t flush(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd)
{
    struct io_request *r = request_new(c, sqid, cmd, 0);
    int ret;

    if (!r)
        return NVME_SC_INTERNAL;
    ret = blk_backend_flush(c->blk, request_done, r);
    if (ret == 0)
        r->pending = 1;
    return request_started(c, r, ret);
}

static uint16_t write_zeroes(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd)
{
    uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
    uint64_t nlb = (cmd->cdw12 & 0xffff) + 1ULL;
    unsigned flags = 0;
    struct io_request *r;
    int ret;

    if (c->read_only)
        return NVME_SC_NS_WRITE_PROTECTED;
    if (!lba_range_ok(c, slba, nlb))
        return NVME_SC_LBA_RANGE;
    if (cmd->cdw12 & WZ_DEAC)
        flags |= BLK_UNMAP;
    if ((cmd->cdw12 & RW_FUA) || !c->vwc_enabled)
        flags |= BLK_FUA;
    r = request_new(c, sqid, cmd, 0);
    if (!r)
        return NVME_SC_INTERNAL;
    ret = blk_backend_write_zeroes(c->blk, slba << NVME_LBA_SHIFT, nlb << NVME_LBA_SHIFT, flags,
                                   request_done, r);
    if (ret == 0)
        r->pending = 1;
    return request_started(c, r, ret);
}

struct dsm_range {
    uint32_t attributes;
    uint32_t nlb;               /* not 0-based */
    uint64_t slba;
};

static uint16_t dataset_management(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd)
{
    struct dsm_range ranges[DSM_MAX_RANGES];
    unsigned nr = (cmd->cdw10 & 0xff) + 1;
    struct io_request *r;
    uint16_t status;
    int first_error = 0;

    if (!(cmd->cdw11 & DSM_DEALLOCATE))
        return NVME_SC_SUCCESS;   /* access hints only */
    if (c->read_only)
        return NVME_SC_NS_WRITE_PROTECTED;
    status = nvme_copy_from_guest(c, cmd, ranges, nr * (uint32_t)sizeof(ranges[0]));
    if (status)
        return status;
    for (unsigned i = 0; i < nr; i++)
        if (ranges[i].nlb && !lba_range_ok(c, ranges[i].slba, ranges[i].nlb))
            return NVME_SC_LBA_RANGE;
    r = request_new(c, sqid, cmd, 0);
    if (!r)
        return NVME_SC_INTERNAL;
    for (unsigned i = 0; i < nr; i++) {
        int ret;
        if (!ranges[i].nlb)
            continue;
        ret = blk_backend_discard(c->blk, ranges[i].slba << NVME_LBA_SHIFT,
                                  (uint64_t)ranges[i].nlb << NVME_LBA_SHIFT, request_done, r);
        if (ret == 0)
            r->pending++;
        else if (!first_error)
            first_error = ret;
    }
    return request_started(c, r, first_error);
}

uint16_t nvme_io_execute(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd)
{
    if (cmd->flags & 0xc3) {   /* fused operations, SGLs */
        nvme_warn_once(c, NVME_WARN_BAD_COMMAND, "I/O command with FUSE/PSDT bits 0x%x",
                       cmd->flags);
        return NVME_SC_INVALID_FIELD;
    }
    if (cmd->opcode != IO_READ && cmd->opcode != IO_WRITE && cmd->opcode != IO_FLUSH &&
        cmd->opcode != IO_WRITE_ZEROES && cmd->opcode != IO_DSM) {
        nvme_warn_once(c, NVME_WARN_BAD_COMMAND, "unsupported I/O opcode 0x%02x", cmd->opcode);
        return NVME_SC_INVALID_OPCODE;
    }
    if (cmd->nsid != NVME_NSID && !(cmd->opcode == IO_FLUSH && cmd->nsid == 0xffffffffu))
        return NVME_SC_INVALID_NS;
    switch (cmd->opcode) {
    case IO_READ:          return read_write(c, sqid, cmd, false);
    case IO_WRITE:         return read_write(c, sqid, cmd, true);
    case IO_FLUSH:         return flush(c, sqid, cmd);
    case IO_WRITE_ZEROES:  return write_zeroes(c, sqid, cmd);
    default:               return dataset_management(c, sqid, cmd);
    }
}
