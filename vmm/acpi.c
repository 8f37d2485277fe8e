/* ACPI tables of a HW-reduced ACPI platform, in the style of Cloud
 * Hypervisor and Firecracker: no FACS, no PM1/GPE blocks, no PM timer, no
 * SMI_CMD; poweroff and reset go through the FADT sleep control and reset
 * registers. The DSDT is compiled by iasl from vmm/dsdt.asl and copied in
 * unchanged (its checksum is iasl's).
 *
 * Buffer layout (every table 16-byte aligned, in this order):
 *   RSDP (offset 0) | XSDT -> FADT, MADT, MCFG | FADT -> DSDT | DSDT | MADT | MCFG
 */
#include "acpi.h"

#include <string.h>

#include "layout.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the tables are written as native structs: little-endian hosts only"
#endif

extern const uint8_t dsdt_aml_start[];
extern const uint8_t dsdt_aml_end[];

#define ACPI_OEM_ID         "IOVMM "        /* 6 bytes */
#define ACPI_OEM_REVISION   1
#define ACPI_CREATOR_ID     "IOVM"          /* 4 bytes */
#define ACPI_CREATOR_REV    1
#define ACPI_HYPERVISOR_ID  "IOVMM\0\0\0"   /* FADT hypervisor vendor identity, 8 bytes */

/* Type-0 MADT entries carry an 8-bit APIC id and 0xff is the broadcast id;
 * the IOAPIC takes id vcpus, so vcpus <= 254 keeps every id distinct. */
#define ACPI_MAX_VCPUS      254

/* ---- table layouts (ACPI 6.x), all little-endian and packed -------------- */

