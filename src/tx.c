/*
 * tx.c -- transactions: begin, set_range, commit, abort.
 *
 * Owns: struct lrvm_tx, the store's list of open transactions, which
 * segment belongs to which transaction, and the process-wide registry of
 * live transaction handles (so that a finished or foreign handle gets
 * LRVM_ENOENT instead of a use after free).
 * Never: reports a commit before lrvm__log_commit returned success, or
 * frees a transaction that another thread may still be entering.
 *
 * A transaction's life:
 *
 *     lrvm_begin --> OPEN --lrvm_commit ok--> (freed, COMMITTED)
 *                     |  \--lrvm_commit fails--> OPEN (retry or abort)
 *                     \--lrvm_abort, lrvm_close--> (freed, ABORTED)
 *
 * Invariants
 *   I1 seg->sg_tx == tx exactly for the segments of an OPEN transaction;
 *      a segment is in at most one.
 *   I2 A handle is in the registry exactly while its transaction is OPEN;
 *      it is removed under the store's lock, so a caller that found it
 *      there after taking that lock may use it until it lets go.
 *   I3 A flushing commit may let the store's lock go while it waits for a
 *      shared log sync (group commit, log.c); tx_committing is set all
 *      along, so other calls on the handle get LRVM_EBUSY, and lrvm_close
 *      waits for such commits to end before it frees anything.
 *   Lock order: lrvm.mu, then reg_mu; lrvm.mu, then the log's lg_sync_mu.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct reg_entry {
    lrvm_tx_t *tx;
    lrvm_t    *store;
};

static pthread_mutex_t   reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg;
static size_t            reg_n, reg_cap;

static lrvm_t *reg_find(const lrvm_tx_t *tx)
{
    lrvm_t *s = NULL;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < reg_n; i++) {
        if (reg[i].tx == tx) {
            s = reg[i].store;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return s;
}

static int reg_add(lrvm_tx_t *tx, lrvm_t *s)
{
    int rc = 0;
    pthread_mutex_lock(&reg_mu);
    if (reg_n == reg_cap) {
        size_t cap = reg_cap ? reg_cap * 2 : 16;
        struct reg_entry *r = realloc(reg, cap * sizeof *r);
        if (r == NULL) {
            rc = LRVM_ENOMEM;
            goto out;
        }
        reg = r;
        reg_cap = cap;
    }
    reg[reg_n++] = (struct reg_entry){ tx, s };
out:
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static void reg_remove(const lrvm_tx_t *tx)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < reg_n; i++) {
        if (reg[i].tx == tx) {
            reg[i] = reg[--reg_n];
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Find TX's store and lock it; LRVM_ENOENT for a handle that is not OPEN.
 * Keeps I2: the second look happens under the store's lock. */
static int tx_enter(lrvm_tx_t *tx, lrvm_t **out)
{
    lrvm_t *s = reg_find(tx);
    if (s == NULL)
        return LRVM_ENOENT;
    pthread_mutex_lock(&s->mu);
    if (reg_find(tx) != s) {
        pthread_mutex_unlock(&s->mu);
        return LRVM_ENOENT;
    }
    if (tx->tx_committing) {        /* another thread commits it right now */
        pthread_mutex_unlock(&s->mu);
        return LRVM_EBUSY;
    }
    *out = s;
    return 0;
}

static void tx_free(lrvm_tx_t *tx)
{
    lrvm_t *s = tx->tx_store;
    for (int i = 0; i < tx->tx_nsegs; i++)
        tx->tx_segs[i]->sg_tx = NULL;               /* keeps I1 */
    if (tx->tx_prev)
        tx->tx_prev->tx_next = tx->tx_next;
    else
        s->txs = tx->tx_next;
    if (tx->tx_next)
        tx->tx_next->tx_prev = tx->tx_prev;
    reg_remove(tx);                                 /* keeps I2 */
    free(tx->tx_segs);
    free(tx);
}

int lrvm_begin(lrvm_t *s, int nsegs, void *const *bases, lrvm_tx_t **out)
{
    if (s == NULL || nsegs < 1 || bases == NULL || out == NULL)
        return LRVM_EINVAL;
    lrvm_tx_t *tx = calloc(1, sizeof *tx);
    struct lrvm__seg **segs = calloc((size_t)nsegs, sizeof *segs);
    if (tx == NULL || segs == NULL) {
        free(tx);
        free(segs);
        return LRVM_ENOMEM;
    }
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < nsegs && rc == 0; i++) {
        segs[i] = lrvm__seg_by_base(s, bases[i]);
        if (segs[i] == NULL)
            rc = LRVM_ENOENT;
        else if (segs[i]->sg_tx != NULL)
            rc = LRVM_EEXIST;
        for (int j = 0; j < i && rc == 0; j++)
            if (segs[j] == segs[i])
                rc = LRVM_EINVAL;
    }
    if (rc == 0)
        rc = reg_add(tx, s);
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        free(tx);
        free(segs);
        return rc;
    }
    tx->tx_store = s;
    tx->tx_nsegs = nsegs;
    tx->tx_segs = segs;
    for (int i = 0; i < nsegs; i++)
        segs[i]->sg_tx = tx;                        /* keeps I1 */
    tx->tx_next = s->txs;
    if (s->txs)
        s->txs->tx_prev = tx;
    s->txs = tx;
    if ((rc = lrvm__track_begin(tx)) < 0) {
        tx_free(tx);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    pthread_mutex_unlock(&s->mu);
    *out = tx;
    return 0;
}

int lrvm__set_range_in(lrvm_tx_t *tx, const void *base, void *addr, size_t len)
{
    lrvm_t *s;
    int rc = tx_enter(tx, &s);
    if (rc < 0)
        return rc;
    if (len > 0) {
        struct lrvm__seg *seg = lrvm__seg_by_addr(s, addr, len);
        if (seg == NULL || seg->sg_tx != tx ||
            (base != NULL && seg->sg_base != base))
            rc = LRVM_EINVAL;
        else
            rc = lrvm__track_set_range(tx, seg, (size_t)((unsigned char *)addr - seg->sg_base), len);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int lrvm_set_range(lrvm_tx_t *tx, void *addr, size_t len)
{
    return lrvm__set_range_in(tx, NULL, addr, len);
}

int lrvm_commit(lrvm_tx_t *tx, int flags)
{
    lrvm_t *s;
    if (flags & ~LRVM_NO_FLUSH)
        return LRVM_EINVAL;
    int rc = tx_enter(tx, &s);
    if (rc < 0)
        return rc;
    lrvm__track_commit_start(tx);
    tx->tx_committing = 1;
    rc = lrvm__log_commit(s, lrvm__track_redo_tx, lrvm__track_seal_tx, tx,
                          flags | LRVM__COMMIT_GROUP);
    tx->tx_committing = 0;
    if (rc == 0) {
        s->stats.commits++;
        lrvm__track_committed(tx);
        tx_free(tx);
        lrvm__truncate_if_due(s);
    } else {
        lrvm__track_commit_failed(tx);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int lrvm_abort(lrvm_tx_t *tx)
{
    lrvm_t *s;
    int rc = tx_enter(tx, &s);
    if (rc < 0)
        return rc;
    lrvm__track_aborted(tx);
    s->stats.aborts++;
    tx_free(tx);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void lrvm__tx_abort_all(lrvm_t *s)
{
    while (s->txs != NULL) {
        lrvm__track_aborted(s->txs);
        s->stats.aborts++;
        tx_free(s->txs);
    }
}
