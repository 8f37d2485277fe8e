/* Boot layout: the e820 map around the 32-bit hole, and the zero page,
 * command line, initrd placement, page tables and GDT written for a
 * synthetic bzImage, plus refusal of kernels we cannot boot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <elf.h>

#include "boot.h"
#include "layout.h"
#include "memory.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

static void test_e820_small_vm(void **state)
{
    struct guest_mem mem = { 0 };
    struct e820_entry e[16];
    unsigned n;

    (void)state;
    mem.n_regions = guest_mem_layout(256 * MiB, mem.regions);
    n = boot_build_e820(&mem, e, 16);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, LAYOUT_EBDA);
    assert_int_equal(e[0].type, E820_RAM);
    assert_int_equal(e[1].addr, LAYOUT_EBDA);
    assert_int_equal(e[1].addr + e[1].size, LAYOUT_KERNEL);
    assert_int_equal(e[1].type, E820_RESERVED);
    assert_int_equal(e[2].addr, LAYOUT_KERNEL);
    assert_int_equal(e[2].addr + e[2].size, 256 * MiB);
    assert_int_equal(e[2].type, E820_RAM);
    assert_int_equal(e[3].addr, LAYOUT_ECAM_BASE);
    assert_int_equal(e[3].size, LAYOUT_ECAM_SIZE);
    assert_int_equal(e[3].type, E820_RESERVED);
}

static void test_e820_splits_around_the_hole(void **state)
{
    struct guest_mem mem = { 0 };
    struct e820_entry e[16];
    uint64_t ram = 0;
    unsigned n;

    (void)state;
    mem.n_regions = guest_mem_layout(4 * GiB, mem.regions);
    assert_int_equal(mem.n_regions, 2);
    assert_int_equal(mem.regions[0].size, LAYOUT_LOWMEM_END);
    assert_int_equal(mem.regions[1].gpa, LAYOUT_HIGHMEM_BASE);
    assert_int_equal(mem.regions[1].size, 4 * GiB - LAYOUT_LOWMEM_END);
    assert_int_equal(mem.regions[1].fd_offset, LAYOUT_LOWMEM_END);

    n = boot_build_e820(&mem, e, 16);
    assert_int_equal(n, 5);
    for (unsigned i = 0; i < n; i++) {
        if (e[i].type == E820_RAM)
            ram += e[i].size;
        if (i)
            assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);   /* sorted, disjoint */
        /* no RAM inside the hole */
        if (e[i].type == E820_RAM)
            assert_true(e[i].addr + e[i].size <= LAYOUT_LOWMEM_END || e[i].addr >= 4 * GiB);
    }
    assert_int_equal(ram, 4 * GiB - (LAYOUT_KERNEL - LAYOUT_EBDA));
    assert_int_equal(e[4].addr, LAYOUT_HIGHMEM_BASE);

    /* a full table stops cleanly */
    assert_int_equal(boot_build_e820(&mem, e, 2), 2);
}

static void test_guest_mem_ptr_bounds(void **state)
{
    struct guest_mem mem;

    (void)state;
    assert_int_equal(guest_mem_create(&mem, 3 * GiB + 64 * MiB, HUGEPAGES_OFF), 0);
    assert_non_null(guest_mem_ptr(&mem, 0, 4096));
    assert_non_null(guest_mem_ptr(&mem, LAYOUT_LOWMEM_END - 4096, 4096));
    assert_null(guest_mem_ptr(&mem, LAYOUT_LOWMEM_END - 4096, 4097));   /* runs into the hole */
    assert_null(guest_mem_ptr(&mem, LAYOUT_LOWMEM_END, 1));
    assert_null(guest_mem_ptr(&mem, LAYOUT_ECAM_BASE, 4));
    assert_ptr_equal(guest_mem_ptr(&mem, LAYOUT_HIGHMEM_BASE, 1), mem.base + LAYOUT_LOWMEM_END);
    assert_non_null(guest_mem_ptr(&mem, LAYOUT_HIGHMEM_BASE + 64 * MiB - 8, 8));
    assert_null(guest_mem_ptr(&mem, LAYOUT_HIGHMEM_BASE + 64 * MiB - 8, 9));
    assert_null(guest_mem_ptr(&mem, UINT64_MAX - 4, 8));                /* wraps */
    assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX));
    guest_mem_destroy(&mem);
}

