/* A virtio-net device whose receive and transmit rings a vhost-user
 * backend serves (ours, build/vhost-user-net, or DPDK's testpmd with its
 * vhost PMD, or any other). The VMM keeps for itself what a vhost-user net
 * backend does not own: the config space (the MAC comes from the device
 * file, so it stays the same whichever path the file picks), the link
 * status, and the control queue (net_ctrl.c), whose VQ_PAIRS_SET becomes
 * SET_VRING_ENABLE on the backend's rings. Queues: rx0, tx0, rx1, tx1, ...,
 * then the control queue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "frontend.h"
#include "net_ctrl.h"
#include "net_device.h"
#include "virtio.h"
#include "vm.h"
#include "vu_device.h"

static const char *const queue_sizes[] = { "64", "128", "256", "512", "1024", NULL };

const struct cfg_key vhost_net_device_keys[] = {
    { .name = "socket", .type = CFG_PATH, .required = true,
      .expected = "the vhost-user socket of the backend" },
    { .name = "mac", .type = CFG_MAC, .required = true,
      .expected = "the guest's MAC, the same as in [emulated] if the file has both" },
    { .name = "queues", .type = CFG_UINT, .default_value = "1", .min = 1, .max = 16,
      .expected = "1..16 queue pairs" },
    { .name = "queue-size", .type = CFG_ENUM, .default_value = "256", .choices = queue_sizes,
      .expected = "a power of two from 64 to 1024" },
    { .name = "mtu", .type = CFG_UINT, .min = 68, .max = 65535,
      .expected = "68..65535 bytes, told to the guest (VIRTIO_NET_F_MTU)" },
    { .name = NULL },
};

#define VIRTIO_PCI_CLASS_NETWORK 0x020000
#define CTRL_QUEUE_SIZE          64

/* Backend bits we pass on: rings, and offloads with their prerequisites
 * (virtio 1.2, 5.1.3.1). */
#define BIT(n) (1ULL << (n))
#define RING_FEATURES (BIT(VIRTIO_F_EVENT_IDX) | BIT(VIRTIO_F_INDIRECT_DESC) | \
                       BIT(VIRTIO_NET_F_MRG_RXBUF))

uint64_t vnet_offered_features(uint64_t backend, uint16_t pairs, bool has_mtu)
{
    uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_CTRL_VQ);

    if (pairs > 1)
        f |= BIT(VIRTIO_NET_F_MQ);
    if (has_mtu)
        f |= BIT(VIRTIO_NET_F_MTU);
    f |= backend & RING_FEATURES;
    /* Transmit offloads (the guest hands partial checksums / big frames). */
    if (backend & BIT(VIRTIO_NET_F_CSUM)) {
        f |= BIT(VIRTIO_NET_F_CSUM);
        f |= backend & (BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
                        BIT(VIRTIO_NET_F_HOST_UFO));
        if (f & (BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6)))
            f |= backend & BIT(VIRTIO_NET_F_HOST_ECN);
    }
    /* Receive offloads (the guest accepts them). */
    if (backend & BIT(VIRTIO_NET_F_GUEST_CSUM)) {
        f |= BIT(VIRTIO_NET_F_GUEST_CSUM);
        f |= backend & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
                        BIT(VIRTIO_NET_F_GUEST_UFO));
        if (f & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6)))
            f |= backend & BIT(VIRTIO_NET_F_GUEST_ECN);
    }
    return f;
}

/* The bits the VMM serves itself (config space, control queue) stay out
 * of the backend's SET_FEATURES even when it offers them: a backend that
 * saw CTRL_VQ could take the control queue for its own. MQ goes through:
 * it tells the backend that more than one pair may run. */
#define VMM_SERVED_FEATURES (BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | \
                             BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MTU))

uint64_t vnet_backend_features(uint64_t driver_features, uint64_t backend_features)
{
    return driver_features & backend_features & ~VMM_SERVED_FEATURES;
}

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void vnet_fill_config(uint8_t cfg[VNET_CONFIG_SIZE], const uint8_t mac[6], uint16_t pairs,
                      uint16_t mtu)
{
    memset(cfg, 0, VNET_CONFIG_SIZE);
    memcpy(cfg, mac, 6);
    /* Link up: the frontend hides a backend restart from the guest. */
    put_le(cfg + VNET_CONFIG_STATUS, VIRTIO_NET_S_LINK_UP, 2);
    put_le(cfg + VNET_CONFIG_MAX_PAIRS, pairs, 2);
    put_le(cfg + VNET_CONFIG_MTU, mtu, 2);
    put_le(cfg + 12, 0xffffffff, 4);   /* speed: unknown */
    cfg[16] = 0xff;                    /* duplex: unknown */
}

