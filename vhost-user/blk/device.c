/* device.c: the backend side of the vhost-user conversation for one block
 * device. vhost_user_recv() has already checked sizes and fd counts against
 * the message table; handlers check the values (queue indexes, sizes,
 * regions). A handler that refuses a message returns -errno: with REPLY_ACK
 * the frontend learns it, and the connection stays up. */
#include "blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int blk_handler(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                        struct vhost_user_msg *reply, int *reply_fd);

#define BLK_PROTOCOL_FEATURES                                                           \
    ((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
     (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
     (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

static struct blk_queue *queue_of(struct blk_dev *dev, uint32_t index)
{
    return index < dev->opts.queues ? dev->q[index] : NULL;
}

static void stop_all(struct blk_dev *dev)
{
    for (unsigned i = 0; i < dev->opts.queues; i++)
        blk_queue_stop(dev->q[i]);
}

static int h_get_features(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                          struct vhost_user_msg *reply, int *reply_fd)
{
    (void)msg, (void)fds, (void)nfds, (void)reply_fd;
    vhost_user_make_reply(reply, msg->hdr.request, sizeof(uint64_t));
    reply->payload.u64 = blk_device_features(dev);
    return 0;
}

static int h_set_features(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                          struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    if (msg->payload.u64 & ~blk_device_features(dev))
        return -EINVAL;
    dev->features = msg->payload.u64;
    return 0;
}

static int h_get_protocol_features(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds,
                                   size_t nfds, struct vhost_user_msg *reply, int *reply_fd)
{
    (void)dev, (void)fds, (void)nfds, (void)reply_fd;
    vhost_user_make_reply(reply, msg->hdr.request, sizeof(uint64_t));
    reply->payload.u64 = BLK_PROTOCOL_FEATURES;
    return 0;
}

static int h_set_protocol_features(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds,
                                   size_t nfds, struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    if (msg->payload.u64 & ~BLK_PROTOCOL_FEATURES)
        return -EINVAL;
    dev->protocol_features = msg->payload.u64;
    return 0;
}

static int h_get_queue_num(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                           struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply_fd;
    vhost_user_make_reply(reply, msg->hdr.request, sizeof(uint64_t));
    reply->payload.u64 = dev->opts.queues;
    return 0;
}

static int h_set_owner(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                       struct vhost_user_msg *reply, int *reply_fd)
{
    (void)msg, (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    dev->owner = true;
    return 0;
}

static void reset_queues(struct blk_dev *dev)
{
    for (unsigned i = 0; i < dev->opts.queues; i++) {
        struct blk_queue *q = dev->q[i];
        blk_queue_stop(q);
        q->addr_set = q->enabled = false;
        q->num = 0;
        q->base = 0;
    }
}

static int h_reset(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                   struct vhost_user_msg *reply, int *reply_fd)
{
    (void)msg, (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    reset_queues(dev);
    dev->features = 0;
    return 0;
}

static int h_set_mem_table(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                           struct vhost_user_msg *reply, int *reply_fd)
{
    (void)nfds, (void)reply, (void)reply_fd;
    struct vq_mem fresh;
    int ret = vq_mem_map(&fresh, &msg->payload.memory, fds);
    if (ret)
        return ret;
    /* rings point into the old mappings: stop, swap, restart */
    bool was[BLK_MAX_QUEUES];
    for (unsigned i = 0; i < dev->opts.queues; i++) {
        was[i] = dev->q[i]->running;
        blk_queue_stop(dev->q[i]);
    }
    vq_mem_unmap(&dev->mem);
    dev->mem = fresh;
    for (unsigned i = 0; i < dev->opts.queues; i++)
        if (was[i])
            blk_queue_maybe_start(dev->q[i]);
    return 0;
}

static int h_set_vring_num(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                           struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    struct blk_queue *q = queue_of(dev, msg->payload.state.index);
    uint32_t num = msg->payload.state.num;
    if (!q || q->running || num == 0 || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
        return -EINVAL;
    q->num = (uint16_t)num;
    return 0;
}

static int h_set_vring_addr(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                            struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    struct vhost_user_vring_addr *a = &msg->payload.addr;
    struct blk_queue *q = queue_of(dev, a->index);
    if (!q || q->running)
        return -EINVAL;
    q->desc_uva = a->desc_user_addr;
    q->avail_uva = a->avail_user_addr;
    q->used_uva = a->used_user_addr;
    q->addr_set = true;
    return blk_queue_maybe_start(q);
}

static int h_set_vring_base(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                            struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    struct blk_queue *q = queue_of(dev, msg->payload.state.index);
    if (!q || q->running || msg->payload.state.num > UINT16_MAX)
        return -EINVAL;
    q->base = (uint16_t)msg->payload.state.num;
    return 0;
}

static int h_get_vring_base(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                            struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply_fd;
    struct blk_queue *q = queue_of(dev, msg->payload.state.index);
    if (!q)
        return -EINVAL;
    blk_queue_stop(q);
    vhost_user_make_reply(reply, msg->hdr.request, sizeof(reply->payload.state));
    reply->payload.state.index = q->index;
    reply->payload.state.num = q->base;
    /* the ring is stopped until the next SET_VRING_KICK (spec) */
    if (q->kick_fd >= 0)
        close(q->kick_fd);
    q->kick_fd = -1;
    return 0;
}

/* KICK/CALL/ERR: u64 = index | NOFD flag; the fd count must match the flag. */
static int vring_fd(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                    struct blk_queue **qp, int *fd)
{
    uint64_t v = msg->payload.u64;
    bool nofd = v & VHOST_USER_VRING_NOFD_MASK;
    *qp = queue_of(dev, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
    if (!*qp || (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) ||
        nfds != (nofd ? 0u : 1u))
        return -EINVAL;
    *fd = nofd ? -1 : fds[0];
    if (!nofd)
        fds[0] = -1; /* taken */
    return 0;
}

static int h_set_vring_kick(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                            struct vhost_user_msg *reply, int *reply_fd)
{
    (void)reply, (void)reply_fd;
    struct blk_queue *q;
    int fd;
    int ret = vring_fd(dev, msg, fds, nfds, &q, &fd);
    if (ret)
        return ret;
    if (fd < 0)
        return -EOPNOTSUPP; /* polling without kicks: not offered */
    blk_queue_stop(q);
    if (q->kick_fd >= 0)
        close(q->kick_fd);
    q->kick_fd = fd;
    /* without protocol features a ring is enabled as soon as it starts */
    if (!(dev->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
        q->enabled = true;
    return blk_queue_maybe_start(q);
}

static int h_set_vring_call(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                            struct vhost_user_msg *reply, int *reply_fd)
{
    (void)reply, (void)reply_fd;
    struct blk_queue *q;
    int fd;
    int ret = vring_fd(dev, msg, fds, nfds, &q, &fd);
    if (ret)
        return ret;
    bool was = q->running;
    blk_queue_stop(q);
    if (q->call_fd >= 0)
        close(q->call_fd);
    q->call_fd = fd;
    return was ? blk_queue_maybe_start(q) : 0;
}

static int h_set_vring_err(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                           struct vhost_user_msg *reply, int *reply_fd)
{
    (void)reply, (void)reply_fd;
    struct blk_queue *q;
    int fd = -1;
    int ret = vring_fd(dev, msg, fds, nfds, &q, &fd);
    if (fd >= 0)
        close(fd); /* we never report ring errors this way */
    return ret;
}

static int h_set_vring_enable(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                              struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    struct blk_queue *q = queue_of(dev, msg->payload.state.index);
    if (!q || msg->payload.state.num > 1)
        return -EINVAL;
    q->enabled = msg->payload.state.num;
    if (!q->enabled) {
        blk_queue_stop(q);
        return 0;
    }
    return blk_queue_maybe_start(q);
}

static int h_get_config(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                        struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply_fd;
    struct virtio_blk_config cfg;
    uint32_t off = msg->payload.config.offset, size = msg->payload.config.size;
    blk_config_fill(dev, &cfg);
    vhost_user_make_reply(reply, msg->hdr.request, VHOST_USER_CONFIG_HDR_SIZE);
    reply->payload.config = (struct vhost_user_config){ .offset = off, .size = 0 };
    if (off > sizeof(cfg) || size > sizeof(cfg) - off)
        return 0; /* an empty reply is the spec's way of saying no */
    reply->payload.config.size = size;
    memcpy(reply->payload.config.region, (uint8_t *)&cfg + off, size);
    reply->hdr.size += size;
    return 0;
}

static int h_set_config(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                        struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds, (void)reply, (void)reply_fd;
    /* only the writeback flag is writable (VIRTIO_BLK_F_CONFIG_WCE) */
    uint32_t off = msg->payload.config.offset, size = msg->payload.config.size;
    if (off != offsetof(struct virtio_blk_config, wce) || size != 1 || msg->payload.config.region[0] > 1)
        return -EINVAL;
    __atomic_store_n(&dev->wce, msg->payload.config.region[0], __ATOMIC_RELAXED);
    return 0;
}

static void drop_inflight(struct blk_dev *dev)
{
    stop_all(dev);
    if (dev->inflight)
        munmap(dev->inflight, dev->inflight_size);
    if (dev->inflight_fd >= 0)
        close(dev->inflight_fd);
    dev->inflight = NULL;
    dev->inflight_fd = -1;
    dev->inflight_size = 0;
    dev->inflight_nqueues = dev->inflight_qsize = 0;
}

static int inflight_map(struct blk_dev *dev, int fd, uint64_t size, uint64_t offset,
                        uint16_t nq, uint16_t qsize)
{
    if (nq == 0 || nq > dev->opts.queues || qsize == 0 || qsize > VIRTQ_MAX_SIZE ||
        offset % 4096 || offset + size < offset ||
        size < (uint64_t)nq * blk_inflight_queue_bytes(qsize))
        return -EINVAL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    if (p == MAP_FAILED)
        return -errno;
    drop_inflight(dev);
    dev->inflight = p;
    dev->inflight_fd = fd;
    dev->inflight_size = size;
    dev->inflight_nqueues = nq;
    dev->inflight_qsize = qsize;
    return 0;
}

static int h_get_inflight_fd(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                             struct vhost_user_msg *reply, int *reply_fd)
{
    (void)fds, (void)nfds;
    struct vhost_user_inflight in = msg->payload.inflight;
    if (in.num_queues == 0 || in.num_queues > dev->opts.queues || in.queue_size == 0 ||
        in.queue_size > VIRTQ_MAX_SIZE)
        return -EINVAL;
    size_t size = in.num_queues * blk_inflight_queue_bytes(in.queue_size);
    int fd = memfd_create("vhost-user-blk-inflight", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int ret = ftruncate(fd, (off_t)size) ? -errno : inflight_map(dev, fd, size, 0, in.num_queues, in.queue_size);
    if (ret) {
        close(fd);
        return ret;
    }
    for (unsigned i = 0; i < in.num_queues; i++) {
        struct vhost_user_inflight_queue *q =
            (void *)((uint8_t *)dev->inflight + i * blk_inflight_queue_bytes(in.queue_size));
        q->version = 1;
        q->desc_num = in.queue_size;
    }
    vhost_user_make_reply(reply, msg->hdr.request, sizeof(reply->payload.inflight));
    reply->payload.inflight = (struct vhost_user_inflight){
        .mmap_size = size, .mmap_offset = 0, .num_queues = in.num_queues, .queue_size = in.queue_size,
    };
    *reply_fd = fd; /* still ours: sent as a copy */
    return 0;
}

static int h_set_inflight_fd(struct blk_dev *dev, struct vhost_user_msg *msg, int *fds, size_t nfds,
                             struct vhost_user_msg *reply, int *reply_fd)
{
    (void)nfds, (void)reply, (void)reply_fd;
    struct vhost_user_inflight *in = &msg->payload.inflight;
    if (nfds != 1)
        return -EINVAL;
    int ret = inflight_map(dev, fds[0], in->mmap_size, in->mmap_offset, in->num_queues, in->queue_size);
    if (ret == 0)
        fds[0] = -1; /* taken */
    return ret;
}

static blk_handler *const handlers[VHOST_USER_REQ_MAX] = {
    [VHOST_USER_GET_FEATURES] = h_get_features,
    [VHOST_USER_SET_FEATURES] = h_set_features,
    [VHOST_USER_SET_OWNER] = h_set_owner,
    [VHOST_USER_RESET_OWNER] = h_reset,
    [VHOST_USER_RESET_DEVICE] = h_reset,
    [VHOST_USER_SET_MEM_TABLE] = h_set_mem_table,
    [VHOST_USER_SET_VRING_NUM] = h_set_vring_num,
    [VHOST_USER_SET_VRING_ADDR] = h_set_vring_addr,
    [VHOST_USER_SET_VRING_BASE] = h_set_vring_base,
    [VHOST_USER_GET_VRING_BASE] = h_get_vring_base,
    [VHOST_USER_SET_VRING_KICK] = h_set_vring_kick,
    [VHOST_USER_SET_VRING_CALL] = h_set_vring_call,
    [VHOST_USER_SET_VRING_ERR] = h_set_vring_err,
    [VHOST_USER_GET_PROTOCOL_FEATURES] = h_get_protocol_features,
    [VHOST_USER_SET_PROTOCOL_FEATURES] = h_set_protocol_features,
    [VHOST_USER_GET_QUEUE_NUM] = h_get_queue_num,
    [VHOST_USER_SET_VRING_ENABLE] = h_set_vring_enable,
    [VHOST_USER_GET_CONFIG] = h_get_config,
    [VHOST_USER_SET_CONFIG] = h_set_config,
    [VHOST_USER_GET_INFLIGHT_FD] = h_get_inflight_fd,
    [VHOST_USER_SET_INFLIGHT_FD] = h_set_inflight_fd,
};

int blk_dev_serve_one(struct blk_dev *dev)
{
    struct vhost_user_msg msg, reply;
    int fds[VHOST_USER_MAX_FDS];
    size_t nfds;
    int ret = vhost_user_recv(dev->sock, &msg, fds, &nfds);
    if (ret == -ECONNRESET)
        return ret;
    if (ret) {
        /* a malformed frame: the stream position can no longer be trusted */
        fprintf(stderr, "vhost-user-blk: refused %s message: %s; dropping the connection\n",
                vhost_user_msg_name(msg.hdr.request), strerror(-ret));
        return ret;
    }
    if (msg.hdr.flags & VHOST_USER_REPLY) {
        vhost_user_close_fds(fds, nfds);
        return 0; /* we send no requests, so expect no replies */
    }

    blk_handler *h = handlers[msg.hdr.request];
    int reply_fd = -1;
    reply.hdr.size = 0;
    reply.hdr.flags = 0;
    ret = h ? h(dev, &msg, fds, nfds, &reply, &reply_fd) : -EOPNOTSUPP;
    vhost_user_close_fds(fds, nfds); /* any fd a handler did not take */
    if (ret)
        fprintf(stderr, "vhost-user-blk: %s failed: %s\n", vhost_user_msg_name(msg.hdr.request), strerror(-ret));

    if (reply.hdr.flags & VHOST_USER_REPLY) {
        /* a message with its own reply; a failed one answers with an empty payload
         * of the right shape where it has one (GET_CONFIG) or closes the connection */
        if (ret)
            return ret;
        int sret = vhost_user_send(dev->sock, &reply, &reply_fd, reply_fd >= 0 ? 1 : 0);
        return sret;
    }
    if ((msg.hdr.flags & VHOST_USER_NEED_REPLY) &&
        (dev->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
        vhost_user_make_reply(&reply, msg.hdr.request, sizeof(uint64_t));
        reply.payload.u64 = ret ? 1 : 0;
        return vhost_user_send(dev->sock, &reply, NULL, 0);
    }
    /* A failed message the frontend cannot hear about is logged above and
     * dropped; the connection goes on (a later GET_* shows the state). */
    return 0;
}

void blk_dev_disconnect(struct blk_dev *dev)
{
    stop_all(dev);
    for (unsigned i = 0; i < dev->opts.queues; i++) {
        struct blk_queue *q = dev->q[i];
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        if (q->call_fd >= 0)
            close(q->call_fd);
        q->kick_fd = q->call_fd = -1;
    }
    reset_queues(dev);
    /* the inflight region stays with the frontend, which hands it back on reconnect */
    drop_inflight(dev);
    vq_mem_unmap(&dev->mem);
    dev->features = dev->protocol_features = 0;
    dev->owner = false;
    if (dev->sock >= 0)
        close(dev->sock);
    dev->sock = -1;
}
