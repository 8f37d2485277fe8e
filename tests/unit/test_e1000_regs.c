/* 82540EM model, driven through its registers the way Linux's e1000 driver
 * drives it: PCI identity and BARs, EEPROM (bit-banged and EERD), PHY and
 * link, interrupts, statistics, and refusing a missing tap interface. */
#include "e1000_fixture.h"

static void test_pci_identity_and_bars(void **state)
{
    struct fixture *f = *state;
    uint8_t devfn = (uint8_t)(f->pdev->slot << 3);
    uint32_t v = 0;
    uint64_t bar0, bar1;

    pci_config_access(f->vm.pci, 0, devfn, 0, &v, 4, false);
    assert_int_equal(v, 0x100e8086);
    pci_config_access(f->vm.pci, 0, devfn, 0x2c, &v, 4, false);
    assert_int_equal(v, 0x001e8086);
    pci_config_access(f->vm.pci, 0, devfn, 0x08, &v, 4, false);
    assert_int_equal(v >> 8, 0x020000);
    assert_int_equal(f->pdev->config[0x3d], 1);
    assert_int_equal(f->pdev->bars[0].type, PCI_BAR_MEM32);
    assert_int_equal(f->pdev->bars[0].size, 0x20000);
    assert_int_equal(f->pdev->bars[1].type, PCI_BAR_IO);
    assert_int_equal(f->pdev->bars[1].size, 0x40);

    /* Through the buses, as the guest sees it, once decoding is on. */
    bar0 = f->pdev->bars[0].addr;
    bar1 = f->pdev->bars[1].addr;
    assert_true(iobus_dispatch(&f->vm.mmio, bar0 + REG_STATUS, &v, 4, false));
    assert_int_equal(v & (STATUS_LU | STATUS_FD | STATUS_SPEED_1000),
                     STATUS_LU | STATUS_FD | STATUS_SPEED_1000);
    /* IOADDR/IODATA: write IMS through BAR1, read it back through BAR0 */
    v = REG_IMS;
    assert_true(iobus_dispatch(&f->vm.pio, bar1, &v, 4, true));
    v = ICR_RXT0;
    assert_true(iobus_dispatch(&f->vm.pio, bar1 + 4, &v, 4, true));
    assert_int_equal(rd(f, REG_IMS), ICR_RXT0);
    /* the driver resets the 82540 through IODATA */
    v = REG_CTRL;
    assert_true(iobus_dispatch(&f->vm.pio, bar1, &v, 4, true));
    v = rd(f, REG_CTRL) | CTRL_RST;
    assert_true(iobus_dispatch(&f->vm.pio, bar1 + 4, &v, 4, true));
    assert_int_equal(rd(f, REG_IMS), 0);
    assert_int_equal(rd(f, REG_CTRL) & CTRL_RST, 0);
    assert_true(atomic_load(&f->dev.stats.mmio_accesses) >= 1);
    assert_true(atomic_load(&f->dev.stats.pio_accesses) >= 4);
}

/* EEPROM, as e1000_read_eeprom does it on an 82540 (microwire). */
static void ee_clock(struct fixture *f, uint32_t *eecd)
{
    *eecd |= EECD_SK;
    wr(f, REG_EECD, *eecd);
    *eecd &= ~EECD_SK;
    wr(f, REG_EECD, *eecd);
}

static void ee_shift_out(struct fixture *f, uint32_t *eecd, uint16_t data, unsigned count)
{
    for (uint32_t mask = 1u << (count - 1); mask; mask >>= 1) {
        *eecd &= ~EECD_DI;
        if (data & mask)
            *eecd |= EECD_DI;
        wr(f, REG_EECD, *eecd);
        ee_clock(f, eecd);
    }
    *eecd &= ~EECD_DI;
    wr(f, REG_EECD, *eecd);
}

