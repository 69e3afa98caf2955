/*
 * track_uffd.c -- the userfaultfd tracker: automatic capture by
 * userfaultfd write-protection in async mode (Linux 6.7 and later), read
 * back with the PAGEMAP_SCAN ioctl.
 *
 * Owns: the process's userfaultfd and /proc/self/pagemap descriptors, and
 * for each segment its image (sg_shadow), the list of pages found written
 * (sg_state, sg_dirty) and the image bytes a commit replaced (sg_undo). Never:
 * raises or handles a signal; holds a byte of the image that is not the
 * epoch's starting state once a commit or abort has ended.
 *
 * Each segment is registered for write-protection in async mode; a page
 * is protected once a scan has listed it (register_range says why not
 * before). The kernel resolves a store to a protected page by itself,
 * with no message, and marks the page written; a kernel write into the
 * page (read(2) into a segment) is resolved the same way, and a first
 * store to a page never touched makes an unprotected copy, which reads as
 * written too. A scan (PAGEMAP_SCAN) lists the written pages of a
 * segment, and each run it finds is protected again at once
 * (UFFDIO_WRITEPROTECT); the pages go on the segment's list once
 * (PG_LISTED in sg_state[p], p in sg_dirty).
 *
 * Two ways to walk: while few of a segment's pages have been touched, a
 * scan asks for written pages that are present or swapped, and the
 * kernel skips the page tables never made, or freed since with the
 * pages given back (uf_giving; the tracker asks for a release once its
 * pages lie in too many tables, uf_crowded); once half the pages have
 * been listed (PG_SEEN), the segment is protected whole, every page then
 * has an entry, and a scan asks for written pages alone, which the
 * kernel walks about three times faster (doc/architecture.md).
 *
 * No message means no moment to copy a before-image, so each segment
 * keeps its image instead: a second MAP_PRIVATE mapping of its file, which
 * costs nothing for a page until the first commit that changes it
 * (lrvm_map truncates first, so the file holds every committed byte). The
 * image holds the page as the epoch that owns it began: what is
 * committed, plus the ambient runs lrvm_begin set aside when a transaction
 * took the segment. Commit scans the epoch's segments and compares each
 * listed page with its image; each run where they differ has the image's
 * bytes saved (sg_undo), is copied into the image and logged from there
 * (other threads may go on storing into an ambient page meanwhile, and
 * the log must hold exactly the bytes the image now has; a store the
 * comparison missed was made to a protected page, so the page is written
 * again, I1). A commit that fails puts the saved runs back; abort copies
 * the images of the listed pages back into the segment and scans again,
 * to protect them.
 *
 * Invariants
 *   I1 A page that differs from its image is written since the last scan
 *      (the kernel marks it) or on its segment's list.
 *   I2 The list holds each page once, and PG_LISTED marks exactly the
 *      listed pages; PG_SEEN every page listed since it last went back
 *      with no entry left (uf_giving), sg_seen of them, sg_table_seen[t]
 *      of them in the span of page table t, and sg_tables spans hold any.
 *   I3 sg_undo holds saved runs (sg_undo_n bytes) only between a
 *      commit's redo and its end (committed or commit_failed).
 *   I4 A segment registered in another process (a child of fork inherits
 *      no registration) lists every page before its next use: the child's
 *      stores until then were not tracked.
 *   I5 sg_quiet is -1 or the process's fault count read before the
 *      segment's last scan that succeeded began, or later while only
 *      lrvm's own copies faulted since (a commit's quiet window), and
 *      sg_quiet_mine the scanning thread's count read with it: a page
 *      written since then faulted after it was read (the scan found it,
 *      or the count has moved). A store that races with lrvm_begin may
 *      so fall into the transaction, as any ordering of the two allows.
 *   I6 PG_IMAGE marks a listed page whose image the epoch wrote (a
 *      private copy of the image page now exists).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "uffd_uapi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SCAN_VEC 64              /* regions one scan call returns at most */
#define UNDO_KEEP (1u << 20)     /* bytes of saved runs kept from one commit to the next */
#define CROWD_TABLES 128         /* spans listed since a release that ask for another */

enum { PG_LISTED = 1, PG_SEEN = 2, PG_IMAGE = 4 };  /* sg_state bits */

/* The process's descriptors, opened again in a child of fork. */
static pthread_mutex_t uf_mu = PTHREAD_MUTEX_INITIALIZER;
static int             uf_fd = -1, pm_fd = -1;
static long            uf_pid;
static size_t          page_size;
static size_t          span_pages;      /* pages one page table maps */

int lrvm__uffd_disabled;

/* A userfaultfd with write-protection in async mode, or -1: as a user
 * (kernel faults need no privilege here), then with every right the
 * process has, then through /dev/userfaultfd where it is readable. */
