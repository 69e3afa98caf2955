/*
 * io.c -- the io seam: every file call of the library, through one table
 * of methods, with errors converted once into LRVM_E* codes.
 *
 * Owns: the methods table in use (lrvm__io_posix unless a test put a layer
 * in front with lrvm__io_set_methods), the loops a call needs to be whole
 * (EINTR, short writes, zeros written in chunks), and the one conversion
 * from errno to LRVM_E*. Nothing above this file sees an errno value.
 * Never: retries a failed sync (after a failed fsync the page cache may
 * have dropped the data; the caller must write it again), hides a short
 * write (a write is whole or fails), or calls an exported wrapper of wrap.c (a pread of the log must
 * not re-enter the tracker: the posix methods reach the kernel directly).
 *
 * Methods return >= 0 on success and -errno on failure, as the kernel
 * does; each is one operation of the store (a read or a write is whole,
 * however many system calls that takes), which is what the tests' fault
 * layer counts and fails. The lrvm__io_* functions in front of them
 * return >= 0 or an LRVM_E* code, with errno set to the errno behind it
 * (LRVM_EIO keeps the cause visible to a caller that prints it).
 *
 * Invariants
 *   I1 Every lrvm__io_* function returns a negative LRVM_E* code on
 *      failure, never a negative errno, and leaves errno set to the errno
 *      behind it.
 *   I2 Files are created with mode 0600, directories with 0700 (the
 *      callers pass them; the seam adds O_CLOEXEC to every open).
 *   I3 The methods table is changed only while no store is open (tests,
 *      before they open one), so a store sees one table all its life.
 *   I4 A file of the store is opened relative to the store directory's
 *      descriptor, never through a symbolic link, and only when it is a
 *      regular file (LRVM_EACCES otherwise): a hostile store cannot make
 *      recovery or a map write to a file elsewhere.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------ the posix methods */

static int neg(long rc)
{
    return rc < 0 ? -errno : (int)rc;
}

static int px_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    return neg(openat(dirfd, path, flags, mode));
}

static int px_close(int fd)
{
    return neg(close(fd));
}

/* Reads N bytes at OFF, fewer only at the end of the file. The kernel's
 * pread, not the name: inside the shared library `pread` binds to
 * wrap.c's exported wrapper, which would capture into the tracker a
 * buffer that is never a segment. */
static ssize_t px_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        long r = syscall(SYS_pread64, fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;                  /* end of file: a short read is an answer */
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* Writes all of IOV (which it may change) at OFF. */
static int px_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    for (;;) {
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0)
            return 0;
        ssize_t w = pwritev(fd, iov, iovcnt, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -ENOSPC;
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
}

static int px_fdatasync(int fd)
{
    return neg(fdatasync(fd));
}

static int px_fsync(int fd)
{
    return neg(fsync(fd));
}

static int px_ftruncate(int fd, uint64_t len)
{
    return neg(ftruncate(fd, (off_t)len));
}

/* Reserve the blocks of [off, off+len); a file system that cannot (no
 * fallocate) is let be: its files stay sparse (lrvm.h C12). */
static int px_allocate(int fd, uint64_t off, uint64_t len)
{
    if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
        return 0;
    return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -errno;
}

static int px_fstat(int fd, struct stat *st)
{
    return neg(fstat(fd, st));
}

/* The count alone (statx): a whole fstat beside each fdatasync made the
 * next fdatasync about a third slower on this machine's ext4
 * (doc/architecture.md, "What lrvm assumes of the file system"). A file
 * system that does not give the count is taken as keeping the name. */
static int px_links(int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_NLINK, &sx) != 0)
        return -errno;
    return (sx.stx_mask & STATX_NLINK) && sx.stx_nlink == 0 ? 0 : 1;
}

static int px_unlinkat(int dirfd, const char *path)
{
    return neg(unlinkat(dirfd, path, 0));
}

static int px_renameat(int dirfd, const char *from, const char *to)
{
    return neg(renameat(dirfd, from, dirfd, to));
}

static int px_mkdir(const char *path, mode_t mode)
{
    return neg(mkdir(path, mode));
}

static int px_flock(int fd)
{
    return neg(flock(fd, LOCK_EX | LOCK_NB));
}

static int px_map_log(int fd, size_t len, const unsigned char **out)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    *out = m;
    return 0;
}

