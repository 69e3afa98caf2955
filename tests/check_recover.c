/*
 * check_recover.c -- the log scan and recovery from damaged or hostile
 * logs: a torn tail, a flipped byte, a record of another generation or
 * out of sequence, an unknown version, bad header slots, and records with
 * a valid CRC whose payload points outside a segment or names a segment
 * that is missing or outside the store. Each must give a clean stop (the
 * store shows exactly the transactions before the damage) or
 * LRVM_ECORRUPT / LRVM_EVERSION with no file written or created.
 *
 * Crash model: a forked child commits K transactions (transaction j sets
 * the counter at offset 0 of segment "a" to j and writes bytes derived
 * from j in "a" and "b") with automatic truncation out of reach, then
 * dies of SIGKILL, so the log holds every record. The parent finds the
 * record boundaries with lrvm__log_read_header and lrvm__log_scan, damages
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

#define A_SIZE ((size_t)64 << 10)
#define B_SIZE ((size_t)4096)
#define BIG_OFF ((size_t)16 << 10)
#define BIG_LEN ((size_t)40 << 10)
#define MAX_RECS 1024
#define ALL_BIG UINT64_MAX              /* every transaction is big */

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ------------------------------------------------------- the history */

/* Transaction J, applied to the images A and B; when TX is not NULL each
 * range is declared on it first. BIG: the transaction that also writes
 * BIG_LEN bytes at BIG_OFF (0: none, ALL_BIG: every one). */
static int tx_apply(uint64_t j, uint64_t big, unsigned char *a, unsigned char *b, lrvm_tx_t *tx)
{
    uint64_t r = tu_mix64(j);
    int is_big = big == ALL_BIG || j == big;
    size_t aoff = 8 + (size_t)(r % (A_SIZE - 8 - 256)), alen = 16 + (size_t)((r >> 20) % 200);
    size_t boff = (size_t)((r >> 36) % (B_SIZE - 64)), blen = 1 + (size_t)((r >> 12) % 64);
    if (tx != NULL &&
        (lrvm_set_range(tx, a, 8) != 0 || lrvm_set_range(tx, a + aoff, alen) != 0 ||
         lrvm_set_range(tx, b + boff, blen) != 0 ||
         (is_big && lrvm_set_range(tx, a + BIG_OFF, BIG_LEN) != 0)))
        return -1;
    memcpy(a, &j, 8);
    for (size_t i = 0; i < alen; i++)
        a[aoff + i] = (unsigned char)(r >> ((i & 7) * 8)) ^ (unsigned char)i;
    for (size_t i = 0; i < blen; i++)
        b[boff + i] = (unsigned char)(j * 7 + i);
    if (is_big)
        for (size_t i = 0; i < BIG_LEN; i++)
            a[BIG_OFF + i] = (unsigned char)(j + i / 8 + 1);
    return 0;
}

/* Check the segment files of DIR hold exactly transactions 1..N. */
static void expect_state(const char *dir, uint64_t n, uint64_t big, const char *what)
{
    unsigned char *ea = calloc(1, A_SIZE), *eb = calloc(1, B_SIZE);
    unsigned char *fa = malloc(A_SIZE), *fb = malloc(B_SIZE);
    ck_assert(ea && eb && fa && fb);
    for (uint64_t j = 1; j <= n; j++)
        tx_apply(j, big, ea, eb, NULL);
    ck_assert_int_eq(tu_file_size(tu_path(dir, "a.seg")), (int64_t)A_SIZE);
    ck_assert_int_eq(tu_file_size(tu_path(dir, "b.seg")), (int64_t)B_SIZE);
    ck_assert_int_eq(tu_read(tu_path(dir, "a.seg"), fa, A_SIZE, 0), 0);
    ck_assert_int_eq(tu_read(tu_path(dir, "b.seg"), fb, B_SIZE, 0), 0);
    uint64_t c;
    memcpy(&c, fa, 8);
    ck_assert_msg(c == n, "%s: the store shows %" PRIu64 " transactions, expected %" PRIu64,
                  what, c, n);
    for (size_t i = 0; i < A_SIZE; i++)
        ck_assert_msg(fa[i] == ea[i], "%s: a.seg byte %zu is 0x%02x, transactions 1..%" PRIu64
                      " give 0x%02x", what, i, fa[i], n, ea[i]);
    for (size_t i = 0; i < B_SIZE; i++)
        ck_assert_msg(fb[i] == eb[i], "%s: b.seg byte %zu is 0x%02x, transactions 1..%" PRIu64
                      " give 0x%02x", what, i, fb[i], n, eb[i]);
    free(ea);
    free(eb);
    free(fa);
    free(fb);
}

