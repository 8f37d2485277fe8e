/* The PCI(e) host bridge: configuration mechanism #1 (ports 0xcf8/0xcfc),
 * ECAM (MMIO), and the config space, BARs and INTx of the devices on bus 0.
 * Emulated, virtio and VFIO devices all sit on this layer. */
#ifndef VMM_PCI_H
#define VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "iobus.h"

struct vm;
struct device;
struct pci_device;
struct pci_msix;
struct guest_mem;

#define PCI_CFG_SPACE_SIZE  4096
#define PCI_NUM_BARS        6
#define PCI_SLOTS           32

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_dev_ops {
    /* Access to a BAR the guest has enabled; offset is inside the BAR. */
    void (*bar_io)(struct pci_device *pdev, int bar, uint64_t offset, void *data, uint32_t len,
                   bool is_write);
    /* After a guest config write was applied (through the write mask) to
     * [offset, offset+len): lets the device react (MSI-X enable, ...). */
    void (*config_written)(struct pci_device *pdev, uint32_t offset, uint32_t len);
};

struct pci_bar {
    enum pci_bar_type type;
    uint64_t size;               /* power of two; 0 = unused */
    uint64_t addr;               /* where the guest placed it */
    bool mapped;                 /* registered on the PIO/MMIO bus */
    bool prefetchable;
    struct pci_device *pdev;
    int index;
};

struct pci_device {
    struct device *dev;          /* common header: id, stats */
    const struct pci_dev_ops *ops;
    void *opaque;
    uint8_t slot;
    uint8_t config[PCI_CFG_SPACE_SIZE];
    uint8_t wmask[PCI_CFG_SPACE_SIZE];   /* bits the guest may change */
    struct pci_bar bars[PCI_NUM_BARS];
    struct pci_bus *bus;
    uint16_t cap_end;            /* where the next capability goes (0: none yet) */
    struct pci_msix *msix;       /* set by pci_msix_init: the bus routes table/PBA
                                    accesses and capability writes to it */
    bool intx_level;             /* what the device drives on its INTx pin */
};

/* Creates the bus with its host bridge at 00:00.0 and claims the config
 * ports and the ECAM window. NULL on failure. */
struct pci_bus *pci_bus_create(struct vm *vm, struct device *host_bridge_dev);
void pci_bus_destroy(struct pci_bus *bus);

/* Fills the header of pdev (ids, class) before pci_device_add. */
void pci_device_init(struct pci_device *pdev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint16_t subsys_vendor, uint16_t subsys_id);
/* Declares BAR bar of size bytes (a power of two, >= 16 for memory, >= 4 for I/O). */
void pci_device_set_bar(struct pci_device *pdev, int bar, enum pci_bar_type type, uint64_t size,
                        bool prefetchable);
/* Puts pdev in a free slot (or slot if >= 0) and places its BARs in the
 * windows. 0 or -errno. */
int pci_device_add(struct pci_bus *bus, struct pci_device *pdev, int slot);

/* Appends a capability of size bytes (id and next pointer filled in) to the
 * list in config space; returns its offset, or 0 if the space is full. Call
 * before pci_device_add. */
uint8_t pci_add_capability(struct pci_device *pdev, uint8_t id, uint8_t size);

/* Drives the device's INTx pin (pin set in config[0x3d] before add). The
 * line follows level unless the guest set Interrupt Disable; the status
 * register's interrupt bit follows level. */
void pci_intx_set(struct pci_device *pdev, bool level);

/* Bus mastering on: the guest lets the device reach its memory. */
bool pci_bus_master(const struct pci_device *pdev);
/* [gpa, gpa+len) of guest RAM as pdev may reach it by DMA: NULL unless bus
 * mastering is on and the whole range is RAM. Every emulated device's DMA
 * goes through here, so a device the guest has quiesced (Linux clears bus
 * mastering when it unbinds a driver) cannot scribble over guest memory
 * whatever its registers say. pdev NULL (a model unit-tested without a
 * bus): the RAM check alone. */
void *pci_dma_ptr(const struct pci_device *pdev, const struct guest_mem *mem, uint64_t gpa,
                  uint64_t len);

/* GSI of the INTx pin (1 = INTA .. 4 = INTD) of slot, as the DSDT's _PRT says. */
uint32_t pci_intx_gsi(unsigned slot, unsigned pin);

/* Config space access by bus/devfn and register (mechanism #1 and ECAM end here). */
void pci_config_access(struct pci_bus *bus, uint8_t busno, uint8_t devfn, uint32_t reg, void *data,
                       uint32_t len, bool is_write);

#endif
