/* sysfs access for sriov/: one root prefix so the unit tests run against a
 * fake tree, strict parsing of what the kernel (or a hostile tree) writes,
 * and a write hook through which a test plays the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sriov_internal.h"

static char sysfs_root[SRIOV_PATH_MAX] = "/sys";
static sriov_sysfs_write_hook_fn write_hook;
static void *write_hook_opaque;

void sriov_set_sysfs_root(const char *root)
{
    snprintf(sysfs_root, sizeof(sysfs_root), "%s", root ? root : "/sys");
}

const char *sriov_sysfs_root(void)
{
    return sysfs_root;
}

void sriov_set_sysfs_write_hook(sriov_sysfs_write_hook_fn fn, void *opaque)
{
    write_hook = fn;
    write_hook_opaque = opaque;
}

void sriov_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sriov_sys_path(char *out, size_t len, const char *rel)
{
    int n = snprintf(out, len, "%s/%s", sysfs_root, rel);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int sriov_dev_path(char *out, size_t len, const char *bdf, const char *leaf)
{
    int n = snprintf(out, len, "%s/bus/pci/devices/%s%s%s", sysfs_root, bdf,
                     leaf ? "/" : "", leaf ? leaf : "");

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool sriov_path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

int sriov_sysfs_read(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (!len)
        return -EINVAL;
    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    if (n < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    close(fd);
    buf[n] = '\0';
    /* A sysfs value is one line; a NUL inside it is a broken (or fake) file. */
    if (strlen(buf) != (size_t)n)
        return -EINVAL;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

int sriov_sysfs_read_uint(const char *path, unsigned max, unsigned *out)
{
    char buf[32], *end;
    unsigned long v;
    int r = sriov_sysfs_read(path, buf, sizeof(buf));

    if (r < 0)
        return r;
    if (!buf[0] || buf[0] == '-' || buf[0] == '+' || buf[0] == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoul(buf, &end, 0);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int sriov_sysfs_write(const char *path, const char *val)
{
    /* No O_CREAT: a missing attribute means a missing device or driver,
     * never a file to make. */
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    size_t len = strlen(val);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, val, len);
    if (n < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    close(fd);
    if ((size_t)n != len)
        return -EIO;
    if (write_hook)
        write_hook(path, val, write_hook_opaque);
    return 0;
}

int sriov_sysfs_link_name(const char *path, char *out, size_t len)
{
    char target[SRIOV_PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    const char *base;

    out[0] = '\0';
    if (n < 0)
        return errno == ENOENT ? 0 : -errno;
    target[n] = '\0';
    base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) >= len)
        return -ENAMETOOLONG;
    memcpy(out, base, strlen(base) + 1);
    return 0;
}
