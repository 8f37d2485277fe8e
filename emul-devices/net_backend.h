/* Where an emulated NIC's frames go and come from on the host. The tap
 * backend implements it; unit tests put a fake in its place. Every call is
 * made from the event-loop thread and never blocks. */
#ifndef EMUL_NET_BACKEND_H
#define EMUL_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct net_backend;

struct net_backend_ops {
    /* Hands one Ethernet frame (no FCS) to the host. 0, or -errno when the
     * frame was dropped. */
    int (*send)(struct net_backend *be, const void *frame, size_t len);
    /* Takes the next frame from the host into buf: its length, or -EAGAIN
     * when there is none, or another -errno. A frame longer than cap is
     * truncated to cap. */
    ssize_t (*recv)(struct net_backend *be, void *buf, size_t cap);
    /* Turns "frames are waiting" notifications on or off: the NIC turns them
     * off while the guest gives it no buffers, so frames wait in the host
     * queue instead of being read and dropped. */
    void (*set_rx_notify)(struct net_backend *be, bool on);
    void (*destroy)(struct net_backend *be);
};

struct net_backend {
    const struct net_backend_ops *ops;
};

#endif
