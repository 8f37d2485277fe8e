/* The table of device implementations: which code serves a device file's
 * (class, path, model). A (class, path) without an entry is "not implemented
 * yet" and config_load refuses it. */
#include <string.h>

#include "registry.h"
#include "serial_device.h"
#include "nvme_device.h"
#include "e1000_device.h"
#include "blk_device.h"
#include "net_device.h"
#include "passthrough_device.h"

static const struct device_impl console_emulated_16550 = {
    .cls = DEV_CLASS_CONSOLE,
    .path = IO_PATH_EMULATED,
    .model = "16550",
    .keys = serial_device_keys,
    .create = serial_device_create,
};

static const struct device_impl net_emulated_e1000 = {
    .cls = DEV_CLASS_NET,
    .path = IO_PATH_EMULATED,
    .model = "e1000",
    .keys = e1000_device_keys,
    .create = e1000_device_create,
};

static const struct device_impl block_emulated_nvme = {
    .cls = DEV_CLASS_BLOCK,
    .path = IO_PATH_EMULATED,
    .model = "nvme",
    .keys = nvme_device_keys,
    .create = nvme_device_create,
};

/* No model key: the guest sees virtio-blk, whichever vhost-user backend
 * serves it. */
static const struct device_impl block_virtio = {
    .cls = DEV_CLASS_BLOCK,
    .path = IO_PATH_VIRTIO,
    .model = NULL,
    .keys = vhost_blk_device_keys,
    .create = vhost_blk_device_create,
};

/* No model key: the guest sees virtio-net, whichever vhost-user backend
 * serves it. */
static const struct device_impl net_virtio = {
    .cls = DEV_CLASS_NET,
    .path = IO_PATH_VIRTIO,
    .model = NULL,
    .keys = vhost_net_device_keys,
    .create = vhost_net_device_create,
};

/* No model key: the guest sees the host's own function (a VF or a whole
 * device) through VFIO; block and net share the code. */
static const struct device_impl block_passthrough = {
    .cls = DEV_CLASS_BLOCK,
    .path = IO_PATH_PASSTHROUGH,
    .model = NULL,
    .keys = passthrough_device_keys,
    .create = passthrough_device_create,
};

static const struct device_impl net_passthrough = {
    .cls = DEV_CLASS_NET,
    .path = IO_PATH_PASSTHROUGH,
    .model = NULL,
    .keys = passthrough_device_keys,
    .create = passthrough_device_create,
};

const struct device_impl *const device_registry[] = {
    &console_emulated_16550,
    &block_emulated_nvme,
    &block_virtio,
    &net_emulated_e1000,
    &net_virtio,
    &block_passthrough,
    &net_passthrough,
    NULL,
};

const struct device_impl *registry_find_path(enum dev_class cls, enum io_path path)
{
    for (size_t i = 0; device_registry[i]; i++)
        if (device_registry[i]->cls == cls && device_registry[i]->path == path)
            return device_registry[i];
    return NULL;
}

const struct device_impl *registry_find(enum dev_class cls, enum io_path path, const char *model)
{
    for (size_t i = 0; device_registry[i]; i++) {
        const struct device_impl *im = device_registry[i];
        if (im->cls != cls || im->path != path)
            continue;
        if (!im->model ? !model : model && strcmp(im->model, model) == 0)
            return im;
    }
    return NULL;
}
