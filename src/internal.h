/*
 * internal.h -- what the parts of liblrvm share with each other.
 *
 * Naming: lrvm_* is public, rvm_* the classic layer, lrvm__* internal
 * across files (declared here), everything else is static. No symbol that
 * starts with lrvm__ leaves the shared library (see -export-symbols-regex
 * in Makefile.am); the tests link the convenience library and may call
 * them.
 *
 * Locking: every field of struct lrvm and of the objects it owns is
 * guarded by lrvm.mu unless its comment says otherwise. The pool of
 * transaction handles (tx.c) has its own lock, always taken after
 * lrvm.mu; so do
 * the log's lg_grow_mu, then lg_sync_mu, and the truncation job's tj_mu,
 * which is never held with those; the log's lg_bg_mu is taken last of all
 * (doc/architecture.md, "Concurrency").
 *
 * Ownership: each struct below says which part owns it. Only its owner
 * writes a field; where another part may read one, the field's section
 * says so. The parts are layered (doc/architecture.md, "Layers"): a part
 * calls only parts on lower floors, and tests/layers.sh checks it.
 */
#ifndef LRVM_INTERNAL_H
#define LRVM_INTERNAL_H

#include "lrvm.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#define LRVM__NAME_MAX 200

struct lrvm__enc;

#ifdef LRVM_DEBUG
#include <assert.h>
#define LRVM__ASSERT(x) assert(x)
#else
#define LRVM__ASSERT(x) ((void)0)
#endif

/* 1 when this file is built with AddressSanitizer (LRVM__ASAN) or
 * ThreadSanitizer (LRVM__TSAN), 0 otherwise: gcc says so with
 * __SANITIZE_*__, clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define LRVM__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LRVM__ASAN 1
#endif
#endif
#ifndef LRVM__ASAN
#define LRVM__ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define LRVM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LRVM__TSAN 1
#endif
#endif
#ifndef LRVM__TSAN
#define LRVM__TSAN 0
#endif

/* ------------------------------------------------------------- lock.c */

/* Every mutex of liblrvm has a rank, and a thread takes mutexes in
 * rising rank only: that is the lock order (doc/architecture.md "Locks",
 * L2). Mutexes of rank LEAF are never held while another is taken. In
 * the debug build lrvm__lock asserts the order, that none of lrvm's own
 * threads takes a store's lock (L3), and lrvm__held tells whether this
 * thread holds a mutex, for the asserts that cite L1. */
enum lrvm__rank {
    LRVM__RANK_COMPAT = 1,      /* compat.c's ids_mu */
    LRVM__RANK_STORE,           /* a store's mu */
    LRVM__RANK_LOG_GROW,        /* log.c's lg_grow_mu, */
    LRVM__RANK_LOG_SYNC,        /*   lg_sync_mu, */
    LRVM__RANK_LOG_BG,          /*   lg_bg_mu */
    LRVM__RANK_TRUNC_JOB,       /* recover.c's tj_mu */
    LRVM__RANK_LEAF             /* the pools', the trackers', io.c's */
};
/* Take a store's lock M (lock.c says how it waits). */
void lrvm__lock_store(pthread_mutex_t *m);
/* Take M, of RANK: a store's lock as lrvm__lock_store waits for it, any
 * other with pthread's own wait. Both builds' lrvm__lock end here. */
static inline void lrvm__lock_take(pthread_mutex_t *m, enum lrvm__rank rank)
{
    if (rank == LRVM__RANK_STORE)
        lrvm__lock_store(m);
    else
        pthread_mutex_lock(m);
}
#ifdef LRVM_DEBUG
void lrvm__lock(pthread_mutex_t *m, enum lrvm__rank rank);
void lrvm__unlock(pthread_mutex_t *m);
int  lrvm__held(const pthread_mutex_t *m);
/* The calling thread is one of lrvm's own (the syncer, the truncation
 * thread), which never take a store's lock (L3). */
void lrvm__lock_own_thread(void);
#define LRVM__ASSERT_HELD(m) LRVM__ASSERT(lrvm__held(m))
#else
#define LRVM__ASSERT_HELD(m) ((void)0)
static inline void lrvm__lock(pthread_mutex_t *m, enum lrvm__rank rank)
{
    lrvm__lock_take(m, rank);
}
static inline void lrvm__unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}
static inline void lrvm__lock_own_thread(void)
{
}
#endif

/* ARR, with room for element N (of ELEM bytes; *CAP held): the same
 * array or a larger one, or NULL (ARR untouched, still to be freed) when
 * memory runs out. The capacity doubles, so appending stays amortized O(1). */
static inline void *lrvm__room_for(void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : 16;
    while (c <= n)
        c *= 2;
    if (c > SIZE_MAX / elem)
        return NULL;
    void *t = realloc(arr, c * elem);
    if (t != NULL)
        *cap = c;
    return t;
}

/* What threads that write their own words keep apart by. */
#define LRVM__CACHE_LINE 64
/* The parts the count of the log's tail is kept in (log.c). */
#define LRVM__TAIL_PARTS 4

/* N zeroed bytes at a cache line's start (N a multiple of one), to be
 * freed with free(); NULL when memory runs out. */
static inline void *lrvm__zalloc_aligned(size_t n)
{
    void *p = aligned_alloc(LRVM__CACHE_LINE, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

/* ---------------------------------------------------------------- io.c */

struct stat;

/* The io seam's methods (io.c). Each is one operation (pread reads all N
 * bytes but at the end of the file, pwritev writes all of IOV, retrying
 * EINTR and short counts) and returns >= 0 on success, -errno on failure;
 * only io.c and a layer put in front of it see those values. */
struct lrvm__io_methods {
    int     (*openat)(int dirfd, const char *path, int flags, mode_t mode);
    int     (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, uint64_t off);
    int     (*pwritev)(int fd, struct iovec *iov, int iovcnt, uint64_t off);
    int     (*fdatasync)(int fd);
    int     (*fsync)(int fd);
    int     (*ftruncate)(int fd, uint64_t len);
    /* Reserve the disk blocks of [off, off+len) (0 where the file system
     * cannot, which leaves the file sparse). */
    int     (*allocate)(int fd, uint64_t off, uint64_t len);
    int     (*fstat)(int fd, struct stat *st);
    /* The file's links: 0 once its last name went. */
    int     (*links)(int fd);
    int     (*unlinkat)(int dirfd, const char *path);
    int     (*renameat)(int dirfd, const char *from, const char *to);
    int     (*mkdir)(const char *path, mode_t mode);
    int     (*flock)(int fd);                   /* exclusive, non-blocking */
    /* The first LEN bytes of the log, read-only and shared (a READ). */
    int     (*map_log)(int fd, size_t len, const unsigned char **out);
    /* A segment file, private and writable; at FIXED (not NULL) or not at
     * all, -EEXIST when that range is taken. */
    int     (*map_seg)(int fd, size_t len, void *fixed, void **out);
    int     (*unmap)(void *addr, size_t len);
    /* A small file of the system's (/proc), whole, NUL-terminated in N
     * bytes; not a file of the store. */
    int     (*read_small)(const char *path, char *buf, size_t n);
    /* Advice: start reading ahead / writing back; never fail. */
    void    (*will_read)(int fd, uint64_t off, uint64_t len);
    void    (*start_writeback)(int fd, uint64_t off, uint64_t len);
    /* A pace, not a sync: return once the range's writeback, started
     * or not, has reached the disk (its cache is not flushed). */
    int     (*wait_writeback)(int fd, uint64_t off, uint64_t len);
};
extern const struct lrvm__io_methods lrvm__io_posix;
/* Put M in front (NULL: the posix methods again) while no store is open;
 * returns the table it replaces. For the tests' fault layer. */
const struct lrvm__io_methods *lrvm__io_set_methods(const struct lrvm__io_methods *m);

/* Every file call of the library. Return: >= 0 on success (a file
 * descriptor, a byte count, or 0), a negative LRVM_E* code on failure,
 * with errno set to the cause (io.c I1). */
/* A file of the store in DIRFD (io.c I4): no link followed, a regular
 * file or LRVM_EACCES. */
int     lrvm__io_open(int dirfd, const char *name, int flags, mode_t mode);
/* A directory named by the program (links followed). */
int     lrvm__io_open_dir(const char *path);
/* May the store directory DIRFD (named PATH, for the trace) be trusted?
 * LRVM_EACCES when anyone may write to it or a user other than this one
 * or root owns it, unless SHARED says the store is shared on purpose. */
int     lrvm__io_dir_check(int dirfd, const char *path, int shared);
int     lrvm__io_close(int fd);
ssize_t lrvm__io_pread(int fd, void *buf, size_t n, uint64_t off);
int     lrvm__io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off);
/* Writes all of IOV (which it may change) at OFF. */
int     lrvm__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off);
int     lrvm__io_pwrite_zeros(int fd, uint64_t off, uint64_t n);
/* Map the first LEN bytes of FD read-only. A read error of the disk then
 * arrives as SIGBUS, as for any file mapping. */
