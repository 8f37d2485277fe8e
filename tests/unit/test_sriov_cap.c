/* SR-IOV capability parsing (from a config-space image and through libpci's
 * dump method from an `lspci -xxxx`-style file), VF routing-ID arithmetic
 * including bus crossing and the range limits, and BDF parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sriov_internal.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* QEMU's NVMe with sriov_max_vfs=2: an AER capability at 0x100, SR-IOV at 0x160. */
static void fake_pf_config(uint8_t cfg[4096])
{
    memset(cfg, 0, 4096);
    put16(cfg, 0x1b36);
    put16(cfg + 2, 0x0010);
    put32(cfg + 0x100, 0x0001 | 2u << 16 | 0x160u << 20); /* AER v2 -> 0x160 */
    put32(cfg + 0x160, 0x0010 | 1u << 16 | 0u << 20);     /* SR-IOV v1, last */
    put16(cfg + 0x160 + 0x0c, 2);      /* InitialVFs */
    put16(cfg + 0x160 + 0x0e, 2);      /* TotalVFs */
    put16(cfg + 0x160 + 0x10, 1);      /* NumVFs */
    put16(cfg + 0x160 + 0x14, 1);      /* First VF Offset */
    put16(cfg + 0x160 + 0x16, 1);      /* VF Stride */
    put16(cfg + 0x160 + 0x1a, 0x0011); /* VF Device ID */
}

static void test_cap_parse(void **state)
{
    static uint8_t cfg[4096];
    struct sriov_pf pf;

    (void)state;
    fake_pf_config(cfg);
    memset(&pf, 0, sizeof(pf));
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), 0);
    assert_int_equal(pf.initial_vfs, 2);
    assert_int_equal(pf.total_vfs, 2);
    assert_int_equal(pf.num_vfs, 1);
    assert_int_equal(pf.vf_offset, 1);
    assert_int_equal(pf.vf_stride, 1);
    assert_int_equal(pf.vf_device, 0x0011);
    assert_int_equal(sriov_ext_cap_find(cfg, sizeof(cfg), 0x0001), 0x100);
    assert_int_equal(sriov_ext_cap_find(cfg, sizeof(cfg), 0x0010), 0x160);
    /* Only the standard 256 bytes: no extended space, no SR-IOV. */
    assert_int_equal(sriov_cap_parse(cfg, 256, &pf), -ENOENT);
}

static void test_cap_parse_hostile(void **state)
{
    static uint8_t cfg[4096];
    struct sriov_pf pf;

    (void)state;
    /* A capability that points at itself: the walk ends. */
    fake_pf_config(cfg);
    put32(cfg + 0x100, 0x0001 | 0x100u << 20);
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
    /* A two-element loop. */
    fake_pf_config(cfg);
    put32(cfg + 0x160, 0x0002 | 0x100u << 20);
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
    /* A next pointer into standard space is the end. */
    fake_pf_config(cfg);
    put32(cfg + 0x100, 0x0001 | 0x040u << 20);
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
    /* Unaligned next pointers are rounded down to a dword, as the spec says. */
    fake_pf_config(cfg);
    put32(cfg + 0x100, 0x0001 | 0x163u << 20);
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), 0);
    /* SR-IOV that would run past the end of config space. */
    fake_pf_config(cfg);
    put32(cfg + 0x100, 0x0001 | 0xfe0u << 20);
    put32(cfg + 0xfe0, 0x0010);
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
    /* An absent function reads all ones. */
    memset(cfg, 0xff, sizeof(cfg));
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
    /* All zero: no capabilities at all. */
    memset(cfg, 0, sizeof(cfg));
    assert_int_equal(sriov_cap_parse(cfg, sizeof(cfg), &pf), -ENOENT);
}

