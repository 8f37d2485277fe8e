/* Glue between a block device file (class block, path emulated, model nvme)
 * and the NVMe controller model: schema, disk image, PCI function with BAR0
 * and MSI-X, event-loop wiring, and the ioeventfds behind shadow doorbells. */
#ifndef EMUL_NVME_DEVICE_H
#define EMUL_NVME_DEVICE_H

#include "config.h"

struct vm;
struct device;
struct nvme_ctrl;

/* Schema of the [emulated] section of an NVMe block device. */
extern const struct cfg_key nvme_device_keys[];

int nvme_device_create(struct vm *vm, const struct device_config *dc);

/* The controller behind a device that nvme_device_create made (tests drive
 * it with nvme_ctrl_process). */
struct nvme_ctrl *nvme_device_ctrl(struct device *dev);

#endif
