/* vhost-user frontend: the VMM end of the socket (vhost-user spec, "front-end
 * message types"). Requests go out one at a time from whichever thread
 * drives the device (a vCPU writing the virtio status, or VM set-up), under
 * the frontend's lock, with a receive timeout so a stuck backend cannot
 * hang the VM for ever. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "eventloop.h"
#include "frontend.h"
#include "memory.h"
#include "vhost_user.h"
#include "virtio.h"

#define REPLY_TIMEOUT_S 10
#define RECONNECT_PERIOD_MS 100

/* What we use of what the backend may offer. */
#define WANTED_PROTOCOL_FEATURES                                                               \
    ((1ULL << VHOST_USER_PROTOCOL_F_MQ) | (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
     (1ULL << VHOST_USER_PROTOCOL_F_CONFIG) | (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
     (1ULL << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

struct vu_frontend {
    char *name, *socket_path;
    const struct guest_mem *mem;
    pthread_mutex_t lock;
    int sock;
    uint64_t features;           /* offered by the backend, as received */
    uint64_t protocol;           /* negotiated protocol features */
    uint16_t queues, queue_size;
    uint16_t queues_per_queue_num;   /* see vu_frontend_params */
    uint64_t disabled;           /* bit per queue: SET_VRING_ENABLE 0 (vu_frontend_set_vring_enable) */
    uint8_t config[VHOST_USER_MAX_CONFIG_SIZE];
    uint32_t config_size;
    int inflight_fd;             /* kept across stops: the backend's in-flight log */
    uint64_t inflight_size;
    struct vhost_user_inflight inflight;
    bool started;
    unsigned n_started;
    uint16_t started_idx[VIRTIO_MAX_QUEUES];
    uint16_t last_avail[VIRTIO_MAX_QUEUES];   /* from GET_VRING_BASE at stop */

    /* What the driver started, kept to replay it to a restarted backend. */
    uint64_t driver_features;
    struct virtio_queue_setup setups[VIRTIO_MAX_QUEUES];
    /* Reconnection: the socket is watched on the VM's event loop; when the
     * backend goes away the timer retries every RECONNECT_PERIOD_MS. */
    struct eventloop *loop;
    int timer_fd;
    bool watching;               /* sock is registered on loop */
    bool gone;                   /* lost the backend, retrying */
    void (*backend_gone)(void *opaque);
    void *opaque;
    unsigned reconnects;
};

static bool has_proto(const struct vu_frontend *fe, unsigned bit)
{
    return (fe->protocol >> bit) & 1;
}

/* Sends one request; with reply != NULL waits for its reply, else, when
 * REPLY_ACK was negotiated, for the ack. fds are only lent. 0 or -errno. */
static int request(struct vu_frontend *fe, uint32_t req, const void *payload, uint32_t size,
                   const int *fds, size_t nfds, struct vhost_user_msg *reply, int *reply_fd)
{
    struct vhost_user_msg msg = { .hdr = { .request = req, .size = size } };
    struct vhost_user_msg ack;
    struct vhost_user_msg *in = reply ? reply : &ack;
    bool want_ack = !reply && has_proto(fe, VHOST_USER_PROTOCOL_F_REPLY_ACK);
    int rfds[VHOST_USER_MAX_FDS];
    size_t nr = 0;
    int ret;

    if (fe->sock < 0)
        return -ENOTCONN;
    if (size)
        memcpy(&msg.payload, payload, size);
    if (want_ack)
        msg.hdr.flags |= VHOST_USER_NEED_REPLY;
    if ((ret = vhost_user_send(fe->sock, &msg, fds, nfds)) < 0)
        goto fail;
    if (!reply && !want_ack)
        return 0;
    if ((ret = vhost_user_recv(fe->sock, in, rfds, &nr)) < 0)
        goto fail;
    if (in->hdr.request != req || !(in->hdr.flags & VHOST_USER_REPLY)) {
        vhost_user_close_fds(rfds, nr);
        ret = -EPROTO;
        goto fail;
    }
    if (reply_fd)
        *reply_fd = nr ? rfds[0] : -1;
    else
        vhost_user_close_fds(rfds, nr);
    if (want_ack && in->payload.u64 != 0) {
        fprintf(stderr, "vmm: vhost-user %s: the backend refused %s\n", fe->name,
                vhost_user_msg_name(req));
        return -EREMOTEIO;
    }
    return 0;
fail:
    fprintf(stderr, "vmm: vhost-user %s: %s: %s\n", fe->name, vhost_user_msg_name(req),
            strerror(-ret));
    /* The stream position is lost: end the connection. The event loop sees
     * the shutdown as EOF and reconnects (when watching). */
    shutdown(fe->sock, SHUT_RDWR);
    return ret;
}

static int get_u64(struct vu_frontend *fe, uint32_t req, uint64_t *out)
{
    struct vhost_user_msg r;
    int ret = request(fe, req, NULL, 0, NULL, 0, &r, NULL);

    if (ret == 0)
        *out = r.payload.u64;
    return ret;
}

static int set_u64(struct vu_frontend *fe, uint32_t req, uint64_t v)
{
    return request(fe, req, &v, sizeof(v), NULL, 0, NULL, NULL);
}

static int set_state(struct vu_frontend *fe, uint32_t req, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state s = { .index = index, .num = num };
    return request(fe, req, &s, sizeof(s), NULL, 0, NULL, NULL);
}

static int connect_socket(const char *path, unsigned timeout_ms)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
    unsigned waited = 0;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (;;) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return -errno;
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            return s;
        }
        int err = errno;
        close(s);
        if ((err != ENOENT && err != ECONNREFUSED) || waited >= timeout_ms)
            return -err;
        nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
        waited += 50;
    }
}

static int fetch_config(struct vu_frontend *fe, uint32_t size)
{
    struct vhost_user_config c = { .offset = 0, .size = size };
    struct vhost_user_msg r;
    int ret;

    if (size > VHOST_USER_MAX_CONFIG_SIZE)
        return -EINVAL;
    ret = request(fe, VHOST_USER_GET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + size, NULL, 0,
                  &r, NULL);
    if (ret < 0)
        return ret;
    if (r.payload.config.size != size || r.payload.config.offset != 0) {
        fprintf(stderr, "vmm: vhost-user %s: GET_CONFIG returned %u bytes, asked for %u\n",
                fe->name, r.payload.config.size, size);
        return -EPROTO;
    }
    memcpy(fe->config, r.payload.config.region, size);
    fe->config_size = size;
    return 0;
}

static int handshake(struct vu_frontend *fe, const struct vu_frontend_params *p)
{
    uint64_t offered = 0, qn = 0;
    uint16_t unit = p->queues_per_queue_num ? p->queues_per_queue_num : 1;
    int ret;

    if ((ret = get_u64(fe, VHOST_USER_GET_FEATURES, &fe->features)) < 0 ||
        (ret = request(fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, NULL)) < 0)
        return ret;
    if (fe->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) {
        if ((ret = get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &offered)) < 0 ||
            (ret = set_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
                           offered & WANTED_PROTOCOL_FEATURES)) < 0)
            return ret;
        fe->protocol = offered & WANTED_PROTOCOL_FEATURES;
    }
    fe->queues = p->queues;
    if (has_proto(fe, VHOST_USER_PROTOCOL_F_MQ)) {
        if ((ret = get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &qn)) < 0)
            return ret;
        if (qn == 0) {
            fprintf(stderr, "vmm: vhost-user %s: the backend has no queues\n", fe->name);
            return -EPROTO;
        }
        /* Compared in the backend's unit: qn * unit could overflow. */
        if (qn < (fe->queues + unit - 1u) / unit) {
            fprintf(stderr, "vmm: vhost-user %s: the backend serves %llu queues, not %u\n",
                    fe->name, (unsigned long long)qn * unit, fe->queues);
            fe->queues = (uint16_t)(qn * unit);
        }
    } else if (fe->queues > unit) {
        fprintf(stderr, "vmm: vhost-user %s: the backend does not offer MQ: %u queue%s\n",
                fe->name, unit, unit > 1 ? "s" : "");
        fe->queues = unit;
    }
    if (p->config_size) {
        if (!has_proto(fe, VHOST_USER_PROTOCOL_F_CONFIG)) {
            fprintf(stderr, "vmm: vhost-user %s: the backend does not offer CONFIG\n", fe->name);
            return -EPROTO;
        }
        if ((ret = fetch_config(fe, p->config_size)) < 0)
            return ret;
    }
    return 0;
}