static int uffd_new(void)
{
    static const int tries[] = { UFFD_USER_MODE_ONLY, 0 };
    int fd = -1;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0] && fd < 0; i++)
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | tries[i]);
    if (fd < 0) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev >= 0) {
            fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
            close(dev);
        }
    }
    if (fd < 0)
        return -1;
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_WP_ASYNC,
    };
    if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The descriptors of this process; 0, or LRVM_EMODE. Called with uf_mu. */
static int uf_open_locked(void)
{
    long pid = (long)getpid();
    if (uf_pid == pid)
        return uf_fd >= 0 ? 0 : LRVM_EMODE;
    if (uf_fd >= 0)
        close(uf_fd);                   /* the parent's, inherited */
    if (pm_fd >= 0)
        close(pm_fd);
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    span_pages = page_size / sizeof(uint64_t);
    uf_pid = pid;
    uf_fd = uffd_new();
    pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (uf_fd < 0 || pm_fd < 0) {
        if (uf_fd >= 0)
            close(uf_fd);
        if (pm_fd >= 0)
            close(pm_fd);
        uf_fd = pm_fd = -1;
        return LRVM_EMODE;
    }
    return 0;
}

static int uf_open(void)
{
    lrvm__lock(&uf_mu, LRVM__RANK_LEAF);
    int rc = uf_open_locked();
    lrvm__unlock(&uf_mu);
    return rc;
}

/* Register [addr, addr+len) for write-protection, protecting nothing yet:
 * a page with no page table entry reads the file (as its image does) and
 * its first store makes an unprotected private copy, which the next scan
 * lists and protects. Protecting the whole range instead would give every
 * page an entry (a marker), and every scan would walk them all. */
static int register_range(void *addr, size_t len)
{
    struct uffdio_register reg = {
        .range = { (uintptr_t)addr, len }, .mode = UFFDIO_REGISTER_MODE_WP,
    };
    return ioctl(uf_fd, UFFDIO_REGISTER, &reg);
}

/* One read of [start, end): the written pages' runs into V (at most
 * SCAN_VEC); their number, and *WALKED how far it got, or -errno. It
 * protects nothing: PM_SCAN_WP_MATCHING would, but it costs a TLB flush
 * for every page table it touches, where protect_runs costs one for each
 * run (doc/architecture.md, "the userfaultfd tracker"). WHOLE: every
 * page has an entry. */
static long scan_call(uintptr_t start, uintptr_t end, struct page_region *v, uintptr_t *walked,
                      int whole)
{
    struct pm_scan_arg a = {
        .size = sizeof a,
        .flags = PM_SCAN_CHECK_WPASYNC,
        .start = start, .end = end,
        .vec = (uintptr_t)v, .vec_len = SCAN_VEC,
        .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
    };
    /* A page with no entry reads as written, though it holds nothing of
     * its own: only pages in memory or in swap can differ from the file. */
    if (!whole)
        a.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    long n = ioctl(pm_fd, PAGEMAP_SCAN, &a);
    *walked = (uintptr_t)a.walk_end;
    return n < 0 ? -errno : n;
}

/* Protect again exactly the N runs a scan found written. A store into one
 * of them after the scan, before its protection, is not lost: the run is
 * listed, and the commit or begin reads its bytes after this returns. A
 * page outside the runs keeps its mark. */
