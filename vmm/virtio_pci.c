/* virtio-pci, modern (virtio 1.x) only: the PCI function, its vendor
 * capabilities, and the registers of the common, ISR, device and notify
 * regions of BAR4; feature negotiation and device status. Everything the
 * guest writes is hostile: an access that does not hit a register exactly
 * (offset and width) is dropped, reads of anything else return zeroes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "iobus.h"
#include "virtio_pci_internal.h"
#include "vm.h"

#define VIRTIO_PCI_VENDOR    0x1af4
#define VIRTIO_PCI_DEVICE    0x1040      /* + device id: modern-only function */
#define PCI_CAP_ID_VNDR      0x09
#define PCI_REVISION         0x08
#define PCI_INTERRUPT_PIN    0x3d

enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI_CFG = 5 };

/* Bits a driver may not have even when the device offers them: legacy-only
 * bits, and what this transport cannot carry (no IOMMU, no notification
 * data, no per-queue reset, split rings only). */
#define UNSUPPORTED_FEATURES                                                                   \
    ((1ULL << 24) | (1ULL << 27) | (1ULL << 30) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |         \
     (1ULL << VIRTIO_F_RING_PACKED) | (1ULL << VIRTIO_F_SR_IOV) |                              \
     (1ULL << VIRTIO_F_NOTIFICATION_DATA) | (1ULL << VIRTIO_F_RING_RESET))

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static struct vp_queue *selected(struct virtio_pci *vp)
{
    return vp->qsel < vp->nq ? &vp->q[vp->qsel] : NULL;
}

/* --- device status -------------------------------------------------------- */

/* Back to the state after power-on. Lock held. */
static void reset_locked(struct virtio_pci *vp)
{
    if (vp->started)
        vp->vdev->ops->stop(vp->vdev);
    vp->started = false;
    vp_unwire_queues(vp);
    vp_drain_eventfds(vp);
    vp->guest_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->msix_config = VIRTIO_PCI_NO_VECTOR;
    vp->qsel = 0;
    vp->status = 0;
    vp->isr = 0;
    for (unsigned i = 0; i < vp->nq; i++) {
        struct vp_queue *q = &vp->q[i];
        q->size = q->max_size;
        q->msix_vector = VIRTIO_PCI_NO_VECTOR;
        q->enabled = false;
        q->desc = q->driver = q->device = 0;
    }
}

/* DRIVER_OK: hands the enabled queues to the device. Lock held. */
static void start_locked(struct virtio_pci *vp)
{
    struct virtio_queue_setup setup[VIRTIO_MAX_QUEUES];
    unsigned n = 0;
    int ret;

    for (unsigned i = 0; i < vp->nq; i++) {
        struct vp_queue *q = &vp->q[i];
        if (!q->enabled || !q->size)
            continue;
        setup[n++] = (struct virtio_queue_setup){
            .index = (uint16_t)i, .size = q->size, .desc = q->desc, .driver = q->driver,
            .device = q->device, .kick_fd = q->kick_fd, .call_fd = q->call_fd,
        };
    }
    /* Interrupts are wired before the device may use them. */
    vp->started = true;
    vp_wire_queues(vp);
    ret = vp->vdev->ops->start(vp->vdev, vp->guest_features, setup, n);
    if (ret < 0) {
        fprintf(stderr, "vmm: virtio %s: the device did not start: %s; it needs a reset\n",
                vp->dev->id, strerror(-ret));
        vp->started = false;
        vp_unwire_queues(vp);
        vp->status |= VIRTIO_STATUS_NEEDS_RESET;
    }
}

/* Returns true if a config interrupt is due (NEEDS_RESET). Lock held. */
static bool write_status(struct virtio_pci *vp, uint8_t val)
{
    uint8_t old = vp->status;

    if (val == 0) {
        reset_locked(vp);
        return false;
    }
    if (old & VIRTIO_STATUS_NEEDS_RESET)
        val |= VIRTIO_STATUS_NEEDS_RESET;   /* only a reset clears it */
    /* FEATURES_OK holds only if the driver took nothing we did not offer. */
    if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t g = vp->guest_features;
        if ((g & ~vp->host_features) || !(g & (1ULL << VIRTIO_F_VERSION_1)))
            val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    if (!(val & VIRTIO_STATUS_FEATURES_OK))
        val &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;   /* no DRIVER_OK without FEATURES_OK */
    vp->status = val;
    if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
        !(val & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET))) {
        start_locked(vp);
        return (vp->status & VIRTIO_STATUS_NEEDS_RESET) != 0;
    }
    return false;
}

