/* The VM file: the [vm] keys, the files they name, and the device files its
 * devices = list expands to. */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "config_internal.h"

#define CMDLINE_MAX 4095
#define MIB (1024ULL * 1024)

static const char *const hugepage_choices[] = { "off", "2M", "1G", NULL };

static const struct cfg_key vm_keys[] = {
    [VK_NAME] = { .name = "name", .type = CFG_STRING, .required = true,
                  .expected = "1..64 characters from A-Z a-z 0-9 _ . -" },
    [VK_MEMORY] = { .name = "memory", .type = CFG_SIZE, .required = true,
                    .min = 32 * MIB, .max = 1024ULL * 1024 * MIB, .multiple_of = 2 * MIB,
                    .expected = "a size with K/M/G/T suffix, a multiple of 2M from 32M to 1T, e.g. 256M" },
    [VK_VCPUS] = { .name = "vcpus", .type = CFG_UINT, .default_value = "1", .min = 1, .max = 64,
                   .expected = "a number of vCPUs, 1..64" },
    [VK_KERNEL] = { .name = "kernel", .type = CFG_PATH, .required = true,
                    .expected = "a readable kernel (bzImage, or vmlinux with a PVH entry); relative paths are relative to the VM file's folder" },
    [VK_INITRD] = { .name = "initrd", .type = CFG_PATH,
                    .expected = "a readable initrd; relative paths are relative to the VM file's folder" },
    [VK_CMDLINE] = { .name = "cmdline", .type = CFG_STRING, .default_value = "console=ttyS0",
                     .expected = "a kernel command line of at most 4095 characters" },
    [VK_HUGEPAGES] = { .name = "hugepages", .type = CFG_ENUM, .default_value = "off",
                       .choices = hugepage_choices, .expected = "off, 2M or 1G" },
    [VK_DEVICES] = { .name = "devices", .type = CFG_STRING,
                     .expected = "device files or glob patterns separated by spaces, relative to the VM file's folder" },
    [VK_DEBUG_EXIT] = { .name = "debug-exit", .type = CFG_BOOL, .default_value = "off",
                        .expected = "on or off: whether port 0x501 lets the guest end the VM with a status" },
    [VK_STATS_MARKS] = { .name = "stats-marks", .type = CFG_BOOL, .default_value = "off",
                         .expected = "on or off: whether port 0x502 lets the guest record statistics marks (see --stats)" },
    { .name = NULL },
};

static void check_file_key(struct loader *L, const struct ini_doc *d, const struct found *f,
                           const struct cfg_key *k)
{
    if (!f->e || !f->ok)
        return;
    char *p = cfg_path_join(d->dir, f->e->value);
    if (!p) {
        L->oom = true;
        return;
    }
    int rc = cfg_check_readable(p);
    if (rc)
        cfg_report(L, d->seq, d->file, f->e->line, "%s: '%s': %s (expected %s)", k->name, p,
                   strerror(rc), k->expected);
    free(p);
}

static void add_device_file(struct loader *L, const struct ini_doc *d, const struct ini_entry *e,
                            struct dev_list *list, const char *path)
{
    struct stat st;
    int rc = cfg_check_readable(path);

    if (rc) {
        cfg_report(L, d->seq, d->file, e->line,
                   "devices: '%s': %s (expected a readable device file)", path, strerror(rc));
        return;
    }
    if (stat(path, &st) < 0) {
        cfg_report(L, d->seq, d->file, e->line,
                   "devices: '%s': %s (expected a readable device file)", path, strerror(errno));
        return;
    }
    for (size_t i = 0; i < list->n; i++) {
        if (list->v[i].dev == st.st_dev && list->v[i].ino == st.st_ino) {
            if (strcmp(path, list->v[i].path) == 0)
                cfg_report(L, d->seq, d->file, e->line,
                           "devices: '%s' is listed twice (expected each device file once)", path);
            else
                cfg_report(L, d->seq, d->file, e->line,
                           "devices: '%s' is listed twice, also as '%s' (expected each device file once)",
                           path, list->v[i].path);
            return;
        }
    }
    struct dev_file *v = cfg_grow(list->v, &list->cap, list->n, sizeof(*v), &L->oom);
    char *p = cfg_strdup(L, path);
    if (!v || !p) {
        free(p);
        return;
    }
    list->v = v;
    v[list->n++] = (struct dev_file){ .path = p, .dev = st.st_dev, .ino = st.st_ino };
}

/* The folder with glob's special characters escaped, so that only the
 * pattern itself is a pattern. */
