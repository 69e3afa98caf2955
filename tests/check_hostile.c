/*
 * check_hostile.c -- a store directory turned against its owner, and a
 * careless administrator: a segment file, the log or the lock file that is
 * a symbolic link, a FIFO or a directory; a store directory anyone may
 * write to or another user owns; the lock file, the log, a segment file or
 * the whole store removed while the store is open; a missing parent
 * directory; segment names with control characters;
 * LRVM_TRACKING spelled in capitals or wrong; a thread that blocks SIGSEGV;
 * a segment page the program unmapped; a full disk. Each gets a clear error code,
 * writes nowhere it must not, and loses nothing.
 */
#define _GNU_SOURCE
#include "lrvm.h"
#include "rvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A store in tu_dir whose log holds one committed record for segment
 * "a" (64 bytes of 'x' at 0), closed without truncation. */
static void store_with_record(void)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), 0);
    char *a = tu_map(s, "a", 4096);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 64), 0);
    memset(a, 'x', 64);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}

static int open_explicit(const char *dir, int shared, lrvm_t **s)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .shared = shared };
    return lrvm_open(dir, &o, s);
}

/* A file outside the store that an attacker would like lrvm to write:
 * 4096 bytes of 'v'. */
static char *make_victim(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s.victim", tu_dir);
    char buf[4096];
    memset(buf, 'v', sizeof buf);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    return path;
}

static void check_victim(const char *path)
{
    char buf[4096];
    ck_assert_int_eq(tu_file_size(path), 4096);
    ck_assert_int_eq(tu_read(path, buf, sizeof buf, 0), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        ck_assert_msg(buf[i] == 'v', "byte %zu of the victim changed to 0x%02x", i,
                      (unsigned char)buf[i]);
    unlink(path);
}

START_TEST(test_hostile_symlinked_segment_is_not_replayed_through)
{
    store_with_record();
    char *victim = make_victim();
    const char *seg = tu_path(tu_dir, "a.seg");
    ck_assert_int_eq(unlink(seg), 0);
    ck_assert_int_eq(symlink(victim, seg), 0);
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_EACCES);
    check_victim(victim);
}
END_TEST

START_TEST(test_hostile_symlinked_segment_is_not_mapped)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), 0);
    char *victim = make_victim();
    ck_assert_int_eq(symlink(victim, tu_path(tu_dir, "b.seg")), 0);
    void *base;
    ck_assert_int_eq(lrvm_map(s, "b", 8192, &base), LRVM_EACCES);    /* would extend it */
    ck_assert_int_eq(lrvm_heap_open(s, "b", 65536, (lrvm_heap_t **)&base), LRVM_EACCES);
    ck_assert_int_eq(lrvm_close(s), 0);
    check_victim(victim);
}
END_TEST

START_TEST(test_hostile_symlinked_lock_and_log_are_refused)
{
    lrvm_t *s;
    char target[4200];
    snprintf(target, sizeof target, "%s.lock-target", tu_dir);
    ck_assert_int_eq(symlink(target, tu_path(tu_dir, "lrvm.lock")), 0);
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_EACCES);
    ck_assert_msg(access(target, F_OK) != 0, "lrvm_open created the lock file's target");
    ck_assert_int_eq(unlink(tu_path(tu_dir, "lrvm.lock")), 0);

    store_with_record();
    char *victim = make_victim();
    const char *log = tu_path(tu_dir, "lrvm.log");
    ck_assert_int_eq(unlink(log), 0);
    ck_assert_int_eq(symlink(victim, log), 0);
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_EACCES);
    check_victim(victim);
}
END_TEST

START_TEST(test_hostile_fifo_and_directory_segments_are_refused)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), 0);
    ck_assert_int_eq(mkfifo(tu_path(tu_dir, "f.seg"), 0600), 0);      /* would block an open */
    ck_assert_int_eq(mkdir(tu_path(tu_dir, "d.seg"), 0700), 0);
    void *base;
    ck_assert_int_eq(lrvm_map(s, "f", 4096, &base), LRVM_EACCES);
    ck_assert_int_eq(lrvm_map(s, "d", 4096, &base), LRVM_EACCES);
    ck_assert_int_eq(lrvm_destroy(s, "f"), 0);      /* unlinking a name is fine */
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_hostile_world_writable_directory_needs_shared)
{
    store_with_record();
    ck_assert_int_eq(chmod(tu_dir, 0777), 0);
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_EACCES);
    ck_assert_int_eq(open_explicit(tu_dir, 1, &s), 0);     /* shared on purpose */
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(a[63], 'x');                          /* the record was replayed */
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(chmod(tu_dir, 0700), 0);
}
END_TEST