struct vnet_device {
    struct device dev;           /* first: teardown casts */
    struct vm *vm;
    struct virtio_device vdev;
    struct virtio_pci *vp;
    struct vu_frontend *fe;
    struct net_ctrl ctrl;
    bool ctrl_ready;
    char *id, *socket;
    uint8_t mac[6];
    uint16_t pairs, queue_size, mtu;
    uint16_t active_pairs;       /* as the driver last set them (control lock) */
    unsigned pair_logs;
    uint8_t config[VNET_CONFIG_SIZE];
};

/* --- the virtio device ------------------------------------------------------ */

static uint64_t vnet_features(struct virtio_device *vdev)
{
    struct vnet_device *d = vdev->opaque;
    return vnet_offered_features(vu_frontend_features(d->fe), d->pairs, d->mtu != 0);
}

static uint16_t vnet_num_queues(struct virtio_device *vdev)
{
    return (uint16_t)(2 * ((struct vnet_device *)vdev->opaque)->pairs + 1);
}

static uint16_t vnet_queue_max(struct virtio_device *vdev, uint16_t q)
{
    struct vnet_device *d = vdev->opaque;
    return q == 2 * d->pairs ? CTRL_QUEUE_SIZE : d->queue_size;
}

static uint32_t vnet_config_size(struct virtio_device *vdev)
{
    (void)vdev;
    return VNET_CONFIG_SIZE;
}

static void vnet_config_read(struct virtio_device *vdev, uint32_t off, void *data, uint32_t len)
{
    memcpy(data, ((struct vnet_device *)vdev->opaque)->config + off, len);
}

/* Nothing in a modern device's net config is writable. */
static void vnet_config_write(struct virtio_device *vdev, uint32_t off, const void *data,
                              uint32_t len)
{
    (void)vdev, (void)off, (void)data, (void)len;
}

/* Rings of pairs 0..pairs-1 on, the rest off, in the backend (or recorded
 * for the replay if it is away). Control lock held, or the control queue
 * not running. */
static int enable_pairs(struct vnet_device *d, uint16_t pairs)
{
    int ret = 0;

    for (uint16_t q = 0; q < 2 * d->pairs; q++) {
        int r = vu_frontend_set_vring_enable(d->fe, q, q < 2 * pairs);
        if (r < 0 && ret == 0)
            ret = r;
    }
    return ret;
}

/* VQ_PAIRS_SET from the driver (event loop thread, control lock held). */
static int vnet_set_pairs(void *opaque, uint16_t pairs)
{
    struct vnet_device *d = opaque;
    int ret = enable_pairs(d, pairs);

    /* One line per change the guest makes, and not without end. */
    if (ret == 0 && pairs != d->active_pairs && d->pair_logs < 16) {
        d->pair_logs++;
        fprintf(stderr, "vmm: virtio %s: the guest uses %u of %u queue pairs\n", d->id, pairs,
                d->pairs);
    }
    if (ret == 0)
        d->active_pairs = pairs;
    return ret;
}

static int vnet_start(struct virtio_device *vdev, uint64_t features,
                      const struct virtio_queue_setup *queues, unsigned n)
{
    struct vnet_device *d = vdev->opaque;
    struct virtio_queue_setup data[VIRTIO_MAX_QUEUES];
    const struct virtio_queue_setup *ctrl = NULL;
    bool mq = features & BIT(VIRTIO_NET_F_MQ);
    /* Without MQ the control queue is queue 2 whatever the pair count. */
    uint16_t ctrl_index = mq ? (uint16_t)(2 * d->pairs) : 2;
    unsigned nd = 0;
    int ret;

    for (unsigned i = 0; i < n && i < VIRTIO_MAX_QUEUES; i++) {
        if (queues[i].index == ctrl_index)
            ctrl = &queues[i];
        else if (queues[i].index < ctrl_index)
            data[nd++] = queues[i];
    }
    /* A device starts with one pair until VQ_PAIRS_SET (5.1.6.5.5); without
     * MQ there is only the one. */
    d->active_pairs = 1;
    if ((ret = enable_pairs(d, d->active_pairs)) < 0)
        return ret;
    ret = vu_frontend_start(d->fe, vnet_backend_features(features, vu_frontend_features(d->fe)),
                            data, nd);
    if (ret < 0)
        return ret;
    if (ctrl && (features & BIT(VIRTIO_NET_F_CTRL_VQ)) &&
        (ret = net_ctrl_start(&d->ctrl, d->vm->loop, ctrl, features)) < 0) {
        vu_frontend_stop(d->fe);
        return ret;
    }
    return 0;
}