struct vu_frontend *vu_frontend_connect(const struct vu_frontend_params *p)
{
    struct vu_frontend *fe = calloc(1, sizeof(*fe));
    int ret;

    if (!fe)
        return NULL;
    pthread_mutex_init(&fe->lock, NULL);
    fe->name = strdup(p->name);
    fe->socket_path = strdup(p->socket);
    fe->mem = p->mem;
    fe->queue_size = p->queue_size;
    fe->queues_per_queue_num = p->queues_per_queue_num;
    fe->inflight_fd = -1;
    fe->timer_fd = -1;
    fe->backend_gone = p->backend_gone;
    fe->opaque = p->opaque;
    fe->sock = connect_socket(p->socket, p->connect_timeout_ms);
    if (!fe->name || !fe->socket_path || fe->sock < 0) {
        fprintf(stderr, "vmm: vhost-user %s: cannot connect to %s: %s\n", p->name, p->socket,
                fe->sock < 0 ? strerror(-fe->sock) : "out of memory");
        vu_frontend_destroy(fe);
        return NULL;
    }
    if ((ret = handshake(fe, p)) < 0) {
        fprintf(stderr, "vmm: vhost-user %s: handshake with %s failed\n", p->name, p->socket);
        vu_frontend_destroy(fe);
        return NULL;
    }
    return fe;
}

