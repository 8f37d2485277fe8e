/* ACPI tables: RSDP and its checksums, XSDT -> FADT/MADT/MCFG, FADT -> DSDT,
 * every checksum, the MADT for 1, 2 and 64 vCPUs, MCFG against the layout,
 * the FADT's HW-reduced registers, the iasl-built DSDT, and buffers too small
 * (or platforms invalid) to build into. The tables are decoded here by byte
 * offset, independently of the structs in acpi.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acpi.h"
#include "layout.h"

extern const uint8_t dsdt_aml_start[];
extern const uint8_t dsdt_aml_end[];

#define BUF_SIZE LAYOUT_ACPI_SIZE

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

struct built {
    uint8_t *buf;
    uint64_t gpa;
    size_t used;
};

static struct built build(unsigned vcpus, uint64_t gpa)
{
    struct acpi_platform plat = { .vcpus = vcpus };
    struct built b = { .buf = malloc(BUF_SIZE), .gpa = gpa };

    assert_non_null(b.buf);
    memset(b.buf, 0xa5, BUF_SIZE);
    b.used = acpi_build(b.buf, gpa, BUF_SIZE, &plat);
    assert_true(b.used > 0);
    assert_true(b.used <= BUF_SIZE);
    for (size_t i = b.used; i < BUF_SIZE; i++)     /* nothing written past "used" */
        if (b.buf[i] != 0xa5)
            fail_msg("byte %zu past the %zu used was written", i, b.used);
    return b;
}

/* The table at guest-physical addr, which must lie wholly in the buffer. */
static const uint8_t *table_at(const struct built *b, uint64_t addr)
{
    assert_true(addr >= b->gpa);
    uint64_t off = addr - b->gpa;
    assert_true(off + 36 <= b->used);
    const uint8_t *t = b->buf + off;
    uint32_t len = rd32(t + 4);
    assert_true(len >= 36);
    assert_true(off + len <= b->used);
    return t;
}

static const uint8_t *xsdt_of(const struct built *b)
{
    return table_at(b, rd64(b->buf + 24));
}

/* The XSDT entry with signature sig; fails unless there is exactly one. */
static const uint8_t *find_table(const struct built *b, const char sig[4])
{
    const uint8_t *x = xsdt_of(b);
    uint32_t n = (rd32(x + 4) - 36) / 8;
    const uint8_t *found = NULL;

    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *t = table_at(b, rd64(x + 36 + 8 * i));
        if (memcmp(t, sig, 4) == 0) {
            assert_null(found);
            found = t;
        }
    }
    assert_non_null(found);
    return found;
}

static void assert_table_ok(const uint8_t *t, const char sig[4])
{
    assert_memory_equal(t, sig, 4);
    assert_int_equal(acpi_checksum(t, rd32(t + 4)), 0);
    assert_memory_equal(t + 10, "IOVMM ", 6);
}

/* ---- RSDP, XSDT, checksums ------------------------------------------------ */

static void test_checksum_helper(void **state)
{
    (void)state;
    const uint8_t d[] = { 0x01, 0x02, 0xff, 0x10 };

    assert_int_equal(acpi_checksum(d, 0), 0);
    assert_int_equal(acpi_checksum(d, 4), 0x12);
}

static void test_rsdp(void **state)
{
    (void)state;
    struct built b = build(2, LAYOUT_ACPI);
    const uint8_t *r = b.buf;

    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(acpi_checksum(r, 20), 0);
    assert_int_equal(acpi_checksum(r, 36), 0);
    assert_int_equal(r[15], 2);                 /* revision */
    assert_int_equal(rd32(r + 20), 36);         /* length */
    assert_memory_equal(r + 9, "IOVMM ", 6);
    /* The XSDT is inside the buffer, after the RSDP. */
    uint64_t xsdt = rd64(r + 24);
    assert_true(xsdt >= LAYOUT_ACPI + 36);
    assert_table_ok(table_at(&b, xsdt), "XSDT");
    /* Linux scans 0xe0000-0xfffff on 16-byte boundaries for the RSDP. */
    assert_int_equal(LAYOUT_ACPI % 16, 0);
    assert_true(LAYOUT_ACPI >= 0xe0000 && LAYOUT_ACPI + 36 <= 0x100000);
    free(b.buf);
}

