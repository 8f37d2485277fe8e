/* ethdev_port.c: a DPDK ethdev as a port of build/vhost-user-net (net_tap,
 * net_ring, net_af_packet, a PF/VF on vfio-pci): as many rx/tx queue pairs
 * as its vhost partner (capped by the driver), chained mbufs for frames
 * bigger than one mbuf where the driver can, MTU 9000 where it allows. */
#include "port.h"

#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>

#define VN_RX_DESC 1024
#define VN_TX_DESC 1024
#define VN_JUMBO_MTU 9000

int vn_ethdev_setup(struct vn_port *p, struct rte_mempool *pool)
{
    if (rte_eth_dev_get_port_by_name(p->name, &p->port_id) != 0) {
        fprintf(stderr, "vhost-user-net: %s: no such ethdev\n", p->name);
        return -1;
    }
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(p->port_id, &info);
    if (rc != 0) {
        fprintf(stderr, "vhost-user-net: %s: cannot read device info: %s\n", p->name, rte_strerror(-rc));
        return -1;
    }
    unsigned maxq = info.max_rx_queues < info.max_tx_queues ? info.max_rx_queues : info.max_tx_queues;
    if (maxq == 0) {
        fprintf(stderr, "vhost-user-net: %s: driver offers no queues\n", p->name);
        return -1;
    }
    if (p->queues > maxq) {
        printf("vhost-user-net: %s: driver has %u queue pairs, not %u; the partner's extra queues "
               "send to queue 0\n", p->name, maxq, p->queues);
        p->queues = maxq;
    }

    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    /* Frames bigger than one mbuf (MTU 9000 with 2 KiB mbufs) need chains. */
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    rc = rte_eth_dev_configure(p->port_id, (uint16_t)p->queues, (uint16_t)p->queues, &conf);
    if (rc != 0) {
        fprintf(stderr, "vhost-user-net: %s: configure with %u queues: %s\n", p->name, p->queues,
                rte_strerror(-rc));
        return -1;
    }
    uint16_t nb_rxd = VN_RX_DESC, nb_txd = VN_TX_DESC;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nb_rxd, &nb_txd);
    if (rc != 0) {
        fprintf(stderr, "vhost-user-net: %s: descriptor counts: %s\n", p->name, rte_strerror(-rc));
        return -1;
    }
    int socket = rte_eth_dev_socket_id(p->port_id);
    if (socket < 0)
        socket = (int)rte_socket_id();
    for (unsigned q = 0; q < p->queues; q++) {
        struct rte_eth_rxconf rxc = info.default_rxconf;
        struct rte_eth_txconf txc = info.default_txconf;
        rxc.offloads = conf.rxmode.offloads;
        txc.offloads = conf.txmode.offloads;
        rc = rte_eth_rx_queue_setup(p->port_id, (uint16_t)q, nb_rxd, (unsigned)socket, &rxc, pool);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(p->port_id, (uint16_t)q, nb_txd, (unsigned)socket, &txc);
        if (rc != 0) {
            fprintf(stderr, "vhost-user-net: %s: queue %u setup: %s\n", p->name, q, rte_strerror(-rc));
            return -1;
        }
    }
    /* Best effort: drivers without MTU control (net_ring) simply pass
     * whatever they are given. */
    uint16_t mtu = info.max_mtu < VN_JUMBO_MTU ? info.max_mtu : VN_JUMBO_MTU;
    if (mtu > RTE_ETHER_MTU && (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_SCATTER) &&
        rte_eth_dev_set_mtu(p->port_id, mtu) != 0)
        printf("vhost-user-net: %s: MTU stays at the driver's default\n", p->name);
    rc = rte_eth_dev_start(p->port_id);
    if (rc != 0) {
        fprintf(stderr, "vhost-user-net: %s: start: %s\n", p->name, rte_strerror(-rc));
        return -1;
    }
    p->started = true;
    /* A switch port sees every MAC; a driver without the knob is fine. */
    (void)rte_eth_promiscuous_enable(p->port_id);
    printf("vhost-user-net: %s: ethdev port %u, %u queue pair(s), %u/%u descriptors\n", p->name,
           p->port_id, p->queues, nb_rxd, nb_txd);
    return 0;
}

void vn_ethdev_close(struct vn_port *p)
{
    if (!p->started)
        return;
    (void)rte_eth_dev_stop(p->port_id);
    (void)rte_eth_dev_close(p->port_id);
    p->started = false;
}
