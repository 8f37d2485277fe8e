/* options.c: parsing and resolving the application options of
 * build/vhost-user-net. Everything here is text from the command line:
 * every field is bounded and every number range-checked. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Port names appear in "--pair A,B@LCORE" and "--vhost NAME=...", so they
 * cannot hold ',', '@' or '='; ':' and '.' stay allowed for PCI addresses. */
static bool valid_port_name(const char *s, size_t len)
{
    if (len == 0 || len >= VN_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

static int parse_vhost(struct vn_options *o, const char *arg, char *err, size_t errlen)
{
    if (o->n_vhost >= VN_MAX_VHOST)
        return fail(err, errlen, "--vhost: more than %d vhost ports", VN_MAX_VHOST);
    const char *eq = strchr(arg, '=');
    if (!eq)
        return fail(err, errlen, "--vhost: '%s' is not NAME=SOCKET[,client][,queues=N]", arg);
    size_t nlen = (size_t)(eq - arg);
    if (!valid_port_name(arg, nlen))
        return fail(err, errlen,
                    "--vhost: port name '%.*s' must be 1..%d characters of [A-Za-z0-9_.:-]",
                    (int)nlen, arg, VN_NAME_MAX - 1);
    struct vn_vhost_opt *v = &o->vhost[o->n_vhost];
    memset(v, 0, sizeof(*v));
    memcpy(v->name, arg, nlen);
    v->queues = 1;
    for (unsigned i = 0; i < o->n_vhost; i++)
        if (!strcmp(o->vhost[i].name, v->name))
            return fail(err, errlen, "--vhost: duplicate port name '%s'", v->name);

    const char *path = eq + 1;
    const char *comma = strchr(path, ',');
    size_t plen = comma ? (size_t)(comma - path) : strlen(path);
    if (plen == 0)
        return fail(err, errlen, "--vhost: %s: empty socket path", v->name);
    if (plen >= VN_SUN_PATH_MAX)
        return fail(err, errlen,
                    "--vhost: %s: socket path is %zu bytes, longer than sun_path allows (%d)",
                    v->name, plen, VN_SUN_PATH_MAX - 1);
    memcpy(v->socket, path, plen);
    for (unsigned i = 0; i < o->n_vhost; i++)
        if (!strcmp(o->vhost[i].socket, v->socket))
            return fail(err, errlen, "--vhost: %s: socket %s is already used by port %s", v->name,
                        v->socket, o->vhost[i].name);

    bool seen_queues = false;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t olen = comma ? (size_t)(comma - opt) : strlen(opt);
        char buf[32];
        if (olen >= sizeof(buf))
            return fail(err, errlen, "--vhost: %s: unknown option '%.*s'", v->name, (int)olen, opt);
        memcpy(buf, opt, olen);
        buf[olen] = 0;
        if (!strcmp(buf, "client")) {
            v->client = true;
        } else if (!strncmp(buf, "queues=", 7)) {
            if (seen_queues)
                return fail(err, errlen, "--vhost: %s: queues given twice", v->name);
            seen_queues = true;
            if (!parse_uint(buf + 7, 1, VN_MAX_QUEUES, &v->queues))
                return fail(err, errlen, "--vhost: %s: queues must be 1..%d, got '%s'", v->name,
                            VN_MAX_QUEUES, buf + 7);
        } else {
            return fail(err, errlen, "--vhost: %s: unknown option '%s' (client, queues=N)", v->name,
                        buf);
        }
    }
    o->n_vhost++;
    return 0;
}

static int parse_pair(struct vn_options *o, const char *arg, char *err, size_t errlen)
{
    if (o->n_pairs >= VN_MAX_PAIRS)
        return fail(err, errlen, "--pair: more than %d pairs", VN_MAX_PAIRS);
    struct vn_pair_opt *p = &o->pair[o->n_pairs];
    memset(p, 0, sizeof(*p));
    p->lcore = -1;
    const char *comma = strchr(arg, ',');
    if (!comma)
        return fail(err, errlen, "--pair: '%s' is not A,B[@LCORE]", arg);
    const char *at = strchr(comma + 1, '@');
    size_t alen = (size_t)(comma - arg);
    size_t blen = at ? (size_t)(at - comma - 1) : strlen(comma + 1);
    if (!valid_port_name(arg, alen) || !valid_port_name(comma + 1, blen))
        return fail(err, errlen,
                    "--pair: '%s': port names must be 1..%d characters of [A-Za-z0-9_.:-]", arg,
                    VN_NAME_MAX - 1);
    memcpy(p->a, arg, alen);
    memcpy(p->b, comma + 1, blen);
    if (at) {
        unsigned lc;
        if (!parse_uint(at + 1, 0, VN_MAX_LCORES - 1, &lc))
            return fail(err, errlen, "--pair: '%s': LCORE must be a number 0..%d", arg,
                        VN_MAX_LCORES - 1);
        p->lcore = (int)lc;
    }
    o->n_pairs++;
    return 0;
}

/* "--flag VALUE" or "--flag=VALUE": returns the value or NULL if absent. */
static const char *take_value(int argc, char **argv, int *i, const char *flag)
{
    const char *a = argv[*i];
    size_t fl = strlen(flag);
    if (a[fl] == '=')
        return a + fl + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int vn_options_parse(struct vn_options *o, int argc, char **argv, char *err, size_t errlen)
{
    static const char *const flags[] = { "--vhost", "--pair", "--burst", "--mbufs", "--mbuf-cache",
                                         "--stats" };
    memset(o, 0, sizeof(*o));
    o->burst = VN_DEFAULT_BURST;
    o->mbufs = VN_DEFAULT_MBUFS;
    o->mbuf_cache = VN_DEFAULT_MBUF_CACHE;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *flag = NULL;
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
            size_t fl = strlen(flags[f]);
            if (!strncmp(a, flags[f], fl) && (a[fl] == 0 || a[fl] == '=')) {
                flag = flags[f];
                break;
            }
        }
        if (!flag)
            return fail(err, errlen, "%s: unknown option (--vhost, --pair, --burst, --mbufs, "
                        "--mbuf-cache, --stats)", a);
        const char *val = take_value(argc, argv, &i, flag);
        if (!val)
            return fail(err, errlen, "%s: needs a value", flag);
        int rc = 0;
        if (!strcmp(flag, "--vhost")) {
            rc = parse_vhost(o, val, err, errlen);
        } else if (!strcmp(flag, "--pair")) {
            rc = parse_pair(o, val, err, errlen);
        } else if (!strcmp(flag, "--burst")) {
            if (!parse_uint(val, 1, VN_MAX_BURST, &o->burst))
                rc = fail(err, errlen, "--burst: must be 1..%d, got '%s'", VN_MAX_BURST, val);
        } else if (!strcmp(flag, "--mbufs")) {
            if (!parse_uint(val, 512, 1u << 24, &o->mbufs))
                rc = fail(err, errlen, "--mbufs: must be 512..%u, got '%s'", 1u << 24, val);
        } else if (!strcmp(flag, "--mbuf-cache")) {
            if (!parse_uint(val, 0, VN_MAX_MBUF_CACHE, &o->mbuf_cache))
                rc = fail(err, errlen, "--mbuf-cache: must be 0..%d, got '%s'", VN_MAX_MBUF_CACHE,
                          val);
        } else {
            if (!*val)
                rc = fail(err, errlen, "--stats: empty file name");
            else if (strlen(val) + 8 >= VN_PATH_MAX) /* room for the ".tmp" name */
                rc = fail(err, errlen, "--stats: file name too long");
            else
                snprintf(o->stats_path, sizeof(o->stats_path), "%s", val);
        }
        if (rc)
            return rc;
    }
    /* rte_mempool wants cache * 1.5 <= pool size (the default cache fits
     * the smallest pool allowed). */
    if ((unsigned long)o->mbuf_cache * 3 > (unsigned long)o->mbufs * 2)
        return fail(err, errlen, "--mbuf-cache: %u is more than 2/3 of --mbufs %u", o->mbuf_cache,
                    o->mbufs);
    if (o->n_pairs == 0)
        return fail(err, errlen, "--pair: no pairs given (nothing to forward)");
    return 0;
}

