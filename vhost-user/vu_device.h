/* What every vhost-user device class (block, net) does last when it is
 * created: hand the device to the VM, put its virtio-pci function on the
 * bus, and watch the backend's socket so a backend that dies or restarts is
 * reconnected to without the guest noticing. */
#ifndef VHOST_USER_VU_DEVICE_H
#define VHOST_USER_VU_DEVICE_H

struct device;
struct virtio_pci;
struct vm;
struct vu_frontend;

/* From this call on the VM owns dev (vm_destroy tears it down, also when
 * this fails). 0, or -1 having said why. */
int vu_device_attach(struct vm *vm, struct device *dev, struct virtio_pci *vp,
                     struct vu_frontend *fe, const char *id);

#endif
