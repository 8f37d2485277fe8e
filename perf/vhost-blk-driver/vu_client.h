/* vu_client.h: the frontend half of vhost-user for a userspace benchmark
 * driver: connects to a backend's socket, negotiates features, hands over
 * "guest memory" (one memfd, guest-physical 0 = offset 0) and sets up split
 * virtqueues in it. Messages go through vhost-user/protocol.c (the same
 * message table, framing and validation as the VMM's frontend). */
#ifndef VU_CLIENT_H
#define VU_CLIENT_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VUC_MAX_QUEUES 16

struct vuc_queue {
    struct vring vr;            /* desc/avail/used inside the memfd mapping */
    int kick_fd, call_fd;       /* eventfds handed to the backend */
    uint16_t avail_idx;         /* next avail slot the driver fills */
    uint16_t kicked_idx;        /* avail_idx at the last kick decision */
    uint16_t last_used;         /* next used element to read */
};

struct vuc {
    int sock;
    uint64_t features;          /* negotiated virtio + vhost-user feature bits */
    uint64_t protocol_features; /* negotiated protocol features */
    bool event_idx;
    int memfd;
    uint8_t *mem;               /* the mapping; guest-physical address = offset */
    size_t mem_size;
    size_t mem_used;            /* bytes handed out by vuc_alloc */
    unsigned nqueues;
    uint16_t qsize;
    struct vuc_queue q[VUC_MAX_QUEUES];
};

/* Connects (retrying for up to timeout_ms while the socket is not there
 * yet), creates and maps mem_size bytes of memfd memory and lays out
 * nqueues rings of qsize entries at its start. 0 or -errno. */
int vuc_open(struct vuc *c, const char *path, unsigned timeout_ms, size_t mem_size,
             unsigned nqueues, uint16_t qsize);

/* The handshake: features (VERSION_1, EVENT_IDX unless no_event_idx, MQ and
 * PROTOCOL_FEATURES when offered), protocol features (MQ, REPLY_ACK,
 * CONFIG), SET_OWNER, SET_MEM_TABLE, then per queue NUM, BASE, ADDR, CALL,
 * KICK and ENABLE. With REPLY_ACK every SET waits for its ack. 0 or -errno
 * (a message to stderr says which step failed). */
int vuc_start(struct vuc *c, bool no_event_idx);

/* Capacity in 512-byte sectors from GET_CONFIG; 0 when the backend has no
 * CONFIG protocol feature or refuses. */
uint64_t vuc_blk_capacity(struct vuc *c);

/* size bytes of memory after the rings, aligned to align; NULL when full.
 * The guest-physical address of p is p - c->mem. */
void *vuc_alloc(struct vuc *c, size_t size, size_t align);

static inline uint64_t vuc_gpa(const struct vuc *c, const void *p)
{
    return (uint64_t)((const uint8_t *)p - c->mem);
}

void vuc_close(struct vuc *c);

#endif
