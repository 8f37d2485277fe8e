#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "irq.h"
#include "layout.h"
#include "memory.h"
#include "pci.h"
#include "pci_msix.h"
#include "vm.h"

#define PCI_VENDOR_ID      0x00
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_CAP_PTR        0x34
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_CMD_MASTER     0x4
#define PCI_STATUS_INTX    0x08
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_FIRST      0x40
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_CMD_IO         0x1
#define PCI_CMD_MEM        0x2
#define PCI_CMD_WRITABLE   0x0547   /* io, mem, master, parity, serr, intx-disable */

#define CF8_PORT 0xcf8
#define CFC_PORT 0xcfc

struct pci_bus {
    struct vm *vm;
    pthread_mutex_t lock;            /* config space of every device */
    uint32_t cf8;                    /* mechanism #1 address latch */
    struct pci_device *slots[PCI_SLOTS];
    struct pci_device host_bridge;
    uint64_t next_mmio32, next_io;
};

static void put_le(uint8_t *p, uint64_t v, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, uint32_t len)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < len; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint32_t pci_intx_gsi(unsigned slot, unsigned pin)
{
    return LAYOUT_GSI_PCI_INTX + (slot + pin - 1) % 4;
}

void pci_device_init(struct pci_device *pdev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint16_t subsys_vendor, uint16_t subsys_id)
{
    put_le(&pdev->config[PCI_VENDOR_ID], vendor, 2);
    put_le(&pdev->config[PCI_VENDOR_ID + 2], device, 2);
    put_le(&pdev->config[PCI_CLASS_REVISION], (uint64_t)class_code << 8, 4);
    put_le(&pdev->config[PCI_SUBSYS_VENDOR], subsys_vendor, 2);
    put_le(&pdev->config[PCI_SUBSYS_VENDOR + 2], subsys_id, 2);
    put_le(&pdev->wmask[PCI_COMMAND], PCI_CMD_WRITABLE, 2);
    pdev->wmask[0x0c] = 0xff;                    /* cache line size */
    pdev->wmask[0x0d] = 0xff;                    /* latency timer */
    pdev->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

void pci_device_set_bar(struct pci_device *pdev, int bar, enum pci_bar_type type, uint64_t size,
                        bool prefetchable)
{
    struct pci_bar *b = &pdev->bars[bar];

    *b = (struct pci_bar){ .type = type, .size = size, .prefetchable = prefetchable,
                           .pdev = pdev, .index = bar };
}

bool pci_bus_master(const struct pci_device *pdev)
{
    return __atomic_load_n(&pdev->config[PCI_COMMAND], __ATOMIC_RELAXED) & PCI_CMD_MASTER;
}

void *pci_dma_ptr(const struct pci_device *pdev, const struct guest_mem *mem, uint64_t gpa,
                  uint64_t len)
{
    if (pdev && !pci_bus_master(pdev))
        return NULL;
    return guest_mem_ptr(mem, gpa, len);
}

uint8_t pci_add_capability(struct pci_device *pdev, uint8_t id, uint8_t size)
{
    uint16_t off = pdev->cap_end ? pdev->cap_end : PCI_CAP_FIRST;

    /* Standard capabilities live in the first 256 bytes, dword aligned. */
    if (size < 2 || off + size > 256)
        return 0;
    pdev->config[off] = id;
    pdev->config[off + 1] = pdev->config[PCI_CAP_PTR];   /* newest first */
    pdev->config[PCI_CAP_PTR] = (uint8_t)off;
    pdev->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    pdev->cap_end = (uint16_t)((off + size + 3) & ~3);
    return (uint8_t)off;
}

/* Puts the INTx line where the device and the Interrupt Disable bit say.
 * Called with the bus lock held, or before the device is visible. */
static void intx_update(struct pci_device *pdev)
{
    uint16_t cmd = (uint16_t)get_le(&pdev->config[PCI_COMMAND], 2);
    unsigned pin = pdev->config[PCI_INTERRUPT_PIN];

    if (pdev->intx_level)
        pdev->config[PCI_STATUS] |= PCI_STATUS_INTX;
    else
        pdev->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTX;
    if (!pin || !pdev->bus || !pdev->bus->vm->irq)
        return;
    irq_line_set(pdev->bus->vm->irq, pci_intx_gsi(pdev->slot, pin),
                 pdev->intx_level && !(cmd & PCI_CMD_INTX_DISABLE));
}

void pci_intx_set(struct pci_device *pdev, bool level)
{
    if (pdev->bus)
        pthread_mutex_lock(&pdev->bus->lock);
    if (level && !pdev->intx_level)
        device_count_irq(pdev->dev);
    pdev->intx_level = level;
    intx_update(pdev);
    if (pdev->bus)
        pthread_mutex_unlock(&pdev->bus->lock);
}

static uint32_t bar_flags(const struct pci_bar *b)
{
    switch (b->type) {
    case PCI_BAR_IO:
        return 0x1;
    case PCI_BAR_MEM64:
        return 0x4 | (b->prefetchable ? 0x8 : 0);
    case PCI_BAR_MEM32:
        return b->prefetchable ? 0x8 : 0;
    default:
        return 0;
    }
}

static void bar_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct pci_bar *b = opaque;

    if (b->pdev->msix && pci_msix_bar_access(b->pdev->msix, b->index, offset, data, len, is_write))
        return;
    if (b->pdev->ops && b->pdev->ops->bar_io)
        b->pdev->ops->bar_io(b->pdev, b->index, offset, data, len, is_write);
    else if (!is_write)
        memset(data, 0xff, len);
}

