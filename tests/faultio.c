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
 * until the unlink is durable, so that a cut can bring it back. Recording
 * instead (lrvm__io_powercut_record), the cut writes the changes down and
 * undoes none, and lrvm__io_crash_states makes every state they allow.
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
#include <pthread.h>
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

/* Set when the power fails: another thread's call must not return after
 * that, or a sync that returned into undone bytes could report a commit
 * the cut then takes away. Such a call waits for the SIGKILL instead. */
static _Atomic int fi_dying;

static void die_with_the_rest(void)
{
    for (;;)
        pause();
}

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

/* Undo change U on FD: the file it wrote or sized, or the directory that
 * holds its name. A write keeps its first KEEP bytes (torn; 0: undone). */
static void pc_undo_at(const struct unsynced *u, int fd, size_t keep)
{
    switch (u->kind) {
    case PC_WRITE:
        if (keep < u->len)
            (void)!pwrite(fd, u->old + keep, u->len - keep, (off_t)(u->off + keep));
        break;
    case PC_SIZE:   (void)!ftruncate(fd, (off_t)u->off); break;
    case PC_CREATE: (void)unlinkat(fd, u->name, 0); break;
    case PC_RENAME: (void)renameat(fd, u->name2, fd, u->name); break;
    case PC_MKDIR:  remove_tree(fd, u->name); break;
    case PC_UNLINK:
        /* Back under its name, unless a later file took the name: the
         * directory keeps its changes in order. */
        if (renameat2(fd, u->name2, fd, u->name, RENAME_NOREPLACE) != 0)
            (void)unlinkat(fd, u->name2, 0);
        break;
    }
}

/* Change U reached the disk: let go of what kept it undoable. */
static void pc_keep_at(const struct unsynced *u, int fd)
{
    if (u->kind == PC_UNLINK)
        (void)unlinkat(fd, u->name2, 0);
}

static void crash_record(void);

/* The power fails: undo what the disk may not have, newest first, then
 * die. A write is kept, undone or torn (its first sectors kept); any
 * other change is kept or undone. Recording (lrvm__io_powercut_record),
 * it writes the changes down instead and undoes none. */
static void powercut(void)
{
    atomic_store(&fi_dying, 1);
    crash_record();
    uint64_t x = pc_seed ^ (atomic_load(&fi_count) * 0x9e3779b97f4a7c15ull);
    pthread_mutex_lock(&pc_mu);
    for (size_t i = pc_n; i-- > 0;) {
        struct unsynced *u = &pc_writes[i];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (u->kind != PC_WRITE && x % 2 == 0) {                /* reached the disk */
            pc_keep_at(u, u->fd);
            continue;
        }
        size_t keep = 0;
        if (u->kind == PC_WRITE)
            switch (x % 3) {
            case 0:  keep = u->len; break;                      /* reached the disk */
            case 1:  keep = 0; break;                           /* lost */
            default: keep = (size_t)((x >> 8) % (u->len / 512 + 1)) * 512;   /* torn */
            }
        pc_undo_at(u, u->fd, keep);
    }
    raise(SIGKILL);
}

/* ------------------------------------------------ crash states
 *
 * The random cut above draws one disk state. Recording, the cut writes
 * every unsynced change down instead (file by path, since the process
 * dies with its descriptors), and lrvm__io_crash_states rebuilds from it
 * every state the kernel may leave: a page of a file holds its content
 * after any of the unsynced writes to it, or none (writeback writes
 * whole pages, at any moment, in any order); a size or a name change
 * reached the disk or not. The record is native binary: the test reads
 * it back on the machine that wrote it.
 */
static char pc_record_path[PATH_MAX];

void lrvm__io_powercut_record(const char *path)
{
    snprintf(pc_record_path, sizeof pc_record_path, "%s", path != NULL ? path : "");
}

static void put_str(FILE *f, const char *str)
{
    uint32_t n = str != NULL ? (uint32_t)strlen(str) : 0;
    fwrite(&n, sizeof n, 1, f);
    if (n > 0)
        fwrite(str, 1, n, f);
}

/* At the cut, when recording: write the changes to the record, then die
 * with every change kept on disk. */
