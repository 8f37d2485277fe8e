/* The fixed parts of the machine that no device file describes: the PCIe
 * host bridge, the CMOS RTC, the HW-reduced ACPI sleep and reset registers,
 * pvpanic and the debug-exit port through which a test guest reports its
 * status. */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

struct vm;

int platform_create(struct vm *vm);
void platform_destroy(struct vm *vm);

#endif