static int protect_runs(const struct page_region *v, long n)
{
    for (long i = 0; i < n; i++) {
        struct uffdio_writeprotect wp = {
            .range = { v[i].start, v[i].end - v[i].start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        if (ioctl(uf_fd, UFFDIO_WRITEPROTECT, &wp) != 0)
            return -errno;
    }
    return 0;
}

/* Does the kernel give this process what the tracker needs? Asked once,
 * of a private mapping of a file of its own, as a segment is: a first
 * store is listed, its page protected, and a store to the protected page
 * is resolved by the kernel and listed again. */
static int probe(void)
{
    if (lrvm__uffd_disabled || uf_open() < 0)
        return 0;
    size_t len = page_size;
    int fd = memfd_create("lrvm-uffd-probe", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    struct page_region v[SCAN_VEC];
    uintptr_t walked, b = (uintptr_t)m, e = b + len;
    int ok = register_range(m, len) == 0 && scan_call(b, e, v, &walked, 0) == 0;
    m[0] = 1;
    ok = ok && scan_call(b, e, v, &walked, 0) == 1 && protect_runs(v, 1) == 0 &&
         scan_call(b, e, v, &walked, 0) == 0;
    m[0] = 2;                           /* the kernel resolves it and marks it */
    ok = ok && scan_call(b, e, v, &walked, 0) == 1;
    munmap(m, len);                     /* unregisters it too */
    return ok;
}

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int            usable;

static void probe_now(void)
{
    usable = probe();
}

int lrvm__uffd_usable(void)
{
    if (lrvm__uffd_disabled)
        return 0;
    pthread_once(&probe_once, probe_now);
    return usable;
}

/* ------------------------------------------------- the written pages */

/* The page table whose span holds page P of SEG, counted from the
 * segment's first: a table maps an aligned span of span_pages pages. */
static size_t table_of(const struct lrvm__seg *seg, size_t p)
{
    size_t span = span_pages * page_size;
    uintptr_t base = (uintptr_t)seg->sg_base;
    return (base + p * page_size) / span - base / span;
}

/* Page P of SEG is seen (PG_SEEN), or seen no more (keep I2). */
static void seen_add(struct lrvm__seg *seg, size_t p)
{
    seg->sg_seen++;
    seg->sg_tables += seg->sg_table_seen[table_of(seg, p)]++ == 0;
}

static void seen_drop(struct lrvm__seg *seg, size_t p)
{
    seg->sg_seen--;
    seg->sg_tables -= --seg->sg_table_seen[table_of(seg, p)] == 0;
}

/* List page P of SEG; COUNTED: in the store's faults and captures (a page
 * a scan found, not one listed only to be safe). */
static void list_page_as(struct lrvm__seg *seg, size_t p, int counted)
{
    unsigned char st = atomic_load_explicit(&seg->sg_state[p], memory_order_relaxed);
    if (!(st & PG_LISTED)) {
        atomic_store_explicit(&seg->sg_state[p], PG_LISTED | PG_SEEN, memory_order_relaxed);
        if (!(st & PG_SEEN))
            seen_add(seg, p);
        seg->sg_dirty[atomic_fetch_add(&seg->sg_ndirty, 1)] = (uint32_t)p;
        if (counted) {
            atomic_fetch_add(&seg->sg_store->faults, 1);
            atomic_fetch_add(&seg->sg_store->captured, 1);
        }
    }
}

static void list_page(struct lrvm__seg *seg, size_t p)
{
    list_page_as(seg, p, 1);
}

/* The process's page faults so far, all its threads', or -1. A store to
 * a protected page faults before it lands, and the kernel counts the
 * fault before the store resumes, so while this count stands still no
 * page can have been written. */
static long faults_of(int who)
{
    struct rusage ru;
    return getrusage(who, &ru) == 0 ? ru.ru_minflt + ru.ru_majflt : -1;
}

static long faults_so_far(void)
{
    return faults_of(RUSAGE_SELF);
}

/* The quiet window of the commit this thread is in, if any (below). */
static __thread int      win_open;
static __thread sigset_t win_was;

void (*lrvm__uffd_in_window)(void);

/* Every signal that can wait: a handler of this thread that stores into a
 * segment while lrvm runs in it must not pass for lrvm's own doing. */
static void block_signals(sigset_t *was)
{
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, was);
}

static int protect_whole(struct lrvm__seg *seg)
{
    struct uffdio_writeprotect wp = {
        .range = { (uintptr_t)seg->sg_base, seg->sg_maplen }, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
    };
    return ioctl(uf_fd, UFFDIO_WRITEPROTECT, &wp);
}

/* SEG is registered in this process, or made so: after a fork, every page
 * is listed (keeps I4). */
static int own(struct lrvm__seg *seg)
{
    int rc = uf_open();
    if (rc < 0 || seg->sg_uffd_pid == uf_pid)
        return rc;
    if (register_range(seg->sg_base, seg->sg_maplen) != 0 ||
        (seg->sg_whole && protect_whole(seg) != 0)) {
        LRVM__TRACE("%s: cannot write-protect the segment in this process: %s",
                    seg->sg_name, strerror(errno));
        return LRVM_EMODE;
    }
    seg->sg_uffd_pid = uf_pid;
    seg->sg_quiet = seg->sg_quiet_mine = -1;
    for (size_t p = 0; p < seg->sg_npages; p++)
        list_page(seg, p);
    return 0;
}

/* List the written pages of [start, end) of SEG and protect them; the
 * -errno of a scan that failed. */
static long scan_range(struct lrvm__seg *seg, uintptr_t start, uintptr_t end)
{
    struct page_region v[SCAN_VEC];
    uintptr_t base = (uintptr_t)seg->sg_base;
    while (start < end) {
        uintptr_t walked;
        long n = scan_call(start, end, v, &walked, seg->sg_whole);
        if (n < 0)
            return n;
        long err = protect_runs(v, n);
        if (err < 0)
            return err;
        for (long i = 0; i < n; i++)
            for (uintptr_t a = v[i].start; a < v[i].end; a += page_size)
                list_page(seg, (a - base) / page_size);
        if (n < SCAN_VEC || walked <= start)
            break;
        start = walked;
    }
    return 0;
}

/* List the pages of SEG written since the last scan, and protect them. A
 * mapping the program put over part of the segment (lrvm.h C11) fails the
 * scan, after it may have protected pages before it and lost their
 * marks: then every page of the segment's own is listed, as possibly
 * written (so abort restores them all from their images), the program's
 * are left alone, and the caller gets LRVM_EFAULT. */
static int scan(struct lrvm__seg *seg)
{
    int rc = own(seg);
    if (rc < 0)
        return rc;
    /* Nothing faulted since the last scan began: no page was written
     * since (I5), and the walk of every page table is saved. */
    long faults = faults_so_far();
    if (faults >= 0 && faults == seg->sg_quiet)
        return 0;
    long mine = win_open ? faults_of(RUSAGE_THREAD) : -1;
    uintptr_t base = (uintptr_t)seg->sg_base;
    long err = scan_range(seg, base, base + seg->sg_maplen);
    seg->sg_quiet = err == 0 ? faults : -1;
    seg->sg_quiet_mine = mine;
    /* Half the pages touched: the rest get their entries now. The whole
     * protection takes the marks of pages written since the walk, so
     * every page is listed, once (as after a fork). */
    if (err == 0 && !seg->sg_whole && seg->sg_seen >= seg->sg_npages / 2 &&
        protect_whole(seg) == 0) {
        seg->sg_whole = 1;
        for (size_t p = 0; p < seg->sg_npages; p++)
            list_page_as(seg, p, 0);
    }
    if (err == 0)
        return 0;
    LRVM__TRACE("%s: PAGEMAP_SCAN failed (%s): a mapping of the program's lies over the "
                "segment", seg->sg_name, strerror((int)-err));
    struct page_region v[SCAN_VEC];
    uintptr_t walked;
    for (size_t p = 0; p < seg->sg_npages; p++)
        if (scan_call(base + p * page_size, base + (p + 1) * page_size, v, &walked, 0) >= 0)
            list_page(seg, p);
    return LRVM_EFAULT;
}

/* Is all of SEG still mapped? A program may have unmapped a page (lrvm.h
 * C11), whose stores the scan cannot see: one msync over the segment,
 * which looks at the mappings only. The first commit to find the hole
 * fails with LRVM_EFAULT; later ones commit what is still mapped, as the
 * mprotect tracker does once the pages it had captured there are gone. */
static int page_mapped(const struct lrvm__seg *seg, size_t p)
{
    return msync(seg->sg_base + p * page_size, page_size, MS_ASYNC) == 0;
}

static int seg_mapped(struct lrvm__seg *seg)
{
    if (msync(seg->sg_base, seg->sg_maplen, MS_ASYNC) == 0)
        return 1;
    /* Listed pages that are gone have nothing left to read or restore. */
    size_t n = atomic_load(&seg->sg_ndirty), kept = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = seg->sg_dirty[k];
        if (page_mapped(seg, p))
            seg->sg_dirty[kept++] = (uint32_t)p;
        else
            atomic_store_explicit(&seg->sg_state[p], PG_SEEN, memory_order_relaxed);
    }
    atomic_store(&seg->sg_ndirty, kept);
    if (seg->sg_hole_told)
        return 1;
    LRVM__TRACE("%s: the program unmapped part of the segment: the commit fails", seg->sg_name);
    seg->sg_hole_told = 1;
    return 0;
}

/* The listed pages of SEG are private copies, which the store keeps;
 * those whose images the epoch wrote have private images too (I6). */
static void mark_listed(struct lrvm__seg *seg)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    for (size_t k = 0; k < n; k++) {
        size_t p = seg->sg_dirty[k];
        unsigned char st = atomic_load_explicit(&seg->sg_state[p], memory_order_relaxed);
        lrvm__res_mark(seg->sg_store, seg, p, 1, (st & PG_IMAGE) != 0);
    }
}

