/* The I/O bus: overlap refusal on insert, dispatch by offset, accesses that
 * straddle a range end, removal, and per-device access counting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"
#include "iobus.h"

struct probe {
    int calls;
    uint64_t offset;
    uint32_t len;
    bool is_write;
    uint8_t written[8];
};

static void probe_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct probe *p = opaque;

    p->calls++;
    p->offset = offset;
    p->len = len;
    p->is_write = is_write;
    if (is_write)
        memcpy(p->written, data, len);
    else
        memset(data, 0xa5, len);
}

static int setup(void **state)
{
    static struct iobus bus;

    iobus_init(&bus, IOBUS_PIO);
    *state = &bus;
    return 0;
}

static int teardown(void **state)
{
    iobus_destroy(*state);
    return 0;
}

static void test_overlaps_are_refused(void **state)
{
    struct iobus *bus = *state;
    struct probe p = { 0 };

    assert_int_equal(iobus_register(bus, 0x100, 0x10, probe_io, &p, NULL), 0);
    /* same start, inside, straddling either end, enclosing */
    assert_int_equal(iobus_register(bus, 0x100, 1, probe_io, &p, NULL), -EEXIST);
    assert_int_equal(iobus_register(bus, 0x108, 4, probe_io, &p, NULL), -EEXIST);
    assert_int_equal(iobus_register(bus, 0xf8, 0x9, probe_io, &p, NULL), -EEXIST);
    assert_int_equal(iobus_register(bus, 0x10f, 0x10, probe_io, &p, NULL), -EEXIST);
    assert_int_equal(iobus_register(bus, 0x0, 0x1000, probe_io, &p, NULL), -EEXIST);
    /* touching on either side is fine */
    assert_int_equal(iobus_register(bus, 0xf0, 0x10, probe_io, &p, NULL), 0);
    assert_int_equal(iobus_register(bus, 0x110, 0x10, probe_io, &p, NULL), 0);
    assert_int_equal(bus->count, 3);
}

static void test_bad_ranges_are_refused(void **state)
{
    struct iobus *bus = *state;
    struct probe p = { 0 };

    assert_int_equal(iobus_register(bus, 0x100, 0, probe_io, &p, NULL), -EINVAL);
    assert_int_equal(iobus_register(bus, UINT64_MAX - 2, 8, probe_io, &p, NULL), -EINVAL);
    assert_int_equal(iobus_register(bus, 0x100, 4, NULL, &p, NULL), -EINVAL);
    /* the very last byte of the space is a valid range */
    assert_int_equal(iobus_register(bus, UINT64_MAX, 1, probe_io, &p, NULL), 0);
}

static void test_dispatch_hands_out_offsets(void **state)
{
    struct iobus *bus = *state;
    struct probe a = { 0 }, b = { 0 };
    uint8_t data[4] = { 1, 2, 3, 4 };

    assert_int_equal(iobus_register(bus, 0x3f8, 8, probe_io, &a, NULL), 0);
    assert_int_equal(iobus_register(bus, 0x2f8, 8, probe_io, &b, NULL), 0);

    assert_true(iobus_dispatch(bus, 0x3fd, data, 1, true));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.offset, 5);
    assert_true(a.is_write);
    assert_int_equal(a.written[0], 1);
    assert_int_equal(b.calls, 0);

    assert_true(iobus_dispatch(bus, 0x2f8, data, 2, false));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.offset, 0);
    assert_int_equal(b.len, 2);
    assert_int_equal(data[0], 0xa5);
    assert_int_equal(data[1], 0xa5);
    assert_int_equal(data[2], 3);
}

static void test_misses_and_straddles_are_not_dispatched(void **state)
{
    struct iobus *bus = *state;
    struct probe a = { 0 };
    uint8_t data[8] = { 0 };

    assert_int_equal(iobus_register(bus, 0x1000, 0x10, probe_io, &a, NULL), 0);
    assert_false(iobus_dispatch(bus, 0xfff, data, 1, false));
    assert_false(iobus_dispatch(bus, 0x1010, data, 1, false));
    assert_false(iobus_dispatch(bus, 0x100e, data, 4, true));   /* runs past the end */
    assert_false(iobus_dispatch(bus, 0x1000, data, 0, true));
    assert_true(iobus_dispatch(bus, 0x100c, data, 4, true));    /* ends exactly at the end */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.offset, 0xc);
    assert_false(iobus_dispatch(bus, UINT64_MAX, data, 8, false));
}

static void test_unregister(void **state)
{
    struct iobus *bus = *state;
    struct probe a = { 0 };
    uint8_t data[1] = { 0 };

    assert_int_equal(iobus_register(bus, 0x500, 4, probe_io, &a, NULL), 0);
    assert_int_equal(iobus_unregister(bus, 0x501), -ENOENT);   /* not a start */
    assert_int_equal(iobus_unregister(bus, 0x500), 0);
    assert_false(iobus_dispatch(bus, 0x500, data, 1, false));
    assert_int_equal(iobus_unregister(bus, 0x500), -ENOENT);
    /* the space is free again */
    assert_int_equal(iobus_register(bus, 0x4fe, 8, probe_io, &a, NULL), 0);
}

static void test_many_ranges_stay_sorted(void **state)
{
    struct iobus *bus = *state;
    struct probe p[64] = { 0 };
    uint8_t data[1];

    /* insert in a scrambled order, well past the initial capacity */
    for (unsigned i = 0; i < 64; i++) {
        unsigned k = (i * 37) % 64;
        assert_int_equal(iobus_register(bus, 0x10000 + k * 0x100, 0x80, probe_io, &p[k], NULL), 0);
    }
    for (size_t i = 1; i < bus->count; i++)
        assert_true(bus->ranges[i - 1].base < bus->ranges[i].base);
    for (unsigned k = 0; k < 64; k++) {
        assert_true(iobus_dispatch(bus, 0x10000 + k * 0x100 + 0x7f, data, 1, false));
        assert_false(iobus_dispatch(bus, 0x10000 + k * 0x100 + 0x80, data, 1, false));
        assert_int_equal(p[k].calls, 1);
        assert_int_equal(p[k].offset, 0x7f);
    }
}

static void test_accesses_are_counted_per_device(void **state)
{
    struct iobus *bus = *state;
    struct iobus mmio;
    struct device dev = { .id = "d" };
    struct probe a = { 0 };
    uint8_t data[4] = { 0 };

    assert_int_equal(iobus_register(bus, 0x60, 1, probe_io, &a, &dev), 0);
    for (int i = 0; i < 3; i++)
        assert_true(iobus_dispatch(bus, 0x60, data, 1, false));
    assert_false(iobus_dispatch(bus, 0x61, data, 1, false));
    assert_int_equal(atomic_load(&dev.stats.pio_accesses), 3);
    assert_int_equal(atomic_load(&dev.stats.mmio_accesses), 0);

    iobus_init(&mmio, IOBUS_MMIO);
    assert_int_equal(iobus_register(&mmio, 0xd0000000, 0x1000, probe_io, &a, &dev), 0);
    assert_true(iobus_dispatch(&mmio, 0xd0000ffc, data, 4, true));
    assert_int_equal(atomic_load(&dev.stats.mmio_accesses), 1);
    iobus_destroy(&mmio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overlaps_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ranges_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_hands_out_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misses_and_straddles_are_not_dispatched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ranges_stay_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accesses_are_counted_per_device, setup, teardown),
    };
    return cmocka_run_group_tests_name("iobus", tests, NULL, NULL);
}
