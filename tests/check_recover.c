/*
 * check_recover.c -- the log scan, and recovery from damaged and torn
 * logs: a torn tail, a flipped byte, a record of another generation or
 * out of sequence, a multi-part transaction damaged, an unknown version,
 * bad header slots. Damage before records that were durable after it
 * makes lrvm_open fail with LRVM_ECORRUPT, writing nothing (logfmt.c V7);
 * a torn tail opens with exactly the transactions before it;
 * LRVM_EVERSION writes nothing either. Hand-made hostile records are in
 * check_hostile_log.c, the batch of ranges in check_apply.c.
 *
 * Crash model: a forked child commits K transactions (recover_util.h has
 * the history) with automatic truncation out of reach, then dies of
 * SIGKILL, so the log holds every record. The parent finds the record
 * boundaries with lrvm__log_read_header and lrvm__log_scan, damages
 * copies of the directory byte by byte, reopens them and compares the
 * segment files with the history replayed in memory.
 *
 * Random choices derive from LRVM_TEST_SEED (a fixed default when unset);
 * failure messages name the seed.
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

/* ------------------------------------------------------- scan results */

START_TEST(test_recover_scan_counts_records)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);

    ck_assert_uint_eq(sc->h.lh_version, LRVM__LOG_VERSION);
    ck_assert_uint_eq(sc->h.lh_first_txno, 1);
    ck_assert_uint_eq(sc->res.sr_txs, K);
    ck_assert_uint_eq(sc->res.sr_records, K);
    ck_assert_uint_eq(sc->n, K);
    ck_assert_uint_eq(sc->r[0].off, LRVM__LOG_HEADER_SIZE);
    for (size_t i = 0; i < sc->n; i++) {
        ck_assert_uint_eq(sc->r[i].txno, sc->h.lh_first_txno + i);
        ck_assert_uint_eq(sc->r[i].part, 0);
        ck_assert_uint_eq(sc->r[i].flags, LRVM__REC_COMMIT);
        ck_assert_uint_eq(sc->r[i].gen, sc->h.lh_generation);
        ck_assert_uint_eq(sc->r[i].off % 8, 0);
        if (i > 0)
            ck_assert_uint_eq(sc->r[i].off, rec_end(&sc->r[i - 1]));
    }
    ck_assert_uint_eq(sc->res.sr_end, rec_end(&sc->r[K - 1]));
    ck_assert_uint_eq(sc->res.sr_scan_end, sc->res.sr_end);
    ck_assert_str_eq(sc->res.sr_stop, "no record");
    uint64_t gen = sc->h.lh_generation;
    free(sc);

    /* Recovery applies them all and starts a generation: the old records
     * stay behind it as stale bytes the scan refuses. */
    const char *w = fixture_copy(&f);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, K, 0, "recovered");
    sc = scan_log(w);
    ck_assert_uint_eq(sc->h.lh_generation, gen + 1);
    ck_assert_uint_eq(sc->h.lh_first_txno, K + 1);
    ck_assert_uint_eq(sc->res.sr_txs, 0);
    ck_assert_uint_eq(sc->res.sr_end, LRVM__LOG_HEADER_SIZE);
    ck_assert_str_eq(sc->res.sr_stop, "record of another generation");
    free(sc);
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_scan_multipart_records)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = 6, .log_buffer = 4096, .big = 4 });
    struct scan *sc = scan_log(f.base);

    ck_assert_uint_eq(sc->res.sr_txs, 6);
    ck_assert_uint_eq(sc->res.sr_records, sc->n);
    ck_assert_uint_ge(sc->n, 6 + BIG_LEN / 4096);
    uint64_t txno = 1;
    unsigned part = 0;
    for (size_t i = 0; i < sc->n; i++) {
        ck_assert_uint_eq(sc->r[i].txno, txno);
        ck_assert_uint_eq(sc->r[i].part, part);
        ck_assert_uint_le(rec_end(&sc->r[i]) - sc->r[i].off, 4096);
        if (i > 0)
            ck_assert_uint_eq(sc->r[i].off, rec_end(&sc->r[i - 1]));
        if (sc->r[i].flags & LRVM__REC_COMMIT) {
            txno++;
            part = 0;
        } else {
            ck_assert_uint_eq(txno, 4);     /* only the big one has parts */
            part++;
        }
    }
    ck_assert_uint_eq(txno, 7);
    ck_assert_uint_eq(sc->res.sr_end, rec_end(&sc->r[sc->n - 1]));
    ck_assert_str_eq(sc->res.sr_stop, "no record");
    free(sc);

    const char *w = fixture_copy(&f);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, 6, 4, "recovered");
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_scan_log_past_read_window)
{
    /* 120 transactions of 40 KiB: a log of about 4.9 MiB, more than the
     * scan reads at once (4 MiB), with a record across that boundary. */
    const uint64_t window = (uint64_t)4 << 20;
    struct fixture f;
    fixture_build(&f, (struct build){ .k = 120, .big = ALL_BIG });
    struct scan *sc = scan_log(f.base);
    ck_assert_uint_eq(sc->res.sr_txs, 120);
    ck_assert_uint_eq(sc->res.sr_records, 120);
    ck_assert_uint_eq(sc->res.sr_end, rec_end(&sc->r[119]));
    ck_assert_uint_gt(sc->res.sr_end, window + BIG_LEN);
    ck_assert_str_eq(sc->res.sr_stop, "no record");
    for (size_t i = 1; i < sc->n; i++)
        ck_assert_uint_eq(sc->r[i].off, rec_end(&sc->r[i - 1]));

    const char *w = fixture_copy(&f);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, 120, ALL_BIG, "undamaged");

    /* Damage in the record across the boundary, then in one past it. */
    size_t across = 0, past = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->r[i].off < window && rec_end(&sc->r[i]) > window)
            across = i;
        if (past == 0 && sc->r[i].off > window)
            past = i;
    }
    ck_assert_uint_gt(across, 0);
    ck_assert_uint_gt(past, 0);
    const size_t cases[2] = { across, past };
    for (int i = 0; i < 2; i++) {
        const struct rec *r = &sc->r[cases[i]];
        w = fixture_copy(&f);
        xor_byte(tu_path(w, LRVM__LOG_NAME), r->off + LRVM__REC_HEADER_SIZE + r->len - 1, 0x08);
        struct scan *d = scan_log(w);
        ck_assert_uint_eq(d->res.sr_txs, r->txno - 1);
        ck_assert_str_eq(d->res.sr_stop, "checksum mismatch");
        ck_assert_uint_eq(d->res.sr_damage, r->off);
        free(d);
        expect_refused(w, sc, cases[i], ALL_BIG, i == 0 ? "record across 4 MiB damaged"
                                                        : "record past 4 MiB damaged");
        tu_rmrf(w);
    }
    free(sc);
    fixture_free(&f);
}
END_TEST

