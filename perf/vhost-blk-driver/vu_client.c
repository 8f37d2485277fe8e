/* vu_client.c: a minimal vhost-user frontend for the benchmark driver. It
 * trusts nothing it receives beyond what vhost_user_recv() validates, but it
 * is a measuring tool, not a VMM: any failure ends the handshake. */
#include "vu_client.h"

#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vhost_user.h"

#define VUC_PAGE 4096u

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static int connect_retry(const char *path, unsigned timeout_ms)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    for (unsigned waited = 0;; waited += 10) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return -errno;
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return s;
        int err = errno;
        close(s);
        if ((err != ENOENT && err != ECONNREFUSED) || waited >= timeout_ms)
            return -err;
        usleep(10000);
    }
}

int vuc_open(struct vuc *c, const char *path, unsigned timeout_ms, size_t mem_size,
             unsigned nqueues, uint16_t qsize)
{
    memset(c, 0, sizeof(*c));
    c->sock = c->memfd = -1;
    for (unsigned i = 0; i < VUC_MAX_QUEUES; i++)
        c->q[i].kick_fd = c->q[i].call_fd = -1;
    if (!nqueues || nqueues > VUC_MAX_QUEUES || !qsize || (qsize & (qsize - 1)))
        return -EINVAL;
    c->nqueues = nqueues;
    c->qsize = qsize;

    size_t ring_bytes = align_up(vring_size(qsize, VUC_PAGE), VUC_PAGE);
    c->mem_size = align_up(mem_size + nqueues * ring_bytes, 2u << 20);
    c->memfd = memfd_create("vhost-blk-driver-mem", MFD_CLOEXEC);
    if (c->memfd < 0 || ftruncate(c->memfd, (off_t)c->mem_size) < 0)
        return -errno;
    void *p = mmap(NULL, c->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, c->memfd, 0);
    if (p == MAP_FAILED)
        return -errno;
    c->mem = p;
    for (unsigned i = 0; i < nqueues; i++) {
        vring_init(&c->q[i].vr, qsize, c->mem + c->mem_used, VUC_PAGE);
        c->mem_used += ring_bytes;
        c->q[i].kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        c->q[i].call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->q[i].kick_fd < 0 || c->q[i].call_fd < 0)
            return -errno;
    }
    c->sock = connect_retry(path, timeout_ms);
    return c->sock < 0 ? c->sock : 0;
}

void *vuc_alloc(struct vuc *c, size_t size, size_t align)
{
    size_t off = align_up(c->mem_used, align);
    if (off > c->mem_size || size > c->mem_size - off)
        return NULL;
    c->mem_used = off + size;
    return c->mem + off;
}

/* Sends a request; GET-style requests (reply_size != 0) read the reply into
 * *reply. SETs wait for the REPLY_ACK answer when that feature is on. */
