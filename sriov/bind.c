/* Moving a PCI function to vfio-pci and back: driver_override so that only
 * vfio-pci may claim it, unbind from the host driver, reprobe; the previous
 * driver and override are remembered so teardown puts them back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sriov_internal.h"

#define VFIO_DRIVER "vfio-pci"

static int write_driver_file(const char *driver, const char *leaf, const char *bdf)
{
    char rel[160], path[SRIOV_PATH_MAX];
    int r;

    snprintf(rel, sizeof(rel), "bus/pci/drivers/%s/%s", driver, leaf);
    r = sriov_sys_path(path, sizeof(path), rel);
    return r < 0 ? r : sriov_sysfs_write(path, bdf);
}

static int reprobe(const char *bdf)
{
    char path[SRIOV_PATH_MAX];
    int r = sriov_sys_path(path, sizeof(path), "bus/pci/drivers_probe");

    return r < 0 ? r : sriov_sysfs_write(path, bdf);
}

static int write_override(const char *bdf, const char *driver)
{
    char path[SRIOV_PATH_MAX];
    int r = sriov_dev_path(path, sizeof(path), bdf, "driver_override");

    /* A lone newline clears the override. */
    return r < 0 ? r : sriov_sysfs_write(path, driver[0] ? driver : "\n");
}

static bool driver_is(const char *bdf, const char *want)
{
    char cur[64];

    return sriov_current_driver(bdf, cur, sizeof(cur)) == 0 && strcmp(cur, want) == 0;
}

int sriov_bind_vfio(const char *bdf_text, struct sriov_binding *saved, char *err, size_t errlen)
{
    char bdf[SRIOV_BDF_LEN], path[SRIOV_PATH_MAX], cur[64];
    int r;

    memset(saved, 0, sizeof(*saved));
    if (sriov_bdf_parse(bdf_text, bdf) < 0) {
        sriov_errf(err, errlen, "'%s' is not a PCI address (expected dddd:bb:dd.f)", bdf_text ? bdf_text : "");
        return -EINVAL;
    }
    snprintf(saved->bdf, sizeof(saved->bdf), "%s", bdf);
    if (sriov_dev_path(path, sizeof(path), bdf, NULL) < 0 || !sriov_path_exists(path)) {
        sriov_errf(err, errlen, "%s: no such PCI device", bdf);
        return -ENODEV;
    }
    if (sriov_sys_path(path, sizeof(path), "bus/pci/drivers/" VFIO_DRIVER) < 0 || !sriov_path_exists(path)) {
        sriov_errf(err, errlen, "the vfio-pci driver is not loaded (modprobe vfio-pci)");
        return -ENOENT;
    }
    r = sriov_current_driver(bdf, saved->driver, sizeof(saved->driver));
    if (r < 0) {
        sriov_errf(err, errlen, "%s: reading its driver link: %s", bdf, strerror(-r));
        return r;
    }
    if (strcmp(saved->driver, VFIO_DRIVER) == 0)
        return 0; /* already there: restore leaves it alone */

    if ((r = sriov_dev_path(path, sizeof(path), bdf, "driver_override")) == 0)
        r = sriov_sysfs_read(path, saved->override, sizeof(saved->override));
    if (r < 0) {
        sriov_errf(err, errlen, "%s: reading driver_override: %s", bdf, strerror(-r));
        return r;
    }
    if (strcmp(saved->override, "(null)") == 0)
        saved->override[0] = '\0';

    if ((r = write_override(bdf, VFIO_DRIVER)) < 0) {
        sriov_errf(err, errlen, "%s: writing driver_override: %s", bdf, strerror(-r));
        return r;
    }
    saved->changed = true;
    if (saved->driver[0] && (r = write_driver_file(saved->driver, "unbind", bdf)) < 0) {
        sriov_errf(err, errlen, "%s: unbinding from %s: %s", bdf, saved->driver, strerror(-r));
        goto undo;
    }
    /* drivers_probe honours the override; a direct bind is the fallback. */
    if (reprobe(bdf) < 0 || !driver_is(bdf, VFIO_DRIVER))
        write_driver_file(VFIO_DRIVER, "bind", bdf);
    if (!driver_is(bdf, VFIO_DRIVER)) {
        if (sriov_current_driver(bdf, cur, sizeof(cur)) < 0)
            cur[0] = '\0';
        sriov_errf(err, errlen, "%s did not bind to vfio-pci (driver now: %s; see dmesg)", bdf,
                   cur[0] ? cur : "none");
        r = -EIO;
        goto undo;
    }
    return 0;
undo:
    sriov_restore_binding(saved);
    saved->changed = false;
    return r;
}

int sriov_restore_binding(const struct sriov_binding *saved)
{
    char cur[64];
    int r, first = 0;

    if (!saved || !saved->changed)
        return 0;
    r = write_override(saved->bdf, saved->override);
    if (r < 0)
        first = r;
    if (sriov_current_driver(saved->bdf, cur, sizeof(cur)) == 0 && cur[0] &&
        strcmp(cur, saved->driver) != 0) {
        r = write_driver_file(cur, "unbind", saved->bdf);
        if (r < 0 && !first)
            first = r;
    }
    if (saved->driver[0] && !driver_is(saved->bdf, saved->driver)) {
        if (write_driver_file(saved->driver, "bind", saved->bdf) < 0)
            reprobe(saved->bdf);
        if (!driver_is(saved->bdf, saved->driver) && !first)
            first = -EIO;
    }
    return first;
}
