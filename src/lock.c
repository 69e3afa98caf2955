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
 * lock of its own), the flag of the one waiter trying, and how long it
 * tries. The release build has no list: the other calls are pthread's,
 * inline (internal.h).
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS_MIN 500u                /* how long a waiter tries at least, */
#define SPIN_NS_MAX 50000u              /*   and at most */

/* One waiter of the process at a time may try (any store's lock): with
 * more threads than cores, a second one trying would take the core from
 * a thread with work of its own, or from the holder itself. */
static atomic_int trying;
/* How long it tries, in nanoseconds, set by the last waiter that tried
 * and then slept: twice what that one waited in all, when that was at
 * most half of SPIN_NS_MAX (trying that long would have served it), and
 * an eighth less when it waited longer (the lock is held long, as by an
 * automatic tracker's commit, and the core is better given up). A limit
 * that only shrank when trying failed fell to its floor under holds a
 * little longer than it, and never rose again: every wait then slept
 * (doc/architecture.md, "Locks"). */
static atomic_uint spin_ns = SPIN_NS_MAX / 8;

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A store's lock is held a few microseconds at a time, by threads that
 * then go on. A waiter put to sleep costs the holder a futex wake and
 * itself a reschedule, several times that on a VM. So the one waiter
 * allowed tries the lock for a while first (the figures:
 * doc/architecture.md, "Locks"). */
void lrvm__lock_store(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) == 0)
        return;
    if (atomic_exchange_explicit(&trying, 1, memory_order_acquire) != 0) {
        pthread_mutex_lock(m);
        return;
    }
    unsigned budget = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    uint64_t t0 = mono_ns(), waited = 0;
    int got = 0;
    while (!got && waited < budget) {
        for (int i = 0; i < 16 && !got; i++) {
            CPU_RELAX();
            got = pthread_mutex_trylock(m) == 0;
        }
        waited = mono_ns() - t0;
    }
    atomic_store_explicit(&trying, 0, memory_order_release);
    if (got)
        return;
    pthread_mutex_lock(m);
    waited = mono_ns() - t0;
    uint64_t next = waited <= SPIN_NS_MAX / 2 ? 2 * waited : budget - budget / 8;
    atomic_store_explicit(&spin_ns, next < SPIN_NS_MIN ? SPIN_NS_MIN :
                                    next > SPIN_NS_MAX ? SPIN_NS_MAX : (unsigned)next,
                          memory_order_relaxed);
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
