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
 * bytes it replaced and every ftruncate the size it replaced, until their
 * file is synced, and every name made (a file created, a file renamed, a
 * directory made) is remembered until the directory holding it is synced;
 * at the armed call each remembered change, newest first, is kept, undone,
 * or (a write) torn (its first sectors kept, the rest undone), then the
 * process dies of SIGKILL. An unlinked file is kept under a hidden link
 * until the unlink is durable, so that a cut can bring it back.
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
#include <limits.h>
#include <dirent.h>
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

/* A change the disk may not have yet. Data and sizes become durable with
 * a sync of their file; names (a file created, renamed, a directory made)
 * with a sync of the directory that holds them. */
enum pc_kind { PC_WRITE, PC_SIZE, PC_CREATE, PC_RENAME, PC_MKDIR, PC_UNLINK };

struct unsynced {
    enum pc_kind   kind;
    int            fd;        /* a dup of the file written, or of the directory
                                 that holds the name */
    dev_t          dev;       /* of that file or directory */
    ino_t          ino;
    uint64_t       off;       /* PC_WRITE: where; PC_SIZE: the old size */
    size_t         len;       /* PC_WRITE: how much */
    unsigned char *old;       /* PC_WRITE: the bytes replaced (0 past the end) */
    char          *name;      /* PC_CREATE, PC_MKDIR, PC_UNLINK: the name;
                                 PC_RENAME: from */
    char          *name2;     /* PC_RENAME: to; PC_UNLINK: a hidden link that
                                 keeps the file until the unlink is durable */
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

/* Remember U, whose fd is FD (dup'ed here). A failure aborts: a test
 * that cannot model the cut must not pass. */
static void pc_remember(struct unsynced u, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (u.fd = dup(fd)) < 0)
        abort();
    u.dev = st.st_dev;
    u.ino = st.st_ino;
    pthread_mutex_lock(&pc_mu);
    if (pc_n == pc_cap) {
        pc_cap = pc_cap ? 2 * pc_cap : 64;
        if ((pc_writes = realloc(pc_writes, pc_cap * sizeof *pc_writes)) == NULL)
            abort();
    }
    pc_writes[pc_n++] = u;
    pthread_mutex_unlock(&pc_mu);
}

/* Before a write of LEN bytes at OFF of FD: the bytes it replaces. */
static void powercut_note(int fd, uint64_t off, size_t len)
{
    struct unsynced u = { .kind = PC_WRITE, .off = off, .len = len };
    if (len == 0)
        return;
    if ((u.old = calloc(1, len)) == NULL || pread(fd, u.old, len, (off_t)off) < 0)
        abort();
    pc_remember(u, fd);
}

/* Before an ftruncate of FD: its size. */
static void powercut_note_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        abort();
    pc_remember((struct unsynced){ .kind = PC_SIZE, .off = (uint64_t)st.st_size }, fd);
}

/* After a name was changed in directory DIRFD: NAME made (a file
 * created, a directory made) or unlinked (kept as NAME2), or NAME renamed
 * to NAME2. */
static void powercut_note_name(enum pc_kind kind, int dirfd, const char *name, const char *name2)
{
    struct unsynced u = { .kind = kind };
    if ((u.name = strdup(name)) == NULL || (name2 != NULL && (u.name2 = strdup(name2)) == NULL))
        abort();
    int fd = dirfd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY) : dirfd;
    if (fd < 0)
        abort();
    pc_remember(u, fd);
    if (fd != dirfd)
        close(fd);
}

static void pc_free(struct unsynced *u)
{
    if (u->kind == PC_UNLINK)
        (void)unlinkat(u->fd, u->name2, 0);     /* the unlink is durable: let go */
    close(u->fd);
    free(u->old);
    free(u->name);
    free(u->name2);
}

/* Forget the changes that a sync of FD made durable (every change when
 * FD < 0): FD's data and size, and the names in FD when it is a directory. */
static void powercut_drop(int fd)
{
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) != 0)
        return;
    pthread_mutex_lock(&pc_mu);
    size_t kept = 0;
    for (size_t i = 0; i < pc_n; i++) {
        struct unsynced *u = &pc_writes[i];
        if (fd < 0 || (u->dev == st.st_dev && u->ino == st.st_ino))
            pc_free(u);
        else
            pc_writes[kept++] = *u;
    }
    pc_n = kept;
    pthread_mutex_unlock(&pc_mu);
}

/* Remove NAME in directory DIRFD and everything under it. */
static void remove_tree(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                unlinkat(fd, e->d_name, 0) != 0)
                remove_tree(fd, e->d_name);
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    (void)unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* The power fails: undo what the disk may not have, newest first, then
 * die. A write is kept, undone or torn (its first sectors kept); any
 * other change is kept or undone. */
