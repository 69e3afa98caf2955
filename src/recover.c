/*
 * recover.c -- replay of the log into the segment files: recovery at open
 * and truncation.
 *
 * Owns: the only writes to .seg files. Never: writes a byte that a
 * validated record does not name, or starts a new log generation before
 * every segment file it wrote is synced.
 *
 * Order of a truncation (and of recovery, which is the same thing):
 *
 *   flush the log buffer (write + fdatasync)
 *   pass 1: scan the log; check every range of every valid record against
 *           the segment it names (the file exists, the range lies inside)
 *   pass 2: scan again; pwrite each range of each complete transaction
 *   fdatasync every segment file written
 *   write the new generation's header slot; fdatasync the log
 *
 * Invariants
 *   I1 Nothing is written to a segment file unless every record up to the
 *      end of the last complete transaction passed pass 1, so a damaged or
 *      hostile log writes nothing, and never out of bounds.
 *   I2 The log is reset only after the segment files are durable; a crash
 *      at any step leaves the old generation current, and replaying it
 *      again is harmless because redo is physical.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct replay_seg {
    char     name[LRVM__NAME_MAX + 1];
    int      fd;
    uint64_t size;
    int      written;
};

struct replay {
    lrvm_t            *s;
    int                apply;       /* pass 2 */
    uint64_t           apply_end;   /* end of the last complete transaction */
    struct replay_seg *segs;
    size_t             nsegs, cap;
};

static int replay_seg(struct replay *r, const char *name, struct replay_seg **out)
{
    char path[LRVM__NAME_MAX + 8];
    for (size_t i = 0; i < r->nsegs; i++) {
        if (strcmp(r->segs[i].name, name) == 0) {
            *out = &r->segs[i];
            return 0;
        }
    }
    if (r->nsegs == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct replay_seg *t = realloc(r->segs, cap * sizeof *t);
        if (t == NULL)
            return LRVM_ENOMEM;
        r->segs = t;
        r->cap = cap;
    }
    snprintf(path, sizeof path, "%s.seg", name);
    int fd = lrvm__io_open(r->s->dirfd, path, O_RDWR, 0);
    if (fd < 0)                    /* a record names a segment that is gone */
        return fd == -ENOENT ? LRVM_ECORRUPT : lrvm__errno_to_code(-fd);
    struct replay_seg *seg = &r->segs[r->nsegs];
    int rc = lrvm__io_fstat_size(fd, &seg->size);
    if (rc < 0) {
        lrvm__io_close(fd);
        return lrvm__errno_to_code(-rc);
    }
    memcpy(seg->name, name, strlen(name) + 1);
    seg->fd = fd;
    seg->written = 0;
    r->nsegs++;
    *out = seg;
    return 0;
}

static int on_range(void *arg, const char *name, uint64_t off,
                    const unsigned char *data, uint64_t n)
{
    struct replay *r = arg;
    struct replay_seg *seg = NULL;
    int rc = replay_seg(r, name, &seg);
    if (rc < 0)
        return rc;
    if (off > seg->size || n > seg->size - off)
        return LRVM_ECORRUPT;                   /* keeps I1 */
    if (!r->apply)
        return 0;
    if ((rc = lrvm__io_pwrite_all(seg->fd, data, (size_t)n, off)) < 0)
        return lrvm__errno_to_code(-rc);
    seg->written = 1;
    return 0;
}

static int on_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                     const unsigned char *payload)
{
    struct replay *r = arg;
    if (r->apply && off >= r->apply_end)
        return 0;                   /* a part of the incomplete last transaction */
    return lrvm__payload_walk(payload, h->rh_payload_len, on_range, r);
}

int lrvm__recover(lrvm_t *s)
{
    struct lrvm__log *lg = &s->log;
    struct lrvm__log_header h = { 1, lg->lg_generation, lg->lg_first_txno };
    struct replay r = { .s = s };
    struct lrvm__scan_cb cb = { &r, on_record };
    struct lrvm__scan_result res;
    int rc;

    if ((rc = lrvm__log_flush(s)) < 0)
        return rc;
    if ((rc = lrvm__log_scan(lg->lg_fd, &h, &cb, &res)) < 0)
        goto out;
    if (res.sr_scan_end == LRVM__LOG_HEADER_SIZE)
        goto out;                   /* nothing to apply, nothing to reset */
    r.apply = 1;
    r.apply_end = res.sr_end;
    if ((rc = lrvm__log_scan(lg->lg_fd, &h, &cb, &res)) < 0)
        goto out;
    for (size_t i = 0; i < r.nsegs; i++) {
        if (!r.segs[i].written)
            continue;
        if ((rc = lrvm__io_fdatasync(r.segs[i].fd)) < 0) {
            rc = lrvm__errno_to_code(-rc);
            goto out;
        }
        s->stats.fsyncs++;
    }
    lg->lg_next_txno = lg->lg_first_txno + res.sr_txs;
    if ((rc = lrvm__log_new_generation(s)) < 0)     /* keeps I2 */
        goto out;
    s->stats.truncations++;
out:
    for (size_t i = 0; i < r.nsegs; i++)
        lrvm__io_close(r.segs[i].fd);
    free(r.segs);
    return rc;
}