struct acpi_rsdp {
    char signature[8];              /* "RSD PTR " */
    uint8_t checksum;               /* over the first 20 bytes */
    char oem_id[6];
    uint8_t revision;               /* 2: ACPI 2.0+ */
    uint32_t rsdt_address;          /* 0: XSDT only */
    uint32_t length;                /* 36 */
    uint64_t xsdt_address;
    uint8_t extended_checksum;      /* over all 36 bytes */
    uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");

struct acpi_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header size");

/* Generic Address Structure. */
struct acpi_gas {
    uint8_t space_id;               /* 1: SystemIO */
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;            /* 1: byte */
    uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");

#define ACPI_GAS_SYSTEM_IO  1
#define ACPI_GAS_ACCESS_BYTE 1

#define ACPI_XSDT_ENTRIES   3           /* FADT, MADT, MCFG */

struct acpi_xsdt {
    struct acpi_header h;
    uint64_t entry[ACPI_XSDT_ENTRIES];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_xsdt) == 36 + 8 * ACPI_XSDT_ENTRIES, "XSDT size");

struct acpi_fadt {
    struct acpi_header h;
    uint32_t firmware_ctrl;         /* 36 */
    uint32_t dsdt;                  /* 40 */
    uint8_t reserved0;              /* 44 */
    uint8_t preferred_pm_profile;   /* 45 */
    uint16_t sci_int;               /* 46 */
    uint32_t smi_cmd;               /* 48 */
    uint8_t acpi_enable;            /* 52 */
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;          /* 56 */
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;            /* 88 */
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;            /* 96 */
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;            /* 104 */
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;                /* 108 */
    uint16_t iapc_boot_arch;        /* 109 */
    uint8_t reserved1;              /* 111 */
    uint32_t flags;                 /* 112 */
    struct acpi_gas reset_reg;      /* 116 */
    uint8_t reset_value;            /* 128 */
    uint16_t arm_boot_arch;         /* 129 */
    uint8_t fadt_minor_version;     /* 131 */
    uint64_t x_firmware_ctrl;       /* 132 */
    uint64_t x_dsdt;                /* 140 */
    struct acpi_gas x_pm1a_evt_blk; /* 148 */
    struct acpi_gas x_pm1b_evt_blk;
    struct acpi_gas x_pm1a_cnt_blk;
    struct acpi_gas x_pm1b_cnt_blk;
    struct acpi_gas x_pm2_cnt_blk;
    struct acpi_gas x_pm_tmr_blk;
    struct acpi_gas x_gpe0_blk;
    struct acpi_gas x_gpe1_blk;
    struct acpi_gas sleep_control_reg; /* 244 */
    struct acpi_gas sleep_status_reg;  /* 256 */
    uint64_t hypervisor_vendor_id;     /* 268 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT (revision 6) size");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH offset");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT sleep control offset");

/* FADT flags. */
#define FADT_F_WBINVD           (1u << 0)
#define FADT_F_PWR_BUTTON       (1u << 4)   /* set: no fixed-feature power button */
#define FADT_F_SLP_BUTTON       (1u << 5)   /* set: no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP    (1u << 10)
#define FADT_F_HW_REDUCED_ACPI  (1u << 20)

/* FADT IAPC_BOOT_ARCH. */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042           (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_MSI_NOT_SUPPORTED (1u << 3)
#define FADT_BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

struct acpi_madt {
    struct acpi_header h;
    uint32_t lapic_address;
    uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");

#define MADT_TYPE_LAPIC         0
#define MADT_TYPE_IOAPIC        1
#define MADT_TYPE_ISO           2
#define MADT_TYPE_LAPIC_NMI     4

struct madt_lapic {
    uint8_t type, length;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;                 /* bit 0: enabled */
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC size");

struct madt_ioapic {
    uint8_t type, length;
    uint8_t ioapic_id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC size");

struct madt_iso {
    uint8_t type, length;
    uint8_t bus;                    /* 0: ISA */
    uint8_t source;                 /* ISA IRQ */
    uint32_t gsi;
    uint16_t flags;                 /* MPS INTI flags */
} __attribute__((packed));
_Static_assert(sizeof(struct madt_iso) == 10, "MADT interrupt source override size");

struct madt_lapic_nmi {
    uint8_t type, length;
    uint8_t processor_uid;          /* 0xff: all processors */
    uint16_t flags;
    uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI size");

/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_POLARITY_HIGH   0x1
#define MPS_POLARITY_LOW    0x3
#define MPS_TRIGGER_EDGE    (0x1 << 2)
#define MPS_TRIGGER_LEVEL   (0x3 << 2)

#define MADT_ISO_COUNT      2

struct acpi_mcfg {
    struct acpi_header h;
    uint8_t reserved[8];
    struct mcfg_allocation {
        uint64_t base_address;
        uint16_t segment;
        uint8_t start_bus;
        uint8_t end_bus;
        uint32_t reserved;
    } __attribute__((packed)) alloc[1];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG size");

/* ---- helpers -------------------------------------------------------------- */

uint8_t acpi_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void header_init(struct acpi_header *h, const char sig[4], uint32_t length,
                        uint8_t revision, const char table_id[8])
{
    memcpy(h->signature, sig, 4);
    h->length = length;
    h->revision = revision;
    h->checksum = 0;
    memcpy(h->oem_id, ACPI_OEM_ID, 6);
    memcpy(h->oem_table_id, table_id, 8);
    h->oem_revision = ACPI_OEM_REVISION;
    memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
    h->creator_revision = ACPI_CREATOR_REV;
}

/* Sets the checksum of the table of len bytes that starts at p. */
static void table_seal(uint8_t *p, size_t len)
{
    struct acpi_header *h = (struct acpi_header *)p;

    h->checksum = 0;
    h->checksum = (uint8_t)(0u - acpi_checksum(p, len));
}

static struct acpi_gas gas_io8(uint16_t port)
{
    return (struct acpi_gas){
        .space_id = ACPI_GAS_SYSTEM_IO,
        .bit_width = 8,
        .bit_offset = 0,
        .access_size = ACPI_GAS_ACCESS_BYTE,
        .address = port,
    };
}

/* ---- tables --------------------------------------------------------------- */

static size_t madt_size(unsigned vcpus)
{
    return sizeof(struct acpi_madt) + vcpus * sizeof(struct madt_lapic) +
           sizeof(struct madt_ioapic) + MADT_ISO_COUNT * sizeof(struct madt_iso) +
           sizeof(struct madt_lapic_nmi);
}

static void build_fadt(uint8_t *p, uint64_t dsdt_gpa)
{
    struct acpi_fadt f;

    memset(&f, 0, sizeof(f));
    /* Revision 6 (ACPI 6.0, minor 0): the layout with the hypervisor vendor
     * identity field, 276 bytes. */
    header_init(&f.h, "FACP", sizeof(f), 6, "IOVMFACP");
    f.firmware_ctrl = 0;                    /* no FACS: optional when HW-reduced */
    f.dsdt = (uint32_t)dsdt_gpa;            /* below 4 GiB, so both pointers */
    f.x_dsdt = dsdt_gpa;
    f.preferred_pm_profile = 0;             /* unspecified */
    /* HW-reduced: Linux installs no SCI handler, but the field must still
     * name a sane GSI (the MADT overrides it to level, active-high). */
    f.sci_int = LAYOUT_GSI_SCI;
    /* No SMI_CMD, no PM1/PM2/PM timer/GPE blocks: all zero. C2/C3 not
     * supported (latencies above 100 / 1000 us mean "no such state"). */
    f.p_lvl2_lat = 0x0fff;
    f.p_lvl3_lat = 0x0fff;
    /* No century register advertised: the RTC model decides that. */
    f.century = 0;
    /* No VGA; no 8042 (Linux's i8042 driver then skips probing: it sets
     * X86_LEGACY_I8042_FIRMWARE_ABSENT); no LEGACY_DEVICES (no ISA devices
     * other than those in the DSDT); the CMOS RTC is present (so not
     * CMOS_RTC_NOT_PRESENT); MSI is supported (so not MSI_NOT_SUPPORTED). */
    f.iapc_boot_arch = FADT_BOOT_VGA_NOT_PRESENT;
    /* PWR_BUTTON/SLP_BUTTON set = no fixed-feature buttons (there are no
     * fixed events in HW-reduced ACPI; otherwise Linux would create the
     * LNXPWRBN/LNXSLPBN fixed devices for nothing). */
    f.flags = FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
              FADT_F_RESET_REG_SUP | FADT_F_HW_REDUCED_ACPI;
    f.reset_reg = gas_io8(LAYOUT_PORT_ACPI_RESET);
    f.reset_value = LAYOUT_ACPI_RESET_VALUE;
    f.fadt_minor_version = 0;
    /* Linux (acpi_hw_extended_sleep) writes ((SLP_TYP << 2) & 0x1c) | 0x20
     * (SLP_EN) to the sleep control register, SLP_TYP being the first
     * element of \_S5 (LAYOUT_ACPI_S5_TYPE), after writing 0x80 (WAK_STS,
     * write 1 to clear) to the sleep status register. */
    f.sleep_control_reg = gas_io8(LAYOUT_PORT_ACPI_SLEEP_CTL);
    f.sleep_status_reg = gas_io8(LAYOUT_PORT_ACPI_SLEEP_STS);
    memcpy(&f.hypervisor_vendor_id, ACPI_HYPERVISOR_ID, 8);

    memcpy(p, &f, sizeof(f));
    table_seal(p, sizeof(f));
}

/*
 * MADT flags: 0, i.e. PCAT_COMPAT clear: no dual 8259 is described. Linux 6.1
 * on x86 never reads that flag; what decides is the FADT's HW_REDUCED_ACPI,
 * for which acpi_generic_reduced_hw_init() installs null_legacy_pic (and no
 * PIT/HPET timer). So nr_legacy_irqs() is 0 and ISA IRQs get no identity
 * mapping: every legacy device interrupt must come from the DSDT (_CRS of
 * COM1, RTC), and the VMM must not rely on the guest programming KVM's 8259.
 * Saying "no 8259" is the truthful description of the platform the guest
 * uses, as Cloud Hypervisor and Firecracker do.
 *
 * Overrides: ISA IRQ0 -> GSI 2 (edge, high), the PC convention every OS
 * expects for the 8254. Linux 6.1 never uses it here (HW-reduced: no PIT
 * timer, no check_timer()), but for it to be true of this VMM the router
 * must send the in-kernel PIT's GSI 0 to IOAPIC pin 2, as QEMU does (KVM's
 * default routing sends it to pin 0). The SCI: ISA IRQ 9 -> GSI 9, level,
 * active-high (without it ACPI would imply level, active-low for the SCI).
 */
static void build_madt(uint8_t *p, unsigned vcpus)
{
    size_t len = madt_size(vcpus);
    struct acpi_madt m;
    size_t off = sizeof(m);

    memset(&m, 0, sizeof(m));
    header_init(&m.h, "APIC", (uint32_t)len, 4, "IOVMAPIC");   /* ACPI 6.0 */
    m.lapic_address = LAYOUT_LAPIC;
    m.flags = 0;
    memcpy(p, &m, sizeof(m));

    /* ACPI processor UID = APIC id = vCPU index, all enabled. */
    for (unsigned i = 0; i < vcpus; i++) {
        struct madt_lapic l = {
            .type = MADT_TYPE_LAPIC,
            .length = sizeof(l),
            .processor_uid = (uint8_t)i,
            .apic_id = (uint8_t)i,
            .flags = 1,
        };
        memcpy(p + off, &l, sizeof(l));
        off += sizeof(l);
    }

    /* The IOAPIC's id comes after every LAPIC id. (x86-64 Linux only needs
     * IOAPIC ids unique among IOAPICs and does not rewrite KVM's register.) */
    struct madt_ioapic io = {
        .type = MADT_TYPE_IOAPIC,
        .length = sizeof(io),
        .ioapic_id = (uint8_t)vcpus,
        .address = LAYOUT_IOAPIC,
        .gsi_base = 0,
    };
    memcpy(p + off, &io, sizeof(io));
    off += sizeof(io);

    const struct madt_iso isos[MADT_ISO_COUNT] = {
        { .type = MADT_TYPE_ISO, .length = sizeof(struct madt_iso), .bus = 0, .source = 0,
          .gsi = 2, .flags = MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE },
        { .type = MADT_TYPE_ISO, .length = sizeof(struct madt_iso), .bus = 0,
          .source = LAYOUT_GSI_SCI, .gsi = LAYOUT_GSI_SCI,
          .flags = MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL },
    };
    memcpy(p + off, isos, sizeof(isos));
    off += sizeof(isos);

    /* LINT1 of every processor is the NMI input (edge, active-high). */
    struct madt_lapic_nmi nmi = {
        .type = MADT_TYPE_LAPIC_NMI,
        .length = sizeof(nmi),
        .processor_uid = 0xff,
        .flags = MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE,
        .lint = 1,
    };
    memcpy(p + off, &nmi, sizeof(nmi));
    off += sizeof(nmi);

    table_seal(p, off);
}

static void build_mcfg(uint8_t *p)
{
    struct acpi_mcfg m;

    memset(&m, 0, sizeof(m));
    header_init(&m.h, "MCFG", sizeof(m), 1, "IOVMMCFG");
    m.alloc[0].base_address = LAYOUT_ECAM_BASE;
    m.alloc[0].segment = 0;
    m.alloc[0].start_bus = 0;
    m.alloc[0].end_bus = LAYOUT_ECAM_LAST_BUS;
    memcpy(p, &m, sizeof(m));
    table_seal(p, sizeof(m));
}

_Static_assert(LAYOUT_ECAM_SIZE == (LAYOUT_ECAM_LAST_BUS + 1) * 0x100000,
               "ECAM size must be 1 MiB per bus");

size_t acpi_build(void *buf, uint64_t gpa, size_t size, const struct acpi_platform *plat)
{
    size_t dsdt_len = (size_t)(dsdt_aml_end - dsdt_aml_start);

    if (!buf || !plat || plat->vcpus == 0 || plat->vcpus > ACPI_MAX_VCPUS ||
        dsdt_len < sizeof(struct acpi_header))
        return 0;

    /* Lay everything out first, so nothing is written unless it all fits. */
    size_t off_rsdp = 0;
    size_t off_xsdt = align16(off_rsdp + sizeof(struct acpi_rsdp));
    size_t off_fadt = align16(off_xsdt + sizeof(struct acpi_xsdt));
    size_t off_dsdt = align16(off_fadt + sizeof(struct acpi_fadt));
    size_t off_madt = align16(off_dsdt + dsdt_len);
    size_t off_mcfg = align16(off_madt + madt_size(plat->vcpus));
    size_t used = off_mcfg + sizeof(struct acpi_mcfg);

    /* Every table must be addressable by the 32-bit RSDT/DSDT pointers too. */
    if (used > size || gpa + used > 0x100000000ull)
        return 0;

    uint8_t *p = buf;
    memset(p, 0, used);

    build_fadt(p + off_fadt, gpa + off_dsdt);
    memcpy(p + off_dsdt, dsdt_aml_start, dsdt_len);
    build_madt(p + off_madt, plat->vcpus);
    build_mcfg(p + off_mcfg);

    struct acpi_xsdt x;
    memset(&x, 0, sizeof(x));
    header_init(&x.h, "XSDT", sizeof(x), 1, "IOVMXSDT");
    x.entry[0] = gpa + off_fadt;
    x.entry[1] = gpa + off_madt;
    x.entry[2] = gpa + off_mcfg;
    memcpy(p + off_xsdt, &x, sizeof(x));
    table_seal(p + off_xsdt, sizeof(x));

    struct acpi_rsdp r;
    memset(&r, 0, sizeof(r));
    memcpy(r.signature, "RSD PTR ", 8);
    memcpy(r.oem_id, ACPI_OEM_ID, 6);
    r.revision = 2;
    r.rsdt_address = 0;
    r.length = sizeof(r);
    r.xsdt_address = gpa + off_xsdt;
    r.checksum = (uint8_t)(0u - acpi_checksum(&r, 20));
    r.extended_checksum = (uint8_t)(0u - acpi_checksum(&r, sizeof(r)));
    memcpy(p + off_rsdp, &r, sizeof(r));

    return used;
}
