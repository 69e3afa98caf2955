/*
 * lrvm-crashtest -- kill -9 torture of a store.
 *
 * A worker process opens the store and carries out a known history: step
 * i writes the counter i at offset 0 of segment "a" and a few ranges,
 * derived from the seed and i, in segments "a" and "b". Steps are
 * flushing commits, no-flush commits, transactions aborted and then
 * redone, or (auto and mixed modes) ambient stores made durable with
 * lrvm_sync. The worker tells the parent each step it knows durable. After
 * a random delay the parent kills it with SIGKILL, opens the store (which
 * runs recovery) and checks the prefix property: the segments hold exactly
 * steps 1..c of the history, c is at least every step reported durable and
 * never less than the round before. Then the next round's worker goes on
 * from c. Kills land anywhere: in a commit, a truncation, a fault handler,
 * or the worker's own recovery at open. Every other round's delay counts
 * from the worker's report of its open, so that rounds kill it in the
 * middle of its steps however long its open takes.
 *
 * With --threads N the worker runs N such histories at once, thread t on
 * segments "a<t>" and "b<t>" with a history of its own, so flushing
 * commits meet in group commits; each thread's segments must then hold a
 * prefix of its history. With --shared (explicit mode) the threads share
 * one segment "b" instead, in shared transactions (lrvm_begin_shared):
 * thread t's image of b is its part of it, SHARED_SKEW + t * B_SIZE on,
 * so neighbouring parts meet inside a page, and no byte is two threads'.
 *
 * With --heap a history lives on a persistent heap ("h", or "h<t>")
 * instead: its root object holds the step counter and a table of slots;
 * step i frees the block of one slot and puts a new block there, of a
 * size and with bytes derived from the seed and i. After recovery the
 * heap must open (lrvm_heap_open checks its structure), the counter must
 * be a step c, and every slot must hold the block of the last step up to
 * c that wrote it, byte for byte. An aborted attempt frees and allocates
 * too, and its abort must undo both. A block leaked by a partial step
 * shows as a heap that runs out: its size leaves room for the live blocks
 * and their fragments, not for leaks over many rounds. With --shared as
 * well the threads share one heap "h", each in shared transactions of its
 * own: the heap's root is a table of the histories' roots, made with the
 * heap, and each history's steps change only its own root and blocks.
 *
 * The parent keeps each history's image in memory, advanced step by step,
 * so a round costs what its steps cost, however long the run.
 *
 * Exit status: 0 every round verified; 1 a round found the store holding
 * something other than a prefix of the history (the store is kept, and
 * the seed printed); 2 bad usage, or the test could not run.
 */
#define _GNU_SOURCE
#include "lrvm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define A_SIZE   ((size_t)1 << 20)
#define B_SIZE   ((size_t)256 << 10)
#define BIG_MAX  ((size_t)48 << 10)      /* largest range: a multi-part record */
#define MAX_THREADS 16
#define SHARED_SKEW ((size_t)2048)       /* --shared: where the parts of b start */
#define HEAP_SIZE ((size_t)1 << 20)      /* --heap: each history's heap (with
                                            --shared, each history's share) */
#define HEAP_SLOTS 64
#define HEAP_BLOCK_MAX 4096              /* largest block a step allocates */

enum mode { MODE_EXPLICIT, MODE_AUTO, MODE_AMBIENT, MODE_MIXED };
static const char *const mode_names[] = { "explicit", "auto", "ambient", "mixed" };

/* What a step is, chosen from its number. */
enum step_kind { STEP_FLUSH, STEP_NOFLUSH, STEP_ABORT_REDO, STEP_SYNC };

struct config {
    const char *dir;
    int         rounds;          /* 0: until seconds run out */
    double      seconds;
    enum mode   mode;
    uint64_t    seed;
    unsigned    max_delay_ms;
    size_t      threshold;       /* truncate_threshold of the worker */
    size_t      resident_limit;  /* the worker's resident_limit (0: the default) */
    unsigned    noflush_pct;     /* of transactions */
    int         threads;         /* histories run at once by the worker */
    int         keep;            /* keep the store after a clean run */
    int         undeclared;      /* self-test: leave a range undeclared */
    int         heap;            /* histories on persistent heaps */
    int         shared;          /* the threads share segment b */
    int         tracker;         /* LRVM_TRACK_* of the automatic modes */
};

static const char *prog = "lrvm-crashtest";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* splitmix64's finalizer */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ------------------------------------------------------------ the history */

/* Thread T's history has a seed of its own (thread 0's is --seed). */
static uint64_t history_seed(const struct config *c, int t)
{
    return t == 0 ? c->seed : c->seed ^ mix((uint64_t)t);
}

static enum step_kind step_kind(const struct config *c, int t, uint64_t i)
{
    uint64_t r = mix(history_seed(c, t) ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x5eed);
    enum mode m = c->mode;
    if (m == MODE_AMBIENT || (m == MODE_MIXED && r % 5 == 0))
        return STEP_SYNC;
    if ((r >> 8) % 16 == 0)
        return STEP_ABORT_REDO;
    return (r >> 16) % 100 < c->noflush_pct ? STEP_NOFLUSH : STEP_FLUSH;
}

/* Declare a range before it is written (explicit mode), or do nothing. */
struct declarer {
    lrvm_tx_t *tx;
    int        skip_last;       /* --undeclared: this step's last range */
    int        failed;          /* the first lrvm_set_range error, or 0 */
};