int     lrvm__io_map_read(int fd, uint64_t len, const unsigned char **p);
/* Map a segment file MAP_PRIVATE, writable; at FIXED when not NULL
 * (LRVM_EEXIST when that range is taken). */
int     lrvm__io_map_segment(int fd, size_t len, void *fixed, void **p);
void    lrvm__io_unmap(const void *p, uint64_t len);
/* Fill in the page tables of LEN bytes at P, inside a mapping made by
 * lrvm__io_map_read: the kernel does it in a batch. */
void    lrvm__io_map_populate(const unsigned char *p, size_t len);
/* Start reading the first LEN bytes of FD into the page cache, in the
 * background (advice; never fails). */
void    lrvm__io_will_read(int fd, uint64_t len);
/* Start writing [OFF, OFF+LEN) of FD back to disk without waiting (advice;
 * never fails, durable only after a sync). */
void    lrvm__io_start_writeback(int fd, uint64_t off, uint64_t len);
/* Wait until [OFF, OFF+LEN) of FD is written back (a pace, not a sync: the
 * disk may still cache it). 0, or the code of a failed writeback of any
 * part of FD since the last sync or wait: it is reported once, so the
 * caller must treat it as a failed sync of FD. */
int     lrvm__io_wait_writeback(int fd, uint64_t off, uint64_t len);
int     lrvm__io_fdatasync(int fd);
int     lrvm__io_fsync(int fd);
int     lrvm__io_ftruncate(int fd, uint64_t len);
/* Reserve the blocks of [OFF, OFF+LEN) of FD: LRVM_ENOSPC now rather than
 * a failed write (or SIGBUS through a mapping) later. */
int     lrvm__io_allocate(int fd, uint64_t off, uint64_t len);
int     lrvm__io_fstat_size(int fd, uint64_t *size);
int     lrvm__io_unlink(int dirfd, const char *path);
int     lrvm__io_rename(int dirfd, const char *from, const char *to);
int     lrvm__io_mkdir(const char *path, mode_t mode);
/* fsync the directory that holds PATH (its entry for PATH is durable). */
int     lrvm__io_sync_parent(const char *path);
int     lrvm__io_flock(int fd);
/* Read a small file (under /proc) into BUF of N bytes, NUL-terminated;
 * its length. */
int     lrvm__io_read_small(const char *path, char *buf, size_t n);
/* Threads of lrvm's own, which never store into a segment: made by
 * lrvm__io_thread_start (0 or LRVM_ENOMEM) with every signal blocked,
 * each calling lrvm__io_thread_ends as its last act. Is the calling
 * thread the program's only one, besides them? */
int     lrvm__io_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
void    lrvm__io_thread_ends(void);
int     lrvm__io_program_alone(void);
/* PATH's directory and last name, each into PATH_MAX bytes. */
int     lrvm__split_path(const char *path, char *parent, char *name);

/* ------------------------------------------------------------- error.c */

