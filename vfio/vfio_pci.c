/* The VFIO PCI device: create, plug, destroy, and its BARs. An mmap-able
 * memory BAR is mapped into the guest as KVM memory slots wherever the guest
 * placed it, cut around the pages of the MSI-X table and PBA, which stay
 * trapped and are emulated by pci_msix. Everything else of a BAR traps and
 * is forwarded to the device's region. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "iobus.h"
#include "vfio_pci_internal.h"
#include "vm.h"

/* KVM memory slots for BARs: vm.c uses one per RAM region from 0 up. */
#define SLOT_FIRST 64
#define SLOT_COUNT 64

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slots_used;

static int slot_alloc(void)
{
    int s = -1;

    pthread_mutex_lock(&slot_lock);
    for (int i = 0; i < SLOT_COUNT && s < 0; i++)
        if (!(slots_used & (1ULL << i))) {
            slots_used |= 1ULL << i;
            s = SLOT_FIRST + i;
        }
    pthread_mutex_unlock(&slot_lock);
    return s;
}

static void slot_free(uint32_t slot)
{
    pthread_mutex_lock(&slot_lock);
    slots_used &= ~(1ULL << (slot - SLOT_FIRST));
    pthread_mutex_unlock(&slot_lock);
}

struct pci_device *vfio_pci_pdev(struct vfio_pci_dev *v)
{
    return &v->pdev;
}

static void bar_drop_slots(struct vfio_pci_dev *v, struct vfio_bar *b)
{
    for (unsigned i = 0; i < b->n_slots; i++) {
        v->io.ops->memslot(v->io.opaque, b->slots[i].slot, b->slotted_at + b->slots[i].off, 0,
                           NULL);
        slot_free(b->slots[i].slot);
    }
    b->n_slots = 0;
    b->slotted_at = 0;
}

/* [0, size) of BAR bar minus the pages holding the MSI-X table and PBA, as
 * up to VFIO_BAR_MAX_SLOTS page-aligned pieces. */
static unsigned bar_pieces(const struct vfio_pci_dev *v, int bar, uint64_t size,
                           uint64_t off[VFIO_BAR_MAX_SLOTS], uint64_t len[VFIO_BAR_MAX_SLOTS])
{
    uint64_t hole[2][2];
    unsigned nh = 0, n = 0;
    uint64_t at = 0;

    if (v->has_msix && v->msix.bar == bar) {
        uint64_t t = v->msix.table_offset, te = t + 16ULL * v->msix.nvec;
        uint64_t p = v->msix.pba_offset, pe = p + (v->msix.nvec + 63) / 64 * 8ULL;
        hole[nh][0] = t & ~(VFIO_PAGE - 1);
        hole[nh++][1] = (te + VFIO_PAGE - 1) & ~(VFIO_PAGE - 1);
        hole[nh][0] = p & ~(VFIO_PAGE - 1);
        hole[nh++][1] = (pe + VFIO_PAGE - 1) & ~(VFIO_PAGE - 1);
        if (hole[1][0] < hole[0][0]) {
            uint64_t a = hole[0][0], b = hole[0][1];
            hole[0][0] = hole[1][0]; hole[0][1] = hole[1][1];
            hole[1][0] = a; hole[1][1] = b;
        }
    }
    for (unsigned h = 0; h < nh; h++) {
        if (hole[h][0] > at && n < VFIO_BAR_MAX_SLOTS) {
            off[n] = at;
            len[n++] = hole[h][0] - at;
        }
        if (hole[h][1] > at)
            at = hole[h][1];
    }
    if (at < size && n < VFIO_BAR_MAX_SLOTS) {
        off[n] = at;
        len[n++] = size - at;
    }
    return n;
}

