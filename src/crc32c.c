/*
 * crc32c.c -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of log headers and records.
 *
 * Owns: the checksum only. Uses the SSE4.2 crc32 instruction when the CPU
 * has it, else a table-driven loop (slicing by 8). Both give the same
 * value; check_log.c compares them with the published test vector
 * crc32c("123456789") == 0xE3069283.
 *
 * The crc32 instruction takes 3 cycles but can start every cycle, so one
 * chain of them runs at a third of the speed the CPU allows: recovery
 * spent a third of its time here. Long buffers are therefore cut into
 * rounds of three STRIDE-byte pieces summed side by side, and the three
 * partial CRCs joined. Joining uses that the CRC register, fed zero bytes,
 * changes linearly (over GF(2)): advancing a register over STRIDE zero
 * bytes is one lookup per byte of it in a table built at start-up. With
 * rA, rB, rC the registers after each piece (B and C started from 0),
 * the register after the round is adv(adv(rA) ^ rB) ^ rC.
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
#define STRIDE 1024

/* adv_table[k][v]: the register v << 8k advanced over STRIDE zero bytes. */
static uint32_t adv_table[4][256];

static uint32_t adv(uint32_t c)
{
    return adv_table[0][c & 0xff] ^ adv_table[1][(c >> 8) & 0xff] ^
           adv_table[2][(c >> 16) & 0xff] ^ adv_table[3][c >> 24];
}

__attribute__((target("sse4.2")))
static void adv_init(void)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint64_t c = 1u << i;
        for (int k = 0; k < STRIDE / 8; k++)
            c = __builtin_ia32_crc32di(c, 0);
        basis[i] = (uint32_t)c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = 0;
            for (int j = 0; j < 8; j++)
                if (v >> j & 1)
                    c ^= basis[8 * k + j];
            adv_table[k][v] = c;
        }
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;
    while (n >= 3 * STRIDE) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < STRIDE; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + STRIDE + i, 8);
            memcpy(&wd, p + 2 * STRIDE + i, 8);
            a = __builtin_ia32_crc32di(a, wa);
            b = __builtin_ia32_crc32di(b, wb);
            d = __builtin_ia32_crc32di(d, wd);
        }
        c = adv(adv((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * STRIDE;
        n -= 3 * STRIDE;
    }
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
    if (have_hw)
        adv_init();
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
