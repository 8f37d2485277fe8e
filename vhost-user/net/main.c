/* main.c: build/vhost-user-net, a DPDK forwarder between vhost-user ports
 * (served by rte_vhost) and DPDK ethdevs, pair by pair, on polling worker
 * lcores. The main lcore only writes counters and waits for signals.
 *
 *   vhost-user-net [EAL options] -- --vhost NAME=SOCKET[,client][,queues=N]
 *       --pair A,B[@LCORE] [--burst N] [--mbufs N] [--mbuf-cache N] [--stats FILE]
 *
 * Bad application options exit 2 with "vhost-user-net: --flag: what". */
#include "port.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t print_signal;

static void on_quit(int sig)
{
    quit_signal = sig;
}

static void on_usr1(int sig)
{
    (void)sig;
    print_signal = 1;
}

static void usage(void)
{
    printf("usage: vhost-user-net [EAL options] -- [options]\n"
           "  --vhost NAME=SOCKET[,client][,queues=N]  a vhost-user port (server socket unless\n"
           "                        client; queues 1..%d, default 1); repeatable\n"
           "  --pair A,B[@LCORE]    forward A->B and B->A (A == B: hairpin) on a worker lcore;\n"
           "                        A, B: --vhost names or DPDK ethdev names; repeatable\n"
           "  --burst N             packets per burst (1..%d, default %d)\n"
           "  --mbufs N             mbuf pool size (default %d)\n"
           "  --mbuf-cache N        per-lcore mbuf cache (0..%d, default %d)\n"
           "  --stats FILE          per-port JSON counters, rewritten every second\n"
           "  SIGUSR1 prints the counters; SIGINT/SIGTERM stop.\n",
           VN_MAX_QUEUES, VN_MAX_BURST, VN_DEFAULT_BURST, VN_DEFAULT_MBUFS, VN_MAX_MBUF_CACHE,
           VN_DEFAULT_MBUF_CACHE);
}

static bool env_ethdev_exists(const char *name, void *ctx)
{
    (void)ctx;
    uint16_t id;
    return rte_eth_dev_get_port_by_name(name, &id) == 0;
}

static enum vn_lcore_role env_lcore_role(unsigned lcore, void *ctx)
{
    (void)ctx;
    if (lcore >= RTE_MAX_LCORE || !rte_lcore_is_enabled(lcore))
        return VN_LCORE_OFF;
    return lcore == rte_get_main_lcore() ? VN_LCORE_MAIN : VN_LCORE_WORKER;
}

static struct vn_options opts;
static struct vn_plan plan;
static struct vn_port ports[VN_MAX_PORTS];
static struct vn_lcore_work work[RTE_MAX_LCORE];

static void close_ports(void)
{
    for (unsigned i = 0; i < plan.n_ports; i++) {
        if (ports[i].is_vhost)
            vn_vhost_close(&ports[i]);
        else
            vn_ethdev_close(&ports[i]);
    }
}

