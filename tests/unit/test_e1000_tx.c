/* 82540EM transmit path: legacy descriptors, checksum offload through
 * context descriptors, and TCP segmentation offload. Checksums are verified
 * by code independent of the model's. */
#include "e1000_fixture.h"

static void test_tx_legacy(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[100];
    unsigned kicks;

    setup_tx(f, 8);
    for (unsigned i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i + 1);
    memcpy(frame, peer_mac, 6);
    /* two buffers, one packet; a short ARP-sized packet after it */
    memcpy(ram(f, TX_BUF, 100), frame, 100);
    tx_legacy(f, 0, TX_BUF, 40, TXD_CMD_IFCS);
    tx_legacy(f, 1, TX_BUF + 40, 60, TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS);
    tx_legacy(f, 2, TX_BUF, 42, TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS);
    wr(f, REG_IMS, ICR_TXDW);
    e1000_service(f->e);   /* the event loop answers the TCTL.EN kick */
    kicks = f->kicks;
    wr(f, REG_TDT, 3);
    /* the vCPU only kicks: nothing is sent before the event loop runs */
    assert_int_equal(f->kicks, kicks + 1);
    assert_int_equal(f->fb.n_sent, 0);
    e1000_service(f->e);

    assert_int_equal(f->fb.n_sent, 2);
    assert_int_equal(f->fb.sent[0].len, 100);
    assert_memory_equal(f->fb.sent[0].data, frame, 100);
    assert_int_equal(f->fb.sent[1].len, 60);   /* padded (TCTL.PSP) */
    assert_memory_equal(f->fb.sent[1].data, frame, 42);
    for (unsigned i = 42; i < 60; i++)
        assert_int_equal(f->fb.sent[1].data[i], 0);
    /* DD only where RS asked for it */
    assert_false(tx_done(f, 0));
    assert_true(tx_done(f, 1));
    assert_true(tx_done(f, 2));
    assert_int_equal(rd(f, REG_TDH), 3);
    assert_true(f->pdev->intx_level);
    assert_int_equal(rd(f, REG_ICR) & (ICR_TXDW | ICR_TXQE), ICR_TXDW | ICR_TXQE);
    assert_int_equal(rd(f, STAT_GPTC), 2);
    assert_int_equal(rd(f, STAT_TPT), 2);
    assert_int_equal(rd(f, STAT_GOTCL), 104 + 64);
    assert_int_equal(rd(f, STAT_GOTCH), 0);
    assert_int_equal(rd(f, STAT_PTC64), 1);
    assert_int_equal(rd(f, STAT_PTC127), 1);

    /* TX disabled: TDT moves, nothing goes out until TCTL.EN */
    wr(f, REG_TCTL, 0);
    tx_legacy(f, 3, TX_BUF, 60, TXD_CMD_EOP | TXD_CMD_RS);
    wr(f, REG_TDT, 4);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, 2);
    wr(f, REG_TCTL, TCTL_EN);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, 3);
}

static void test_tx_checksum_offload(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[HDRS + 300], *ip, *tcp;
    size_t len = build_tcp(frame, peer_mac, 300, 1000, 0x18);
    uint64_t pseudo;
    const uint8_t *out;

    ip = frame + ETH_HLEN;
    tcp = ip + IP_HLEN;
    /* CHECKSUM_PARTIAL: the stack leaves the full pseudo-header sum in the
     * TCP checksum field; the IP checksum field is junk for IXSM to fix */
    pseudo = ref_sum(ip + 12, 8) + 6 + (IP_HLEN + TCP_HLEN + 300 - IP_HLEN);
    wbe16(tcp + 16, fold(pseudo));
    wbe16(ip + 10, 0);
    memcpy(ram(f, TX_BUF, len), frame, len);

    setup_tx(f, 8);
    tx_context(f, 0, ETH_HLEN, ETH_HLEN + 10, ETH_HLEN + IP_HLEN - 1, ETH_HLEN + IP_HLEN,
               ETH_HLEN + IP_HLEN + 16, 0, 0, TUCMD_TCP | TUCMD_IP, 0, 0);
    tx_data(f, 1, TX_BUF, 50, 0, TXD_POPTS_TXSM | TXD_POPTS_IXSM, 0);
    tx_data(f, 2, TX_BUF + 50, (uint32_t)len - 50, TXD_CMD_EOP | TXD_CMD_RS, 0, 0);
    wr(f, REG_TDT, 3);
    e1000_service(f->e);

    assert_int_equal(f->fb.n_sent, 1);
    out = f->fb.sent[0].data;
    assert_int_equal(f->fb.sent[0].len, len);
    assert_true(ipv4_header_ok(out + ETH_HLEN));
    assert_true(l4_checksum_ok(out + ETH_HLEN));
    assert_memory_equal(out + HDRS, frame + HDRS, 300);
    assert_true(tx_done(f, 2));

    /* UDP: a sum that comes out as 0 is sent as 0xffff */
    {
        uint8_t u[64] = { 0 };
        memcpy(u, peer_mac, 6);
        wbe16(u + 12, 0x0800);
        u[14] = 0x45;
        wbe16(u + 16, 28);
        u[23] = 17;
        /* UDP header at 34: checksum field at 40 holds a value that makes
         * the whole sum 0xffff */
        wbe16(u + 40, 0);
        wbe16(u + 40, (uint16_t)~fold(ref_sum(u + 34, 8)));
        memcpy(ram(f, TX_BUF + 0x1000, 42), u, 42);
        tx_context(f, 3, 0, 0, 0, 34, 40, 0, 0, TUCMD_IP, 0, 0);
        tx_data(f, 4, TX_BUF + 0x1000, 42, TXD_CMD_EOP, TXD_POPTS_TXSM, 0);
        wr(f, REG_TDT, 5);
        e1000_service(f->e);
        assert_int_equal(f->fb.n_sent, 2);
        assert_int_equal(be16(f->fb.sent[1].data + 40), 0xffff);
    }
    /* legacy descriptor with IC: checksum from CSS to the end, at CSO */
    {
        uint8_t d[64];
        for (unsigned i = 0; i < 64; i++)
            d[i] = (uint8_t)(i * 13);
        memset(d + 30, 0, 2);
        memcpy(ram(f, TX_BUF + 0x2000, 64), d, 64);
        tx_legacy(f, 5, TX_BUF + 0x2000, 64, TXD_CMD_EOP | TXD_CMD_IC);
        tx_desc(f, 5)[10] = 30;   /* CSO */
        tx_desc(f, 5)[13] = 20;   /* CSS */
        wr(f, REG_TDT, 6);
        e1000_service(f->e);
        assert_int_equal(f->fb.n_sent, 3);
        assert_int_equal(fold(ref_sum(f->fb.sent[2].data + 20, 44)), 0xffff);
    }
}

