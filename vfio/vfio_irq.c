/* Interrupts of an assigned function. VFIO signals an eventfd per vector;
 * KVM turns each into the guest's interrupt (irqfd), so no interrupt passes
 * through the VMM. MSI-X and MSI messages are what the guest wrote into our
 * emulated table / capability, as KVM MSI routes; a masked vector has its
 * irqfd detached (the eventfd keeps counting, and KVM delivers what is
 * pending when it is attached again). INTx is a level-triggered irqfd with
 * a resample eventfd that unmasks the line in VFIO after the guest's EOI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "irq.h"
#include "vfio_pci_internal.h"
#include "vm.h"

static struct irq_router *router(struct vfio_pci_dev *v)
{
    return v->vm ? v->vm->irq : NULL;
}

static void warn_once(struct vfio_pci_dev *v, const char *what, int err)
{
    if (!v->irq_warned)
        fprintf(stderr, "vmm: %s: %s: %s\n", v->name, what, strerror(-err));
    v->irq_warned = true;
}

/* VFIO_DEVICE_SET_IRQS with count eventfds (fds NULL: DATA_NONE). */
static int set_irqs(struct vfio_pci_dev *v, uint32_t index, uint32_t action, const int *fds,
                    uint32_t count)
{
    size_t sz = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
    struct vfio_irq_set *s = calloc(1, sz);
    int ret;

    if (!s)
        return -ENOMEM;
    s->argsz = (uint32_t)sz;
    s->flags = action | (fds ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
    s->index = index;
    s->start = 0;
    s->count = count;
    if (fds)
        memcpy(s->data, fds, count * sizeof(int32_t));
    ret = v->io.ops->set_irqs(v->io.opaque, s);
    free(s);
    return ret;
}

static int new_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int vfio_irq_init(struct vfio_pci_dev *v)
{
    if (v->intx_available) {
        if ((v->intx_fd = new_eventfd()) < 0 || (v->intx_resample_fd = new_eventfd()) < 0)
            return -errno;
    }
    if (v->msi_cap && (v->msi.fd = new_eventfd()) < 0)
        return -errno;
    if (v->has_msix) {
        v->msix_vec = calloc(v->msix_nvec, sizeof(*v->msix_vec));
        if (!v->msix_vec)
            return -ENOMEM;
        for (unsigned i = 0; i < v->msix_nvec; i++)
            v->msix_vec[i].fd = v->msix_vec[i].gsi = -1;
        for (unsigned i = 0; i < v->msix_nvec; i++)
            if ((v->msix_vec[i].fd = new_eventfd()) < 0)
                return v->msix_vec[i].fd;
    }
    return 0;
}

/* Attaches or detaches vec's irqfd; an attached one routes (addr, data). */
static void vector_set(struct vfio_pci_dev *v, struct vfio_vector *vec, bool on, uint64_t addr,
                       uint32_t data)
{
    struct irq_router *r = router(v);
    int ret;

    if (!r)
        return;
    if (!on) {
        if (vec->irqfd)
            irq_irqfd_deassign(r, vec->fd, (uint32_t)vec->gsi);
        vec->irqfd = false;
        return;
    }
    if (vec->gsi < 0) {
        if ((ret = irq_msi_route_add(r, addr, data)) < 0) {
            warn_once(v, "MSI route", ret);
            return;
        }
        vec->gsi = ret;
    } else if (vec->addr != addr || vec->data != data) {
        if ((ret = irq_msi_route_update(r, (uint32_t)vec->gsi, addr, data)) < 0)
            warn_once(v, "MSI route update", ret);
    }
    vec->addr = addr;
    vec->data = data;
    if (!vec->irqfd) {
        ret = irq_irqfd_assign(r, vec->fd, (uint32_t)vec->gsi, -1);
        if (ret < 0)
            warn_once(v, "irqfd", ret);
        vec->irqfd = ret == 0;
    }
}

static void intx_irqfd(struct vfio_pci_dev *v, bool on)
{
    struct irq_router *r = router(v);
    uint32_t gsi = pci_intx_gsi(v->pdev.slot, v->pdev.config[0x3d]);
    int ret;

    if (!r || on == v->intx_irqfd)
        return;
    if (on) {
        ret = irq_irqfd_assign(r, v->intx_fd, gsi, v->intx_resample_fd);
        if (ret < 0)
            warn_once(v, "INTx irqfd", ret);
        v->intx_irqfd = ret == 0;
    } else {
        irq_irqfd_deassign(r, v->intx_fd, gsi);
        v->intx_irqfd = false;
    }
}

/* Leaves the current mode: irqfds detached, VFIO's interrupts off. */
static void mode_leave(struct vfio_pci_dev *v)
{
    switch (v->mode) {
    case VFIO_IRQ_INTX:
        intx_irqfd(v, false);
        set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, NULL, 0);
        break;
    case VFIO_IRQ_MSI:
        vector_set(v, &v->msi, false, 0, 0);
        set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, NULL, 0);
        break;
    case VFIO_IRQ_MSIX:
        for (unsigned i = 0; i < v->msix_nvec; i++)
            vector_set(v, &v->msix_vec[i], false, 0, 0);
        set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, NULL, 0);
        break;
    case VFIO_IRQ_NONE:
        break;
    }
    v->mode = VFIO_IRQ_NONE;
}

