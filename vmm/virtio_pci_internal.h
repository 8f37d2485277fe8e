/* What virtio_pci.c (registers, negotiation, status) and virtio_pci_irq.c
 * (eventfds, ioeventfds, irqfds, MSI routes, INTx fallback) share. */
#ifndef VMM_VIRTIO_PCI_INTERNAL_H
#define VMM_VIRTIO_PCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "pci_msix.h"
#include "virtio.h"

struct virtio_pci;

struct vp_queue {
    struct virtio_pci *vp;       /* for the event loop's callback */
    uint16_t index;
    /* Registers, as the driver wrote them. */
    uint16_t size, max_size, msix_vector;
    bool enabled;
    uint64_t desc, driver, device;

    /* Kick: KVM signals kick_fd on a write to the queue's notify address
     * (ioeventfd), so a notify never exits to userspace. */
    int kick_fd;
    /* Call: the device signals call_fd; KVM injects the MSI-X vector
     * (irqfd on an MSI route), or, when the vector is off or masked or
     * MSI-X is off, the event loop reads call_fd and raises the vector's
     * pending bit or INTx. */
    int call_fd;
    int gsi;                     /* MSI route, -1 if none */
    uint64_t route_addr;
    uint32_t route_data;
    bool irqfd_on, watched;
};

struct virtio_pci {
    struct vm *vm;
    struct device *dev;
    struct virtio_device *vdev;
    struct pci_device pdev;
    struct pci_msix msix;
    bool msix_ready, plugged;

    /* Everything below; taken by vCPU threads (BAR access), the event loop
     * and config writes (which hold the PCI bus lock: so this lock never
     * calls into the PCI bus, pci_intx_set or pci_msix_notify). */
    pthread_mutex_t lock;
    uint16_t nq;
    uint64_t host_features, guest_features;
    uint32_t dfselect, gfselect;
    uint16_t msix_config, qsel;
    uint8_t status, generation, isr;
    bool started;
    struct vp_queue q[VIRTIO_MAX_QUEUES];
    uint8_t pcicfg_cap;          /* offset of the PCI_CFG capability */
    bool ioevt_on;
    uint64_t ioevt_at;           /* BAR address the ioeventfds sit on */
    bool warned_irq;
};

/* virtio_pci_irq.c; all with vp->lock held. */
int vp_irq_init(struct virtio_pci *vp);               /* the eventfds */
void vp_irq_fini(struct virtio_pci *vp);              /* unwire, ioeventfds, routes, eventfds */
void vp_ioeventfd_sync(struct virtio_pci *vp);        /* follow BAR placement */
void vp_wire_queues(struct virtio_pci *vp);           /* irqfd vs loop, per queue */
void vp_unwire_queues(struct virtio_pci *vp);
void vp_drain_eventfds(struct virtio_pci *vp);
void vp_msix_changed(void *opaque);                   /* pci_msix notifier; lock not held */
void vp_kick(struct virtio_pci *vp, uint16_t queue);  /* a trapped notify write */

/* Interrupts are raised with vp->lock released (see the lock comment). */
void vp_raise_config_irq(struct virtio_pci *vp);

#endif