static void declare(struct declarer *d, void *p, size_t len, int last)
{
    if (d == NULL || d->tx == NULL || (last && d->skip_last))
        return;
    int rc = lrvm_set_range(d->tx, p, len);
    if (rc != 0 && d->failed == 0)
        d->failed = rc;
}

/* Write step I (or, with GARBLE, other bytes at the same places: what an
 * aborted attempt writes) into the images A and B. */
static void apply_step(const struct config *c, int t, uint64_t i, unsigned char *a,
                       unsigned char *b, struct declarer *d, int garble)
{
    uint64_t r = mix(history_seed(c, t) + i * 0x100000001b3ull);
    unsigned n = 1 + (unsigned)(r % 6);
    declare(d, a, 8, 0);
    uint64_t counter = garble ? ~i : i;
    memcpy(a, &counter, 8);
    for (unsigned k = 0; k < n; k++) {
        uint64_t q = mix(r + k + 1);
        int inb = q & 1;
        unsigned char *base = inb ? b : a;
        size_t size = inb ? B_SIZE : A_SIZE, lo = inb ? 0 : 8;
        size_t len = (q >> 4) % 16 == 0 ? 1 + (size_t)((q >> 16) % BIG_MAX)
                                        : 1 + (size_t)((q >> 16) % 256);
        size_t off = lo + (size_t)((q >> 32) % (size - lo - len + 1));
        declare(d, base + off, len, k == n - 1);
        unsigned char v = (unsigned char)(i * 31 + k * 7 + (garble ? 0x55 : 0));
        for (size_t j = 0; j < len; j++)
            base[off + j] = (unsigned char)(v + j);
    }
}

/* --heap: what step I of history T puts in its slot. */
struct heap_step {
    unsigned slot;
    size_t   size;
    unsigned char first;        /* byte k of the block is first + k */
};

static struct heap_step heap_step_of(const struct config *c, int t, uint64_t i, int garble)
{
    uint64_t r = mix(history_seed(c, t) + i * 0x100000001b3ull + 0x4ea9);
    return (struct heap_step){
        (unsigned)(r % HEAP_SLOTS),
        1 + (size_t)((r >> 8) % HEAP_BLOCK_MAX),
        (unsigned char)(i * 31 + (garble ? 0x55 : 0)),
    };
}

/* The root object of a history's heap. */
struct heap_root {
    uint64_t       step;
    unsigned char *slot[HEAP_SLOTS];
};

/* --heap --shared: the root object of the one heap, the histories'
 * roots. */
struct heap_roots {
    struct heap_root *of[MAX_THREADS];
};

/* ------------------------------------------------------------ the worker */

/* Thread T's segment "a", "b" or "h": named so alone, with T appended
 * when the worker runs several threads (but b and h when they share
 * them). */
static const char *seg_name(const struct config *c, char which, int t, char buf[16])
{
    if (c->threads == 1 || (c->shared && which != 'a'))
        snprintf(buf, 16, "%c", which);
    else
        snprintf(buf, 16, "%c%d", which, t);
    return buf;
}

/* --shared: the size of b, and where in it thread T's part starts (0
 * when b is T's alone); its part of b mapped at BASE. */
static size_t shared_b_size(const struct config *c)
{
    return SHARED_SKEW + (size_t)c->threads * B_SIZE;
}

static size_t part_off(const struct config *c, int t)
{
    return c->shared ? SHARED_SKEW + (size_t)t * B_SIZE : 0;
}

static unsigned char *shared_part(const struct config *c, void *base, int t)
{
    return (unsigned char *)base + part_off(c, t);
}

/* The size of a heap: a history's, or with --shared the one all share
 * (a share each, and one more for the caches the threads keep). */
static size_t heap_size(const struct config *c)
{
    return c->shared ? (size_t)(c->threads + 1) * HEAP_SIZE : HEAP_SIZE;
}

/* Messages on the pipe from worker to parent. */
enum { MSG_OPEN = 1, MSG_DURABLE = 2 };
struct msg {
    uint32_t type;
    uint32_t thread;
    uint64_t step;
};

/* The worker's exit statuses: the call that failed. */
enum { W_OPEN = 10, W_MAP, W_BEGIN, W_RANGE, W_COMMIT, W_ABORT, W_SYNC, W_PIPE, W_MALLOC };
static const char *const worker_calls[] = {
    "lrvm_open", "lrvm_map or lrvm_heap_open", "lrvm_begin or lrvm_begin_shared",
    "lrvm_set_range", "lrvm_commit",
    "lrvm_abort", "lrvm_sync", "a write to the parent",
    "lrvm_malloc (the heap is full: blocks leaked by earlier rounds?)",
};

/* The worker's call WHAT failed with ERR (an LRVM_E* code): say which
 * error on stderr, since the exit status names only the call, and exit. */
static void worker_fail(int what, int err)
{
    fprintf(stderr, "%s: worker: %s: %s\n", prog, worker_calls[what - W_OPEN],
            lrvm_strerror(err));
    _exit(what);
}

/* RC of the worker's call WHAT: go on when it is 0. */
static void worker_check(int what, int rc)
{
    if (rc != 0)
        worker_fail(what, rc);
}

static void send_msg(int fd, uint32_t type, int t, uint64_t step)
{
    struct msg m = { type, (uint32_t)t, step };
    if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(W_PIPE);
}

