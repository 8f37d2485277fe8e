/* sriovctl: the SR-IOV library from a shell, to prepare VFs ahead of time or
 * look at what the VMM did. Exit 0 done, 1 failed (cause on stderr), 2 bad
 * usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sriov.h"
#include "sriov_nic.h"
#include "sriov_nvme.h"

static const char usage_text[] =
    "usage: sriovctl COMMAND [ARGS]\n"
    "  list                     SR-IOV physical functions: total/current VFs, driver\n"
    "  show BDF                 one PF's SR-IOV capability and its VFs\n"
    "  create BDF N             enable N VFs (through 0 if some exist; host driver autoprobe off)\n"
    "  remove BDF               disable all VFs of a PF\n"
    "  bind BDF                 bind a function to vfio-pci (prints how to undo)\n"
    "  unbind BDF [DRIVER]      back from vfio-pci: clear driver_override, rebind DRIVER if given\n"
    "  restore BDF [DRIVER]     same as unbind\n"
    "  provision PF VF [VQ VI]  NVMe PF: give VF (0-based) VQ queues / VI vectors (default 4/2), online\n"
    "  unprovision PF VF        NVMe PF: take VF offline\n"
    "  lease PF VF [CMD...]     what the VMM does for pf = / vf =: acquire VF (create, provision,\n"
    "                           bind to vfio-pci), run CMD with SRIOV_VF=<its BDF>, release\n"
    "  nic PF VF [mac M] [vlan V [qos Q]] [spoofchk on|off] [trust on|off]\n"
    "                           NIC PF: VF settings over rtnetlink\n"
    "VF indexes are 0-based, like sysfs virtfnN. BDFs are dddd:bb:dd.f or bb:dd.f.\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int fail(const char *err)
{
    fprintf(stderr, "sriovctl: %s\n", err);
    return 1;
}

static int list_one(const char *bdf, void *opaque)
{
    struct sriov_pf pf;
    char err[256];

    (void)opaque;
    if (sriov_pf_read(bdf, &pf, err, sizeof(err)) < 0) {
        printf("%s  (%s)\n", bdf, err);
        return 0;
    }
    printf("%s  %04x:%04x  vfs %u/%u  vf-device %04x  driver %s  numa %d\n", pf.bdf, pf.vendor, pf.device,
           pf.num_vfs, pf.total_vfs, pf.vf_device, pf.driver[0] ? pf.driver : "-", pf.numa_node);
    return 0;
}

static int cmd_list(void)
{
    int r;

    r = sriov_pf_foreach(list_one, NULL);
    if (r < 0) {
        fprintf(stderr, "sriovctl: %s/bus/pci/devices: %s\n", sriov_sysfs_root(), strerror(-r));
        return 1;
    }
    return 0;
}

static int cmd_show(const char *bdf)
{
    struct sriov_pf pf;
    struct sriov_nvme_secondary sec;
    char err[256], vf[SRIOV_BDF_LEN], driver[64];

    if (sriov_pf_read(bdf, &pf, err, sizeof(err)) < 0)
        return fail(err);
    printf("pf %s\nid %04x:%04x\ndriver %s\nnuma_node %d\ntotal_vfs %u\nnum_vfs %u\ninitial_vfs %u\n"
           "vf_offset %u\nvf_stride %u\nvf_device %04x\n",
           pf.bdf, pf.vendor, pf.device, pf.driver[0] ? pf.driver : "-", pf.numa_node, pf.total_vfs,
           pf.num_vfs, pf.initial_vfs, pf.vf_offset, pf.vf_stride, pf.vf_device);
    for (unsigned i = 0; i < pf.num_vfs; i++) {
        if (sriov_vf_bdf(&pf, i, vf) < 0) {
            printf("vf %u  (no valid address)\n", i);
            continue;
        }
        if (sriov_current_driver(vf, driver, sizeof(driver)) < 0)
            driver[0] = '\0';
        printf("vf %u %s driver %s", i, vf, driver[0] ? driver : "-");
        if (sriov_nvme_vf_status(pf.bdf, i, &sec, NULL, 0) == 0)
            printf(" nvme-cntlid %u %s vq %u vi %u", sec.scid, sec.online ? "online" : "offline", sec.nvq,
                   sec.nvi);
        printf("\n");
    }
    return 0;
}

static int cmd_create(const char *bdf, unsigned n)
{
    char err[256];

    if (sriov_set_num_vfs(bdf, n, err, sizeof(err)) < 0)
        return fail(err);
    printf("%s: %u VFs (sriov_drivers_autoprobe is 0: host drivers do not claim them)\n", bdf, n);
    return 0;
}

static int cmd_bind(const char *bdf)
{
    struct sriov_binding b;
    char err[256];

    if (sriov_bind_vfio(bdf, &b, err, sizeof(err)) < 0)
        return fail(err);
    if (!b.changed) {
        printf("%s: already bound to vfio-pci\n", b.bdf);
        return 0;
    }
    printf("%s: bound to vfio-pci (was: %s)\nundo: sriovctl restore %s%s%s\n", b.bdf,
           b.driver[0] ? b.driver : "no driver", b.bdf, b.driver[0] ? " " : "", b.driver);
    if (b.override[0])
        printf("note: driver_override was '%s' before\n", b.override);
    return 0;
}

static int cmd_restore(const char *bdf_text, const char *driver)
{
    struct sriov_binding b = {.changed = true};

    if (sriov_bdf_parse(bdf_text, b.bdf) < 0)
        return fail("not a PCI address (expected dddd:bb:dd.f)");
    if (driver && strlen(driver) >= sizeof(b.driver))
        return fail("driver name too long");
    snprintf(b.driver, sizeof(b.driver), "%s", driver ? driver : "");
    if (sriov_restore_binding(&b) < 0) {
        fprintf(stderr, "sriovctl: %s: could not restore %s (see dmesg)\n", b.bdf,
                driver ? driver : "an unbound state");
        return 1;
    }
    printf("%s: driver_override cleared, %s\n", b.bdf, driver ? "rebound" : "left without a driver");
    return 0;
}

static int cmd_provision(const char *pf, unsigned vf, unsigned vq, unsigned vi)
{
    struct sriov_nvme_vf st;
    char err[256];

    if (sriov_nvme_vf_provision(pf, vf, (uint16_t)vq, (uint16_t)vi, &st, err, sizeof(err)) < 0)
        return fail(err);
    if (!st.onlined)
        printf("%s VF %u: secondary controller %u was online already, left as is\n", pf, vf, st.scid);
    else
        printf("%s VF %u: secondary controller %u online with %u VQ, %u VI (undo: sriovctl unprovision %s %u)\n",
               pf, vf, st.scid, vq, vi, pf, vf);
    return 0;
}

static int cmd_unprovision(const char *pf, unsigned vf)
{
    struct sriov_nvme_secondary sec;
    struct sriov_nvme_vf st = {0};
    char err[256];

    if (sriov_nvme_vf_status(pf, vf, &sec, err, sizeof(err)) < 0 ||
        sriov_nvme_ctrl_dev(pf, st.ctrl_dev, sizeof(st.ctrl_dev)) < 0)
        return fail(err);
    st.scid = sec.scid;
    st.onlined = sec.online;
    if (sriov_nvme_vf_unprovision(&st, err, sizeof(err)) < 0)
        return fail(err);
    printf("%s VF %u: secondary controller %u offline\n", pf, vf, sec.scid);
    return 0;
}

/* Holds a lease while CMD runs: the VMM's acquire/release from a shell. */
static int cmd_lease(const char *pf, unsigned vf, char **cmd)
{
    struct sriov_vf_lease *l;
    char bdf[SRIOV_BDF_LEN], err[256];
    int status = 0, rc = 0;
    pid_t pid;

    l = sriov_vf_acquire(pf, vf, bdf, err, sizeof(err));
    if (!l)
        return fail(err);
    printf("%s VF %u: %s acquired\n", pf, vf, bdf);
    fflush(stdout);
    if (cmd[0]) {
        /* Ctrl-C or a kill goes to CMD; the lease is released after it ends. */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        pid = fork();
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            setenv("SRIOV_VF", bdf, 1);
            execvp(cmd[0], cmd);
            fprintf(stderr, "sriovctl: %s: %s\n", cmd[0], strerror(errno));
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
            rc = 1;
        else
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    sriov_vf_release(l);
    printf("%s VF %u: %s released\n", pf, vf, bdf);
    return rc;
}

static int on_off(const char *s)
{
    return !s ? -1 : !strcmp(s, "on") ? 1 : !strcmp(s, "off") ? 0 : -1;
}

static int cmd_nic(int argc, char **argv)
{
    struct sriov_nic_vf_config c = {.spoofchk = -1, .trust = -1};
    unsigned v;
    char err[256];

    if (argc < 2 || parse_uint(argv[1], 0xffff, &c.vf) < 0)
        return usage();
    for (int i = 2; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage();
        if (!strcmp(key, "mac")) {
            if (sriov_nic_parse_mac(val, c.mac) < 0)
                return usage();
            c.set_mac = true;
        } else if (!strcmp(key, "vlan") && parse_uint(val, 4095, &v) == 0) {
            c.set_vlan = true;
            c.vlan = (uint16_t)v;
        } else if (!strcmp(key, "qos") && c.set_vlan && parse_uint(val, 7, &v) == 0) {
            c.qos = (uint8_t)v;
        } else if (!strcmp(key, "spoofchk") && on_off(val) >= 0) {
            c.spoofchk = on_off(val);
        } else if (!strcmp(key, "trust") && on_off(val) >= 0) {
            c.trust = on_off(val);
        } else {
            return usage();
        }
    }
    if (sriov_nic_vf_configure(argv[0], &c, err, sizeof(err)) < 0)
        return fail(err);
    printf("%s VF %u: set\n", argv[0], c.vf);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    const char *root = getenv("SRIOV_SYSFS_ROOT"); /* a fake tree, for tests */
    unsigned a, b, c;
    char err[256];

    if (root && *root)
        sriov_set_sysfs_root(root);
    if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help"))
        return cmd ? (fputs(usage_text, stdout), 0) : usage();
    if (!strcmp(cmd, "list") && argc == 2)
        return cmd_list();
    if (!strcmp(cmd, "show") && argc == 3)
        return cmd_show(argv[2]);
    if (!strcmp(cmd, "create") && argc == 4 && parse_uint(argv[3], 0xffff, &a) == 0)
        return cmd_create(argv[2], a);
    if (!strcmp(cmd, "remove") && argc == 3) {
        if (sriov_set_num_vfs(argv[2], 0, err, sizeof(err)) < 0)
            return fail(err);
        printf("%s: VFs removed\n", argv[2]);
        return 0;
    }
    if (!strcmp(cmd, "bind") && argc == 3)
        return cmd_bind(argv[2]);
    if ((!strcmp(cmd, "unbind") || !strcmp(cmd, "restore")) && (argc == 3 || argc == 4))
        return cmd_restore(argv[2], argc == 4 ? argv[3] : NULL);
    if (!strcmp(cmd, "provision") && (argc == 4 || argc == 6) && parse_uint(argv[3], 0xfffe, &a) == 0) {
        b = SRIOV_NVME_DEFAULT_VQ;
        c = SRIOV_NVME_DEFAULT_VI;
        if (argc == 6 && (parse_uint(argv[4], 0xffff, &b) < 0 || parse_uint(argv[5], 0xffff, &c) < 0))
            return usage();
        return cmd_provision(argv[2], a, b, c);
    }
    if (!strcmp(cmd, "unprovision") && argc == 4 && parse_uint(argv[3], 0xfffe, &a) == 0)
        return cmd_unprovision(argv[2], a);
    if (!strcmp(cmd, "lease") && argc >= 4 && parse_uint(argv[3], 0xfffe, &a) == 0)
        return cmd_lease(argv[2], a, argv + 4);
    if (!strcmp(cmd, "nic") && argc >= 4)
        return cmd_nic(argc - 2, argv + 2);
    return usage();
}