/* Record RC (when negative) as this thread's lrvm_last_error; return it. */
int  lrvm__note_error(int rc);
/* Is tracing on (LRVM_VERBOSE, rvm_verbose)? */
int  lrvm__tracing(void);
void lrvm__set_tracing(int on);
/* One line on stderr, "WHO: ..." (callers ask lrvm__tracing first). */
void lrvm__trace(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The trace of a refusal: one line when tracing is on. */
#define LRVM__TRACE(...) do { if (lrvm__tracing()) lrvm__trace("lrvm", __VA_ARGS__); } while (0)

/* ---------------------------------------------------------- segment.c */

/* A run of ambient changes set aside when a transaction took the segment
 * (track_mprotect.c): replayed by the next lrvm_sync. */
struct lrvm__stash_run {
    size_t          sr_off;
    size_t          sr_len;
    unsigned char  *sr_data;
};

/* A mapped segment. segment.c owns the fields down to sg_maplen (every
 * part may read them); tx.c owns sg_tx; the mprotect tracker owns the
 * rest (unused by the explicit tracker). */
struct lrvm__seg {
    char            sg_name[LRVM__NAME_MAX + 1];
    lrvm_t         *sg_store;
    int             sg_fd;      /* DIR/NAME.seg, read-write */
    unsigned char  *sg_base;    /* mapping, MAP_PRIVATE */
    size_t          sg_size;    /* bytes of the segment (== file size) */
    size_t          sg_maplen;  /* sg_size rounded up to pages */
    unsigned        sg_page_shift; /* log2 of the page size: a commit finds
                                      each range's pages with a shift */
    lrvm_tx_t      *sg_tx;      /* open transaction that holds it alone, or NULL;
                                   tx.c writes it, the trackers and heap.c read it */
    int             sg_shared;  /* open shared transactions that hold it (tx.c) */

    /* The automatic trackers' (track_mprotect.c, track_uffd.c: a store has
     * one). The mprotect tracker's fault handler reads and writes only the
     * fields marked (H), lock-free. The userfaultfd tracker gives sg_shadow,
     * sg_state and sg_dirty the meanings its file says, and uses sg_undo. */
    size_t                  sg_npages;
    _Atomic unsigned char  *sg_state;    /* (H) LRVM__PG_* per page */
    unsigned char          *sg_shadow;   /* (H) before-images, page i at i*page */
    uint32_t               *sg_dirty;    /* (H) captured pages, in capture order */
    _Atomic size_t          sg_ndirty;   /* (H) entries of sg_dirty */
    _Atomic long            sg_unprotected; /* (H) mprotect(RW) calls since re-protect */
    _Atomic uintptr_t       sg_frozen;   /* (H) the thread that froze it, or 0: no
                                            capture may start (track_mprotect.c I5) */
    _Atomic int             sg_capturing;/* (H) captures under way */
    struct lrvm__stash_run *sg_stash;    /* ambient runs set aside by begin */
    size_t                  sg_nstash, sg_stash_cap;
    unsigned char          *sg_undo;     /* uffd: image runs replaced by a commit */
    size_t                  sg_undo_cap; /* uffd: bytes sg_undo has room for */
    size_t                  sg_undo_n;   /* uffd: bytes it holds (track_uffd.c I3) */
    long                    sg_uffd_pid; /* uffd: the process it is registered in */
    int                     sg_hole_told;/* uffd: a commit failed for an unmapped page */
    long                    sg_quiet;    /* uffd: the process's faults as its last scan began */
    long                    sg_quiet_mine; /* uffd: and the scanning thread's, then */
    int                     sg_image_new;/* uffd: its last commit made image pages */
    size_t                  sg_seen;     /* uffd: pages listed (PG_SEEN) */
    uint16_t               *sg_table_seen; /* uffd: of them, in each page table's span */
    size_t                  sg_tables;   /* uffd: spans with a page listed: the scans' walk */
    size_t                  sg_tables_kept; /* uffd: sg_tables after its last release */
    int                     sg_whole;    /* uffd: protected whole, scanned by the fast walk */

    /* resident.c's: what is kept of each page after its commits. */
    unsigned char          *sg_res;      /* one byte per page (resident.c I1) */
    size_t                  sg_res_n;    /* pages of the mapping */
};

/* ------------------------------------------------------------ resident.c */

/* What a page keeps, for lrvm__res_release: its private copy in the
 * segment's mapping, its second copy (before-image or image). */
#define LRVM__RES_PRIVATE 1u
#define LRVM__RES_SPARE   2u

int  lrvm__res_attach(struct lrvm__seg *seg);
void lrvm__res_detach(lrvm_t *s, struct lrvm__seg *seg);
/* Pages [first, first+n) of SEG were changed by a commit or an abort that
 * ended just now: each is a private copy, and with SPARE the tracker keeps
 * a second copy too. Under the store's lock; or without it, for pages
 * that lrvm__res_counted found counted, by a commit at the log's tail
 * whose transaction holds SEG (the counts do not change, and the tail
 * holds the generation still: log.c T1). */
void lrvm__res_mark(lrvm_t *s, struct lrvm__seg *seg, size_t first, size_t n, int spare);
/* Is each of pages [first, first+n) of SEG counted as a private copy? */
int  lrvm__res_counted(const struct lrvm__seg *seg, size_t first, size_t n);
/* Is the second copy of page P of SEG kept (and so already made)? */
int  lrvm__res_spare(const struct lrvm__seg *seg, size_t p);
/* Pages kept, of both kinds. */
size_t lrvm__res_pages(const lrvm_t *s);
/* Of those, the pages whose committed bytes the files may not hold yet:
 * a truncation will let them go. */
size_t lrvm__res_unapplied(lrvm_t *s);

/* A tracker's way of giving back the pages of one segment. */
struct lrvm__res_pass {
    /* 1: the second copy holds committed bytes (an image), and may go only
     * when the file holds them; 0: it is dead once its epoch ended. */
    int   spare_in_file;
    /* May page P give back WHAT (one LRVM__RES_* bit) now? NULL: every
     * page may. */
    int (*may)(void *arg, struct lrvm__seg *seg, size_t p, unsigned what);
    /* Called with each run of N private copies from page FIRST just
     * before it is given back; NULL: none. */
    void (*giving)(void *arg, struct lrvm__seg *seg, size_t first, size_t n);
    /* Pages a page table maps (its span, aligned in the address space),
     * or 0. With it, a page with no copy of a kind kept, in a span where
     * some page keeps one, joins the runs of that kind too when MAY allows
     * it, so that the runs cover whole spans: the kernel frees a page
     * table only when a range given back covers all it maps. */
    size_t span;
    void *arg;
};
/* Give back every page of SEG that the file holds (and every dead second
 * copy) and that PASS allows, in runs; under the store's lock. */
int  lrvm__res_release(lrvm_t *s, struct lrvm__seg *seg, const struct lrvm__res_pass *pass);
/* Test hook: nonzero, runs are given back one madvise each, as where the
 * kernel refuses process_madvise. */
extern int lrvm__res_one_by_one;
#ifdef LRVM_DEBUG
void lrvm__res_check(const lrvm_t *s);
#endif

/* Page states of automatic capture. */
enum {
    LRVM__PG_CLEAN = 0,         /* read-only, nothing saved */
    LRVM__PG_CAPTURING = 1,     /* a handler is saving it */
    LRVM__PG_DIRTY = 2,         /* writable, before-image saved */
    LRVM__PG_SEALED = 3,        /* read-only, its bytes being committed */
    LRVM__PG_KEPT = 4           /* read-only, dirty: a commit of it failed */
};

/* Map segment NAME (created, or extended to SIZE); at FIXED when not NULL,
 * LRVM_EADDR if that range is taken. */
int  lrvm__seg_map(lrvm_t *s, const char *name, size_t size, void *fixed,
                   struct lrvm__seg **out);
void lrvm__seg_unmap(lrvm_t *s, struct lrvm__seg *seg);
/* Remove NAME's file; the caller truncated first (I6). */
int  lrvm__seg_destroy(lrvm_t *s, const char *name);
/* Open the file of segment NAME (N bytes, no NUL needed) in DIRFD with
 * FLAGS (no O_CREAT); a descriptor or an LRVM_E* code. */
int  lrvm__seg_open_file(int dirfd, const char *name, size_t n, int flags);
/* Make the file of segment NAME whole or not at all (I7): LAYOUT(ARG, fd)
 * writes its content; returns the descriptor of NAME.seg, read-write. */
int  lrvm__seg_create(lrvm_t *s, const char *name, int (*layout)(void *arg, int fd), void *arg);
struct lrvm__seg *lrvm__seg_by_base(lrvm_t *s, const void *base);
struct lrvm__seg *lrvm__seg_by_name(lrvm_t *s, const char *name);
/* Of the N segments SEGS, the one whose mapping holds [addr, addr+len),
 * or NULL. */
struct lrvm__seg *lrvm__seg_by_addr(struct lrvm__seg *const *segs, size_t n, const void *addr,
                                    size_t len);
/* An open transaction holds SEG, alone or shared (tx.c I1). */
static inline int lrvm__seg_held(const struct lrvm__seg *seg)
{
    return seg->sg_tx != NULL || seg->sg_shared > 0;
}

/* ----------------------------------------------------- logfmt.c, log.c */

#define LRVM__LOG_NAME        "lrvm.log"
#define LRVM__LOG_VERSION     3u     /* the header's version written; 1 and 2 are
                                        still read (records as of version 2) */
#define LRVM__LOG_VERSION_MIN 1u
#define LRVM__LOG_SLOT_SIZE   512u
#define LRVM__LOG_HEADER_SIZE 4096u
#define LRVM__REC_MAX_PAYLOAD (1u << 30)
#define LRVM__REC_HEADER_SIZE 40u    /* version 2; LRVM__REC_HEADER_V1 in version 1 */
#define LRVM__REC_HEADER_V1   32u
#define LRVM__REC_COMMIT      1u     /* flag: last part of its transaction */

/* A decoded log header slot. */
struct lrvm__log_header {
    uint32_t lh_version;
    uint64_t lh_generation;
    uint64_t lh_first_txno;   /* number of the first transaction of the generation */
    uint64_t lh_start;        /* offset of its first record (4096 before version 3) */
    uint64_t lh_next_start;   /* 0, or where generation + 1 begins: this one then
                                 holds exactly lh_next_txno - lh_first_txno
                                 transactions, all durable (logfmt.c) */
    uint64_t lh_next_txno;    /* the first transaction of generation + 1 */
};

/* A decoded record header. */
struct lrvm__rec_header {
    uint32_t rh_crc;
    uint32_t rh_payload_len;
    uint16_t rh_part;
    uint16_t rh_flags;
    uint64_t rh_generation;
    uint64_t rh_txno;
    uint64_t rh_durable;      /* version 2: the log was synced below this offset
                                 when the record was made; 0 in version 1 */
    uint32_t rh_hsize;        /* bytes of the header: 40, or 32 in version 1 */
};

/* A generation being retired: applied to the segment files by a
 * truncation beside the commits (recover.c) while the writer goes on in
 * the next one. */
struct lrvm__log_retiring {
    uint64_t lr_generation;
    uint64_t lr_start;        /* offset of its first record */
    uint64_t lr_end;          /* past its last record; 0 when not known (a log
                                 found so at open) */
    uint64_t lr_first_txno;
    uint64_t lr_next_txno;    /* the first of the next generation: it holds
                                 lr_next_txno - lr_first_txno transactions */
    uint64_t lr_next_start;   /* where the next generation begins */
    int      lr_slot;         /* the header slot that names it alone, which the
                                 next generation's header replaces once it
                                 is applied */
};

/* The log writer's state (log.c's alone; recover.c reads it through
 * lrvm__log_state). Guarded by the store's lock, *lg_mu, but for
 * lg_sync_rc (lg_sync_mu). */
struct lrvm__log {
    int             lg_fd;
    int             lg_dirfd;       /* the store's directory */
    pthread_mutex_t *lg_mu;         /* the store's lock, which every call holds */
    lrvm_stats_t   *lg_stats;       /* the store's counters: fsyncs, bytes_logged,
                                       log_records */
    int             lg_slot;        /* header slot that holds lg_generation */
    uint32_t        lg_version;     /* the format of the generation: records are
                                       written only in LRVM__LOG_VERSION's */
    uint64_t        lg_generation;
    uint64_t        lg_first_txno;
    uint64_t        lg_start;       /* offset of the generation's first record */
    uint64_t        lg_next_txno;   /* number the next commit gets */
    int             lg_retiring;    /* lg_ret is being applied (or its application
                                       failed and waits to be tried again) */
    struct lrvm__log_retiring lg_ret;
    uint64_t        lg_wall;        /* 0, or while lg_ret is retiring, the offset
                                       the generation must not write past */
    int           (*lg_wall_wait)(void *arg);   /* waits until lg_ret is applied */
    void           *lg_wall_arg;
    uint64_t        lg_durable;     /* records before this offset are synced */
    uint64_t        lg_written;     /* records before this offset are written;
                                       the buffer goes here */
    _Atomic uint64_t lg_file_size;  /* preallocated size of lrvm.log; it only
                                       grows, under lg_grow_mu */
    unsigned char  *lg_buf;         /* committed records not yet written */
    size_t          lg_buf_used;
    size_t          lg_buf_cap;
    uint64_t        lg_room;        /* a generation's bytes: the threshold at
                                       its start (lrvm__truncate_threshold) */
    int             lg_failed;      /* sticky: an invalidation or a group failed (C4) */
    int             lg_clean;       /* every record of the generation was written by
                                       this process: it is new, or began here */
    /* Group commit (log.c): one fdatasync at a time, the leader's without
     * the store lock. */
    unsigned char  *lg_spare;       /* a second buffer: a group's batch being
                                       synced, or records the syncer writes */
    pthread_mutex_t lg_sync_mu;     /* held across every fdatasync of the log */
    pthread_cond_t  lg_synced;      /* with the store lock: a leader's sync ended */
    int             lg_syncing;     /* a leader is in fdatasync */
    int             lg_waiters;     /* commits waiting for a leader's sync */
    int             lg_group_rc;    /* LRVM_E* of a failed group sync; sticky */
    int             lg_sync_rc;     /* LRVM_E* of a failed sync made without the
                                       store lock (a truncation's header, the
                                       syncer's); sticky, under lg_sync_mu */
    /* The syncer (log.c): a thread that writes and syncs the records
     * no-flush commits left when the buffer filled, and grows the file
     * ahead of the writer. */
    int             lg_bg_state;    /* 0 not started, 1 running, -1 cannot start */
    int             lg_bg_asked;    /* work posted since the last bg_absorb */
    uint64_t        lg_bg_owed;     /* end of the records handed to it to sync: those
                                       past lg_durable left the buffer unsynced */
    uint64_t        lg_bg_grow_asked;  /* the file size when growth was last posted */
    pthread_t       lg_bg_thread;
    pthread_mutex_t lg_grow_mu;     /* held by whoever grows the file */
    pthread_mutex_t lg_bg_mu;       /* guards the lg_bg_* below; a leaf lock */
    pthread_cond_t  lg_bg_cond;     /* work posted, or stop */
    pthread_cond_t  lg_bg_idle;     /* it finished what it took, and has no more */
    uint64_t        lg_bg_want;     /* sync posted: up to here, of lg_bg_want_gen */
    uint64_t        lg_bg_want_gen;
    uint64_t        lg_bg_grow;     /* growth posted: the file to hold this much */
    uint64_t        lg_bg_done;     /* synced: up to here, of lg_bg_done_gen */
    uint64_t        lg_bg_done_gen;
    unsigned        lg_bg_fsyncs;   /* its syncs since the last bg_absorb */
    int             lg_bg_rc;       /* LRVM_E* of a write or sync of its that failed */
    int             lg_bg_busy;     /* it works on what it took */
    int             lg_bg_stop;
    const unsigned char *lg_bg_wbuf;    /* a write posted, NULL once it took it: */
    size_t          lg_bg_wlen;         /*   the spare's first lg_bg_wlen bytes, */
    uint64_t        lg_bg_wat;          /*   at lg_bg_wat of the file (log.c I8) */
    int             lg_bg_writing;  /* it writes what it took: the spare is its */
    /* The tail (log.c): while it is open, commits place records in the
     * buffer past lg_buf_used without the store lock. The word each of
     * them changes, and each part of the count, have a line of their own. */
    uint64_t        lg_tail_txno;   /* lg_next_txno when it opened */
    char            lg_tail_pad0[LRVM__CACHE_LINE];
    _Atomic uint64_t lg_tail;       /* places given: see log.c */
    char            lg_tail_pad1[LRVM__CACHE_LINE];
    struct {                        /* bytes of placed records written, in
                                       parts each thread adds to one of */
        _Atomic uint64_t td_bytes;
        char             td_pad[LRVM__CACHE_LINE - sizeof(uint64_t)];
    } lg_tail_done[LRVM__TAIL_PARTS];
};

/* 1 when the N bytes at NAME (no NUL needed) may name a segment in a
 * record and as a file of the store: 1 to LRVM__NAME_MAX bytes, no NUL,
 * no '/', no "..", not ".". */
int  lrvm__name_ok_n(const char *name, size_t n);
/* The same for a new name from the program, which may also hold no
 * control character. */
int  lrvm__name_ok(const char *name);

uint32_t lrvm__crc32c(uint32_t crc, const void *buf, size_t n);
uint32_t lrvm__crc32c_sw(uint32_t crc, const void *buf, size_t n);   /* portable path */
size_t   lrvm__varint_put(unsigned char *p, uint64_t v);
size_t   lrvm__varint_len(uint64_t v);
/* Decode a varint from [*p, end); 0 on success, -1 when malformed. */
int      lrvm__varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v);