struct history_run {
    const struct config *c;
    lrvm_t              *s;
    int                  t, fd;
    void                *bases[2];      /* the segments its transactions hold */
    unsigned char       *b;             /* its image of b: bases[1], or its part */
    lrvm_heap_t         *heap;          /* --heap: bases[0] is its base */
    struct heap_root    *root;          /* --heap --shared: its root, made with the heap */
};

/* --heap: carry out step I (or, with GARBLE, an attempt to be aborted) on
 * the heap of history H, whose root is ROOT; D declares in explicit mode. */
static void heap_apply(const struct history_run *h, struct heap_root *root, uint64_t i,
                       struct declarer *d, int garble)
{
    struct heap_step st = heap_step_of(h->c, h->t, i, garble);
    lrvm_free(h->heap, root->slot[st.slot]);
    unsigned char *p = lrvm_malloc(h->heap, st.size);
    if (p == NULL)
        worker_fail(W_MALLOC, lrvm_last_error());   /* a leak fills the heap: see the top */
    /* --undeclared leaves the block's bytes out, but not in an attempt to
     * be aborted: there they would overwrite words of the heap that the
     * abort does not restore (a merged neighbour's header), and the heap
     * would report itself broken (LRVM_ECORRUPT) before the check could
     * catch the lost write. */
    declare(d, p, st.size, !garble);
    for (size_t k = 0; k < st.size; k++)
        p[k] = (unsigned char)(st.first + k);
    declare(d, &root->slot[st.slot], sizeof root->slot[0], 0);
    root->slot[st.slot] = p;
    declare(d, &root->step, sizeof root->step, 0);
    root->step = garble ? ~i : i;
}

/* --heap: the root of H's history, on a heap of its own made in a
 * transaction of its own when the heap is new. */
static struct heap_root *heap_root_of(const struct history_run *h)
{
    if (h->root != NULL)
        return h->root;
    struct heap_root *root = lrvm_heap_root(h->heap);
    if (root != NULL)
        return root;
    lrvm_tx_t *tx;
    worker_check(W_BEGIN, lrvm_begin(h->s, 1, h->bases, &tx));
    if ((root = lrvm_calloc(h->heap, 1, sizeof *root)) == NULL)
        worker_fail(W_MALLOC, lrvm_last_error());
    worker_check(W_MALLOC, lrvm_heap_set_root(h->heap, root));
    worker_check(W_COMMIT, lrvm_commit(tx, 0));
    return root;
}

/* One thread of the worker: its history from the step its segments (or
 * its heap) hold. */
static void *run_history(void *arg)
{
    const struct history_run *h = arg;
    const struct config *c = h->c;
    unsigned char *a = h->bases[0], *b = h->b;
    int nbases = c->heap ? 1 : 2;
    int (*begin)(lrvm_t *, int, void *const *, lrvm_tx_t **) =
        c->shared ? lrvm_begin_shared : lrvm_begin;
    struct heap_root *root = c->heap ? heap_root_of(h) : NULL;
    uint64_t i;
    if (root != NULL)
        i = root->step;
    else
        memcpy(&i, a, 8);
    send_msg(h->fd, MSG_OPEN, h->t, i);
    for (i++;; i++) {
        enum step_kind kind = step_kind(c, h->t, i);
        if (kind == STEP_SYNC) {
            if (root != NULL)
                heap_apply(h, root, i, NULL, 0);
            else
                apply_step(c, h->t, i, a, b, NULL, 0);
            worker_check(W_SYNC, lrvm_sync(h->s));
            send_msg(h->fd, MSG_DURABLE, h->t, i);
            continue;
        }
        for (int attempt = kind == STEP_ABORT_REDO ? 0 : 1; attempt < 2; attempt++) {
            lrvm_tx_t *tx;
            worker_check(W_BEGIN, begin(h->s, nbases, h->bases, &tx));
            struct declarer d = {
                c->mode == MODE_EXPLICIT ? tx : NULL,
                c->undeclared && i % 7 == 0, 0
            };
            if (root != NULL)
                heap_apply(h, root, i, &d, attempt == 0);
            else
                apply_step(c, h->t, i, a, b, &d, attempt == 0);
            worker_check(W_RANGE, d.failed);
            if (attempt == 0) {
                worker_check(W_ABORT, lrvm_abort(tx));
                continue;
            }
            worker_check(W_COMMIT, lrvm_commit(tx, kind == STEP_NOFLUSH ? LRVM_NO_FLUSH : 0));
            if (kind != STEP_NOFLUSH)
                send_msg(h->fd, MSG_DURABLE, h->t, i);
        }
    }
    return NULL;
}

/* --heap --shared: the table of the roots of THREADS histories on HEAP,
 * made with a root each in one transaction when the heap is new. */
static struct heap_roots *heap_roots_of(lrvm_t *s, lrvm_heap_t *heap, int threads)
{
    struct heap_roots *roots = lrvm_heap_root(heap);
    if (roots != NULL)
        return roots;
    void *base = lrvm_heap_base(heap);
    lrvm_tx_t *tx;
    worker_check(W_BEGIN, lrvm_begin(s, 1, &base, &tx));
    if ((roots = lrvm_calloc(heap, 1, sizeof *roots)) == NULL)
        worker_fail(W_MALLOC, lrvm_last_error());
    for (int t = 0; t < threads; t++) {
        struct heap_root *root = lrvm_calloc(heap, 1, sizeof *root);
        if (root == NULL)
            worker_fail(W_MALLOC, lrvm_last_error());
        roots->of[t] = root;                /* lrvm_calloc declared its zeros */
    }
    worker_check(W_MALLOC, lrvm_heap_set_root(heap, roots));
    worker_check(W_COMMIT, lrvm_commit(tx, 0));
    return roots;
}

