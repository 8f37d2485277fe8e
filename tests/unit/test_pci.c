/* PCI host bridge: configuration mechanism #1 and ECAM reach the same config
 * space; BAR sizing, placement and mapping onto the buses follow the
 * command register; hostile accesses are dropped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"
#include "layout.h"
#include "pci.h"
#include "pci_msix.h"
#include "memory.h"
#include "vm.h"

struct fixture {
    struct vm vm;
    struct device bridge_dev, dev;
    struct pci_device pdev;
    int bar_calls, last_bar;
    uint64_t last_offset;
};

static struct fixture *current;

static void test_bar_io(struct pci_device *pdev, int bar, uint64_t offset, void *data,
                        uint32_t len, bool is_write)
{
    (void)pdev;
    current->bar_calls++;
    current->last_bar = bar;
    current->last_offset = offset;
    if (!is_write)
        memset(data, 0x5a, len);
}

static const struct pci_dev_ops test_ops = { .bar_io = test_bar_io };

static int setup(void **state)
{
    static struct fixture f;

    memset(&f, 0, sizeof(f));
    current = &f;
    iobus_init(&f.vm.pio, IOBUS_PIO);
    iobus_init(&f.vm.mmio, IOBUS_MMIO);
    f.vm.pci = pci_bus_create(&f.vm, &f.bridge_dev);
    assert_non_null(f.vm.pci);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    pci_bus_destroy(f->vm.pci);
    iobus_destroy(&f->vm.pio);
    iobus_destroy(&f->vm.mmio);
    return 0;
}

static uint32_t cfg1_read(struct fixture *f, unsigned slot, unsigned reg, uint32_t len)
{
    uint32_t addr = 0x80000000u | slot << 11 | (reg & 0xfc), v = 0;

    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &addr, 4, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfc + (reg & 3), &v, len, false));
    return v;
}

static void cfg1_write(struct fixture *f, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
    uint32_t addr = 0x80000000u | slot << 11 | (reg & 0xfc);

    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &addr, 4, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfc + (reg & 3), &v, len, true));
}

static uint32_t ecam_read(struct fixture *f, unsigned slot, unsigned reg, uint32_t len)
{
    uint32_t v = 0;

    assert_true(iobus_dispatch(&f->vm.mmio, LAYOUT_ECAM_BASE + (slot << 15) + reg, &v, len, false));
    return v;
}

static void add_test_device(struct fixture *f)
{
    f->pdev.dev = &f->dev;
    f->pdev.ops = &test_ops;
    pci_device_init(&f->pdev, 0x8086, 0x100e, 0x020000, 0x8086, 0x001e);
    f->pdev.config[0x3d] = 1;   /* INTA */
    pci_device_set_bar(&f->pdev, 0, PCI_BAR_MEM32, 0x20000, false);
    pci_device_set_bar(&f->pdev, 1, PCI_BAR_IO, 0x40, false);
    pci_device_set_bar(&f->pdev, 2, PCI_BAR_MEM64, 0x4000, true);
    assert_int_equal(pci_device_add(f->vm.pci, &f->pdev, -1), 0);
}

static void test_host_bridge_both_mechanisms(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cfg1_read(f, 0, 0, 4), 0x00081b36);
    assert_int_equal(ecam_read(f, 0, 0, 4), 0x00081b36);
    assert_int_equal(cfg1_read(f, 0, 0x0a, 2), 0x0600);      /* host bridge class */
    assert_int_equal(cfg1_read(f, 0, 2, 2), 0x0008);         /* via 0xcfe */
    /* empty slots and other functions float high */
    assert_int_equal(cfg1_read(f, 5, 0, 4), 0xffffffff);
    assert_int_equal(ecam_read(f, 0, (1 << 12), 4), 0xffffffff);   /* 00:00.1 */
    /* only bus 0 has an ECAM window (LAYOUT_ECAM_LAST_BUS) */
    {
        uint32_t v = 0;
        assert_false(iobus_dispatch(&f->vm.mmio, LAYOUT_ECAM_BASE + (1 << 20), &v, 4, false));
    }
}