/* The epoch writes page P's image: it is private from now on (I6).
 * Returns whether the write makes the private copy (the store does not
 * count one yet), which faults. */
static int image_written(struct lrvm__seg *seg, size_t p)
{
    unsigned char st = atomic_load_explicit(&seg->sg_state[p], memory_order_relaxed);
    if (st & PG_IMAGE)
        return 0;
    atomic_store_explicit(&seg->sg_state[p], st | PG_IMAGE, memory_order_relaxed);
    return !lrvm__res_spare(seg, p);
}

static void unlist_all(struct lrvm__seg *seg)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&seg->sg_state[seg->sg_dirty[i]], PG_SEEN, memory_order_relaxed);
    atomic_store(&seg->sg_ndirty, 0);
}

/* Bytes of page P of SEG that lie in the segment. */
static size_t page_len(const struct lrvm__seg *seg, size_t p)
{
    size_t len = seg->sg_size - p * page_size;
    return len > page_size ? page_size : len;
}

/* ------------------------------------------------- segment life */

static void uf_detach(lrvm_t *s, struct lrvm__seg *seg);

/* Where to map SEG's image: at the segment's place in a page table's
 * span, so that a run given back covers the same tables in both mappings
 * (resident.c frees whole tables). NULL: anywhere. A mapping made by
 * another thread between the look and the map takes the place first;
 * then the image goes anywhere. */
