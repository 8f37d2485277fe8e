/* Booting an uncompressed vmlinux through its PVH entry point (the Xen
 * ELF note PHYS32_ENTRY that CONFIG_PVH kernels carry): 32-bit protected
 * mode, paging off, an hvm_start_info describing command line, initrd,
 * memory map and RSDP. It skips the bzImage decompressor, which costs
 * seconds under nested software emulation. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot_internal.h"
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC          0x336ec578
#define MAX_PHDRS                64
#define MAX_NOTES_SIZE           (64 * 1024)

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 layout");

/* Where the start info, module list and memory map go: the page the zero
 * page uses for a bzImage. */
#define START_INFO  LAYOUT_BOOT_PARAMS
#define MODLIST     (LAYOUT_BOOT_PARAMS + 64)
#define MEMMAP      (LAYOUT_BOOT_PARAMS + 128)
_Static_assert(128 + BOOT_E820_MAX * sizeof(struct hvm_memmap_entry) <= 4096, "memmap fits its page");

/* The PVH entry point from the notes in [data, data+len), or 0. */
static uint32_t find_pvh_entry(const uint8_t *data, size_t len)
{
    size_t off = 0;

    while (len - off >= 12) {
        uint32_t namesz, descsz, type;
        size_t name_off = off + 12, desc_off, next;
        memcpy(&namesz, data + off, 4);
        memcpy(&descsz, data + off + 4, 4);
        memcpy(&type, data + off + 8, 4);
        desc_off = name_off + ((namesz + 3ULL) & ~3ULL);
        next = desc_off + ((descsz + 3ULL) & ~3ULL);
        if (namesz > len || descsz > len || next > len)
            return 0;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
            memcmp(data + name_off, "Xen", 4) == 0 && descsz >= 4) {
            uint32_t entry;
            memcpy(&entry, data + desc_off, 4);
            return entry;
        }
        off = next;
    }
    return 0;
}

static int load_segments(struct guest_mem *mem, int fd, const char *kernel, const Elf64_Phdr *ph,
                         unsigned n, uint64_t *kernel_end, uint32_t *entry)
{
    for (unsigned i = 0; i < n; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type == PT_LOAD && p->p_memsz) {
            uint8_t *dst = guest_mem_ptr(mem, p->p_paddr, p->p_memsz);
            /* Below 1 MiB are our boot structures and ACPI tables. */
            if (p->p_filesz > p->p_memsz || p->p_paddr < LAYOUT_KERNEL || !dst) {
                fprintf(stderr, "vmm: kernel %s: segment at 0x%llx (%llu bytes) does not fit in "
                        "guest RAM above 1 MiB\n", kernel, (unsigned long long)p->p_paddr,
                        (unsigned long long)p->p_memsz);
                return -1;
            }
            if (boot_read_full(fd, dst, p->p_filesz, (off_t)p->p_offset) < 0) {
                fprintf(stderr, "vmm: kernel %s: truncated segment\n", kernel);
                return -1;
            }
            memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
            if (p->p_paddr + p->p_memsz > *kernel_end)
                *kernel_end = p->p_paddr + p->p_memsz;
        } else if (p->p_type == PT_NOTE && !*entry && p->p_filesz <= MAX_NOTES_SIZE) {
            uint8_t *notes = malloc(p->p_filesz ? p->p_filesz : 1);
            if (notes && boot_read_full(fd, notes, p->p_filesz, (off_t)p->p_offset) == 0)
                *entry = find_pvh_entry(notes, p->p_filesz);
            free(notes);
        }
    }
    return 0;
}

static void write_start_info(struct guest_mem *mem, uint64_t rsdp, uint64_t initrd_addr,
                             uint64_t initrd_size)
{
    struct e820_entry e820[BOOT_E820_MAX];
    unsigned n = boot_build_e820(mem, e820, BOOT_E820_MAX);
    struct hvm_memmap_entry *map = guest_mem_ptr(mem, MEMMAP, n * sizeof(*map));
    struct hvm_start_info *si = guest_mem_ptr(mem, START_INFO, 4096);

    memset(si, 0, 4096);
    for (unsigned i = 0; i < n; i++)
        map[i] = (struct hvm_memmap_entry){ .addr = e820[i].addr, .size = e820[i].size,
                                            .type = e820[i].type };
    *si = (struct hvm_start_info){
        .magic = HVM_START_MAGIC, .version = 1, .cmdline_paddr = LAYOUT_CMDLINE,
        .rsdp_paddr = rsdp, .memmap_paddr = MEMMAP, .memmap_entries = n,
    };
    if (initrd_size) {
        struct hvm_modlist_entry *mod = guest_mem_ptr(mem, MODLIST, sizeof(*mod));
        *mod = (struct hvm_modlist_entry){ .paddr = initrd_addr, .size = initrd_size };
        si->nr_modules = 1;
        si->modlist_paddr = MODLIST;
    }
}

int boot_load_pvh(struct guest_mem *mem, const char *kernel, const char *initrd,
                  const char *cmdline, uint64_t rsdp, struct boot_entry *entry)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph[MAX_PHDRS];
    uint64_t kernel_end = 0, initrd_addr = 0, initrd_size = 0;
    uint32_t pvh_entry = 0;
    size_t cmdline_len = strlen(cmdline);
    int fd = open(kernel, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "vmm: kernel %s: %s\n", kernel, strerror(errno));
        return -1;
    }
    if (boot_read_full(fd, &eh, sizeof(eh), 0) < 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS ||
        boot_read_full(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff) < 0) {
        fprintf(stderr, "vmm: kernel %s: not an x86-64 ELF kernel\n", kernel);
        goto fail;
    }
    if (load_segments(mem, fd, kernel, ph, eh.e_phnum, &kernel_end, &pvh_entry) < 0)
        goto fail;
    close(fd);
    fd = -1;
    if (!pvh_entry) {
        fprintf(stderr, "vmm: kernel %s: ELF without a PVH entry point (Xen note "
                "PHYS32_ENTRY; CONFIG_PVH): boot its bzImage instead\n", kernel);
        return -1;
    }
    if (cmdline_len + 1 > LAYOUT_CMDLINE_MAX) {
        fprintf(stderr, "vmm: kernel command line is %zu bytes; at most %d fit\n", cmdline_len,
                LAYOUT_CMDLINE_MAX - 1);
        return -1;
    }
    memcpy(guest_mem_ptr(mem, LAYOUT_CMDLINE, cmdline_len + 1), cmdline, cmdline_len + 1);
    if (initrd && boot_load_initrd(mem, initrd, kernel_end, mem->regions[0].size, &initrd_addr,
                                   &initrd_size) < 0)
        return -1;
    write_start_info(mem, rsdp, initrd_addr, initrd_size);

    *entry = (struct boot_entry){ .mode = BOOT_PVH, .rip = pvh_entry, .rbx = START_INFO };
    boot_write_low_memory(mem, entry);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}
