/* sriov/ against a fake sysfs tree in a temp dir, with a fake kernel (the
 * sysfs write hook: VFs appear on sriov_numvfs, drivers_probe honours
 * driver_override, bind/unbind move the driver link) and a fake NVMe PF (the
 * admin hook: a secondary controller list and Virtualization Management with
 * QEMU's rules). Covers VF count changes, vfio-pci binding and its restore,
 * hostile sysfs contents, and the VMM's lease with every failure undone. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sriov_internal.h"
#include "sriov_nvme.h"

#define PF "0000:01:00.0"
#define SRIOV_CAP 0x160

struct fake_sec {
    uint16_t nvq, nvi;
    bool online;
};

static struct {
    char root[64];
    bool kernel;          /* play the kernel on sysfs writes */
    bool refuse_vfio;     /* vfio-pci never takes the device */
    bool numvfs_sticks_0; /* the kernel "accepts" a count but keeps 0 */
    char log[4096];       /* sysfs writes, "leaf=value;" */
    char nvme_log[1024];  /* admin commands */
    struct fake_sec sec[2];
    unsigned fail_online_status;
    bool ns_shared;       /* namespace 1 may be attached to several controllers */
    bool ns_attached[3];  /* to controller 0 (the PF), 1, 2 */
} F;

static void rel_path(char *out, size_t len, const char *fmt, va_list ap)
{
    int n = snprintf(out, len, "%s/", F.root);
    vsnprintf(out + n, len - (size_t)n, fmt, ap);
}

static const char *P(const char *fmt, ...)
{
    static char bufs[4][512];
    static int next;
    char *out = bufs[next++ % 4];
    va_list ap;

    va_start(ap, fmt);
    rel_path(out, 512, fmt, ap);
    va_end(ap);
    return out;
}

