#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot.h"
#include "vm.h"

#define MSR_IA32_SYSENTER_CS   0x174
#define MSR_IA32_SYSENTER_ESP  0x175
#define MSR_IA32_SYSENTER_EIP  0x176
#define MSR_IA32_MISC_ENABLE   0x1a0
#define MSR_MTRR_DEF_TYPE      0x2ff
#define MSR_STAR               0xc0000081
#define MSR_LSTAR              0xc0000082
#define MSR_CSTAR              0xc0000083
#define MSR_SYSCALL_MASK       0xc0000084
#define MSR_KERNEL_GS_BASE     0xc0000102

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
        if (!c)
            return NULL;
        c->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

/* The host's supported CPUID with this vCPU's topology: its APIC id, the
 * hypervisor bit, and the TSC-deadline timer that KVM emulates. */
static int vcpu_set_cpuid(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    struct kvm_cpuid2 *c = supported_cpuid(vm->kvm_fd);
    bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    int ret;

    if (!c) {
        fprintf(stderr, "vmm: KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffffu) | (vcpu->id << 24) | ((vm->n_vcpus & 0xffu) << 16);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            if (tsc_deadline)
                e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
            break;
        case 0xd:
            /* Linux enables every XSAVE feature offered, so the save area
             * it needs is the maximum (ECX), as QEMU reports too; leaving
             * the host's current size in EBX trips its consistency check. */
            if (e->index == 0)
                e->ebx = e->ecx;
            break;
        case 0xb:
        case 0x1f:
            e->edx = vcpu->id;   /* x2APIC id, every sub-leaf */
            break;
        case 0x8000001e:
            e->eax = vcpu->id;   /* AMD extended APIC id */
            break;
        }
    }
    ret = ioctl(vcpu->fd, KVM_SET_CPUID2, c);
    if (ret < 0)
        fprintf(stderr, "vmm: vCPU %u: KVM_SET_CPUID2: %s\n", vcpu->id, strerror(errno));
    free(c);
    return ret;
}

static int vcpu_set_msrs(struct vcpu *vcpu)
{
    static const struct { uint32_t index; uint64_t value; } boot_msrs[] = {
        { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, { MSR_IA32_SYSENTER_EIP, 0 },
        { MSR_STAR, 0 }, { MSR_LSTAR, 0 }, { MSR_CSTAR, 0 }, { MSR_SYSCALL_MASK, 0 },
        { MSR_KERNEL_GS_BASE, 0 },
        { MSR_IA32_MISC_ENABLE, 1 },               /* fast strings */
        { MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },     /* MTRRs on, default write-back */
    };
    enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entries[N];
    } msrs = { .hdr.nmsrs = N };

    for (unsigned i = 0; i < N; i++) {
        msrs.entries[i].index = boot_msrs[i].index;
        msrs.entries[i].data = boot_msrs[i].value;
    }
    if (ioctl(vcpu->fd, KVM_SET_MSRS, &msrs) != N) {
        fprintf(stderr, "vmm: vCPU %u: KVM_SET_MSRS failed\n", vcpu->id);
        return -1;
    }
    return 0;
}

/* LINT0 as ExtINT and LINT1 as NMI, as firmware leaves them on a PC. */
static int vcpu_set_lapic(struct vcpu *vcpu)
{
    struct kvm_lapic_state lapic;
    uint32_t *lint0 = (uint32_t *)&lapic.regs[APIC_LVT_LINT0];
    uint32_t *lint1 = (uint32_t *)&lapic.regs[APIC_LVT_LINT1];

    if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
        goto fail;
    *lint0 = (*lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    *lint1 = (*lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "vmm: vCPU %u: LAPIC set-up: %s\n", vcpu->id, strerror(errno));
    return -1;
}

static int vcpu_set_fpu(struct vcpu *vcpu)
{
    struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

    if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0) {
        fprintf(stderr, "vmm: vCPU %u: KVM_SET_FPU: %s\n", vcpu->id, strerror(errno));
        return -1;
    }
    return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id)
{
    int size;

    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->vm = vm;
    vcpu->id = id;
    vcpu->stats_fd = -1;
    vcpu->fd = -1;
    vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (vcpu->fd < 0) {
        fprintf(stderr, "vmm: KVM_CREATE_VCPU %u: %s\n", id, strerror(errno));
        return -1;
    }
    size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) {
        fprintf(stderr, "vmm: KVM_GET_VCPU_MMAP_SIZE: %s\n", strerror(errno));
        goto fail;
    }
    vcpu->run_size = (size_t)size;
    vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        fprintf(stderr, "vmm: vCPU %u: mmap kvm_run: %s\n", id, strerror(errno));
        goto fail;
    }
    if (vcpu_set_cpuid(vcpu) < 0 || vcpu_set_msrs(vcpu) < 0 || vcpu_set_lapic(vcpu) < 0 ||
        vcpu_set_fpu(vcpu) < 0)
        goto fail;
    vcpu->stats_fd = ioctl(vcpu->fd, KVM_GET_STATS_FD, NULL);
    return 0;
fail:
    vcpu_destroy(vcpu);
    return -1;
}