static void worker(const struct config *c, int fd)
{
    lrvm_options_t o = {
        .tracking = c->mode == MODE_EXPLICIT ? LRVM_TRACK_EXPLICIT : c->tracker,
        .truncate_threshold = c->threshold,
        .resident_limit = c->resident_limit,
    };
    struct history_run h[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    char name[16];
    lrvm_t *s;
    worker_check(W_OPEN, lrvm_open(c->dir, &o, &s));
    void *shared_b = NULL;
    lrvm_heap_t *shared_heap = NULL;
    struct heap_roots *roots = NULL;
    if (c->shared && c->heap) {
        worker_check(W_MAP, lrvm_heap_open(s, seg_name(c, 'h', 0, name), heap_size(c),
                                           &shared_heap));
        roots = heap_roots_of(s, shared_heap, c->threads);
    } else if (c->shared) {
        worker_check(W_MAP, lrvm_map(s, "b", shared_b_size(c), &shared_b));
    }
    for (int t = 0; t < c->threads; t++) {
        h[t] = (struct history_run){ c, s, t, fd, { NULL, NULL }, NULL, NULL, NULL };
        if (c->heap) {
            if (roots != NULL) {
                h[t].heap = shared_heap;
                h[t].root = roots->of[t];
                if (h[t].root == NULL)      /* made for fewer threads */
                    worker_fail(W_MAP, LRVM_EINVAL);
            } else {
                worker_check(W_MAP, lrvm_heap_open(s, seg_name(c, 'h', t, name), heap_size(c),
                                                   &h[t].heap));
            }
            h[t].bases[0] = lrvm_heap_base(h[t].heap);
        } else {
            worker_check(W_MAP, lrvm_map(s, seg_name(c, 'a', t, name), A_SIZE, &h[t].bases[0]));
            if (!c->shared)
                worker_check(W_MAP, lrvm_map(s, seg_name(c, 'b', t, name), B_SIZE,
                                             &h[t].bases[1]));
        }
        if (c->heap)
            continue;
        if (c->shared)
            h[t].bases[1] = shared_b;
        h[t].b = shared_part(c, h[t].bases[1], t);
    }
    for (int t = 1; t < c->threads; t++)
        if (pthread_create(&th[t], NULL, run_history, &h[t]) != 0) {
            fprintf(stderr, "%s: worker: pthread_create failed\n", prog);
            _exit(W_OPEN);
        }
    run_history(&h[0]);
}

/* ------------------------------------------------------------ the parent */

/* A history's image, and what one round learnt of it. */
struct model {
    unsigned char *a, *b;       /* the segments; --heap: NULL, and */
    uint64_t      *slot_step;   /*   the last step that wrote each slot, or 0 */
    uint64_t       step;        /* the images hold steps 1..step */
    uint64_t       floor;       /* steps the store held at the last check */
};

struct round_result {
    uint64_t opened_at[MAX_THREADS];  /* counter found at the worker's open;
                                         UINT64_MAX: not reported */
    uint64_t durable[MAX_THREADS];    /* highest step reported durable */
    uint64_t found[MAX_THREADS];      /* steps the store holds after recovery */
    double   recover_secs;
    int      worker_status;
};

static uint64_t pick_delay_us(const struct config *c, uint64_t *rng)
{
    *rng = mix(*rng + 1);
    return *rng % ((uint64_t)c->max_delay_ms * 1000 + 1);
}

#define OPEN_GUARD_MS 60000

/* Read every message the worker sent before TIMEOUT_MS passed (-1: until
 * it closes the pipe); with FROM_OPEN, TIMEOUT_MS counts from the
 * worker's first report of its open (OPEN_GUARD_MS at most before it). */
static void read_msgs(int fd, int timeout_ms, int from_open, struct round_result *r)
{
    double end = now() + (from_open ? OPEN_GUARD_MS : timeout_ms) / 1000.0;
    for (;;) {
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            double left = end - now();
            if (left <= 0)
                return;
            wait_ms = (int)(left * 1000) + 1;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        int n = poll(&p, 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        struct msg m;
        ssize_t got = read(fd, &m, sizeof m);
        if (got <= 0)
            return;
        if (got != (ssize_t)sizeof m || m.thread >= MAX_THREADS)
            die("bad message from the worker");
        if (m.type == MSG_OPEN) {
            r->opened_at[m.thread] = m.step;
            if (from_open) {
                from_open = 0;
                end = now() + timeout_ms / 1000.0;
            }
        } else if (m.step > r->durable[m.thread])
            r->durable[m.thread] = m.step;
    }
}

/* One round: the worker killed DELAY_US after its start, or with
 * FROM_OPEN after its first report of its open (a worker slowed down, as
 * by a sanitizer, would else be killed in its open every time). */
static void run_worker_round(const struct config *c, uint64_t delay_us, int from_open,
                             struct round_result *r)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        worker(c, p[1]);
    }
    close(p[1]);
    read_msgs(p[0], (int)(delay_us / 1000), from_open, r);
    kill(pid, SIGKILL);
    read_msgs(p[0], -1, 0, r);
    close(p[0]);
    while (waitpid(pid, &r->worker_status, 0) < 0 && errno == EINTR)
        ;
}