static void mkdirs(const char *path)
{
    char tmp[512];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static void put(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static const char *get(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return "<missing>";
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void link_driver(const char *bdf, const char *driver)
{
    char target[128];

    unlink(P("bus/pci/devices/%s/driver", bdf));
    if (!driver)
        return;
    snprintf(target, sizeof(target), "../../drivers/%s", driver);
    assert_int_equal(symlink(target, P("bus/pci/devices/%s/driver", bdf)), 0);
}

static const char *driver_of(const char *bdf)
{
    static char name[64];

    if (sriov_current_driver(bdf, name, sizeof(name)) < 0)
        return "<error>";
    return name[0] ? name : "none";
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void set_config_numvfs(unsigned n)
{
    int fd = open(P("bus/pci/devices/" PF "/config"), O_WRONLY);
    uint8_t v[2] = {n & 0xff, n >> 8};

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, v, 2, SRIOV_CAP + 0x10), 2);
    close(fd);
}

/* VF i of the fake PF is 0000:01:00.(i+1) (offset 1, stride 1). */
static void fake_set_vfs(unsigned n)
{
    char bdf[32];

    for (unsigned i = 0; i < 7; i++) {
        snprintf(bdf, sizeof(bdf), "0000:01:00.%u", i + 1);
        rm_rf(P("bus/pci/devices/%s", bdf));
        unlink(P("bus/pci/devices/" PF "/virtfn%u", i));
    }
    for (unsigned i = 0; i < n; i++) {
        char target[64];
        snprintf(bdf, sizeof(bdf), "0000:01:00.%u", i + 1);
        mkdirs(P("bus/pci/devices/%s", bdf));
        put(P("bus/pci/devices/%s/driver_override", bdf), "(null)\n");
        snprintf(target, sizeof(target), "../%s", bdf);
        assert_int_equal(symlink(target, P("bus/pci/devices/" PF "/virtfn%u", i)), 0);
    }
    set_config_numvfs(n);
}

static void kernel_hook(const char *path, const char *val, void *opaque)
{
    const char *rel = path + strlen(F.root) + 1, *leaf = strrchr(rel, '/') + 1;
    char bdf[16] = "", drv[32] = "";
    size_t len = strlen(F.log);

    (void)opaque;
    snprintf(F.log + len, sizeof(F.log) - len, "%s=%s;", leaf, strcmp(val, "\n") ? val : "\\n");
    if (!F.kernel)
        return;
    if (sscanf(rel, "bus/pci/devices/%12[^/]/", bdf) == 1 && !strcmp(leaf, "sriov_numvfs")) {
        if (F.numvfs_sticks_0) {
            put(path, "0\n");
            return;
        }
        fake_set_vfs((unsigned)atoi(val));
    } else if (sscanf(rel, "bus/pci/devices/%12[^/]/", bdf) == 1 && !strcmp(leaf, "driver_override")) {
        if (!strcmp(val, "\n"))
            put(path, "(null)\n");
    } else if (sscanf(rel, "bus/pci/drivers/%31[^/]/", drv) == 1 && !strcmp(leaf, "unbind")) {
        if (!strcmp(driver_of(val), drv))
            link_driver(val, NULL);
    } else if (sscanf(rel, "bus/pci/drivers/%31[^/]/", drv) == 1 && !strcmp(leaf, "bind")) {
        if (!(F.refuse_vfio && !strcmp(drv, "vfio-pci")) && !strcmp(driver_of(val), "none"))
            link_driver(val, drv);
    } else if (!strcmp(rel, "bus/pci/drivers_probe")) {
        const char *ovr = get(P("bus/pci/devices/%s/driver_override", val));
        if (!strcmp(ovr, "vfio-pci") && !F.refuse_vfio)
            link_driver(val, "vfio-pci");
    }
}

/* The fake PF's admin queue: two secondary controllers (ids 1, 2 for VF
 * numbers 1, 2), flexible pools of 8 VQ and 4 VI, QEMU's state rules. */
static int nvme_hook(const char *dev, struct nvme_admin_cmd *cmd, void *opaque)
{
    size_t len = strlen(F.nvme_log);
    unsigned numvfs = 0;

    (void)opaque;
    assert_string_equal(dev, "/dev/nvme0");
    if (cmd->opcode == NVME_ADMIN_IDENTIFY && (cmd->cdw10 & 0xff) == NVME_CNS_ACTIVE_NS_LIST) {
        uint8_t *page = (uint8_t *)(uintptr_t)cmd->addr;
        memset(page, 0, 4096);
        page[0] = cmd->nsid < 1; /* namespace 1 only */
        return 0;
    }
    if (cmd->opcode == NVME_ADMIN_IDENTIFY && (cmd->cdw10 & 0xff) == NVME_CNS_NS_CTRL_LIST) {
        uint8_t *page = (uint8_t *)(uintptr_t)cmd->addr;
        unsigned n = 0;
        assert_int_equal(cmd->nsid, 1);
        memset(page, 0, 4096);
        for (unsigned c = cmd->cdw10 >> 16; c < 3; c++)
            if (F.ns_attached[c])
                page[2 + 2 * n++] = (uint8_t)c;
        page[0] = (uint8_t)n;
        return 0;
    }
    if (cmd->opcode == NVME_ADMIN_NS_ATTACH) {
        const uint8_t *list = (const uint8_t *)(uintptr_t)cmd->addr;
        unsigned c = list[2];
        snprintf(F.nvme_log + len, sizeof(F.nvme_log) - len, "%s ns%u c%u;", cmd->cdw10 ? "detach" : "attach",
                 cmd->nsid, c);
        assert_int_equal(list[0], 1);
        if (cmd->nsid != 1 || c > 2)
            return 0x10b;
        if (cmd->cdw10 == 1) {
            if (!F.ns_attached[c])
                return 0x119; /* not attached */
            F.ns_attached[c] = false;
            return 0;
        }
        if (F.ns_attached[c])
            return 0x118; /* already attached */
        if (!F.ns_shared && (F.ns_attached[0] || F.ns_attached[1] || F.ns_attached[2]))
            return 0x119; /* private */
        F.ns_attached[c] = true;
        return 0;
    }
    if (cmd->opcode == NVME_ADMIN_IDENTIFY) {
        uint8_t *page = (uint8_t *)(uintptr_t)cmd->addr;
        assert_int_equal(cmd->cdw10 & 0xff, 0x15);
        assert_int_equal(cmd->data_len, 4096);
        memset(page, 0, 4096);
        page[0] = 2;
        for (int i = 0; i < 2; i++) {
            uint8_t *e = page + 32 + 32 * i;
            e[0] = (uint8_t)(i + 1);
            e[4] = F.sec[i].online;
            e[8] = (uint8_t)(i + 1);
            e[10] = (uint8_t)F.sec[i].nvq;
            e[12] = (uint8_t)F.sec[i].nvi;
        }
        return 0;
    }
    assert_int_equal(cmd->opcode, NVME_ADMIN_VIRT_MGMT);
    unsigned act = cmd->cdw10 & 0xf, rt = (cmd->cdw10 >> 8) & 7, id = cmd->cdw10 >> 16, nr = cmd->cdw11;
    if (id < 1 || id > 2)
        return 0x11f; /* invalid controller id */
    struct fake_sec *s = &F.sec[id - 1];
    snprintf(F.nvme_log + len, sizeof(F.nvme_log) - len, "%s %s%u %u;",
             act == 8 ? "assign" : act == 9 ? "online" : act == 7 ? "offline" : "?", rt ? "vi" : "vq", id, nr);
    sscanf(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "%u", &numvfs);
    switch (act) {
    case NVME_VIRT_ACT_ASSIGN:
        if (s->online)
            return 0x4120;
        if (rt == 0 ? nr + F.sec[2 - id].nvq > 8 : nr + F.sec[2 - id].nvi > 4)
            return 0x4121;
        *(rt == 0 ? &s->nvq : &s->nvi) = (uint16_t)nr;
        return 0;
    case NVME_VIRT_ACT_ONLINE:
        if (F.fail_online_status)
            return (int)F.fail_online_status;
        if (s->nvq < 2 || s->nvi < 1 || numvfs < id)
            return 0x4120;
        s->online = true;
        return 0;
    case NVME_VIRT_ACT_OFFLINE:
        s->online = false;
        return 0;
    }
    return 0x2;
}

static void fake_pf_config(void)
{
    uint8_t cfg[4096] = {0};
    FILE *f;

    cfg[0] = 0x36, cfg[1] = 0x1b, cfg[2] = 0x10; /* 1b36:0010 */
    cfg[0x100] = 0x01, cfg[0x102] = 0x02 | (SRIOV_CAP & 0xf) << 4, cfg[0x103] = SRIOV_CAP >> 4;
    cfg[SRIOV_CAP] = 0x10, cfg[SRIOV_CAP + 2] = 0x01;
    cfg[SRIOV_CAP + 0x0c] = 2; /* InitialVFs */
    cfg[SRIOV_CAP + 0x0e] = 2; /* TotalVFs */
    cfg[SRIOV_CAP + 0x14] = 1; /* offset */
    cfg[SRIOV_CAP + 0x16] = 1; /* stride */
    cfg[SRIOV_CAP + 0x1a] = 0x11;
    f = fopen(P("bus/pci/devices/" PF "/config"), "w");
    assert_non_null(f);
    assert_int_equal(fwrite(cfg, 1, sizeof(cfg), f), sizeof(cfg));
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    snprintf(F.root, sizeof(F.root), "/tmp/test_sriov_sysfsXXXXXX");
    if (!mkdtemp(F.root))
        return -1;
    F.kernel = true;
    /* QEMU's nvme-ns shared=on: attached to every controller already. */
    F.ns_shared = true;
    F.ns_attached[0] = F.ns_attached[1] = F.ns_attached[2] = true;
    mkdirs(P("bus/pci/drivers/nvme"));
    mkdirs(P("bus/pci/drivers/vfio-pci"));
    for (int i = 0; i < 2; i++) {
        const char *d = i ? "vfio-pci" : "nvme";
        put(P("bus/pci/drivers/%s/bind", d), "");
        put(P("bus/pci/drivers/%s/unbind", d), "");
    }
    put(P("bus/pci/drivers_probe"), "");
    mkdirs(P("bus/pci/devices/" PF "/nvme/nvme0"));
    put(P("bus/pci/devices/" PF "/sriov_totalvfs"), "2\n");
    put(P("bus/pci/devices/" PF "/sriov_numvfs"), "0\n");
    put(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe"), "1\n");
    put(P("bus/pci/devices/" PF "/numa_node"), "0\n");
    put(P("bus/pci/devices/" PF "/driver_override"), "(null)\n");
    fake_pf_config();
    link_driver(PF, "nvme");
    sriov_set_sysfs_root(F.root);
    sriov_set_lock_dir(P("locks"));
    sriov_set_sysfs_write_hook(kernel_hook, NULL);
    sriov_nvme_set_admin_hook(nvme_hook, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sriov_set_sysfs_write_hook(NULL, NULL);
    sriov_nvme_set_admin_hook(NULL, NULL);
    sriov_set_sysfs_root(NULL);
    sriov_set_lock_dir(NULL);
    rm_rf(F.root);
    return 0;
}

static void test_pf_read_from_sysfs(void **state)
{
    struct sriov_pf pf;
    char err[256];

    (void)state;
    assert_int_equal(sriov_pf_read(PF, &pf, err, sizeof(err)), 0);
    assert_int_equal(pf.vendor, 0x1b36);
    assert_int_equal(pf.total_vfs, 2);
    assert_int_equal(pf.vf_device, 0x11);
    assert_string_equal(pf.driver, "nvme");
    assert_int_equal(pf.numa_node, 0);
    put(P("bus/pci/devices/" PF "/numa_node"), "banana\n");
    assert_int_equal(sriov_pf_read(PF, &pf, err, sizeof(err)), 0);
    assert_int_equal(pf.numa_node, -1);
    assert_int_equal(sriov_pf_read("0000:02:00.0", &pf, err, sizeof(err)), -ENODEV);
    assert_non_null(strstr(err, "no such PCI device"));
    /* A function whose config space has no SR-IOV capability. */
    mkdirs(P("bus/pci/devices/0000:00:02.0"));
    put(P("bus/pci/devices/0000:00:02.0/config"), "\x86\x80\x00\x01");
    assert_int_equal(sriov_pf_read("00:02.0", &pf, err, sizeof(err)), -ENODEV); /* 4 bytes: unreadable */
    {
        uint8_t cfg[256] = {0x86, 0x80, 0x12, 0x34};
        FILE *f = fopen(P("bus/pci/devices/0000:00:02.0/config"), "w");
        fwrite(cfg, 1, sizeof(cfg), f);
        fclose(f);
    }
    assert_int_equal(sriov_pf_read("00:02.0", &pf, err, sizeof(err)), -EOPNOTSUPP);
    assert_non_null(strstr(err, "not SR-IOV capable"));
}

static void test_set_num_vfs(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(sriov_set_num_vfs(PF, 2, err, sizeof(err)), 0);
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "2");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe")), "0");
    assert_string_equal(F.log, "sriov_drivers_autoprobe=0;sriov_numvfs=2;");
    assert_true(sriov_path_exists(P("bus/pci/devices/0000:01:00.2")));
    /* A non-zero count changes through 0. */
    F.log[0] = '\0';
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), 0);
    assert_string_equal(F.log, "sriov_drivers_autoprobe=0;sriov_numvfs=0;sriov_numvfs=1;");
    assert_false(sriov_path_exists(P("bus/pci/devices/0000:01:00.2")));
    /* Same count: nothing written. */
    F.log[0] = '\0';
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), 0);
    assert_string_equal(F.log, "");
    assert_int_equal(sriov_set_num_vfs(PF, 3, err, sizeof(err)), -ERANGE);
    assert_non_null(strstr(err, "at most 2"));
    assert_string_equal(F.log, "");
    assert_int_equal(sriov_set_num_vfs(PF, 0, err, sizeof(err)), 0);
    assert_string_equal(F.log, "sriov_numvfs=0;");
}

