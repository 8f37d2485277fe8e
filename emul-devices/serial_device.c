#include <errno.h>
#include <stddef.h>

#include "serial_device.h"

static const char *const serial_models[] = { "16550", NULL };
static const char *const serial_inputs[] = { "stdio", "none", NULL };

const struct cfg_key serial_device_keys[] = {
    { .name = "model", .type = CFG_ENUM, .required = true, .choices = serial_models,
      .expected = "16550" },
    { .name = "output", .type = CFG_STRING, .default_value = "stdio",
      .expected = "stdio, none or a file path" },
    { .name = "input", .type = CFG_ENUM, .default_value = "none", .choices = serial_inputs,
      .expected = "stdio or none" },
    { .name = "port", .type = CFG_UINT, .default_value = "0x3f8", .min = 0x100, .max = 0xfff8,
      .expected = "an I/O port base such as 0x3f8 (COM1) or 0x2f8 (COM2)" },
    { .name = "irq", .type = CFG_UINT, .default_value = "4", .min = 1, .max = 15,
      .expected = "an ISA IRQ, 1..15 (COM1 uses 4, COM2 3)" },
    { .name = NULL },
};

int serial_device_create(struct vm *vm, const struct device_config *dc)
{
    (void)vm;
    (void)dc;
    return -ENOSYS; /* wired up with the vCPU core */
}