static size_t first_diff(const unsigned char *x, const unsigned char *y, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (x[k] != y[k])
            return k;
    return SIZE_MAX;
}

/* The store must hold at least NEED steps of history T: it holds FOUND. */
static int enough_steps(int t, uint64_t found, uint64_t need)
{
    if (found >= need)
        return 1;
    fprintf(stderr, "%s: history %d: the store holds steps 1..%" PRIu64 ", but step %" PRIu64
            " was durable (reported by the worker, or found by an earlier open)\n", prog, t,
            found, need);
    return 0;
}

/* Compare thread T's segments A and B with its history M, after checking
 * that they hold at least NEED steps; 0 when they do. */
static int verify_history(const struct config *c, int t, struct model *m, uint64_t need,
                          const unsigned char *a, const unsigned char *b, uint64_t *found)
{
    char name[16];
    memcpy(found, a, 8);
    if (!enough_steps(t, *found, need))
        return 1;
    while (m->step < *found)
        apply_step(c, t, ++m->step, m->a, m->b, NULL, 0);
    size_t da = first_diff(a, m->a, A_SIZE), db = first_diff(b, m->b, B_SIZE);
    if (da == SIZE_MAX && db == SIZE_MAX)
        return 0;
    size_t at = da != SIZE_MAX ? da : db;
    const unsigned char *got = da != SIZE_MAX ? a : b, *want = da != SIZE_MAX ? m->a : m->b;
    size_t in_seg = da != SIZE_MAX ? at : part_off(c, t) + at;
    fprintf(stderr, "%s: segment %s byte %zu is 0x%02x; steps 1..%" PRIu64 " of history %d "
            "give 0x%02x: not a prefix of the history\n", prog,
            seg_name(c, da != SIZE_MAX ? 'a' : 'b', t, name), in_seg, got[at], *found, t,
            want[at]);
    return 1;
}

/* --heap: compare the root ROOT of thread T's history (NULL: none yet)
 * on HEAP with the history M, after checking that it holds at least
 * NEED steps; 0 when it does. */
static int verify_heap_history(const struct config *c, int t, struct model *m, uint64_t need,
                               lrvm_heap_t *heap, const struct heap_root *root,
                               uint64_t *found)
{
    const unsigned char *base = heap != NULL ? lrvm_heap_base(heap) : NULL;
    if (root != NULL && ((const unsigned char *)root < base ||
                         (const unsigned char *)root > base + heap_size(c) - sizeof *root)) {
        fprintf(stderr, "%s: history %d: its root points outside the heap (%p; the heap is at "
                "%p)\n", prog, t, (const void *)root, (const void *)base);
        return 1;
    }
    *found = root != NULL ? root->step : 0;
    if (!enough_steps(t, *found, need))
        return 1;
    while (m->step < *found) {
        m->step++;
        m->slot_step[heap_step_of(c, t, m->step, 0).slot] = m->step;
    }
    for (unsigned j = 0; j < HEAP_SLOTS; j++) {
        const unsigned char *p = root != NULL ? root->slot[j] : NULL;
        if (m->slot_step[j] == 0) {
            if (p == NULL)
                continue;
            fprintf(stderr, "%s: history %d: slot %u holds a block, but no step of 1..%" PRIu64
                    " put one there: not a prefix of the history\n", prog, t, j, *found);
            return 1;
        }
        struct heap_step st = heap_step_of(c, t, m->slot_step[j], 0);
        if (p == NULL) {
            fprintf(stderr, "%s: history %d: slot %u is empty, but step %" PRIu64 " put a block "
                    "there: not a prefix of the history\n", prog, t, j, m->slot_step[j]);
            return 1;
        }
        if (p < base || p > base + heap_size(c) - st.size) {
            fprintf(stderr, "%s: history %d: slot %u points outside its heap (%p; the heap is "
                    "at %p): not a prefix of the history\n", prog, t, j, (const void *)p,
                    (const void *)base);
            return 1;
        }
        for (size_t k = 0; k < st.size; k++)
            if (p[k] != (unsigned char)(st.first + k)) {
                fprintf(stderr, "%s: history %d: byte %zu of the block in slot %u is 0x%02x; "
                        "step %" PRIu64 " wrote 0x%02x: not a prefix of the history\n", prog, t,
                        k, j, p[k], m->slot_step[j], (unsigned char)(st.first + k));
                return 1;
            }
    }
    return 0;
}

/* --heap: open thread T's heap in S after a kill into *HEAP (NULL: there
 * is none yet); lrvm_heap_open checks its structure. 1 when it fails. */
static int open_heap(const struct config *c, lrvm_t *s, int t, lrvm_heap_t **heap)
{
    char path[4200], name[16];
    *heap = NULL;
    /* A worker killed before its open finished may have left no heap. */
    snprintf(path, sizeof path, "%s/%s.seg", c->dir, seg_name(c, 'h', t, name));
    if (access(path, F_OK) != 0)
        return 0;
    int rc = lrvm_heap_open(s, seg_name(c, 'h', t, name), heap_size(c), heap);
    if (rc == 0)
        return 0;
    fprintf(stderr, "%s: lrvm_heap_open after the kill: %s\n", prog, lrvm_strerror(rc));
    return 1;
}

/* Open the store (recovery), compare every history; 0 when each holds a
 * prefix that keeps every promise, else print why and return 1. */