static int bar_add_slots(struct vfio_pci_dev *v, int bar, uint64_t gpa)
{
    struct vfio_bar *b = &v->bars[bar];
    uint64_t off[VFIO_BAR_MAX_SLOTS], len[VFIO_BAR_MAX_SLOTS];
    unsigned n = bar_pieces(v, bar, b->size, off, len);

    b->slotted_at = gpa;
    for (unsigned i = 0; i < n; i++) {
        int slot = slot_alloc(), ret;
        if (slot < 0)
            ret = -ENOSPC;
        else
            ret = v->io.ops->memslot(v->io.opaque, (uint32_t)slot, gpa + off[i], len[i],
                                     (uint8_t *)b->map + off[i]);
        if (ret < 0) {
            if (slot >= 0)
                slot_free((uint32_t)slot);
            bar_drop_slots(v, b);
            return ret;
        }
        b->slots[b->n_slots++] = (typeof(b->slots[0])){ .slot = (uint32_t)slot, .off = off[i],
                                                       .size = len[i] };
    }
    return 0;
}

void vfio_bars_sync_slots(struct vfio_pci_dev *v, bool remove_only)
{
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct vfio_bar *b = &v->bars[i];
        const struct pci_bar *pb = &v->pdev.bars[i];
        uint64_t want = pb->mapped ? pb->addr : 0;
        int ret;

        if (!b->map || want == b->slotted_at)
            continue;
        if (b->slotted_at)
            bar_drop_slots(v, b);
        if (remove_only || !want)
            continue;
        /* A slot needs page alignment; the bus placed the BAR at a multiple
         * of its size, but a guest may move it anywhere. */
        if (want & (VFIO_PAGE - 1))
            ret = -EINVAL;
        else
            ret = bar_add_slots(v, i, want);
        if (ret < 0) {
            if (!v->slot_warned)
                fprintf(stderr, "vmm: %s: BAR%d at 0x%llx stays trapped (no memory slot: %s)\n",
                        v->name, i, (unsigned long long)want, strerror(-ret));
            v->slot_warned = true;
        }
    }
}

static void vfio_bar_io(struct pci_device *pdev, int bar, uint64_t offset, void *data,
                        uint32_t len, bool is_write)
{
    struct vfio_pci_dev *v = pdev->opaque;
    const struct vfio_bar *b = &v->bars[bar];
    ssize_t n;

    if (!b->size || offset > b->size || len > b->size - offset) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    if (is_write)
        n = v->io.ops->write(v->io.opaque, b->region_off + offset, data, len);
    else
        n = v->io.ops->read(v->io.opaque, b->region_off + offset, data, len);
    if (n != (ssize_t)len) {
        if (!is_write)
            memset(data, 0xff, len);
        if (!v->access_warned)
            fprintf(stderr, "vmm: %s: BAR%d %s at 0x%llx (%u bytes) failed on the device\n",
                    v->name, bar, is_write ? "write" : "read", (unsigned long long)offset, len);
        v->access_warned = true;
    }
}

static const struct pci_dev_ops vfio_pci_ops = {
    .bar_io = vfio_bar_io,
    .config_written = vfio_config_written,
};

static uint64_t pow2_at_least(uint64_t x)
{
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* Declares each BAR the device's regions describe, typed after the device's
 * own BAR registers, and maps the mmap-able memory BARs into our memory. */
static int probe_bars(struct vfio_pci_dev *v)
{
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct vfio_region_info ri = { .argsz = sizeof(ri), .index = (uint32_t)i };
        uint32_t reg;
        enum pci_bar_type type;
        uint64_t size, min, max;

        if (v->io.ops->region_info(v->io.opaque, &ri) < 0 || ri.size == 0)
            continue;
        memcpy(&reg, &v->phys[0x10 + 4 * i], 4);
        if (reg & 1)
            type = PCI_BAR_IO;
        else if (((reg >> 1) & 3) == 2 && i < PCI_NUM_BARS - 1)
            type = PCI_BAR_MEM64;
        else
            type = PCI_BAR_MEM32;
        /* The smallest BARs PCI allows; our windows bound the largest. */
        min = type == PCI_BAR_IO ? 4 : 16;
        max = type == PCI_BAR_IO ? 0x1000 : 0x10000000;
        size = pow2_at_least(ri.size < min ? min : ri.size);
        if (size > max) {
            fprintf(stderr, "vmm: %s: BAR%d of %llu bytes is larger than our PCI window allows\n",
                    v->name, i, (unsigned long long)ri.size);
            return -ENOSPC;
        }
        pci_device_set_bar(&v->pdev, i, type, size, type != PCI_BAR_IO && (reg & 8));
        v->bars[i] = (struct vfio_bar){ .region_off = ri.offset, .size = ri.size,
                                        .flags = ri.flags };
        if (type != PCI_BAR_IO && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) &&
            ri.size == size && size >= VFIO_PAGE)
            v->bars[i].map = v->io.ops->mmap(v->io.opaque, ri.offset, size);
        if (type == PCI_BAR_MEM64)
            i++;
    }
    return 0;
}

