/*
 * check_resident.c -- bounded memory: pages kept after their commits are
 * given back once the files hold their bytes, and never a page an open
 * transaction or the ambient epoch owns. Each test runs on every tracker
 * this machine has (explicit, mprotect, and userfaultfd where offered).
 * Whether a page is a private copy or reads the file is asked of the
 * kernel (/proc/self/pagemap); crashes among released pages are
 * lrvm-crashtest's (check_util, --resident-limit).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const int sanitized = LRVM__ASAN || LRVM__TSAN;

#define PAGE  4096
#define LIMIT ((size_t)1 << 20)                 /* the least lrvm_open takes */
#define LIMIT_PAGES (LIMIT / PAGE)

static const int trackers[] = { LRVM_TRACK_EXPLICIT, LRVM_TRACK_MPROTECT, LRVM_TRACK_UFFD };

static const char *tracker_name(int t)
{
    return t == LRVM_TRACK_EXPLICIT ? "explicit" : t == LRVM_TRACK_MPROTECT ? "mprotect" : "uffd";
}

/* A number of this process's /proc/self/status, read with FORMAT (its
 * name, then %ld), or -1. */
static long status_field(const char *format)
{
    char buf[256];
    long n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    while (n < 0 && fgets(buf, sizeof buf, f) != NULL)
        if (sscanf(buf, format, &n) != 1)
            n = -1;
    fclose(f);
    return n;
}

static long threads_now(void)
{
    return status_field("Threads: %ld");
}

/* Can tracker T run the tests that expect every page to go back? The
 * userfaultfd tracker gives private copies back only in a process of one
 * thread (lrvm.h C14), and ThreadSanitizer starts a thread of its own. */
static int offered(int t)
{
    if (t != LRVM_TRACK_UFFD)
        return 1;
    if (!tu_uffd_offered())
        return 0;
    if (threads_now() != 1) {
        printf("resident: the userfaultfd tracker's cases skipped: this process runs %ld "
               "threads\n", threads_now());
        return 0;
    }
    return 1;
}

static lrvm_t *open_limited(int tracking)
{
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = (size_t)1 << 34,
                         .resident_limit = LIMIT };
    return tu_open(NULL, &o);
}

static void setup(void)
{
    unsetenv("LRVM_TRACKING");
    lrvm__io_hold(0);
}

/* The pagemap entry of the page at ADDR. */
static uint64_t pagemap_entry(const void *addr)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    uint64_t e = 0;
    off_t at = (off_t)((uintptr_t)addr / PAGE * sizeof e);
    ck_assert_int_eq(pread(fd, &e, sizeof e, at), (ssize_t)sizeof e);
    close(fd);
    return e;
}

/* Is the page at ADDR in memory as a copy of this process's own (not the
 * file's page in the page cache)? Bits 63 (present) and 61 (file page or
 * shared) of its pagemap entry. */
static int private_copy(const void *addr)
{
    uint64_t e = pagemap_entry(addr);
    return (e >> 63 & 1) && !(e >> 61 & 1);
}

/* Does the entry of the page at ADDR say write-protected by userfaultfd
 * (bit 57), as a marker left in place of a page does? */
static int uffd_marked(const void *addr)
{
    return (int)(pagemap_entry(addr) >> 57 & 1);
}

static size_t kept(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return (size_t)(st.pages_private + st.pages_shadow);
}

static uint64_t released(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return st.pages_released;
}

/* How store_tx begins: lrvm_begin, or lrvm_begin_shared for a test that
 * says so (explicit mode). */
static int (*begin_tx)(lrvm_t *, int, void *const *, lrvm_tx_t **) = lrvm_begin;

/* One transaction on SEG (mapped at BASE) that stores V at byte OFF. */
static void store_tx(lrvm_t *s, int tracking, unsigned char *base, size_t off, uint64_t v)
{
    lrvm_tx_t *tx;
    ck_assert_int_eq(begin_tx(s, 1, (void *const *)&base, &tx), 0);
    if (tracking == LRVM_TRACK_EXPLICIT)
        ck_assert_int_eq(lrvm_set_range(tx, base + off, sizeof v), 0);
    memcpy(base + off, &v, sizeof v);
    ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
}