static int mode_enter(struct vfio_pci_dev *v, enum vfio_irq_mode mode)
{
    int ret = 0;

    if (mode == VFIO_IRQ_INTX) {
        ret = set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, &v->intx_fd, 1);
        if (ret == 0)
            ret = set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK,
                           &v->intx_resample_fd, 1);
        if (ret == 0)
            intx_irqfd(v, true);
    } else if (mode == VFIO_IRQ_MSI) {
        ret = set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, &v->msi.fd, 1);
    } else if (mode == VFIO_IRQ_MSIX) {
        /* All vectors at once: this kernel cannot grow an enabled MSI-X set. */
        int *fds = calloc(v->msix_nvec, sizeof(int));
        if (!fds)
            return -ENOMEM;
        for (unsigned i = 0; i < v->msix_nvec; i++)
            fds[i] = v->msix_vec[i].fd;
        ret = set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, fds,
                       v->msix_nvec);
        free(fds);
    }
    if (ret < 0) {
        warn_once(v, mode == VFIO_IRQ_MSIX ? "enabling MSI-X on the device"
                     : mode == VFIO_IRQ_MSI ? "enabling MSI on the device"
                                            : "enabling INTx on the device", ret);
        return ret;
    }
    v->mode = mode;
    return 0;
}

static enum vfio_irq_mode wanted_mode(struct vfio_pci_dev *v)
{
    if (v->has_msix && pci_msix_enabled(&v->msix))
        return VFIO_IRQ_MSIX;
    if (v->msi_cap && (v->pdev.config[v->msi_cap + 2] & 1))
        return VFIO_IRQ_MSI;
    return v->intx_available && v->plugged ? VFIO_IRQ_INTX : VFIO_IRQ_NONE;
}

void vfio_irq_sync(void *opaque)
{
    struct vfio_pci_dev *v = opaque;
    enum vfio_irq_mode want;

    pthread_mutex_lock(&v->irq_lock);
    want = wanted_mode(v);
    if (want != v->mode) {
        mode_leave(v);
        if (want != VFIO_IRQ_NONE && mode_enter(v, want) < 0 && want != VFIO_IRQ_INTX &&
            v->intx_available && v->plugged)
            mode_enter(v, VFIO_IRQ_INTX);
    }
    if (v->mode == VFIO_IRQ_MSIX) {
        for (uint16_t i = 0; i < v->msix_nvec; i++) {
            uint64_t addr;
            uint32_t data;
            bool on = pci_msix_vector_message(&v->msix, i, &addr, &data);
            vector_set(v, &v->msix_vec[i], on, addr, data);
        }
    } else if (v->mode == VFIO_IRQ_MSI) {
        const uint8_t *c = &v->pdev.config[v->msi_cap];
        uint64_t addr = (uint64_t)(c[4] | c[5] << 8 | c[6] << 16 | (uint32_t)c[7] << 24) |
                        (uint64_t)(c[8] | c[9] << 8 | c[10] << 16 | (uint32_t)c[11] << 24) << 32;
        uint32_t data = (uint32_t)(c[12] | c[13] << 8);
        vector_set(v, &v->msi, true, addr, data);
    }
    pthread_mutex_unlock(&v->irq_lock);
}

void vfio_irq_start(struct vfio_pci_dev *v)
{
    vfio_irq_sync(v);
}

void vfio_irq_stop(struct vfio_pci_dev *v)
{
    pthread_mutex_lock(&v->irq_lock);
    mode_leave(v);
    pthread_mutex_unlock(&v->irq_lock);
}

static void vector_free(struct vfio_pci_dev *v, struct vfio_vector *vec)
{
    if (vec->gsi >= 0 && router(v))
        irq_msi_route_remove(router(v), (uint32_t)vec->gsi);
    if (vec->fd >= 0)
        close(vec->fd);
    vec->fd = vec->gsi = -1;
}

void vfio_irq_destroy(struct vfio_pci_dev *v)
{
    if (v->msix_vec) {
        for (unsigned i = 0; i < v->msix_nvec; i++)
            vector_free(v, &v->msix_vec[i]);
        free(v->msix_vec);
        v->msix_vec = NULL;
    }
    vector_free(v, &v->msi);
    if (v->intx_fd >= 0)
        close(v->intx_fd);
    if (v->intx_resample_fd >= 0)
        close(v->intx_resample_fd);
    v->intx_fd = v->intx_resample_fd = -1;
}
