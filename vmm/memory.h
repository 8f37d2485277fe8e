/* Guest RAM: one memfd (so vhost-user backends can map it) split into a
 * region below the 32-bit hole and one above 4 GiB. */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define GUEST_MEM_MAX_REGIONS 2

struct guest_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t fd_offset;      /* offset of this region in the memfd */
    uint8_t *hva;
};

struct guest_mem {
    int fd;                  /* memfd holding all of guest RAM */
    uint8_t *base;           /* mapping of the whole memfd */
    uint64_t total;
    enum hugepages_mode hugepages;
    struct guest_region regions[GUEST_MEM_MAX_REGIONS];
    unsigned n_regions;
};

/* 0 or -errno, with a message on stderr naming what failed. */
int guest_mem_create(struct guest_mem *mem, uint64_t size, enum hugepages_mode hugepages);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa+len) if it lies entirely inside one RAM region,
 * else NULL. The one check every DMA address from a guest goes through. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Lays out the regions of size bytes of RAM around the 32-bit hole, without
 * mapping anything (used by guest_mem_create and the e820 builder). */
unsigned guest_mem_layout(uint64_t size, struct guest_region regions[GUEST_MEM_MAX_REGIONS]);

#endif