static uint16_t ee_shift_in(struct fixture *f, uint32_t *eecd)
{
    uint16_t data = 0;

    *eecd = rd(f, REG_EECD) & ~(EECD_DO | EECD_DI);
    for (int i = 0; i < 16; i++) {
        data = (uint16_t)(data << 1);
        *eecd |= EECD_SK;
        wr(f, REG_EECD, *eecd);
        *eecd = rd(f, REG_EECD) & ~EECD_DI;
        if (*eecd & EECD_DO)
            data |= 1;
        *eecd &= ~EECD_SK;
        wr(f, REG_EECD, *eecd);
    }
    return data;
}

static void ee_read_words(struct fixture *f, unsigned first, unsigned n, uint16_t *out)
{
    uint32_t eecd = rd(f, REG_EECD);

    assert_true(eecd & EECD_PRES);
    assert_false(eecd & (1u << 9));   /* EECD.SIZE clear: 64 words, 6 address bits */
    eecd |= EECD_REQ;
    wr(f, REG_EECD, eecd);
    eecd = rd(f, REG_EECD);
    assert_true(eecd & EECD_GNT);
    eecd &= ~(EECD_DI | EECD_SK);
    wr(f, REG_EECD, eecd);
    eecd |= EECD_CS;
    wr(f, REG_EECD, eecd);
    for (unsigned i = 0; i < n; i++) {
        ee_shift_out(f, &eecd, 0x6, 3);              /* start bit + READ */
        ee_shift_out(f, &eecd, (uint16_t)(first + i), 6);
        out[i] = ee_shift_in(f, &eecd);
        /* standby between words */
        eecd &= ~(EECD_CS | EECD_SK);
        wr(f, REG_EECD, eecd);
        eecd |= EECD_SK;
        wr(f, REG_EECD, eecd);
        eecd |= EECD_CS;
        wr(f, REG_EECD, eecd);
        eecd &= ~EECD_SK;
        wr(f, REG_EECD, eecd);
    }
    eecd &= ~(EECD_CS | EECD_DI);
    wr(f, REG_EECD, eecd);
    ee_clock(f, &eecd);
    eecd &= ~EECD_REQ;
    wr(f, REG_EECD, eecd);
}

static void check_eeprom(const uint16_t *w)
{
    uint16_t sum = 0;

    for (int i = 0; i < 64; i++)
        sum = (uint16_t)(sum + w[i]);
    assert_int_equal(sum, 0xbaba);
    assert_int_equal(w[0], 0x5452);
    assert_int_equal(w[1], 0x1200);
    assert_int_equal(w[2], 0x5634);
    assert_int_equal(w[0x0d], 0x100e);
    assert_int_equal(w[0x0e], 0x8086);
}

static void test_eeprom_bitbang(void **state)
{
    struct fixture *f = *state;
    uint16_t w[64], again[3];

    ee_read_words(f, 0, 64, w);
    check_eeprom(w);
    /* a read starting in the middle gets the same words */
    ee_read_words(f, 1, 3, again);
    assert_memory_equal(again, w + 1, sizeof(again));
    /* leading zero bits before the start bit are ignored by a microwire part */
    {
        uint32_t eecd = rd(f, REG_EECD) | EECD_REQ | EECD_CS;
        wr(f, REG_EECD, eecd & ~EECD_CS);
        wr(f, REG_EECD, eecd);
        ee_shift_out(f, &eecd, 0x06, 5);   /* 00 110 */
        ee_shift_out(f, &eecd, 0x0e, 6);
        assert_int_equal(ee_shift_in(f, &eecd), 0x8086);
        wr(f, REG_EECD, 0);
    }
}

static void test_eeprom_eerd(void **state)
{
    struct fixture *f = *state;
    uint16_t w[64];

    for (uint32_t i = 0; i < 64; i++) {
        uint32_t v;
        wr(f, REG_EERD, i << EERD_ADDR_SHIFT | EERD_START);
        v = rd(f, REG_EERD);
        assert_true(v & EERD_DONE);
        w[i] = (uint16_t)(v >> EERD_DATA_SHIFT);
    }
    check_eeprom(w);
}