/* Puts the BAR on its bus if decoding is on and the address is sane; takes
 * it off otherwise. Called with the bus lock held. */
static void bar_update_mapping(struct pci_bus *bus, struct pci_bar *b)
{
    uint16_t cmd = (uint16_t)get_le(&b->pdev->config[PCI_COMMAND], 2);
    bool io = b->type == PCI_BAR_IO;
    struct iobus *iob = io ? &bus->vm->pio : &bus->vm->mmio;
    uint64_t addr = get_le(&b->pdev->config[PCI_BAR0 + 4 * b->index], 4) & (io ? ~0x3ULL : ~0xfULL);
    bool want;

    if (b->type == PCI_BAR_MEM64)
        addr |= get_le(&b->pdev->config[PCI_BAR0 + 4 * (b->index + 1)], 4) << 32;
    want = (cmd & (io ? PCI_CMD_IO : PCI_CMD_MEM)) && addr != 0 &&
           !(io && addr + b->size > 0x10000);
    if (b->mapped && (!want || addr != b->addr)) {
        iobus_unregister(iob, b->addr);
        b->mapped = false;
    }
    b->addr = addr;
    if (want && !b->mapped) {
        /* A guest may place a BAR over another device's range; the bus
         * refuses the overlap and the BAR stays unmapped. */
        if (iobus_register(iob, addr, b->size, bar_io, b, b->pdev->dev) == 0)
            b->mapped = true;
        else
            fprintf(stderr, "vmm: pci %02x.0: BAR%d at 0x%llx overlaps another range; "
                    "left unmapped\n", b->pdev->slot, b->index, (unsigned long long)addr);
    }
}

static void device_config_write(struct pci_bus *bus, struct pci_device *pdev, uint32_t reg,
                                const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        pdev->config[reg + i] = (uint8_t)((pdev->config[reg + i] & ~pdev->wmask[reg + i]) |
                                          (data[i] & pdev->wmask[reg + i]));
    /* BAR sizing needs nothing more: the wmask holds the size mask, so a
     * write of all ones reads back as the size, and the flag bits are
     * read-only. Any BAR write may move a mapping. */
    if (reg < PCI_BAR0 + 24 && reg + len > PCI_BAR0) {
        for (int i = 0; i < PCI_NUM_BARS; i++)
            if (pdev->bars[i].type != PCI_BAR_NONE)
                bar_update_mapping(bus, &pdev->bars[i]);
    }
    if (reg <= PCI_COMMAND + 1 && reg + len > PCI_COMMAND) {
        for (int i = 0; i < PCI_NUM_BARS; i++)
            if (pdev->bars[i].type != PCI_BAR_NONE)
                bar_update_mapping(bus, &pdev->bars[i]);
        intx_update(pdev);
    }
    if (pdev->msix)
        pci_msix_config_written(pdev->msix, reg, len);
    if (pdev->ops && pdev->ops->config_written)
        pdev->ops->config_written(pdev, reg, len);
}

void pci_config_access(struct pci_bus *bus, uint8_t busno, uint8_t devfn, uint32_t reg, void *data,
                       uint32_t len, bool is_write)
{
    struct pci_device *pdev = NULL;

    /* Only function 0 of bus 0 exists; an access that is not naturally
     * aligned or crosses the space is dropped, as a real root complex does. */
    if (busno == 0 && (devfn & 7) == 0)
        pdev = bus->slots[devfn >> 3];
    if (!pdev || (len != 1 && len != 2 && len != 4) || (reg & (len - 1)) ||
        reg + len > PCI_CFG_SPACE_SIZE) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pthread_mutex_lock(&bus->lock);
    if (is_write)
        device_config_write(bus, pdev, reg, data, len);
    else
        memcpy(data, &pdev->config[reg], len);
    pthread_mutex_unlock(&bus->lock);
}

