/*
 * io.c -- every system call that touches a file, behind one interface.
 *
 * Owns: the file system calls of the store (open, read, map for reading,
 * write, sync, truncate, unlink, rename, mkdir, lock) and the fault
 * injector the tests use to make the Nth call of chosen kinds fail, or to
 * cut the power there.
 *
 * The power cut: killing the process leaves the page cache to write back
 * everything, so it cannot show a missing or misplaced sync. A power
 * failure can: what was written but not synced may reach the disk, or
 * not, or in part. With LRVM__IO_POWERCUT armed, every write remembers the
 * bytes it replaced, and every ftruncate the size it replaced, until its
 * file is synced; at the armed call each remembered change, newest first,
 * is kept, undone, or (a write) torn (its first sectors kept, the rest
 * undone), then the process dies of SIGKILL. Modelled: data writes
 * (pwrite, pwritev, zero fill) and file sizes. Not modelled: directory
 * entries, which lrvm makes durable with an fsync of the directory at
 * once where it depends on them.
 * Never: retries a failed sync (after a failed fsync the page cache may
 * have dropped the data; the caller must rewrite it), or hides a short
 * write (pwrite_all loops until done or a real error).
 *
 * Invariants
 *   I1 Every function returns a negative errno on failure and leaves errno
 *      set to the same value.
 *   I2 Files are created with mode 0600, directories with 0700.
 *   I3 With no fault armed, the injector costs one relaxed load per call.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The fault injector: process-wide, for tests. */
static _Atomic int            fi_armed;
static _Atomic unsigned       fi_kinds;
static _Atomic unsigned long  fi_nth;
static _Atomic unsigned long  fi_count;
static _Atomic int            fi_err;
static _Atomic int            fi_mode;

static void powercut_drop(int fd);

void lrvm__io_inject(unsigned kinds, unsigned long nth, int err, int mode)
{
    atomic_store(&fi_armed, 0);
    powercut_drop(-1);              /* writes remembered under an earlier arming */
    atomic_store(&fi_kinds, kinds);
    atomic_store(&fi_nth, nth);
    atomic_store(&fi_count, 0);
    atomic_store(&fi_err, err);
    atomic_store(&fi_mode, mode);
    atomic_store(&fi_armed, 1);   /* count calls even when nth is 0 */
}

unsigned long lrvm__io_calls(void)
{
    return atomic_load(&fi_count);
}

/* ------------------------------------------------ the power cut */

struct unsynced {
    int            fd;        /* a dup of the written descriptor */
    dev_t          dev;
    ino_t          ino;
    uint64_t       off;       /* a write: where; a size change: the old size */
    size_t         len;       /* a write: its length; a size change: 0 */
    unsigned char *old;       /* the bytes the write replaced (0 past the end) */
};

static pthread_mutex_t   pc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct unsynced  *pc_writes;
static size_t            pc_n, pc_cap;
static uint64_t          pc_seed = 0x5eed;

void lrvm__io_powercut_seed(uint64_t seed)
{
    pc_seed = seed | 1;
}

static int powercut_armed(void)
{
    return atomic_load_explicit(&fi_armed, memory_order_relaxed) &&
           (atomic_load(&fi_mode) & LRVM__IO_POWERCUT);
}

/* Remember the LEN bytes at OFF of FD before a write replaces them, or
 * (LEN 0) FD's size before an ftruncate changes it. A failure here
 * aborts: a test that cannot model the cut must not pass. */
static void powercut_note(int fd, uint64_t off, size_t len, int size_change)
{
    struct stat st;
    struct unsynced u = { .off = off, .len = len };
    if (len == 0 && !size_change)
        return;
    if (fstat(fd, &st) != 0 || (u.old = calloc(1, len ? len : 1)) == NULL ||
        (u.fd = dup(fd)) < 0)
        abort();
    u.dev = st.st_dev;
    u.ino = st.st_ino;
    if (size_change)
        u.off = (uint64_t)st.st_size;
    else if (pread(fd, u.old, len, (off_t)off) < 0)
        abort();
    pthread_mutex_lock(&pc_mu);
    if (pc_n == pc_cap) {
        pc_cap = pc_cap ? 2 * pc_cap : 64;
        if ((pc_writes = realloc(pc_writes, pc_cap * sizeof *pc_writes)) == NULL)
            abort();
    }
    pc_writes[pc_n++] = u;
    pthread_mutex_unlock(&pc_mu);
}

