/*
 * tx.c -- transactions: begin, set_range, commit, abort.
 *
 * Owns: struct lrvm_tx, the store's list of open transactions, which
 * segment belongs to which transaction, and the handles: their blocks,
 * each thread's spare and the pool, and which are live (so that a
 * finished or foreign handle gets LRVM_ENOENT instead of a use after
 * free).
 * Never: reports a commit before lrvm__log_commit returned success, or
 * frees a transaction that another thread may still be entering.
 *
 * A transaction's life:
 *
 *     lrvm_begin --> OPEN --lrvm_commit ok--> (freed, COMMITTED)
 *                     |  \--lrvm_commit fails--> OPEN (retry or abort)
 *                     \--lrvm_abort, lrvm_close--> (freed, ABORTED)
 *
 * and, for a transaction that its owner (below) commits:
 *
 *     OPEN --lrvm_commit ok--> PARKED --its owner's begin of the same
 *                                |      kind (lrvm_begin or
 *                                |      lrvm_begin_shared) of the same
 *                                |      segments--> OPEN (the handle again)
 *                                \--anyone else who needs a segment of it
 *                                   (to begin on it alone, to unmap it; a
 *                                   heap call outside shared transactions,
 *                                   for a shared one), the owner's other
 *                                   begin, close, giving pages back-->
 *                                   (freed)
 *
 * A parked transaction is committed and over for the program (its handle
 * gets LRVM_ENOENT), but keeps its segments and its place in the store,
 * so its owner begins the next one without the store's lock. A parked
 * shared transaction keeps its segments shared: others' shared
 * transactions begin beside it as beside an open one.
 * Invariants
 *   I1 seg->sg_tx == tx exactly for the segments of an OPEN or PARKED
 *      transaction begun alone (lrvm_begin), and seg->sg_shared counts the
 *      OPEN and PARKED shared transactions (lrvm_begin_shared) that hold
 *      seg. A segment is held by one transaction alone, or by shared ones,
 *      or by none.
 *   I2 A handle is registered (tx_live names its store) exactly while
 *      its transaction is OPEN; tx_live is cleared under the store's
 *      lock, or by the owner as it parks the transaction (I5), so a caller
 *      that found it set after taking that lock may use the handle once
 *      it claimed it and found it still set. Taking the lock is safe even
 *      if the store was closed meanwhile: a store's memory is never freed
 *      (api.c I3).
 *   I3 A flushing commit may let the store's lock go while it waits for a
 *      shared log sync (group commit, log.c); tx_committing is set all
 *      along, so other calls on the handle get LRVM_EBUSY, and lrvm_close
 *      waits for such commits to end before it frees anything.
 *   I4 A handle's memory is never freed: handles are made in blocks that
 *      live as long as the process, and a finished one goes to its
 *      thread's spare or the pool and comes back from lrvm_begin. So a
 *      stale handle always points at a struct lrvm_tx, which the fast path
 *      below may read, and a pointer is a handle exactly when it lies at
 *      one's place in a block (is_handle).
 *   I5 At most one thread runs a call of TX without the store's lock: the
 *      owner, inside fast_enter/fast_leave (a declaration, a commit at the
 *      log's tail, which parks TX, a begin that opens it again, a heap
 *      call of TX's: lrvm__tx_owned_enter). Whoever else touches TX's
 *      declared ranges or its hook's state, or ends it, holds the store's
 *      lock and has claimed TX first; only the owner changes tx_parked
 *      while it owns TX.
 *   Lock order: lrvm.mu, then pool_mu; lrvm.mu, then the log's lg_sync_mu;
 *   lrvm.mu, then the truncation job's tj_mu (recover.c).
 *
 * Biased ownership. lrvm_set_range is the call a program makes most: once
 * for every range it changes. Taking the store's lock there costs more
 * than the atomics themselves: a locked instruction waits for the loads
 * before it, so each declaration's cache miss (copying the before-image
 * of a word no one read lately) would stall the program until it ends. In
 * explicit mode the thread that begins a transaction owns it, and its
 * set_range calls take no lock and use no locked instruction: the thread
 * writes TX into its own slot, then checks that it still owns TX
 * (fast_enter). Any other thread that wants TX's ranges, under the
 * store's lock, clears tx_owner, makes every thread of the process pass a
 * full memory barrier with membarrier(2), and waits until the owner's
 * slot no longer names TX (lrvm__tx_claim). The barrier pairs with the
 * compiler-only fence in fast_enter as two full fences would: either the
 * owner sees tx_owner cleared and takes the locked path, or the claimer
 * sees the slot and waits. Only the owner writes its slot, so a thread
 * holding a stale handle cannot disturb the next owner of that memory.
 * Ownership is only handed out once the process has registered for
 * membarrier; without it every call takes the lock.
 *
 * Commits at the log's tail. The owner commits a transaction without a
 * flush and without the store's lock when the tracker allows it
 * (tail_ok), a hook on it (a part above's state) can make its changes
 * there (tail_commit, inside the hooks' gate: "hooks" below), and the
 * log's tail is open (log.c, "The tail"): the records are placed by one
 * atomic step, in the log's one order, and the transaction parks, its
 * hook's state with it. Whatever holds the store's lock and reads what
 * such a commit writes (the buffer, the residency of the pages) shuts the
 * tail first, and whatever changes words a hook's tail_commit changes
 * shuts the gate first; a call that took the lock opens both again as it
 * ends (lrvm__tx_tail_open). A commit that found the tail or the gate
 * shut tries the tail again once it holds the lock, which the call that
 * shut them let go only after opening them: committing under the lock
 * would shut the tail in turn for the other threads' commits, and those
 * would then queue for the lock behind it, each shutting the tail for the
 * next: a convoy (doc/architecture.md, "The store lock and the rest").
 *
 * Shared transactions. lrvm_begin_shared lets several open transactions
 * hold a segment, on the program's promise that they declare disjoint
 * bytes (lrvm.h C15). Nothing here depends on which bytes: each
 * transaction logs and restores its own declarations, so a commit of one
 * takes none of another's bytes and an abort puts back only its own; so
 * the owner's commit at the log's tail serves them as it serves one
 * begun alone (two such commits may mark one page's residency at once,
 * with the same byte: resident.c). The debug build checks the promise
 * (track_explicit.c I3), under the store's lock, so there its shared
 * transactions get no owner.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Handles, made BLOCK_TXS at a time (I4). Blocks are only ever added,
 * at the head, so a reader walks them without a lock. */
