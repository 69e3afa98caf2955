/*
 * check_crashstates.c -- crash states enumerated, not sampled: for every
 * sync call of a workload, every disk state a power cut there may leave
 * (tu_crash_states: each page of each file holding any of its unsynced
 * versions, each name change made or not), recovered and checked.
 *
 * The workload makes a store and runs commits of both kinds, flushed and
 * not, a flush among them, across several truncations (a small
 * threshold), then closes the store. Each commit's bytes are fixed by its
 * number, so the segments after the first K commits are known for every
 * K. After a cut, recovery must open the store and leave the segments as
 * after some K commits, a prefix, with K at least the number of commits
 * whose durability a sync had confirmed before the cut and at most the
 * number begun. Recovery itself is cut too: for some states, at every
 * sync call of the recovery, the states that cut may leave must recover
 * to the same K as the uninterrupted recovery.
 *
 * LRVM_CRASH_STATES sets how many states a cut may have before they are
 * sampled instead (default 4096, as the issue asks: 2^12).
 */
#define _GNU_SOURCE
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_A   16384u
#define SEG_B   8192u
#define COMMITS 20

/* What the workload has done, in memory shared with the parent. */
struct progress {
    _Atomic int begun;        /* commits called */
    _Atomic int durable;      /* commits a returned sync made durable */
};

static struct progress *prog;
static unsigned char    exp_a[COMMITS + 1][SEG_A], exp_b[COMMITS + 1][SEG_B];
static char             store[4200];

/* The ranges of commit I: a few, of sizes from one word to most of a
 * segment, so that records of many sizes and pages of both segments are
 * written. */
struct range {
    int    seg;
    size_t off, len;
};

static int ranges_of(int i, struct range *r)
{
    static const size_t lens[] = { 8, 100, 700, 3000, 5000, 9000 };
    uint64_t x = tu_mix64((uint64_t)i + 77);
    int n = 1 + (int)(x % 3);
    for (int k = 0; k < n; k++) {
        x = tu_mix64(x);
        r[k].seg = (int)(x % 2);
        size_t size = r[k].seg == 0 ? SEG_A : SEG_B;
        r[k].len = lens[(x >> 8) % 6];
        if (r[k].len > size / 2)
            r[k].len = size / 2;
        r[k].off = (size_t)((x >> 20) % (size - r[k].len));
    }
    return n;
}

static unsigned char byte_of(int i, size_t pos)
{
    return (unsigned char)(i * 7 + 1 + pos * 13);
}

static void expected_images(void)
{
    memset(exp_a[0], 0, SEG_A);
    memset(exp_b[0], 0, SEG_B);
    for (int i = 0; i < COMMITS; i++) {
        memcpy(exp_a[i + 1], exp_a[i], SEG_A);
        memcpy(exp_b[i + 1], exp_b[i], SEG_B);
        struct range r[3];
        int n = ranges_of(i, r);
        for (int k = 0; k < n; k++) {
            unsigned char *img = r[k].seg == 0 ? exp_a[i + 1] : exp_b[i + 1];
            for (size_t j = 0; j < r[k].len; j++)
                img[r[k].off + j] = byte_of(i, r[k].off + j);
        }
    }
}

static const lrvm_options_t opts = {
    .tracking = LRVM_TRACK_EXPLICIT,
    .truncate_threshold = 16384,        /* a truncation every few commits */
    .log_buffer_size = 4096,            /* (the default's 2 MiB a store costs
                                           more than these commits) */
};

/* The workload, in the child (failures end it with status 2, which the
 * harness reports as an operation that failed before the cut). */
static void workload(void *arg)
{
    (void)arg;
    lrvm_t *s;
    void *a, *b;
    if (lrvm_open(store, &opts, &s) != 0 || lrvm_map(s, "a", SEG_A, &a) != 0 ||
        lrvm_map(s, "b", SEG_B, &b) != 0)
        _exit(2);
    for (int i = 0; i < COMMITS; i++) {
        void *segs[2] = { a, b };
        lrvm_tx_t *tx;
        if (lrvm_begin(s, 2, segs, &tx) != 0)
            _exit(2);
        struct range r[3];
        int n = ranges_of(i, r);
        for (int k = 0; k < n; k++) {
            unsigned char *p = (unsigned char *)segs[r[k].seg] + r[k].off;
            if (lrvm_set_range(tx, p, r[k].len) != 0)
                _exit(2);
            for (size_t j = 0; j < r[k].len; j++)
                p[j] = byte_of(i, r[k].off + j);
        }
        int flush = i % 3 != 1;
        atomic_store(&prog->begun, i + 1);
        if (lrvm_commit(tx, flush ? 0 : LRVM_NO_FLUSH) != 0)
            _exit(2);
        if (flush || (i % 6 == 4 && lrvm_flush(s) == 0))
            atomic_store(&prog->durable, i + 1);
    }
    if (lrvm_close(s) != 0)
        _exit(2);
}

/* Recovery alone: what lrvm_open does with the store as it is. */
static void recovery(void *arg)
{
    (void)arg;
    lrvm_t *s;
    if (lrvm_open(store, &opts, &s) != 0 || lrvm_close(s) != 0)
        _exit(2);
}

