/* The glue between a device file's [passthrough] section and an assigned
 * function: which function (a whole device by its address, or a VF of an
 * SR-IOV PF), the checks that refuse a doomed assignment before the guest
 * boots, and the VFIO PCI device on our bus. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "iommu.h"
#include "passthrough_device.h"
#include "sriov.h"
#include "vfio.h"
#include "vm.h"

static const char *const numa_modes[] = { "warn", "strict", NULL };

const struct cfg_key passthrough_device_keys[] = {
    { .name = "bdf", .type = CFG_STRING,
      .expected = "the PCI address of a whole device to assign, e.g. 0000:01:00.0" },
    { .name = "pf", .type = CFG_STRING,
      .expected = "the PCI address of an SR-IOV physical function, with vf" },
    { .name = "vf", .type = CFG_UINT, .min = 0, .max = 255,
      .expected = "the index of a virtual function of pf, from 0" },
    { .name = "numa", .type = CFG_ENUM, .default_value = "warn", .choices = numa_modes,
      .expected = "warn or strict: what a device on another NUMA node than the VM does" },
    { .name = NULL },
};

struct pt_device {
    struct device dev;               /* first: teardown casts */
    struct vm *vm;
    char *id;
    char bdf[13];
    const char *key;                 /* "bdf" or "pf": where errors point */
    struct sriov_vf_lease *lease;    /* pf + vf: the VF the VMM prepared */
    struct vfio_host_dev host;
    bool host_open;
    struct vfio_pci_dev *vdev;
};

static void pt_teardown(struct device *dev)
{
    struct pt_device *d = (struct pt_device *)dev;

    vfio_pci_destroy(d->vdev);
    if (d->host_open)
        vfio_host_close(&d->host);
    /* After VFIO let go of it: the VF goes back to how it was found. */
    sriov_vf_release(d->lease);
    free(d->id);
    free(d);
}

static const struct device_ops pt_ops = { .teardown = pt_teardown };

/* Which function: bdf, or pf + vf (then the VF is created, provisioned and
 * bound to vfio-pci here). Fills d->bdf. */
static int pick_function(struct pt_device *d, const struct device_config *dc)
{
    const char *bdf = device_config_get(dc, "bdf"), *pf = device_config_get(dc, "pf");
    const char *vf = device_config_get(dc, "vf");
    char pf_bdf[13], err[512];

    d->key = bdf ? "bdf" : "pf";
    if (bdf && (pf || vf)) {
        device_config_key_error(dc, "bdf", "give either bdf (a whole device) or pf and vf (a virtual function), "
                  "not both");
        return -1;
    }
    if (!bdf && !pf && !vf) {
        device_config_key_error(dc, NULL, "[passthrough] needs bdf = DOMAIN:BUS:DEV.FN (a whole device) or "
                  "pf = DOMAIN:BUS:DEV.FN with vf = N");
        return -1;
    }
    if (bdf) {
        if (iommu_parse_bdf(bdf, d->bdf) < 0) {
            device_config_key_error(dc, "bdf", "'%s' is not a PCI address (expected DOMAIN:BUS:DEV.FN in hex, "
                      "e.g. 0000:01:00.0)", bdf);
            return -1;
        }
        return 0;
    }
    if (!pf || !vf) {
        device_config_key_error(dc, pf ? "pf" : "vf", "pf and vf go together (a VF index of a PF)");
        return -1;
    }
    if (iommu_parse_bdf(pf, pf_bdf) < 0) {
        device_config_key_error(dc, "pf", "'%s' is not a PCI address (expected DOMAIN:BUS:DEV.FN in hex, "
                  "e.g. 0000:01:00.0)", pf);
        return -1;
    }
    d->lease = sriov_vf_acquire(pf_bdf, (unsigned)device_config_get_uint(dc, "vf"), d->bdf, err,
                                sizeof(err));
    if (!d->lease) {
        device_config_key_error(dc, "vf", "cannot prepare VF %s of %s: %s", vf, pf_bdf, err);
        return -1;
    }
    fprintf(stderr, "vmm: %s: VF %s of %s is %s, bound to vfio-pci\n", d->id, vf, pf_bdf, d->bdf);
    return 0;
}

