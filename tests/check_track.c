/*
 * check_track.c -- automatic write capture: faults, the byte diff, abort,
 * foreign faults that must still kill, threads, kernel writes through the
 * read() family, set_range without faults, the ambient epoch and lrvm_sync,
 * and a transaction of 200,000 scattered pages under the default
 * vm.max_map_count. Crashes are children that die of SIGKILL, or of a
 * power cut (io.c) that takes back what was not synced.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "rvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static void setup(void)
{
    unsetenv("LRVM_TRACKING");
}

static lrvm_t *open_auto(void)
{
    return tu_open_mode(LRVM_TRACK_AUTO, (size_t)1 << 34);
}

/* For what only the mprotect tracker does: capture at the fault, ahead of
 * a sequential writer, early at lrvm_set_range. */
static lrvm_t *open_mprotect(void)
{
    return tu_open_mode(LRVM_TRACK_MPROTECT, (size_t)1 << 34);
}

/* Does S count captures as the stores fault (the mprotect tracker), not
 * when a commit scans (the userfaultfd tracker)? */
static int counts_at_fault(lrvm_t *s);

static int counts_at_fault(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return st.tracking == LRVM_TRACK_MPROTECT;
}

static lrvm_tx_t *begin1(lrvm_t *s, char *base)
{
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&base, &tx), 0);
    return tx;
}

static lrvm_stats_t stats(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return st;
}

static void die(void)
{
    kill(getpid(), SIGKILL);
}

static void expect_killed(void (*fn)(void *), void *arg)
{
    int st = tu_in_child(fn, arg);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x", st);
}

/* ---------------------------------------------------------------- */

static void classic_no_declarations(void *arg)
{
    (void)arg;
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "legacy", 3 * PAGE);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    strcpy(seg + 10, "no about_to_modify");
    strcpy(seg + 2 * PAGE + 5, "second page");
    rvm_commit_trans(t);
    t = rvm_begin_trans(rvm, 1, (void **)&seg);
    strcpy(seg + 10, "uncommitted");
    die();
}

START_TEST(test_track_classic_program_without_declarations)
{
    expect_killed(classic_no_declarations, NULL);
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "legacy", 3 * PAGE);
    ck_assert_str_eq(seg + 10, "no about_to_modify");
    ck_assert_str_eq(seg + 2 * PAGE + 5, "second page");
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

static void explicit_env_child(void *arg)
{
    (void)arg;
    setenv("LRVM_TRACKING", "explicit", 1);
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "legacy", PAGE);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 0, 8);
    strcpy(seg, "decl");
    strcpy(seg + 100, "undeclared");        /* no fault in explicit mode */
    rvm_commit_trans(t);
    die();
}