/* Open the store after a cut and say which prefix its segments hold: K,
 * or -1 when they hold none. */
static int recovered_prefix(const char *what)
{
    lrvm_t *s;
    void *a, *b;
    int rc = lrvm_open(store, &opts, &s);
    ck_assert_msg(rc == 0, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
    ck_assert_msg(lrvm_map(s, "a", SEG_A, &a) == 0 && lrvm_map(s, "b", SEG_B, &b) == 0,
                  "%s: lrvm_map failed", what);
    int k = COMMITS;
    while (k >= 0 && (memcmp(a, exp_a[k], SEG_A) != 0 || memcmp(b, exp_b[k], SEG_B) != 0))
        k--;
    ck_assert_int_eq(lrvm_close(s), 0);
    return k;
}

/* The check of one state of the workload's cut. */
struct outer {
    unsigned long states;     /* checked so far, in every cut */
    unsigned long every;      /* cut the recovery of every EVERYth state */
    unsigned long nested;     /* states of cut recoveries checked */
    int           nested_k[4096];
    unsigned long n_nested_k;
    int           seen[COMMITS + 1];  /* prefixes recovered */
    unsigned long lost;       /* states that lost a commit not yet durable */
};

static void check_nested(void *arg, const char *what)
{
    struct outer *o = arg;
    int k = recovered_prefix(what);
    if (o->n_nested_k < sizeof o->nested_k / sizeof o->nested_k[0])
        o->nested_k[o->n_nested_k++] = k;
    o->nested++;
}

static void check_state(void *arg, const char *what)
{
    struct outer *o = arg;
    int durable = atomic_load(&prog->durable), begun = atomic_load(&prog->begun);
    o->n_nested_k = 0;
    if (o->every != 0 && o->states % o->every == 0) {
        unsigned long max = 16;
        for (unsigned long m = 1; tu_crash_states(store, m, max, recovery, check_nested, o, NULL) > 0;
             m++)
            ;
    }
    o->states++;
    int k = recovered_prefix(what);
    ck_assert_msg(k >= durable && k <= begun,
                  "%s: the segments hold %s%d commits; %d were durable, %d begun", what,
                  k < 0 ? "no prefix of the " : "the first ", k < 0 ? COMMITS : k, durable,
                  begun);
    o->seen[k] = 1;
    o->lost += k < begun;
    for (unsigned long j = 0; j < o->n_nested_k; j++)
        ck_assert_msg(o->nested_k[j] == k,
                      "%s: a recovery cut part way recovered %d commits, not %d", what,
                      o->nested_k[j], k);
}

static unsigned long max_states(void)
{
    const char *e = getenv("LRVM_CRASH_STATES");
    return e != NULL && e[0] != '\0' ? strtoul(e, NULL, 0) : 4096;
}

static void setup(void)
{
    prog = mmap(NULL, sizeof *prog, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(prog != MAP_FAILED);
    snprintf(store, sizeof store, "%s/store", tu_dir);
}

static void teardown(void)
{
    munmap(prog, sizeof *prog);
}

/* Every state of every sync call of the workload recovers to a prefix
 * that holds every commit made durable before the cut; every 32nd state's
 * recovery is itself cut at each of its syncs, and the states of those
 * cuts (all of them up to 16 a cut, else 16 drawn) recover the same
 * prefix. */
START_TEST(test_every_crash_state_recovers_a_durable_prefix)
{
    struct outer *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->every = 32;
    unsigned long cuts = 0, sampled = 0, max = max_states();
    uint64_t most = 0;
    for (unsigned long n = 1;; n++) {
        uint64_t count = 0;
        tu_rmrf(store);
        atomic_store(&prog->begun, 0);
        atomic_store(&prog->durable, 0);
        if (tu_crash_states(store, n, max, workload, check_state, o, &count) == 0)
            break;
        cuts++;
        sampled += count > max;
        most = count > most ? count : most;
    }
    int prefixes = 0;
    for (int k = 0; k <= COMMITS; k++)
        prefixes += o->seen[k];
    char most_s[32];
    snprintf(most_s, sizeof most_s, most == UINT64_MAX ? "over 2^64" : "%" PRIu64, most);
    fprintf(stderr, "crash states: %lu sync calls cut (%lu sampled, the most states of one "
            "cut %s), %lu states recovered (%d distinct prefixes, %lu lost commits "
            "not yet durable), %lu states of cut recoveries\n",
            cuts, sampled, most_s, o->states, prefixes, o->lost, o->nested);
    /* The states are real choices, not the one a kill leaves: commits not
     * yet durable are lost in some and kept in others. */
    ck_assert_uint_gt(cuts, 10);
    ck_assert_uint_gt(o->lost, 0);
    ck_assert_int_gt(prefixes, COMMITS / 2);
    ck_assert_uint_gt(o->nested, 0);
    free(o);
}
END_TEST

static Suite *crashstates_suite(void)
{
    Suite *s = suite_create("crashstates");
    TCase *tc = tu_tcase("enumerated", 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_crash_state_recovers_a_durable_prefix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (tu_quick_skip("crashstates"))   /* long: not in the quick subset */
        return 77;
    expected_images();
    return tu_run_suite(crashstates_suite());
}
