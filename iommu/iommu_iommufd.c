/* The iommufd backend: /dev/iommu, an IOAS per VM, devices bound through
 * their VFIO cdev (/dev/vfio/devices/vfioN) and attached to the IOAS.
 * Not written yet: Debian 12's kernel (6.1) is built without CONFIG_IOMMUFD,
 * so nothing here could be tested. It fills the same iommu_backend_ops. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "iommu.h"

int iommu_iommufd_open(struct iommu_domain *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    snprintf(err, errlen, "the iommufd backend is not implemented (this kernel has %s/dev/iommu); "
             "VFIO type1 is used instead", access("/dev/iommu", F_OK) == 0 ? "" : "no ");
    return -EOPNOTSUPP;
}
