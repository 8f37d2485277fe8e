/* What the pieces of the config loader share; not for use outside vmm/config*.c.
 *
 * config.c         config_load(), config_free() and the error list
 * config_ini.c     reading one INI file into an ini_doc
 * config_schema.c  checking the keys of one section against a cfg_key table
 * config_vm.c      the VM file and its devices = list
 * config_device.c  one device file
 * config_values.c  names, value parsers and the device_config getters
 * config_paths.c   resolving paths against a config file's folder */
#ifndef VMM_CONFIG_INTERNAL_H
#define VMM_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* --- errors (config.c) -------------------------------------------------- */

struct cfg_err;

/* State of one config_load(). Checks never stop at an error: they report it
 * and go on, so that one run shows every problem. */
struct loader {
    struct cfg_err *errs;
    size_t n_errs, cap_errs;
    bool oom;
};

/* Returns p, or p grown to hold more than n elements (cap updated); NULL and
 * *oom set if that fails, p then still valid. */
void *cfg_grow(void *p, size_t *cap, size_t n, size_t size, bool *oom);
/* strdup(s), "" for NULL; sets L->oom on failure. */
char *cfg_strdup(struct loader *L, const char *s);
/* seq orders files in the output: 0 the VM file, 1.. the device files. */
__attribute__((format(printf, 5, 6)))
void cfg_report(struct loader *L, int seq, const char *file, int line, const char *fmt, ...);

/* --- names (config_values.c) -------------------------------------------- */

/* NULL-terminated, indexed by enum dev_class / enum io_path. */
extern const char *const dev_class_names[DEV_CLASS_COUNT + 1];
extern const char *const io_path_names[IO_PATH_COUNT + 1];

/* Index of s in the NULL-terminated choices, -1 if absent. */
int cfg_choice_index(const char *const *choices, const char *s);

/* --- paths (config_paths.c) --------------------------------------------- */

char *cfg_dir_of(const char *file);
char *cfg_path_join(const char *dir, const char *rel);
int cfg_check_readable(const char *path);

/* --- one INI file (config_ini.c) ---------------------------------------- */

struct ini_section {
    char *name;
    int line;
};

struct ini_entry {
    int sec;        /* index into secs, -1: before any section */
    char *key;
    char *value;
    int line;
    bool cont;      /* an indented continuation line of the previous key */
};

struct ini_doc {
    char *file;     /* as given (VM file) or resolved (device files) */
    char *dir;
    int seq;
    struct ini_section *secs;
    size_t n_secs, cap_secs;
    struct ini_entry *ents;
    size_t n_ents, cap_ents;
};

int doc_read(struct loader *L, struct ini_doc *d, int err_line);
void doc_free(struct ini_doc *d);
/* Section of e, NULL if it comes before any section header. */
const char *doc_entry_section(const struct ini_doc *d, const struct ini_entry *e);
/* First [name], or NULL. */
const struct ini_section *doc_find_section(const struct ini_doc *d, const char *name);
/* First key in [sec] (continuation lines aside), or NULL. */
const struct ini_entry *doc_find_entry(const struct ini_doc *d, const char *sec, const char *key);
void doc_check_structure(struct loader *L, const struct ini_doc *d, const char *const *allowed,
                         const char *allowed_text, const char *outside_text);

/* --- schema checks (config_schema.c) ------------------------------------ */

/* found[] arrays are sized by it, so larger device schemas are refused. */
#define CFG_MAX_KEYS 64

struct found {
    const struct ini_entry *e;  /* first occurrence, NULL if absent */
    bool ok;                    /* its value passed the schema check */
};

/* "a, b or c" into buf. */
void cfg_fmt_choices(char *buf, size_t len, const char *const *choices);
size_t cfg_count_keys(const struct cfg_key *keys);
int cfg_key_index(const struct cfg_key *keys, const char *name);
void cfg_check_keys(struct loader *L, const struct ini_doc *d, const char *sec,
                    const struct cfg_key *keys, int missing_line, const char *what,
                    struct found *out);
/* 1..max characters from A-Z a-z 0-9 _ . - */
bool cfg_valid_name(const char *s, size_t max);

/* --- the VM file (config_vm.c) ------------------------------------------ */

enum { VK_NAME, VK_MEMORY, VK_VCPUS, VK_KERNEL, VK_INITRD, VK_CMDLINE, VK_HUGEPAGES, VK_DEVICES,
       VK_DEBUG_EXIT, VK_STATS_MARKS, VK_COUNT };

/* The device files named by devices =, each once (compared by inode). */
struct dev_file {
    char *path;
    dev_t dev;
    ino_t ino;
};

struct dev_list {
    struct dev_file *v;
    size_t n, cap;
};

void check_vm_file(struct loader *L, const struct ini_doc *d, struct found *f,
                   struct dev_list *devs);
/* Only for a VM file check_vm_file() found no error in. */
int fill_vm_config(struct loader *L, struct vm_config *out, const struct ini_doc *d,
                   const struct found *f);

/* --- device files (config_device.c) ------------------------------------- */

enum { DK_ID, DK_CLASS, DK_PATH, DK_COUNT };

struct dev_state {
    struct ini_doc doc;
    struct found f[DK_COUNT];
    bool cls_ok, path_ok;
    enum dev_class cls;
    enum io_path path;
    const struct device_impl *impl;
};

void check_device_file(struct loader *L, struct dev_state *ds);
/* Only for a device file check_device_file() found no error in. */
int fill_device_config(struct loader *L, struct device_config *dc, struct dev_state *ds);

#endif