static int verify(const struct config *c, struct model *m, struct round_result *r)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = c->threshold };
    lrvm_t *s;
    char name[16];
    double t0 = now();
    int rc = lrvm_open(c->dir, &o, &s);
    r->recover_secs = now() - t0;
    if (rc != 0) {
        fprintf(stderr, "%s: lrvm_open after the kill: %s\n", prog, lrvm_strerror(rc));
        return 1;
    }
    int bad = 0;
    void *shared_b = NULL;
    if (c->shared && !c->heap && (rc = lrvm_map(s, "b", shared_b_size(c), &shared_b)) != 0) {
        fprintf(stderr, "%s: lrvm_map after the kill: %s\n", prog, lrvm_strerror(rc));
        bad = 1;
    }
    lrvm_heap_t *heap = NULL;
    for (int t = 0; t < c->threads && !bad; t++) {
        void *a = NULL, *b = shared_b;
        if (c->heap) {
            if ((t == 0 || !c->shared) && (bad = open_heap(c, s, t, &heap)) != 0)
                break;
        } else if ((rc = lrvm_map(s, seg_name(c, 'a', t, name), A_SIZE, &a)) != 0 ||
                   (!c->shared &&
                    (rc = lrvm_map(s, seg_name(c, 'b', t, name), B_SIZE, &b)) != 0)) {
            fprintf(stderr, "%s: lrvm_map after the kill: %s\n", prog, lrvm_strerror(rc));
            bad = 1;
            break;
        }
        /* At least: every step reported durable, what the last check
         * found, what this worker found at its open. */
        uint64_t need = r->durable[t] > m[t].floor ? r->durable[t] : m[t].floor;
        if (r->opened_at[t] != UINT64_MAX && r->opened_at[t] > need)
            need = r->opened_at[t];
        if (c->heap) {
            const void *root = heap != NULL ? lrvm_heap_root(heap) : NULL;
            if (c->shared && root != NULL)
                root = ((const struct heap_roots *)root)->of[t];
            bad = verify_heap_history(c, t, &m[t], need, heap, root, &r->found[t]);
        } else {
            bad = verify_history(c, t, &m[t], need, a, shared_part(c, b, t), &r->found[t]);
        }
        if (!bad)
            m[t].floor = r->found[t];
    }
    if ((rc = lrvm_close(s)) != 0) {
        fprintf(stderr, "%s: lrvm_close: %s\n", prog, lrvm_strerror(rc));
        bad = 1;
    }
    return bad;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void usage(FILE *o)
{
    fprintf(o,
            "usage: lrvm-crashtest [--rounds N | --seconds S] [--mode M] [--dir DIR] [--seed X]\n"
            "                      [--max-delay-ms MS] [--threshold BYTES] [--noflush PCT]\n"
            "                      [--resident-limit BYTES] [--threads N] [--heap]\n"
            "                      [--shared] [--tracker T] [--keep] [--undeclared]\n"
            "  --rounds N        kill the worker N times (default 100)\n"
            "  --seconds S       instead, go on for S seconds\n"
            "  --mode M          explicit (lrvm_set_range), auto (page faults), ambient\n"
            "                    (stores outside transactions, lrvm_sync), mixed (auto with\n"
            "                    transactions and syncs interleaved); default auto\n"
            "  --dir DIR         make the store in a new directory under DIR (default $TMPDIR\n"
            "                    or /tmp); it is removed after a clean run\n"
            "  --seed X          seed of the history and of the kill times (default: the time)\n"
            "  --max-delay-ms MS kill each worker after 0..MS ms (default 200)\n"
            "  --resident-limit BYTES  the worker's resident_limit (default: the\n"
            "                    library's); 1 MiB gives pages back every few steps, so\n"
            "                    kills also land among released pages\n"
            "  --threshold BYTES the worker's truncate_threshold (default 1 MiB, so kills\n"
            "                    also land in truncations)\n"
            "  --noflush PCT     share of transactions committed with LRVM_NO_FLUSH (default 25)\n"
            "  --threads N       the worker runs N histories at once, one a thread, each on\n"
            "                    segments of its own, so flushing commits meet in group\n"
            "                    commits (explicit and auto modes; at most 16; default 1)\n"
            "  --shared          the threads share segment b in shared transactions\n"
            "                    (lrvm_begin_shared), each changing its own part of it\n"
            "                    (explicit mode); with --heap, one heap h instead\n"
            "  --heap            each history on a persistent heap: every step frees a block\n"
            "                    and allocates another with lrvm_free and lrvm_malloc\n"
            "  --tracker T       the automatic modes' tracker: auto (the default: the one\n"
            "                    LRVM_TRACK_AUTO takes, uffd where the kernel offers it),\n"
            "                    uffd or mprotect\n"
            "  --keep            keep the store after a clean run\n"
            "  --undeclared      self-test (explicit mode): leave one range of every 7th step\n"
            "                    undeclared, which the check must catch\n"
            "Exit status: 0 every round verified; 1 a round found something other than a\n"
            "prefix of the history (the store is kept); 2 bad usage, or the test could\n"
            "not run (a system error, or the worker stopped before it was killed).\n");
}

static unsigned long long number(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno != 0 || end == v || *end != '\0')
        die("%s: not a number: %s", opt, v);
    return n;
}