#define BLOCK_TXS 64
struct tx_block {
    struct tx_block *tb_next;
    lrvm_tx_t        tb_txs[BLOCK_TXS];
};

static _Atomic(struct tx_block *) blocks;
static pthread_mutex_t   pool_mu = PTHREAD_MUTEX_INITIALIZER;
static lrvm_tx_t        *pool;          /* finished handles (I4), under pool_mu */

/* ------------------------------------------------- biased ownership */

/* A thread's slot: which transaction it runs a lock-free call of, and
 * which store's hooks' gate it is inside ("hooks" below). Slots are never
 * freed (a claimer or a gate's shutter may read the slot of a thread that
 * exited); a thread's slot goes back to the free list when it exits, and
 * stays on the list of every slot made. */
struct owner_slot {
    _Atomic(lrvm_tx_t *) os_in;
    _Atomic(lrvm_t *)    os_gate;   /* the store whose hooks' gate it is inside */
    struct owner_slot   *os_next;   /* free_slots */
    struct owner_slot   *os_all;    /* all_slots */
} __attribute__((aligned(LRVM__CACHE_LINE)));  /* each thread writes its own */
static _Atomic(struct owner_slot *) all_slots;  /* every slot made: pushed only */

static pthread_once_t      bias_once = PTHREAD_ONCE_INIT;
static atomic_int          bias_ready;  /* registered for membarrier */
static pthread_key_t       slot_key;    /* gives the slot back at thread exit */
static pthread_key_t       spare_key;   /* a thread's spare handle, given back
                                           to the pool at its exit */
static int                 spare_ready;
static pthread_mutex_t     slot_mu = PTHREAD_MUTEX_INITIALIZER;
static struct owner_slot  *free_slots;  /* under slot_mu */

static __thread struct owner_slot *my_slot __attribute__((tls_model("initial-exec")));
/* The transaction this thread began last and owns: the fast path reads a
 * handle only after finding it here, so a pointer that never was a handle
 * goes to reg_find instead. */
static __thread lrvm_tx_t *owned_tx __attribute__((tls_model("initial-exec")));

static int membarrier(int cmd)
{
    return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static void bias_register(void)
{
    int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        atomic_store(&bias_ready, 1);
}

/* A child of fork is a new process to membarrier: register it again. */
static void bias_after_fork(void)
{
    if (atomic_load(&bias_ready)) {
        atomic_store(&bias_ready, 0);
        bias_register();
    }
}

static void slot_release(void *slot)
{
    struct owner_slot *os = slot;
    lrvm__lock(&slot_mu, LRVM__RANK_LEAF);
    os->os_next = free_slots;
    free_slots = os;
    lrvm__unlock(&slot_mu);
}

static void spare_release(void *tx);

static void bias_init(void)
{
    spare_ready = pthread_key_create(&spare_key, spare_release) == 0;
    if (pthread_key_create(&slot_key, slot_release) != 0)
        return;
    bias_register();
    pthread_atfork(NULL, NULL, bias_after_fork);
}

/* This thread's slot, or NULL when ownership cannot be handed out. */
static struct owner_slot *slot_get(void)
{
    if (!atomic_load(&bias_ready))
        return NULL;
    if (my_slot != NULL)
        return my_slot;
    lrvm__lock(&slot_mu, LRVM__RANK_LEAF);
    struct owner_slot *os = free_slots;
    if (os != NULL)
        free_slots = os->os_next;
    lrvm__unlock(&slot_mu);
    if (os == NULL) {
        if ((os = lrvm__zalloc_aligned(sizeof *os)) == NULL)
            return NULL;
        os->os_all = atomic_load(&all_slots);
        while (!atomic_compare_exchange_weak(&all_slots, &os->os_all, os))
            ;
    }
    if (pthread_setspecific(slot_key, os) != 0) {
        slot_release(os);
        return NULL;
    }
    return my_slot = os;
}

/* This thread owns TX, as far as it can tell without a fence. */
static int owned_here(const lrvm_tx_t *tx)
{
    return tx != NULL && tx == owned_tx &&
           atomic_load_explicit(&tx->tx_owner, memory_order_relaxed) == my_slot;
}

static int parked(const lrvm_tx_t *tx)
{
    return atomic_load_explicit(&tx->tx_parked, memory_order_relaxed);
}

/* The owner is about to run a call of TX without the lock: 1 if it may. */
static int fast_enter(lrvm_tx_t *tx)
{
    struct owner_slot *me = my_slot;
    if (!owned_here(tx))
        return 0;
    atomic_store_explicit(&me->os_in, tx, memory_order_relaxed);
    /* The light half of an asymmetric barrier; lrvm__tx_claim's
     * membarrier is the heavy half ("Biased ownership" above). */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&tx->tx_owner, memory_order_relaxed) == me)
        return 1;
    atomic_store_explicit(&me->os_in, NULL, memory_order_release);
    return 0;
}

