/*
 * segment.c -- naming, creating, extending, destroying and mapping the
 * DIR/NAME.seg files; the only part that knows how a segment's file is
 * named.
 *
 * Owns: the store's table of mapped segments, the sum of their sizes
 * (seg_bytes, which the truncation's threshold follows) and the mappings
 * themselves.
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
 *   I6 A segment file is removed only when the log holds no record (the
 *      caller truncated first), so no crash can replay a destroyed
 *      segment's data into a new one of the same name.
 *   I7 A segment file made with content (lrvm__seg_create: the heap's) is
 *      whole or absent under its name: made and synced as NAME.seg.new,
 *      then renamed, then the directory synced; a crash halfway leaves
 *      only the .new file, which the next creation removes.
 *   I8 Every block of a segment file that lrvm created or grew is
 *      reserved on the disk before its mapping is handed out (where the
 *      file system can reserve), so no commit, truncation or recovery
 *      needs a new block of a segment file: a full disk fails the map.
 *   I9 seg_bytes is the sum of sg_size over the table.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DIR's file of segment NAME (N bytes, checked by the callers), with
 * SUFFIX: "NAME.seg", or "NAME.seg.new" while it is made. */
static void seg_path(char *path, const char *name, size_t n, const char *suffix)
{
    memcpy(path, name, n);
    memcpy(path + n, ".seg", 4);
    strcpy(path + n + 4, suffix);
}

int lrvm__seg_open_file(int dirfd, const char *name, size_t n, int flags)
{
    char path[LRVM__NAME_MAX + 16];
    seg_path(path, name, n, "");
    return lrvm__io_open(dirfd, path, flags, 0);
}

int lrvm__seg_create(lrvm_t *s, const char *name, int (*layout)(void *arg, int fd), void *arg)
{
    char path[LRVM__NAME_MAX + 16], tmp[LRVM__NAME_MAX + 16];
    size_t n = strlen(name);
    seg_path(path, name, n, "");
    seg_path(tmp, name, n, ".new");
    (void)lrvm__io_unlink(s->dirfd, tmp);          /* left by a crash */
    int fd = lrvm__io_open(s->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return fd;
    int rc;
    uint64_t size;
    if ((rc = layout(arg, fd)) < 0 || (rc = lrvm__io_fstat_size(fd, &size)) < 0 ||
        (rc = lrvm__io_allocate(fd, 0, size)) < 0 ||                   /* keeps I8 */
        (rc = lrvm__io_fsync(fd)) < 0)
        goto fail;
    s->stats.fsyncs++;
    if ((rc = lrvm__io_rename(s->dirfd, tmp, path)) < 0 ||      /* keeps I7 */
        (rc = lrvm__io_fsync(s->dirfd)) < 0)
        goto fail;
    s->stats.fsyncs++;
    return fd;
fail:
    (void)lrvm__io_unlink(s->dirfd, tmp);
    lrvm__io_close(fd);
    return rc;
}

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

static void check_bytes(const lrvm_t *s)
{
#ifdef LRVM_DEBUG
    size_t sum = 0;
    for (size_t i = 0; i < s->nsegs; i++)
        sum += s->segs[i]->sg_size;
    LRVM__ASSERT(sum == s->seg_bytes);                                  /* I9 */
#else
    (void)s;
#endif
}

static int table_add(lrvm_t *s, struct lrvm__seg *seg)
{
    struct lrvm__seg **t = lrvm__room_for(s->segs, s->nsegs, &s->segs_cap, sizeof *t);
    if (t == NULL)
        return LRVM_ENOMEM;
    s->segs = t;
    s->segs[s->nsegs++] = seg;
    s->seg_bytes += seg->sg_size;
    check_bytes(s);
    return 0;
}

static void table_remove(lrvm_t *s, struct lrvm__seg *seg)
{
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i] == seg) {
            s->segs[i] = s->segs[--s->nsegs];
            s->seg_bytes -= seg->sg_size;
            check_bytes(s);
            return;
        }
    }
}

int lrvm__seg_map(lrvm_t *s, const char *name, size_t size, void *fixed,
                  struct lrvm__seg **out)
{
    char path[LRVM__NAME_MAX + 16];
    int created = 0, rc;
    uint64_t cur;

    if (lrvm__seg_by_name(s, name) != NULL)
        return LRVM_EEXIST;                 /* keeps I3 */
    seg_path(path, name, strlen(name), "");

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
        /* Keeps I8: the new blocks are reserved now, or the file keeps
         * its old size and the map fails. */
        if ((rc = lrvm__io_ftruncate(fd, size)) < 0)
            goto fail;
        if ((rc = lrvm__io_allocate(fd, cur, size - cur)) < 0) {
            if (!created)
                (void)lrvm__io_ftruncate(fd, cur);
            goto fail;
        }
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
    while (((size_t)1 << seg->sg_page_shift) < (size_t)sysconf(_SC_PAGESIZE))
        seg->sg_page_shift++;
    void *base;
    if ((rc = lrvm__io_map_segment(fd, seg->sg_maplen, fixed, &base)) < 0) {
        free(seg);
        goto fail;
    }
    seg->sg_base = base;
    seg->sg_store = s;
    if ((rc = lrvm__res_attach(seg)) < 0 || (rc = s->tracker->attach(s, seg)) < 0 ||
        (rc = table_add(s, seg)) < 0) {
        s->tracker->detach(s, seg);
        lrvm__res_detach(s, seg);
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
    s->tracker->detach(s, seg);
    lrvm__res_detach(s, seg);
    lrvm__io_unmap(seg->sg_base, seg->sg_maplen);
    lrvm__io_close(seg->sg_fd);
    free(seg);
}

int lrvm__seg_destroy(lrvm_t *s, const char *name)
{
    char path[LRVM__NAME_MAX + 16];
    int rc;

    LRVM__ASSERT(lrvm__seg_by_name(s, name) == NULL);
    LRVM__ASSERT(!lrvm__log_holds_records(&s->log));                         /* keeps I6 */
    seg_path(path, name, strlen(name), "");
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