static void *image_place(const struct lrvm__seg *seg)
{
    size_t span = span_pages * page_size, len = seg->sg_maplen + 2 * span;
    void *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    munmap(r, len);
    uintptr_t at = ((uintptr_t)r + span - 1) / span * span;
    return (void *)(at + (uintptr_t)seg->sg_base % span);
}

static int uf_attach(lrvm_t *s, struct lrvm__seg *seg)
{
    int rc = uf_open();
    if (rc < 0)
        return rc;
    seg->sg_npages = seg->sg_maplen / page_size;
    if (seg->sg_npages > UINT32_MAX)
        return LRVM_EINVAL;
    seg->sg_state = calloc(seg->sg_npages, 1);
    seg->sg_dirty = malloc(seg->sg_npages * sizeof *seg->sg_dirty);
    seg->sg_table_seen = calloc(seg->sg_npages ? table_of(seg, seg->sg_npages - 1) + 1 : 1,
                                sizeof *seg->sg_table_seen);
    seg->sg_uffd_pid = 0;
    seg->sg_hole_told = 0;
    seg->sg_quiet = seg->sg_quiet_mine = -1;
    seg->sg_image_new = 0;
    seg->sg_seen = seg->sg_tables = seg->sg_tables_kept = 0;
    seg->sg_whole = 0;
    rc = LRVM_ENOMEM;
    if (seg->sg_state == NULL || seg->sg_dirty == NULL || seg->sg_table_seen == NULL)
        goto fail;
    void *image;
    if ((rc = lrvm__io_map_segment(seg->sg_fd, seg->sg_maplen, image_place(seg), &image)) < 0 &&
        (rc = lrvm__io_map_segment(seg->sg_fd, seg->sg_maplen, NULL, &image)) < 0)
        goto fail;
    seg->sg_shadow = image;
    if (register_range(seg->sg_base, seg->sg_maplen) != 0) {
        LRVM__TRACE("%s: cannot write-protect the segment: %s", seg->sg_name, strerror(errno));
        rc = LRVM_EMODE;
        goto fail;
    }
    seg->sg_uffd_pid = uf_pid;
    return 0;
fail:
    uf_detach(s, seg);
    return rc;
}

static void uf_detach(lrvm_t *s, struct lrvm__seg *seg)
{
    (void)s;
    if (seg->sg_uffd_pid != 0 && seg->sg_uffd_pid == uf_pid) {
        struct uffdio_range r = { (uintptr_t)seg->sg_base, seg->sg_maplen };
        (void)ioctl(uf_fd, UFFDIO_UNREGISTER, &r);
    }
    if (seg->sg_shadow != NULL)
        lrvm__io_unmap(seg->sg_shadow, seg->sg_maplen);
    free(seg->sg_state);
    free(seg->sg_dirty);
    free(seg->sg_table_seen);
    free(seg->sg_undo);
    lrvm__stash_free(seg);
    seg->sg_shadow = seg->sg_undo = NULL;
    seg->sg_state = NULL;
    seg->sg_dirty = NULL;
    seg->sg_table_seen = NULL;
    seg->sg_undo_cap = seg->sg_undo_n = 0;
    seg->sg_uffd_pid = 0;
}

/* ------------------------------------------------- the epochs */

/* A commit's quiet window. A commit copies each page it found written
 * into the page's image, and the first copy into an image page faults (a
 * private copy is made), which moves the fault count that the next scan
 * reads: lrvm_begin would walk the segment again though no page of the
 * program's was written. So a commit whose segment made image pages last
 * time blocks this thread's signals from before its scans to the end of
 * its copies, and then, if every fault since a segment's scan began was
 * this thread's, lrvm's own, takes the counts of now for the segment's
 * quiet ones (I5). The window costs four system calls; a commit that
 * made no image page opens none. */
static void window_open(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    int want = 0;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg)
        want |= seg->sg_image_new;
    if (want && !win_open) {
        block_signals(&win_was);
        win_open = 1;
    }
}

