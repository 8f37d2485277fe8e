/* VF settings of a NIC PF over rtnetlink, with libmnl. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "sriov_internal.h"
#include "sriov_nic.h"

size_t sriov_nic_build_setlink(void *buf, size_t len, int pf_ifindex, uint32_t seq,
                               const struct sriov_nic_vf_config *cfg)
{
    struct nlmsghdr *nlh;
    struct ifinfomsg *ifi;
    struct nlattr *list, *info;

    if (!cfg->set_mac && !cfg->set_vlan && cfg->spoofchk < 0 && cfg->trust < 0)
        return 0;
    if (cfg->vlan > 4095 || cfg->qos > 7 || cfg->spoofchk > 1 || cfg->trust > 1 || pf_ifindex <= 0)
        return 0;
    /* Header plus ifinfomsg must fit before libmnl writes anything. */
    if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct ifinfomsg)))
        return 0;
    memset(buf, 0, len);
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_SETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = pf_ifindex;

    if (!(list = mnl_attr_nest_start_check(nlh, len, IFLA_VFINFO_LIST)) ||
        !(info = mnl_attr_nest_start_check(nlh, len, IFLA_VF_INFO)))
        return 0;
    if (cfg->set_mac) {
        struct ifla_vf_mac mac = {.vf = cfg->vf};
        memcpy(mac.mac, cfg->mac, sizeof(cfg->mac));
        if (!mnl_attr_put_check(nlh, len, IFLA_VF_MAC, sizeof(mac), &mac))
            return 0;
    }
    if (cfg->set_vlan) {
        struct ifla_vf_vlan vlan = {.vf = cfg->vf, .vlan = cfg->vlan, .qos = cfg->qos};
        if (!mnl_attr_put_check(nlh, len, IFLA_VF_VLAN, sizeof(vlan), &vlan))
            return 0;
    }
    if (cfg->spoofchk >= 0) {
        struct ifla_vf_spoofchk sc = {.vf = cfg->vf, .setting = (uint32_t)cfg->spoofchk};
        if (!mnl_attr_put_check(nlh, len, IFLA_VF_SPOOFCHK, sizeof(sc), &sc))
            return 0;
    }
    if (cfg->trust >= 0) {
        struct ifla_vf_trust tr = {.vf = cfg->vf, .setting = (uint32_t)cfg->trust};
        if (!mnl_attr_put_check(nlh, len, IFLA_VF_TRUST, sizeof(tr), &tr))
            return 0;
    }
    mnl_attr_nest_end(nlh, info);
    mnl_attr_nest_end(nlh, list);
    return nlh->nlmsg_len;
}

int sriov_nic_parse_mac(const char *text, uint8_t mac[6])
{
    unsigned b[6];
    int used = 0;

    if (!text || strlen(text) != 17 ||
        sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &used) != 6 ||
        used != 17)
        return -EINVAL;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? text[i] != ':' : !strchr("0123456789abcdefABCDEF", text[i]))
            return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    return 0;
}

int sriov_nic_pf_ifname(const char *pf_bdf, char ifname[IF_NAMESIZE], char *err, size_t errlen)
{
    char bdf[SRIOV_BDF_LEN], path[SRIOV_PATH_MAX];
    struct dirent *de;
    DIR *d;
    int r = -ENOENT;

    if (sriov_bdf_parse(pf_bdf, bdf) < 0 || sriov_dev_path(path, sizeof(path), bdf, "net") < 0) {
        sriov_errf(err, errlen, "'%s' is not a PCI address", pf_bdf ? pf_bdf : "");
        return -EINVAL;
    }
    d = opendir(path);
    if (d) {
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.' || strlen(de->d_name) >= IF_NAMESIZE)
                continue;
            memcpy(ifname, de->d_name, strlen(de->d_name) + 1);
            r = 0;
            break;
        }
        closedir(d);
    }
    if (r < 0)
        sriov_errf(err, errlen, "%s has no network interface (not a NIC, or no driver bound)", bdf);
    return r;
}

int sriov_nic_vf_configure(const char *pf_bdf, const struct sriov_nic_vf_config *cfg, char *err, size_t errlen)
{
    char buf[MNL_SOCKET_BUFFER_SIZE], ifname[IF_NAMESIZE];
    struct timeval tv = {.tv_sec = 2};
    struct mnl_socket *nl;
    unsigned ifindex, portid;
    uint32_t seq = (uint32_t)time(NULL);
    size_t len;
    ssize_t n;
    int r;

    if ((r = sriov_nic_pf_ifname(pf_bdf, ifname, err, errlen)) < 0)
        return r;
    ifindex = if_nametoindex(ifname);
    if (!ifindex) {
        sriov_errf(err, errlen, "%s: interface %s: %s", pf_bdf, ifname, strerror(errno));
        return -ENODEV;
    }
    len = sriov_nic_build_setlink(buf, sizeof(buf), (int)ifindex, seq, cfg);
    if (!len) {
        sriov_errf(err, errlen, "VF %u: nothing to set, or a value out of range", cfg->vf);
        return -EINVAL;
    }
    nl = mnl_socket_open(NETLINK_ROUTE);
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        r = -errno;
        sriov_errf(err, errlen, "rtnetlink socket: %s", strerror(errno));
        if (nl)
            mnl_socket_close(nl);
        return r;
    }
    portid = mnl_socket_get_portid(nl);
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (mnl_socket_sendto(nl, buf, len) < 0) {
        r = -errno;
        sriov_errf(err, errlen, "rtnetlink send: %s", strerror(errno));
        goto out;
    }
    /* mnl_cb_run checks sequence and port and turns the NLMSG_ERROR ack into
     * 0 or -1 with errno; anything malformed is refused by it too. */
    r = -ETIMEDOUT;
    while ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
        int cb = mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL);
        if (cb <= MNL_CB_STOP) {
            r = cb < 0 ? -errno : 0;
            break;
        }
    }
    if (n < 0)
        r = -errno;
    if (r < 0)
        sriov_errf(err, errlen, "%s (%s) VF %u: RTM_SETLINK: %s", pf_bdf, ifname, cfg->vf, strerror(-r));
out:
    mnl_socket_close(nl);
    return r;
}
