#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "blk_backend.h"
#include "device.h"
#include "eventloop.h"
#include "irq.h"
#include "nvme.h"
#include "nvme_device.h"
#include "pci.h"
#include "pci_msix.h"
#include "vm.h"

static const char *const nvme_models[] = { "nvme", NULL };

const struct cfg_key nvme_device_keys[] = {
    { .name = "model", .type = CFG_ENUM, .required = true, .choices = nvme_models,
      .expected = "nvme" },
    { .name = "file", .type = CFG_PATH, .required = true,
      .expected = "a disk image: a regular file or a block device" },
    { .name = "size", .type = CFG_SIZE, .min = 512, .max = 1ULL << 50, .multiple_of = 512,
      .expected = "the disk size, a multiple of 512 bytes (a shorter file is extended)" },
    { .name = "read-only", .type = CFG_BOOL, .default_value = "off",
      .expected = "on or off" },
    { .name = "serial", .type = CFG_STRING,
      .expected = "up to 20 printable ASCII characters (default: the device id)" },
    { .name = "shadow-doorbells", .type = CFG_BOOL, .default_value = "on",
      .expected = "on or off: offer Doorbell Buffer Config (fewer exits)" },
    { .name = NULL },
};

/* PCI identity: Red Hat's id for an emulated NVMe controller, under which
 * Linux applies only NVME_QUIRK_BOGUS_NID (it ignores the namespace
 * identifiers), which costs nothing here. */
#define NVME_PCI_VENDOR      0x1b36
#define NVME_PCI_DEVICE      0x0010
#define NVME_PCI_CLASS       0x010802   /* mass storage, NVM, NVMe */
#define NVME_PCI_SUBSYS_VEN  0x1af4
#define NVME_PCI_SUBSYS_ID   0x1100

struct nvme_device {
    struct device dev;           /* first: nvme_device_ctrl casts */
    struct vm *vm;
    struct pci_device pdev;
    struct pci_msix msix;
    struct nvme_ctrl ctrl;
    struct blk_backend *blk;     /* until the controller owns it */
    bool msix_ready, ctrl_ready, watch_kick, watch_io;
    char *id, *path;

    /* Submission doorbells of I/O queues on ioeventfds, while shadow
     * doorbells are on and BAR0 is mapped. Config writes (under the PCI bus
     * lock) and the controller (under its lock) both come here, so this has
     * its own lock, taken last. */
    pthread_mutex_t ioevt_lock;
    bool ioevt_wanted, bar_mapped, ioevt_warned;
    uint64_t bar_addr, ioevt_at;
};

static uint64_t sq_doorbell(uint64_t bar, unsigned qid)
{
    return bar + NVME_REG_DBS + 8ULL * qid;
}

static void ioevt_deassign(struct nvme_device *d, uint64_t bar, unsigned upto)
{
    for (unsigned q = 1; q < upto; q++)
        irq_ioeventfd_deassign(d->vm->irq, sq_doorbell(bar, q), 4, false, d->ctrl.kick_fd, false,
                               0);
}

/* Puts the ioeventfds where the shadow state and BAR0 say. ioevt_lock held. */
static void ioevt_sync(struct nvme_device *d)
{
    uint64_t want = d->ioevt_wanted && d->bar_mapped && d->vm->irq ? d->bar_addr : 0;

    if (want == d->ioevt_at)
        return;
    if (d->ioevt_at)
        ioevt_deassign(d, d->ioevt_at, NVME_NUM_QUEUES);
    d->ioevt_at = 0;
    if (!want)
        return;
    for (unsigned q = 1; q < NVME_NUM_QUEUES; q++) {
        int ret = irq_ioeventfd_assign(d->vm->irq, sq_doorbell(want, q), 4, false,
                                       d->ctrl.kick_fd, false, 0);
        if (ret < 0) {
            /* The doorbells keep trapping; shadow doorbells still work. */
            if (!d->ioevt_warned)
                fprintf(stderr, "vmm: nvme %s: ioeventfd on the doorbells: %s\n", d->id,
                        strerror(-ret));
            d->ioevt_warned = true;
            ioevt_deassign(d, want, q);
            return;
        }
    }
    d->ioevt_at = want;
}

