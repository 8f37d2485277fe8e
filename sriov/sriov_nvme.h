/* NVMe PFs: making a VF's secondary controller usable through the PF's admin
 * queue (NVMe Virtualization Management). The command builders and the
 * secondary controller list parser are pure; the admin commands go through
 * one hook (default: NVME_IOCTL_ADMIN_CMD on /dev/nvmeX) that tests replace. */
#ifndef SRIOV_NVME_H
#define SRIOV_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/nvme_ioctl.h>

#define NVME_ADMIN_IDENTIFY        0x06
#define NVME_ADMIN_VIRT_MGMT       0x1c
#define NVME_ADMIN_NS_ATTACH       0x15
#define NVME_CNS_ACTIVE_NS_LIST    0x02
#define NVME_CNS_NS_CTRL_LIST      0x12 /* controllers attached to NSID */
#define NVME_CNS_SECONDARY_CTRL_LIST 0x15
#define NVME_VIRT_RT_VQ            0 /* resource type: VQ (queues) */
#define NVME_VIRT_RT_VI            1 /* resource type: VI (interrupt vectors) */
#define NVME_VIRT_ACT_OFFLINE      7
#define NVME_VIRT_ACT_ASSIGN       8
#define NVME_VIRT_ACT_ONLINE       9
#define NVME_IDENTIFY_LEN          4096

/* What the VMM's lease gives a VF: the admin queue plus 3 I/O queues and
 * 2 interrupt vectors (the recipe in TESTING.md). */
#define SRIOV_NVME_DEFAULT_VQ 4
#define SRIOV_NVME_DEFAULT_VI 2

struct sriov_nvme_secondary {
    uint16_t scid;   /* secondary controller id */
    uint16_t pcid;   /* its primary controller */
    bool online;
    uint16_t vfn;    /* VF number, 1-based (VF index + 1) */
    uint16_t nvq, nvi;
};

void sriov_nvme_cmd_identify_secondary(struct nvme_admin_cmd *cmd, uint16_t first_cntlid, void *buf);
void sriov_nvme_cmd_virt_mgmt(struct nvme_admin_cmd *cmd, uint16_t cntlid, unsigned rt, unsigned act,
                              uint16_t nr);
/* Identify active namespace list (NSIDs above after_nsid). */
void sriov_nvme_cmd_identify_active_ns(struct nvme_admin_cmd *cmd, uint32_t after_nsid, void *buf);
/* Identify controller list of the controllers attached to nsid (ids >= first_cntlid). */
void sriov_nvme_cmd_identify_ns_ctrls(struct nvme_admin_cmd *cmd, uint32_t nsid, uint16_t first_cntlid, void *buf);
/* Namespace Attachment of nsid to (attach) or from (!attach) the controllers
 * in buf, a controller list that sriov_nvme_ctrl_list_fill wrote. */
void sriov_nvme_cmd_ns_attach(struct nvme_admin_cmd *cmd, uint32_t nsid, bool attach, void *buf);
void sriov_nvme_ctrl_list_fill(uint8_t *page, const uint16_t *ids, unsigned n);
/* NSIDs of an active namespace list up to the first 0 (at most max);
 * -EINVAL for a list that is not strictly increasing. */
int sriov_nvme_parse_ns_list(const uint8_t *page, size_t len, uint32_t *out, unsigned max);
/* Controller ids of a controller list; -EINVAL when its count lies. */
int sriov_nvme_parse_ctrl_list(const uint8_t *page, size_t len, uint16_t *out, unsigned max);
/* Entries of an Identify Secondary Controller List page; returns how many
 * were stored (at most max), -EINVAL for a page that lies about its length. */
int sriov_nvme_parse_secondary_list(const uint8_t *page, size_t len, struct sriov_nvme_secondary *out,
                                    unsigned max);

/* Returns the ioctl's result: 0, a positive NVMe status, or -errno. */
typedef int (*sriov_nvme_admin_fn)(const char *ctrl_dev, struct nvme_admin_cmd *cmd, void *opaque);
void sriov_nvme_set_admin_hook(sriov_nvme_admin_fn fn, void *opaque); /* NULL: the ioctl */

/* "/dev/nvmeX" of the PF's controller, from <root>/bus/pci/devices/<bdf>/nvme/.
 * -ENOENT when the PF has no NVMe controller (not NVMe, or nvme not bound). */
int sriov_nvme_ctrl_dev(const char *pf_bdf, char *dev, size_t len);

#define SRIOV_NVME_MAX_NS 16

struct sriov_nvme_vf {
    char ctrl_dev[64];
    uint16_t scid;
    uint16_t prev_nvq, prev_nvi;
    bool assigned_vq, assigned_vi, onlined; /* what provision changed */
    uint32_t attached_ns[SRIOV_NVME_MAX_NS]; /* namespaces provision attached */
    unsigned n_attached;
};

/* Give VF vf_index (0-based) nvq queues and nvi vectors, set it online and
 * attach the PF's active namespaces that it does not have yet (shared
 * namespaces usually are attached already); a VF already online is left as
 * it is (and unprovision leaves it too).
 * On failure everything it changed is undone. */
int sriov_nvme_vf_provision(const char *pf_bdf, unsigned vf_index, uint16_t nvq, uint16_t nvi,
                            struct sriov_nvme_vf *st, char *err, size_t errlen);
/* Detach what provision attached, offline, the previous resource counts back. */
int sriov_nvme_vf_unprovision(struct sriov_nvme_vf *st, char *err, size_t errlen);
/* Secondary controller entry of VF vf_index, read fresh from the PF. */
int sriov_nvme_vf_status(const char *pf_bdf, unsigned vf_index, struct sriov_nvme_secondary *sec,
                         char *err, size_t errlen);

#endif
