/* NVMe secondary controllers behind SR-IOV VFs: a QEMU (or real) NVMe VF
 * stays "not ready" until the PF assigns it queues (VQ) and interrupt
 * vectors (VI) and sets it online, all through the PF's admin queue. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sriov_internal.h"
#include "sriov_nvme.h"

#define SECONDARY_LIST_HDR   32
#define SECONDARY_ENTRY_SIZE 32
#define SECONDARY_LIST_MAX   127

static int ioctl_admin(const char *ctrl_dev, struct nvme_admin_cmd *cmd, void *opaque)
{
    int fd, r;

    (void)opaque;
    fd = open(ctrl_dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = ioctl(fd, NVME_IOCTL_ADMIN_CMD, cmd);
    if (r < 0)
        r = -errno;
    close(fd);
    return r;
}

static sriov_nvme_admin_fn admin_fn = ioctl_admin;
static void *admin_opaque;

void sriov_nvme_set_admin_hook(sriov_nvme_admin_fn fn, void *opaque)
{
    admin_fn = fn ? fn : ioctl_admin;
    admin_opaque = opaque;
}

void sriov_nvme_cmd_identify_secondary(struct nvme_admin_cmd *cmd, uint16_t first_cntlid, void *buf)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = NVME_ADMIN_IDENTIFY;
    cmd->addr = (uint64_t)(uintptr_t)buf;
    cmd->data_len = NVME_IDENTIFY_LEN;
    cmd->cdw10 = (uint32_t)first_cntlid << 16 | NVME_CNS_SECONDARY_CTRL_LIST;
}

void sriov_nvme_cmd_virt_mgmt(struct nvme_admin_cmd *cmd, uint16_t cntlid, unsigned rt, unsigned act,
                              uint16_t nr)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = NVME_ADMIN_VIRT_MGMT;
    cmd->cdw10 = (uint32_t)cntlid << 16 | (rt & 0x7) << 8 | (act & 0xf);
    cmd->cdw11 = nr;
}

void sriov_nvme_cmd_identify_active_ns(struct nvme_admin_cmd *cmd, uint32_t after_nsid, void *buf)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = NVME_ADMIN_IDENTIFY;
    cmd->nsid = after_nsid;
    cmd->addr = (uint64_t)(uintptr_t)buf;
    cmd->data_len = NVME_IDENTIFY_LEN;
    cmd->cdw10 = NVME_CNS_ACTIVE_NS_LIST;
}

void sriov_nvme_cmd_identify_ns_ctrls(struct nvme_admin_cmd *cmd, uint32_t nsid, uint16_t first_cntlid, void *buf)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = NVME_ADMIN_IDENTIFY;
    cmd->nsid = nsid;
    cmd->addr = (uint64_t)(uintptr_t)buf;
    cmd->data_len = NVME_IDENTIFY_LEN;
    cmd->cdw10 = (uint32_t)first_cntlid << 16 | NVME_CNS_NS_CTRL_LIST;
}

void sriov_nvme_cmd_ns_attach(struct nvme_admin_cmd *cmd, uint32_t nsid, bool attach, void *buf)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = NVME_ADMIN_NS_ATTACH;
    cmd->nsid = nsid;
    cmd->addr = (uint64_t)(uintptr_t)buf;
    cmd->data_len = NVME_IDENTIFY_LEN;
    cmd->cdw10 = attach ? 0 : 1; /* SEL: 0 attach, 1 detach */
}

