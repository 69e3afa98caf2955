/*
 * wrap.c -- the calls through which the kernel writes into user buffers,
 * wrapped so that a buffer inside a tracked segment is captured first.
 *
 * A store made by the kernel does not fault: read() into a write-protected
 * page fails with EFAULT. Legacy code reads into its data all the time, so
 * liblrvm defines read, pread, readv, preadv, recv, recvfrom and recvmsg
 * (and the fortified and 64-bit names glibc may route them through). Each
 * captures the pages of its buffers that lie in a tracked segment, then
 * hands the call on to the C library's definition. A program that has no
 * tracked segment mapped pays one predictable branch.
 *
 * Handing on keeps what the program relied on: these calls are
 * cancellation points (a thread blocked in read() can be cancelled, which
 * a bare syscall(2) would not allow), and the fortified ones still check
 * their buffer's size. The C library's definitions are looked up once,
 * while the library loads, because dlsym is not async-signal-safe and a
 * signal handler may call read(). Until then, or in a static program where
 * there is nothing to look up, a wrapper makes the system call itself.
 *
 * This file breaks the house rule that only io.c makes system calls: these
 * are the program's calls, not the store's. Calls that libc makes
 * internally (fread, for one) do not come through here; nor do other
 * system calls that write into memory (lrvm.h, caveat C6).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Referenced from track_mprotect.c, so that a static link that takes the tracker
 * takes the wrappers too, even when another library (a sanitizer runtime)
 * defines read first on the link line. */
const int lrvm__wrappers = 1;

/* glibc's: reports a buffer overflow and aborts. */
extern void __chk_fail(void) __attribute__((noreturn));

typedef ssize_t read_fn(int, void *, size_t);
typedef ssize_t pread_fn(int, void *, size_t, off_t);
typedef ssize_t readv_fn(int, const struct iovec *, int);
typedef ssize_t preadv_fn(int, const struct iovec *, int, off_t);
typedef ssize_t recvfrom_fn(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t recvmsg_fn(int, struct msghdr *, int);

/* The C library's definitions, or NULL: set once, while loading. */
static read_fn     *_Atomic next_read;
static pread_fn    *_Atomic next_pread;
static readv_fn    *_Atomic next_readv;
static preadv_fn   *_Atomic next_preadv;
static recvfrom_fn *_Atomic next_recvfrom;
static recvmsg_fn  *_Atomic next_recvmsg;

/* The next definition of NAME after liblrvm's own, or NULL. */
static void *next_definition(const char *name, void *ours)
{
    void *p = dlsym(RTLD_NEXT, name);
    return p == ours ? NULL : p;
}

__attribute__((constructor)) static void find_next_definitions(void)
{
    atomic_store(&next_read, (read_fn *)next_definition("read", (void *)read));
    atomic_store(&next_pread, (pread_fn *)next_definition("pread", (void *)pread));
    atomic_store(&next_readv, (readv_fn *)next_definition("readv", (void *)readv));
    atomic_store(&next_preadv, (preadv_fn *)next_definition("preadv", (void *)preadv));
    atomic_store(&next_recvfrom, (recvfrom_fn *)next_definition("recvfrom", (void *)recvfrom));
    atomic_store(&next_recvmsg, (recvmsg_fn *)next_definition("recvmsg", (void *)recvmsg));
}

#define NEXT(name) atomic_load_explicit(&next_##name, memory_order_relaxed)

static inline int tracked(void)
{
    return __builtin_expect(atomic_load_explicit(&lrvm__tracked_areas, memory_order_relaxed) != 0, 0);
}

static void prepare_iov(const struct iovec *iov, int n)
{
    if (iov == NULL)
        return;                     /* the call fails with EFAULT */
    for (int i = 0; i < n; i++)
        lrvm__track_prepare_kernel_write(iov[i].iov_base, iov[i].iov_len);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    read_fn *next = NEXT(read);
    return next != NULL ? next(fd, buf, n) : syscall(SYS_read, fd, buf, n);
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    pread_fn *next = NEXT(pread);
    return next != NULL ? next(fd, buf, n, off) : syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return pread(fd, buf, n, off);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (tracked())
        prepare_iov(iov, n);
    readv_fn *next = NEXT(readv);
    return next != NULL ? next(fd, iov, n) : syscall(SYS_readv, fd, iov, n);
}

ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
    if (tracked())
        prepare_iov(iov, n);
    preadv_fn *next = NEXT(preadv);
    /* The kernel takes the offset as two longs, low then high; on a 64-bit
     * kernel the low one holds all of it. */
    return next != NULL ? next(fd, iov, n, off) : syscall(SYS_preadv, fd, iov, n, (long)off, 0L);
}

ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off) __attribute__((alias("preadv")));

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    recvfrom_fn *next = NEXT(recvfrom);
    return next != NULL ? next(fd, buf, n, flags, from, fromlen)
                        : syscall(SYS_recvfrom, fd, buf, n, flags, from, fromlen);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *from, socklen_t *fromlen)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (tracked() && msg != NULL) {
        prepare_iov(msg->msg_iov, (int)msg->msg_iovlen);
        lrvm__track_prepare_kernel_write(msg->msg_name, msg->msg_namelen);
        lrvm__track_prepare_kernel_write(msg->msg_control, msg->msg_controllen);
    }
    recvmsg_fn *next = NEXT(recvmsg);
    return next != NULL ? next(fd, msg, flags) : syscall(SYS_recvmsg, fd, msg, flags);
}
