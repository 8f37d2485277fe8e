/* The host IOMMU as a VMM needs it for device assignment: is there one (VT-d
 * or AMD-Vi) and is it on, does it remap interrupts, which IOMMU group holds a
 * device and may that group be given to a guest, and one DMA address space
 * per VM (guest-physical = IO-virtual) that every assigned device shares.
 *
 * Everything read from sysfs goes through a root prefix ("" for the real
 * /sys), so tests run on a fake tree; see iommu_sysfs_root(). */
#ifndef IOMMU_IOMMU_H
#define IOMMU_IOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

/* --- discovery (iommu_host.c) ------------------------------------------- */

enum iommu_kind { IOMMU_NONE, IOMMU_INTEL_VTD, IOMMU_AMD_VI, IOMMU_OTHER };

struct iommu_host_info {
    enum iommu_kind kind;
    unsigned units;              /* entries of /sys/class/iommu */
    char first_unit[32];         /* e.g. "dmar0", "ivhd0" */
    bool acpi_table;             /* DMAR (VT-d) or IVRS (AMD-Vi) present */
    bool groups;                 /* /sys/kernel/iommu_groups holds groups: the kernel uses it */
    bool intremap_hw;            /* VT-d: ECAP.IR; AMD-Vi: assumed */
    bool intremap_on;            /* /proc/interrupts shows remapped (IR-) chips */
    bool unsafe_interrupts_ok;   /* vfio_iommu_type1 allow_unsafe_interrupts=Y */
};

/* The prefix every sysfs and procfs path is read under: $IOVMM_SYSFS_ROOT
 * when set (tests and the "no IOMMU" integration scenario), else "". */
const char *iommu_sysfs_root(void);

/* Fills info from root. Never fails: absent files mean absent features. */
void iommu_host_probe(const char *root, struct iommu_host_info *info);
const char *iommu_kind_name(enum iommu_kind kind);

/* 0 when devices can be assigned through VFIO: an IOMMU is present and in
 * use, and interrupts are either remapped or explicitly allowed unremapped.
 * Otherwise -ENODEV/-EPERM with the cause and the fix in err. */
int iommu_host_check(const struct iommu_host_info *info, char *err, size_t errlen);

/* --- PCI devices and IOMMU groups (iommu_groups.c) ---------------------- */

/* "0000:01:00.0" (domain:bus:dev.fn, lower-case hex). A bare "01:00.0" is
 * accepted and written out with domain 0000. 0 or -EINVAL. */
int iommu_parse_bdf(const char *text, char out[13]);

/* The IOMMU group number of a PCI device: >= 0, or -ENOENT (no such device)
 * or -ENODEV (the device has no group: no IOMMU translates for it). */
int iommu_device_group(const char *root, const char *bdf);

/* The driver a device is bound to ("" if none); 0 or -errno. */
int iommu_device_driver(const char *root, const char *bdf, char *driver, size_t len);

/* 0 if every device of the group is bound to vfio-pci, is bound to nothing,
 * or is a PCI bridge; -EPERM otherwise, with the offending devices and their
 * drivers named in err; -ENOENT if the group does not exist. */
int iommu_group_check_viable(const char *root, int group, char *err, size_t errlen);

/* NUMA node of a device (-1: unknown or single node). */
int iommu_device_numa_node(const char *root, const char *bdf);
/* Nodes the calling thread may run on, as a bit mask (bit n = node n, nodes
 * 0..63), from its CPU affinity and root's node cpulists; 0 if unknown. */
uint64_t iommu_current_numa_nodes(const char *root);

/* --- DMA address space of a VM (iommu_domain.c) -------------------------- */

/* One IOMMU backend. VFIO type1 is what runs here; iommufd has the same
 * shape (IOAS = the domain, device bind + attach instead of group attach)
 * and its open fails with -EOPNOTSUPP until it is written. */
struct iommu_backend_ops {
    const char *name;
    /* Puts a VFIO group (fd) behind this address space. */
    int (*attach_group)(void *be, int group_fd);
    void (*detach_group)(void *be, int group_fd);
    /* Maps [iova, iova+size) to the process memory at hva, read-write. */
    int (*map)(void *be, uint64_t iova, uint64_t size, void *hva);
    int (*unmap)(void *be, uint64_t iova, uint64_t size);
    void (*close)(void *be);
};

#define IOMMU_DOMAIN_MAX_MAPPINGS 8

struct iommu_mapping {
    uint64_t iova, size;
    void *hva;
};

struct iommu_domain {
    const struct iommu_backend_ops *ops;
    void *be;
    struct iommu_mapping maps[IOMMU_DOMAIN_MAX_MAPPINGS];
    unsigned n_maps;
};

/* Maps every RAM region of mem at its guest-physical address. On failure
 * what was mapped is unmapped again; 0 or -errno. */
int iommu_domain_map_guest_ram(struct iommu_domain *d, const struct guest_mem *mem);
/* Unmaps everything the domain mapped (teardown). */
void iommu_domain_unmap_all(struct iommu_domain *d);
/* Unmaps all and closes the backend. */
void iommu_domain_close(struct iommu_domain *d);

/* VFIO type1 (iommu_type1.c): opens /dev/vfio/vfio. The IOMMU model is set
 * when the first group is attached (the kernel wants a group first). */
int iommu_type1_open(struct iommu_domain *d, char *err, size_t errlen);
/* The container fd of a type1 domain (for VFIO_GROUP_SET_CONTAINER users). */
int iommu_type1_container_fd(const struct iommu_domain *d);

/* iommufd (iommu_iommufd.c): not implemented; -EOPNOTSUPP with a message. */
int iommu_iommufd_open(struct iommu_domain *d, char *err, size_t errlen);

#endif
