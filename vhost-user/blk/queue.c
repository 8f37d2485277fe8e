/* queue.c: one polling thread per virtqueue. The thread busy-polls the
 * avail ring for --poll-us after the last work, then asks for kicks and
 * sleeps on the kick eventfd, its wake eventfd (stop requests) and the
 * io_uring completion eventfd. Requests go to io_uring with their own slot
 * (indexed by head) as user_data; every wake-up drains all completions. */
#include "blk.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct req_slot {
    struct blk_req r;
    struct iovec iov[BLK_SEG_MAX];
};

/* user_data of the CQEs that are not requests (those carry their blk_req
 * pointer, never one of these small values) */
enum { EV_KICK = 1, EV_WAKE = 2, EV_CALL = 3, EV_CANCEL = 4, EV_MAX = EV_CANCEL };

/* An eventfd the thread waits on through its ring: a read SQE that finishes
 * when the fd is written, so one io_uring_enter both submits the I/O found
 * in a pass and sleeps until a kick, a stop request or a completion. A
 * kernel that answers such a read of a non-blocking eventfd with -EAGAIN
 * gets a poll SQE and a read() after it instead. */
struct ring_eventfd {
    int fd;
    uint64_t tag;
    uint64_t value;               /* the read's destination */
    bool armed;
    bool by_poll;
};

struct qctx {
    struct io_uring ring;
    struct ring_eventfd kick, wake;
    uint64_t call_value;          /* 1: what a call eventfd write adds */
    struct req_slot *slots;       /* one per head */
    uint16_t *unpublished;        /* heads pushed to used since the last publish */
    unsigned n_unpublished;
    struct virtq_seg segs[BLK_SEG_MAX + 2];
    unsigned io_pending;
    bool dirty;                   /* used elements pushed but not published */
    uint64_t dirty_since;         /* now_ns() of the first of them */
    unsigned in_hands;            /* heads taken from avail and not published yet */
    unsigned pushed;              /* used elements pushed since the last publish */
    unsigned peak;                /* most heads in our hands lately: the driver's depth */
    bool unsubmitted;             /* SQEs prepared since the last io_uring_submit */
    bool warned;
    bool fixed_file;              /* the image is registered file 0 */
    bool coop_taskrun;            /* completions wait for us to enter the kernel */
};

/* How long an idle queue thread spins before it sleeps on its eventfds.
 * Spinning pays only when work comes back within the window: it spares the
 * driver a kick (a VM exit in a guest) and us a wake-up. When the gaps are
 * longer it only burns a CPU that others (the vCPUs, other queues) could
 * use. So the window follows the gaps seen: a gap shorter than --poll-us
 * sets it to twice that gap (capped at --poll-us), a spin that ran out
 * halves it, and below 1 us the thread sleeps at once until a short gap
 * shows up again. */
struct poll_window {
    uint64_t max_ns;      /* --poll-us */
    uint64_t ns;          /* current window */
};

#define POLL_WINDOW_MIN_NS 1000u

static void poll_window_init(struct poll_window *w, uint64_t max_ns)
{
    w->max_ns = max_ns;
    w->ns = max_ns;
}

/* Work came back gap_ns after the queue went idle (by spinning or after a sleep). */
static void poll_window_gap(struct poll_window *w, uint64_t gap_ns)
{
    if (gap_ns >= w->max_ns)
        return;
    uint64_t want = 2 * gap_ns < POLL_WINDOW_MIN_NS ? POLL_WINDOW_MIN_NS : 2 * gap_ns;
    if (want > w->max_ns)
        want = w->max_ns;
    if (want > w->ns)
        w->ns = want;
}