void vu_frontend_destroy(struct vu_frontend *fe)
{
    if (!fe)
        return;
    if (fe->started)
        vu_frontend_stop(fe);
    if (fe->sock >= 0)
        close(fe->sock);
    if (fe->inflight_fd >= 0)
        close(fe->inflight_fd);
    /* The VM's event loop is gone by now (vm_destroy stops it before the
     * devices), so the watches need no removal. */
    if (fe->timer_fd >= 0)
        close(fe->timer_fd);
    pthread_mutex_destroy(&fe->lock);
    free(fe->name);
    free(fe->socket_path);
    free(fe);
}

uint64_t vu_frontend_features(const struct vu_frontend *fe)
{
    return fe->features & ~(1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
}

uint16_t vu_frontend_queues(const struct vu_frontend *fe)
{
    return fe->queues;
}

const uint8_t *vu_frontend_config(const struct vu_frontend *fe, uint32_t *size)
{
    *size = fe->config_size;
    return fe->config;
}

int vu_frontend_set_config(struct vu_frontend *fe, uint32_t offset, const void *data,
                           uint32_t len)
{
    struct vhost_user_config c = { .offset = offset, .size = len };
    int ret;

    if (offset > fe->config_size || len > fe->config_size - offset)
        return -EINVAL;
    pthread_mutex_lock(&fe->lock);
    memcpy(fe->config + offset, data, len);
    memcpy(c.region, data, len);
    ret = request(fe, VHOST_USER_SET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + len, NULL, 0, NULL,
                  NULL);
    pthread_mutex_unlock(&fe->lock);
    return ret;
}

/* Guest RAM as the backend maps it: one region per RAM region, all in the
 * one memfd, at the VMM's own addresses. */
static int send_mem_table(struct vu_frontend *fe)
{
    struct vhost_user_memory m = { .nregions = fe->mem->n_regions };
    int fds[VHOST_USER_MAX_REGIONS];

    if (m.nregions > VHOST_USER_MAX_REGIONS)
        return -E2BIG;
    for (unsigned i = 0; i < m.nregions; i++) {
        const struct guest_region *r = &fe->mem->regions[i];
        m.regions[i] = (struct vhost_user_mem_region){
            .guest_phys_addr = r->gpa, .memory_size = r->size,
            .userspace_addr = (uint64_t)(uintptr_t)r->hva, .mmap_offset = r->fd_offset,
        };
        fds[i] = fe->mem->fd;
    }
    return request(fe, VHOST_USER_SET_MEM_TABLE, &m,
                   (uint32_t)(offsetof(struct vhost_user_memory, regions) +
                              m.nregions * sizeof(m.regions[0])),
                   fds, m.nregions, NULL, NULL);
}

/* The shared region where the backend logs requests in flight, so that a
 * restarted backend can finish them. Asked for once and kept. */
static int setup_inflight(struct vu_frontend *fe)
{
    struct vhost_user_inflight in = { .num_queues = fe->queues, .queue_size = fe->queue_size };
    struct vhost_user_msg r;
    int fd = -1, ret;

    if (!has_proto(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
        return 0;
    if (fe->inflight_fd < 0) {
        ret = request(fe, VHOST_USER_GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0, &r, &fd);
        if (ret < 0)
            return ret;
        if (fd < 0 || r.payload.inflight.mmap_size == 0) {
            if (fd >= 0)
                close(fd);
            return 0;   /* nothing to track */
        }
        fe->inflight_fd = fd;
        fe->inflight = r.payload.inflight;
    }
    return request(fe, VHOST_USER_SET_INFLIGHT_FD, &fe->inflight, sizeof(fe->inflight),
                   &fe->inflight_fd, 1, NULL, NULL);
}

/* The used index the guest sees in its ring: where a backend that lost its
 * state must take up the queue. With inflight tracking the backend adds
 * the requests the region marks in flight (taken but not yet used), so
 * this value and its resubmission agree (spec, "Inflight I/O tracking"). */
static uint16_t guest_used_idx(struct vu_frontend *fe, const struct virtio_queue_setup *q)
{
    uint16_t *used = guest_mem_ptr(fe->mem, q->device, 4);
    return used ? __atomic_load_n(&used[1], __ATOMIC_ACQUIRE) : 0;
}

static int start_queue(struct vu_frontend *fe, const struct virtio_queue_setup *q, bool resume)
{
    uint64_t n = q->size;
    void *desc = guest_mem_ptr(fe->mem, q->desc, 16 * n);
    void *avail = guest_mem_ptr(fe->mem, q->driver, 6 + 2 * n);
    void *used = guest_mem_ptr(fe->mem, q->device, 6 + 8 * n);
    struct vhost_user_vring_addr a;
    uint64_t kick = q->index, call = q->index;
    uint16_t base;
    int ret;

    /* The driver's addresses must be RAM and aligned as the spec says;
     * anything else is refused before the backend sees it. */
    if (!desc || !avail || !used || (q->desc & 15) || (q->driver & 1) || (q->device & 3)) {
        fprintf(stderr, "vmm: vhost-user %s: queue %u: ring addresses outside RAM or unaligned\n",
                fe->name, q->index);
        return -EFAULT;
    }
    base = resume ? guest_used_idx(fe, q) : fe->last_avail[q->index];
    a = (struct vhost_user_vring_addr){
        .index = q->index, .desc_user_addr = (uint64_t)(uintptr_t)desc,
        .used_user_addr = (uint64_t)(uintptr_t)used,
        .avail_user_addr = (uint64_t)(uintptr_t)avail,
    };
    if ((ret = set_state(fe, VHOST_USER_SET_VRING_NUM, q->index, q->size)) < 0 ||
        (ret = request(fe, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, NULL)) < 0 ||
        (ret = set_state(fe, VHOST_USER_SET_VRING_BASE, q->index, base)) < 0 ||
        (ret = request(fe, VHOST_USER_SET_VRING_KICK, &kick, 8, &q->kick_fd, 1, NULL, NULL)) < 0 ||
        (ret = request(fe, VHOST_USER_SET_VRING_CALL, &call, 8, &q->call_fd, 1, NULL, NULL)) < 0)
        return ret;
    if (fe->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))
        ret = set_state(fe, VHOST_USER_SET_VRING_ENABLE, q->index,
                        !((fe->disabled >> q->index) & 1));
    return ret;
}

/* Everything a backend needs to run the driver's rings: on a start, and
 * again after a restarted backend reconnects (resume). Lock held. */
static int send_rings(struct vu_frontend *fe, bool resume)
{
    uint64_t features = fe->driver_features;
    int ret;

    if (fe->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))
        features |= 1ULL << VHOST_USER_F_PROTOCOL_FEATURES;
    if ((ret = set_u64(fe, VHOST_USER_SET_FEATURES, features)) < 0 ||
        (ret = send_mem_table(fe)) < 0 || (ret = setup_inflight(fe)) < 0)
        return ret;
    for (unsigned i = 0; i < fe->n_started; i++)
        if ((ret = start_queue(fe, &fe->setups[i], resume)) < 0)
            return ret;
    return 0;
}

int vu_frontend_start(struct vu_frontend *fe, uint64_t features,
                      const struct virtio_queue_setup *queues, unsigned n)
{
    int ret = 0;

    pthread_mutex_lock(&fe->lock);
    if (fe->started) {
        ret = -EBUSY;
        goto out;
    }
    if (n > VIRTIO_MAX_QUEUES) {
        ret = -EINVAL;
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        if (queues[i].index >= fe->queues) {
            ret = -EINVAL;
            goto out;
        }
    }
    fe->driver_features = features;
    fe->n_started = 0;
    for (unsigned i = 0; i < n; i++) {
        fe->setups[i] = queues[i];
        fe->started_idx[fe->n_started++] = queues[i].index;
    }
    fe->started = true;
    /* Without a backend right now the rings wait: the reconnection sends
     * them when one is back, and the guest only sees slow requests. */
    if (fe->gone)
        goto out;
    ret = send_rings(fe, false);
out:
    pthread_mutex_unlock(&fe->lock);
    if (ret < 0 && fe->started)
        vu_frontend_stop(fe);
    return ret;
}

void vu_frontend_stop(struct vu_frontend *fe)
{
    pthread_mutex_lock(&fe->lock);
    for (unsigned i = 0; fe->started && !fe->gone && i < fe->n_started; i++) {
        struct vhost_user_vring_state s = { .index = fe->started_idx[i] };
        struct vhost_user_msg r;
        /* GET_VRING_BASE stops the ring and tells where the backend was. */
        if (request(fe, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &r, NULL) < 0)
            break;
    }
    /* The driver will set the rings up from scratch after its reset: what
     * the old rings had in flight means nothing to the new ones. */
    memset(fe->last_avail, 0, sizeof(fe->last_avail));
    if (fe->inflight_fd >= 0)
        close(fe->inflight_fd);
    fe->inflight_fd = -1;
    if (!fe->gone && has_proto(fe, VHOST_USER_PROTOCOL_F_RESET_DEVICE))
        request(fe, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0, NULL, NULL);
    fe->started = false;
    fe->n_started = 0;
    pthread_mutex_unlock(&fe->lock);
}

int vu_frontend_set_vring_enable(struct vu_frontend *fe, uint16_t queue, bool enable)
{
    bool started = false;
    int ret = 0;

    pthread_mutex_lock(&fe->lock);
    if (queue >= fe->queues || queue >= VIRTIO_MAX_QUEUES) {
        ret = -EINVAL;
        goto out;
    }
    if (!enable && fe->sock >= 0 && !(fe->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))) {
        ret = -ENOTSUP;   /* without it a ring runs from its kick fd on */
        goto out;
    }
    if (enable)
        fe->disabled &= ~(1ULL << queue);
    else
        fe->disabled |= 1ULL << queue;
    for (unsigned i = 0; fe->started && i < fe->n_started; i++)
        started |= fe->started_idx[i] == queue;
    /* Without a backend the state waits for the replay (send_rings). */
    if (started && !fe->gone && fe->sock >= 0 &&
        (fe->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)))
        ret = set_state(fe, VHOST_USER_SET_VRING_ENABLE, queue, enable);