void sriov_nvme_ctrl_list_fill(uint8_t *page, const uint16_t *ids, unsigned n)
{
    memset(page, 0, NVME_IDENTIFY_LEN);
    page[0] = n & 0xff;
    page[1] = (uint8_t)(n >> 8);
    for (unsigned i = 0; i < n; i++) {
        page[2 + 2 * i] = ids[i] & 0xff;
        page[3 + 2 * i] = (uint8_t)(ids[i] >> 8);
    }
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sriov_nvme_parse_ns_list(const uint8_t *page, size_t len, uint32_t *out, unsigned max)
{
    unsigned n = 0;
    uint32_t prev = 0;

    for (size_t off = 0; off + 4 <= len && n < max; off += 4) {
        uint32_t nsid = le32(page + off);
        if (!nsid)
            break;
        if (nsid <= prev || nsid == 0xffffffffu)
            return -EINVAL;
        out[n++] = prev = nsid;
    }
    return (int)n;
}

int sriov_nvme_parse_ctrl_list(const uint8_t *page, size_t len, uint16_t *out, unsigned max)
{
    unsigned count;

    if (len < 2)
        return -EINVAL;
    count = le16(page);
    if (count > 2047 || 2 + 2 * (size_t)count > len)
        return -EINVAL;
    for (unsigned i = 0; i < count && i < max; i++)
        out[i] = le16(page + 2 + 2 * i);
    return (int)(count < max ? count : max);
}

int sriov_nvme_parse_secondary_list(const uint8_t *page, size_t len, struct sriov_nvme_secondary *out,
                                    unsigned max)
{
    unsigned numid, stored = 0;

    if (len < SECONDARY_LIST_HDR)
        return -EINVAL;
    numid = page[0];
    if (numid > SECONDARY_LIST_MAX || SECONDARY_LIST_HDR + (size_t)numid * SECONDARY_ENTRY_SIZE > len)
        return -EINVAL;
    for (unsigned i = 0; i < numid && stored < max; i++) {
        const uint8_t *e = page + SECONDARY_LIST_HDR + i * SECONDARY_ENTRY_SIZE;

        out[stored].scid = le16(e);
        out[stored].pcid = le16(e + 2);
        out[stored].online = e[4] & 1;
        out[stored].vfn = le16(e + 8);
        out[stored].nvq = le16(e + 10);
        out[stored].nvi = le16(e + 12);
        stored++;
    }
    return (int)stored;
}

int sriov_nvme_ctrl_dev(const char *pf_bdf, char *dev, size_t len)
{
    char path[SRIOV_PATH_MAX];
    struct dirent *de;
    unsigned n;
    char tail;
    DIR *d;
    int r = sriov_dev_path(path, sizeof(path), pf_bdf, "nvme");

    if (r < 0)
        return r;
    d = opendir(path);
    if (!d)
        return -ENOENT;
    r = -ENOENT;
    while ((de = readdir(d))) {
        if (sscanf(de->d_name, "nvme%u%c", &n, &tail) == 1) {
            snprintf(dev, len, "/dev/nvme%u", n);
            r = 0;
            break;
        }
    }
    closedir(d);
    return r;
}

static int admin(const char *ctrl_dev, struct nvme_admin_cmd *cmd, const char *what, char *err, size_t errlen)
{
    int r = admin_fn(ctrl_dev, cmd, admin_opaque);

    if (r < 0)
        sriov_errf(err, errlen, "%s: %s: %s", ctrl_dev, what, strerror(-r));
    else if (r > 0)
        sriov_errf(err, errlen, "%s: %s: NVMe status 0x%x", ctrl_dev, what, (unsigned)r);
    return r < 0 ? r : r > 0 ? -EIO : 0;
}

static int find_secondary(const char *ctrl_dev, unsigned vf_index, struct sriov_nvme_secondary *sec,
                          char *err, size_t errlen)
{
    struct sriov_nvme_secondary list[SECONDARY_LIST_MAX];
    struct nvme_admin_cmd cmd;
    uint8_t *page = aligned_alloc(4096, NVME_IDENTIFY_LEN);
    int n, r;

    if (!page)
        return -ENOMEM;
    memset(page, 0, NVME_IDENTIFY_LEN);
    sriov_nvme_cmd_identify_secondary(&cmd, 0, page);
    r = admin(ctrl_dev, &cmd, "Identify secondary controller list", err, errlen);
    n = r < 0 ? 0 : sriov_nvme_parse_secondary_list(page, NVME_IDENTIFY_LEN, list, SECONDARY_LIST_MAX);
    free(page);
    if (r < 0)
        return r;
    if (n < 0) {
        sriov_errf(err, errlen, "%s: malformed secondary controller list", ctrl_dev);
        return -EIO;
    }
    for (int i = 0; i < n; i++) {
        if (list[i].vfn == vf_index + 1) {
            *sec = list[i];
            return 0;
        }
    }
    sriov_errf(err, errlen, "%s: no secondary controller for VF %u (VF number %u) among %d", ctrl_dev,
               vf_index, vf_index + 1, n);
    return -ENOENT;
}

int sriov_nvme_vf_status(const char *pf_bdf, unsigned vf_index, struct sriov_nvme_secondary *sec,
                         char *err, size_t errlen)
{
    char dev[64];

    if (sriov_nvme_ctrl_dev(pf_bdf, dev, sizeof(dev)) < 0) {
        sriov_errf(err, errlen, "%s has no NVMe controller in sysfs (not NVMe, or the nvme driver is not bound)",
                   pf_bdf);
        return -ENOENT;
    }
    return find_secondary(dev, vf_index, sec, err, errlen);
}

static int virt_mgmt(struct sriov_nvme_vf *st, unsigned rt, unsigned act, uint16_t nr, char *err, size_t errlen)
{
    static const char *const acts[16] = {[7] = "offline", [8] = "assign", [9] = "online"};
    struct nvme_admin_cmd cmd;
    char what[96];

    snprintf(what, sizeof(what), "Virtualization Management %s %s=%u for controller %u",
             acts[act & 0xf] ? acts[act & 0xf] : "?", rt == NVME_VIRT_RT_VI ? "VI" : "VQ", nr, st->scid);
    sriov_nvme_cmd_virt_mgmt(&cmd, st->scid, rt, act, nr);
    return admin(st->ctrl_dev, &cmd, what, err, errlen);
}

static int ns_attach(struct sriov_nvme_vf *st, uint32_t nsid, bool attach, char *err, size_t errlen)
{
    struct nvme_admin_cmd cmd;
    uint8_t *page = aligned_alloc(4096, NVME_IDENTIFY_LEN);
    char what[80];
    int r;

    if (!page)
        return -ENOMEM;
    sriov_nvme_ctrl_list_fill(page, &st->scid, 1);
    sriov_nvme_cmd_ns_attach(&cmd, nsid, attach, page);
    snprintf(what, sizeof(what), "Namespace Attachment: %s namespace %u %s controller %u",
             attach ? "attach" : "detach", nsid, attach ? "to" : "from", st->scid);
    r = admin(st->ctrl_dev, &cmd, what, err, errlen);
    free(page);
    return r;
}

int sriov_nvme_vf_unprovision(struct sriov_nvme_vf *st, char *err, size_t errlen)
{
    int r, first = 0;

    while (st->n_attached) {
        r = ns_attach(st, st->attached_ns[--st->n_attached], false, first ? NULL : err, errlen);
        first = first ? first : r;
    }
    if (st->onlined) {
        r = virt_mgmt(st, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_OFFLINE, 0, first ? NULL : err, errlen);
        first = first ? first : r;
        st->onlined = false;
    }
    if (st->assigned_vi) {
        r = virt_mgmt(st, NVME_VIRT_RT_VI, NVME_VIRT_ACT_ASSIGN, st->prev_nvi, first ? NULL : err, errlen);
        first = first ? first : r;
        st->assigned_vi = false;
    }
    if (st->assigned_vq) {
        r = virt_mgmt(st, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_ASSIGN, st->prev_nvq, first ? NULL : err, errlen);
        first = first ? first : r;
        st->assigned_vq = false;
    }
    return first;
}

/* Every active namespace of the PF that is not attached to the VF's
 * controller yet gets attached (and recorded, so release detaches it). */
static int attach_namespaces(struct sriov_nvme_vf *st, char *err, size_t errlen)
{
    static const unsigned max_ns = NVME_IDENTIFY_LEN / 4;
    uint32_t *nsids = calloc(max_ns, sizeof(*nsids));
    uint16_t ids[64];
    uint8_t *page = aligned_alloc(4096, NVME_IDENTIFY_LEN);
    struct nvme_admin_cmd cmd;
    int n, r = -ENOMEM;

    if (!nsids || !page)
        goto out;
    memset(page, 0, NVME_IDENTIFY_LEN);
    sriov_nvme_cmd_identify_active_ns(&cmd, 0, page);
    if ((r = admin(st->ctrl_dev, &cmd, "Identify active namespace list", err, errlen)) < 0)
        goto out;
    n = sriov_nvme_parse_ns_list(page, NVME_IDENTIFY_LEN, nsids, max_ns);
    if (n < 0) {
        sriov_errf(err, errlen, "%s: malformed active namespace list", st->ctrl_dev);
        r = -EIO;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int k;
        bool attached = false;

        memset(page, 0, NVME_IDENTIFY_LEN);
        sriov_nvme_cmd_identify_ns_ctrls(&cmd, nsids[i], st->scid, page);
        if ((r = admin(st->ctrl_dev, &cmd, "Identify namespace controller list", err, errlen)) < 0)
            goto out;
        k = sriov_nvme_parse_ctrl_list(page, NVME_IDENTIFY_LEN, ids, 64);
        if (k < 0) {
            sriov_errf(err, errlen, "%s: malformed controller list of namespace %u", st->ctrl_dev, nsids[i]);
            r = -EIO;
            goto out;
        }
        for (int j = 0; j < k; j++)
            attached |= ids[j] == st->scid;
        if (attached)
            continue;
        if (st->n_attached == SRIOV_NVME_MAX_NS) {
            sriov_errf(err, errlen, "%s: more than %d namespaces to attach", st->ctrl_dev, SRIOV_NVME_MAX_NS);
            r = -E2BIG;
            goto out;
        }
        if ((r = ns_attach(st, nsids[i], true, err, errlen)) < 0)
            goto out;
        st->attached_ns[st->n_attached++] = nsids[i];
    }
    r = 0;
out:
    free(page);
    free(nsids);
    return r;
}

int sriov_nvme_vf_provision(const char *pf_bdf, unsigned vf_index, uint16_t nvq, uint16_t nvi,
                            struct sriov_nvme_vf *st, char *err, size_t errlen)
{
    struct sriov_nvme_secondary sec;
    int r;

    memset(st, 0, sizeof(*st));
    if (sriov_nvme_ctrl_dev(pf_bdf, st->ctrl_dev, sizeof(st->ctrl_dev)) < 0) {
        sriov_errf(err, errlen, "%s has no NVMe controller in sysfs (not NVMe, or the nvme driver is not bound)",
                   pf_bdf);
        return -ENOENT;
    }
    if ((r = find_secondary(st->ctrl_dev, vf_index, &sec, err, errlen)) < 0)
        return r;
    st->scid = sec.scid;
    st->prev_nvq = sec.nvq;
    st->prev_nvi = sec.nvi;
    if (sec.online)
        return 0; /* provisioned by someone else; theirs to undo */
    if (sec.nvq != nvq) {
        if ((r = virt_mgmt(st, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_ASSIGN, nvq, err, errlen)) < 0)
            goto undo;
        st->assigned_vq = true;
    }
    if (sec.nvi != nvi) {
        if ((r = virt_mgmt(st, NVME_VIRT_RT_VI, NVME_VIRT_ACT_ASSIGN, nvi, err, errlen)) < 0)
            goto undo;
        st->assigned_vi = true;
    }
    if ((r = virt_mgmt(st, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_ONLINE, 0, err, errlen)) < 0)
        goto undo;
    st->onlined = true;
    if ((r = attach_namespaces(st, err, errlen)) < 0)
        goto undo;
    return 0;
undo:
    sriov_nvme_vf_unprovision(st, NULL, 0);
    return r;
}