static char *glob_escape(const char *s)
{
    char *r = malloc(2 * strlen(s) + 1), *p = r;
    if (!r)
        return NULL;
    for (; *s; s++) {
        if (strchr("*?[\\", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return r;
}

static void expand_devices(struct loader *L, const struct ini_doc *d, const struct ini_entry *e,
                           struct dev_list *list)
{
    char *copy = cfg_strdup(L, e->value), *save = NULL;
    if (!copy)
        return;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (!strpbrk(tok, "*?[")) {
            char *p = cfg_path_join(d->dir, tok);
            if (!p)
                L->oom = true;
            else
                add_device_file(L, d, e, list, p);
            free(p);
            continue;
        }
        char *edir = glob_escape(d->dir);
        char *pat = edir ? cfg_path_join(edir, tok) : NULL;
        free(edir);
        if (!pat) {
            L->oom = true;
            continue;
        }
        glob_t g;
        int rc = glob(pat, 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            cfg_report(L, d->seq, d->file, e->line,
                       "devices: '%s' matches no file (expected a pattern matching at least one device file)",
                       tok);
        else if (rc != 0)
            cfg_report(L, d->seq, d->file, e->line,
                       "devices: '%s': %s (expected a readable pattern)", tok,
                       rc == GLOB_NOSPACE ? "out of memory" : "read error");
        else
            for (size_t i = 0; i < g.gl_pathc; i++)
                add_device_file(L, d, e, list, g.gl_pathv[i]);
        if (rc != GLOB_NOMATCH)
            globfree(&g);
        free(pat);
    }
    free(copy);
}

void check_vm_file(struct loader *L, const struct ini_doc *d, struct found *f,
                   struct dev_list *devs)
{
    static const char *const allowed[] = { "vm", NULL };
    const struct ini_section *s = doc_find_section(d, "vm");

    doc_check_structure(L, d, allowed, "[vm]", "[vm]");
    cfg_check_keys(L, d, "vm", vm_keys, s ? s->line : 1, "", f);

    if (f[VK_NAME].ok && !cfg_valid_name(f[VK_NAME].e->value, 64)) {
        cfg_report(L, d->seq, d->file, f[VK_NAME].e->line,
                   "name: '%s' is not a valid name (expected %s)", f[VK_NAME].e->value,
                   vm_keys[VK_NAME].expected);
        f[VK_NAME].ok = false;
    }
    if (f[VK_CMDLINE].ok && strlen(f[VK_CMDLINE].e->value) > CMDLINE_MAX) {
        cfg_report(L, d->seq, d->file, f[VK_CMDLINE].e->line,
                   "cmdline: %zu characters is too long (expected %s)",
                   strlen(f[VK_CMDLINE].e->value), vm_keys[VK_CMDLINE].expected);
        f[VK_CMDLINE].ok = false;
    }
    check_file_key(L, d, &f[VK_KERNEL], &vm_keys[VK_KERNEL]);
    check_file_key(L, d, &f[VK_INITRD], &vm_keys[VK_INITRD]);
    if (f[VK_DEVICES].ok)
        expand_devices(L, d, f[VK_DEVICES].e, devs);
}

int fill_vm_config(struct loader *L, struct vm_config *out, const struct ini_doc *d,
                   const struct found *f)
{
    uint64_t v;

    out->file = cfg_strdup(L, d->file);
    out->dir = cfg_strdup(L, d->dir);
    out->name = cfg_strdup(L, f[VK_NAME].e->value);
    cfg_parse_size(f[VK_MEMORY].e->value, &out->memory);
    out->vcpus = 1;
    if (f[VK_VCPUS].e && cfg_parse_uint(f[VK_VCPUS].e->value, &v) == 0)
        out->vcpus = (unsigned)v;
    out->kernel = cfg_path_join(d->dir, f[VK_KERNEL].e->value);
    if (!out->kernel)
        L->oom = true;
    if (f[VK_INITRD].e) {
        out->initrd = cfg_path_join(d->dir, f[VK_INITRD].e->value);
        if (!out->initrd)
            L->oom = true;
    }
    out->cmdline = cfg_strdup(L, f[VK_CMDLINE].e ? f[VK_CMDLINE].e->value
                                                 : vm_keys[VK_CMDLINE].default_value);
    out->hugepages = HUGEPAGES_OFF;
    if (f[VK_HUGEPAGES].e)
        out->hugepages =
            (enum hugepages_mode)cfg_choice_index(hugepage_choices, f[VK_HUGEPAGES].e->value);
    out->debug_exit = false;
    if (f[VK_DEBUG_EXIT].e)
        cfg_parse_bool(f[VK_DEBUG_EXIT].e->value, &out->debug_exit);
    out->stats_marks = false;
    if (f[VK_STATS_MARKS].e)
        cfg_parse_bool(f[VK_STATS_MARKS].e->value, &out->stats_marks);
    return L->oom ? -1 : 0;
}