/* ------------------------------------------------- building the logs */

struct build {
    const char *dir;
    unsigned    k;                  /* transactions */
    size_t      log_buffer;         /* 0: default */
    unsigned    truncate_after;     /* lrvm_truncate after this one; 0: never */
    uint64_t    big;                /* the multi-part transaction; 0: none */
};

static void build_child(void *arg)
{
    const struct build *bd = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = bd->log_buffer,
                         .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s;
    void *a, *b;
    alarm(60);
    if (lrvm_open(bd->dir, &o, &s) != 0)
        _exit(20);
    if (lrvm_map(s, "a", A_SIZE, &a) != 0 || lrvm_map(s, "b", B_SIZE, &b) != 0)
        _exit(21);
    void *bases[2] = { a, b };
    for (uint64_t j = 1; j <= bd->k; j++) {
        lrvm_tx_t *tx;
        if (lrvm_begin(s, 2, bases, &tx) != 0)
            _exit(22);
        if (tx_apply(j, bd->big, a, b, tx) != 0)
            _exit(23);
        if (lrvm_commit(tx, 0) != 0)
            _exit(24);
        if (j == bd->truncate_after && lrvm_truncate(s) != 0)
            _exit(25);
    }
    kill(getpid(), SIGKILL);
    _exit(26);
}

/* DIR/base holds K committed transactions in its log. */
static void build_log(const struct build *bd)
{
    int st = tu_in_child(build_child, (void *)bd);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "building the log: child status 0x%x (exit code %d)", st,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ----------------------------------------------------------- scanning */

struct rec {
    uint64_t off;
    uint32_t len;           /* payload */
    uint16_t part, flags;
    uint64_t gen, txno;
};

struct scan {
    struct lrvm__log_header  h;
    int                      slot;
    struct rec               r[MAX_RECS];
    size_t                   n;
    struct lrvm__scan_result res;
};

static int on_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                     const unsigned char *payload)
{
    struct scan *sc = arg;
    (void)payload;
    ck_assert_uint_lt(sc->n, MAX_RECS);
    sc->r[sc->n++] = (struct rec){ off, h->rh_payload_len, h->rh_part, h->rh_flags,
                                   h->rh_generation, h->rh_txno };
    return 0;
}

static struct scan *scan_log(const char *dir)
{
    struct scan *sc = calloc(1, sizeof *sc);
    ck_assert(sc != NULL);
    int fd = open(tu_path(dir, LRVM__LOG_NAME), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(lrvm__log_read_header(fd, &sc->h, &sc->slot), 0);
    struct lrvm__scan_cb cb = { .arg = sc, .record = on_record };
    ck_assert_int_eq(lrvm__log_scan(fd, &sc->h, &cb, &sc->res), 0);
    close(fd);
    return sc;
}

static uint64_t rec_end(const struct rec *r)
{
    return r->off + align8(LRVM__REC_HEADER_SIZE + r->len);
}

/* The index of the COMMIT record of transaction TXNO. */
static size_t commit_of(const struct scan *sc, uint64_t txno)
{
    for (size_t i = 0; i < sc->n; i++)
        if (sc->r[i].txno == txno && (sc->r[i].flags & LRVM__REC_COMMIT))
            return i;
    ck_abort_msg("no COMMIT record for transaction %" PRIu64, txno);
    return 0;
}

/* ----------------------------------------------------------- damaging */

static void xor_byte(const char *path, uint64_t off, unsigned char x)
{
    unsigned char c;
    ck_assert_int_eq(tu_read(path, &c, 1, off), 0);
    c ^= x;
    ck_assert_int_eq(tu_write(path, &c, 1, off), 0);
}

/* Recompute the CRC of the record at OFF with PAYLOAD_LEN bytes. */
static void fix_crc(const char *path, uint64_t off, uint32_t payload_len)
{
    size_t n = LRVM__REC_HEADER_SIZE + payload_len;
    unsigned char *buf = malloc(n);
    ck_assert(buf != NULL);
    ck_assert_int_eq(tu_read(path, buf, n, off), 0);
    le32(buf + 4, lrvm__rec_crc(buf, payload_len));
    ck_assert_int_eq(tu_write(path, buf + 4, 4, off + 4), 0);
    free(buf);
}

static void patch64(const char *path, uint64_t off, uint64_t v)
{
    unsigned char b[8];
    le64(b, v);
    ck_assert_int_eq(tu_write(path, b, 8, off), 0);
}

static int open_close(const char *dir)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    int rc = lrvm_open(dir, &o, &s);
    if (rc == 0)
        ck_assert_int_eq(lrvm_close(s), 0);
    return rc;
}