static void test_readonly_fields_and_hostile_accesses(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 0, disabled = 0x00000000;

    cfg1_write(f, 0, 0, 0xdeadbeef, 4);                    /* ids are read-only */
    assert_int_equal(cfg1_read(f, 0, 0, 4), 0x00081b36);
    /* misaligned and odd-sized accesses are dropped */
    assert_true(iobus_dispatch(&f->vm.mmio, LAYOUT_ECAM_BASE + 1, &v, 2, false));
    assert_int_equal(v & 0xffff, 0xffff);
    v = 0;
    assert_true(iobus_dispatch(&f->vm.mmio, LAYOUT_ECAM_BASE, &v, 3, false));
    assert_int_equal(v & 0xffffff, 0xffffff);
    /* the enable bit gates the data port; byte writes don't latch 0xcf8 */
    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &disabled, 4, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfc, &v, 4, false));
    assert_int_equal(v, 0xffffffff);
    v = 0x01;
    assert_true(iobus_dispatch(&f->vm.pio, 0xcfb, &v, 1, true));
    assert_true(iobus_dispatch(&f->vm.pio, 0xcf8, &v, 4, false));
    assert_int_equal(v, 0);
    /* the last dword of the extended space is reachable, past it nothing is mapped */
    assert_int_equal(ecam_read(f, 0, 0xffc, 4), 0);
}

static void test_bar_sizing_and_placement(void **state)
{
    struct fixture *f = *state;
    uint32_t bar0, bar1;

    add_test_device(f);
    assert_int_equal(f->pdev.slot, 1);
    assert_int_equal(cfg1_read(f, 1, 0, 4), 0x100e8086);
    assert_int_equal(cfg1_read(f, 1, 0x3c, 1), pci_intx_gsi(1, 1));

    bar0 = cfg1_read(f, 1, 0x10, 4);
    bar1 = cfg1_read(f, 1, 0x14, 4);
    assert_true(bar0 >= LAYOUT_MMIO32_BASE && bar0 < LAYOUT_MMIO32_BASE + LAYOUT_MMIO32_SIZE);
    assert_int_equal(bar0 & 0x1ffff, 0);                    /* aligned to its size */
    assert_int_equal(bar1 & 0x3, 0x1);                      /* I/O flag */
    assert_int_equal(cfg1_read(f, 1, 0x18, 4) & 0xf, 0xc);  /* 64-bit, prefetchable */

    /* sizing: all ones reads back the size mask, flags untouched */
    cfg1_write(f, 1, 0x10, 0xffffffff, 4);
    assert_int_equal(cfg1_read(f, 1, 0x10, 4), 0xfffe0000);
    cfg1_write(f, 1, 0x14, 0xffffffff, 4);
    assert_int_equal(cfg1_read(f, 1, 0x14, 4), 0xffffffc1);
    cfg1_write(f, 1, 0x18, 0xffffffff, 4);
    cfg1_write(f, 1, 0x1c, 0xffffffff, 4);
    assert_int_equal(cfg1_read(f, 1, 0x18, 4), 0xffffc00c);
    assert_int_equal(cfg1_read(f, 1, 0x1c, 4), 0xffffffff);
    cfg1_write(f, 1, 0x10, bar0, 4);
    assert_int_equal(cfg1_read(f, 1, 0x10, 4), bar0);
}

static void test_command_register_maps_bars(void **state)
{
    struct fixture *f = *state;
    uint32_t bar0, v = 0;

    add_test_device(f);
    bar0 = cfg1_read(f, 1, 0x10, 4);
    /* decoding off: nothing answers at the BAR */
    assert_false(iobus_dispatch(&f->vm.mmio, bar0 + 0x8, &v, 4, false));

    cfg1_write(f, 1, 0x04, 0x0002, 2);                      /* memory space on */
    assert_true(iobus_dispatch(&f->vm.mmio, bar0 + 0x8, &v, 4, false));
    assert_int_equal(f->bar_calls, 1);
    assert_int_equal(f->last_bar, 0);
    assert_int_equal(f->last_offset, 8);
    assert_int_equal(atomic_load(&f->dev.stats.mmio_accesses), 1);

    /* moving the BAR moves the mapping */
    cfg1_write(f, 1, 0x10, LAYOUT_MMIO32_BASE + 0x1000000, 4);
    assert_false(iobus_dispatch(&f->vm.mmio, bar0 + 0x8, &v, 4, false));
    assert_true(iobus_dispatch(&f->vm.mmio, LAYOUT_MMIO32_BASE + 0x1000000 + 0x1fffc, &v, 4, false));
    assert_int_equal(f->last_offset, 0x1fffc);

    /* the I/O BAR needs the I/O enable bit */
    assert_false(iobus_dispatch(&f->vm.pio, cfg1_read(f, 1, 0x14, 4) & ~3u, &v, 1, false));
    cfg1_write(f, 1, 0x04, 0x0003, 2);
    assert_true(iobus_dispatch(&f->vm.pio, (cfg1_read(f, 1, 0x14, 4) & ~3u) + 0x3f, &v, 1, false));
    assert_int_equal(f->last_bar, 1);

    /* off again: both disappear */
    cfg1_write(f, 1, 0x04, 0x0000, 2);
    assert_false(iobus_dispatch(&f->vm.mmio, LAYOUT_MMIO32_BASE + 0x1000000, &v, 4, false));
}