static int request(struct vuc *c, uint32_t req, const void *payload, uint32_t size,
                   const int *fds, size_t nfds, struct vhost_user_msg *reply)
{
    struct vhost_user_msg m = { .hdr = { .request = req, .size = size } };
    bool ack = !reply && (c->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
    if (size)
        memcpy(&m.payload, payload, size);
    if (ack)
        m.hdr.flags |= VHOST_USER_NEED_REPLY;
    int ret = vhost_user_send(c->sock, &m, fds, nfds);
    if (ret < 0 || (!reply && !ack))
        return ret;

    struct vhost_user_msg r;
    int rfds[VHOST_USER_MAX_FDS];
    size_t rn = 0;
    ret = vhost_user_recv(c->sock, &r, rfds, &rn);
    if (ret < 0)
        return ret;
    vhost_user_close_fds(rfds, rn);
    if (r.hdr.request != req || !(r.hdr.flags & VHOST_USER_REPLY))
        return -EPROTO;
    if (reply) {
        *reply = r;
        return 0;
    }
    if (r.hdr.size != sizeof(uint64_t))
        return -EPROTO;
    return r.payload.u64 ? -EIO : 0;
}

static int get_u64(struct vuc *c, uint32_t req, uint64_t *v)
{
    struct vhost_user_msg r;
    int ret = request(c, req, NULL, 0, NULL, 0, &r);
    if (ret == 0 && r.hdr.size != sizeof(uint64_t))
        ret = -EPROTO;
    if (ret == 0)
        *v = r.payload.u64;
    return ret;
}

static int set_u64(struct vuc *c, uint32_t req, uint64_t v, int fd)
{
    return request(c, req, &v, sizeof(v), fd >= 0 ? &fd : NULL, fd >= 0, NULL);
}

static int set_state(struct vuc *c, uint32_t req, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state s = { .index = index, .num = num };
    return request(c, req, &s, sizeof(s), NULL, 0, NULL);
}

#define STEP(what, expr)                                                                  \
    do {                                                                                  \
        int ret_ = (expr);                                                                \
        if (ret_ < 0) {                                                                   \
            fprintf(stderr, "vhost-blk-driver: %s: %s\n", what, strerror(-ret_));         \
            return ret_;                                                                  \
        }                                                                                 \
    } while (0)

int vuc_start(struct vuc *c, bool no_event_idx)
{
    uint64_t offered = 0;
    STEP("GET_FEATURES", get_u64(c, VHOST_USER_GET_FEATURES, &offered));
    uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
                    (no_event_idx ? 0 : 1ull << VIRTIO_RING_F_EVENT_IDX) |
                    (c->nqueues > 1 ? 1ull << VIRTIO_BLK_F_MQ : 0);
    c->features = offered & want;
    if (!(c->features & (1ull << VIRTIO_F_VERSION_1))) {
        fprintf(stderr, "vhost-blk-driver: backend does not offer VIRTIO_F_VERSION_1\n");
        return -ENOTSUP;
    }
    c->event_idx = c->features & (1ull << VIRTIO_RING_F_EVENT_IDX);

    if (c->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
        uint64_t pf = 0;
        STEP("GET_PROTOCOL_FEATURES", get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &pf));
        pf &= (1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
              (1ull << VHOST_USER_PROTOCOL_F_CONFIG);
        STEP("SET_PROTOCOL_FEATURES", set_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, pf, -1));
        c->protocol_features = pf;  /* REPLY_ACK applies from the next message on */
    }
    if (c->nqueues > 1) {
        uint64_t n = 0;
        if (c->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_MQ))
            STEP("GET_QUEUE_NUM", get_u64(c, VHOST_USER_GET_QUEUE_NUM, &n));
        if (n < c->nqueues || !(c->features & (1ull << VIRTIO_BLK_F_MQ))) {
            fprintf(stderr, "vhost-blk-driver: backend offers %llu queue(s), %u asked\n",
                    (unsigned long long)n, c->nqueues);
            return -ENOTSUP;
        }
    }
    STEP("SET_FEATURES", set_u64(c, VHOST_USER_SET_FEATURES, c->features, -1));
    STEP("SET_OWNER", request(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL));

    struct vhost_user_memory mt = { .nregions = 1 };
    mt.regions[0] = (struct vhost_user_mem_region){
        .guest_phys_addr = 0, .memory_size = c->mem_size, .userspace_addr = (uintptr_t)c->mem, .mmap_offset = 0,
    };
    STEP("SET_MEM_TABLE", request(c, VHOST_USER_SET_MEM_TABLE, &mt,
                                  offsetof(struct vhost_user_memory, regions) + sizeof(mt.regions[0]),
                                  &c->memfd, 1, NULL));

    for (unsigned i = 0; i < c->nqueues; i++) {
        struct vuc_queue *q = &c->q[i];
        STEP("SET_VRING_NUM", set_state(c, VHOST_USER_SET_VRING_NUM, i, c->qsize));
        STEP("SET_VRING_BASE", set_state(c, VHOST_USER_SET_VRING_BASE, i, 0));
        struct vhost_user_vring_addr a = {
            .index = i,
            .desc_user_addr = (uintptr_t)q->vr.desc,
            .avail_user_addr = (uintptr_t)q->vr.avail,
            .used_user_addr = (uintptr_t)q->vr.used,
        };
        STEP("SET_VRING_ADDR", request(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL));
        STEP("SET_VRING_CALL", set_u64(c, VHOST_USER_SET_VRING_CALL, i, q->call_fd));
        STEP("SET_VRING_KICK", set_u64(c, VHOST_USER_SET_VRING_KICK, i, q->kick_fd));
        if (c->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
            STEP("SET_VRING_ENABLE", set_state(c, VHOST_USER_SET_VRING_ENABLE, i, 1));
    }
    return 0;
}

uint64_t vuc_blk_capacity(struct vuc *c)
{
    if (!(c->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)))
        return 0;
    struct vhost_user_config cfg = { .offset = 0, .size = sizeof(struct virtio_blk_config) };
    struct vhost_user_msg r;
    if (request(c, VHOST_USER_GET_CONFIG, &cfg, VHOST_USER_CONFIG_HDR_SIZE + cfg.size, NULL, 0, &r) < 0 ||
        r.hdr.size != VHOST_USER_CONFIG_HDR_SIZE + cfg.size || r.payload.config.size != cfg.size)
        return 0;
    uint64_t cap;
    memcpy(&cap, r.payload.config.region + offsetof(struct virtio_blk_config, capacity), sizeof(cap));
    return cap;
}

void vuc_close(struct vuc *c)
{
    if (c->sock >= 0)
        close(c->sock);
    for (unsigned i = 0; i < VUC_MAX_QUEUES; i++) {
        if (c->q[i].kick_fd >= 0)
            close(c->q[i].kick_fd);
        if (c->q[i].call_fd >= 0)
            close(c->q[i].call_fd);
    }
    if (c->mem)
        munmap(c->mem, c->mem_size);
    if (c->memfd >= 0)
        close(c->memfd);
    c->sock = c->memfd = -1;
    c->mem = NULL;
}