static void crash_record(void)
{
    if (pc_record_path[0] == '\0')
        return;
    FILE *f = fopen(pc_record_path, "w");
    if (f == NULL)
        abort();
    pthread_mutex_lock(&pc_mu);
    for (size_t i = 0; i < pc_n; i++) {
        const struct unsynced *u = &pc_writes[i];
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", u->fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n < 0)
            abort();
        path[n] = '\0';
        uint32_t kind = u->kind;
        uint64_t off = u->off, len = u->len;
        fwrite(&kind, sizeof kind, 1, f);
        fwrite(&off, sizeof off, 1, f);
        fwrite(&len, sizeof len, 1, f);
        put_str(f, path);
        put_str(f, u->name);
        put_str(f, u->name2);
        if (u->kind == PC_WRITE)
            fwrite(u->old, 1, u->len, f);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        abort();
    fclose(f);
    raise(SIGKILL);
}

#define CS_PAGE 4096u

/* One choice of a crash state: a page of a file (which of its writers
 * reached the disk) or another change (whether it did). */
struct cs_unit {
    size_t    page_of;        /* the change's path that the page is in, as an index */
    uint64_t  page;           /* the page; UINT64_MAX: a change other than a write */
    size_t   *writers;        /* changes writing the page, oldest first */
    size_t    nwriters;
    uint32_t  radix;          /* choices: nwriters + 1, or 2 */
};

struct lrvm__crash_states {
    struct unsynced *ch;      /* fd unused; name holds the path when no name */
    char           **path;    /* the file or directory of each change */
    size_t           n;
    struct cs_unit  *unit;
    size_t           nunits;
    uint64_t         count;   /* states, UINT64_MAX when more */
};

static int get_str(FILE *f, char **out)
{
    uint32_t n;
    if (fread(&n, sizeof n, 1, f) != 1 || n >= PATH_MAX || (*out = calloc(1, n + 1)) == NULL)
        return -1;
    if (n == 0) {
        free(*out);
        *out = NULL;
        return 0;
    }
    return fread(*out, 1, n, f) == n ? 0 : -1;
}

static void *grow(void *p, size_t n, size_t size)
{
    void *q = realloc(p, (n + 1) * size);
    if (q == NULL)
        abort();
    return q;
}

/* The unit of page PAGE of the file of change I, made when new. */
static struct cs_unit *cs_page_unit(struct lrvm__crash_states *cs, size_t i, uint64_t page)
{
    for (size_t k = 0; k < cs->nunits; k++) {
        struct cs_unit *u = &cs->unit[k];
        if (u->page == page && strcmp(cs->path[u->page_of], cs->path[i]) == 0)
            return u;
    }
    cs->unit = grow(cs->unit, cs->nunits, sizeof *cs->unit);
    struct cs_unit *u = &cs->unit[cs->nunits++];
    *u = (struct cs_unit){ .page_of = i, .page = page };
    return u;
}

struct lrvm__crash_states *lrvm__io_crash_states(const char *record)
{
    FILE *f = fopen(record, "r");
    if (f == NULL)
        return NULL;
    struct lrvm__crash_states *cs = calloc(1, sizeof *cs);
    if (cs == NULL)
        abort();
    uint32_t kind;
    while (fread(&kind, sizeof kind, 1, f) == 1) {
        cs->ch = grow(cs->ch, cs->n, sizeof *cs->ch);
        cs->path = grow(cs->path, cs->n, sizeof *cs->path);
        struct unsynced *u = &cs->ch[cs->n];
        *u = (struct unsynced){ .kind = (enum pc_kind)kind, .fd = -1 };
        if (fread(&u->off, sizeof u->off, 1, f) != 1 ||
            fread(&u->len, sizeof u->len, 1, f) != 1 || get_str(f, &cs->path[cs->n]) < 0 ||
            get_str(f, &u->name) < 0 || get_str(f, &u->name2) < 0 || cs->path[cs->n] == NULL)
            abort();
        if (kind == PC_WRITE &&
            ((u->old = malloc(u->len)) == NULL || fread(u->old, 1, u->len, f) != u->len))
            abort();
        cs->n++;
    }
    fclose(f);
    for (size_t i = 0; i < cs->n; i++) {
        const struct unsynced *u = &cs->ch[i];
        if (u->kind != PC_WRITE) {
            cs->unit = grow(cs->unit, cs->nunits, sizeof *cs->unit);
            cs->unit[cs->nunits++] = (struct cs_unit){ .page_of = i, .page = UINT64_MAX,
                                                       .radix = 2 };
            continue;
        }
        for (uint64_t p = u->off / CS_PAGE; p <= (u->off + u->len - 1) / CS_PAGE; p++) {
            struct cs_unit *cu = cs_page_unit(cs, i, p);
            cu->writers = grow(cu->writers, cu->nwriters, sizeof *cu->writers);
            cu->writers[cu->nwriters++] = i;
            cu->radix = (uint32_t)cu->nwriters + 1;
        }
    }
    cs->count = 1;
    for (size_t k = 0; k < cs->nunits; k++)
        cs->count = cs->count > UINT64_MAX / cs->unit[k].radix ? UINT64_MAX
                                                               : cs->count * cs->unit[k].radix;
    return cs;
}

uint64_t lrvm__io_crash_states_count(const struct lrvm__crash_states *cs)
{
    return cs->count;
}

size_t lrvm__io_crash_states_changes(const struct lrvm__crash_states *cs)
{
    return cs->n;
}

/* Is change I to be undone on page PAGE (UINT64_MAX: as a whole) under
 * the choices DIGIT (one a unit)? */
static int cs_undone(const struct lrvm__crash_states *cs, const uint32_t *digit, size_t i,
                     uint64_t page)
{
    for (size_t k = 0; k < cs->nunits; k++) {
        const struct cs_unit *u = &cs->unit[k];
        if (u->page != page)
            continue;
        if (page == UINT64_MAX) {
            if (u->page_of == i)
                return digit[k] == 1;
            continue;
        }
        for (size_t w = 0; w < u->nwriters; w++)
            if (u->writers[w] == i)      /* digit d: the d newest writers are lost */
                return w >= u->nwriters - digit[k];
    }
    return 0;
}

int lrvm__io_crash_state_make(const struct lrvm__crash_states *cs, uint64_t index, int sampled)
{
    uint32_t *digit = calloc(cs->nunits + 1, sizeof *digit);
    if (digit == NULL)
        return -1;
    uint64_t x = (index + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    for (size_t k = 0; k < cs->nunits; k++) {
        uint32_t r = cs->unit[k].radix;
        if (sampled) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            digit[k] = (uint32_t)(x % r);
        } else {
            digit[k] = (uint32_t)(index % r);
            index /= r;
        }
    }
    int rc = 0;
    for (size_t i = cs->n; i-- > 0 && rc == 0;) {
        const struct unsynced *u = &cs->ch[i];
        int data = u->kind == PC_WRITE || u->kind == PC_SIZE;
        int fd = open(cs->path[i], data ? O_WRONLY : O_RDONLY | O_DIRECTORY);
        if (fd < 0) {
            /* The file or directory is gone: an older change undone (its
             * creation) took it, and this one with it. */
            continue;
        }
        if (u->kind != PC_WRITE) {
            if (cs_undone(cs, digit, i, UINT64_MAX))
                pc_undo_at(u, fd, 0);
            else
                pc_keep_at(u, fd);
        } else {
            for (uint64_t p = u->off / CS_PAGE; p <= (u->off + u->len - 1) / CS_PAGE; p++) {
                if (!cs_undone(cs, digit, i, p))
                    continue;
                uint64_t lo = p * CS_PAGE > u->off ? p * CS_PAGE : u->off;
                uint64_t hi = (p + 1) * CS_PAGE < u->off + u->len ? (p + 1) * CS_PAGE
                                                                 : u->off + u->len;
                if (pwrite(fd, u->old + (lo - u->off), hi - lo, (off_t)lo) != (ssize_t)(hi - lo))
                    rc = -1;
            }
        }
        close(fd);
    }
    free(digit);
    return rc;
}

void lrvm__io_crash_states_free(struct lrvm__crash_states *cs)
{
    if (cs == NULL)
        return;
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->ch[i].old);
        free(cs->ch[i].name);
        free(cs->ch[i].name2);
        free(cs->path[i]);
    }
    for (size_t k = 0; k < cs->nunits; k++)
        free(cs->unit[k].writers);
    free(cs->ch);
    free(cs->path);
    free(cs->unit);
    free(cs);
}