/* ---------------------------------------------------------- torn tail */

START_TEST(test_recover_torn_tail_zeroed)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    struct rec last = sc->r[K - 1];
    free(sc);

    /* The last 16 bytes of the last record's payload never reached disk. */
    const char *w = fixture_copy(&f);
    unsigned char zeros[16] = { 0 };
    ck_assert_int_eq(tu_write(tu_path(w, LRVM__LOG_NAME), zeros, sizeof zeros,
                              last.off + LRVM__REC_HEADER_SIZE + last.len - sizeof zeros), 0);
    sc = scan_log(w);
    ck_assert_uint_eq(sc->res.sr_txs, K - 1);
    ck_assert_uint_eq(sc->res.sr_end, last.off);
    ck_assert_uint_eq(sc->res.sr_scan_end, last.off);
    ck_assert_str_eq(sc->res.sr_stop, "checksum mismatch");
    free(sc);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, K - 1, 0, "torn tail zeroed");
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_torn_tail_cut)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    struct rec last = sc->r[K - 1];
    free(sc);

    /* The file ends inside the last record's payload, then inside its
     * header. */
    const struct {
        uint64_t    cut;
        const char *stop;
    } cases[] = {
        { last.off + LRVM__REC_HEADER_SIZE + last.len / 2, "record past the end of the file" },
        { last.off + 20, "end of file" },
        { last.off, "end of file" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *w = fixture_copy(&f);
        ck_assert_int_eq(truncate(tu_path(w, LRVM__LOG_NAME), (off_t)cases[i].cut), 0);
        sc = scan_log(w);
        ck_assert_uint_eq(sc->res.sr_txs, K - 1);
        ck_assert_uint_eq(sc->res.sr_end, last.off);
        ck_assert_str_eq(sc->res.sr_stop, cases[i].stop);
        free(sc);
        ck_assert_int_eq(open_close(w), 0);
        char what[64];
        snprintf(what, sizeof what, "log cut at %" PRIu64, cases[i].cut);
        expect_state(w, K - 1, 0, what);
    }
    fixture_free(&f);
}
END_TEST