/* --- common configuration ------------------------------------------------- */

/* The whole structure as the driver would read it now. Lock held. */
static void common_image(struct virtio_pci *vp, uint8_t img[VIRTIO_PCI_COMMON_LEN])
{
    struct vp_queue *q = selected(vp);

    memset(img, 0, VIRTIO_PCI_COMMON_LEN);
    put_le(img + VIRTIO_PCI_DFSELECT, vp->dfselect, 4);
    put_le(img + VIRTIO_PCI_DF, vp->dfselect < 2 ? vp->host_features >> (32 * vp->dfselect) : 0,
           4);
    put_le(img + VIRTIO_PCI_GFSELECT, vp->gfselect, 4);
    put_le(img + VIRTIO_PCI_GF,
           vp->gfselect < 2 ? vp->guest_features >> (32 * vp->gfselect) : 0, 4);
    put_le(img + VIRTIO_PCI_MSIX_CONFIG, vp->msix_config, 2);
    put_le(img + VIRTIO_PCI_NUM_QUEUES, vp->nq, 2);
    img[VIRTIO_PCI_STATUS] = vp->status;
    img[VIRTIO_PCI_CFG_GENERATION] = vp->generation;
    put_le(img + VIRTIO_PCI_Q_SELECT, vp->qsel, 2);
    if (!q)
        return;   /* a queue that does not exist reads as size 0 */
    put_le(img + VIRTIO_PCI_Q_SIZE, q->size, 2);
    put_le(img + VIRTIO_PCI_Q_MSIX, q->msix_vector, 2);
    put_le(img + VIRTIO_PCI_Q_ENABLE, q->enabled, 2);
    put_le(img + VIRTIO_PCI_Q_NOFF, vp->qsel, 2);
    put_le(img + VIRTIO_PCI_Q_DESC, q->desc, 8);
    put_le(img + VIRTIO_PCI_Q_DRIVER, q->driver, 8);
    put_le(img + VIRTIO_PCI_Q_DEVICE, q->device, 8);
}

/* A 64-bit register written whole or by 32-bit halves. */
static bool write64(uint64_t *reg, uint32_t base, uint32_t off, uint32_t len, uint64_t v)
{
    if (off == base && len == 8)
        *reg = v;
    else if (off == base && len == 4)
        *reg = (*reg & 0xffffffff00000000ULL) | (uint32_t)v;
    else if (off == base + 4 && len == 4)
        *reg = (*reg & 0xffffffffULL) | v << 32;
    else
        return false;
    return true;
}

/* Queue registers are frozen once the device runs (the driver must reset
 * first); a bad value is dropped and the register keeps its last one. */
static void write_queue_reg(struct virtio_pci *vp, uint32_t off, uint32_t len, uint64_t v)
{
    struct vp_queue *q = selected(vp);

    if (!q || (vp->status & VIRTIO_STATUS_DRIVER_OK))
        return;
    if (off == VIRTIO_PCI_Q_SIZE && len == 2) {
        if (v && v <= q->max_size && !(v & (v - 1)))
            q->size = (uint16_t)v;
    } else if (off == VIRTIO_PCI_Q_MSIX && len == 2) {
        q->msix_vector = v < vp->msix.nvec ? (uint16_t)v : VIRTIO_PCI_NO_VECTOR;
    } else if (off == VIRTIO_PCI_Q_ENABLE && len == 2) {
        if (v == 1)
            q->enabled = true;   /* 0 is not for the driver to write */
    } else if (!write64(&q->desc, VIRTIO_PCI_Q_DESC, off, len, v) &&
               !write64(&q->driver, VIRTIO_PCI_Q_DRIVER, off, len, v)) {
        write64(&q->device, VIRTIO_PCI_Q_DEVICE, off, len, v);
    }
}