/* The window ran out without work. */
static void poll_window_missed(struct poll_window *w)
{
    w->ns /= 2;
    if (w->ns < POLL_WINDOW_MIN_NS)
        w->ns = 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void complete(struct blk_queue *q, struct qctx *x, uint16_t head, uint8_t *status,
                     uint8_t value, uint32_t len)
{
    if (status)
        *status = value;
    else
        len = 0;
    virtq_push(&q->vq, head, len);
    if (!x->dirty && q->dev->opts.coalesce_us)
        x->dirty_since = now_ns();
    x->dirty = true;
    x->pushed++;
    /* The inflight flag stays set until used->idx shows the element: a
     * backend killed before publishing must leave the request to be
     * resubmitted, or the guest would wait for it for ever. */
    if (q->inflight && x->n_unpublished < q->num)   /* more: a guest repeating heads */
        x->unpublished[x->n_unpublished++] = head;
}

static struct io_uring_sqe *get_sqe(struct qctx *x);
static int reap(struct blk_queue *q, struct qctx *x);

/* The call eventfd write rides along with the next io_uring_submit (it
 * completes inline: an eventfd write does not block). sync: write it now
 * (the thread is about to exit). */
static void signal_call(struct blk_queue *q, struct qctx *x, bool sync)
{
    struct io_uring_sqe *sqe = sync ? NULL : get_sqe(x);
    if (sqe) {
        io_uring_prep_write(sqe, q->call_fd, &x->call_value, sizeof(x->call_value), 0);
        io_uring_sqe_set_data64(sqe, EV_CALL);
        x->unsubmitted = true;
        return;
    }
    if (write(q->call_fd, &x->call_value, sizeof(x->call_value)) < 0 && !x->warned) {
        x->warned = true;
        fprintf(stderr, "vhost-user-blk: queue %u: call eventfd: %s\n", q->index, strerror(errno));
    }
}

static void publish(struct blk_queue *q, struct qctx *x, bool sync)
{
    if (!x->dirty)
        return;
    x->dirty = false;
    virtq_publish(&q->vq);
    x->in_hands -= x->pushed;
    x->pushed = 0;
    if (q->inflight) {
        /* Published: clear the flags, then record the used index they
         * account for. A restarted backend that finds used->idx ahead of
         * inflight->used_idx clears the flags of the elements in between
         * (blk_queue_maybe_start), so every head taken from avail is
         * either in the published used ring or flagged, never both
         * uncleared and published without the record, never neither. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        for (unsigned i = 0; i < x->n_unpublished; i++) {
            q->inflight->last_batch_head = x->unpublished[i];
            q->inflight->desc[x->unpublished[i]].inflight = 0;
        }
        __atomic_thread_fence(__ATOMIC_RELEASE);
        q->inflight->used_idx = q->vq.used_idx;
    }
    x->n_unpublished = 0;
    if (q->call_fd >= 0 && virtq_should_notify(&q->vq))
        signal_call(q, x, sync);
}

/* Makes sure a read (or poll) of the eventfd is pending in the ring. */
static void ring_eventfd_arm(struct qctx *x, struct ring_eventfd *e)
{
    if (e->armed)
        return;
    struct io_uring_sqe *sqe = get_sqe(x);
    if (!sqe)
        return;  /* ring full: the next idle pass arms it */
    if (e->by_poll)
        io_uring_prep_poll_add(sqe, e->fd, POLLIN);
    else
        io_uring_prep_read(sqe, e->fd, &e->value, sizeof(e->value), 0);
    io_uring_sqe_set_data64(sqe, e->tag);
    e->armed = true;
    x->unsubmitted = true;
}

static void ring_eventfd_done(struct blk_queue *q, struct qctx *x, struct ring_eventfd *e, int res)
{
    e->armed = false;
    if (e->by_poll) {
        if (res > 0 && read(e->fd, &e->value, sizeof(e->value)) < 0) {
            /* EAGAIN: nothing was left to read */
        }
    } else if (res == -EAGAIN) {
        e->by_poll = true;
    } else if (res < 0 && res != -ECANCELED && res != -EINTR) {
        if (!x->warned) {
            x->warned = true;
            fprintf(stderr, "vhost-user-blk: queue %u: reading an eventfd through io_uring: %s; polling it instead\n",
                    q->index, strerror(-res));
        }
        e->by_poll = true;
    }
}

/* Before the ring and x go away: no read may still target x->kick.value or
 * x->wake.value (a kick landing during the ring's teardown would write
 * into freed memory). Cancels them and waits for their CQEs. */
static void ring_eventfds_cancel(struct blk_queue *q, struct qctx *x)
{
    struct ring_eventfd *evs[2] = { &x->kick, &x->wake };
    for (int i = 0; i < 2; i++) {
        struct io_uring_sqe *sqe = evs[i]->armed ? get_sqe(x) : NULL;
        if (sqe) {
            io_uring_prep_cancel64(sqe, evs[i]->tag, 0);
            io_uring_sqe_set_data64(sqe, EV_CANCEL);   /* else it keeps the slot's last tag */
        }
    }
    io_uring_submit(&x->ring);
    for (int tries = 0; (x->kick.armed || x->wake.armed) && tries < 100; tries++) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec limit = { .tv_nsec = 10 * 1000 * 1000 };
        io_uring_wait_cqe_timeout(&x->ring, &cqe, &limit);
        reap(q, x);
    }
}

/* A CQE that is not a request: kick, stop request, or the call write. */
static void ring_event(struct blk_queue *q, struct qctx *x, uint64_t tag, int res)
{
    if (tag == EV_KICK)
        ring_eventfd_done(q, x, &x->kick, res);
    else if (tag == EV_WAKE)
        ring_eventfd_done(q, x, &x->wake, res);
    else if (tag == EV_CANCEL)
        return;   /* 0, or -ENOENT/-EALREADY: the read had completed or was completing */
    else if (res < 0 && !x->warned) {
        x->warned = true;
        fprintf(stderr, "vhost-user-blk: queue %u: call eventfd: %s\n", q->index, strerror(-res));
    }
}

static struct io_uring_sqe *get_sqe(struct qctx *x)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&x->ring);
    if (!sqe) {
        io_uring_submit(&x->ring);
        sqe = io_uring_get_sqe(&x->ring);
    }
    return sqe;
}