/* Internal commit flag: a transaction's flushing commit may share its
 * fdatasync with concurrent ones (group commit; the store lock is let go
 * while it waits). */
#define LRVM__COMMIT_GROUP 0x100

/* Open or create lrvm.log in DIRFD with a write buffer of BUF_CAP bytes;
 * MU is the store's lock, held by every caller, and STATS its counters.
 * ROOM is what a generation may take while the one before it is applied
 * (lrvm__log_switch), until a switch gives the log another: the file
 * grows ahead toward what two take. */
int  lrvm__log_open(struct lrvm__log *lg, int dirfd, pthread_mutex_t *mu, lrvm_stats_t *stats,
                    size_t buf_cap, uint64_t room);
/* Let go of the log; a zeroed struct, whose open never ran, is left be. */
void lrvm__log_close(struct lrvm__log *lg);
/* Commit the redo that REDO(ARG, enc) produces as one transaction. When
 * the commit syncs the log, IN_FLIGHT(ARG) (if not NULL) runs after its
 * records were handed to the kernel, while the disk writes them. */
int  lrvm__log_commit(struct lrvm__log *lg, int (*redo)(void *arg, struct lrvm__enc *e),
                      void (*in_flight)(void *arg), void *arg, int flags);
int  lrvm__log_flush(struct lrvm__log *lg);
/* Commit at the log's tail, without the store lock and without a flush
 * (log.c, "The tail"): the redo REDO(ARG, enc) produces becomes one
 * record placed in the buffer, and PLACED(ARG) runs before the tail may
 * be shut after it. 0, or LRVM__TAIL_NO when the tail is shut or full or
 * the transaction too large or empty: nothing was done, commit with
 * lrvm__log_commit. */
#define LRVM__TAIL_NO 1
int  lrvm__log_tail_commit(struct lrvm__log *lg, int (*redo)(void *arg, struct lrvm__enc *e),
                           void (*placed)(void *arg), void *arg);
/* Open the tail, if the log is well and the buffer has room; shut it,
 * taking in what it placed. Store lock held. */
void lrvm__log_tail_open(struct lrvm__log *lg);
void lrvm__log_tail_shut(struct lrvm__log *lg);
/* fdatasync the log with the store lock held (never alongside a group
 * leader's sync); an LRVM_E* code on failure. */
int  lrvm__log_sync(struct lrvm__log *lg);
/* Wait (store lock held, let go meanwhile) until no commit is in a group
 * sync: for lrvm_close, which frees what those commits use. */
void lrvm__log_quiesce(struct lrvm__log *lg);
/* What recovery needs to know of the log: where it is and which
 * generation it is in. */
struct lrvm__log_state {
    int      ls_fd;
    uint32_t ls_version;      /* of the generation in the log */
    uint64_t ls_generation;
    uint64_t ls_first_txno;
    uint64_t ls_start;        /* where its records begin */
    uint64_t ls_durable;      /* records before this offset are synced */
    int      ls_clean;        /* every record of the generation was written by
                                 this process: it is new, or began here */
    int      ls_retiring;     /* the generation before it is still in the log: */
    struct lrvm__log_retiring ls_ret;
};
void lrvm__log_state(const struct lrvm__log *lg, struct lrvm__log_state *st);
/* Start a new, empty generation at 4096 (after every record of the log
 * was applied), of a number above the current one and other than AVOID
 * (lrvm__scan_result sr_stop_generation), whose first transaction
 * follows the TXS complete transactions of the current one. */
int  lrvm__log_new_generation(struct lrvm__log *lg, uint64_t avoid, uint64_t txs);
/* The switch (log.c): make the generation's records durable, name the
 * next generation in the header, and go on writing in it, while the
 * caller has *OUT applied. The next generation may take ROOM, the log's
 * room from now on (lrvm__log_open), while that runs, at least; past its
 * wall a write
 * calls WAIT(ARG), which must return once *OUT is applied
 * (lrvm__log_retired) or fail. 0, 1 when the
 * generation holds no record (nothing done), or an LRVM_E* code (the
 * store goes on in the generation, nothing lost). Store lock held. */
int  lrvm__log_switch(struct lrvm__log *lg, uint64_t room, int (*wait)(void *arg), void *arg,
                      struct lrvm__log_retiring *out);
/* Write the header that retires RET (its next generation alone) and sync
 * it. The one call of log.c made without the store lock: it touches the
 * file and lg_sync_rc only. A failed sync fails every later sync of the
 * log (lg_sync_rc): it may have taken the error of the commits' pages. */
int  lrvm__log_retire_header(struct lrvm__log *lg, const struct lrvm__log_retiring *ret);
/* The header lrvm__log_retire_header wrote is durable: the generation
 * before is gone from the log, its wall too. Store lock held. */
void lrvm__log_retired(struct lrvm__log *lg);
/* Does the log hold records: a generation retiring, or any in the
 * current one (written or buffered)? */
