/* driver.c: vhost-blk-driver, a userspace virtio-blk driver acting as a
 * vhost-user frontend, to measure a vhost-user-blk backend without a VM.
 *
 * It behaves like a guest's virtio_blk as far as the backend can tell: split
 * rings in shared memory, a 3-descriptor chain per request (header, data,
 * status), kicks only when the backend asks for them (EVENT_IDX avail_event,
 * else VRING_USED_F_NO_NOTIFY), and after each batch of completions it asks
 * for the next interrupt (used_event = last used index, as Linux does when it
 * re-enables callbacks). By default it never sleeps on the call eventfd: it
 * busy-polls the used ring and only counts the calls the backend sent. With
 * --sleep-after-us N it sleeps on the call eventfds after N us without a
 * completion: on CPUs shared with other work a spinning driver is
 * descheduled for whole time slices, and then it, not the backend, sets the
 * pace. Calls are counted the same either way.
 *
 * For each workload: submit QD requests per queue, keep QD in flight, warm
 * up, then measure for --seconds: I/Os completed, the backend's CPU time
 * (utime+stime of --backend-pid from /proc/PID/stat, and the same to the
 * nanosecond from its threads' schedstat: iops_per_cpu_s uses that), calls
 * and kicks. The
 * first --verify completions of each workload are compared with pread() of
 * the image. One "RESULT key=value ..." line per workload on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "virtq.h"
#include "vu_client.h"

#define MAX_WORKLOADS 8
#define SECTOR 512u

struct workload {
    char name[16];
    bool random;
    uint32_t bs;
    unsigned qd;            /* per queue */
};

struct slot {
    struct virtio_blk_outhdr *hdr;
    uint8_t *data;
    uint8_t *status;
    uint64_t offset;
};

struct queue_state {
    struct slot *slots;     /* slot s owns descriptors 3s, 3s+1, 3s+2 */
    unsigned inflight;
};

struct run {
    struct vuc *c;
    struct queue_state qs[VUC_MAX_QUEUES];
    const struct workload *w;
    uint64_t disk_bytes;
    uint64_t seq_next;
    uint64_t rng;
    int image_fd;
    unsigned verify_left;
    uint64_t completed, errors, kicks;
    bool submitting;
    uint8_t *verify_buf;
    double sleep_after_s;   /* 0: never sleep */
    uint64_t sleeps;
    uint64_t calls_seen;    /* read from the call eventfds while sleeping */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime+stime of a whole process in seconds, -1 when unreadable */
static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* the command name may hold spaces and parentheses: fields start after the last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* The same CPU time in nanoseconds: the sum of every thread's time on a CPU
 * from /proc/PID/task/TID/schedstat. /proc/PID/stat counts in clock ticks
 * (10 ms), too coarse for a backend that uses 0.05 s in a 3 s window.
 * -1 when unreadable. */
static double proc_cpu_precise_s(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char file[384], buf[128];
        snprintf(file, sizeof(file), "%s/%s/schedstat", path, e->d_name);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;  /* the thread just exited */
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        unsigned long long ns;
        if (n > 0 && (buf[n] = 0, sscanf(buf, "%llu", &ns) == 1))
            total += ns;
    }
    closedir(d);
    return (double)total / 1e9;
}

