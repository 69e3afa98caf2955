/*
 * recover_util.h -- what the recovery suites share (check_recover,
 * check_hostile_log, check_apply): a history of transactions and the
 * state it must leave, logs built by a child that dies of SIGKILL, the
 * scan of a log into its records, damaging copies of a store, snapshots
 * of its files, and records made by hand.
 *
 * The history: transaction j sets the counter at offset 0 of segment "a"
 * (A_SIZE bytes) to j and writes bytes derived from j in "a" and in "b"
 * (B_SIZE bytes); the transaction BIG also writes BIG_LEN bytes at
 * BIG_OFF, in several records when the log buffer is small.
 */
#ifndef LRVM_RECOVER_UTIL_H
#define LRVM_RECOVER_UTIL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define A_SIZE ((size_t)64 << 10)
#define B_SIZE ((size_t)4096)
#define BIG_OFF ((size_t)16 << 10)
#define BIG_LEN ((size_t)40 << 10)
#define MAX_RECS 1024
#define ALL_BIG UINT64_MAX              /* every transaction is big */
#define K 40                            /* transactions of the usual fixture */

struct build {
    const char *dir;
    unsigned    k;                  /* transactions */
    size_t      log_buffer;         /* 0: default */
    unsigned    truncate_after;     /* lrvm_truncate after this one; 0: never */
    uint64_t    big;                /* the multi-part transaction; 0: none */
};

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

/* A scratch root with DIR/base built from BD. */
struct fixture {
    char *root;
    char  base[4096];
    char  work[4096];
    int   copies;
};

struct snapshot {
    unsigned char *data[3];
    int64_t        size[3];
};

/* A payload under construction. */
struct pl {
    unsigned char b[1024];
    size_t        n;
};

/* ROOT/store: a store with segment "a" (4096 zero bytes) and an empty log;
 * ROOT/evil.seg: 4096 zero bytes that no record may reach (a write to it
 * shows; a test that removes it checks that nothing creates it). */
struct hostile {
    char                   *root;
    char                    store[4096];
    char                    log[4096];
    struct lrvm__log_header h;
};

/* Little-endian stores, as the log's format has them. */
void le32(unsigned char *p, uint32_t v);
void le64(unsigned char *p, uint64_t v);
/* Check the segment files of DIR hold exactly transactions 1..N. */
void expect_state(const char *dir, uint64_t n, uint64_t big, const char *what);
/* The header and every valid record of DIR's log (free() it). */
struct scan *scan_log(const char *dir);
/* The offset just past record R. */
uint64_t rec_end(const struct rec *r);
/* The index of the COMMIT record of transaction TXNO. */
size_t commit_of(const struct scan *sc, uint64_t txno);
/* Damage: the byte at OFF of PATH ^= X; a 64-bit word at OFF set to V. */
void xor_byte(const char *path, uint64_t off, unsigned char x);
/* Recompute the CRC of the record at OFF with PAYLOAD_LEN bytes. */
void fix_crc(const char *path, uint64_t off, uint32_t payload_len);
void patch64(const char *path, uint64_t off, uint64_t v);
/* lrvm_open of DIR in explicit mode, closed again when it opened; its code. */
int open_close(const char *dir);
/* Make F: a scratch root with root/base built from BD; free it. */
void fixture_build(struct fixture *f, struct build bd);
/* A fresh copy of the base in f->work. */
const char *fixture_copy(struct fixture *f);
void fixture_free(struct fixture *f);
/* The bytes of a.seg, b.seg and the log of DIR, to compare later. */
void snap_take(const char *dir, struct snapshot *s);
/* The files are byte for byte what they were. */
void snap_same(const char *dir, struct snapshot *s, const char *what);
/* Record J of the fixture's log in W was damaged. When records follow it
 * (written after it was durable), lrvm_open must refuse the log and write
 * nothing (logfmt.c V7); when it is the last, the damage looks like a
 * torn tail and the store opens with the transactions before it. */
void expect_refused(const char *w, const struct scan *sc, size_t j, uint64_t big,
                    const char *what);
/* Append to a payload: a byte, a varint, a DEFINE entry. */
void pl_byte(struct pl *p, unsigned char c);
void pl_varint(struct pl *p, uint64_t v);
void pl_define(struct pl *p, const char *name);
/* A RANGE entry claiming LEN bytes, followed by NDATA bytes of 0xEE. */
void pl_range(struct pl *p, uint64_t id, uint64_t off, uint64_t len, size_t ndata);
/* Write a record with payload P at OFF of LOG; return the offset past it. */
uint64_t put_record(const char *log, uint64_t off, uint64_t gen, uint64_t txno,
                    unsigned part, unsigned flags, const struct pl *p);
/* Make HS (in a scratch root) and free it. */
void hostile_setup(struct hostile *hs);
void hostile_free(struct hostile *hs);
/* The log of HS gets GOOD valid records (each writing 0xEE over bytes
 * 0..3 of "a") and then one record with payload BAD: lrvm_open must fail
 * with LRVM_ECORRUPT and write or create nothing. */
void hostile_run(struct hostile *hs, const char *what, const struct pl *bad, int good);
/* hostile_run on a new HS, freed after. */
void hostile_case(const char *what, const struct pl *bad, int good);

#endif
