/* The messages sriov/ sends: the rtnetlink RTM_SETLINK request for a NIC
 * VF (byte for byte, against values written out by hand from
 * linux/if_link.h and the netlink framing), the NVMe admin commands that
 * provision a secondary controller (dwords per the NVMe spec), and the
 * parsing of the secondary controller list a PF returns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sriov_nic.h"
#include "sriov_nvme.h"

/* mac 52:54:00:12:34:56, VLAN 100 qos 5, spoofchk off, trust on, VF 3, PF
 * ifindex 7, seq 0x01020304. */
static const uint8_t setlink_full[120] = {
    /* nlmsghdr: len 120, RTM_SETLINK (19), NLM_F_REQUEST|NLM_F_ACK, seq, pid 0 */
    0x78, 0, 0, 0, 0x13, 0, 0x05, 0, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0,
    /* ifinfomsg: AF_UNSPEC, pad, type 0, index 7, flags 0, change 0 */
    0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* IFLA_VFINFO_LIST (22) | NLA_F_NESTED, len 88 */
    0x58, 0, 0x16, 0x80,
    /* IFLA_VF_INFO (1) | NLA_F_NESTED, len 84 */
    0x54, 0, 0x01, 0x80,
    /* IFLA_VF_MAC (1), len 40: vf 3, mac[32] */
    0x28, 0, 0x01, 0, 3, 0, 0, 0, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* IFLA_VF_VLAN (2), len 16: vf 3, vlan 100, qos 5 */
    0x10, 0, 0x02, 0, 3, 0, 0, 0, 100, 0, 0, 0, 5, 0, 0, 0,
    /* IFLA_VF_SPOOFCHK (4), len 12: vf 3, setting 0 */
    0x0c, 0, 0x04, 0, 3, 0, 0, 0, 0, 0, 0, 0,
    /* IFLA_VF_TRUST (9), len 12: vf 3, setting 1 */
    0x0c, 0, 0x09, 0, 3, 0, 0, 0, 1, 0, 0, 0,
};

static void test_setlink_all_fields(void **state)
{
    struct sriov_nic_vf_config c = {.vf = 3, .set_mac = true, .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56},
                                    .set_vlan = true, .vlan = 100, .qos = 5, .spoofchk = 0, .trust = 1};
    uint8_t buf[512];
    size_t n;

    (void)state;
    memset(buf, 0xee, sizeof(buf));
    n = sriov_nic_build_setlink(buf, sizeof(buf), 7, 0x01020304, &c);
    assert_int_equal(n, sizeof(setlink_full));
    assert_memory_equal(buf, setlink_full, sizeof(setlink_full));
}

static void test_setlink_trust_only(void **state)
{
    static const uint8_t want[52] = {
        0x34, 0, 0, 0, 0x13, 0, 0x05, 0, 9, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x14, 0, 0x16, 0x80, 0x10, 0, 0x01, 0x80,
        0x0c, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    struct sriov_nic_vf_config c = {.vf = 0, .spoofchk = -1, .trust = 0};
    uint8_t buf[256];

    (void)state;
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 2, 9, &c), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_setlink_refusals(void **state)
{
    struct sriov_nic_vf_config c = {.vf = 1, .set_vlan = true, .vlan = 4096, .spoofchk = -1, .trust = -1};
    struct sriov_nic_vf_config nothing = {.vf = 1, .spoofchk = -1, .trust = -1};
    struct sriov_nic_vf_config full = {.vf = 1, .set_mac = true, .spoofchk = 1, .trust = 1};
    uint8_t buf[512];

    (void)state;
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 2, 1, &c), 0); /* VLAN > 4095 */
    c.vlan = 10;
    c.qos = 8;
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 2, 1, &c), 0); /* qos > 7 */
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 2, 1, &nothing), 0);
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 0, 1, &full), 0); /* no ifindex */
    full.trust = 2;
    assert_int_equal(sriov_nic_build_setlink(buf, sizeof(buf), 2, 1, &full), 0);
    full.trust = 1;
    /* Every buffer shorter than the message is refused, none overrun. */
    size_t need = sriov_nic_build_setlink(buf, sizeof(buf), 2, 1, &full);
    assert_int_equal(need, 16 + 16 + 4 + 4 + 40 + 12 + 12);
    for (size_t len = 0; len < need; len++) {
        uint8_t *small = malloc(len ? len : 1); /* exact size: ASan sees any overrun */
        assert_non_null(small);
        assert_int_equal(sriov_nic_build_setlink(small, len, 2, 1, &full), 0);
        free(small);
    }
}

