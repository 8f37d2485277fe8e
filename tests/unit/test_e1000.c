/* 82540EM model, driven through its registers the way Linux's e1000 driver
 * drives it, against a memfd guest RAM, a PCI bus without KVM and a fake
 * host backend: EEPROM, PHY, interrupts, TX (legacy, checksum offload, TSO),
 * RX (spanning buffers, filters, checksums, VLAN, no buffers), statistics,
 * and hostile guests. Checksums are verified by code independent of the
 * model's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"
#include "e1000.h"
#include "e1000_hw.h"
#include "eventloop.h"
#include "memory.h"
#include "net_backend.h"
#include "pci.h"
#include "tap.h"
#include "vm.h"

#define RAM_SIZE   (64ull << 20)
#define TX_RING    0x10000ull
#define RX_RING    0x20000ull
#define TX_BUF     0x100000ull
#define RX_BUF     0x200000ull
#define OUTSIDE    0xf0000000ull        /* not RAM */
#define MAX_FRAMES 64

static const uint8_t nic_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };

struct frame {
    uint8_t *data;
    size_t len;
};

struct fake_backend {
    struct net_backend be;
    struct frame sent[MAX_FRAMES];
    unsigned n_sent;                 /* all sends, also those not kept */
    struct frame queue[MAX_FRAMES];  /* frames the host has for the guest */
    unsigned q_head, q_tail;
    bool notify;
    unsigned notify_off_calls;
};

struct fixture {
    struct vm vm;
    struct device bridge_dev, dev;
    struct fake_backend fb;
    struct e1000 *e;
    struct pci_device *pdev;
    unsigned kicks;
};

/* --- the fake backend ---------------------------------------------------- */

static int fb_send(struct net_backend *be, const void *frame, size_t len)
{
    struct fake_backend *fb = (struct fake_backend *)be;

    if (fb->n_sent < MAX_FRAMES) {
        fb->sent[fb->n_sent].data = malloc(len);
        assert_non_null(fb->sent[fb->n_sent].data);
        memcpy(fb->sent[fb->n_sent].data, frame, len);
        fb->sent[fb->n_sent].len = len;
    }
    fb->n_sent++;
    return 0;
}

static ssize_t fb_recv(struct net_backend *be, void *buf, size_t cap)
{
    struct fake_backend *fb = (struct fake_backend *)be;
    struct frame *fr;
    size_t n;

    if (fb->q_head == fb->q_tail)
        return -EAGAIN;
    fr = &fb->queue[fb->q_head++ % MAX_FRAMES];
    n = fr->len < cap ? fr->len : cap;
    memcpy(buf, fr->data, n);
    free(fr->data);
    fr->data = NULL;
    return (ssize_t)n;
}

static void fb_set_rx_notify(struct net_backend *be, bool on)
{
    struct fake_backend *fb = (struct fake_backend *)be;

    fb->notify = on;
    if (!on)
        fb->notify_off_calls++;
}

static const struct net_backend_ops fb_ops = {
    .send = fb_send, .recv = fb_recv, .set_rx_notify = fb_set_rx_notify,
};

static void host_sends(struct fixture *f, const void *frame, size_t len)
{
    struct frame *fr = &f->fb.queue[f->fb.q_tail++ % MAX_FRAMES];

    fr->data = malloc(len + 1);
    assert_non_null(fr->data);
    memcpy(fr->data, frame, len);
    fr->len = len;
}

static unsigned host_queued(struct fixture *f)
{
    return f->fb.q_tail - f->fb.q_head;
}

/* --- fixture --------------------------------------------------------------- */

static void pci_command(struct fixture *f, uint16_t cmd)
{
    pci_config_access(f->vm.pci, 0, (uint8_t)(f->pdev->slot << 3), 0x04, &cmd, 2, true);
}

static void on_kick(void *opaque)
{
    ((struct fixture *)opaque)->kicks++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct e1000_host host;

    assert_non_null(f);
    iobus_init(&f->vm.pio, IOBUS_PIO);
    iobus_init(&f->vm.mmio, IOBUS_MMIO);
    assert_int_equal(guest_mem_create(&f->vm.mem, RAM_SIZE, HUGEPAGES_OFF), 0);
    f->vm.pci = pci_bus_create(&f->vm, &f->bridge_dev);
    assert_non_null(f->vm.pci);
    f->fb.be.ops = &fb_ops;
    f->fb.notify = true;
    host = (struct e1000_host){ .name = "net0", .mem = &f->vm.mem, .backend = &f->fb.be,
                                .kick = on_kick, .kick_opaque = f };
    f->e = e1000_create(nic_mac, &host, &f->dev);
    assert_non_null(f->e);
    assert_int_equal(e1000_attach(f->e, f->vm.pci, -1), 0);
    f->pdev = e1000_pci(f->e);
    pci_command(f, 0x0007);   /* I/O, memory, bus master: what the driver enables */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    e1000_destroy(f->e);
    pci_bus_destroy(f->vm.pci);
    guest_mem_destroy(&f->vm.mem);
    iobus_destroy(&f->vm.pio);
    iobus_destroy(&f->vm.mmio);
    for (unsigned i = 0; i < MAX_FRAMES; i++) {
        free(f->fb.sent[i].data);
        free(f->fb.queue[i].data);
    }
    free(f);
    return 0;
}

