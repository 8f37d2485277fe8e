/* vfio/passthrough_device.c: the [passthrough] keys and the checks that
 * refuse an assignment before the guest boots, each naming the device file's
 * line and the cause, against a fake sysfs tree (IOVMM_SYSFS_ROOT). */
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

#include "config.h"
#include "passthrough_device.h"
#include "registry.h"
#include "vm.h"

static char root[64];

static void put(const char *rel, const char *text)
{
    char path[512], cmd[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void link_to(const char *rel, const char *target)
{
    char path[512], cmd[600];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(symlink(target, path), 0);
}

/* A VT-d host without interrupt remapping but with the opt-in; group 7
 * holds 0000:01:00.0 (vfio-pci) and 0000:01:00.1 (driver given). */
static void make_host(const char *fn1_driver)
{
    put("sys/class/iommu/dmar0/intel-iommu/ecap", "f020d6\n");
    put("sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
    put("proc/interrupts", "\n");
    put("sys/kernel/iommu_groups/7/devices/0000:01:00.0/class", "0x010802\n");
    link_to("sys/kernel/iommu_groups/7/devices/0000:01:00.0/driver", "../drivers/vfio-pci");
    link_to("sys/bus/pci/devices/0000:01:00.0/driver", "../drivers/vfio-pci");
    link_to("sys/bus/pci/devices/0000:01:00.0/iommu_group", "../../kernel/iommu_groups/7");
    put("sys/kernel/iommu_groups/7/devices/0000:01:00.1/class", "0x010802\n");
    link_to("sys/kernel/iommu_groups/7/devices/0000:01:00.1/driver", fn1_driver);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/test-vfio-glue.XXXXXX");
    assert_non_null(mkdtemp(root));
    setenv("IOVMM_SYSFS_ROOT", root, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    unsetenv("IOVMM_SYSFS_ROOT");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Runs passthrough_device_create for a file whose [passthrough] holds the
 * given key/value pairs (NULL-terminated, from line 6 on); returns what it
 * wrote on stderr (caller frees) and its status in *ret. */
static char *create(int *ret, ...)
{
    struct cfg_value values[8];
    struct device_config dc = { .file = "d.conf", .dir = ".", .id = "pt0", .cls = DEV_CLASS_BLOCK,
                                .path = IO_PATH_PASSTHROUGH, .path_line = 4, .values = values };
    struct vm vm;
    char errpath[] = "/tmp/test-vfio-glue-err.XXXXXX";
    int fd = mkstemp(errpath), saved = dup(2);
    char *text = calloc(1, 4096);
    const char *k;
    va_list ap;

    memset(&vm, 0, sizeof(vm));
    vm.vm_fd = -1;
    dc.impl = registry_find(DEV_CLASS_BLOCK, IO_PATH_PASSTHROUGH, NULL);
    assert_non_null(dc.impl);
    va_start(ap, ret);
    while ((k = va_arg(ap, const char *))) {
        values[dc.n_values] = (struct cfg_value){ .section = "passthrough", .key = (char *)k,
                                                  .value = va_arg(ap, char *),
                                                  .line = 6 + (int)dc.n_values };
        dc.n_values++;
    }
    va_end(ap);
    assert_true(fd >= 0 && saved >= 0 && text);
    fflush(stderr);
    dup2(fd, 2);
    *ret = passthrough_device_create(&vm, &dc);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_true(pread(fd, text, 4095, 0) >= 0);
    close(fd);
    unlink(errpath);
    return text;
}

#define expect(text, needle)                                                                  \
    do {                                                                                      \
        if (!strstr((text), (needle)))                                                        \
            fail_msg("expected \"%s\" in: %s", (needle), (text));                             \
    } while (0)

static void test_no_iommu(void **state)
{
    int ret;
    char *e = create(&ret, "bdf", "0000:01:00.0", NULL);

    (void)state;
    assert_true(ret < 0);
    expect(e, "d.conf:6: bdf: cannot assign 0000:01:00.0: no IOMMU in use on this host");
    free(e);
}

static void test_key_combinations(void **state)
{
    int ret;
    char *e;

    (void)state;
    make_host("../drivers/vfio-pci");
    e = create(&ret, "bdf", "0000:01:00.0", "pf", "0000:02:00.0", NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:6: bdf: give either bdf (a whole device) or pf and vf");
    free(e);
    e = create(&ret, "pf", "0000:02:00.0", NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:6: pf: pf and vf go together");
    free(e);
    e = create(&ret, NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:4: [passthrough] needs bdf = DOMAIN:BUS:DEV.FN");
    free(e);
    e = create(&ret, "bdf", "0000:01:00", NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:6: bdf: '0000:01:00' is not a PCI address");
    free(e);
}

static void test_missing_device_and_host_driver(void **state)
{
    int ret;
    char *e;

    (void)state;
    make_host("../drivers/vfio-pci");
    e = create(&ret, "bdf", "0000:05:00.0", NULL);
    assert_true(ret < 0);
    expect(e, "no PCI device 0000:05:00.0 on this host");
    free(e);
    link_to("sys/bus/pci/devices/0000:03:00.0/driver", "../drivers/nvme");
    link_to("sys/bus/pci/devices/0000:03:00.0/iommu_group", "../../kernel/iommu_groups/3");
    e = create(&ret, "bdf", "0000:03:00.0", NULL);
    assert_true(ret < 0);
    expect(e, "0000:03:00.0 is bound to nvme, not vfio-pci");
    free(e);
}

static void test_group_not_viable(void **state)
{
    int ret;
    char *e;

    (void)state;
    make_host("../drivers/nvme");
    e = create(&ret, "bdf", "0000:01:00.0", NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:6: bdf: cannot assign 0000:01:00.0: IOMMU group 7 is not viable: "
              "0000:01:00.1 (bound to nvme)");
    free(e);
}

static void test_numa(void **state)
{
    int ret;
    char *e;

    (void)state;
    make_host("../drivers/vfio-pci");
    put("sys/bus/pci/devices/0000:01:00.0/numa_node", "1\n");
    put("sys/devices/system/node/node0/cpulist", "0-4095\n");
    put("sys/devices/system/node/node1/cpulist", "\n");
    e = create(&ret, "bdf", "0000:01:00.0", "numa", "strict", NULL);
    assert_true(ret < 0);
    expect(e, "d.conf:7: numa: error: 0000:01:00.0 is on NUMA node 1");
    free(e);
    /* warn: said, then the assignment goes on (and fails here at /dev/vfio,
     * which this machine does not have for group 7). */
    e = create(&ret, "bdf", "0000:01:00.0", NULL);
    expect(e, "numa: warning: 0000:01:00.0 is on NUMA node 1");
    expect(e, "/dev/vfio/7");
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_iommu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_combinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_device_and_host_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_not_viable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numa, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