static void test_parse_mac(void **state)
{
    uint8_t mac[6];

    (void)state;
    assert_int_equal(sriov_nic_parse_mac("52:54:00:Ab:cD:ff", mac), 0);
    assert_int_equal(mac[3], 0xab);
    assert_int_equal(mac[5], 0xff);
    assert_int_equal(sriov_nic_parse_mac("52:54:00:ab:cd", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac("52:54:00:ab:cd:ff:", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac("52-54-00-ab-cd-ff", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac("5:254:00:ab:cd:ff", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac(" 2:54:00:ab:cd:ff", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac("g2:54:00:ab:cd:ff", mac), -EINVAL);
    assert_int_equal(sriov_nic_parse_mac(NULL, mac), -EINVAL);
}

static void test_nvme_identify_secondary(void **state)
{
    struct nvme_admin_cmd cmd;
    static uint8_t page[4096];

    (void)state;
    memset(&cmd, 0xaa, sizeof(cmd));
    sriov_nvme_cmd_identify_secondary(&cmd, 0, page);
    assert_int_equal(cmd.opcode, 0x06);
    assert_int_equal(cmd.nsid, 0);
    assert_int_equal(cmd.cdw10, 0x00000015); /* CNS 15h, CNTID 0 */
    assert_int_equal(cmd.cdw11, 0);
    assert_int_equal(cmd.data_len, 4096);
    assert_ptr_equal((void *)(uintptr_t)cmd.addr, page);
    assert_int_equal(cmd.flags, 0);
    sriov_nvme_cmd_identify_secondary(&cmd, 0x1234, page);
    assert_int_equal(cmd.cdw10, 0x12340015);
}

static void test_nvme_virt_mgmt(void **state)
{
    struct nvme_admin_cmd cmd;

    (void)state;
    memset(&cmd, 0xaa, sizeof(cmd));
    /* The TESTING.md sequence: --cntlid=1 --rt=0 --act=8 --nr=4, --rt=1 --act=8 --nr=2, --act=9. */
    sriov_nvme_cmd_virt_mgmt(&cmd, 1, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_ASSIGN, 4);
    assert_int_equal(cmd.opcode, 0x1c);
    assert_int_equal(cmd.cdw10, 0x00010008);
    assert_int_equal(cmd.cdw11, 4);
    assert_int_equal(cmd.data_len, 0);
    assert_int_equal(cmd.addr, 0);
    assert_int_equal(cmd.nsid, 0);
    sriov_nvme_cmd_virt_mgmt(&cmd, 1, NVME_VIRT_RT_VI, NVME_VIRT_ACT_ASSIGN, 2);
    assert_int_equal(cmd.cdw10, 0x00010108);
    assert_int_equal(cmd.cdw11, 2);
    sriov_nvme_cmd_virt_mgmt(&cmd, 1, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_ONLINE, 0);
    assert_int_equal(cmd.cdw10, 0x00010009);
    assert_int_equal(cmd.cdw11, 0);
    sriov_nvme_cmd_virt_mgmt(&cmd, 0xfffe, NVME_VIRT_RT_VQ, NVME_VIRT_ACT_OFFLINE, 0);
    assert_int_equal(cmd.cdw10, 0xfffe0007);
}

static void put_entry(uint8_t *page, unsigned i, uint16_t scid, uint16_t pcid, uint8_t scs, uint16_t vfn,
                      uint16_t nvq, uint16_t nvi)
{
    uint8_t *e = page + 32 + 32 * i;

    e[0] = scid & 0xff, e[1] = scid >> 8;
    e[2] = pcid & 0xff, e[3] = pcid >> 8;
    e[4] = scs;
    e[8] = vfn & 0xff, e[9] = vfn >> 8;
    e[10] = nvq & 0xff, e[11] = nvq >> 8;
    e[12] = nvi & 0xff, e[13] = nvi >> 8;
}

static void test_nvme_secondary_list(void **state)
{
    static uint8_t page[4096];
    struct sriov_nvme_secondary s[4];

    (void)state;
    memset(page, 0, sizeof(page));
    page[0] = 2;
    put_entry(page, 0, 1, 0, 0, 1, 0, 0);
    put_entry(page, 1, 0x102, 0, 0xff, 2, 4, 0x203);
    assert_int_equal(sriov_nvme_parse_secondary_list(page, sizeof(page), s, 4), 2);
    assert_int_equal(s[0].scid, 1);
    assert_false(s[0].online);
    assert_int_equal(s[0].vfn, 1);
    assert_int_equal(s[1].scid, 0x102);
    assert_true(s[1].online); /* only bit 0 of SCS counts */
    assert_int_equal(s[1].vfn, 2);
    assert_int_equal(s[1].nvq, 4);
    assert_int_equal(s[1].nvi, 0x203);
    /* Fewer slots than entries: truncated, not overrun. */
    assert_int_equal(sriov_nvme_parse_secondary_list(page, sizeof(page), s, 1), 1);
    /* A count past the 127 entries a page holds, or past the buffer. */
    page[0] = 128;
    assert_int_equal(sriov_nvme_parse_secondary_list(page, sizeof(page), s, 4), -EINVAL);
    page[0] = 2;
    assert_int_equal(sriov_nvme_parse_secondary_list(page, 32 + 32 + 31, s, 4), -EINVAL);
    assert_int_equal(sriov_nvme_parse_secondary_list(page, 16, s, 4), -EINVAL);
    page[0] = 0;
    assert_int_equal(sriov_nvme_parse_secondary_list(page, sizeof(page), s, 4), 0);
}

static void test_nvme_namespace_commands(void **state)
{
    struct nvme_admin_cmd cmd;
    static uint8_t page[4096];
    const uint16_t ids[2] = {0x0102, 7};

    (void)state;
    memset(&cmd, 0xaa, sizeof(cmd));
    sriov_nvme_cmd_identify_active_ns(&cmd, 0, page);
    assert_int_equal(cmd.opcode, 0x06);
    assert_int_equal(cmd.nsid, 0);
    assert_int_equal(cmd.cdw10, 0x00000002);
    assert_int_equal(cmd.data_len, 4096);
    sriov_nvme_cmd_identify_ns_ctrls(&cmd, 1, 2, page);
    assert_int_equal(cmd.opcode, 0x06);
    assert_int_equal(cmd.nsid, 1);
    assert_int_equal(cmd.cdw10, 0x00020012); /* CNS 12h, CNTID 2 */
    sriov_nvme_cmd_ns_attach(&cmd, 3, true, page);
    assert_int_equal(cmd.opcode, 0x15);
    assert_int_equal(cmd.nsid, 3);
    assert_int_equal(cmd.cdw10, 0); /* SEL attach */
    assert_int_equal(cmd.data_len, 4096);
    assert_ptr_equal((void *)(uintptr_t)cmd.addr, page);
    sriov_nvme_cmd_ns_attach(&cmd, 3, false, page);
    assert_int_equal(cmd.cdw10, 1); /* SEL detach */

    memset(page, 0xee, sizeof(page));
    sriov_nvme_ctrl_list_fill(page, ids, 2);
    static const uint8_t want[8] = {2, 0, 0x02, 0x01, 7, 0, 0, 0};
    assert_memory_equal(page, want, sizeof(want));
    assert_int_equal(page[4095], 0);
}

static void test_nvme_list_parsers(void **state)
{
    static uint8_t page[4096];
    uint32_t ns[8];
    uint16_t ids[4];

    (void)state;
    memset(page, 0, sizeof(page));
    page[0] = 1, page[4] = 2, page[8] = 0x10, page[11] = 0x01; /* 1, 2, 0x01000010 */
    assert_int_equal(sriov_nvme_parse_ns_list(page, sizeof(page), ns, 8), 3);
    assert_int_equal(ns[2], 0x01000010);
    assert_int_equal(sriov_nvme_parse_ns_list(page, sizeof(page), ns, 2), 2);
    page[4] = 1; /* not increasing */
    assert_int_equal(sriov_nvme_parse_ns_list(page, sizeof(page), ns, 8), -EINVAL);
    memset(page, 0xff, 8); /* the broadcast NSID is no namespace */
    assert_int_equal(sriov_nvme_parse_ns_list(page, sizeof(page), ns, 8), -EINVAL);
    memset(page, 0, sizeof(page));
    assert_int_equal(sriov_nvme_parse_ns_list(page, sizeof(page), ns, 8), 0);

    page[0] = 3, page[2] = 1, page[4] = 2, page[6] = 9;
    assert_int_equal(sriov_nvme_parse_ctrl_list(page, sizeof(page), ids, 4), 3);
    assert_int_equal(ids[2], 9);
    assert_int_equal(sriov_nvme_parse_ctrl_list(page, sizeof(page), ids, 2), 2);
    assert_int_equal(sriov_nvme_parse_ctrl_list(page, 7, ids, 4), -EINVAL); /* count past the buffer */
    page[0] = 0x00, page[1] = 0x08; /* 2048 > 2047 */
    assert_int_equal(sriov_nvme_parse_ctrl_list(page, sizeof(page), ids, 4), -EINVAL);
    assert_int_equal(sriov_nvme_parse_ctrl_list(page, 1, ids, 4), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setlink_all_fields),
        cmocka_unit_test(test_setlink_trust_only),
        cmocka_unit_test(test_setlink_refusals),
        cmocka_unit_test(test_parse_mac),
        cmocka_unit_test(test_nvme_identify_secondary),
        cmocka_unit_test(test_nvme_virt_mgmt),
        cmocka_unit_test(test_nvme_secondary_list),
        cmocka_unit_test(test_nvme_namespace_commands),
        cmocka_unit_test(test_nvme_list_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
