/*
 * check_hostile_log.c -- records made by hand, with a valid CRC, whose
 * payload is hostile: a range past the end of its segment, an offset that
 * overflows, a missing segment, a name that escapes the store, an
 * undefined segment id, malformed entries, a bad record after good ones
 * or after recovery's batch filled. lrvm_open must fail with
 * LRVM_ECORRUPT and write or create nothing; a good hand-made record
 * applies, and the scan reports hand-made records as it should.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
#include "recover_util.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_recover_handmade_record_applies)
{
    /* The control: a hand-built record that is right is replayed, so the
     * hostile cases below fail for their payload, not for their framing. */
    struct hostile hs;
    hostile_setup(&hs);
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 4092, 4, 4);            /* the last 4 bytes: inside */
    put_record(hs.log, LRVM__LOG_HEADER_SIZE, hs.h.lh_generation, hs.h.lh_first_txno, 0,
               LRVM__REC_COMMIT, &p);
    ck_assert_int_eq(open_close(hs.store), 0);
    unsigned char seg[4096];
    ck_assert_int_eq(tu_file_size(tu_path(hs.store, "a.seg")), 4096);
    ck_assert_int_eq(tu_read(tu_path(hs.store, "a.seg"), seg, sizeof seg, 0), 0);
    for (size_t i = 0; i < sizeof seg; i++)
        ck_assert_uint_eq(seg[i], i >= 4092 ? 0xEE : 0);
    hostile_free(&hs);
}
END_TEST

START_TEST(test_recover_hostile_range_past_segment_end)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 4000, 200, 200);
    hostile_case("range 4000+200 in a 4096-byte segment", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 4093, 4, 4);
    hostile_case("range 4093+4 (one byte past the end)", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 4096, 1, 1);
    hostile_case("range at the segment's end", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, (uint64_t)1 << 40, 8, 8);
    hostile_case("range at 1 TiB", &p, 0);
}
END_TEST

START_TEST(test_recover_hostile_offset_overflow)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, UINT64_MAX - 3, 8, 8);
    hostile_case("offset UINT64_MAX-3, length 8 (wraps)", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, UINT64_MAX, 1, 1);
    hostile_case("offset UINT64_MAX, length 1", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, UINT64_MAX - 64, 8, 8);
    hostile_case("offset UINT64_MAX-64, length 8", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 8, UINT64_MAX - 4, 8);
    hostile_case("length UINT64_MAX-4 with 8 bytes of data", &p, 0);
}
END_TEST

START_TEST(test_recover_hostile_missing_segment)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "nosuch");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("range in the missing segment nosuch", &p, 0);

    /* A DEFINE alone names nothing to write, but a RANGE in the segment
     * that exists after a missing one must not be applied either. */
    p.n = 0;
    pl_define(&p, "a");
    pl_define(&p, "nosuch");
    pl_range(&p, 0, 0, 4, 4);
    pl_range(&p, 1, 0, 4, 4);
    hostile_case("ranges in a and in the missing nosuch", &p, 0);
}
END_TEST

START_TEST(test_recover_hostile_segment_name_escapes)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "../evil");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("segment ../evil", &p, 0);

    /* The same with no ROOT/evil.seg: nothing may create it. */
    struct hostile hs;
    hostile_setup(&hs);
    ck_assert_int_eq(unlink(tu_path(hs.root, "evil.seg")), 0);
    hostile_run(&hs, "segment ../evil, no evil.seg", &p, 0);
    ck_assert_int_eq(tu_file_size(tu_path(hs.root, "evil.seg")), -1);
    hostile_free(&hs);

    /* Paths that lead back to the store's own a.seg. */
    p.n = 0;
    pl_define(&p, "../store/a");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("segment ../store/a", &p, 0);

    p.n = 0;
    pl_define(&p, "./a");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("segment ./a", &p, 0);

    p.n = 0;
    pl_define(&p, "..");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("segment ..", &p, 0);

    /* The absolute path of ROOT/evil. */
    hostile_setup(&hs);
    char abs[512];
    snprintf(abs, sizeof abs, "%s/evil", hs.root);
    p.n = 0;
    pl_define(&p, abs);
    pl_range(&p, 0, 0, 4, 4);
    hostile_run(&hs, "segment named by an absolute path", &p, 0);
    hostile_free(&hs);
}
END_TEST

