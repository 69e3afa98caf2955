/*
 * compat.c -- the classic rvm_* interface over lrvm_*, tracing, and the
 * per-thread last error.
 *
 * Owns: the table of classic transaction ids (trans_t) of open
 * transactions and the verbose flag; lrvm_last_error is error.c's.
 * Never: exits the process or prints anything unless tracing is on.
 *
 * Invariants
 *   I1 A trans_t is never reused while the process lives (ids grow from 1
 *      and wrap only past INT_MAX, skipping ids still open), so a stale id
 *      gets LRVM_ENOENT instead of somebody else's transaction.
 *   I2 Every classic call that fails sets the thread's last error; one that
 *      succeeds leaves it as it was, like errno.
 */
#include "internal.h"
#include "rvm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TRACE(...) do { if (lrvm__tracing()) lrvm__trace("rvm", __VA_ARGS__); } while (0)

/* Record RC for lrvm_last_error; return it. Keeps I2. */
static int note(int rc)
{
    return lrvm__note_error(rc);
}

/* --- the id table of open classic transactions ---------------------- */

struct id_entry {
    trans_t    id;
    lrvm_tx_t *tx;
};

static pthread_mutex_t  ids_mu = PTHREAD_MUTEX_INITIALIZER;
static struct id_entry *ids;
static size_t           nids, capids;
static trans_t          next_id = 1;

static int id_slot(trans_t id)
{
    for (size_t i = 0; i < nids; i++)
        if (ids[i].id == id)
            return (int)i;
    return -1;
}

static trans_t id_add(lrvm_tx_t *tx)
{
    trans_t id = -1;
    lrvm__lock(&ids_mu, LRVM__RANK_COMPAT);
    struct id_entry *t = lrvm__room_for(ids, nids, &capids, sizeof *t);
    if (t == NULL)
        goto out;
    ids = t;
    do {                                            /* keeps I1 */
        id = next_id;
        next_id = next_id == INT_MAX ? 1 : next_id + 1;
    } while (id_slot(id) >= 0);
    ids[nids++] = (struct id_entry){ id, tx };
out:
    lrvm__unlock(&ids_mu);
    return id;
}

static lrvm_tx_t *id_find(trans_t id)
{
    lrvm_tx_t *tx = NULL;
    lrvm__lock(&ids_mu, LRVM__RANK_COMPAT);
    int i = id_slot(id);
    if (i >= 0)
        tx = ids[i].tx;
    lrvm__unlock(&ids_mu);
    return tx;
}

static void id_remove(trans_t id)
{
    lrvm__lock(&ids_mu, LRVM__RANK_COMPAT);
    int i = id_slot(id);
    if (i >= 0)
        ids[i] = ids[--nids];
    lrvm__unlock(&ids_mu);
}

/* --- the classic calls ---------------------------------------------- */

