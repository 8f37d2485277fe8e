/* One device file: [device] names the class and the path, and each path
 * section is checked against the registry's schema for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "registry.h"

static const struct cfg_key dev_keys[] = {
    [DK_ID] = { .name = "id", .type = CFG_STRING, .required = true,
                .expected = "1..32 characters from A-Z a-z 0-9 _ . -, unique among the VM's devices" },
    [DK_CLASS] = { .name = "class", .type = CFG_ENUM, .required = true, .choices = dev_class_names,
                   .expected = "console, net or block" },
    [DK_PATH] = { .name = "path", .type = CFG_ENUM, .required = true, .choices = io_path_names,
                  .expected = "emulated, virtio or passthrough" },
    { .name = NULL },
};

static void implemented_paths(enum dev_class cls, char *buf, size_t len)
{
    const char *list[IO_PATH_COUNT + 1];
    size_t n = 0;
    for (int p = 0; p < IO_PATH_COUNT; p++)
        if (registry_find_path(cls, (enum io_path)p))
            list[n++] = io_path_names[p];
    list[n] = NULL;
    if (n == 0)
        snprintf(buf, len, "none");
    else
        cfg_fmt_choices(buf, len, list);
}

static void models_of(enum dev_class cls, enum io_path p, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; device_registry[i]; i++) {
        const struct device_impl *im = device_registry[i];
        if (im->cls != cls || im->path != p || !im->model || off >= len)
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", im->model);
        if (w > 0)
            off += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, len, "no model key");
}

/* Validates the path section [pname] (which may be absent) against the
 * registry entry for (class, p, model). */
static const struct device_impl *check_path_section(struct loader *L, const struct ini_doc *d,
                                                    enum dev_class cls, enum io_path p,
                                                    int missing_line)
{
    const char *pname = io_path_names[p];
    const struct ini_entry *m = doc_find_entry(d, pname, "model");
    const struct device_impl *impl = registry_find(cls, p, m ? m->value : NULL);
    char buf[256], what[128];
    struct found f[CFG_MAX_KEYS];

    if (!impl) {
        models_of(cls, p, buf, sizeof(buf));
        if (m)
            cfg_report(L, d->seq, d->file, m->line,
                       "model: unknown model '%s' for %s/%s (expected %s)", m->value,
                       dev_class_names[cls], pname, buf);
        else
            cfg_report(L, d->seq, d->file, missing_line,
                       "model: missing required key in [%s] (expected %s)", pname, buf);
        return NULL;
    }
    if (cfg_count_keys(impl->keys) > CFG_MAX_KEYS) {
        cfg_report(L, d->seq, d->file, missing_line, "[%s]: schema too large", pname);
        return NULL;
    }
    snprintf(what, sizeof(what), " for %s/%s%s%s", dev_class_names[cls], pname,
             impl->model ? " model " : "", impl->model ? impl->model : "");
    cfg_check_keys(L, d, pname, impl->keys, missing_line, what, f);
    return impl;
}

static bool same_mac(const char *a, const char *b)
{
    uint8_t x[6], y[6];

    /* A malformed one was reported already: nothing to compare. */
    return cfg_parse_mac(a, x) < 0 || cfg_parse_mac(b, y) < 0 || memcmp(x, y, sizeof(x)) == 0;
}

