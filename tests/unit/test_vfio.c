/* vfio/: an assigned function on our PCI bus, against a fake VFIO device (an
 * e1000e-like config space: PM, MSI, PCI Express, MSI-X, and an advanced-
 * features capability that must stay hidden): the config-space permission
 * table, BAR sizing, the BARs as KVM memory slots cut around the MSI-X pages,
 * MSI-X table emulation and the interrupt modes asked of VFIO. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"
#include "layout.h"
#include "pci.h"
#include "pci_msix.h"
#include "vfio.h"
#include "vm.h"

#define REGION(i) ((uint64_t)(i) << 40)
#define CAP_AF    0x40
#define CAP_MSIX  0xa0
#define CAP_PM    0xc8
#define CAP_MSI   0xd0
#define CAP_EXP   0xe0
#define NVEC      5

struct fake {
    uint8_t cfg[256];
    uint64_t bar_size[6];
    bool bar_io[6];
    int resets;
    int bar_writes, bar_reads;
    uint64_t last_bar_off;
    struct { uint32_t slot; uint64_t gpa, size; void *hva; } slots[16];
    int n_slots;
    struct { uint32_t index, flags, count; } irqs[16];
    int n_irqs;
    void *maps[6];
};

static struct fake fk;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void fake_init(void)
{
    uint8_t *c = fk.cfg;

    memset(&fk, 0, sizeof(fk));
    put16(c + 0, 0x8086);
    put16(c + 2, 0x10d3);
    put32(c + 8, 0x02000003);           /* class 020000, revision 3 */
    c[0x0e] = 0x80;                     /* multi-function: hidden from the guest */
    put16(c + 0x06, 0x0010);            /* capability list */
    put32(c + 0x10, 0xfebc0000);        /* BAR0: 128 KiB memory */
    put32(c + 0x18, 0x0000c001);        /* BAR2: 32 bytes of I/O */
    put32(c + 0x1c, 0xfebe0000);        /* BAR3: 16 KiB memory, MSI-X */
    put32(c + 0x30, 0xfeb80000);        /* a ROM the guest must not see */
    put16(c + 0x2c, 0x8086);
    put16(c + 0x2e, 0x0001);
    c[0x34] = CAP_PM;
    c[0x3d] = 1;
    c[CAP_PM] = 0x01; c[CAP_PM + 1] = CAP_MSI; put16(c + CAP_PM + 2, 0xc823);
    c[CAP_MSI] = 0x05; c[CAP_MSI + 1] = CAP_EXP; put16(c + CAP_MSI + 2, 0x0080);
    c[CAP_EXP] = 0x10; c[CAP_EXP + 1] = CAP_MSIX; put16(c + CAP_EXP + 2, 0x0002);
    put32(c + CAP_EXP + 0x0c, 0x00011c11);     /* link capabilities */
    put16(c + CAP_EXP + 0x0a, 0x0004);         /* device status: an error to clear */
    c[CAP_MSIX] = 0x11; c[CAP_MSIX + 1] = CAP_AF; put16(c + CAP_MSIX + 2, NVEC - 1);
    put32(c + CAP_MSIX + 4, 0x00000003);       /* table at 0 of BAR3 */
    put32(c + CAP_MSIX + 8, 0x00002003);       /* PBA at 0x2000 of BAR3 */
    c[CAP_AF] = 0x13; c[CAP_AF + 1] = 0x00; c[CAP_AF + 2] = 0x06;
    fk.bar_size[0] = 128 << 10;
    fk.bar_size[2] = 32;
    fk.bar_io[2] = true;
    fk.bar_size[3] = 16 << 10;
}

static int f_device_info(void *o, struct vfio_device_info *info)
{
    (void)o;
    info->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
    info->num_regions = VFIO_PCI_NUM_REGIONS;
    info->num_irqs = VFIO_PCI_NUM_IRQS;
    return 0;
}