/* Returns true if a config interrupt is due. Lock held. */
static bool common_write(struct virtio_pci *vp, uint32_t off, uint32_t len, uint64_t v)
{
    switch (off) {
    case VIRTIO_PCI_DFSELECT:
        if (len == 4)
            vp->dfselect = (uint32_t)v;
        return false;
    case VIRTIO_PCI_GFSELECT:
        if (len == 4)
            vp->gfselect = (uint32_t)v;
        return false;
    case VIRTIO_PCI_GF:
        /* Features are fixed once FEATURES_OK was accepted. */
        if (len == 4 && vp->gfselect < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * vp->gfselect;
            vp->guest_features = (vp->guest_features & ~(0xffffffffULL << shift)) |
                                 (uint64_t)(uint32_t)v << shift;
        }
        return false;
    case VIRTIO_PCI_MSIX_CONFIG:
        if (len == 2)
            vp->msix_config = v < vp->msix.nvec ? (uint16_t)v : VIRTIO_PCI_NO_VECTOR;
        return false;
    case VIRTIO_PCI_STATUS:
        return len == 1 && write_status(vp, (uint8_t)v);
    case VIRTIO_PCI_Q_SELECT:
        if (len == 2)
            vp->qsel = (uint16_t)v;
        return false;
    default:
        write_queue_reg(vp, off, len, v);
        return false;
    }
}

/* --- the BAR -------------------------------------------------------------- */

static bool inside(uint64_t off, uint32_t len, uint64_t base, uint64_t size)
{
    return off >= base && off - base < size && len <= size - (off - base);
}

