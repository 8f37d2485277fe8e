#include <stdio.h>
#include <string.h>

#include "device.h"
#include "frontend.h"
#include "virtio.h"
#include "vm.h"
#include "vu_device.h"

int vu_device_attach(struct vm *vm, struct device *dev, struct virtio_pci *vp,
                     struct vu_frontend *fe, const char *id)
{
    int ret;

    vm_add_device(vm, dev);
    if ((ret = virtio_pci_plug(vp)) < 0) {
        fprintf(stderr, "vmm: virtio %s: no room on the PCI bus: %s\n", id, strerror(-ret));
        return -1;
    }
    if ((ret = vu_frontend_watch(fe, vm->loop)) < 0) {
        fprintf(stderr, "vmm: virtio %s: cannot watch the backend socket: %s\n", id,
                strerror(-ret));
        return -1;
    }
    return 0;
}
