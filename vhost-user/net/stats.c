/* stats.c: the per-port counters of build/vhost-user-net as one JSON
 * object, {"ports":[{...},...]}: what --stats FILE holds (rewritten every
 * second) and what SIGUSR1 prints. */
#include "port.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>

static uint64_t rd(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void vn_stats_print(FILE *f, const struct vn_port *ports, unsigned n)
{
    fprintf(f, "{\"ports\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct vn_port *p = &ports[i];
        const struct vn_counters *c = &p->cnt;
        fprintf(f, "%s\n {\"name\":\"%s\",\"type\":\"%s\",\"queues\":%u", i ? "," : "", p->name,
                p->is_vhost ? "vhost" : "ethdev", p->queues);
        if (p->is_vhost) {
            /* Port names are [A-Za-z0-9_.:-]; a path may hold anything. */
            fprintf(f, ",\"socket\":\"");
            for (const char *s = p->vopt->socket; *s; s++) {
                if (*s == '"' || *s == '\\')
                    fputc('\\', f);
                if ((unsigned char)*s < 0x20)
                    fprintf(f, "\\u%04x", (unsigned char)*s);
                else
                    fputc(*s, f);
            }
            fprintf(f, "\",\"mode\":\"%s\",\"connected\":%s,\"ready\":%s",
                    p->vopt->client ? "client" : "server",
                    __atomic_load_n(&p->connected, __ATOMIC_RELAXED) ? "true" : "false",
                    __atomic_load_n(&p->ready, __ATOMIC_RELAXED) ? "true" : "false");
        }
        fprintf(f,
                ",\"rx_packets\":%llu,\"rx_bytes\":%llu,\"tx_packets\":%llu,\"tx_bytes\":%llu,"
                "\"tx_drops\":%llu",
                (unsigned long long)rd(&c->rx_packets), (unsigned long long)rd(&c->rx_bytes),
                (unsigned long long)rd(&c->tx_packets), (unsigned long long)rd(&c->tx_bytes),
                (unsigned long long)rd(&c->tx_drops));
        if (!p->is_vhost && p->started) {
            /* What the driver dropped before we saw it. */
            struct rte_eth_stats es;
            if (rte_eth_stats_get(p->port_id, &es) == 0)
                fprintf(f, ",\"rx_drops\":%llu", (unsigned long long)(es.imissed + es.rx_nombuf));
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n]}\n");
}

int vn_stats_write_file(const char *path, const struct vn_port *ports, unsigned n)
{
    char tmp[VN_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    vn_stats_print(f, ports, n);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}
