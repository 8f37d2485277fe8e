/* Host IOMMU discovery from sysfs and procfs: which IOMMU, whether the kernel
 * uses it, and whether interrupts are remapped. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iommu.h"
#include "iommu_internal.h"

#define VTD_ECAP_IR (1ULL << 3)   /* VT-d spec, Extended Capability Register */

const char *iommu_sysfs_root(void)
{
    const char *r = getenv("IOVMM_SYSFS_ROOT");

    return r ? r : "";
}

const char *iommu_kind_name(enum iommu_kind kind)
{
    switch (kind) {
    case IOMMU_INTEL_VTD: return "Intel VT-d";
    case IOMMU_AMD_VI: return "AMD-Vi";
    case IOMMU_OTHER: return "an IOMMU";
    default: return "none";
    }
}

int iommu_read_text(const char *root, const char *path, char *buf, size_t len)
{
    char full[512];
    FILE *f;
    size_t n;

    snprintf(full, sizeof(full), "%s%s", root, path);
    f = fopen(full, "re");
    if (!f)
        return -errno;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

bool iommu_path_exists(const char *root, const char *path)
{
    char full[512];

    snprintf(full, sizeof(full), "%s%s", root, path);
    return access(full, F_OK) == 0;
}

/* Entries of a folder other than . and ..; -1 if it cannot be read. */
static int count_entries(const char *root, const char *path, char *first, size_t first_len)
{
    char full[512];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(full, sizeof(full), "%s%s", root, path);
    if (!(d = opendir(full)))
        return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        /* The first in name order, so that the result does not depend on
         * readdir's order. */
        if (first && (n == 0 || strcmp(e->d_name, first) < 0))
            snprintf(first, first_len, "%.*s", (int)first_len - 1, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static bool file_contains(const char *root, const char *path, const char *needle)
{
    char full[512], line[1024];
    bool found = false;
    FILE *f;

    snprintf(full, sizeof(full), "%s%s", root, path);
    if (!(f = fopen(full, "re")))
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

void iommu_host_probe(const char *root, struct iommu_host_info *info)
{
    char buf[64], path[128];
    int n;

    memset(info, 0, sizeof(*info));
    n = count_entries(root, "/sys/class/iommu", info->first_unit, sizeof(info->first_unit));
    info->units = n > 0 ? (unsigned)n : 0;
    if (info->units == 0)
        info->kind = IOMMU_NONE;
    else if (strncmp(info->first_unit, "dmar", 4) == 0)
        info->kind = IOMMU_INTEL_VTD;
    else if (strncmp(info->first_unit, "ivhd", 4) == 0)
        info->kind = IOMMU_AMD_VI;
    else
        info->kind = IOMMU_OTHER;
    info->acpi_table = iommu_path_exists(root, "/sys/firmware/acpi/tables/DMAR") ||
                       iommu_path_exists(root, "/sys/firmware/acpi/tables/IVRS");
    info->groups = count_entries(root, "/sys/kernel/iommu_groups", NULL, 0) > 0;

    if (info->kind == IOMMU_INTEL_VTD) {
        snprintf(path, sizeof(path), "/sys/class/iommu/%s/intel-iommu/ecap", info->first_unit);
        if (iommu_read_text(root, path, buf, sizeof(buf)) == 0)
            info->intremap_hw = (strtoull(buf, NULL, 16) & VTD_ECAP_IR) != 0;
    } else if (info->kind == IOMMU_AMD_VI) {
        info->intremap_hw = true;
    }
    /* Remapped interrupt chips are named IR-IO-APIC, IR-PCI-MSI... */
    info->intremap_on = file_contains(root, "/proc/interrupts", "IR-");
    if (iommu_read_text(root, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
                        buf, sizeof(buf)) == 0)
        info->unsafe_interrupts_ok = buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1';
}

int iommu_host_check(const struct iommu_host_info *info, char *err, size_t errlen)
{
    if (info->kind == IOMMU_NONE || !info->groups) {
        snprintf(err, errlen,
                 "no IOMMU in use on this host (/sys/class/iommu %s, /sys/kernel/iommu_groups %s%s): "
                 "device assignment needs VT-d or AMD-Vi enabled%s",
                 info->units ? "lists units" : "is empty", info->groups ? "has groups" : "is empty",
                 info->acpi_table ? "; the firmware has a DMAR/IVRS table" : "",
                 info->acpi_table ? ", boot the host with intel_iommu=on (or amd_iommu=on)"
                                  : " in the firmware and on the kernel command line");
        return -ENODEV;
    }
    if (!info->intremap_on && !info->unsafe_interrupts_ok) {
        snprintf(err, errlen,
                 "%s (%s) does not remap interrupts%s, and vfio_iommu_type1 refuses such devices "
                 "unless loaded with allow_unsafe_interrupts=1 (a guest could then forge MSIs)",
                 iommu_kind_name(info->kind), info->first_unit,
                 info->intremap_hw ? " (supported by the hardware but off)" : "");
        return -EPERM;
    }
    return 0;
}
