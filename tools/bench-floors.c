/*
 * bench-floors.c -- the floors: what the machine does without lrvm, which
 * the workloads and recovery are set against. The fault floor (write
 * faults handled by a SIGSEGV handler that only mprotects), the uffd
 * floor (the same stores under userfaultfd write-protection in async
 * mode, listed and protected again as that tracker does), the write
 * floor (small in-place pwrite + fdatasync) and the read floor (read() of
 * a recovery log), and what makes a store cold for the read floor and
 * recovery alike. The threads floor runs the fault and uffd floors' loop
 * from several threads at once, each on a slice of its own, as the
 * threads part's transactions run on segments of their own. The line
 * floor is what the log's one order costs each commit of two threads:
 * a cache line taken from the other CPU.
 *
 * Never calls lrvm: a floor that did would measure lrvm against itself.
 * Its children write only their own result.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "uffd_uapi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

const struct floor_spec bench_floors[NFLOORS] = {
    { "random P=1",      1,   0 },
    { "random P=4",      4,   0 },
    { "random P=16",     16,  0 },
    { "random P=256",    256, 0 },
    { "contiguous P=64", 64,  1 },
};

/* ------------------------------------------------------------ fault floor */

struct floor_arg {
    int  spec;
    int  state;              /* FL_COPIED, FL_FRESH, FL_UFFD */
    char path[PATH_LEN];
};

/* What floor_handler reads. A signal handler is given no pointer of ours,
 * so this is the one state of lrvm-bench outside struct bench; it is set
 * only in a fault floor's child, before the handler is installed. */
static char  *volatile fl_base;
static size_t fl_len, fl_page;

/* Make the faulting page writable, nothing else. */
static void floor_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    uintptr_t a = (uintptr_t)si->si_addr, b = (uintptr_t)fl_base;
    if (b != 0 && a >= b && a < b + fl_len &&
        mprotect((void *)(a & ~(uintptr_t)(fl_page - 1)), fl_page,
                 PROT_READ | PROT_WRITE) == 0)
        return;
    signal(sig, SIG_DFL);   /* not ours: the store faults again and kills us */
}