rvm_t rvm_init(const char *directory)
{
    lrvm_options_t opts = { 0 };
    lrvm_t *s = NULL;
    int rc = 0;

    /* LRVM_TRACKING takes the names in any case; anything else is refused,
     * never taken for the default. */
    static const struct { const char *name; int mode; } modes[] = {
        { "auto", LRVM_TRACK_AUTO }, { "explicit", LRVM_TRACK_EXPLICIT },
        { "uffd", LRVM_TRACK_UFFD }, { "mprotect", LRVM_TRACK_MPROTECT },
    };
    const char *mode = getenv("LRVM_TRACKING");
    if (mode != NULL && mode[0] != '\0') {
        rc = LRVM_EINVAL;
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            if (strcasecmp(mode, modes[i].name) == 0) {
                opts.tracking = modes[i].mode;
                rc = 0;
            }
        if (rc != 0)
            LRVM__TRACE("LRVM_TRACKING=%s: not one of auto, explicit, uffd, mprotect "
                        "(in any case): refused", mode);
    }
    if (rc == 0)
        rc = lrvm_open(directory, &opts, &s);
    note(rc);
    TRACE("rvm_init(\"%s\") = %p%s%s", directory ? directory : "(null)", (void *)s,
          rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
    return rc == 0 ? s : NULL;
}

void *rvm_map(rvm_t rvm, const char *segname, int size_to_create)
{
    void *base = NULL;
    int rc = size_to_create <= 0 ? LRVM_EINVAL
                                 : lrvm_map(rvm, segname, (size_t)size_to_create, &base);
    note(rc);
    TRACE("rvm_map(%p, \"%s\", %d) = %p%s%s", (void *)rvm, segname ? segname : "(null)",
          size_to_create, rc ? NULL : base, rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
    return rc == 0 ? base : NULL;
}

void rvm_unmap(rvm_t rvm, void *segbase)
{
    int rc = note(lrvm_unmap(rvm, segbase));
    TRACE("rvm_unmap(%p, %p)%s%s", (void *)rvm, segbase, rc ? ": " : "",
          rc ? lrvm_strerror(rc) : "");
}

void rvm_destroy(rvm_t rvm, const char *segname)
{
    int rc = note(lrvm_destroy(rvm, segname));
    TRACE("rvm_destroy(%p, \"%s\")%s%s", (void *)rvm, segname ? segname : "(null)",
          rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
}

trans_t rvm_begin_trans(rvm_t rvm, int numsegs, void **segbases)
{
    lrvm_tx_t *tx = NULL;
    trans_t id = -1;
    int rc = lrvm_begin(rvm, numsegs, (void *const *)segbases, &tx);
    if (rc == 0 && (id = id_add(tx)) < 0) {
        lrvm_abort(tx);
        rc = LRVM_ENOMEM;
    }
    note(rc);
    TRACE("rvm_begin_trans(%p, %d) = %d%s%s", (void *)rvm, numsegs, (int)id,
          rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
    return rc == 0 ? id : (trans_t)-1;
}

void rvm_about_to_modify(trans_t tid, void *segbase, int offset, int size)
{
    lrvm_tx_t *tx = id_find(tid);
    int rc;
    if (tx == NULL)
        rc = LRVM_ENOENT;
    else if (offset < 0 || size < 0 || segbase == NULL)
        rc = LRVM_EINVAL;
    else
        rc = lrvm__set_range_in(tx, segbase, (char *)segbase + offset, (size_t)size);
    note(rc);
    TRACE("rvm_about_to_modify(%d, %p, %d, %d)%s%s", (int)tid, segbase, offset, size,
          rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
}

void rvm_commit_trans(trans_t tid)
{
    lrvm_tx_t *tx = id_find(tid);
    int rc = tx == NULL ? LRVM_ENOENT : lrvm_commit(tx, 0);
    if (tx != NULL && rc != LRVM_ENOENT) {
        /* A classic program cannot retry: a failed commit is undone, so
         * memory shows what the store will show after a crash. */
        if (rc < 0)
            lrvm_abort(tx);
        id_remove(tid);
    }
    note(rc);
    TRACE("rvm_commit_trans(%d)%s%s", (int)tid, rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
}

void rvm_abort_trans(trans_t tid)
{
    lrvm_tx_t *tx = id_find(tid);
    int rc = tx == NULL ? LRVM_ENOENT : lrvm_abort(tx);
    if (tx != NULL)
        id_remove(tid);
    note(rc);
    TRACE("rvm_abort_trans(%d)%s%s", (int)tid, rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
}

void rvm_truncate_log(rvm_t rvm)
{
    int rc = note(lrvm_truncate(rvm));
    TRACE("rvm_truncate_log(%p)%s%s", (void *)rvm, rc ? ": " : "", rc ? lrvm_strerror(rc) : "");
}

void rvm_verbose(int enable_flag)
{
    lrvm__set_tracing(enable_flag != 0);
    TRACE("rvm_verbose(%d)", enable_flag);
}
