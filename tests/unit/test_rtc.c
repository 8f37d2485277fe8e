/* MC146818 CMOS RTC: time registers from a fixed clock, BCD/binary/12h
 * encodings, status registers, CMOS RAM, index masking, setting the time,
 * hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rtc.h"

/* 2024-02-29 13:05:09 UTC, a Thursday */
#define T_2024_02_29_130509 ((time_t)1709211909)

static time_t fake_time;

static time_t fake_now(void)
{
    return fake_time;
}

static int setup(void **state)
{
    fake_time = T_2024_02_29_130509;
    *state = cmos_rtc_create(fake_now);
    assert_non_null(*state);
    return 0;
}

static int teardown(void **state)
{
    cmos_rtc_destroy(*state);
    return 0;
}

static void wr(struct cmos_rtc *rtc, uint8_t idx, uint8_t val)
{
    cmos_rtc_io(rtc, 0, &idx, 1, true);
    cmos_rtc_io(rtc, 1, &val, 1, true);
}

static uint8_t rd(struct cmos_rtc *rtc, uint8_t idx)
{
    uint8_t v = 0x5a;

    cmos_rtc_io(rtc, 0, &idx, 1, true);
    cmos_rtc_io(rtc, 1, &v, 1, false);
    return v;
}

static void test_bcd_time(void **state)
{
    struct cmos_rtc *rtc = *state;

    assert_int_equal(rd(rtc, 0x0b), 0x02); /* 24h, BCD */
    assert_int_equal(rd(rtc, 0x00), 0x09);
    assert_int_equal(rd(rtc, 0x02), 0x05);
    assert_int_equal(rd(rtc, 0x04), 0x13);
    assert_int_equal(rd(rtc, 0x06), 0x05); /* Thursday; Sunday is 1 */
    assert_int_equal(rd(rtc, 0x07), 0x29);
    assert_int_equal(rd(rtc, 0x08), 0x02);
    assert_int_equal(rd(rtc, 0x09), 0x24);
    assert_int_equal(rd(rtc, 0x32), 0x20);

    /* read through every time: the clock moves with now() */
    fake_time += 60 * 60 * 24 + 51; /* 2024-03-01 13:06:00 */
    assert_int_equal(rd(rtc, 0x00), 0x00);
    assert_int_equal(rd(rtc, 0x02), 0x06);
    assert_int_equal(rd(rtc, 0x07), 0x01);
    assert_int_equal(rd(rtc, 0x08), 0x03);
    assert_int_equal(rd(rtc, 0x06), 0x06);
}

static void test_binary_time(void **state)
{
    struct cmos_rtc *rtc = *state;

    wr(rtc, 0x0b, 0x06); /* 24h, binary */
    assert_int_equal(rd(rtc, 0x0b), 0x06);
    assert_int_equal(rd(rtc, 0x00), 9);
    assert_int_equal(rd(rtc, 0x02), 5);
    assert_int_equal(rd(rtc, 0x04), 13);
    assert_int_equal(rd(rtc, 0x06), 5);
    assert_int_equal(rd(rtc, 0x07), 29);
    assert_int_equal(rd(rtc, 0x08), 2);
    assert_int_equal(rd(rtc, 0x09), 24);
    assert_int_equal(rd(rtc, 0x32), 20);
}

