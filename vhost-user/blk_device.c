/* A virtio-blk device whose rings a vhost-user backend serves. The VMM
 * owns the guest-visible part (virtio-pci) and the set-up; the backend
 * process (ours, build/vhost-user-blk, or any other such as
 * qemu-storage-daemon) reads the rings and does the I/O. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk_device.h"
#include "device.h"
#include "frontend.h"
#include "virtio.h"
#include "vm.h"
#include "vu_device.h"

static const char *const queue_sizes[] = { "2",   "4",   "8",   "16",  "32",  "64",
                                           "128", "256", "512", "1024", NULL };

const struct cfg_key vhost_blk_device_keys[] = {
    { .name = "socket", .type = CFG_PATH, .required = true,
      .expected = "the vhost-user socket of the backend" },
    { .name = "queues", .type = CFG_UINT, .default_value = "1", .min = 1, .max = 16,
      .expected = "1..16 request queues" },
    { .name = "queue-size", .type = CFG_ENUM, .default_value = "256", .choices = queue_sizes,
      .expected = "a power of two from 2 to 1024" },
    { .name = "backend", .type = CFG_PATH,
      .expected = "a vhost-user-blk binary the VMM starts itself (with file)" },
    { .name = "file", .type = CFG_PATH,
      .expected = "the disk image the started backend serves" },
    { .name = "serial", .type = CFG_STRING,
      .expected = "up to 20 printable ASCII characters for the started backend (default: the device id)" },
    { .name = NULL },
};

/* struct virtio_blk_config up to write_zeroes_may_unmap and its padding
 * (virtio 1.2, 5.2.4): what Linux reads. */
#define BLK_CONFIG_SIZE        60
#define BLK_CONFIG_WCE         32
#define BLK_CONFIG_NUM_QUEUES  34
#define VIRTIO_BLK_F_MQ        12
#define VIRTIO_PCI_CLASS_STORAGE 0x010000
#define CONNECT_TIMEOUT_MS     10000

struct vblk_device {
    struct device dev;           /* first: teardown casts */
    struct vm *vm;
    struct virtio_device vdev;
    struct virtio_pci *vp;
    struct vu_frontend *fe;
    pid_t backend_pid;
    char *id, *socket, *backend, *file;
    char serial[DEVICE_SERIAL_MAX + 1];   /* for the backend we start */
    uint16_t queues, queue_size;
    uint8_t config[BLK_CONFIG_SIZE];
};

/* --- the virtio device: everything goes to the backend ------------------- */

static uint64_t vblk_features(struct virtio_device *vdev)
{
    struct vblk_device *d = vdev->opaque;
    uint64_t f = vu_frontend_features(d->fe);

    if (d->queues == 1)
        f &= ~(1ULL << VIRTIO_BLK_F_MQ);
    return f;
}

static uint16_t vblk_num_queues(struct virtio_device *vdev)
{
    return ((struct vblk_device *)vdev->opaque)->queues;
}

static uint16_t vblk_queue_max(struct virtio_device *vdev, uint16_t q)
{
    (void)q;
    return ((struct vblk_device *)vdev->opaque)->queue_size;
}

static uint32_t vblk_config_size(struct virtio_device *vdev)
{
    (void)vdev;
    return BLK_CONFIG_SIZE;
}

static void vblk_config_read(struct virtio_device *vdev, uint32_t off, void *data, uint32_t len)
{
    memcpy(data, ((struct vblk_device *)vdev->opaque)->config + off, len);
}

/* Only the writeback byte is writable (CONFIG_WCE); the rest is dropped. */
static void vblk_config_write(struct virtio_device *vdev, uint32_t off, const void *data,
                              uint32_t len)
{
    struct vblk_device *d = vdev->opaque;

    if (off != BLK_CONFIG_WCE || len != 1)
        return;
    d->config[BLK_CONFIG_WCE] = *(const uint8_t *)data;
    vu_frontend_set_config(d->fe, off, data, len);
}

static int vblk_start(struct virtio_device *vdev, uint64_t features,
                      const struct virtio_queue_setup *queues, unsigned n)
{
    return vu_frontend_start(((struct vblk_device *)vdev->opaque)->fe, features, queues, n);
}

static void vblk_stop(struct virtio_device *vdev)
{
    vu_frontend_stop(((struct vblk_device *)vdev->opaque)->fe);
}

static const struct virtio_device_ops vblk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .features = vblk_features,
    .num_queues = vblk_num_queues,
    .queue_max_size = vblk_queue_max,
    .config_size = vblk_config_size,
    .config_read = vblk_config_read,
    .config_write = vblk_config_write,
    .start = vblk_start,
    .stop = vblk_stop,
};

/* --- the backend process -------------------------------------------------- */

static int start_backend(struct vblk_device *d)
{
    char queues[8];
    pid_t pid;

    snprintf(queues, sizeof(queues), "%u", d->queues);
    unlink(d->socket);   /* a stale socket would be connected to before the new one exists */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "vmm: virtio %s: fork: %s\n", d->id, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execl(d->backend, d->backend, "--socket", d->socket, "--file", d->file, "--queues",
              queues, "--serial", d->serial, (char *)NULL);
        fprintf(stderr, "vmm: virtio %s: cannot run %s: %s\n", d->id, d->backend,
                strerror(errno));
        _exit(127);
    }
    d->backend_pid = pid;
    return 0;
}

