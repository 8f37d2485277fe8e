/* port.h: the runtime side of a port of build/vhost-user-net: a vhost-user
 * port served by rte_vhost, or a DPDK ethdev; per-port counters. */
#ifndef VN_PORT_H
#define VN_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "options.h"

/* Written only by the one lcore that owns the port (one pair per port),
 * read by the stats writer on the main lcore: relaxed atomics suffice. */
struct vn_counters {
    uint64_t rx_packets, rx_bytes;
    uint64_t tx_packets, tx_bytes;
    uint64_t tx_drops; /* mbufs the destination did not take, freed by us */
} __rte_cache_aligned;

struct vn_port {
    char name[VN_NAME_MAX];
    bool is_vhost;
    unsigned queues;

    /* ethdev */
    uint16_t port_id;
    bool started;

    /* vhost */
    const struct vn_vhost_opt *vopt;
    bool registered;
    int vid; /* valid while connected */
    /* Set by new_device, cleared by destroy_device; the forwarding lcore
     * only touches the vid while it sees ready under its in_use mark. */
    int ready;
    int in_use;
    int connected;
    /* Per virtqueue, from vring_state_changed (index = vring number). */
    uint8_t vring_enabled[2 * VN_MAX_QUEUES];
    bool warned_extra_vring;

    struct vn_counters cnt;
};

int vn_ethdev_setup(struct vn_port *p, struct rte_mempool *pool);
void vn_ethdev_close(struct vn_port *p);

int vn_vhost_setup(struct vn_port *p);
void vn_vhost_close(struct vn_port *p);

/* The table the rte_vhost callbacks look ports up in (by socket path). */
void vn_vhost_set_ports(struct vn_port *ports, unsigned n);

/* The forwarding lcores: one call per worker lcore, through
 * rte_eal_remote_launch, until vn_forward_stop(). */
struct vn_lcore_work {
    unsigned n_pairs;
    struct vn_port *a[VN_MAX_PAIRS], *b[VN_MAX_PAIRS];
    struct rte_mempool *pool;
    unsigned burst;
};
int vn_forward_lcore(void *work);
void vn_forward_stop(void);

/* Per-port counters as JSON (stats.c): to a stream, or to FILE through
 * FILE.tmp and rename() so a reader never sees half a file. */
void vn_stats_print(FILE *f, const struct vn_port *ports, unsigned n);
int vn_stats_write_file(const char *path, const struct vn_port *ports, unsigned n);

#endif
