#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_backend.h"

#define RING_ENTRIES     256
#define RING_CQ_ENTRIES  4096
#define ZERO_BUF_SIZE    (1u << 20)
#define CLOSE_TIMEOUT_MS 30000

enum blk_op_kind { OP_READ, OP_WRITE, OP_FLUSH, OP_FALLOCATE, OP_ZERO_WRITE };

/* One request: its own context travels in the SQE's user_data, so a
 * completion needs no lookup. iov/niov is what is still to transfer. */
struct blk_op {
    struct blk_backend *b;
    enum blk_op_kind kind;
    blk_done_fn done;
    void *opaque;
    uint64_t offset;
    uint64_t len;            /* fallocate / zero writes: bytes still to do */
    int falloc_mode;
    unsigned flags;
    struct iovec *iov;
    unsigned niov;
    struct blk_op *next;     /* backlog: no SQE was free */
    struct iovec iov_storage[];
};

struct blk_backend {
    int fd;
    int event_fd;
    struct io_uring ring;
    bool ring_ready;
    uint64_t size;
    bool read_only, blockdev;
    /* Learnt from the host: fallocate modes it refuses, so later requests
     * go straight to writing zeroes. */
    bool no_punch_hole, no_zero_range;
    unsigned inflight;
    unsigned queued;         /* SQEs prepared but not yet submitted */
    struct blk_op *backlog_head, *backlog_tail;
    void *zero_buf;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t blk_backend_size(const struct blk_backend *b) { return b->size; }
bool blk_backend_read_only(const struct blk_backend *b) { return b->read_only; }
bool blk_backend_is_blockdev(const struct blk_backend *b) { return b->blockdev; }
int blk_backend_event_fd(const struct blk_backend *b) { return b->event_fd; }
unsigned blk_backend_inflight(const struct blk_backend *b) { return b->inflight; }

static int size_file(int fd, const struct stat *st, uint64_t want, bool read_only,
                     uint64_t *size, char *err, size_t errlen)
{
    uint64_t have = (uint64_t)st->st_size;

    if (want == 0) {
        *size = have & ~511ULL;
        return 0;
    }
    if (have < want) {
        if (read_only) {
            set_err(err, errlen, "the read-only file is %llu bytes, smaller than size %llu",
                    (unsigned long long)have, (unsigned long long)want);
            return -1;
        }
        if (ftruncate(fd, (off_t)want) < 0) {
            set_err(err, errlen, "cannot extend it to %llu bytes: %s", (unsigned long long)want,
                    strerror(errno));
            return -1;
        }
    }
    *size = want;
    return 0;
}

static int size_blockdev(int fd, uint64_t want, uint64_t *size, char *err, size_t errlen)
{
    uint64_t have = 0;

    if (ioctl(fd, BLKGETSIZE64, &have) < 0) {
        set_err(err, errlen, "BLKGETSIZE64: %s", strerror(errno));
        return -1;
    }
    if (want > have) {
        set_err(err, errlen, "the block device has %llu bytes, fewer than size %llu",
                (unsigned long long)have, (unsigned long long)want);
        return -1;
    }
    *size = want ? want : have & ~511ULL;
    return 0;
}

static int open_image(struct blk_backend *b, const char *path, uint64_t want, char *err,
                      size_t errlen)
{
    int oflags = O_CLOEXEC | (b->read_only ? O_RDONLY : O_RDWR);
    struct stat st;

    b->fd = open(path, oflags);
    if (b->fd < 0 && errno == ENOENT && want && !b->read_only)
        b->fd = open(path, oflags | O_CREAT, 0644);
    if (b->fd < 0) {
        set_err(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (fstat(b->fd, &st) < 0) {
        set_err(err, errlen, "fstat: %s", strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        if (size_file(b->fd, &st, want, b->read_only, &b->size, err, errlen) < 0)
            return -1;
    } else if (S_ISBLK(st.st_mode)) {
        b->blockdev = true;
        if (size_blockdev(b->fd, want, &b->size, err, errlen) < 0)
            return -1;
    } else {
        set_err(err, errlen, "neither a regular file nor a block device");
        return -1;
    }
    if (b->size == 0) {
        set_err(err, errlen, "the image is empty (give a size to create or extend it)");
        return -1;
    }
    return blk_image_claim(b->fd, b->read_only, b->blockdev, 0, err, errlen);
}

int blk_image_claim(int fd, bool read_only, bool blockdev, unsigned wait_ms, char *err,
                    size_t errlen)
{
    /* Two writers on one image corrupt it; readers may share. */
    while (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK && wait_ms >= 100) {
            usleep(100 * 1000);
            wait_ms -= 100;
            continue;
        }
        set_err(err, errlen, errno == EWOULDBLOCK ? "the image is in use by another process"
                                                  : "flock: %s", strerror(errno));
        return -1;
    }
    /* A block device's media can change behind the page cache: a VF
     * assigned to the same namespace writes it by DMA. Write back what the
     * cache holds dirty, then drop it, so reads see the media. */
    if (blockdev) {
        if (fdatasync(fd) < 0) {
            set_err(err, errlen, "fdatasync: %s", strerror(errno));
            return -1;
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    return 0;
}

struct blk_backend *blk_backend_open(const char *path, uint64_t size, bool read_only, char *err,
                                     size_t errlen)
{
    struct blk_backend *b = calloc(1, sizeof(*b));
    struct io_uring_params params = { .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
                                      .cq_entries = RING_CQ_ENTRIES };
    int ret;

    if (!b) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    b->fd = b->event_fd = -1;
    b->read_only = read_only;
    if (size % 512) {
        set_err(err, errlen, "size %llu is not a multiple of 512", (unsigned long long)size);
        goto fail;
    }
    if (open_image(b, path, size, err, errlen) < 0)
        goto fail;
    ret = io_uring_queue_init_params(RING_ENTRIES, &b->ring, &params);
    if (ret < 0) {
        set_err(err, errlen, "io_uring_queue_init: %s", strerror(-ret));
        goto fail;
    }
    b->ring_ready = true;
    b->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->event_fd < 0 || (ret = io_uring_register_eventfd(&b->ring, b->event_fd)) < 0) {
        set_err(err, errlen, "cannot set up the completion eventfd: %s",
                strerror(b->event_fd < 0 ? errno : -ret));
        goto fail;
    }
    return b;
fail:
    blk_backend_close(b);
    return NULL;
}

static struct blk_op *op_new(struct blk_backend *b, enum blk_op_kind kind, unsigned niov,
                             blk_done_fn done, void *opaque)
{
    struct blk_op *op = calloc(1, sizeof(*op) + niov * sizeof(struct iovec));

    if (!op)
        return NULL;
    op->b = b;
    op->kind = kind;
    op->done = done;
    op->opaque = opaque;
    op->iov = op->iov_storage;
    return op;
}

static void prep(struct blk_op *op, struct io_uring_sqe *sqe)
{
    struct blk_backend *b = op->b;

    switch (op->kind) {
    case OP_READ:
        io_uring_prep_readv(sqe, b->fd, op->iov, op->niov, op->offset);
        break;
    case OP_WRITE:
        io_uring_prep_writev(sqe, b->fd, op->iov, op->niov, op->offset);
        if (op->flags & BLK_FUA)
            sqe->rw_flags = RWF_DSYNC;
        break;
    case OP_FLUSH:
        io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
        break;
    case OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, b->fd, op->falloc_mode, op->offset, op->len);
        break;
    case OP_ZERO_WRITE:
        op->iov_storage[0].iov_base = b->zero_buf;
        op->iov_storage[0].iov_len = op->len < ZERO_BUF_SIZE ? op->len : ZERO_BUF_SIZE;
        io_uring_prep_writev(sqe, b->fd, op->iov_storage, 1, op->offset);
        if (op->flags & BLK_FUA)
            sqe->rw_flags = RWF_DSYNC;
        break;
    }
    io_uring_sqe_set_data(sqe, op);
}

/* Hands prepared SQEs to the kernel. On failure (-EBUSY while completions
 * overflow, -EAGAIN) they stay in the ring for the next attempt. */
static void flush_queued(struct blk_backend *b)
{
    int ret;

    if (!b->queued)
        return;
    ret = io_uring_submit(&b->ring);
    if (ret >= 0)
        b->queued = ret >= (int)b->queued ? 0 : b->queued - (unsigned)ret;
}

static struct io_uring_sqe *get_sqe(struct blk_backend *b)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

    if (!sqe && b->queued) {
        flush_queued(b);
        sqe = io_uring_get_sqe(&b->ring);
    }
    return sqe;
}

/* Puts op on the ring, or on the backlog when the ring is full. */
static void queue_op(struct blk_op *op)
{
    struct blk_backend *b = op->b;
    struct io_uring_sqe *sqe = b->backlog_head ? NULL : get_sqe(b);

    if (!sqe) {
        op->next = NULL;
        if (b->backlog_tail)
            b->backlog_tail->next = op;
        else
            b->backlog_head = op;
        b->backlog_tail = op;
        return;
    }
    prep(op, sqe);
    b->queued++;
}

static void drain_backlog(struct blk_backend *b)
{
    while (b->backlog_head) {
        struct io_uring_sqe *sqe = get_sqe(b);
        struct blk_op *op = b->backlog_head;
        if (!sqe)
            return;
        b->backlog_head = op->next;
        if (!b->backlog_head)
            b->backlog_tail = NULL;
        prep(op, sqe);
        b->queued++;
    }
}

static int start(struct blk_backend *b, struct blk_op *op)
{
    b->inflight++;
    queue_op(op);
    return 0;
}

static bool in_range(const struct blk_backend *b, uint64_t offset, uint64_t len)
{
    return offset <= b->size && len <= b->size - offset;
}

static int start_rw(struct blk_backend *b, enum blk_op_kind kind, const struct iovec *iov,
                    unsigned niov, uint64_t offset, unsigned flags, blk_done_fn done, void *opaque)
{
    uint64_t len = 0;
    struct blk_op *op;

    if (kind == OP_WRITE && b->read_only)
        return -EROFS;
    if (niov == 0 || niov > IOV_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < niov; i++)
        len += iov[i].iov_len;
    if (!in_range(b, offset, len))
        return -EINVAL;
    op = op_new(b, kind, niov, done, opaque);
    if (!op)
        return -ENOMEM;
    memcpy(op->iov_storage, iov, niov * sizeof(*iov));
    op->niov = niov;
    op->offset = offset;
    op->flags = flags;
    return start(b, op);
}

int blk_backend_readv(struct blk_backend *b, const struct iovec *iov, unsigned niov,
                      uint64_t offset, blk_done_fn done, void *opaque)
{
    return start_rw(b, OP_READ, iov, niov, offset, 0, done, opaque);
}

int blk_backend_writev(struct blk_backend *b, const struct iovec *iov, unsigned niov,
                       uint64_t offset, unsigned flags, blk_done_fn done, void *opaque)
{
    return start_rw(b, OP_WRITE, iov, niov, offset, flags, done, opaque);
}

int blk_backend_flush(struct blk_backend *b, blk_done_fn done, void *opaque)
{
    struct blk_op *op = op_new(b, OP_FLUSH, 0, done, opaque);

    if (!op)
        return -ENOMEM;
    return start(b, op);
}

static int start_zeroing(struct blk_backend *b, uint64_t offset, uint64_t len, bool unmap,
                         unsigned flags, blk_done_fn done, void *opaque)
{
    struct blk_op *op;
    bool refused = unmap ? b->no_punch_hole : b->no_zero_range;

    if (b->read_only)
        return -EROFS;
    if (!in_range(b, offset, len) || len == 0)
        return -EINVAL;
    op = op_new(b, OP_FALLOCATE, 1, done, opaque);
    if (!op)
        return -ENOMEM;
    op->offset = offset;
    op->len = len;
    op->flags = flags;
    /* PUNCH_HOLE frees a file's blocks; on a block device the kernel turns
     * it into a zeroing discard. Both read back as zeroes. */
    op->falloc_mode = FALLOC_FL_KEEP_SIZE | (unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    if (refused || (flags & BLK_FUA)) {
        /* fallocate is not ordered against the disk cache; a FUA request
         * takes the write path, which can carry RWF_DSYNC. */
        if (!b->zero_buf && !(b->zero_buf = calloc(1, ZERO_BUF_SIZE))) {
            free(op);
            return -ENOMEM;
        }
        op->kind = OP_ZERO_WRITE;
    }
    return start(b, op);
}

int blk_backend_discard(struct blk_backend *b, uint64_t offset, uint64_t len, blk_done_fn done,
                        void *opaque)
{
    return start_zeroing(b, offset, len, true, 0, done, opaque);
}

int blk_backend_write_zeroes(struct blk_backend *b, uint64_t offset, uint64_t len, unsigned flags,
                             blk_done_fn done, void *opaque)
{
    return start_zeroing(b, offset, len, flags & BLK_UNMAP, flags & BLK_FUA, done, opaque);
}

static void advance(struct blk_op *op, uint64_t n)
{
    op->offset += n;
    while (n && op->niov) {
        if (n >= op->iov[0].iov_len) {
            n -= op->iov[0].iov_len;
            op->iov++;
            op->niov--;
        } else {
            op->iov[0].iov_base = (uint8_t *)op->iov[0].iov_base + n;
            op->iov[0].iov_len -= n;
            n = 0;
        }
    }
}

static void finish(struct blk_op *op, int result)
{
    op->b->inflight--;
    op->done(op->opaque, result);
    free(op);
}

/* Short transfers and -EAGAIN go back on the ring for what remains. */
static bool handle_completion(struct blk_op *op, int res)
{
    struct blk_backend *b = op->b;

    if (res == -EAGAIN || res == -EINTR) {
        queue_op(op);
        return false;
    }
    switch (op->kind) {
    case OP_READ:
    case OP_WRITE:
        if (res < 0)
            break;
        if (res == 0) {
            if (op->kind == OP_WRITE) {
                res = -EIO;
                break;
            }
            /* End of file (the image was truncated under us): what is
             * missing reads as a hole does. */
            for (unsigned i = 0; i < op->niov; i++)
                memset(op->iov[i].iov_base, 0, op->iov[i].iov_len);
            break;
        }
        advance(op, (uint64_t)res);
        if (op->niov) {
            queue_op(op);
            return false;
        }
        res = 0;
        break;
    case OP_FLUSH:
        break;
    case OP_FALLOCATE:
        if (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOTTY) {
            if (op->falloc_mode & FALLOC_FL_PUNCH_HOLE)
                b->no_punch_hole = true;
            else
                b->no_zero_range = true;
            if (!b->zero_buf && !(b->zero_buf = calloc(1, ZERO_BUF_SIZE))) {
                res = -ENOMEM;
                break;
            }
            op->kind = OP_ZERO_WRITE;
            queue_op(op);
            return false;
        }
        break;
    case OP_ZERO_WRITE:
        if (res < 0)
            break;
        if (res == 0) {
            res = -EIO;
            break;
        }
        op->offset += (uint64_t)res;
        op->len -= (uint64_t)res < op->len ? (uint64_t)res : op->len;
        if (op->len) {
            queue_op(op);
            return false;
        }
        res = 0;
        break;
    }
    finish(op, res < 0 ? res : 0);
    return true;
}

void blk_backend_submit(struct blk_backend *b)
{
    drain_backlog(b);
    flush_queued(b);
}

unsigned blk_backend_poll(struct blk_backend *b)
{
    struct io_uring_cqe *cqe;
    unsigned finished = 0;
    uint64_t ticks;

    /* Clear the eventfd before looking, so a completion that lands after
     * the last peek signals it again. */
    if (read(b->event_fd, &ticks, sizeof(ticks)) < 0) {
        /* EAGAIN: nothing signalled, the ring may still hold completions */
    }
    while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
        struct blk_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
        if (op && handle_completion(op, res))
            finished++;
    }
    blk_backend_submit(b);
    return finished;
}

int blk_backend_wait(struct blk_backend *b, int timeout_ms)
{
    struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
                                    .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
    struct io_uring_cqe *cqe;

    blk_backend_submit(b);
    return io_uring_wait_cqe_timeout(&b->ring, &cqe, &ts) == 0 ? 1 : 0;
}

void blk_backend_close(struct blk_backend *b)
{
    int waited = 0;

    if (!b)
        return;
    /* Requests point into guest memory and carry callbacks: none may
     * outlive the backend. */
    while (b->ring_ready && b->inflight && waited < CLOSE_TIMEOUT_MS) {
        blk_backend_poll(b);
        if (b->inflight && !blk_backend_wait(b, 100))
            waited += 100;
    }
    if (b->inflight)
        fprintf(stderr, "vmm: block backend: %u requests still in flight at close\n", b->inflight);
    /* Nothing of ours stays dirty in the page cache, to be written back
     * later over what another path (a VF on the same media) wrote since. */
    if (b->blockdev && !b->read_only && fdatasync(b->fd) < 0)
        fprintf(stderr, "vmm: block backend: fdatasync at close: %s\n", strerror(errno));
    if (b->ring_ready)
        io_uring_queue_exit(&b->ring);
    if (b->event_fd >= 0)
        close(b->event_fd);
    if (b->fd >= 0)
        close(b->fd);
    free(b->zero_buf);
    free(b);
}