/* ------------------------------------------------------- flipped bytes */

START_TEST(test_recover_flipped_payload_byte)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x3000u) | 1;

    for (int t = 0; t < 10; t++) {
        /* The first and the last record, then random ones. */
        size_t j = t == 0 ? 0 : t == 1 ? K - 1 : (size_t)(tu_rand(&rng) % K);
        const struct rec *r = &sc->r[j];
        uint64_t at = r->off + LRVM__REC_HEADER_SIZE + tu_rand(&rng) % r->len;
        unsigned char x = (unsigned char)(1 + tu_rand(&rng) % 255);
        const char *w = fixture_copy(&f);
        xor_byte(tu_path(w, LRVM__LOG_NAME), at, x);
        char what[160];
        snprintf(what, sizeof what, "LRVM_TEST_SEED=%" PRIu64 ": record of tx %" PRIu64
                 ", log byte %" PRIu64 " ^= 0x%02x", seed, r->txno, at, x);
        struct scan *d = scan_log(w);
        ck_assert_msg(d->res.sr_txs == r->txno - 1 &&
                      strcmp(d->res.sr_stop, "checksum mismatch") == 0,
                      "%s: scan found %" PRIu64 " transactions, stop: %s", what,
                      d->res.sr_txs, d->res.sr_stop);
        free(d);
        expect_refused(w, sc, j, 0, what);
    }
    free(sc);
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_flipped_header_byte)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x4000u) | 1;
    size_t j = 1 + (size_t)(tu_rand(&rng) % (K - 1));
    const struct rec *r = &sc->r[j];

    /* Every byte of record j's header, each on its own copy. */
    for (unsigned i = 0; i < LRVM__REC_HEADER_SIZE; i++) {
        unsigned char x = (unsigned char)(1 + tu_rand(&rng) % 255);
        const char *w = fixture_copy(&f);
        xor_byte(tu_path(w, LRVM__LOG_NAME), r->off + i, x);
        char what[160];
        snprintf(what, sizeof what, "LRVM_TEST_SEED=%" PRIu64 ": header byte %u of tx %" PRIu64
                 " ^= 0x%02x", seed, i, r->txno, x);
        struct scan *d = scan_log(w);
        ck_assert_msg(d->res.sr_txs == r->txno - 1 && d->res.sr_end == r->off,
                      "%s: scan found %" PRIu64 " transactions, stop: %s", what,
                      d->res.sr_txs, d->res.sr_stop);
        free(d);
        expect_refused(w, sc, j, 0, what);
        tu_rmrf(w);
    }
    free(sc);
    fixture_free(&f);
}
END_TEST

/* ------------------------------------- valid CRC, wrong place in the log */

/* Record j rewritten at field offset FIELD with V and its CRC fixed: the
 * scan stops before it with STOP, and lrvm_open refuses the log when the
 * record is proven damage (a record after it was durable, or it carries a
 * later generation: logfmt.c V7); a last record of its own generation
 * that is merely out of sequence looks like a torn tail. */
