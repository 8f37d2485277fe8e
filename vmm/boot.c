#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "boot_internal.h"
#include "layout.h"

/* Offsets in the zero page (struct boot_params) and its setup header. */
#define BP_ACPI_RSDP        0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMDLINE_PTR  0x0c8
#define BP_E820_ENTRIES     0x1e8
#define HDR_START           0x1f1
#define HDR_SETUP_SECTS     0x1f1
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define BP_E820_TABLE       0x2d0

#define LOADFLAG_LOADED_HIGH   0x01
#define LOADFLAG_CAN_USE_HEAP  0x80
#define XLF_KERNEL_64          0x01
#define BOOT_PROTOCOL_MIN      0x020c   /* 2.12: xloadflags */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static unsigned e820_add(struct e820_entry *out, unsigned n, unsigned max, uint64_t addr,
                         uint64_t end, uint32_t type)
{
    if (end > addr && n < max)
        out[n++] = (struct e820_entry){ .addr = addr, .size = end - addr, .type = type };
    return n;
}

unsigned boot_build_e820(const struct guest_mem *mem, struct e820_entry *out, unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < mem->n_regions; i++) {
        const struct guest_region *r = &mem->regions[i];
        uint64_t end = r->gpa + r->size;
        if (r->gpa == 0) {
            /* The legacy BIOS area stays reserved: the ACPI tables live in it. */
            n = e820_add(out, n, max, 0, end < LAYOUT_EBDA ? end : LAYOUT_EBDA, E820_RAM);
            n = e820_add(out, n, max, LAYOUT_EBDA, LAYOUT_KERNEL, E820_RESERVED);
            n = e820_add(out, n, max, LAYOUT_KERNEL, end, E820_RAM);
        } else {
            n = e820_add(out, n, max, r->gpa, end, E820_RAM);
        }
        /* Linux only trusts MCFG's ECAM window when e820 reserves it. */
        if (i == 0)
            n = e820_add(out, n, max, LAYOUT_ECAM_BASE, LAYOUT_ECAM_BASE + LAYOUT_ECAM_SIZE,
                         E820_RESERVED);
    }
    return n;
}

int boot_read_full(int fd, void *dst, size_t len, off_t offset)
{
    uint8_t *p = dst;

    while (len) {
        ssize_t got = pread(fd, p, len, offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        len -= (size_t)got;
        offset += got;
    }
    return 0;
}

static void write_page_tables(struct guest_mem *mem)
{
    uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
    uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
    uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 4096);

    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = LAYOUT_PDPT | 0x3;                         /* present, writable */
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;                        /* 2 MiB page, present, writable */
}

/* Flat segments at the selectors the boot protocol names: __BOOT_CS = 0x10,
 * __BOOT_DS = 0x18; 32-bit code at 0x08 for the PVH entry; a TSS at 0x20
 * because VT-x refuses a null TR. */
static const uint64_t boot_gdt[] = {
    0,
    0x00cf9b000000ffffULL,   /* 0x08: 32-bit code, present, execute/read, accessed, 4 GiB */
    0x00af9b000000ffffULL,   /* 0x10: 64-bit code, present, execute/read, accessed */
    0x00cf93000000ffffULL,   /* 0x18: data, present, read/write, accessed, 4 GiB */
    0x00808b0000000000ULL,   /* 0x20: busy 64-bit TSS */
};

/* With no firmware, nothing sits at the reset vector, yet Linux ends its
 * reboot there on a HW-reduced ACPI machine without EFI (reboot_type falls
 * from EFI to BIOS: a real-mode jump to F000:FFF0). These bytes turn that
 * jump into a write of the ACPI reset value, which the VMM sees as a reboot:
 * mov al, VALUE; mov dx, PORT; out dx, al; hlt; jmp hlt. */
static const uint8_t reset_vector_stub[] = {
    0xb0, LAYOUT_ACPI_RESET_VALUE,
    0xba, LAYOUT_PORT_ACPI_RESET & 0xff, LAYOUT_PORT_ACPI_RESET >> 8,
    0xee,
    0xf4,
    0xeb, 0xfd,
};

