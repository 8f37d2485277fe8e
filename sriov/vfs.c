/* The VF count of a PF through sysfs (sriov_numvfs, sriov_totalvfs) and the
 * PF's sriov_drivers_autoprobe switch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sriov_internal.h"

/* Canonical BDF of an existing device, or -ENODEV with a message. */
static int existing_device(const char *bdf, char canon[SRIOV_BDF_LEN], char *err, size_t errlen)
{
    char path[SRIOV_PATH_MAX];

    if (sriov_bdf_parse(bdf, canon) < 0) {
        sriov_errf(err, errlen, "'%s' is not a PCI address (expected dddd:bb:dd.f)", bdf ? bdf : "");
        return -EINVAL;
    }
    if (sriov_dev_path(path, sizeof(path), canon, NULL) < 0 || !sriov_path_exists(path)) {
        sriov_errf(err, errlen, "%s: no such PCI device", canon);
        return -ENODEV;
    }
    return 0;
}

static int read_count(const char *bdf, const char *leaf, unsigned *out, char *err, size_t errlen)
{
    char path[SRIOV_PATH_MAX], raw[32];
    int r = sriov_dev_path(path, sizeof(path), bdf, leaf);

    if (r == 0)
        r = sriov_sysfs_read_uint(path, 0xffff, out);
    if (r == -ENOENT) {
        sriov_errf(err, errlen, "%s is not SR-IOV capable (no %s in sysfs)", bdf, leaf);
        return -EOPNOTSUPP;
    }
    if (r == -EINVAL) {
        if (sriov_sysfs_read(path, raw, sizeof(raw)) < 0)
            raw[0] = '\0';
        sriov_errf(err, errlen, "%s: %s reads '%.31s', not a VF count", bdf, leaf, raw);
        return r;
    }
    if (r < 0)
        sriov_errf(err, errlen, "%s: reading %s: %s", bdf, leaf, strerror(-r));
    return r;
}

int sriov_get_autoprobe(const char *pf_bdf, bool *on, char *err, size_t errlen)
{
    char bdf[SRIOV_BDF_LEN], path[SRIOV_PATH_MAX];
    unsigned v;
    int r = existing_device(pf_bdf, bdf, err, errlen);

    if (r < 0)
        return r;
    r = sriov_dev_path(path, sizeof(path), bdf, "sriov_drivers_autoprobe");
    if (r == 0)
        r = sriov_sysfs_read_uint(path, 1, &v);
    if (r < 0) {
        sriov_errf(err, errlen, "%s: reading sriov_drivers_autoprobe: %s", bdf, strerror(-r));
        return r;
    }
    *on = v;
    return 0;
}

int sriov_set_autoprobe(const char *pf_bdf, bool on, char *err, size_t errlen)
{
    char bdf[SRIOV_BDF_LEN], path[SRIOV_PATH_MAX];
    int r = existing_device(pf_bdf, bdf, err, errlen);

    if (r < 0)
        return r;
    r = sriov_dev_path(path, sizeof(path), bdf, "sriov_drivers_autoprobe");
    if (r == 0)
        r = sriov_sysfs_write(path, on ? "1" : "0");
    if (r < 0)
        sriov_errf(err, errlen, "%s: writing %d to sriov_drivers_autoprobe: %s", bdf, on, strerror(-r));
    return r;
}

static int write_numvfs(const char *bdf, unsigned n, char *err, size_t errlen)
{
    char path[SRIOV_PATH_MAX], val[16];
    int r = sriov_dev_path(path, sizeof(path), bdf, "sriov_numvfs");

    snprintf(val, sizeof(val), "%u", n);
    if (r == 0)
        r = sriov_sysfs_write(path, val);
    if (r < 0)
        sriov_errf(err, errlen, "%s: writing %u to sriov_numvfs: %s%s", bdf, n, strerror(-r),
                   r == -ENOENT || r == -EBUSY || r == -EPERM
                       ? " (the PF needs a bound driver that supports SR-IOV, and VFs still in use block removal)"
                       : "");
    return r;
}

int sriov_set_num_vfs(const char *pf_bdf, unsigned n, char *err, size_t errlen)
{
    char bdf[SRIOV_BDF_LEN];
    unsigned total, cur;
    int r = existing_device(pf_bdf, bdf, err, errlen);

    if (r < 0)
        return r;
    if ((r = read_count(bdf, "sriov_totalvfs", &total, err, errlen)) < 0 ||
        (r = read_count(bdf, "sriov_numvfs", &cur, err, errlen)) < 0)
        return r;
    if (n > total) {
        sriov_errf(err, errlen, "%s supports at most %u VFs, %u asked", bdf, total, n);
        return -ERANGE;
    }
    if (cur == n)
        return 0;
    if (n > 0 && (r = sriov_set_autoprobe(bdf, false, err, errlen)) < 0)
        return r;
    /* The kernel refuses to change a non-zero count to another non-zero one. */
    if (cur != 0 && n != 0 && (r = write_numvfs(bdf, 0, err, errlen)) < 0)
        return r;
    if ((r = write_numvfs(bdf, n, err, errlen)) < 0) {
        if (cur != 0 && n != 0)
            write_numvfs(bdf, cur, NULL, 0); /* best effort: put the old VFs back */
        return r;
    }
    if ((r = read_count(bdf, "sriov_numvfs", &cur, err, errlen)) < 0)
        return r;
    if (cur != n) {
        sriov_errf(err, errlen, "%s: sriov_numvfs reads %u after writing %u", bdf, cur, n);
        return -EIO;
    }
    return 0;
}