static void test_12h_mode(void **state)
{
    struct cmos_rtc *rtc = *state;

    wr(rtc, 0x0b, 0x00); /* 12h, BCD */
    assert_int_equal(rd(rtc, 0x04), 0x81); /* 1 PM */
    wr(rtc, 0x0b, 0x04); /* 12h, binary */
    assert_int_equal(rd(rtc, 0x04), 0x81);
    fake_time = T_2024_02_29_130509 - 13 * 3600; /* 00:05 */
    assert_int_equal(rd(rtc, 0x04), 12);        /* 12 AM */
    fake_time = T_2024_02_29_130509 - 1 * 3600;  /* 12:05 */
    assert_int_equal(rd(rtc, 0x04), 0x80 | 12); /* 12 PM */
    fake_time = T_2024_02_29_130509 + 10 * 3600; /* 23:05 */
    assert_int_equal(rd(rtc, 0x04), 0x80 | 11);
    wr(rtc, 0x0b, 0x00);
    assert_int_equal(rd(rtc, 0x04), 0x91);      /* 11 PM in BCD */
    fake_time = T_2024_02_29_130509 - 3 * 3600; /* 10:05 */
    assert_int_equal(rd(rtc, 0x04), 0x10);
    wr(rtc, 0x0b, 0x02);
    assert_int_equal(rd(rtc, 0x04), 0x10);
}

static void test_century(void **state)
{
    struct cmos_rtc *rtc = *state;

    fake_time = 946684799; /* 1999-12-31 23:59:59 */
    assert_int_equal(rd(rtc, 0x32), 0x19);
    assert_int_equal(rd(rtc, 0x09), 0x99);
    assert_int_equal(rd(rtc, 0x04), 0x23);
    assert_int_equal(rd(rtc, 0x00), 0x59);
    fake_time++;
    assert_int_equal(rd(rtc, 0x32), 0x20);
    assert_int_equal(rd(rtc, 0x09), 0x00);
    assert_int_equal(rd(rtc, 0x08), 0x01);
    assert_int_equal(rd(rtc, 0x07), 0x01);
    assert_int_equal(rd(rtc, 0x06), 0x07); /* Saturday */
}

static void test_status_registers(void **state)
{
    struct cmos_rtc *rtc = *state;

    assert_int_equal(rd(rtc, 0x0a), 0x26);
    /* UIP is never set, even if the guest writes it */
    wr(rtc, 0x0a, 0xa6);
    assert_int_equal(rd(rtc, 0x0a), 0x26);
    wr(rtc, 0x0a, 0x2f); /* rate bits are stored */
    assert_int_equal(rd(rtc, 0x0a), 0x2f);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rd(rtc, 0x0a) & 0x80, 0);
    assert_int_equal(rd(rtc, 0x0c), 0x00);
    assert_int_equal(rd(rtc, 0x0d), 0x80);
    /* C and D are read-only */
    wr(rtc, 0x0c, 0xff);
    wr(rtc, 0x0d, 0x00);
    assert_int_equal(rd(rtc, 0x0c), 0x00);
    assert_int_equal(rd(rtc, 0x0d), 0x80);
    /* interrupt enables are stored, never acted on */
    wr(rtc, 0x0b, 0x72);
    assert_int_equal(rd(rtc, 0x0b), 0x72);
    assert_int_equal(rd(rtc, 0x0c), 0x00);
}

static void test_ram(void **state)
{
    struct cmos_rtc *rtc = *state;

    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != 0x32)
            assert_int_equal(rd(rtc, (uint8_t)i), 0); /* zeroed at start */
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != 0x32)
            wr(rtc, (uint8_t)i, (uint8_t)(i * 7 + 3));
    /* alarm registers are plain storage */
    wr(rtc, 0x01, 0x45);
    wr(rtc, 0x03, 0x30);
    wr(rtc, 0x05, 0x07);
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != 0x32)
            assert_int_equal(rd(rtc, (uint8_t)i), (uint8_t)(i * 7 + 3));
    assert_int_equal(rd(rtc, 0x01), 0x45);
    assert_int_equal(rd(rtc, 0x03), 0x30);
    assert_int_equal(rd(rtc, 0x05), 0x07);
    /* the time registers next to them were not disturbed */
    assert_int_equal(rd(rtc, 0x00), 0x09);
    assert_int_equal(rd(rtc, 0x04), 0x13);
}

