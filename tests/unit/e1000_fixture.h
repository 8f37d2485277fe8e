/* Shared fixture for the 82540EM unit tests (test_e1000_*.c): a memfd guest
 * RAM, a PCI bus without KVM and a fake host backend; register, descriptor
 * and frame helpers; checksums computed by code independent of the model's.
 * Header-only: every test_*.c is its own program. */
#ifndef E1000_FIXTURE_H
#define E1000_FIXTURE_H

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

static const uint8_t __attribute__((unused)) nic_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t __attribute__((unused)) peer_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };

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

static inline int fb_send(struct net_backend *be, const void *frame, size_t len)
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

static inline ssize_t fb_recv(struct net_backend *be, void *buf, size_t cap)
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

static inline void fb_set_rx_notify(struct net_backend *be, bool on)
{
    struct fake_backend *fb = (struct fake_backend *)be;

    fb->notify = on;
    if (!on)
        fb->notify_off_calls++;
}

static const struct net_backend_ops fb_ops = {
    .send = fb_send, .recv = fb_recv, .set_rx_notify = fb_set_rx_notify,
};

static inline void host_sends(struct fixture *f, const void *frame, size_t len)
{
    struct frame *fr = &f->fb.queue[f->fb.q_tail++ % MAX_FRAMES];

    fr->data = malloc(len + 1);
    assert_non_null(fr->data);
    memcpy(fr->data, frame, len);
    fr->len = len;
}

static inline unsigned host_queued(struct fixture *f)
{
    return f->fb.q_tail - f->fb.q_head;
}

/* --- fixture --------------------------------------------------------------- */

static inline void pci_command(struct fixture *f, uint16_t cmd)
{
    pci_config_access(f->vm.pci, 0, (uint8_t)(f->pdev->slot << 3), 0x04, &cmd, 2, true);
}

static inline void on_kick(void *opaque)
{
    ((struct fixture *)opaque)->kicks++;
}

static inline int setup(void **state)
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

static inline int teardown(void **state)
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

static inline void wr(struct fixture *f, uint32_t off, uint32_t v)
{
    f->pdev->ops->bar_io(f->pdev, 0, off, &v, 4, true);
}

static inline uint32_t rd(struct fixture *f, uint32_t off)
{
    uint32_t v = 0xdeadbeef;

    f->pdev->ops->bar_io(f->pdev, 0, off, &v, 4, false);
    return v;
}

static inline uint8_t *ram(struct fixture *f, uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&f->vm.mem, gpa, len);

    assert_non_null(p);
    return p;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wbe16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wbe32(uint8_t *p, uint32_t v)
{
    wbe16(p, (uint16_t)(v >> 16));
    wbe16(p + 2, (uint16_t)v);
}

/* --- independent checksum reference -------------------------------------- */

static inline uint32_t ref_sum(const uint8_t *p, size_t len)
{
    uint64_t s = 0;

    for (size_t i = 0; i < len; i++)
        s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

static inline uint16_t fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static inline bool ipv4_header_ok(const uint8_t *ip)
{
    return fold(ref_sum(ip, (size_t)(ip[0] & 0xf) * 4)) == 0xffff;
}

/* TCP or UDP checksum of the IPv4 packet at ip, over its total length. */
static inline bool l4_checksum_ok(const uint8_t *ip)
{
    size_t ihl = (size_t)(ip[0] & 0xf) * 4, l4len = be16(ip + 2) - ihl;
    uint64_t s = ref_sum(ip + 12, 8) + ip[9] + l4len + ref_sum(ip + ihl, l4len);

    return fold(s) == 0xffff;
}

static inline uint32_t ref_crc32(const uint8_t *p, size_t len)
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
static inline size_t build_tcp(uint8_t *b, const uint8_t *dst, size_t payload, uint32_t seq,
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

static inline void fill_checksums(uint8_t *frame)
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

static inline void setup_tx(struct fixture *f, unsigned count)
{
    memset(ram(f, TX_RING, count * 16), 0, count * 16);
    wr(f, REG_TDBAL, (uint32_t)TX_RING);
    wr(f, REG_TDBAH, 0);
    wr(f, REG_TDLEN, count * 16);
    wr(f, REG_TDH, 0);
    wr(f, REG_TDT, 0);
    wr(f, REG_TCTL, TCTL_EN | TCTL_PSP);
}

static inline uint8_t *tx_desc(struct fixture *f, unsigned i)
{
    return ram(f, TX_RING + 16ull * i, 16);
}

static inline void tx_legacy(struct fixture *f, unsigned i, uint64_t addr, uint16_t len, uint8_t cmd)
{
    uint8_t *d = tx_desc(f, i);

    memset(d, 0, 16);
    put_le64(d, addr);
    put_le16(d + 8, len);
    d[11] = cmd;
}

static inline void tx_context(struct fixture *f, unsigned i, uint8_t ipcss, uint8_t ipcso, uint16_t ipcse,
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

static inline void tx_data(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint8_t dcmd,
                    uint8_t popts, uint16_t special)
{
    uint8_t *d = tx_desc(f, i);

    put_le64(d, addr);
    put_le32(d + 8, (len & 0xfffff) | TXD_DTYP_DATA << 20 | (uint32_t)(dcmd | TXD_CMD_DEXT) << 24);
    d[12] = 0;
    d[13] = popts;
    put_le16(d + 14, special);
}

static inline bool tx_done(struct fixture *f, unsigned i)
{
    return tx_desc(f, i)[12] & TXD_STAT_DD;
}

static inline void setup_rx(struct fixture *f, unsigned count, uint32_t rctl_extra, unsigned give)
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

static inline uint8_t *rx_desc(struct fixture *f, unsigned i)
{
    return ram(f, RX_RING + 16ull * i, 16);
}

static inline uint8_t *rx_buf(struct fixture *f, unsigned i)
{
    return ram(f, RX_BUF + 0x4000ull * i, 0x4000);
}

static inline uint16_t rx_len(struct fixture *f, unsigned i)
{
    return (uint16_t)(rx_desc(f, i)[8] | rx_desc(f, i)[9] << 8);
}

static inline size_t build_udp_to(uint8_t *b, const uint8_t *dst, size_t payload)
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

#endif
