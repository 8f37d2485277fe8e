/* 82540EM against hostile guests: no DMA without bus mastering, lying
 * descriptors and rings, and random register and descriptor fuzzing. The
 * model may drop anything but must not touch memory outside RAM or its
 * buffers (ASan/UBSan watch), and keeps working afterwards. */
#include "e1000_fixture.h"

static void test_no_dma_without_bus_master(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[64] = { 0 };
    unsigned kicks;

    memcpy(frame, nic_mac, 6);
    memcpy(ram(f, TX_BUF, 64), frame, 64);
    setup_tx(f, 8);
    setup_rx(f, 8, RCTL_SECRC, 7);
    pci_command(f, 0x0003);
    tx_legacy(f, 0, TX_BUF, 64, TXD_CMD_EOP | TXD_CMD_RS);
    wr(f, REG_TDT, 1);
    host_sends(f, frame, sizeof(frame));
    e1000_service(f->e);
    e1000_rx_ready(f->e);
    assert_int_equal(f->fb.n_sent, 0);
    assert_false(tx_done(f, 0));
    assert_int_equal(rx_desc(f, 0)[12], 0);
    assert_false(f->fb.notify);   /* the frame waits in the host queue */
    /* the driver turns bus mastering on: the event loop is asked to look */
    kicks = f->kicks;
    pci_command(f, 0x0007);
    assert_int_equal(f->kicks, kicks + 1);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, 1);
    assert_true(tx_done(f, 0));
    assert_true(rx_desc(f, 0)[12] & RXD_STAT_EOP);
    assert_true(f->fb.notify);
}

static void test_hostile_descriptors(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[64] = { 0 };

    memcpy(frame, peer_mac, 6);
    memcpy(ram(f, TX_BUF, 64), frame, 64);
    setup_tx(f, 8);
    /* a buffer outside RAM, one that runs off the end of RAM, then a good one */
    tx_legacy(f, 0, OUTSIDE, 64, TXD_CMD_EOP | TXD_CMD_RS);
    tx_legacy(f, 1, RAM_SIZE - 32, 64, TXD_CMD_EOP | TXD_CMD_RS);
    tx_legacy(f, 2, TX_BUF, 64, TXD_CMD_EOP | TXD_CMD_RS);
    wr(f, REG_TDT, 3);
    e1000_service(f->e);
    assert_true(tx_done(f, 0));
    assert_true(tx_done(f, 1));
    assert_true(tx_done(f, 2));
    assert_int_equal(f->fb.n_sent, 1);
    assert_int_equal(f->e->tx_dropped, 2);

    /* a packet over 64 KiB, gathered from several descriptors: dropped */
    tx_legacy(f, 3, TX_BUF, 40000, 0);
    tx_legacy(f, 4, TX_BUF, 40000, TXD_CMD_EOP | TXD_CMD_RS);
    wr(f, REG_TDT, 5);
    e1000_service(f->e);
    assert_true(tx_done(f, 4));
    assert_int_equal(f->fb.n_sent, 1);
    assert_int_equal(f->e->tx_dropped, 3);

    /* TSO with absurd contexts: MSS 0, header 0, header beyond the packet,
     * checksum offset beyond the header */
    {
        static const struct { uint8_t hdrlen; uint16_t mss; uint8_t tucso; } bad[] = {
            { HDRS, 0, 50 }, { 0, 1448, 50 }, { 200, 1448, 50 }, { HDRS, 1448, 250 },
        };
        for (unsigned i = 0; i < 4; i++) {
            unsigned t = 5 + i * 2;
            tx_context(f, t % 8, 14, 24, 33, 34, bad[i].tucso, 0, 10,
                       TUCMD_TCP | TUCMD_IP | TXD_CMD_TSE, bad[i].hdrlen, bad[i].mss);
            tx_data(f, (t + 1) % 8, TX_BUF, 64, TXD_CMD_TSE | TXD_CMD_EOP | TXD_CMD_RS,
                    TXD_POPTS_TXSM | TXD_POPTS_IXSM, 0);
            wr(f, REG_TDT, (t + 2) % 8);
            e1000_service(f->e);
            assert_true(tx_done(f, (t + 1) % 8));
        }
        assert_int_equal(f->fb.n_sent, 1);
        assert_int_equal(rd(f, STAT_TSCTFC), 4);
    }

    /* checksum offload whose offsets lie beyond the packet: dropped */
    tx_context(f, 5 % 8, 0, 0, 0, 34, 200, 0, 0, TUCMD_TCP, 0, 0);
    tx_data(f, 6 % 8, TX_BUF, 64, TXD_CMD_EOP | TXD_CMD_RS, TXD_POPTS_TXSM, 0);
    wr(f, REG_TDT, 7);
    e1000_service(f->e);
    assert_true(tx_done(f, 6));
    assert_int_equal(f->fb.n_sent, 1);

    /* TDT beyond the ring: ignored */
    {
        uint32_t tdt = rd(f, REG_TDT);
        wr(f, REG_TDT, 100);
        assert_int_equal(rd(f, REG_TDT), tdt);
    }

    /* RX into a buffer outside RAM: the descriptor completes with an error */
    memcpy(frame, nic_mac, 6);
    setup_rx(f, 8, RCTL_SECRC, 7);
    put_le64(rx_desc(f, 0), OUTSIDE);
    host_sends(f, frame, sizeof(frame));
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_desc(f, 0)[12], RXD_STAT_DD | RXD_STAT_EOP);
    assert_int_equal(rx_desc(f, 0)[13], RXD_ERR_RXE);
    assert_int_equal(rx_len(f, 0), 0);
    assert_true(rx_desc(f, 1)[12] & RXD_STAT_EOP);
    assert_int_equal(rx_len(f, 1), 64 + 0);
    assert_int_equal(f->e->rx_dropped, 1);
}