static void test_set_num_vfs_hostile(void **state)
{
    const char *tf = P("bus/pci/devices/" PF "/sriov_totalvfs");
    char err[256];

    (void)state;
    put(tf, "two\n");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'two'"));
    put(tf, "70000\n");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    put(tf, "");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    put(tf, "-1\n");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    put(tf, "2 3\n");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    {
        FILE *f = fopen(tf, "w");
        fwrite("2\0junk", 1, 6, f); /* NUL inside */
        fclose(f);
    }
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    put(tf, "2\n");
    put(P("bus/pci/devices/" PF "/sriov_numvfs"), "lots\n");
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "sriov_numvfs"));
    put(P("bus/pci/devices/" PF "/sriov_numvfs"), "0\n");
    assert_string_equal(F.log, ""); /* nothing written on bad input */

    unlink(tf);
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), -EOPNOTSUPP);
    assert_non_null(strstr(err, "not SR-IOV capable"));
    put(tf, "2\n");
    assert_int_equal(sriov_set_num_vfs("0000:09:00.0", 1, err, sizeof(err)), -ENODEV);
    assert_int_equal(sriov_set_num_vfs("bogus", 1, err, sizeof(err)), -EINVAL);

    /* The kernel accepts the write but the count stays 0. */
    F.numvfs_sticks_0 = true;
    assert_int_equal(sriov_set_num_vfs(PF, 2, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, "reads 0 after writing 2"));
    F.numvfs_sticks_0 = false;
    /* The attribute refuses writes (here: it is a directory). */
    unlink(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe"));
    mkdirs(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe"));
    assert_int_equal(sriov_set_num_vfs(PF, 2, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, "sriov_drivers_autoprobe"));
}

static void test_bind_restore(void **state)
{
    struct sriov_binding b;
    char err[256];

    (void)state;
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), 0);
    assert_true(b.changed);
    assert_string_equal(b.driver, "nvme");
    assert_string_equal(b.override, "");
    assert_string_equal(driver_of(PF), "vfio-pci");
    assert_string_equal(get(P("bus/pci/devices/" PF "/driver_override")), "vfio-pci");
    assert_string_equal(F.log, "driver_override=vfio-pci;unbind=" PF ";drivers_probe=" PF ";");

    F.log[0] = '\0';
    assert_int_equal(sriov_restore_binding(&b), 0);
    assert_string_equal(driver_of(PF), "nvme");
    assert_string_equal(get(P("bus/pci/devices/" PF "/driver_override")), "(null)\n");
    assert_string_equal(F.log, "driver_override=\\n;unbind=" PF ";bind=" PF ";");

    /* Already on vfio-pci: nothing to do either way. */
    link_driver(PF, "vfio-pci");
    F.log[0] = '\0';
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), 0);
    assert_false(b.changed);
    assert_int_equal(sriov_restore_binding(&b), 0);
    assert_string_equal(F.log, "");
    assert_string_equal(driver_of(PF), "vfio-pci");
}

