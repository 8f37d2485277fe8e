/* Checksums the NIC computes: the Internet checksum (RFC 1071) for IP, TCP
 * and UDP offloads, and the Ethernet FCS (CRC-32) the 82540 hands to the
 * driver at the end of each received frame unless RCTL.SECRC strips it. */
#include <pthread.h>

#include "e1000_hw.h"

/* Adds len bytes, taken as big-endian 16-bit words, to a running sum; an odd
 * last byte is padded with zero. Callers add at most 64 KiB at a time, so
 * 32 bits cannot overflow before csum_fold. */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t eth_fcs(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;

    pthread_once(&crc_table_once, crc_table_build);
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