static void rewrite_case(struct fixture *f, const struct scan *sc, size_t j, unsigned field,
                         int width, uint64_t v, const char *stop)
{
    const struct rec *r = &sc->r[j];
    const char *w = fixture_copy(f);
    const char *log = tu_path(w, LRVM__LOG_NAME);
    if (width == 8) {
        patch64(log, r->off + field, v);
    } else {
        unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
        ck_assert_int_eq(tu_write(log, b, 2, r->off + field), 0);
    }
    fix_crc(log, r->off, r->len);
    char what[160];
    snprintf(what, sizeof what, "record of tx %" PRIu64 ", field at %u set to %" PRIu64,
             r->txno, field, v);
    struct scan *d = scan_log(w);
    ck_assert_msg(d->res.sr_txs == r->txno - 1 && d->res.sr_end == r->off &&
                  d->res.sr_scan_end == r->off && strcmp(d->res.sr_stop, stop) == 0,
                  "%s: scan found %" PRIu64 " transactions, end %" PRIu64 ", stop: %s",
                  what, d->res.sr_txs, d->res.sr_end, d->res.sr_stop);
    free(d);
    if (field == 16 && v > sc->h.lh_generation) {
        struct snapshot snap;
        snap_take(w, &snap);
        int rc = open_close(w);
        ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        snap_same(w, &snap, what);
        return;
    }
    expect_refused(w, sc, j, 0, what);
}

START_TEST(test_recover_record_of_other_generation)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    uint64_t gen = sc->h.lh_generation;
    rewrite_case(&f, sc, 17, 16, 8, gen + 1, "record of another generation");
    rewrite_case(&f, sc, 17, 16, 8, gen - 1, "record of another generation");
    rewrite_case(&f, sc, 0, 16, 8, gen + 1, "record of another generation");
    rewrite_case(&f, sc, K - 1, 16, 8, gen + 7, "record of another generation");
    free(sc);
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_record_out_of_sequence)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K });
    struct scan *sc = scan_log(f.base);
    uint64_t t = sc->r[20].txno;
    rewrite_case(&f, sc, 20, 24, 8, t + 1, "record out of sequence");      /* a gap */
    rewrite_case(&f, sc, 20, 24, 8, t - 1, "record out of sequence");      /* a replay */
    rewrite_case(&f, sc, 20, 12, 2, 1, "record out of sequence");          /* part 1 first */
    rewrite_case(&f, sc, 0, 24, 8, 0, "record out of sequence");
    rewrite_case(&f, sc, K - 1, 24, 8, 1, "record out of sequence");
    free(sc);
    fixture_free(&f);
}
END_TEST

/* --------------------------------------------------------- header slots */

/* Rewrite header slot SLOT of the log in DIR: its version field set to
 * VERSION, its CRC recomputed. */
static void set_slot_version(const char *dir, int slot, uint32_t version)
{
    unsigned char b[512];
    const char *log = tu_path(dir, LRVM__LOG_NAME);
    ck_assert_int_eq(tu_read(log, b, sizeof b, (uint64_t)slot * 512), 0);
    le32(b + 8, version);
    le32(b + 32, lrvm__crc32c(0, b, 32));
    ck_assert_int_eq(tu_write(log, b, sizeof b, (uint64_t)slot * 512), 0);
}