static void parse(int argc, char **argv, struct config *c, const char **base)
{
    *c = (struct config){ .rounds = 100, .mode = MODE_AUTO, .seed = (uint64_t)time(NULL),
                          .max_delay_ms = 200, .threshold = (size_t)1 << 20, .noflush_pct = 25,
                          .threads = 1 };
    for (int k = 1; k < argc; k++) {
        const char *opt = argv[k];
        int has_value = k + 1 < argc;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(opt, "--version") == 0) {
            printf("lrvm-crashtest (lrvm) %s\n", lrvm_version());
            exit(0);
        } else if (strcmp(opt, "--keep") == 0) {
            c->keep = 1;
        } else if (strcmp(opt, "--undeclared") == 0) {
            c->undeclared = 1;
        } else if (strcmp(opt, "--heap") == 0) {
            c->heap = 1;
        } else if (strcmp(opt, "--shared") == 0) {
            c->shared = 1;
        } else if (!has_value) {
            usage(stderr);
            die("%s: unknown option, or its value is missing", opt);
        } else if (strcmp(opt, "--rounds") == 0) {
            c->rounds = (int)number(opt, argv[++k]);
            c->seconds = 0;
        } else if (strcmp(opt, "--seconds") == 0) {
            c->seconds = (double)number(opt, argv[++k]);
            c->rounds = 0;
        } else if (strcmp(opt, "--mode") == 0) {
            const char *v = argv[++k];
            size_t m = 0;
            while (m < 4 && strcmp(v, mode_names[m]) != 0)
                m++;
            if (m == 4)
                die("--mode: explicit, auto, ambient or mixed, not %s", v);
            c->mode = (enum mode)m;
        } else if (strcmp(opt, "--tracker") == 0) {
            const char *v = argv[++k];
            if (strcmp(v, "auto") == 0)
                c->tracker = LRVM_TRACK_AUTO;
            else if (strcmp(v, "uffd") == 0)
                c->tracker = LRVM_TRACK_UFFD;
            else if (strcmp(v, "mprotect") == 0)
                c->tracker = LRVM_TRACK_MPROTECT;
            else
                die("--tracker: auto, uffd or mprotect, not %s", v);
        } else if (strcmp(opt, "--dir") == 0) {
            *base = argv[++k];
        } else if (strcmp(opt, "--seed") == 0) {
            c->seed = number(opt, argv[++k]);
        } else if (strcmp(opt, "--max-delay-ms") == 0) {
            c->max_delay_ms = (unsigned)number(opt, argv[++k]);
        } else if (strcmp(opt, "--resident-limit") == 0) {
            c->resident_limit = (size_t)number(opt, argv[++k]);
            if (c->resident_limit < ((size_t)1 << 20))
                die("--resident-limit: at least 1 MiB (lrvm_open refuses less)");
        } else if (strcmp(opt, "--threshold") == 0) {
            c->threshold = (size_t)number(opt, argv[++k]);
            if (c->threshold < 4096)
                die("--threshold: at least 4096 bytes (lrvm_open refuses less)");
        } else if (strcmp(opt, "--threads") == 0) {
            unsigned long long n = number(opt, argv[++k]);
            if (n < 1 || n > MAX_THREADS)
                die("--threads: 1 to %d, not %llu", MAX_THREADS, n);
            c->threads = (int)n;
        } else if (strcmp(opt, "--noflush") == 0) {
            c->noflush_pct = (unsigned)number(opt, argv[++k]);
            if (c->noflush_pct > 100)
                die("--noflush: a percentage, not %u", c->noflush_pct);
        } else {
            usage(stderr);
            die("unknown option: %s", opt);
        }
    }
    if (c->rounds <= 0 && c->seconds <= 0)
        die("nothing to do: --rounds or --seconds must be positive");
    if (c->shared && c->mode != MODE_EXPLICIT)
        die("--shared needs --mode explicit (lrvm_begin_shared is explicit mode's)");
    if (c->undeclared && c->mode != MODE_EXPLICIT)
        die("--undeclared needs --mode explicit (other modes capture every store)");
    if (c->threads > 1 && (c->mode == MODE_AMBIENT || c->mode == MODE_MIXED))
        die("--threads needs --mode explicit or auto: a sync commits the ambient stores of "
            "every thread, halfway through their steps");
}

/* The tracker the automatic modes get: named, or what AUTO chooses here
 * (lrvm_stats says, of a scratch store). */
static const char *tracker_name(int tracker)
{
    if (tracker == LRVM_TRACK_AUTO) {
        char dir[] = "/tmp/lrvm-crashtest-probe.XXXXXX";
        lrvm_t *s;
        lrvm_stats_t st;
        if (mkdtemp(dir) == NULL || lrvm_open(dir, NULL, &s) != 0)
            return " (tracker unknown)";
        tracker = lrvm_stats(s, &st) == 0 ? st.tracking : -1;
        lrvm_close(s);
        static const char *const files[] = { "lrvm.log", "lrvm.lock" };
        for (size_t k = 0; k < 2; k++) {
            char path[64];
            snprintf(path, sizeof path, "%s/%s", dir, files[k]);
            unlink(path);
        }
        rmdir(dir);
    }
    return tracker == LRVM_TRACK_UFFD ? " (uffd tracker)"
         : tracker == LRVM_TRACK_MPROTECT ? " (mprotect tracker)" : " (tracker unknown)";
}