int vfio_pci_create(struct vfio_pci_dev **out, const char *name, struct vm *vm, struct device *dev,
                    const struct vfio_dev_io *io)
{
    struct vfio_pci_dev *v = calloc(1, sizeof(*v));
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    int ret = -EIO;

    *out = NULL;
    if (!v || !(v->name = strdup(name))) {
        free(v);
        return -ENOMEM;
    }
    v->vm = vm;
    v->io = *io;
    v->intx_fd = v->intx_resample_fd = v->msi.fd = -1;
    v->msi.gsi = -1;
    pthread_mutex_init(&v->irq_lock, NULL);
    v->pdev.dev = dev;
    v->pdev.ops = &vfio_pci_ops;
    v->pdev.opaque = v;

    if (io->ops->device_info(io->opaque, &info) < 0 || !(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
        info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
        fprintf(stderr, "vmm: %s: not a VFIO PCI device\n", name);
        goto fail;
    }
    v->can_reset = info.flags & VFIO_DEVICE_FLAGS_RESET;
    /* A clean function whatever the last user left in it. */
    if (v->can_reset && io->ops->reset(io->opaque) < 0)
        fprintf(stderr, "vmm: %s: function reset at start failed; going on\n", name);
    if (io->ops->region_info(io->opaque, &cfg) < 0 || cfg.size < 256 ||
        io->ops->read(io->opaque, cfg.offset, v->phys, 256) != 256) {
        fprintf(stderr, "vmm: %s: cannot read the device's config space\n", name);
        goto fail;
    }
    v->cfg_off = cfg.offset;
    if ((v->phys[0x0e] & 0x7f) != 0) {
        fprintf(stderr, "vmm: %s: header type 0x%02x: only endpoints (type 0) can be assigned\n",
                name, v->phys[0x0e] & 0x7f);
        ret = -EINVAL;
        goto fail;
    }
    {
        struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_INTX_IRQ_INDEX };
        v->intx_available = io->ops->irq_info(io->opaque, &ii) == 0 && ii.count > 0 &&
                            v->phys[0x3d] >= 1 && v->phys[0x3d] <= 4;
    }
    if ((ret = probe_bars(v)) < 0 || (ret = vfio_config_build(v)) < 0 ||
        (ret = vfio_irq_init(v)) < 0)
        goto fail;
    *out = v;
    return 0;
fail:
    vfio_pci_destroy(v);
    return ret < 0 ? ret : -EIO;
}

int vfio_pci_plug(struct vfio_pci_dev *v, struct pci_bus *bus)
{
    int ret = pci_device_add(bus, &v->pdev, -1);

    if (ret < 0)
        return ret;
    v->plugged = true;
    vfio_irq_start(v);
    return 0;
}

void vfio_pci_destroy(struct vfio_pci_dev *v)
{
    if (!v)
        return;
    vfio_irq_stop(v);
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *pb = &v->pdev.bars[i];
        if (v->bars[i].slotted_at)
            bar_drop_slots(v, &v->bars[i]);
        if (v->plugged && pb->mapped && v->vm) {
            iobus_unregister(pb->type == PCI_BAR_IO ? &v->vm->pio : &v->vm->mmio, pb->addr);
            pb->mapped = false;
        }
    }
    /* Nothing the guest started may go on DMAing after us. */
    if (v->can_reset && v->io.ops->reset(v->io.opaque) < 0)
        fprintf(stderr, "vmm: %s: function reset at stop failed\n", v->name);
    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (v->bars[i].map)
            v->io.ops->munmap(v->io.opaque, v->bars[i].map, v->pdev.bars[i].size);
    vfio_irq_destroy(v);
    if (v->msix_ready)
        pci_msix_destroy(&v->msix);
    pthread_mutex_destroy(&v->irq_lock);
    free(v->name);
    free(v);
}