/* Prepares the request's SQE. false if it cannot be submitted. */
static bool submit(struct blk_queue *q, struct qctx *x, struct blk_req *r)
{
    struct io_uring_sqe *sqe = get_sqe(x);
    int fd = x->fixed_file ? 0 : q->dev->fd;
    uint64_t off = r->sector * BLK_SECTOR + r->done;
    if (!sqe)
        return false;
    /* One segment (the usual case: the guest's page or bio vector is
     * contiguous): READ/WRITE spare the kernel importing an iovec array. */
    switch (r->type) {
    case VIRTIO_BLK_T_IN:
        if (r->niov == 1)
            io_uring_prep_read(sqe, fd, r->iov[0].iov_base, (unsigned)r->iov[0].iov_len, off);
        else
            io_uring_prep_readv(sqe, fd, r->iov, r->niov, off);
        break;
    case VIRTIO_BLK_T_OUT:
        if (r->niov == 1)
            io_uring_prep_write(sqe, fd, r->iov[0].iov_base, (unsigned)r->iov[0].iov_len, off);
        else
            io_uring_prep_writev(sqe, fd, r->iov, r->niov, off);
        if (!q->dev->wce)
            sqe->rw_flags = RWF_DSYNC;
        break;
    case VIRTIO_BLK_T_FLUSH:
        io_uring_prep_fsync(sqe, fd, 0);
        break;
    case VIRTIO_BLK_T_DISCARD:
        io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                r->range_sector * BLK_SECTOR, r->range_len);
        break;
    case VIRTIO_BLK_T_WRITE_ZEROES:
        io_uring_prep_fallocate(sqe, fd,
                                (r->range_flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
                                    ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                    : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                r->range_sector * BLK_SECTOR, r->range_len);
        break;
    default:
        return false;
    }
    if (x->fixed_file)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, r);
    x->io_pending++;
    x->unsubmitted = true;
    return true;
}

/* Starts one request from the avail ring (or a resubmitted inflight head). */
static void start_request(struct blk_queue *q, struct qctx *x, uint16_t head)
{
    struct virtq_chain c = { .segs = x->segs, .max_segs = BLK_SEG_MAX + 2 };
    struct req_slot *s = &x->slots[head];
    s->r.iov = s->iov;
    x->in_hands++;

    if (virtq_walk(&q->vq, head, &c) != 0) {
        /* no trustworthy status byte: complete with length 0 */
        if (!x->warned) {
            x->warned = true;
            fprintf(stderr, "vhost-user-blk: queue %u: bad descriptor chain at head %u\n", q->index, head);
        }
        complete(q, x, head, NULL, 0, 0);
        return;
    }
    int st = blk_req_parse(q->dev, &c, &s->r, BLK_SEG_MAX);
    if (st == BLK_REQ_DONE)
        complete(q, x, head, s->r.status, VIRTIO_BLK_S_OK, s->r.in_len);
    else if (st != VIRTIO_BLK_S_OK || !submit(q, x, &s->r))
        complete(q, x, head, s->r.status, st == VIRTIO_BLK_S_OK ? VIRTIO_BLK_S_IOERR : (uint8_t)st, 1);
}

