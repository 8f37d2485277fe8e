/* net_backend over a tap interface. Frames are whole Ethernet frames without
 * FCS, one per read() or write(); the fd is non-blocking, so neither ever
 * waits. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>   /* before linux/if_tun.h: glibc's ifreq, if_nametoindex */
#include <linux/if_tun.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "eventloop.h"
#include "net_backend.h"
#include "tap.h"

struct tap {
    struct net_backend be;
    int fd;
    struct eventloop *loop;
    void (*on_readable)(void *opaque);
    void *opaque;
};

static int tap_send(struct net_backend *be, const void *frame, size_t len)
{
    struct tap *t = (struct tap *)be;
    ssize_t n;

    do {
        n = write(t->fd, frame, len);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

static ssize_t tap_recv(struct net_backend *be, void *buf, size_t cap)
{
    struct tap *t = (struct tap *)be;
    ssize_t n;

    do {
        n = read(t->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static void tap_set_rx_notify(struct net_backend *be, bool on)
{
    struct tap *t = (struct tap *)be;

    eventloop_mod_fd(t->loop, t->fd, on ? EPOLLIN : 0);
}

/* The event loop is already stopped (or was never started) when this
 * runs, so its watch on fd can go with the loop. */
static void tap_destroy(struct net_backend *be)
{
    struct tap *t = (struct tap *)be;

    if (t->fd >= 0)
        close(t->fd);
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .send = tap_send,
    .recv = tap_recv,
    .set_rx_notify = tap_set_rx_notify,
    .destroy = tap_destroy,
};

static void tap_event(void *opaque, uint32_t events)
{
    struct tap *t = opaque;

    (void)events;
    t->on_readable(t->opaque);
}

static int tap_attach(const char *owner, const char *ifname)
{
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    int fd, err;

    if (strlen(ifname) >= IFNAMSIZ) {
        fprintf(stderr, "vmm: net %s: tap '%s': name longer than %d characters\n", owner, ifname,
                IFNAMSIZ - 1);
        return -1;
    }
    /* TUNSETIFF would create a missing interface; the VMM only attaches. */
    if (if_nametoindex(ifname) == 0) {
        fprintf(stderr, "vmm: net %s: tap '%s' does not exist (create it first, e.g. "
                "'ip tuntap add dev %s mode tap user $USER')\n", owner, ifname, ifname);
        return -1;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "vmm: net %s: tap '%s': cannot open /dev/net/tun: %s\n", owner, ifname,
                strerror(errno));
        return -1;
    }
    memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        err = errno;
        fprintf(stderr, "vmm: net %s: cannot attach to tap '%s': %s%s\n", owner, ifname,
                strerror(err),
                err == EINVAL ? " (not a tap interface, or one created with multi_queue)"
                : err == EPERM ? " (the tap belongs to another user, or CAP_NET_ADMIN is needed)"
                : err == EBUSY ? " (another process is attached to it)" : "");
        close(fd);
        return -1;
    }
    return fd;
}

struct net_backend *tap_open(const char *owner, const char *ifname, struct eventloop *loop,
                             void (*on_readable)(void *opaque), void *opaque)
{
    struct tap *t = calloc(1, sizeof(*t));
    int ret;

    if (!t)
        return NULL;
    *t = (struct tap){ .be = { .ops = &tap_ops }, .loop = loop, .on_readable = on_readable,
                       .opaque = opaque };
    t->fd = tap_attach(owner, ifname);
    if (t->fd < 0) {
        free(t);
        return NULL;
    }
    ret = eventloop_add_fd(loop, t->fd, EPOLLIN, tap_event, t);
    if (ret < 0) {
        fprintf(stderr, "vmm: net %s: tap '%s': cannot watch it: %s\n", owner, ifname,
                strerror(-ret));
        close(t->fd);
        free(t);
        return NULL;
    }
    return &t->be;
}