START_TEST(test_recover_unknown_version)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K, .truncate_after = 10 });
    const char *w = fixture_copy(&f);
    set_slot_version(w, 0, LRVM__LOG_VERSION + 1);
    set_slot_version(w, 1, LRVM__LOG_VERSION + 1);
    struct snapshot s;
    snap_take(w, &s);
    int rc = open_close(w);
    ck_assert_msg(rc == LRVM_EVERSION, "lrvm_open: %s", lrvm_strerror(rc));
    snap_same(w, &s, "unknown version");
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_both_slots_bad_magic)
{
    struct fixture f;
    fixture_build(&f, (struct build){ .k = K, .truncate_after = 10 });
    const char *w = fixture_copy(&f);
    xor_byte(tu_path(w, LRVM__LOG_NAME), 0, 0x20);
    xor_byte(tu_path(w, LRVM__LOG_NAME), 512 + 3, 0x01);
    struct snapshot s;
    snap_take(w, &s);
    int rc = open_close(w);
    ck_assert_msg(rc == LRVM_ECORRUPT, "lrvm_open: %s", lrvm_strerror(rc));
    snap_same(w, &s, "both slots damaged");
    fixture_free(&f);
}
END_TEST

/* Damage byte AT of header slot 0 (the older generation) in copies of a
 * store whose slot 1 is current: the open must use slot 1 and recover all
 * K transactions. */
static void noncurrent_slot_case(const unsigned *at, size_t n)
{
    struct fixture f;
    /* The truncation after 10 writes generation 2 to slot 1: both slots
     * are valid and slot 0 is the older one. */
    fixture_build(&f, (struct build){ .k = K, .truncate_after = 10 });
    struct scan *sc = scan_log(f.base);
    ck_assert_int_eq(sc->slot, 1);
    ck_assert_uint_eq(sc->h.lh_first_txno, 11);
    ck_assert_uint_eq(sc->res.sr_txs, K - 10);
    uint64_t gen = sc->h.lh_generation;
    free(sc);

    for (size_t i = 0; i < n; i++) {
        const char *w = fixture_copy(&f);
        xor_byte(tu_path(w, LRVM__LOG_NAME), at[i], 0x10);
        int fd = open(tu_path(w, LRVM__LOG_NAME), O_RDONLY);
        ck_assert_int_ge(fd, 0);
        struct lrvm__log_header h;
        int slot = -1, rc = lrvm__log_read_header(fd, &h, &slot);
        close(fd);
        ck_assert_msg(rc == 0 && slot == 1 && h.lh_generation == gen,
                      "slot 0 byte %u damaged: lrvm__log_read_header returned %d (%s), slot %d",
                      at[i], rc, lrvm_strerror(rc), slot);
        rc = open_close(w);
        ck_assert_msg(rc == 0, "slot 0 byte %u damaged: lrvm_open: %s", at[i], lrvm_strerror(rc));
        expect_state(w, K, 0, "slot 0 damaged");
    }
    fixture_free(&f);
}

START_TEST(test_recover_noncurrent_slot_damaged)
{
    const unsigned at[] = { 0, 7, 12, 20, 27, 32, 35 };  /* magic, zero, generation, first, CRC */
    noncurrent_slot_case(at, sizeof at / sizeof at[0]);
}
END_TEST

START_TEST(test_recover_noncurrent_slot_damaged_version_byte)
{
    /* A flipped bit in the version field: the slot's CRC no longer
     * matches, so it is damage, not a slot of another format version. */
    const unsigned at[] = { 8 };
    noncurrent_slot_case(at, 1);
}
END_TEST

/* ------------------------------------------------ multi-part transaction */

