#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "irq.h"
#include "layout.h"

#define MAX_ROUTES 1024

/* KVM_SET_GSI_ROUTING replaces the whole table, so the router keeps the
 * default IOAPIC/PIC entries alongside the MSI routes it hands out. */
struct irq_router {
    int vm_fd;
    pthread_mutex_t lock;
    struct kvm_irq_routing *table;   /* MAX_ROUTES entries of room */
    uint32_t next_gsi;
};

static int router_commit(struct irq_router *r)
{
    if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0) {
        int err = errno;
        fprintf(stderr, "vmm: KVM_SET_GSI_ROUTING: %s\n", strerror(err));
        return -err;
    }
    return 0;
}

static void add_irqchip(struct irq_router *r, uint32_t gsi, uint32_t chip, uint32_t pin)
{
    struct kvm_irq_routing_entry *e = &r->table->entries[r->table->nr++];

    *e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
    e->u.irqchip.irqchip = chip;
    e->u.irqchip.pin = pin;
}

struct irq_router *irq_router_create(int vm_fd)
{
    struct irq_router *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->table = calloc(1, sizeof(*r->table) + MAX_ROUTES * sizeof(r->table->entries[0]));
    if (!r->table) {
        free(r);
        return NULL;
    }
    r->vm_fd = vm_fd;
    pthread_mutex_init(&r->lock, NULL);
    /* IOAPIC pins only: the platform is HW-reduced ACPI and describes no
     * 8259, so nothing should ever be delivered through KVM's PIC. GSI 0 (the
     * in-kernel PIT) goes to pin 2, as the MADT's IRQ0 override says; pin 2
     * has no GSI of its own, as on a PC. */
    for (uint32_t gsi = 0; gsi < LAYOUT_IOAPIC_PINS; gsi++) {
        if (gsi != 2)
            add_irqchip(r, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
    }
    r->next_gsi = LAYOUT_GSI_MSI_FIRST;
    return r;
}

void irq_router_destroy(struct irq_router *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->table);
    free(r);
}

int irq_line_set(struct irq_router *r, uint32_t gsi, int level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

    return ioctl(r->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int irq_line_pulse(struct irq_router *r, uint32_t gsi)
{
    int ret = irq_line_set(r, gsi, 1);

    return ret ? ret : irq_line_set(r, gsi, 0);
}

static struct kvm_irq_routing_entry *find_msi(struct irq_router *r, uint32_t gsi)
{
    for (uint32_t i = 0; i < r->table->nr; i++)
        if (r->table->entries[i].gsi == gsi && r->table->entries[i].type == KVM_IRQ_ROUTING_MSI)
            return &r->table->entries[i];
    return NULL;
}

int irq_msi_route_add(struct irq_router *r, uint64_t addr, uint32_t data)
{
    struct kvm_irq_routing_entry *e;
    int ret;

    pthread_mutex_lock(&r->lock);
    if (r->table->nr >= MAX_ROUTES) {
        pthread_mutex_unlock(&r->lock);
        return -ENOSPC;
    }
    e = &r->table->entries[r->table->nr++];
    *e = (struct kvm_irq_routing_entry){ .gsi = r->next_gsi, .type = KVM_IRQ_ROUTING_MSI };
    e->u.msi.address_lo = (uint32_t)addr;
    e->u.msi.address_hi = (uint32_t)(addr >> 32);
    e->u.msi.data = data;
    ret = router_commit(r);
    if (ret)
        r->table->nr--;
    else
        ret = (int)r->next_gsi++;
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int irq_msi_route_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
    struct kvm_irq_routing_entry *e;
    int ret = -ENOENT;

    pthread_mutex_lock(&r->lock);
    e = find_msi(r, gsi);
    if (e) {
        e->u.msi.address_lo = (uint32_t)addr;
        e->u.msi.address_hi = (uint32_t)(addr >> 32);
        e->u.msi.data = data;
        ret = router_commit(r);
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int irq_msi_route_remove(struct irq_router *r, uint32_t gsi)
{
    struct kvm_irq_routing_entry *e;
    int ret = -ENOENT;

    pthread_mutex_lock(&r->lock);
    e = find_msi(r, gsi);
    if (e) {
        *e = r->table->entries[--r->table->nr];
        ret = router_commit(r);
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int irq_msi_signal(struct irq_router *r, uint64_t addr, uint32_t data)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data,
    };

    return ioctl(r->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

int irq_irqfd_assign(struct irq_router *r, int fd, uint32_t gsi, int resample_fd)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

    if (resample_fd >= 0) {
        irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
        irqfd.resamplefd = (uint32_t)resample_fd;
    }
    return ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int irq_irqfd_deassign(struct irq_router *r, int fd, uint32_t gsi)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };

    return ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int ioeventfd(struct irq_router *r, uint64_t addr, uint32_t len, bool pio, int fd,
                     bool match, uint64_t datamatch, bool deassign)
{
    struct kvm_ioeventfd ev = {
        .datamatch = datamatch, .addr = addr, .len = len, .fd = fd,
        .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
                 (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
                 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
    };

    return ioctl(r->vm_fd, KVM_IOEVENTFD, &ev) < 0 ? -errno : 0;
}

int irq_ioeventfd_assign(struct irq_router *r, uint64_t addr, uint32_t len, bool pio, int fd,
                         bool match, uint64_t datamatch)
{
    return ioeventfd(r, addr, len, pio, fd, match, datamatch, false);
}

int irq_ioeventfd_deassign(struct irq_router *r, uint64_t addr, uint32_t len, bool pio, int fd,
                           bool match, uint64_t datamatch)
{
    return ioeventfd(r, addr, len, pio, fd, match, datamatch, true);
}