/* A file with a valid boot header (protocol 2.15, 64-bit entry), 4 setup
 * sectors and a recognisable payload. Fields can be overridden after. */
static char *write_kernel(uint8_t *img, size_t size)
{
    char *path = strdup("/tmp/test-boot-kernel-XXXXXX");
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, size), (ssize_t)size);
    close(fd);
    return path;
}

static uint8_t *make_kernel(size_t *size)
{
    size_t setup = 5 * 512, payload = 64 * 1024;
    uint8_t *img = calloc(1, setup + payload);

    img[0x1f1] = 4;                       /* setup_sects */
    wr16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66;                    /* header ends at 0x268 */
    memcpy(img + 0x202, "HdrS", 4);
    wr16(img + 0x206, 0x020f);
    wr32(img + 0x22c, 0x7fffffff);        /* initrd_addr_max */
    wr16(img + 0x236, 0x3);               /* XLF_KERNEL_64 | above 4G */
    wr32(img + 0x238, 2047);              /* cmdline_size */
    wr32(img + 0x260, 16 * 1024 * 1024);  /* init_size */
    for (size_t i = 0; i < payload; i++)
        img[setup + i] = (uint8_t)(i * 7);
    *size = setup + payload;
    return img;
}

static char *write_initrd(size_t size)
{
    uint8_t *buf = malloc(size);
    char *path;

    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)(i ^ 0x5a);
    path = write_kernel(buf, size);
    free(buf);
    return path;
}

static void test_load_writes_zero_page(void **state)
{
    struct guest_mem mem;
    struct boot_entry entry;
    size_t size;
    uint8_t *img = make_kernel(&size);
    char *kernel = write_kernel(img, size);
    char *initrd = write_initrd(100000);
    const uint8_t *zp, *payload;
    const uint64_t *pml4, *pd;
    uint32_t rd_addr;

    (void)state;
    assert_int_equal(guest_mem_create(&mem, 128 * MiB, HUGEPAGES_OFF), 0);
    assert_int_equal(boot_load_linux(&mem, kernel, initrd, "console=ttyS0 quiet", 0xe0000, &entry), 0);

    zp = guest_mem_ptr(&mem, LAYOUT_BOOT_PARAMS, 4096);
    assert_memory_equal(zp + 0x202, "HdrS", 4);
    assert_int_equal(zp[0x210], 0xff);                          /* type_of_loader */
    assert_true(zp[0x211] & 0x80);                              /* CAN_USE_HEAP */
    assert_int_equal(rd32(zp + 0x228), LAYOUT_CMDLINE);
    assert_string_equal((const char *)guest_mem_ptr(&mem, LAYOUT_CMDLINE, 1), "console=ttyS0 quiet");
    assert_int_equal(rd64(zp + 0x070), 0xe0000);                /* acpi_rsdp_addr */
    assert_int_equal(zp[0x1e8], 4);                             /* e820 entries */
    assert_int_equal(rd64(zp + 0x2d0 + 2 * 20 + 8), 127 * MiB); /* usable above 1 MiB */

    /* initrd: page aligned, at the top of RAM, byte-exact */
    rd_addr = rd32(zp + 0x218);
    assert_int_equal(rd32(zp + 0x21c), 100000);
    assert_int_equal(rd_addr & 0xfff, 0);
    assert_true(rd_addr + 100000 <= 128 * MiB);
    assert_true(rd_addr + 100000 > 128 * MiB - 4096);
    assert_int_equal(*(uint8_t *)guest_mem_ptr(&mem, rd_addr + 99999, 1), (uint8_t)(99999 ^ 0x5a));

    /* the protected-mode payload is at 1 MiB */
    payload = guest_mem_ptr(&mem, LAYOUT_KERNEL, 65536);
    assert_memory_equal(payload, img + 5 * 512, 65536);

    /* entry state: 64-bit entry point, identity-mapped first 4 GiB */
    assert_int_equal(entry.rip, LAYOUT_KERNEL + 0x200);
    assert_int_equal(entry.rsi, LAYOUT_BOOT_PARAMS);
    assert_int_equal(entry.cr3, LAYOUT_PML4);
    pml4 = guest_mem_ptr(&mem, LAYOUT_PML4, 4096);
    pd = guest_mem_ptr(&mem, LAYOUT_PD, 4 * 4096);
    assert_int_equal(pml4[0] & ~0xfffULL, LAYOUT_PDPT);
    assert_int_equal(pd[0], 0x83);
    assert_int_equal(pd[2047], (2047ULL << 21) | 0x83);
    /* GDT: code at 0x10 with L set, data at 0x18 */
    assert_true(((const uint64_t *)guest_mem_ptr(&mem, LAYOUT_GDT, 40))[2] & (1ULL << 53));
    assert_int_equal(entry.gdt_limit, 39);

    guest_mem_destroy(&mem);
    unlink(kernel);
    unlink(initrd);
    free(kernel);
    free(initrd);
    free(img);
}

