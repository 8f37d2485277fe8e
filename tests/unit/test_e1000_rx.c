/* 82540EM receive path: frames spanning buffers, address/VLAN filtering,
 * checksum offload, and running out of free descriptors. */
#include "e1000_fixture.h"

static void test_rx_spanning_buffers(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[300];
    uint32_t fcs;

    memcpy(frame, nic_mac, 6);
    memcpy(frame + 6, peer_mac, 6);
    wbe16(frame + 12, 0x88b5);
    for (unsigned i = 14; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i ^ 0x5a);
    /* 256-byte buffers (BSIZE=11): 300 bytes + FCS take two */
    setup_rx(f, 8, 3u << RCTL_BSIZE_SHIFT, 7);
    wr(f, REG_IMS, ICR_RXT0);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);

    assert_int_equal(rx_len(f, 0), 256);
    assert_int_equal(rx_desc(f, 0)[12], RXD_STAT_DD);
    assert_int_equal(rx_len(f, 1), 300 + 4 - 256);
    assert_true(rx_desc(f, 1)[12] & (RXD_STAT_DD | RXD_STAT_EOP));
    assert_int_equal(rx_desc(f, 1)[13], 0);
    assert_memory_equal(rx_buf(f, 0), frame, 256);
    assert_memory_equal(rx_buf(f, 1), frame + 256, 44);
    fcs = ref_crc32(frame, sizeof(frame));
    assert_int_equal(rx_buf(f, 1)[44] | rx_buf(f, 1)[45] << 8 | rx_buf(f, 1)[46] << 16 |
                         (uint32_t)rx_buf(f, 1)[47] << 24, fcs);
    assert_int_equal(rx_desc(f, 2)[12], 0);
    assert_int_equal(rd(f, REG_RDH), 2);
    assert_true(f->pdev->intx_level);
    assert_true(rd(f, REG_ICR) & ICR_RXT0);
    assert_int_equal(rd(f, STAT_GPRC), 1);
    assert_int_equal(rd(f, STAT_GORCL), 304);

    /* SECRC strips the FCS; short frames are padded to 60 */
    wr(f, REG_RCTL, rd(f, REG_RCTL) | RCTL_SECRC);
    host_sends(f, frame, 42);
    e1000_rx_ready(f->e);
    assert_int_equal(rx_len(f, 2), 60);
    assert_memory_equal(rx_buf(f, 2), frame, 42);
    assert_int_equal(rx_buf(f, 2)[59], 0);
}

static unsigned rx_delivered(struct fixture *f)
{
    return rd(f, REG_RDH);
}

static void test_rx_filtering(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[64] = { 0 };
    static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 };
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
    uint16_t hash;

    setup_rx(f, 16, RCTL_SECRC, 15);
    memcpy(frame + 6, peer_mac, 6);
    wbe16(frame + 12, 0x88b5);

    memcpy(frame, other, 6);                  /* someone else's: dropped */
    host_sends(f, frame, sizeof(frame));
    memcpy(frame, nic_mac, 6);                /* ours (RA[0] from the EEPROM) */
    host_sends(f, frame, sizeof(frame));
    memcpy(frame, bcast, 6);                  /* broadcast with BAM */
    host_sends(f, frame, sizeof(frame));
    memcpy(frame, mcast, 6);                  /* multicast not in the table */
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(host_queued(f), 0);
    assert_int_equal(rx_delivered(f), 2);
    assert_memory_equal(rx_buf(f, 0), nic_mac, 6);
    assert_memory_equal(rx_buf(f, 1), bcast, 6);
    assert_int_equal(rd(f, STAT_BPRC), 1);
    assert_int_equal(rd(f, STAT_TPR), 4);

    /* multicast through the hash table (MO=0: bits 47:36) */
    hash = (uint16_t)(((mcast[4] >> 4) | (mcast[5] << 4)) & 0xfff);
    wr(f, REG_MTA + 4 * (hash >> 5), 1u << (hash & 31));
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 3);
    assert_true(rx_desc(f, 2)[12] & RXD_STAT_PIF);
    assert_int_equal(rd(f, STAT_MPRC), 1);

    /* a second exact address in RA[1] */
    wr(f, REG_RA + 8, 0x99005452);
    wr(f, REG_RA + 12, 0x9999 | RAH_AV);
    memcpy(frame, other, 6);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 4);
    wr(f, REG_RA + 12, 0x9999);               /* invalid again */

    /* broadcast without BAM: dropped */
    wr(f, REG_RCTL, rd(f, REG_RCTL) & ~RCTL_BAM);
    memcpy(frame, bcast, 6);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 4);

    /* unicast promiscuous takes anything unicast */
    memcpy(frame, other, 6);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 4);
    wr(f, REG_RCTL, rd(f, REG_RCTL) | RCTL_UPE);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 5);
    assert_true(rx_desc(f, 4)[12] & RXD_STAT_PIF);

    /* VLAN filter table: a tagged frame passes only for a VID in VFTA */
    wr(f, REG_RCTL, (rd(f, REG_RCTL) & ~RCTL_UPE) | RCTL_VFE);
    memcpy(frame, nic_mac, 6);
    wbe16(frame + 12, 0x8100);
    wbe16(frame + 14, 0x0064);
    wbe16(frame + 16, 0x88b5);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 5);
    wr(f, REG_VFTA + 4 * (100 >> 5), 1u << (100 & 31));
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 6);
    /* without CTRL.VME the tag stays in the frame */
    assert_int_equal(be16(rx_buf(f, 5) + 12), 0x8100);
    assert_false(rx_desc(f, 5)[12] & RXD_STAT_VP);
    /* with CTRL.VME it is stripped into the descriptor */
    wr(f, REG_CTRL, rd(f, REG_CTRL) | CTRL_VME);
    host_sends(f, frame, sizeof(frame));
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 7);
    assert_true(rx_desc(f, 6)[12] & RXD_STAT_VP);
    assert_int_equal(rx_desc(f, 6)[14] | rx_desc(f, 6)[15] << 8, 0x0064);
    assert_int_equal(be16(rx_buf(f, 6) + 12), 0x88b5);
    assert_int_equal(rx_len(f, 6), 60);
}

