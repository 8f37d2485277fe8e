/* The virtio-net control virtqueue, served by the VMM itself on its event
 * loop thread. A vhost-user frontend never hands this queue to the backend:
 * its commands change what the frontend tells the backend (VQ_PAIRS_SET
 * becomes SET_VRING_ENABLE per ring). The ring is read from guest memory
 * with the bounds-checked split-ring walker (virtq.h); every command is
 * copied out of guest memory once before it is looked at. */
#ifndef VHOST_USER_NET_CTRL_H
#define VHOST_USER_NET_CTRL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"

struct eventloop;
struct guest_mem;
struct virtio_queue_setup;

/* Command classes and commands (virtio 1.2, 5.1.6.5). */
#define VIRTIO_NET_CTRL_RX               0
#define VIRTIO_NET_CTRL_RX_NOBCAST       5   /* the last RX command */
#define VIRTIO_NET_CTRL_MAC              1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET    0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET     1
#define VIRTIO_NET_CTRL_MQ               4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET  0
#define VIRTIO_NET_OK                    0
#define VIRTIO_NET_ERR                   1

/* Longest command we look at: class, command and a few bytes of data.
 * Longer data (a MAC table) is acknowledged by its length alone. */
#define NET_CTRL_MAX_CMD 16

struct net_ctrl {
    const char *name;                /* device id, for logs */
    /* Called with the control lock held when the driver asks for a number
     * of queue pairs (1..max_pairs, already checked). 0 or -errno. */
    int (*set_pairs)(void *opaque, uint16_t pairs);
    void *opaque;

    pthread_mutex_t lock;            /* start/stop (vCPU) vs. commands (event loop) */
    struct vq_mem mem;               /* guest RAM as the walker sees it; nothing mapped */
    struct virtq vq;
    int kick_fd, call_fd, watched_fd;
    bool running;                    /* between start and stop */
    bool broken;                     /* the ring itself is insane: ignored until a reset */
    bool mq;                         /* VIRTIO_NET_F_MQ negotiated */
    uint16_t max_pairs;
    unsigned warned;                 /* NET_CTRL_WARN_* already logged once */
    uint64_t commands, failed;       /* served, of which answered VIRTIO_NET_ERR */
};

/* mem is guest RAM (regions at their host addresses). */
int net_ctrl_init(struct net_ctrl *c, const char *name, const struct guest_mem *mem,
                  uint16_t max_pairs, int (*set_pairs)(void *opaque, uint16_t pairs),
                  void *opaque);
void net_ctrl_fini(struct net_ctrl *c);

/* DRIVER_OK with the control queue q and the negotiated features. The kick
 * fd is watched on loop from the first start on (the transport keeps its
 * eventfds for the device's life); loop may be NULL (tests call
 * net_ctrl_process by hand). 0 or -errno (ring outside RAM). */
int net_ctrl_start(struct net_ctrl *c, struct eventloop *loop, const struct virtio_queue_setup *q,
                   uint64_t features);
void net_ctrl_stop(struct net_ctrl *c);

/* Serves the pending commands (at most a batch; more are left to the next
 * kick, which is then signalled by hand) and interrupts the driver if it
 * wants to be. Takes the control lock. */
void net_ctrl_process(struct net_ctrl *c);

#endif