static void test_hostile_rings(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[64] = { 0 };

    memcpy(ram(f, TX_BUF, 64), frame, 64);
    setup_tx(f, 8);
    tx_legacy(f, 0, TX_BUF, 64, TXD_CMD_EOP | TXD_CMD_RS);
    /* ring outside RAM */
    wr(f, REG_TDBAL, (uint32_t)OUTSIDE);
    wr(f, REG_TDT, 1);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_TDH), 0);
    /* ring that starts in RAM and runs past its end */
    wr(f, REG_TDBAL, (uint32_t)(RAM_SIZE - 64));
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_TDH), 0);
    /* 64-bit base above RAM */
    wr(f, REG_TDBAL, (uint32_t)TX_RING);
    wr(f, REG_TDBAH, 1);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_TDH), 0);
    /* length not a multiple of 128 */
    wr(f, REG_TDBAH, 0);
    wr(f, REG_TDLEN, 8 * 16 + 16);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_TDH), 0);
    /* head beyond the ring */
    wr(f, REG_TDLEN, 128);
    wr(f, REG_TDH, 50);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_TDH), 50);
    assert_int_equal(f->fb.n_sent, 0);
    /* fixed: it runs */
    wr(f, REG_TDH, 0);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, 1);

    /* RX ring outside RAM: the frame waits, nothing is written anywhere */
    memcpy(frame, nic_mac, 6);
    setup_rx(f, 8, RCTL_SECRC, 7);
    wr(f, REG_RDBAL, (uint32_t)OUTSIDE);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rd(f, REG_RDH), 0);
    wr(f, REG_RDLEN, 100);
    wr(f, REG_RDBAL, (uint32_t)RX_RING);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_RDH), 0);
    wr(f, REG_RDLEN, 128);
    wr(f, REG_RDT, 7);
    e1000_service(f->e);
    assert_int_equal(rd(f, REG_RDH), 1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void test_hostile_register_fuzz(void **state)
{
    struct fixture *f = *state;
    static const uint32_t sizes[] = { 1, 2, 4, 8, 3 };
    uint8_t frame[80];

    /* fill RAM near the rings with junk descriptors so fuzzed rings find some */
    for (uint64_t a = 0; a < 0x40000; a += 4) {
        uint32_t v = rnd();
        memcpy(ram(f, a, 4), &v, 4);
    }
    for (int round = 0; round < 3; round++) {
        for (uint32_t off = 0; off < E1000_MMIO_SIZE; off += 4) {
            uint32_t v = rnd();
            /* keep rings in the first 256 KiB now and then, so they run */
            if ((off == REG_TDBAL || off == REG_RDBAL) && (v & 1))
                v &= 0x3ff80;
            if ((off == REG_TDLEN || off == REG_RDLEN) && (v & 1))
                v &= 0x1f80;
            if (off == REG_TDBAH || off == REG_RDBAH)
                v = (v & 3) ? 0 : v;
            wr(f, off, v);
            if ((off & 0xfff) == 0) {
                e1000_service(f->e);
                e1000_rx_ready(f->e);
            }
        }
        for (int i = 0; i < 20000; i++) {
            uint64_t v = (uint64_t)rnd() << 32 | rnd();
            uint32_t len = sizes[rnd() % 5], off = rnd() % (E1000_MMIO_SIZE + 16);
            int bar = (int)(rnd() % 3);
            f->pdev->ops->bar_io(f->pdev, bar, bar == 1 ? off % 0x50 : off, &v, len,
                                 rnd() & 1);
            if ((i & 255) == 0) {
                host_sends(f, &v, rnd() % 8);
                memset(frame, (int)rnd(), sizeof(frame));
                host_sends(f, frame, 14 + rnd() % (sizeof(frame) - 14));
                e1000_service(f->e);
                e1000_rx_ready(f->e);
                while (host_queued(f) > MAX_FRAMES / 2) {
                    uint8_t junk[128];
                    fb_recv(&f->fb.be, junk, sizeof(junk));
                }
            }
        }
    }

    /* reset, then the driver's TX path works */
    wr(f, REG_CTRL, CTRL_RST);
    assert_int_equal(rd(f, REG_ICR), 0);
    assert_false(f->pdev->intx_level);
    assert_int_equal(rd(f, REG_RA + 4), (uint32_t)(0x5634 | RAH_AV));
    {
        unsigned before = f->fb.n_sent;
        memset(frame, 0x42, sizeof(frame));
        memcpy(frame, peer_mac, 6);
        memcpy(ram(f, TX_BUF, sizeof(frame)), frame, sizeof(frame));
        setup_tx(f, 8);
        tx_legacy(f, 0, TX_BUF, sizeof(frame), TXD_CMD_EOP | TXD_CMD_RS | TXD_CMD_IFCS);
        wr(f, REG_TDT, 1);
        e1000_service(f->e);
        assert_int_equal(f->fb.n_sent, before + 1);
        if (before + 1 <= MAX_FRAMES)
            assert_memory_equal(f->fb.sent[before].data, frame, sizeof(frame));
        assert_true(tx_done(f, 0));
    }
}

/* Rings full of random descriptors (buffers in and out of RAM, random
 * commands, types, contexts, TSO parameters) and random frames (some shaped
 * like VLAN-tagged IPv4 TCP with lying lengths), under random RCTL/TCTL
 * settings: the model may drop anything but must not touch memory outside
 * RAM or its buffers (ASan/UBSan watch), and keeps working afterwards. */
static void test_hostile_descriptor_fuzz(void **state)
{
    struct fixture *f = *state;
    static uint8_t frame[2100];
    unsigned sent_before;

    for (int round = 0; round < 400; round++) {
        unsigned count = 8u << (rnd() % 4);

        setup_tx(f, count);
        setup_rx(f, count, 0, 0);
        for (unsigned i = 0; i < count; i++) {
            uint8_t *t = tx_desc(f, i), *r = rx_desc(f, i);
            uint64_t a = rnd() % 4 ? rnd() % (RAM_SIZE + 0x10000) : (uint64_t)rnd() << 32 | rnd();
            for (int k = 0; k < 16; k++)
                t[k] = (uint8_t)rnd();
            if (rnd() % 4)
                put_le64(t, a);
            if (rnd() % 2)                      /* lengths that mostly fit */
                put_le16(t + 8, (uint16_t)(rnd() % 3000));
            if (rnd() % 3 == 0)                 /* a context with small offsets */
                tx_context(f, i, (uint8_t)(rnd() % 64), (uint8_t)(rnd() % 80),
                           (uint16_t)(rnd() % 100), (uint8_t)(rnd() % 80),
                           (uint8_t)(rnd() % 100), (uint16_t)(rnd() % 200), rnd(),
                           (uint8_t)rnd(), (uint8_t)(rnd() % 120), (uint16_t)(rnd() % 3000));
            put_le64(r, rnd() % 4 ? rnd() % (RAM_SIZE + 0x10000) : (uint64_t)rnd() << 32 | rnd());
        }
        wr(f, REG_RCTL, rnd() | RCTL_EN);
        wr(f, REG_RXCSUM, rnd());
        wr(f, REG_CTRL, rnd() & ~(CTRL_RST | CTRL_PHY_RST));
        wr(f, REG_TCTL, rnd() | TCTL_EN);
        wr(f, REG_TDT, rnd() % count);
        wr(f, REG_RDT, rnd() % count);
        for (int k = 0; k < 4; k++) {
            size_t len = rnd() % sizeof(frame);
            for (size_t i = 0; i < len; i++)
                frame[i] = (uint8_t)rnd();
            if (rnd() % 2 && len > 60) {
                memcpy(frame, nic_mac, 6);
                wbe16(frame + 12, rnd() % 2 ? 0x8100 : 0x0800);
                wbe16(frame + 16, 0x0800);
                frame[14] = frame[18] = (uint8_t)(0x40 | rnd() % 16);
            }
            host_sends(f, frame, len);
        }
        e1000_service(f->e);
        e1000_rx_ready(f->e);
        e1000_service(f->e);
        while (host_queued(f)) {
            uint8_t junk[8];
            fb_recv(&f->fb.be, junk, sizeof(junk));
        }
    }
    assert_true(f->fb.n_sent > 0);                     /* some junk made it out */
    assert_true(f->e->tx_dropped + f->e->rx_dropped > 0);

    wr(f, REG_CTRL, CTRL_RST);
    sent_before = f->fb.n_sent;
    memset(frame, 0x42, 80);
    memcpy(ram(f, TX_BUF, 80), frame, 80);
    setup_tx(f, 8);
    tx_legacy(f, 0, TX_BUF, 80, TXD_CMD_EOP | TXD_CMD_RS);
    wr(f, REG_TDT, 1);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, sent_before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_dma_without_bus_master, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_register_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_descriptor_fuzz, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
