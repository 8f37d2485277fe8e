/* Guest-physical layout of every VM, shared by the C code and the DSDT source
 * (iasl's preprocessor reads this file too, so: plain #defines of hex
 * literals, no casts, no suffixes, comments in C style only). */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

/* Low memory used by the boot path, below 1 MiB. */
#define LAYOUT_GDT              0x500
#define LAYOUT_BOOT_PARAMS      0x7000
#define LAYOUT_PML4             0x9000
#define LAYOUT_PDPT             0xa000
#define LAYOUT_PD               0xb000      /* 4 pages: identity map of 0-4 GiB */
#define LAYOUT_CMDLINE          0x20000
#define LAYOUT_CMDLINE_MAX      0x10000
#define LAYOUT_EBDA             0x9fc00     /* e820: reserved from here to 1 MiB */
#define LAYOUT_ACPI             0xe0000     /* RSDP is found by the BIOS-area scan */
#define LAYOUT_ACPI_SIZE        0x20000
#define LAYOUT_RESET_VECTOR     0xffff0     /* real-mode F000:FFF0, see boot.c */
#define LAYOUT_KERNEL           0x100000    /* protected-mode kernel load address */

/* The 32-bit hole below 4 GiB. RAM beyond LAYOUT_LOWMEM_END moves above 4 GiB. */
#define LAYOUT_LOWMEM_END       0xc0000000
#define LAYOUT_MMIO32_BASE      0xc0000000  /* PCI BAR window */
#define LAYOUT_MMIO32_SIZE      0x20000000
#define LAYOUT_ECAM_BASE        0xe0000000  /* PCIe ECAM, buses 0..LAYOUT_ECAM_LAST_BUS */
#define LAYOUT_ECAM_LAST_BUS    0
#define LAYOUT_ECAM_SIZE        0x100000
#define LAYOUT_IOAPIC           0xfec00000
#define LAYOUT_LAPIC            0xfee00000
#define LAYOUT_HIGHMEM_BASE     0x100000000

/* KVM needs three pages of guest-physical space for its own use on VT-x. */
#define LAYOUT_KVM_TSS          0xfffbd000
#define LAYOUT_KVM_IDENTITY_MAP 0xfffbc000

/* Port I/O. */
#define LAYOUT_PCI_IO_BASE      0xc000      /* PCI I/O BAR window */
#define LAYOUT_PCI_IO_SIZE      0x4000
#define LAYOUT_PORT_RTC         0x70
#define LAYOUT_PORT_COM1        0x3f8
#define LAYOUT_PORT_DEBUG_EXIT  0x501       /* guest test status, see README */
#define LAYOUT_PORT_STATS_MARK  0x502       /* guest benchmark marks (stats-marks = on) */
#define LAYOUT_PORT_PVPANIC     0x505
#define LAYOUT_PORT_ACPI_SLEEP_CTL  0x600   /* FADT sleep control register (HW-reduced) */
#define LAYOUT_PORT_ACPI_SLEEP_STS  0x601   /* FADT sleep status register */
#define LAYOUT_PORT_ACPI_RESET      0x602   /* FADT reset register */
#define LAYOUT_ACPI_RESET_VALUE     0x1
#define LAYOUT_ACPI_S5_TYPE         0x5     /* _S5 SLP_TYP written on poweroff */

/* Interrupts: IOAPIC pins are GSIs 0..23; MSI routes start after them. */
#define LAYOUT_IOAPIC_PINS      24
#define LAYOUT_GSI_SCI          9
#define LAYOUT_GSI_PCI_INTX     16          /* INTx of slot s, pin p -> 16 + (s + p) % 4 */
#define LAYOUT_GSI_MSI_FIRST    24

#endif