static void test_bind_failures(void **state)
{
    struct sriov_binding b;
    char err[256];

    (void)state;
    /* vfio-pci refuses: everything back as it was. */
    F.refuse_vfio = true;
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, "did not bind to vfio-pci"));
    assert_false(b.changed);
    assert_string_equal(driver_of(PF), "nvme");
    assert_string_equal(get(P("bus/pci/devices/" PF "/driver_override")), "(null)\n");
    F.refuse_vfio = false;

    /* A device with an override of its own gets it back. */
    put(P("bus/pci/devices/" PF "/driver_override"), "nvme\n");
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), 0);
    assert_string_equal(b.override, "nvme");
    assert_int_equal(sriov_restore_binding(&b), 0);
    assert_string_equal(get(P("bus/pci/devices/" PF "/driver_override")), "nvme");
    assert_string_equal(driver_of(PF), "nvme");

    F.log[0] = '\0';
    unlink(P("bus/pci/devices/" PF "/driver_override"));
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "driver_override"));
    assert_string_equal(F.log, "");
    assert_string_equal(driver_of(PF), "nvme");

    rm_rf(P("bus/pci/drivers/vfio-pci"));
    assert_int_equal(sriov_bind_vfio(PF, &b, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "vfio-pci driver is not loaded"));
    assert_int_equal(sriov_bind_vfio("0000:0a:00.0", &b, err, sizeof(err)), -ENODEV);
    assert_int_equal(sriov_bind_vfio("0000:0a:00", &b, err, sizeof(err)), -EINVAL);
    assert_string_equal(F.log, "");
}

