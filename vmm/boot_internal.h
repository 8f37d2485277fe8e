/* What the bzImage and PVH loaders share. */
#ifndef VMM_BOOT_INTERNAL_H
#define VMM_BOOT_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "boot.h"

/* Reads exactly len bytes at offset from fd into dst. 0 or -1. */
int boot_read_full(int fd, void *dst, size_t len, off_t offset);
/* Puts the initrd page-aligned as high as possible below highest and not
 * below lowest. 0 or -1 (having said why). */
int boot_load_initrd(struct guest_mem *mem, const char *initrd, uint64_t lowest, uint64_t highest,
                     uint64_t *addr, uint64_t *size);
/* GDT, identity page tables and the reset-vector stub; fills the entry's
 * cr3 and GDT fields. */
void boot_write_low_memory(struct guest_mem *mem, struct boot_entry *entry);

int boot_load_pvh(struct guest_mem *mem, const char *kernel, const char *initrd,
                  const char *cmdline, uint64_t rsdp, struct boot_entry *entry);

#endif