static void test_bar_over_another_range_stays_unmapped(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 0;

    add_test_device(f);
    /* the guest points BAR0 at the ECAM window, then enables decoding */
    cfg1_write(f, 1, 0x10, LAYOUT_ECAM_BASE, 4);
    cfg1_write(f, 1, 0x04, 0x0002, 2);
    assert_false(f->pdev.bars[0].mapped);
    /* config space still works: the ECAM range was not displaced */
    assert_int_equal(ecam_read(f, 1, 0, 4), 0x100e8086);
    assert_int_equal(f->bar_calls, 0);
    (void)v;
}

static void test_slots_run_out(void **state)
{
    struct fixture *f = *state;
    static struct pci_device many[PCI_SLOTS];
    int added = 0;

    for (int i = 0; i < PCI_SLOTS; i++) {
        pci_device_init(&many[i], 0x1af4, 0x1000, 0x020000, 0, 0);
        if (pci_device_add(f->vm.pci, &many[i], -1) == 0)
            added++;
        else
            break;
    }
    assert_int_equal(added, PCI_SLOTS - 1);                 /* slot 0 is the host bridge */
    assert_int_equal(pci_device_add(f->vm.pci, &many[0], 0), -ENOSPC);
}

static void test_capability_list_and_intx(void **state)
{
    struct fixture *f = *state;
    uint8_t a, b;

    f->pdev.dev = &f->dev;
    pci_device_init(&f->pdev, 0x8086, 0x100e, 0x020000, 0, 0);
    f->pdev.config[0x3d] = 1;
    a = pci_add_capability(&f->pdev, 0x05, 14);
    b = pci_add_capability(&f->pdev, 0x11, 12);
    assert_int_equal(a, 0x40);
    assert_int_equal(b, 0x50);                              /* dword aligned after a */
    assert_int_equal(pci_add_capability(&f->pdev, 0x09, 200), 0);   /* does not fit */
    assert_int_equal(pci_device_add(f->vm.pci, &f->pdev, 3), 0);
    assert_true(cfg1_read(f, 3, 0x06, 2) & 0x10);           /* capability list bit */
    assert_int_equal(cfg1_read(f, 3, 0x34, 1), 0x50);       /* newest first */
    assert_int_equal(cfg1_read(f, 3, 0x50, 2), 0x4011);
    assert_int_equal(cfg1_read(f, 3, 0x40, 2), 0x0005);     /* end of list */

    /* INTx: status bit follows the device; counted once per assertion */
    pci_intx_set(&f->pdev, true);
    assert_true(cfg1_read(f, 3, 0x06, 2) & 0x08);
    pci_intx_set(&f->pdev, true);
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 1);
    pci_intx_set(&f->pdev, false);
    assert_false(cfg1_read(f, 3, 0x06, 2) & 0x08);
    cfg1_write(f, 3, 0x06, 0xffff, 2);                      /* status is not guest-writable */
    assert_int_equal(cfg1_read(f, 3, 0x06, 2), 0x10);
}

static void msix_write(struct pci_msix *m, uint64_t off, uint32_t v)
{
    assert_true(pci_msix_bar_access(m, 0, off, &v, 4, true));
}