static void test_xsdt_entries(void **state)
{
    (void)state;
    struct built b = build(2, LAYOUT_ACPI);
    const uint8_t *x = xsdt_of(&b);
    const char *want[] = { "FACP", "APIC", "MCFG" };

    assert_table_ok(x, "XSDT");
    assert_int_equal(rd32(x + 4), 36 + 8 * 3);
    for (int i = 0; i < 3; i++) {
        const uint8_t *t = table_at(&b, rd64(x + 36 + 8 * i));
        assert_memory_equal(t, want[i], 4);
        /* 8-byte aligned in guest memory */
        assert_int_equal(rd64(x + 36 + 8 * i) % 8, 0);
    }
    free(b.buf);
}

static void test_every_checksum(void **state)
{
    (void)state;
    const unsigned counts[] = { 1, 2, 64 };

    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        struct built b = build(counts[c], LAYOUT_ACPI);
        const uint8_t *x = xsdt_of(&b);

        assert_int_equal(acpi_checksum(x, rd32(x + 4)), 0);
        for (uint32_t i = 0; i < (rd32(x + 4) - 36) / 8; i++) {
            const uint8_t *t = table_at(&b, rd64(x + 36 + 8 * i));
            assert_int_equal(acpi_checksum(t, rd32(t + 4)), 0);
        }
        const uint8_t *fadt = find_table(&b, "FACP");
        const uint8_t *dsdt = table_at(&b, rd64(fadt + 140));
        assert_table_ok(dsdt, "DSDT");
        free(b.buf);
    }
}

/* Pointers are guest-physical: building for another gpa moves them all. */
static void test_gpa_relocation(void **state)
{
    (void)state;
    struct built a = build(4, LAYOUT_ACPI);
    struct built b = build(4, 0x80000);

    assert_int_equal(a.used, b.used);
    assert_int_equal(rd64(a.buf + 24) - LAYOUT_ACPI, rd64(b.buf + 24) - 0x80000);
    const uint8_t *fa = find_table(&a, "FACP");
    const uint8_t *fb = find_table(&b, "FACP");
    assert_int_equal(rd64(fa + 140) - LAYOUT_ACPI, rd64(fb + 140) - 0x80000);
    /* Same content apart from pointers and checksums: the MADTs match. */
    const uint8_t *ma = find_table(&a, "APIC");
    const uint8_t *mb = find_table(&b, "APIC");
    assert_memory_equal(ma, mb, rd32(ma + 4));
    free(a.buf);
    free(b.buf);
}

/* ---- FADT ----------------------------------------------------------------- */

static void assert_gas_io8(const uint8_t *g, uint16_t port)
{
    assert_int_equal(g[0], 1);          /* SystemIO */
    assert_int_equal(g[1], 8);          /* bit width */
    assert_int_equal(g[2], 0);          /* bit offset */
    assert_int_equal(g[3], 1);          /* byte access */
    assert_int_equal(rd64(g + 4), port);
}