static void vnet_stop(struct virtio_device *vdev)
{
    struct vnet_device *d = vdev->opaque;

    net_ctrl_stop(&d->ctrl);
    vu_frontend_stop(d->fe);
}

static const struct virtio_device_ops vnet_ops = {
    .device_id = VIRTIO_ID_NET,
    .features = vnet_features,
    .num_queues = vnet_num_queues,
    .queue_max_size = vnet_queue_max,
    .config_size = vnet_config_size,
    .config_read = vnet_config_read,
    .config_write = vnet_config_write,
    .start = vnet_start,
    .stop = vnet_stop,
};

/* --- creation --------------------------------------------------------------- */

static void vnet_teardown(struct device *dev)
{
    struct vnet_device *d = (struct vnet_device *)dev;

    virtio_pci_destroy(d->vp);   /* stops the device first */
    vu_frontend_destroy(d->fe);
    if (d->ctrl_ready)
        net_ctrl_fini(&d->ctrl);
    free(d->id);
    free(d->socket);
    free(d);
}

static const struct device_ops vnet_device_ops = { .teardown = vnet_teardown };

static int read_config(struct vnet_device *d, const struct device_config *dc)
{
    uint64_t qs = 0;

    d->id = strdup(dc->id);
    d->socket = device_config_get_path(dc, "socket");
    if (!d->id || !d->socket)
        return -1;
    if (cfg_parse_mac(device_config_get(dc, "mac"), d->mac) < 0) {
        fprintf(stderr, "vmm: virtio %s: bad mac\n", d->id);   /* config_load checked it */
        return -1;
    }
    /* The config loader already refused a [virtio] mac that differs from
     * another path section's (config_device.c, check_macs_agree). */
    d->pairs = (uint16_t)device_config_get_uint(dc, "queues");
    cfg_parse_uint(device_config_get(dc, "queue-size"), &qs);
    d->queue_size = (uint16_t)qs;
    d->mtu = (uint16_t)device_config_get_uint(dc, "mtu");
    return d->pairs && d->queue_size ? 0 : -1;
}

int vhost_net_device_create(struct vm *vm, const struct device_config *dc)
{
    struct vnet_device *d = calloc(1, sizeof(*d));
    struct vu_frontend_params fp;

    if (!d)
        return -1;
    d->vm = vm;
    d->dev = (struct device){ .class_name = "net", .path_name = "virtio",
                              .model = "vhost-user-net", .ops = &vnet_device_ops };
    if (read_config(d, dc) < 0)
        goto fail;
    d->dev.id = d->id;
    fp = (struct vu_frontend_params){
        .name = d->id, .socket = d->socket, .mem = &vm->mem, .queues = (uint16_t)(2 * d->pairs),
        .queues_per_queue_num = 2, .queue_size = d->queue_size,
        .config_size = 0,   /* a net backend has no config space for us: ours is the VMM's */
    };
    if (!(d->fe = vu_frontend_connect(&fp)))
        goto fail;
    if (!(vu_frontend_features(d->fe) & BIT(VIRTIO_F_VERSION_1))) {
        fprintf(stderr, "vmm: virtio %s: the backend at %s does not offer VIRTIO_F_VERSION_1 "
                "(a modern device's 12-byte header)\n", d->id, d->socket);
        goto fail;
    }
    d->pairs = vu_frontend_queues(d->fe) / 2;
    if (d->pairs == 0) {
        fprintf(stderr, "vmm: virtio %s: the backend serves no complete queue pair\n", d->id);
        goto fail;
    }
    if (net_ctrl_init(&d->ctrl, d->id, &vm->mem, d->pairs, vnet_set_pairs, d) < 0)
        goto fail;
    d->ctrl_ready = true;
    vnet_fill_config(d->config, d->mac, d->pairs, d->mtu);
    d->vdev = (struct virtio_device){ .ops = &vnet_ops, .opaque = d };
    d->vp = virtio_pci_create(vm, &d->dev, &d->vdev,
                              &(struct virtio_pci_params){ .class_code = VIRTIO_PCI_CLASS_NETWORK,
                                                           .subsys_id = VIRTIO_ID_NET });
    if (!d->vp)
        goto fail;

    /* From here the VM owns d: vm_destroy tears it down. */
    return vu_device_attach(vm, &d->dev, d->vp, d->fe, d->id);
fail:
    vnet_teardown(&d->dev);
    return -1;
}
