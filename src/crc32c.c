/*
 * crc32c.c -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of log headers and records.
 *
 * Owns: the checksum only. Uses the SSE4.2 crc32 instruction when the CPU
 * has it, else a table-driven loop (slicing by 8). Both give the same
 * value; check_log.c compares them with the published test vector
 * crc32c("123456789") == 0xE3069283.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

uint32_t lrvm__crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    pthread_once(&table_once, table_init);
    crc = ~crc;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
              table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
              table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
#endif
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

static int have_hw;
static pthread_once_t hw_once = PTHREAD_ONCE_INIT;

static void hw_init(void)
{
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
}

uint32_t lrvm__crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&hw_once, hw_init);
    return have_hw ? crc32c_hw(crc, buf, n) : lrvm__crc32c_sw(crc, buf, n);
}
#else
uint32_t lrvm__crc32c(uint32_t crc, const void *buf, size_t n)
{
    return lrvm__crc32c_sw(crc, buf, n);
}
#endif