static void test_fadt(void **state)
{
    (void)state;
    struct built b = build(2, LAYOUT_ACPI);
    const uint8_t *f = find_table(&b, "FACP");

    assert_table_ok(f, "FACP");
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);                          /* revision */

    uint32_t flags = rd32(f + 112);
    assert_true(flags & (1u << 20));                    /* HW_REDUCED_ACPI */
    assert_true(flags & (1u << 10));                    /* RESET_REG_SUP */
    assert_true(flags & (1u << 4));                     /* no fixed power button */
    assert_true(flags & (1u << 5));                     /* no fixed sleep button */
    assert_false(flags & (1u << 8));                    /* no PM timer, so no TMR_VAL_EXT */

    uint16_t boot = rd16(f + 109);
    assert_true(boot & (1u << 2));                      /* VGA not present */
    assert_false(boot & (1u << 1));                     /* no 8042 */
    assert_false(boot & (1u << 0));                     /* no LEGACY_DEVICES */
    assert_false(boot & (1u << 3));                     /* MSI supported */
    assert_false(boot & (1u << 5));                     /* CMOS RTC present */

    assert_int_equal(rd16(f + 46), LAYOUT_GSI_SCI);
    assert_int_equal(rd32(f + 48), 0);                  /* SMI_CMD */
    for (int off = 56; off < 88; off += 4)              /* PM1/PM2/PM_TMR/GPE blocks */
        assert_int_equal(rd32(f + off), 0);
    for (int off = 148; off < 244; off++)               /* X_ PM/GPE blocks */
        assert_int_equal(f[off], 0);
    assert_int_equal(rd32(f + 36), 0);                  /* no FACS */
    assert_int_equal(rd64(f + 132), 0);

    assert_gas_io8(f + 116, LAYOUT_PORT_ACPI_RESET);
    assert_int_equal(f[128], LAYOUT_ACPI_RESET_VALUE);
    assert_gas_io8(f + 244, LAYOUT_PORT_ACPI_SLEEP_CTL);
    assert_gas_io8(f + 256, LAYOUT_PORT_ACPI_SLEEP_STS);
    assert_true(rd64(f + 268) != 0);                    /* hypervisor vendor */

    /* DSDT reached both ways, and it is the blob. */
    uint64_t x_dsdt = rd64(f + 140);
    assert_int_equal(rd32(f + 40), x_dsdt);
    const uint8_t *d = table_at(&b, x_dsdt);
    size_t len = (size_t)(dsdt_aml_end - dsdt_aml_start);
    assert_int_equal(rd32(d + 4), len);
    assert_memory_equal(d, dsdt_aml_start, len);
    free(b.buf);
}

/* ---- MADT ----------------------------------------------------------------- */