static void test_tso(void **state)
{
    struct fixture *f = *state;
    static uint8_t frame[HDRS + 3000];
    size_t len = build_tcp(frame, peer_mac, 3000, 0x10000000, 0x19 /* FIN PSH ACK */);
    uint8_t *ip = frame + ETH_HLEN, *tcp = ip + IP_HLEN;
    static const size_t seg[3] = { 1448, 1448, 104 };

    /* what e1000_tso prepares: no IP length or checksum, TCP checksum seeded
     * with the pseudo-header sum without length */
    wbe16(ip + 2, 0);
    wbe16(ip + 10, 0);
    wbe16(tcp + 16, fold(ref_sum(ip + 12, 8) + 6));
    frame[ETH_HLEN + IP_HLEN + 13] |= 0x80;   /* CWR: first segment only */
    memcpy(ram(f, TX_BUF, len), frame, len);

    setup_tx(f, 16);
    tx_context(f, 0, ETH_HLEN, ETH_HLEN + 10, ETH_HLEN + IP_HLEN - 1, ETH_HLEN + IP_HLEN,
               ETH_HLEN + IP_HLEN + 16, 0, 3000, TUCMD_TCP | TUCMD_IP | TXD_CMD_TSE, HDRS, 1448);
    /* header and payload in separate buffers, as the driver maps them */
    tx_data(f, 1, TX_BUF, HDRS, TXD_CMD_TSE, TXD_POPTS_TXSM | TXD_POPTS_IXSM, 0);
    tx_data(f, 2, TX_BUF + HDRS, 2000, TXD_CMD_TSE, 0, 0);
    tx_data(f, 3, TX_BUF + HDRS + 2000, 1000, TXD_CMD_TSE | TXD_CMD_EOP | TXD_CMD_RS, 0, 0);
    wr(f, REG_TDT, 4);
    e1000_service(f->e);

    assert_int_equal(f->fb.n_sent, 3);
    for (unsigned i = 0, off = 0; i < 3; off += (unsigned)seg[i], i++) {
        const uint8_t *o = f->fb.sent[i].data, *oip = o + ETH_HLEN, *otcp = oip + IP_HLEN;

        assert_int_equal(f->fb.sent[i].len, HDRS + seg[i]);
        assert_memory_equal(o, frame, ETH_HLEN);
        assert_int_equal(be16(oip + 2), IP_HLEN + TCP_HLEN + seg[i]);
        assert_int_equal(be16(oip + 4), 0x1234 + i);
        assert_int_equal(be32(otcp + 4), 0x10000000 + off);
        assert_int_equal(otcp[13] & 0x09, i == 2 ? 0x09 : 0);   /* FIN, PSH only last */
        assert_int_equal(otcp[13] & 0x10, 0x10);                /* ACK always */
        assert_int_equal(otcp[13] & 0x80, i == 0 ? 0x80 : 0);   /* CWR only first */
        assert_memory_equal(otcp + 20, tcp + 20, 12);            /* options kept */
        assert_true(ipv4_header_ok(oip));
        assert_true(l4_checksum_ok(oip));
        assert_memory_equal(o + HDRS, frame + HDRS + off, seg[i]);
    }
    assert_true(tx_done(f, 3));
    assert_int_equal(rd(f, STAT_TSCTC), 1);
    assert_int_equal(rd(f, STAT_GPTC), 3);

    /* VLAN insertion on each segment when CTRL.VME and VLE */
    wr(f, REG_CTRL, rd(f, REG_CTRL) | CTRL_VME);
    tx_data(f, 4, TX_BUF, HDRS, TXD_CMD_TSE, TXD_POPTS_TXSM | TXD_POPTS_IXSM, 0);
    tx_data(f, 5, TX_BUF + HDRS, 3000, TXD_CMD_TSE | TXD_CMD_EOP | TXD_CMD_VLE, 0, 0x2005);
    wr(f, REG_TDT, 6);
    e1000_service(f->e);
    assert_int_equal(f->fb.n_sent, 6);
    for (unsigned i = 3; i < 6; i++) {
        const uint8_t *o = f->fb.sent[i].data;
        assert_int_equal(f->fb.sent[i].len, HDRS + 4 + seg[i - 3]);
        assert_int_equal(be16(o + 12), 0x8100);
        assert_int_equal(be16(o + 14), 0x2005);
        assert_int_equal(be16(o + 16), 0x0800);
        assert_true(ipv4_header_ok(o + 18));
        assert_true(l4_checksum_ok(o + 18));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tx_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tso, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
