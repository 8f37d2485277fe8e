/* The host side of an assigned device: the kernel's VFIO device fd behind
 * struct vfio_dev_io, the group, and what a VM's assigned devices share: one
 * DMA address space (a type1 container with all guest RAM mapped) and KVM's
 * VFIO pseudo-device, which tells KVM the VM has DMA-capable devices (so it
 * keeps guest memory coherent with them and lets it use IRQ bypass). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iommu.h"
#include "vfio.h"
#include "vm.h"

/* --- struct vfio_dev_io on the kernel ------------------------------------- */

static int k_device_info(void *o, struct vfio_device_info *info)
{
    return ioctl(((struct vfio_kernel_dev *)o)->device_fd, VFIO_DEVICE_GET_INFO, info) < 0 ? -errno
                                                                                           : 0;
}

static int k_region_info(void *o, struct vfio_region_info *info)
{
    return ioctl(((struct vfio_kernel_dev *)o)->device_fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0
               ? -errno : 0;
}

static int k_irq_info(void *o, struct vfio_irq_info *info)
{
    return ioctl(((struct vfio_kernel_dev *)o)->device_fd, VFIO_DEVICE_GET_IRQ_INFO, info) < 0
               ? -errno : 0;
}

static int k_set_irqs(void *o, const struct vfio_irq_set *set)
{
    return ioctl(((struct vfio_kernel_dev *)o)->device_fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno
                                                                                          : 0;
}

/* Whether the function can reset itself alone: FLR in its PCIe capability
 * (Device Capabilities bit 28) or its Advanced Features capability. */
static bool k_has_flr(const struct vfio_kernel_dev *k)
{
    struct vfio_region_info r = { .argsz = sizeof(r), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    uint8_t cfg[256];

    if (ioctl(k->device_fd, VFIO_DEVICE_GET_REGION_INFO, &r) < 0 ||
        pread(k->device_fd, cfg, sizeof(cfg), (off_t)r.offset) != (ssize_t)sizeof(cfg) ||
        !(cfg[0x06] & 0x10))
        return false;
    /* At most 48 capabilities fit; a longer chain is a loop. */
    for (unsigned pos = cfg[0x34] & 0xfc, n = 0; pos >= 0x40 && pos <= 0xfc && n < 48;
         pos = cfg[pos + 1] & 0xfc, n++) {
        if (cfg[pos] == 0x10 && pos + 8 <= 0x100 && (cfg[pos + 7] & 0x10))
            return true;   /* PCIe: Device Capabilities bit 28 */
        if (cfg[pos] == 0x13 && pos + 4 <= 0x100 && (cfg[pos + 3] & 0x02))
            return true;   /* Advanced Features: FLR capable */
    }
    return false;
}

/* A secondary bus reset through VFIO (a PCI hot reset), when every function
 * it would reset is in this device's IOMMU group, which we hold. */
static int k_hot_reset(const struct vfio_kernel_dev *k)
{
    enum { MAX_DEPS = 32 };
    struct vfio_pci_hot_reset_info *info;
    size_t size = sizeof(*info) + MAX_DEPS * sizeof(struct vfio_pci_dependent_device);
    struct {
        struct vfio_pci_hot_reset hdr;
        int32_t group_fd;
    } reset = { .hdr = { .argsz = sizeof(reset), .count = 1 }, .group_fd = k->group_fd };
    int ret = 0;

    if (k->group_fd < 0 || !(info = calloc(1, size)))
        return -ENOMEM;
    info->argsz = (uint32_t)size;
    if (ioctl(k->device_fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info) < 0)
        ret = -errno;
    for (uint32_t i = 0; ret == 0 && i < info->count && i < MAX_DEPS; i++)
        if ((int)info->devices[i].group_id != k->group)
            ret = -EPERM;   /* it would reset a function someone else may hold */
    free(info);
    if (ret == 0 && ioctl(k->device_fd, VFIO_DEVICE_PCI_HOT_RESET, &reset) < 0)
        ret = -errno;
    return ret;
}

/* Without FLR, VFIO_DEVICE_RESET falls back to a PM reset (D3hot -> D0),
 * which many functions take without resetting their registers (QEMU's
 * e1000e is one): a guest that scribbled over them would hand the next VM a
 * dead function. A bus reset does reset it, so that comes first when it
 * touches nothing outside the group. */
static int k_reset(void *o)
{
    const struct vfio_kernel_dev *k = o;

    if (!k_has_flr(k) && k_hot_reset(k) == 0)
        return 0;
    return ioctl(k->device_fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

static ssize_t k_read(void *o, uint64_t off, void *buf, size_t len)
{
    return pread(((struct vfio_kernel_dev *)o)->device_fd, buf, len, (off_t)off);
}

static ssize_t k_write(void *o, uint64_t off, const void *buf, size_t len)
{
    return pwrite(((struct vfio_kernel_dev *)o)->device_fd, buf, len, (off_t)off);
}

static void *k_mmap(void *o, uint64_t off, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                   ((struct vfio_kernel_dev *)o)->device_fd, (off_t)off);
    return p == MAP_FAILED ? NULL : p;
}

static void k_munmap(void *o, void *p, size_t len)
{
    (void)o;
    munmap(p, len);
}

static int k_memslot(void *o, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot, .guest_phys_addr = gpa, .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    return ioctl(((struct vfio_kernel_dev *)o)->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno
                                                                                          : 0;
}

const struct vfio_dev_io_ops vfio_dev_io_kernel = {
    .device_info = k_device_info, .region_info = k_region_info, .irq_info = k_irq_info,
    .set_irqs = k_set_irqs, .reset = k_reset, .read = k_read, .write = k_write,
    .mmap = k_mmap, .munmap = k_munmap, .memslot = k_memslot,
};

/* --- what the assigned devices of one VM share ----------------------------- */

struct vfio_vm_ctx {
    struct vm *vm;
    unsigned users;
    struct iommu_domain domain;
    bool ram_mapped;
    int kvm_vfio_fd;
};

/* One VM per process; the context is looked up by VM all the same. */
static struct vfio_vm_ctx *ctx_current;

static struct vfio_vm_ctx *ctx_get(struct vm *vm, char *err, size_t errlen)
{
    struct vfio_vm_ctx *c = ctx_current;
    struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };

    if (c && c->vm == vm) {
        c->users++;
        return c;
    }
    if (c) {
        snprintf(err, errlen, "another VM of this process holds the VFIO container");
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->vm = vm;
    c->kvm_vfio_fd = -1;
    if (iommu_type1_open(&c->domain, err, errlen) < 0) {
        free(c);
        return NULL;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
        snprintf(err, errlen, "KVM_CREATE_DEVICE (VFIO pseudo-device): %s", strerror(errno));
        iommu_domain_close(&c->domain);
        free(c);
        return NULL;
    }
    c->kvm_vfio_fd = (int)cd.fd;
    c->users = 1;
    ctx_current = c;
    return c;
}

static void ctx_put(struct vfio_vm_ctx *c)
{
    if (!c || --c->users)
        return;
    iommu_domain_close(&c->domain);
    if (c->kvm_vfio_fd >= 0)
        close(c->kvm_vfio_fd);
    ctx_current = NULL;
    free(c);
}

static int kvm_vfio_group(struct vfio_vm_ctx *c, int group_fd, uint64_t attr)
{
    int32_t fd = group_fd;
    struct kvm_device_attr a = { .group = KVM_DEV_VFIO_GROUP, .attr = attr,
                                 .addr = (uint64_t)(uintptr_t)&fd };

    return ioctl(c->kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

/* --- one group and one device ---------------------------------------------- */

int vfio_host_open(struct vfio_host_dev *h, struct vm *vm, int group, const char *bdf, char *err,
                   size_t errlen)
{
    struct vfio_group_status st = { .argsz = sizeof(st) };
    struct vfio_vm_ctx *c;
    char path[64];
    int ret;

    memset(h, 0, sizeof(*h));
    h->vm = vm;
    h->group = group;
    h->kdev.device_fd = -1;
    h->kdev.vm_fd = vm->vm_fd;
    h->kdev.group_fd = -1;
    h->kdev.group = group;
    snprintf(path, sizeof(path), "/dev/vfio/%d", group);
    h->group_fd = open(path, O_RDWR | O_CLOEXEC);
    if (h->group_fd < 0) {
        ret = -errno;
        if (ret == -EBUSY)
            snprintf(err, errlen, "%s (IOMMU group %d of %s) is in use by another VM or process",
                     path, group, bdf);
        else
            snprintf(err, errlen, "%s: %s (is %s bound to vfio-pci?)", path, strerror(-ret), bdf);
        return ret;
    }
    if (ioctl(h->group_fd, VFIO_GROUP_GET_STATUS, &st) < 0 ||
        !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        snprintf(err, errlen, "VFIO says IOMMU group %d is not viable (a device of the group is "
                 "bound to a host driver)", group);
        ret = -EPERM;
        goto fail;
    }
    if (!(c = ctx_get(vm, err, errlen))) {
        ret = -ENODEV;
        goto fail;
    }
    if ((ret = c->domain.ops->attach_group(c->domain.be, h->group_fd)) < 0) {
        snprintf(err, errlen, "attaching IOMMU group %d to the VFIO container: %s%s", group,
                 strerror(-ret), ret == -EPERM ? " (no interrupt remapping: load vfio_iommu_type1 "
                                                 "with allow_unsafe_interrupts=1)" : "");
        ctx_put(c);
        goto fail;
    }
    h->attached = true;
    /* Guest RAM goes in once the container has an IOMMU model, i.e. after
     * the first group. */
    if (!c->ram_mapped) {
        if ((ret = iommu_domain_map_guest_ram(&c->domain, &vm->mem)) < 0) {
            snprintf(err, errlen, "mapping guest RAM for DMA: %s", strerror(-ret));
            goto fail;
        }
        c->ram_mapped = true;
    }
    if ((ret = kvm_vfio_group(c, h->group_fd, KVM_DEV_VFIO_GROUP_ADD)) < 0) {
        snprintf(err, errlen, "adding group %d to KVM's VFIO device: %s", group, strerror(-ret));
        goto fail;
    }
    h->kvm_added = true;
    h->kdev.group_fd = h->group_fd;
    h->kdev.device_fd = ioctl(h->group_fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (h->kdev.device_fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "VFIO_GROUP_GET_DEVICE_FD %s: %s%s", bdf, strerror(-ret),
                 ret == -EBUSY ? " (in use by another VM or process)" : "");
        goto fail;
    }
    return 0;
fail:
    vfio_host_close(h);
    return ret;
}

void vfio_host_close(struct vfio_host_dev *h)
{
    struct vfio_vm_ctx *c = ctx_current && ctx_current->vm == h->vm ? ctx_current : NULL;

    if (h->kdev.device_fd >= 0)
        close(h->kdev.device_fd);
    h->kdev.device_fd = -1;
    if (c && h->kvm_added)
        kvm_vfio_group(c, h->group_fd, KVM_DEV_VFIO_GROUP_DEL);
    h->kvm_added = false;
    if (c && h->attached) {
        /* The last group out takes the mappings with it: unmap first. */
        if (c->users == 1)
            iommu_domain_unmap_all(&c->domain);
        c->domain.ops->detach_group(c->domain.be, h->group_fd);
        h->attached = false;
        ctx_put(c);
    }
    if (h->group_fd >= 0)
        close(h->group_fd);
    h->group_fd = -1;
}
