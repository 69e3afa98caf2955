/*
 * segment.c -- naming, creating, extending, destroying and mapping the
 * DIR/NAME.seg files.
 *
 * Owns: the store's table of mapped segments and the mappings themselves.
 * Never: maps a segment MAP_SHARED or writes a .seg file through its
 * mapping; only truncation (recover.c) writes .seg files, with pwrite.
 *
 * Invariants
 *   I1 A mapped segment's file is exactly sg_size bytes long, and that size
 *      is durable before the mapping is handed out, so no committed record
 *      can point past the end of a file after a crash.
 *   I2 A new segment file's directory entry is durable before its mapping
 *      is handed out.
 *   I3 A name appears at most once in the table.
 *   I4 When a segment is mapped, the log holds no record for it that its
 *      file lacks (lrvm_map truncates first), so the mapping shows every
 *      committed byte.
 *   I5 A segment mapped at a fixed address (the heap's) is mapped there or
 *      not at all: MAP_FIXED_NOREPLACE, never over another mapping.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lrvm__seg_name_ok_n(const char *name, size_t n)
{
    /* One pass, no library calls: recovery checks a name per record. */
    if (n == 0 || n > LRVM__NAME_MAX || (n == 1 && name[0] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '\0' || name[i] == '/' ||
            (name[i] == '.' && i + 1 < n && name[i + 1] == '.'))
            return 0;
    }
    return 1;
}

int lrvm__seg_name_ok(const char *name)
{
    return name != NULL && lrvm__seg_name_ok_n(name, strnlen(name, LRVM__NAME_MAX + 1));
}

static void seg_path(char *path, const char *name)
{
    /* name is at most LRVM__NAME_MAX bytes (checked by the callers) */
    size_t n = strlen(name);
    memcpy(path, name, n);
    memcpy(path + n, ".seg", 5);
}

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

static int table_add(lrvm_t *s, struct lrvm__seg *seg)
{
    struct lrvm__seg **t = lrvm__room_for(s->segs, s->nsegs, &s->segs_cap, sizeof *t);
    if (t == NULL)
        return LRVM_ENOMEM;
    s->segs = t;
    s->segs[s->nsegs++] = seg;
    return 0;
}

static void table_remove(lrvm_t *s, struct lrvm__seg *seg)
{
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i] == seg) {
            s->segs[i] = s->segs[--s->nsegs];
            return;
        }
    }
}

int lrvm__seg_map(lrvm_t *s, const char *name, size_t size, void *fixed,
                  struct lrvm__seg **out)
{
    char path[LRVM__NAME_MAX + 8];
    int created = 0, rc;
    uint64_t cur;

    if (lrvm__seg_by_name(s, name) != NULL)
        return LRVM_EEXIST;                 /* keeps I3 */
    seg_path(path, name);

    int fd = lrvm__io_open(s->dirfd, path, O_RDWR, 0);
    if (fd == LRVM_ENOENT) {
        fd = lrvm__io_open(s->dirfd, path, O_RDWR | O_CREAT | O_EXCL, 0600);
        created = 1;
    }
    if (fd < 0)
        return fd;

    if ((rc = lrvm__io_fstat_size(fd, &cur)) < 0)
        goto fail;
    if (cur < size) {
        if ((rc = lrvm__io_ftruncate(fd, size)) < 0)
            goto fail;
        cur = size;
    }
    /* Keeps I1: the size must be durable before a record can name a byte
     * of it. Synced on every map, not only after an extension, because an
     * extension whose sync failed is still visible to the next map. */
    if ((rc = lrvm__io_fsync(fd)) < 0)
        goto fail;
    s->stats.fsyncs++;
    if (created) {                          /* keeps I2 */
        if ((rc = lrvm__io_fsync(s->dirfd)) < 0)
            goto fail;
        s->stats.fsyncs++;
    }
    if (cur > SIZE_MAX / 2) {
        rc = LRVM_ENOSPC;
        goto fail;
    }

    struct lrvm__seg *seg = calloc(1, sizeof *seg);
    if (seg == NULL) {
        rc = LRVM_ENOMEM;
        goto fail;
    }
    memcpy(seg->sg_name, name, strlen(name) + 1);
    seg->sg_fd = fd;
    seg->sg_size = (size_t)cur;
    seg->sg_maplen = page_round(seg->sg_size);
    void *base;
    if ((rc = lrvm__io_map_segment(fd, seg->sg_maplen, fixed, &base)) < 0) {
        free(seg);
        goto fail;
    }
    seg->sg_base = base;
    if ((rc = lrvm__track_attach(s, seg)) < 0 || (rc = table_add(s, seg)) < 0) {
        lrvm__track_detach(s, seg);
        lrvm__io_unmap(base, seg->sg_maplen);
        free(seg);
        lrvm__io_close(fd);
        return rc;
    }
    *out = seg;
    return 0;

fail:
    lrvm__io_close(fd);
    if (created)
        lrvm__io_unlink(s->dirfd, path);
    if (fixed != NULL && rc == LRVM_EEXIST)
        return LRVM_EADDR;                  /* keeps I5 */
    return rc;
}

void lrvm__seg_unmap(lrvm_t *s, struct lrvm__seg *seg)
{
    table_remove(s, seg);
    lrvm__track_detach(s, seg);
    lrvm__io_unmap(seg->sg_base, seg->sg_maplen);
    lrvm__io_close(seg->sg_fd);
    free(seg);
}

int lrvm__seg_destroy(lrvm_t *s, const char *name)
{
    char path[LRVM__NAME_MAX + 8];
    int rc;

    if (lrvm__seg_by_name(s, name) != NULL)
        return LRVM_EBUSY;
    /* The log may still hold records for NAME; replaying them into a new
     * segment of the same name after a crash would resurrect the data.
     * Fold the log into the files first, then remove the file. */
    if (lrvm__log_size(s) > LRVM__LOG_HEADER_SIZE &&
        (rc = lrvm__truncate_locked(s)) < 0)
        return rc;
    seg_path(path, name);
    if ((rc = lrvm__io_unlink(s->dirfd, path)) < 0 ||
        (rc = lrvm__io_fsync(s->dirfd)) < 0)
        return rc;
    s->stats.fsyncs++;
    return 0;
}

struct lrvm__seg *lrvm__seg_by_base(lrvm_t *s, const void *base)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i]->sg_base == base)
            return s->segs[i];
    return NULL;
}

struct lrvm__seg *lrvm__seg_by_name(lrvm_t *s, const char *name)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (strcmp(s->segs[i]->sg_name, name) == 0)
            return s->segs[i];
    return NULL;
}

struct lrvm__seg *lrvm__seg_by_addr(struct lrvm__seg *const *segs, size_t n, const void *addr,
                                    size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    for (size_t i = 0; i < n; i++) {
        uintptr_t b = (uintptr_t)segs[i]->sg_base;
        size_t size = segs[i]->sg_size;
        if (a >= b && a - b < size && len <= size - (a - b))
            return segs[i];
    }
    return NULL;
}
