#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "iobus.h"

void iobus_init(struct iobus *bus, enum iobus_kind kind)
{
    memset(bus, 0, sizeof(*bus));
    bus->kind = kind;
    pthread_rwlock_init(&bus->lock, NULL);
}

void iobus_destroy(struct iobus *bus)
{
    free(bus->ranges);
    bus->ranges = NULL;
    bus->count = bus->capacity = 0;
    pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose base is > addr. Caller holds the lock. */
static size_t upper_bound(const struct iobus *bus, uint64_t addr)
{
    size_t lo = 0, hi = bus->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bus->ranges[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn handler,
                   void *opaque, struct device *dev)
{
    uint64_t last;
    size_t pos;
    int ret = 0;

    if (len == 0 || !handler || __builtin_add_overflow(base, len - 1, &last))
        return -EINVAL;

    pthread_rwlock_wrlock(&bus->lock);
    pos = upper_bound(bus, base);
    /* The range before pos must end before base; the one at pos must start after last. */
    if (pos > 0) {
        const struct iobus_range *prev = &bus->ranges[pos - 1];
        if (prev->base + (prev->len - 1) >= base) {
            ret = -EEXIST;
            goto out;
        }
    }
    if (pos < bus->count && bus->ranges[pos].base <= last) {
        ret = -EEXIST;
        goto out;
    }
    if (bus->count == bus->capacity) {
        size_t cap = bus->capacity ? bus->capacity * 2 : 16;
        struct iobus_range *r = realloc(bus->ranges, cap * sizeof(*r));
        if (!r) {
            ret = -ENOMEM;
            goto out;
        }
        bus->ranges = r;
        bus->capacity = cap;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->count - pos) * sizeof(bus->ranges[0]));
    bus->ranges[pos] = (struct iobus_range){
        .base = base, .len = len, .handler = handler, .opaque = opaque, .dev = dev,
    };
    bus->count++;
out:
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

int iobus_unregister(struct iobus *bus, uint64_t base)
{
    size_t pos;
    int ret = -ENOENT;

    pthread_rwlock_wrlock(&bus->lock);
    pos = upper_bound(bus, base);
    if (pos > 0 && bus->ranges[pos - 1].base == base) {
        pos--;
        memmove(&bus->ranges[pos], &bus->ranges[pos + 1],
                (bus->count - pos - 1) * sizeof(bus->ranges[0]));
        bus->count--;
        ret = 0;
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

bool iobus_dispatch(struct iobus *bus, uint64_t addr, void *data, uint32_t len, bool is_write)
{
    struct iobus_range r = { 0 };
    uint64_t offset = 0;
    size_t pos;
    bool found = false;

    if (len == 0)
        return false;
    pthread_rwlock_rdlock(&bus->lock);
    pos = upper_bound(bus, addr);
    if (pos > 0) {
        r = bus->ranges[pos - 1];
        offset = addr - r.base;
        found = offset < r.len && len <= r.len - offset;
    }
    pthread_rwlock_unlock(&bus->lock);
    /* The handler runs unlocked: a config-space write may move a BAR on this
     * very bus. Devices are freed only after every vCPU has stopped, so the
     * copied range stays valid. */
    if (!found)
        return false;
    if (r.dev) {
        atomic_uint_least64_t *counter = bus->kind == IOBUS_PIO ? &r.dev->stats.pio_accesses
                                                               : &r.dev->stats.mmio_accesses;
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    }
    r.handler(r.opaque, offset, data, len, is_write);
    return found;
}