START_TEST(test_hostile_foreign_owner_needs_shared)
{
    store_with_record();
    if (geteuid() != 0) {
        /* Only root can give the directory away; the check is the same
         * comparison either way. */
        fprintf(stderr, "check_hostile: not root, the foreign owner case is not run\n");
        return;
    }
    ck_assert_int_eq(chown(tu_dir, 12345, 12345), 0);
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_EACCES);
    ck_assert_int_eq(open_explicit(tu_dir, 1, &s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(chown(tu_dir, 0, 0), 0);
}
END_TEST

/* The lock holds when lrvm.lock is removed under it: a second open, in
 * another process, still finds the store busy. */
static void child_open(const void *arg)
{
    (void)arg;
    lrvm_t *s;
    int rc = open_explicit(tu_dir, 0, &s);
    tu_report(rc);
    _exit(0);
}

START_TEST(test_hostile_removed_lock_file_keeps_the_lock)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), 0);
    ck_assert_int_eq(unlink(tu_path(tu_dir, "lrvm.lock")), 0);
    int vals[1], n = 0;
    int st = tu_run_child(child_open, NULL, vals, 1, &n);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(vals[0], LRVM_EBUSY);
    lrvm_t *again;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &again), LRVM_EBUSY);   /* this process too */
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* One transaction that stores V at A's first word, committed with FLAGS. */
static int store_word(lrvm_t *s, char *a, int v, int flags)
{
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, sizeof v), 0);
    memcpy(a, &v, sizeof v);
    return lrvm_commit(tx, flags);
}

/* A store in DIR whose directory (FILE NULL) or file FILE is removed
 * while it is open: its files live on in the open descriptors, and a sync
 * of them makes nothing durable. A no-flush commit may return 0 (it
 * promises nothing yet), but the next flushed commit fails with LRVM_EIO,
 * errno ENOENT (not LRVM_ENOENT, which from lrvm_commit means a finished
 * transaction), and the store then refuses flushes (lrvm.h C4). Before,
 * every commit returned 0. */
static void removed_fails_the_flushed_commit(const char *dir, const char *file)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(dir, 0, &s), 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(store_word(s, a, 1, 0), 0);
    if (file == NULL)
        tu_rmrf(dir);
    else
        ck_assert_int_eq(unlink(tu_path(dir, file)), 0);
    ck_assert_int_eq(store_word(s, a, 2, LRVM_NO_FLUSH), 0);
    int rc = store_word(s, a, 3, 0);
    ck_assert_msg(rc == LRVM_EIO, "flushed commit after %s was removed: %s",
                  file ? file : "the store", rc ? lrvm_strerror(rc) : "returned 0");
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(lrvm_flush(s), LRVM_EFAILED);
    ck_assert_int_ne(lrvm_close(s), 0);
}

START_TEST(test_hostile_removed_store_or_log_fails_the_flushed_commit)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/store", tu_dir);
    removed_fails_the_flushed_commit(dir, NULL);
    removed_fails_the_flushed_commit(tu_dir, "lrvm.log");
}
END_TEST

/* A segment file removed while the store is open: the truncation that
 * would write it fails with LRVM_EIO, errno ENOENT, not as a corrupt log,
 * which is what the same record means to recovery at open (lrvm_open).
 * The log keeps the commit, and lrvm_open refuses it until the file is
 * back. */
START_TEST(test_hostile_removed_segment_file_fails_the_truncation)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(store_word(s, a, 1, 0), 0);
    ck_assert_int_eq(unlink(tu_path(tu_dir, "a.seg")), 0);
    ck_assert_int_eq(lrvm_truncate(s), LRVM_EIO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(lrvm_close(s), 0);                         /* the log holds it */
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), LRVM_ECORRUPT);
}
END_TEST

START_TEST(test_hostile_missing_parent_says_so)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/no/such/store", tu_dir);
    lrvm_t *s;
    int rc = open_explicit(path, 0, &s);
    ck_assert_int_eq(rc, LRVM_ENOENT);
    ck_assert_msg(strstr(lrvm_strerror(rc), "file") != NULL, "message: %s", lrvm_strerror(rc));
}
END_TEST