static void fast_leave(void)
{
    atomic_store_explicit(&my_slot->os_in, NULL, memory_order_release);
}

void lrvm__tx_claim(lrvm_tx_t *tx)
{
    LRVM__ASSERT_HELD(&tx->tx_store->mu);                /* L1 */
    struct owner_slot *owner = atomic_load_explicit(&tx->tx_owner, memory_order_relaxed);
    if (owner == NULL || owner == my_slot)
        return;
    atomic_store_explicit(&tx->tx_owner, NULL, memory_order_relaxed);
    int fenced = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
    while (atomic_load_explicit(&owner->os_in, memory_order_acquire) == tx)
        sched_yield();
    if (!fenced) {
        /* Cannot happen once registered (and fork registers again). If it
         * does, hand out no more ownership, and give the owner's store
         * time to become visible before trusting the slot. */
        atomic_store(&bias_ready, 0);
        do
            lrvm__pause_us(10000);
        while (atomic_load_explicit(&owner->os_in, memory_order_acquire) == tx);
    }
}

/* ------------------------------------------------- live handles */

/* TX lies at a handle's place in a block (I4): a pointer that never was a
 * handle is not read. */
static int is_handle(const lrvm_tx_t *tx)
{
    uintptr_t p = (uintptr_t)tx;
    for (struct tx_block *b = atomic_load_explicit(&blocks, memory_order_acquire); b != NULL;
         b = b->tb_next) {
        uintptr_t lo = (uintptr_t)b->tb_txs;
        if (p >= lo && p < lo + sizeof b->tb_txs)
            return (p - lo) % sizeof(lrvm_tx_t) == 0;
    }
    return 0;
}

/* The store of the OPEN transaction TX, or NULL (I2). */
static lrvm_t *reg_find(const lrvm_tx_t *tx)
{
    return is_handle(tx) ? atomic_load_explicit(&tx->tx_live, memory_order_acquire) : NULL;
}

/* A finished handle from the pool, or a new block's first: NULL when out
 * of memory. */
static lrvm_tx_t *pool_take(void)
{
    lrvm__lock(&pool_mu, LRVM__RANK_LEAF);
    lrvm_tx_t *tx = pool;
    if (tx != NULL) {
        pool = tx->tx_next;
    } else {
        struct tx_block *b = lrvm__zalloc_aligned(sizeof *b);
        if (b != NULL) {
            for (int i = BLOCK_TXS - 1; i > 0; i--) {
                b->tb_txs[i].tx_next = pool;
                pool = &b->tb_txs[i];
            }
            tx = &b->tb_txs[0];
            b->tb_next = atomic_load_explicit(&blocks, memory_order_relaxed);
            atomic_store_explicit(&blocks, b, memory_order_release);
        }
    }
    lrvm__unlock(&pool_mu);
    return tx;
}

static void pool_give(lrvm_tx_t *tx)
{
    lrvm__lock(&pool_mu, LRVM__RANK_LEAF);
    tx->tx_next = pool;
    pool = tx;
    lrvm__unlock(&pool_mu);
}

static void spare_release(void *tx)
{
    pool_give(tx);
}

/* A handle for store S, registered (I2): the thread's spare, which keeps
 * a thread that commits in a loop on one handle and off the pool's lock,
 * or one from the pool. */
static lrvm_tx_t *tx_new(lrvm_t *s)
{
    lrvm_tx_t *tx = spare_ready ? pthread_getspecific(spare_key) : NULL;
    if (tx != NULL)
        pthread_setspecific(spare_key, NULL);
    else if ((tx = pool_take()) == NULL)
        return NULL;
    atomic_store_explicit(&tx->tx_live, s, memory_order_release);
    return tx;
}

/* TX unregistered (I2), to the thread's spare or the pool (I4). */
static void tx_retire(lrvm_tx_t *tx)
{
    atomic_store_explicit(&tx->tx_live, NULL, memory_order_release);
    if (spare_ready && pthread_getspecific(spare_key) == NULL &&
        pthread_setspecific(spare_key, tx) == 0)
        return;
    pool_give(tx);
}

static void tx_free(lrvm_tx_t *tx);

/* Find TX's store and lock it; LRVM_ENOENT for a handle that is not OPEN.
 * Keeps I2: the second look happens under the store's lock. */
static int tx_enter(lrvm_tx_t *tx, lrvm_t **out)
{
    if (owned_here(tx)) {
        /* Its owner: while tx_owner still names this thread under the
         * store's lock, no one has claimed, let alone finished, TX, so
         * reg_find need not be asked. */
        lrvm_t *s = tx->tx_store;
        lrvm__lock(&s->mu, LRVM__RANK_STORE);
        if (atomic_load_explicit(&tx->tx_owner, memory_order_relaxed) == my_slot) {
            if (parked(tx)) {           /* committed: over for the program */
                lrvm__unlock(&s->mu);
                return LRVM_ENOENT;
            }
            *out = s;
            return 0;
        }
        lrvm__unlock(&s->mu);
    }
    lrvm_t *s = reg_find(tx);
    if (s == NULL)
        return LRVM_ENOENT;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    if (reg_find(tx) != s) {
        lrvm__unlock(&s->mu);
        return LRVM_ENOENT;
    }
    if (tx->tx_committing) {        /* another thread commits it right now */
        lrvm__unlock(&s->mu);
        return LRVM_EBUSY;
    }
    lrvm__tx_claim(tx);
    if (parked(tx)) {               /* its owner committed it meanwhile (I2) */
        tx_free(tx);
        lrvm__unlock(&s->mu);
        return LRVM_ENOENT;
    }
    *out = s;
    return 0;
}

/* End TX's life: it leaves its segments and the store. The caller has
 * claimed it, so no fast path runs on it now (I5). */
