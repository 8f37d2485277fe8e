/* The host side of an emulated NIC: an existing tap interface, attached
 * through /dev/net/tun (IFF_TAP | IFF_NO_PI). The VMM neither creates nor
 * configures the interface; whoever runs it does (ip tuntap add ...). */
#ifndef EMUL_TAP_H
#define EMUL_TAP_H

struct eventloop;
struct net_backend;

/* Attaches to tap interface ifname, non-blocking, and watches it on loop:
 * on_readable(opaque) runs on the loop thread while frames wait (and
 * notifications are on). NULL on failure, with a message naming the tap
 * and owner (the device id). */
struct net_backend *tap_open(const char *owner, const char *ifname, struct eventloop *loop,
                             void (*on_readable)(void *opaque), void *opaque);

#endif