static bool same_string(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* A device keeps what the guest identifies it by whatever path serves it:
 * every path section that sets KEY (mac, serial) must set the same value
 * (reported at the later line, naming the earlier one). */
static void check_key_agrees(struct loader *L, const struct ini_doc *d, const char *key,
                             bool (*same)(const char *, const char *), const char *noun,
                             const char *why)
{
    const struct ini_entry *first = NULL;
    const char *first_sec = NULL;

    for (int p = 0; p < IO_PATH_COUNT; p++) {
        const struct ini_entry *e = doc_find_entry(d, io_path_names[p], key);
        if (!e)
            continue;
        if (!first) {
            first = e;
            first_sec = io_path_names[p];
        } else if (!same(first->value, e->value)) {
            cfg_report(L, d->seq, d->file, e->line,
                       "%s: '%s' differs from [%s] %s '%s' at line %d (expected the same %s in "
                       "every path section, so that switching path keeps %s)",
                       key, e->value, first_sec, key, first->value, first->line, noun, why);
        }
    }
}

void check_device_file(struct loader *L, struct dev_state *ds)
{
    static const char *const allowed[] = { "device", "emulated", "virtio", "passthrough", NULL };
    const struct ini_doc *d = &ds->doc;
    const struct ini_section *s = doc_find_section(d, "device");
    struct found *f = ds->f;
    char buf[128];

    doc_check_structure(L, d, allowed, "[device], [emulated], [virtio] or [passthrough]",
                        "[device]");
    cfg_check_keys(L, d, "device", dev_keys, s ? s->line : 1, "", f);

    if (f[DK_ID].ok && !cfg_valid_name(f[DK_ID].e->value, 32)) {
        cfg_report(L, d->seq, d->file, f[DK_ID].e->line, "id: '%s' is not a valid id (expected %s)",
                   f[DK_ID].e->value, dev_keys[DK_ID].expected);
        f[DK_ID].ok = false;
    }
    if (f[DK_CLASS].ok) {
        ds->cls_ok = true;
        ds->cls = (enum dev_class)cfg_choice_index(dev_class_names, f[DK_CLASS].e->value);
    }
    if (f[DK_PATH].ok) {
        ds->path_ok = true;
        ds->path = (enum io_path)cfg_choice_index(io_path_names, f[DK_PATH].e->value);
    }
    if (!ds->cls_ok)
        return; /* path sections cannot be checked without a class */

    if (ds->path_ok && !registry_find_path(ds->cls, ds->path)) {
        implemented_paths(ds->cls, buf, sizeof(buf));
        cfg_report(L, d->seq, d->file, f[DK_PATH].e->line,
                   "path: '%s' is not implemented yet for %s (implemented paths for %s: %s)",
                   io_path_names[ds->path], dev_class_names[ds->cls], dev_class_names[ds->cls],
                   buf);
        ds->path_ok = false;
    } else if (ds->path_ok) {
        const struct ini_section *ps = doc_find_section(d, io_path_names[ds->path]);
        ds->impl = check_path_section(L, d, ds->cls, ds->path, ps ? ps->line : f[DK_PATH].e->line);
    }
    /* The sections of the other paths are checked as well, so that
     * switching path stays a one-line change that is known to work. */
    for (int p = 0; p < IO_PATH_COUNT; p++) {
        if (f[DK_PATH].ok && (enum io_path)p == ds->path)
            continue;
        const struct ini_section *ps = doc_find_section(d, io_path_names[p]);
        if (!ps)
            continue;
        if (!registry_find_path(ds->cls, (enum io_path)p)) {
            implemented_paths(ds->cls, buf, sizeof(buf));
            cfg_report(L, d->seq, d->file, ps->line,
                       "[%s]: path '%s' is not implemented yet for %s (implemented paths for %s: %s)",
                       io_path_names[p], io_path_names[p], dev_class_names[ds->cls],
                       dev_class_names[ds->cls], buf);
            continue;
        }
        check_path_section(L, d, ds->cls, (enum io_path)p, ps->line);
    }
    check_key_agrees(L, d, "mac", same_mac, "MAC", "the guest's address");
    check_key_agrees(L, d, "serial", same_string, "serial", "the disk's identity in the guest");
}

static bool is_path_section(const char *s)
{
    return s && cfg_choice_index(io_path_names, s) >= 0;
}

int fill_device_config(struct loader *L, struct device_config *dc, struct dev_state *ds)
{
    const struct ini_doc *d = &ds->doc;
    size_t n = 0;

    dc->file = cfg_strdup(L, d->file);
    dc->dir = cfg_strdup(L, d->dir);
    dc->id = cfg_strdup(L, ds->f[DK_ID].e->value);
    dc->id_line = ds->f[DK_ID].e->line;
    dc->cls = ds->cls;
    dc->path = ds->path;
    dc->path_line = ds->f[DK_PATH].e->line;
    dc->impl = ds->impl;
    for (size_t i = 0; i < d->n_ents; i++)
        n += !d->ents[i].cont && is_path_section(doc_entry_section(d, &d->ents[i]));
    if (n) {
        dc->values = calloc(n, sizeof(*dc->values));
        if (!dc->values)
            L->oom = true;
    }
    for (size_t i = 0; dc->values && i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        if (e->cont || !is_path_section(doc_entry_section(d, e)))
            continue;
        struct cfg_value *v = &dc->values[dc->n_values++];
        v->section = cfg_strdup(L, doc_entry_section(d, e));
        v->key = cfg_strdup(L, e->key);
        v->value = cfg_strdup(L, e->value);
        v->line = e->line;
    }
    return L->oom ? -1 : 0;
}
