/* Loading and validating the VM file and its device files (see
 * configs/README.md for the format).
 *
 * Each file is read into an ini_doc first; all the checks run on those docs,
 * errors are collected, sorted by file and line and printed together. Only a
 * config without a single error is handed out. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

struct cfg_err {
    int seq;        /* which file: 0 the VM file, 1.. the device files */
    int line;
    size_t idx;     /* order of discovery, to keep the sort stable */
    char *text;
};

void *cfg_grow(void *p, size_t *cap, size_t n, size_t size, bool *oom)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *q = reallocarray(p, ncap, size);
    if (!q) {
        *oom = true;
        return NULL;
    }
    *cap = ncap;
    return q;
}

char *cfg_strdup(struct loader *L, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        L->oom = true;
    return d;
}

void cfg_report(struct loader *L, int seq, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    char *body = NULL, *text = NULL;
    struct cfg_err *v;

    va_start(ap, fmt);
    if (vasprintf(&body, fmt, ap) < 0)
        body = NULL;
    va_end(ap);
    if (!body || asprintf(&text, "%s:%d: %s", file, line, body) < 0) {
        free(body);
        L->oom = true;
        return;
    }
    free(body);
    v = cfg_grow(L->errs, &L->cap_errs, L->n_errs, sizeof(*v), &L->oom);
    if (!v) {
        free(text);
        return;
    }
    L->errs = v;
    v[L->n_errs] = (struct cfg_err){ .seq = seq, .line = line, .idx = L->n_errs, .text = text };
    L->n_errs++;
}

static int err_cmp(const void *a, const void *b)
{
    const struct cfg_err *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Prints everything collected; returns the number of errors. */
static size_t flush_errors(struct loader *L, FILE *err)
{
    size_t n = L->n_errs;

    if (L->n_errs)
        qsort(L->errs, L->n_errs, sizeof(*L->errs), err_cmp);
    for (size_t i = 0; i < L->n_errs; i++) {
        if (err)
            fprintf(err, "%s\n", L->errs[i].text);
        free(L->errs[i].text);
    }
    free(L->errs);
    L->errs = NULL;
    L->n_errs = L->cap_errs = 0;
    if (L->oom) {
        if (err)
            fprintf(err, "config: out of memory\n");
        n++;
    }
    return n;
}

int config_load(const char *vm_file, struct vm_config *out, FILE *err)
{
    struct loader L = { 0 };
    struct ini_doc vm = { 0 };
    struct found vf[VK_COUNT];
    struct dev_list files = { 0 };
    struct dev_state *devs = NULL;
    size_t n_devs = 0;
    int rc = -1;

    if (!out)
        return -1;
    memset(out, 0, sizeof(*out));
    if (!vm_file) {
        if (err)
            fprintf(err, "config: no VM file given\n");
        return -1;
    }

    vm.file = cfg_strdup(&L, vm_file);
    vm.dir = cfg_dir_of(vm_file);
    if (!vm.file || !vm.dir) {
        L.oom = true;
        goto done;
    }
    if (doc_read(&L, &vm, 0) < 0)
        goto done;
    check_vm_file(&L, &vm, vf, &files);

    if (files.n) {
        devs = calloc(files.n, sizeof(*devs));
        if (!devs) {
            L.oom = true;
            goto done;
        }
    }
    for (size_t i = 0; i < files.n; i++) {
        struct dev_state *ds = &devs[n_devs++];
        ds->doc.seq = (int)n_devs;
        ds->doc.file = cfg_strdup(&L, files.v[i].path);
        ds->doc.dir = cfg_dir_of(files.v[i].path);
        if (!ds->doc.file || !ds->doc.dir) {
            L.oom = true;
            goto done;
        }
        if (doc_read(&L, &ds->doc, 0) < 0)
            continue;
        check_device_file(&L, ds);
    }
    /* ids must be unique across the VM */
    for (size_t j = 0; j < n_devs; j++) {
        if (!devs[j].f[DK_ID].ok)
            continue;
        for (size_t i = 0; i < j; i++) {
            if (devs[i].f[DK_ID].ok &&
                strcmp(devs[i].f[DK_ID].e->value, devs[j].f[DK_ID].e->value) == 0) {
                cfg_report(&L, devs[j].doc.seq, devs[j].doc.file, devs[j].f[DK_ID].e->line,
                           "id: duplicate device id '%s', also used in %s:%d (expected ids unique "
                           "among the VM's devices)",
                           devs[j].f[DK_ID].e->value, devs[i].doc.file, devs[i].f[DK_ID].e->line);
                break;
            }
        }
    }
    if (L.n_errs || L.oom)
        goto done;

    if (fill_vm_config(&L, out, &vm, vf) < 0)
        goto done;
    if (n_devs) {
        out->devices = calloc(n_devs, sizeof(*out->devices));
        if (!out->devices) {
            L.oom = true;
            goto done;
        }
    }
    for (size_t i = 0; i < n_devs; i++) {
        out->n_devices++;
        if (fill_device_config(&L, &out->devices[i], &devs[i]) < 0)
            goto done;
    }
    rc = 0;

done:
    doc_free(&vm);
    for (size_t i = 0; i < n_devs; i++)
        doc_free(&devs[i].doc);
    free(devs);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i].path);
    free(files.v);
    if (flush_errors(&L, err) || rc < 0) {
        config_free(out);
        return -1;
    }
    return 0;
}

void config_free(struct vm_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; cfg->devices && i < cfg->n_devices; i++) {
        struct device_config *dc = &cfg->devices[i];
        for (size_t j = 0; j < dc->n_values; j++) {
            free(dc->values[j].section);
            free(dc->values[j].key);
            free(dc->values[j].value);
        }
        free(dc->values);
        free(dc->file);
        free(dc->dir);
        free(dc->id);
    }
    free(cfg->devices);
    free(cfg->file);
    free(cfg->dir);
    free(cfg->name);
    free(cfg->kernel);
    free(cfg->initrd);
    free(cfg->cmdline);
    memset(cfg, 0, sizeof(*cfg));
}
