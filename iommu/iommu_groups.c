/* PCI devices in sysfs: their IOMMU group, driver and NUMA node, and whether
 * a whole group may go to a guest. sysfs contents are untrusted input: every
 * value is parsed with bounds. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iommu.h"
#include "iommu_internal.h"

static int hex_field(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                             : tolower((unsigned char)s[i]) - 'a' + 10);
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int iommu_parse_bdf(const char *text, char out[13])
{
    unsigned dom = 0, bus, dev, fn;
    const char *s = text;

    if (!text)
        return -EINVAL;
    if (strlen(s) == 12) {
        if (s[4] != ':' || hex_field(s, 4, 0xffff, &dom) < 0)
            return -EINVAL;
        s += 5;
    }
    if (strlen(s) != 7 || s[2] != ':' || s[5] != '.' || hex_field(s, 2, 0xff, &bus) < 0 ||
        hex_field(s + 3, 2, 0x1f, &dev) < 0 || hex_field(s + 6, 1, 7, &fn) < 0)
        return -EINVAL;
    snprintf(out, 13, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    return 0;
}

/* Last path component of the symlink root+path, or -errno. */
static int link_name(const char *root, const char *path, char *name, size_t len)
{
    char full[512], target[PATH_MAX];
    ssize_t n;
    const char *slash;

    snprintf(full, sizeof(full), "%s%s", root, path);
    n = readlink(full, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    slash = strrchr(target, '/');
    snprintf(name, len, "%s", slash ? slash + 1 : target);
    return 0;
}

int iommu_device_group(const char *root, const char *bdf)
{
    char path[256], name[64], *end;
    long group;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
    if (!iommu_path_exists(root, path))
        return -ENOENT;
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
    if (link_name(root, path, name, sizeof(name)) < 0)
        return -ENODEV;
    group = strtol(name, &end, 10);
    if (end == name || *end || group < 0 || group > INT_MAX)
        return -ENODEV;
    return (int)group;
}

int iommu_device_driver(const char *root, const char *bdf, char *driver, size_t len)
{
    char path[256];
    int ret;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
    ret = link_name(root, path, driver, len);
    if (ret == -ENOENT) {
        driver[0] = '\0';
        return 0;
    }
    return ret;
}

static bool member_ok(const char *root, int group, const char *name, char *driver, size_t len)
{
    char path[384], buf[32];

    snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices/%s/driver", group, name);
    if (link_name(root, path, driver, len) < 0)
        driver[0] = '\0';
    if (!driver[0] || strcmp(driver, "vfio-pci") == 0 || strcmp(driver, "pci-stub") == 0 ||
        strcmp(driver, "pcieport") == 0)
        return true;
    /* A bridge with another driver only forwards; it does not DMA for itself. */
    snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices/%s/class", group, name);
    if (iommu_read_text(root, path, buf, sizeof(buf)) == 0)
        return (strtoul(buf, NULL, 16) >> 8) == 0x0604;
    return false;
}

int iommu_group_check_viable(const char *root, int group, char *err, size_t errlen)
{
    char path[256], driver[64];
    size_t off = 0;
    unsigned bad = 0;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "%s/sys/kernel/iommu_groups/%d/devices", root, group);
    if (!(d = opendir(path))) {
        snprintf(err, errlen, "IOMMU group %d does not exist (%s)", group, strerror(errno));
        return -ENOENT;
    }
    err[0] = '\0';
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || member_ok(root, group, e->d_name, driver, sizeof(driver)))
            continue;
        if (bad++ == 0)
            off = (size_t)snprintf(err, errlen, "IOMMU group %d is not viable: ", group);
        if (off < errlen)
            off += (size_t)snprintf(err + off, errlen - off, "%s%s (bound to %s)", bad > 1 ? ", " : "",
                                    e->d_name, driver);
    }
    closedir(d);
    if (bad && off < errlen)
        snprintf(err + off, errlen - off,
                 "; every device of the group must be bound to vfio-pci or to no driver");
    return bad ? -EPERM : 0;
}

int iommu_device_numa_node(const char *root, const char *bdf)
{
    char path[256], buf[32], *end;
    long node;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", bdf);
    if (iommu_read_text(root, path, buf, sizeof(buf)) < 0)
        return -1;
    node = strtol(buf, &end, 10);
    if (end == buf || *end || node < 0 || node > 63)
        return -1;
    return (int)node;
}

/* Does the cpulist text ("0-3,8,10-11") name a CPU in set? */
static bool cpulist_meets(const char *list, const cpu_set_t *set)
{
    const char *p = list;

    while (*p) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p)
            return false;
        p = end;
        if (*p == '-') {
            b = strtoul(p + 1, &end, 10);
            if (end == p + 1)
                return false;
            p = end;
        }
        for (unsigned long c = a; c <= b && c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, set))
                return true;
        if (*p == ',')
            p++;
        else if (*p)
            return false;
    }
    return false;
}

uint64_t iommu_current_numa_nodes(const char *root)
{
    char path[128], buf[1024];
    uint64_t nodes = 0;
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return 0;
    for (unsigned n = 0; n < 64; n++) {
        snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/cpulist", n);
        if (iommu_read_text(root, path, buf, sizeof(buf)) < 0)
            continue;
        if (cpulist_meets(buf, &set))
            nodes |= 1ULL << n;
    }
    return nodes;
}
