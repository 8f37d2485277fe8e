/* What the files of the VFIO PCI device share; not for use outside vfio/.
 *
 * vfio_pci.c     create / plug / destroy, the BARs and their memory slots
 * vfio_config.c  the virtual config space and its permission table
 * vfio_irq.c     INTx, MSI and MSI-X through eventfds and irqfd */
#ifndef VFIO_PCI_INTERNAL_H
#define VFIO_PCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "pci_msix.h"
#include "vfio.h"

#define VFIO_MAX_CAPS       16
#define VFIO_BAR_MAX_SLOTS  3     /* a BAR cut around the MSI-X table and PBA pages */
#define VFIO_PAGE           4096ULL

struct vfio_cap_perm;

/* A capability as the guest sees it, and where it lives on the device. */
struct vfio_vcap {
    uint8_t id;
    uint8_t voff, poff, len;
    const struct vfio_cap_perm *perm;
};

struct vfio_bar {
    uint64_t region_off, size;   /* size 0: no BAR */
    uint32_t flags;              /* VFIO_REGION_INFO_FLAG_* */
    void *map;                   /* whole-region mmap, NULL if not mmap-able */
    uint64_t slotted_at;         /* guest address of the slots, 0: none */
    unsigned n_slots;
    struct { uint32_t slot; uint64_t off, size; } slots[VFIO_BAR_MAX_SLOTS];
};

enum vfio_irq_mode { VFIO_IRQ_NONE, VFIO_IRQ_INTX, VFIO_IRQ_MSI, VFIO_IRQ_MSIX };

struct vfio_vector {
    int fd;                      /* the eventfd VFIO signals */
    int gsi;                     /* MSI route, -1 until needed */
    uint64_t addr;
    uint32_t data;
    bool irqfd;
};

struct vfio_pci_dev {
    char *name;
    struct vm *vm;
    struct vfio_dev_io io;
    struct pci_device pdev;
    struct pci_msix msix;
    bool has_msix, msix_ready, plugged, can_reset;
    uint64_t cfg_off;            /* config region offset in the device file */
    uint8_t phys[256];           /* the device's config space as read at start */
    uint8_t wthrough[256];       /* bits of the virtual config written to the device */
    struct vfio_vcap caps[VFIO_MAX_CAPS];
    unsigned n_caps;
    struct vfio_bar bars[PCI_NUM_BARS];
    bool slot_warned, access_warned;

    /* Interrupts: lock order bus lock -> irq_lock. */
    pthread_mutex_t irq_lock;
    enum vfio_irq_mode mode;
    bool intx_available, irq_warned;
    int intx_fd, intx_resample_fd;
    bool intx_irqfd;
    uint8_t msi_cap;             /* offset of our emulated MSI capability, 0: none */
    struct vfio_vector msi;
    struct vfio_vector *msix_vec;
    uint16_t msix_nvec;
};

/* vfio_config.c */
int vfio_config_build(struct vfio_pci_dev *v);
void vfio_config_written(struct pci_device *pdev, uint32_t offset, uint32_t len);
/* Guest-visible offset -> device offset of a config byte; -1 if virtual only. */
int vfio_config_phys_offset(const struct vfio_pci_dev *v, unsigned voff);

/* vfio_pci.c */
void vfio_bars_sync_slots(struct vfio_pci_dev *v, bool remove_only);

/* vfio_irq.c */
int vfio_irq_init(struct vfio_pci_dev *v);
void vfio_irq_start(struct vfio_pci_dev *v);
/* Puts VFIO's interrupt mode and the irqfds where the virtual MSI-X / MSI
 * state says. Safe from any thread. */
void vfio_irq_sync(void *opaque);
void vfio_irq_stop(struct vfio_pci_dev *v);
void vfio_irq_destroy(struct vfio_pci_dev *v);

#endif
