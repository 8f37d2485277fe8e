/* Interrupt delivery through KVM: the GSI routing table (IOAPIC/PIC pins
 * plus MSI routes), irqfd, ioeventfd and direct line/MSI injection. Every
 * interrupt-related ioctl goes through here. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct irq_router;

struct irq_router *irq_router_create(int vm_fd);
void irq_router_destroy(struct irq_router *r);

/* Drives an IOAPIC/PIC input (GSI 0..23) to level. */
int irq_line_set(struct irq_router *r, uint32_t gsi, int level);
/* Pulses an edge-triggered line. */
int irq_line_pulse(struct irq_router *r, uint32_t gsi);

/* Allocates a GSI routed to the MSI (addr, data); returns it or -errno. */
int irq_msi_route_add(struct irq_router *r, uint64_t addr, uint32_t data);
/* Re-points an MSI route (e.g. the guest rewrote an MSI-X table entry). */
int irq_msi_route_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data);
int irq_msi_route_remove(struct irq_router *r, uint32_t gsi);
/* Injects one MSI without a route. */
int irq_msi_signal(struct irq_router *r, uint64_t addr, uint32_t data);

/* KVM raises gsi whenever fd is signalled. resample_fd >= 0 makes it a
 * level-triggered INTx irqfd, re-armed through resample_fd on EOI. */
int irq_irqfd_assign(struct irq_router *r, int fd, uint32_t gsi, int resample_fd);
int irq_irqfd_deassign(struct irq_router *r, int fd, uint32_t gsi);

/* KVM signals fd on a guest write to [addr, addr+len) (PIO when pio), with
 * no exit to userspace. With match, only writes of value datamatch. */
int irq_ioeventfd_assign(struct irq_router *r, uint64_t addr, uint32_t len, bool pio, int fd,
                         bool match, uint64_t datamatch);
int irq_ioeventfd_deassign(struct irq_router *r, uint64_t addr, uint32_t len, bool pio, int fd,
                           bool match, uint64_t datamatch);

#endif