/* Interrupt coalescing. A driver that keeps D requests outstanding (a
 * guest at queue depth D) resubmits in a burst after each interrupt; the
 * requests of that burst finish (a page-cache or tmpfs read finishes at
 * once) while the rest is still coming. Publishing each bit costs the guest
 * an interrupt each; holding the finished ones until all D are in our hands
 * costs it one. So: hold while fewer heads are in our hands than the most
 * seen lately (the driver's depth, `peak`), for at most coalesce_ns from
 * the first held one; a hold that runs out means the driver's depth went
 * down, and peak follows it. At depth 1 nothing is ever held, and the
 * thread never sleeps on held completions. */
static bool hold_completions(struct qctx *x, uint64_t coalesce_ns, uint64_t now)
{
    if (!coalesce_ns)
        return false;
    if (x->in_hands > x->peak)
        x->peak = x->in_hands;
    if (x->in_hands >= x->peak)
        return false;   /* everything the driver has is here: nothing more will come */
    if (now - x->dirty_since < coalesce_ns)
        return true;
    x->peak = x->in_hands;
    return false;
}

static int poll_avail(struct blk_queue *q, struct qctx *x)
{
    int n = 0;
    uint16_t head;
    int ret;
    while ((ret = virtq_pop(&q->vq, &head)) == 1) {
        if (q->inflight) {
            q->inflight->desc[head].counter = ++q->inflight_counter;
            __atomic_thread_fence(__ATOMIC_RELEASE);
            q->inflight->desc[head].inflight = 1;
        }
        start_request(q, x, head);
        n++;
    }
    if (ret < 0 && !x->warned) {
        x->warned = true;
        fprintf(stderr, "vhost-user-blk: queue %u: avail ring index out of range, queue stalled\n", q->index);
    }
    return n;
}

/* One io_uring_submit for everything prepared in a pass (new requests and
 * the rest of short transfers). */
static void flush_submissions(struct qctx *x)
{
    if (x->unsubmitted) {
        x->unsubmitted = false;
        io_uring_submit(&x->ring);
    }
}

/* A finished read/write: complete it, or resubmit what is left after a short
 * transfer or -EAGAIN. Other errors and a transfer of 0 bytes (end of file:
 * no progress possible) complete with IOERR. */
static void finish_rw(struct blk_queue *q, struct qctx *x, struct blk_req *r, int res)
{
    bool again = res == -EAGAIN || res == -EINTR ||
                 (res > 0 && blk_req_advance(r, (uint64_t)res));
    if (again) {
        if (submit(q, x, r))
            return;
    } else if (res >= 0 && (uint64_t)res == r->data_len - r->done) {
        complete(q, x, r->head, r->status, VIRTIO_BLK_S_OK, r->in_len);
        return;
    }
    complete(q, x, r->head, r->status, VIRTIO_BLK_S_IOERR, r->in_len);
}

/* Takes every CQE there is, a batch at a time, and completes (or resubmits)
 * its request. With COOP_TASKRUN the kernel leaves finished I/O as task
 * work until we enter it; IORING_SQ_TASKRUN says there is some. */
static int reap(struct blk_queue *q, struct qctx *x)
{
    struct io_uring_cqe *cqes[64];
    int n = 0;
    if (x->coop_taskrun && (IO_URING_READ_ONCE(*x->ring.sq.kflags) & IORING_SQ_TASKRUN))
        io_uring_get_events(&x->ring);
    for (;;) {
        unsigned got = io_uring_peek_batch_cqe(&x->ring, cqes, 64);
        if (!got)
            return n;
        unsigned requests = 0;
        for (unsigned i = 0; i < got; i++) {
            int res = cqes[i]->res;
            uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
            if (tag <= EV_MAX) {
                ring_event(q, x, tag, res);
                continue;
            }
            struct blk_req *r = io_uring_cqe_get_data(cqes[i]);
            requests++;
            x->io_pending--;
            if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT)
                finish_rw(q, x, r, res);
            else
                complete(q, x, r->head, r->status, res >= 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, r->in_len);
        }
        io_uring_cq_advance(&x->ring, got);
        n += (int)requests;
    }
}

/* Requests a previous backend left marked inflight are started again, in
 * arrival order, before anything new from the avail ring. */
