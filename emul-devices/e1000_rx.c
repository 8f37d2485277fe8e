/* Receive, on the event-loop thread: takes one frame at a time from the
 * backend, filters it (VLAN table, exact addresses, multicast hash,
 * broadcast, promiscuous), shapes it as the wire would have (VLAN tag
 * stripped into the descriptor, padded to 60 bytes, FCS appended unless
 * RCTL.SECRC), checks its IP and TCP/UDP checksums, and writes it into as
 * many ring buffers as it needs. With too few free descriptors the frame
 * waits and the backend is not read until the guest adds buffers. */
#include <string.h>

#include "e1000_hw.h"
#include "memory.h"
#include "net_backend.h"

#define ETH_P_IPV4   0x0800
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

enum filter_result { FILTER_REJECT, FILTER_EXACT, FILTER_INEXACT };

void e1000_rx_reset(struct e1000 *e)
{
    e->rx_pending = false;
    /* A stalled receiver gets its backend notifications back from the
     * event loop, which finds RX disabled and drains the host queue. */
    if (e->rx_stalled)
        e1000_kick(e);
}

void e1000_rx_buffers_added(struct e1000 *e)
{
    if (e->rx_stalled)
        e1000_kick(e);
}

static bool mta_match(struct e1000 *e, const uint8_t *dst)
{
    /* RCTL.MO picks which 12 of the destination's last 16 bits index the
     * 4096-bit table. */
    unsigned shift = 4 - ((reg(e, REG_RCTL) >> RCTL_MO_SHIFT) & 3);
    uint16_t hash;

    if (shift == 1)
        shift = 0;   /* MO=3 takes bits 43:32 */
    hash = (uint16_t)(((dst[4] >> shift) | (dst[5] << (8 - shift))) & 0xfff);
    return (reg(e, REG_MTA + 4 * (hash >> 5)) >> (hash & 31)) & 1;
}

static enum filter_result rx_filter(struct e1000 *e, const uint8_t *f, bool tagged)
{
    uint32_t rctl = reg(e, REG_RCTL);
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    if (tagged && (rctl & RCTL_VFE)) {
        uint16_t tci = get_be16(f + 14), vid = tci & 0xfff;

        if (!((reg(e, REG_VFTA + 4 * (vid >> 5)) >> (vid & 31)) & 1))
            return FILTER_REJECT;
        if ((rctl & RCTL_CFIEN) && !!(tci & 0x1000) != !!(rctl & RCTL_CFI))
            return FILTER_REJECT;
    }
    if (memcmp(f, bcast, 6) == 0 && (rctl & RCTL_BAM))
        return FILTER_EXACT;
    for (unsigned i = 0; i < 16; i++) {
        uint32_t lo = reg(e, REG_RA + 8 * i), hi = reg(e, REG_RA + 8 * i + 4);

        if ((hi & RAH_AV) && !(hi & RAH_AS_MASK) && f[0] == (uint8_t)lo &&
            f[1] == (uint8_t)(lo >> 8) && f[2] == (uint8_t)(lo >> 16) &&
            f[3] == (uint8_t)(lo >> 24) && f[4] == (uint8_t)hi && f[5] == (uint8_t)(hi >> 8))
            return FILTER_EXACT;
    }
    if (f[0] & 1)
        return (rctl & RCTL_MPE) || mta_match(e, f) ? FILTER_INEXACT : FILTER_REJECT;
    return (rctl & RCTL_UPE) ? FILTER_INEXACT : FILTER_REJECT;
}

/* Receive checksum offload (RXCSUM): IPv4 header and, for unfragmented
 * TCP and UDP, the transport checksum. IXSM tells the driver that nothing
 * was checked, so that the stack checks it. f/len: the frame without FCS. */
