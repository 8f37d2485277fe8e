/* An address space of port I/O or MMIO ranges. Insertion refuses overlaps;
 * dispatch finds the range by binary search and hands the device only its
 * offset inside the range. Safe to dispatch from many vCPU threads while
 * another thread inserts or removes ranges (BARs move at run time). */
#ifndef VMM_IOBUS_H
#define VMM_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct device;

/* data is little-endian guest data of len bytes (1, 2, 4 or 8 for PIO/MMIO;
 * MMIO may also pass other lengths). On a read the handler fills data. */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, void *data, uint32_t len,
                              bool is_write);

enum iobus_kind { IOBUS_PIO, IOBUS_MMIO };

struct iobus_range {
    uint64_t base;
    uint64_t len;
    io_handler_fn handler;
    void *opaque;
    struct device *dev;      /* accesses are counted here; may be NULL */
};

struct iobus {
    enum iobus_kind kind;
    pthread_rwlock_t lock;
    struct iobus_range *ranges;  /* sorted by base, never overlapping */
    size_t count, capacity;
};

void iobus_init(struct iobus *bus, enum iobus_kind kind);
void iobus_destroy(struct iobus *bus);

/* 0, or -EEXIST when [base, base+len) overlaps a registered range, -EINVAL
 * for an empty or wrapping range, -ENOMEM. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn handler,
                   void *opaque, struct device *dev);
/* Removes the range that starts exactly at base; -ENOENT if none. */
int iobus_unregister(struct iobus *bus, uint64_t base);

/* true if a range took the access. An access that starts in a range but runs
 * past its end is refused (false) rather than split. */
bool iobus_dispatch(struct iobus *bus, uint64_t addr, void *data, uint32_t len, bool is_write);

#endif