static char *map_file(int fd)
{
    void *m = mmap(NULL, SEG_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        bench_child_fail("mmap: %s", strerror(errno));
    return m;
}

static void shuffle(uint32_t *v, size_t n, uint64_t *seed)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = xorshift64(seed) % (i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* The pages of a floor's batches: random and distinct within a batch, or
 * each page in turn of ORDER (fresh pages, or a contiguous run moving
 * through the file). */
struct batches {
    const struct floor_spec *f;
    int       in_order;
    size_t    seg_pages, pos;
    uint32_t *order, *stamp;
    uint64_t  seed, nbatch;
};

static void batches_init(struct batches *k, size_t seg_pages, const struct floor_spec *f,
                         int fresh)
{
    *k = (struct batches){ .f = f, .in_order = fresh || f->contiguous,
                           .seg_pages = seg_pages, .seed = SEED };
    k->order = malloc(k->seg_pages * sizeof *k->order);
    k->stamp = calloc(k->seg_pages, sizeof *k->stamp);
    if (k->order == NULL || k->stamp == NULL)
        bench_child_fail("out of memory");
    for (size_t i = 0; i < k->seg_pages; i++)
        k->order[i] = (uint32_t)i;
    if (fresh && !f->contiguous)
        shuffle(k->order, k->seg_pages, &k->seed);
}

static size_t batches_next(struct batches *k)
{
    if (k->in_order)
        return k->order[k->pos++];
    uint64_t rnd;
    size_t p;
    do {
        rnd = xorshift64(&k->seed);
        p = rnd % k->seg_pages;
    } while (k->stamp[p] == (uint32_t)k->nbatch);
    k->stamp[p] = (uint32_t)k->nbatch;
    return p;
}

/* The next batch: a store to each of its N pages of the mapping at BASE;
 * the lowest and highest page it stored to. */
static void batch_store(struct batches *k, char *base, size_t n, size_t page_size, size_t *lo,
                        size_t *hi)
{
    *lo = SIZE_MAX;
    *hi = 0;
    k->nbatch++;
    for (size_t i = 0; i < n; i++) {
        size_t p = batches_next(k);
        *(volatile uint64_t *)(base + p * page_size) ^= ALL_BYTES;
        *lo = p < *lo ? p : *lo;
        *hi = p > *hi ? p : *hi;
    }
}

static void batches_free(struct batches *k)
{
    free(k->order);
    free(k->stamp);
}

/* The floors' file, SIZE bytes, made anew. */
static int floor_file(const char *path, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        bench_child_fail("%s: %s", path, strerror(errno));
    return fd;
}

/* floor_handler, for the LEN bytes at BASE (set before the first fault
 * it is meant for). */
static void floor_handler_install(char *base, size_t len, size_t page_size)
{
    fl_page = page_size;
    fl_len = len;
    fl_base = base;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = floor_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        bench_child_fail("sigaction: %s", strerror(errno));
}

static void child_fault_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct floor_arg *a = argp;
    const struct floor_spec *f = &bench_floors[a->spec];
    struct floor_result *r = outp;
    size_t batch = (size_t)f->pages, page_size = b->page_size, seg_pages = b->seg_pages;

    int fd = floor_file(a->path, SEG_SIZE);
    floor_handler_install(NULL, SEG_SIZE, page_size);

    /* Bring the file's pages into the page cache, so that the fresh
     * faults below copy a cached page, as the segment's would. */
    char *m = map_file(fd);
    volatile char sink = 0;
    for (size_t p = 0; p < seg_pages; p++)
        sink ^= m[p * page_size];
    (void)sink;
    munmap(m, SEG_SIZE);

    int fresh = a->state == FL_FRESH;
    fl_base = map_file(fd);
    if (!fresh) {
        /* Warm-up: write every page once (private copies), re-protect. */
        if (mprotect(fl_base, SEG_SIZE, PROT_READ | PROT_WRITE) != 0)
            bench_child_fail("mprotect: %s", strerror(errno));
        for (size_t p = 0; p < seg_pages; p++)
            *(volatile uint64_t *)(fl_base + p * page_size) ^= ALL_BYTES;
        if (mprotect(fl_base, SEG_SIZE, PROT_READ) != 0)
            bench_child_fail("mprotect: %s", strerror(errno));
    }

    struct batches k;
    batches_init(&k, seg_pages, f, fresh);
    uint64_t target = fresh ? (uint64_t)b->fresh_passes * seg_pages : b->copied_pages;
    uint64_t pages = 0;
    double spent = 0, t0 = now();
    while (pages < target && spent + (now() - t0) < b->cap) {
        if (k.pos == seg_pages) {
            k.pos = 0;
            if (fresh) {
                /* Every page was written: map the file anew, untimed. */
                spent += now() - t0;
                char *old = fl_base;
                fl_base = NULL;
                munmap(old, SEG_SIZE);
                fl_base = map_file(fd);
                if (!f->contiguous)
                    shuffle(k.order, seg_pages, &k.seed);
                t0 = now();
            }
        }
        size_t lo, hi;
        batch_store(&k, fl_base, batch, page_size, &lo, &hi);
        if (mprotect(fl_base + lo * page_size, (hi + 1 - lo) * page_size, PROT_READ) != 0)
            bench_child_fail("mprotect: %s", strerror(errno));
        pages += batch;
    }
    r->secs = spent + (now() - t0);
    r->pages = pages;
    batches_free(&k);
    close(fd);
}

/* ------------------------------------------------------------ uffd floor */

/* A userfaultfd in async write-protect mode, as the tracker opens it. */
static int uffd_floor_open(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = {
        .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC,
    };
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) != 0)
        bench_child_fail("userfaultfd: %s", strerror(errno));
    return fd;
}