/* An `lspci -xxxx` dump: a header line per function, 16 bytes per line. */
static void write_dump(FILE *f, const char *bdf, const uint8_t *cfg, size_t len)
{
    fprintf(f, "%s Non-Volatile memory controller: fake\n", bdf);
    for (size_t off = 0; off < len; off += 16) {
        fprintf(f, "%03zx:", off);
        for (size_t i = 0; i < 16; i++)
            fprintf(f, " %02x", cfg[off + i]);
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

static void test_pf_read_from_libpci_dump(void **state)
{
    static uint8_t cfg[4096];
    char dump[] = "/tmp/test_sriov_dumpXXXXXX", empty[] = "/tmp/test_sriov_rootXXXXXX", err[256];
    struct sriov_pf pf;
    FILE *f;
    int fd = mkstemp(dump);

    (void)state;
    assert_true(fd >= 0);
    assert_non_null(mkdtemp(empty));
    f = fdopen(fd, "w");
    assert_non_null(f);
    fake_pf_config(cfg);
    write_dump(f, "0000:01:00.0", cfg, sizeof(cfg));
    cfg[0] = 0x86, cfg[1] = 0x80; /* a plain PCI function: 256 bytes, no SR-IOV */
    write_dump(f, "0000:00:02.0", cfg, 256);
    fclose(f);

    sriov_set_sysfs_root(empty); /* no driver, no numa_node */
    sriov_set_pci_dump(dump);
    assert_int_equal(sriov_pf_read("01:00.0", &pf, err, sizeof(err)), 0);
    assert_string_equal(pf.bdf, "0000:01:00.0");
    assert_int_equal(pf.vendor, 0x1b36);
    assert_int_equal(pf.device, 0x0010);
    assert_int_equal(pf.total_vfs, 2);
    assert_int_equal(pf.num_vfs, 1);
    assert_int_equal(pf.vf_offset, 1);
    assert_int_equal(pf.vf_stride, 1);
    assert_int_equal(pf.vf_device, 0x0011);
    assert_string_equal(pf.driver, "");
    assert_int_equal(pf.numa_node, -1);

    assert_int_equal(sriov_pf_read("0000:00:02.0", &pf, err, sizeof(err)), -EOPNOTSUPP);
    assert_non_null(strstr(err, "not SR-IOV capable"));
    assert_int_equal(sriov_pf_read("0000:07:00.0", &pf, err, sizeof(err)), -ENODEV);
    assert_non_null(strstr(err, "0000:07:00.0"));
    assert_int_equal(sriov_pf_read("07:00.9", &pf, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a PCI address"));

    sriov_set_pci_dump(NULL);
    sriov_set_sysfs_root(NULL);
    unlink(dump);
    rmdir(empty);
}

static struct sriov_pf make_pf(const char *bdf, uint16_t total, uint16_t offset, uint16_t stride)
{
    struct sriov_pf pf = {.total_vfs = total, .vf_offset = offset, .vf_stride = stride};

    snprintf(pf.bdf, sizeof(pf.bdf), "%s", bdf);
    return pf;
}

static void test_vf_bdf(void **state)
{
    char out[SRIOV_BDF_LEN];
    struct sriov_pf pf = make_pf("0000:01:00.0", 2, 1, 1);

    (void)state;
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), 0);
    assert_string_equal(out, "0000:01:00.1");
    assert_int_equal(sriov_vf_bdf(&pf, 1, out), 0);
    assert_string_equal(out, "0000:01:00.2");
    assert_int_equal(sriov_vf_bdf(&pf, 2, out), -ERANGE); /* TotalVFs 2: indexes 0 and 1 */

    /* Offset 0x80, stride 2 from 3b:00.0 (an Intel NIC's layout): device and function fields roll. */
    pf = make_pf("0000:3b:00.0", 64, 0x80, 2);
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), 0);
    assert_string_equal(out, "0000:3b:10.0");
    assert_int_equal(sriov_vf_bdf(&pf, 5, out), 0);
    assert_string_equal(out, "0000:3b:11.2");
    assert_int_equal(sriov_vf_bdf(&pf, 63, out), 0);
    assert_string_equal(out, "0000:3b:1f.6");

    /* Crossing into the next bus, domain kept. */
    pf = make_pf("0001:05:00.1", 8, 0xf3, 4);
    assert_int_equal(sriov_vf_bdf(&pf, 3, out), 0); /* 0x501 + 0xf3 + 12 = 0x600 */
    assert_string_equal(out, "0001:06:00.0");
    assert_int_equal(sriov_vf_bdf(&pf, 2, out), 0); /* 0x5fc */
    assert_string_equal(out, "0001:05:1f.4");

    /* Past bus 255. */
    pf = make_pf("0000:ff:00.0", 4, 0x100, 1);
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), -ERANGE);
    pf = make_pf("0000:fe:1f.7", 4, 0x100, 1);
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), 0);
    assert_string_equal(out, "0000:ff:1f.7");
    assert_int_equal(sriov_vf_bdf(&pf, 1, out), -ERANGE);
    /* Huge index * stride must not wrap around. */
    pf = make_pf("0000:00:00.0", 0xffff, 1, 0xffff);
    assert_int_equal(sriov_vf_bdf(&pf, 0xfffe, out), -ERANGE);

    /* Values that cannot describe a VF. */
    pf = make_pf("0000:01:00.0", 2, 0, 1);
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), -EINVAL);
    pf = make_pf("0000:01:00.0", 2, 1, 0);
    assert_int_equal(sriov_vf_bdf(&pf, 1, out), -EINVAL);
    pf = make_pf("0000:01:00.0", 1, 1, 0); /* one VF needs no stride */
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), 0);
    pf = make_pf("0000:01:00.0", 0, 1, 1);
    assert_int_equal(sriov_vf_bdf(&pf, 0, out), -ERANGE);
}

static void test_bdf_parse(void **state)
{
    char out[SRIOV_BDF_LEN];

    (void)state;
    assert_int_equal(sriov_bdf_parse("0000:01:00.0", out), 0);
    assert_string_equal(out, "0000:01:00.0");
    assert_int_equal(sriov_bdf_parse("3B:1F.7", out), 0);
    assert_string_equal(out, "0000:3b:1f.7");
    assert_int_equal(sriov_bdf_parse("abcd:ff:00.1", out), 0);
    assert_string_equal(out, "abcd:ff:00.1");
    const char *bad[] = {"", "01:00", "01:20.0", "01:00.8", "0000:01:00.0 ", " 01:00.0", "0000:01:00.00",
                         "00000:01:00.0", "0:1:0.0", "0x00:01:00.0", "01:0x.0", "+1:00.0", "zz:00.0",
                         "0000:01:00.0\n", "01.00.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sriov_bdf_parse(bad[i], out) != -EINVAL)
            fail_msg("'%s' accepted as %s", bad[i], out);
    }
    assert_int_equal(sriov_bdf_parse(NULL, out), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_parse),
        cmocka_unit_test(test_cap_parse_hostile),
        cmocka_unit_test(test_pf_read_from_libpci_dump),
        cmocka_unit_test(test_vf_bdf),
        cmocka_unit_test(test_bdf_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
