/* vhost_port.c: a vhost-user port of build/vhost-user-net. DPDK's rte_vhost
 * speaks the protocol and walks the rings; we register the socket, learn
 * from its callbacks when a port may be polled, and keep the forwarding
 * lcore off a device that is being torn down.
 *
 * The handshake with the forwarding lcore: it marks the port in_use, then
 * reads ready; destroy_device clears ready, then waits for in_use to drop.
 * Both sides use sequentially consistent accesses, so either the lcore sees
 * ready == 0 and leaves the vid alone, or destroy_device sees in_use == 1
 * and waits for the burst to finish. */
#include "port.h"

#include <errno.h>
#include <sched.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_vhost.h>

static struct vn_port *vn_ports;
static unsigned vn_n_ports;

void vn_vhost_set_ports(struct vn_port *ports, unsigned n)
{
    vn_ports = ports;
    vn_n_ports = n;
}

static struct vn_port *port_of_vid(int vid)
{
    char path[VN_SUN_PATH_MAX + 1];
    if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0)
        return NULL;
    for (unsigned i = 0; i < vn_n_ports; i++)
        if (vn_ports[i].is_vhost && !strcmp(vn_ports[i].vopt->socket, path))
            return &vn_ports[i];
    return NULL;
}

static int on_new_connection(int vid)
{
    struct vn_port *p = port_of_vid(vid);
    if (!p)
        return -1;
    /* One frontend per port: a second one on a server socket would get a
     * second vid the forwarding lcore knows nothing about. */
    if (__atomic_load_n(&p->connected, __ATOMIC_ACQUIRE)) {
        printf("vhost-user-net: %s: refusing a second frontend (vid %d)\n", p->name, vid);
        return -1;
    }
    memset(p->vring_enabled, 0, sizeof(p->vring_enabled));
    p->vid = vid;
    __atomic_store_n(&p->connected, 1, __ATOMIC_RELEASE);
    printf("vhost-user-net: %s: frontend connected (vid %d)\n", p->name, vid);
    fflush(stdout);
    return 0;
}

static void on_destroy_connection(int vid)
{
    struct vn_port *p = port_of_vid(vid);
    if (!p || p->vid != vid || !__atomic_load_n(&p->connected, __ATOMIC_ACQUIRE))
        return;
    memset(p->vring_enabled, 0, sizeof(p->vring_enabled));
    __atomic_store_n(&p->connected, 0, __ATOMIC_RELEASE);
    printf("vhost-user-net: %s: frontend disconnected\n", p->name);
    fflush(stdout);
}

static int on_new_device(int vid)
{
    struct vn_port *p = port_of_vid(vid);
    if (!p || p->vid != vid)
        return -1;
    /* We poll: the guest need not kick us (saves it a VM exit per batch). */
    uint16_t nr = rte_vhost_get_vring_num(vid);
    for (uint16_t i = 0; i < nr; i++)
        (void)rte_vhost_enable_guest_notification(vid, i, 0);
    uint64_t features = 0;
    (void)rte_vhost_get_negotiated_features(vid, &features);
    __atomic_store_n(&p->ready, 1, __ATOMIC_SEQ_CST);
    printf("vhost-user-net: %s: device ready, %u vrings, features 0x%llx\n", p->name, nr,
           (unsigned long long)features);
    fflush(stdout);
    return 0;
}

static void on_destroy_device(int vid)
{
    struct vn_port *p = port_of_vid(vid);
    if (!p || p->vid != vid)
        return;
    __atomic_store_n(&p->ready, 0, __ATOMIC_SEQ_CST);
    /* Yield rather than spin: on a loaded host the lcore we wait for may
     * share this CPU. */
    while (__atomic_load_n(&p->in_use, __ATOMIC_SEQ_CST))
        sched_yield();
    printf("vhost-user-net: %s: device stopped\n", p->name);
    fflush(stdout);
}