static void tx_free(lrvm_tx_t *tx)
{
    lrvm_t *s = tx->tx_store;
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    if (tx->tx_hook != NULL) {
        tx->tx_hook->drop(tx, tx->tx_hook_arg);
        tx->tx_hook = NULL;
        tx->tx_hook_arg = NULL;
    }
    for (int i = 0; i < tx->tx_nsegs; i++) {        /* keeps I1 */
        if (tx->tx_shared)
            tx->tx_segs[i]->sg_shared--;
        else
            tx->tx_segs[i]->sg_tx = NULL;
    }
    if (tx->tx_prev)
        tx->tx_prev->tx_next = tx->tx_next;
    else
        s->txs = tx->tx_next;
    if (tx->tx_next)
        tx->tx_next->tx_prev = tx->tx_prev;
    atomic_store_explicit(&tx->tx_owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&tx->tx_parked, 0, memory_order_relaxed);
    if (owned_tx == tx)
        owned_tx = NULL;
    tx_retire(tx);                                  /* keeps I2, I4 */
}

/* TX, committed by its owner, keeps its segments for the owner's next
 * begin of them (PARKED). The owner runs this in its fast path, or holds
 * the store's lock. */
static void park(lrvm_tx_t *tx)
{
    atomic_store_explicit(&tx->tx_parked, 1, memory_order_relaxed);
    atomic_store_explicit(&tx->tx_live, NULL, memory_order_release);     /* keeps I2 */
}

/* May TX, just committed under the store's lock, park? Its owner's, and
 * begun by the program (a hook's state parks with it). */
static int may_park(const lrvm_tx_t *tx)
{
    return my_slot != NULL &&
           atomic_load_explicit(&tx->tx_owner, memory_order_relaxed) == my_slot &&
           !tx->tx_own;
}

lrvm_tx_t *lrvm__seg_claim(lrvm_t *s, struct lrvm__seg *seg)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    (void)s;
    lrvm_tx_t *tx = seg->sg_tx;
    if (tx == NULL)
        return NULL;
    lrvm__tx_claim(tx);
    if (!parked(tx))
        return tx;
    tx_free(tx);
    return NULL;
}

static int holds(const lrvm_tx_t *tx, const struct lrvm__seg *seg)
{
    for (int i = 0; i < tx->tx_nsegs; i++)
        if (tx->tx_segs[i] == seg)
            return 1;
    return 0;
}

/* A parked transaction begun alone that holds SEG ends, claimed first;
 * an open one keeps its owner. With SHARED, so do the parked shared ones
 * (a walk of the store's transactions, when SEG has any). Store lock
 * held. */
static void unpark(lrvm_t *s, struct lrvm__seg *seg, int shared)
{
    if (seg->sg_tx != NULL && parked(seg->sg_tx))
        (void)lrvm__seg_claim(s, seg);
    for (lrvm_tx_t *tx = s->txs, *next; shared && seg->sg_shared > 0 && tx != NULL; tx = next) {
        next = tx->tx_next;
        if (!tx->tx_shared || !parked(tx) || !holds(tx, seg))
            continue;
        lrvm__tx_claim(tx);
        if (parked(tx))             /* not begun again by its owner meanwhile */
            tx_free(tx);
    }
}

void lrvm__seg_unpark(lrvm_t *s, struct lrvm__seg *seg)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    unpark(s, seg, 1);
}

/* TX, new, takes its NSEGS segments (tx_segs) and joins the store's open
 * transactions; its tracker is told. Store lock held. */
static int tx_attach(lrvm_t *s, lrvm_tx_t *tx, int nsegs, int shared)
{
    tx->tx_store = s;
    tx->tx_nsegs = nsegs;
    tx->tx_committing = 0;
    tx->tx_shared = shared;
    tx->tx_own = 0;
    atomic_store_explicit(&tx->tx_parked, 0, memory_order_relaxed);
    tx->tx_thread = pthread_self();
    tx->tx_hook = NULL;
    tx->tx_hook_arg = NULL;
    tx->tx_nranges = tx->tx_undo_len = tx->tx_mark = 0;
    for (int i = 0; i < nsegs; i++) {               /* keeps I1 */
        if (shared)
            tx->tx_segs[i]->sg_shared++;
        else
            tx->tx_segs[i]->sg_tx = tx;
    }
    tx->tx_prev = NULL;
    tx->tx_next = s->txs;
    if (s->txs)
        s->txs->tx_prev = tx;
    s->txs = tx;
    int rc = s->tracker->begin(tx);
    if (rc < 0)
        tx_free(tx);
    return rc;
}

/* Shared transactions are checked for disjoint declarations under the
 * store's lock in the debug build: no owner's fast path there. */
#ifdef LRVM_DEBUG
#define SHARED_OWNED 0
#else
#define SHARED_OWNED 1
#endif

static void drop_parked_here(lrvm_t *s);

static lrvm_tx_t *begin_parked(lrvm_t *s, int nsegs, void *const *bases, int shared);

/* lrvm_begin, and lrvm_begin_shared when SHARED: the owner's parked
 * transaction of the same segments and kind opens again without the
 * lock, or a new one begins under it. */