static int try_load(uint8_t *img, size_t size, uint64_t ram, const char *cmdline, size_t initrd_size)
{
    struct guest_mem mem;
    struct boot_entry entry;
    char *kernel = write_kernel(img, size);
    char *initrd = initrd_size ? write_initrd(initrd_size) : NULL;
    int ret;

    assert_int_equal(guest_mem_create(&mem, ram, HUGEPAGES_OFF), 0);
    ret = boot_load_linux(&mem, kernel, initrd, cmdline, 0xe0000, &entry);
    guest_mem_destroy(&mem);
    unlink(kernel);
    free(kernel);
    if (initrd) {
        unlink(initrd);
        free(initrd);
    }
    return ret;
}

static void test_refuses_what_it_cannot_boot(void **state)
{
    size_t size;
    uint8_t *img = make_kernel(&size);
    char *long_cmdline = malloc(4096);

    (void)state;
    assert_int_equal(try_load(img, size, 64 * MiB, "x", 0), 0);

    memcpy(img + 0x202, "HdrX", 4);                       /* not a bzImage */
    assert_int_equal(try_load(img, size, 64 * MiB, "x", 0), -1);
    memcpy(img + 0x202, "HdrS", 4);

    wr16(img + 0x236, 0x2);                               /* no 64-bit entry */
    assert_int_equal(try_load(img, size, 64 * MiB, "x", 0), -1);
    wr16(img + 0x236, 0x3);

    wr16(img + 0x206, 0x020b);                            /* protocol too old */
    assert_int_equal(try_load(img, size, 64 * MiB, "x", 0), -1);
    wr16(img + 0x206, 0x020f);

    wr32(img + 0x260, 80 * 1024 * 1024);                  /* unpacks past the RAM */
    assert_int_equal(try_load(img, size, 64 * MiB, "x", 0), -1);
    wr32(img + 0x260, 16 * 1024 * 1024);

    memset(long_cmdline, 'a', 4095);                      /* over cmdline_size */
    long_cmdline[4095] = '\0';
    assert_int_equal(try_load(img, size, 64 * MiB, long_cmdline, 0), -1);

    /* an initrd that cannot fit above the unpacked kernel */
    assert_int_equal(try_load(img, size, 32 * MiB, "x", 20 * MiB), -1);

    assert_int_equal(try_load(img, 600, 64 * MiB, "x", 0), -1);   /* truncated */
    free(long_cmdline);
    free(img);
}

/* A minimal x86-64 ELF kernel: one PT_LOAD at 16 MiB with a bss tail, and a
 * PT_NOTE holding the Xen PHYS32_ENTRY note (unless with_note is false). */
static char *write_elf_kernel(bool with_note, uint64_t paddr)
{
    uint8_t img[8192] = { 0 };
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));
    uint32_t note[5] = { 4, 4, 18, 0, 0x01000850 };   /* namesz, descsz, type, "Xen\0", entry */

    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_machine = EM_X86_64;
    eh->e_phoff = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = with_note ? 2 : 1;
    ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 4096, .p_paddr = paddr,
                          .p_filesz = 4096, .p_memsz = 3 * 4096 };
    memcpy(&note[3], "Xen", 4);
    memcpy(img + 2048, note, sizeof(note));
    ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 2048, .p_filesz = sizeof(note) };
    memset(img + 4096, 0xcc, 4096);
    return write_kernel(img, sizeof(img));
}

