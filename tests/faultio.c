/*
 * faultio.c -- the fault layer: an io methods table that the tests put in
 * front of liblrvm's posix methods, to fail, kill or cut the power at the
 * Nth call of chosen kinds.
 *
 * Owns: the injector's arming (process-wide), the power-cut model's
 * record of unsynced changes, the test delay of syncs. Never: ships in
 * liblrvm (it is linked from the tests' convenience library only), or
 * changes what a call does while nothing is armed (one relaxed load).
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
 *
 * The layer installs itself when it is loaded: a suite that links it runs
 * every io call through it, as the library's tests always have.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct lrvm__io_methods *const below = &lrvm__io_posix;

static _Atomic int            fi_armed;
static _Atomic unsigned       fi_kinds;
static _Atomic unsigned long  fi_nth;
static _Atomic unsigned long  fi_count;
static _Atomic int            fi_err;
static _Atomic int            fi_mode;

_Atomic unsigned lrvm__io_sync_delay_us;

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
    if ((u.old = calloc(1, len)) == NULL || below->pread(fd, u.old, len, off) < 0)
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

/* 0 to go ahead, else the -errno the call must fail with. */
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
    return -atomic_load(&fi_err);
}

/* ------------------------------------------------ the methods */

static int f_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int err = fault(LRVM__IO_OPEN);
    if (err)
        return err;
    struct stat st;
    int creates = (flags & O_CREAT) && powercut_armed() &&
                  fstatat(dirfd, path, &st, 0) != 0 && errno == ENOENT;
    int fd = below->openat(dirfd, path, flags, mode);
    if (fd >= 0 && creates)
        powercut_note_name(PC_CREATE, dirfd, path, NULL);
    return fd;
}

static ssize_t f_pread(int fd, void *buf, size_t n, uint64_t off)
{
    int err = fault(LRVM__IO_READ);
    return err ? err : below->pread(fd, buf, n, off);
}

static int f_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    int err = fault(LRVM__IO_WRITE);
    if (err) {
        if (atomic_load(&fi_mode) & LRVM__IO_TORN && iovcnt > 0)
            (void)!pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, (off_t)off);
        if (atomic_load(&fi_mode) & LRVM__IO_KILL)
            raise(SIGKILL);
        return err;
    }
    if (powercut_armed()) {
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        powercut_note(fd, off, total);
    }
    return below->pwritev(fd, iov, iovcnt, off);
}

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
        return err;
    int rc = sync_call(fd);
    if (rc == 0 && powercut_armed())
        powercut_drop(fd);
    return rc;
}

static int f_fdatasync(int fd)
{
    return sync_fd(fd, below->fdatasync);
}

static int f_fsync(int fd)
{
    return sync_fd(fd, below->fsync);
}

static int f_ftruncate(int fd, uint64_t len)
{
    int err = fault(LRVM__IO_TRUNC);
    if (err)
        return err;
    if (powercut_armed())
        powercut_note_size(fd);
    return below->ftruncate(fd, len);
}

static int f_allocate(int fd, uint64_t off, uint64_t len)
{
    int err = fault(LRVM__IO_TRUNC);
    return err ? err : below->allocate(fd, off, len);
}

static int f_unlinkat(int dirfd, const char *path)
{
    int err = fault(LRVM__IO_UNLINK);
    if (err)
        return err;
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
    int rc = below->unlinkat(dirfd, path);
    if (rc < 0) {
        if (hidden[0] != '\0')
            (void)unlinkat(dirfd, hidden, 0);
        return rc;
    }
    if (hidden[0] != '\0')
        powercut_note_name(PC_UNLINK, dirfd, path, hidden);
    return 0;
}

static int f_renameat(int dirfd, const char *from, const char *to)
{
    int err = fault(LRVM__IO_RENAME);
    if (err)
        return err;
    int rc = below->renameat(dirfd, from, to);
    if (rc == 0 && powercut_armed())
        powercut_note_name(PC_RENAME, dirfd, from, to);
    return rc;
}

static int f_mkdir(const char *path, mode_t mode)
{
    int err = fault(LRVM__IO_OPEN);
    if (err)
        return err;
    int rc = below->mkdir(path, mode);
    if (rc == 0 && powercut_armed()) {
        char parent[PATH_MAX], name[PATH_MAX];
        if (lrvm__split_path(path, parent, name) < 0)
            abort();
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            abort();
        powercut_note_name(PC_MKDIR, pfd, name, NULL);
        close(pfd);
    }
    return rc;
}

static int f_map_log(int fd, size_t len, const unsigned char **out)
{
    int err = fault(LRVM__IO_READ);
    return err ? err : below->map_log(fd, len, out);
}

/* Calls that no test fails, handed down as they are. */
static int f_close(int fd) { return below->close(fd); }
static int f_fstat(int fd, struct stat *st) { return below->fstat(fd, st); }
static int f_flock(int fd) { return below->flock(fd); }
static int f_unmap(void *addr, size_t len) { return below->unmap(addr, len); }
static void f_will_read(int fd, uint64_t off, uint64_t len) { below->will_read(fd, off, len); }
static void f_start_writeback(int fd, uint64_t off, uint64_t len)
{
    below->start_writeback(fd, off, len);
}
static int f_read_small(const char *path, char *buf, size_t n)
{
    return below->read_small(path, buf, n);
}
static int f_map_seg(int fd, size_t len, void *fixed, void **out)
{
    return below->map_seg(fd, len, fixed, out);
}

static const struct lrvm__io_methods fault_layer = {
    .openat = f_openat,
    .close = f_close,
    .pread = f_pread,
    .pwritev = f_pwritev,
    .fdatasync = f_fdatasync,
    .fsync = f_fsync,
    .ftruncate = f_ftruncate,
    .allocate = f_allocate,
    .fstat = f_fstat,
    .unlinkat = f_unlinkat,
    .renameat = f_renameat,
    .mkdir = f_mkdir,
    .flock = f_flock,
    .map_log = f_map_log,
    .map_seg = f_map_seg,
    .unmap = f_unmap,
    .read_small = f_read_small,
    .will_read = f_will_read,
    .start_writeback = f_start_writeback,
};

__attribute__((constructor)) static void fault_layer_install(void)
{
    (void)lrvm__io_set_methods(&fault_layer);
}
