/*
 * recover_util.c -- the helpers of the recovery suites (recover_util.h).
 */
#define _GNU_SOURCE
#include "recover_util.h"
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

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void le64(unsigned char *p, uint64_t v)
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
void expect_state(const char *dir, uint64_t n, uint64_t big, const char *what)
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

struct scan *scan_log(const char *dir)
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

uint64_t rec_end(const struct rec *r)
{
    return r->off + align8(LRVM__REC_HEADER_SIZE + r->len);
}

/* The index of the COMMIT record of transaction TXNO. */
size_t commit_of(const struct scan *sc, uint64_t txno)
{
    for (size_t i = 0; i < sc->n; i++)
        if (sc->r[i].txno == txno && (sc->r[i].flags & LRVM__REC_COMMIT))
            return i;
    ck_abort_msg("no COMMIT record for transaction %" PRIu64, txno);
    return 0;
}

/* ----------------------------------------------------------- damaging */

void xor_byte(const char *path, uint64_t off, unsigned char x)
{
    unsigned char c;
    ck_assert_int_eq(tu_read(path, &c, 1, off), 0);
    c ^= x;
    ck_assert_int_eq(tu_write(path, &c, 1, off), 0);
}

/* Recompute the CRC of the record at OFF with PAYLOAD_LEN bytes. */
void fix_crc(const char *path, uint64_t off, uint32_t payload_len)
{
    size_t n = LRVM__REC_HEADER_SIZE + payload_len;
    unsigned char *buf = malloc(n);
    ck_assert(buf != NULL);
    ck_assert_int_eq(tu_read(path, buf, n, off), 0);
    le32(buf + 4, lrvm__rec_crc(buf, payload_len));
    ck_assert_int_eq(tu_write(path, buf + 4, 4, off + 4), 0);
    free(buf);
}

void patch64(const char *path, uint64_t off, uint64_t v)
{
    unsigned char b[8];
    le64(b, v);
    ck_assert_int_eq(tu_write(path, b, 8, off), 0);
}

int open_close(const char *dir)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    int rc = lrvm_open(dir, &o, &s);
    if (rc == 0)
        ck_assert_int_eq(lrvm_close(s), 0);
    return rc;
}


void fixture_build(struct fixture *f, struct build bd)
{
    f->root = tu_tmpdir();
    f->copies = 0;
    snprintf(f->base, sizeof f->base, "%s/base", f->root);
    bd.dir = f->base;
    build_log(&bd);
}

/* A fresh copy of the base in f->work. */
const char *fixture_copy(struct fixture *f)
{
    snprintf(f->work, sizeof f->work, "%s/copy%d", f->root, f->copies++);
    ck_assert_int_eq(mkdir(f->work, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(f->base, f->work), 0);
    return f->work;
}

void fixture_free(struct fixture *f)
{
    tu_rmrf(f->root);
    free(f->root);
}


static const char *const snap_names[3] = { "a.seg", "b.seg", LRVM__LOG_NAME };

void snap_take(const char *dir, struct snapshot *s)
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
void snap_same(const char *dir, struct snapshot *s, const char *what)
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
void expect_refused(const char *w, const struct scan *sc, size_t j, uint64_t big,
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

/* ------------------------------------------------------ hostile records */


void pl_byte(struct pl *p, unsigned char c)
{
    p->b[p->n++] = c;
}

void pl_varint(struct pl *p, uint64_t v)
{
    p->n += lrvm__varint_put(p->b + p->n, v);
}

void pl_define(struct pl *p, const char *name)
{
    pl_byte(p, LRVM__ENT_DEFINE);
    pl_varint(p, strlen(name));
    memcpy(p->b + p->n, name, strlen(name));
    p->n += strlen(name);
}

/* A RANGE entry claiming LEN bytes, followed by NDATA bytes of 0xEE. */
void pl_range(struct pl *p, uint64_t id, uint64_t off, uint64_t len, size_t ndata)
{
    pl_byte(p, LRVM__ENT_RANGE);
    pl_varint(p, id);
    pl_varint(p, off);
    pl_varint(p, len);
    memset(p->b + p->n, 0xEE, ndata);
    p->n += ndata;
}

/* Write a record with payload P at OFF of LOG; return the offset past it. */
uint64_t put_record(const char *log, uint64_t off, uint64_t gen, uint64_t txno,
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


void hostile_setup(struct hostile *hs)
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

void hostile_free(struct hostile *hs)
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
void hostile_run(struct hostile *hs, const char *what, const struct pl *bad, int good)
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

void hostile_case(const char *what, const struct pl *bad, int good)
{
    struct hostile hs;
    hostile_setup(&hs);
    hostile_run(&hs, what, bad, good);
    hostile_free(&hs);
}