static void test_pvh_elf_kernel(void **state)
{
    struct guest_mem mem;
    struct boot_entry entry;
    char *kernel = write_elf_kernel(true, 16 * MiB);
    char *initrd = write_initrd(5000);
    const uint8_t *si, *seg;

    (void)state;
    assert_int_equal(guest_mem_create(&mem, 64 * MiB, HUGEPAGES_OFF), 0);
    memset(guest_mem_ptr(&mem, 16 * MiB + 4096, 8192), 0x77, 8192);   /* bss must be zeroed */
    assert_int_equal(boot_load_linux(&mem, kernel, initrd, "console=ttyS0", 0xe0000, &entry), 0);
    assert_int_equal(entry.mode, BOOT_PVH);
    assert_int_equal(entry.rip, 0x01000850);
    assert_int_equal(entry.rbx, LAYOUT_BOOT_PARAMS);

    seg = guest_mem_ptr(&mem, 16 * MiB, 3 * 4096);
    assert_int_equal(seg[0], 0xcc);
    assert_int_equal(seg[4095], 0xcc);
    assert_int_equal(seg[4096], 0);
    assert_int_equal(seg[3 * 4096 - 1], 0);

    si = guest_mem_ptr(&mem, LAYOUT_BOOT_PARAMS, 56);
    assert_int_equal(rd32(si + 0), 0x336ec578);                 /* magic */
    assert_int_equal(rd32(si + 4), 1);                          /* version */
    assert_int_equal(rd32(si + 12), 1);                         /* one module: the initrd */
    assert_int_equal(rd64(si + 24), LAYOUT_CMDLINE);
    assert_string_equal((const char *)guest_mem_ptr(&mem, LAYOUT_CMDLINE, 1), "console=ttyS0");
    assert_int_equal(rd64(si + 32), 0xe0000);                   /* rsdp */
    assert_int_equal(rd32(si + 48), 4);                         /* memmap entries */
    {
        const uint8_t *mod = guest_mem_ptr(&mem, rd64(si + 16), 32);
        const uint8_t *map = guest_mem_ptr(&mem, rd64(si + 40), 4 * 24);
        assert_int_equal(rd64(mod + 8), 5000);
        assert_true(rd64(mod) >= 16 * MiB + 3 * 4096);          /* above the kernel */
        assert_int_equal(rd64(map + 2 * 24), LAYOUT_KERNEL);     /* RAM above 1 MiB */
        assert_int_equal(rd32(map + 2 * 24 + 16), E820_RAM);
    }
    guest_mem_destroy(&mem);
    unlink(kernel);
    unlink(initrd);
    free(kernel);
    free(initrd);
}

static void test_pvh_refusals(void **state)
{
    struct guest_mem mem;
    struct boot_entry entry;
    char *no_note = write_elf_kernel(false, 16 * MiB);
    char *low = write_elf_kernel(true, 0x8000);            /* over our boot structures */
    char *high = write_elf_kernel(true, 64 * MiB - 4096);  /* runs past the RAM */

    (void)state;
    assert_int_equal(guest_mem_create(&mem, 64 * MiB, HUGEPAGES_OFF), 0);
    assert_int_equal(boot_load_linux(&mem, no_note, NULL, "x", 0xe0000, &entry), -1);
    assert_int_equal(boot_load_linux(&mem, low, NULL, "x", 0xe0000, &entry), -1);
    assert_int_equal(boot_load_linux(&mem, high, NULL, "x", 0xe0000, &entry), -1);
    guest_mem_destroy(&mem);
    for (char **p = (char *[]){ no_note, low, high, NULL }; *p; p++) {
        unlink(*p);
        free(*p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e820_small_vm),
        cmocka_unit_test(test_e820_splits_around_the_hole),
        cmocka_unit_test(test_guest_mem_ptr_bounds),
        cmocka_unit_test(test_load_writes_zero_page),
        cmocka_unit_test(test_refuses_what_it_cannot_boot),
        cmocka_unit_test(test_pvh_elf_kernel),
        cmocka_unit_test(test_pvh_refusals),
    };
    return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