static void test_lease_nvme_vf(void **state)
{
    struct sriov_vf_lease *l;
    char vf[SRIOV_BDF_LEN], err[256];

    (void)state;
    l = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    if (!l)
        fail_msg("acquire: %s", err);
    assert_string_equal(vf, "0000:01:00.2");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "2");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe")), "0");
    assert_string_equal(F.nvme_log, "assign vq2 4;assign vi2 2;online vq2 0;");
    assert_true(F.sec[1].online);
    assert_false(F.sec[0].online);
    assert_string_equal(driver_of(vf), "vfio-pci");
    assert_string_equal(driver_of("0000:01:00.1"), "none");

    F.nvme_log[0] = '\0';
    sriov_vf_release(l);
    assert_string_equal(F.nvme_log, "offline vq2 0;assign vi2 0;assign vq2 0;");
    assert_false(F.sec[1].online);
    assert_int_equal(F.sec[1].nvq, 0);
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "0");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe")), "1");
    assert_false(sriov_path_exists(P("bus/pci/devices/0000:01:00.2")));

    /* And it can be assigned again. */
    l = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    assert_non_null(l);
    sriov_vf_release(l);
    sriov_vf_release(NULL);
}

static void test_lease_failures_undo(void **state)
{
    struct sriov_vf_lease *l;
    char vf[SRIOV_BDF_LEN], err[256];

    (void)state;
    assert_null(sriov_vf_acquire(PF, 2, vf, err, sizeof(err)));
    assert_non_null(strstr(err, "out of range"));
    assert_string_equal(F.log, "");
    assert_null(sriov_vf_acquire("0000:05:00.0", 0, vf, err, sizeof(err)));
    assert_non_null(strstr(err, "no such PCI device"));

    /* The PF refuses to set the VF online. */
    F.fail_online_status = 0x4119;
    assert_null(sriov_vf_acquire(PF, 0, vf, err, sizeof(err)));
    assert_non_null(strstr(err, "NVMe status 0x4119"));
    assert_string_equal(F.nvme_log, "assign vq1 4;assign vi1 2;online vq1 0;assign vi1 0;assign vq1 0;");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "0");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_drivers_autoprobe")), "1");
    F.fail_online_status = 0;

    /* vfio-pci refuses the VF: provisioning undone too. */
    F.refuse_vfio = true;
    F.nvme_log[0] = '\0';
    assert_null(sriov_vf_acquire(PF, 0, vf, err, sizeof(err)));
    assert_non_null(strstr(err, "did not bind to vfio-pci"));
    assert_string_equal(F.nvme_log, "assign vq1 4;assign vi1 2;online vq1 0;offline vq1 0;assign vi1 0;assign vq1 0;");
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "0");
    F.refuse_vfio = false;

    /* A PF without its NVMe controller node: not provisioned, still bound. */
    rm_rf(P("bus/pci/devices/" PF "/nvme"));
    F.nvme_log[0] = '\0';
    l = sriov_vf_acquire(PF, 0, vf, err, sizeof(err));
    assert_non_null(l);
    assert_string_equal(F.nvme_log, "");
    assert_string_equal(driver_of(vf), "vfio-pci");
    sriov_vf_release(l);
    assert_false(sriov_path_exists(P("bus/pci/devices/%s", vf))); /* the VF is gone */
}

