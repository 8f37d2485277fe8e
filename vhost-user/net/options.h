/* options.h: the command line of build/vhost-user-net (the part after
 * EAL's "--"), kept free of DPDK so the unit tests can exercise it.
 *
 * Two steps: vn_options_parse() checks what can be checked from the text
 * alone (syntax, ranges, sun_path length, duplicate vhost names, at least
 * one pair) before EAL starts; vn_plan_resolve() then needs what EAL knows
 * (which ethdevs exist, which lcores are enabled), given as callbacks. */
#ifndef VN_OPTIONS_H
#define VN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define VN_MAX_VHOST   32
#define VN_MAX_PAIRS   32
#define VN_MAX_PORTS   (2 * VN_MAX_PAIRS)
/* rte_vhost serves at most 128 queue pairs (VHOST_MAX_QUEUE_PAIRS). */
#define VN_MAX_QUEUES  128
#define VN_NAME_MAX    64
/* sizeof(((struct sockaddr_un *)0)->sun_path) on Linux. */
#define VN_SUN_PATH_MAX 108
#define VN_MAX_BURST   512
#define VN_MAX_LCORES  1024
#define VN_PATH_MAX    4096

#define VN_DEFAULT_BURST      32
#define VN_DEFAULT_MBUFS      8191
#define VN_DEFAULT_MBUF_CACHE 256
/* rte_mempool refuses a cache above RTE_MEMPOOL_CACHE_MAX_SIZE (512). */
#define VN_MAX_MBUF_CACHE     512

struct vn_vhost_opt {
    char name[VN_NAME_MAX];
    char socket[VN_SUN_PATH_MAX];
    bool client;
    unsigned queues;
};

struct vn_pair_opt {
    char a[VN_NAME_MAX];
    char b[VN_NAME_MAX];
    int lcore; /* -1: round-robin over the worker lcores */
};

struct vn_options {
    struct vn_vhost_opt vhost[VN_MAX_VHOST];
    unsigned n_vhost;
    struct vn_pair_opt pair[VN_MAX_PAIRS];
    unsigned n_pairs;
    unsigned burst;
    unsigned mbufs;
    unsigned mbuf_cache;
    char stats_path[VN_PATH_MAX]; /* "" = no stats file */
};

/* Parses the application options (argv[0] is the first option, not the
 * program name). On error returns -1 with "--flag: what is wrong" in err. */
int vn_options_parse(struct vn_options *o, int argc, char **argv, char *err, size_t errlen);

enum vn_lcore_role { VN_LCORE_OFF, VN_LCORE_MAIN, VN_LCORE_WORKER };

/* What EAL knows, asked through callbacks so tests can fake it. */
struct vn_env {
    bool (*ethdev_exists)(const char *name, void *ctx);
    enum vn_lcore_role (*lcore_role)(unsigned lcore, void *ctx);
    const unsigned *workers; /* worker lcores in EAL order, for round-robin */
    unsigned n_workers;
    void *ctx;
};

struct vn_port_plan {
    char name[VN_NAME_MAX];
    bool is_vhost;
    int vhost_idx; /* into vn_options.vhost when is_vhost */
    unsigned queues; /* vhost: from --vhost; ethdev: the partner's, or 1 */
};

struct vn_pair_plan {
    unsigned a, b; /* into vn_plan.port; a == b is a hairpin */
    unsigned lcore;
};

struct vn_plan {
    struct vn_port_plan port[VN_MAX_PORTS];
    unsigned n_ports;
    struct vn_pair_plan pair[VN_MAX_PAIRS];
    unsigned n_pairs;
};

/* Names every port of every pair, rejects unknown names, a vhost name that
 * is also an ethdev name, a port in two pairs, @LCORE not a worker, and
 * assigns lcores. Returns -1 with "--flag: what is wrong" in err. */
int vn_plan_resolve(const struct vn_options *o, const struct vn_env *env, struct vn_plan *plan,
                    char *err, size_t errlen);

#endif