static int begin(lrvm_t *s, int nsegs, void *const *bases, int shared, lrvm_tx_t **out)
{
    if (s == NULL || nsegs < 1 || bases == NULL || out == NULL)
        return LRVM_EINVAL;
    lrvm_tx_t *tx = begin_parked(s, nsegs, bases, shared);
    if (tx != NULL) {
        *out = tx;
        return 0;
    }
    if (shared && !s->tracker->shared)
        return LRVM_EMODE;
    pthread_once(&bias_once, bias_init);
    int rc = 0;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    drop_parked_here(s);
    tx = tx_new(s);
    if (tx == NULL) {
        lrvm__unlock(&s->mu);
        return LRVM_ENOMEM;
    }
    if (nsegs > tx->tx_segs_cap) {
        struct lrvm__seg **segs = realloc(tx->tx_segs, (size_t)nsegs * sizeof *segs);
        if (segs == NULL)
            rc = LRVM_ENOMEM;
        else {
            tx->tx_segs = segs;
            tx->tx_segs_cap = nsegs;
        }
    }
    struct lrvm__seg **segs = tx->tx_segs;
    for (int i = 0; i < nsegs && rc == 0; i++) {
        segs[i] = lrvm__seg_by_base(s, bases[i]);
        if (segs[i] != NULL)
            unpark(s, segs[i], !shared);
        if (segs[i] == NULL)
            rc = LRVM_ENOENT;
        else if (shared ? segs[i]->sg_tx != NULL : lrvm__seg_held(segs[i]))
            rc = LRVM_EEXIST;
        for (int j = 0; j < i && rc == 0; j++)
            if (segs[j] == segs[i])
                rc = LRVM_EINVAL;
    }
    if (rc < 0) {
        tx_retire(tx);
        lrvm__unlock(&s->mu);
        return rc;
    }
    if ((rc = tx_attach(s, tx, nsegs, shared)) < 0) {
        lrvm__unlock(&s->mu);
        return rc;
    }
    int owned = s->tracker->owner_fast && (!shared || SHARED_OWNED);
    struct owner_slot *me = owned ? slot_get() : NULL;
    if (me != NULL) {
        atomic_store_explicit(&tx->tx_owner, me, memory_order_relaxed);
        owned_tx = tx;
    }
    lrvm__unlock(&s->mu);
    *out = tx;
    return 0;
}

/* The owner's begin of the segments its parked transaction holds, in the
 * same order and of the same kind (SHARED): that transaction opens again,
 * without the store's lock. */
static lrvm_tx_t *begin_parked(lrvm_t *s, int nsegs, void *const *bases, int shared)
{
    lrvm_tx_t *tx = owned_tx;
    if (tx == NULL || !fast_enter(tx))
        return NULL;
    int same = parked(tx) && tx->tx_store == s && tx->tx_nsegs == nsegs &&
               tx->tx_shared == shared;
    for (int i = 0; i < nsegs && same; i++)
        same = tx->tx_segs[i]->sg_base == bases[i];
    if (same) {
        atomic_store_explicit(&tx->tx_parked, 0, memory_order_relaxed);
        atomic_store_explicit(&tx->tx_live, s, memory_order_release);     /* keeps I2 */
    }
    fast_leave();
    return same ? tx : NULL;
}

/* This thread's parked transaction in S, if any, ends: the begin about to
 * be made takes its place as the one this thread owns. Store lock held. */
static void drop_parked_here(lrvm_t *s)
{
    lrvm_tx_t *tx = owned_tx;
    if (tx == NULL || !fast_enter(tx))
        return;
    int drop = parked(tx) && tx->tx_store == s;
    fast_leave();
    if (drop)
        tx_free(tx);            /* in S's list: no one else claims it without S's lock */
}

int lrvm_begin(lrvm_t *s, int nsegs, void *const *bases, lrvm_tx_t **out)
{
    return begin(s, nsegs, bases, 0, out);
}

int lrvm_begin_shared(lrvm_t *s, int nsegs, void *const *bases, lrvm_tx_t **out)
{
    return begin(s, nsegs, bases, 1, out);
}

/* Where TX's [addr, addr+len) lies, for a declaration: *SEG and *OFF. */
static int range_in_tx(const lrvm_tx_t *tx, const void *base, const void *addr, size_t len,
                       struct lrvm__seg **seg, size_t *off)
{
    *seg = lrvm__seg_by_addr(tx->tx_segs, (size_t)tx->tx_nsegs, addr, len);
    if (*seg == NULL || (base != NULL && (*seg)->sg_base != base))
        return LRVM_EINVAL;
    *off = (size_t)((const unsigned char *)addr - (*seg)->sg_base);
    return 0;
}

static inline int set_range(lrvm_tx_t *tx, const void *base, void *addr, size_t len)
{
    struct lrvm__seg *seg;
    size_t off;
    int rc;
    if (fast_enter(tx)) {               /* its owner, with an owner_fast tracker */
        rc = parked(tx) ? LRVM_ENOENT : 0;
        if (rc == 0 && len > 0 && (rc = range_in_tx(tx, base, addr, len, &seg, &off)) == 0)
            rc = tx->tx_store->tracker->capture(tx, seg, off, len);
        fast_leave();
        return rc;
    }
    lrvm_t *s;
    if ((rc = tx_enter(tx, &s)) < 0)
        return rc;
    if (len > 0 && (rc = range_in_tx(tx, base, addr, len, &seg, &off)) == 0)
        rc = s->tracker->capture(tx, seg, off, len);
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm__set_range_in(lrvm_tx_t *tx, const void *base, void *addr, size_t len)
{
    return set_range(tx, base, addr, len);
}

int lrvm_set_range(lrvm_tx_t *tx, void *addr, size_t len)
{
    return set_range(tx, NULL, addr, len);
}

int lrvm__tx_capture(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len)
{
    return tx->tx_store->tracker->capture(tx, seg, off, len);
}

/* ------------------------------------------------- debug checkers */

#ifdef LRVM_DEBUG
/* I1 for store S (and I2 for TX when not NULL), under S's lock. */
static void check_tx(lrvm_t *s, lrvm_tx_t *tx)
{
    size_t held = 0, in_txs = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        const struct lrvm__seg *seg = s->segs[i];
        LRVM__ASSERT(seg->sg_shared >= 0);
        LRVM__ASSERT(seg->sg_tx == NULL || seg->sg_shared == 0);   /* alone or shared */
        held += (seg->sg_tx != NULL) + (size_t)seg->sg_shared;
    }
    for (lrvm_tx_t *t = s->txs; t != NULL; t = t->tx_next) {
        LRVM__ASSERT(t->tx_store == s);
        LRVM__ASSERT(t->tx_next == NULL || t->tx_next->tx_prev == t);
        for (int i = 0; i < t->tx_nsegs; i++)
            LRVM__ASSERT(t->tx_shared ? t->tx_segs[i]->sg_shared > 0
                                      : t->tx_segs[i]->sg_tx == t);
        in_txs += (size_t)t->tx_nsegs;
    }
    LRVM__ASSERT(held == in_txs);           /* no segment held by a finished tx */
    LRVM__ASSERT(tx == NULL || reg_find(tx) == s);
}

