/* virtio-pci's eventfds: per queue a kick eventfd that KVM signals on a
 * guest notify (ioeventfd), and a call eventfd that the device signals and
 * KVM turns into the queue's MSI-X message (irqfd on an MSI route). When the
 * vector cannot be delivered (MSI-X off, vector or function masked, no
 * vector, no KVM) the event loop reads the call eventfd instead and raises
 * the pending bit or INTx with the ISR, so no interrupt is lost. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"
#include "eventloop.h"
#include "irq.h"
#include "virtio_pci_internal.h"
#include "vm.h"

static void drain(int fd)
{
    uint64_t v;

    if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing was pending */
    }
}

int vp_irq_init(struct virtio_pci *vp)
{
    for (unsigned i = 0; i < vp->nq; i++) {
        struct vp_queue *q = &vp->q[i];
        q->vp = vp;
        q->index = (uint16_t)i;
        q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (q->kick_fd < 0 || q->call_fd < 0) {
            fprintf(stderr, "vmm: virtio %s: eventfd: %s\n", vp->dev->id, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void warn_once(struct virtio_pci *vp, const char *what, int err)
{
    if (!vp->warned_irq)
        fprintf(stderr, "vmm: virtio %s: %s: %s (interrupts go through the event loop)\n",
                vp->dev->id, what, strerror(-err));
    vp->warned_irq = true;
}

static uint64_t notify_addr(uint64_t bar, unsigned q)
{
    return bar + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
}

static void ioevt_remove(struct virtio_pci *vp, uint64_t bar, unsigned upto)
{
    for (unsigned q = 0; q < upto; q++)
        irq_ioeventfd_deassign(vp->vm->irq, notify_addr(bar, q), 2, false, vp->q[q].kick_fd,
                               false, 0);
}

void vp_ioeventfd_sync(struct virtio_pci *vp)
{
    const struct pci_bar *b = &vp->pdev.bars[VIRTIO_PCI_BAR];
    bool want = vp->vm->irq && b->mapped;

    if (want == vp->ioevt_on && (!want || b->addr == vp->ioevt_at))
        return;
    if (vp->ioevt_on)
        ioevt_remove(vp, vp->ioevt_at, vp->nq);
    vp->ioevt_on = false;
    if (!want)
        return;
    /* Drivers write the 16-bit queue index; other widths trap and are
     * kicked by hand (vp_kick). */
    for (unsigned q = 0; q < vp->nq; q++) {
        int ret = irq_ioeventfd_assign(vp->vm->irq, notify_addr(b->addr, q), 2, false,
                                       vp->q[q].kick_fd, false, 0);
        if (ret < 0) {
            fprintf(stderr, "vmm: virtio %s: ioeventfd: %s (notifies will trap)\n", vp->dev->id,
                    strerror(-ret));
            ioevt_remove(vp, b->addr, q);
            return;
        }
    }
    vp->ioevt_on = true;
    vp->ioevt_at = b->addr;
}

void vp_kick(struct virtio_pci *vp, uint16_t queue)
{
    uint64_t one = 1;

    if (queue < vp->nq && write(vp->q[queue].kick_fd, &one, sizeof(one)) < 0) {
        /* the counter is saturated: the device has a kick pending anyway */
    }
}

/* The device signalled a queue whose vector KVM cannot deliver. */
static void on_call(void *opaque, uint32_t events)
{
    struct vp_queue *q = opaque;
    struct virtio_pci *vp = q->vp;
    uint16_t vector;
    bool started, intx = false;
    uint64_t v;

    (void)events;
    if (read(q->call_fd, &v, sizeof(v)) != sizeof(v))
        return;
    pthread_mutex_lock(&vp->lock);
    started = vp->started;
    vector = q->msix_vector;
    if (started && !pci_msix_enabled(&vp->msix)) {
        vp->isr |= 1;
        intx = true;
    }
    pthread_mutex_unlock(&vp->lock);
    if (!started)
        return;
    if (intx)
        pci_intx_set(&vp->pdev, true);
    else if (vector != VIRTIO_PCI_NO_VECTOR)
        pci_msix_notify(&vp->msix, vector);   /* pending bit if masked */
}

static void watch(struct virtio_pci *vp, struct vp_queue *q, bool on)
{
    if (on == q->watched || !vp->vm->loop)
        return;
    if (on)
        q->watched = eventloop_add_fd(vp->vm->loop, q->call_fd, EPOLLIN, on_call, q) == 0;
    else {
        eventloop_del_fd(vp->vm->loop, q->call_fd);
        q->watched = false;
    }
}

static void irqfd(struct virtio_pci *vp, struct vp_queue *q, bool on)
{
    if (on == q->irqfd_on)
        return;
    if (on) {
        int ret = irq_irqfd_assign(vp->vm->irq, q->call_fd, (uint32_t)q->gsi, -1);
        if (ret < 0)
            warn_once(vp, "irqfd", ret);
        q->irqfd_on = ret == 0;
    } else {
        irq_irqfd_deassign(vp->vm->irq, q->call_fd, (uint32_t)q->gsi);
        q->irqfd_on = false;
    }
}

/* Points q's MSI route at the vector's message; false if KVM cannot take it. */
static bool route(struct virtio_pci *vp, struct vp_queue *q, uint64_t addr, uint32_t data)
{
    int ret;

    if (q->gsi < 0) {
        ret = irq_msi_route_add(vp->vm->irq, addr, data);
        if (ret < 0) {
            warn_once(vp, "MSI route", ret);
            return false;
        }
        q->gsi = ret;
    } else if (q->route_addr != addr || q->route_data != data) {
        ret = irq_msi_route_update(vp->vm->irq, (uint32_t)q->gsi, addr, data);
        if (ret < 0) {
            warn_once(vp, "MSI route update", ret);
            return false;
        }
    }
    q->route_addr = addr;
    q->route_data = data;
    return true;
}

static void wire_one(struct virtio_pci *vp, struct vp_queue *q)
{
    uint64_t addr = 0;
    uint32_t data = 0;
    bool direct = vp->vm->irq && q->msix_vector != VIRTIO_PCI_NO_VECTOR &&
                  pci_msix_vector_message(&vp->msix, q->msix_vector, &addr, &data);

    if (direct && !route(vp, q, addr, data))
        direct = false;
    if (direct) {
        irqfd(vp, q, true);
        direct = q->irqfd_on;
    } else {
        irqfd(vp, q, false);
    }
    /* Irqfd first, then stop watching: a signal in between is taken by one
     * of the two, never by none. */
    watch(vp, q, !direct);
}

void vp_wire_queues(struct virtio_pci *vp)
{
    for (unsigned i = 0; i < vp->nq; i++) {
        if (vp->started && vp->q[i].enabled)
            wire_one(vp, &vp->q[i]);
        else {
            irqfd(vp, &vp->q[i], false);
            watch(vp, &vp->q[i], false);
        }
    }
}

void vp_unwire_queues(struct virtio_pci *vp)
{
    for (unsigned i = 0; i < vp->nq; i++) {
        irqfd(vp, &vp->q[i], false);
        watch(vp, &vp->q[i], false);
    }
}

void vp_drain_eventfds(struct virtio_pci *vp)
{
    for (unsigned i = 0; i < vp->nq; i++) {
        drain(vp->q[i].kick_fd);
        drain(vp->q[i].call_fd);
    }
}

void vp_msix_changed(void *opaque)
{
    struct virtio_pci *vp = opaque;

    pthread_mutex_lock(&vp->lock);
    if (vp->started)
        vp_wire_queues(vp);
    pthread_mutex_unlock(&vp->lock);
}

void vp_raise_config_irq(struct virtio_pci *vp)
{
    uint16_t vector;
    bool msix = pci_msix_enabled(&vp->msix);

    pthread_mutex_lock(&vp->lock);
    vp->isr |= 2;
    vector = vp->msix_config;
    pthread_mutex_unlock(&vp->lock);
    if (!msix)
        pci_intx_set(&vp->pdev, true);
    else if (vector != VIRTIO_PCI_NO_VECTOR)
        pci_msix_notify(&vp->msix, vector);
}

void vp_irq_fini(struct virtio_pci *vp)
{
    vp_unwire_queues(vp);
    if (vp->ioevt_on)
        ioevt_remove(vp, vp->ioevt_at, vp->nq);
    vp->ioevt_on = false;
    for (unsigned i = 0; i < vp->nq; i++) {
        struct vp_queue *q = &vp->q[i];
        if (q->gsi >= 0 && vp->vm->irq)
            irq_msi_route_remove(vp->vm->irq, (uint32_t)q->gsi);
        q->gsi = -1;
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        if (q->call_fd >= 0)
            close(q->call_fd);
        q->kick_fd = q->call_fd = -1;
    }
}