static void powercut(void)
{
    uint64_t x = pc_seed ^ (atomic_load(&fi_count) * 0x9e3779b97f4a7c15ull);
    pthread_mutex_lock(&pc_mu);
    for (size_t i = pc_n; i-- > 0;) {
        struct unsynced *u = &pc_writes[i];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (u->kind != PC_WRITE && x % 2 == 0) {                /* reached the disk */
            if (u->kind == PC_UNLINK)
                (void)unlinkat(u->fd, u->name2, 0);
            continue;
        }
        switch (u->kind) {
        case PC_WRITE: {
            size_t keep;
            switch (x % 3) {
            case 0:  keep = u->len; break;                      /* reached the disk */
            case 1:  keep = 0; break;                           /* lost */
            default: keep = (size_t)((x >> 8) % (u->len / 512 + 1)) * 512;   /* torn */
            }
            if (keep < u->len)
                (void)!pwrite(u->fd, u->old + keep, u->len - keep, (off_t)(u->off + keep));
            break;
        }
        case PC_SIZE:   (void)!ftruncate(u->fd, (off_t)u->off); break;
        case PC_CREATE: (void)unlinkat(u->fd, u->name, 0); break;
        case PC_RENAME: (void)renameat(u->fd, u->name2, u->fd, u->name); break;
        case PC_MKDIR:  remove_tree(u->fd, u->name); break;
        case PC_UNLINK:
            /* Back under its name, unless a later file took the name: the
             * directory keeps its changes in order. */
            if (renameat2(u->fd, u->name2, u->fd, u->name, RENAME_NOREPLACE) != 0)
                (void)unlinkat(u->fd, u->name2, 0);
            break;
        }
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
    struct stat st;
    int creates = (flags & O_CREAT) && powercut_armed() &&
                  fstatat(dirfd, path, &st, 0) != 0 && errno == ENOENT;
    int fd;
    do
        fd = openat(dirfd, path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail(errno);
    if (creates)
        powercut_note_name(PC_CREATE, dirfd, path, NULL);
    return fd;
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
        powercut_note(fd, off, total);
    }
    for (;;) {
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0)
            return 0;
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
}

int lrvm__io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    struct iovec one = { (void *)buf, n };
    return lrvm__io_pwritev_all(fd, &one, 1, off);
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

void lrvm__io_map_populate(const unsigned char *p, size_t len)
{
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22           /* Linux 5.14; older kernels say EINVAL */
#endif
    /* A failure costs nothing: the pages then fault in one by one. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(page - 1), end = (uintptr_t)p + len;
    (void)madvise((void *)start, end - start, MADV_POPULATE_READ);
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
        powercut_note_size(fd);
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
    char hidden[64] = "";
    if (powercut_armed()) {
        /* Keep the file under a hidden name until the unlink is durable,
         * so that a power cut can bring it back. */
        static _Atomic unsigned long seq;
        snprintf(hidden, sizeof hidden, ".lrvm-powercut-%ld-%lu", (long)getpid(),
                 atomic_fetch_add(&seq, 1));
        if (linkat(dirfd, path, dirfd, hidden, 0) != 0)
            hidden[0] = '\0';                /* nothing there to keep */
    }
    if (unlinkat(dirfd, path, 0) < 0) {
        int e = errno;
        if (hidden[0] != '\0')
            (void)unlinkat(dirfd, hidden, 0);
        return fail(e);
    }
    if (hidden[0] != '\0')
        powercut_note_name(PC_UNLINK, dirfd, path, hidden);
    return 0;
}

int lrvm__io_rename(int dirfd, const char *from, const char *to)
{
    int err = fault(LRVM__IO_RENAME);
    if (err)
        return fail(err);
    if (renameat(dirfd, from, dirfd, to) < 0)
        return fail(errno);
    if (powercut_armed())
        powercut_note_name(PC_RENAME, dirfd, from, to);
    return 0;
}

/* The directory that holds PATH, and PATH's last name, in PARENT and
 * NAME (both of PATH_MAX bytes). */
static void split_path(const char *path, char *parent, char *name)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t cut = n;
    while (cut > 0 && path[cut - 1] != '/')
        cut--;
    snprintf(name, PATH_MAX, "%.*s", (int)(n - cut), path + cut);
    if (cut == 0)
        snprintf(parent, PATH_MAX, ".");
    else if (cut == 1)
        snprintf(parent, PATH_MAX, "/");
    else
        snprintf(parent, PATH_MAX, "%.*s", (int)(cut - 1), path);
}

int lrvm__io_mkdir(const char *path, mode_t mode)
{
    int err = fault(LRVM__IO_OPEN);
    if (err)
        return fail(err);
    if (mkdir(path, mode) < 0)
        return fail(errno);
    if (powercut_armed()) {
        char parent[PATH_MAX], name[PATH_MAX];
        split_path(path, parent, name);
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            abort();
        powercut_note_name(PC_MKDIR, pfd, name, NULL);
        close(pfd);
    }
    return 0;
}

int lrvm__io_sync_parent(const char *path)
{
    char parent[PATH_MAX], name[PATH_MAX];
    split_path(path, parent, name);
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(errno);
    int rc = lrvm__io_fsync(fd);
    close(fd);
    return rc;
}

int lrvm__io_flock(int fd)
{
    int rc;
    do
        rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? fail(errno) : 0;
}