/* A scratch root with DIR/base built from BD. */
struct fixture {
    char *root;
    char  base[4096];
    char  work[4096];
    int   copies;
};

static void fixture_build(struct fixture *f, struct build bd)
{
    f->root = tu_tmpdir();
    f->copies = 0;
    snprintf(f->base, sizeof f->base, "%s/base", f->root);
    bd.dir = f->base;
    build_log(&bd);
}

/* A fresh copy of the base in f->work. */
static const char *fixture_copy(struct fixture *f)
{
    snprintf(f->work, sizeof f->work, "%s/copy%d", f->root, f->copies++);
    ck_assert_int_eq(mkdir(f->work, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(f->base, f->work), 0);
    return f->work;
}

static void fixture_free(struct fixture *f)
{
    tu_rmrf(f->root);
    free(f->root);
}

struct snapshot {
    unsigned char *data[3];
    int64_t        size[3];
};

static const char *const snap_names[3] = { "a.seg", "b.seg", LRVM__LOG_NAME };

static void snap_take(const char *dir, struct snapshot *s)
{
    for (int i = 0; i < 3; i++) {
        s->size[i] = tu_file_size(tu_path(dir, snap_names[i]));
        ck_assert_int_gt(s->size[i], 0);
        s->data[i] = malloc((size_t)s->size[i]);
        ck_assert(s->data[i] != NULL);
        ck_assert_int_eq(tu_read(tu_path(dir, snap_names[i]), s->data[i], (size_t)s->size[i], 0), 0);
    }
}

/* The files are byte for byte what they were. */
static void snap_same(const char *dir, struct snapshot *s, const char *what)
{
    for (int i = 0; i < 3; i++) {
        int64_t size = tu_file_size(tu_path(dir, snap_names[i]));
        ck_assert_msg(size == s->size[i], "%s: %s changed size from %" PRId64 " to %" PRId64,
                      what, snap_names[i], s->size[i], size);
        unsigned char *now = malloc((size_t)size);
        ck_assert(now != NULL);
        ck_assert_int_eq(tu_read(tu_path(dir, snap_names[i]), now, (size_t)size, 0), 0);
        ck_assert_msg(memcmp(now, s->data[i], (size_t)size) == 0, "%s: %s changed", what,
                      snap_names[i]);
        free(now);
        free(s->data[i]);
    }
}

/* Record J of the fixture's log in W was damaged. When records follow it
 * (written after it was durable), lrvm_open must refuse the log and write
 * nothing (logfmt.c V7); when it is the last, the damage looks like a
 * torn tail and the store opens with the transactions before it. */
static void expect_refused(const char *w, const struct scan *sc, size_t j, uint64_t big,
                           const char *what)
{
    const struct rec *r = &sc->r[j];
    if (j + 1 == sc->n) {
        int rc = open_close(w);
        ck_assert_msg(rc == 0, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        expect_state(w, r->txno - 1, big, what);
        return;
    }
    struct snapshot snap;
    snap_take(w, &snap);
    int rc = open_close(w);
    ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open accepted a log damaged before its "
                  "last durable record (%s)", what, lrvm_strerror(rc));
    snap_same(w, &snap, what);
}

#define K 40

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

/* ------------------------------------------------------ hostile records */

/* A payload under construction. */
struct pl {
    unsigned char b[1024];
    size_t        n;
};

static void pl_byte(struct pl *p, unsigned char c)
{
    p->b[p->n++] = c;
}

static void pl_varint(struct pl *p, uint64_t v)
{
    p->n += lrvm__varint_put(p->b + p->n, v);
}

static void pl_define(struct pl *p, const char *name)
{
    pl_byte(p, LRVM__ENT_DEFINE);
    pl_varint(p, strlen(name));
    memcpy(p->b + p->n, name, strlen(name));
    p->n += strlen(name);
}

/* A RANGE entry claiming LEN bytes, followed by NDATA bytes of 0xEE. */
static void pl_range(struct pl *p, uint64_t id, uint64_t off, uint64_t len, size_t ndata)
{
    pl_byte(p, LRVM__ENT_RANGE);
    pl_varint(p, id);
    pl_varint(p, off);
    pl_varint(p, len);
    memset(p->b + p->n, 0xEE, ndata);
    p->n += ndata;
}

/* Write a record with payload P at OFF of LOG; return the offset past it. */
static uint64_t put_record(const char *log, uint64_t off, uint64_t gen, uint64_t txno,
                           unsigned part, unsigned flags, const struct pl *p)
{
    unsigned char rec[LRVM__REC_HEADER_SIZE + sizeof p->b + 8];
    size_t total = align8(LRVM__REC_HEADER_SIZE + p->n);
    memset(rec, 0, sizeof rec);
    memcpy(rec, "LRVR", 4);
    le32(rec + 8, (uint32_t)p->n);
    rec[12] = (unsigned char)part;
    rec[13] = (unsigned char)(part >> 8);
    rec[14] = (unsigned char)flags;
    le64(rec + 16, gen);
    le64(rec + 24, txno);
    memcpy(rec + LRVM__REC_HEADER_SIZE, p->b, p->n);
    le32(rec + 4, lrvm__rec_crc(rec, p->n));
    ck_assert_int_eq(tu_write(log, rec, total, off), 0);
    return off + total;
}

/* ROOT/store: a store with segment "a" (4096 zero bytes) and an empty log;
 * ROOT/evil.seg: 4096 zero bytes that no record may reach (a write to it
 * shows; a test that removes it checks that nothing creates it). */
struct hostile {
    char                   *root;
    char                    store[4096];
    char                    log[4096];
    struct lrvm__log_header h;
};

static void hostile_setup(struct hostile *hs)
{
    hs->root = tu_tmpdir();
    snprintf(hs->store, sizeof hs->store, "%s/store", hs->root);
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    void *a;
    ck_assert_int_eq(lrvm_open(hs->store, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "a", 4096, &a), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    int fd = open(tu_path(hs->root, "evil.seg"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    close(fd);
    snprintf(hs->log, sizeof hs->log, "%s", tu_path(hs->store, LRVM__LOG_NAME));
    fd = open(hs->log, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(fd, &hs->h, &slot), 0);
    close(fd);
}

static void hostile_free(struct hostile *hs)
{
    tu_rmrf(hs->root);
    free(hs->root);
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* The names in DIR, sorted, one a line. */
static void list_dir(const char *dir, char *out, size_t cap)
{
    char names[32][256];
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ck_assert_int_lt(n, 32);
        snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 1);
        strncat(out, "\n", cap - strlen(out) - 1);
    }
}

/* The log of HS gets GOOD valid records (each writing 0xEE over bytes
 * 0..3 of "a") and then one record with payload BAD: lrvm_open must fail
 * with LRVM_ECORRUPT and write or create nothing. */
static void hostile_run(struct hostile *hs, const char *what, const struct pl *bad, int good)
{
    uint64_t off = LRVM__LOG_HEADER_SIZE, txno = hs->h.lh_first_txno;
    for (int i = 0; i < good; i++) {
        struct pl p = { .n = 0 };
        pl_define(&p, "a");
        pl_range(&p, 0, 0, 4, 4);
        off = put_record(hs->log, off, hs->h.lh_generation, txno++, 0, LRVM__REC_COMMIT, &p);
    }
    uint64_t bad_end = put_record(hs->log, off, hs->h.lh_generation, txno, 0, LRVM__REC_COMMIT, bad);

    /* The scan does not look inside payloads: every record is valid. */
    struct scan *sc = scan_log(hs->store);
    ck_assert_msg(sc->res.sr_txs == (uint64_t)good + 1 && sc->res.sr_end == bad_end,
                  "%s: the hand-built records do not scan (%" PRIu64 " transactions, stop: %s)",
                  what, sc->res.sr_txs, sc->res.sr_stop);
    free(sc);

    unsigned char seg[4096], log_before[8192], log_after[8192], evil[4096];
    char names_root[1024], names_store[1024], now[1024];
    int64_t evil_size = tu_file_size(tu_path(hs->root, "evil.seg"));
    ck_assert_int_eq(tu_read(hs->log, log_before, sizeof log_before, 0), 0);
    int64_t log_size = tu_file_size(hs->log);
    list_dir(hs->root, names_root, sizeof names_root);
    list_dir(hs->store, names_store, sizeof names_store);

    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    int rc = lrvm_open(hs->store, &o, &s);
    if (rc == 0)
        lrvm_close(s);
    ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open returned %d (%s), expected LRVM_ECORRUPT",
                  what, rc, lrvm_strerror(rc));

    const unsigned char zero[4096] = { 0 };
    ck_assert_msg(tu_file_size(tu_path(hs->store, "a.seg")) == 4096, "%s: a.seg resized", what);
    ck_assert_int_eq(tu_read(tu_path(hs->store, "a.seg"), seg, sizeof seg, 0), 0);
    ck_assert_msg(memcmp(seg, zero, sizeof seg) == 0, "%s: a.seg was written", what);
    ck_assert_msg(tu_file_size(tu_path(hs->root, "evil.seg")) == evil_size,
                  "%s: evil.seg outside the store was created or resized", what);
    if (evil_size == 4096) {
        ck_assert_int_eq(tu_read(tu_path(hs->root, "evil.seg"), evil, sizeof evil, 0), 0);
        ck_assert_msg(memcmp(evil, zero, sizeof evil) == 0,
                      "%s: evil.seg outside the store was written", what);
    }
    ck_assert_msg(tu_file_size(hs->log) == log_size, "%s: the log was resized", what);
    ck_assert_int_eq(tu_read(hs->log, log_after, sizeof log_after, 0), 0);
    ck_assert_msg(memcmp(log_before, log_after, sizeof log_after) == 0, "%s: the log was changed",
                  what);
    list_dir(hs->root, now, sizeof now);
    ck_assert_msg(strcmp(now, names_root) == 0, "%s: files around the store changed:\n%s", what, now);
    list_dir(hs->store, now, sizeof now);
    ck_assert_msg(strcmp(now, names_store) == 0, "%s: files in the store changed:\n%s", what, now);
}

static void hostile_case(const char *what, const struct pl *bad, int good)
{
    struct hostile hs;
    hostile_setup(&hs);
    hostile_run(&hs, what, bad, good);
    hostile_free(&hs);
}

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
    /* Recovery copies records into its cache as it checks them, and
     * writes the cache out when it is full: before that write it must
     * have checked the rest of the log, from the transaction being copied
     * on. A cache of one block or three fills long before the hostile
     * record at the end; nothing may be written all the same. Transaction
     * 6 comes in parts, which are copied only when the last is found. */
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
        snprintf(what, sizeof what, "cache of %u blocks, hostile last record", sizes[k]);
        ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        snap_same(w, &snap, what);

        /* The control: without the hostile record, the same cache replays
         * every transaction. */
        w = fixture_copy(&f);
        lrvm__apply_max = sizes[k];
        rc = open_close(w);
        lrvm__apply_max = saved;
        snprintf(what, sizeof what, "cache of %u blocks", sizes[k]);
        ck_assert_msg(rc == 0, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
        expect_state(w, 12, 6, what);
    }
    free(sc);
    fixture_free(&f);
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

/* ------------------------------------------------------- the apply cache */

/* Segments whose sizes end mid-block, so the cache's last blocks are short. */
static const struct { const char *name; size_t size; } cache_segs[] = {
    { "x", 5 * 4096 + 123 }, { "y", 1000 }, { "z", 70000 },
};
#define NCACHE_SEGS 3
#define CACHE_TXS   400

/* The history: transaction t writes 1-4 ranges into the images IMG; a
 * range is 1-9000 bytes (block-sized and block-aligned one time in four),
 * so ranges cover blocks in part, whole (the cache then points into the
 * log), and across their edges, in every order. When TX
 * is not NULL the same ranges are declared and written through BASES. */
static void cache_history(unsigned char **img, lrvm_tx_t *tx, void **bases, uint64_t t)
{
    uint64_t rng = tu_mix64(t) | 1;
    unsigned nranges = 1 + (unsigned)(tu_rand(&rng) % 4);
    for (unsigned k = 0; k < nranges; k++) {
        unsigned sg = (unsigned)(tu_rand(&rng) % NCACHE_SEGS);
        size_t size = cache_segs[sg].size, off, len;
        if (tu_rand(&rng) % 4 == 0 && size >= 4096) {
            len = 4096;
            off = 4096 * (size_t)(tu_rand(&rng) % (size / 4096));
        } else {
            len = 1 + (size_t)(tu_rand(&rng) % 9000);
            if (len > size)
                len = size;
            off = (size_t)(tu_rand(&rng) % (size - len + 1));
        }
        unsigned char *dst = tx != NULL ? (unsigned char *)bases[sg] : img[sg];
        if (tx != NULL)
            ck_assert_int_eq(lrvm_set_range(tx, dst + off, len), 0);
        for (size_t j = 0; j < len; j++)
            dst[off + j] = (unsigned char)tu_rand(&rng);
    }
}

static void cache_build_child(void *arg)
{
    const char *dir = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s;
    void *bases[NCACHE_SEGS];
    lrvm_tx_t *tx;
    if (lrvm_open(dir, &o, &s) != 0)
        _exit(10);
    for (int i = 0; i < NCACHE_SEGS; i++)
        if (lrvm_map(s, cache_segs[i].name, cache_segs[i].size, &bases[i]) != 0)
            _exit(11);
    for (uint64_t t = 1; t <= CACHE_TXS; t++) {
        if (lrvm_begin(s, NCACHE_SEGS, bases, &tx) != 0)
            _exit(12);
        cache_history(NULL, tx, bases, t);
        if (lrvm_commit(tx, t % 16 == 0 ? 0 : LRVM_NO_FLUSH) != 0)
            _exit(13);
    }
    if (lrvm_flush(s) != 0)
        _exit(14);
    kill(getpid(), SIGKILL);                /* the log keeps every record */
}

/* Recover a copy of the store BUILT with a cache of SIZE blocks and block
 * tables for files of up to DIRECT blocks; check every segment against the
 * images IMG. Returns the writes recovery made. */
static unsigned long cache_recover(const char *built, unsigned char **img, uint32_t size,
                                   uint32_t direct)
{
    uint32_t saved_max = lrvm__apply_max, saved_direct = lrvm__apply_direct;
    char *dir = tu_tmpdir();
    ck_assert_int_eq(tu_copy_dir(built, dir), 0);
    lrvm__apply_max = size;
    lrvm__apply_direct = direct;
    lrvm__io_inject(LRVM__IO_WRITE, 0, 0, 0);   /* count, never fail */
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    int rc = lrvm_open(dir, &o, &s);
    unsigned long calls = lrvm__io_calls();
    lrvm__io_inject(0, 0, 0, 0);
    lrvm__apply_max = saved_max;
    lrvm__apply_direct = saved_direct;
    ck_assert_msg(rc == 0, "cache of %u blocks, tables up to %u: lrvm_open: %s", size, direct,
                  lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_close(s), 0);
    for (int i = 0; i < NCACHE_SEGS; i++) {
        char name[16];
        unsigned char *got = malloc(cache_segs[i].size);
        ck_assert_ptr_nonnull(got);
        snprintf(name, sizeof name, "%s.seg", cache_segs[i].name);
        ck_assert_int_eq(tu_file_size(tu_path(dir, name)), (int64_t)cache_segs[i].size);
        ck_assert_int_eq(tu_read(tu_path(dir, name), got, cache_segs[i].size, 0), 0);
        size_t j = 0;
        while (j < cache_segs[i].size && got[j] == img[i][j])
            j++;
        ck_assert_msg(j == cache_segs[i].size,
                      "cache of %u blocks, tables up to %u: %s differs from the history at "
                      "byte %zu", size, direct, name, j);
        free(got);
    }
    tu_rmrf(dir);
    free(dir);
    return calls;
}

START_TEST(test_recover_apply_cache_sizes)
{
    /* Recovery's result does not depend on how many blocks its cache
     * holds: one (it writes before almost every range), a few, more than
     * z's 18 blocks but fewer than all 25, the default (it writes once at
     * the end); nor on how it finds them: by hash for every file, for the
     * large one only (z), or by block table for all. A smaller cache must
     * write more often, or the knob tests nothing. */
    static const uint32_t sizes[] = { 1, 3, 20, 16384 };
    static const uint32_t directs[] = { 0, 6, 1u << 22 };
    unsigned char *img[NCACHE_SEGS];
    for (int i = 0; i < NCACHE_SEGS; i++)
        ck_assert_ptr_nonnull(img[i] = calloc(1, cache_segs[i].size));
    for (uint64_t t = 1; t <= CACHE_TXS; t++)
        cache_history(img, NULL, NULL, t);

    char *built = tu_tmpdir();
    int st = tu_in_child(cache_build_child, built);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    for (int d = 0; d < 3; d++) {
        unsigned long writes[4];
        for (int k = 0; k < 4; k++)
            writes[k] = cache_recover(built, img, sizes[k], directs[d]);
        ck_assert_msg(writes[0] > writes[1] && writes[1] > writes[2] && writes[2] > writes[3],
                      "tables up to %u: writes by cache size 1, 3, 20, 16384: %lu, %lu, %lu, %lu",
                      directs[d], writes[0], writes[1], writes[2], writes[3]);
    }
    for (int i = 0; i < NCACHE_SEGS; i++)
        free(img[i]);
    tu_rmrf(built);
    free(built);
}
END_TEST

/* Three transactions: transaction t writes a range inside block 0 of "x",
 * then all of block t. The log keeps them. */
static void pause_build_child(void *arg)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    void *x;
    lrvm_tx_t *tx;
    if (lrvm_open(arg, &o, &s) != 0 || lrvm_map(s, "x", 4 * 4096, &x) != 0)
        _exit(10);
    for (int t = 1; t <= 3; t++) {
        unsigned char *b = x;
        if (lrvm_begin(s, 1, &x, &tx) != 0 || lrvm_set_range(tx, b + 100 + t, 10) != 0 ||
            lrvm_set_range(tx, b + 4096 * t, 4096) != 0)
            _exit(11);
        memset(b + 100 + t, t, 10);
        memset(b + 4096 * t, 0x40 + t, 4096);
        if (lrvm_commit(tx, 0) != 0)
            _exit(12);
    }
    kill(getpid(), SIGKILL);
}

START_TEST(test_recover_cache_full_mid_record)
{
    /* With a cache of one block, the first record's whole-block range finds
     * the cache full: the rest of the log is checked (check_rest) in the
     * middle of that record's walk, and the range must still be taken
     * from its own bytes in the log (no later record writes its block). */
    char *built = tu_tmpdir(), *dir = tu_tmpdir();
    int st = tu_in_child(pause_build_child, built);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    ck_assert_int_eq(tu_copy_dir(built, dir), 0);
    uint32_t saved = lrvm__apply_max;
    lrvm__apply_max = 1;
    int rc = open_close(dir);
    lrvm__apply_max = saved;
    ck_assert_msg(rc == 0, "lrvm_open: %s", lrvm_strerror(rc));
    unsigned char got[4 * 4096], want[4 * 4096] = { 0 };
    for (int t = 1; t <= 3; t++) {
        memset(want + 100 + t, t, 10);
        memset(want + 4096 * t, 0x40 + t, 4096);
    }
    ck_assert_int_eq(tu_read(tu_path(dir, "x.seg"), got, sizeof got, 0), 0);
    for (size_t i = 0; i < sizeof got; i++)
        ck_assert_msg(got[i] == want[i], "x.seg byte %zu is 0x%02x, not 0x%02x", i, got[i],
                      want[i]);
    tu_rmrf(built);
    tu_rmrf(dir);
    free(built);
    free(dir);
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
    tcase_add_test(tc, test_recover_scan_handmade_records);
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

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_handmade_record_applies);
    tcase_add_test(tc, test_recover_hostile_range_past_segment_end);
    tcase_add_test(tc, test_recover_hostile_offset_overflow);
    tcase_add_test(tc, test_recover_hostile_missing_segment);
    tcase_add_test(tc, test_recover_hostile_segment_name_escapes);
    tcase_add_test(tc, test_recover_hostile_undefined_segment_id);
    tcase_add_test(tc, test_recover_hostile_malformed_payload);
    tcase_add_test(tc, test_recover_hostile_after_good_records);
    tcase_add_test(tc, test_recover_hostile_after_cache_fills);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_apply_cache_sizes);
    tcase_add_test(tc, test_recover_cache_full_mid_record);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
