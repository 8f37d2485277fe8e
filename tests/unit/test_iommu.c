/* iommu/: host IOMMU discovery, IOMMU groups and their viability, and the
 * DMA mapping of guest RAM, against a fake sysfs tree (the root prefix) and
 * a fake IOMMU backend. */
#include <errno.h>
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

#include "iommu.h"
#include "memory.h"

static char root[64];

static void mkdirs(const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

static void put(const char *rel, const char *text)
{
    char path[512], dir[512];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s", rel);
    if (strrchr(dir, '/')) {
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
    }
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void link_to(const char *rel, const char *target)
{
    char path[512], dir[512];

    snprintf(dir, sizeof(dir), "%s", rel);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/test-iommu.XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* A VT-d host as L1 sees it with intel_iommu=on. */
static void make_vtd_host(bool remapped)
{
    put("sys/class/iommu/dmar0/intel-iommu/ecap", "f020de\n");
    put("sys/firmware/acpi/tables/DMAR", "x");
    mkdirs("sys/kernel/iommu_groups/0/devices");
    put("proc/interrupts", remapped ? " 24: 1 IR-PCI-MSI 512000-edge nvme0q0\n"
                                    : " 24: 1 PCI-MSI 512000-edge nvme0q0\n");
}

static void test_probe_vtd(void **state)
{
    struct iommu_host_info info;
    char err[512];

    (void)state;
    make_vtd_host(true);
    iommu_host_probe(root, &info);
    assert_int_equal(info.kind, IOMMU_INTEL_VTD);
    assert_string_equal(info.first_unit, "dmar0");
    assert_int_equal(info.units, 1);
    assert_true(info.acpi_table);
    assert_true(info.groups);
    assert_true(info.intremap_hw);
    assert_true(info.intremap_on);
    assert_int_equal(iommu_host_check(&info, err, sizeof(err)), 0);
}

static void test_no_iommu_refused(void **state)
{
    struct iommu_host_info info;
    char err[512];

    (void)state;
    put("sys/firmware/acpi/tables/DMAR", "x");   /* firmware has one, kernel did not enable it */
    iommu_host_probe(root, &info);
    assert_int_equal(info.kind, IOMMU_NONE);
    assert_int_equal(iommu_host_check(&info, err, sizeof(err)), -ENODEV);
    assert_non_null(strstr(err, "no IOMMU"));
    assert_non_null(strstr(err, "intel_iommu=on"));
}

static void test_unremapped_interrupts_need_opt_in(void **state)
{
    struct iommu_host_info info;
    char err[512];

    (void)state;
    make_vtd_host(false);
    iommu_host_probe(root, &info);
    assert_false(info.intremap_on);
    assert_int_equal(iommu_host_check(&info, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "allow_unsafe_interrupts=1"));

    put("sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
    iommu_host_probe(root, &info);
    assert_true(info.unsafe_interrupts_ok);
    assert_int_equal(iommu_host_check(&info, err, sizeof(err)), 0);
}

static void test_parse_bdf(void **state)
{
    char out[13];

    (void)state;
    assert_int_equal(iommu_parse_bdf("0000:01:00.0", out), 0);
    assert_string_equal(out, "0000:01:00.0");
    assert_int_equal(iommu_parse_bdf("00:1F.7", out), 0);
    assert_string_equal(out, "0000:00:1f.7");
    assert_int_equal(iommu_parse_bdf("0000:01:20.0", out), -EINVAL);   /* device > 31 */
    assert_int_equal(iommu_parse_bdf("0000:01:00.8", out), -EINVAL);   /* function > 7 */
    assert_int_equal(iommu_parse_bdf("0000:01:00", out), -EINVAL);
    assert_int_equal(iommu_parse_bdf("zzzz:01:00.0", out), -EINVAL);
    assert_int_equal(iommu_parse_bdf("0000:01:00.0 ", out), -EINVAL);
    assert_int_equal(iommu_parse_bdf("", out), -EINVAL);
}

/* A group member: in the group's folder and in the PCI device list. */
static void member(int group, const char *bdf, const char *driver, const char *cls)
{
    char rel[256], target[128];

    snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices/%s/class", group, bdf);
    put(rel, cls);
    if (driver) {
        snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices/%s/driver", group, bdf);
        snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
        link_to(rel, target);
        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", bdf);
        link_to(rel, target);
    }
    snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/iommu_group", bdf);
    snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%d", group);
    link_to(rel, target);
}

static void test_device_group_and_driver(void **state)
{
    char driver[64];

    (void)state;
    member(7, "0000:01:00.0", "vfio-pci", "0x010802\n");
    mkdirs("sys/bus/pci/devices/0000:00:02.0");   /* no iommu_group link */
    assert_int_equal(iommu_device_group(root, "0000:01:00.0"), 7);
    assert_int_equal(iommu_device_group(root, "0000:09:00.0"), -ENOENT);
    assert_int_equal(iommu_device_group(root, "0000:00:02.0"), -ENODEV);
    assert_int_equal(iommu_device_driver(root, "0000:01:00.0", driver, sizeof(driver)), 0);
    assert_string_equal(driver, "vfio-pci");
    assert_int_equal(iommu_device_driver(root, "0000:00:02.0", driver, sizeof(driver)), 0);
    assert_string_equal(driver, "");
}

static void test_group_viable(void **state)
{
    char err[512] = "untouched";

    (void)state;
    member(7, "0000:01:00.0", "vfio-pci", "0x010802\n");
    member(7, "0000:00:1c.0", "pcieport", "0x060400\n");   /* bridge */
    member(7, "0000:00:1c.1", "shpchp", "0x060400\n");     /* bridge with another driver */
    member(7, "0000:01:00.1", NULL, "0x020000\n");         /* unbound */
    assert_int_equal(iommu_group_check_viable(root, 7, err, sizeof(err)), 0);
}

static void test_group_not_viable_names_offenders(void **state)
{
    char err[512];

    (void)state;
    member(7, "0000:01:00.0", "vfio-pci", "0x010802\n");
    member(7, "0000:01:00.1", "nvme", "0x010802\n");
    member(7, "0000:01:00.2", "e1000e", "0x020000\n");
    assert_int_equal(iommu_group_check_viable(root, 7, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "IOMMU group 7 is not viable"));
    assert_non_null(strstr(err, "0000:01:00.1 (bound to nvme)"));
    assert_non_null(strstr(err, "0000:01:00.2 (bound to e1000e)"));
    assert_null(strstr(err, "0000:01:00.0"));
    assert_int_equal(iommu_group_check_viable(root, 8, err, sizeof(err)), -ENOENT);
}

static void test_numa(void **state)
{
    (void)state;
    put("sys/bus/pci/devices/0000:01:00.0/numa_node", "1\n");
    put("sys/bus/pci/devices/0000:02:00.0/numa_node", "-1\n");
    put("sys/bus/pci/devices/0000:03:00.0/numa_node", "junk\n");
    assert_int_equal(iommu_device_numa_node(root, "0000:01:00.0"), 1);
    assert_int_equal(iommu_device_numa_node(root, "0000:02:00.0"), -1);
    assert_int_equal(iommu_device_numa_node(root, "0000:03:00.0"), -1);
    assert_int_equal(iommu_device_numa_node(root, "0000:04:00.0"), -1);
    /* Every CPU this test may run on is on node 0, none on node 1. */
    put("sys/devices/system/node/node0/cpulist", "0-4095\n");
    put("sys/devices/system/node/node1/cpulist", "\n");
    assert_int_equal(iommu_current_numa_nodes(root), 1);
}

/* --- the DMA domain against a fake backend -------------------------------- */

struct fake_be {
    int maps, unmaps, fail_map_at;   /* fail the Nth map (1-based), 0: never */
    uint64_t mapped_iova[8], mapped_size[8];
    void *mapped_hva[8];
    uint64_t unmapped_iova[8];
};

static int fake_map(void *be, uint64_t iova, uint64_t size, void *hva)
{
    struct fake_be *f = be;

    if (++f->maps == f->fail_map_at)
        return -ENOMEM;
    f->mapped_iova[f->maps - 1] = iova;
    f->mapped_size[f->maps - 1] = size;
    f->mapped_hva[f->maps - 1] = hva;
    return 0;
}

static int fake_unmap(void *be, uint64_t iova, uint64_t size)
{
    struct fake_be *f = be;

    (void)size;
    f->unmapped_iova[f->unmaps++] = iova;
    return 0;
}

static void fake_close(void *be)
{
    (void)be;
}

static const struct iommu_backend_ops fake_ops = {
    .name = "fake", .map = fake_map, .unmap = fake_unmap, .close = fake_close,
};

/* 3.5 GiB of RAM: below the 32-bit hole and above 4 GiB, not allocated. */
static void fake_mem(struct guest_mem *mem)
{
    memset(mem, 0, sizeof(*mem));
    mem->n_regions = guest_mem_layout(3584ULL << 20, mem->regions);
    mem->regions[0].hva = (uint8_t *)0x7f0000000000;
    mem->regions[1].hva = (uint8_t *)0x7f1000000000;
}

static void test_domain_maps_all_ram(void **state)
{
    struct fake_be be = { 0 };
    struct iommu_domain d = { .ops = &fake_ops, .be = &be };
    struct guest_mem mem;

    (void)state;
    fake_mem(&mem);
    assert_int_equal(mem.n_regions, 2);
    assert_int_equal(iommu_domain_map_guest_ram(&d, &mem), 0);
    assert_int_equal(be.maps, 2);
    assert_int_equal(be.mapped_iova[0], 0);
    assert_int_equal(be.mapped_size[0], mem.regions[0].size);
    assert_ptr_equal(be.mapped_hva[0], mem.regions[0].hva);
    assert_int_equal(be.mapped_iova[1], 0x100000000ULL);
    assert_int_equal(be.mapped_size[1], mem.regions[1].size);
    assert_ptr_equal(be.mapped_hva[1], mem.regions[1].hva);
    iommu_domain_close(&d);
    assert_int_equal(be.unmaps, 2);
    assert_int_equal(be.unmapped_iova[0], 0x100000000ULL);   /* newest first */
    assert_int_equal(be.unmapped_iova[1], 0);
    assert_null(d.ops);
}

static void test_domain_failure_unmaps_what_was_mapped(void **state)
{
    struct fake_be be = { .fail_map_at = 2 };
    struct iommu_domain d = { .ops = &fake_ops, .be = &be };
    struct guest_mem mem;

    (void)state;
    fake_mem(&mem);
    assert_int_equal(iommu_domain_map_guest_ram(&d, &mem), -ENOMEM);
    assert_int_equal(be.unmaps, 1);
    assert_int_equal(be.unmapped_iova[0], 0);
    assert_int_equal(d.n_maps, 0);
    iommu_domain_unmap_all(&d);
    assert_int_equal(be.unmaps, 1);   /* nothing left to unmap */
}

static void test_iommufd_not_implemented(void **state)
{
    struct iommu_domain d;
    char err[256];

    (void)state;
    assert_int_equal(iommu_iommufd_open(&d, err, sizeof(err)), -EOPNOTSUPP);
    assert_non_null(strstr(err, "not implemented"));
    assert_null(d.ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_vtd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_iommu_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unremapped_interrupts_need_opt_in, setup, teardown),
        cmocka_unit_test(test_parse_bdf),
        cmocka_unit_test_setup_teardown(test_device_group_and_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_viable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_not_viable_names_offenders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numa, setup, teardown),
        cmocka_unit_test(test_domain_maps_all_ram),
        cmocka_unit_test(test_domain_failure_unmaps_what_was_mapped),
        cmocka_unit_test(test_iommufd_not_implemented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
