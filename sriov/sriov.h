/* SR-IOV physical functions and their virtual functions: discovery (libpci),
 * VF creation through sysfs, VF index <-> BDF, binding to vfio-pci and back,
 * and the one-call lease the VMM uses for `pf = ...` + `vf = N`.
 *
 * VF indexes are 0-based everywhere (API, sriovctl, device files), like the
 * kernel's sysfs links virtfn0, virtfn1, ... NVMe numbers VFs from 1; nvme.c
 * converts.
 *
 * Every function that can fail returns a negative errno and writes a message
 * naming the cause into err (which may be NULL). All sysfs paths start at a
 * root prefix ("/sys" unless sriov_set_sysfs_root() says otherwise), so the
 * unit tests run against a fake tree. */
#ifndef SRIOV_H
#define SRIOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRIOV_BDF_LEN 13 /* "dddd:bb:dd.f" + NUL */

struct sriov_pf {
    char bdf[SRIOV_BDF_LEN];
    uint16_t vendor, device;
    uint16_t total_vfs, num_vfs, initial_vfs;
    uint16_t vf_offset, vf_stride, vf_device;
    char driver[64]; /* "" when no driver is bound */
    int numa_node;   /* -1 when the platform does not say */
};

/* ---- sysfs root and the libpci source (tests) ---------------------------- */
void sriov_set_sysfs_root(const char *root); /* NULL restores "/sys" */
const char *sriov_sysfs_root(void);
/* Read config space from an `lspci -xxxx`-style dump file instead of sysfs
 * (libpci's dump method); NULL returns to sysfs. */
void sriov_set_pci_dump(const char *path);

/* ---- BDFs ------------------------------------------------------------------ */
/* Accepts "dddd:bb:dd.f" or "bb:dd.f" (domain 0); writes the canonical
 * lower-case 12-character form. */
int sriov_bdf_parse(const char *text, char out[SRIOV_BDF_LEN]);

/* ---- the physical function --------------------------------------------------- */
int sriov_pf_read(const char *bdf, struct sriov_pf *pf, char *err, size_t errlen);
/* Routing ID arithmetic: PF RID + First VF Offset + index * VF Stride, in the
 * PF's domain. -ERANGE when index >= TotalVFs or the RID passes bus 255,
 * -EINVAL for a capability that cannot describe a VF (offset 0, stride 0). */
int sriov_vf_bdf(const struct sriov_pf *pf, unsigned vf_index, char out[SRIOV_BDF_LEN]);
/* Calls fn for every device under <root>/bus/pci/devices with an
 * sriov_totalvfs file; stops early when fn returns non-zero (and returns it). */
int sriov_pf_foreach(int (*fn)(const char *bdf, void *opaque), void *opaque);

/* ---- VF count ----------------------------------------------------------------- */
/* sysfs sriov_numvfs. A non-zero count is changed through 0 (the kernel
 * refuses otherwise); creating VFs first sets sriov_drivers_autoprobe to 0 so
 * no host driver grabs them (it stays 0: see sriov_set_autoprobe). */
int sriov_set_num_vfs(const char *bdf, unsigned n, char *err, size_t errlen);
int sriov_get_autoprobe(const char *pf_bdf, bool *on, char *err, size_t errlen);
int sriov_set_autoprobe(const char *pf_bdf, bool on, char *err, size_t errlen);

/* ---- binding ---------------------------------------------------------------------- */
struct sriov_binding {
    char bdf[SRIOV_BDF_LEN];
    char driver[64];   /* driver bound before, "" for none */
    char override[64]; /* driver_override before, "" for none */
    bool changed;      /* false: it was on vfio-pci already, restore does nothing */
};
/* driver_override = vfio-pci, unbind from the current driver, drivers_probe;
 * checks that the device landed on vfio-pci (and undoes itself if not). */
int sriov_bind_vfio(const char *bdf, struct sriov_binding *saved, char *err, size_t errlen);
/* Clears driver_override (or puts back the old one), unbinds from vfio-pci and
 * rebinds the original driver, if there was one. */
int sriov_restore_binding(const struct sriov_binding *saved);
/* Current driver name ("" for none). */
int sriov_current_driver(const char *bdf, char *driver, size_t len);

/* ---- the VMM's lease ----------------------------------------------------------------- */
struct sriov_vf_lease;
/* Checks the index against TotalVFs, creates the VFs if the PF has too few,
 * provisions the VF if the PF is an NVMe controller (queues, interrupts,
 * online) and binds it to vfio-pci. NULL + message on failure, with every
 * step that succeeded undone. */
struct sriov_vf_lease *sriov_vf_acquire(const char *pf_bdf, unsigned vf_index,
                                        char vf_bdf[SRIOV_BDF_LEN], char *err, size_t errlen);
/* Undoes in reverse: original binding, NVMe VF offline and its resources
 * back, VFs removed if this lease created them (and no other VF is bound),
 * sriov_drivers_autoprobe back. NULL is fine. */
void sriov_vf_release(struct sriov_vf_lease *lease);
/* Leases hold <dir>/<pf>-vf<N>.lock (flock, with the holder's pid) for their
 * life, so a second VM asking for the same VF is refused naming the first,
 * and <dir>/<pf>.lock while they set up or tear down. Default
 * /run/iovmm-sriov; tests point it at a temp dir. */
void sriov_set_lock_dir(const char *dir);

#endif