static void remove_store(const char *dir, const struct config *c)
{
    static const char *const files[] = { "lrvm.log", "lrvm.lock", "lrvm.log.new" };
    char path[4200], name[16];
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        unlink(path);
    }
    for (int t = 0; t < c->threads; t++)
        for (const char *w = "abh"; *w != '\0'; w++) {
            snprintf(path, sizeof path, "%s/%s.seg", dir, seg_name(c, *w, t, name));
            unlink(path);
            snprintf(path, sizeof path, "%s/%s.seg.new", dir, seg_name(c, *w, t, name));
            unlink(path);
        }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    struct config c;
    const char *base = getenv("TMPDIR");
    parse(argc, argv, &c, &base);
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    char *dir;
    if (asprintf(&dir, "%s/lrvm-crashtest.XXXXXX", base) < 0)
        die("out of memory");
    if (mkdtemp(dir) == NULL)
        die("%s: %s", dir, strerror(errno));
    c.dir = dir;
    signal(SIGPIPE, SIG_IGN);

    struct model m[MAX_THREADS];
    for (int t = 0; t < c.threads; t++) {
        if (c.heap)
            m[t] = (struct model){ NULL, NULL, calloc(HEAP_SLOTS, sizeof (uint64_t)), 0, 0 };
        else
            m[t] = (struct model){ calloc(1, A_SIZE), calloc(1, B_SIZE), NULL, 0, 0 };
        if (c.heap ? m[t].slot_step == NULL : m[t].a == NULL || m[t].b == NULL)
            die("out of memory");
    }
    double *recover_secs = NULL;
    size_t nrec = 0, cap = 0;
    char limit_text[32] = "default";
    if (c.resident_limit != 0)
        snprintf(limit_text, sizeof limit_text, "%zu", c.resident_limit);
    printf("%s: mode %s%s, %d histor%s%s, seed %" PRIu64 ", kills after 0..%u ms "
           "(from the open in every other round), truncate_threshold %zu, resident_limit %s, "
           "store %s\n", prog, mode_names[c.mode],
           c.mode == MODE_EXPLICIT ? "" : tracker_name(c.tracker), c.threads,
           c.threads == 1 ? "y" : "ies at once",
           c.heap && c.shared ? " sharing heap h" : c.heap ? " on persistent heaps" :
           c.shared ? " sharing segment b" : "", c.seed,
           c.max_delay_ms, c.threshold, limit_text, dir);
    fflush(stdout);

    int tty = isatty(STDERR_FILENO), status = 0;
    uint64_t rng = mix(c.seed ^ 0xc0ffee), steps = 0, kills_before_open = 0;
    double start = now();
    for (int round = 1; c.rounds == 0 || round <= c.rounds; round++) {
        if (c.rounds == 0 && now() - start >= c.seconds)
            break;
        struct round_result r;
        memset(&r, 0, sizeof r);
        for (int t = 0; t < MAX_THREADS; t++)
            r.opened_at[t] = UINT64_MAX;
        run_worker_round(&c, pick_delay_us(&c, &rng), round % 2 == 0, &r);
        if (!WIFSIGNALED(r.worker_status) || WTERMSIG(r.worker_status) != SIGKILL) {
            int code = WIFEXITED(r.worker_status) ? WEXITSTATUS(r.worker_status) : -1;
            fprintf(stderr, "%s: round %d: the worker %s %d instead of being killed%s%s\n",
                    prog, round, code >= 0 ? "exited with" : "died of signal",
                    code >= 0 ? code : WTERMSIG(r.worker_status),
                    code >= W_OPEN && code <= W_MALLOC ? ": failed in " : "",
                    code >= W_OPEN && code <= W_MALLOC ? worker_calls[code - W_OPEN] : "");
            status = 2;
            break;
        }
        kills_before_open += r.opened_at[0] == UINT64_MAX;
        if (verify(&c, m, &r) != 0) {
            fprintf(stderr, "%s: round %d failed (seed %" PRIu64 "); the store is kept in %s\n",
                    prog, round, c.seed, dir);
            status = 1;
            break;
        }
        steps = 0;
        for (int t = 0; t < c.threads; t++)
            steps += m[t].floor;
        if (nrec == cap) {
            cap = cap ? 2 * cap : 64;
            if ((recover_secs = realloc(recover_secs, cap * sizeof *recover_secs)) == NULL)
                die("out of memory");
        }
        recover_secs[nrec++] = r.recover_secs;
        if (tty)
            fprintf(stderr, "\rround %d: %" PRIu64 " steps verified, last recovery %.1f ms   ",
                    round, steps, r.recover_secs * 1e3);
    }
    if (tty)
        fputc('\n', stderr);
    if (status == 0) {
        qsort(recover_secs, nrec, sizeof *recover_secs, cmp_double);
        printf("%s: %zu rounds passed in %.1f s: %" PRIu64 " steps of the histor%s verified, "
               "%" PRIu64 " kills before the worker's open finished; recovery after a kill "
               "took %.2f ms median, %.2f ms at most\n", prog, nrec, now() - start, steps,
               c.threads == 1 ? "y" : "ies", kills_before_open, recover_secs[nrec / 2] * 1e3,
               recover_secs[nrec - 1] * 1e3);
        if (c.keep)
            printf("%s: the store is kept in %s\n", prog, dir);
        else
            remove_store(dir, &c);
    }
    free(recover_secs);
    free(dir);
    for (int t = 0; t < c.threads; t++) {
        free(m[t].a);
        free(m[t].b);
        free(m[t].slot_step);
    }
    return status;
}
