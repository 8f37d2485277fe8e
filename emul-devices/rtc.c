/* MC146818 CMOS RTC: the time registers are computed from the host clock on
 * every read (UTC, gmtime_r) plus an offset the guest may set; the rest of
 * the 128 bytes is plain RAM.
 *
 * Not implemented: periodic, alarm and update-ended interrupts. REG_C always
 * reads 0 and no IRQ 8 is ever raised; the interrupt-enable bits of REG_B and
 * the alarm registers are only stored. REG_A's update-in-progress bit is never
 * set (there is no update cycle to race with), and REG_D reads 0x80 (valid
 * RAM and time).
 *
 * Setting the time: while REG_B.SET is set the clock is frozen at the moment
 * SET was raised (as the real part inhibits updates); writes to the time
 * registers change that frozen copy and reads return it. Clearing SET starts
 * the clock again from the written values: the difference to the host clock
 * is kept as an offset. A time register written with SET clear takes effect
 * at once (as in QEMU). The day of week is derived from the date; writes to
 * it are ignored. */
#include <stdlib.h>
#include <string.h>

#include "rtc.h"

#include <pthread.h>

#define CMOS_SIZE 128

#define RTC_SECONDS 0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES 0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS 0x04
#define RTC_HOURS_ALARM 0x05
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define REG_A_UIP 0x80
#define REG_B_SET 0x80
#define REG_B_DM 0x04    /* binary, not BCD */
#define REG_B_24H 0x02
#define REG_D_VRT 0x80
#define HOUR_PM 0x80     /* 12-hour mode */

struct cmos_rtc {
    pthread_mutex_t lock;
    time_t (*now)(void);
    uint8_t index;
    uint8_t ram[CMOS_SIZE];
    int64_t offset;      /* guest time - host time, seconds */
    struct tm frozen;    /* the clock while REG_B.SET is set */
};

static time_t host_now(void)
{
    return time(NULL);
}

static bool is_time_reg(unsigned idx)
{
    switch (idx) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY:
        return true;
    default:
        return false;
    }
}

/* The guest's clock now, broken down. */
static void guest_tm(struct cmos_rtc *rtc, struct tm *tm)
{
    time_t t = (time_t)((int64_t)rtc->now() + rtc->offset);

    if (!gmtime_r(&t, tm)) {
        /* Out of gmtime's range (only if the guest set an absurd time). */
        memset(tm, 0, sizeof(*tm));
        tm->tm_mday = 1;
        tm->tm_year = 70;
        tm->tm_wday = 4;
    }
}