static void test_rx_checksum_offload(void **state)
{
    struct fixture *f = *state;
    static uint8_t frame[HDRS + 100];
    size_t len = build_tcp(frame, nic_mac, 100, 7, 0x10);
    uint8_t st;

    fill_checksums(frame);
    setup_rx(f, 8, RCTL_SECRC, 7);
    wr(f, REG_RXCSUM, RXCSUM_IPOFL | RXCSUM_TUOFL);   /* what the driver sets */
    host_sends(f, frame, len);
    frame[HDRS + 5] ^= 0xff;                           /* corrupt the payload */
    host_sends(f, frame, len);
    frame[HDRS + 5] ^= 0xff;
    frame[ETH_HLEN + 8] = 63;                          /* corrupt the IP header */
    host_sends(f, frame, len);
    build_udp_to(frame, nic_mac, 40);                  /* not TCP/UDP: not checked */
    frame[ETH_HLEN + 10] = frame[ETH_HLEN + 11] = 0;
    host_sends(f, frame, ETH_HLEN + IP_HLEN + 40);
    e1000_rx_ready(f->e);
    assert_int_equal(rx_delivered(f), 4);

    st = rx_desc(f, 0)[12];
    assert_true(st & RXD_STAT_TCPCS);
    assert_true(st & RXD_STAT_IPCS);
    assert_false(st & RXD_STAT_IXSM);
    assert_int_equal(rx_desc(f, 0)[13], 0);
    assert_true(rx_desc(f, 1)[12] & RXD_STAT_TCPCS);
    assert_int_equal(rx_desc(f, 1)[13], RXD_ERR_TCPE);
    assert_true(rx_desc(f, 2)[13] & RXD_ERR_IPE);
    assert_false(rx_desc(f, 3)[12] & RXD_STAT_TCPCS);
    assert_true(rx_desc(f, 3)[12] & RXD_STAT_IPCS);

    /* offload off: the driver is told to ignore the checksum bits */
    wr(f, REG_RXCSUM, 0);
    build_tcp(frame, nic_mac, 100, 7, 0x10);
    host_sends(f, frame, len);
    e1000_rx_ready(f->e);
    assert_true(rx_desc(f, 4)[12] & RXD_STAT_IXSM);
    assert_false(rx_desc(f, 4)[12] & (RXD_STAT_TCPCS | RXD_STAT_IPCS));
}

static void test_rx_no_free_descriptors(void **state)
{
    struct fixture *f = *state;
    uint8_t a[64] = { 0 }, b[64] = { 0 };
    unsigned kicks;

    memcpy(a, nic_mac, 6);
    memcpy(b, nic_mac, 6);
    a[20] = 0xaa;
    b[20] = 0xbb;
    setup_rx(f, 8, RCTL_SECRC, 0);   /* RDH == RDT: no buffers for the NIC */
    host_sends(f, a, sizeof(a));
    host_sends(f, b, sizeof(b));
    e1000_rx_ready(f->e);
    /* nothing written, the frame waits, the host queue is left alone */
    assert_int_equal(rx_desc(f, 0)[12], 0);
    assert_int_equal(host_queued(f), 1);
    assert_false(f->fb.notify);
    assert_int_equal(rd(f, STAT_RNBC), 1);
    assert_true(rd(f, REG_ICR) & ICR_RXO);
    /* the guest adds one buffer: the vCPU kicks, the event loop delivers */
    kicks = f->kicks;
    wr(f, REG_RDT, 1);
    assert_int_equal(f->kicks, kicks + 1);
    e1000_service(f->e);
    assert_int_equal(rx_desc(f, 0)[12] & RXD_STAT_DD, RXD_STAT_DD);
    assert_int_equal(rx_buf(f, 0)[20], 0xaa);
    /* the second frame now waits for a buffer in turn */
    assert_int_equal(host_queued(f), 0);
    assert_false(f->fb.notify);
    wr(f, REG_RDT, 7);
    e1000_service(f->e);
    assert_int_equal(rx_buf(f, 1)[20], 0xbb);
    assert_true(f->fb.notify);
    assert_int_equal(rd(f, REG_RDH), 2);
    assert_int_equal(rd(f, STAT_GPRC), 2);
    assert_int_equal(rd(f, STAT_MPC), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rx_spanning_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_no_free_descriptors, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
