/* A running VM: KVM VM and vCPUs, guest RAM, the PIO and MMIO buses, the
 * devices built from the config, and how the VM stops. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "iobus.h"
#include "memory.h"

struct boot_entry;
struct device;
struct eventloop;
struct irq_router;
struct pci_bus;
struct platform;

/* How a VM ended, and the process exit status each maps to (README). */
enum vm_stop_reason {
    VM_STOP_NONE,
    VM_STOP_POWEROFF,     /* guest powered off (ACPI S5): 0 */
    VM_STOP_REBOOT,       /* guest asked for a reset: 0 (the VMM does not restart it) */
    VM_STOP_DEBUG_EXIT,   /* guest wrote a status to the debug-exit port: that status */
    VM_STOP_PANIC,        /* guest kernel panicked: VMM_EXIT_GUEST_PANIC */
    VM_STOP_CRASH,        /* KVM could not run the guest (internal error, failed entry) */
    VM_STOP_SIGNAL,       /* SIGINT/SIGTERM to the VMM: 128 + signal */
    VM_STOP_ERROR,        /* the VMM failed */
};

#define VMM_EXIT_OK          0
#define VMM_EXIT_ERROR       1
#define VMM_EXIT_CONFIG      2
#define VMM_EXIT_GUEST_PANIC 3
#define VMM_EXIT_GUEST_CRASH 4

/* Exits that reached userspace, by KVM exit reason. Written only by the
 * vCPU's own thread. */
struct vcpu_exit_counts {
    uint64_t io, mmio, hlt, shutdown, system_event, intr, internal_error, fail_entry, other;
    uint64_t unhandled_io, unhandled_mmio;   /* accesses no device claimed */
};

struct vcpu {
    struct vm *vm;
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    int stats_fd;                  /* KVM_GET_STATS_FD, -1 if unsupported */
    struct vcpu_exit_counts exits;
};

struct vm {
    const struct vm_config *cfg;
    int kvm_fd, vm_fd;
    int vm_stats_fd;
    struct guest_mem mem;
    struct vcpu *vcpus;
    unsigned n_vcpus;
    struct iobus pio, mmio;
    struct device *devices;        /* in creation order */
    struct irq_router *irq;
    struct pci_bus *pci;
    struct platform *platform;
    struct stats_marks *stats_marks;   /* NULL unless stats-marks = on */
    struct eventloop *loop;
    struct timespec started;

    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    atomic_bool stopping;
    enum vm_stop_reason stop_reason;
    int exit_status;
    atomic_bool panic_seen;        /* set by the console on "Kernel panic" */
};

/* Builds the whole VM from cfg. 0 or -1 (having said why on stderr); on
 * failure everything built so far is undone. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Runs until the guest or a signal stops it; returns the exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* The first call wins; later ones are ignored. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
const char *vm_stop_reason_name(enum vm_stop_reason reason);

/* Adds dev to the VM's list (stats, teardown). */
void vm_add_device(struct vm *vm, struct device *dev);

/* Per-vCPU (vcpu.c). */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_setup_boot(struct vcpu *vcpu, const struct boot_entry *entry);
void *vcpu_thread(void *arg);

#endif