out:
    pthread_mutex_unlock(&fe->lock);
    return ret;
}

/* --- reconnection (event loop thread) -------------------------------------- */

static void arm_timer(struct vu_frontend *fe, bool on)
{
    struct itimerspec its = { 0 };

    if (on) {
        its.it_value.tv_nsec = RECONNECT_PERIOD_MS * 1000000L;
        its.it_interval = its.it_value;
    }
    timerfd_settime(fe->timer_fd, 0, &its, NULL);
}

static void on_socket(void *opaque, uint32_t events);

/* The backend closed the socket or died. Lock held, loop thread. */
static void lose_backend(struct vu_frontend *fe)
{
    if (fe->watching)
        eventloop_del_fd(fe->loop, fe->sock);
    fe->watching = false;
    close(fe->sock);
    fe->sock = -1;
    fe->gone = true;
    fprintf(stderr, "vmm: vhost-user %s: lost the backend at %s; reconnecting every %d ms%s\n",
            fe->name, fe->socket_path, RECONNECT_PERIOD_MS,
            fe->inflight_fd >= 0 ? " (its in-flight requests will be resubmitted)" : "");
    arm_timer(fe, true);
}

/* The backend never speaks first (no BACKEND_REQ channel): readable
 * outside a request means EOF, an error or junk, all of which end it. */