static int f_region_info(void *o, struct vfio_region_info *ri)
{
    (void)o;
    ri->offset = REGION(ri->index);
    if (ri->index == VFIO_PCI_CONFIG_REGION_INDEX) {
        ri->size = 256;
        ri->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        return 0;
    }
    if (ri->index >= 6)
        return -EINVAL;
    ri->size = fk.bar_size[ri->index];
    ri->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                (fk.bar_io[ri->index] ? 0 : VFIO_REGION_INFO_FLAG_MMAP);
    return 0;
}

static int f_irq_info(void *o, struct vfio_irq_info *ii)
{
    (void)o;
    ii->count = ii->index == VFIO_PCI_INTX_IRQ_INDEX ? 1 : ii->index == VFIO_PCI_MSIX_IRQ_INDEX ? NVEC : 1;
    return 0;
}

static int f_set_irqs(void *o, const struct vfio_irq_set *s)
{
    (void)o;
    assert_true(fk.n_irqs < 16);
    fk.irqs[fk.n_irqs].index = s->index;
    fk.irqs[fk.n_irqs].flags = s->flags;
    fk.irqs[fk.n_irqs++].count = s->count;
    if (s->flags & VFIO_IRQ_SET_DATA_EVENTFD)
        assert_int_equal(s->argsz, sizeof(*s) + s->count * sizeof(int32_t));
    return 0;
}

static int f_reset(void *o)
{
    (void)o;
    fk.resets++;
    return 0;
}

static ssize_t f_read(void *o, uint64_t off, void *buf, size_t len)
{
    (void)o;
    if (off >= REGION(VFIO_PCI_CONFIG_REGION_INDEX)) {
        off -= REGION(VFIO_PCI_CONFIG_REGION_INDEX);
        assert_true(off + len <= 256);
        memcpy(buf, fk.cfg + off, len);
        return (ssize_t)len;
    }
    fk.bar_reads++;
    fk.last_bar_off = off;
    memset(buf, 0xab, len);
    return (ssize_t)len;
}

static ssize_t f_write(void *o, uint64_t off, const void *buf, size_t len)
{
    (void)o;
    if (off >= REGION(VFIO_PCI_CONFIG_REGION_INDEX)) {
        off -= REGION(VFIO_PCI_CONFIG_REGION_INDEX);
        assert_true(off + len <= 256);
        for (size_t i = 0; i < len; i++) {
            uint8_t b = ((const uint8_t *)buf)[i];
            if (off + i == CAP_EXP + 0x0a || off + i == CAP_EXP + 0x0b)
                fk.cfg[off + i] &= (uint8_t)~b;   /* device status: write 1 to clear */
            else
                fk.cfg[off + i] = b;
        }
        return (ssize_t)len;
    }
    fk.bar_writes++;
    fk.last_bar_off = off;
    return (ssize_t)len;
}

static void *f_mmap(void *o, uint64_t off, size_t len)
{
    (void)o;
    void *p = aligned_alloc(4096, len);
    fk.maps[off >> 40] = p;
    return p;
}

static void f_munmap(void *o, void *p, size_t len)
{
    (void)o;
    (void)len;
    free(p);
}

static int f_memslot(void *o, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
    (void)o;
    assert_true(fk.n_slots < 16);
    fk.slots[fk.n_slots].slot = slot;
    fk.slots[fk.n_slots].gpa = gpa;
    fk.slots[fk.n_slots].size = size;
    fk.slots[fk.n_slots++].hva = hva;
    return 0;
}

static const struct vfio_dev_io_ops fake_ops = {
    .device_info = f_device_info, .region_info = f_region_info, .irq_info = f_irq_info,
    .set_irqs = f_set_irqs, .reset = f_reset, .read = f_read, .write = f_write,
    .mmap = f_mmap, .munmap = f_munmap, .memslot = f_memslot,
};

struct fixture {
    struct vm vm;
    struct device bridge_dev, dev;
    struct vfio_pci_dev *v;
    unsigned slot;
};