/* Forget the writes of the file of FD, synced now (all files when FD < 0). */
static void powercut_drop(int fd)
{
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) != 0)
        return;
    pthread_mutex_lock(&pc_mu);
    size_t kept = 0;
    for (size_t i = 0; i < pc_n; i++) {
        struct unsynced *u = &pc_writes[i];
        if (fd < 0 || (u->dev == st.st_dev && u->ino == st.st_ino)) {
            close(u->fd);
            free(u->old);
        } else {
            pc_writes[kept++] = *u;
        }
    }
    pc_n = kept;
    pthread_mutex_unlock(&pc_mu);
}

/* The power fails: undo what the disk may not have, then die. */
static void powercut(void)
{
    uint64_t x = pc_seed ^ (atomic_load(&fi_count) * 0x9e3779b97f4a7c15ull);
    pthread_mutex_lock(&pc_mu);
    for (size_t i = pc_n; i-- > 0;) {
        struct unsynced *u = &pc_writes[i];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (u->len == 0) {                      /* a size change: kept or lost */
            if (x % 2)
                (void)!ftruncate(u->fd, (off_t)u->off);
            continue;
        }
        size_t keep;
        switch (x % 3) {
        case 0:  keep = u->len; break;                          /* reached the disk */
        case 1:  keep = 0; break;                               /* lost */
        default: keep = (size_t)((x >> 8) % (u->len / 512 + 1)) * 512;   /* torn */
        }
        if (keep < u->len)
            (void)!pwrite(u->fd, u->old + keep, u->len - keep, (off_t)(u->off + keep));
    }
    raise(SIGKILL);
}

/* 0 to go ahead, else the errno the call must fail with (keeps I3). */
static int fault(unsigned kind)
{
    if (!atomic_load_explicit(&fi_armed, memory_order_relaxed))
        return 0;
    if (!(atomic_load(&fi_kinds) & kind))
        return 0;
    unsigned long n = atomic_fetch_add(&fi_count, 1) + 1;
    unsigned long nth = atomic_load(&fi_nth);
    if (nth == 0 || n < nth)
        return 0;
    if (n > nth && !(atomic_load(&fi_mode) & LRVM__IO_ALWAYS))
        return 0;
    int mode = atomic_load(&fi_mode);
    if (mode & LRVM__IO_POWERCUT)
        powercut();
    if ((mode & LRVM__IO_KILL) && !(kind == LRVM__IO_WRITE && (mode & LRVM__IO_TORN)))
        raise(SIGKILL);                 /* a torn write dies after its half */
    return atomic_load(&fi_err);
}

static int fail(int err)
{
    errno = err;
    return -err;
}

int lrvm__errno_to_code(int err)
{
    switch (err) {
    case ENOSPC: case EDQUOT: case EFBIG: return LRVM_ENOSPC;
    case ENOMEM:                          return LRVM_ENOMEM;
    case EACCES: case EPERM: case EROFS:  return LRVM_EACCES;
    case ENOTDIR:                         return LRVM_ENOTDIR;
    case ENOENT:                          return LRVM_ENOENT;
    case EWOULDBLOCK:                     return LRVM_EBUSY;
    case EINVAL: case ENAMETOOLONG:       return LRVM_EINVAL;
    default:                              return LRVM_EIO;
    }
}

int lrvm__io_open(int dirfd, const char *path, int flags, mode_t mode)
{
    int err = fault(LRVM__IO_OPEN);
    if (err)
        return fail(err);
    int fd;
    do
        fd = openat(dirfd, path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? fail(errno) : fd;
}

int lrvm__io_close(int fd)
{
    /* close is not retried on EINTR: on Linux the descriptor is gone. */
    return close(fd) < 0 ? fail(errno) : 0;
}

ssize_t lrvm__io_pread(int fd, void *buf, size_t n, uint64_t off)
{
    int err = fault(LRVM__IO_READ);
    if (err)
        return fail(err);
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno);
        }
        if (r == 0)
            break;                  /* end of file: a short read is an answer */
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int lrvm__io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    int err = fault(LRVM__IO_WRITE);
    if (err) {
        if (atomic_load(&fi_mode) & LRVM__IO_TORN)
            (void)!pwrite(fd, buf, n / 2, (off_t)off);
        if (atomic_load(&fi_mode) & LRVM__IO_KILL)
            raise(SIGKILL);
        return fail(err);
    }
    if (powercut_armed())
        powercut_note(fd, off, n, 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno);
        }
        if (w == 0)
            return fail(ENOSPC);
        done += (size_t)w;
    }
    return 0;
}

