/* Direct boot of an x86-64 Linux bzImage through its 64-bit entry point
 * (Documentation/arch/x86/boot.rst): zero page with e820 map, command line,
 * initrd, identity page tables and a flat GDT; no firmware. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdint.h>

#include "memory.h"

enum boot_mode {
    BOOT_LONG_MODE,          /* bzImage 64-bit entry: paging on, rsi = boot_params */
    BOOT_PVH,                /* vmlinux PVH entry: 32-bit, paging off, rbx = start_info */
};

/* What the boot vCPU must be given to enter the kernel. */
struct boot_entry {
    enum boot_mode mode;
    uint64_t rip;
    uint64_t rsi;            /* boot_params */
    uint64_t rbx;            /* hvm_start_info */
    uint64_t rsp;
    uint64_t cr3;
    uint64_t gdt_base;
    uint16_t gdt_limit;
};

#define E820_RAM      1
#define E820_RESERVED 2

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

#define BOOT_E820_MAX 128

/* The e820 map of a guest with these RAM regions. Returns the entry count. */
unsigned boot_build_e820(const struct guest_mem *mem, struct e820_entry *out, unsigned max);

/* Loads kernel (and initrd, may be NULL) into guest memory with what the
 * kernel's entry needs: for a bzImage the zero page, command line, identity
 * page tables and GDT; for an uncompressed vmlinux (ELF with a PVH note) the
 * segments, an hvm_start_info and a GDT. rsdp is the ACPI RSDP address.
 * 0, or -1 with a message on stderr that names the file and the problem. */
int boot_load_linux(struct guest_mem *mem, const char *kernel, const char *initrd,
                    const char *cmdline, uint64_t rsdp, struct boot_entry *entry);

#endif
