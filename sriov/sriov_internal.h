/* What the sriov/ files share and the unit tests reach into: sysfs access
 * under the root prefix, error messages, and the test hooks that stand in for
 * the kernel (sysfs writes) and for the NVMe PF (admin commands). */
#ifndef SRIOV_INTERNAL_H
#define SRIOV_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sriov.h"

#define SRIOV_PATH_MAX 512

void sriov_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* <root>/bus/pci/devices/<bdf>/<leaf> (leaf may be NULL or contain '/'). */
int sriov_dev_path(char *out, size_t len, const char *bdf, const char *leaf);
/* <root>/<rel> */
int sriov_sys_path(char *out, size_t len, const char *rel);

/* Reads a small sysfs file, trailing newline stripped. -errno. */
int sriov_sysfs_read(const char *path, char *buf, size_t len);
/* A decimal (or 0x hex) number no larger than max; -EINVAL on anything else
 * (garbage, trailing junk, empty, too large). */
int sriov_sysfs_read_uint(const char *path, unsigned max, unsigned *out);
/* Writes val to an existing file (never creates one). -errno. */
int sriov_sysfs_write(const char *path, const char *val);
/* Last component of a symlink's target ("" and 0 when the link is absent). */
int sriov_sysfs_link_name(const char *path, char *out, size_t len);
bool sriov_path_exists(const char *path);

/* Called after every successful sysfs write: tests use it to play the kernel
 * (e.g. a drivers_probe write makes the driver link appear). */
typedef void (*sriov_sysfs_write_hook_fn)(const char *path, const char *val, void *opaque);
void sriov_set_sysfs_write_hook(sriov_sysfs_write_hook_fn fn, void *opaque);

/* Parse the SR-IOV extended capability out of a config space image (len 256
 * or 4096; the caller fills vendor/device/bdf). -ENOENT when there is no
 * SR-IOV capability; the walk survives loops and garbage. */
int sriov_cap_parse(const uint8_t *cfg, size_t len, struct sriov_pf *pf);
/* Offset of an extended capability, 0 when absent. */
unsigned sriov_ext_cap_find(const uint8_t *cfg, size_t len, uint16_t id);

#endif
