/* A host PCI function assigned to the guest through VFIO, as one of our PCI
 * devices: its BARs (mmap-able ones become KVM memory slots, so the guest's
 * register accesses do not exit; the MSI-X table and PBA pages stay trapped
 * and emulated), a config space virtualised by a per-capability permission
 * table, MSI-X / MSI / INTx through eventfds and KVM irqfd, and a function
 * reset at start and stop.
 *
 * Every access to the host device (VFIO ioctls, region reads and writes,
 * mmap) and every KVM memory-slot change goes through struct vfio_dev_io, so
 * the unit tests drive the device model against a fake. */
#ifndef VFIO_VFIO_H
#define VFIO_VFIO_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm;
struct device;
struct pci_bus;
struct pci_device;
struct iommu_domain;

struct vfio_dev_io_ops {
    int (*device_info)(void *o, struct vfio_device_info *info);
    /* info->index set by the caller; basic fields only (no capability chain). */
    int (*region_info)(void *o, struct vfio_region_info *info);
    int (*irq_info)(void *o, struct vfio_irq_info *info);
    /* set->argsz covers the trailing int32 eventfds. 0 or -errno. */
    int (*set_irqs)(void *o, const struct vfio_irq_set *set);
    int (*reset)(void *o);
    /* Device file offsets (region offset + offset in the region). */
    ssize_t (*read)(void *o, uint64_t off, void *buf, size_t len);
    ssize_t (*write)(void *o, uint64_t off, const void *buf, size_t len);
    /* NULL on failure. */
    void *(*mmap)(void *o, uint64_t off, size_t len);
    void (*munmap)(void *o, void *p, size_t len);
    /* KVM memory slot slot at gpa of size bytes backed by hva; size 0 deletes. */
    int (*memslot)(void *o, uint32_t slot, uint64_t gpa, uint64_t size, void *hva);
};

struct vfio_dev_io {
    const struct vfio_dev_io_ops *ops;
    void *opaque;
};

/* The real thing: ioctls and pread/pwrite/mmap on a VFIO device fd, slots on
 * a KVM VM fd. */
extern const struct vfio_dev_io_ops vfio_dev_io_kernel;
struct vfio_kernel_dev {
    int device_fd;
    int vm_fd;
    int group_fd;   /* the device's IOMMU group, held open: for a bus reset */
    int group;
};

struct vfio_pci_dev;

/* Builds the guest-visible device from what io reports: BARs sized after the
 * regions, the config space from the device's, capabilities through the
 * permission table. Resets the function first. The device then goes on the
 * bus with vfio_pci_plug. 0 or -errno, having said why on stderr. */
int vfio_pci_create(struct vfio_pci_dev **out, const char *name, struct vm *vm, struct device *dev,
                    const struct vfio_dev_io *io);
/* pci_device_add, then INTx (when the function has a pin) on its GSI. */
int vfio_pci_plug(struct vfio_pci_dev *v, struct pci_bus *bus);
/* Interrupts off, memory slots gone, function reset, BARs unmapped. */
void vfio_pci_destroy(struct vfio_pci_dev *v);
struct pci_device *vfio_pci_pdev(struct vfio_pci_dev *v);

/* --- the host side (vfio_host.c) ------------------------------------------ */

/* A VFIO group and one device of it, attached to the VM's DMA address space
 * (shared by every assigned device of the VM, with all guest RAM mapped) and
 * announced to KVM through its VFIO pseudo-device. */
struct vfio_host_dev {
    struct vm *vm;
    int group;
    int group_fd;
    struct vfio_kernel_dev kdev;
    bool attached, kvm_added;
};

/* Opens /dev/vfio/GROUP and the device bdf in it. -EBUSY: another process
 * (VM) holds the group. 0 or -errno with the cause in err. */
int vfio_host_open(struct vfio_host_dev *h, struct vm *vm, int group, const char *bdf, char *err,
                   size_t errlen);
void vfio_host_close(struct vfio_host_dev *h);

#endif