static void window_close(lrvm_t *s, lrvm_tx_t *tx, int quiet)
{
    if (!win_open)
        return;
    if (lrvm__uffd_in_window != NULL)
        lrvm__uffd_in_window();
    long all = quiet ? faults_so_far() : -1, mine = quiet ? faults_of(RUSAGE_THREAD) : -1;
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        if (all >= 0 && mine >= 0 && seg->sg_quiet >= 0 && seg->sg_quiet_mine >= 0 &&
            all - seg->sg_quiet == mine - seg->sg_quiet_mine) {
            seg->sg_quiet = all;
            seg->sg_quiet_mine = mine;
        }
    }
    win_open = 0;
    pthread_sigmask(SIG_SETMASK, &win_was, NULL);
}

/* lrvm_begin: the segments' ambient runs are set aside, and their images
 * take them as set aside, so that the transaction's diff holds its own
 * bytes only (a store after the comparison was made to a protected page,
 * and falls into the transaction, I1). */
static int uf_begin(lrvm_tx_t *tx)
{
    for (int i = 0; i < tx->tx_nsegs; i++) {
        struct lrvm__seg *seg = tx->tx_segs[i];
        size_t had = seg->sg_nstash;
        int rc = scan(seg);
        if (rc == 0 && !seg_mapped(seg))
            rc = LRVM_EFAULT;
        size_t n = atomic_load(&seg->sg_ndirty);
        for (size_t k = 0; k < n && rc == 0; k++) {
            size_t p = seg->sg_dirty[k];
            rc = lrvm__page_diff(seg, p * page_size, seg->sg_base + p * page_size,
                                 seg->sg_shadow + p * page_size, page_len(seg, p),
                                 lrvm__stash_add, NULL);
        }
        if (rc < 0) {
            lrvm__stash_drop(seg, had);     /* the pages stay ambient and listed */
            return rc;
        }
        for (size_t k = had; k < seg->sg_nstash; k++) {
            const struct lrvm__stash_run *r = &seg->sg_stash[k];
            (void)image_written(seg, r->sr_off / page_size);
            memcpy(seg->sg_shadow + r->sr_off, r->sr_data, r->sr_len);
        }
        mark_listed(seg);
        unlist_all(seg);
    }
    return 0;
}

/* lrvm_set_range: every store is seen by the scan; nothing to do early. */
static int uf_capture(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len)
{
    (void)tx, (void)seg, (void)off, (void)len;
    return 0;
}

static int uf_commit_start(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    int rc = 0;
    window_open(s, tx);
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        int r = scan(seg);
        if (r == 0 && !seg_mapped(seg))
            r = LRVM_EFAULT;
        if (rc == 0)
            rc = r;
    }
    return rc;
}

struct emit_to {
    lrvm__emit_fn *emit;
    void          *arg;
};

/* The saved runs of a large commit are not kept for the next one: the
 * store's memory between transactions is bounded (resident.c). */
static void forget_undo(struct lrvm__seg *seg)
{
    if (seg->sg_undo_cap > UNDO_KEEP) {
        free(seg->sg_undo);
        seg->sg_undo = NULL;
        seg->sg_undo_cap = 0;
    }
}

/* A run of image bytes a commit replaced: where, then its bytes, padded
 * so that the next header is aligned. */
struct undo_run {
    size_t ur_off, ur_len;
};

static size_t undo_size(size_t len)
{
    size_t a = sizeof(struct undo_run);
    return sizeof(struct undo_run) + (len + a - 1) / a * a;
}

/* Save the image's bytes at [OFF, OFF + LEN) of SEG (keeps I3). */
static int undo_save(struct lrvm__seg *seg, size_t off, size_t len)
{
    size_t need = seg->sg_undo_n + undo_size(len);
    if (need > seg->sg_undo_cap) {
        size_t cap = seg->sg_undo_cap ? seg->sg_undo_cap : 4096;
        while (cap < need)
            cap *= 2;
        unsigned char *u = realloc(seg->sg_undo, cap);
        if (u == NULL)
            return LRVM_ENOMEM;
        seg->sg_undo = u;
        seg->sg_undo_cap = cap;
    }
    struct undo_run *r = (struct undo_run *)(void *)(seg->sg_undo + seg->sg_undo_n);
    r->ur_off = off;
    r->ur_len = len;
    memcpy(r + 1, seg->sg_shadow + off, len);
    seg->sg_undo_n = need;
    return 0;
}

/* A run where a listed page differs from its image: the image's bytes
 * saved, the page's copied in, and logged from the image. A copy that
 * makes an image page faults, which the next commit's quiet window must
 * hear of (sg_image_new). */
