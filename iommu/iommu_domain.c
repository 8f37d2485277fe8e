/* The DMA address space of a VM: guest RAM mapped at its guest-physical
 * addresses, so a device's DMA to a guest address lands in guest memory.
 * Backend-independent: the ioctls are the backend's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "iommu.h"
#include "memory.h"

int iommu_domain_map_guest_ram(struct iommu_domain *d, const struct guest_mem *mem)
{
    if (d->n_maps + mem->n_regions > IOMMU_DOMAIN_MAX_MAPPINGS)
        return -ENOSPC;
    for (unsigned i = 0; i < mem->n_regions; i++) {
        const struct guest_region *r = &mem->regions[i];
        int ret = d->ops->map(d->be, r->gpa, r->size, r->hva);
        if (ret < 0) {
            fprintf(stderr, "vmm: %s: mapping guest RAM [0x%llx, +%llu MiB) for DMA: %s\n",
                    d->ops->name, (unsigned long long)r->gpa,
                    (unsigned long long)(r->size >> 20), strerror(-ret));
            iommu_domain_unmap_all(d);
            return ret;
        }
        d->maps[d->n_maps++] = (struct iommu_mapping){ .iova = r->gpa, .size = r->size,
                                                       .hva = r->hva };
    }
    return 0;
}

void iommu_domain_unmap_all(struct iommu_domain *d)
{
    /* Newest first, so a partial teardown leaves a prefix mapped. */
    while (d->n_maps) {
        const struct iommu_mapping *m = &d->maps[--d->n_maps];
        int ret = d->ops->unmap(d->be, m->iova, m->size);
        if (ret < 0)
            fprintf(stderr, "vmm: %s: unmapping [0x%llx, +%llu MiB): %s\n", d->ops->name,
                    (unsigned long long)m->iova, (unsigned long long)(m->size >> 20),
                    strerror(-ret));
    }
}

void iommu_domain_close(struct iommu_domain *d)
{
    if (!d->ops)
        return;
    iommu_domain_unmap_all(d);
    d->ops->close(d->be);
    memset(d, 0, sizeof(*d));
}