static void shadow_doorbells_changed(struct nvme_ctrl *c, bool on)
{
    struct nvme_device *d = c->hooks_opaque;

    pthread_mutex_lock(&d->ioevt_lock);
    d->ioevt_wanted = on;
    ioevt_sync(d);
    pthread_mutex_unlock(&d->ioevt_lock);
}

static const struct nvme_ctrl_hooks nvme_hooks = { .shadow_doorbells = shadow_doorbells_changed };

static void nvme_bar_io(struct pci_device *pdev, int bar, uint64_t offset, void *data,
                        uint32_t len, bool is_write)
{
    struct nvme_device *d = pdev->opaque;

    if (pci_msix_bar_access(&d->msix, bar, offset, data, len, is_write))
        return;
    if (bar != 0 || offset >= NVME_MSIX_TABLE) {
        if (!is_write)
            memset(data, 0, len);
        return;
    }
    nvme_ctrl_mmio(&d->ctrl, offset, data, len, is_write);
}

/* Runs with the PCI bus lock held: never takes the controller lock. */
static void nvme_config_written(struct pci_device *pdev, uint32_t offset, uint32_t len)
{
    struct nvme_device *d = pdev->opaque;
    uint64_t one = 1;

    pci_msix_config_written(&d->msix, offset, len);
    pthread_mutex_lock(&d->ioevt_lock);
    d->bar_addr = pdev->bars[0].addr;
    d->bar_mapped = pdev->bars[0].mapped;
    ioevt_sync(d);
    pthread_mutex_unlock(&d->ioevt_lock);
    /* MSI-X may have been switched: the loop re-evaluates the INTx line. */
    if (write(d->ctrl.kick_fd, &one, sizeof(one)) < 0) {
        /* the counter is already set */
    }
}

static const struct pci_dev_ops nvme_pci_ops = {
    .bar_io = nvme_bar_io,
    .config_written = nvme_config_written,
};

static void on_event(void *opaque, uint32_t events)
{
    struct nvme_device *d = opaque;

    (void)events;
    nvme_ctrl_process(&d->ctrl);
}

static void nvme_device_teardown(struct device *dev)
{
    struct nvme_device *d = (struct nvme_device *)dev;

    /* vm_destroy stops the loop first; a test may still hold one. */
    if (d->vm->loop && d->watch_kick)
        eventloop_del_fd(d->vm->loop, d->ctrl.kick_fd);
    if (d->vm->loop && d->watch_io)
        eventloop_del_fd(d->vm->loop, blk_backend_event_fd(d->ctrl.blk));
    if (d->ctrl_ready) {
        pthread_mutex_lock(&d->ioevt_lock);
        d->ioevt_wanted = false;
        ioevt_sync(d);
        pthread_mutex_unlock(&d->ioevt_lock);
        nvme_ctrl_destroy(&d->ctrl);
    } else {
        blk_backend_close(d->blk);
    }
    if (d->pdev.bars[0].mapped)
        iobus_unregister(&d->vm->mmio, d->pdev.bars[0].addr);
    if (d->msix_ready)
        pci_msix_destroy(&d->msix);
    pthread_mutex_destroy(&d->ioevt_lock);
    free(d->id);
    free(d->path);
    free(d);
}

static const struct device_ops nvme_device_ops = { .teardown = nvme_device_teardown };

static int open_image(struct nvme_device *d, const struct device_config *dc)
{
    const char *size_text = device_config_get(dc, "size");
    uint64_t size = size_text ? device_config_get_uint(dc, "size") : 0;
    char err[256];

    /* The schema (min 512, multiple_of 512) has vetted size already. */
    d->blk = blk_backend_open(d->path, size, device_config_get_bool(dc, "read-only"), err,
                              sizeof(err));
    if (!d->blk) {
        device_config_key_error(dc, "file", "%s: %s", d->path, err);
        return -1;
    }
    return 0;
}