static void test_index_masking(void **state)
{
    struct cmos_rtc *rtc = *state;
    uint8_t v;

    /* bit 7 is the NMI mask: index 0x90 addresses byte 0x10 */
    wr(rtc, 0x90, 0xab);
    assert_int_equal(rd(rtc, 0x10), 0xab);
    wr(rtc, 0x11, 0xcd);
    assert_int_equal(rd(rtc, 0x91), 0xcd);
    assert_int_equal(rd(rtc, 0x8d), 0x80); /* REG_D */
    assert_int_equal(rd(rtc, 0x80), 0x09); /* seconds */
    wr(rtc, 0xff, 0x77);
    assert_int_equal(rd(rtc, 0x7f), 0x77);
    /* the index port is write-only */
    v = 0;
    cmos_rtc_io(rtc, 0, &v, 1, false);
    assert_int_equal(v, 0xff);
    /* the index stays selected across data accesses */
    v = 0x10;
    cmos_rtc_io(rtc, 0, &v, 1, true);
    cmos_rtc_io(rtc, 1, &v, 1, false);
    cmos_rtc_io(rtc, 1, &v, 1, false);
    assert_int_equal(v, 0xab);
}

static void test_set_time(void **state)
{
    struct cmos_rtc *rtc = *state;

    wr(rtc, 0x0b, 0x82); /* SET, 24h, BCD */
    fake_time += 1000;   /* frozen while SET */
    assert_int_equal(rd(rtc, 0x00), 0x09);
    assert_int_equal(rd(rtc, 0x02), 0x05);
    /* month before day: no passing through "February 31st" */
    wr(rtc, 0x08, 0x03);
    wr(rtc, 0x07, 0x31);
    wr(rtc, 0x04, 0x15);
    wr(rtc, 0x02, 0x30);
    wr(rtc, 0x00, 0x00);
    wr(rtc, 0x09, 0x25);
    wr(rtc, 0x32, 0x20);
    assert_int_equal(rd(rtc, 0x04), 0x15); /* reads see the written values */
    fake_time += 500;
    wr(rtc, 0x0b, 0x02); /* clock runs again from 2025-03-31 15:30:00 */
    assert_int_equal(rd(rtc, 0x00), 0x00);
    assert_int_equal(rd(rtc, 0x02), 0x30);
    assert_int_equal(rd(rtc, 0x04), 0x15);
    assert_int_equal(rd(rtc, 0x07), 0x31);
    assert_int_equal(rd(rtc, 0x08), 0x03);
    assert_int_equal(rd(rtc, 0x09), 0x25);
    assert_int_equal(rd(rtc, 0x32), 0x20);
    assert_int_equal(rd(rtc, 0x06), 0x02); /* a Monday */
    fake_time += 100; /* 15:31:40 */
    assert_int_equal(rd(rtc, 0x00), 0x40);
    assert_int_equal(rd(rtc, 0x02), 0x31);
    fake_time += 9 * 3600; /* 00:31:40 next day, month rolls over */
    assert_int_equal(rd(rtc, 0x04), 0x00);
    assert_int_equal(rd(rtc, 0x07), 0x01);
    assert_int_equal(rd(rtc, 0x08), 0x04);
}

static void test_set_time_binary_12h(void **state)
{
    struct cmos_rtc *rtc = *state;

    wr(rtc, 0x0b, 0x84); /* SET, 12h, binary */
    wr(rtc, 0x04, 0x80 | 12); /* 12 PM */
    wr(rtc, 0x02, 0);
    wr(rtc, 0x00, 0);
    wr(rtc, 0x0b, 0x06); /* 24h binary, running */
    assert_int_equal(rd(rtc, 0x04), 12);
    wr(rtc, 0x0b, 0x84);
    wr(rtc, 0x04, 12);   /* 12 AM */
    wr(rtc, 0x0b, 0x06);
    assert_int_equal(rd(rtc, 0x04), 0);
    assert_int_equal(rd(rtc, 0x07), 29); /* date untouched */
}