int  lrvm__log_holds_records(const struct lrvm__log *lg);
/* How much of the room before the wall the current generation has
 * taken, in 1/65536ths; -1 while there is no wall. */
int  lrvm__log_wall_fill(const struct lrvm__log *lg);
/* The microseconds a commit sleeps, once it let the store lock go,
 * because the log's syncer is behind (counted in commit_waits); 0 when
 * it is not. Store lock held. */
unsigned lrvm__log_pace(struct lrvm__log *lg);
/* Bytes the current generation's records and a header take: what
 * the truncation threshold is compared with. */
uint64_t lrvm__log_gen_size(const struct lrvm__log *lg);
/* The offset just past the last record of the current generation
 * (written or buffered): lrvm_stats log_size. */
uint64_t lrvm__log_size(const struct lrvm__log *lg);
#ifdef LRVM_DEBUG
/* Assert log.c's I1, I2 and I4 (store lock held, no commit encoding). */
void lrvm__log_check(const struct lrvm__log *lg);
#else
#define lrvm__log_check(lg) ((void)0)
#endif

int  lrvm__log_header_decode(const unsigned char *slot, struct lrvm__log_header *h);
void lrvm__log_header_encode(unsigned char *slot, const struct lrvm__log_header *h);
/* Decode the record header at P, of a log of format VERSION. */
void lrvm__rec_header_decode(const unsigned char *p, uint32_t version,
                             struct lrvm__rec_header *h);
/* Write H's header at REC in the current format, its magic and its CRC
 * over the payload that follows it there. */
void lrvm__rec_header_encode(unsigned char *rec, const struct lrvm__rec_header *h);
/* 0 when the header's magic is right. */
int  lrvm__rec_magic_ok(const unsigned char *p);
/* The CRC of a current-format record at REC with PAYLOAD_LEN bytes. */
uint32_t lrvm__rec_crc(const unsigned char *rec, size_t payload_len);
/* Bytes a record takes in the log: header, payload, padding to 8. */
uint64_t lrvm__rec_size(const struct lrvm__rec_header *h);

/* Payload entries. */
enum { LRVM__ENT_DEFINE = 1, LRVM__ENT_RANGE = 2 };
#define LRVM__REC_MAX_SEGS 64

/* Decode a record payload; call RANGE (may be NULL) for each redo range,
 * with the segment's name as NAME_LEN bytes that do not end in a NUL.
 * LRVM_ECORRUPT when the payload is malformed, else RANGE's first error. */
int lrvm__payload_walk(const unsigned char *p, size_t len,
                       int (*range)(void *arg, const char *name, size_t name_len,
                                    uint64_t off, const unsigned char *data, uint64_t n),
                       void *arg);

/* The record encoder a transaction's redo is fed through. */
struct lrvm__enc {
    struct lrvm__log    *en_log;
    uint64_t             en_txno;
    unsigned             en_part;
    int                  en_open;       /* a part's header is reserved in the buffer */
    size_t               en_rec_start;  /* buffer offset of the open part */
    int                  en_spilled;    /* some part of this tx left the buffer */
    uint64_t             en_tx_start;   /* file offset of this tx's first part */
    size_t               en_mark;       /* buffer bytes that precede this tx */
    const void         **en_defined;    /* segments defined in the open part: */
    size_t               en_ndefined, en_defined_cap;
    const void          *en_defined_few[8];     /* here, or malloc'ed (the only
                                                   field lrvm__log_commit leaves
                                                   unset: set every other) */
    uint64_t             en_bytes;      /* record bytes produced */
    uint64_t             en_records;
    struct lrvm__tail_tx *en_tail;      /* not NULL: gather the ranges for
                                           lrvm__log_tail_commit instead */
};
/* Log LEN bytes at SRC as written at OFF of the segment SEG (any pointer
 * that stands for it while the commit runs) named NAME. */
int lrvm__enc_range(struct lrvm__enc *e, const void *seg, const char *name, size_t off,
                    const void *src, size_t len);

/* ---------------------------------------------------------- recover.c */

/* Truncation: flush the log, apply every complete record of it to the
 * segment files, sync them, start a new generation. Recovery at open is
 * the same call. The caller holds the store's lock. */
int  lrvm__truncate(lrvm_t *s);
/* lrvm__truncate when the log holds records (so that a segment's file
 * shows every commit: segment.c I4), else nothing. */
int  lrvm__truncate_if_any(lrvm_t *s);
/* Truncation beside the commits (recover.c). A job applies the
 * generation the log retires in a thread of its own, which never takes
 * the store lock; its fields are guarded by tj_mu, and for the rest
 * (tj_ret, tj_thread) handed over with tj_state under the store lock.
 * Lock order: the store lock, then tj_mu; tj_mu is never held with
 * lg_sync_mu. */
struct lrvm__trunc_job {
    pthread_mutex_t tj_mu;
    pthread_cond_t  tj_cond;        /* with tj_mu: a job ended */
    _Atomic int     tj_state;       /* idle, running, done (recover.c): only a
                                       store-locked call leaves idle or done */
    pthread_t       tj_thread;      /* running or done: joined when reaped */
    struct lrvm__log_retiring tj_ret;   /* the generation it applies */
    int             tj_fd;          /* the log's descriptor */
    _Atomic long    tj_tid;         /* the thread's id, which it sets */
    int             tj_rc;          /* done: 0 or how it failed */
    uint64_t        tj_fsyncs;      /* done: syncs it made, for the store's stats */
    int             tj_reaped;      /* store lock: a job ended well since tx.c last
                                       gave pages back (tx.c clears it) */
    _Atomic uint32_t tj_progress;   /* the thread's: its work done, 1/65536ths */
    _Atomic uint32_t tj_fill;       /* the commits': how far into its room the next
                                       generation (or the pages kept) is, 1/65536ths */
    _Atomic uint32_t tj_commits;    /* the commits': one more at each tj_fill */
    _Atomic int      tj_hurry;      /* a store-locked call waits for the job */
    int             tj_paced;       /* handed over: the job keeps the commits' pace
                                       (its generation passed the threshold) */
};
void lrvm__trunc_init(lrvm_t *s);
void lrvm__trunc_fini(lrvm_t *s);
/* Fold a job that ended into the store: 1 when it retired its
 * generation, 0 when none ended, <0 its error (the log keeps both
 * generations, and a later commit tries again). Store lock held. */
int  lrvm__trunc_reap(lrvm_t *s);
/* Wait for a running job and reap it: lrvm_close. */
void lrvm__trunc_stop(lrvm_t *s);
/* After a commit: start a truncation beside the commits (the switch, in
 * this thread, then the job), unless one runs. A failure loses nothing. */
void lrvm__truncate_start(lrvm_t *s);
/* The memory's hard limit (tx.c): start a truncation unless one runs,
 * and wait for it; counted in commit_waits. */
void lrvm__truncate_wait(lrvm_t *s);
/* A slowed commit's sleep, in microseconds, whichever background work it
 * outruns (lrvm__truncate_pace, lrvm__log_pace): a fraction of a
 * millisecond, so that the commits keep that work's pace without one
 * long wait. */
#define LRVM__PACE_US 200u
/* Sleep US microseconds (a slowed commit, a waiting claim, the
 * truncation's nap). */
static inline void lrvm__pause_us(long us)
{
    struct timespec ts = { us / 1000000L, us % 1000000L * 1000L };
    nanosleep(&ts, NULL);
}
/* Turn SPINS of a store-lock holder's wait for work another thread does
 * in a few hundred nanoseconds (a record placed at the log's tail, a
 * hook inside the hooks' gate), unless that thread was preempted: past
 * the first few turns, let it run. */
static inline void lrvm__wait_turn(unsigned spins)
{
    if (spins >= 64)
        sched_yield();
}
/* Microseconds a commit that just ended should sleep, once it let the
 * store lock go, because it outruns the truncation running beside it:
 * the log's room, or the memory's (MEM_FILL, how far the pages kept are
 * into theirs, in 65536ths; -1 when within the limit), filled ahead of
 * the truncation's progress; 0 mostly. Counted in commit_waits. It
 * tells the truncation's thread how far the commits are, which keeps
 * its pace to theirs. Store lock held. */
unsigned lrvm__truncate_pace(lrvm_t *s, int mem_fill);
/* The log's size past which a commit starts a truncation: the option
 * truncate_threshold, or when it is 0 the bytes of the segments mapped,
 * held to at most lrvm__truncate_most or a quarter of the resident limit,
 * the less, and to at least lrvm__truncate_default (recover.c says why).
 * Store lock held. */
