#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "acpi.h"
#include "boot.h"
#include "device.h"
#include "eventloop.h"
#include "irq.h"
#include "layout.h"
#include "pci.h"
#include "platform.h"
#include "registry.h"
#include "stats.h"
#include "vm.h"

#define KVM_KICK_SIGNAL SIGUSR1

static const struct { long cap; const char *name; } required_caps[] = {
    { KVM_CAP_IRQCHIP, "in-kernel irqchip" },
    { KVM_CAP_USER_MEMORY, "user memory regions" },
    { KVM_CAP_IRQ_ROUTING, "GSI routing" },
    { KVM_CAP_IRQFD, "irqfd" },
    { KVM_CAP_IOEVENTFD, "ioeventfd" },
    { KVM_CAP_PIT2, "in-kernel PIT" },
    { KVM_CAP_IMMEDIATE_EXIT, "immediate exit" },
    { KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID" },
};

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
    static const char *const names[] = {
        [VM_STOP_NONE] = "running", [VM_STOP_POWEROFF] = "poweroff",
        [VM_STOP_REBOOT] = "reboot", [VM_STOP_DEBUG_EXIT] = "debug-exit",
        [VM_STOP_PANIC] = "guest-panic", [VM_STOP_CRASH] = "guest-crash",
        [VM_STOP_SIGNAL] = "signal", [VM_STOP_ERROR] = "vmm-error",
    };
    return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "?";
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
    pthread_mutex_lock(&vm->stop_lock);
    if (vm->stop_reason == VM_STOP_NONE) {
        /* A guest that panicked and then rebooted (panic=N) still panicked. */
        if (atomic_load(&vm->panic_seen) &&
            (reason == VM_STOP_REBOOT || reason == VM_STOP_POWEROFF)) {
            reason = VM_STOP_PANIC;
            status = VMM_EXIT_GUEST_PANIC;
        }
        vm->stop_reason = reason;
        vm->exit_status = status;
        atomic_store(&vm->stopping, true);
        pthread_cond_broadcast(&vm->stop_cond);
    }
    pthread_mutex_unlock(&vm->stop_lock);
}

void vm_add_device(struct vm *vm, struct device *dev)
{
    struct device **p = &vm->devices;

    while (*p)
        p = &(*p)->next;
    dev->next = NULL;
    *p = dev;
}

static int kvm_open_checked(struct vm *vm)
{
    int version, max_vcpus;

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        fprintf(stderr, "vmm: /dev/kvm: %s (this host has no usable KVM; tests/kvm-run runs "
                "the VMM inside a nested guest that has one)\n", strerror(errno));
        return -1;
    }
    version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        fprintf(stderr, "vmm: KVM API version %d, need %d\n", version, KVM_API_VERSION);
        return -1;
    }
    for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            fprintf(stderr, "vmm: KVM lacks %s\n", required_caps[i].name);
            return -1;
        }
    }
    max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max_vcpus > 0 && vm->n_vcpus > (unsigned)max_vcpus) {
        fprintf(stderr, "vmm: %u vCPUs asked for, KVM allows %d\n", vm->n_vcpus, max_vcpus);
        return -1;
    }
    return 0;
}