START_TEST(test_recover_multipart_damaged_part)
{
    struct fixture f;
    /* Transaction 6 of 6 is 40 KiB: about ten parts of 4 KiB. */
    fixture_build(&f, (struct build){ .k = 6, .log_buffer = 4096, .big = 6 });
    struct scan *sc = scan_log(f.base);
    size_t last = commit_of(sc, 6), first = commit_of(sc, 5) + 1;
    ck_assert_uint_ge(last - first, 5);

    const struct {
        size_t      rec;
        const char *what;
    } cases[] = {
        { last, "last part" },
        { first, "first part" },
        { (first + last) / 2, "middle part" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct rec *r = &sc->r[cases[i].rec];
        const char *w = fixture_copy(&f);
        xor_byte(tu_path(w, LRVM__LOG_NAME), r->off + LRVM__REC_HEADER_SIZE + r->len / 2, 0x40);
        struct scan *d = scan_log(w);
        ck_assert_uint_eq(d->res.sr_txs, 5);
        ck_assert_uint_eq(d->res.sr_end, sc->r[first].off);
        free(d);
        int rc = open_close(w);
        ck_assert_msg(rc == 0, "%s damaged: lrvm_open: %s", cases[i].what, lrvm_strerror(rc));
        expect_state(w, 5, 6, cases[i].what);
    }

    /* The log cut inside the last part. */
    const char *w = fixture_copy(&f);
    ck_assert_int_eq(truncate(tu_path(w, LRVM__LOG_NAME),
                              (off_t)(sc->r[last].off + LRVM__REC_HEADER_SIZE + 10)), 0);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, 5, 6, "cut in the last part");
    free(sc);
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_multipart_damage_before_later_txs_refused)
{
    struct fixture f;
    /* The big transaction 3 has later ones behind it: damage in one of its
     * parts would hide them too, so lrvm_open refuses the log. */
    fixture_build(&f, (struct build){ .k = 8, .log_buffer = 4096, .big = 3 });
    struct scan *sc = scan_log(f.base);
    ck_assert_uint_eq(sc->res.sr_txs, 8);
    size_t last = commit_of(sc, 3);
    const struct rec *r = &sc->r[last];
    const char *w = fixture_copy(&f);
    xor_byte(tu_path(w, LRVM__LOG_NAME), r->off + LRVM__REC_HEADER_SIZE, 0x01);
    expect_refused(w, sc, last, 3, "last part of tx 3 damaged");
    /* Undamaged, everything is there. */
    w = fixture_copy(&f);
    ck_assert_int_eq(open_close(w), 0);
    expect_state(w, 8, 3, "undamaged");
    free(sc);
    fixture_free(&f);
}
END_TEST

START_TEST(test_recover_new_generation_skips_stopping_record)
{
    /* A damaged or hostile first record of the next generation's number
     * stops the scan, and the log is empty. An intact record of a later
     * generation than the header's proves a damaged header slot, so
     * lrvm_open refuses the log (logfmt.c V7); with the record's CRC
     * broken it is no proof, and the new generation that open starts
     * must not take that number, or the record would become valid
     * (found by fuzz_recover: the second open failed on its payload). */
    struct hostile hs;
    hostile_setup(&hs);
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 100, 4, 4);
    put_record(hs.log, LRVM__LOG_HEADER_SIZE, hs.h.lh_generation + 1, hs.h.lh_first_txno, 0,
               LRVM__REC_COMMIT, &p);
    ck_assert_int_eq(open_close(hs.store), LRVM_ECORRUPT);
    xor_byte(hs.log, LRVM__LOG_HEADER_SIZE + 4, 0x01);          /* its CRC */
    ck_assert_int_eq(open_close(hs.store), 0);
    struct scan *sc = scan_log(hs.store);
    ck_assert_uint_gt(sc->h.lh_generation, hs.h.lh_generation + 1);
    ck_assert_uint_eq(sc->res.sr_records, 0);
    free(sc);
    ck_assert_int_eq(open_close(hs.store), 0);
    unsigned char seg[4096];
    ck_assert_int_eq(tu_read(tu_path(hs.store, "a.seg"), seg, sizeof seg, 0), 0);
    for (size_t i = 0; i < sizeof seg; i++)
        ck_assert_msg(seg[i] == 0, "a.seg byte %zu is 0x%02x: the record was replayed", i, seg[i]);
    hostile_free(&hs);
}
END_TEST

/* Commit one transaction to DIR that sets bytes 8..15 of "a" to 0x5A and
 * close: a record of the same length every time. */
