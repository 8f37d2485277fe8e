/* MC146818 CMOS RTC at ports 0x70/0x71: time of day from the host clock,
 * update-in-progress never set, 128 bytes of CMOS RAM. Without it, Linux
 * spins on these ports at boot (tens of thousands of exits). */
#ifndef EMUL_RTC_H
#define EMUL_RTC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct cmos_rtc;

/* now: source of wall-clock time (NULL: time(NULL)); lets tests fix time. */
struct cmos_rtc *cmos_rtc_create(time_t (*now)(void));
void cmos_rtc_destroy(struct cmos_rtc *rtc);

/* I/O handler for the 2-port range at 0x70: offset 0 index, 1 data. */
void cmos_rtc_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write);

#endif
