/* Transmit: walks the ring from TDH to TDT on the event-loop thread, gathers
 * each packet from its data descriptors, applies the offloads (legacy
 * checksum insertion, context-described IP and TCP/UDP checksums, TCP
 * segmentation, VLAN tag insertion) and hands the frames to the backend. */
#include <string.h>

#include "e1000_hw.h"
#include "memory.h"
#include "net_backend.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_CWR 0x80

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void packet_clear(struct e1000 *e)
{
    memset(&e->txp, 0, sizeof(e->txp));
    e->txp.data = e->txbuf + E1000_HEADROOM;
}

void e1000_tx_reset(struct e1000 *e)
{
    memset(&e->txctx, 0, sizeof(e->txctx));
    packet_clear(e);
}

static void count_size(struct e1000 *e, uint32_t first_bucket, size_t wire_len)
{
    static const size_t limits[] = { 64, 127, 255, 511, 1023, 1522 };

    for (unsigned i = 0; i < 6; i++) {
        if (wire_len <= limits[i]) {
            e1000_stat_add(e, first_bucket + 4 * i, 1);
            return;
        }
    }
}

/* frame has E1000_HEADROOM bytes before it and 64 bytes of room after. */
static void send_frame(struct e1000 *e, uint8_t *frame, size_t len, bool vlan, uint16_t tci)
{
    struct net_backend *be = e->host.backend;
    int ret;

    /* The tag goes in after checksums were computed, as on the wire. */
    if (vlan && len >= 12) {
        memmove(frame - 4, frame, 12);
        frame -= 4;
        put_be16(frame + 12, (uint16_t)reg(e, REG_VET));
        put_be16(frame + 14, tci);
        len += 4;
    }
    if ((reg(e, REG_TCTL) & TCTL_PSP) && len < E1000_MIN_FRAME) {
        memset(frame + len, 0, E1000_MIN_FRAME - len);
        len = E1000_MIN_FRAME;
    }
    ret = be ? be->ops->send(be, frame, len) : -1;
    if (ret < 0) {
        e1000_warn_once(e, WARN_TX_SEND, "the host backend refused a %zu-byte frame (error %d)",
                        len, -ret);
        e->tx_dropped++;
        return;
    }
    e1000_stat_add(e, STAT_TPT, 1);
    e1000_stat_add(e, STAT_GPTC, 1);
    e1000_stat_add64(e, STAT_GOTCL, len + E1000_FCS_LEN);
    e1000_stat_add64(e, STAT_TOTL, len + E1000_FCS_LEN);
    count_size(e, STAT_PTC64, len + E1000_FCS_LEN);
    if (len >= 6 && memcmp(frame, "\xff\xff\xff\xff\xff\xff", 6) == 0)
        e1000_stat_add(e, STAT_BPTC, 1);
    else if (len >= 6 && (frame[0] & 1))
        e1000_stat_add(e, STAT_MPTC, 1);
}

/* Stores the checksum of [start, end] (end inclusive; 0: to the end of the
 * packet) plus seed at offset. The field itself is summed as it is: the
 * driver leaves the pseudo-header sum there. false if the offsets do not
 * fit the packet, in which case nothing is written. */
static bool insert_csum(uint8_t *pkt, size_t len, unsigned start, unsigned offset, unsigned end,
                        uint32_t seed, bool udp)
{
    size_t stop = end ? (size_t)end + 1 : len;
    uint16_t c;

    if (stop > len)
        stop = len;
    if (start >= stop || (size_t)offset + 2 > len)
        return false;
    c = (uint16_t)~csum_fold(csum_add(seed, pkt + start, stop - start));
    if (udp && c == 0)
        c = 0xffff;   /* 0 would mean "no checksum" to a UDP receiver */
    put_be16(pkt + offset, c);
    return true;
}

/* false when the context's offsets do not fit the packet: then the packet
 * is not sent, rather than sent with a checksum left unfilled. */
static bool offload_checksums(struct e1000 *e, uint8_t *pkt, size_t len, uint8_t popts)
{
    const struct e1000_tx_context *c = &e->txctx;
    bool ok = true;

    if (popts & TXD_POPTS_IXSM)
        ok &= insert_csum(pkt, len, c->ipcss, c->ipcso, c->ipcse, 0, false);
    if (popts & TXD_POPTS_TXSM)
        ok &= insert_csum(pkt, len, c->tucss, c->tucso, c->tucse, 0, !(c->tucmd & TUCMD_TCP));
    if (!ok)
        e1000_warn_once(e, WARN_CSUM_OFFSET, "checksum offsets (IP %u/%u, TCP/UDP %u/%u) beyond "
                        "a %zu-byte packet: dropped", c->ipcss, c->ipcso, c->tucss, c->tucso, len);
    return ok;
}