static int setup_pci(struct nvme_device *d, struct vm *vm)
{
    int ret;

    pci_device_init(&d->pdev, NVME_PCI_VENDOR, NVME_PCI_DEVICE, NVME_PCI_CLASS,
                    NVME_PCI_SUBSYS_VEN, NVME_PCI_SUBSYS_ID);
    d->pdev.dev = &d->dev;
    d->pdev.ops = &nvme_pci_ops;
    d->pdev.opaque = d;
    d->pdev.config[0x3d] = 1;   /* INTA */
    pci_device_set_bar(&d->pdev, 0, PCI_BAR_MEM64, NVME_BAR0_SIZE, false);
    ret = pci_msix_init(&d->msix, &d->pdev, vm->irq, NVME_MSIX_VECTORS, 0, NVME_MSIX_TABLE,
                        NVME_MSIX_PBA);
    if (ret < 0) {
        fprintf(stderr, "vmm: nvme %s: MSI-X: %s\n", d->id, strerror(-ret));
        return -1;
    }
    d->msix_ready = true;
    return 0;
}

int nvme_device_create(struct vm *vm, const struct device_config *dc)
{
    struct nvme_device *d = calloc(1, sizeof(*d));
    struct nvme_ctrl_params params;
    char serial[DEVICE_SERIAL_MAX + 1];
    int ret;

    if (!d)
        return -1;
    d->vm = vm;
    pthread_mutex_init(&d->ioevt_lock, NULL);
    d->id = strdup(dc->id);
    d->path = device_config_get_path(dc, "file");
    d->dev = (struct device){ .id = d->id, .class_name = "block", .path_name = "emulated",
                              .model = "nvme", .ops = &nvme_device_ops };
    if (!d->id || !d->path || device_config_serial(dc, serial) < 0 || open_image(d, dc) < 0 ||
        setup_pci(d, vm) < 0)
        goto fail;
    params = (struct nvme_ctrl_params){
        .name = d->id, .mem = &vm->mem, .blk = d->blk, .pdev = &d->pdev, .msix = &d->msix,
        .serial = serial, .shadow_doorbells = device_config_get_bool(dc, "shadow-doorbells"),
        .hooks = &nvme_hooks, .hooks_opaque = d,
    };
    if ((ret = nvme_ctrl_init(&d->ctrl, &params)) < 0) {
        fprintf(stderr, "vmm: nvme %s: %s\n", d->id, strerror(-ret));
        goto fail;
    }
    d->ctrl_ready = true;   /* the controller owns the backend now */
    d->blk = NULL;

    /* From here the VM owns d: vm_destroy tears it down. */
    vm_add_device(vm, &d->dev);
    if ((ret = pci_device_add(vm->pci, &d->pdev, -1)) < 0) {
        fprintf(stderr, "vmm: nvme %s: no room on the PCI bus: %s\n", d->id, strerror(-ret));
        return -1;
    }
    if ((ret = eventloop_add_fd(vm->loop, d->ctrl.kick_fd, EPOLLIN, on_event, d)) == 0)
        d->watch_kick = true;
    if (ret == 0 &&
        (ret = eventloop_add_fd(vm->loop, blk_backend_event_fd(d->ctrl.blk), EPOLLIN, on_event,
                                d)) == 0)
        d->watch_io = true;
    if (ret < 0) {
        fprintf(stderr, "vmm: nvme %s: event loop: %s\n", d->id, strerror(-ret));
        return -1;
    }
    return 0;
fail:
    nvme_device_teardown(&d->dev);
    return -1;
}

struct nvme_ctrl *nvme_device_ctrl(struct device *dev)
{
    return &((struct nvme_device *)dev)->ctrl;
}