static uint64_t word_at(const unsigned char *base, size_t off)
{
    uint64_t v;
    memcpy(&v, base + off, sizeof v);
    return v;
}

/* ------------------------------------------------------------ tests */

/* A page committed long ago reads its committed bytes back from the file
 * once given back, and the pages kept stay under the hard limit (the
 * limit and a quarter, plus what the last transaction added) after every
 * commit: past the limit a truncation starts beside the commits, they
 * slow to its pace, and past the hard limit they wait for it (tx.c,
 * after_commit). */
START_TEST(test_resident_released_page_reads_the_file)
{
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *a = tu_map(s, "a", (size_t)16 << 20);
        for (size_t i = 0; i < 3 * LIMIT_PAGES; i++) {
            store_tx(s, trackers[t], a, i * PAGE + 8, i + 1);
            ck_assert_msg(kept(s) <= LIMIT_PAGES + LIMIT_PAGES / 4 + 2,
                          "%s: %zu pages kept after commit %zu",
                          tracker_name(trackers[t]), kept(s), i);
        }
        ck_assert_msg(released(s) > 0, "%s: nothing given back", tracker_name(trackers[t]));
        ck_assert_msg(word_at(a, 8) == 1, "%s", tracker_name(trackers[t]));
        ck_assert_msg(!private_copy(a), "%s: page 0 is still a private copy",
                      tracker_name(trackers[t]));
        /* Every committed word reads right, given back or not. */
        for (size_t i = 0; i < 3 * LIMIT_PAGES; i++)
            ck_assert_uint_eq(word_at(a, i * PAGE + 8), i + 1);
        ck_assert_uint_eq(word_at(a, 0), 0);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_limited(trackers[t]);
        a = tu_map(s, "a", (size_t)16 << 20);
        for (size_t i = 0; i < 3 * LIMIT_PAGES; i++)
            ck_assert_uint_eq(word_at(a, i * PAGE + 8), i + 1);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* The userfaultfd tracker gives a page back with no marker left in its
 * entry, so that a page table of a part of the segment no longer used
 * goes too, and the scans walk only what the program touched since
 * (track_uffd.c, uf_giving); a store to the page is captured as a first
 * one and committed. */
START_TEST(test_resident_uffd_release_leaves_no_entry)
{
    if (!offered(LRVM_TRACK_UFFD))
        return;
    lrvm_t *s = open_limited(LRVM_TRACK_UFFD);
    unsigned char *a = tu_map(s, "a", (size_t)16 << 20);
    for (size_t i = 0; i < 3 * LIMIT_PAGES; i++)
        store_tx(s, LRVM_TRACK_UFFD, a, i * PAGE + 8, i + 1);
    ck_assert_uint_gt(released(s), 0);
    size_t gone = 0;
    for (size_t i = 0; i < 3 * LIMIT_PAGES; i++) {
        if (private_copy(a + i * PAGE))
            continue;
        gone++;
        ck_assert_msg(!uffd_marked(a + i * PAGE), "page %zu given back left a marker", i);
    }
    ck_assert_uint_gt(gone, LIMIT_PAGES);
    ck_assert(!private_copy(a));
    store_tx(s, LRVM_TRACK_UFFD, a, 8, 4242);
    ck_assert(private_copy(a));
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_limited(LRVM_TRACK_UFFD);
    a = tu_map(s, "a", (size_t)16 << 20);
    ck_assert_uint_eq(word_at(a, 8), 4242);
    for (size_t i = 1; i < 3 * LIMIT_PAGES; i++)
        ck_assert_uint_eq(word_at(a, i * PAGE + 8), i + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Kilobytes of page tables in this process. */
static long page_tables_kb(void)
{
    return status_field("VmPTE: %ld kB");
}

/* Pages far apart, one in each page table's span (2 MiB here), far under
 * the resident limit: every scan of the userfaultfd tracker walks each
 * table that holds a page, so past some hundreds of them the tracker asks
 * for a truncation and a release (track_uffd.c, uf_crowded), and the
 * pages go back with their tables, the segment's and its images' (the
 * runs given back cover each table whole). Without either, the 600
 * tables of each mapping stay. */
START_TEST(test_resident_uffd_far_pages_free_their_tables)
{
    if (!offered(LRVM_TRACK_UFFD))
        return;
    const size_t span = (size_t)2 << 20, n = 600;
    lrvm_options_t o = { .tracking = LRVM_TRACK_UFFD, .truncate_threshold = (size_t)1 << 34,
                         .resident_limit = (size_t)1 << 30 };
    lrvm_t *s = tu_open(NULL, &o);
    unsigned char *a = tu_map(s, "far", n * span);
    long before = page_tables_kb();
    for (size_t i = 0; i < n; i++)
        store_tx(s, LRVM_TRACK_UFFD, a, i * span + 8, i + 1);
    long grown = page_tables_kb() - before, all = (long)(2 * n * PAGE / 1024);
    /* A release comes at the first commit after the truncation it waits
     * for has ended, which a loaded disk (make check -j2, beside suites
     * that sync) may leave running past the last store: the last word is
     * committed again, which makes no table, until the tables went or
     * 30 s passed. */
    for (int ms = 0; grown >= all / 2 && ms < 30000; ms++) {
        usleep(1000);
        store_tx(s, LRVM_TRACK_UFFD, a, (n - 1) * span + 8, n);
        grown = page_tables_kb() - before;
    }
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_msg(st.truncations > 0, "no truncation, %zu pages kept", kept(s));
    ck_assert_uint_gt(st.pages_released, n / 2);
    ck_assert_msg(grown < all / 2, "page tables grew by %ld kB (%ld kB if none went)", grown,
                  all);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open(NULL, &o);
    a = tu_map(s, "far", n * span);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(word_at(a, i * span + 8), i + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A page the userfaultfd tracker lists but finds unchanged gets no image
 * copy: once half a segment's pages have been written, the segment is
 * protected whole, which lists every page once (track_uffd.c, scan), and
 * the commit that finds them writes into the images only the runs that
 * changed. The images kept are those of the pages written. */
START_TEST(test_resident_uffd_unchanged_pages_keep_no_image)
{
    if (!tu_uffd_offered())
        return;
    const size_t n = 256, written = n / 2 + 16;
    lrvm_options_t o = { .tracking = LRVM_TRACK_UFFD, .truncate_threshold = (size_t)1 << 34,
                         .resident_limit = (size_t)1 << 30 };
    lrvm_t *s = tu_open(NULL, &o);
    unsigned char *a = tu_map(s, "a", n * PAGE);
    for (size_t i = 0; i < written; i++)
        store_tx(s, LRVM_TRACK_UFFD, a, i * PAGE + 8, i + 1);
    ck_assert_msg(s->segs[0]->sg_whole, "the segment was not protected whole");
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.pages_released, 0);
    ck_assert_msg(st.pages_shadow == written, "%" PRIu64 " images kept for %zu pages written",
                  st.pages_shadow, written);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open(NULL, &o);
    a = tu_map(s, "a", n * PAGE);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(word_at(a, i * PAGE + 8), i < written ? i + 1 : 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* While other transactions go past the limit again and again, a page an
 * open transaction wrote, and (automatic trackers) a page the ambient
 * epoch wrote, stay private and keep their bytes; both commit after. */
START_TEST(test_resident_open_epochs_keep_their_pages)
{
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        int automatic = trackers[t] != LRVM_TRACK_EXPLICIT;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *a = tu_map(s, "a", (size_t)1 << 20);
        unsigned char *b = tu_map(s, "b", (size_t)16 << 20);
        unsigned char *c = tu_map(s, "c", (size_t)1 << 20);
        /* Committed first, so that the pages could go if nothing owned them. */
        store_tx(s, trackers[t], a, 0, 1);
        if (automatic) {
            store_tx(s, trackers[t], c, PAGE, 1);
        }
        lrvm_tx_t *open_tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &open_tx), 0);
        if (!automatic)
            ck_assert_int_eq(lrvm_set_range(open_tx, a, 8), 0);
        memcpy(a, "open tx", 8);
        if (automatic)
            memcpy(c + PAGE, "ambient", 8);
        uint64_t was = released(s);
        for (size_t i = 0; i < 3 * LIMIT_PAGES; i++)
            store_tx(s, trackers[t], b, i * PAGE, i + 1);
        ck_assert_msg(released(s) > was, "%s", tracker_name(trackers[t]));
        ck_assert_msg(memcmp(a, "open tx", 8) == 0 && private_copy(a), "%s",
                      tracker_name(trackers[t]));
        if (automatic)
            ck_assert_msg(memcmp(c + PAGE, "ambient", 8) == 0 && private_copy(c + PAGE), "%s",
                          tracker_name(trackers[t]));
        ck_assert_int_eq(lrvm_commit(open_tx, 0), 0);
        if (automatic)
            ck_assert_int_eq(lrvm_sync(s), 0);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_limited(trackers[t]);
        a = tu_map(s, "a", (size_t)1 << 20);
        c = tu_map(s, "c", (size_t)1 << 20);
        ck_assert_mem_eq(a, "open tx", 8);
        if (automatic)
            ck_assert_mem_eq(c + PAGE, "ambient", 8);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* A page given back, then changed by a transaction that aborts, shows its
 * committed bytes again; committed after, it is logged whole. */
START_TEST(test_resident_abort_after_release_restores)
{
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *a = tu_map(s, "a", (size_t)1 << 20);
        unsigned char *b = tu_map(s, "b", (size_t)16 << 20);
        store_tx(s, trackers[t], a, 16, 0x1111);
        for (size_t i = 0; i < 2 * LIMIT_PAGES; i++)
            store_tx(s, trackers[t], b, i * PAGE, i + 1);
        ck_assert_msg(!private_copy(a), "%s: the page was not given back",
                      tracker_name(trackers[t]));
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
        if (trackers[t] == LRVM_TRACK_EXPLICIT)
            ck_assert_int_eq(lrvm_set_range(tx, a, 64), 0);
        memset(a, 0x5a, 64);
        ck_assert_int_eq(lrvm_abort(tx), 0);
        ck_assert_uint_eq(word_at(a, 16), 0x1111);
        ck_assert_uint_eq(word_at(a, 0), 0);
        ck_assert_uint_eq(word_at(a, 24), 0);
        store_tx(s, trackers[t], a, 32, 0x2222);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_limited(trackers[t]);
        a = tu_map(s, "a", (size_t)1 << 20);
        ck_assert_uint_eq(word_at(a, 16), 0x1111);
        ck_assert_uint_eq(word_at(a, 32), 0x2222);
        ck_assert_uint_eq(word_at(a, 0), 0);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* A page committed in the generation that a truncation is applying
 * beside the commits is not in the file yet: it stays while that
 * truncation is stopped at its segment sync, whatever the later commits
 * add (up to the hard limit), and goes at the first commit after the
 * truncation ended. */
START_TEST(test_resident_retiring_generation_keeps_pages)
{
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        const char *name = tracker_name(trackers[t]);
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *a = tu_map(s, "a", (size_t)1 << 20);
        unsigned char *b = tu_map(s, "b", (size_t)16 << 20);
        store_tx(s, trackers[t], a, 16, 0x1111);
        lrvm__io_hold(LRVM__IO_SYNC);
        /* Past the limit a commit starts a truncation; no other thread
         * commits, so the log's state may be read between calls. */
        size_t i = 0;
        for (; !s->log.lg_retiring; i++) {
            ck_assert_msg(i < LIMIT_PAGES + 8, "%s: no truncation started", name);
            store_tx(s, trackers[t], b, i * PAGE, i + 1);
        }
        for (int k = 0; lrvm__io_held() == 0; k++) {
            ck_assert_msg(k < 30000, "%s: the truncation never reached its sync", name);
            usleep(1000);
        }
        for (size_t end = i + 16; i < end; i++) {
            store_tx(s, trackers[t], b, i * PAGE, i + 1);
            ck_assert_msg(private_copy(a) && word_at(a, 16) == 0x1111,
                          "%s: the page went before its generation was applied", name);
        }
        ck_assert_uint_eq(released(s), 0);
        lrvm__io_hold(0);
        (void)tu_wait_truncations(s, 1);
        store_tx(s, trackers[t], b, i * PAGE, i + 1);
        ck_assert_msg(released(s) > 0 && !private_copy(a), "%s: the page did not go", name);
        ck_assert_uint_eq(word_at(a, 16), 0x1111);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* The process's anonymous memory, from /proc/self/status, in bytes. */
static size_t rss_anon(void)
{
    char buf[8192];
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    size_t kb = 0;
    while (fgets(buf, sizeof buf, f) != NULL)
        if (sscanf(buf, "RssAnon: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* Random pages of a 64 MiB segment under a 1 MiB limit: the process's
 * memory grows by a few times the limit at most (unbounded, each page
 * would stay: 8,000 pages, 31 MiB, or twice that with a second copy),
 * and every committed word is there, in memory and after a reopen. Loop:
 * transactions begun alone (0), shared ones (1, explicit mode: the one
 * its owner committed keeps the segment for its next, tx.c, until pages
 * go back). */
START_TEST(test_resident_limit_bounds_memory)
{
    enum { NTX = 8000 };
    const size_t size = (size_t)64 << 20;
    begin_tx = _i ? lrvm_begin_shared : lrvm_begin;
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]) || (_i && trackers[t] != LRVM_TRACK_EXPLICIT))
            continue;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *a = tu_map(s, "a", size);
        uint64_t *model = calloc(size / PAGE, sizeof *model);
        ck_assert_ptr_nonnull(model);
        uint64_t rng = tu_test_seed() + t;
        size_t before = rss_anon(), peak = before;
        for (uint64_t i = 1; i <= NTX; i++) {
            size_t p = tu_rand(&rng) % (size / PAGE);
            store_tx(s, trackers[t], a, p * PAGE + 64, i);
            model[p] = i;
            if (i % 256 == 0) {
                size_t now = rss_anon();
                peak = now > peak ? now : peak;
            }
        }
        /* AddressSanitizer's shadow and quarantine are anonymous memory
         * too, tens of MiB here: the debug build checks the bytes only. */
        ck_assert_msg(sanitized || peak - before <= 4 * LIMIT + ((size_t)2 << 20),
                      "%s: anonymous memory grew by %zu KiB", tracker_name(trackers[t]),
                      (peak - before) / 1024);
        for (size_t p = 0; p < size / PAGE; p++)
            ck_assert_uint_eq(word_at(a, p * PAGE + 64), model[p]);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_limited(trackers[t]);
        a = tu_map(s, "a", size);
        for (size_t p = 0; p < size / PAGE; p++)
            ck_assert_uint_eq(word_at(a, p * PAGE + 64), model[p]);
        ck_assert_int_eq(lrvm_close(s), 0);
        free(model);
    }
    begin_tx = lrvm_begin;
}
END_TEST

/* Another thread stores into ambient pages all along while this one's
 * transactions go past the limit: no store is lost from memory, and the
 * sync after keeps them all. (The mprotect tracker makes such a store
 * wait while it gives pages back; the userfaultfd tracker keeps private
 * copies while the process has other threads.) */
struct storer {
    unsigned char  *c;
    atomic_int      stop;
    uint64_t        last[16];
};

static void *storer_run(void *arg)
{
    struct storer *st = arg;
    for (uint64_t k = 1; !atomic_load(&st->stop) || k < 20000; k++) {
        size_t p = k % 16;
        memcpy(st->c + p * PAGE + 128, &k, sizeof k);
        st->last[p] = k;
    }
    return NULL;
}

START_TEST(test_resident_ambient_stores_during_release)
{
    for (size_t t = 1; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        unsigned char *b = tu_map(s, "b", (size_t)16 << 20);
        struct storer st = { .c = tu_map(s, "c", (size_t)1 << 20) };
        /* Committed, so each page could go; D's pages are not stored to
         * again. */
        unsigned char *d = tu_map(s, "d", (size_t)1 << 20);
        for (size_t p = 0; p < 16; p++) {
            memset(st.c + p * PAGE, 1, 8);
            memset(d + p * PAGE, 2, 8);
        }
        ck_assert_int_eq(lrvm_sync(s), 0);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, storer_run, &st), 0);
        uint64_t was = released(s);
        for (size_t i = 0; i < 3 * LIMIT_PAGES; i++)
            store_tx(s, trackers[t], b, i * PAGE, i + 1);
        atomic_store(&st.stop, 1);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_msg(released(s) > was, "%s", tracker_name(trackers[t]));
        for (size_t p = 0; p < 16; p++)
            ck_assert_uint_eq(word_at(st.c, p * PAGE + 128), st.last[p]);
        /* The mprotect tracker gave D's pages back; the userfaultfd tracker
         * cannot know that another thread stores into none of them, and
         * kept them (lrvm.h C14). */
        for (size_t p = 0; p < 16; p++) {
            ck_assert_uint_eq(d[p * PAGE], 2);
            ck_assert_msg(private_copy(d + p * PAGE) == (trackers[t] == LRVM_TRACK_UFFD),
                          "%s: page %zu of d", tracker_name(trackers[t]), p);
        }
        ck_assert_int_eq(lrvm_sync(s), 0);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_limited(trackers[t]);
        unsigned char *c = tu_map(s, "c", (size_t)1 << 20);
        for (size_t p = 0; p < 16; p++)
            ck_assert_uint_eq(word_at(c, p * PAGE + 128), st.last[p]);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* A flushing commit that waits for its group's sync lets the store lock
 * go; another thread's commit may then pass the limit, truncate and give
 * pages back. The waiting commit's pages are in flight (the userfaultfd
 * tracker has copied them into their images already, untagged): an
 * abort after it must put back what it committed, not an older image. */
struct slow_commit {
    lrvm_t        *s;
    int            tracking;
    unsigned char *x;
    int            rc;
};

static void *slow_commit_run(void *arg)
{
    struct slow_commit *c = arg;
    lrvm_tx_t *tx;
    c->rc = lrvm_begin(c->s, 1, (void *const *)&c->x, &tx);
    if (c->rc == 0 && c->tracking == LRVM_TRACK_EXPLICIT)
        c->rc = lrvm_set_range(tx, c->x + 8, 8);
    if (c->rc == 0) {
        uint64_t v2 = 2;
        memcpy(c->x + 8, &v2, sizeof v2);
        c->rc = lrvm_commit(tx, 0);
    }
    return NULL;
}

START_TEST(test_resident_commit_in_flight_keeps_its_pages)
{
    for (size_t t = 0; t < sizeof trackers / sizeof trackers[0]; t++) {
        if (!offered(trackers[t]))
            continue;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(trackers[t]);
        struct slow_commit c = { s, trackers[t], tu_map(s, "x", (size_t)1 << 20), 0 };
        unsigned char *y = tu_map(s, "y", (size_t)16 << 20);
        /* Page 0 of x committed, and in the file: it may go from now on. */
        store_tx(s, trackers[t], c.x, 8, 1);
        ck_assert_int_eq(lrvm_truncate(s), 0);
        atomic_store(&lrvm__io_sync_delay_us, 300000);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, slow_commit_run, &c), 0);
        struct timespec pause = { 0, 50 * 1000000L };
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
            ;
        uint64_t was = released(s);
        for (size_t i = 0; i < 2 * LIMIT_PAGES; i++)
            store_tx(s, trackers[t], y, i * PAGE, i + 1);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        atomic_store(&lrvm__io_sync_delay_us, 0);
        ck_assert_int_eq(c.rc, 0);
        ck_assert_msg(released(s) > was, "%s", tracker_name(trackers[t]));
        ck_assert_uint_eq(word_at(c.x, 8), 2);
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&c.x, &tx), 0);
        if (trackers[t] == LRVM_TRACK_EXPLICIT)
            ck_assert_int_eq(lrvm_set_range(tx, c.x + 8, 8), 0);
        memset(c.x + 8, 0x77, 8);
        ck_assert_int_eq(lrvm_abort(tx), 0);
        ck_assert_msg(word_at(c.x, 8) == 2, "%s: the abort put back %" PRIu64,
                      tracker_name(trackers[t]), word_at(c.x, 8));
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* Runs given back in a batch (process_madvise) or one by one (where the
 * kernel refuses it): a run the program unmapped (lrvm.h C11) cannot go
 * and stays counted, and the runs after it in the batch still go. Pages
 * committed every other page make a run of each. */
START_TEST(test_resident_unmapped_run_keeps_the_rest)
{
    for (int one_by_one = 0; one_by_one < 2; one_by_one++) {
        lrvm__res_one_by_one = one_by_one;
        tu_rmrf(tu_dir);
        lrvm_t *s = open_limited(LRVM_TRACK_EXPLICIT);
        unsigned char *a = tu_map(s, "a", (size_t)16 << 20);
        size_t n = 3 * LIMIT_PAGES;
        for (size_t i = 0; i < n; i++) {
            store_tx(s, LRVM_TRACK_EXPLICIT, a, 2 * i * PAGE, i + 1);
            if (i == 2)
                ck_assert_int_eq(munmap(a + 2 * PAGE, PAGE), 0);
        }
        ck_assert_uint_ge(released(s), LIMIT_PAGES);
        ck_assert_msg(!private_copy(a) && !private_copy(a + 4 * PAGE),
                      "one by one %d: a page beside the unmapped one stayed", one_by_one);
        ck_assert_uint_eq(word_at(a, 0), 1);
        ck_assert_uint_eq(word_at(a, 4 * PAGE), 3);
        /* Every page but the unmapped one went at least once: what stays
         * kept is the pages committed since the last pass, and that one. */
        ck_assert_uint_eq(released(s) + kept(s), n);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
    lrvm__res_one_by_one = 0;
}
END_TEST

START_TEST(test_resident_limit_option)
{
    lrvm_options_t o = { .resident_limit = LIMIT - 1 };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), LRVM_EINVAL);
    o.resident_limit = LIMIT;
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resident");
    TCase *tc = tu_tcase("resident", 240);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_resident_limit_option);
    tcase_add_test(tc, test_resident_released_page_reads_the_file);
    tcase_add_test(tc, test_resident_open_epochs_keep_their_pages);
    tcase_add_test(tc, test_resident_abort_after_release_restores);
    tcase_add_test(tc, test_resident_uffd_release_leaves_no_entry);
    tcase_add_test(tc, test_resident_uffd_far_pages_free_their_tables);
    tcase_add_test(tc, test_resident_uffd_unchanged_pages_keep_no_image);
    tcase_add_test(tc, test_resident_retiring_generation_keeps_pages);
    tcase_add_loop_test(tc, test_resident_limit_bounds_memory, 0, 2);
    tcase_add_test(tc, test_resident_ambient_stores_during_release);
    tcase_add_test(tc, test_resident_commit_in_flight_keeps_its_pages);
    tcase_add_test(tc, test_resident_unmapped_run_keeps_the_rest);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
