/* Glue between a console device file (class console, path emulated, model
 * 16550) and the UART model: ports, IRQ line, host stdio or file. */
#ifndef EMUL_SERIAL_DEVICE_H
#define EMUL_SERIAL_DEVICE_H

#include "config.h"

struct vm;

/* Schema of the [emulated] section of a 16550 console device. */
extern const struct cfg_key serial_device_keys[];

int serial_device_create(struct vm *vm, const struct device_config *dc);

#endif
