#include <errno.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"
#include "memory.h"

unsigned guest_mem_layout(uint64_t size, struct guest_region regions[GUEST_MEM_MAX_REGIONS])
{
    uint64_t low = size < LAYOUT_LOWMEM_END ? size : LAYOUT_LOWMEM_END;
    unsigned n = 0;

    regions[n++] = (struct guest_region){ .gpa = 0, .size = low, .fd_offset = 0 };
    if (size > low)
        regions[n++] = (struct guest_region){
            .gpa = LAYOUT_HIGHMEM_BASE, .size = size - low, .fd_offset = low,
        };
    return n;
}

int guest_mem_create(struct guest_mem *mem, uint64_t size, enum hugepages_mode hugepages)
{
    unsigned flags = MFD_CLOEXEC;
    int err;

    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
    mem->hugepages = hugepages;
    if (hugepages == HUGEPAGES_2M)
        flags |= MFD_HUGETLB | MFD_HUGE_2MB;
    else if (hugepages == HUGEPAGES_1G)
        flags |= MFD_HUGETLB | MFD_HUGE_1GB;

    mem->fd = memfd_create("guest-ram", flags);
    if (mem->fd < 0) {
        err = errno;
        fprintf(stderr, "vmm: guest RAM: memfd_create%s: %s\n",
                hugepages != HUGEPAGES_OFF ? " with hugepages" : "", strerror(err));
        return -err;
    }
    if (ftruncate(mem->fd, (off_t)size) < 0) {
        err = errno;
        fprintf(stderr, "vmm: guest RAM: cannot size it to %llu MiB%s: %s\n",
                (unsigned long long)(size >> 20),
                hugepages != HUGEPAGES_OFF ? " (are enough hugepages reserved? see "
                                             "/proc/sys/vm/nr_hugepages)" : "",
                strerror(err));
        goto fail;
    }
    mem->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
    if (mem->base == MAP_FAILED) {
        err = errno;
        mem->base = NULL;
        fprintf(stderr, "vmm: guest RAM: mmap of %llu MiB failed: %s\n",
                (unsigned long long)(size >> 20), strerror(err));
        goto fail;
    }
    mem->total = size;
    /* Transparent huge pages for shmem only apply where the host's
     * shmem_enabled allows "advise"; without them every 4 KiB page costs the
     * guest a nested page fault exit on first touch. */
    if (hugepages == HUGEPAGES_OFF)
        madvise(mem->base, size, MADV_HUGEPAGE);
    /* Guest RAM must not be copied into a forked child (e.g. a backend we spawn). */
    madvise(mem->base, size, MADV_DONTFORK);

    mem->n_regions = guest_mem_layout(size, mem->regions);
    for (unsigned i = 0; i < mem->n_regions; i++)
        mem->regions[i].hva = mem->base + mem->regions[i].fd_offset;
    return 0;
fail:
    close(mem->fd);
    mem->fd = -1;
    return -err;
}

void guest_mem_destroy(struct guest_mem *mem)
{
    if (mem->base)
        munmap(mem->base, mem->total);
    if (mem->fd >= 0)
        close(mem->fd);
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < mem->n_regions; i++) {
        const struct guest_region *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r->hva + (gpa - r->gpa);
    }
    return NULL;
}