static void commit_one(const char *dir)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    void *a;
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "a", 4096, &a), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, (char *)a + 8, 8), 0);
    memset((char *)a + 8, 0x5A, 8);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_recover_torn_first_record_hides_later_ones)
{
    /* A crash while a group of commits was synced can leave the group's
     * first record torn and later ones intact behind it. Recovery keeps
     * none of them. The store's next record, written over the torn one,
     * must not make the stale record behind it valid, even when it ends
     * exactly where that one begins: its changes were made on top of the
     * lost transaction, and were never acknowledged. */
    struct hostile hs, twin;
    hostile_setup(&hs);
    hostile_setup(&twin);
    commit_one(twin.store);                 /* to learn the record's bytes */
    struct scan *sc = scan_log(twin.store);
    ck_assert_uint_eq(sc->res.sr_txs, 1);
    size_t len = (size_t)(sc->res.sr_end - LRVM__LOG_HEADER_SIZE);
    free(sc);
    unsigned char rec[512];
    ck_assert_uint_le(len, sizeof rec);
    ck_assert_int_eq(tu_read(twin.log, rec, len, LRVM__LOG_HEADER_SIZE), 0);

    /* hs's log: that record, torn, with the header's generation and first
     * number; behind it a valid successor writing 0xEE over bytes
     * 100..103 of "a". */
    le64(rec + 16, hs.h.lh_generation);
    le64(rec + 24, hs.h.lh_first_txno);
    uint32_t payload_len = (uint32_t)rec[8] | (uint32_t)rec[9] << 8 |
                           (uint32_t)rec[10] << 16 | (uint32_t)rec[11] << 24;
    le32(rec + 4, lrvm__rec_crc(rec, payload_len) ^ 1);
    ck_assert_int_eq(tu_write(hs.log, rec, len, LRVM__LOG_HEADER_SIZE), 0);
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_range(&p, 0, 100, 4, 4);
    put_record(hs.log, LRVM__LOG_HEADER_SIZE + len, hs.h.lh_generation,
               hs.h.lh_first_txno + 1, 0, LRVM__REC_COMMIT, &p);
    sc = scan_log(hs.store);
    ck_assert_uint_eq(sc->res.sr_txs, 0);
    ck_assert_str_eq(sc->res.sr_stop, "checksum mismatch");
    free(sc);

    commit_one(hs.store);
    ck_assert_int_eq(open_close(hs.store), 0);
    unsigned char seg[4096];
    ck_assert_int_eq(tu_read(tu_path(hs.store, "a.seg"), seg, sizeof seg, 0), 0);
    for (size_t i = 0; i < sizeof seg; i++)
        ck_assert_msg(seg[i] == (i >= 8 && i < 16 ? 0x5A : 0),
                      "a.seg byte %zu is 0x%02x: the stale record was replayed", i, seg[i]);
    hostile_free(&hs);
    hostile_free(&twin);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recover");

    TCase *tc = tcase_create("scan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_scan_counts_records);
    tcase_add_test(tc, test_recover_scan_multipart_records);
    tcase_add_test(tc, test_recover_scan_log_past_read_window);
    suite_add_tcase(s, tc);

    tc = tcase_create("damaged");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_torn_tail_zeroed);
    tcase_add_test(tc, test_recover_torn_tail_cut);
    tcase_add_test(tc, test_recover_flipped_payload_byte);
    tcase_add_test(tc, test_recover_flipped_header_byte);
    tcase_add_test(tc, test_recover_record_of_other_generation);
    tcase_add_test(tc, test_recover_record_out_of_sequence);
    tcase_add_test(tc, test_recover_unknown_version);
    tcase_add_test(tc, test_recover_both_slots_bad_magic);
    tcase_add_test(tc, test_recover_noncurrent_slot_damaged);
    tcase_add_test(tc, test_recover_noncurrent_slot_damaged_version_byte);
    tcase_add_test(tc, test_recover_multipart_damaged_part);
    tcase_add_test(tc, test_recover_multipart_damage_before_later_txs_refused);
    tcase_add_test(tc, test_recover_torn_first_record_hides_later_ones);
    tcase_add_test(tc, test_recover_new_generation_skips_stopping_record);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
