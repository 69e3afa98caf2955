/*
 * check_log.c -- the log's codecs: CRC32C, varints, header slots, record
 * headers and payload entries, and the encoder seen through a real commit.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_log_crc32c_vector)
{
    /* The published check value of CRC-32C. */
    ck_assert_uint_eq(lrvm__crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(lrvm__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(lrvm__crc32c(0, "", 0), 0u);
}
END_TEST

START_TEST(test_log_crc32c_hw_equals_sw)
{
    unsigned char buf[1100];
    uint64_t seed = 7;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)tu_rand(&seed);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 37)
            ck_assert_uint_eq(lrvm__crc32c(0, buf + off, n), lrvm__crc32c_sw(0, buf + off, n));
    /* Chaining: crc(a ++ b) == crc(crc(a), b). */
    ck_assert_uint_eq(lrvm__crc32c(lrvm__crc32c(0, buf, 500), buf + 500, 600),
                      lrvm__crc32c(0, buf, 1100));
}
END_TEST

START_TEST(test_log_crc32c_long_buffers)
{
    /* Long buffers take the three-stream path (rounds of 3 KiB): every
     * length around a round's edge, odd starts, and a chained start. */
    size_t cap = 70000;
    unsigned char *buf = malloc(cap + 8);
    ck_assert_ptr_nonnull(buf);
    uint64_t seed = 11;
    for (size_t i = 0; i < cap + 8; i++)
        buf[i] = (unsigned char)tu_rand(&seed);
    for (size_t off = 0; off < 8; off += 3) {
        for (size_t n = 3 * 1024 - 9; n <= 3 * 1024 + 9; n++)
            ck_assert_uint_eq(lrvm__crc32c(0, buf + off, n), lrvm__crc32c_sw(0, buf + off, n));
        for (size_t n = 6 * 1024 - 1; n <= cap; n += 4099)
            ck_assert_uint_eq(lrvm__crc32c(0, buf + off, n), lrvm__crc32c_sw(0, buf + off, n));
    }
    ck_assert_uint_eq(lrvm__crc32c(0xdeadbeef, buf, cap), lrvm__crc32c_sw(0xdeadbeef, buf, cap));
    free(buf);
}
END_TEST

START_TEST(test_log_varint_roundtrip)
{
    const uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, (1ull << 32) - 1,
                              1ull << 32, (1ull << 63) - 1, 1ull << 63, UINT64_MAX };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        unsigned char b[16];
        size_t n = lrvm__varint_put(b, vals[i]);
        ck_assert_uint_le(n, 10);
        const unsigned char *p = b;
        uint64_t v;
        ck_assert_int_eq(lrvm__varint_get(&p, b + n, &v), 0);
        ck_assert_uint_eq(v, vals[i]);
        ck_assert_ptr_eq(p, b + n);
        /* One byte short is malformed. */
        p = b;
        ck_assert_int_eq(lrvm__varint_get(&p, b + n - 1, &v), -1);
    }
}
END_TEST

START_TEST(test_log_varint_overlong)
{
    unsigned char b[11];
    memset(b, 0xff, sizeof b);
    const unsigned char *p = b;
    uint64_t v;
    ck_assert_int_eq(lrvm__varint_get(&p, b + sizeof b, &v), -1);
    /* Ten bytes whose last carries more than the 64th bit. */
    memset(b, 0x80, 9);
    b[9] = 0x02;
    p = b;
    ck_assert_int_eq(lrvm__varint_get(&p, b + 10, &v), -1);
}
END_TEST

START_TEST(test_log_header_roundtrip)
{
    unsigned char slot[512];
    struct lrvm__log_header h = { 1, 42, 1000, 0, 0, 0 }, d;
    lrvm__log_header_encode(slot, &h);
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), 0);
    ck_assert_uint_eq(d.lh_generation, 42);
    ck_assert_uint_eq(d.lh_first_txno, 1000);
    ck_assert_uint_eq(d.lh_start, LRVM__LOG_HEADER_SIZE);      /* before version 3 */
    ck_assert_uint_eq(d.lh_next_start, 0);

    /* Version 3: the starts and the next generation come back; a slot
     * whose offsets could not be record places is damage (H3). */
    struct lrvm__log_header v3 = { LRVM__LOG_VERSION, 9, 500, 65536, 4096, 530 };
    lrvm__log_header_encode(slot, &v3);
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), 0);
    ck_assert_uint_eq(d.lh_version, 3);
    ck_assert_uint_eq(d.lh_start, 65536);
    ck_assert_uint_eq(d.lh_next_start, 4096);
    ck_assert_uint_eq(d.lh_next_txno, 530);
    slot[45] ^= 1;                              /* inside next start: the CRC at 56 */
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), LRVM_ECORRUPT);
    struct lrvm__log_header bad[] = {
        { LRVM__LOG_VERSION, 9, 500, 1024, 0, 0 },          /* start in the header */
        { LRVM__LOG_VERSION, 9, 500, 4100, 0, 0 },          /* not 8-aligned */
        { LRVM__LOG_VERSION, 9, 500, 4096, 4096, 530 },     /* both at one place */
        { LRVM__LOG_VERSION, 9, 500, 4096, 8192, 499 },     /* next numbered below */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lrvm__log_header_encode(slot, &bad[i]);
        ck_assert_int_eq(lrvm__log_header_decode(slot, &d), LRVM_ECORRUPT);
    }

    slot[20] ^= 1;                              /* inside the generation */
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), LRVM_ECORRUPT);
    lrvm__log_header_encode(slot, &h);
    slot[0] = 'X';
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), LRVM_ECORRUPT);
    struct lrvm__log_header v1 = { 1, 1, 1, 0, 0, 0 },
                            next = { LRVM__LOG_VERSION + 1, 1, 1, 4096, 0, 0 };
    lrvm__log_header_encode(slot, &v1);
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), 0);         /* still read */
    lrvm__log_header_encode(slot, &next);
    ck_assert_int_eq(lrvm__log_header_decode(slot, &d), LRVM_EVERSION);
}
END_TEST