static int take_run(void *arg, struct lrvm__seg *seg, size_t off, size_t len)
{
    const struct emit_to *to = arg;
    int rc = undo_save(seg, off, len);
    if (rc < 0)
        return rc;
    seg->sg_image_new |= image_written(seg, off / page_size);
    memcpy(seg->sg_shadow + off, seg->sg_base + off, len);
    return to->emit(to->arg, seg, off, seg->sg_shadow + off, len);
}

/* Take the runs of SEG's listed pages into their images, and emit them. */
static int redo_seg(struct lrvm__seg *seg, struct emit_to *to)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    seg->sg_image_new = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = seg->sg_dirty[k];
        int rc = lrvm__page_diff(seg, p * page_size, seg->sg_base + p * page_size,
                                 seg->sg_shadow + p * page_size, page_len(seg, p), take_run, to);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int uf_redo(lrvm_t *s, lrvm_tx_t *tx, lrvm__emit_fn *emit, void *arg)
{
    struct emit_to to = { emit, arg };
    int rc = tx == NULL ? lrvm__stash_emit(s, emit, arg) : 0;
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg)
        if (rc == 0)
            rc = redo_seg(seg, &to);
    window_close(s, tx, rc == 0);
    return rc;
}

/* The scan protected the pages already. */
static void uf_seal(lrvm_t *s, lrvm_tx_t *tx)
{
    (void)s, (void)tx;
}

static void uf_committed(lrvm_t *s, lrvm_tx_t *tx)
{
    if (tx == NULL)
        for (size_t i = 0; i < s->nsegs; i++)
            lrvm__stash_drop(s->segs[i], 0);
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        if (tx != NULL)
            lrvm__stash_refresh(seg);
        seg->sg_undo_n = 0;
        forget_undo(seg);
        mark_listed(seg);
        unlist_all(seg);
    }
}

/* The commit failed: the images go back to the epoch's start, and the
 * pages stay listed, for a commit again or an abort. */
static void uf_commit_failed(lrvm_t *s, lrvm_tx_t *tx)
{
    window_close(s, tx, 0);
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        for (size_t at = 0; at < seg->sg_undo_n;) {
            const struct undo_run *r = (const void *)(seg->sg_undo + at);
            memcpy(seg->sg_shadow + r->ur_off, r + 1, r->ur_len);
            at += undo_size(r->ur_len);
        }
        seg->sg_undo_n = 0;
        forget_undo(seg);
    }
}

/* Put back the images of every page written in TX, protect them again. */
static void uf_abort(lrvm_tx_t *tx)
{
    for (int i = 0; i < tx->tx_nsegs; i++) {
        struct lrvm__seg *seg = tx->tx_segs[i];
        (void)scan(seg);
        /* A page the program unmapped (C11) has nothing to restore. */
        int whole = msync(seg->sg_base, seg->sg_maplen, MS_ASYNC) == 0;
        size_t n = atomic_load(&seg->sg_ndirty);
        for (size_t k = 0; k < n; k++) {
            size_t p = seg->sg_dirty[k];
            if (whole || page_mapped(seg, p))
                memcpy(seg->sg_base + p * page_size, seg->sg_shadow + p * page_size,
                       page_len(seg, p));
        }
        (void)scan(seg);                /* protect what the copies wrote */
        mark_listed(seg);
        unlist_all(seg);
    }
}

/* ------------------------------------------------- giving pages back */

/* An image holds committed bytes, and goes once the file holds them
 * (resident.c checks that); a private copy of the segment goes only when
 * the scan just before found it unwritten and nothing can write it until
 * it is gone: the kernel resolves stores by itself, with no message, so
 * another thread's store landing between the scan and the release would
 * be lost. So private copies go only while this is the program's one
 * thread, lrvm's own aside (lrvm.h C14). A segment with runs set aside
 * keeps both: its pages and images hold ambient bytes the file does not. */
static int uf_may(void *arg, struct lrvm__seg *seg, size_t p, unsigned what)
{
    const int *alone = arg;
    if (seg->sg_nstash > 0)
        return 0;
    if (what == LRVM__RES_SPARE)
        return 1;
    return *alone && !(atomic_load_explicit(&seg->sg_state[p], memory_order_relaxed) & PG_LISTED);
}

/* A private copy given back while protected leaves a marker in its
 * entry, so a page table once made stays, and every later scan walks it.
 * Its protection is taken off first (uf_may allows only pages protected
 * by the scan just before, nothing stores meanwhile): the entry goes
 * with the page, a page table left empty goes too (Linux 6.14 and later
 * free it at MADV_DONTNEED), and the page is as one never touched, whose
 * first store makes a private copy the next scan lists. Not in a segment
 * protected whole, whose scan takes a page with no entry for written; if
 * the call fails, the marker stays, which is safe. */