/* MAP_NORESERVE: a private mapping is charged for every page it may copy,
 * and the kernel's overcommit check refuses one larger than memory; a
 * segment's private copies are bounded by the store's resident limit
 * instead (lrvm.h C14). */
static int px_map_seg(int fd, size_t len, void *fixed, void **out)
{
    int flags = MAP_PRIVATE | MAP_NORESERVE | (fixed != NULL ? MAP_FIXED_NOREPLACE : 0);
    void *m = mmap(fixed, len, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    if (fixed != NULL && m != fixed) {
        munmap(m, len);             /* a kernel without MAP_FIXED_NOREPLACE took a hint */
        return -EEXIST;
    }
    *out = m;
    return 0;
}

static int px_unmap(void *addr, size_t len)
{
    return neg(munmap(addr, len));
}

static int px_read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = px_pread(fd, buf, n - 1, 0);
    close(fd);
    if (got < 0)
        return (int)got;
    buf[got] = '\0';
    return (int)got;
}

static void px_will_read(int fd, uint64_t off, uint64_t len)
{
    (void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

static void px_start_writeback(int fd, uint64_t off, uint64_t len)
{
    (void)sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

static int px_wait_writeback(int fd, uint64_t off, uint64_t len)
{
    /* The wait reports a writeback error of any page of the file, and
     * the file's next fdatasync then no longer does. */
    return neg(sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WAIT_BEFORE |
                               SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
}

const struct lrvm__io_methods lrvm__io_posix = {
    .openat = px_openat,
    .close = px_close,
    .pread = px_pread,
    .pwritev = px_pwritev,
    .fdatasync = px_fdatasync,
    .fsync = px_fsync,
    .ftruncate = px_ftruncate,
    .allocate = px_allocate,
    .fstat = px_fstat,
    .links = px_links,
    .unlinkat = px_unlinkat,
    .renameat = px_renameat,
    .mkdir = px_mkdir,
    .flock = px_flock,
    .map_log = px_map_log,
    .map_seg = px_map_seg,
    .unmap = px_unmap,
    .read_small = px_read_small,
    .will_read = px_will_read,
    .start_writeback = px_start_writeback,
    .wait_writeback = px_wait_writeback,
};

static const struct lrvm__io_methods *io = &lrvm__io_posix;

const struct lrvm__io_methods *lrvm__io_set_methods(const struct lrvm__io_methods *m)
{
    const struct lrvm__io_methods *was = io;
    io = m != NULL ? m : &lrvm__io_posix;       /* keeps I3: see the callers */
    return was;
}

/* ------------------------------------------------ one error space */

/* The errno of a failed method as an LRVM_E* code (keeps I1). */
static int code(int neg_errno)
{
    int err = -neg_errno;
    errno = err;
    switch (err) {
    case ENOSPC: case EDQUOT: case EFBIG: return LRVM_ENOSPC;
    case ENOMEM:                          return LRVM_ENOMEM;
    case EACCES: case EPERM: case EROFS:  return LRVM_EACCES;
    case ENOTDIR:                         return LRVM_ENOTDIR;
    case ENOENT:                          return LRVM_ENOENT;
    case EEXIST:                          return LRVM_EEXIST;
    case EWOULDBLOCK:                     return LRVM_EBUSY;
    case EINVAL: case ENAMETOOLONG:       return LRVM_EINVAL;
    default:                              return LRVM_EIO;
    }
}

/* ------------------------------------------------ the calls */

int lrvm__io_open(int dirfd, const char *name, int flags, mode_t mode)
{
    /* Keeps I4: no link is followed, and a FIFO cannot block the open
     * (O_NONBLOCK changes nothing for a regular file). */
    int fd;
    do
        fd = io->openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    while (fd == -EINTR);
    if (fd == -ELOOP || fd == -EISDIR || fd == -ENXIO) {
        LRVM__TRACE("%s in the store is not a regular file (a symbolic link?): refused", name);
        return code(-EACCES);
    }
    if (fd < 0)
        return code(fd);
    struct stat st;
    int rc = io->fstat(fd, &st);
    if (rc == 0 && !S_ISREG(st.st_mode)) {
        LRVM__TRACE("%s in the store is not a regular file: refused", name);
        rc = -EACCES;
    }
    if (rc < 0) {
        (void)io->close(fd);
        return code(rc);
    }
    return fd;
}

int lrvm__io_open_dir(const char *path)
{
    int fd;
    do
        fd = io->openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    while (fd == -EINTR);
    return fd < 0 ? code(fd) : fd;
}

int lrvm__io_dir_check(int dirfd, const char *path, int shared)
{
    struct stat st;
    int rc = io->fstat(dirfd, &st);
    if (rc < 0)
        return code(rc);
    if (shared)
        return 0;
    if (st.st_mode & S_IWOTH) {
        LRVM__TRACE("%s: anyone may write to the store directory: refused "
                    "(lrvm_options.shared opens it on purpose)", path);
        return LRVM_EACCES;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        LRVM__TRACE("%s: the store directory belongs to user %ld: refused "
                    "(lrvm_options.shared opens it on purpose)", path, (long)st.st_uid);
        return LRVM_EACCES;
    }
    return 0;
}

int lrvm__io_close(int fd)
{
    /* close is not retried on EINTR: on Linux the descriptor is gone. */
    int rc = io->close(fd);
    return rc < 0 ? code(rc) : 0;
}

ssize_t lrvm__io_pread(int fd, void *buf, size_t n, uint64_t off)
{
    ssize_t r = io->pread(fd, buf, n, off);
    return r < 0 ? code((int)r) : r;
}

int lrvm__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    int rc = io->pwritev(fd, iov, iovcnt, off);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    struct iovec one = { (void *)buf, n };
    return lrvm__io_pwritev_all(fd, &one, 1, off);
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

int lrvm__io_map_read(int fd, uint64_t len, const unsigned char **p)
{
    if (len == 0 || len > SIZE_MAX)
        return code(-EINVAL);
    int rc = io->map_log(fd, (size_t)len, p);
    if (rc < 0)
        return code(rc);
    (void)madvise((void *)*p, (size_t)len, MADV_SEQUENTIAL);   /* a scan reads it once, in order */
    return 0;
}

int lrvm__io_map_segment(int fd, size_t len, void *fixed, void **p)
{
    int rc = io->map_seg(fd, len, fixed, p);
    return rc < 0 ? code(rc) : 0;
}

void lrvm__io_unmap(const void *p, uint64_t len)
{
    if (p != NULL)
        (void)io->unmap((void *)p, (size_t)len);
}

void lrvm__io_will_read(int fd, uint64_t len)
{
    /* One call for the whole file starts only the first few MiB of it;
     * calls of 4 MiB each start it all. */
    const uint64_t chunk = 4u << 20;
    for (uint64_t off = 0; off < len; off += chunk)
        io->will_read(fd, off, chunk);
}

void lrvm__io_map_populate(const unsigned char *p, size_t len)
{
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22           /* Linux 5.14; older kernels say EINVAL */
#endif
    /* Memory, not a file call: the pages of a mapping the seam made. A
     * failure costs nothing: the pages then fault in one by one. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(page - 1), end = (uintptr_t)p + len;
    (void)madvise((void *)start, end - start, MADV_POPULATE_READ);
}

void lrvm__io_start_writeback(int fd, uint64_t off, uint64_t len)
{
    io->start_writeback(fd, off, len);
}

int lrvm__io_wait_writeback(int fd, uint64_t off, uint64_t len)
{
    int rc = io->wait_writeback(fd, off, len);
    return rc < 0 ? code(rc) : 0;
}

/* A sync of FD that returned RC is void if FD's last link is gone (the
 * store's directory or the file removed while the store is open): the
 * bytes live only as long as the descriptor, and no crash leaves them to
 * recovery, so the sync fails (LRVM_EIO, errno ENOENT) rather than let a
 * commit call them durable. Not LRVM_ENOENT: from lrvm_commit that means
 * a finished transaction, which the caller must not abort. */
static int synced(int fd, int rc)
{
    if (rc == 0 && (rc = io->links(fd)) == 0) {
        LRVM__TRACE("a file of the store was removed while the store is open: its sync makes "
                    "nothing durable");
        errno = ENOENT;
        return LRVM_EIO;
    }
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_fdatasync(int fd)
{
    return synced(fd, io->fdatasync(fd));
}

int lrvm__io_fsync(int fd)
{
    return synced(fd, io->fsync(fd));
}

int lrvm__io_ftruncate(int fd, uint64_t len)
{
    int rc;
    do
        rc = io->ftruncate(fd, len);
    while (rc == -EINTR);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_allocate(int fd, uint64_t off, uint64_t len)
{
    int rc;
    do
        rc = len > 0 ? io->allocate(fd, off, len) : 0;
    while (rc == -EINTR);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_fstat_size(int fd, uint64_t *size)
{
    struct stat st;
    int rc = io->fstat(fd, &st);
    if (rc < 0)
        return code(rc);
    *size = (uint64_t)st.st_size;
    return 0;
}

int lrvm__io_unlink(int dirfd, const char *path)
{
    int rc = io->unlinkat(dirfd, path);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_rename(int dirfd, const char *from, const char *to)
{
    int rc = io->renameat(dirfd, from, to);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_mkdir(const char *path, mode_t mode)
{
    int rc = io->mkdir(path, mode);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__split_path(const char *path, char *parent, char *name)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t cut = n;
    while (cut > 0 && path[cut - 1] != '/')
        cut--;
    if (n - cut >= PATH_MAX || cut >= PATH_MAX)
        return LRVM_EINVAL;
    memcpy(name, path + cut, n - cut);
    name[n - cut] = '\0';
    if (cut == 0) {
        strcpy(parent, ".");
    } else if (cut == 1) {
        strcpy(parent, "/");
    } else {
        memcpy(parent, path, cut - 1);
        parent[cut - 1] = '\0';
    }
    return 0;
}

int lrvm__io_sync_parent(const char *path)
{
    char parent[PATH_MAX], name[PATH_MAX];
    int rc = lrvm__split_path(path, parent, name);
    if (rc < 0)
        return rc;
    int fd = lrvm__io_open_dir(parent);
    if (fd < 0)
        return fd;
    rc = lrvm__io_fsync(fd);
    lrvm__io_close(fd);
    return rc;
}

int lrvm__io_flock(int fd)
{
    /* On the store directory's own descriptor: no one can unlink it from
     * under the holder, as a cleanup script could a lock file. */
    int rc;
    do
        rc = io->flock(fd);
    while (rc == -EINTR);
    return rc < 0 ? code(rc) : 0;
}

int lrvm__io_read_small(const char *path, char *buf, size_t n)
{
    int rc = n > 0 ? io->read_small(path, buf, n) : -EINVAL;
    return rc < 0 ? code(rc) : rc;
}

/* ------------------------------------------------------------ threads */

/*
 * Threads of lrvm's own (a log's syncer, a truncation beside the commits)
 * run beside the program's with every signal blocked (the program's
 * handlers expect its own threads, and could store into a segment), and
 * never store into a segment. The userfaultfd tracker gives private pages
 * back only while no other thread of the program could store into them,
 * and asks lrvm__io_program_alone: the process's threads, against the
 * own ones alive. A thread is counted as it is made and uncounted as its
 * last act, both under own_mu, so while the count is read under it no
 * thread is counted that the kernel does not count: the answer errs only
 * towards "not alone".
 */
static pthread_mutex_t own_mu = PTHREAD_MUTEX_INITIALIZER;
static long            own_threads;

int lrvm__io_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, was;
    sigfillset(&all);
    lrvm__lock(&own_mu, LRVM__RANK_LEAF);
    pthread_sigmask(SIG_SETMASK, &all, &was);
    int err = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    own_threads += err == 0;
    lrvm__unlock(&own_mu);
    return err == 0 ? 0 : LRVM_ENOMEM;
}

void lrvm__io_thread_ends(void)
{
    lrvm__lock(&own_mu, LRVM__RANK_LEAF);
    own_threads--;
    lrvm__unlock(&own_mu);
}

int lrvm__io_program_alone(void)
{
    char buf[1024];
    lrvm__lock(&own_mu, LRVM__RANK_LEAF);
    int n = lrvm__io_read_small("/proc/self/stat", buf, sizeof buf);
    long own = own_threads;
    lrvm__unlock(&own_mu);
    /* The 20th field, the 18th after the name in parentheses. */
    const char *q = n > 0 ? strrchr(buf, ')') : NULL;
    for (int field = 2; q != NULL && field < 20; field++)
        q = strchr(q + 1, ' ');
    return q != NULL && strtol(q + 1, NULL, 10) == 1 + own;
}