void vcpu_destroy(struct vcpu *vcpu)
{
    if (vcpu->run)
        munmap(vcpu->run, vcpu->run_size);
    if (vcpu->stats_fd >= 0)
        close(vcpu->stats_fd);
    if (vcpu->fd >= 0)
        close(vcpu->fd);
    vcpu->run = NULL;
    vcpu->stats_fd = vcpu->fd = -1;
}

static void set_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, bool code64)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
        .present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
    };
}

/* The state the kernel's entry point asks for: for a bzImage, long mode on
 * the identity map with flat segments (64-bit boot protocol); for PVH,
 * 32-bit protected mode with paging off. Only the boot vCPU gets it; the
 * others wait for INIT/SIPI in the in-kernel LAPIC. */
int vcpu_setup_boot(struct vcpu *vcpu, const struct boot_entry *entry)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = {
        .rip = entry->rip, .rsi = entry->rsi, .rbx = entry->rbx, .rsp = entry->rsp,
        .rbp = entry->rsp, .rflags = 0x2,
    };
    bool pvh = entry->mode == BOOT_PVH;

    if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        goto fail;
    if (pvh)
        set_segment(&sregs.cs, 0x08, 0xb, false);
    else
        set_segment(&sregs.cs, 0x10, 0xb, true);
    set_segment(&sregs.ds, 0x18, 0x3, false);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){
        .base = 0, .limit = 0xfffff, .selector = 0x20, .type = 0xb, .present = 1, .s = 0,
    };
    sregs.gdt.base = entry->gdt_base;
    sregs.gdt.limit = entry->gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    if (pvh) {
        sregs.cr0 = 0x11;         /* ET | PE */
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
    } else {
        sregs.cr0 = 0x80000033;   /* PG | NE | ET | MP | PE */
        sregs.cr3 = entry->cr3;
        sregs.cr4 = 0x20;         /* PAE */
        sregs.efer = 0x500;       /* LMA | LME */
    }
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "vmm: vCPU %u: boot register set-up: %s\n", vcpu->id, strerror(errno));
    return -1;
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

    /* String I/O arrives as count back-to-back accesses in the data page. */
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (!iobus_dispatch(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write)) {
            vcpu->exits.unhandled_io++;
            if (!is_write)
                memset(data, 0xff, run->io.size);   /* nothing decodes the port: bus floats */
        }
    }
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint32_t len = run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : sizeof(run->mmio.data);

    if (!iobus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
                        run->mmio.is_write)) {
        vcpu->exits.unhandled_mmio++;
        if (!run->mmio.is_write)
            memset(run->mmio.data, 0xff, len);
    }
}

static void vcpu_report_failure(struct vcpu *vcpu, const char *what)
{
    struct kvm_regs regs;

    if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
        fprintf(stderr, "vmm: vCPU %u: %s at rip 0x%llx\n", vcpu->id, what,
                (unsigned long long)regs.rip);
    else
        fprintf(stderr, "vmm: vCPU %u: %s\n", vcpu->id, what);
}

void *vcpu_thread(void *arg)
{
    struct vcpu *vcpu = arg;
    struct vm *vm = vcpu->vm;
    struct kvm_run *run = vcpu->run;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
    pthread_setname_np(pthread_self(), name);

    while (!atomic_load(&vm->stopping)) {
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                vcpu->exits.intr++;
                continue;
            }
            fprintf(stderr, "vmm: vCPU %u: KVM_RUN: %s\n", vcpu->id, strerror(errno));
            vm_request_stop(vm, VM_STOP_ERROR, VMM_EXIT_ERROR);
            break;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            vcpu->exits.io++;
            vcpu_handle_io(vcpu);
            break;
        case KVM_EXIT_MMIO:
            vcpu->exits.mmio++;
            vcpu_handle_mmio(vcpu);
            break;
        case KVM_EXIT_HLT:
            vcpu->exits.hlt++;   /* only without an in-kernel LAPIC */
            break;
        case KVM_EXIT_INTR:
            vcpu->exits.intr++;
            break;
        case KVM_EXIT_SHUTDOWN:
            /* A triple fault resets a PC; Linux uses it as a last reboot method. */
            vcpu->exits.shutdown++;
            fprintf(stderr, "vmm: vCPU %u: guest reset (triple fault)\n", vcpu->id);
            vm_request_stop(vm, VM_STOP_REBOOT, VMM_EXIT_OK);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            vcpu->exits.system_event++;
            vm_request_stop(vm, run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN
                                    ? VM_STOP_POWEROFF : VM_STOP_REBOOT, VMM_EXIT_OK);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            vcpu->exits.fail_entry++;
            fprintf(stderr, "vmm: vCPU %u: VM entry failed, hardware reason 0x%llx\n", vcpu->id,
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            vm_request_stop(vm, VM_STOP_CRASH, VMM_EXIT_GUEST_CRASH);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            vcpu->exits.internal_error++;
            vcpu_report_failure(vcpu, "KVM internal error (suberror follows)");
            fprintf(stderr, "vmm: suberror %u\n", run->internal.suberror);
            vm_request_stop(vm, VM_STOP_CRASH, VMM_EXIT_GUEST_CRASH);
            break;
        default:
            vcpu->exits.other++;
            fprintf(stderr, "vmm: vCPU %u: unexpected exit reason %u\n", vcpu->id,
                    run->exit_reason);
            vm_request_stop(vm, VM_STOP_CRASH, VMM_EXIT_GUEST_CRASH);
            break;
        }
    }
    return NULL;
}