/* Collects the ranges a payload walk reports. */
struct seen {
    char     names[8][LRVM__NAME_MAX + 1];
    uint64_t offs[8], lens[8];
    unsigned char data[8][64];
    int      n;
};

static int collect(void *arg, const char *name, size_t name_len, uint64_t off,
                   const unsigned char *data, uint64_t n)
{
    struct seen *s = arg;
    ck_assert_int_lt(s->n, 8);
    ck_assert_uint_le(name_len, LRVM__NAME_MAX);
    memcpy(s->names[s->n], name, name_len);
    s->names[s->n][name_len] = '\0';
    s->offs[s->n] = off;
    s->lens[s->n] = n;
    memcpy(s->data[s->n], data, n < 64 ? n : 64);
    s->n++;
    return 0;
}

static size_t put_define(unsigned char *p, const char *name)
{
    size_t n = 0, len = strlen(name);
    p[n++] = LRVM__ENT_DEFINE;
    n += lrvm__varint_put(p + n, len);
    memcpy(p + n, name, len);
    return n + len;
}

static size_t put_range(unsigned char *p, uint64_t id, uint64_t off, const void *data, uint64_t len)
{
    size_t n = 0;
    p[n++] = LRVM__ENT_RANGE;
    n += lrvm__varint_put(p + n, id);
    n += lrvm__varint_put(p + n, off);
    n += lrvm__varint_put(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

START_TEST(test_log_payload_walk)
{
    unsigned char p[256];
    size_t n = 0;
    n += put_define(p + n, "alpha");
    n += put_define(p + n, "beta");
    n += put_range(p + n, 1, 70000, "hello", 5);
    n += put_range(p + n, 0, 3, "xy", 2);
    struct seen s = { .n = 0 };
    ck_assert_int_eq(lrvm__payload_walk(p, n, collect, &s), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.names[0], "beta");
    ck_assert_uint_eq(s.offs[0], 70000);
    ck_assert_uint_eq(s.lens[0], 5);
    ck_assert_mem_eq(s.data[0], "hello", 5);
    ck_assert_str_eq(s.names[1], "alpha");
    ck_assert_uint_eq(s.offs[1], 3);
    /* Every proper prefix that cuts an entry is malformed. */
    size_t cuts[] = { 1, 3, n - 1 };
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(lrvm__payload_walk(p, cuts[i], NULL, NULL), LRVM_ECORRUPT);
}
END_TEST

START_TEST(test_log_payload_rejects)
{
    unsigned char p[256];
    size_t n;

    n = put_range(p, 0, 0, "x", 1);                     /* id never defined */
    ck_assert_int_eq(lrvm__payload_walk(p, n, NULL, NULL), LRVM_ECORRUPT);
    n = put_define(p, "a/b");                           /* a path, not a name */
    ck_assert_int_eq(lrvm__payload_walk(p, n, NULL, NULL), LRVM_ECORRUPT);
    n = put_define(p, "..");
    ck_assert_int_eq(lrvm__payload_walk(p, n, NULL, NULL), LRVM_ECORRUPT);
    n = put_define(p, "ok");
    n += put_range(p + n, 0, 0, "", 0);                 /* zero length */
    ck_assert_int_eq(lrvm__payload_walk(p, n, NULL, NULL), LRVM_ECORRUPT);
    n = put_define(p, "ok");
    n += put_range(p + n, 0, UINT64_MAX, "ab", 2);      /* offset + length wraps */
    ck_assert_int_eq(lrvm__payload_walk(p, n, NULL, NULL), LRVM_ECORRUPT);
    p[0] = 9;                                           /* unknown entry type */
    ck_assert_int_eq(lrvm__payload_walk(p, 1, NULL, NULL), LRVM_ECORRUPT);
    /* A name with a NUL inside. */
    p[0] = LRVM__ENT_DEFINE;
    p[1] = 3;
    memcpy(p + 2, "a\0b", 3);
    ck_assert_int_eq(lrvm__payload_walk(p, 5, NULL, NULL), LRVM_ECORRUPT);
}
END_TEST

/* Records of a real commit decode to exactly the declared bytes. */
struct scan_seen {
    int             records;
    struct seen     ranges;
    uint16_t        flags;
};

static int on_rec(void *arg, uint64_t off, const struct lrvm__rec_header *h, const unsigned char *payload)
{
    struct scan_seen *s = arg;
    (void)off;
    s->records++;
    s->flags = h->rh_flags;
    return lrvm__payload_walk(payload, h->rh_payload_len, collect, &s->ranges);
}

START_TEST(test_log_commit_encodes_ranges)
{
    char *dir = tu_tmpdir();
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    char *base;
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "seg", 8192, (void **)&base), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&base, &tx), 0);
    /* Overlapping and touching ranges are merged; the far one stays apart. */
    ck_assert_int_eq(lrvm_set_range(tx, base + 10, 4), 0);
    ck_assert_int_eq(lrvm_set_range(tx, base + 12, 4), 0);
    ck_assert_int_eq(lrvm_set_range(tx, base + 16, 2), 0);
    ck_assert_int_eq(lrvm_set_range(tx, base + 5000, 3), 0);
    memcpy(base + 10, "ABCDEFGH", 8);
    memcpy(base + 5000, "xyz", 3);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);

    int fd = open(tu_path(dir, "lrvm.log"), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct lrvm__log_header h;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(fd, &h, &slot), 0);
    struct scan_seen seen = { 0 };
    struct lrvm__scan_cb cb = { .arg = &seen, .record = on_rec };
    struct lrvm__scan_result res;
    ck_assert_int_eq(lrvm__log_scan(fd, &h, &cb, &res), 0);
    close(fd);
    ck_assert_int_eq(seen.records, 1);
    ck_assert_uint_eq(res.sr_txs, 1);
    ck_assert_uint_eq(seen.flags & LRVM__REC_COMMIT, LRVM__REC_COMMIT);
    ck_assert_int_eq(seen.ranges.n, 2);
    ck_assert_uint_eq(seen.ranges.offs[0], 10);
    ck_assert_uint_eq(seen.ranges.lens[0], 8);
    ck_assert_mem_eq(seen.ranges.data[0], "ABCDEFGH", 8);
    ck_assert_uint_eq(seen.ranges.offs[1], 5000);
    ck_assert_mem_eq(seen.ranges.data[1], "xyz", 3);

    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.log_size, res.sr_end);
    ck_assert_int_eq(lrvm_close(s), 0);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A log of format version 1, as an older lrvm left it (32-byte record
 * headers, no durable mark): recovery replays it and starts a new
 * generation in the current format. */