static int setup(void **state)
{
    static struct fixture f;
    struct vfio_dev_io io = { .ops = &fake_ops, .opaque = NULL };

    memset(&f, 0, sizeof(f));
    fake_init();
    iobus_init(&f.vm.pio, IOBUS_PIO);
    iobus_init(&f.vm.mmio, IOBUS_MMIO);
    f.vm.pci = pci_bus_create(&f.vm, &f.bridge_dev);
    assert_non_null(f.vm.pci);
    assert_int_equal(vfio_pci_create(&f.v, "pt0", &f.vm, &f.dev, &io), 0);
    assert_int_equal(vfio_pci_plug(f.v, f.vm.pci), 0);
    f.slot = vfio_pci_pdev(f.v)->slot;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    vfio_pci_destroy(f->v);
    pci_bus_destroy(f->vm.pci);
    iobus_destroy(&f->vm.pio);
    iobus_destroy(&f->vm.mmio);
    return 0;
}

static uint32_t cfg_read(struct fixture *f, unsigned reg, uint32_t len)
{
    uint32_t addr = 0x80000000u | f->slot << 11 | (reg & 0xfc), v = 0;

    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &addr, 4, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfc + (reg & 3), &v, len, false));
    return v;
}

static void cfg_write(struct fixture *f, unsigned reg, uint32_t v, uint32_t len)
{
    uint32_t addr = 0x80000000u | f->slot << 11 | (reg & 0xfc);

    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &addr, 4, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfc + (reg & 3), &v, len, true));
}

/* Offset of capability id in the guest's list, 0 if absent. */
static unsigned find_cap(struct fixture *f, uint8_t id)
{
    unsigned off = cfg_read(f, 0x34, 1);

    for (int n = 0; off && n < 48; n++, off = cfg_read(f, off + 1, 1))
        if (cfg_read(f, off, 1) == id)
            return off;
    return 0;
}

static void test_header(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cfg_read(f, 0, 4), 0x10d38086);
    assert_int_equal(cfg_read(f, 8, 4), 0x02000003);
    assert_int_equal(cfg_read(f, 0x2c, 4), 0x00018086);
    assert_int_equal(cfg_read(f, 0x0e, 1), 0);          /* single function, type 0 */
    assert_int_equal(cfg_read(f, 0x3d, 1), 1);          /* INTA */
    assert_int_equal(fk.resets, 1);                    /* reset at start */
    /* The ROM is hidden: reads 0 and ignores sizing. */
    assert_int_equal(cfg_read(f, 0x30, 4), 0);
    cfg_write(f, 0x30, 0xffffffff, 4);
    assert_int_equal(cfg_read(f, 0x30, 4), 0);
    assert_int_equal(fk.cfg[0x33], 0xfe);               /* not written through */
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    uint32_t bar0 = cfg_read(f, 0x10, 4);

    cfg_write(f, 0x10, 0xffffffff, 4);
    assert_int_equal(cfg_read(f, 0x10, 4), 0xfffe0000);   /* 128 KiB, 32-bit memory */
    cfg_write(f, 0x10, bar0, 4);
    assert_int_equal(cfg_read(f, 0x10, 4), bar0);
    cfg_write(f, 0x18, 0xffffffff, 4);
    assert_int_equal(cfg_read(f, 0x18, 4), 0xffffffe1);   /* 32 bytes of I/O */
    cfg_write(f, 0x1c, 0xffffffff, 4);
    assert_int_equal(cfg_read(f, 0x1c, 4), 0xffffc000);   /* 16 KiB */
    assert_int_equal(cfg_read(f, 0x14, 4), 0);            /* no BAR1 */
    /* BARs are ours: the device's registers are never written. */
    assert_int_equal(fk.cfg[0x13], 0xfe);
    assert_int_equal(fk.cfg[0x1f], 0xfe);
}

