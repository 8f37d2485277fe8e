/* The common header every device embeds, whatever its I/O path, and the
 * registry that maps (class, path, model) from a device file to the code that
 * implements it. */
#ifndef VMM_DEVICE_H
#define VMM_DEVICE_H

#include <stdatomic.h>
#include <stdint.h>

struct vm;
struct device_config;

/* Counters the VMM writes out the same way for all three paths. Updated from
 * vCPU threads and the event loop, hence atomic. */
struct device_stats {
    atomic_uint_least64_t pio_accesses;
    atomic_uint_least64_t mmio_accesses;
    atomic_uint_least64_t irqs_injected;
};

struct device;

struct device_ops {
    /* Undo create(): release host resources. Called once, VM stopped. */
    void (*teardown)(struct device *dev);
};

struct device {
    const char *id;          /* from the device file, unique in the VM */
    const char *class_name;  /* "console", "net", "block" */
    const char *path_name;   /* "emulated", "virtio", "passthrough" */
    const char *model;       /* "16550", "e1000", "nvme", ... */
    struct device_stats stats;
    const struct device_ops *ops;
    struct device *next;     /* vm's device list */
};

static inline void device_count_irq(struct device *dev)
{
    if (dev)
        atomic_fetch_add_explicit(&dev->stats.irqs_injected, 1, memory_order_relaxed);
}

#endif
