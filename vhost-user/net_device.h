/* Glue between a net device file (class net, path virtio) and the
 * virtio-pci transport: the [virtio] schema, a virtio-net device whose
 * receive and transmit rings a vhost-user backend serves, and whose config
 * space (MAC, link status, queue pairs, MTU) and control queue the VMM
 * serves itself. */
#ifndef VHOST_USER_NET_DEVICE_H
#define VHOST_USER_NET_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct vm;

/* Schema of the [virtio] section of a net device. */
extern const struct cfg_key vhost_net_device_keys[];

int vhost_net_device_create(struct vm *vm, const struct device_config *dc);

/* Device feature bits (virtio 1.2, 5.1.3). */
#define VIRTIO_NET_F_CSUM        0
#define VIRTIO_NET_F_GUEST_CSUM  1
#define VIRTIO_NET_F_MTU         3
#define VIRTIO_NET_F_MAC         5
#define VIRTIO_NET_F_GUEST_TSO4  7
#define VIRTIO_NET_F_GUEST_TSO6  8
#define VIRTIO_NET_F_GUEST_ECN   9
#define VIRTIO_NET_F_GUEST_UFO   10
#define VIRTIO_NET_F_HOST_TSO4   11
#define VIRTIO_NET_F_HOST_TSO6   12
#define VIRTIO_NET_F_HOST_ECN    13
#define VIRTIO_NET_F_HOST_UFO    14
#define VIRTIO_NET_F_MRG_RXBUF   15
#define VIRTIO_NET_F_STATUS      16
#define VIRTIO_NET_F_CTRL_VQ     17
#define VIRTIO_NET_F_MQ          22

/* struct virtio_net_config as far as we fill it: mac, status,
 * max_virtqueue_pairs, mtu, speed, duplex (and padding). */
#define VNET_CONFIG_SIZE       24
#define VNET_CONFIG_STATUS     6
#define VNET_CONFIG_MAX_PAIRS  8
#define VNET_CONFIG_MTU        10
#define VIRTIO_NET_S_LINK_UP   1

/* Exposed for tests. The features the guest is offered for a backend
 * offering backend_features: the config-space and control-queue bits the
 * VMM serves (MAC, STATUS, CTRL_VQ, MQ when pairs > 1, MTU when set), and
 * of the backend's ring and offload bits those whose prerequisites hold. */
uint64_t vnet_offered_features(uint64_t backend_features, uint16_t pairs, bool has_mtu);
/* What the backend's SET_FEATURES carries of the driver's features: only
 * bits the backend offered, and none of those the VMM serves itself. */
uint64_t vnet_backend_features(uint64_t driver_features, uint64_t backend_features);
void vnet_fill_config(uint8_t cfg[VNET_CONFIG_SIZE], const uint8_t mac[6], uint16_t pairs,
                      uint16_t mtu);

#endif
