/*
 * wrap.c -- the calls through which the kernel writes into user buffers,
 * wrapped so that a buffer inside a tracked segment is captured first.
 *
 * A store made by the kernel does not fault: read() into a write-protected
 * page fails with EFAULT. Legacy code reads into its data all the time, so
 * liblrvm defines read, pread, readv, preadv, recv, recvfrom and recvmsg
 * (and the fortified and 64-bit names glibc may route them through). Each
 * captures the pages of its buffers that lie in a tracked segment, then
 * makes the system call. A program that has no tracked segment mapped pays
 * one predictable branch.
 *
 * This file breaks the house rule that only io.c makes system calls: these
 * are the program's calls, not the store's, and they go straight to the
 * kernel with syscall(2) so that no lookup of the next definition is
 * needed. Calls that libc makes internally (fread, for one) do not come
 * through here; nor do other system calls that write into memory (lrvm.h,
 * caveat C6).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Referenced from track.c, so that a static link that takes the tracker
 * takes the wrappers too, even when another library (a sanitizer runtime)
 * defines read first on the link line. */
const int lrvm__wrappers = 1;

static inline int tracked(void)
{
    return __builtin_expect(atomic_load_explicit(&lrvm__tracked_areas, memory_order_relaxed) != 0, 0);
}

static void prepare_iov(const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++)
        lrvm__track_prepare_kernel_write(iov[i].iov_base, iov[i].iov_len);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    return syscall(SYS_read, fd, buf, n);
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    (void)buflen;
    return read(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    return syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    (void)buflen;
    return pread(fd, buf, n, off);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (tracked())
        prepare_iov(iov, n);
    return syscall(SYS_readv, fd, iov, n);
}

ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
    if (tracked())
        prepare_iov(iov, n);
    /* The kernel takes the offset as two longs, low then high; on a 64-bit
     * kernel the low one holds all of it. */
    return syscall(SYS_preadv, fd, iov, n, (long)off, 0L);
}

ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off) __attribute__((alias("preadv")));

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    if (tracked())
        lrvm__track_prepare_kernel_write(buf, n);
    return syscall(SYS_recvfrom, fd, buf, n, flags, from, fromlen);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    (void)buflen;
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *from, socklen_t *fromlen)
{
    (void)buflen;
    return recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (tracked()) {
        prepare_iov(msg->msg_iov, (int)msg->msg_iovlen);
        lrvm__track_prepare_kernel_write(msg->msg_name, msg->msg_namelen);
        lrvm__track_prepare_kernel_write(msg->msg_control, msg->msg_controllen);
    }
    return syscall(SYS_recvmsg, fd, msg, flags);
}
