/* The virtio-net control queue in the VMM (see net_ctrl.h). What a command
 * does:
 *   MQ VQ_PAIRS_SET n (MQ negotiated, 1 <= n <= max): the backend's rings
 *     of pairs 0..n-1 are enabled, the others disabled (set_pairs);
 *   RX (promiscuous, all-multicast, ...) and MAC TABLE_SET: acknowledged
 *     VIRTIO_NET_OK without effect. The backend forwards every frame it
 *     gets to the guest whatever the filter, which is what a driver asking
 *     for promiscuous mode wants and more than a filtering one needs: the
 *     guest's stack drops what is not for it;
 *   anything else, or a command of the wrong length: VIRTIO_NET_ERR.
 * A chain the walker refuses, or without a writable byte for the ack, is
 * returned used with length 0. The guest is told of each problem kind once. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "eventloop.h"
#include "memory.h"
#include "net_ctrl.h"
#include "virtio.h"

/* Commands served per wake-up: a guest that keeps the queue full cannot
 * keep the event loop from its other fds. */
#define NET_CTRL_BATCH 64
#define NET_CTRL_MAX_SEGS 16

enum {
    NET_CTRL_WARN_CHAIN = 1 << 0,
    NET_CTRL_WARN_NO_ACK = 1 << 1,
    NET_CTRL_WARN_UNKNOWN = 1 << 2,
    NET_CTRL_WARN_BAD_ARG = 1 << 3,
    NET_CTRL_WARN_RING = 1 << 4,
    NET_CTRL_WARN_BACKEND = 1 << 5,
};

static void warn_once(struct net_ctrl *c, unsigned kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn_once(struct net_ctrl *c, unsigned kind, const char *fmt, ...)
{
    va_list ap;

    if (c->warned & kind)
        return;
    c->warned |= kind;
    fprintf(stderr, "vmm: virtio %s: control queue: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (said once)\n");
}

int net_ctrl_init(struct net_ctrl *c, const char *name, const struct guest_mem *mem,
                  uint16_t max_pairs, int (*set_pairs)(void *opaque, uint16_t pairs),
                  void *opaque)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->set_pairs = set_pairs;
    c->opaque = opaque;
    c->max_pairs = max_pairs;
    c->kick_fd = c->call_fd = c->watched_fd = -1;
    if (mem->n_regions > VHOST_USER_MAX_REGIONS)
        return -E2BIG;
    /* The walker translates guest-physical addresses; its "frontend
     * virtual" addresses are ours, so ring addresses are host pointers. */
    for (unsigned i = 0; i < mem->n_regions; i++) {
        const struct guest_region *r = &mem->regions[i];
        c->mem.r[i] = (struct vq_mem_region){ .gpa = r->gpa, .size = r->size,
                                              .uva = (uint64_t)(uintptr_t)r->hva, .host = r->hva };
    }
    c->mem.nregions = mem->n_regions;
    pthread_mutex_init(&c->lock, NULL);
    return 0;
}

void net_ctrl_fini(struct net_ctrl *c)
{
    pthread_mutex_destroy(&c->lock);
}