int main(int argc, char **argv)
{
    char err[512];
    int dashdash = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dashdash = i;
            break;
        }
    for (int i = dashdash + 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
    /* The application options are checked before EAL runs, so a typo costs
     * no memory set-up and leaves no /var/run/dpdk behind. */
    int app_argc = dashdash < argc ? argc - dashdash - 1 : 0;
    if (vn_options_parse(&opts, app_argc, argv + dashdash + 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "vhost-user-net: %s\n", err);
        return 2;
    }

    int eal_args = rte_eal_init(argc, argv);
    if (eal_args < 0) {
        fprintf(stderr, "vhost-user-net: EAL: %s\n", rte_strerror(rte_errno));
        return rte_errno == EINVAL ? 2 : 1;
    }

    unsigned workers[RTE_MAX_LCORE], n_workers = 0;
    unsigned lc;
    RTE_LCORE_FOREACH_WORKER(lc) workers[n_workers++] = lc;
    struct vn_env env = { .ethdev_exists = env_ethdev_exists,
                          .lcore_role = env_lcore_role,
                          .workers = workers,
                          .n_workers = n_workers };
    if (vn_plan_resolve(&opts, &env, &plan, err, sizeof(err)) != 0) {
        fprintf(stderr, "vhost-user-net: %s\n", err);
        rte_eal_cleanup();
        return 2;
    }
    for (unsigned v = 0; v < opts.n_vhost; v++) {
        bool used = false;
        for (unsigned i = 0; i < plan.n_ports; i++)
            used |= plan.port[i].is_vhost && plan.port[i].vhost_idx == (int)v;
        if (!used)
            printf("vhost-user-net: --vhost %s is in no --pair: not served\n", opts.vhost[v].name);
    }

    struct sigaction sa = { .sa_handler = on_quit };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    /* A frontend vanishing mid-message must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    /* Default-sized mbufs (2 KiB of data): bigger frames become chains,
     * which rte_vhost builds and consumes and MRG_RXBUF lets a guest take. */
    struct rte_mempool *pool = rte_pktmbuf_pool_create("vn_mbufs", opts.mbufs, opts.mbuf_cache, 0,
                                                       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
    if (!pool) {
        fprintf(stderr, "vhost-user-net: --mbufs: cannot allocate %u mbufs: %s\n", opts.mbufs,
                rte_strerror(rte_errno));
        goto out;
    }

    for (unsigned i = 0; i < plan.n_ports; i++) {
        struct vn_port *p = &ports[i];
        snprintf(p->name, sizeof(p->name), "%s", plan.port[i].name);
        p->is_vhost = plan.port[i].is_vhost;
        p->queues = plan.port[i].queues;
        p->vid = -1;
        if (p->is_vhost)
            p->vopt = &opts.vhost[plan.port[i].vhost_idx];
    }
    vn_vhost_set_ports(ports, plan.n_ports);
    for (unsigned i = 0; i < plan.n_ports; i++)
        if (!ports[i].is_vhost && vn_ethdev_setup(&ports[i], pool) != 0)
            goto out;
    for (unsigned i = 0; i < plan.n_ports; i++)
        if (ports[i].is_vhost && vn_vhost_setup(&ports[i]) != 0)
            goto out;

    for (unsigned i = 0; i < plan.n_pairs; i++) {
        struct vn_lcore_work *w = &work[plan.pair[i].lcore];
        w->a[w->n_pairs] = &ports[plan.pair[i].a];
        w->b[w->n_pairs] = &ports[plan.pair[i].b];
        w->n_pairs++;
        printf("vhost-user-net: pair %s,%s on lcore %u\n", ports[plan.pair[i].a].name,
               ports[plan.pair[i].b].name, plan.pair[i].lcore);
    }
    RTE_LCORE_FOREACH_WORKER(lc) {
        if (!work[lc].n_pairs)
            continue;
        work[lc].pool = pool;
        work[lc].burst = opts.burst;
        rte_eal_remote_launch(vn_forward_lcore, &work[lc], lc);
    }
    printf("vhost-user-net: forwarding (burst %u, %u mbufs)\n", opts.burst, opts.mbufs);
    fflush(stdout);

    unsigned ticks = 0;
    bool warned_stats = false;
    while (!quit_signal) {
        usleep(100 * 1000);
        if (print_signal) {
            print_signal = 0;
            vn_stats_print(stdout, ports, plan.n_ports);
            fflush(stdout);
        }
        if (opts.stats_path[0] && ++ticks % 10 == 0 &&
            vn_stats_write_file(opts.stats_path, ports, plan.n_ports) != 0 && !warned_stats) {
            warned_stats = true;
            fprintf(stderr, "vhost-user-net: --stats: cannot write %s\n", opts.stats_path);
        }
    }
    printf("vhost-user-net: signal %d, stopping\n", (int)quit_signal);
    rc = 0;
out:
    vn_forward_stop();
    rte_eal_mp_wait_lcore();
    if (opts.stats_path[0] && rc == 0)
        (void)vn_stats_write_file(opts.stats_path, ports, plan.n_ports);
    close_ports();
    if (pool)
        rte_mempool_free(pool);
    rte_eal_cleanup();
    fflush(stdout);
    return rc;
}
