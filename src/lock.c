/*
 * lock.c -- the lock order, checked: in the debug build every mutex of
 * liblrvm is taken through lrvm__lock, which asserts that a thread takes
 * them in rising rank (internal.h, enum lrvm__rank; doc/architecture.md
 * "Locks" L2) and that lrvm's own threads never take a store's lock
 * (L3), and remembers which this thread holds, so that the functions
 * that need a lock can assert they have it (L1, lrvm__held).
 *
 * In both builds it also takes a store's lock (lrvm__lock_store): a
 * waiter tries for a while before it sleeps, one waiter at a time.
 *
 * Owns: each thread's list of the mutexes it holds (thread-local, so no
 * lock of its own), and the flag of the one waiter trying. The release
 * build has no list: the other calls are pthread's, inline (internal.h).
 */
#include "internal.h"

#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPINS_MAX 1000u                 /* pauses a waiter tries at most, */
#define SPINS_MIN 16u                   /*   and at least */

/* One waiter of the process at a time may try (any store's lock): with
 * more threads than cores, a second one trying would take the core from
 * a thread with work of its own, or from the holder itself. */
static atomic_int trying;
/* How long it tries: an eighth shorter each time trying failed (the
 * lock is held long, as by an automatic tracker's commit, and the core is
 * better given up), a quarter longer each time it served. */
static atomic_uint spins = SPINS_MAX;

/* A store's lock is held a few microseconds at a time, by threads that
 * then go on. A waiter put to sleep costs the holder a futex wake and
 * itself a reschedule, several times that on a VM, and two threads that
 * share a heap hand the lock back and forth four times an operation. So
 * the one waiter allowed tries the lock for a while first (the figures:
 * doc/architecture.md, "Locks"). */
void lrvm__lock_store(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) == 0)
        return;
    if (atomic_exchange_explicit(&trying, 1, memory_order_acquire) == 0) {
        unsigned limit = atomic_load_explicit(&spins, memory_order_relaxed);
        int got = 0;
        for (unsigned i = 0; i < limit && !got; i++) {
            CPU_RELAX();
            got = pthread_mutex_trylock(m) == 0;
        }
        limit = got ? limit + limit / 4 : limit - limit / 8;
        atomic_store_explicit(&spins, limit > SPINS_MAX ? SPINS_MAX :
                                      limit < SPINS_MIN ? SPINS_MIN : limit,
                              memory_order_relaxed);
        atomic_store_explicit(&trying, 0, memory_order_release);
        if (got)
            return;
    }
    pthread_mutex_lock(m);
}

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
    lrvm__lock_take(m, rank);
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

#endif