START_TEST(test_hostile_control_characters_in_names)
{
    lrvm_t *s;
    ck_assert_int_eq(open_explicit(tu_dir, 0, &s), 0);
    static const char *const bad[] = { "a\nb", "tab\there", "bell\a", "del\x7f" };
    void *base;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(lrvm_map(s, bad[i], 4096, &base), LRVM_EINVAL);
        ck_assert_int_eq(lrvm_destroy(s, bad[i]), LRVM_EINVAL);
    }
    ck_assert_int_eq(lrvm_map(s, "caf\xc3\xa9", 4096, &base), 0);     /* UTF-8 is fine */
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_hostile_tracking_env_any_case_or_refused)
{
    setenv("LRVM_TRACKING", "EXPLICIT", 1);
    rvm_t r = rvm_init(tu_dir);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(lrvm_sync(r), LRVM_EMODE);           /* explicit mode: no ambient epoch */
    ck_assert_int_eq(lrvm_close(r), 0);
    setenv("LRVM_TRACKING", "explicitly", 1);
    ck_assert_ptr_null(rvm_init(tu_dir));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EINVAL);
    setenv("LRVM_TRACKING", "Mprotect", 1);
    ck_assert_ptr_nonnull(r = rvm_init(tu_dir));
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(r, &st), 0);
    ck_assert_int_eq(st.tracking, LRVM_TRACK_MPROTECT);
    ck_assert_int_eq(lrvm_close(r), 0);
    setenv("LRVM_TRACKING", "UFFD", 1);       /* where the kernel offers it */
    r = rvm_init(tu_dir);
    if (tu_uffd_offered()) {
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(lrvm_stats(r, &st), 0);
        ck_assert_int_eq(st.tracking, LRVM_TRACK_UFFD);
        ck_assert_int_eq(lrvm_close(r), 0);
    } else {
        ck_assert_ptr_null(r);
        ck_assert_int_eq(lrvm_last_error(), LRVM_EMODE);
    }
    unsetenv("LRVM_TRACKING");
}
END_TEST

/* Each tracking mode is honoured or refused, and lrvm_stats names the
 * tracker a store got: the userfaultfd tracker where the kernel offers
 * it (refused by name otherwise); automatic capture is the mprotect
 * tracker's (the userfaultfd tracker's when a suite asks for it). */