static void on_kick(void *opaque, uint32_t events)
{
    struct net_ctrl *c = opaque;
    uint64_t n;

    (void)events;
    if (read(c->watched_fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: a reset drained it first */
    }
    net_ctrl_process(c);
}

static uint64_t host_addr(const struct net_ctrl *c, uint64_t gpa, uint64_t len)
{
    return (uint64_t)(uintptr_t)vq_mem_gpa(&c->mem, gpa, len);
}

int net_ctrl_start(struct net_ctrl *c, struct eventloop *loop, const struct virtio_queue_setup *q,
                   uint64_t features)
{
    uint64_t n = q->size;
    uint64_t desc = host_addr(c, q->desc, 16 * n), avail = host_addr(c, q->driver, 6 + 2 * n),
             used = host_addr(c, q->device, 6 + 8 * n);
    int ret = 0;

    pthread_mutex_lock(&c->lock);
    memset(&c->vq, 0, sizeof(c->vq));
    c->running = c->broken = false;
    if (!desc || !avail || !used ||
        virtq_setup(&c->vq, &c->mem, q->size, desc, avail, used) < 0) {
        fprintf(stderr, "vmm: virtio %s: control queue outside RAM or unaligned\n", c->name);
        ret = -EFAULT;
        goto out;
    }
    c->vq.event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
    c->vq.indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
    c->mq = (features >> 22) & 1;   /* VIRTIO_NET_F_MQ */
    c->kick_fd = q->kick_fd;
    c->call_fd = q->call_fd;
    if (loop && c->watched_fd != q->kick_fd) {
        if (c->watched_fd >= 0)
            eventloop_del_fd(loop, c->watched_fd);
        c->watched_fd = -1;
        if ((ret = eventloop_add_fd(loop, q->kick_fd, EPOLLIN, on_kick, c)) < 0) {
            fprintf(stderr, "vmm: virtio %s: cannot watch the control queue: %s\n", c->name,
                    strerror(-ret));
            goto out;
        }
        c->watched_fd = q->kick_fd;
    }
    c->running = true;
out:
    pthread_mutex_unlock(&c->lock);
    return ret;
}

void net_ctrl_stop(struct net_ctrl *c)
{
    pthread_mutex_lock(&c->lock);
    c->running = false;
    pthread_mutex_unlock(&c->lock);
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* One command: class, command, data (len bytes in all, of which the first
 * have bytes were copied to cmd). Lock held. */
static uint8_t execute(struct net_ctrl *c, const uint8_t *cmd, uint64_t len)
{
    uint8_t cls = cmd[0], op = cmd[1];
    uint64_t data_len = len - 2;

    if (cls == VIRTIO_NET_CTRL_MQ && op == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
        uint16_t pairs = data_len == 2 ? get_le16(cmd + 2) : 0;
        if (!c->mq || pairs < 1 || pairs > c->max_pairs) {
            warn_once(c, NET_CTRL_WARN_BAD_ARG, "VQ_PAIRS_SET refused (%s, %llu data bytes, "
                      "value %u, at most %u pairs)", c->mq ? "MQ negotiated" : "MQ not negotiated",
                      (unsigned long long)data_len, pairs, c->max_pairs);
            return VIRTIO_NET_ERR;
        }
        if (c->set_pairs(c->opaque, pairs) < 0) {
            warn_once(c, NET_CTRL_WARN_BACKEND, "the backend did not take %u queue pairs",
                      pairs);
            return VIRTIO_NET_ERR;
        }
        return VIRTIO_NET_OK;
    }
    if (cls == VIRTIO_NET_CTRL_RX && op <= VIRTIO_NET_CTRL_RX_NOBCAST) {
        if (data_len == 1)
            return VIRTIO_NET_OK;
    } else if (cls == VIRTIO_NET_CTRL_MAC && op == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
        /* Two tables, each a le32 count and that many MACs: at least the counts. */
        if (data_len >= 8)
            return VIRTIO_NET_OK;
    } else {
        warn_once(c, NET_CTRL_WARN_UNKNOWN, "class %u command %u not supported", cls, op);
        return VIRTIO_NET_ERR;
    }
    warn_once(c, NET_CTRL_WARN_BAD_ARG, "class %u command %u with %llu data bytes refused", cls,
              op, (unsigned long long)data_len);
    return VIRTIO_NET_ERR;
}

/* Walks and serves the chain at head; returns the used length. Lock held. */
static uint32_t serve_chain(struct net_ctrl *c, uint16_t head)
{
    struct virtq_seg segs[NET_CTRL_MAX_SEGS];
    struct virtq_chain ch = { .segs = segs, .max_segs = NET_CTRL_MAX_SEGS };
    uint8_t cmd[NET_CTRL_MAX_CMD] = { 0 };
    size_t have = 0;
    int ret = virtq_walk(&c->vq, head, &ch);

    if (ret < 0) {
        warn_once(c, NET_CTRL_WARN_CHAIN, "a command chain the walker refuses (%s)",
                  ret == -E2BIG ? "too many segments" : "outside RAM, looping or misordered");
        return 0;
    }
    if (ch.nin == 0) {
        warn_once(c, NET_CTRL_WARN_NO_ACK, "a command without a writable byte for its ack");
        return 0;
    }
    /* One copy of what the guest wrote: it may change it meanwhile. */
    for (unsigned i = 0; i < ch.nout && have < sizeof(cmd); i++) {
        size_t take = segs[i].len < sizeof(cmd) - have ? segs[i].len : sizeof(cmd) - have;
        memcpy(cmd + have, segs[i].addr, take);
        have += take;
    }
    c->commands++;
    uint8_t ack = ch.out_len < 2 ? VIRTIO_NET_ERR : execute(c, cmd, ch.out_len);
    if (ch.out_len < 2)
        warn_once(c, NET_CTRL_WARN_BAD_ARG, "a command shorter than its class and command");
    c->failed += ack != VIRTIO_NET_OK;
    /* The first writable byte: a driver gives the ack its own buffer. */
    *(volatile uint8_t *)segs[ch.nout].addr = ack;
    return 1;
}

void net_ctrl_process(struct net_ctrl *c)
{
    unsigned served = 0;
    uint16_t head;
    int ret = 0;

    pthread_mutex_lock(&c->lock);
    if (!c->running || c->broken)
        goto out;
    for (;;) {
        while (served < NET_CTRL_BATCH && (ret = virtq_pop(&c->vq, &head)) > 0) {
            virtq_push(&c->vq, head, serve_chain(c, head));
            served++;
        }
        virtq_publish(&c->vq);
        if (served && virtq_should_notify(&c->vq)) {
            uint64_t one = 1;
            if (write(c->call_fd, &one, sizeof(one)) < 0) {
                /* a full counter interrupts anyway */
            }
        }
        if (ret < 0) {
            warn_once(c, NET_CTRL_WARN_RING, "the available ring is corrupt (index or head "
                      "out of range); ignored until the driver resets the device");
            c->broken = true;
            break;
        }
        if (served >= NET_CTRL_BATCH) {
            /* Come back after the loop's other fds. */
            uint64_t one = 1;
            if (c->watched_fd >= 0 && write(c->watched_fd, &one, sizeof(one)) < 0) {
                /* already pending */
            }
            break;
        }
        virtq_set_notification(&c->vq, true);
        if (!virtq_pending(&c->vq))
            break;
    }
out:
    pthread_mutex_unlock(&c->lock);
}