START_TEST(test_recover_hostile_undefined_segment_id)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 0, 4, 4);
    pl_range(&p, 1, 0, 4, 4);
    hostile_case("range with id 1 after one DEFINE", &p, 0);

    p.n = 0;
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("range before any DEFINE", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 64, 0, 4, 4);
    hostile_case("range with id 64", &p, 0);
}
END_TEST

START_TEST(test_recover_hostile_malformed_payload)
{
    struct pl p = { .n = 0 };
    /* A truncated varint: the offset's continuation bit runs off the end. */
    pl_define(&p, "a");
    pl_byte(&p, LRVM__ENT_RANGE);
    pl_varint(&p, 0);
    pl_byte(&p, 0x80);
    pl_byte(&p, 0x80);
    hostile_case("truncated varint", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_byte(&p, LRVM__ENT_RANGE);
    pl_varint(&p, 0);
    for (int i = 0; i < 10; i++)
        pl_byte(&p, 0xff);
    pl_byte(&p, 0x01);
    pl_varint(&p, 4);
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("varint over 64 bits", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 0, 100, 4);
    hostile_case("range longer than its payload", &p, 0);

    p.n = 0;
    pl_byte(&p, LRVM__ENT_DEFINE);
    pl_varint(&p, 40);
    pl_byte(&p, 'a');
    hostile_case("DEFINE name longer than its payload", &p, 0);

    p.n = 0;
    pl_byte(&p, LRVM__ENT_DEFINE);
    pl_varint(&p, 0);
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("DEFINE with an empty name", &p, 0);

    p.n = 0;
    pl_byte(&p, LRVM__ENT_DEFINE);
    pl_varint(&p, 3);
    pl_byte(&p, 'a');
    pl_byte(&p, 0);
    pl_byte(&p, 'x');
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("DEFINE name with a NUL byte", &p, 0);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 0, 4, 4);
    pl_byte(&p, 7);
    hostile_case("unknown entry type after a good range", &p, 0);
}
END_TEST

START_TEST(test_recover_hostile_after_good_records)
{
    /* Recovery validates every record before it applies any: the good
     * records ahead of the hostile one are not written either. */
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 4000, 200, 200);
    hostile_case("one good record, then a range past the end", &p, 1);
    hostile_case("three good records, then a range past the end", &p, 3);

    p.n = 0;
    pl_define(&p, "../evil");
    pl_range(&p, 0, 0, 4, 4);
    hostile_case("two good records, then ../evil", &p, 2);

    p.n = 0;
    pl_define(&p, "a");
    pl_range(&p, 0, 0, 4, 4);
    pl_range(&p, 0, UINT64_MAX - 3, 8, 8);
    hostile_case("a good range, then an overflowing one in the same record", &p, 0);
}
END_TEST

START_TEST(test_recover_scan_handmade_records)
{
    /* Scan results for hand-built logs: a complete record, then part 0 of
     * a transaction whose COMMIT part never came. */
    struct hostile hs;
    hostile_setup(&hs);
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 16, 8, 8);
    uint64_t g = hs.h.lh_generation, t = hs.h.lh_first_txno;
    uint64_t end1 = put_record(hs.log, LRVM__LOG_HEADER_SIZE, g, t, 0, LRVM__REC_COMMIT, &p);
    uint64_t end2 = put_record(hs.log, end1, g, t + 1, 0, 0, &p);
    struct scan *sc = scan_log(hs.store);
    ck_assert_uint_eq(sc->res.sr_txs, 1);
    ck_assert_uint_eq(sc->res.sr_records, 2);
    ck_assert_uint_eq(sc->res.sr_end, end1);
    ck_assert_uint_eq(sc->res.sr_scan_end, end2);
    ck_assert_str_eq(sc->res.sr_stop, "no record");
    free(sc);

    /* Its part 1 with the COMMIT flag completes it. */
    uint64_t end3 = put_record(hs.log, end2, g, t + 1, 1, LRVM__REC_COMMIT, &p);
    sc = scan_log(hs.store);
    ck_assert_uint_eq(sc->res.sr_txs, 2);
    ck_assert_uint_eq(sc->res.sr_end, end3);
    free(sc);

    /* A part 2 of a finished transaction is out of sequence. */
    put_record(hs.log, end3, g, t + 1, 2, LRVM__REC_COMMIT, &p);
    sc = scan_log(hs.store);
    ck_assert_uint_eq(sc->res.sr_txs, 2);
    ck_assert_uint_eq(sc->res.sr_end, end3);
    ck_assert_uint_eq(sc->res.sr_scan_end, end3);
    ck_assert_str_eq(sc->res.sr_stop, "record out of sequence");
    free(sc);

    /* The file ends inside a record that claims more payload. */
    ck_assert_int_eq(truncate(hs.log, (off_t)(end3 + LRVM__REC_HEADER_SIZE + 2)), 0);
    sc = scan_log(hs.store);
    ck_assert_uint_eq(sc->res.sr_txs, 2);
    ck_assert_str_eq(sc->res.sr_stop, "record past the end of the file");
    free(sc);

    /* Recovery applies both complete transactions. */
    ck_assert_int_eq(open_close(hs.store), 0);
    unsigned char seg[32];
    ck_assert_int_eq(tu_read(tu_path(hs.store, "a.seg"), seg, sizeof seg, 0), 0);
    for (size_t i = 0; i < sizeof seg; i++)
        ck_assert_uint_eq(seg[i], i >= 16 && i < 24 ? 0xEE : 0);
    hostile_free(&hs);
}
END_TEST