/* --- register and memory helpers ----------------------------------------- */

static void wr(struct fixture *f, uint32_t off, uint32_t v)
{
    f->pdev->ops->bar_io(f->pdev, 0, off, &v, 4, true);
}

static uint32_t rd(struct fixture *f, uint32_t off)
{
    uint32_t v = 0xdeadbeef;

    f->pdev->ops->bar_io(f->pdev, 0, off, &v, 4, false);
    return v;
}

static uint8_t *ram(struct fixture *f, uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&f->vm.mem, gpa, len);

    assert_non_null(p);
    return p;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wbe16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wbe32(uint8_t *p, uint32_t v)
{
    wbe16(p, (uint16_t)(v >> 16));
    wbe16(p + 2, (uint16_t)v);
}

/* --- independent checksum reference -------------------------------------- */

static uint32_t ref_sum(const uint8_t *p, size_t len)
{
    uint64_t s = 0;

    for (size_t i = 0; i < len; i++)
        s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

static uint16_t fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static bool ipv4_header_ok(const uint8_t *ip)
{
    return fold(ref_sum(ip, (size_t)(ip[0] & 0xf) * 4)) == 0xffff;
}

/* TCP or UDP checksum of the IPv4 packet at ip, over its total length. */
static bool l4_checksum_ok(const uint8_t *ip)
{
    size_t ihl = (size_t)(ip[0] & 0xf) * 4, l4len = be16(ip + 2) - ihl;
    uint64_t s = ref_sum(ip + 12, 8) + ip[9] + l4len + ref_sum(ip + ihl, l4len);

    return fold(s) == 0xffff;
}

static uint32_t ref_crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* --- frames ---------------------------------------------------------------- */

#define ETH_HLEN 14
#define IP_HLEN  20
#define TCP_HLEN 32   /* with timestamps */
#define HDRS     (ETH_HLEN + IP_HLEN + TCP_HLEN)

/* Ethernet + IPv4 + TCP (with 12 bytes of options) + payload; checksums
 * left zero. Returns the length. */
static size_t build_tcp(uint8_t *b, const uint8_t *dst, size_t payload, uint32_t seq,
                        uint8_t flags)
{
    uint8_t *ip = b + ETH_HLEN, *tcp = ip + IP_HLEN;

    memset(b, 0, HDRS);
    memcpy(b, dst, 6);
    memcpy(b + 6, peer_mac, 6);
    wbe16(b + 12, 0x0800);
    ip[0] = 0x45;
    wbe16(ip + 2, (uint16_t)(IP_HLEN + TCP_HLEN + payload));
    wbe16(ip + 4, 0x1234);
    wbe16(ip + 6, 0x4000);   /* DF */
    ip[8] = 64;
    ip[9] = 6;
    wbe32(ip + 12, 0x0a000001);
    wbe32(ip + 16, 0x0a000002);
    wbe16(tcp, 40000);
    wbe16(tcp + 2, 5201);
    wbe32(tcp + 4, seq);
    wbe32(tcp + 8, 0x55667788);
    tcp[12] = (TCP_HLEN / 4) << 4;
    tcp[13] = flags;
    wbe16(tcp + 14, 65535);
    tcp[20] = 1;
    tcp[21] = 1;
    tcp[22] = 8;
    tcp[23] = 10;
    for (size_t i = 0; i < payload; i++)
        b[HDRS + i] = (uint8_t)(i * 7 + 3);
    return HDRS + payload;
}

static void fill_checksums(uint8_t *frame)
{
    uint8_t *ip = frame + ETH_HLEN;
    size_t ihl = (size_t)(ip[0] & 0xf) * 4, l4len = be16(ip + 2) - ihl;

    wbe16(ip + 10, 0);
    wbe16(ip + 10, (uint16_t)~fold(ref_sum(ip, ihl)));
    wbe16(ip + ihl + 16, 0);
    wbe16(ip + ihl + 16, (uint16_t)~fold(ref_sum(ip + 12, 8) + ip[9] + l4len +
                                          ref_sum(ip + ihl, l4len)));
}

/* --- rings ----------------------------------------------------------------- */

static void setup_tx(struct fixture *f, unsigned count)
{
    memset(ram(f, TX_RING, count * 16), 0, count * 16);
    wr(f, REG_TDBAL, (uint32_t)TX_RING);
    wr(f, REG_TDBAH, 0);
    wr(f, REG_TDLEN, count * 16);
    wr(f, REG_TDH, 0);
    wr(f, REG_TDT, 0);
    wr(f, REG_TCTL, TCTL_EN | TCTL_PSP);
}

static uint8_t *tx_desc(struct fixture *f, unsigned i)
{
    return ram(f, TX_RING + 16ull * i, 16);
}

static void tx_legacy(struct fixture *f, unsigned i, uint64_t addr, uint16_t len, uint8_t cmd)
{
    uint8_t *d = tx_desc(f, i);

    memset(d, 0, 16);
    put_le64(d, addr);
    put_le16(d + 8, len);
    d[11] = cmd;
}

static void tx_context(struct fixture *f, unsigned i, uint8_t ipcss, uint8_t ipcso, uint16_t ipcse,
                       uint8_t tucss, uint8_t tucso, uint16_t tucse, uint32_t paylen,
                       uint8_t tucmd, uint8_t hdrlen, uint16_t mss)
{
    uint8_t *d = tx_desc(f, i);

    d[0] = ipcss;
    d[1] = ipcso;
    put_le16(d + 2, ipcse);
    d[4] = tucss;
    d[5] = tucso;
    put_le16(d + 6, tucse);
    put_le32(d + 8, (paylen & 0xfffff) | (uint32_t)(tucmd | TXD_CMD_DEXT) << 24);
    d[12] = 0;
    d[13] = hdrlen;
    put_le16(d + 14, mss);
}

static void tx_data(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint8_t dcmd,
                    uint8_t popts, uint16_t special)
{
    uint8_t *d = tx_desc(f, i);

    put_le64(d, addr);
    put_le32(d + 8, (len & 0xfffff) | TXD_DTYP_DATA << 20 | (uint32_t)(dcmd | TXD_CMD_DEXT) << 24);
    d[12] = 0;
    d[13] = popts;
    put_le16(d + 14, special);
}

static bool tx_done(struct fixture *f, unsigned i)
{
    return tx_desc(f, i)[12] & TXD_STAT_DD;
}

static void setup_rx(struct fixture *f, unsigned count, uint32_t rctl_extra, unsigned give)
{
    for (unsigned i = 0; i < count; i++) {
        uint8_t *d = ram(f, RX_RING + 16ull * i, 16);
        memset(d, 0, 16);
        put_le64(d, RX_BUF + 0x4000ull * i);
    }
    wr(f, REG_RDBAL, (uint32_t)RX_RING);
    wr(f, REG_RDBAH, 0);
    wr(f, REG_RDLEN, count * 16);
    wr(f, REG_RDH, 0);
    wr(f, REG_RDT, give);
    wr(f, REG_RCTL, RCTL_EN | RCTL_BAM | rctl_extra);
}

static uint8_t *rx_desc(struct fixture *f, unsigned i)
{
    return ram(f, RX_RING + 16ull * i, 16);
}

static uint8_t *rx_buf(struct fixture *f, unsigned i)
{
    return ram(f, RX_BUF + 0x4000ull * i, 0x4000);
}

static uint16_t rx_len(struct fixture *f, unsigned i)
{
    return (uint16_t)(rx_desc(f, i)[8] | rx_desc(f, i)[9] << 8);
}

static size_t build_udp_to(uint8_t *b, const uint8_t *dst, size_t payload)
{
    size_t len = build_tcp(b, dst, 0, 0, 0);

    /* Reuse the TCP builder's headers as a plain IPv4 datagram of "payload"
     * bytes with protocol 253 (experimental): not checksummed by the NIC. */
    b[ETH_HLEN + 9] = 253;
    wbe16(b + ETH_HLEN + 2, (uint16_t)(IP_HLEN + payload));
    for (size_t i = 0; i < payload; i++)
        b[ETH_HLEN + IP_HLEN + i] = (uint8_t)i;
    (void)len;
    return ETH_HLEN + IP_HLEN + payload;
}

/* ========================================================================= */

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

/* --- EEPROM, as e1000_read_eeprom does it on an 82540 (microwire) ---------- */

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

/* --- PHY ------------------------------------------------------------------- */

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

/* --- interrupts ------------------------------------------------------------ */

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

/* --- TX -------------------------------------------------------------------- */

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

/* --- RX -------------------------------------------------------------------- */

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

/* --- statistics ------------------------------------------------------------ */

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

/* --- hostile guests -------------------------------------------------------- */

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
        cmocka_unit_test_setup_teardown(test_tx_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_spanning_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_no_free_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_dma_without_bus_master, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statistics_clear_on_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_register_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_descriptor_fuzz, setup, teardown),
        cmocka_unit_test(test_tap_refuses_missing_interface),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