int boot_load_initrd(struct guest_mem *mem, const char *initrd, uint64_t lowest, uint64_t highest,
                     uint64_t *addr_out, uint64_t *size_out)
{
    struct stat st;
    uint64_t addr;
    void *dst;
    int fd = open(initrd, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "vmm: initrd %s: %s\n", initrd, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > highest) {
        fprintf(stderr, "vmm: initrd %s: %lld bytes do not fit below the kernel's limit\n",
                initrd, (long long)st.st_size);
        close(fd);
        return -1;
    }
    addr = (highest - (uint64_t)st.st_size) & ~0xfffULL;
    if (addr < lowest) {
        fprintf(stderr, "vmm: initrd %s (%lld bytes) does not fit in guest RAM above the "
                "kernel; give the VM more memory\n", initrd, (long long)st.st_size);
        close(fd);
        return -1;
    }
    dst = guest_mem_ptr(mem, addr, (uint64_t)st.st_size);
    if (!dst || boot_read_full(fd, dst, (size_t)st.st_size, 0) < 0) {
        fprintf(stderr, "vmm: initrd %s: read failed\n", initrd);
        close(fd);
        return -1;
    }
    close(fd);
    *addr_out = addr;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

void boot_write_low_memory(struct guest_mem *mem, struct boot_entry *entry)
{
    write_page_tables(mem);
    memcpy(guest_mem_ptr(mem, LAYOUT_GDT, sizeof(boot_gdt)), boot_gdt, sizeof(boot_gdt));
    memcpy(guest_mem_ptr(mem, LAYOUT_RESET_VECTOR, sizeof(reset_vector_stub)), reset_vector_stub,
           sizeof(reset_vector_stub));
    entry->cr3 = LAYOUT_PML4;
    entry->gdt_base = LAYOUT_GDT;
    entry->gdt_limit = sizeof(boot_gdt) - 1;
}

static int load_bzimage(struct guest_mem *mem, const char *kernel, const char *initrd,
                        const char *cmdline, uint64_t rsdp, struct boot_entry *entry)
{
    uint8_t hdr[1024];
    struct stat st;
    struct e820_entry e820[BOOT_E820_MAX];
    uint8_t *zp, *dst;
    uint64_t setup_size, payload, kernel_end, low_end, initrd_max;
    unsigned setup_sects, n_e820;
    size_t cmdline_len = strlen(cmdline);
    int fd = open(kernel, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "vmm: kernel %s: %s\n", kernel, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_size < (off_t)sizeof(hdr) || boot_read_full(fd, hdr, sizeof(hdr), 0) < 0 ||
        get16(hdr + HDR_BOOT_FLAG) != 0xaa55 || memcmp(hdr + HDR_MAGIC, "HdrS", 4) != 0) {
        fprintf(stderr, "vmm: kernel %s: not a bzImage (no Linux boot header)\n", kernel);
        goto fail;
    }
    if (get16(hdr + HDR_VERSION) < BOOT_PROTOCOL_MIN ||
        !(get16(hdr + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        fprintf(stderr, "vmm: kernel %s: boot protocol %x.%02x without a 64-bit entry point; "
                "need 2.12+ with XLF_KERNEL_64\n", kernel, hdr[HDR_VERSION + 1], hdr[HDR_VERSION]);
        goto fail;
    }
    setup_sects = hdr[HDR_SETUP_SECTS] ? hdr[HDR_SETUP_SECTS] : 4;
    setup_size = (uint64_t)(setup_sects + 1) * 512;
    if ((uint64_t)st.st_size <= setup_size) {
        fprintf(stderr, "vmm: kernel %s: truncated (%lld bytes)\n", kernel, (long long)st.st_size);
        goto fail;
    }
    payload = (uint64_t)st.st_size - setup_size;

    /* The kernel decompresses itself to max(load address, pref_address) and
     * needs init_size bytes there; everything must stay in low RAM. */
    low_end = mem->regions[0].size;
    kernel_end = get64(hdr + HDR_PREF_ADDRESS) > LAYOUT_KERNEL ? get64(hdr + HDR_PREF_ADDRESS)
                                                               : LAYOUT_KERNEL;
    kernel_end += get32(hdr + HDR_INIT_SIZE) > payload ? get32(hdr + HDR_INIT_SIZE) : payload;
    if (kernel_end > low_end) {
        fprintf(stderr, "vmm: kernel %s needs RAM up to %llu MiB to unpack; the VM has %llu MiB "
                "below 3 GiB\n", kernel, (unsigned long long)(kernel_end >> 20),
                (unsigned long long)(low_end >> 20));
        goto fail;
    }
    if (cmdline_len + 1 > LAYOUT_CMDLINE_MAX ||
        cmdline_len + 1 > get32(hdr + HDR_CMDLINE_SIZE) + 1ULL) {
        fprintf(stderr, "vmm: kernel command line is %zu bytes; the kernel accepts %u\n",
                cmdline_len, get32(hdr + HDR_CMDLINE_SIZE));
        goto fail;
    }

    dst = guest_mem_ptr(mem, LAYOUT_KERNEL, payload);
    if (!dst || boot_read_full(fd, dst, payload, (off_t)setup_size) < 0) {
        fprintf(stderr, "vmm: kernel %s: read failed\n", kernel);
        goto fail;
    }
    close(fd);
    fd = -1;

    /* Zero page: the setup header as the kernel file has it, then ours. */
    zp = guest_mem_ptr(mem, LAYOUT_BOOT_PARAMS, 4096);
    memset(zp, 0, 4096);
    memcpy(zp + HDR_START, hdr + HDR_START, (size_t)(HDR_JUMP + 2 + hdr[HDR_JUMP + 1] - HDR_START));
    zp[HDR_TYPE_OF_LOADER] = 0xff;
    zp[HDR_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP | LOADFLAG_LOADED_HIGH;
    put16(zp + HDR_HEAP_END_PTR, 0xfe00);
    put32(zp + HDR_CMD_LINE_PTR, LAYOUT_CMDLINE);
    put32(zp + BP_EXT_CMDLINE_PTR, 0);
    memcpy(guest_mem_ptr(mem, LAYOUT_CMDLINE, cmdline_len + 1), cmdline, cmdline_len + 1);
    put64(zp + BP_ACPI_RSDP, rsdp);

    if (initrd) {
        uint64_t addr, size;
        initrd_max = (uint64_t)get32(hdr + HDR_INITRD_ADDR_MAX) + 1;
        if (initrd_max > low_end)
            initrd_max = low_end;
        if (boot_load_initrd(mem, initrd, kernel_end, initrd_max, &addr, &size) < 0)
            return -1;
        put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
        put32(zp + HDR_RAMDISK_SIZE, (uint32_t)size);
        put32(zp + BP_EXT_RAMDISK_IMG, (uint32_t)(addr >> 32));
        put32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(size >> 32));
    }

    n_e820 = boot_build_e820(mem, e820, BOOT_E820_MAX);
    zp[BP_E820_ENTRIES] = (uint8_t)n_e820;
    memcpy(zp + BP_E820_TABLE, e820, n_e820 * sizeof(e820[0]));

    *entry = (struct boot_entry){
        .mode = BOOT_LONG_MODE,
        .rip = LAYOUT_KERNEL + 0x200,    /* startup_64 of the compressed kernel */
        .rsi = LAYOUT_BOOT_PARAMS,
        .rsp = LAYOUT_BOOT_PARAMS,       /* stack grows down from the zero page */
    };
    boot_write_low_memory(mem, entry);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

int boot_load_linux(struct guest_mem *mem, const char *kernel, const char *initrd,
                    const char *cmdline, uint64_t rsdp, struct boot_entry *entry)
{
    uint8_t magic[4] = { 0 };
    int fd = open(kernel, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "vmm: kernel %s: %s\n", kernel, strerror(errno));
        return -1;
    }
    boot_read_full(fd, magic, sizeof(magic), 0);
    close(fd);
    /* An uncompressed vmlinux (ELF) boots through its PVH entry point and
     * skips the decompressor; anything else must be a bzImage. */
    if (memcmp(magic, "\x7f" "ELF", 4) == 0)
        return boot_load_pvh(mem, kernel, initrd, cmdline, rsdp, entry);
    return load_bzimage(mem, kernel, initrd, cmdline, rsdp, entry);
}
