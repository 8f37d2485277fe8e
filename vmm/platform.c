#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "layout.h"
#include "pci.h"
#include "platform.h"
#include "rtc.h"
#include "stats.h"
#include "vm.h"

#define SLEEP_CTL_SLP_EN   0x20
#define SLEEP_CTL_TYP(v)   (((v) >> 2) & 0x7)
#define PVPANIC_PANICKED   0x1

struct platform {
    struct vm *vm;
    struct device acpi_dev, debug_exit_dev, stats_mark_dev, pvpanic_dev, rtc_dev, host_bridge_dev, post_dev;
    struct cmos_rtc *rtc;
};

static void acpi_ports_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct platform *p = opaque;
    uint8_t v = *(uint8_t *)data;

    if (!is_write) {
        memset(data, 0, len);   /* sleep status: never asleep, no wake events */
        return;
    }
    if (offset == LAYOUT_PORT_ACPI_SLEEP_CTL - LAYOUT_PORT_ACPI_SLEEP_CTL && (v & SLEEP_CTL_SLP_EN)) {
        if (SLEEP_CTL_TYP(v) == LAYOUT_ACPI_S5_TYPE)
            vm_request_stop(p->vm, VM_STOP_POWEROFF, VMM_EXIT_OK);
        /* S1-S4 are not offered in the DSDT; a guest that asks anyway keeps running. */
    } else if (offset == LAYOUT_PORT_ACPI_RESET - LAYOUT_PORT_ACPI_SLEEP_CTL &&
               v == LAYOUT_ACPI_RESET_VALUE) {
        vm_request_stop(p->vm, VM_STOP_REBOOT, VMM_EXIT_OK);
    }
}

/* A test guest writes one byte N here and the VMM exits with status N (see
 * README, "Reporting a status from the guest"). */
static void debug_exit_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct platform *p = opaque;

    (void)offset;
    if (!is_write) {
        memset(data, 0xff, len);
        return;
    }
    vm_request_stop(p->vm, VM_STOP_DEBUG_EXIT, *(uint8_t *)data);
}

/* A benchmark guest writes a mark id here; see stats_mark_record. */
static void stats_mark_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct platform *p = opaque;

    (void)offset;
    if (!is_write) {
        memset(data, 0xff, len);
        return;
    }
    stats_mark_record(p->vm, *(uint8_t *)data);
}

static void pvpanic_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct platform *p = opaque;

    (void)offset;
    if (!is_write) {
        memset(data, 0, len);
        *(uint8_t *)data = PVPANIC_PANICKED;   /* the events we support */
        return;
    }
    if (*(uint8_t *)data & PVPANIC_PANICKED) {
        fprintf(stderr, "vmm: guest kernel panic (pvpanic)\n");
        vm_request_stop(p->vm, VM_STOP_PANIC, VMM_EXIT_GUEST_PANIC);
    }
}

/* Port 0x80 is where Linux sends its I/O delays; a sink keeps them out of
 * the unhandled-access count. */
static void post_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    (void)opaque;
    (void)offset;
    if (!is_write)
        memset(data, 0xff, len);
}

static void platform_device(struct vm *vm, struct device *dev, const char *id, const char *model)
{
    *dev = (struct device){ .id = id, .class_name = "platform", .path_name = "emulated",
                            .model = model };
    vm_add_device(vm, dev);
}

int platform_create(struct vm *vm)
{
    struct platform *p = calloc(1, sizeof(*p));

    if (!p)
        return -1;
    p->vm = vm;
    vm->platform = p;
    p->rtc = cmos_rtc_create(NULL);
    if (!p->rtc)
        return -1;
    platform_device(vm, &p->acpi_dev, "acpi", "hw-reduced");
    platform_device(vm, &p->pvpanic_dev, "pvpanic", "pvpanic");
    platform_device(vm, &p->rtc_dev, "rtc", "mc146818");
    platform_device(vm, &p->host_bridge_dev, "pci-host", "pcie-host-bridge");
    platform_device(vm, &p->post_dev, "post", "port80");

    if (iobus_register(&vm->pio, LAYOUT_PORT_ACPI_SLEEP_CTL, 3, acpi_ports_io, p, &p->acpi_dev) ||
        iobus_register(&vm->pio, LAYOUT_PORT_PVPANIC, 1, pvpanic_io, p, &p->pvpanic_dev) ||
        iobus_register(&vm->pio, LAYOUT_PORT_RTC, 2, cmos_rtc_io, p->rtc, &p->rtc_dev) ||
        iobus_register(&vm->pio, 0x80, 1, post_io, p, &p->post_dev)) {
        fprintf(stderr, "vmm: platform ports overlap\n");
        return -1;
    }
    /* Only on request: a guest writing at random must not be able to end the
     * VM through a test facility. */
    if (vm->cfg->debug_exit) {
        platform_device(vm, &p->debug_exit_dev, "debug-exit", "debug-exit");
        if (iobus_register(&vm->pio, LAYOUT_PORT_DEBUG_EXIT, 1, debug_exit_io, p,
                           &p->debug_exit_dev)) {
            fprintf(stderr, "vmm: debug-exit port overlaps\n");
            return -1;
        }
    }
    if (vm->cfg->stats_marks) {
        vm->stats_marks = stats_marks_create();
        platform_device(vm, &p->stats_mark_dev, "stats-marks", "stats-marks");
        if (!vm->stats_marks ||
            iobus_register(&vm->pio, LAYOUT_PORT_STATS_MARK, 1, stats_mark_io, p,
                           &p->stats_mark_dev)) {
            fprintf(stderr, "vmm: cannot set up the stats-marks port\n");
            return -1;
        }
    }
    vm->pci = pci_bus_create(vm, &p->host_bridge_dev);
    return vm->pci ? 0 : -1;
}

void platform_destroy(struct vm *vm)
{
    struct platform *p = vm->platform;

    pci_bus_destroy(vm->pci);
    vm->pci = NULL;
    if (!p)
        return;
    if (p->rtc)
        cmos_rtc_destroy(p->rtc);
    free(p);
    vm->platform = NULL;
}
