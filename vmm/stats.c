#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "stats.h"
#include "vm.h"

/* One binary stats file descriptor, decoded once (kvm_stats_header, then
 * descriptors each followed by name_size bytes of name). */
struct kvm_stats {
    struct kvm_stats_header hdr;
    uint8_t *descs;          /* num_desc records of desc_size bytes */
    size_t desc_size;
};

static int kvm_stats_open(int fd, struct kvm_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (fd < 0 || pread(fd, &s->hdr, sizeof(s->hdr), 0) != sizeof(s->hdr))
        return -1;
    s->desc_size = sizeof(struct kvm_stats_desc) + s->hdr.name_size;
    s->descs = calloc(s->hdr.num_desc, s->desc_size);
    if (!s->descs)
        return -1;
    if (pread(fd, s->descs, s->hdr.num_desc * s->desc_size, s->hdr.desc_offset) !=
        (ssize_t)(s->hdr.num_desc * s->desc_size)) {
        free(s->descs);
        s->descs = NULL;
        return -1;
    }
    return 0;
}

static struct kvm_stats_desc *kvm_stats_desc(struct kvm_stats *s, unsigned i)
{
    return (struct kvm_stats_desc *)(s->descs + i * s->desc_size);
}

/* Scalar counters only; histograms (size > 1) are left out. */
static bool kvm_stat_is_scalar(const struct kvm_stats_desc *d)
{
    return d->size == 1 && (d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_LOG_HIST &&
           (d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_LINEAR_HIST;
}

static int kvm_stat_read(int fd, const struct kvm_stats *s, const struct kvm_stats_desc *d,
                         uint64_t *value)
{
    return pread(fd, value, sizeof(*value), s->hdr.data_offset + d->offset) == sizeof(*value)
               ? 0 : -1;
}

long long stats_kvm_vcpu_sum(struct vm *vm, const char *name)
{
    long long total = -1;

    for (unsigned v = 0; v < vm->n_vcpus; v++) {
        struct kvm_stats s;
        int fd = vm->vcpus[v].stats_fd;
        if (kvm_stats_open(fd, &s) < 0)
            continue;
        for (unsigned i = 0; i < s.hdr.num_desc; i++) {
            struct kvm_stats_desc *d = kvm_stats_desc(&s, i);
            uint64_t value;
            if (kvm_stat_is_scalar(d) && strcmp(d->name, name) == 0 &&
                kvm_stat_read(fd, &s, d, &value) == 0)
                total = (total < 0 ? 0 : total) + (long long)value;
        }
        free(s.descs);
    }
    return total;
}

/* Writes {"name": value, ...} of every scalar statistic of fd. */
static void write_kvm_stats(FILE *f, int fd)
{
    struct kvm_stats s;
    bool first = true;

    fputc('{', f);
    if (kvm_stats_open(fd, &s) == 0) {
        for (unsigned i = 0; i < s.hdr.num_desc; i++) {
            struct kvm_stats_desc *d = kvm_stats_desc(&s, i);
            uint64_t value;
            if (!kvm_stat_is_scalar(d) || kvm_stat_read(fd, &s, d, &value) < 0)
                continue;
            fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", d->name, (unsigned long long)value);
            first = false;
        }
        free(s.descs);
    }
    fputc('}', f);
}

static void write_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

#define EXIT_FIELDS(X) X(io) X(mmio) X(hlt) X(shutdown) X(system_event) X(intr) \
    X(internal_error) X(fail_entry) X(other) X(unhandled_io) X(unhandled_mmio)

static void write_exit_counts(FILE *f, const struct vcpu_exit_counts *e)
{
    const char *sep = "";

    fputc('{', f);
#define X(name) fprintf(f, "%s\"" #name "\": %llu", sep, (unsigned long long)e->name); sep = ", ";
    EXIT_FIELDS(X)
#undef X
    fputc('}', f);
}

/* At most this many marks are kept; a guest marking in a loop gets the
 * first ones and one log line. */
#define STATS_MARKS_MAX 1024

struct stats_mark {
    uint8_t id;
    double time_s;           /* since the VM started */
    double vmm_cpu_s;        /* user + system time of the whole VMM process */
    double vcpu_thread_s;    /* on-CPU time of the vCPU threads (guest time included) */
    double other_thread_s;   /* on-CPU time of every other VMM thread (event loop, I/O) */
    char *json;              /* "vcpus": [...], "devices": {...} */
};

struct stats_marks {
    pthread_mutex_t lock;
    struct stats_mark marks[STATS_MARKS_MAX];
    unsigned n;
    unsigned long long dropped;
};

struct stats_marks *stats_marks_create(void)
{
    struct stats_marks *m = calloc(1, sizeof(*m));

    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void stats_marks_destroy(struct stats_marks *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->n; i++)
        free(m->marks[i].json);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void write_device_counters(FILE *f, struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next) {
        fprintf(f, "%s\n    {\"id\": ", d == vm->devices ? "" : ",");
        write_json_string(f, d->id);
        fprintf(f, ", \"class\": ");
        write_json_string(f, d->class_name);
        fprintf(f, ", \"path\": ");
        write_json_string(f, d->path_name);
        fprintf(f, ", \"model\": ");
        write_json_string(f, d->model);
        fprintf(f, ", \"pio_accesses\": %llu, \"mmio_accesses\": %llu, \"irqs_injected\": %llu}",
                (unsigned long long)atomic_load(&d->stats.pio_accesses),
                (unsigned long long)atomic_load(&d->stats.mmio_accesses),
                (unsigned long long)atomic_load(&d->stats.irqs_injected));
    }
}

/* On-CPU time of this process's threads from /proc/self/task/TID/schedstat
 * (nanoseconds, where getrusage has only one total), split by whether the
 * thread is a vCPU (named vcpuN): a vCPU thread's time is mostly the
 * guest's own, the rest is what the VMM itself spends. */
static void thread_cpu_split(double *vcpu_s, double *other_s)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;

    *vcpu_s = *other_s = 0;
    if (!dir)
        return;
    while ((e = readdir(dir)) != NULL) {
        char path[64], comm[32] = "";
        unsigned long long ns = 0;
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/comm", e->d_name);
        if ((f = fopen(path, "r")) != NULL) {
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/schedstat", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
        if (strncmp(comm, "vcpu", 4) == 0)
            *vcpu_s += (double)ns / 1e9;
        else
            *other_s += (double)ns / 1e9;
    }
    closedir(dir);
}

void stats_mark_record(struct vm *vm, uint8_t id)
{
    struct stats_marks *m = vm->stats_marks;
    struct rusage ru;
    char *json = NULL;
    size_t len = 0;
    FILE *f;

    double vcpu_s, other_s;

    if (!m)
        return;
    getrusage(RUSAGE_SELF, &ru);
    thread_cpu_split(&vcpu_s, &other_s);
    f = open_memstream(&json, &len);
    if (!f)
        return;
    fprintf(f, "\"vcpus\": [");
    for (unsigned i = 0; i < vm->n_vcpus; i++) {
        fprintf(f, "%s", i ? ", " : "");
        write_kvm_stats(f, vm->vcpus[i].stats_fd);
    }
    fprintf(f, "], \"devices\": [");
    write_device_counters(f, vm);
    fprintf(f, "]");
    if (fclose(f) != 0) {
        free(json);
        return;
    }
    pthread_mutex_lock(&m->lock);
    if (m->n < STATS_MARKS_MAX) {
        struct stats_mark *k = &m->marks[m->n++];
        k->id = id;
        k->time_s = seconds_since(&vm->started);
        k->vmm_cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        k->vcpu_thread_s = vcpu_s;
        k->other_thread_s = other_s;
        k->json = json;
        json = NULL;
    } else if (m->dropped++ == 0) {
        fprintf(stderr, "vmm: more than %d stats marks: later ones are not kept\n", STATS_MARKS_MAX);
    }
    pthread_mutex_unlock(&m->lock);
    free(json);
}

static void write_marks(FILE *f, const struct stats_marks *m)
{
    fprintf(f, ",\n  \"marks\": [");
    for (unsigned i = 0; m && i < m->n; i++)
        fprintf(f, "%s\n    {\"id\": %u, \"time_s\": %.6f, \"vmm_cpu_s\": %.6f, "
                "\"vcpu_thread_cpu_s\": %.6f, \"other_thread_cpu_s\": %.6f, %s}", i ? "," : "",
                m->marks[i].id, m->marks[i].time_s, m->marks[i].vmm_cpu_s,
                m->marks[i].vcpu_thread_s, m->marks[i].other_thread_s, m->marks[i].json);
    fprintf(f, "\n  ],\n  \"marks_dropped\": %llu", m ? m->dropped : 0ULL);
}

int stats_write_json(struct vm *vm, const char *path)
{
    struct vcpu_exit_counts total = { 0 };
    double runtime;
    FILE *f = fopen(path, "w");

    if (!f) {
        fprintf(stderr, "vmm: --stats %s: %s\n", path, strerror(errno));
        return -1;
    }
    runtime = seconds_since(&vm->started);
    for (unsigned i = 0; i < vm->n_vcpus; i++) {
#define X(name) total.name += vm->vcpus[i].exits.name;
        EXIT_FIELDS(X)
#undef X
    }

    fprintf(f, "{\n  \"vm\": {\"name\": ");
    write_json_string(f, vm->cfg->name);
    fprintf(f, ", \"vcpus\": %u, \"memory\": %llu, \"runtime_s\": %.3f, \"stop_reason\": \"%s\", "
            "\"exit_status\": %d,\n", vm->n_vcpus, (unsigned long long)vm->cfg->memory, runtime,
            vm_stop_reason_name(vm->stop_reason), vm->exit_status);
    fprintf(f, "    \"exits\": %lld,\n    \"userspace_exits\": ", stats_kvm_vcpu_sum(vm, "exits"));
    write_exit_counts(f, &total);
    fprintf(f, ",\n    \"kvm_vm\": ");
    write_kvm_stats(f, vm->vm_stats_fd);
    fprintf(f, "},\n  \"vcpus\": [");
    for (unsigned i = 0; i < vm->n_vcpus; i++) {
        fprintf(f, "%s\n    {\"id\": %u, \"userspace_exits\": ", i ? "," : "", i);
        write_exit_counts(f, &vm->vcpus[i].exits);
        fprintf(f, ",\n     \"kvm\": ");
        write_kvm_stats(f, vm->vcpus[i].stats_fd);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"devices\": [");
    write_device_counters(f, vm);
    fprintf(f, "\n  ]");
    write_marks(f, vm->stats_marks);
    fprintf(f, "\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "vmm: --stats %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