static void uf_giving(void *arg, struct lrvm__seg *seg, size_t first, size_t n)
{
    (void)arg;
    if (seg->sg_whole)
        return;
    struct uffdio_writeprotect wp = {
        .range = { (uintptr_t)seg->sg_base + first * page_size, n * page_size }, .mode = 0,
    };
    if (ioctl(uf_fd, UFFDIO_WRITEPROTECT, &wp) != 0)
        return;
    for (size_t p = first; p < first + n; p++) {          /* keeps I2 */
        if (atomic_load_explicit(&seg->sg_state[p], memory_order_relaxed) & PG_SEEN) {
            atomic_store_explicit(&seg->sg_state[p], 0, memory_order_relaxed);
            seen_drop(seg, p);
        }
    }
}

/* A page given back leaves no entry (uf_giving), or a marker in a
 * segment protected whole, so its next store is listed as a first one;
 * an image given back reads the file. */
static int uf_release(lrvm_t *s, struct lrvm__seg *seg)
{
    /* A signal handler of this thread could store in between, too. */
    sigset_t was;
    block_signals(&was);
    int alone = own(seg) == 0 && lrvm__io_program_alone() && scan(seg) == 0;
    struct lrvm__res_pass pass = { .spare_in_file = 1, .may = uf_may, .giving = uf_giving,
                                   .span = seg->sg_whole ? 0 : span_pages,
                                   .arg = &alone };
    int rc = lrvm__res_release(s, seg, &pass);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    seg->sg_tables_kept = seg->sg_tables;
    return rc;
}

/* Every scan walks each page table that holds an entry, whether or not a
 * page in it was written: a program that touches pages far apart makes a
 * table for nearly each, and its commits slow with every one. Pages that
 * went back with their tables take that walk away (uf_giving), so once
 * CROWD_TABLES more spans than the last release left hold pages, the
 * tracker asks for a truncation and a release, though the pages are well
 * under the resident limit. A segment protected whole keeps its tables. */
static int uf_crowded(const lrvm_t *s)
{
    size_t more = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        const struct lrvm__seg *seg = s->segs[i];
        if (!seg->sg_whole && seg->sg_tables > seg->sg_tables_kept)
            more += seg->sg_tables - seg->sg_tables_kept;
    }
    return more > CROWD_TABLES;
}

#ifdef LRVM_DEBUG
/* I2 for the epoch's segments. */
static void uf_check(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        size_t n = atomic_load(&seg->sg_ndirty), marked = 0, seen = 0;
        LRVM__ASSERT(n <= seg->sg_npages);
        for (size_t p = 0; p < seg->sg_npages; p++) {
            unsigned char st = atomic_load(&seg->sg_state[p]);
            marked += (st & PG_LISTED) != 0;
            seen += (st & PG_SEEN) != 0;
            LRVM__ASSERT(!(st & PG_LISTED) || (st & PG_SEEN));
            LRVM__ASSERT(!(st & PG_IMAGE) || (st & PG_LISTED));          /* I6 */
        }
        LRVM__ASSERT(marked == n && seen == seg->sg_seen);
        size_t spans = seg->sg_npages ? table_of(seg, seg->sg_npages - 1) + 1 : 0, tables = 0;
        size_t *in = calloc(spans ? spans : 1, sizeof *in);
        LRVM__ASSERT(in != NULL);
        for (size_t p = 0; p < seg->sg_npages; p++)
            in[table_of(seg, p)] += (atomic_load(&seg->sg_state[p]) & PG_SEEN) != 0;
        for (size_t t = 0; t < spans; t++) {
            LRVM__ASSERT(in[t] == seg->sg_table_seen[t]);
            tables += in[t] > 0;
        }
        free(in);
        LRVM__ASSERT(tables == seg->sg_tables);
        for (size_t k = 0; k < n; k++)
            LRVM__ASSERT(seg->sg_dirty[k] < seg->sg_npages &&
                         (atomic_load(&seg->sg_state[seg->sg_dirty[k]]) & PG_LISTED));
        LRVM__ASSERT(seg->sg_undo_n == 0);                              /* I3 */
    }
}
#endif

const struct lrvm__tracker lrvm__track_uffd = {
    .name = "uffd",
    .mode = LRVM_TRACK_UFFD,
    .ambient = 1,
    .owner_fast = 0,
    .shared = 0,
    .attach = uf_attach,
    .detach = uf_detach,
    .begin = uf_begin,
    .capture = uf_capture,
    .commit_start = uf_commit_start,
    .redo = uf_redo,
    .seal = uf_seal,
    .committed = uf_committed,
    .commit_failed = uf_commit_failed,
    .abort = uf_abort,
    .release = uf_release,
    .crowded = uf_crowded,
#ifdef LRVM_DEBUG
    .check = uf_check,
#endif
};