size_t lrvm__truncate_threshold(const lrvm_t *s);
/* The default's floor and ceiling (tests make them small). */
extern size_t lrvm__truncate_default, lrvm__truncate_most;
/* Has the current generation passed the threshold, or is one
 * retiring that a failed job left behind? */
int  lrvm__truncate_due(const lrvm_t *s);
/* Non-zero in the truncation's thread (the tests' fault layer). */
extern _Thread_local int lrvm__in_truncation;
/* Non-zero in the log's syncer thread (log.c), for the same tests. */
extern _Thread_local int lrvm__in_syncer;
/* Test hook: non-zero makes each piece of work posted to the syncer end
 * before the commit that posted it goes on, so the syncer's calls come
 * in the same order in every run. */
extern int lrvm__log_syncer_lockstep;
/* Give back the memory of recovery's cache (lrvm_close). */
void lrvm__recover_release(lrvm_t *s);
/* Ranges recovery holds before writing them, at most (tests only). */
extern uint32_t lrvm__apply_max;

/* Callbacks of a log scan, for recovery and for lrvmutl. */
struct lrvm__scan_cb {
    void *arg;
    /* A record passed its checks; called in log order. */
    int (*record)(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                  const unsigned char *payload);
    /* May be NULL. The bytes handed to record so far are about to be
     * overwritten or freed. */
    void (*release)(void *arg);
    /* 0, or the end of what the caller knows durable (a truncation in the
     * process that wrote the log): a stop before it is damage, and the
     * scan need not look past the stop for proof. */
    uint64_t durable_end;
    /* 0, or where the log is to end on purpose (lrvmutl recover
     * --discard-after): the scan stops there, looking no further. */
    uint64_t limit;
    /* 0, or the number of the transaction that follows the generation's
     * last (a header that names a next generation says it): the scan
     * stops before it, and a stop anywhere else is damage (logfmt.c V8). */
    uint64_t end_txno;
};
struct lrvm__scan_result {
    uint64_t sr_end;          /* end of the last complete transaction */
    uint64_t sr_scan_end;     /* where the scan stopped */
    uint64_t sr_txs;          /* complete transactions */
    uint64_t sr_records;
    const char *sr_stop;      /* why the scan stopped */
    uint64_t sr_stop_generation;  /* of the record header it stopped at, if
                                     that had the magic; else 0 */
    uint64_t sr_damage;       /* 0, or where the scan stopped when that spot is
                                 proven damaged (logfmt.c V7): the log must not
                                 be taken for ending there */
    uint64_t sr_proof;        /* the intact record that proves it, or 0 (known
                                 from durable_end) */
};
/* Walk the log of FD whose header is H, up to the first invalid record.
 * CB (may be NULL) sees every valid record, also those of an incomplete
 * last transaction. */
int lrvm__log_scan(int fd, const struct lrvm__log_header *h,
                   const struct lrvm__scan_cb *cb, struct lrvm__scan_result *res);
/* Where a transaction begins in the log: its offset and number. */
struct lrvm__log_pos {
    uint64_t lp_off;
    uint64_t lp_txno;
};
/* lrvm__log_scan from FROM (NULL: the first record); the result counts
 * from FROM. */
int lrvm__log_scan_from(int fd, const struct lrvm__log_header *h, const struct lrvm__log_pos *from,
                        const struct lrvm__scan_cb *cb, struct lrvm__scan_result *res);
/* Call CB for each record of IMG in [START, END), which a scan of IMG has
 * validated: no check is repeated. */
int lrvm__log_walk_valid(const unsigned char *img, uint32_t version, uint64_t start,
                         uint64_t end, const struct lrvm__scan_cb *cb);
/* The intact records (V2-V5) of H's generation in the log of FD from
 * FROM to its end, whatever lies between them: how many, how many end a
 * transaction, and the transaction number of the first (lrvmutl, to say
 * what a damaged log would lose). */
int lrvm__log_count_intact(int fd, const struct lrvm__log_header *h, uint64_t from,
                           uint64_t *records, uint64_t *commits, uint64_t *first_txno);
/* Read both header slots of FD and pick the current one. */
int lrvm__log_read_header(int fd, struct lrvm__log_header *h, int *slot);

/* What lrvmutl verify found: recovery's checks, which write nothing. */
struct lrvm__seg_usage {
    char     name[LRVM__NAME_MAX + 1];
    uint64_t size;            /* of the segment file */
    uint64_t ranges, bytes;   /* named by the valid records */
};
struct lrvm__check {
    struct lrvm__scan_result scan;      /* of the last generation scanned, but
                                           sr_records and sr_txs: of all */
    struct lrvm__log_header  head;      /* that generation (its own header, or
                                           the next one a header names) */
    uint64_t                 replay_bytes;  /* of the complete transactions, in
                                               every generation */
    struct lrvm__seg_usage  *segs;      /* free() it */
    size_t                   nsegs;
    uint64_t                 at;        /* on an error: the record that failed */
    const char              *why;       /* on LRVM_ECORRUPT: what is wrong with it */
};
/* Scan the log of LOGFD (header H) in the store directory DIRFD as
 * recovery would, checking each range against its segment file, and
 * write nothing. PROGRESS (may be NULL) sees each record's offset. 0, or
 * the error lrvm_open would fail with (LRVM_ECORRUPT: a valid record
 * names a missing segment or bytes outside it). */
int lrvm__recover_check(int dirfd, int logfd, const struct lrvm__log_header *h,
                        void (*progress)(void *arg, uint64_t off), void *progress_arg,
                        struct lrvm__check *out);
/* A range that recovery writes: N bytes at OFF of the segment named by
 * the NAME_LEN bytes at NAME (no NUL), which are DATA (valid during the
 * call only) and lie at LOG_OFF in the log. */
typedef int lrvm__range_fn(void *arg, const char *name, size_t name_len, uint64_t off,
                           const unsigned char *data, uint64_t n, uint64_t log_off);
/* lrvm__recover_check, and FN (when not NULL) sees every range recovery
 * would write, in the order it would write them: each complete
 * transaction's, in log order, once its COMMIT part is found valid
 * (lrvmutl heap and cat build a segment's image so). When the call
 * fails, the ranges FN saw count for nothing: recovery would write none.
 * FN's error ends the scan and is returned. Writes nothing. */
int lrvm__recover_ranges(int dirfd, int logfd, const struct lrvm__log_header *h,
                         void (*progress)(void *arg, uint64_t off), void *progress_arg,
                         lrvm__range_fn *fn, void *fn_arg, struct lrvm__check *out);

/* ------------------------------------------------- track.c, track_*.c */

/* What a transaction saved in explicit mode: a declared range, its
 * before-image at rg_undo in the transaction's tx_undo bytes. */
struct lrvm__range {
    struct lrvm__seg *rg_seg;
    size_t            rg_off;
    size_t            rg_len;
    size_t            rg_undo;
};

/* Where a tracker sends the redo of an epoch: LEN bytes at SRC, to be
 * written at OFF of SEG. */
typedef int lrvm__emit_fn(void *arg, struct lrvm__seg *seg, size_t off, const void *src,
                          size_t len);

/* pagediff.c: what the automatic trackers share. A changed run of LEN
 * bytes at OFF of SEG. */
typedef int lrvm__run_fn(void *arg, struct lrvm__seg *seg, size_t off, size_t len);
/* The changed runs of the LEN bytes NOW against their image WAS, which
 * lie at OFF of SEG (runs closer than a few bytes are joined). */
int  lrvm__page_diff(struct lrvm__seg *seg, size_t off, const unsigned char *now,
                     const unsigned char *was, size_t len, lrvm__run_fn *fn, void *arg);
/* The segments an epoch's commit covers: TX's, or (TX NULL, the ambient
 * epoch) every segment of S that no transaction holds; NULL for one it
 * skips. LRVM__EPOCH_FOR_EACH runs its body for each, SEG set. */
struct lrvm__seg *lrvm__epoch_seg(lrvm_t *s, lrvm_tx_t *tx, size_t i);
#define LRVM__EPOCH_FOR_EACH(s, tx, i, seg)                                   \
    for (size_t i = 0; i < ((tx) != NULL ? (size_t)(tx)->tx_nsegs : (s)->nsegs); i++) \
        if (((seg) = lrvm__epoch_seg((s), (tx), i)) != NULL)
/* A run_fn: set aside a copy of SEG's bytes [off, off+len) (sg_stash). */
int  lrvm__stash_add(void *arg, struct lrvm__seg *seg, size_t off, size_t len);
/* Drop SEG's set-aside runs past the first KEEP; free them all. */
void lrvm__stash_drop(struct lrvm__seg *seg, size_t keep);
void lrvm__stash_free(struct lrvm__seg *seg);
/* Emit every set-aside run of S's segments (a sync's first records). */
int  lrvm__stash_emit(lrvm_t *s, lrvm__emit_fn *emit, void *arg);
/* The transaction that held SEG committed: its runs take the bytes now
 * in memory, which are committed (track_mprotect.c I4). */