static void uffd_protect(int uf, uintptr_t start, uintptr_t len)
{
    struct uffdio_writeprotect wp = {
        .range = { start, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
    };
    if (ioctl(uf, UFFDIO_WRITEPROTECT, &wp) != 0)
        bench_child_fail("UFFDIO_WRITEPROTECT: %s", strerror(errno));
}

/* List the written pages of [START, END) with PAGEMAP_SCAN (on PM, the
 * process's pagemap) and protect each written run again, as the tracker
 * does; returns the pages it found. */
static uint64_t uffd_reprotect(int uf, int pm, uintptr_t start, uintptr_t end, size_t page_size)
{
    struct page_region v[64];
    struct pm_scan_arg s = {
        .size = sizeof s, .flags = PM_SCAN_CHECK_WPASYNC, .start = start, .end = end,
        .vec = (uintptr_t)v, .vec_len = 64,
        .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
    };
    long n;
    uint64_t found = 0;
    do {
        if ((n = ioctl(pm, PAGEMAP_SCAN, &s)) < 0)
            bench_child_fail("PAGEMAP_SCAN: %s", strerror(errno));
        for (long j = 0; j < n; j++) {
            uffd_protect(uf, v[j].start, v[j].end - v[j].start);
            found += (v[j].end - v[j].start) / page_size;
        }
        s.start = s.walk_end;
    } while (n == 64 && s.start < s.end);
    return found;
}

/* A private mapping of the LEN bytes of file FD, every page written once
 * (private copies, as the copied floors and the workloads have them). */
static char *map_copied(int fd, size_t len, size_t page_size)
{
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        bench_child_fail("mmap: %s", strerror(errno));
    for (size_t off = 0; off < len; off += page_size)
        *(volatile uint64_t *)(m + off) ^= ALL_BYTES;
    return m;
}

/* The LEN bytes at M registered with a new userfaultfd in async
 * write-protect mode, and protected; the pagemap to scan them in *PM. */
static int uffd_floor_register(char *m, size_t len, int *pm)
{
    int uf = uffd_floor_open();
    struct uffdio_register reg = {
        .range = { (uintptr_t)m, len }, .mode = UFFDIO_REGISTER_MODE_WP,
    };
    *pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (*pm < 0 || ioctl(uf, UFFDIO_REGISTER, &reg) != 0)
        bench_child_fail("registering the mapping: %s", strerror(errno));
    uffd_protect(uf, (uintptr_t)m, len);
    return uf;
}

/* The copied fault floor's batches under userfaultfd: the kernel resolves
 * each store itself; after each batch, PAGEMAP_SCAN lists the written
 * runs of the batch's span and each run is protected again, as the
 * tracker does (which scans the whole segment). */
static void child_uffd_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct floor_arg *a = argp;
    const struct floor_spec *f = &bench_floors[a->spec];
    struct floor_result *r = outp;
    size_t batch = (size_t)f->pages, page_size = b->page_size, seg_pages = b->seg_pages;

    int fd = floor_file(a->path, SEG_SIZE);
    char *m = map_copied(fd, SEG_SIZE, page_size);
    int pm, uf = uffd_floor_register(m, SEG_SIZE, &pm);

    struct batches k;
    batches_init(&k, seg_pages, f, 0);
    uint64_t pages = 0;
    double t0 = now();
    while (pages < b->copied_pages && now() - t0 < b->cap) {
        if (k.pos == seg_pages)
            k.pos = 0;
        size_t lo, hi;
        batch_store(&k, m, batch, page_size, &lo, &hi);
        uint64_t found = uffd_reprotect(uf, pm, (uintptr_t)(m + lo * page_size),
                                        (uintptr_t)(m + (hi + 1) * page_size), page_size);
        if (found != batch)
            bench_child_fail("the scan listed %llu pages of a batch of %zu",
                             (unsigned long long)found, batch);
        pages += batch;
    }
    r->secs = now() - t0;
    r->pages = pages;
    batches_free(&k);
    close(pm);
    close(uf);
    close(fd);
}

/* ------------------------------------------------------------ threads floor */

struct tfloor_arg {
    int  threads;
    int  kind;              /* TF_MPROTECT, TF_UFFD */
    char path[PATH_LEN];
};

/* One thread of a threads floor, on a THREAD_SEG slice of its own. */
struct tfloor_worker {
    WORKER_LINE const struct bench *b;
    char     *slice;
    int       kind, uf, pm, index;
    double    deadline;
    uint64_t  pages;
};

/* Batches of P=4 random pages of the thread's slice (a small-tx's pages),
 * each batch protected again after its stores as the floor of its kind
 * does, until the deadline. */
static void *tfloor_run(void *p)
{
    struct tfloor_worker *w = p;
    const struct floor_spec *f = &bench_floors[FLOOR_P4];
    size_t batch = (size_t)f->pages, page_size = w->b->page_size;
    struct batches k;
    batches_init(&k, THREAD_SEG / page_size, f, 0);
    k.seed += (uint64_t)w->index;
    do {
        size_t lo, hi;
        batch_store(&k, w->slice, batch, page_size, &lo, &hi);
        char *from = w->slice + lo * page_size;
        size_t len = (hi + 1 - lo) * page_size;
        if (w->kind == TF_MPROTECT) {
            if (mprotect(from, len, PROT_READ) != 0)
                bench_child_fail("mprotect: %s", strerror(errno));
        } else if (uffd_reprotect(w->uf, w->pm, (uintptr_t)from, (uintptr_t)(from + len),
                                  page_size) != batch) {
            bench_child_fail("the scan did not list a batch's %zu pages", batch);
        }
        w->pages += batch;
    } while (w->pages % (64 * batch) != 0 || now() < w->deadline);
    batches_free(&k);
    return NULL;
}

