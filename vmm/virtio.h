/* The line between a virtio device class (block, net, ...) and the transport
 * that shows it to the guest (virtio-pci). A device implements the const
 * virtio_device_ops and never learns which transport drives it; the
 * transport owns everything guest-visible: registers, feature negotiation,
 * device status, queue setup, kick and call eventfds and interrupts. */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct device;

/* Virtio 1.x feature bits the transport itself cares about. */
#define VIRTIO_F_INDIRECT_DESC    28
#define VIRTIO_F_EVENT_IDX        29
#define VIRTIO_F_VERSION_1        32
#define VIRTIO_F_ACCESS_PLATFORM  33
#define VIRTIO_F_RING_PACKED      34
#define VIRTIO_F_IN_ORDER         35
#define VIRTIO_F_ORDER_PLATFORM   36
#define VIRTIO_F_SR_IOV           37
#define VIRTIO_F_NOTIFICATION_DATA 38
#define VIRTIO_F_RING_RESET       40

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_ID_NET    1
#define VIRTIO_ID_BLOCK  2

#define VIRTIO_MAX_QUEUES 64

/* One queue as the driver set it up, handed to the device at start. */
struct virtio_queue_setup {
    uint16_t index;
    uint16_t size;               /* power of two, <= the device's maximum */
    uint64_t desc, driver, device;   /* guest-physical: descriptor table, avail, used */
    int kick_fd;                 /* eventfd signalled on each guest notify */
    int call_fd;                 /* eventfd the device signals to interrupt the guest */
};

struct virtio_device;

struct virtio_device_ops {
    uint32_t device_id;          /* VIRTIO_ID_* */
    /* Features offered (device class bits and ring bits such as EVENT_IDX);
     * the transport adds VERSION_1 and drops what it cannot carry. */
    uint64_t (*features)(struct virtio_device *vdev);
    uint16_t (*num_queues)(struct virtio_device *vdev);
    uint16_t (*queue_max_size)(struct virtio_device *vdev, uint16_t queue);
    /* Device-specific config space: size in bytes, and byte-range access
     * within it (the transport has bounded offset + len by config_size). */
    uint32_t (*config_size)(struct virtio_device *vdev);
    void (*config_read)(struct virtio_device *vdev, uint32_t offset, void *data, uint32_t len);
    void (*config_write)(struct virtio_device *vdev, uint32_t offset, const void *data,
                         uint32_t len);
    /* DRIVER_OK: run with the negotiated features and the enabled queues.
     * 0, or -errno (the transport then sets NEEDS_RESET). */
    int (*start)(struct virtio_device *vdev, uint64_t features,
                 const struct virtio_queue_setup *queues, unsigned n_queues);
    /* The driver reset the device (status 0) or the VM is going away: stop
     * using the rings and the eventfds of the last start. Called only after
     * a successful start. */
    void (*stop)(struct virtio_device *vdev);
};

/* Ways back from a device to whatever transport drives it. */
struct virtio_transport_hooks {
    /* The device config space changed (config_generation moves, the guest
     * gets a config interrupt). */
    void (*config_changed)(void *transport);
    /* The device cannot go on without a reset (NEEDS_RESET). */
    void (*needs_reset)(void *transport);
};

struct virtio_device {
    const struct virtio_device_ops *ops;
    void *opaque;                /* the device class's own state */
    /* Filled in by the transport. */
    const struct virtio_transport_hooks *hooks;
    void *transport;
};

static inline void virtio_device_config_changed(struct virtio_device *vdev)
{
    if (vdev->hooks && vdev->hooks->config_changed)
        vdev->hooks->config_changed(vdev->transport);
}

static inline void virtio_device_needs_reset(struct virtio_device *vdev)
{
    if (vdev->hooks && vdev->hooks->needs_reset)
        vdev->hooks->needs_reset(vdev->transport);
}

/* --- the virtio-pci transport (virtio_pci.c) ---------------------------- */

struct virtio_pci;
struct pci_device;

struct virtio_pci_params {
    uint32_t class_code;         /* e.g. 0x010000 for a block device */
    uint16_t subsys_id;          /* PCI subsystem id (vendor is 0x1af4) */
};

/* Builds a modern (1.x only) virtio-pci function for vdev: capabilities,
 * one 64-bit memory BAR with the common, notify, ISR and device regions and
 * the MSI-X table, one vector per queue plus one for config changes. dev is
 * the common device header (stats). The function is not on the bus yet:
 * virtio_pci_plug puts it there. NULL on failure, having said why. */
struct virtio_pci *virtio_pci_create(struct vm *vm, struct device *dev,
                                     struct virtio_device *vdev,
                                     const struct virtio_pci_params *params);
/* Adds the function to vm->pci. 0 or -errno. */
int virtio_pci_plug(struct virtio_pci *vp);
/* Stops the device if it runs, removes every ioeventfd, irqfd and route,
 * closes the eventfds and frees vp. The VM's vCPUs must be stopped. */
void virtio_pci_destroy(struct virtio_pci *vp);

/* For tests: the PCI function (BAR access through pdev->ops->bar_io). */
struct pci_device *virtio_pci_pdev(struct virtio_pci *vp);

/* BAR layout, fixed offsets (exposed for tests). */
#define VIRTIO_PCI_BAR            4
#define VIRTIO_PCI_BAR_SIZE       0x8000
#define VIRTIO_PCI_COMMON_OFF     0x0000
#define VIRTIO_PCI_COMMON_LEN     0x0038
#define VIRTIO_PCI_ISR_OFF        0x1000
#define VIRTIO_PCI_DEVICE_OFF     0x2000
#define VIRTIO_PCI_DEVICE_MAX     0x1000
#define VIRTIO_PCI_NOTIFY_OFF     0x3000
#define VIRTIO_PCI_NOTIFY_MULT    4
#define VIRTIO_PCI_MSIX_TABLE     0x4000
#define VIRTIO_PCI_MSIX_PBA       0x6000

/* Common configuration registers (virtio 1.2, 4.1.4.3). */
#define VIRTIO_PCI_DFSELECT       0x00
#define VIRTIO_PCI_DF             0x04
#define VIRTIO_PCI_GFSELECT       0x08
#define VIRTIO_PCI_GF             0x0c
#define VIRTIO_PCI_MSIX_CONFIG    0x10
#define VIRTIO_PCI_NUM_QUEUES     0x12
#define VIRTIO_PCI_STATUS         0x14
#define VIRTIO_PCI_CFG_GENERATION 0x15
#define VIRTIO_PCI_Q_SELECT       0x16
#define VIRTIO_PCI_Q_SIZE         0x18
#define VIRTIO_PCI_Q_MSIX         0x1a
#define VIRTIO_PCI_Q_ENABLE       0x1c
#define VIRTIO_PCI_Q_NOFF         0x1e
#define VIRTIO_PCI_Q_DESC         0x20
#define VIRTIO_PCI_Q_DRIVER       0x28
#define VIRTIO_PCI_Q_DEVICE       0x30
#define VIRTIO_PCI_NO_VECTOR      0xffff

#endif
