/* (block, passthrough) and (net, passthrough): a host PCI function assigned
 * to the guest through VFIO, named by the device file's [passthrough]
 * section (configs/README.md). */
#ifndef VFIO_PASSTHROUGH_DEVICE_H
#define VFIO_PASSTHROUGH_DEVICE_H

#include "config.h"

struct vm;

extern const struct cfg_key passthrough_device_keys[];
int passthrough_device_create(struct vm *vm, const struct device_config *dc);

#endif