static void test_lease_attaches_namespaces(void **state)
{
    struct sriov_vf_lease *l;
    char vf[SRIOV_BDF_LEN], err[256];

    (void)state;
    /* A shared namespace not attached to the VF yet: attached, then detached. */
    F.ns_attached[2] = false;
    l = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    if (!l)
        fail_msg("acquire: %s", err);
    assert_string_equal(F.nvme_log, "assign vq2 4;assign vi2 2;online vq2 0;attach ns1 c2;");
    assert_true(F.ns_attached[2]);
    F.nvme_log[0] = '\0';
    sriov_vf_release(l);
    assert_string_equal(F.nvme_log, "detach ns1 c2;offline vq2 0;assign vi2 0;assign vq2 0;");
    assert_false(F.ns_attached[2]);
    assert_true(F.ns_attached[0]);

    /* A namespace private to the PF: the VF would have no storage, refused and undone. */
    F.ns_shared = false;
    F.ns_attached[1] = F.ns_attached[2] = false;
    F.nvme_log[0] = '\0';
    assert_null(sriov_vf_acquire(PF, 0, vf, err, sizeof(err)));
    assert_non_null(strstr(err, "attach namespace 1 to controller 1"));
    assert_non_null(strstr(err, "NVMe status 0x119"));
    assert_string_equal(F.nvme_log, "assign vq1 4;assign vi1 2;online vq1 0;attach ns1 c1;"
                                    "offline vq1 0;assign vi1 0;assign vq1 0;");
    assert_false(F.sec[0].online);
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "0");
}