START_TEST(test_hostile_tracking_modes_honoured_or_refused)
{
    int uffd = tu_uffd_offered();
    const struct { int mode, rc, tracker; } cases[] = {
        { LRVM_TRACK_AUTO, 0, tu_auto_tracker() },
        { LRVM_TRACK_EXPLICIT, 0, LRVM_TRACK_EXPLICIT },
        { LRVM_TRACK_MPROTECT, 0, LRVM_TRACK_MPROTECT },
        { LRVM_TRACK_UFFD, uffd ? 0 : LRVM_EMODE, LRVM_TRACK_UFFD },
        { 4, LRVM_EINVAL, 0 },
        { -1, LRVM_EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lrvm_options_t o = { .tracking = cases[i].mode };
        lrvm_t *s = NULL;
        ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), cases[i].rc);
        if (cases[i].rc != 0)
            continue;
        lrvm_stats_t st;
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        ck_assert_int_eq(st.tracking, cases[i].tracker);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* Point 4: a thread that blocks SIGSEGV cannot be captured by faults. */
struct map_arg {
    lrvm_t *s;
    int     rc;
};

static void *map_with_sigsegv_blocked(void *argp)
{
    struct map_arg *a = argp;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    void *base;
    a->rc = lrvm_map(a->s, "blocked", 4096, &base);
    if (a->rc == 0) {                   /* a store from this thread is captured */
        lrvm_tx_t *tx;
        if (lrvm_begin(a->s, 1, &base, &tx) != 0 || lrvm_set_range(tx, base, 8) != 0)
            a->rc = -1000;
        memcpy(base, "blocked", 8);
        if (a->rc == 0 && lrvm_commit(tx, 0) != 0)
            a->rc = -1001;
    }
    return NULL;
}

/* The mprotect tracker refuses a thread that blocks SIGSEGV (it would die
 * at its first store); the explicit and userfaultfd trackers raise no
 * signal, and the thread's stores are committed. */
START_TEST(test_hostile_thread_blocking_sigsegv_cannot_map_in_auto_mode)
{
    static const int modes[] = { LRVM_TRACK_MPROTECT, LRVM_TRACK_EXPLICIT, LRVM_TRACK_UFFD };
    for (size_t i = 0; i < 3; i++) {
        if (modes[i] == LRVM_TRACK_UFFD && !tu_uffd_offered())
            continue;
        tu_rmrf(tu_dir);
        lrvm_options_t o = { .tracking = modes[i] };
        struct map_arg a = { NULL, 1 };
        ck_assert_int_eq(lrvm_open(tu_dir, &o, &a.s), 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, map_with_sigsegv_blocked, &a), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(a.rc, modes[i] == LRVM_TRACK_MPROTECT ? LRVM_EMODE : 0);
        ck_assert_int_eq(lrvm_close(a.s), 0);
        if (a.rc == 0) {
            void *base;
            ck_assert_int_eq(lrvm_open(tu_dir, &o, &a.s), 0);
            ck_assert_int_eq(lrvm_map(a.s, "blocked", 4096, &base), 0);
            ck_assert_str_eq(base, "blocked");
            ck_assert_int_eq(lrvm_close(a.s), 0);
        }
    }
}
END_TEST

/* Point 5: a page the transaction wrote, unmapped by the program before
 * the commit. The commit fails at once with LRVM_EFAULT; abort restores
 * what is still mapped; the store goes on and nothing committed is lost. */
static void unmapped_page_child(const void *arg)
{
    (void)arg;
    alarm(20);                          /* a commit that spins ends the test */
    lrvm_t *s;
    TU_CHILD_CHECK(lrvm_open(tu_dir, NULL, &s) == 0);
    char *a, *b;
    TU_CHILD_CHECK(lrvm_map(s, "a", 1 << 20, (void **)&a) == 0);
    TU_CHILD_CHECK(lrvm_map(s, "b", 4096, (void **)&b) == 0);
    lrvm_tx_t *tx;
    TU_CHILD_CHECK(lrvm_begin(s, 1, (void *const *)&a, &tx) == 0);
    a[0] = 1;
    a[8192] = 2;
    TU_CHILD_CHECK(munmap(a + 8192, 4096) == 0);
    tu_report(lrvm_commit(tx, 0));
    tu_report(lrvm_abort(tx));
    tu_report(a[0]);                    /* restored */
    b[0] = 7;                           /* the ambient epoch still commits */
    tu_report(lrvm_sync(s));
    tu_report(lrvm_close(s));
    _exit(0);
}

START_TEST(test_hostile_unmapped_page_fails_the_commit)
{
    int vals[8], n = 0;
    int st = tu_run_child(unmapped_page_child, NULL, vals, 8, &n);
    ck_assert_msg(tu_child_failed_line(vals, n) == 0, "line %d", tu_child_failed_line(vals, n));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(vals[0], LRVM_EFAULT);
    ck_assert_int_eq(vals[1], 0);
    ck_assert_int_eq(vals[2], 0);
    ck_assert_int_eq(vals[3], 0);
    ck_assert_int_eq(vals[4], 0);
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(tu_dir, NULL, &s), 0);
    char *a = tu_map(s, "a", 1 << 20), *b = tu_map(s, "b", 4096);
    ck_assert_int_eq(a[0], 0);
    ck_assert_int_eq(a[8192], 0);
    ck_assert_int_eq(b[0], 7);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* lrvm.h C11, the userfaultfd tracker: a mapping the program puts over
 * part of a segment (MAP_FIXED) cannot be scanned, so every commit that
 * covers the segment fails with LRVM_EFAULT, never silently without the
 * stores under it; abort restores the rest; nothing is committed. */
START_TEST(test_hostile_map_fixed_over_segment_under_uffd)
{
    if (!tu_uffd_offered())
        return;                         /* the mprotect tracker cannot tell (C11) */
    lrvm_options_t o = { .tracking = LRVM_TRACK_UFFD };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), 0);
    char *a = tu_map(s, "a", 16 * 4096);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    a[0] = 1;
    ck_assert_ptr_eq(mmap(a + 8192, 4096, PROT_READ | PROT_WRITE,
                          MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), a + 8192);
    a[8192] = 2;                        /* under the program's own mapping */
    ck_assert_int_eq(lrvm_commit(tx, 0), LRVM_EFAULT);
    ck_assert_int_eq(lrvm_commit(tx, 0), LRVM_EFAULT);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(a[0], 0);
    a[4] = 3;                           /* the ambient epoch covers it too */
    ck_assert_int_eq(lrvm_sync(s), LRVM_EFAULT);
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), 0);
    a = tu_map(s, "a", 16 * 4096);
    ck_assert_int_eq(a[0], 0);
    ck_assert_int_eq(a[4], 0);
    ck_assert_int_eq(a[8192], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Point 6: a full disk. A 4 MiB tmpfs holds the store (the log takes
 * about 1 MiB of it). A segment larger than the free space is refused up
 * front; one that fits is reserved whole, so once the disk is full,
 * commits that fit the log, truncation and recovery still work. */
START_TEST(test_hostile_full_disk_is_met_up_front)
{
    char mnt[4200], dir[4300], filler[4300];
    snprintf(mnt, sizeof mnt, "%s/mnt", tu_dir);
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0) {
        fprintf(stderr, "check_hostile: cannot mount a small tmpfs (%s), the full disk "
                "case is not run\n", strerror(errno));
        return;
    }
    snprintf(dir, sizeof dir, "%s/store", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(dir, NULL, &s), 0);
    void *big;
    ck_assert_int_eq(lrvm_map(s, "big", 8 << 20, &big), LRVM_ENOSPC);
    ck_assert_msg(access(tu_path(dir, "big.seg"), F_OK) != 0, "big.seg was left behind");
    char *a = tu_map(s, "a", 1 << 20);

    /* Fill the disk. */
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    static char block[65536];
    while (write(fd, block, sizeof block) > 0)
        ;
    close(fd);

    /* Every page of the segment, in transactions of 16 pages: a store
     * into a reserved page needs no block, and the log has room. */
    for (size_t p = 0; p < 256; p += 16) {
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
        for (size_t q = p; q < p + 16; q++)
            a[q * 4096] = (char)(q + 1);
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    }
    ck_assert_int_eq(lrvm_truncate(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(lrvm_open(dir, NULL, &s), 0);         /* recovery, disk full */
    a = tu_map(s, "a", 1 << 20);
    for (size_t q = 0; q < 256; q++)
        ck_assert_int_eq(a[q * 4096], (char)(q + 1));
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

/* Run lrvmutl CMD on tu_dir with FLAG (from $LRVMUTL, which make check
 * sets), its output thrown away; its exit status. */
static int lrvmutl(const char *cmd, const char *flag)
{
    const char *tool = getenv("LRVMUTL");
    if (tool == NULL)
        tool = "tools/lrvmutl";
    char line[8400];
    snprintf(line, sizeof line, "'%s' %s '%s' %s >/dev/null 2>&1", tool, cmd, tu_dir,
             flag != NULL ? flag : "");
    int st = system(line);
    ck_assert_msg(WIFEXITED(st), "lrvmutl %s did not exit", cmd);
    return WEXITSTATUS(st);
}

START_TEST(test_hostile_lrvmutl_follows_the_same_rules)
{
    store_with_record();
    ck_assert_int_eq(lrvmutl("verify", NULL), 0);
    ck_assert_int_eq(chmod(tu_dir, 0777), 0);
    ck_assert_int_eq(lrvmutl("verify", NULL), 1);
    ck_assert_int_eq(lrvmutl("info", NULL), 1);
    ck_assert_int_eq(lrvmutl("recover", NULL), 1);
    ck_assert_int_eq(lrvmutl("verify", "--shared"), 0);
    ck_assert_int_eq(chmod(tu_dir, 0700), 0);

    char *victim = make_victim();
    const char *seg = tu_path(tu_dir, "a.seg");
    ck_assert_int_eq(unlink(seg), 0);
    ck_assert_int_eq(symlink(victim, seg), 0);
    ck_assert_int_eq(lrvmutl("verify", NULL), 1);       /* the log names a.seg */
    ck_assert_int_eq(lrvmutl("recover", NULL), 1);
    check_victim(victim);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tu_tcase("hostile", 30);
    tcase_add_test(tc, test_hostile_symlinked_segment_is_not_replayed_through);
    tcase_add_test(tc, test_hostile_symlinked_segment_is_not_mapped);
    tcase_add_test(tc, test_hostile_symlinked_lock_and_log_are_refused);
    tcase_add_test(tc, test_hostile_fifo_and_directory_segments_are_refused);
    tcase_add_test(tc, test_hostile_world_writable_directory_needs_shared);
    tcase_add_test(tc, test_hostile_foreign_owner_needs_shared);
    tcase_add_test(tc, test_hostile_removed_lock_file_keeps_the_lock);
    tcase_add_test(tc, test_hostile_missing_parent_says_so);
    tcase_add_test(tc, test_hostile_removed_store_or_log_fails_the_flushed_commit);
    tcase_add_test(tc, test_hostile_removed_segment_file_fails_the_truncation);
    tcase_add_test(tc, test_hostile_control_characters_in_names);
    tcase_add_test(tc, test_hostile_tracking_env_any_case_or_refused);
    tcase_add_test(tc, test_hostile_tracking_modes_honoured_or_refused);
    tcase_add_test(tc, test_hostile_lrvmutl_follows_the_same_rules);
    tcase_add_test(tc, test_hostile_thread_blocking_sigsegv_cannot_map_in_auto_mode);
    tcase_add_test(tc, test_hostile_unmapped_page_fails_the_commit);
    tcase_add_test(tc, test_hostile_map_fixed_over_segment_under_uffd);
    tcase_add_test(tc, test_hostile_full_disk_is_met_up_front);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