static uint8_t encode(const struct cmos_rtc *rtc, int v)
{
    if (v < 0)
        v = 0;
    if (rtc->ram[RTC_REG_B] & REG_B_DM)
        return (uint8_t)v;
    v %= 100;
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int decode(const struct cmos_rtc *rtc, uint8_t v)
{
    if (rtc->ram[RTC_REG_B] & REG_B_DM)
        return v;
    return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t read_time_reg(const struct cmos_rtc *rtc, const struct tm *tm, unsigned idx)
{
    int year = tm->tm_year + 1900;

    switch (idx) {
    case RTC_SECONDS:
        return encode(rtc, tm->tm_sec > 59 ? 59 : tm->tm_sec);
    case RTC_MINUTES:
        return encode(rtc, tm->tm_min);
    case RTC_HOURS:
        if (!(rtc->ram[RTC_REG_B] & REG_B_24H)) {
            int h = tm->tm_hour % 12;

            return encode(rtc, h ? h : 12) | (tm->tm_hour >= 12 ? HOUR_PM : 0);
        }
        return encode(rtc, tm->tm_hour);
    case RTC_DAY_OF_WEEK:
        return encode(rtc, tm->tm_wday + 1); /* 1 = Sunday */
    case RTC_DAY_OF_MONTH:
        return encode(rtc, tm->tm_mday);
    case RTC_MONTH:
        return encode(rtc, tm->tm_mon + 1);
    case RTC_YEAR:
        return encode(rtc, ((year % 100) + 100) % 100);
    case RTC_CENTURY:
        return encode(rtc, year / 100);
    default:
        return 0xff;
    }
}

static void write_time_reg(const struct cmos_rtc *rtc, struct tm *tm, unsigned idx, uint8_t val)
{
    int year = tm->tm_year + 1900;

    switch (idx) {
    case RTC_SECONDS:
        tm->tm_sec = decode(rtc, val);
        break;
    case RTC_MINUTES:
        tm->tm_min = decode(rtc, val);
        break;
    case RTC_HOURS:
        if (!(rtc->ram[RTC_REG_B] & REG_B_24H)) {
            int h = decode(rtc, val & 0x7f) % 12; /* 12 AM is hour 0 */

            tm->tm_hour = h + ((val & HOUR_PM) ? 12 : 0);
        } else {
            tm->tm_hour = decode(rtc, val);
        }
        break;
    case RTC_DAY_OF_MONTH:
        tm->tm_mday = decode(rtc, val);
        break;
    case RTC_MONTH:
        tm->tm_mon = decode(rtc, val) - 1;
        break;
    case RTC_YEAR:
        tm->tm_year = (year / 100) * 100 + decode(rtc, val) - 1900;
        break;
    case RTC_CENTURY:
        tm->tm_year = decode(rtc, val) * 100 + ((year % 100) + 100) % 100 - 1900;
        break;
    default: /* day of week: derived from the date */
        break;
    }
}

/* Make the guest's clock read tm from now on. */
static void set_offset(struct cmos_rtc *rtc, struct tm *tm)
{
    struct tm copy = *tm;
    time_t t;

    copy.tm_isdst = 0;
    t = timegm(&copy);
    rtc->offset = (int64_t)t - (int64_t)rtc->now();
}

static uint8_t data_read(struct cmos_rtc *rtc, unsigned idx)
{
    if (is_time_reg(idx)) {
        struct tm tm;

        if (rtc->ram[RTC_REG_B] & REG_B_SET)
            tm = rtc->frozen;
        else
            guest_tm(rtc, &tm);
        return read_time_reg(rtc, &tm, idx);
    }
    switch (idx) {
    case RTC_REG_A:
        return rtc->ram[RTC_REG_A] & ~REG_A_UIP;
    case RTC_REG_C:
        return 0;
    case RTC_REG_D:
        return REG_D_VRT;
    default:
        return rtc->ram[idx];
    }
}

static void data_write(struct cmos_rtc *rtc, unsigned idx, uint8_t val)
{
    if (is_time_reg(idx)) {
        if (rtc->ram[RTC_REG_B] & REG_B_SET) {
            write_time_reg(rtc, &rtc->frozen, idx, val);
        } else {
            struct tm tm;

            guest_tm(rtc, &tm);
            write_time_reg(rtc, &tm, idx, val);
            set_offset(rtc, &tm);
        }
        return;
    }
    switch (idx) {
    case RTC_REG_A:
        rtc->ram[RTC_REG_A] = val & ~REG_A_UIP;
        break;
    case RTC_REG_B: {
        uint8_t old = rtc->ram[RTC_REG_B];

        if (!(old & REG_B_SET) && (val & REG_B_SET))
            guest_tm(rtc, &rtc->frozen);
        rtc->ram[RTC_REG_B] = val;
        if ((old & REG_B_SET) && !(val & REG_B_SET))
            set_offset(rtc, &rtc->frozen);
        break;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        rtc->ram[idx] = val;
        break;
    }
}

void cmos_rtc_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct cmos_rtc *rtc = opaque;
    uint8_t *bytes = data;

    if (!rtc || !bytes || len == 0)
        return;
    if (!is_write)
        memset(bytes, 0xff, len); /* bytes past the first float high */
    if (offset > 1)
        return;

    pthread_mutex_lock(&rtc->lock);
    if (offset == 0) {
        /* Index port: bit 7 masks NMI, which we ignore. It is write-only;
         * reads float high. */
        if (is_write)
            rtc->index = bytes[0] & 0x7f;
    } else if (is_write) {
        data_write(rtc, rtc->index, bytes[0]);
    } else {
        bytes[0] = data_read(rtc, rtc->index);
    }
    pthread_mutex_unlock(&rtc->lock);
}

struct cmos_rtc *cmos_rtc_create(time_t (*now)(void))
{
    struct cmos_rtc *rtc = calloc(1, sizeof(*rtc));

    if (!rtc)
        return NULL;
    if (pthread_mutex_init(&rtc->lock, NULL) != 0) {
        free(rtc);
        return NULL;
    }
    rtc->now = now ? now : host_now;
    rtc->ram[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
    rtc->ram[RTC_REG_B] = REG_B_24H; /* 24-hour, BCD, no interrupts */
    return rtc;
}

void cmos_rtc_destroy(struct cmos_rtc *rtc)
{
    if (!rtc)
        return;
    pthread_mutex_destroy(&rtc->lock);
    free(rtc);
}