static uint32_t mdic(struct fixture *f, unsigned phy, unsigned r, uint32_t op, uint16_t data)
{
    wr(f, REG_MDIC, data | r << MDIC_REG_SHIFT | phy << MDIC_PHY_SHIFT | op);
    return rd(f, REG_MDIC);
}

static void test_phy_link_up(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    v = mdic(f, 1, 2, MDIC_OP_READ, 0);
    assert_true(v & MDIC_READY);
    assert_false(v & MDIC_ERROR);
    assert_int_equal(v & 0xffff, 0x0141);
    assert_int_equal(mdic(f, 1, 3, MDIC_OP_READ, 0) & 0xfff0, 0x0c20);
    v = mdic(f, 1, 1, MDIC_OP_READ, 0) & 0xffff;
    assert_true(v & 0x0004);   /* link */
    assert_true(v & 0x0020);   /* autonegotiation complete */
    v = mdic(f, 1, 0x11, MDIC_OP_READ, 0) & 0xffff;
    assert_int_equal(v & 0xc000, 0x8000);   /* 1000 Mb/s */
    assert_true(v & 0x2000);                /* full duplex */
    assert_true(v & 0x0800);                /* resolved */
    assert_true(v & 0x0400);                /* link */
    assert_true(mdic(f, 1, 0x0a, MDIC_OP_READ, 0) & 0x0800);   /* partner 1000 full */

    /* writes: advertisement sticks, reset and restart-autoneg self-clear */
    mdic(f, 1, 4, MDIC_OP_WRITE, 0x0de1);
    assert_int_equal(mdic(f, 1, 4, MDIC_OP_READ, 0) & 0xffff, 0x0de1);
    mdic(f, 1, 0, MDIC_OP_WRITE, 0x1340 | 0x8000);
    assert_int_equal(mdic(f, 1, 0, MDIC_OP_READ, 0) & 0xffff, 0x1140);
    /* status and ids are read-only */
    mdic(f, 1, 1, MDIC_OP_WRITE, 0);
    assert_true(mdic(f, 1, 1, MDIC_OP_READ, 0) & 0x0004);
    /* only PHY address 1 answers */
    assert_true(mdic(f, 2, 2, MDIC_OP_READ, 0) & MDIC_ERROR);
    /* MDIC.I raises MDAC */
    wr(f, REG_IMS, ICR_MDAC);
    mdic(f, 1, 2, MDIC_OP_READ | MDIC_INT_EN, 0);
    assert_true(f->pdev->intx_level);
    assert_true(rd(f, REG_ICR) & ICR_MDAC);
    assert_false(f->pdev->intx_level);
    /* STATUS: copper link at 1000 full */
    v = rd(f, REG_STATUS);
    assert_int_equal(v & 0xc3, STATUS_LU | STATUS_FD | STATUS_SPEED_1000);
}

