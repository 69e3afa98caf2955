/*
 * bench-pmem.c -- lrvm-bench's small-tx workload run on PMDK's libpmemobj
 * instead of lrvm, so that lrvm's transactions can be set beside
 * libpmemobj's on the same machine.
 *
 * The figure to compare with was taken "with flushing to memory forced
 * off": libpmem treats the pool as persistent memory (PMEM_IS_PMEM_FORCE=1,
 * so no msync) and issues no CPU cache flush (PMEM_NO_FLUSH=1). libpmem(7)
 * says PMEM_NO_FLUSH, unlike PMEM_IS_PMEM_FORCE, is read once when the
 * library initialises, and libpmem initialises in a load-time constructor.
 * Linked into lrvm-bench, it would have read the variable before main, so
 * libpmemobj is not linked: it is loaded with dlopen after setenv, inside
 * the child process lrvm-bench makes for each measurement. Its header is
 * still used for the types and the TX_ macros, whose calls go through the
 * pointers dlsym gives.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "bench-pmem.h"

#include <stdarg.h>
#include <stdio.h>

/* Fills err (when there is one) and returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#ifdef HAVE_LIBPMEMOBJ

/* The inline pmemobj_direct reads libpmemobj's own variables, which only
 * a program linked with the library can reach; ask for the function. */
#define PMEMOBJ_DIRECT_NON_INLINE 1

#include <dlfcn.h>
#include <errno.h>
#include <libpmem.h>
#include <libpmemobj.h>
#include <limits.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* PMDK's sonames, unchanged through its 1.x releases. */
#define PMEMOBJ_SONAME "libpmemobj.so.1"
#define PMEM_SONAME    "libpmem.so.1"

/* Pool room beyond the area: pool and heap headers, the lanes with their
 * inline undo logs, chunk headers, and the undo log a 256-range warm-up
 * transaction grows on the heap: several MiB for a 64 MiB area, and a
 * margin for other libpmemobj versions (doc/architecture.md). */
#define POOL_EXTRA  ((size_t)32 << 20)
#define POOL_NAME   "pmemobj.pool"
#define POOL_LAYOUT "lrvm-bench small-tx"

/*
 * Every libpmemobj and libpmem function used here. Each gets a pointer of
 * its declared type, filled by dlsym, and its name is then defined to call
 * through that pointer, so the code below (and the TX_ macros, which call
 * pmemobj_tx_begin and the others by name) reads as plain libpmemobj code.
 */
#define PMEM_FUNCTIONS(X)            \
    X(pmemobj_check_version)         \
    X(pmemobj_errormsg)              \
    X(pmemobj_create)                \
    X(pmemobj_close)                 \
    X(pmemobj_root)                  \
    X(pmemobj_direct)                \
    X(pmemobj_tx_begin)              \
    X(pmemobj_tx_stage)              \
    X(pmemobj_tx_process)            \
    X(pmemobj_tx_end)                \
    X(pmemobj_tx_errno)              \
    X(pmemobj_tx_add_range_direct)   \
    X(pmem_is_pmem)

#define DECLARE_POINTER(name) __typeof__(name) *name;
static struct {
    PMEM_FUNCTIONS(DECLARE_POINTER)
} lib;

#define SYMBOL_SLOT(name) { #name, (void **)&lib.name },
static const struct {
    const char *name;
    void      **slot;
} symbols[] = { PMEM_FUNCTIONS(SYMBOL_SLOT) };

#define pmemobj_check_version       (*lib.pmemobj_check_version)
#define pmemobj_errormsg            (*lib.pmemobj_errormsg)
#define pmemobj_create              (*lib.pmemobj_create)
#define pmemobj_close               (*lib.pmemobj_close)
#define pmemobj_root                (*lib.pmemobj_root)
#define pmemobj_direct              (*lib.pmemobj_direct)
#define pmemobj_tx_begin            (*lib.pmemobj_tx_begin)
#define pmemobj_tx_stage            (*lib.pmemobj_tx_stage)
#define pmemobj_tx_process          (*lib.pmemobj_tx_process)
#define pmemobj_tx_end              (*lib.pmemobj_tx_end)
#define pmemobj_tx_errno            (*lib.pmemobj_tx_errno)
#define pmemobj_tx_add_range_direct (*lib.pmemobj_tx_add_range_direct)
#define pmem_is_pmem                (*lib.pmem_is_pmem)

