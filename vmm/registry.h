/* Which code implements a device file's (class, path, model). A path that is
 * not implemented for a class has no entry, and config_load refuses it. */
#ifndef VMM_REGISTRY_H
#define VMM_REGISTRY_H

#include "config.h"

struct vm;
struct device;

struct device_impl {
    enum dev_class cls;
    enum io_path path;
    const char *model;            /* value of "model" in the path section; NULL: no model key */
    const struct cfg_key *keys;   /* schema of the path section, "model" included if model != NULL */
    /* Builds the device into vm. 0 or -errno, having logged why. */
    int (*create)(struct vm *vm, const struct device_config *dc);
};

/* NULL-terminated. */
extern const struct device_impl *const device_registry[];

/* Any implementation of (cls, path), or NULL. */
const struct device_impl *registry_find_path(enum dev_class cls, enum io_path path);
/* The implementation of (cls, path, model); model may be NULL for paths that have none. */
const struct device_impl *registry_find(enum dev_class cls, enum io_path path, const char *model);

#endif