/* The context must describe headers that lie inside the first hdrlen bytes
 * of a packet that has them. */
static bool tso_context_valid(const struct e1000_tx_context *c, size_t len, uint8_t popts)
{
    bool tcp = c->tucmd & TUCMD_TCP, ipv4 = c->tucmd & TUCMD_IP;
    unsigned ip_min = ipv4 ? 20 : 40, l4_min = tcp ? 20 : 8;

    return c->hdrlen >= 14 && c->hdrlen <= len && c->mss != 0 &&
           (size_t)c->hdrlen + c->mss <= E1000_MAX_PACKET &&
           (unsigned)c->ipcss + ip_min <= c->hdrlen && (unsigned)c->tucss + l4_min <= c->hdrlen &&
           (!(popts & TXD_POPTS_IXSM) || (unsigned)c->ipcso + 2 <= c->hdrlen) &&
           (!(popts & TXD_POPTS_TXSM) || (unsigned)c->tucso + 2 <= c->hdrlen);
}

/* TCP segmentation: every frame gets the header template with its own IP
 * length and id, TCP sequence number and flags, and fresh checksums. The
 * driver seeds the TCP checksum with a pseudo-header sum that leaves the
 * length out; each segment's TCP length is added here. */
static void tso_send(struct e1000 *e, bool vlan, uint16_t tci)
{
    const struct e1000_tx_context *c = &e->txctx;
    const struct e1000_tx_packet *p = &e->txp;
    bool tcp = c->tucmd & TUCMD_TCP, ipv4 = c->tucmd & TUCMD_IP;
    uint8_t *seg = e->txseg + E1000_HEADROOM;
    size_t hdr = c->hdrlen, payload, off = 0;
    uint16_t ip_id;
    uint32_t seq;
    unsigned i = 0;

    if (!tso_context_valid(c, p->len, p->popts)) {
        e1000_warn_once(e, WARN_TSO_BAD, "TSO context (header %u bytes, MSS %u, offsets "
                        "%u/%u) does not fit a %zu-byte packet: dropped", c->hdrlen, c->mss,
                        c->ipcss, c->tucss, p->len);
        e1000_stat_add(e, STAT_TSCTFC, 1);
        e->tx_dropped++;
        return;
    }
    payload = p->len - hdr;
    ip_id = get_be16(p->data + c->ipcss + 4);
    seq = get_be32(p->data + c->tucss + 4);
    do {
        size_t n = payload - off < c->mss ? payload - off : c->mss;
        size_t flen = hdr + n;
        bool last = off + n == payload;

        memcpy(seg, p->data, hdr);
        memcpy(seg + hdr, p->data + hdr + off, n);
        if (ipv4) {
            put_be16(seg + c->ipcss + 2, (uint16_t)(flen - c->ipcss));
            put_be16(seg + c->ipcss + 4, (uint16_t)(ip_id + i));
        } else {
            put_be16(seg + c->ipcss + 4, (uint16_t)(flen - c->ipcss - 40));
        }
        if (tcp) {
            uint8_t flags = seg[c->tucss + 13];
            put_be32(seg + c->tucss + 4, seq + (uint32_t)off);
            if (!last)
                flags &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
            if (i > 0)
                flags &= (uint8_t)~TCP_FLAG_CWR;   /* congestion signal once per burst */
            seg[c->tucss + 13] = flags;
        } else {
            put_be16(seg + c->tucss + 4, (uint16_t)(flen - c->tucss));
        }
        if (ipv4 && (p->popts & TXD_POPTS_IXSM)) {
            put_be16(seg + c->ipcso, 0);
            insert_csum(seg, flen, c->ipcss, c->ipcso, c->ipcse, 0, false);
        }
        if (p->popts & TXD_POPTS_TXSM)
            insert_csum(seg, flen, c->tucss, c->tucso, c->tucse, (uint32_t)(flen - c->tucss), !tcp);
        send_frame(e, seg, flen, vlan, tci);
        off += n;
        i++;
    } while (off < payload);
    e1000_stat_add(e, STAT_TSCTC, 1);
}