/* Everything a commit of the epoch relies on, after commit_start. */
static void check_epoch(lrvm_t *s, lrvm_tx_t *tx)
{
    check_tx(s, tx);
    s->tracker->check(s, tx);
    lrvm__log_check(&s->log);
    lrvm__res_check(s);
}
#else
#define check_tx(s, tx)    ((void)0)
#define check_epoch(s, tx) ((void)0)
#endif

/* ------------------------------------------------- commit, sync, abort */

static int emit_range(void *enc, struct lrvm__seg *seg, size_t off, const void *src, size_t len)
{
    return lrvm__enc_range(enc, seg, seg->sg_name, off, src, len);
}

struct epoch {
    lrvm_t    *store;
    lrvm_tx_t *tx;              /* NULL: the ambient epoch */
};

static int epoch_redo(void *arg, struct lrvm__enc *e)
{
    struct epoch *ep = arg;
    return ep->store->tracker->redo(ep->store, ep->tx, emit_range, e);
}

static void epoch_seal(void *arg)
{
    struct epoch *ep = arg;
    ep->store->tracker->seal(ep->store, ep->tx);
}

/* Commit the epoch (transaction TX, or the ambient one when TX is NULL)
 * of store S, whose lock the caller holds: the tracker hands its changes
 * to the log, and learns how the commit ended. */
static int commit_epoch(lrvm_t *s, lrvm_tx_t *tx, int flags)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    const struct lrvm__tracker *t = s->tracker;
    struct epoch ep = { s, tx };
    /* The tracker and the checks read residency the tail's commits write. */
    lrvm__log_tail_shut(&s->log);
    int rc = t->commit_start(s, tx);
    if (rc == 0) {
        check_epoch(s, tx);
        rc = lrvm__log_commit(&s->log, epoch_redo, epoch_seal, &ep, flags);
    }
    if (rc == 0)
        t->committed(s, tx);
    else
        t->commit_failed(s, tx);
    return rc;
}

/* ------------------------------------------------------------ hooks */

/* The hooks' gate (internal.h): hook_gate is 1 while it is shut, and
 * each thread's slot names the store whose gate it is inside. An entrant
 * names the store, then looks at the flag; the shutter sets the flag,
 * then waits while any slot names the store. Both orders are sequentially
 * consistent, so an entrant either sees the flag and goes, or is seen
 * and waited for. Only the entrant's own line is written at each commit:
 * a count in one word took that word from the other CPU twice a commit.
 * Only a holder of the store's lock shuts or opens it, and it opens where
 * the log's tail does, as a call that changed what they guard lets the
 * lock go, its changes logged (lrvm__tx_tail_open): an entrant then sees
 * them (its load of the flag pairs with the opening's release), and its
 * records follow theirs in the log. */
int lrvm__tx_gate_enter(lrvm_t *s)
{
    struct owner_slot *me = my_slot;    /* the owner's, in its fast path */
    LRVM__ASSERT(me != NULL);
    atomic_store_explicit(&me->os_gate, s, memory_order_seq_cst);
    if (!atomic_load_explicit(&s->hook_gate, memory_order_seq_cst))
        return 1;
    atomic_store_explicit(&me->os_gate, NULL, memory_order_relaxed);
    return 0;
}

void lrvm__tx_gate_leave(lrvm_t *s)
{
    (void)s;
    atomic_store_explicit(&my_slot->os_gate, NULL, memory_order_release);
}

void lrvm__tx_gate_shut(lrvm_t *s)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    if (atomic_load_explicit(&s->hook_gate, memory_order_relaxed))
        return;                             /* shut: no one got in since */
    atomic_store_explicit(&s->hook_gate, 1, memory_order_seq_cst);
    for (struct owner_slot *os = atomic_load(&all_slots); os != NULL; os = os->os_all)
        for (unsigned spins = 0; atomic_load_explicit(&os->os_gate, memory_order_acquire) == s;
             spins++)
            lrvm__wait_turn(spins);
}

void lrvm__tx_tail_open(lrvm_t *s)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    if (s->tracker->tail_ok == NULL)
        return;
    lrvm__log_tail_open(&s->log);
    if (atomic_load_explicit(&s->hook_gate, memory_order_relaxed))
        atomic_store_explicit(&s->hook_gate, 0, memory_order_release);
}

lrvm_tx_t *lrvm__tx_owned_enter(lrvm_t *s)
{
    lrvm_tx_t *tx = owned_tx;
    if (tx == NULL || !fast_enter(tx))
        return NULL;
    if (!parked(tx) && tx->tx_store == s && tx->tx_shared)
        return tx;
    fast_leave();
    return NULL;
}

void lrvm__tx_owned_leave(void)
{
    fast_leave();
}

