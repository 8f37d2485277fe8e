/* The physical function: its SR-IOV extended capability read through libpci
 * (sysfs config file, or a dump file for tests), VF routing-ID arithmetic,
 * and the list of SR-IOV capable functions. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pci/pci.h>

#include "sriov_internal.h"

/* SR-IOV capability registers (PCIe base spec, SR-IOV Extended Capability). */
#define SRIOV_CAP_SIZE       0x40
#define SRIOV_REG_INITIAL_VF 0x0c
#define SRIOV_REG_TOTAL_VF   0x0e
#define SRIOV_REG_NUM_VF     0x10
#define SRIOV_REG_VF_OFFSET  0x14
#define SRIOV_REG_VF_STRIDE  0x16
#define SRIOV_REG_VF_DID     0x1a

#define EXT_CAP_START 0x100
#define CFG_SPACE_EXT 4096

static char pci_dump_path[SRIOV_PATH_MAX];

void sriov_set_pci_dump(const char *path)
{
    snprintf(pci_dump_path, sizeof(pci_dump_path), "%s", path ? path : "");
}

int sriov_bdf_parse(const char *text, char out[SRIOV_BDF_LEN])
{
    unsigned dom = 0, bus, dev, fn;
    int used = 0;

    if (!text)
        return -EINVAL;
    /* %n after the last field so trailing junk is refused; widths keep
     * each field to the digits it may have. */
    if (sscanf(text, "%4x:%2x:%2x.%1u%n", &dom, &bus, &dev, &fn, &used) == 4 && used == 12 &&
        !text[used]) {
        /* full form */
    } else if (dom = 0, used = 0,
               sscanf(text, "%2x:%2x.%1u%n", &bus, &dev, &fn, &used) == 3 && used == 7 && !text[used]) {
        /* bus:dev.fn, domain 0 */
    } else {
        return -EINVAL;
    }
    for (const char *p = text; *p; p++)
        if (*p == ' ' || *p == '+' || *p == '-' || *p == 'x' || *p == 'X')
            return -EINVAL;
    if (dev > 31 || fn > 7)
        return -EINVAL;
    snprintf(out, SRIOV_BDF_LEN, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
    return 0;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

unsigned sriov_ext_cap_find(const uint8_t *cfg, size_t len, uint16_t id)
{
    unsigned pos = EXT_CAP_START;
    /* Each capability takes at least one dword, so a longer walk is a loop. */
    unsigned budget = (CFG_SPACE_EXT - EXT_CAP_START) / 4;

    while (budget-- && pos >= EXT_CAP_START && pos + 4 <= len) {
        uint32_t hdr = le32(cfg + pos);

        if (hdr == 0 || hdr == 0xffffffffu)
            return 0;
        if ((hdr & 0xffff) == id)
            return pos;
        pos = (hdr >> 20) & ~3u;
        if (!pos)
            return 0;
    }
    return 0;
}

int sriov_cap_parse(const uint8_t *cfg, size_t len, struct sriov_pf *pf)
{
    unsigned cap = sriov_ext_cap_find(cfg, len, PCI_EXT_CAP_ID_SRIOV);

    if (!cap || cap + SRIOV_CAP_SIZE > len)
        return -ENOENT;
    pf->initial_vfs = le16(cfg + cap + SRIOV_REG_INITIAL_VF);
    pf->total_vfs = le16(cfg + cap + SRIOV_REG_TOTAL_VF);
    pf->num_vfs = le16(cfg + cap + SRIOV_REG_NUM_VF);
    pf->vf_offset = le16(cfg + cap + SRIOV_REG_VF_OFFSET);
    pf->vf_stride = le16(cfg + cap + SRIOV_REG_VF_STRIDE);
    pf->vf_device = le16(cfg + cap + SRIOV_REG_VF_DID);
    return 0;
}

/* libpci reports errors through a callback that must not return; it
 * longjmps back to the one call in flight. */
static __thread jmp_buf *pci_error_jmp;
static __thread char pci_error_msg[160];

static void __attribute__((noreturn, format(printf, 1, 2))) pci_error_cb(char *msg, ...)
{
    va_list ap;

    va_start(ap, msg);
    vsnprintf(pci_error_msg, sizeof(pci_error_msg), msg, ap);
    va_end(ap);
    longjmp(*pci_error_jmp, 1);
}

static void __attribute__((format(printf, 1, 2))) pci_quiet_cb(char *msg, ...)
{
    (void)msg;
}

/* Reads up to 4 KiB of config space; *got is 256 or 4096 (0 on failure). */
static int read_config_space(const char *bdf, uint8_t *cfg, size_t *got, char *err, size_t errlen)
{
    unsigned dom, bus, dev, fn;
    char sysfs_bus[SRIOV_PATH_MAX];
    struct pci_access *volatile pacc = NULL;
    struct pci_dev *volatile pdev = NULL;
    jmp_buf jb;
    volatile int r = 0;

    sscanf(bdf, "%x:%x:%x.%u", &dom, &bus, &dev, &fn);
    *got = 0;
    if (sriov_sys_path(sysfs_bus, sizeof(sysfs_bus), "bus/pci") < 0) {
        sriov_errf(err, errlen, "sysfs root too long");
        return -ENAMETOOLONG;
    }
    pci_error_jmp = &jb;
    if (setjmp(jb)) {
        sriov_errf(err, errlen, "%s: libpci: %s", bdf, pci_error_msg);
        r = -EIO;
        goto out;
    }
    pacc = pci_alloc();
    pacc->error = pci_error_cb;
    pacc->warning = pci_quiet_cb;
    pacc->debug = pci_quiet_cb;
    if (pci_dump_path[0]) {
        pacc->method = PCI_ACCESS_DUMP;
        pci_set_param(pacc, "dump.name", pci_dump_path);
    } else {
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pci_set_param(pacc, "sysfs.path", sysfs_bus);
    }
    pci_init(pacc);
    pdev = pci_get_dev(pacc, (int)dom, (int)bus, (int)dev, (int)fn);
    if (!pci_read_block(pdev, 0, cfg, 256)) {
        sriov_errf(err, errlen, "%s: cannot read its config space (no such device, or not root)", bdf);
        r = -ENODEV;
        goto out;
    }
    *got = 256;
    /* Plain PCI functions have no extended space; SR-IOV needs it. */
    if (pci_read_block(pdev, 256, cfg + 256, CFG_SPACE_EXT - 256))
        *got = CFG_SPACE_EXT;
out:
    if (pdev)
        pci_free_dev(pdev);
    if (pacc)
        pci_cleanup(pacc);
    pci_error_jmp = NULL;
    return r;
}

static int read_numa_node(const char *bdf)
{
    char path[SRIOV_PATH_MAX], buf[16], *end;
    long v;

    if (sriov_dev_path(path, sizeof(path), bdf, "numa_node") < 0 ||
        sriov_sysfs_read(path, buf, sizeof(buf)) < 0)
        return -1;
    v = strtol(buf, &end, 10);
    return *end || end == buf || v < -1 || v > 4095 ? -1 : (int)v;
}

int sriov_current_driver(const char *bdf, char *driver, size_t len)
{
    char path[SRIOV_PATH_MAX];
    int r = sriov_dev_path(path, sizeof(path), bdf, "driver");

    return r < 0 ? r : sriov_sysfs_link_name(path, driver, len);
}

int sriov_pf_read(const char *bdf, struct sriov_pf *pf, char *err, size_t errlen)
{
    uint8_t cfg[CFG_SPACE_EXT];
    char path[SRIOV_PATH_MAX];
    size_t got;
    int r;

    memset(pf, 0, sizeof(*pf));
    pf->numa_node = -1;
    if (sriov_bdf_parse(bdf, pf->bdf) < 0) {
        sriov_errf(err, errlen, "'%s' is not a PCI address (expected dddd:bb:dd.f)", bdf ? bdf : "");
        return -EINVAL;
    }
    if (!pci_dump_path[0]) {
        if (sriov_dev_path(path, sizeof(path), pf->bdf, NULL) < 0 || !sriov_path_exists(path)) {
            sriov_errf(err, errlen, "%s: no such PCI device (%s/bus/pci/devices/%s missing)", pf->bdf,
                       sriov_sysfs_root(), pf->bdf);
            return -ENODEV;
        }
    }
    memset(cfg, 0xff, sizeof(cfg));
    r = read_config_space(pf->bdf, cfg, &got, err, errlen);
    if (r < 0)
        return r;
    pf->vendor = le16(cfg);
    pf->device = le16(cfg + 2);
    if (pf->vendor == 0xffff) {
        sriov_errf(err, errlen, "%s: no such PCI device (vendor id reads 0xffff)", pf->bdf);
        return -ENODEV;
    }
    if (got < CFG_SPACE_EXT || sriov_cap_parse(cfg, got, pf) < 0) {
        sriov_errf(err, errlen, "%s (%04x:%04x) is not SR-IOV capable: no SR-IOV extended capability%s",
                   pf->bdf, pf->vendor, pf->device,
                   got < CFG_SPACE_EXT ? " (no extended config space)" : "");
        return -EOPNOTSUPP;
    }
    if (sriov_current_driver(pf->bdf, pf->driver, sizeof(pf->driver)) < 0)
        pf->driver[0] = '\0';
    pf->numa_node = read_numa_node(pf->bdf);
    return 0;
}

int sriov_vf_bdf(const struct sriov_pf *pf, unsigned vf_index, char out[SRIOV_BDF_LEN])
{
    unsigned dom, bus, dev, fn;
    unsigned long rid;

    if (sscanf(pf->bdf, "%x:%x:%x.%u", &dom, &bus, &dev, &fn) != 4)
        return -EINVAL;
    if (vf_index >= pf->total_vfs)
        return -ERANGE;
    /* Offset 0 would name the PF itself, stride 0 every VF the same. */
    if (pf->vf_offset == 0 || (pf->vf_stride == 0 && pf->total_vfs > 1))
        return -EINVAL;
    rid = (bus << 8 | dev << 3 | fn) + (unsigned long)pf->vf_offset +
          (unsigned long)vf_index * pf->vf_stride;
    if (rid > 0xffff)
        return -ERANGE;
    snprintf(out, SRIOV_BDF_LEN, "%04x:%02lx:%02lx.%lu", dom, rid >> 8, (rid >> 3) & 0x1f, rid & 7);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sriov_pf_foreach(int (*fn)(const char *bdf, void *opaque), void *opaque)
{
    char path[SRIOV_PATH_MAX], probe[SRIOV_PATH_MAX], bdf[SRIOV_BDF_LEN];
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int r = 0;

    if (sriov_sys_path(path, sizeof(path), "bus/pci/devices") < 0)
        return -ENAMETOOLONG;
    d = opendir(path);
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        if (sriov_bdf_parse(de->d_name, bdf) < 0 || strcmp(bdf, de->d_name))
            continue;
        if (sriov_dev_path(probe, sizeof(probe), bdf, "sriov_totalvfs") < 0 || !sriov_path_exists(probe))
            continue;
        if (count == cap) {
            char **grown = realloc(names, (cap ? cap * 2 : 16) * sizeof(*names));
            if (!grown) {
                r = -ENOMEM;
                break;
            }
            names = grown;
            cap = cap ? cap * 2 : 16;
        }
        names[count] = strdup(bdf);
        if (!names[count]) {
            r = -ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (!r)
        qsort(names, count, sizeof(*names), cmp_names);
    for (size_t i = 0; i < count; i++) {
        if (!r)
            r = fn(names[i], opaque);
        free(names[i]);
    }
    free(names);
    return r;
}