static void resubmit_inflight(struct blk_queue *q, struct qctx *x)
{
    struct vhost_user_inflight_queue *f = q->inflight;
    unsigned n = 0;
    if (!f)
        return;
    for (;;) {
        int best = -1;
        for (unsigned i = 0; i < q->num; i++)
            if (f->desc[i].inflight == 1 && (best < 0 || f->desc[i].counter < f->desc[best].counter))
                best = (int)i;
        if (best < 0)
            break;
        f->desc[best].inflight = 2; /* resubmitted: skip in this scan; complete() clears it */
        if (f->desc[best].counter > q->inflight_counter)
            q->inflight_counter = f->desc[best].counter;
        start_request(q, x, (uint16_t)best);
        n++;
    }
    if (n)
        fprintf(stderr, "vhost-user-blk: queue %u: resubmitted %u request(s) left in flight\n", q->index, n);
    flush_submissions(x);
}

/* The ring is used by this thread alone (SINGLE_ISSUER) and polled by it,
 * so finished I/O need not interrupt it with an IPI (COOP_TASKRUN, with
 * TASKRUN_FLAG telling reap() when to collect). Kernels before 6.0 refuse
 * the flags: plain ring then. The image is registered once, sparing the
 * kernel a file lookup per request. */
static int ring_setup(struct blk_queue *q, struct qctx *x)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    };
    /* room for a request per head plus the kick, stop and call SQEs */
    unsigned entries = q->num < 8 ? 8 : q->num;
    int ret = io_uring_queue_init_params(entries, &x->ring, &p);
    x->coop_taskrun = ret == 0;
    if (ret == -EINVAL)
        ret = io_uring_queue_init(entries, &x->ring, 0);
    if (ret < 0)
        return ret;
    x->fixed_file = io_uring_register_files(&x->ring, &q->dev->fd, 1) == 0;
    return 0;
}

static void *queue_thread(void *arg)
{
    struct blk_queue *q = arg;
    struct qctx *x = calloc(1, sizeof(*x));
    if (!x || !(x->slots = calloc(q->num, sizeof(*x->slots))) ||
        !(x->unpublished = calloc(q->num, sizeof(*x->unpublished)))) {
        fprintf(stderr, "vhost-user-blk: queue %u: out of memory\n", q->index);
        if (x)
            free(x->slots);
        free(x);
        return NULL;
    }
    int ret = ring_setup(q, x);
    if (ret < 0) {
        fprintf(stderr, "vhost-user-blk: queue %u: io_uring setup: %s\n", q->index, strerror(-ret));
        free(x->slots);
        free(x->unpublished);
        free(x);
        return NULL;
    }

    x->kick = (struct ring_eventfd){ .fd = q->kick_fd, .tag = EV_KICK };
    x->wake = (struct ring_eventfd){ .fd = q->wake_fd, .tag = EV_WAKE };
    x->call_value = 1;
    resubmit_inflight(q, x);
    virtq_set_notification(&q->vq, false);
    struct poll_window pw;
    poll_window_init(&pw, (uint64_t)q->dev->opts.poll_us * 1000u);
    uint64_t coalesce_ns = (uint64_t)q->dev->opts.coalesce_us * 1000u;
    uint64_t idle_since = 0;    /* 0: the last pass found work */
    while (!q->stop) {
        int work = poll_avail(q, x);
        work += reap(q, x);
        if (x->dirty && q->dev->opts.publish_delay_us)
            usleep(q->dev->opts.publish_delay_us);
        if (!x->dirty || !hold_completions(x, coalesce_ns, now_ns()))
            publish(q, x, false);
        flush_submissions(x);   /* new requests, resubmissions and the call: one syscall */
        if (work) {
            if (idle_since)
                poll_window_gap(&pw, now_ns() - idle_since);
            idle_since = 0;
            continue;
        }
        uint64_t now = now_ns();
        if (!idle_since)
            idle_since = now;
        if (now - idle_since < pw.ns) {
            __builtin_ia32_pause();
            continue;
        }
        if (x->dirty) {
            /* never sleep on completions held back for coalescing */
            publish(q, x, false);
            flush_submissions(x);
            continue;
        }
        /* idle: ask for kicks, re-check, then sleep */
        virtq_set_notification(&q->vq, true);
        if (virtq_pending(&q->vq) || io_uring_cq_ready(&x->ring) ||
            (x->coop_taskrun && (IO_URING_READ_ONCE(*x->ring.sq.kflags) & IORING_SQ_TASKRUN))) {
            virtq_set_notification(&q->vq, false);
            continue;
        }
        if (pw.ns)
            poll_window_missed(&pw);
        /* Sleep in the ring until a CQE: a kick, a stop request or a
         * completion (I/O finishing as task work is run by the wait). The
         * timeout only bounds the damage of a wake-up that never comes. */
        ring_eventfd_arm(x, &x->kick);
        ring_eventfd_arm(x, &x->wake);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec limit = { .tv_sec = 1 };
        x->unsubmitted = false;
        io_uring_submit_and_wait_timeout(&x->ring, &cqe, 1, &limit, NULL);
        virtq_set_notification(&q->vq, false);
        /* idle_since stays: the gap up to the work found next counts as a whole */
    }

    /* stopping: let every submitted request finish so its completion is in the used ring */
    while (x->io_pending) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&x->ring, &cqe) < 0)
            break;
        reap(q, x);
        flush_submissions(x);
    }
    publish(q, x, true);
    ring_eventfds_cancel(q, x);
    io_uring_queue_exit(&x->ring);
    free(x->slots);
    free(x->unpublished);
    free(x);
    return NULL;
}