START_TEST(test_track_env_explicit_switches_classic)
{
    expect_killed(explicit_env_child, NULL);
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "legacy", PAGE);
    ck_assert_str_eq(seg, "decl");
    ck_assert_int_eq(seg[100], 0);
    lrvm_stats_t st = stats(rvm);
    ck_assert_uint_eq(st.faults, 0);
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_track_abort_and_empty_tx)
{
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "a", 8 * PAGE);
    lrvm_tx_t *tx = begin1(s, a);
    memcpy(a + 3 * PAGE, "kept", 5);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    lrvm_stats_t st0 = stats(s);

    tx = begin1(s, a);
    memset(a, 'x', 8 * PAGE);
    if (counts_at_fault(s))
        ck_assert_uint_eq(stats(s).pages_captured, st0.pages_captured + 8);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_str_eq(a + 3 * PAGE, "kept");
    for (size_t i = 0; i < 8 * PAGE; i++)
        if (i < 3 * PAGE || i >= 3 * PAGE + 5)
            ck_assert_int_eq(a[i], 0);

    /* No store, or stores that put back the same bytes: nothing logged. */
    tx = begin1(s, a);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    tx = begin1(s, a);
    a[3 * PAGE] = 'k';
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    lrvm_stats_t st1 = stats(s);
    ck_assert_uint_eq(st1.bytes_logged, st0.bytes_logged);
    ck_assert_uint_eq(st1.log_records, st0.log_records);
    /* The abort made every page read-only again: the lone store faulted. */
    ck_assert_uint_eq(st1.pages_captured, st0.pages_captured + 8 + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_track_byte_diff_logs_little)
{
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "a", 1000 * PAGE);
    lrvm_stats_t st0 = stats(s);
    lrvm_tx_t *tx = begin1(s, a);
    for (int p = 0; p < 1000; p++)
        memcpy(a + (size_t)p * PAGE + (size_t)(p * 8) % PAGE, "8bytes!", 8);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    lrvm_stats_t st1 = stats(s);
    /* Page after page: captured ahead, so far fewer faults than pages. */
    if (counts_at_fault(s))
        ck_assert_uint_le(st1.faults - st0.faults, 1000 / 8);
    ck_assert_uint_eq(st1.pages_captured - st0.pages_captured, 1000);
    uint64_t logged = st1.bytes_logged - st0.bytes_logged;
    ck_assert_msg(logged < 1000 * 24, "logged %llu bytes for 8 bytes on 1000 pages",
                  (unsigned long long)logged);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_auto();
    a = tu_map(s, "a", 1000 * PAGE);
    for (int p = 0; p < 1000; p++)
        ck_assert_mem_eq(a + (size_t)p * PAGE + (size_t)(p * 8) % PAGE, "8bytes!", 8);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_track_set_range_captures_without_fault)
{
    lrvm_t *s = open_mprotect();
    char *a = tu_map(s, "a", 16 * PAGE);
    lrvm_stats_t st0 = stats(s);
    lrvm_tx_t *tx = begin1(s, a);
    ck_assert_int_eq(lrvm_set_range(tx, a + PAGE - 4, 3 * PAGE), 0);   /* pages 0..3 */
    ck_assert_int_eq(lrvm_set_range(tx, a + PAGE, 8), 0);              /* again */
    memset(a + PAGE - 4, 'z', 3 * PAGE);
    lrvm_stats_t st1 = stats(s);
    ck_assert_uint_eq(st1.faults, st0.faults);
    ck_assert_uint_eq(st1.pages_captured - st0.pages_captured, 4);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(a[PAGE], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A sequential writer is captured ahead of its stores: few faults, and
 * the pages taken ahead but never written log nothing, are re-protected
 * at commit and at abort, and fault again when first stored to later. */
START_TEST(test_track_sequential_writer_captured_ahead)
{
    lrvm_t *s = open_mprotect();
    unsigned char *a = tu_map(s, "seq", 64 * PAGE);
    lrvm_stats_t st0 = stats(s);
    lrvm_tx_t *tx = begin1(s, (char *)a);
    for (size_t p = 0; p < 32; p++)
        a[p * PAGE + 7] = (unsigned char)(p + 1);
    lrvm_stats_t st1 = stats(s);
    ck_assert_uint_le(st1.faults - st0.faults, 8);
    ck_assert_uint_ge(st1.pages_captured - st0.pages_captured, 32);
    ck_assert_uint_le(st1.pages_captured - st0.pages_captured, 32 + 16);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    lrvm_stats_t st2 = stats(s);
    ck_assert_uint_eq(st2.log_records - st1.log_records, 1);
    ck_assert_uint_lt(st2.bytes_logged - st1.bytes_logged, 32 * 24);

    /* Page 40 (taken ahead, if the run went that far) is read-only again. */
    tx = begin1(s, (char *)a);
    a[40 * PAGE] = 0xaa;
    lrvm_stats_t st3 = stats(s);
    ck_assert_uint_eq(st3.faults - st2.faults, 1);
    ck_assert_uint_eq(st3.pages_captured - st2.pages_captured, 1);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);

    /* Abort puts every page back, and read-only: page 33 faults again. */
    tx = begin1(s, (char *)a);
    for (size_t p = 0; p < 32; p++)
        a[p * PAGE + 7] = 0xee;
    ck_assert_int_eq(lrvm_abort(tx), 0);
    lrvm_stats_t st4 = stats(s);
    tx = begin1(s, (char *)a);
    a[33 * PAGE] = 1;
    ck_assert_uint_eq(stats(s).faults - st4.faults, 1);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    for (size_t p = 0; p < 64; p++)
        ck_assert_uint_eq(a[p * PAGE + 7], p < 32 ? p + 1 : 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_auto();
    a = tu_map(s, "seq", 64 * PAGE);
    for (size_t p = 0; p < 64; p++) {
        ck_assert_uint_eq(a[p * PAGE + 7], p < 32 ? p + 1 : 0);
        ck_assert_uint_eq(a[p * PAGE], p == 40 ? 0xaa : 0);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ foreign faults */

static void write_readonly_page(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    tu_map(s, "a", PAGE);
    char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[0] = 1;
    _exit(0);
}

/* UBSan would report the store itself; the point is the signal. */
__attribute__((no_sanitize("undefined")))
static void write_null(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    tu_map(s, "a", PAGE);
    *(volatile char *)arg = 1;                  /* arg is NULL */
    _exit(0);
}

static void write_prot_none_in_segment_gap(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "a", 4 * PAGE);
    char *none = mmap(a + 16 * PAGE, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (none == MAP_FAILED)
        _exit(3);
    none[0] = 1;
    _exit(0);
}

/* Under AddressSanitizer or ThreadSanitizer, a fault that no lrvm
 * handler declines (the userfaultfd tracker installs none) reaches the
 * sanitizer's own handler, which reports it and exits (ASan with status
 * 1, TSan with 66) instead of dying of the signal. */
#define SANITIZER_FAULT_EXIT (LRVM__ASAN ? 1 : LRVM__TSAN ? 66 : 0)

START_TEST(test_track_foreign_faults_still_kill)
{
    void (*cases[])(void *) = { write_readonly_page, write_null, write_prot_none_in_segment_gap };
    int report = SANITIZER_FAULT_EXIT != 0 && tu_auto_tracker() == LRVM_TRACK_UFFD;
    for (int i = 0; i < 3; i++) {
        int st = tu_in_child(cases[i], NULL);
        ck_assert_msg((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
                          (report && WIFEXITED(st) && WEXITSTATUS(st) == SANITIZER_FAULT_EXIT),
                      "case %d: status %#x", i, st);
    }
}
END_TEST

/* ------------------------------------------------ threads */

struct race {
    char              *page;
    pthread_barrier_t *bar;
    int                id;
};

static void *race_store(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(r->bar);
    r->page[r->id * 8] = (char)(r->id + 1);
    return NULL;
}

START_TEST(test_track_threads_race_one_page)
{
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "a", 64 * PAGE);
    for (int round = 0; round < 64; round++) {
        lrvm_stats_t st0 = stats(s);
        lrvm_tx_t *tx = begin1(s, a);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 4);
        pthread_t th[4];
        struct race r[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct race){ a + (size_t)round * PAGE, &bar, i };
            pthread_create(&th[i], NULL, race_store, &r[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
        lrvm_stats_t st1 = stats(s);
        ck_assert_uint_eq(st1.pages_captured - st0.pages_captured, 1);   /* once */
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(a[(size_t)round * PAGE + (size_t)i * 8], i + 1);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_auto();
    a = tu_map(s, "a", 64 * PAGE);
    for (int round = 0; round < 64; round++)
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(a[(size_t)round * PAGE + (size_t)i * 8], i + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

struct filler {
    char *bases[2];
    int   id;
};

static void *fill_pages(void *arg)
{
    struct filler *f = arg;
    for (int seg = 0; seg < 2; seg++)
        for (int p = f->id; p < 256; p += 4)
            for (int k = 0; k < 16; k++)
                f->bases[seg][(size_t)p * PAGE + (size_t)k * 256] = (char)(p + k + seg);
    return NULL;
}

START_TEST(test_track_threads_fill_one_tx)
{
    lrvm_t *s = open_auto();
    char *bases[2] = { tu_map(s, "x", 256 * PAGE), tu_map(s, "y", 256 * PAGE) };
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 2, (void *const *)bases, &tx), 0);
    pthread_t th[4];
    struct filler f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = (struct filler){ { bases[0], bases[1] }, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, fill_pages, &f[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(stats(s).pages_captured, 512);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_auto();
    bases[0] = tu_map(s, "x", 256 * PAGE);
    bases[1] = tu_map(s, "y", 256 * PAGE);
    for (int seg = 0; seg < 2; seg++)
        for (int p = 0; p < 256; p++)
            for (int k = 0; k < 16; k++)
                ck_assert_int_eq(bases[seg][(size_t)p * PAGE + (size_t)k * 256], (char)(p + k + seg));
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ kernel writes */

static int data_file(const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/input.txt", tu_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    return fd;
}

static void kernel_writes_child(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "k", 11 * PAGE);
    int fd = data_file("0123456789abcdefghij");
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

    /* Inside a transaction: each wrapped call into clean pages. */
    lrvm_tx_t *tx = begin1(s, a);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(read(fd, a + 10, 5), 5);                       /* 01234 */
    ck_assert_int_eq(pread(fd, a + PAGE - 2, 4, 10), 4);            /* abcd across pages */
    struct iovec iov[2] = { { a + 3 * PAGE, 2 }, { a + 4 * PAGE, 3 } };
    ck_assert_int_eq(lseek(fd, 5, SEEK_SET), 5);
    ck_assert_int_eq(readv(fd, iov, 2), 5);                         /* 56 / 789 */
    ck_assert_int_eq(write(sv[1], "sock", 4), 4);
    ck_assert_int_eq(recv(sv[0], a + 5 * PAGE, 4, 0), 4);
    struct iovec piov = { a + 8 * PAGE, 4 };
    ck_assert_int_eq(preadv(fd, &piov, 1, 12), 4);                  /* cdef */
    ck_assert_int_eq(write(sv[1], "from", 4), 4);
    ck_assert_int_eq(recvfrom(sv[0], a + 9 * PAGE, 4, 0, NULL, NULL), 4);
    ck_assert_int_eq(write(sv[1], "msg", 3), 3);
    struct iovec miov = { a + 10 * PAGE + 100, 3 };
    struct msghdr msg = { .msg_iov = &miov, .msg_iovlen = 1 };
    ck_assert_int_eq(recvmsg(sv[0], &msg, 0), 3);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);

    /* In the ambient epoch: pread, then lrvm_sync. */
    ck_assert_int_eq(pread(fd, a + 6 * PAGE, 3, 17), 3);            /* hij */
    ck_assert_int_eq(lrvm_sync(s), 0);
    /* Ambient, never synced: lost at the crash. */
    ck_assert_int_eq(pread(fd, a + 7 * PAGE, 3, 0), 3);
    die();
}

START_TEST(test_track_kernel_writes_then_crash)
{
    expect_killed(kernel_writes_child, NULL);
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "k", 11 * PAGE);
    ck_assert_mem_eq(a + 10, "01234", 5);
    ck_assert_mem_eq(a + PAGE - 2, "abcd", 4);
    ck_assert_mem_eq(a + 3 * PAGE, "56", 2);
    ck_assert_mem_eq(a + 4 * PAGE, "789", 3);
    ck_assert_mem_eq(a + 5 * PAGE, "sock", 4);
    ck_assert_mem_eq(a + 6 * PAGE, "hij", 3);
    ck_assert_int_eq(a[7 * PAGE], 0);
    ck_assert_mem_eq(a + 8 * PAGE, "cdef", 4);
    ck_assert_mem_eq(a + 9 * PAGE, "from", 4);
    ck_assert_mem_eq(a + 10 * PAGE + 100, "msg", 3);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The wrappers stay what they wrap: cancellation points (a thread blocked
 * in one of them can be cancelled), fortified checks (a read past its
 * buffer's size aborts), and EFAULT, not a crash, for a NULL recvmsg
 * header. */
enum { CALL_READ, CALL_READV, CALL_RECV, CALL_RECVFROM, CALL_RECVMSG, NCALLS };
static const char *const call_names[NCALLS] = { "read", "readv", "recv", "recvfrom", "recvmsg" };

/* The blocked thread's buffers live in its creator's frame: a frame that
 * cancellation unwinds keeps AddressSanitizer's poisoned redzones, which
 * it then trips over itself when the thread exits. */
struct blocked {
    int           fd, call;
    char          buf[8];
    struct iovec  iov;
    struct msghdr msg;
};

static void *block_in_call(void *arg)
{
    struct blocked *b = arg;
    switch (b->call) {          /* nothing is ever sent: each blocks */
    case CALL_READ:     (void)!read(b->fd, b->buf, sizeof b->buf); break;
    case CALL_READV:    (void)!readv(b->fd, &b->iov, 1); break;
    case CALL_RECV:     (void)!recv(b->fd, b->buf, sizeof b->buf, 0); break;
    case CALL_RECVFROM: (void)!recvfrom(b->fd, b->buf, sizeof b->buf, 0, NULL, NULL); break;
    case CALL_RECVMSG:  (void)!recvmsg(b->fd, &b->msg, 0); break;
    }
    return NULL;
}

START_TEST(test_track_wrapped_calls_stay_cancellation_points)
{
    lrvm_t *s = open_auto();
    (void)tu_map(s, "w", PAGE);             /* the wrappers take their tracked path */
    for (int call = 0; call < NCALLS; call++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct blocked b = { .fd = sv[0], .call = call };
        b.iov = (struct iovec){ b.buf, sizeof b.buf };
        b.msg = (struct msghdr){ .msg_iov = &b.iov, .msg_iovlen = 1 };
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, block_in_call, &b), 0);
        struct timespec pause = { 0, 50 * 1000000L };
        nanosleep(&pause, NULL);
        ck_assert_int_eq(pthread_cancel(t), 0);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        void *ret = NULL;
        int rc = pthread_timedjoin_np(t, &ret, &deadline);
        ck_assert_msg(rc == 0, "%s: a cancelled thread still blocks in it after 5 s",
                      call_names[call]);
        ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
        close(sv[0]);
        close(sv[1]);
    }
    errno = 0;
    ck_assert_int_eq(recvmsg(-1, NULL, 0), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static void read_past_buffer(void *arg)
{
    (void)arg;
    extern ssize_t __read_chk(int, void *, size_t, size_t);
    char buf[4];
    int fd = open("/dev/zero", O_RDONLY);
    (void)!__read_chk(fd, buf, 8, sizeof buf);    /* what _FORTIFY_SOURCE calls */
    _exit(0);
}

START_TEST(test_track_fortified_read_still_checks_its_buffer)
{
    int st = tu_in_child(read_past_buffer, NULL);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %#x", st);
}
END_TEST

/* ------------------------------------------------ the ambient epoch */

static void ambient_child(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    uint64_t *a = (uint64_t *)tu_map(s, "amb", 64 * PAGE);
    uint64_t seed = 99;
    for (uint64_t epoch = 1; epoch <= 20; epoch++) {
        /* Each epoch writes its number into 50 random words and word 0. */
        for (int k = 0; k < 50; k++)
            a[1 + tu_rand(&seed) % (64 * PAGE / 8 - 1)] = epoch;
        a[0] = epoch;
        if (epoch < 20)
            ck_assert_int_eq(lrvm_sync(s), 0);
    }
    die();                                          /* epoch 20 never synced */
}

START_TEST(test_track_ambient_crash_shows_last_sync)
{
    expect_killed(ambient_child, NULL);
    uint64_t expect[64 * PAGE / 8] = { 0 };
    uint64_t seed = 99;
    for (uint64_t epoch = 1; epoch <= 19; epoch++) {
        for (int k = 0; k < 50; k++)
            expect[1 + tu_rand(&seed) % (64 * PAGE / 8 - 1)] = epoch;
        expect[0] = epoch;
    }
    lrvm_t *s = open_auto();
    uint64_t *a = (uint64_t *)tu_map(s, "amb", 64 * PAGE);
    for (size_t i = 0; i < 64 * PAGE / 8; i++)
        ck_assert_msg(a[i] == expect[i], "word %zu: %llu, want %llu", i,
                      (unsigned long long)a[i], (unsigned long long)expect[i]);
    ck_assert_uint_eq(stats(s).syncs, 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The same epochs, with the power cut at a sync call: every epoch whose
 * lrvm_sync returned (reported to the parent) must be there, and the store
 * must show exactly one epoch's state. */
static void ambient_cut_child(const void *argp)
{
    const struct tu_fault *f = argp;
    lrvm_t *s = open_auto();
    uint64_t *a = (uint64_t *)tu_map(s, "amb", 64 * PAGE);
    uint64_t seed = 99;
    tu_fault_arm(f);
    for (int epoch = 1; epoch <= 20; epoch++) {
        for (int k = 0; k < 50; k++)
            a[1 + tu_rand(&seed) % (64 * PAGE / 8 - 1)] = (uint64_t)epoch;
        a[0] = (uint64_t)epoch;
        TU_CHILD_CHECK(lrvm_sync(s) == 0);
        tu_report(epoch);
    }
    tu_report(1000000 + (int)tu_fault_calls());
}

static void ambient_cut_case(void *arg, const struct tu_fault *f)
{
    (void)arg;
    int vals[64], n;
    tu_rmrf(tu_dir);
    ck_assert_int_eq(mkdir(tu_dir, 0700), 0);
    int st = tu_run_child(ambient_cut_child, f, vals, 64, &n);
    tu_fault_died(f, st);
    ck_assert_int_eq(tu_child_failed_line(vals, n), 0);
    uint64_t acked = n > 0 ? (uint64_t)vals[n - 1] : 0;
    lrvm_t *s = open_auto();
    uint64_t *a = (uint64_t *)tu_map(s, "amb", 64 * PAGE);
    uint64_t e = a[0], expect[64 * PAGE / 8] = { 0 }, rs = 99;
    ck_assert_msg(e >= acked && e <= acked + 1, "%s: epoch %" PRIu64 " found, %" PRIu64
                  " synced", f->what, e, acked);
    for (uint64_t epoch = 1; epoch <= e; epoch++) {
        for (int j = 0; j < 50; j++)
            expect[1 + tu_rand(&rs) % (64 * PAGE / 8 - 1)] = epoch;
        expect[0] = epoch;
    }
    for (size_t i = 0; i < 64 * PAGE / 8; i++)
        ck_assert_msg(a[i] == expect[i], "%s: word %zu is %llu, epoch %llu gives %llu", f->what,
                      i, (unsigned long long)a[i], (unsigned long long)e,
                      (unsigned long long)expect[i]);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_track_ambient_power_cut_at_each_call)
{
    int vals[64], n;
    struct tu_fault dry = { .kinds = LRVM__IO_WRITE | LRVM__IO_SYNC };
    int st = tu_run_child(ambient_cut_child, &dry, vals, 64, &n);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 21, "dry run: 0x%x", st);
    unsigned long calls = (unsigned long)(vals[20] - 1000000);
    ck_assert_uint_ge(calls, 20);
    static const int cut = LRVM__IO_POWERCUT;
    struct tu_fault_plan plan = { .kinds = dry.kinds, .calls = calls, .modes = &cut,
                                  .nmodes = 1 };
    tu_fault_each_call(&plan, ambient_cut_case, NULL);
}
END_TEST

static void interleave_child(void *arg)
{
    int crash_point = *(int *)arg;
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "mix", 4 * PAGE);
    strcpy(a, "ambient-1");                         /* ambient, page 0 */
    strcpy(a + PAGE, "ambient-2");                  /* ambient, page 1 */
    lrvm_tx_t *tx = begin1(s, a);                   /* sets them aside */
    strcpy(a + 10, "tx-aborted");                   /* same page as ambient-1 */
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_str_eq(a, "ambient-1");               /* survives the abort */
    ck_assert_int_eq(a[10], 0);
    if (crash_point == 0)
        die();                                      /* nothing durable yet */
    tx = begin1(s, a);
    strcpy(a + PAGE, "tx-commit");                  /* over ambient-2 */
    strcpy(a + 2 * PAGE, "tx-only");
    /* A sync while the transaction holds the segment: ambient changes made
     * before it began, never its own bytes. */
    if (crash_point == 3)
        ck_assert_int_eq(lrvm_sync(s), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    if (crash_point == 1)
        die();                                      /* tx durable, ambient not */
    strcpy(a + 3 * PAGE, "ambient-3");
    ck_assert_int_eq(lrvm_sync(s), 0);
    die();
}

START_TEST(test_track_ambient_and_transactions_interleave)
{
    for (int point = 0; point < 4; point++) {
        tu_rmrf(tu_dir);
        ck_assert_int_eq(mkdir(tu_dir, 0700), 0);
        int p = point;
        expect_killed(interleave_child, &p);
        lrvm_t *s = open_auto();
        char *a = tu_map(s, "mix", 4 * PAGE);
        switch (point) {
        case 0:
            ck_assert_int_eq(a[0], 0);
            ck_assert_int_eq(a[PAGE], 0);
            break;
        case 1:
            ck_assert_int_eq(a[0], 0);
            ck_assert_str_eq(a + PAGE, "tx-commit");
            ck_assert_str_eq(a + 2 * PAGE, "tx-only");
            break;
        default:
            ck_assert_str_eq(a, "ambient-1");
            ck_assert_int_eq(a[10], 0);
            ck_assert_str_eq(a + PAGE, "tx-commit");      /* not ambient-2 */
            ck_assert_str_eq(a + 2 * PAGE, "tx-only");
            ck_assert_str_eq(a + 3 * PAGE, "ambient-3");
            break;
        }
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* A thread that stores into a segment when told, then ends. */
struct late_store {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             go;
    char           *at;
};

static void *late_store_thread(void *arg)
{
    struct late_store *ls = arg;
    pthread_mutex_lock(&ls->mu);
    while (!ls->go)
        pthread_cond_wait(&ls->cv, &ls->mu);
    pthread_mutex_unlock(&ls->mu);
    strcpy(ls->at, "ambient");
    return NULL;
}

/* The userfaultfd tracker skips lrvm_begin's scan while nothing in the
 * process has faulted since the last one: the ambient store of a thread
 * that has ended by then must still count, or the transaction takes it
 * and its abort undoes it. The commits before it leave the process in a
 * steady state, so that store is the only fault to see. */
START_TEST(test_track_begin_sets_aside_an_ended_threads_store)
{
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "late", 2 * PAGE);
    struct late_store ls = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, a + PAGE };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, late_store_thread, &ls), 0);
    for (int i = 0; i < 3; i++) {
        lrvm_tx_t *tx = begin1(s, a);
        a[i] = (char)('a' + i);
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    }
    pthread_mutex_lock(&ls.mu);
    ls.go = 1;
    pthread_cond_signal(&ls.cv);
    pthread_mutex_unlock(&ls.mu);
    ck_assert_int_eq(pthread_join(t, NULL), 0);

    lrvm_tx_t *tx = begin1(s, a);
    strcpy(a + 100, "aborted");
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_str_eq(a + PAGE, "ambient");
    ck_assert_int_eq(a[100], 0);
    ck_assert_int_eq(lrvm_sync(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_auto();
    a = tu_map(s, "late", 2 * PAGE);
    ck_assert_str_eq(a, "abc");
    ck_assert_str_eq(a + PAGE, "ambient");
    ck_assert_int_eq(a[100], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static void sync_during_tx_child(void *arg)
{
    (void)arg;
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "held", 2 * PAGE);
    strcpy(a, "before-tx");
    lrvm_tx_t *tx = begin1(s, a);                   /* left open */
    (void)tx;
    strcpy(a + 100, "uncommitted");
    ck_assert_int_eq(lrvm_sync(s), 0);
    die();
}

START_TEST(test_track_sync_during_tx_excludes_tx_bytes)
{
    expect_killed(sync_during_tx_child, NULL);
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "held", 2 * PAGE);
    ck_assert_str_eq(a, "before-tx");
    ck_assert_int_eq(a[100], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A commit (or sync) whose log sync fails leaves its pages dirty and
 * read-only: the next store makes one writable again without a new
 * before-image, the retry logs it, an abort restores the first image. */
static void failed_commit_then(int retry)
{
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "kept", 5 * PAGE);
    lrvm_tx_t *tx = begin1(s, a);
    strcpy(a, "base-0");
    strcpy(a + PAGE, "base-1");
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);

    tx = begin1(s, a);
    strcpy(a, "first-0");
    strcpy(a + PAGE, "first-1");
    lrvm__io_inject(LRVM__IO_SYNC, 1, EIO, LRVM__IO_ONCE);
    int rc = lrvm_commit(tx, 0);
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_int_eq(rc, LRVM_EIO);
    lrvm_stats_t st0 = stats(s);
    strcpy(a, "second-0");                          /* a kept page */
    /* A clean one (page 2 may have been captured ahead of page 1's store). */
    strcpy(a + 3 * PAGE, "new-3");
    lrvm_stats_t st1 = stats(s);
    if (counts_at_fault(s)) {
        ck_assert_uint_eq(st1.pages_captured - st0.pages_captured, 1);
        ck_assert_uint_eq(st1.faults - st0.faults, 2);
    }
    if (retry) {
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    } else {
        ck_assert_int_eq(lrvm_abort(tx), 0);
        ck_assert_str_eq(a, "base-0");
        ck_assert_str_eq(a + PAGE, "base-1");
        ck_assert_int_eq(a[3 * PAGE], 0);
    }

    strcpy(a + 4 * PAGE, "amb-1");
    ck_assert_int_eq(lrvm_sync(s), 0);
    strcpy(a + 4 * PAGE, "amb-2");
    lrvm__io_inject(LRVM__IO_SYNC, 1, EIO, LRVM__IO_ONCE);
    rc = lrvm_sync(s);
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_int_eq(rc, LRVM_EIO);
    strcpy(a + 4 * PAGE + 100, "amb-3");
    ck_assert_int_eq(lrvm_sync(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_auto();
    a = tu_map(s, "kept", 5 * PAGE);
    ck_assert_str_eq(a, retry ? "second-0" : "base-0");
    ck_assert_str_eq(a + PAGE, retry ? "first-1" : "base-1");
    ck_assert_str_eq(a + 3 * PAGE, retry ? "new-3" : "");
    ck_assert_str_eq(a + 4 * PAGE, "amb-2");
    ck_assert_str_eq(a + 4 * PAGE + 100, "amb-3");
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_track_failed_commit_then_retry)
{
    failed_commit_then(1);
}
END_TEST

START_TEST(test_track_failed_commit_then_abort)
{
    failed_commit_then(0);
}
END_TEST

/* Threads keep storing into ambient pages while another thread syncs: a
 * page first stored to during a sync belongs to that sync or to the next,
 * and no page may drop out of tracking. Each writer goes on until it has
 * made SYNC_RACE_ITERS passes and seen SYNC_RACE_SYNCS syncs, however the
 * threads are scheduled. */
#define SYNC_RACE_PAGES 256
#define SYNC_RACE_ITERS 200
#define SYNC_RACE_SYNCS 50

struct sync_writer {
    uint64_t     *base;
    int           id;
    uint64_t      last;         /* the value of its last pass */
    _Atomic int  *running, *syncs;
};

static void *ambient_writer(void *arg)
{
    struct sync_writer *w = arg;
    uint64_t seed = 7 + (uint64_t)w->id, it;
    for (it = 1; it <= SYNC_RACE_ITERS || atomic_load(w->syncs) < SYNC_RACE_SYNCS; it++) {
        int first = (int)(tu_rand(&seed) % (SYNC_RACE_PAGES / 2));
        for (int k = 0; k < SYNC_RACE_PAGES / 2; k++) {
            int p = 2 * ((first + k) % (SYNC_RACE_PAGES / 2)) + w->id;
            w->base[(size_t)p * (PAGE / 8) + (size_t)w->id] = it;
        }
    }
    w->last = it - 1;
    atomic_fetch_sub(w->running, 1);
    return NULL;
}

START_TEST(test_track_ambient_threads_store_during_sync)
{
    lrvm_t *s = open_auto();
    uint64_t *a = (uint64_t *)tu_map(s, "race", SYNC_RACE_PAGES * PAGE);
    _Atomic int running = 2, syncs = 0;
    struct sync_writer w[2] = { { a, 0, 0, &running, &syncs }, { a, 1, 0, &running, &syncs } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, ambient_writer, &w[i]);
    while (atomic_load(&running) > 0) {
        ck_assert_int_eq(lrvm_sync(s), 0);
        atomic_fetch_add(&syncs, 1);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(lrvm_sync(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_auto();
    a = (uint64_t *)tu_map(s, "race", SYNC_RACE_PAGES * PAGE);
    for (int p = 0; p < SYNC_RACE_PAGES; p++) {
        uint64_t got = a[(size_t)p * (PAGE / 8) + (size_t)(p % 2)];
        ck_assert_msg(got == w[p % 2].last, "page %d holds %llu, its writer's last pass %llu",
                      p, (unsigned long long)got, (unsigned long long)w[p % 2].last);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ scale */

START_TEST(test_track_200k_scattered_pages)
{
    /* 200,000 pages spread over a 1 GiB segment in one transaction: past
     * the ~32,000 isolated writable pages that vm.max_map_count (65,530 by
     * default) allows, so capture must widen to blocks. */
    lrvm_t *s = open_auto();
    size_t npages = ((size_t)1 << 30) / PAGE;
    char *a = tu_map(s, "huge", npages * PAGE);
    lrvm_tx_t *tx = begin1(s, a);
    uint64_t seed = 42;
    size_t n = 0;
    for (size_t p = 0; p < npages && n < 200000; p++) {
        if (tu_rand(&seed) % 100 < 77) {
            a[p * PAGE + (size_t)(p % 4000)] = (char)(p | 1);
            n++;
        }
    }
    ck_assert_uint_eq(n, 200000);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_ge(stats(s).pages_captured, 200000);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_auto();
    a = tu_map(s, "huge", npages * PAGE);
    seed = 42;
    n = 0;
    for (size_t p = 0; p < npages && n < 200000; p++) {
        if (tu_rand(&seed) % 100 < 77) {
            ck_assert_int_eq(a[p * PAGE + (size_t)(p % 4000)], (char)(p | 1));
            n++;
        }
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ map/unmap vs faults */

struct churn {
    lrvm_t       *s;
    char         *stable;
    _Atomic int   stop;
};

static void *churn_maps(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "churn%d", i % 7);
        void *b;
        if (lrvm_map(c->s, name, 4 * PAGE, &b) == 0) {
            ((char *)b)[i % (4 * PAGE)] = 1;        /* ambient, dropped at unmap */
            lrvm_unmap(c->s, b);
        }
    }
    atomic_store(&c->stop, 1);
    return NULL;
}

START_TEST(test_track_map_unmap_while_faulting)
{
    lrvm_t *s = open_auto();
    struct churn c = { s, tu_map(s, "stable", 256 * PAGE), 0 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, churn_maps, &c), 0);
    uint64_t rounds = 0;
    while (!atomic_load(&c.stop)) {
        lrvm_tx_t *tx = begin1(s, c.stable);
        for (int p = 0; p < 256; p++)
            c.stable[(size_t)p * PAGE + rounds % PAGE] = (char)rounds;
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
        rounds++;
    }
    pthread_join(th, NULL);
    ck_assert_uint_gt(rounds, 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The userfaultfd tracker owns no signal: a SIGSEGV handler that the
 * program installs after lrvm_map stays its own, gets the program's stray
 * faults, and capture goes on under it. (The mprotect tracker owns
 * SIGSEGV instead: lrvm.h C1.) */
static sigjmp_buf            stray_jmp;
static volatile sig_atomic_t strays;

static void stray_handler(int sig)
{
    (void)sig;
    strays++;
    siglongjmp(stray_jmp, 1);
}

START_TEST(test_track_own_sigsegv_handler_under_uffd)
{
    if (tu_auto_tracker() != LRVM_TRACK_UFFD)
        return;                         /* the mprotect tracker's run: C1 holds */
    lrvm_t *s = open_auto();
    char *a = tu_map(s, "own", 4 * PAGE);
    struct sigaction sa = { .sa_handler = stray_handler }, old;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, &old), 0);
    char *none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(none, MAP_FAILED);
    lrvm_tx_t *tx = begin1(s, a);
    strcpy(a + PAGE, "mine");
    if (sigsetjmp(stray_jmp, 1) == 0)
        *(volatile char *)none = 1;     /* the program's own fault */
    strcpy(a + 3 * PAGE, "after");
    ck_assert_int_eq(strays, 1);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    a[0] = 'z';                         /* ambient, under the program's handler */
    ck_assert_int_eq(lrvm_sync(s), 0);
    ck_assert_int_eq(strays, 1);
    ck_assert_int_eq(sigaction(SIGSEGV, &old, NULL), 0);
    munmap(none, PAGE);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_auto();
    a = tu_map(s, "own", 4 * PAGE);
    ck_assert_str_eq(a + PAGE, "mine");
    ck_assert_str_eq(a + 3 * PAGE, "after");
    ck_assert_int_eq(a[0], 'z');
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A signal handler that stores into a segment while a commit of the
 * userfaultfd tracker copies pages into their images is not taken for
 * lrvm's own doing: the commit's quiet window (track_uffd.c) holds the
 * signal until it closes, so the store faults after the window and the
 * next lrvm_sync scans the segment and commits it. The hook raises the
 * signal inside the window; the child ends without lrvm_close, as a
 * crash would, so only what lrvm_sync and lrvm_flush made durable is
 * read back. */
static char *volatile window_page;

static void window_store(int sig)
{
    (void)sig;
    window_page[16] = 42;
}

static void raise_in_window(void)
{
    raise(SIGUSR1);
}

static void window_child(void *arg)
{
    (void)arg;
    lrvm_t *s = tu_open_mode(LRVM_TRACK_UFFD, (size_t)1 << 34);
    char *a = tu_map(s, "win", 16 * PAGE);
    for (int p = 0; p < 2; p++) {       /* fresh pages: the commits make images */
        lrvm_tx_t *tx = begin1(s, a);
        a[p * PAGE] = 'x';
        if (lrvm_commit(tx, LRVM_NO_FLUSH) != 0)
            _exit(2);
    }
    window_page = a + PAGE;             /* protected by the last commit */
    struct sigaction sa = { .sa_handler = window_store };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        _exit(3);
    lrvm_tx_t *tx = begin1(s, a);
    a[2 * PAGE] = 'y';
    lrvm__uffd_in_window = raise_in_window;
    int rc = lrvm_commit(tx, LRVM_NO_FLUSH);
    lrvm__uffd_in_window = NULL;
    if (rc != 0 || window_page[16] != 42)
        _exit(4);
    _exit(lrvm_sync(s) == 0 && lrvm_flush(s) == 0 ? 0 : 5);
}

START_TEST(test_track_uffd_signal_store_in_commit_window)
{
    if (!tu_uffd_offered())
        return;
    int st = tu_in_child(window_child, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    lrvm_t *s = tu_open_mode(LRVM_TRACK_UFFD, (size_t)1 << 34);
    char *a = tu_map(s, "win", 16 * PAGE);
    ck_assert_int_eq(a[2 * PAGE], 'y');
    ck_assert_msg(a[PAGE + 16] == 42, "the handler's store was not committed by lrvm_sync");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    if (tu_quick_skip("track"))   /* long: not in the quick subset */
        return 77;
    Suite *s = suite_create("track");
    TCase *tc = tu_tcase("track", 120);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_track_classic_program_without_declarations);
    tcase_add_test(tc, test_track_env_explicit_switches_classic);
    tcase_add_test(tc, test_track_abort_and_empty_tx);
    tcase_add_test(tc, test_track_own_sigsegv_handler_under_uffd);
    tcase_add_test(tc, test_track_uffd_signal_store_in_commit_window);
    tcase_add_test(tc, test_track_byte_diff_logs_little);
    tcase_add_test(tc, test_track_set_range_captures_without_fault);
    tcase_add_test(tc, test_track_sequential_writer_captured_ahead);
    tcase_add_test(tc, test_track_foreign_faults_still_kill);
    tcase_add_test(tc, test_track_threads_race_one_page);
    tcase_add_test(tc, test_track_threads_fill_one_tx);
    tcase_add_test(tc, test_track_kernel_writes_then_crash);
    tcase_add_test(tc, test_track_wrapped_calls_stay_cancellation_points);
    tcase_add_test(tc, test_track_fortified_read_still_checks_its_buffer);
    tcase_add_test(tc, test_track_ambient_crash_shows_last_sync);
    tcase_add_test(tc, test_track_ambient_power_cut_at_each_call);
    tcase_add_test(tc, test_track_ambient_and_transactions_interleave);
    tcase_add_test(tc, test_track_sync_during_tx_excludes_tx_bytes);
    tcase_add_test(tc, test_track_begin_sets_aside_an_ended_threads_store);
    tcase_add_test(tc, test_track_ambient_threads_store_during_sync);
    tcase_add_test(tc, test_track_failed_commit_then_retry);
    tcase_add_test(tc, test_track_failed_commit_then_abort);
    tcase_add_test(tc, test_track_map_unmap_while_faulting);
    tcase_add_test(tc, test_track_200k_scattered_pages);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