static int vm_create_kvm_vm(struct vm *vm)
{
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    uint64_t identity_map = LAYOUT_KVM_IDENTITY_MAP;

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        fprintf(stderr, "vmm: KVM_CREATE_VM: %s\n", strerror(errno));
        return -1;
    }
    /* VT-x needs these pages for real-mode emulation; harmless on AMD-V. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0 ||
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
        fprintf(stderr, "vmm: KVM TSS/identity map set-up: %s\n", strerror(errno));
        return -1;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        fprintf(stderr, "vmm: in-kernel irqchip/PIT: %s\n", strerror(errno));
        return -1;
    }
    vm->vm_stats_fd = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
    return 0;
}

static int vm_map_memory(struct vm *vm)
{
    if (guest_mem_create(&vm->mem, vm->cfg->memory, vm->cfg->hugepages) < 0)
        return -1;
    for (unsigned i = 0; i < vm->mem.n_regions; i++) {
        const struct guest_region *r = &vm->mem.regions[i];
        struct kvm_userspace_memory_region slot = {
            .slot = i, .guest_phys_addr = r->gpa, .memory_size = r->size,
            .userspace_addr = (uint64_t)(uintptr_t)r->hva,
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            fprintf(stderr, "vmm: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int vm_create_devices(struct vm *vm)
{
    for (size_t i = 0; i < vm->cfg->n_devices; i++) {
        const struct device_config *dc = &vm->cfg->devices[i];
        if (dc->impl->create(vm, dc) < 0) {
            fprintf(stderr, "vmm: device %s (%s): could not be created\n", dc->id, dc->file);
            return -1;
        }
    }
    return 0;
}

static int vm_load_guest(struct vm *vm)
{
    struct acpi_platform plat = { .vcpus = vm->n_vcpus };
    struct boot_entry entry;
    void *acpi = guest_mem_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);

    if (!acpi || acpi_build(acpi, LAYOUT_ACPI, LAYOUT_ACPI_SIZE, &plat) == 0) {
        fprintf(stderr, "vmm: ACPI tables do not fit\n");
        return -1;
    }
    if (boot_load_linux(&vm->mem, vm->cfg->kernel, vm->cfg->initrd, vm->cfg->cmdline, LAYOUT_ACPI,
                        &entry) < 0)
        return -1;
    return vcpu_setup_boot(&vm->vcpus[0], &entry);
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->kvm_fd = vm->vm_fd = vm->vm_stats_fd = -1;
    vm->mem.fd = -1;
    vm->n_vcpus = cfg->vcpus;
    pthread_mutex_init(&vm->stop_lock, NULL);
    pthread_cond_init(&vm->stop_cond, NULL);
    iobus_init(&vm->pio, IOBUS_PIO);
    iobus_init(&vm->mmio, IOBUS_MMIO);

    if (kvm_open_checked(vm) < 0 || vm_create_kvm_vm(vm) < 0 || vm_map_memory(vm) < 0)
        goto fail;
    vm->irq = irq_router_create(vm->vm_fd);
    vm->loop = eventloop_create();
    if (!vm->irq || !vm->loop) {
        fprintf(stderr, "vmm: out of memory\n");
        goto fail;
    }
    if (platform_create(vm) < 0)
        goto fail;
    if (vm_create_devices(vm) < 0)
        goto fail;

    vm->vcpus = calloc(vm->n_vcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        goto fail;
    for (unsigned i = 0; i < vm->n_vcpus; i++) {
        vm->vcpus[i].fd = -1;
        vm->vcpus[i].stats_fd = -1;
    }
    for (unsigned i = 0; i < vm->n_vcpus; i++)
        if (vcpu_create(vm, &vm->vcpus[i], i) < 0)
            goto fail;
    if (vm_load_guest(vm) < 0)
        goto fail;
    return 0;
fail:
    vm_destroy(vm);
    return -1;
}

static void kick_handler(int sig)
{
    (void)sig;   /* only there to interrupt KVM_RUN */
}

int vm_run(struct vm *vm)
{
    struct sigaction sa = { .sa_handler = kick_handler };
    unsigned started = 0;
    int ret;

    sigemptyset(&sa.sa_mask);
    sigaction(KVM_KICK_SIGNAL, &sa, NULL);
    clock_gettime(CLOCK_MONOTONIC, &vm->started);

    if (eventloop_start(vm->loop) < 0) {
        fprintf(stderr, "vmm: cannot start the event loop thread\n");
        return VMM_EXIT_ERROR;
    }
    for (; started < vm->n_vcpus; started++) {
        ret = pthread_create(&vm->vcpus[started].thread, NULL, vcpu_thread, &vm->vcpus[started]);
        if (ret) {
            fprintf(stderr, "vmm: cannot start vCPU %u: %s\n", started, strerror(ret));
            vm_request_stop(vm, VM_STOP_ERROR, VMM_EXIT_ERROR);
            break;
        }
        vm->vcpus[started].thread_started = true;
    }

    pthread_mutex_lock(&vm->stop_lock);
    while (vm->stop_reason == VM_STOP_NONE)
        pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
    pthread_mutex_unlock(&vm->stop_lock);

    /* immediate_exit closes the window between a vCPU checking `stopping`
     * and entering KVM_RUN; the signal gets the ones already inside out. */
    for (unsigned i = 0; i < started; i++) {
        vm->vcpus[i].run->immediate_exit = 1;
        pthread_kill(vm->vcpus[i].thread, KVM_KICK_SIGNAL);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(vm->vcpus[i].thread, NULL);
    return vm->exit_status;
}

void vm_destroy(struct vm *vm)
{
    /* Devices go first: they may still hold eventfds registered with KVM. */
    if (vm->loop) {
        eventloop_destroy(vm->loop);
        vm->loop = NULL;
    }
    while (vm->devices) {
        struct device *dev = vm->devices;
        vm->devices = dev->next;
        if (dev->ops && dev->ops->teardown)
            dev->ops->teardown(dev);
    }
    platform_destroy(vm);
    stats_marks_destroy(vm->stats_marks);
    vm->stats_marks = NULL;
    if (vm->vcpus) {
        for (unsigned i = 0; i < vm->n_vcpus; i++)
            vcpu_destroy(&vm->vcpus[i]);
        free(vm->vcpus);
        vm->vcpus = NULL;
    }
    irq_router_destroy(vm->irq);
    vm->irq = NULL;
    guest_mem_destroy(&vm->mem);
    if (vm->vm_stats_fd >= 0)
        close(vm->vm_stats_fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    vm->vm_stats_fd = vm->vm_fd = vm->kvm_fd = -1;
    iobus_destroy(&vm->pio);
    iobus_destroy(&vm->mmio);
    pthread_cond_destroy(&vm->stop_cond);
    pthread_mutex_destroy(&vm->stop_lock);
}