static void test_msix_masking_and_pending(void **state)
{
    struct fixture *f = *state;
    static struct pci_msix m;
    uint64_t pba = 0;
    uint32_t v = 0;

    f->pdev.dev = &f->dev;
    pci_device_init(&f->pdev, 0x1b36, 0x0010, 0x010802, 0, 0);
    pci_device_set_bar(&f->pdev, 0, PCI_BAR_MEM64, 0x4000, false);
    assert_int_equal(pci_msix_init(&m, &f->pdev, NULL, 4, 0, 0x2000, 0x3000), 0);
    assert_int_equal(pci_device_add(f->vm.pci, &f->pdev, 2), 0);
    assert_int_equal(cfg1_read(f, 2, m.cap + 2, 2), 3);          /* table size - 1 */
    assert_int_equal(cfg1_read(f, 2, m.cap + 4, 4), 0x2000);     /* offset | BIR 0 */

    /* the device's own registers are not the table's */
    assert_false(pci_msix_bar_access(&m, 0, 0x1000, &v, 4, false));
    assert_false(pci_msix_bar_access(&m, 1, 0x2000, &v, 4, false));

    /* disabled: nothing happens, nothing pends */
    pci_msix_notify(&m, 1);
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 0);

    cfg1_write(f, 2, m.cap + 2, 0x8000, 2);                     /* enable */
    assert_true(pci_msix_enabled(&m));
    pci_msix_notify(&m, 1);                                     /* vectors start masked */
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 0);
    assert_true(pci_msix_bar_access(&m, 0, 0x3000, &pba, 8, false));
    assert_int_equal(pba, 0x2);

    msix_write(&m, 0x2000 + 16 + 0, 0xfee00000);
    msix_write(&m, 0x2000 + 16 + 8, 0x41);
    msix_write(&m, 0x2000 + 16 + 12, 0);                        /* unmask: pending fires */
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 1);
    assert_true(pci_msix_bar_access(&m, 0, 0x3000, &pba, 8, false));
    assert_int_equal(pba, 0);

    /* function mask holds everything back until cleared */
    cfg1_write(f, 2, m.cap + 2, 0xc000, 2);
    pci_msix_notify(&m, 1);
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 1);
    cfg1_write(f, 2, m.cap + 2, 0x8000, 2);
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), 2);

    /* hostile: out-of-range vectors, odd sizes, PBA writes */
    pci_msix_notify(&m, 4);
    pci_msix_notify(&m, 0xffff);
    v = 0;
    assert_true(pci_msix_bar_access(&m, 0, 0x2001, &v, 2, false));
    assert_int_equal(v & 0xffff, 0xffff);
    v = 0xffffffff;
    assert_true(pci_msix_bar_access(&m, 0, 0x3000, &v, 4, true));
    assert_true(pci_msix_bar_access(&m, 0, 0x3000, &pba, 8, false));
    assert_int_equal(pba, 0);
    /* reserved vector-control bits do not stick */
    msix_write(&m, 0x2000 + 12, 0xfffffffe);
    assert_true(pci_msix_bar_access(&m, 0, 0x2000 + 12, &v, 4, false));
    assert_int_equal(v, 0);
    pci_msix_destroy(&m);
}

static void test_dma_needs_bus_mastering(void **state)
{
    struct fixture *f = *state;
    struct guest_mem mem;

    assert_int_equal(guest_mem_create(&mem, 64 << 20, HUGEPAGES_OFF), 0);
    add_test_device(f);
    assert_null(pci_dma_ptr(&f->pdev, &mem, 0x1000, 4096));      /* reset state: off */
    cfg1_write(f, 1, 0x04, 0x0004, 2);
    assert_ptr_equal(pci_dma_ptr(&f->pdev, &mem, 0x1000, 4096), mem.base + 0x1000);
    assert_null(pci_dma_ptr(&f->pdev, &mem, (64 << 20) - 4096, 4097));   /* still RAM only */
    cfg1_write(f, 1, 0x04, 0x0002, 2);
    assert_null(pci_dma_ptr(&f->pdev, &mem, 0x1000, 4096));
    assert_non_null(pci_dma_ptr(NULL, &mem, 0x1000, 4096));
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_bridge_both_mechanisms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_fields_and_hostile_accesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_and_placement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_register_maps_bars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_over_another_range_stays_unmapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capability_list_and_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_masking_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_needs_bus_mastering, setup, teardown),
    };
    return cmocka_run_group_tests_name("pci", tests, NULL, NULL);
}