static int on_vring_state_changed(int vid, uint16_t vring, int enable)
{
    struct vn_port *p = port_of_vid(vid);
    if (!p || p->vid != vid)
        return 0;
    if (vring >= 2 * VN_MAX_QUEUES)
        return 0;
    if (vring >= 2 * p->queues && enable && !p->warned_extra_vring) {
        p->warned_extra_vring = true;
        printf("vhost-user-net: %s: frontend enabled vring %u; only %u queue pair(s) are served\n",
               p->name, vring, p->queues);
    }
    /* No rte_vhost_enable_guest_notification() here: rte_vhost calls us
     * with the vring's lock held and that call takes it again (a deadlock,
     * seen with testpmd's virtio-user); new_device covers the vrings. */
    __atomic_store_n(&p->vring_enabled[vring], enable ? 1 : 0, __ATOMIC_RELEASE);
    printf("vhost-user-net: %s: vring %u %s\n", p->name, vring, enable ? "enabled" : "disabled");
    fflush(stdout);
    return 0;
}

static const struct rte_vhost_device_ops vn_vhost_ops = {
    .new_device = on_new_device,
    .destroy_device = on_destroy_device,
    .vring_state_changed = on_vring_state_changed,
    .new_connection = on_new_connection,
    .destroy_connection = on_destroy_connection,
};

/* A socket file left by a backend that died: nobody accepts on it, so
 * connect() is refused. Anything else at that path is not ours to remove. */
static int remove_stale_socket(const char *path, const char *name)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "vhost-user-net: %s: %s exists and is not a socket\n", name, path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(fd);
    if (rc == 0) {
        fprintf(stderr, "vhost-user-net: %s: %s is being served by another process\n", name, path);
        return -1;
    }
    if (err == ECONNREFUSED && unlink(path) == 0) {
        printf("vhost-user-net: %s: removed stale socket %s\n", name, path);
        return 0;
    }
    fprintf(stderr, "vhost-user-net: %s: %s: %s\n", name, path, strerror(err));
    return -1;
}

/* Offloads are not offered: a guest's partial checksums and TSO frames
 * would need software checksums/segmentation before a tap or another guest
 * that did not negotiate them; plain frames are always right. */
#define VN_OFFLOAD_FEATURES                                                                    \
    ((1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |                         \
     (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |                     \
     (1ULL << VIRTIO_NET_F_HOST_ECN) | (1ULL << VIRTIO_NET_F_HOST_UFO) |                       \
     (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6) |                   \
     (1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << VIRTIO_NET_F_GUEST_UFO))

int vn_vhost_setup(struct vn_port *p)
{
    const struct vn_vhost_opt *v = p->vopt;
    uint64_t flags = v->client ? RTE_VHOST_USER_CLIENT : 0;
    p->vid = -1;
    if (!v->client && remove_stale_socket(v->socket, p->name) != 0)
        return -1;
    if (rte_vhost_driver_register(v->socket, flags) != 0) {
        fprintf(stderr, "vhost-user-net: %s: cannot register %s\n", p->name, v->socket);
        return -1;
    }
    p->registered = true;
    uint64_t off = VN_OFFLOAD_FEATURES;
    if (v->queues == 1)
        off |= 1ULL << VIRTIO_NET_F_MQ;
    if (rte_vhost_driver_disable_features(v->socket, off) != 0 ||
        rte_vhost_driver_callback_register(v->socket, &vn_vhost_ops) != 0 ||
        rte_vhost_driver_start(v->socket) != 0) {
        fprintf(stderr, "vhost-user-net: %s: cannot start vhost-user on %s\n", p->name, v->socket);
        return -1;
    }
    uint64_t features = 0;
    (void)rte_vhost_driver_get_features(v->socket, &features);
    printf("vhost-user-net: %s: vhost-user %s on %s, %u queue pair(s), features offered 0x%llx\n",
           p->name, v->client ? "client" : "server", v->socket, v->queues,
           (unsigned long long)features);
    return 0;
}

void vn_vhost_close(struct vn_port *p)
{
    if (!p->registered)
        return;
    (void)rte_vhost_driver_unregister(p->vopt->socket);
    p->registered = false;
    struct stat st;
    if (!p->vopt->client && lstat(p->vopt->socket, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(p->vopt->socket);
}