int lrvm__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    int err = fault(LRVM__IO_WRITE);
    if (err) {
        if (atomic_load(&fi_mode) & LRVM__IO_TORN && iovcnt > 0)
            (void)!pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, (off_t)off);
        if (atomic_load(&fi_mode) & LRVM__IO_KILL)
            raise(SIGKILL);
        return fail(err);
    }
    if (powercut_armed()) {
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        powercut_note(fd, off, total, 0);
    }
    while (iovcnt > 0) {
        ssize_t w = pwritev(fd, iov, iovcnt, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno);
        }
        if (w == 0)
            return fail(ENOSPC);
        off += (uint64_t)w;
        /* A short write: step over what went out, resume mid-vector. */
        while (iovcnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int lrvm__io_map_read(int fd, uint64_t len, const unsigned char **p)
{
    int err = fault(LRVM__IO_READ);
    if (err)
        return fail(err);
    if (len == 0 || len > SIZE_MAX)
        return fail(EINVAL);
    void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return fail(errno);
    (void)madvise(m, (size_t)len, MADV_SEQUENTIAL);   /* a scan reads it once, in order */
    *p = m;
    return 0;
}

void lrvm__io_will_read(int fd, uint64_t len)
{
    /* One call for the whole file started only the first 8 MiB here;
     * calls of 4 MiB each start it all. */
    const uint64_t chunk = 4u << 20;
    for (uint64_t off = 0; off < len; off += chunk)
        (void)posix_fadvise(fd, (off_t)off, (off_t)chunk, POSIX_FADV_WILLNEED);
}

void lrvm__io_start_writeback(int fd, uint64_t off, uint64_t len)
{
    /* Not a durability point, so neither the injector nor the power-cut
     * model counts it: a failure here shows up at the sync. */
    (void)sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

void lrvm__io_unmap(const unsigned char *p, uint64_t len)
{
    if (p != NULL)
        munmap((void *)p, (size_t)len);
}

int lrvm__io_pwrite_zeros(int fd, uint64_t off, uint64_t n)
{
    static const unsigned char zeros[65536];
    while (n > 0) {
        size_t chunk = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int rc = lrvm__io_pwrite_all(fd, zeros, chunk, off);
        if (rc < 0)
            return rc;
        off += chunk;
        n -= chunk;
    }
    return 0;
}

_Atomic unsigned lrvm__io_sync_delay_us;

/* The test delay of a sync (one relaxed load when there is none). */
static void sync_delay(void)
{
    unsigned us = atomic_load_explicit(&lrvm__io_sync_delay_us, memory_order_relaxed);
    if (us != 0) {
        struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

static int sync_fd(int fd, int (*sync_call)(int))
{
    sync_delay();
    int err = fault(LRVM__IO_SYNC);
    if (err)
        return fail(err);
    if (sync_call(fd) < 0)
        return fail(errno);
    if (powercut_armed())
        powercut_drop(fd);
    return 0;
}

int lrvm__io_fdatasync(int fd)
{
    return sync_fd(fd, fdatasync);
}

int lrvm__io_fsync(int fd)
{
    return sync_fd(fd, fsync);
}

int lrvm__io_ftruncate(int fd, uint64_t len)
{
    int err = fault(LRVM__IO_TRUNC);
    if (err)
        return fail(err);
    if (powercut_armed())
        powercut_note(fd, 0, 0, 1);
    int rc;
    do
        rc = ftruncate(fd, (off_t)len);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? fail(errno) : 0;
}

int lrvm__io_fstat_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return fail(errno);
    *size = (uint64_t)st.st_size;
    return 0;
}

int lrvm__io_unlink(int dirfd, const char *path)
{
    int err = fault(LRVM__IO_UNLINK);
    if (err)
        return fail(err);
    return unlinkat(dirfd, path, 0) < 0 ? fail(errno) : 0;
}

int lrvm__io_rename(int dirfd, const char *from, const char *to)
{
    int err = fault(LRVM__IO_RENAME);
    if (err)
        return fail(err);
    return renameat(dirfd, from, dirfd, to) < 0 ? fail(errno) : 0;
}

int lrvm__io_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode) < 0 ? fail(errno) : 0;
}

int lrvm__io_flock(int fd)
{
    int rc;
    do
        rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? fail(errno) : 0;
}