/* Without SET, a time register write takes effect at once (as in QEMU). */
static void test_write_without_set(void **state)
{
    struct cmos_rtc *rtc = *state;

    wr(rtc, 0x02, 0x45);
    assert_int_equal(rd(rtc, 0x02), 0x45);
    assert_int_equal(rd(rtc, 0x04), 0x13);
    fake_time += 60;
    assert_int_equal(rd(rtc, 0x02), 0x46);
    /* day of week follows the date; writes to it are ignored */
    wr(rtc, 0x06, 0x01);
    assert_int_equal(rd(rtc, 0x06), 0x05);
}

static void test_hostile_accesses(void **state)
{
    struct cmos_rtc *rtc = *state;
    static const uint32_t lens[] = { 0, 1, 2, 3, 4, 8, 64 };
    uint8_t buf[64];

    wr(rtc, 0x20, 0x5c);
    for (uint64_t off = 0; off <= 100; off++) {
        for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            memset(buf, 0x11, sizeof(buf));
            cmos_rtc_io(rtc, off, buf, lens[i], false);
            if (lens[i] == 0) {
                assert_int_equal(buf[0], 0x11);
                continue;
            }
            if (off >= 2)
                assert_int_equal(buf[0], 0xff);
            for (uint32_t b = 1; b < lens[i]; b++)
                assert_int_equal(buf[b], 0xff);
            if (off >= 2) {
                memset(buf, 0x99, sizeof(buf));
                cmos_rtc_io(rtc, off, buf, lens[i], true);
            }
        }
    }
    assert_int_equal(rd(rtc, 0x20), 0x5c);
    cmos_rtc_io(rtc, UINT64_MAX, buf, 8, true);
    cmos_rtc_io(rtc, 1, NULL, 1, false);
    cmos_rtc_io(NULL, 1, buf, 1, false);

    /* wide write to the index port uses only the first byte */
    memcpy(buf, "\x20\x0d\x0d\x0d", 4);
    cmos_rtc_io(rtc, 0, buf, 4, true);
    memset(buf, 0, 4);
    cmos_rtc_io(rtc, 1, buf, 4, false);
    assert_int_equal(buf[0], 0x5c);
    assert_int_equal(buf[1], 0xff);

    /* nonsense time values do not crash and keep the clock readable */
    wr(rtc, 0x0b, 0x86);
    for (unsigned r = 0; r < 10; r++)
        wr(rtc, (uint8_t)r, 0xff);
    wr(rtc, 0x32, 0xff);
    wr(rtc, 0x0b, 0x06);
    for (unsigned r = 0; r < 10; r++)
        rd(rtc, (uint8_t)r);
    wr(rtc, 0x0b, 0x02);
    for (int k = 0; k < 50; k++) {
        wr(rtc, 0x08, 0xff);
        wr(rtc, 0x32, 0x99);
        wr(rtc, 0x07, 0x00);
    }
    for (unsigned r = 0; r < 10; r++)
        rd(rtc, (uint8_t)r);
    assert_int_equal(rd(rtc, 0x0d), 0x80);
}

static void test_host_clock(void **state)
{
    struct cmos_rtc *rtc = cmos_rtc_create(NULL);
    struct tm tm;
    time_t t = time(NULL);
    uint8_t century, year;

    (void)state;
    assert_non_null(rtc);
    gmtime_r(&t, &tm);
    century = rd(rtc, 0x32);
    year = rd(rtc, 0x09);
    assert_int_equal(century, ((tm.tm_year + 1900) / 100 / 10) << 4 | ((tm.tm_year + 1900) / 100 % 10));
    assert_int_equal(year >> 4, (tm.tm_year % 100) / 10);
    cmos_rtc_destroy(rtc);
    cmos_rtc_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_12h_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_century, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_time_binary_12h, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_without_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
        cmocka_unit_test(test_host_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