/* A fixture's log with one more record behind its K transactions: a range
 * of "a" past the end of its file. */
static void append_hostile(const char *dir, const struct scan *sc)
{
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, A_SIZE - 10, 200, 200);
    put_record(tu_path(dir, LRVM__LOG_NAME), sc->res.sr_end, sc->h.lh_generation,
               sc->h.lh_first_txno + sc->res.sr_txs, 0, LRVM__REC_COMMIT, &p);
}

START_TEST(test_recover_hostile_after_cache_fills)
{
    /* Recovery gathers the ranges of records into its batch as it checks
     * them, and writes the batch out when it is full: before that write it
     * must have checked the rest of the log, from the transaction being
     * gathered on. A batch of one range or three fills long before the
     * hostile record at the end; nothing may be written all the same.
     * Transaction 6 comes in parts, which are gathered only when the last
     * is found. */
    static const uint32_t sizes[] = { 1, 3 };
    struct fixture f;
    fixture_build(&f, (struct build){ .k = 12, .log_buffer = 4096, .big = 6 });
    struct scan *sc = scan_log(f.base);
    ck_assert_uint_eq(sc->res.sr_txs, 12);
    ck_assert_uint_gt(sc->n, 12);                   /* transaction 6 is in parts */
    uint32_t saved = lrvm__apply_max;
    for (size_t k = 0; k < 2; k++) {
        char what[96];
        const char *w = fixture_copy(&f);
        append_hostile(w, sc);
        struct snapshot snap;
        snap_take(w, &snap);
        lrvm__apply_max = sizes[k];
        int rc = open_close(w);
        lrvm__apply_max = saved;
        snprintf(what, sizeof what, "batch of %u ranges, hostile last record", sizes[k]);
        ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        snap_same(w, &snap, what);

        /* The control: without the hostile record, the same cache replays
         * every transaction. */
        w = fixture_copy(&f);
        lrvm__apply_max = sizes[k];
        rc = open_close(w);
        lrvm__apply_max = saved;
        snprintf(what, sizeof what, "batch of %u ranges", sizes[k]);
        ck_assert_msg(rc == 0, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        expect_state(w, 12, 6, what);
    }
    free(sc);
    fixture_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile_log");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_handmade_record_applies);
    tcase_add_test(tc, test_recover_scan_handmade_records);
    tcase_add_test(tc, test_recover_hostile_range_past_segment_end);
    tcase_add_test(tc, test_recover_hostile_offset_overflow);
    tcase_add_test(tc, test_recover_hostile_missing_segment);
    tcase_add_test(tc, test_recover_hostile_segment_name_escapes);
    tcase_add_test(tc, test_recover_hostile_undefined_segment_id);
    tcase_add_test(tc, test_recover_hostile_malformed_payload);
    tcase_add_test(tc, test_recover_hostile_after_good_records);
    tcase_add_test(tc, test_recover_hostile_after_cache_fills);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