static void test_capability_list(void **state)
{
    struct fixture *f = *state;
    unsigned off = cfg_read(f, 0x34, 1), exp, msix;
    uint8_t want[] = { 0x01, 0x05, 0x10, 0x11 };

    for (unsigned i = 0; i < sizeof(want); i++) {
        assert_int_not_equal(off, 0);
        assert_int_equal(cfg_read(f, off, 1), want[i]);   /* device order kept */
        off = cfg_read(f, off + 1, 1);
    }
    assert_int_equal(off, 0);                             /* advanced features hidden */
    exp = find_cap(f, 0x10);
    assert_int_equal(cfg_read(f, exp + 2, 2) >> 4 & 0xf, 9);   /* RC integrated endpoint */
    assert_int_equal(cfg_read(f, exp + 0x0c, 4), 0);             /* no link */
    msix = find_cap(f, 0x11);
    assert_int_equal(cfg_read(f, msix + 2, 2), NVEC - 1);
    assert_int_equal(cfg_read(f, msix + 4, 4), 0x00000003);
    assert_int_equal(cfg_read(f, msix + 8, 4), 0x00002003);
    {   /* No extended capabilities (ECAM reaches past 0xff). */
        uint32_t ext = 0xffffffff;
        assert_true(iobus_dispatch(&f->vm.mmio, LAYOUT_ECAM_BASE + (f->slot << 15) + 0x100, &ext,
                                   4, false));
        assert_int_equal(ext, 0);
    }
}

static void test_permission_table(void **state)
{
    struct fixture *f = *state;
    unsigned exp = find_cap(f, 0x10), pm = find_cap(f, 0x01);

    /* Command: written through. */
    cfg_write(f, 0x04, 0x0006, 2);
    assert_int_equal(fk.cfg[0x04], 0x06);
    /* Device control: written through to the device's own offset. */
    cfg_write(f, exp + 8, 0x2810, 2);
    assert_int_equal(fk.cfg[CAP_EXP + 8] | fk.cfg[CAP_EXP + 9] << 8, 0x2810);
    assert_int_equal(cfg_read(f, exp + 8, 2), 0x2810);
    /* Device status: write 1 to clear, read back from the device. */
    assert_int_equal(cfg_read(f, exp + 0x0a, 2), 0x0004);
    cfg_write(f, exp + 0x0a, 0x0004, 2);
    assert_int_equal(fk.cfg[CAP_EXP + 0x0a], 0);
    assert_int_equal(cfg_read(f, exp + 0x0a, 2), 0);
    /* Read-only: PM capabilities, link capabilities. */
    cfg_write(f, pm + 2, 0x0000, 2);
    assert_int_equal(cfg_read(f, pm + 2, 2), 0xc823);
    assert_int_equal(fk.cfg[CAP_PM + 2], 0x23);
    cfg_write(f, exp + 0x0c, 0xffffffff, 4);
    assert_int_equal(cfg_read(f, exp + 0x0c, 4), 0);
    assert_int_equal(fk.cfg[CAP_EXP + 0x0c], 0x11);
    /* PMCSR power state: the guest's view only (D3hot on the device would
     * revoke the BAR mappings under the guest); PME enable goes through. */
    cfg_write(f, pm + 4, 0x0103, 2);
    assert_int_equal(cfg_read(f, pm + 4, 2) & 0x0103, 0x0103);
    assert_int_equal(fk.cfg[CAP_PM + 4] & 0x03, 0);
    assert_int_equal(fk.cfg[CAP_PM + 5] & 0x01, 0x01);
    cfg_write(f, pm + 4, 0x0000, 2);
    assert_int_equal(cfg_read(f, pm + 4, 2) & 0x0103, 0);
    /* The MSI capability is ours: never reaches the device. */
    cfg_write(f, find_cap(f, 0x05) + 4, 0xfee00000, 4);
    assert_int_equal(fk.cfg[CAP_MSI + 4], 0);
}

