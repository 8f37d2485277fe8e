/* The VFIO type1 IOMMU backend: a container (/dev/vfio/vfio) that groups are
 * attached to, with VFIO_IOMMU_MAP_DMA / UNMAP_DMA. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommu.h"

struct type1 {
    int fd;
    int iommu_type;      /* 0 until the first group is attached */
    unsigned groups;
};

static int type1_attach_group(void *be, int group_fd)
{
    struct type1 *t = be;

    if (ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &t->fd) < 0)
        return -errno;
    if (!t->iommu_type) {
        /* v2 has the clearer unmap semantics; v1 where v2 is missing. */
        int type = ioctl(t->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ? VFIO_TYPE1v2_IOMMU
                                                                             : VFIO_TYPE1_IOMMU;
        if (ioctl(t->fd, VFIO_SET_IOMMU, type) < 0) {
            int err = errno;
            ioctl(group_fd, VFIO_GROUP_UNSET_CONTAINER);
            return -err;
        }
        t->iommu_type = type;
    }
    t->groups++;
    return 0;
}

static void type1_detach_group(void *be, int group_fd)
{
    struct type1 *t = be;

    if (ioctl(group_fd, VFIO_GROUP_UNSET_CONTAINER) == 0 && t->groups)
        t->groups--;
}

static int type1_map(void *be, uint64_t iova, uint64_t size, void *hva)
{
    struct type1 *t = be;
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uint64_t)(uintptr_t)hva, .iova = iova, .size = size,
    };

    return ioctl(t->fd, VFIO_IOMMU_MAP_DMA, &map) < 0 ? -errno : 0;
}

static int type1_unmap(void *be, uint64_t iova, uint64_t size)
{
    struct type1 *t = be;
    struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova,
                                                .size = size };

    return ioctl(t->fd, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0 ? -errno : 0;
}

static void type1_close(void *be)
{
    struct type1 *t = be;

    close(t->fd);
    free(t);
}

static const struct iommu_backend_ops type1_ops = {
    .name = "vfio-type1",
    .attach_group = type1_attach_group,
    .detach_group = type1_detach_group,
    .map = type1_map,
    .unmap = type1_unmap,
    .close = type1_close,
};

int iommu_type1_open(struct iommu_domain *d, char *err, size_t errlen)
{
    struct type1 *t = calloc(1, sizeof(*t));
    int version;

    memset(d, 0, sizeof(*d));
    if (!t)
        return -ENOMEM;
    t->fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (t->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "/dev/vfio/vfio: %s (is the vfio module loaded?)", strerror(e));
        free(t);
        return -e;
    }
    version = ioctl(t->fd, VFIO_GET_API_VERSION);
    if (version != VFIO_API_VERSION ||
        (ioctl(t->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0 &&
         ioctl(t->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)) {
        snprintf(err, errlen, "VFIO API version %d (need %d) or no type1 IOMMU "
                 "(is vfio_iommu_type1 loaded?)", version, VFIO_API_VERSION);
        close(t->fd);
        free(t);
        return -ENOTSUP;
    }
    d->ops = &type1_ops;
    d->be = t;
    return 0;
}

int iommu_type1_container_fd(const struct iommu_domain *d)
{
    return d->ops == &type1_ops ? ((const struct type1 *)d->be)->fd : -1;
}