static void child_threads_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct tfloor_arg *a = argp;
    struct tfloor_result *r = outp;
    size_t len = (size_t)a->threads * THREAD_SEG, page_size = b->page_size;
    int fd = floor_file(a->path, len), uf = -1, pm = -1;
    char *m = map_copied(fd, len, page_size);
    if (a->kind == TF_UFFD) {
        uf = uffd_floor_register(m, len, &pm);
    } else {
        floor_handler_install(m, len, page_size);
        if (mprotect(m, len, PROT_READ) != 0)
            bench_child_fail("mprotect: %s", strerror(errno));
    }

    struct tfloor_worker w[8];
    pthread_t th[8];
    double c0 = bench_cpu_seconds(), t0 = now();
    for (int t = 0; t < a->threads; t++) {
        w[t] = (struct tfloor_worker){ .b = b, .slice = m + (size_t)t * THREAD_SEG,
                                       .kind = a->kind, .uf = uf, .pm = pm, .index = t,
                                       .deadline = t0 + b->cap };
        if (pthread_create(&th[t], NULL, tfloor_run, &w[t]) != 0)
            bench_child_fail("pthread_create failed");
    }
    r->pages = 0;
    for (int t = 0; t < a->threads; t++) {
        pthread_join(th[t], NULL);
        r->pages += w[t].pages;
    }
    r->secs = now() - t0;
    r->cpu = bench_cpu_seconds() - c0;
    close(fd);
}

/* ------------------------------------------------------------ write floor */

struct wfloor_arg {
    char     path[PATH_LEN];
    size_t   op;                /* bytes per overwrite */
    uint64_t ops;               /* overwrites, each timed; 0: as many as the cap allows */
};

static void child_write_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct wfloor_arg *a = argp;
    struct wfloor_result *r = outp;
    int fd = open(a->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        bench_child_fail("%s: %s", a->path, strerror(errno));
    char *zeros = calloc(1, CHUNK);
    unsigned char *buf = malloc(a->op);
    uint64_t *lat = a->ops ? malloc(a->ops * sizeof *lat) : NULL;
    if (zeros == NULL || buf == NULL || (a->ops && lat == NULL))
        bench_child_fail("out of memory");
    for (size_t off = 0; off < WFLOOR_SIZE; off += CHUNK)
        if (pwrite(fd, zeros, CHUNK, (off_t)off) != (ssize_t)CHUNK)
            bench_child_fail("preallocating %s: %s", a->path, strerror(errno));
    if (fdatasync(fd) != 0)
        bench_child_fail("fdatasync: %s", strerror(errno));
    if (a->ops)
        bench_settle(b->stall_settle);

    uint64_t ops = 0;
    size_t off = 0;
    double t0 = now(), deadline = t0 + b->cap;
    for (;;) {
        memset(buf, (int)(ops % 255) + 1, a->op);
        memcpy(buf, &ops, sizeof ops);
        struct timespec c0, c1;
        clock_gettime(CLOCK_MONOTONIC, &c0);
        if (pwrite(fd, buf, a->op, (off_t)off) != (ssize_t)a->op)
            bench_child_fail("pwrite: %s", strerror(errno));
        if (fdatasync(fd) != 0)
            bench_child_fail("fdatasync: %s", strerror(errno));
        clock_gettime(CLOCK_MONOTONIC, &c1);
        if (lat != NULL)
            lat[ops] = bench_ns_between(&c0, &c1);
        ops++;
        off = off + 2 * a->op <= WFLOOR_SIZE ? off + a->op : 0;
        if (a->ops ? ops == a->ops : now() >= deadline)
            break;
    }
    r->secs = now() - t0;
    r->ops = ops;
    if (lat != NULL)
        bench_latencies(lat, ops, &r->med_us, &r->p99_us, &r->max_us);
    free(lat);
    free(buf);
    free(zeros);
    close(fd);
}

/* ------------------------------------------------------------ disk floor */