static uint64_t bar_addr(struct fixture *f, int bar)
{
    return cfg_read(f, 0x10 + 4 * bar, 4) & ~0xfULL;
}

static void test_bars_become_memslots(void **state)
{
    struct fixture *f = *state;
    uint64_t b0 = bar_addr(f, 0), b3 = bar_addr(f, 3);
    int found0 = 0, found3 = 0;

    assert_int_equal(fk.n_slots, 0);
    cfg_write(f, 0x04, 0x0002, 2);   /* memory decoding on */
    for (int i = 0; i < fk.n_slots; i++) {
        if (fk.slots[i].gpa == b0) {
            assert_int_equal(fk.slots[i].size, 128 << 10);
            assert_ptr_equal(fk.slots[i].hva, fk.maps[0]);
            found0++;
        }
        /* BAR3 without its MSI-X table page (0) and PBA page (0x2000). */
        if (fk.slots[i].gpa == b3 + 0x1000 || fk.slots[i].gpa == b3 + 0x3000) {
            assert_int_equal(fk.slots[i].size, 0x1000);
            assert_ptr_equal(fk.slots[i].hva, (uint8_t *)fk.maps[3] + (fk.slots[i].gpa - b3));
            found3++;
        }
        assert_false(fk.slots[i].gpa == b3 || fk.slots[i].gpa == b3 + 0x2000);
    }
    assert_int_equal(found0, 1);
    assert_int_equal(found3, 2);
    assert_int_equal(fk.n_slots, 3);
    /* Decoding off: every slot deleted. */
    cfg_write(f, 0x04, 0x0000, 2);
    assert_int_equal(fk.n_slots, 6);
    for (int i = 3; i < 6; i++)
        assert_int_equal(fk.slots[i].size, 0);
}

static void test_trapped_access_goes_to_the_region(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 0x12345678;
    uint8_t b;

    cfg_write(f, 0x04, 0x0003, 2);
    /* A trapped BAR0 access (one that KVM did not take through the slot). */
    assert_true(iobus_dispatch(&f->vm.mmio, bar_addr(f, 0) + 0x10, &v, 4, true));
    assert_int_equal(fk.bar_writes, 1);
    assert_int_equal(fk.last_bar_off, REGION(0) + 0x10);
    /* The I/O BAR. */
    assert_true(iobus_dispatch(&f->vm.pio, cfg_read(f, 0x18, 4) & ~3u, &b, 1, false));
    assert_int_equal(b, 0xab);
    assert_int_equal(fk.last_bar_off, REGION(2));
    /* BAR3 outside the MSI-X structures, same page as the PBA. */
    assert_true(iobus_dispatch(&f->vm.mmio, bar_addr(f, 3) + 0x2800, &v, 4, false));
    assert_int_equal(fk.last_bar_off, REGION(3) + 0x2800);
}

static int count_irqs(uint32_t index, uint32_t flags, uint32_t count)
{
    int n = 0;
    for (int i = 0; i < fk.n_irqs; i++)
        n += fk.irqs[i].index == index && fk.irqs[i].flags == flags && fk.irqs[i].count == count;
    return n;
}