static void on_socket(void *opaque, uint32_t events)
{
    struct vu_frontend *fe = opaque;
    char c;

    pthread_mutex_lock(&fe->lock);
    if (fe->sock >= 0 && fe->watching) {
        ssize_t n = recv(fe->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        bool dead = n >= 0 || (errno != EAGAIN && errno != EINTR) ||
                    (events & (EPOLLHUP | EPOLLERR));
        if (n > 0)
            fprintf(stderr, "vmm: vhost-user %s: unexpected data from the backend\n", fe->name);
        if (dead)
            lose_backend(fe);
    }
    pthread_mutex_unlock(&fe->lock);
}

/* One attempt: connect, handshake again, replay the rings. Lock held. */
static int try_reconnect(struct vu_frontend *fe)
{
    struct vu_frontend_params p = { .queues = fe->queues,
                                    .queues_per_queue_num = fe->queues_per_queue_num };
    uint16_t queues = fe->queues;
    int ret;

    fe->sock = connect_socket(fe->socket_path, 0);
    if (fe->sock < 0)
        return fe->sock;
    /* A new connection starts without protocol features: no REPLY_ACK
     * until SET_PROTOCOL_FEATURES says so again. */
    fe->protocol = 0;
    if ((ret = handshake(fe, &p)) < 0)
        goto fail;
    if (fe->queues < queues || (fe->started && (fe->driver_features & ~fe->features))) {
        fprintf(stderr, "vmm: vhost-user %s: the new backend offers less than the old one\n",
                fe->name);
        fe->queues = queues;
        ret = -EPROTO;
        goto fail;
    }
    if (fe->started && (ret = send_rings(fe, true)) < 0)
        goto fail;
    if ((ret = eventloop_add_fd(fe->loop, fe->sock, EPOLLIN | EPOLLRDHUP, on_socket, fe)) < 0)
        goto fail;
    fe->watching = true;
    return 0;
fail:
    close(fe->sock);
    fe->sock = -1;
    return ret;
}

static void on_timer(void *opaque, uint32_t events)
{
    struct vu_frontend *fe = opaque;
    uint64_t ticks;

    (void)events;
    if (read(fe->timer_fd, &ticks, sizeof(ticks)) < 0) {
        /* EAGAIN: nothing expired */
    }
    pthread_mutex_lock(&fe->lock);
    if (fe->gone && fe->backend_gone)
        fe->backend_gone(fe->opaque);
    if (!fe->gone || try_reconnect(fe) == 0) {
        if (fe->gone) {
            fe->reconnects++;
            fprintf(stderr, "vmm: vhost-user %s: reconnected to %s (%u so far)\n", fe->name,
                    fe->socket_path, fe->reconnects);
            /* Requests the guest queued while nobody served them: the
             * kicks were eaten by the old backend or are still counted in
             * the eventfds; one more makes sure the new one looks. */
            for (unsigned i = 0; fe->started && i < fe->n_started; i++) {
                uint64_t one = 1;
                if (write(fe->setups[i].kick_fd, &one, sizeof(one)) < 0) {
                    /* a full eventfd counter already wakes the backend */
                }
            }
        }
        fe->gone = false;
        arm_timer(fe, false);
    }
    pthread_mutex_unlock(&fe->lock);
}

int vu_frontend_watch(struct vu_frontend *fe, struct eventloop *loop)
{
    int ret;

    pthread_mutex_lock(&fe->lock);
    fe->loop = loop;
    fe->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fe->timer_fd < 0) {
        ret = -errno;
        goto out;
    }
    if ((ret = eventloop_add_fd(loop, fe->timer_fd, EPOLLIN, on_timer, fe)) < 0)
        goto out;
    if (fe->sock >= 0) {
        ret = eventloop_add_fd(loop, fe->sock, EPOLLIN | EPOLLRDHUP, on_socket, fe);
        fe->watching = ret == 0;
    } else {
        fe->gone = true;
        arm_timer(fe, true);
    }
out:
    pthread_mutex_unlock(&fe->lock);
    return ret;
}