/* 0 to go ahead, else the -errno the call must fail with. */
static int fault(unsigned kind)
{
    if (atomic_load_explicit(&fi_dying, memory_order_relaxed))
        die_with_the_rest();
    if (!atomic_load_explicit(&fi_armed, memory_order_relaxed))
        return 0;
    if (!(atomic_load(&fi_kinds) & kind))
        return 0;
    if ((atomic_load(&fi_mode) & LRVM__IO_TRUNCATION) && !lrvm__in_truncation)
        return 0;
    if (!(atomic_load(&fi_mode) & LRVM__IO_SYNCER) != !lrvm__in_syncer)
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

/* ------------------------------------------------ the hold */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  hold_cv = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned hold_kinds;
static _Atomic unsigned hold_syncer;
static unsigned         hold_waiting;

void lrvm__io_hold(unsigned kinds)
{
    pthread_mutex_lock(&hold_mu);
    atomic_store(&hold_kinds, kinds);
    if (kinds == 0)
        atomic_store(&hold_syncer, 0);
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

void lrvm__io_hold_syncer(unsigned kinds)
{
    pthread_mutex_lock(&hold_mu);
    atomic_store(&hold_syncer, kinds);
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

unsigned lrvm__io_held(void)
{
    pthread_mutex_lock(&hold_mu);
    unsigned n = hold_waiting;
    pthread_mutex_unlock(&hold_mu);
    return n;
}

/* Is FD a segment file (NAME.seg)? */
static int is_segment(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    return n > 4 && memcmp(path + n - 4, ".seg", 4) == 0;
}

/* Does a hold name a call of KIND on FD now: a truncation's thread's on
 * a segment file, or the syncer's? */
static int held(int fd, unsigned kind)
{
    if (lrvm__in_syncer)
        return (atomic_load(&hold_syncer) & kind) != 0;
    return (atomic_load(&hold_kinds) & kind) && lrvm__in_truncation && is_segment(fd);
}

/* A call of KIND on FD: wait while a hold names it. */
static void hold(int fd, unsigned kind)
{
    if (!(atomic_load_explicit(&hold_kinds, memory_order_relaxed) & kind) &&
        !atomic_load_explicit(&hold_syncer, memory_order_relaxed))
        return;
    if (!held(fd, kind))
        return;
    pthread_mutex_lock(&hold_mu);
    hold_waiting++;
    while (held(fd, kind))
        pthread_cond_wait(&hold_cv, &hold_mu);
    hold_waiting--;
    pthread_mutex_unlock(&hold_mu);
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
    hold(fd, LRVM__IO_WRITE);
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
    hold(fd, LRVM__IO_SYNC);
    int err = fault(LRVM__IO_SYNC);
    if (err)
        return err;
    int rc = sync_call(fd);
    if (atomic_load(&fi_dying))
        die_with_the_rest();            /* it may have synced undone bytes */
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
static int f_links(int fd) { return below->links(fd); }
static int f_flock(int fd) { return below->flock(fd); }
static int f_unmap(void *addr, size_t len) { return below->unmap(addr, len); }
static void f_will_read(int fd, uint64_t off, uint64_t len) { below->will_read(fd, off, len); }
static void f_start_writeback(int fd, uint64_t off, uint64_t len)
{
    below->start_writeback(fd, off, len);
}
static int f_wait_writeback(int fd, uint64_t off, uint64_t len)
{
    int err = fault(LRVM__IO_WAIT);
    return err ? err : below->wait_writeback(fd, off, len);
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
    .links = f_links,
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
    .wait_writeback = f_wait_writeback,
};

__attribute__((constructor)) static void fault_layer_install(void)
{
    (void)lrvm__io_set_methods(&fault_layer);
}