void lrvm__tx_set_hook(lrvm_tx_t *tx, const struct lrvm__tx_hook *hook, void *arg)
{
    LRVM__ASSERT(tx->tx_hook == NULL || tx->tx_hook == hook);
    LRVM__ASSERT(tx->tx_store->tracker->rollback != NULL);
    tx->tx_hook = hook;
    tx->tx_hook_arg = arg;
}

lrvm_tx_t *lrvm__tx_shared_here(lrvm_t *s, const struct lrvm__seg *seg)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    pthread_t me = pthread_self();
    for (lrvm_tx_t *tx = s->txs; tx != NULL; tx = tx->tx_next) {
        if (tx->tx_shared && !tx->tx_own && !tx->tx_committing && !parked(tx) &&
            pthread_equal(tx->tx_thread, me) && holds(tx, seg))
            return tx;
    }
    return NULL;
}

/* Commit the epoch of TX (commit_epoch), its hook's changes first: if
 * the commit fails, what the hook declared and changed is put back, so
 * the transaction stays as the program left it (lrvm.h: a failed commit
 * may be retried or aborted). */
static int hooked_commit(lrvm_t *s, lrvm_tx_t *tx, int flags)
{
    if (tx->tx_hook == NULL)
        return commit_epoch(s, tx, flags);
    size_t mark = tx->tx_nranges;
    tx->tx_mark = mark;
    int rc = tx->tx_hook->commit(tx, tx->tx_hook_arg);
    if (rc == 0)
        rc = commit_epoch(s, tx, flags);
    if (rc < 0) {
        /* Putting back may change words a commit at the tail changes
         * too (a neighbour's header, when the hook freed into the heap's
         * lists), and a commit that waited for a group's sync let the
         * lock go meanwhile: the gate may be open. */
        lrvm__tx_gate_shut(s);
        s->tracker->rollback(tx, mark);
    }
    tx->tx_mark = 0;
    return rc;
}

static void hook_end(lrvm_tx_t *tx, int committed)
{
    if (tx->tx_hook != NULL)
        tx->tx_hook->end(tx, tx->tx_hook_arg, committed);
}

/* Give back every page the trackers keep that may go (resident.c). A
 * segment whose transaction's commit waits for a group's sync (the store
 * lock let go) is skipped: its pages are in flight, their images already
 * hold bytes that are not tagged yet. What stays and a truncation would
 * not let go (an open transaction's, an ambient epoch's) is not held
 * against the limit again (res_kept). */
static void release_pages(lrvm_t *s)
{
    lrvm__log_tail_shut(&s->log);       /* its commits mark pages */
    for (size_t i = 0; i < s->nsegs; i++) {
        struct lrvm__seg *seg = s->segs[i];
        unpark(s, seg, 1);              /* a parked segment's pages may go too */
        if (seg->sg_tx != NULL && seg->sg_tx->tx_committing)
            continue;
        (void)s->tracker->release(s, seg);     /* a failure loses nothing: the pages stay */
    }
    s->res_kept = lrvm__res_pages(s) - lrvm__res_unapplied(s);
    s->trunc.tj_reaped = 0;
}

/* After an epoch's commit. A truncation that ended is folded in. When the
 * pages kept passed the resident limit, or the tracker asks for it (its
 * own cost: lrvm__tracker.crowded), every page that may go is given
 * back, if a truncation ended well since the last time or the log holds
 * no record (else none could: their bytes are only in the log); and when
 * the log passed its threshold, or the pages the limit, a truncation
 * starts beside the commits (recover.c), unless one runs. Nothing here
 * waits for a segment file, but at the memory's hard limit: while a
 * truncation runs, the pages kept past the limit fill a quarter of it
 * more at the truncation's pace (as the log fills its room: MEM_ROOM),
 * and past that a commit waits for it (commit_waits), as commits wait at
 * the log's wall. The pages that could not go are not held against the
 * limit again until it has been passed once more, so a store whose pages
 * are all held does not truncate at every commit. Returns the
 * microseconds the caller sleeps once it let the store lock go, when the
 * commits outrun the truncation (lrvm__truncate_pace) or the log's
 * syncer (lrvm__log_pace). */
#define MEM_ROOM(limit) ((limit) / 4)

static unsigned after_commit(lrvm_t *s)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    (void)lrvm__trunc_reap(s);
    size_t pages = lrvm__res_pages(s);
    if (pages < s->res_kept)
        s->res_kept = pages;        /* segments unmapped since */
    size_t extra = (pages - s->res_kept) * (size_t)sysconf(_SC_PAGESIZE);
    size_t limit = s->resident_limit, room = MEM_ROOM(limit);
    int holds = lrvm__log_holds_records(&s->log);
    if (extra > limit + room && holds && !s->trunc.tj_reaped) {
        lrvm__truncate_wait(s);
        holds = lrvm__log_holds_records(&s->log);
    }
    int over = extra > limit || (s->tracker->crowded != NULL && s->tracker->crowded(s));
    if (over && (s->trunc.tj_reaped || !holds)) {
        release_pages(s);
        extra = 0;
        over = 0;
    }
    if (over || lrvm__truncate_due(s))
        lrvm__truncate_start(s);
    int mem_fill = extra <= limit ? -1
                   : extra - limit >= room ? 65536
                   : (int)((uint64_t)(extra - limit) * 65536 / room);
    unsigned us = lrvm__truncate_pace(s, mem_fill);
    return us > 0 ? us : lrvm__log_pace(&s->log);
}

static void epoch_committed(void *arg)
{
    struct epoch *ep = arg;
    ep->store->tracker->committed(ep->store, ep->tx);
}

/* The owner's commit of TX, which has a hook, at the log's tail: the
 * hook's changes there too, put back when the records could not be
 * placed (the commit then takes the store's lock, and the hook's commit
 * makes them again). */