static void rx_checksums(struct e1000 *e, const uint8_t *f, size_t len)
{
    uint32_t rxcsum = reg(e, REG_RXCSUM);
    size_t pcss = rxcsum & RXCSUM_PCSS_MASK, l3 = 14;
    uint16_t type = get_be16(f + 12);
    bool ipcs = false, tcpcs = false;

    e->rx_csum = pcss < len ? csum_fold(csum_add(0, f + pcss, len - pcss)) : 0;
    if (type == reg(e, REG_VET) && len >= 18) {
        type = get_be16(f + 16);
        l3 = 18;
    }
    if (type == ETH_P_IPV4 && len >= l3 + 20 && (f[l3] >> 4) == 4) {
        const uint8_t *ip = f + l3;
        size_t ihl = (size_t)(ip[0] & 0xf) * 4, tot = get_be16(ip + 2);
        bool fragment = get_be16(ip + 6) & 0x3fff;

        if (ihl >= 20 && tot >= ihl && l3 + tot <= len) {
            if (rxcsum & RXCSUM_IPOFL) {
                ipcs = true;
                if (csum_fold(csum_add(0, ip, ihl)) != 0xffff)
                    e->rx_errors |= RXD_ERR_IPE;
            }
            if ((rxcsum & RXCSUM_TUOFL) && !fragment &&
                ((ip[9] == IPPROTO_TCP_ && tot - ihl >= 20) ||
                 (ip[9] == IPPROTO_UDP_ && tot - ihl >= 8 && get_be16(ip + ihl + 6) != 0))) {
                uint32_t sum = csum_add(0, ip + 12, 8) + ip[9] + (uint32_t)(tot - ihl);

                tcpcs = true;
                if (csum_fold(csum_add(sum, ip + ihl, tot - ihl)) != 0xffff)
                    e->rx_errors |= RXD_ERR_TCPE;
            }
        }
    }
    if (ipcs)
        e->rx_status |= RXD_STAT_IPCS;
    if (tcpcs)
        e->rx_status |= RXD_STAT_TCPCS;
    if (!ipcs && !tcpcs)
        e->rx_status |= RXD_STAT_IXSM;
}

/* Turns the raw frame in rxbuf into what goes to the guest. false: dropped. */
static bool rx_prepare(struct e1000 *e, size_t raw_len)
{
    uint32_t rctl = reg(e, REG_RCTL);
    uint8_t *f = e->rxbuf;
    size_t len = raw_len, max;
    bool tagged;
    enum filter_result fr;

    e1000_stat_add(e, STAT_TPR, 1);
    e1000_stat_add64(e, STAT_TORL, raw_len + E1000_FCS_LEN);
    if (!(rctl & RCTL_EN))
        return false;
    if (len < 14) {
        e1000_stat_add(e, STAT_RUC, 1);
        return false;
    }
    tagged = get_be16(f + 12) == reg(e, REG_VET);
    max = (rctl & RCTL_LPE) ? E1000_MAX_RX_FRAME : 1518u + (tagged ? 4 : 0);
    if (len + E1000_FCS_LEN > max) {
        e1000_stat_add(e, STAT_ROC, 1);
        return false;
    }
    fr = rx_filter(e, f, tagged);
    if (fr == FILTER_REJECT)
        return false;

    e->rx_status = fr == FILTER_INEXACT ? RXD_STAT_PIF : 0;
    e->rx_errors = 0;
    e->rx_special = 0;
    if (tagged && (reg(e, REG_CTRL) & CTRL_VME)) {
        e->rx_special = get_be16(f + 14);
        e->rx_status |= RXD_STAT_VP;
        memmove(f + 4, f, 12);
        f += 4;
        len -= 4;
    }
    if (len < E1000_MIN_FRAME) {
        memset(f + len, 0, E1000_MIN_FRAME - len);
        len = E1000_MIN_FRAME;
    }
    rx_checksums(e, f, len);
    if (!(rctl & RCTL_SECRC)) {
        uint32_t fcs = eth_fcs(f, len);
        for (int i = 0; i < 4; i++)
            f[len++] = (uint8_t)(fcs >> (8 * i));
    }
    e->rx_off = (size_t)(f - e->rxbuf);
    e->rx_len = len;
    return true;
}

static uint32_t rx_buffer_size(uint32_t rctl)
{
    unsigned bsize = (rctl >> RCTL_BSIZE_SHIFT) & 3;

    if (rctl & RCTL_BSEX)
        return bsize ? 32768u >> bsize : 2048;   /* 16384, 8192, 4096; 00 is reserved */
    return 2048u >> bsize;
}

static void count_received(struct e1000 *e, const uint8_t *f, size_t len)
{
    static const size_t limits[] = { 64, 127, 255, 511, 1023, 1522 };
    size_t wire = (reg(e, REG_RCTL) & RCTL_SECRC) ? len + E1000_FCS_LEN : len;

    e1000_stat_add(e, STAT_GPRC, 1);
    e1000_stat_add64(e, STAT_GORCL, wire);
    if (memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0)
        e1000_stat_add(e, STAT_BPRC, 1);
    else if (f[0] & 1)
        e1000_stat_add(e, STAT_MPRC, 1);
    for (unsigned i = 0; i < 6; i++) {
        if (wire <= limits[i]) {
            e1000_stat_add(e, STAT_PRC64 + 4 * i, 1);
            break;
        }
    }
}