static int find_or_add_port(const struct vn_options *o, const struct vn_env *env,
                            struct vn_plan *plan, const char *name, unsigned *idx, char *err,
                            size_t errlen)
{
    for (unsigned i = 0; i < plan->n_ports; i++)
        if (!strcmp(plan->port[i].name, name)) {
            *idx = i;
            return 0;
        }
    struct vn_port_plan *p = &plan->port[plan->n_ports];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->vhost_idx = -1;
    p->queues = 1;
    for (unsigned v = 0; v < o->n_vhost; v++)
        if (!strcmp(o->vhost[v].name, name)) {
            p->is_vhost = true;
            p->vhost_idx = (int)v;
            p->queues = o->vhost[v].queues;
        }
    if (!p->is_vhost && !env->ethdev_exists(name, env->ctx))
        return fail(err, errlen,
                    "--pair: unknown port '%s' (not a --vhost name nor a DPDK ethdev; "
                    "ethdevs come from EAL's --vdev or -a)", name);
    *idx = plan->n_ports++;
    return 0;
}

int vn_plan_resolve(const struct vn_options *o, const struct vn_env *env, struct vn_plan *plan,
                    char *err, size_t errlen)
{
    memset(plan, 0, sizeof(*plan));
    for (unsigned v = 0; v < o->n_vhost; v++)
        if (env->ethdev_exists(o->vhost[v].name, env->ctx))
            return fail(err, errlen, "--vhost: name '%s' is also a DPDK ethdev's name",
                        o->vhost[v].name);
    if (env->n_workers == 0)
        return fail(err, errlen,
                    "--pair: no worker lcore (give EAL two lcores or more, e.g. -l 0,1: "
                    "the main lcore does not forward)");

    unsigned rr = 0;
    for (unsigned i = 0; i < o->n_pairs; i++) {
        const struct vn_pair_opt *po = &o->pair[i];
        unsigned before = plan->n_ports;
        unsigned a, b;
        if (find_or_add_port(o, env, plan, po->a, &a, err, errlen) ||
            find_or_add_port(o, env, plan, po->b, &b, err, errlen))
            return -1;
        /* One pair per port: a port's queues are then only ever touched by
         * one lcore, which DPDK's ethdev and vhost queues require. */
        bool a_new = a >= before, b_new = b >= before;
        if (!a_new || !b_new)
            return fail(err, errlen, "--pair: port '%s' is already in another pair (one pair per port)",
                        !a_new ? po->a : po->b);
        struct vn_pair_plan *pp = &plan->pair[plan->n_pairs];
        pp->a = a;
        pp->b = b;
        if (po->lcore >= 0) {
            enum vn_lcore_role role = env->lcore_role((unsigned)po->lcore, env->ctx);
            if (role == VN_LCORE_OFF)
                return fail(err, errlen, "--pair: %s,%s@%d: lcore %d is not enabled in EAL (-l/--lcores)",
                            po->a, po->b, po->lcore, po->lcore);
            if (role == VN_LCORE_MAIN)
                return fail(err, errlen,
                            "--pair: %s,%s@%d: lcore %d is EAL's main lcore, which does not forward",
                            po->a, po->b, po->lcore, po->lcore);
            pp->lcore = (unsigned)po->lcore;
        } else {
            pp->lcore = env->workers[rr++ % env->n_workers];
        }
        /* An ethdev takes as many queues as its vhost partner, so queue i
         * maps to queue i both ways. */
        struct vn_port_plan *pa = &plan->port[a], *pb = &plan->port[b];
        if (!pa->is_vhost && pb->is_vhost)
            pa->queues = pb->queues;
        if (!pb->is_vhost && pa->is_vhost)
            pb->queues = pa->queues;
        plan->n_pairs++;
    }
    return 0;
}
