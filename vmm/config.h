/* The VM file and its per-device files (INI, parsed with libinih).
 * config_load() reads and validates everything before anything is created:
 * every error names file:line, the key and what was expected. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum dev_class { DEV_CLASS_CONSOLE, DEV_CLASS_NET, DEV_CLASS_BLOCK, DEV_CLASS_COUNT };
enum io_path { IO_PATH_EMULATED, IO_PATH_VIRTIO, IO_PATH_PASSTHROUGH, IO_PATH_COUNT };
enum hugepages_mode { HUGEPAGES_OFF, HUGEPAGES_2M, HUGEPAGES_1G };

const char *dev_class_name(enum dev_class c);
const char *io_path_name(enum io_path p);

/* Schema of one key of a device section. */
enum cfg_type {
    CFG_STRING,  /* any non-empty text */
    CFG_PATH,    /* a file path, relative to the device file's folder */
    CFG_UINT,    /* decimal or 0x hex, within [min, max] */
    CFG_SIZE,    /* bytes with optional K/M/G/T suffix (powers of 1024), within [min, max] */
    CFG_BOOL,    /* on/off, yes/no, true/false, 1/0 */
    CFG_ENUM,    /* one of choices */
    CFG_MAC,     /* xx:xx:xx:xx:xx:xx, unicast */
};

struct cfg_key {
    const char *name;               /* NULL ends a table */
    enum cfg_type type;
    bool required;
    const char *default_value;      /* used by the getters when the key is absent */
    const char *const *choices;     /* CFG_ENUM: NULL-terminated */
    uint64_t min, max;              /* CFG_UINT / CFG_SIZE */
    uint64_t multiple_of;           /* CFG_UINT / CFG_SIZE: 0, or the value must be a multiple */
    const char *expected;           /* human text for errors, e.g. "stdio, none or a file path" */
};

struct cfg_value {                  /* one key = value from a path section */
    char *section;
    char *key;
    char *value;
    int line;
};

struct device_impl;

struct device_config {
    char *file;                     /* path of the device file as resolved */
    char *dir;                      /* its folder: base of relative paths */
    char *id;
    int id_line;
    enum dev_class cls;
    enum io_path path;
    int path_line;
    const struct device_impl *impl; /* resolved from (class, path, model) */
    struct cfg_value *values;       /* keys of [emulated] / [virtio] / [passthrough] */
    size_t n_values;
};

struct vm_config {
    char *file;
    char *dir;
    char *name;
    uint64_t memory;                /* bytes, multiple of 2 MiB */
    unsigned vcpus;
    char *kernel;                   /* absolute or relative to the VM file's folder, resolved */
    char *initrd;                   /* NULL if none */
    char *cmdline;
    enum hugepages_mode hugepages;
    bool debug_exit;                /* the guest may end the VM through port 0x501 */
    bool stats_marks;               /* the guest may record stats marks through port 0x502 */
    struct device_config *devices;
    size_t n_devices;
};

/* 0 on success. On failure prints every error found to err (one line each,
 * "FILE:LINE: KEY: what is wrong (expected ...)") and returns -1. */
int config_load(const char *vm_file, struct vm_config *out, FILE *err);
void config_free(struct vm_config *cfg);

/* Value of key in the device's active path section (the one named by its
 * path), or the schema default, or NULL. Values were validated at load. */
const char *device_config_get(const struct device_config *dc, const char *key);
uint64_t device_config_get_uint(const struct device_config *dc, const char *key); /* also sizes */
bool device_config_get_bool(const struct device_config *dc, const char *key);
/* Resolves a CFG_PATH value against the device file's folder; caller frees. */
char *device_config_get_path(const struct device_config *dc, const char *key);
/* Prints "FILE:LINE: KEY: message" to stderr, at KEY's line in the active
 * path section (the path line when it is not there; key NULL: no prefix):
 * for what a device finds wrong when it is created. */
__attribute__((format(printf, 3, 4)))
void device_config_key_error(const struct device_config *dc, const char *key, const char *fmt, ...);
/* A disk's guest-visible serial: the active section's `serial`, or the
 * device id, so it stays the same whichever path the file picks. 0, or -1
 * when it is empty, longer than DEVICE_SERIAL_MAX or not printable ASCII
 * (reported at its line). */
#define DEVICE_SERIAL_MAX 20
int device_config_serial(const struct device_config *dc, char serial[DEVICE_SERIAL_MAX + 1]);

/* Shared parsers, also used for command-line values. 0 or -1. */
int cfg_parse_size(const char *s, uint64_t *out);
int cfg_parse_uint(const char *s, uint64_t *out);
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_mac(const char *s, uint8_t mac[6]);

#endif