static int is_one(const char *value)
{
    return value != NULL && strcmp(value, "1") == 0;
}

/* Set the environment, then load libpmemobj (and with it libpmem) and look
 * up the functions; once per process, as the library stays loaded. */
static int load_libpmemobj(char *err, size_t errlen)
{
    static int loaded;
    if (loaded)
        return 0;

    /* A libpmem already in the process read PMEM_NO_FLUSH when it was
     * loaded; unless the variable was 1 then, flushing stays on, and the
     * figure would not be the one meant. */
    void *early = dlopen(PMEM_SONAME, RTLD_LAZY | RTLD_NOLOAD);
    if (early != NULL) {
        dlclose(early);
        if (!is_one(getenv("PMEM_NO_FLUSH")))
            return fail(err, errlen, "%s was loaded before PMEM_NO_FLUSH=1 could be set: "
                        "its CPU cache flushes cannot be turned off", PMEM_SONAME);
    }
    if (setenv("PMEM_IS_PMEM_FORCE", "1", 1) != 0 || setenv("PMEM_NO_FLUSH", "1", 1) != 0)
        return fail(err, errlen, "setenv: %s", strerror(errno));

    void *handle = dlopen(PMEMOBJ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        return fail(err, errlen, "cannot load %s: %s", PMEMOBJ_SONAME, dlerror());
    /* dlsym searches the handle's dependencies too, so libpmem's
     * pmem_is_pmem is found through libpmemobj's handle. */
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = dlsym(handle, symbols[i].name);
        if (fn == NULL) {
            const char *why = dlerror();
            int rc = fail(err, errlen, "%s: %s", PMEMOBJ_SONAME,
                          why != NULL ? why : "a function is missing");
            dlclose(handle);
            return rc;
        }
        *symbols[i].slot = fn;
    }
    /* The header compiled against and the library loaded must agree on
     * the structures and macros used here. */
    const char *mismatch = pmemobj_check_version(PMEMOBJ_MAJOR_VERSION, PMEMOBJ_MINOR_VERSION);
    if (mismatch != NULL) {
        int rc = fail(err, errlen, "%s: %s", PMEMOBJ_SONAME, mismatch);
        dlclose(handle);
        return rc;
    }
    loaded = 1;
    return 0;
}

/* A transaction aborted: its error number, never 0. */
static int abort_errno(void)
{
    int e = pmemobj_tx_errno();
    return e != 0 ? e : ECANCELED;
}

/*
 * The warm-up transaction over pages [first, end): a word of each page
 * changed. Returns 0, or the error number of the abort. A failing
 * pmemobj_tx_add_range_direct aborts the transaction (libpmemobj's default
 * failure behaviour) and jumps to TX_ONABORT.
 */
static int warm_tx(PMEMobjpool *pop, uint64_t *words, size_t words_per_page, size_t first,
                   size_t end)
{
    volatile int aborted = 0;
    TX_BEGIN(pop) {
        for (size_t page = first; page < end; page++) {
            uint64_t *wp = words + page * words_per_page;
            pmemobj_tx_add_range_direct(wp, sizeof *wp);
            *wp ^= ALL_BYTES;
        }
    } TX_ONABORT {
        aborted = abort_errno();
    } TX_END
    return aborted;
}

/* One small-tx transaction; as warm_tx for what it returns. */
static int small_tx(PMEMobjpool *pop, uint64_t *words, size_t nwords, uint64_t *seed)
{
    volatile int aborted = 0;
    TX_BEGIN(pop) {
        for (int i = 0; i < TX_WORDS; i++) {
            uint64_t *wp = words + xorshift64(seed) % nwords;
            pmemobj_tx_add_range_direct(wp, sizeof *wp);
            *wp ^= xorshift64(seed) | ALL_BYTES;
        }
    } TX_ONABORT {
        aborted = abort_errno();
    } TX_END
    return aborted;
}