struct dfloor_arg {
    char   path[PATH_LEN];
    size_t bytes;
};

/* What the disk takes from one writer: BYTES in 1 MiB pwrites to a new
 * file, an fdatasync after each DFLOOR_SYNC and after the last, timed to
 * that one (a sync with nothing left to write may still flush the
 * device's cache, so none is made twice). A
 * store's commits and truncation write less evenly than this, so it is
 * a bound, not a target. */
static void child_disk_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct dfloor_arg *a = argp;
    struct dfloor_result *r = outp;
    (void)b;
    int fd = open(a->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        bench_child_fail("%s: %s", a->path, strerror(errno));
    unsigned char *buf = malloc(CHUNK);
    if (buf == NULL)
        bench_child_fail("out of memory");
    memset(buf, 0x5a, CHUNK);           /* not zeros: nothing may skip them */
    double t0 = now();
    for (size_t off = 0; off < a->bytes; off += CHUNK) {
        if (pwrite(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK)
            bench_child_fail("pwrite: %s", strerror(errno));
        size_t end = off + CHUNK;
        if ((end % DFLOOR_SYNC == 0 || end >= a->bytes) && fdatasync(fd) != 0)
            bench_child_fail("fdatasync: %s", strerror(errno));
    }
    r->secs = now() - t0;
    r->bytes = a->bytes;
    free(buf);
    close(fd);
}

/* ------------------------------------------------------------ line floor */

/* One thread of the line floor: OPS operations, each LFLOOR_WORK steps of
 * work of its own and then one compare-and-swap of *WORD, on CPU; the
 * next operation's steps need the word swapped. */
struct lfloor_worker {
    WORKER_LINE _Atomic uint64_t own;   /* its word, when it has a line of its own */
    _Atomic uint64_t  *word;
    pthread_barrier_t *start;
    int                cpu;
    uint64_t           ops, sink;
    double             secs;
};

static void *lfloor_run(void *p)
{
    struct lfloor_worker *w = p;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        bench_child_fail("pinning a thread to CPU %d failed", w->cpu);
    pthread_barrier_wait(w->start);
    uint64_t x = (uint64_t)w->cpu + 1;
    double t0 = now();
    for (uint64_t n = 0; n < w->ops; n++) {
        /* A chain of dependent steps: work no core can hurry, and that
         * the compiler may not fold. */
        for (int k = 0; k < LFLOOR_WORK; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            __asm__ __volatile__("" : "+r"(x));
        }
        uint64_t v = atomic_load_explicit(w->word, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(w->word, &v, v + 1, memory_order_acq_rel,
                                                      memory_order_relaxed))
            ;
        /* The next operation's work needs the word swapped, as a commit's
         * copy needs the place it took: else the core runs the chain
         * ahead while the line comes, and the floor hides its cost. */
        x ^= v & 1;
    }
    w->secs = now() - t0;
    w->sink = x;
    return NULL;
}

/* Two threads at once, on the first two CPUs this process may run on,
 * their words on one line (SHARED) or on lines of their own: the mean of
 * their nanoseconds an operation. */
static double lfloor_pair(const cpu_set_t *allowed, uint64_t ops, int shared)
{
    struct lfloor_worker *w = aligned_alloc(CACHE_LINE, 2 * sizeof *w);
    _Atomic uint64_t *one = aligned_alloc(CACHE_LINE, CACHE_LINE);
    pthread_barrier_t start;
    pthread_t th[2];
    if (w == NULL || one == NULL)
        bench_child_fail("out of memory");
    atomic_init(one, 0);
    pthread_barrier_init(&start, NULL, 2);
    for (int t = 0, cpu = 0; t < 2; t++, cpu++) {
        while (!CPU_ISSET(cpu, allowed))
            cpu++;
        w[t] = (struct lfloor_worker){ .start = &start, .cpu = cpu, .ops = ops };
        atomic_init(&w[t].own, 0);
        w[t].word = shared ? one : &w[t].own;
        if (pthread_create(&th[t], NULL, lfloor_run, &w[t]) != 0)
            bench_child_fail("pthread_create failed");
    }
    double ns = 0;
    for (int t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        ns += w[t].secs * 1e9 / (double)ops / 2;
    }
    if (atomic_load(one) != (shared ? 2 * ops : 0))
        bench_child_fail("the shared word counted %" PRIu64 " swaps", (uint64_t)atomic_load(one));
    pthread_barrier_destroy(&start);
    free(one);
    free(w);
    return ns;
}

/* What taking a cache line from another CPU adds to an operation: a
 * commit that must come after the other thread's last one in the log's
 * one order takes the word that orders them from that thread's CPU. Not
 * run (ops 0) on fewer than two CPUs. */
static void child_line_floor(const struct bench *b, const void *argp, void *outp)
{
    struct lfloor_result *r = outp;
    (void)argp;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        bench_child_fail("sched_getaffinity: %s", strerror(errno));
    if (CPU_COUNT(&allowed) < 2)
        return;
    uint64_t ops = LFLOOR_OPS / (uint64_t)b->tx_div;
    r->shared_ns = lfloor_pair(&allowed, ops, 1);
    r->own_ns = lfloor_pair(&allowed, ops, 0);
    r->ops = ops;
}

int bench_write_floor_timed(struct bench *b, const char *what, const char *path, size_t op,
                            uint64_t ops, struct wfloor_result *r)
{
    /* Each overwrite starts with its number: 8 bytes at least. */
    struct wfloor_arg a = { .op = op < sizeof(uint64_t) ? sizeof(uint64_t) : op, .ops = ops };
    snprintf(a.path, sizeof a.path, "%s", path);
    int rc = bench_run_child(b, what, child_write_floor, &a, r, sizeof *r);
    unlink(path);
    return rc;
}

void bench_floors_round(struct bench *b, int i)
{
    char floor_path[PATH_LEN], write_path[PATH_LEN], what[160];
    bench_path_join(b, floor_path, b->root, "fault-floor.dat");
    bench_path_join(b, write_path, b->root, "write-floor.dat");
    for (int fl = 0; fl < (bench_workloads_run(b) ? NFLOORS : 0); fl++)
        for (int st = 0; st < (b->uffd ? NFLSTATES : FL_UFFD); st++) {
            struct floor_arg a = { .spec = fl, .state = st };
            memcpy(a.path, floor_path, sizeof a.path);
            snprintf(what, sizeof what, "%s floor %s %s", st == FL_UFFD ? "uffd" : "fault",
                     bench_floors[fl].name, st == FL_FRESH ? "fresh" : "copied");
            bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
            struct floor_result *r = &b->fl_res[fl][st][i];
            if (bench_run_child(b, what, st == FL_UFFD ? child_uffd_floor : child_fault_floor,
                                &a, r, sizeof *r) == 0 &&
                r->pages == 0)
                bench_add_failure(b, "%s: no page measured", what);
        }
    unlink(floor_path);
    for (int g = 0; g < (bench_part_runs(b, PART_THREADS) ? NGROUP : 0); g++)
        for (int kind = 0; kind < NTFLOORS; kind++) {
            if (!bench_mode_runs(b, kind == TF_UFFD ? BM_UFFD : BM_MPROTECT))
                continue;
            struct tfloor_arg a = { .threads = bench_group_threads[g], .kind = kind };
            memcpy(a.path, floor_path, sizeof a.path);
            snprintf(what, sizeof what, "%s floor, %d thread%s",
                     kind == TF_UFFD ? "uffd" : "fault", a.threads, a.threads == 1 ? "" : "s");
            bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
            struct tfloor_result *r = &b->tf_res[g][kind][i];
            if (bench_run_child(b, what, child_threads_floor, &a, r, sizeof *r) == 0 &&
                r->pages == 0)
                bench_add_failure(b, "%s: no page measured", what);
            unlink(floor_path);
        }
    if (bench_part_runs(b, PART_THREADS)) {
        struct dfloor_arg a = { .bytes = bench_dfloor_size(b) };
        bench_path_join(b, a.path, b->root, "disk-floor.dat");
        bench_progress("disk floor: run %d/%d...", i + 1, b->runs);
        if (bench_run_child(b, "disk floor", child_disk_floor, &a, &b->df_res[i],
                            sizeof b->df_res[i]) == 0 && b->df_res[i].bytes == 0)
            bench_add_failure(b, "disk floor: nothing measured");
        unlink(a.path);
    }
    if (bench_part_runs(b, PART_THREADS) || bench_part_runs(b, PART_HEAP)) {
        bench_progress("line floor: run %d/%d...", i + 1, b->runs);
        bench_run_child(b, "line floor", child_line_floor, NULL, &b->lf_res[i],
                        sizeof b->lf_res[i]);
    }
    if (bench_write_floor_runs(b)) {
        bench_progress("write floor: run %d/%d...", i + 1, b->runs);
        struct wfloor_arg a = { .op = WFLOOR_OP };
        memcpy(a.path, write_path, sizeof a.path);
        bench_run_child(b, "write floor", child_write_floor, &a, &b->wf_res[i],
                        sizeof b->wf_res[0]);
        unlink(write_path);
    }
}

/* ------------------------------------------------------------ read floor */

/*
 * Make every file of the store DIR cold, as after a machine crash. Dirty
 * pages are written back first, since POSIX_FADV_DONTNEED leaves them (and
 * mapped or locked ones) in the cache without saying so; whatever stays is
 * counted with mincore(), and a file with more than 5% of its pages still
 * cached fails the run: a "cold" figure read from the cache would flatter
 * recovery.
 */
double bench_drop_cached(const struct bench *b, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        bench_child_fail("%s: %s", dir, strerror(errno));
    /* Whatever else is dirty on the file system (the store of the step
     * before) would otherwise be written back under the clock. */
    if (syncfs(dirfd(d)) != 0)
        bench_child_fail("syncfs %s: %s", dir, strerror(errno));
    double worst = 0;
    struct dirent *e;
    while ((errno = 0, e = readdir(d)) != NULL) {
        char path[PATH_LEN];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            bench_child_fail("path too long: %s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &sb) != 0)
            bench_child_fail("%s: %s", path, strerror(errno));
        if (!S_ISREG(sb.st_mode)) {
            close(fd);
            continue;
        }
        if (fdatasync(fd) != 0)
            bench_child_fail("fdatasync %s: %s", path, strerror(errno));
        int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (rc != 0)
            bench_child_fail("posix_fadvise %s: %s", path, strerror(rc));
        size_t size = (size_t)sb.st_size;
        if (size > 0) {
            size_t pages = (size + b->page_size - 1) / b->page_size, cached = 0;
            unsigned char *vec = malloc(pages);
            void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
            if (vec == NULL)
                bench_child_fail("out of memory");
            if (m == MAP_FAILED)
                bench_child_fail("mmap %s: %s", path, strerror(errno));
            if (mincore(m, size, vec) != 0)
                bench_child_fail("mincore %s: %s", path, strerror(errno));
            for (size_t i = 0; i < pages; i++)
                cached += vec[i] & 1;
            munmap(m, size);
            free(vec);
            double frac = (double)cached / (double)pages;
            if (frac > 0.05)
                bench_child_fail("%s: %.1f%% of its pages still in the page cache after "
                                 "fdatasync and POSIX_FADV_DONTNEED; no cold figure can be "
                                 "measured here", path, 100 * frac);
            if (frac > worst)
                worst = frac;
        }
        close(fd);
    }
    if (errno != 0)
        bench_child_fail("readdir %s: %s", dir, strerror(errno));
    closedir(d);
    return worst;
}

struct rfloor_arg {
    char   dir[PATH_LEN];
    size_t bytes;
    int    cold;       /* drop the store from the page cache first */
};

static void child_read_floor(const struct bench *b, const void *argp, void *outp)
{
    const struct rfloor_arg *a = argp;
    struct rfloor_result *r = outp;
    char path[PATH_LEN];
    if ((size_t)snprintf(path, sizeof path, "%s/lrvm.log", a->dir) >= sizeof path)
        bench_child_fail("path too long");
    if (a->cold)
        r->cached = bench_drop_cached(b, a->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        bench_child_fail("%s: %s", path, strerror(errno));
    char *buf = malloc(CHUNK);
    if (buf == NULL)
        bench_child_fail("out of memory");
    uint64_t got = 0;
    double t0 = now();
    while (got < a->bytes) {
        size_t want = a->bytes - got < CHUNK ? (size_t)(a->bytes - got) : CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_child_fail("read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    r->secs = now() - t0;
    r->bytes = got;
    free(buf);
    close(fd);
}

int bench_read_floor(struct bench *b, const char *what, const char *dir, size_t bytes,
                     int cold, struct rfloor_result *r)
{
    struct rfloor_arg a = { .bytes = bytes, .cold = cold };
    size_t len = strlen(dir);
    if (len >= sizeof a.dir)
        bench_die(b, "path too long: %s", dir);
    memcpy(a.dir, dir, len + 1);
    return bench_run_child(b, what, child_read_floor, &a, r, sizeof *r);
}
