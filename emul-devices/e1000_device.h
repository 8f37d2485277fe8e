/* Glue between a net device file (class net, path emulated, model e1000)
 * and the 82540EM model: the tap backend, the event-loop kick, PCI. */
#ifndef EMUL_E1000_DEVICE_H
#define EMUL_E1000_DEVICE_H

#include "config.h"

struct vm;

/* Schema of the [emulated] section of an e1000 net device. */
extern const struct cfg_key e1000_device_keys[];

int e1000_device_create(struct vm *vm, const struct device_config *dc);

#endif