START_TEST(test_log_reads_version_1)
{
    char *dir = tu_tmpdir();
    lrvm_t *s;
    char *base;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "seg", 4096, (void **)&base), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    unsigned char log[4096 + 64] = { 0 };
    struct lrvm__log_header h = { 1, 7, 1, 0, 0, 0 };
    lrvm__log_header_encode(log, &h);
    unsigned char *rec = log + 4096, *p = rec + 32;
    *p++ = LRVM__ENT_DEFINE;
    *p++ = 3;
    memcpy(p, "seg", 3);
    p += 3;
    *p++ = LRVM__ENT_RANGE;
    *p++ = 0;                                   /* id */
    *p++ = 100;                                 /* offset */
    *p++ = 5;                                   /* length */
    memcpy(p, "older", 5);
    p += 5;
    uint32_t payload = (uint32_t)(p - rec - 32);
    put_le(rec, 0x5256524cu, 4);                /* "LRVR" */
    put_le(rec + 8, payload, 4);
    put_le(rec + 12, 0, 2);
    put_le(rec + 14, LRVM__REC_COMMIT, 2);
    put_le(rec + 16, 7, 8);
    put_le(rec + 24, 1, 8);
    put_le(rec + 4, lrvm__crc32c(0, rec + 8, 24 + payload), 4);
    ck_assert_int_eq(tu_write(tu_path(dir, "lrvm.log"), log, sizeof log, 0), 0);

    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "seg", 4096, (void **)&base), 0);
    ck_assert_mem_eq(base + 100, "older", 5);
    ck_assert_int_eq(lrvm_close(s), 0);
    int fd = open(tu_path(dir, "lrvm.log"), O_RDONLY);
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(fd, &h, &slot), 0);
    close(fd);
    ck_assert_uint_eq(h.lh_version, LRVM__LOG_VERSION);
    ck_assert_uint_gt(h.lh_generation, 7);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_log_crc32c_vector);
    tcase_add_test(tc, test_log_crc32c_hw_equals_sw);
    tcase_add_test(tc, test_log_crc32c_long_buffers);
    tcase_add_test(tc, test_log_varint_roundtrip);
    tcase_add_test(tc, test_log_varint_overlong);
    tcase_add_test(tc, test_log_header_roundtrip);
    tcase_add_test(tc, test_log_payload_walk);
    tcase_add_test(tc, test_log_payload_rejects);
    tcase_add_test(tc, test_log_commit_encodes_ranges);
    tcase_add_test(tc, test_log_reads_version_1);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