static int hooked_tail(lrvm_t *s, lrvm_tx_t *tx, struct epoch *ep)
{
    const struct lrvm__tx_hook *hook = tx->tx_hook;
    size_t mark = tx->tx_nranges;
    tx->tx_mark = mark;
    int rc = hook->tail_commit(tx, tx->tx_hook_arg);
    int done = rc > 0 && lrvm__log_tail_commit(&s->log, epoch_redo, epoch_committed, ep) == 0;
    if (rc != 0 && !done)
        s->tracker->rollback(tx, mark);
    if (rc != 0)
        hook->tail_end(tx, tx->tx_hook_arg, done);
    tx->tx_mark = 0;
    return done;
}

/* The owner's no-flush commit of TX at the log's tail, without the store's
 * lock: 1 when done (TX parked), 0 when it must take the lock. */
static int commit_at_tail(lrvm_tx_t *tx)
{
    if (!fast_enter(tx))
        return 0;
    lrvm_t *s = tx->tx_store;
    const struct lrvm__tracker *t = s->tracker;
    struct epoch ep = { s, tx };
    int done = 0;
    if (!parked(tx) && t->tail_ok != NULL && t->tail_ok(s, tx))
        done = tx->tx_hook != NULL ? hooked_tail(s, tx, &ep)
               : lrvm__log_tail_commit(&s->log, epoch_redo, epoch_committed, &ep) == 0;
    if (done)
        park(tx);
    fast_leave();
    return done;
}

int lrvm_commit(lrvm_tx_t *tx, int flags)
{
    lrvm_t *s;
    if (flags & ~LRVM_NO_FLUSH)
        return LRVM_EINVAL;
    if ((flags & LRVM_NO_FLUSH) && commit_at_tail(tx))
        return 0;
    int rc = tx_enter(tx, &s);
    if (rc < 0)
        return rc;
    if ((flags & LRVM_NO_FLUSH) && commit_at_tail(tx)) {        /* the convoy, above */
        lrvm__unlock(&s->mu);
        return 0;
    }
    tx->tx_committing = 1;
    rc = hooked_commit(s, tx, flags | LRVM__COMMIT_GROUP);
    tx->tx_committing = 0;
    unsigned pace = 0;
    if (rc == 0) {
        s->stats.commits++;
        hook_end(tx, 1);
        if (may_park(tx))
            park(tx);
        else
            tx_free(tx);
        pace = after_commit(s);
    }
    lrvm__tx_tail_open(s);
    lrvm__unlock(&s->mu);
    if (pace > 0)                   /* outside the lock: others commit meanwhile */
        lrvm__pause_us(pace);
    return rc;
}

int lrvm_sync(lrvm_t *s)
{
    if (s == NULL)
        return LRVM_EINVAL;
    if (!s->tracker->ambient)
        return LRVM_EMODE;                  /* no ambient epoch without capture */
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    /* No group commit: the ambient pages stay sealed until the sync ends,
     * and the store's lock must not be let go meanwhile. */
    int rc = commit_epoch(s, NULL, 0);
    unsigned pace = 0;
    if (rc == 0) {
        s->stats.syncs++;
        pace = after_commit(s);
    }
    lrvm__unlock(&s->mu);
    if (pace > 0)
        lrvm__pause_us(pace);
    return rc;
}

/* Abort TX, claimed, under the store's lock. */
static void abort_claimed(lrvm_t *s, lrvm_tx_t *tx)
{
    check_tx(s, tx);
    s->tracker->abort(tx);
    s->stats.aborts++;
    hook_end(tx, 0);
    tx_free(tx);
}

/* ------------------------------------------------- lrvm's own transactions */

int lrvm__tx_begin_own(lrvm_t *s, struct lrvm__seg *seg, lrvm_tx_t **out)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    LRVM__ASSERT(s->tracker->shared);
    if (seg->sg_tx != NULL)
        return LRVM_EEXIST;
    pthread_once(&bias_once, bias_init);
    lrvm_tx_t *tx = tx_new(s);
    if (tx == NULL)
        return LRVM_ENOMEM;
    if (tx->tx_segs_cap < 1) {
        struct lrvm__seg **segs = realloc(tx->tx_segs, sizeof *segs);
        if (segs == NULL) {
            tx_retire(tx);
            return LRVM_ENOMEM;
        }
        tx->tx_segs = segs;
        tx->tx_segs_cap = 1;
    }
    tx->tx_segs[0] = seg;
    int rc = tx_attach(s, tx, 1, 1);        /* no owner: every call under the lock */
    if (rc == 0) {
        tx->tx_own = 1;
        *out = tx;
    }
    return rc;
}

int lrvm__tx_end_own(lrvm_tx_t *tx, int commit)
{
    lrvm_t *s = tx->tx_store;
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    int rc = 0;
    if (commit) {
        tx->tx_committing = 1;
        rc = commit_epoch(s, tx, LRVM_NO_FLUSH);    /* never lets the lock go */
        tx->tx_committing = 0;
    }
    if (!commit || rc < 0) {
        check_tx(s, tx);
        s->tracker->abort(tx);
    }
    tx_free(tx);
    return rc;
}

int lrvm_abort(lrvm_tx_t *tx)
{
    lrvm_t *s;
    int rc = tx_enter(tx, &s);
    if (rc < 0)
        return rc;
    abort_claimed(s, tx);
    lrvm__unlock(&s->mu);
    return 0;
}

void lrvm__tx_abort_all(lrvm_t *s)
{
    while (s->txs != NULL) {
        lrvm__tx_claim(s->txs);
        if (parked(s->txs))
            tx_free(s->txs);            /* committed */
        else
            abort_claimed(s, s->txs);
    }
}
