/* The VMM's side of vhost-user: one Unix socket to a backend process, the
 * handshake (features, owner, protocol features, queue count, config space),
 * and handing it guest RAM (the memfd) and the rings the guest driver set up,
 * with the kick and call eventfds that KVM signals and injects. The VMM
 * never touches a ring or a data buffer itself. Every reply from the backend
 * is checked (vhost_user_recv validates its shape). */
#ifndef VHOST_USER_FRONTEND_H
#define VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eventloop;
struct guest_mem;
struct virtio_queue_setup;

struct vu_frontend;

struct vu_frontend_params {
    const char *name;            /* for logs: the device id */
    const char *socket;          /* path of the backend's listening socket */
    const struct guest_mem *mem; /* guest RAM: mem->fd is shared with the backend */
    uint16_t queues;             /* queues the device wants (capped by the backend's) */
    /* Queues per unit of the backend's GET_QUEUE_NUM answer: 0 or 1 when it
     * counts queues (block), 2 when it counts queue pairs (net backends,
     * DPDK's vhost library among them). */
    uint16_t queues_per_queue_num;
    uint16_t queue_size;         /* for the inflight region */
    uint32_t config_size;        /* bytes of device config space to fetch */
    unsigned connect_timeout_ms; /* how long to retry connecting */
    /* Optional: called on the event loop before each reconnection attempt
     * while the backend is gone (e.g. to restart a backend process the VMM
     * started that died). Runs with the frontend's lock held: it must not
     * call back into the frontend. */
    void (*backend_gone)(void *opaque);
    void *opaque;
};

/* Connects and runs the handshake. NULL on failure, having said why. */
struct vu_frontend *vu_frontend_connect(const struct vu_frontend_params *p);
void vu_frontend_destroy(struct vu_frontend *fe);

/* Virtio features the backend offers (VHOST_USER_F_PROTOCOL_FEATURES removed). */
uint64_t vu_frontend_features(const struct vu_frontend *fe);
/* Queues usable: the device's wish capped by the backend's GET_QUEUE_NUM. */
uint16_t vu_frontend_queues(const struct vu_frontend *fe);
/* The device config space fetched at connect (GET_CONFIG); size bytes. */
const uint8_t *vu_frontend_config(const struct vu_frontend *fe, uint32_t *size);
/* SET_CONFIG of [offset, offset+len) (the cached copy is updated first). */
int vu_frontend_set_config(struct vu_frontend *fe, uint32_t offset, const void *data,
                           uint32_t len);

/* Gives the backend the memory table and the rings, and starts them with
 * the driver's negotiated features. 0 or -errno. */
int vu_frontend_start(struct vu_frontend *fe, uint64_t features,
                      const struct virtio_queue_setup *queues, unsigned n);
/* Stops the rings (GET_VRING_BASE each). */
void vu_frontend_stop(struct vu_frontend *fe);

/* Enables or disables one ring in the backend (SET_VRING_ENABLE), e.g. the
 * queue pairs a virtio-net driver turns on with VQ_PAIRS_SET. The state is
 * kept per queue (all enabled until told otherwise) and applies when the
 * ring starts and when it is replayed to a restarted backend; it is sent
 * now only for a started ring while a backend is connected. Callable
 * before vu_frontend_start to start rings disabled. 0, -EINVAL (no such
 * queue), -ENOTSUP (a backend without PROTOCOL_FEATURES cannot disable a
 * ring) or the request's error. */
int vu_frontend_set_vring_enable(struct vu_frontend *fe, uint16_t queue, bool enable);

/* Watches the backend's socket on loop (before the loop starts). When the
 * backend goes away (EOF, error, a broken reply) the guest is not told:
 * its requests wait while the frontend retries connecting every 100 ms,
 * then redoes the handshake and replays the started rings (features,
 * memory table, the kept inflight region so the new backend resubmits
 * what was in flight, ring addresses with the guest's used index as base,
 * kick/call fds, enable) and kicks every queue once. 0 or -errno. */
int vu_frontend_watch(struct vu_frontend *fe, struct eventloop *loop);

#endif
