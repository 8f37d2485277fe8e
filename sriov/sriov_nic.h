/* NIC PFs: a VF's MAC, VLAN, spoof check and trust, set over rtnetlink
 * (RTM_SETLINK on the PF with IFLA_VFINFO_LIST). Building the message is
 * pure and unit-tested byte for byte; sending needs a real SR-IOV NIC. */
#ifndef SRIOV_NIC_H
#define SRIOV_NIC_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sriov_nic_vf_config {
    unsigned vf;      /* 0-based VF index */
    bool set_mac;
    uint8_t mac[6];
    bool set_vlan;    /* vlan 0 removes the VLAN */
    uint16_t vlan;    /* 0..4095 */
    uint8_t qos;      /* 0..7 */
    int spoofchk;     /* 1 on, 0 off, -1 leave */
    int trust;        /* 1 on, 0 off, -1 leave */
};

/* Writes one RTM_SETLINK request (NLM_F_REQUEST | NLM_F_ACK) into buf and
 * returns its length; 0 when it does not fit, the config sets nothing, or a
 * value is out of range. */
size_t sriov_nic_build_setlink(void *buf, size_t len, int pf_ifindex, uint32_t seq,
                               const struct sriov_nic_vf_config *cfg);
/* The PF's network interface from <root>/bus/pci/devices/<bdf>/net/. */
int sriov_nic_pf_ifname(const char *pf_bdf, char ifname[IF_NAMESIZE], char *err, size_t errlen);
/* Builds, sends and waits for the kernel's ack. */
int sriov_nic_vf_configure(const char *pf_bdf, const struct sriov_nic_vf_config *cfg, char *err, size_t errlen);
/* "aa:bb:cc:dd:ee:ff" -> bytes; refuses anything else. */
int sriov_nic_parse_mac(const char *text, uint8_t mac[6]);

#endif
