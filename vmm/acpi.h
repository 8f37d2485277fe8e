/* ACPI tables for a HW-reduced ACPI platform: RSDP, XSDT, FADT, DSDT, MADT,
 * MCFG. Written into guest memory at boot. */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct acpi_platform {
    unsigned vcpus;               /* LAPIC ids 0..vcpus-1 */
};

/* Builds every table into buf, which the guest sees at guest-physical gpa
 * (LAYOUT_ACPI). Returns the number of bytes used, or 0 if size is too small.
 * The RSDP is at offset 0 (so at gpa). */
size_t acpi_build(void *buf, uint64_t gpa, size_t size, const struct acpi_platform *plat);

/* Byte sum of len bytes, for checksums (0 means a valid table). */
uint8_t acpi_checksum(const void *data, size_t len);

#endif