/* The frontend lost the backend (event loop thread): if it is the process
 * we started and it died, start another on the same file and socket; the
 * frontend's next attempt connects to it. A backend that only dropped the
 * connection listens again by itself. */
static void backend_gone(void *opaque)
{
    struct vblk_device *d = opaque;
    int status;

    if (d->backend_pid <= 0 || waitpid(d->backend_pid, &status, WNOHANG) != d->backend_pid)
        return;
    fprintf(stderr, "vmm: virtio %s: backend %d %s %d; starting it again\n", d->id,
            (int)d->backend_pid, WIFSIGNALED(status) ? "killed by signal" : "exited with",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    d->backend_pid = 0;
    start_backend(d);
}

static void stop_backend(struct vblk_device *d)
{
    if (d->backend_pid <= 0)
        return;
    kill(d->backend_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(d->backend_pid, NULL, WNOHANG) != 0)
            goto done;
        nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000L }, NULL);
    }
    kill(d->backend_pid, SIGKILL);
    waitpid(d->backend_pid, NULL, 0);
done:
    d->backend_pid = 0;
    unlink(d->socket);
}

/* --- creation ------------------------------------------------------------- */

static void vblk_teardown(struct device *dev)
{
    struct vblk_device *d = (struct vblk_device *)dev;

    virtio_pci_destroy(d->vp);   /* stops the device first */
    vu_frontend_destroy(d->fe);
    stop_backend(d);
    free(d->id);
    free(d->socket);
    free(d->backend);
    free(d->file);
    free(d);
}

static const struct device_ops vblk_device_ops = { .teardown = vblk_teardown };

static int read_config(struct vblk_device *d, const struct device_config *dc)
{
    uint64_t qs = 0;

    d->id = strdup(dc->id);
    d->socket = device_config_get_path(dc, "socket");
    d->backend = device_config_get_path(dc, "backend");
    d->file = device_config_get_path(dc, "file");
    d->queues = (uint16_t)device_config_get_uint(dc, "queues");
    cfg_parse_uint(device_config_get(dc, "queue-size"), &qs);
    d->queue_size = (uint16_t)qs;
    if (!d->id || !d->socket)
        return -1;
    if (!!d->backend != !!d->file) {
        device_config_key_error(dc, d->backend ? "backend" : "file",
                                "backend and file go together (the VMM starts the backend on "
                                "file), or neither (it connects to a running one)");
        return -1;
    }
    if (device_config_get(dc, "serial") && !d->backend) {
        device_config_key_error(dc, "serial", "only for a backend the VMM starts (backend =, "
                                "file =); one already running reports its own");
        return -1;
    }
    /* The started backend reports the same serial as the emulated NVMe
     * would (the key, or the device id): switching path keeps it. */
    return d->backend ? device_config_serial(dc, d->serial) : 0;
}

int vhost_blk_device_create(struct vm *vm, const struct device_config *dc)
{
    struct vblk_device *d = calloc(1, sizeof(*d));
    struct vu_frontend_params fp;
    const uint8_t *cfg;
    uint32_t cfg_size;

    if (!d)
        return -1;
    d->vm = vm;
    d->dev = (struct device){ .class_name = "block", .path_name = "virtio",
                              .model = "vhost-user-blk", .ops = &vblk_device_ops };
    if (read_config(d, dc) < 0)
        goto fail;
    d->dev.id = d->id;
    if (d->backend && start_backend(d) < 0)
        goto fail;
    fp = (struct vu_frontend_params){
        .name = d->id, .socket = d->socket, .mem = &vm->mem, .queues = d->queues,
        .queue_size = d->queue_size, .config_size = BLK_CONFIG_SIZE,
        .connect_timeout_ms = d->backend ? CONNECT_TIMEOUT_MS : 0,
        .backend_gone = backend_gone, .opaque = d,
    };
    if (!(d->fe = vu_frontend_connect(&fp)))
        goto fail;
    d->queues = vu_frontend_queues(d->fe);
    cfg = vu_frontend_config(d->fe, &cfg_size);
    memcpy(d->config, cfg, cfg_size < BLK_CONFIG_SIZE ? cfg_size : BLK_CONFIG_SIZE);
    /* The guest sees as many queues as the transport has. */
    d->config[BLK_CONFIG_NUM_QUEUES] = (uint8_t)d->queues;
    d->config[BLK_CONFIG_NUM_QUEUES + 1] = (uint8_t)(d->queues >> 8);
    d->vdev = (struct virtio_device){ .ops = &vblk_ops, .opaque = d };
    d->vp = virtio_pci_create(vm, &d->dev, &d->vdev,
                              &(struct virtio_pci_params){ .class_code = VIRTIO_PCI_CLASS_STORAGE,
                                                           .subsys_id = VIRTIO_ID_BLOCK });
    if (!d->vp)
        goto fail;

    /* From here the VM owns d: vm_destroy tears it down. */
    return vu_device_attach(vm, &d->dev, d->vp, d->fe, d->id);
fail:
    vblk_teardown(&d->dev);
    return -1;
}