static void test_lease_one_vm_per_vf(void **state)
{
    struct sriov_vf_lease *a, *b;
    char vf[SRIOV_BDF_LEN], err[256], want[64];

    (void)state;
    a = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    assert_non_null(a);
    F.log[0] = F.nvme_log[0] = '\0';
    /* The same VF again: refused before anything is touched, holder named. */
    assert_null(sriov_vf_acquire(PF, 1, vf, err, sizeof(err)));
    snprintf(want, sizeof(want), "in use by another VM (process %d)", (int)getpid());
    assert_non_null(strstr(err, want));
    assert_string_equal(F.log, "");
    assert_string_equal(F.nvme_log, "");
    assert_string_equal(driver_of("0000:01:00.2"), "vfio-pci");
    assert_true(F.sec[1].online);
    /* Its sibling is free. */
    b = sriov_vf_acquire(PF, 0, vf, err, sizeof(err));
    if (!b)
        fail_msg("acquire VF 0: %s", err);
    sriov_vf_release(b);
    sriov_vf_release(a);
    /* Released: the VF can be leased again. */
    a = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    assert_non_null(a);
    sriov_vf_release(a);
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "0");
}

static void test_lease_existing_vfs(void **state)
{
    struct sriov_vf_lease *l1, *l0;
    char vf[SRIOV_BDF_LEN], err[256];

    (void)state;
    /* VF 0 exists and is in use; VF 1 would need the count changed. */
    assert_int_equal(sriov_set_num_vfs(PF, 1, err, sizeof(err)), 0);
    link_driver("0000:01:00.1", "vfio-pci");
    F.log[0] = '\0';
    assert_null(sriov_vf_acquire(PF, 1, vf, err, sizeof(err)));
    assert_int_equal(strstr(err, "bound to vfio-pci") != NULL, 1);
    assert_string_equal(F.log, "");
    link_driver("0000:01:00.1", NULL);

    /* Lease 1 creates two VFs; lease 0 uses what is there. */
    l1 = sriov_vf_acquire(PF, 1, vf, err, sizeof(err));
    assert_non_null(l1);
    l0 = sriov_vf_acquire(PF, 0, vf, err, sizeof(err));
    if (!l0)
        fail_msg("acquire VF 0: %s", err);
    assert_string_equal(vf, "0000:01:00.1");
    /* Releasing lease 1 while VF 0 is leased leaves the VFs. */
    sriov_vf_release(l1);
    assert_string_equal(get(P("bus/pci/devices/" PF "/sriov_numvfs")), "2");
    assert_string_equal(driver_of("0000:01:00.1"), "vfio-pci");
    assert_string_equal(driver_of("0000:01:00.2"), "none");
    sriov_vf_release(l0);
    assert_string_equal(driver_of("0000:01:00.1"), "none");
    assert_false(F.sec[0].online);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pf_read_from_sysfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_num_vfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_num_vfs_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_nvme_vf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_failures_undo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_attaches_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_one_vm_per_vf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_existing_vfs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