static void bar_access(struct virtio_pci *vp, uint64_t off, void *data, uint32_t len,
                       bool is_write)
{
    uint64_t v = is_write ? get_le(data, len) : 0;
    bool config_irq = false, lower_intx = false;
    uint32_t dev_size;

    if (!is_write)
        memset(data, 0, len);
    if (len == 0 || len > 8)
        return;
    pthread_mutex_lock(&vp->lock);
    dev_size = vp->vdev->ops->config_size ? vp->vdev->ops->config_size(vp->vdev) : 0;
    if (dev_size > VIRTIO_PCI_DEVICE_MAX)
        dev_size = VIRTIO_PCI_DEVICE_MAX;
    if (inside(off, len, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN)) {
        uint32_t rel = (uint32_t)(off - VIRTIO_PCI_COMMON_OFF);
        if (is_write) {
            config_irq = common_write(vp, rel, len, v);
            lower_intx = vp->status == 0;   /* a reset clears the ISR */
        } else {
            uint8_t img[VIRTIO_PCI_COMMON_LEN];
            common_image(vp, img);
            memcpy(data, img + rel, len);
        }
    } else if (off == VIRTIO_PCI_ISR_OFF && !is_write) {
        /* Reading the ISR acknowledges it. */
        *(uint8_t *)data = vp->isr;
        lower_intx = vp->isr != 0;
        vp->isr = 0;
    } else if (inside(off, len, VIRTIO_PCI_DEVICE_OFF, dev_size)) {
        uint32_t rel = (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF);
        if (is_write && vp->vdev->ops->config_write)
            vp->vdev->ops->config_write(vp->vdev, rel, data, len);
        else if (!is_write && vp->vdev->ops->config_read)
            vp->vdev->ops->config_read(vp->vdev, rel, data, len);
    } else if (is_write && inside(off, len, VIRTIO_PCI_NOTIFY_OFF,
                                  (uint64_t)vp->nq * VIRTIO_PCI_NOTIFY_MULT)) {
        /* Only notifies KVM did not catch (no ioeventfd, odd width) get here. */
        vp_kick(vp, (uint16_t)((off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT));
    }
    pthread_mutex_unlock(&vp->lock);
    if (lower_intx)
        pci_intx_set(&vp->pdev, false);
    if (config_irq)
        vp_raise_config_irq(vp);
}

static void vp_bar_io(struct pci_device *pdev, int bar, uint64_t offset, void *data, uint32_t len,
                      bool is_write)
{
    if (bar != VIRTIO_PCI_BAR) {
        if (!is_write)
            memset(data, 0, len);
        return;
    }
    bar_access(pdev->opaque, offset, data, len, is_write);
}

/* The PCI_CFG capability: a window into the BAR through config space, for
 * firmware that has not mapped the BAR. This runs with the PCI bus lock
 * held, so it reaches only what cannot raise or lower an interrupt: common
 * config reads, device config and notifies. Lock not held. */
static void pcicfg_access(struct virtio_pci *vp, bool is_write)
{
    uint8_t *cap = &vp->pdev.config[vp->pcicfg_cap];
    uint32_t off = (uint32_t)get_le(cap + 8, 4), len = (uint32_t)get_le(cap + 12, 4);
    bool device_region = inside(off, len, VIRTIO_PCI_DEVICE_OFF, VIRTIO_PCI_DEVICE_MAX) ||
                         inside(off, len, VIRTIO_PCI_NOTIFY_OFF, 0x1000);
    uint8_t buf[4] = { 0 };

    if (cap[4] != VIRTIO_PCI_BAR || (len != 1 && len != 2 && len != 4))
        return;
    if (is_write) {
        if (device_region)
            bar_access(vp, off, cap + 16, len, true);
        return;
    }
    if (device_region || inside(off, len, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN))
        bar_access(vp, off, buf, len, false);
    memcpy(cap + 16, buf, 4);
}

static void vp_config_written(struct pci_device *pdev, uint32_t offset, uint32_t len)
{
    struct virtio_pci *vp = pdev->opaque;
    uint32_t c = vp->pcicfg_cap;

    pthread_mutex_lock(&vp->lock);
    vp_ioeventfd_sync(vp);
    pthread_mutex_unlock(&vp->lock);
    if (offset < c + 20u && offset + len > c + 16u)
        pcicfg_access(vp, true);
    else if (offset < c + 16u && offset + len > c + 4u)
        pcicfg_access(vp, false);   /* new window: show what it holds */
}

static const struct pci_dev_ops virtio_pci_ops = {
    .bar_io = vp_bar_io,
    .config_written = vp_config_written,
};

/* --- hooks from the device ------------------------------------------------ */

static void hook_config_changed(void *transport)
{
    struct virtio_pci *vp = transport;

    pthread_mutex_lock(&vp->lock);
    vp->generation++;
    pthread_mutex_unlock(&vp->lock);
    vp_raise_config_irq(vp);
}

static void hook_needs_reset(void *transport)
{
    struct virtio_pci *vp = transport;
    bool raise;

    pthread_mutex_lock(&vp->lock);
    raise = (vp->status & VIRTIO_STATUS_DRIVER_OK) != 0;
    if (raise)
        vp->status |= VIRTIO_STATUS_NEEDS_RESET;
    pthread_mutex_unlock(&vp->lock);
    if (raise)
        vp_raise_config_irq(vp);
}

static const struct virtio_transport_hooks vp_hooks = {
    .config_changed = hook_config_changed,
    .needs_reset = hook_needs_reset,
};

/* --- creation ------------------------------------------------------------- */

static void add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
                    uint8_t size)
{
    uint8_t at = pci_add_capability(&vp->pdev, PCI_CAP_ID_VNDR, size);
    uint8_t *c = &vp->pdev.config[at];

    if (!at)
        return;
    c[2] = size;
    c[3] = type;
    c[4] = VIRTIO_PCI_BAR;
    put_le(c + 8, off, 4);
    put_le(c + 12, len, 4);
    if (type == CAP_NOTIFY)
        put_le(c + 16, VIRTIO_PCI_NOTIFY_MULT, 4);
    if (type == CAP_PCI_CFG) {
        c[4] = 0;
        put_le(c + 8, 0, 4);
        put_le(c + 12, 0, 4);
        vp->pdev.wmask[at + 4] = 0xff;
        memset(&vp->pdev.wmask[at + 8], 0xff, 12);   /* offset, length, data */
        vp->pcicfg_cap = at;
    }
}