/* The workload on a pool just made. */
static int run_on_pool(PMEMobjpool *pop, size_t seg_size, long max_tx, double cap_secs,
                       struct bench_pmem_result *res, char *err, size_t errlen)
{
    PMEMoid root = pmemobj_root(pop, seg_size);
    if (OID_IS_NULL(root))
        return fail(err, errlen, "pmemobj_root of %zu bytes: %s", seg_size, pmemobj_errormsg());
    uint64_t *words = pmemobj_direct(root);
    if (words == NULL)
        return fail(err, errlen, "pmemobj_direct of the root object: %s", pmemobj_errormsg());
    res->pmem = pmem_is_pmem(words, seg_size) ? 1 : 0;

    /* Warm-up, untimed, as lrvm-bench does for lrvm: every page of the
     * area written once, so every page is resident. */
    long page_size = sysconf(_SC_PAGESIZE);
    size_t words_per_page = page_size > 8 ? (size_t)page_size / 8 : 1;
    size_t nwords = seg_size / 8, npages = nwords / words_per_page;
    for (size_t page = 0; page < npages; page += WARM_BATCH) {
        size_t end = npages - page < WARM_BATCH ? npages : page + WARM_BATCH;
        int e = warm_tx(pop, words, words_per_page, page, end);
        if (e != 0)
            return fail(err, errlen, "warm-up transaction at page %zu aborted: %s (%s)", page,
                        strerror(e), pmemobj_errormsg());
    }

    uint64_t seed = SEED;
    long n = 0;
    double t0 = now(), deadline = t0 + cap_secs;
    while (n < max_tx) {
        int e = small_tx(pop, words, nwords, &seed);
        if (e != 0)
            return fail(err, errlen, "transaction %ld aborted: %s (%s)", n + 1, strerror(e),
                        pmemobj_errormsg());
        n++;
        if (now() >= deadline)
            break;
    }
    res->secs = now() - t0;
    res->tx = (uint64_t)n;
    return 0;
}

int bench_pmem_available(void)
{
    return 1;
}

int bench_pmem_small_tx(const char *dir, size_t seg_size, long max_tx, double cap_secs,
                        struct bench_pmem_result *res, char *err, size_t errlen)
{
    if (res == NULL || dir == NULL)
        return fail(err, errlen, "bench_pmem_small_tx: no directory or no result");
    memset(res, 0, sizeof *res);
    if (seg_size < 8)
        return fail(err, errlen, "an area of %zu bytes holds no 8-byte word", seg_size);
    if (seg_size > SIZE_MAX - POOL_EXTRA)
        return fail(err, errlen, "an area of %zu bytes is too big", seg_size);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, POOL_NAME) >= sizeof path)
        return fail(err, errlen, "path too long: %s/%s", dir, POOL_NAME);
    if (load_libpmemobj(err, errlen) != 0)
        return -1;

    /* Refuse a file that is there already: the removal below would take it. */
    if (access(path, F_OK) == 0)
        return fail(err, errlen, "%s exists already", path);
    size_t pool_size = seg_size + POOL_EXTRA;
    if (pool_size < PMEMOBJ_MIN_POOL)
        pool_size = PMEMOBJ_MIN_POOL;
    PMEMobjpool *pop = pmemobj_create(path, POOL_LAYOUT, pool_size, 0600);
    if (pop == NULL) {
        int rc = fail(err, errlen, "pmemobj_create %s (%zu bytes): %s", path, pool_size,
                      pmemobj_errormsg());
        unlink(path);           /* in case a part of it was made */
        return rc;
    }
    int rc = run_on_pool(pop, seg_size, max_tx, cap_secs, res, err, errlen);
    pmemobj_close(pop);
    if (unlink(path) != 0 && rc == 0)
        rc = fail(err, errlen, "cannot remove %s: %s", path, strerror(errno));
    return rc;
}

#else /* !HAVE_LIBPMEMOBJ */

int bench_pmem_available(void)
{
    return 0;
}

int bench_pmem_small_tx(const char *dir, size_t seg_size, long max_tx, double cap_secs,
                        struct bench_pmem_result *res, char *err, size_t errlen)
{
    (void)dir;
    (void)seg_size;
    (void)max_tx;
    (void)cap_secs;
    if (res != NULL) {
        res->tx = 0;
        res->secs = 0;
        res->pmem = 0;
    }
    return fail(err, errlen, "lrvm-bench was built without libpmemobj");
}

#endif /* HAVE_LIBPMEMOBJ */
