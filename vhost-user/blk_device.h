/* Glue between a block device file (class block, path virtio) and the
 * virtio-pci transport: the [virtio] schema, the backend (started by the
 * VMM or already running), and a virtio device whose every operation is
 * forwarded to the backend through the vhost-user frontend. */
#ifndef VHOST_USER_BLK_DEVICE_H
#define VHOST_USER_BLK_DEVICE_H

#include "config.h"

struct vm;

/* Schema of the [virtio] section of a block device. */
extern const struct cfg_key vhost_blk_device_keys[];

int vhost_blk_device_create(struct vm *vm, const struct device_config *dc);

#endif