static void check_madt(unsigned vcpus)
{
    struct built b = build(vcpus, LAYOUT_ACPI);
    const uint8_t *m = find_table(&b, "APIC");
    uint32_t len = rd32(m + 4);
    unsigned lapics = 0, ioapics = 0, nmis = 0, isos = 0, other = 0;
    uint8_t lapic_seen[256] = { 0 };
    int ioapic_id = -1;
    int iso0 = 0, iso9 = 0;

    assert_table_ok(m, "APIC");
    assert_int_equal(rd32(m + 36), LAYOUT_LAPIC);
    assert_int_equal(rd32(m + 40), 0);                  /* no PCAT_COMPAT */

    uint32_t off = 44;
    while (off < len) {
        const uint8_t *e = m + off;
        assert_true(off + 2 <= len);
        assert_true(e[1] >= 2);
        assert_true(off + e[1] <= len);
        switch (e[0]) {
        case 0:                                         /* Processor Local APIC */
            assert_int_equal(e[1], 8);
            assert_int_equal(e[2], lapics);             /* UID = index */
            assert_int_equal(e[3], lapics);             /* APIC id = index */
            assert_int_equal(rd32(e + 4), 1);           /* enabled */
            lapic_seen[e[3]]++;
            lapics++;
            break;
        case 1:                                         /* IOAPIC */
            assert_int_equal(e[1], 12);
            assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
            assert_int_equal(rd32(e + 8), 0);           /* GSI base */
            ioapic_id = e[2];
            ioapics++;
            break;
        case 2:                                         /* Interrupt Source Override */
            assert_int_equal(e[1], 10);
            assert_int_equal(e[2], 0);                  /* ISA */
            if (e[3] == 0) {
                assert_int_equal(rd32(e + 4), 2);
                assert_int_equal(rd16(e + 8), 0x5);     /* edge, active-high */
                iso0++;
            } else if (e[3] == LAYOUT_GSI_SCI) {
                assert_int_equal(rd32(e + 4), LAYOUT_GSI_SCI);
                assert_int_equal(rd16(e + 8), 0xd);     /* level, active-high */
                iso9++;
            } else {
                fail_msg("unexpected override of IRQ %u", e[3]);
            }
            isos++;
            break;
        case 4:                                         /* Local APIC NMI */
            assert_int_equal(e[1], 6);
            assert_int_equal(e[2], 0xff);               /* all processors */
            assert_int_equal(e[5], 1);                  /* LINT1 */
            nmis++;
            break;
        default:
            other++;
            break;
        }
        off += e[1];
    }
    assert_int_equal(off, len);
    assert_int_equal(lapics, vcpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(isos, 2);
    assert_int_equal(iso0, 1);
    assert_int_equal(iso9, 1);
    assert_int_equal(nmis, 1);
    assert_int_equal(other, 0);
    assert_true(ioapic_id >= 0);
    assert_int_equal(lapic_seen[ioapic_id], 0);         /* no id collision */
    free(b.buf);
}

static void test_madt_1(void **state) { (void)state; check_madt(1); }
static void test_madt_2(void **state) { (void)state; check_madt(2); }
static void test_madt_64(void **state) { (void)state; check_madt(64); }

/* ---- MCFG ----------------------------------------------------------------- */

static void test_mcfg(void **state)
{
    (void)state;
    struct built b = build(2, LAYOUT_ACPI);
    const uint8_t *m = find_table(&b, "MCFG");

    assert_table_ok(m, "MCFG");
    assert_int_equal(rd32(m + 4), 44 + 16);             /* one allocation */
    for (int i = 36; i < 44; i++)
        assert_int_equal(m[i], 0);
    assert_int_equal(rd64(m + 44), LAYOUT_ECAM_BASE);
    assert_int_equal(rd16(m + 52), 0);                  /* segment */
    assert_int_equal(m[54], 0);                         /* start bus */
    assert_int_equal(m[55], LAYOUT_ECAM_LAST_BUS);
    assert_int_equal((uint64_t)(m[55] - m[54] + 1) << 20, LAYOUT_ECAM_SIZE);
    free(b.buf);
}

/* ---- DSDT ----------------------------------------------------------------- */

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

/* AML integer constant (ZeroOp, OneOp, BytePrefix, WordPrefix); *len gets its size. */
static uint64_t aml_int(const uint8_t *p, size_t *len)
{
    switch (p[0]) {
    case 0x00: *len = 1; return 0;
    case 0x01: *len = 1; return 1;
    case 0x0a: *len = 2; return p[1];
    case 0x0b: *len = 3; return rd16(p + 1);
    default: fail_msg("not an AML integer constant: opcode 0x%02x", p[0]);
    }
    return 0;
}

static void test_dsdt(void **state)
{
    (void)state;
    const uint8_t *d = dsdt_aml_start;
    size_t len = (size_t)(dsdt_aml_end - dsdt_aml_start);

    assert_true(len > 36);
    assert_memory_equal(d, "DSDT", 4);
    assert_int_equal(rd32(d + 4), len);
    assert_int_equal(d[8], 2);                          /* 64-bit integers */
    assert_int_equal(acpi_checksum(d, len), 0);
    assert_memory_equal(d + 10, "IOVMM ", 6);

    const char *names[] = { "PCI0", "_S5_", "_PRT", "_CRS", "_OSC", "_SEG", "_BBN",
                            "MBRS", "COM1", "RTC_", "PEVT", "QEMU0001" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!find_bytes(d, len, names[i], strlen(names[i])))
            fail_msg("DSDT lacks %s", names[i]);

    /* EisaId() encodings: PNP0A08, PNP0A03, PNP0C02, PNP0501, PNP0B00. */
    const uint8_t eisa[][4] = {
        { 0x41, 0xd0, 0x0a, 0x08 }, { 0x41, 0xd0, 0x0a, 0x03 }, { 0x41, 0xd0, 0x0c, 0x02 },
        { 0x41, 0xd0, 0x05, 0x01 }, { 0x41, 0xd0, 0x0b, 0x00 },
    };
    for (size_t i = 0; i < sizeof(eisa) / sizeof(eisa[0]); i++)
        assert_non_null(find_bytes(d, len, eisa[i], 4));

    /* Name (_S5, Package (4) { SLP_TYPa, SLP_TYPb, ... }) */
    const uint8_t *s5 = find_bytes(d, len, "_S5_", 4);
    assert_true(s5 - d + 8 < (ptrdiff_t)len);
    assert_int_equal(s5[-1], 0x08);                     /* NameOp */
    assert_int_equal(s5[4], 0x12);                      /* PackageOp */
    assert_true(s5[5] < 0x40);                          /* one-byte PkgLength */
    assert_int_equal(s5[6], 4);                         /* NumElements */
    size_t n1, n2;
    assert_int_equal(aml_int(s5 + 7, &n1), LAYOUT_ACPI_S5_TYPE);
    assert_int_equal(aml_int(s5 + 7 + n1, &n2), LAYOUT_ACPI_S5_TYPE);

    /* The layout constants reached the AML: ECAM base and size in the
     * PNP0C02 Memory32Fixed, and the MMIO32 window and INTx GSI base as
     * DWord/Byte constants in the methods. */
    const uint8_t mem32fixed[] = { 0x86, 0x09, 0x00, 0x01 };
    const uint8_t *mf = find_bytes(d, len, mem32fixed, sizeof(mem32fixed));
    assert_non_null(mf);
    assert_int_equal(rd32(mf + 4), LAYOUT_ECAM_BASE);
    assert_int_equal(rd32(mf + 8), LAYOUT_ECAM_SIZE);
    uint8_t dw[5] = { 0x0c };
    uint32_t v = LAYOUT_MMIO32_BASE;
    memcpy(dw + 1, &v, 4);
    assert_non_null(find_bytes(d, len, dw, 5));
    v = LAYOUT_MMIO32_BASE + LAYOUT_MMIO32_SIZE - 1;
    memcpy(dw + 1, &v, 4);
    assert_non_null(find_bytes(d, len, dw, 5));
}

/* ---- failure cases -------------------------------------------------------- */

static void test_too_small(void **state)
{
    (void)state;
    struct acpi_platform plat = { .vcpus = 8 };
    struct built ok = build(8, LAYOUT_ACPI);
    size_t need = ok.used;

    /* Exactly the size needed works, and gives the same bytes. */
    uint8_t *exact = malloc(need);
    assert_non_null(exact);
    assert_int_equal(acpi_build(exact, LAYOUT_ACPI, need, &plat), need);
    assert_memory_equal(exact, ok.buf, need);
    free(exact);

    /* Every smaller size: 0 and not one byte written (ASan catches writes
     * past the allocation; the canary catches writes inside it). */
    for (size_t size = 0; size < need; size++) {
        uint8_t *buf = malloc(size ? size : 1);
        assert_non_null(buf);
        memset(buf, 0x5a, size);
        assert_int_equal(acpi_build(buf, LAYOUT_ACPI, size, &plat), 0);
        for (size_t i = 0; i < size; i++)
            if (buf[i] != 0x5a)
                fail_msg("size %zu: byte %zu written", size, i);
        free(buf);
    }
    free(ok.buf);
}

static void test_invalid_platform(void **state)
{
    (void)state;
    uint8_t *buf = malloc(BUF_SIZE);
    struct acpi_platform none = { .vcpus = 0 };
    struct acpi_platform too_many = { .vcpus = 255 };
    struct acpi_platform max = { .vcpus = 254 };

    assert_non_null(buf);
    assert_int_equal(acpi_build(buf, LAYOUT_ACPI, BUF_SIZE, &none), 0);
    assert_int_equal(acpi_build(buf, LAYOUT_ACPI, BUF_SIZE, &too_many), 0);
    assert_int_equal(acpi_build(buf, LAYOUT_ACPI, BUF_SIZE, NULL), 0);
    assert_int_equal(acpi_build(NULL, LAYOUT_ACPI, BUF_SIZE, &max), 0);
    /* Tables above 4 GiB could not be reached through the 32-bit DSDT field. */
    assert_int_equal(acpi_build(buf, 0xfffffc00, BUF_SIZE, &max), 0);
    assert_true(acpi_build(buf, LAYOUT_ACPI, BUF_SIZE, &max) > 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_helper),
        cmocka_unit_test(test_rsdp),
        cmocka_unit_test(test_xsdt_entries),
        cmocka_unit_test(test_every_checksum),
        cmocka_unit_test(test_gpa_relocation),
        cmocka_unit_test(test_fadt),
        cmocka_unit_test(test_madt_1),
        cmocka_unit_test(test_madt_2),
        cmocka_unit_test(test_madt_64),
        cmocka_unit_test(test_mcfg),
        cmocka_unit_test(test_dsdt),
        cmocka_unit_test(test_too_small),
        cmocka_unit_test(test_invalid_platform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
