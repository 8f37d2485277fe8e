/*
 * DSDT of the HW-reduced ACPI platform (see vmm/acpi.c for the static
 * tables). Compiled by iasl (Makefile: build/acpi/dsdt.aml) and linked into
 * the VMM by vmm/dsdt_blob.S.
 *
 * One source of truth: every address, port and GSI comes from layout.h,
 * which iasl's preprocessor includes. That preprocessor only does object-like
 * macros (no arguments, no nested expansion) and the ASL compiler folds no
 * arithmetic inside ResourceTemplate or Package literals, so:
 *  - a value that is a layout.h constant as is goes in literally;
 *  - a value derived from constants (an end address, a length, a _PRT GSI)
 *    is computed at run time by the method that returns it: _CRS patches its
 *    template through resource-tag fields, _PRT builds its package in a loop
 *    (the same technique QEMU's i440fx DSDT uses for _PRT).
 * Check the result with: iasl -d build/acpi/dsdt.aml, or acpiexec.
 *
 * Interrupts: the guest runs with null_legacy_pic (HW-reduced), so a device
 * interrupt only works if the device is described here with its IRQ in _CRS
 * (that is how Linux 6.1's 8250_pnp finds COM1's IRQ 4 and rtc_cmos IRQ 8).
 */
#include "layout.h"

DefinitionBlock ("", "DSDT", 2, "IOVMM ", "IOVMDSDT", 0x00000001)
{
    /* Poweroff: Linux writes (SLP_TYP << 2) | SLP_EN to the FADT sleep
     * control register (HW-reduced), SLP_TYP being the first element. */
    Name (\_S5, Package (0x04)
    {
        LAYOUT_ACPI_S5_TYPE,
        LAYOUT_ACPI_S5_TYPE,
        Zero,
        Zero
    })

    Scope (\_SB)
    {
        /* PCIe host bridge: ECAM (MCFG) segment 0, buses 0..LAYOUT_ECAM_LAST_BUS. */
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))     /* PCI Express root bridge */
            Name (_CID, EisaId ("PNP0A03"))     /* PCI root bridge */
            Name (_SEG, Zero)
            Name (_BBN, Zero)
            Name (_UID, Zero)

            /* Windows decoded by the bridge. I/O: everything but the
             * 0xcf8-0xcff configuration mechanism #1 ports, so that the
             * legacy ports described below stay reachable behind it.
             * Placeholders (self-consistent so that iasl's checks pass) are
             * patched by _CRS from layout.h; the patching is idempotent. */
            Name (RBUF, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001,
                    ,, BUSN)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    NonCacheable, ReadWrite,
                    0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000001,
                    ,, MM32, AddressRangeMemory, TypeStatic)
            })

            Method (_CRS, 0, Serialized)
            {
                CreateWordField (RBUF, \_SB.PCI0.BUSN._MAX, BMAX)
                CreateWordField (RBUF, \_SB.PCI0.BUSN._LEN, BLEN)
                CreateDWordField (RBUF, \_SB.PCI0.MM32._MIN, MMIN)
                CreateDWordField (RBUF, \_SB.PCI0.MM32._MAX, MMAX)
                CreateDWordField (RBUF, \_SB.PCI0.MM32._LEN, MLEN)
                BMAX = LAYOUT_ECAM_LAST_BUS
                BLEN = LAYOUT_ECAM_LAST_BUS + 1
                MMIN = LAYOUT_MMIO32_BASE
                MMAX = LAYOUT_MMIO32_BASE + LAYOUT_MMIO32_SIZE - 1
                MLEN = LAYOUT_MMIO32_SIZE
                Return (RBUF)
            }

            /* INTx routing: slot s, pin p (0 = INTA .. 3 = INTD) goes to
             * GSI LAYOUT_GSI_PCI_INTX + (s + p) % 4, i.e. IOAPIC pins 16..19,
             * with no link device (Source = 0, Source Index = GSI).
             * Polarity: for such an entry Linux (acpi_pci_irq_enable)
             * programs the pin level-triggered, active-low, as ACPI and PCI
             * define INTx; no MADT override can change that (overrides only
             * name ISA sources). That is fine under KVM: its in-kernel IOAPIC
             * ignores the polarity bit and treats KVM_IRQ_LINE level 1 as
             * asserted, so the VMM asserts INTx with 1 and deasserts with 0. */
            Method (_PRT, 0, NotSerialized)
            {
                Local0 = Package (0x80) {}
                Local1 = Zero
                While (Local1 < 0x80)
                {
                    Local2 = Local1 >> 2                /* slot */
                    Local3 = Local1 & 0x03              /* pin */
                    Local4 = Package (0x04) { Zero, Zero, Zero, Zero }
                    Local4 [Zero] = (Local2 << 16) | 0xFFFF
                    Local4 [One] = Local3
                    Local4 [0x03] = LAYOUT_GSI_PCI_INTX + ((Local2 + Local3) % 4)
                    Local0 [Local1] = Local4
                    Local1++
                }
                Return (Local0)
            }

            /* Native control of every PCIe feature the OS asks for (there
             * is no firmware to keep any of it): echo the request back. */
            Method (_OSC, 4, NotSerialized)
            {
                CreateDWordField (Arg3, Zero, CDW1)
                If (Arg0 == ToUUID ("33db4d5b-1ff7-401c-9657-7441c03dd766"))
                {
                    If (Arg1 != One)
                    {
                        CDW1 |= 0x08                    /* unrecognized revision */
                    }
                }
                Else
                {
                    CDW1 |= 0x04                        /* unrecognized UUID */
                }
                Return (Arg3)
            }
        }

        /* Motherboard resources. Linux accepts the MCFG area only if it is
         * reserved here (pci_mmcfg_late_init: "ACPI motherboard resource"),
         * and the VMM's own ports should not be handed out to anyone. */
        Device (MBRS)
        {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE)
                IO (Decode16, LAYOUT_PORT_ACPI_SLEEP_CTL, LAYOUT_PORT_ACPI_SLEEP_CTL, 0x01, 0x01)
                IO (Decode16, LAYOUT_PORT_ACPI_SLEEP_STS, LAYOUT_PORT_ACPI_SLEEP_STS, 0x01, 0x01)
                IO (Decode16, LAYOUT_PORT_ACPI_RESET, LAYOUT_PORT_ACPI_RESET, 0x01, 0x01)
            })
        }

        /* 16550 UART, COM1. */
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, One)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, LAYOUT_PORT_COM1, LAYOUT_PORT_COM1, 0x08, 0x08)
                IRQNoFlags () {4}
            })
        }

        /* MC146818 RTC/CMOS (index/data ports). */
        Device (RTC)
        {
            Name (_HID, EisaId ("PNP0B00"))
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, LAYOUT_PORT_RTC, LAYOUT_PORT_RTC, 0x01, 0x02)
                IRQNoFlags () {8}
            })
        }

        /* pvpanic, QEMU's interface: one I/O port (Linux: pvpanic-mmio binds QEMU0001). */
        Device (PEVT)
        {
            Name (_HID, "QEMU0001")
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, LAYOUT_PORT_PVPANIC, LAYOUT_PORT_PVPANIC, 0x01, 0x01)
            })
            Name (_STA, 0x0F)
        }
    }
}