struct blk_queue *blk_queue_new(struct blk_dev *dev, unsigned index)
{
    struct blk_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->dev = dev;
    q->index = index;
    q->kick_fd = q->call_fd = -1;
    q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->wake_fd < 0) {
        free(q);
        return NULL;
    }
    return q;
}

void blk_queue_free(struct blk_queue *q)
{
    if (!q)
        return;
    blk_queue_stop(q);
    if (q->kick_fd >= 0)
        close(q->kick_fd);
    if (q->call_fd >= 0)
        close(q->call_fd);
    close(q->wake_fd);
    free(q);
}

int blk_queue_maybe_start(struct blk_queue *q)
{
    if (q->running || !q->addr_set || !q->num || q->kick_fd < 0 || !q->enabled ||
        !q->dev->mem.nregions)
        return 0;
    int ret = virtq_setup(&q->vq, &q->dev->mem, q->num, q->desc_uva, q->avail_uva, q->used_uva);
    if (ret) {
        fprintf(stderr, "vhost-user-blk: queue %u: ring addresses outside guest memory\n", q->index);
        return ret;
    }
    q->vq.event_idx = q->dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    q->vq.indirect = q->dev->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    q->vq.last_avail = q->base;
    q->vq.used_idx = __atomic_load_n(&q->vq.used->idx, __ATOMIC_ACQUIRE);

    q->inflight = NULL;
    if (q->dev->inflight && q->index < q->dev->inflight_nqueues) {
        q->inflight = (void *)((uint8_t *)q->dev->inflight + blk_inflight_queue_bytes(q->dev->inflight_qsize) * q->index);
        if (q->inflight->version != 1 || q->inflight->desc_num != q->num) {
            fprintf(stderr, "vhost-user-blk: queue %u: inflight region does not match the queue, not tracking\n", q->index);
            q->inflight = NULL;
        }
    }
    if (q->inflight) {
        /* A published batch whose inflight flags were not cleared yet: those
         * heads are in the used ring, so they are done. */
        uint16_t behind = (uint16_t)(q->vq.used_idx - q->inflight->used_idx);
        if (behind <= q->num)
            for (uint16_t i = q->inflight->used_idx; i != q->vq.used_idx; i++)
                q->inflight->desc[q->vq.used->ring[i & (q->num - 1)].id & (q->num - 1)].inflight = 0;
        q->inflight->used_idx = q->vq.used_idx;
        unsigned inuse = 0;
        for (unsigned i = 0; i < q->num; i++) {
            if (q->inflight->desc[i].inflight)
                q->inflight->desc[i].inflight = 1; /* 2 = resubmitted by a backend that died too */
            inuse += q->inflight->desc[i].inflight;
        }
        /* every request taken from avail is either in the used ring or inflight */
        q->vq.last_avail = (uint16_t)(q->vq.used_idx + inuse);
        q->inflight_counter = 0;
    }

    q->stop = false;
    ret = pthread_create(&q->thread, NULL, queue_thread, q);
    if (ret)
        return -ret;
    q->running = true;
    return 0;
}

void blk_queue_stop(struct blk_queue *q)
{
    if (!q->running)
        return;
    q->stop = true;
    uint64_t one = 1;
    if (write(q->wake_fd, &one, sizeof(one)) < 0)
        perror("vhost-user-blk: wake eventfd");
    pthread_join(q->thread, NULL);
    q->running = false;
    q->base = q->vq.last_avail;
}
