/* Direct boot of an x86-64 Linux bzImage through its 64-bit entry point
 * (Documentation/arch/x86/boot.rst): zero page with e820 map, command line,
 * initrd, identity page tables and a flat GDT; no firmware. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdint.h>

#include "memory.h"

/* What the boot vCPU must be given to enter the kernel. */
struct boot_entry {
    uint64_t rip;
    uint64_t rsi;            /* boot_params */
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

/* Loads kernel (and initrd, may be NULL) into guest memory, writes the zero
 * page, command line, page tables and GDT. rsdp is the ACPI RSDP address.
 * 0, or -1 with a message on stderr that names the file and the problem. */
int boot_load_linux(struct guest_mem *mem, const char *kernel, const char *initrd,
                    const char *cmdline, uint64_t rsdp, struct boot_entry *entry);

#endif