void lrvm__stash_refresh(struct lrvm__seg *seg);

/*
 * A tracker: how a store learns what a transaction (or the ambient epoch)
 * changed. Chosen at lrvm_open; tx.c drives it, and nothing else calls it.
 * An epoch is a transaction TX, or the store's ambient epoch when TX is
 * NULL (only a tracker with .ambient has one). Every call runs under the
 * store's lock, but capture when .owner_fast says the owner's lock-free
 * path may run it (tx.c, "Biased ownership").
 *
 * A commit: commit_start (the epoch's changes stop growing), redo (its
 * changes, through EMIT), seal (while the disk writes its records; a
 * transaction's commit only), then committed or commit_failed (the epoch
 * stays open, to be committed again or aborted).
 */
struct lrvm__tracker {
    const char *name;
    int         mode;           /* the LRVM_TRACK_* it serves */
    int         ambient;        /* it has an ambient epoch (lrvm_sync) */
    int         owner_fast;     /* capture may run without the store's lock */
    int         shared;         /* it serves lrvm_begin_shared */
    /* A segment is mapped / about to be unmapped (release its memory). */
    int   (*attach)(lrvm_t *s, struct lrvm__seg *seg);
    void  (*detach)(lrvm_t *s, struct lrvm__seg *seg);
    /* TX has just taken its segments (their ambient changes set aside). */
    int   (*begin)(lrvm_tx_t *tx);
    /* lrvm_set_range: [off, off+len) of SEG is about to change in TX. */
    int   (*capture)(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len);
    /* LRVM_EFAULT when the epoch's pages cannot be read (the program
     * unmapped one: lrvm.h C11); commit_failed follows either way. */
    int   (*commit_start)(lrvm_t *s, lrvm_tx_t *tx);
    int   (*redo)(lrvm_t *s, lrvm_tx_t *tx, lrvm__emit_fn *emit, void *arg);
    void  (*seal)(lrvm_t *s, lrvm_tx_t *tx);
    void  (*committed)(lrvm_t *s, lrvm_tx_t *tx);
    void  (*commit_failed)(lrvm_t *s, lrvm_tx_t *tx);
    /* Put back every byte TX changed. */
    void  (*abort)(lrvm_tx_t *tx);
    /* Put back the bytes TX declared since it had MARK ranges, and forget
     * those declarations (a commit's hook that failed). Trackers that
     * serve shared transactions only (the hook's one user), else NULL. */
    void  (*rollback)(lrvm_tx_t *tx, size_t mark);
    /* Give back the pages of SEG kept after their commits that may go now
     * (lrvm__res_release); 0 or an LRVM_E* code. */
    int   (*release)(lrvm_t *s, struct lrvm__seg *seg);
    /* Does the tracker ask for a release (a truncation, then release) for
     * its own cost, though the pages kept are under the resident limit?
     * NULL: never. */
    int   (*crowded)(const lrvm_t *s);
    /* May TX's commit be made at the log's tail (lrvm__log_tail_commit),
     * by its owner without the store's lock? Then redo and committed run
     * there too, and committed may touch nothing but TX's own arrays and
     * its segments' residency (lrvm__res_counted pages). NULL: never,
     * and the tail never opens. */
    int   (*tail_ok)(lrvm_t *s, const lrvm_tx_t *tx);
#ifdef LRVM_DEBUG
    /* Assert the tracker's invariants for the epoch, after commit_start. */
    void  (*check)(lrvm_t *s, lrvm_tx_t *tx);
#endif
};
extern const struct lrvm__tracker lrvm__track_explicit;
extern const struct lrvm__tracker lrvm__track_mprotect;
extern const struct lrvm__tracker lrvm__track_uffd;
/* Does the kernel give this process userfaultfd write-protection in async
 * mode and PAGEMAP_SCAN? Asked once. */
int lrvm__uffd_usable(void);
/* Test hooks: non-zero makes lrvm__uffd_usable say no (the fallback);
 * non-zero makes LRVM_TRACK_AUTO take the mprotect tracker even where
 * the userfaultfd one is usable. */
extern int lrvm__uffd_disabled;
/* Test hook: called in a commit's quiet window, with signals blocked
 * (track_uffd.c), before it closes. */
extern void (*lrvm__uffd_in_window)(void);
extern int lrvm__track_auto_mprotect;
/* The tracker for lrvm_options.tracking MODE in *OUT: 0, LRVM_EINVAL
 * (no such mode) or LRVM_EMODE (a mode this build or kernel cannot serve). */
int lrvm__track_choose(int mode, const struct lrvm__tracker **out);

/* Capture the pages of [addr, addr+len) that lie in a tracked segment,
 * before the kernel writes there (the read() wrappers). */
void lrvm__track_prepare_kernel_write(void *addr, size_t len);
/* Non-zero while some tracked segment is mapped: the wrappers' one branch. */
extern _Atomic int lrvm__tracked_areas;
extern const int lrvm__wrappers;      /* wrap.c is linked */

/* --------------------------------------------------------------- tx.c */

struct owner_slot;

/* A transaction handle: tx.c's, but for the explicit tracker's arrays.
 * Handles lie side by side in blocks, and each is written by the thread
 * that runs it: one does not share a cache line with the next. */
struct lrvm_tx {
    _Alignas(LRVM__CACHE_LINE) lrvm_t *tx_store;
    struct lrvm_tx      *tx_next, *tx_prev;   /* store's open transactions,
                                                 or the pool's free list */
    int                  tx_nsegs, tx_segs_cap;
    struct lrvm__seg   **tx_segs;
    int                  tx_committing;       /* in lrvm_commit, maybe waiting
                                                 for a group sync unlocked */
    int                  tx_shared;           /* begun by lrvm_begin_shared */
    int                  tx_own;              /* lrvm's own (lrvm__tx_begin_own) */
    pthread_t            tx_thread;           /* the thread that began it */
    const struct lrvm__tx_hook *tx_hook;      /* a part above's state, or NULL */
    void                *tx_hook_arg;
    /* The explicit tracker's (track_explicit.c). The arrays outlive the
     * transaction: a handle goes back to the pool with them, for the next
     * lrvm_begin. */
    struct lrvm__range  *tx_ranges;           /* in declaration order */
    size_t               tx_nranges, tx_cap;
    size_t               tx_mark;             /* ranges before a hook's: never
                                                 merged with a later one */
    unsigned char       *tx_undo;             /* before-images */
    size_t               tx_undo_len, tx_undo_cap;
    struct lrvm__range  *tx_sorted;           /* commit's scratch: the sort and its merges */
    size_t               tx_sorted_cap;
    /* Biased ownership (tx.c): the slot of the thread whose
     * lrvm_set_range calls may run without the store's lock, or NULL. */
    _Atomic(struct owner_slot *) tx_owner;
    _Atomic(lrvm_t *)    tx_live;             /* its store while OPEN (tx.c I2) */
    atomic_int           tx_parked;           /* PARKED: committed, its segments
                                                 kept for its owner (tx.c) */
};

/* lrvm_set_range's work for a range the caller (heap.c) checked: TX's
 * tracker captures [off, off+len) of SEG. Store lock held and TX claimed,
 * or TX's owner in a hook's tail_commit. */
int  lrvm__tx_capture(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len);
/* Abort every open transaction of S (close). */
void lrvm__tx_abort_all(lrvm_t *s);
/* A part above tx.c (the heap) that keeps state for a transaction is
 * told, under the store lock, before the transaction's changes are
 * logged (commit: it may declare and change more, in the transaction;
 * its error fails the commit, and what it changed is put back) and when
 * the transaction ends (end: COMMITTED 1, or 0 when aborted, after its
 * declared bytes were put back). Its state stays with the handle while
 * the transaction is parked (tx.c) and goes when the handle ends (drop,
 * store lock held). The owner's commit at the log's tail asks it first,
 * without the lock (tail_commit: 1 when it declared and changed what
 * commit would, 0 when it cannot there and changed nothing, <0 when it
 * failed halfway), and tells it how that went (tail_end, after anything
 * it declared was put back when the commit did not go to the tail). One
 * hook a transaction; explicit mode's shared transactions only (the
 * tracker's rollback). */