static int check_iommu(const struct device_config *dc)
{
    struct iommu_host_info info;
    char err[512];

    iommu_host_probe(iommu_sysfs_root(), &info);
    if (iommu_host_check(&info, err, sizeof(err)) < 0) {
        const char *key = device_config_get(dc, "bdf") ? "bdf" : "pf";
        device_config_key_error(dc, key, "cannot assign %s: %s", device_config_get(dc, key) ?
                  device_config_get(dc, key) : "a device", err);
        return -1;
    }
    return 0;
}

/* Everything that would make VFIO fail later, said with its cause. */
static int check_host(struct pt_device *d, const struct device_config *dc, int *group)
{
    const char *root = iommu_sysfs_root();
    char err[1024], driver[64];
    int node;
    uint64_t nodes;

    *group = iommu_device_group(root, d->bdf);
    if (*group == -ENOENT) {
        device_config_key_error(dc, d->key, "no PCI device %s on this host (see /sys/bus/pci/devices)", d->bdf);
        return -1;
    }
    if (*group < 0) {
        device_config_key_error(dc, d->key, "%s is in no IOMMU group: no IOMMU translates its DMA", d->bdf);
        return -1;
    }
    if (iommu_device_driver(root, d->bdf, driver, sizeof(driver)) < 0 ||
        strcmp(driver, "vfio-pci") != 0) {
        device_config_key_error(dc, d->key, "%s is bound to %s, not vfio-pci (echo vfio-pci > "
                  "/sys/bus/pci/devices/%s/driver_override; unbind it; echo %s > "
                  "/sys/bus/pci/drivers_probe)", d->bdf, driver[0] ? driver : "no driver",
                  d->bdf, d->bdf);
        return -1;
    }
    if (iommu_group_check_viable(root, *group, err, sizeof(err)) < 0) {
        device_config_key_error(dc, d->key, "cannot assign %s: %s", d->bdf, err);
        return -1;
    }
    node = iommu_device_numa_node(root, d->bdf);
    nodes = iommu_current_numa_nodes(root);
    if (node >= 0 && nodes && !(nodes & (1ULL << node))) {
        bool strict = strcmp(device_config_get(dc, "numa"), "strict") == 0;
        device_config_key_error(dc, "numa", "%s: %s is on NUMA node %d, the VM's vCPUs may run on nodes 0x%llx "
                  "only: its DMA and interrupts cross nodes%s", strict ? "error" : "warning",
                  d->bdf, node, (unsigned long long)nodes,
                  strict ? " (numa = strict)" : " (numa = strict makes this an error)");
        if (strict)
            return -1;
    }
    return 0;
}

int passthrough_device_create(struct vm *vm, const struct device_config *dc)
{
    struct pt_device *d = calloc(1, sizeof(*d));
    struct vfio_dev_io io;
    char err[512];
    int group, ret;

    if (!d || !(d->id = strdup(dc->id))) {
        free(d);
        return -ENOMEM;
    }
    d->vm = vm;
    d->dev = (struct device){ .id = d->id, .class_name = dev_class_name(dc->cls),
                              .path_name = "passthrough", .model = "vfio-pci", .ops = &pt_ops };
    /* The IOMMU first: without one, no VF is worth creating. */
    if (check_iommu(dc) < 0 || pick_function(d, dc) < 0 || check_host(d, dc, &group) < 0) {
        ret = -EINVAL;
        goto fail;
    }
    if ((ret = vfio_host_open(&d->host, vm, group, d->bdf, err, sizeof(err))) < 0) {
        device_config_key_error(dc, d->key, "cannot assign %s: %s", d->bdf, err);
        goto fail;
    }
    d->host_open = true;
    io = (struct vfio_dev_io){ .ops = &vfio_dev_io_kernel, .opaque = &d->host.kdev };
    if ((ret = vfio_pci_create(&d->vdev, d->id, vm, &d->dev, &io)) < 0)
        goto fail;
    /* From here the VM owns d: vm_destroy tears it down. */
    vm_add_device(vm, &d->dev);
    if ((ret = vfio_pci_plug(d->vdev, vm->pci)) < 0) {
        fprintf(stderr, "vmm: %s: no room on the PCI bus: %s\n", d->id, strerror(-ret));
        return ret;
    }
    fprintf(stderr, "vmm: %s: %s assigned through VFIO (IOMMU group %d)\n", d->id, d->bdf, group);
    return 0;
fail:
    pt_teardown(&d->dev);
    return ret;
}
