#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"
#include "e1000.h"
#include "e1000_device.h"
#include "eventloop.h"
#include "net_backend.h"
#include "registry.h"
#include "tap.h"
#include "vm.h"

static const char *const e1000_models[] = { "e1000", NULL };

const struct cfg_key e1000_device_keys[] = {
    { .name = "model", .type = CFG_ENUM, .required = true, .choices = e1000_models,
      .expected = "e1000" },
    { .name = "tap", .type = CFG_STRING, .required = true,
      .expected = "the name of an existing tap interface, such as tap0" },
    /* The guest-visible identity: the same key whatever path serves it. */
    { .name = "mac", .type = CFG_MAC, .required = true,
      .expected = "a unicast MAC address such as 52:54:00:12:34:56" },
    { .name = NULL },
};

struct e1000_nic {
    struct device dev;
    struct e1000 *model;
    struct net_backend *tap;
    int kick_fd;             /* eventfd: vCPUs ask the event loop to transmit */
    char *id;
};

/* Called by the model with its lock held, from any thread. */
static void nic_kick(void *opaque)
{
    struct e1000_nic *n = opaque;
    uint64_t one = 1;

    if (write(n->kick_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is saturated, so a wake-up is pending anyway */
    }
}

static void nic_kicked(void *opaque, uint32_t events)
{
    struct e1000_nic *n = opaque;
    uint64_t count;

    (void)events;
    if (read(n->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        return;
    e1000_service(n->model);
}

static void nic_tap_readable(void *opaque)
{
    struct e1000_nic *n = opaque;

    e1000_rx_ready(n->model);
}

/* Runs after the event loop has stopped (vm_destroy), or before it started. */
static void nic_teardown(struct device *dev)
{
    struct e1000_nic *n = (struct e1000_nic *)dev;

    e1000_destroy(n->model);
    if (n->tap)
        n->tap->ops->destroy(n->tap);
    if (n->kick_fd >= 0)
        close(n->kick_fd);
    free(n->id);
    free(n);
}

static const struct device_ops nic_ops = { .teardown = nic_teardown };

int e1000_device_create(struct vm *vm, const struct device_config *dc)
{
    struct e1000_nic *n = calloc(1, sizeof(*n));
    uint8_t mac[6];
    int ret;

    if (!n)
        return -1;
    n->kick_fd = -1;
    n->id = strdup(dc->id);
    n->dev = (struct device){ .id = n->id, .class_name = "net", .path_name = "emulated",
                              .model = "e1000", .ops = &nic_ops };
    if (!n->id) {
        free(n);
        return -1;
    }
    /* From here the VM owns n: vm_destroy tears it down. */
    vm_add_device(vm, &n->dev);
    if (cfg_parse_mac(device_config_get(dc, "mac"), mac) < 0) {
        fprintf(stderr, "vmm: net %s: bad mac\n", dc->id);   /* config_load checked it */
        return -1;
    }
    n->tap = tap_open(dc->id, device_config_get(dc, "tap"), vm->loop, nic_tap_readable, n);
    if (!n->tap)
        return -1;
    n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->kick_fd < 0) {
        fprintf(stderr, "vmm: net %s: eventfd: %s\n", dc->id, strerror(errno));
        return -1;
    }
    ret = eventloop_add_fd(vm->loop, n->kick_fd, EPOLLIN, nic_kicked, n);
    if (ret < 0) {
        fprintf(stderr, "vmm: net %s: cannot watch its eventfd: %s\n", dc->id, strerror(-ret));
        return -1;
    }
    n->model = e1000_create(mac, &(struct e1000_host){ .name = n->id, .mem = &vm->mem,
                                                       .backend = n->tap, .kick = nic_kick,
                                                       .kick_opaque = n }, &n->dev);
    if (!n->model) {
        fprintf(stderr, "vmm: net %s: out of memory\n", dc->id);
        return -1;
    }
    ret = e1000_attach(n->model, vm->pci, -1);
    if (ret < 0) {
        fprintf(stderr, "vmm: net %s: no room on the PCI bus: %s\n", dc->id, strerror(-ret));
        return -1;
    }
    return 0;
}