struct lrvm__tx_hook {
    int  (*commit)(lrvm_tx_t *tx, void *arg);
    void (*end)(lrvm_tx_t *tx, void *arg, int committed);
    int  (*tail_commit)(lrvm_tx_t *tx, void *arg);
    void (*tail_end)(lrvm_tx_t *tx, void *arg, int committed);
    void (*drop)(lrvm_tx_t *tx, void *arg);
};
void lrvm__tx_set_hook(lrvm_tx_t *tx, const struct lrvm__tx_hook *hook, void *arg);
/* The hooks' gate (tx.c, "The hooks' gate"). A hook's tail_commit enters
 * it before it reads or changes any word that calls under the store lock
 * change too, and its tail_end leaves it once the commit's records are
 * placed; whatever changes such words under the store lock shuts it
 * first, which waits for those inside to leave. It opens again where
 * the log's tail does (lrvm__tx_tail_open). */
int  lrvm__tx_gate_enter(lrvm_t *s);
void lrvm__tx_gate_leave(lrvm_t *s);
void lrvm__tx_gate_shut(lrvm_t *s);
/* A call about to let the store's lock go, with every change it made to
 * the log's buffer or to words a hook changes at the tail logged, opens
 * the log's tail (log.c) and the hooks' gate again. */
void lrvm__tx_tail_open(lrvm_t *s);
/* This thread's OPEN shared transaction in S, entered as its owner runs a
 * call of it without the store's lock (tx.c I5), or NULL; the caller
 * leaves with lrvm__tx_owned_leave. */
lrvm_tx_t *lrvm__tx_owned_enter(lrvm_t *s);
void lrvm__tx_owned_leave(void);
/* The open shared transaction that this thread began last and that holds
 * SEG, not being committed; NULL if none. Store lock held. */
lrvm_tx_t *lrvm__tx_shared_here(lrvm_t *s, const struct lrvm__seg *seg);
/* A shared transaction of lrvm's own on SEG, begun and ended under the
 * store lock (the heap changes its own words in it while shared
 * transactions hold the segment): *OUT, or LRVM_ENOMEM, LRVM_EEXIST
 * (an lrvm_begin transaction holds SEG). lrvm__tx_end_own commits it
 * without a flush when COMMIT, else (or when the commit fails) aborts it;
 * returns the commit's result. Neither counts as a commit or an abort in
 * the store's stats (the records count, in bytes_logged and log_records). */
int  lrvm__tx_begin_own(lrvm_t *s, struct lrvm__seg *seg, lrvm_tx_t **out);
int  lrvm__tx_end_own(lrvm_tx_t *tx, int commit);
/* The transaction begun alone that holds SEG, claimed (lrvm__tx_claim),
 * or NULL: one parked there is ended. Store lock held. */
lrvm_tx_t *lrvm__seg_claim(lrvm_t *s, struct lrvm__seg *seg);
/* Every transaction its owner committed and parked that holds SEG ends
 * (shared ones too): what stays holds it open. Store lock held. */
void lrvm__seg_unpark(lrvm_t *s, struct lrvm__seg *seg);
/* The caller holds S's lock and is about to touch TX's declared ranges:
 * make sure no lock-free lrvm_set_range of TX's owner runs meanwhile. */
void lrvm__tx_claim(lrvm_tx_t *tx);
/* lrvm_set_range, and when BASE is not NULL the range must also lie in
 * the segment mapped at BASE (the classic rvm_about_to_modify). */
int  lrvm__set_range_in(lrvm_tx_t *tx, const void *base, void *addr, size_t len);

/* -------------------------------------------------------------- api.c */

/* The store: api.c's, but for the fields each part below owns. Every
 * part may read mu, dirfd, tracker and truncate_threshold, which api.c
 * sets at open and never changes; each part counts into stats what it
 * does (commits, fsyncs, truncations...). */
struct lrvm {
    pthread_mutex_t      mu;               /* first: store_new zeroes what follows */
    char                *dir;
    int                  dirfd;
    int                  lockfd;
    const struct lrvm__tracker *tracker;   /* chosen at open, for good */
    size_t               truncate_threshold; /* the option: 0 for lrvm's default */
    struct lrvm__log     log;              /* log.c's */
    struct lrvm__seg   **segs;             /* segment.c's table; the automatic */
    size_t               nsegs, segs_cap;  /*   trackers read it (the ambient epoch) */
    size_t               seg_bytes;        /* segment.c's: the bytes of the segments
                                              mapped */
    lrvm_tx_t           *txs;              /* tx.c's: the open transactions */
    char                 gate_pad0[LRVM__CACHE_LINE];
    atomic_uint          hook_gate;        /* tx.c's: the hooks' gate, 1 while shut; */
    char                 gate_pad1[LRVM__CACHE_LINE];  /* read at each commit at the
                                              tail, so on a line of its own */
    struct lrvm_heap    *heaps;            /* heap.c's: the heaps opened */
    lrvm_stats_t         stats;
    _Atomic uint64_t     faults;           /* (H) the mprotect tracker's: pages */
    _Atomic uint64_t     captured;         /*   captured by a fault, by any means */
    size_t               resident_limit;   /* bytes of pages kept past which a commit
                                              truncates and gives pages back */
    size_t               res_private;      /* resident.c's: pages kept (I2), */
    size_t               res_spare;        /*   and second copies kept */
    size_t               res_kept;         /* tx.c's: pages left after the last release */
    unsigned char       *apply_mem;        /* recover.c's: its batch, kept between */
    size_t               apply_size;       /*   truncations; the running one's */
    struct lrvm__trunc_job trunc;          /* recover.c's: the truncation beside the
                                              commits */
    uint64_t             discard_after;    /* api.c's, for recovery at open: 0, or
                                              where the log is to end on purpose */
    int                  recovering;       /* api.c's: lrvm_open's recovery runs */
    struct lrvm         *pool_next;        /* api.c's: the pool of closed stores */
};


/* lrvm_open, but recovery takes the log as ending at DISCARD_AFTER (when
 * not 0) and drops the records after it: lrvmutl recover --discard-after,
 * for a person who keeps a damaged log's prefix on purpose. */
int lrvm__open_discarding(const char *dir, const lrvm_options_t *opts, uint64_t discard_after,
                          lrvm_t **out);

/* ----------------------------------------------------------- heap.c */

/* Free the handle of the heap on SEG (every heap when SEG is NULL):
 * lrvm_unmap and lrvm_close. */
void lrvm__heap_forget(lrvm_t *s, const struct lrvm__seg *seg);
/* 0 when the heap's blocks and free list are consistent, else
 * LRVM_ECORRUPT (heap.c I1-I3). */
int  lrvm__heap_check(const lrvm_heap_t *h);
/* What the header of the segment file FD says of its heap (lrvmutl): 1
 * and *OUT filled when the file is a heap, 0 when it is not, or <0. */
struct lrvm__heap_info {
    uint64_t version, base, size, allocated, root;
};
int  lrvm__heap_describe(int fd, struct lrvm__heap_info *out);
/* lrvm__heap_check on the LEN bytes of a heap's file mapped at IMAGE (any
 * address: the heap's words are offsets), and its usage when it passes. */
int  lrvm__heap_check_image(const void *image, uint64_t len, uint64_t *used_blocks,
                            uint64_t *free_bytes);
/* What a walk of a heap's image reports (lrvmutl heap). The walk trusts
 * no word: a link is checked before it is followed, and a damaged heap
 * ends the walk of its blocks or of its lists early, with the place and
 * the reason, but is never read outside the image. */
struct lrvm__heap_walk {
    void *arg;
    /* Each block from the first to the epilogue, in address order: the
     * offset of its header word, its size (header included), USED. */
    int (*block)(void *arg, uint64_t off, uint64_t size, int used);
    /* Each bin that holds a block, with the sizes it is for, then each
     * block on its list, in list order (a version 1 heap: one list, 0). */
    int (*bin)(void *arg, unsigned bin, uint64_t min_size, uint64_t max_size);
    int (*free_block)(void *arg, unsigned bin, uint64_t off, uint64_t size);
    /* Filled in: the header, and where and why a walk ended early (a
     * NULL reason: it did not). */
    struct lrvm__heap_info info;
    uint64_t    blocks_stop;
    const char *blocks_why;
    uint64_t    list_stop;          /* the link that could not be followed */
    unsigned    list_stop_bin;
    const char *list_why;
};
/* Walk the heap in the LEN bytes at IMAGE (8-aligned), calling W's
 * callbacks (each may be NULL): 1 when the image is a heap (its magic),
 * 0 when it is not, or the first callback's error. Says nothing of I1-I3:
 * lrvm__heap_check_image does. */
int  lrvm__heap_walk_image(const void *image, uint64_t len, struct lrvm__heap_walk *w);
/* Used blocks and free bytes of a consistent heap (tests). */
void lrvm__heap_usage(const lrvm_heap_t *h, uint64_t *used_blocks, uint64_t *free_bytes);

#endif /* LRVM_INTERNAL_H */