static void cf8_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;

    /* Only whole-dword accesses reach the address latch on a PC. */
    if (offset != 0 || len != 4) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    if (is_write)
        __atomic_store_n(&bus->cf8, (uint32_t)get_le(data, 4), __ATOMIC_RELAXED);
    else
        put_le(data, __atomic_load_n(&bus->cf8, __ATOMIC_RELAXED), 4);
}

static void cfc_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;
    uint32_t cf8 = __atomic_load_n(&bus->cf8, __ATOMIC_RELAXED);

    if (!(cf8 & 0x80000000u) || offset + len > 4) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pci_config_access(bus, (uint8_t)(cf8 >> 16), (uint8_t)(cf8 >> 8),
                      (cf8 & 0xfc) | ((cf8 >> 16) & 0xf00) /* AMD extended regs */ | (uint32_t)offset,
                      data, len, is_write);
}

static void ecam_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    pci_config_access(opaque, (uint8_t)(offset >> 20), (uint8_t)(offset >> 12),
                      (uint32_t)(offset & 0xfff), data, len, is_write);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

int pci_device_add(struct pci_bus *bus, struct pci_device *pdev, int slot)
{
    if (slot < 0) {
        for (slot = 1; slot < PCI_SLOTS && bus->slots[slot]; slot++)
            ;
    }
    if (slot >= PCI_SLOTS || bus->slots[slot])
        return -ENOSPC;

    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *b = &pdev->bars[i];
        uint64_t addr, mask;
        if (b->type == PCI_BAR_NONE)
            continue;
        if (b->type == PCI_BAR_IO) {
            addr = align_up(bus->next_io, b->size);
            if (addr + b->size > LAYOUT_PCI_IO_BASE + LAYOUT_PCI_IO_SIZE)
                return -ENOSPC;
            bus->next_io = addr + b->size;
        } else {
            addr = align_up(bus->next_mmio32, b->size);
            if (addr + b->size > LAYOUT_MMIO32_BASE + LAYOUT_MMIO32_SIZE)
                return -ENOSPC;
            bus->next_mmio32 = addr + b->size;
        }
        mask = ~(b->size - 1);
        put_le(&pdev->config[PCI_BAR0 + 4 * i], (addr & 0xffffffffu) | bar_flags(b), 4);
        put_le(&pdev->wmask[PCI_BAR0 + 4 * i], mask & 0xfffffff0u, 4);
        if (b->type == PCI_BAR_IO)
            put_le(&pdev->wmask[PCI_BAR0 + 4 * i], mask & 0xfffffffcu, 4);
        if (b->type == PCI_BAR_MEM64) {
            put_le(&pdev->config[PCI_BAR0 + 4 * (i + 1)], addr >> 32, 4);
            put_le(&pdev->wmask[PCI_BAR0 + 4 * (i + 1)], mask >> 32, 4);
        }
        b->addr = addr;
    }
    pdev->slot = (uint8_t)slot;
    pdev->bus = bus;
    if (pdev->config[PCI_INTERRUPT_PIN])
        pdev->config[PCI_INTERRUPT_LINE] = (uint8_t)pci_intx_gsi((unsigned)slot,
                                                                 pdev->config[PCI_INTERRUPT_PIN]);
    pthread_mutex_lock(&bus->lock);
    bus->slots[slot] = pdev;
    pthread_mutex_unlock(&bus->lock);
    return 0;
}

struct pci_bus *pci_bus_create(struct vm *vm, struct device *host_bridge_dev)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));

    if (!bus)
        return NULL;
    bus->vm = vm;
    pthread_mutex_init(&bus->lock, NULL);
    bus->next_mmio32 = LAYOUT_MMIO32_BASE;
    bus->next_io = LAYOUT_PCI_IO_BASE;

    /* A Red Hat "QEMU PCIe host bridge" id: generic, so Linux applies no
     * chipset quirks to it. */
    bus->host_bridge.dev = host_bridge_dev;
    pci_device_init(&bus->host_bridge, 0x1b36, 0x0008, 0x060000, 0x1af4, 0x1100);
    if (pci_device_add(bus, &bus->host_bridge, 0) < 0)
        goto fail;
    if (iobus_register(&vm->pio, CF8_PORT, 4, cf8_io, bus, host_bridge_dev) < 0 ||
        iobus_register(&vm->pio, CFC_PORT, 4, cfc_io, bus, host_bridge_dev) < 0 ||
        iobus_register(&vm->mmio, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE, ecam_io, bus,
                       host_bridge_dev) < 0) {
        fprintf(stderr, "vmm: pci: cannot claim the config ports or the ECAM window\n");
        goto fail;
    }
    return bus;
fail:
    pci_bus_destroy(bus);
    return NULL;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    iobus_unregister(&bus->vm->pio, CF8_PORT);
    iobus_unregister(&bus->vm->pio, CFC_PORT);
    iobus_unregister(&bus->vm->mmio, LAYOUT_ECAM_BASE);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}
