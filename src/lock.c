/*
 * lock.c -- the lock order, checked: in the debug build every mutex of
 * liblrvm is taken through lrvm__lock, which asserts that a thread takes
 * them in rising rank (internal.h, enum lrvm__rank; doc/architecture.md
 * "Locks" L2) and that lrvm's own threads never take a store's lock
 * (L3), and remembers which this thread holds, so that the functions
 * that need a lock can assert they have it (L1, lrvm__held).
 *
 * Owns: each thread's list of the mutexes it holds (thread-local, so no
 * lock of its own). The release build has none of it: the calls are
 * pthread's, inline (internal.h).
 */
#include "internal.h"

#ifdef LRVM_DEBUG

#define HELD_MAX 8              /* deeper than any nesting of liblrvm */

static __thread struct {
    const pthread_mutex_t *m;
    enum lrvm__rank        rank;
} held[HELD_MAX];
static __thread int nheld;
static __thread int own_thread;

void lrvm__lock_own_thread(void)
{
    own_thread = 1;
}

void lrvm__lock(pthread_mutex_t *m, enum lrvm__rank rank)
{
    LRVM__ASSERT(!(own_thread && rank == LRVM__RANK_STORE));     /* L3 */
    for (int i = 0; i < nheld; i++)
        LRVM__ASSERT(held[i].rank < rank);                       /* L2 */
    LRVM__ASSERT(nheld < HELD_MAX);
    pthread_mutex_lock(m);
    held[nheld].m = m;
    held[nheld].rank = rank;
    nheld++;
}

void lrvm__unlock(pthread_mutex_t *m)
{
    int i = nheld - 1;
    while (i >= 0 && held[i].m != m)
        i--;
    LRVM__ASSERT(i >= 0);                       /* only what it holds */
    for (; i >= 0 && i < nheld - 1; i++)
        held[i] = held[i + 1];
    nheld--;
    pthread_mutex_unlock(m);
}

int lrvm__held(const pthread_mutex_t *m)
{
    for (int i = 0; i < nheld; i++)
        if (held[i].m == m)
            return 1;
    return 0;
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int lrvm__lock_release_build;

#endif
