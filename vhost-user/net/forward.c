/* forward.c: the polling loop of a worker lcore of build/vhost-user-net.
 * Each pair A,B is served in both directions (once for a hairpin A,A):
 * queue i of the source goes to queue i of the destination when it has an
 * enabled queue i, else to queue 0. What the destination does not take is
 * freed and counted as the destination's tx drops. */
#include "port.h"

#include <rte_ethdev.h>
#include <rte_vhost.h>

static int vn_stop_flag;

void vn_forward_stop(void)
{
    __atomic_store_n(&vn_stop_flag, 1, __ATOMIC_RELEASE);
}

/* Only the owning lcore writes a port's counters (one pair per port). */
static inline void cnt_add(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline bool vring_on(const struct vn_port *p, unsigned vring)
{
    return __atomic_load_n(&p->vring_enabled[vring], __ATOMIC_RELAXED) != 0;
}

/* See vhost_port.c for the other half of this handshake. */
static inline bool port_enter(struct vn_port *p)
{
    if (!p->is_vhost)
        return true;
    __atomic_store_n(&p->in_use, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->ready, __ATOMIC_SEQ_CST))
        return true;
    __atomic_store_n(&p->in_use, 0, __ATOMIC_RELEASE);
    return false;
}

static inline void port_leave(struct vn_port *p, bool entered)
{
    if (p->is_vhost && entered)
        __atomic_store_n(&p->in_use, 0, __ATOMIC_RELEASE);
}

static inline uint16_t port_rx(struct vn_port *p, unsigned qi, struct rte_mempool *pool,
                               struct rte_mbuf **pkts, uint16_t n)
{
    if (p->is_vhost) {
        /* Guest TX is vring 2*qi+1. */
        if (!vring_on(p, 2 * qi + 1))
            return 0;
        return rte_vhost_dequeue_burst(p->vid, (uint16_t)(2 * qi + 1), pool, pkts, n);
    }
    return rte_eth_rx_burst(p->port_id, (uint16_t)qi, pkts, n);
}

static inline unsigned dst_queue(const struct vn_port *dst, unsigned qi)
{
    if (qi >= dst->queues)
        return 0;
    if (dst->is_vhost && !vring_on(dst, 2 * qi))
        return 0;
    return qi;
}

/* Returns how many the destination took; every mbuf is then either the
 * destination's or freed. */
static inline uint16_t port_tx(struct vn_port *p, unsigned qi, struct rte_mbuf **pkts, uint16_t n)
{
    uint16_t sent;
    if (p->is_vhost) {
        /* rte_vhost copies into the guest's buffers: every mbuf stays ours.
         * Guest RX is vring 2*qi. */
        sent = vring_on(p, 2 * qi) ? rte_vhost_enqueue_burst(p->vid, (uint16_t)(2 * qi), pkts, n) : 0;
        rte_pktmbuf_free_bulk(pkts, n);
        return sent;
    }
    sent = rte_eth_tx_burst(p->port_id, (uint16_t)qi, pkts, n);
    if (sent < n)
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    return sent;
}

static void forward_dir(struct vn_port *src, struct vn_port *dst, bool dst_ok,
                        struct rte_mempool *pool, uint16_t burst)
{
    struct rte_mbuf *pkts[VN_MAX_BURST];
    uint32_t len[VN_MAX_BURST];

    for (unsigned qi = 0; qi < src->queues; qi++) {
        uint16_t n = port_rx(src, qi, pool, pkts, burst);
        if (n == 0)
            continue;
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < n; i++) {
            len[i] = rte_pktmbuf_pkt_len(pkts[i]);
            bytes += len[i];
        }
        cnt_add(&src->cnt.rx_packets, n);
        cnt_add(&src->cnt.rx_bytes, bytes);
        uint16_t sent = 0;
        if (dst_ok) {
            sent = port_tx(dst, dst_queue(dst, qi), pkts, n);
        } else {
            rte_pktmbuf_free_bulk(pkts, n);
        }
        if (sent) {
            uint64_t txb = 0;
            for (uint16_t i = 0; i < sent; i++)
                txb += len[i];
            cnt_add(&dst->cnt.tx_packets, sent);
            cnt_add(&dst->cnt.tx_bytes, txb);
        }
        if (sent < n)
            cnt_add(&dst->cnt.tx_drops, (uint64_t)(n - sent));
    }
}

int vn_forward_lcore(void *arg)
{
    struct vn_lcore_work *w = arg;
    uint16_t burst = (uint16_t)w->burst;

    while (!__atomic_load_n(&vn_stop_flag, __ATOMIC_ACQUIRE)) {
        for (unsigned i = 0; i < w->n_pairs; i++) {
            struct vn_port *a = w->a[i], *b = w->b[i];
            bool a_ok = port_enter(a);
            if (a == b) {
                if (a_ok)
                    forward_dir(a, a, true, w->pool, burst);
                port_leave(a, a_ok);
                continue;
            }
            bool b_ok = port_enter(b);
            if (a_ok)
                forward_dir(a, b, b_ok, w->pool, burst);
            if (b_ok)
                forward_dir(b, a, a_ok, w->pool, burst);
            port_leave(b, b_ok);
            port_leave(a, a_ok);
        }
    }
    return 0;
}