static void test_interrupts(void **state)
{
    struct fixture *f = *state;
    uint64_t irqs = atomic_load(&f->dev.stats.irqs_injected);
    uint32_t v;

    assert_false(f->pdev->intx_level);
    /* a cause with its mask bit clear: recorded, no interrupt */
    wr(f, REG_ICS, ICR_TXDW);
    assert_false(f->pdev->intx_level);
    /* unmasking it asserts the line */
    wr(f, REG_IMS, ICR_TXDW | ICR_RXT0);
    assert_true(f->pdev->intx_level);
    assert_true(f->pdev->config[0x06] & 0x08);   /* PCI status: interrupt */
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), irqs + 1);
    assert_int_equal(rd(f, REG_IMS), ICR_TXDW | ICR_RXT0);
    /* reading ICR returns the causes and INT_ASSERTED, clears, deasserts */
    v = rd(f, REG_ICR);
    assert_int_equal(v, ICR_TXDW | ICR_INT_ASSERTED);
    assert_false(f->pdev->intx_level);
    assert_int_equal(rd(f, REG_ICR), 0);
    /* IMC masks: the cause stays in ICR without INT_ASSERTED */
    wr(f, REG_IMC, ICR_RXT0);
    wr(f, REG_ICS, ICR_RXT0);
    assert_false(f->pdev->intx_level);
    assert_int_equal(rd(f, REG_ICR), ICR_RXT0);
    /* ICR write clears the bits written */
    wr(f, REG_ICS, ICR_TXDW | ICR_LSC);
    assert_true(f->pdev->intx_level);
    wr(f, REG_ICR, ICR_TXDW);
    assert_false(f->pdev->intx_level);
    assert_int_equal(rd(f, REG_ICR), ICR_LSC);
    assert_int_equal(atomic_load(&f->dev.stats.irqs_injected), irqs + 2);
    /* the driver's enable mask and a link-change kick, as in e1000_open */
    wr(f, REG_IMS, 0x9d);
    wr(f, REG_ICS, ICR_LSC);
    assert_true(f->pdev->intx_level);
    wr(f, REG_IMC, 0xffffffff);
    assert_false(f->pdev->intx_level);
}

static void test_statistics_clear_on_read(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[64] = { 0 };

    memcpy(frame, nic_mac, 6);
    setup_rx(f, 8, RCTL_SECRC, 7);
    host_sends(f, frame, sizeof(frame));
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rd(f, STAT_GPRC), 2);
    assert_int_equal(rd(f, STAT_GPRC), 0);
    assert_int_equal(rd(f, STAT_TPR), 2);
    assert_int_equal(rd(f, STAT_TPR), 0);
    assert_int_equal(rd(f, STAT_PRC127), 2);
    /* 64-bit counters: low then high, as e1000_update_stats reads them */
    assert_int_equal(rd(f, STAT_GORCL), 2 * 68);
    assert_int_equal(rd(f, STAT_GORCH), 0);
    assert_int_equal(rd(f, STAT_GORCL), 0);
    e1000_stat_add64(f->e, STAT_GORCL, 0x100000010ull);
    assert_int_equal(rd(f, STAT_GORCL), 0x10);
    assert_int_equal(rd(f, STAT_GORCH), 1);
    assert_int_equal(rd(f, STAT_GORCH), 0);
    /* every statistics register is readable and reads 0 once cleared */
    for (uint32_t off = REG_STATS_FIRST; off <= REG_STATS_LAST; off += 4)
        rd(f, off);
    for (uint32_t off = REG_STATS_FIRST; off <= REG_STATS_LAST; off += 4)
        assert_int_equal(rd(f, off), 0);
    /* writes do not set them */
    wr(f, STAT_GPRC, 5);
    assert_int_equal(rd(f, STAT_GPRC), 0);
    /* unknown registers read 0 and ignore writes */
    wr(f, 0x1f000, 0x12345678);
    assert_int_equal(rd(f, 0x1f000), 0);
}

static void never_called(void *opaque)
{
    (void)opaque;
    fail();
}

/* The VMM attaches to an existing tap and never creates one: a missing or
 * impossible name is refused before /dev/net/tun is touched. */
static void test_tap_refuses_missing_interface(void **state)
{
    struct eventloop *loop = eventloop_create();

    (void)state;
    assert_non_null(loop);
    assert_null(tap_open("net0", "nosuchtap0", loop, never_called, NULL));
    assert_null(tap_open("net0", "a-name-longer-than-ifnamsiz", loop, never_called, NULL));
    eventloop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_identity_and_bars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eeprom_bitbang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eeprom_eerd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phy_link_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statistics_clear_on_read, setup, teardown),
        cmocka_unit_test(test_tap_refuses_missing_interface),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