static void test_msix_emulated_and_enabled(void **state)
{
    struct fixture *f = *state;
    unsigned msix = find_cap(f, 0x11);
    uint64_t b3;
    uint32_t v, writes;

    /* INTx is on from the start: trigger and resample eventfds. */
    assert_int_equal(count_irqs(VFIO_PCI_INTX_IRQ_INDEX,
                                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 1), 1);
    assert_int_equal(count_irqs(VFIO_PCI_INTX_IRQ_INDEX,
                                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, 1), 1);
    cfg_write(f, 0x04, 0x0006, 2);
    b3 = bar_addr(f, 3);
    writes = (uint32_t)fk.bar_writes;
    /* Entry 1: address, data, unmasked. The table is ours. */
    v = 0xfee01000;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 16, &v, 4, true));
    v = 0x4041;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 16 + 8, &v, 4, true));
    v = 0;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 16 + 12, &v, 4, true));
    assert_int_equal(fk.bar_writes, writes);
    v = 0;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 16 + 8, &v, 4, false));
    assert_int_equal(v, 0x4041);
    v = 0xffffffff;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 0x2000, &v, 4, false));   /* PBA */
    assert_int_equal(v, 0);
    assert_int_equal(fk.bar_reads, 0);

    /* Enable: INTx off first (VFIO wants that), then every vector. */
    fk.n_irqs = 0;
    cfg_write(f, msix + 3, 0x80, 1);
    assert_int_equal(fk.n_irqs, 2);
    assert_int_equal(fk.irqs[0].index, VFIO_PCI_INTX_IRQ_INDEX);
    assert_int_equal(fk.irqs[0].flags, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER);
    assert_int_equal(fk.irqs[0].count, 0);
    assert_int_equal(fk.irqs[1].index, VFIO_PCI_MSIX_IRQ_INDEX);
    assert_int_equal(fk.irqs[1].flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
    assert_int_equal(fk.irqs[1].count, NVEC);
    /* Table writes while enabled do not re-enable anything. */
    v = 1;
    assert_true(iobus_dispatch(&f->vm.mmio, b3 + 12, &v, 4, true));
    assert_int_equal(fk.n_irqs, 2);
    /* Disable: MSI-X off, INTx back. */
    cfg_write(f, msix + 3, 0x00, 1);
    assert_int_equal(fk.n_irqs, 5);
    assert_int_equal(fk.irqs[2].index, VFIO_PCI_MSIX_IRQ_INDEX);
    assert_int_equal(fk.irqs[2].count, 0);
    assert_int_equal(fk.irqs[3].index, VFIO_PCI_INTX_IRQ_INDEX);
    assert_int_equal(fk.irqs[4].flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK);
}

static void test_msi_enable(void **state)
{
    struct fixture *f = *state;
    unsigned msi = find_cap(f, 0x05);

    assert_int_equal(cfg_read(f, msi + 2, 2), 0x0080);   /* 64-bit, one message */
    fk.n_irqs = 0;
    cfg_write(f, msi + 4, 0xfee00000, 4);
    cfg_write(f, msi + 12, 0x0041, 2);
    assert_int_equal(fk.n_irqs, 0);
    cfg_write(f, msi + 2, 0x0001, 2);
    assert_int_equal(fk.n_irqs, 2);
    assert_int_equal(fk.irqs[1].index, VFIO_PCI_MSI_IRQ_INDEX);
    assert_int_equal(fk.irqs[1].count, 1);
}

static void test_stop_resets_and_drops_slots(void **state)
{
    struct fixture *f = *state;

    cfg_write(f, 0x04, 0x0002, 2);
    assert_int_equal(fk.n_slots, 3);
    vfio_pci_destroy(f->v);
    f->v = NULL;
    assert_int_equal(fk.resets, 2);
    assert_int_equal(fk.n_slots, 6);
    for (int i = 3; i < 6; i++)
        assert_int_equal(fk.slots[i].size, 0);
    assert_int_equal(fk.irqs[fk.n_irqs - 1].index, VFIO_PCI_INTX_IRQ_INDEX);
    assert_int_equal(fk.irqs[fk.n_irqs - 1].count, 0);
}

static void test_bridge_refused(void **state)
{
    struct vfio_dev_io io = { .ops = &fake_ops, .opaque = NULL };
    struct vfio_pci_dev *v;
    struct device dev = { 0 };

    (void)state;
    fake_init();
    fk.cfg[0x0e] = 0x01;
    assert_int_equal(vfio_pci_create(&v, "br", NULL, &dev, &io), -EINVAL);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capability_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bars_become_memslots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trapped_access_goes_to_the_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_emulated_and_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_resets_and_drops_slots, setup, teardown),
        cmocka_unit_test(test_bridge_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