struct virtio_pci *virtio_pci_create(struct vm *vm, struct device *dev,
                                     struct virtio_device *vdev,
                                     const struct virtio_pci_params *params)
{
    const struct virtio_device_ops *ops = vdev->ops;
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    uint16_t nq = ops->num_queues(vdev);
    uint32_t dev_size = ops->config_size ? ops->config_size(vdev) : 0;
    int ret;

    if (!vp)
        return NULL;
    if (nq == 0 || nq > VIRTIO_MAX_QUEUES || dev_size > VIRTIO_PCI_DEVICE_MAX) {
        fprintf(stderr, "vmm: virtio %s: %u queues / %u config bytes are beyond the transport\n",
                dev->id, nq, dev_size);
        free(vp);
        return NULL;
    }
    pthread_mutex_init(&vp->lock, NULL);
    vp->vm = vm;
    vp->dev = dev;
    vp->vdev = vdev;
    vp->nq = nq;
    vp->host_features = (ops->features(vdev) & ~UNSUPPORTED_FEATURES) |
                        1ULL << VIRTIO_F_VERSION_1;
    for (unsigned i = 0; i < nq; i++) {
        uint16_t max = ops->queue_max_size(vdev, (uint16_t)i);
        /* A maximum that is no power of two is rounded down to one. */
        while (max & (max - 1))
            max &= (uint16_t)(max - 1);
        vp->q[i].max_size = max ? max : 1;
        vp->q[i].kick_fd = vp->q[i].call_fd = -1;
        vp->q[i].gsi = -1;
    }
    vdev->hooks = &vp_hooks;
    vdev->transport = vp;

    pci_device_init(&vp->pdev, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE + ops->device_id),
                    params->class_code, VIRTIO_PCI_VENDOR, params->subsys_id);
    vp->pdev.config[PCI_REVISION] = 1;   /* modern device */
    vp->pdev.config[PCI_INTERRUPT_PIN] = 1;
    vp->pdev.dev = dev;
    vp->pdev.ops = &virtio_pci_ops;
    vp->pdev.opaque = vp;
    pci_device_set_bar(&vp->pdev, VIRTIO_PCI_BAR, PCI_BAR_MEM64, VIRTIO_PCI_BAR_SIZE, false);
    /* One vector per queue and one for config changes. */
    ret = pci_msix_init(&vp->msix, &vp->pdev, vm->irq, (uint16_t)(nq + 1), VIRTIO_PCI_BAR,
                        VIRTIO_PCI_MSIX_TABLE, VIRTIO_PCI_MSIX_PBA);
    if (ret < 0) {
        fprintf(stderr, "vmm: virtio %s: MSI-X: %s\n", dev->id, strerror(-ret));
        goto fail;
    }
    vp->msix_ready = true;
    pci_msix_set_notifier(&vp->msix, vp_msix_changed, vp);
    add_cap(vp, CAP_COMMON, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 16);
    add_cap(vp, CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF, (uint32_t)nq * VIRTIO_PCI_NOTIFY_MULT, 20);
    add_cap(vp, CAP_ISR, VIRTIO_PCI_ISR_OFF, 4, 16);
    if (dev_size)
        add_cap(vp, CAP_DEVICE, VIRTIO_PCI_DEVICE_OFF, dev_size, 16);
    add_cap(vp, CAP_PCI_CFG, 0, 0, 20);
    if (!vp->pcicfg_cap) {
        fprintf(stderr, "vmm: virtio %s: no room for the capabilities\n", dev->id);
        goto fail;
    }
    if (vp_irq_init(vp) < 0)
        goto fail;
    pthread_mutex_lock(&vp->lock);
    reset_locked(vp);
    pthread_mutex_unlock(&vp->lock);
    return vp;
fail:
    virtio_pci_destroy(vp);
    return NULL;
}

int virtio_pci_plug(struct virtio_pci *vp)
{
    int ret = pci_device_add(vp->vm->pci, &vp->pdev, -1);

    if (ret == 0)
        vp->plugged = true;
    return ret;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    if (!vp)
        return;
    struct pci_bar *b = &vp->pdev.bars[VIRTIO_PCI_BAR];
    pthread_mutex_lock(&vp->lock);
    if (vp->started)
        vp->vdev->ops->stop(vp->vdev);
    vp->started = false;
    vp_irq_fini(vp);
    pthread_mutex_unlock(&vp->lock);
    if (vp->plugged && b->mapped)
        iobus_unregister(&vp->vm->mmio, b->addr);
    if (vp->msix_ready)
        pci_msix_destroy(&vp->msix);
    pthread_mutex_destroy(&vp->lock);
    free(vp);
}

struct pci_device *virtio_pci_pdev(struct virtio_pci *vp)
{
    return &vp->pdev;
}