static void write_back(uint8_t *slot, uint16_t len, uint16_t csum, uint8_t status, uint8_t errors,
                       uint16_t special)
{
    slot[8] = (uint8_t)len;
    slot[9] = (uint8_t)(len >> 8);
    slot[10] = (uint8_t)csum;
    slot[11] = (uint8_t)(csum >> 8);
    slot[13] = errors;
    slot[14] = (uint8_t)special;
    slot[15] = (uint8_t)(special >> 8);
    /* The driver reads the rest only once it sees DD. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    slot[12] = status;
}

/* Puts the prepared frame into the ring. false: not enough free buffers,
 * the frame stays pending. */
static bool rx_deliver(struct e1000 *e)
{
    uint32_t rctl = reg(e, REG_RCTL), bufsize = rx_buffer_size(rctl), need, avail, threshold;
    const uint8_t *f = e->rxbuf + e->rx_off;
    size_t len = e->rx_len, off = 0;
    struct e1000_ring r;

    if (!(rctl & RCTL_EN))
        return true;   /* receiver turned off meanwhile: the frame is lost */
    if (!e1000_bus_master(e) || !e1000_ring_get(e, REG_RDBAL, &r, WARN_RX_RING, "receive"))
        return false;
    need = (uint32_t)((len + bufsize - 1) / bufsize);
    avail = (r.tail + r.count - r.head) % r.count;
    if (need > r.count - 1) {
        e1000_warn_once(e, WARN_RX_TOO_BIG, "a %zu-byte frame needs more than the %u buffers "
                        "of the receive ring: dropped", len, r.count);
        e->rx_dropped++;
        return true;
    }
    if (need > avail)
        return false;

    for (uint32_t i = 0; i < need; i++) {
        uint8_t *slot = r.base + (size_t)r.head * E1000_DESC_SIZE;
        uint64_t addr;
        size_t n = len - off < bufsize ? len - off : bufsize;
        void *dst;

        memcpy(&addr, slot, 8);
        dst = pci_dma_ptr(&e->pdev, e->host.mem, addr, n);
        r.head = (r.head + 1) % r.count;
        if (!dst) {
            /* End the frame here with an error the driver drops it for. */
            e1000_warn_once(e, WARN_RX_BUFFER, "receive buffer 0x%llx+%zu is not in guest "
                            "RAM: frame dropped", (unsigned long long)addr, n);
            write_back(slot, 0, 0, RXD_STAT_DD | RXD_STAT_EOP, RXD_ERR_RXE, 0);
            e->rx_dropped++;
            reg_set(e, REG_RDH, r.head);
            e1000_raise(e, ICR_RXT0);
            return true;
        }
        memcpy(dst, f + off, n);
        off += n;
        if (off == len)
            write_back(slot, (uint16_t)n, e->rx_csum, RXD_STAT_DD | RXD_STAT_EOP | e->rx_status,
                       e->rx_errors, e->rx_special);
        else
            write_back(slot, (uint16_t)n, 0, RXD_STAT_DD, 0, 0);
    }
    reg_set(e, REG_RDH, r.head);
    count_received(e, f, len);

    threshold = r.count >> (1 + ((rctl >> RCTL_RDMTS_SHIFT) & 3));
    e1000_raise(e, ICR_RXT0 |
                   ((r.tail + r.count - r.head) % r.count <= threshold ? ICR_RXDMT0 : 0));
    return true;
}

void e1000_rx_run(struct e1000 *e, unsigned budget)
{
    struct net_backend *be = e->host.backend;

    if (!be)
        return;
    while (budget--) {
        if (!e->rx_pending) {
            ssize_t n = be->ops->recv(be, e->rxbuf, E1000_MAX_PACKET);

            if (n < 0)
                break;
            e->rx_pending = rx_prepare(e, (size_t)n);
            if (!e->rx_pending)
                continue;
        }
        if (!rx_deliver(e)) {
            if (!e->rx_stalled) {
                e->rx_stalled = true;
                be->ops->set_rx_notify(be, false);
                e1000_stat_add(e, STAT_RNBC, 1);
                e1000_raise(e, ICR_RXO);
            }
            return;
        }
        e->rx_pending = false;
    }
    if (e->rx_stalled) {
        e->rx_stalled = false;
        be->ops->set_rx_notify(be, true);
    }
}