static void packet_done(struct e1000 *e, uint8_t cmd, uint8_t cso, uint16_t special)
{
    struct e1000_tx_packet *p = &e->txp;
    bool vlan = (cmd & TXD_CMD_VLE) && (reg(e, REG_CTRL) & CTRL_VME);

    if (p->dropped) {
        e->tx_dropped++;
    } else if (p->extended && p->tse) {
        tso_send(e, vlan, special);
    } else if (p->extended && !offload_checksums(e, p->data, p->len, p->popts)) {
        e->tx_dropped++;
    } else {
        /* Legacy IC with offsets outside the packet is ignored, as the
         * 8254x manual says. */
        if (!p->extended && (cmd & TXD_CMD_IC) && p->css < p->len && (size_t)cso + 1 < p->len)
            insert_csum(p->data, p->len, p->css, cso, 0, 0, false);
        send_frame(e, p->data, p->len, vlan, special);
    }
    packet_clear(e);
}

static void append(struct e1000 *e, uint64_t addr, uint32_t len)
{
    struct e1000_tx_packet *p = &e->txp;
    const void *src;

    /* A null address or a zero length transfers nothing. */
    if (p->dropped || addr == 0 || len == 0)
        return;
    if (len > E1000_MAX_PACKET - p->len) {
        e1000_warn_once(e, WARN_TX_TOO_BIG, "transmit packet over %u bytes: dropped",
                        E1000_MAX_PACKET);
        p->dropped = true;
        return;
    }
    src = pci_dma_ptr(&e->pdev, e->host.mem, addr, len);
    if (!src) {
        e1000_warn_once(e, WARN_TX_BUFFER, "transmit buffer 0x%llx+%u is not in guest RAM: "
                        "packet dropped", (unsigned long long)addr, len);
        p->dropped = true;
        return;
    }
    memcpy(p->data + p->len, src, len);
    p->len += len;
}

static void load_context(struct e1000 *e, const uint8_t *d)
{
    struct e1000_tx_context *c = &e->txctx;

    c->ipcss = d[0];
    c->ipcso = d[1];
    c->ipcse = le16(d + 2);
    c->tucss = d[4];
    c->tucso = d[5];
    c->tucse = le16(d + 6);
    c->paylen = le32(d + 8) & 0xfffff;
    c->tucmd = d[11];
    c->hdrlen = d[13];
    c->mss = le16(d + 14);
}

/* One descriptor (a private copy: the guest may rewrite the ring while we
 * read it). Returns whether its status is to be written back. */
static bool tx_descriptor(struct e1000 *e, const uint8_t *d)
{
    struct e1000_tx_packet *p = &e->txp;
    uint64_t addr = (uint64_t)le32(d + 4) << 32 | le32(d);
    uint32_t lower = le32(d + 8), len;
    uint8_t cmd = d[11];

    if (cmd & TXD_CMD_DEXT) {
        unsigned dtyp = (lower >> 20) & 0xf;

        if (dtyp == TXD_DTYP_CTX) {
            load_context(e, d);
            return cmd & TXD_CMD_RS;
        }
        if (dtyp != TXD_DTYP_DATA) {
            e1000_warn_once(e, WARN_TX_DTYP, "transmit descriptor of unknown type %u: skipped",
                            dtyp);
            return cmd & TXD_CMD_RS;
        }
        len = lower & 0xfffff;
        if (!p->started) {
            p->started = p->extended = true;
            p->tse = cmd & TXD_CMD_TSE;
            p->popts = d[13];
        }
    } else {
        len = lower & 0xffff;
        if (!p->started) {
            p->started = true;
            p->css = d[13];
        }
    }
    append(e, addr, len);
    if (cmd & TXD_CMD_EOP)
        packet_done(e, cmd, d[10], le16(d + 14));
    return cmd & TXD_CMD_RS;
}

bool e1000_tx_run(struct e1000 *e, unsigned budget)
{
    struct e1000_ring r;
    bool wrote_back = false, progressed = false;
    uint32_t causes = 0;

    if (!(reg(e, REG_TCTL) & TCTL_EN) || !e1000_ring_get(e, REG_TDBAL, &r, WARN_TX_RING,
                                                         "transmit"))
        return false;
    while (r.head != r.tail && budget--) {
        uint8_t *slot = r.base + (size_t)r.head * E1000_DESC_SIZE;
        uint8_t d[E1000_DESC_SIZE];

        memcpy(d, slot, sizeof(d));
        if (tx_descriptor(e, d)) {
            /* The data was copied out: the guest may reuse the buffer. */
            __atomic_thread_fence(__ATOMIC_RELEASE);
            slot[12] = (uint8_t)((d[12] & 0xf0) | TXD_STAT_DD);
            wrote_back = true;
        }
        r.head = (r.head + 1) % r.count;
        reg_set(e, REG_TDH, r.head);
        progressed = true;
    }
    if (wrote_back)
        causes |= ICR_TXDW;
    if (progressed && r.head == r.tail)
        causes |= ICR_TXQE;
    if (causes)
        e1000_raise(e, causes);
    return r.head != r.tail;
}
