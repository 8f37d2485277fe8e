/* MSI-X for emulated PCI devices: the capability in config space, the
 * vector table and pending-bit array inside one of the device's BARs,
 * masking, and delivery through KVM. */
#ifndef VMM_PCI_MSIX_H
#define VMM_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct pci_device;
struct irq_router;

#define PCI_MSIX_MAX_VECTORS 2048

struct pci_msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl;   /* ctrl bit 0: masked */
};

struct pci_msix {
    struct pci_device *pdev;
    struct irq_router *irq;
    pthread_mutex_t lock;
    uint16_t nvec;
    uint8_t cap;                 /* capability offset in config space */
    int bar;                     /* the BAR holding table and PBA */
    uint32_t table_offset, pba_offset;
    struct pci_msix_entry *table;
    uint64_t *pba;
    void (*changed)(void *opaque);   /* see pci_msix_set_notifier */
    void *changed_opaque;
};

/* Adds the capability to pdev (before pci_device_add) with nvec vectors, the
 * table at table_offset and the PBA at pba_offset of BAR bar (both 8-byte
 * aligned, the BAR large enough). Vectors start masked, as the spec says.
 * 0 or -errno. */
int pci_msix_init(struct pci_msix *m, struct pci_device *pdev, struct irq_router *irq,
                  uint16_t nvec, int bar, uint32_t table_offset, uint32_t pba_offset);
void pci_msix_destroy(struct pci_msix *m);

/* The PCI layer calls these two itself for a device whose pdev->msix is set
 * (pci_msix_init sets it): devices never see table, PBA or capability
 * accesses. bar_access returns true if the access fell on the table or the
 * PBA; config_written delivers what unmasking released. */
bool pci_msix_bar_access(struct pci_msix *m, int bar, uint64_t offset, void *data, uint32_t len,
                         bool is_write);
void pci_msix_config_written(struct pci_msix *m, uint32_t offset, uint32_t len);

/* MSI-X enabled by the guest (the device should not use INTx then). */
bool pci_msix_enabled(struct pci_msix *m);
/* fn(opaque) runs after every guest write that may change what a vector
 * delivers (a table entry, the enable or function-mask bits), outside the
 * MSI-X lock, so that a device which hands vectors to KVM (irqfd) can
 * re-point its routes. Set before the device is visible. */
void pci_msix_set_notifier(struct pci_msix *m, void (*fn)(void *opaque), void *opaque);
/* True if vector would be delivered now (MSI-X on, neither the function
 * nor the entry masked), with the message it would send. */
bool pci_msix_vector_message(struct pci_msix *m, uint16_t vector, uint64_t *addr,
                             uint32_t *data);

/* Raises vector: delivered now, or left pending while masked. Vectors out of
 * range are ignored. Safe from any thread. */
void pci_msix_notify(struct pci_msix *m, uint16_t vector);

#endif
