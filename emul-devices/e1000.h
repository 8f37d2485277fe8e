/* Intel 82540EM gigabit Ethernet controller (PCI 8086:100e), the "e1000"
 * that Linux's e1000 driver runs unmodified: register file in BAR0 (and
 * through BAR1's IOADDR/IODATA window), microwire EEPROM, M88E1011 PHY over
 * MDIC, legacy RX descriptors with filtering and checksum offload, legacy and
 * extended TX descriptors with checksum offload and TSO, statistics, INTx.
 *
 * Threading: register accesses come from vCPU threads; frames move to and
 * from the host backend only in e1000_service and e1000_rx_ready, which the
 * owner calls on its event-loop thread. The model asks for a service call
 * through host.kick. One mutex guards the state. */
#ifndef EMUL_E1000_H
#define EMUL_E1000_H

#include <stdbool.h>
#include <stdint.h>

struct device;
struct guest_mem;
struct net_backend;
struct pci_bus;
struct pci_device;
struct e1000;

struct e1000_host {
    const char *name;               /* for messages: the device id */
    struct guest_mem *mem;          /* every DMA address is checked against it */
    struct net_backend *backend;    /* not owned */
    /* Must make the event loop call e1000_service soon; called with the
     * model's lock held, so it must not call back into the model. */
    void (*kick)(void *opaque);
    void *kick_opaque;
};

/* NULL on allocation failure. dev receives the access and IRQ counts. */
struct e1000 *e1000_create(const uint8_t mac[6], const struct e1000_host *host,
                           struct device *dev);
/* Puts the NIC on the bus (slot < 0: first free). 0 or -errno. */
int e1000_attach(struct e1000 *e, struct pci_bus *bus, int slot);
void e1000_destroy(struct e1000 *e);

struct pci_device *e1000_pci(struct e1000 *e);

/* Event-loop thread: transmit what the guest queued, resume a stalled
 * receiver. */
void e1000_service(struct e1000 *e);
/* Event-loop thread: the backend has frames waiting. */
void e1000_rx_ready(struct e1000 *e);

#endif