static uint64_t next_rand(struct run *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static uint64_t next_offset(struct run *r)
{
    uint64_t blocks = r->disk_bytes / r->w->bs;
    if (r->w->random)
        return (next_rand(r) % blocks) * r->w->bs;
    uint64_t off = r->seq_next;
    r->seq_next = (off + r->w->bs) % (blocks * r->w->bs);
    return off;
}

static void post(struct run *r, unsigned qi, unsigned s)
{
    struct vuc_queue *q = &r->c->q[qi];
    struct slot *sl = &r->qs[qi].slots[s];
    sl->offset = next_offset(r);
    sl->hdr->type = VIRTIO_BLK_T_IN;
    sl->hdr->ioprio = 0;
    sl->hdr->sector = sl->offset / SECTOR;
    *sl->status = 0xff;
    q->vr.avail->ring[q->avail_idx & (q->vr.num - 1)] = (uint16_t)(3 * s);
    q->avail_idx++;
    r->qs[qi].inflight++;
}

/* Makes new avail entries visible and kicks when the backend asked for it. */
static void publish_avail(struct run *r, unsigned qi)
{
    struct vuc_queue *q = &r->c->q[qi];
    if (q->avail_idx == q->kicked_idx)
        return;
    __atomic_store_n(&q->vr.avail->idx, q->avail_idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* avail->idx before reading the backend's wish */
    bool kick;
    if (r->c->event_idx)
        kick = vring_need_event(__atomic_load_n(&vring_avail_event(&q->vr), __ATOMIC_RELAXED),
                                q->avail_idx, q->kicked_idx);
    else
        kick = !(__atomic_load_n(&q->vr.used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
    q->kicked_idx = q->avail_idx;
    if (kick) {
        uint64_t one = 1;
        if (write(q->kick_fd, &one, sizeof(one)) != sizeof(one))
            perror("vhost-blk-driver: kick");
        r->kicks++;
    }
}

static void check_completion(struct run *r, struct slot *sl, uint32_t len)
{
    if (*sl->status != VIRTIO_BLK_S_OK || len != r->w->bs + 1) {
        if (r->errors++ == 0)
            fprintf(stderr, "vhost-blk-driver: request at %llu: status %u, used len %u (want %u)\n",
                    (unsigned long long)sl->offset, *sl->status, len, r->w->bs + 1);
        return;
    }
    if (r->verify_left) {
        r->verify_left--;
        if (pread(r->image_fd, r->verify_buf, r->w->bs, (off_t)sl->offset) != (ssize_t)r->w->bs ||
            memcmp(r->verify_buf, sl->data, r->w->bs)) {
            if (r->errors++ == 0)
                fprintf(stderr, "vhost-blk-driver: data at offset %llu differs from the image\n",
                        (unsigned long long)sl->offset);
        }
    }
}

/* Reads new used elements of one queue, reposts their slots while
 * submitting, and asks for the next interrupt. Returns completions. */
static unsigned reap(struct run *r, unsigned qi)
{
    struct vuc_queue *q = &r->c->q[qi];
    uint16_t used = __atomic_load_n(&q->vr.used->idx, __ATOMIC_ACQUIRE);
    unsigned n = 0;
    while (q->last_used != used) {
        struct vring_used_elem e = q->vr.used->ring[q->last_used & (q->vr.num - 1)];
        q->last_used++;
        unsigned s = e.id / 3;
        if (e.id % 3 || s >= r->w->qd || !r->qs[qi].inflight) {
            fprintf(stderr, "vhost-blk-driver: queue %u: used id %u is not one of ours\n", qi, e.id);
            exit(1);
        }
        r->qs[qi].inflight--;
        check_completion(r, &r->qs[qi].slots[s], e.len);
        n++;
        if (r->submitting)
            post(r, qi, s);
    }
    if (n) {
        if (r->c->event_idx)
            __atomic_store_n(&vring_used_event(&q->vr), q->last_used, __ATOMIC_RELAXED);
        publish_avail(r, qi);
    }
    return n;
}

static uint64_t drain_calls(struct run *r)
{
    uint64_t total = r->calls_seen, v;
    r->calls_seen = 0;
    for (unsigned i = 0; i < r->c->nqueues; i++)
        if (read(r->c->q[i].call_fd, &v, sizeof(v)) == sizeof(v))
            total += v;
    return total;
}

/* Sleeps until a call eventfd fires (used_event is already set to the next
 * completion by reap), unless a completion slipped in before. */
static void wait_for_call(struct run *r)
{
    struct pollfd pfd[VUC_MAX_QUEUES];
    for (unsigned i = 0; i < r->c->nqueues; i++) {
        struct vuc_queue *q = &r->c->q[i];
        if (r->c->event_idx)
            __atomic_store_n(&vring_used_event(&q->vr), q->last_used, __ATOMIC_RELAXED);
        pfd[i] = (struct pollfd){ .fd = q->call_fd, .events = POLLIN };
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < r->c->nqueues; i++)
        if (__atomic_load_n(&r->c->q[i].vr.used->idx, __ATOMIC_ACQUIRE) != r->c->q[i].last_used)
            return;
    r->sleeps++;
    poll(pfd, r->c->nqueues, 100);
    uint64_t v;
    for (unsigned i = 0; i < r->c->nqueues; i++)
        if ((pfd[i].revents & POLLIN) && read(pfd[i].fd, &v, sizeof(v)) == sizeof(v))
            r->calls_seen += v;
}

/* Lays out the chains of every slot for this workload's block size. */
static int setup_slots(struct run *r, uint8_t *const *data_area)
{
    struct vuc *c = r->c;
    for (unsigned qi = 0; qi < c->nqueues; qi++) {
        struct vring_desc *d = c->q[qi].vr.desc;
        for (unsigned s = 0; s < r->w->qd; s++) {
            struct slot *sl = &r->qs[qi].slots[s];
            sl->data = data_area[qi] + (size_t)s * r->w->bs;
            d[3 * s] = (struct vring_desc){ vuc_gpa(c, sl->hdr), sizeof(*sl->hdr), VRING_DESC_F_NEXT, (uint16_t)(3 * s + 1) };
            d[3 * s + 1] = (struct vring_desc){ vuc_gpa(c, sl->data), r->w->bs, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
                                                (uint16_t)(3 * s + 2) };
            d[3 * s + 2] = (struct vring_desc){ vuc_gpa(c, sl->status), 1, VRING_DESC_F_WRITE, 0 };
        }
    }
    return 0;
}

static int run_workload(struct run *r, int backend_pid, double warmup_s, double secs, unsigned verify)
{
    struct vuc *c = r->c;
    r->verify_left = verify;
    r->completed = r->errors = r->kicks = 0;
    r->submitting = true;
    for (unsigned qi = 0; qi < c->nqueues; qi++) {
        for (unsigned s = 0; s < r->w->qd; s++)
            post(r, qi, s);
        if (c->event_idx)
            vring_used_event(&c->q[qi].vr) = c->q[qi].last_used;
        publish_avail(r, qi);
    }

    double start = now_s(), t0 = 0, cpu0 = 0, pcpu0 = 0, last_done_t = start;
    double prev_t = start, max_gap = 0;
    uint64_t done0 = 0, kicks0 = 0, sleeps0 = 0, done = 0;
    bool measuring = false;
    for (;;) {
        unsigned got = 0;
        for (unsigned qi = 0; qi < c->nqueues; qi++)
            got += reap(r, qi);
        done += got;
        if (r->sleep_after_s > 0) {
            double t = now_s();
            if (got)
                last_done_t = t;
            else if (t - last_done_t >= r->sleep_after_s)
                wait_for_call(r);
        }
        /* Every pass reads the clock (vDSO, ~20 ns): the longest gap
         * between two passes shows when the driver itself lost its CPU
         * (on shared CPUs, for whole time slices or more), so a slow
         * window can be told from a slow backend. */
        double t = now_s();
        if (measuring && t - prev_t > max_gap && r->sleep_after_s == 0)
            max_gap = t - prev_t;
        prev_t = t;
        if (!measuring && t - start >= warmup_s) {
            measuring = true;
            done0 = done;
            drain_calls(r);
            kicks0 = r->kicks;
            sleeps0 = r->sleeps;
            cpu0 = backend_pid ? proc_cpu_s(backend_pid) : 0;
            pcpu0 = backend_pid ? proc_cpu_precise_s(backend_pid) : 0;
            t0 = prev_t = now_s();
        } else if (measuring && t - t0 >= secs) {
            break;
        }
    }
    double t1 = now_s();
    double cpu1 = backend_pid ? proc_cpu_s(backend_pid) : 0;
    double pcpu1 = backend_pid ? proc_cpu_precise_s(backend_pid) : 0;
    uint64_t ios = done - done0, kicks = r->kicks - kicks0, sleeps = r->sleeps - sleeps0;
    uint64_t calls = drain_calls(r);

    /* let the rest finish, so the next workload starts with empty rings */
    r->submitting = false;
    double deadline = now_s() + 10;
    for (;;) {
        unsigned left = 0;
        for (unsigned qi = 0; qi < c->nqueues; qi++) {
            reap(r, qi);
            left += r->qs[qi].inflight;
        }
        if (!left)
            break;
        if (now_s() > deadline) {
            fprintf(stderr, "vhost-blk-driver: %u request(s) never completed\n", left);
            return -1;
        }
    }
    drain_calls(r);

    double wall = t1 - t0;
    double cpu = cpu1 - cpu0, pcpu = pcpu1 - pcpu0;
    printf("RESULT workload=%s bs=%u qd=%u queues=%u ios=%llu secs=%.3f iops=%.0f backend_cpu_s=%.2f "
           "backend_cpu_ns_s=%.4f iops_per_cpu_s=%.0f calls=%llu calls_per_io=%.3f kicks=%llu kicks_per_io=%.3f driver_sleeps=%llu driver_max_gap_ms=%.1f errors=%llu verified=%u\n",
           r->w->name, r->w->bs, r->w->qd, c->nqueues, (unsigned long long)ios, wall, ios / wall, cpu, pcpu,
           pcpu > 0 ? ios / pcpu : 0.0, (unsigned long long)calls, ios ? (double)calls / ios : 0.0,
           (unsigned long long)kicks, ios ? (double)kicks / ios : 0.0, (unsigned long long)sleeps, max_gap * 1e3,
           (unsigned long long)r->errors,
           verify - r->verify_left);
    fflush(stdout);
    return r->errors ? -1 : 0;
}

static uint32_t parse_size(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    return *end ? 0 : (uint32_t)v;
}

/* "randread,4k,32" or "seqread,128k,8" */
static bool parse_workload(const char *s, struct workload *w)
{
    char kind[16], bs[16];
    unsigned qd;
    if (sscanf(s, "%15[a-z],%15[0-9kK],%u", kind, bs, &qd) != 3)
        return false;
    w->random = !strcmp(kind, "randread");
    if (!w->random && strcmp(kind, "seqread"))
        return false;
    snprintf(w->name, sizeof(w->name), "%s", kind);
    w->bs = parse_size(bs);
    w->qd = qd;
    return w->bs && w->bs % SECTOR == 0 && w->bs <= (1u << 20) && qd >= 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vhost-blk-driver --socket PATH --file IMG [options]\n"
            "  --socket PATH        the backend's vhost-user socket\n"
            "  --file IMG           the image the backend serves (size, and pread for --verify)\n"
            "  --backend-pid PID    measure this process's CPU time (utime+stime)\n"
            "  --workload K,BS,QD   randread or seqread, block size (4k, 128k), depth per queue;\n"
            "                       repeatable, run in order (default randread,4k,1 randread,4k,32 seqread,128k,8)\n"
            "  --seconds S          measured time per workload (default 3)\n"
            "  --warmup S           unmeasured time before it (default 0.5)\n"
            "  --queues N           virtqueues (default 1)   --queue-size N (default 256)\n"
            "  --verify N           compare the first N completions of each workload with the image (default 64)\n"
            "  --no-event-idx       do not negotiate VIRTIO_RING_F_EVENT_IDX\n"
            "  --sleep-after-us N   sleep on the call eventfd after N us without a completion\n"
            "                       (default: never, busy-poll)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },   { "file", required_argument, NULL, 'f' },
        { "backend-pid", required_argument, NULL, 'p' }, { "workload", required_argument, NULL, 'w' },
        { "seconds", required_argument, NULL, 't' },  { "warmup", required_argument, NULL, 'W' },
        { "queues", required_argument, NULL, 'q' },   { "queue-size", required_argument, NULL, 'Q' },
        { "verify", required_argument, NULL, 'v' },   { "no-event-idx", no_argument, NULL, 'E' },
        { "sleep-after-us", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },           { 0 },
    };
    const char *sock = NULL, *file = NULL;
    int backend_pid = 0;
    double secs = 3, warmup = 0.5;
    unsigned nqueues = 1, qsize = 256, verify = 64, nw = 0;
    bool no_event_idx = false;
    double sleep_after_s = 0;
    struct workload w[MAX_WORKLOADS];
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's': sock = optarg; break;
        case 'f': file = optarg; break;
        case 'p': backend_pid = atoi(optarg); break;
        case 't': secs = atof(optarg); break;
        case 'W': warmup = atof(optarg); break;
        case 'q': nqueues = (unsigned)atoi(optarg); break;
        case 'Q': qsize = (unsigned)atoi(optarg); break;
        case 'v': verify = (unsigned)atoi(optarg); break;
        case 'E': no_event_idx = true; break;
        case 'S': sleep_after_s = atof(optarg) / 1e6; break;
        case 'w':
            if (nw == MAX_WORKLOADS || !parse_workload(optarg, &w[nw++])) {
                fprintf(stderr, "vhost-blk-driver: bad or too many --workload '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!sock || !file || optind != argc || secs <= 0 || warmup < 0 || !nqueues ||
        nqueues > VUC_MAX_QUEUES || qsize < 4 || qsize > VIRTQ_MAX_SIZE || (qsize & (qsize - 1))) {
        usage(stderr);
        return 2;
    }
    if (!nw) {
        parse_workload("randread,4k,1", &w[nw++]);
        parse_workload("randread,4k,32", &w[nw++]);
        parse_workload("seqread,128k,8", &w[nw++]);
    }
    unsigned max_qd = 0;
    uint32_t max_bs = 0;
    for (unsigned i = 0; i < nw; i++) {
        if (w[i].qd * 3 > qsize) {
            fprintf(stderr, "vhost-blk-driver: QD %u needs %u descriptors, the queue has %u\n", w[i].qd,
                    w[i].qd * 3, qsize);
            return 2;
        }
        max_qd = w[i].qd > max_qd ? w[i].qd : max_qd;
        max_bs = w[i].bs > max_bs ? w[i].bs : max_bs;
    }

    struct run r = { .rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid(), .sleep_after_s = sleep_after_s };
    struct stat st;
    r.image_fd = open(file, O_RDONLY | O_CLOEXEC);
    if (r.image_fd < 0 || fstat(r.image_fd, &st) < 0) {
        perror(file);
        return 1;
    }
    r.verify_buf = malloc(max_bs);

    struct vuc c;
    size_t per_queue = (size_t)max_qd * max_bs + 4096 + (size_t)max_qd * 32;
    int ret = vuc_open(&c, sock, 5000, per_queue * nqueues + (1u << 20), nqueues, (uint16_t)qsize);
    if (ret < 0) {
        fprintf(stderr, "vhost-blk-driver: %s: %s\n", sock, strerror(-ret));
        return 1;
    }
    if (vuc_start(&c, no_event_idx) < 0)
        return 1;
    r.c = &c;
    uint64_t cap = vuc_blk_capacity(&c);
    r.disk_bytes = cap ? cap * SECTOR : (uint64_t)st.st_size;
    if (r.disk_bytes != (uint64_t)st.st_size)
        fprintf(stderr, "vhost-blk-driver: backend capacity %llu bytes, %s has %llu\n",
                (unsigned long long)r.disk_bytes, file, (unsigned long long)st.st_size);

    uint8_t *data_area[VUC_MAX_QUEUES];
    for (unsigned qi = 0; qi < nqueues; qi++) {
        r.qs[qi].slots = calloc(max_qd, sizeof(struct slot));
        uint8_t *hdrs = vuc_alloc(&c, (size_t)max_qd * 32, 64);
        data_area[qi] = vuc_alloc(&c, (size_t)max_qd * max_bs, 4096);
        if (!r.qs[qi].slots || !hdrs || !data_area[qi]) {
            fprintf(stderr, "vhost-blk-driver: out of memory\n");
            return 1;
        }
        for (unsigned s = 0; s < max_qd; s++) {
            r.qs[qi].slots[s].hdr = (struct virtio_blk_outhdr *)(hdrs + s * 32);
            r.qs[qi].slots[s].status = hdrs + s * 32 + 16;
        }
    }
    fprintf(stderr, "vhost-blk-driver: %s: features %#llx%s, protocol features %#llx, %u queue(s) of %u, %llu MiB disk\n",
            sock, (unsigned long long)c.features, c.event_idx ? " (EVENT_IDX)" : "",
            (unsigned long long)c.protocol_features, nqueues, qsize,
            (unsigned long long)(r.disk_bytes >> 20));

    int rc = 0;
    for (unsigned i = 0; i < nw && rc == 0; i++) {
        r.w = &w[i];
        r.seq_next = 0;
        setup_slots(&r, data_area);
        rc = run_workload(&r, backend_pid, warmup, secs, verify);
    }
    vuc_close(&c);
    return rc ? 1 : 0;
}
