/*
 * lrvmutl -- look into an lrvm store, check it, and recover it.
 *
 *   lrvmutl info DIR           the log and the segment files, in words
 *   lrvmutl verify DIR         what lrvm_open would say of the log
 *   lrvmutl dump DIR [--data]  every valid record and every range in it
 *   lrvmutl heap DIR NAME      segment NAME's heap: blocks, free lists, check
 *   lrvmutl cat DIR NAME [OFFSET [LENGTH]] [--raw]
 *                              segment NAME's bytes, as a hexdump or raw
 *   lrvmutl recover DIR        replay the log into the segment files
 *   lrvmutl truncate DIR       the same, then lrvm_truncate
 *
 * info, verify, dump, heap and cat only read: they run recovery's checks
 * (lrvm__recover_check, the checks lrvm_open makes before it writes
 * anything) and never create or change a file. A store that a process
 * has open is still read; the figures are then a snapshot (the lock is
 * taken, shared, only for an instant, to tell).
 * heap and cat show a segment as recovery would leave it: its file with
 * the ranges recovery would write (lrvm__recover_ranges: the same scan
 * and checks, the same records, in the same order) applied in memory.
 * recover and truncate go through lrvm_open, so they wait for nobody:
 * a store open elsewhere fails with LRVM_EBUSY.
 *
 * With --json, info, verify, dump and heap write one JSON document on
 * standard output instead of text, also when they fail (its "error"
 * member says why); lrvmutl(1) gives each document's schema. Keys are
 * never renamed: a consumer may rely on them.
 *
 * It trusts a store directory as lrvm_open does (lrvm.h C10): one that
 * anyone may write to, or that another user owns, is refused unless
 * --shared says it is shared on purpose, and no file of it is read
 * through a symbolic link.
 *
 * Exit status: 0 done (verify: lrvm_open would accept the store; heap:
 * the heap passes its checks); 1 the store is damaged or refused, the
 * heap fails its checks or is none, or the operation failed; 2 bad
 * usage, DIR is not a store, NAME not a segment of it, or a system error.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_DAMAGED = 1, EXIT_USAGE = 2 };

static const char *prog = "lrvmutl";
static int shared;                  /* --shared: the directory is shared on purpose */
static uint64_t discard_after;      /* recover --discard-after: where the log is to end */
static int json;                    /* --json: one JSON document on stdout */
static int raw;                     /* cat --raw: the bytes themselves */

static void usage(FILE *o)
{
    fprintf(o,
            "usage: lrvmutl COMMAND DIR [NAME [OFFSET [LENGTH]]] [OPTIONS]\n"
            "  info DIR       the log (format, generation, records, transactions, where\n"
            "                 it ends and why) and the segment files\n"
            "  verify DIR     check the log as lrvm_open would, writing nothing; exit 1\n"
            "                 when lrvm_open would refuse the store\n"
            "  dump DIR       one line per valid log record and per range it holds;\n"
            "                 --data adds the first bytes of each range in hex\n"
            "  heap DIR NAME  the heap in segment NAME as recovery would leave it: its\n"
            "                 header, every block (offset, size, used or free), its free\n"
            "                 lists, and whether it passes lrvm_heap_open's checks; exit 1\n"
            "                 when it fails them or NAME holds no heap\n"
            "  cat DIR NAME [OFFSET [LENGTH]]\n"
            "                 the bytes of segment NAME as recovery would leave them (the\n"
            "                 log applied in memory, nothing written), from OFFSET (0),\n"
            "                 LENGTH of them (to the end), in the format of hexdump -C;\n"
            "                 --raw writes the bytes themselves. A range past the end of\n"
            "                 the segment is refused (exit 2)\n"
            "  recover DIR    replay the log into the segment files and empty it\n"
            "                 (what lrvm_open does); --discard-after OFFSET first ends\n"
            "                 the log at OFFSET on purpose, dropping what follows (for a\n"
            "                 log damaged there: see verify)\n"
            "  truncate DIR   recover, then lrvm_truncate (the log is empty either way)\n"
            "info, verify, dump, heap and cat never write; recover and truncate fail\n"
            "with LRVM_EBUSY while another process has the store open.\n"
            "--json: info, verify, dump and heap write one JSON document instead of\n"
            "text, also on failure (its schema: lrvmutl(1)).\n"
            "--shared: read a store directory that others may write to, or that\n"
            "another user owns (refused otherwise, as lrvm_open refuses it).\n"
            "lrvmutl --help | --version\n"
            "Exit status: 0 done; 1 the store has a problem (damaged, refused, a heap\n"
            "that fails its checks) or the operation failed; 2 bad usage, not a store,\n"
            "no such segment, or a system error.\n");
}

/* What made the run fail, for the "error" member of --json: the first
 * complaint, and what check() learnt of the log. */
static struct {
    char        message[8192];
    const char *code;               /* the LRVM_E* name, or NULL */
    int         has_offset;
    uint64_t    offset;             /* in the log: the record refused, the damage */
    int         damage;             /* the log is damaged (V7): the counts are set */
    uint64_t    txs_before, records_after, txs_after, first_txno_after;
} failure;

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An error: on stderr, and kept for --json when it is the first. */
static void complain(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    if (failure.message[0] == '\0') {
        va_list again;
        va_copy(again, ap);
        vsnprintf(failure.message, sizeof failure.message, fmt, again);
        va_end(again);
    }
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A remark that is no failure (a snapshot, a file skipped): stderr only. */
static void warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The name of the LRVM_E* code RC, or NULL. */
static const char *error_name(int rc)
{
    switch (rc) {
#define ERROR_NAME(name, value, text) case LRVM_##name: return "LRVM_" #name;
    LRVM_ERRNO_MAP(ERROR_NAME)
#undef ERROR_NAME
    }
    return NULL;
}

/* Print the N bytes of segment name NAME on F, control characters and
 * backslashes escaped (\xNN), so that a hostile name cannot break a line;
 * the columns it took. */
static int fprint_name(FILE *f, const char *name, size_t n)
{
    int w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        w += c < 0x20 || c == 0x7f || c == '\\' ? fprintf(f, "\\x%02x", c) : (fputc(c, f), 1);
    }
    return w;
}

/* The N bytes of NAME escaped as fprint_name escapes them, for a message
 * (a static buffer: one such name a message). */
static const char *shown(const char *name, size_t n)
{
    static char buf[4 * 256 + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 <= sizeof buf; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
        else
            buf[k++] = (char)c;
    }
    buf[k] = '\0';
    return buf;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ JSON */

/*
 * --json writes one document on stdout through the j_ calls: each value
 * lands in the innermost open container, as a member named KEY of an
 * object or (KEY NULL) an element of an array. The top object's members
 * and the elements of the arrays in it get a line each; containers
 * deeper than that are written on one line, so that a segment, a record
 * or a block is a line. Numbers are integers (JSON has no limit on them;
 * an offset above 2^53 needs a parser that keeps integers whole, as
 * Python's and jq 1.7's do). Strings are UTF-8: a name of the store (a
 * file name, which may hold any byte but NUL and '/') is written as it
 * is where it is valid UTF-8, its bytes that are not as U+FFFD; such a
 * name gets a member KEY_hex besides, its bytes in hex, so that it can
 * be told apart and found on disk.
 */
#define JSON_DEPTH 8
static int jdepth;                  /* containers open */
static int jcount[JSON_DEPTH];      /* values written so far in each */

/* Start a value: the comma after the one before it, its line, its key. */
static void j_key(const char *key)
{
    if (jdepth > 0) {
        if (jcount[jdepth - 1]++ > 0)
            putchar(',');
        if (jdepth <= 2)
            printf("\n%*s", 2 * jdepth, "");
        else if (jcount[jdepth - 1] > 1)
            putchar(' ');
    }
    if (key != NULL)
        printf("\"%s\": ", key);
}

static void j_open(const char *key, char bracket)
{
    j_key(key);
    putchar(bracket);
    LRVM__ASSERT(jdepth < JSON_DEPTH);
    jcount[jdepth++] = 0;
}

static void j_close(char bracket)
{
    jdepth--;
    if (jdepth < 2 && jcount[jdepth] > 0)
        printf("\n%*s", 2 * jdepth, "");
    putchar(bracket);
    if (jdepth == 0)
        putchar('\n');
}

static void j_u64(const char *key, uint64_t v)
{
    j_key(key);
    printf("%" PRIu64, v);
}

static void j_bool(const char *key, int v)
{
    j_key(key);
    fputs(v ? "true" : "false", stdout);
}

static void j_null(const char *key)
{
    j_key(key);
    fputs("null", stdout);
}

/* The length of the valid UTF-8 sequence at the N bytes at P (N > 0):
 * 1 to 4, or 0 when none begins there (an overlong form, a surrogate,
 * past U+10FFFF, cut short). */
static size_t utf8_length(const unsigned char *p, size_t n)
{
    uint32_t cp, min;
    size_t len;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2, cp = p[0] & 0x1fu, min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3, cp = p[0] & 0x0fu, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4, cp = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

/* The N bytes at S as a JSON string: quote, backslash and control
 * characters escaped, bytes that are no UTF-8 as U+FFFD. 1 when every
 * byte was written as it is (the string reads back as the same bytes). */
static int json_string(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int exact = 1;
    putchar('"');
    for (size_t i = 0; i < n;) {
        size_t k = utf8_length(p + i, n - i);
        if (k == 0) {
            fputs("\\ufffd", stdout);
            exact = 0;
            i++;
            continue;
        }
        if (k > 1) {
            fwrite(p + i, 1, k, stdout);
            i += k;
            continue;
        }
        unsigned char c = p[i++];
        switch (c) {
        case '"':  fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        default:
            /* DEL is legal JSON as it is; escaped, a terminal shows it. */
            if (c < 0x20 || c == 0x7f)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
    }
    putchar('"');
    return exact;
}

static void j_str(const char *key, const char *s)
{
    j_key(key);
    json_string(s, strlen(s));
}

/* A name of the store's, N bytes: KEY, and KEY_hex when the string
 * cannot give its bytes back. */
static void j_name(const char *key, const char *name, size_t n)
{
    j_key(key);
    if (json_string(name, n))
        return;
    char hex_key[64];
    snprintf(hex_key, sizeof hex_key, "%s_hex", key);
    j_key(hex_key);
    putchar('"');
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)name[i]);
    putchar('"');
}

/* The start of every document: the command, and the store (null when
 * none was named). */
static void j_begin(const char *command, const char *dir)
{
    j_open(NULL, '{');
    j_str("command", command);
    if (dir != NULL)
        j_name("store", dir, strlen(dir));
    else
        j_null("store");
}

/* The end of every document: the exit status, and what failed (null when
 * it is 0). Returns STATUS. */
static int j_end(int status)
{
    j_u64("status", (uint64_t)status);
    if (status == 0) {
        j_null("error");
    } else {
        j_open("error", '{');
        j_str("message", failure.message[0] != '\0' ? failure.message : "failed");
        if (failure.code != NULL)
            j_str("code", failure.code);
        else
            j_null("code");
        if (failure.has_offset)
            j_u64("offset", failure.offset);
        else
            j_null("offset");
        if (failure.damage) {
            j_u64("transactions_before", failure.txs_before);
            j_u64("intact_records_after", failure.records_after);
            j_u64("transactions_after", failure.txs_after);
            j_u64("first_txno_after", failure.first_txno_after);
        }
        j_close('}');
    }
    j_close('}');
    return status;
}
/* ------------------------------------------------------------ reading a store */

/* A store opened for reading: its directory, its log and the header. */
struct store {
    const char             *dir;
    int                     dirfd, logfd;
    uint64_t                log_size;
    struct lrvm__log_header h;
    int                     slot;
    int                     in_use;     /* another process holds lrvm.lock */
};

/* Is the lock on FD held? Asked with a shared lock that is let go at
 * once: lrvm_open takes an exclusive one and never waits. */
static int held(int fd)
{
    if (fd < 0)
        return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);                          /* drops the shared lock, if taken */
    return busy;
}

/* Is the store open? lrvm_open locks the directory itself, and older
 * versions lock lrvm.lock. */
static int lock_held(int dirfd)
{
    return held(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ||
           held(openat(dirfd, "lrvm.lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
}

/* Open DIR's log for reading; on failure say why and return the exit status. */
static int store_open(struct store *st, const char *dir)
{
    struct stat sb;
    memset(st, 0, sizeof *st);
    st->dir = dir;
    st->dirfd = st->logfd = -1;
    if ((st->dirfd = lrvm__io_open_dir(dir)) < 0) {
        complain("%s: %s", dir, strerror(errno));
        return EXIT_USAGE;
    }
    if (lrvm__io_dir_check(st->dirfd, dir, shared) < 0) {
        failure.code = error_name(LRVM_EACCES);
        complain("%s: anyone may write to this directory, or another user owns it: "
                 "refused, as lrvm_open refuses it (--shared reads it anyway)", dir);
        return EXIT_DAMAGED;
    }
    if ((st->logfd = lrvm__io_open(st->dirfd, LRVM__LOG_NAME, O_RDONLY, 0)) < 0) {
        if (st->logfd == LRVM_ENOENT) {
            complain("%s: not an lrvm store (it has no %s)", dir, LRVM__LOG_NAME);
            return EXIT_USAGE;
        }
        failure.code = error_name(st->logfd);
        if (st->logfd == LRVM_EACCES && errno == EACCES)
            complain("%s/%s: not a regular file (a symbolic link?), or no permission: "
                     "refused", dir, LRVM__LOG_NAME);
        else
            complain("%s/%s: %s", dir, LRVM__LOG_NAME, strerror(errno));
        return EXIT_DAMAGED;
    }
    if (fstat(st->logfd, &sb) != 0) {
        complain("%s/%s: %s", dir, LRVM__LOG_NAME, strerror(errno));
        return EXIT_USAGE;
    }
    st->log_size = (uint64_t)sb.st_size;
    st->in_use = lock_held(st->dirfd);
    int rc = lrvm__log_read_header(st->logfd, &st->h, &st->slot);
    if (rc < 0) {
        failure.code = error_name(rc);
        complain("%s/%s: no valid header: %s", dir, LRVM__LOG_NAME, lrvm_strerror(rc));
        return EXIT_DAMAGED;
    }
    if (st->in_use)
        warn("%s is open in another process: what follows is a snapshot", dir);
    return 0;
}

static void store_close(struct store *st)
{
    if (st->logfd >= 0)
        close(st->logfd);
    if (st->dirfd >= 0)
        close(st->dirfd);
}

/* Progress of a long scan, on stderr when it is a terminal: a line that
 * rewrites itself at most twice a second. */
struct progress {
    const char *what;
    uint64_t    total;
    double      next;
    unsigned    calls;
    int         shown;
};

static void progress_init(struct progress *p, const char *what, uint64_t total)
{
    p->what = what;
    p->total = total;
    p->next = now() + 0.5;
    p->calls = 0;
    p->shown = 0;
}

static void progress_at(void *arg, uint64_t off)
{
    struct progress *p = arg;
    if (++p->calls % 1024 != 0 || !isatty(STDERR_FILENO))
        return;                         /* a clock read per record would show */
    double t = now();
    if (t < p->next)
        return;
    p->next = t + 0.5;
    p->shown = 1;
    fprintf(stderr, "\r%s: %s: %" PRIu64 " of %" PRIu64 " MB", prog, p->what, off / 1000000,
            p->total / 1000000);
}

static void progress_done(struct progress *p)
{
    if (p->shown)
        fprintf(stderr, "\r%*s\r", 60, "");
}

/* Run recovery's checks over the store, FN (when not NULL) seeing each
 * range recovery would write (lrvm__recover_ranges); say what failed.
 * Returns 0 or the LRVM_E code lrvm_open would fail with. */
static int check(struct store *st, struct lrvm__check *c, lrvm__range_fn *fn, void *arg)
{
    struct progress p;
    progress_init(&p, "checking the log", st->log_size);
    int rc = lrvm__recover_ranges(st->dirfd, st->logfd, &st->h, progress_at, &p, fn, arg, c);
    progress_done(&p);
    if (rc < 0)
        failure.code = error_name(rc);
    if (rc == LRVM_ECORRUPT) {
        failure.has_offset = 1;
        failure.offset = c->scan.sr_damage != 0 ? c->scan.sr_damage : c->at;
    }
    if (rc == LRVM_ECORRUPT && c->scan.sr_damage != 0) {
        uint64_t records, commits, first;
        if (lrvm__log_count_intact(st->logfd, &c->head, c->scan.sr_damage, &records, &commits,
                                   &first) < 0)
            records = commits = first = 0;
        failure.damage = 1;
        failure.txs_before = c->scan.sr_txs;
        failure.records_after = records;
        failure.txs_after = commits;
        failure.first_txno_after = first;
        complain("%s: the log is damaged at offset %" PRIu64 ", before records that were "
                 "durable after it: lrvm_open would fail with LRVM_ECORRUPT and apply "
                 "nothing. %" PRIu64 " complete transactions come before the damage; %" PRIu64
                 " intact records after it (%" PRIu64 " transactions, from number %" PRIu64
                 ") would be lost. 'lrvmutl recover --discard-after %" PRIu64 "' keeps "
                 "the ones before and drops the rest", st->dir, c->scan.sr_damage,
                 c->scan.sr_txs, records, commits, first, c->scan.sr_damage);
    } else if (rc == LRVM_ECORRUPT) {
        complain("%s: the log record at offset %" PRIu64 " is valid, but %s: lrvm_open "
                 "would fail with LRVM_ECORRUPT and apply nothing", st->dir, c->at, c->why);
    }
    else if (rc < 0)
        complain("%s: reading the store: %s", st->dir, lrvm_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------ info, verify */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Check the heap in segment file FD of LEN bytes, mapped read-only. Only
 * meaningful when the log holds nothing to replay: a crash in the middle
 * of a truncation may leave a file that the next replay completes. */
static int check_heap_file(int fd, uint64_t len, uint64_t *used, uint64_t *free_bytes)
{
    void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    int rc = lrvm__heap_check_image(m, len, used, free_bytes);
    munmap(m, (size_t)len);
    return rc;
}

/* What info says of the blocks of the heap in segment file FD of LEN
 * bytes: -1 not checked (the log holds records to replay first), 0 they
 * pass their checks (*USED, *FREE_BYTES set), 1 they fail them. */
static int heap_file_verdict(const struct lrvm__check *c, int fd, uint64_t len, uint64_t *used,
                             uint64_t *free_bytes)
{
    if (c->replay_bytes > 0)
        return -1;
    return check_heap_file(fd, len, used, free_bytes) == 0 ? 0 : 1;
}

/* Call FN for each segment file (a regular NAME.seg) of the store, with
 * its stat and a read-only descriptor (-1 if it would not open); how many
 * there were, or -1 when the directory cannot be read. */
static int each_segment_file(const struct store *st,
                             void (*fn)(const struct store *st, const char *name,
                                        const struct stat *sb, int fd, void *arg),
                             void *arg)
{
    int dfd = dup(st->dirfd), n = 0;
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    if (d == NULL) {
        complain("%s: %s", st->dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!has_suffix(e->d_name, ".seg") ||
            fstatat(st->dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISREG(sb.st_mode)) {
            warn("%s: %s is not a regular file (a symbolic link?): lrvm_open and lrvm_map "
                 "refuse it", st->dir, shown(e->d_name, strlen(e->d_name)));
            continue;
        }
        int fd = lrvm__io_open(st->dirfd, e->d_name, O_RDONLY, 0);
        fn(st, e->d_name, &sb, fd, arg);
        if (fd >= 0)
            close(fd);
        n++;
    }
    closedir(d);
    return n;
}

/* each_segment_file: count the heaps that fail their checks, naming each
 * (with --json, each heap is an element of "heaps"). */
static void count_damaged_heap(const struct store *st, const char *name, const struct stat *sb,
                               int fd, void *arg)
{
    struct lrvm__heap_info hi;
    uint64_t used, free_bytes;
    if (fd < 0 || lrvm__heap_describe(fd, &hi) != 1)
        return;
    int bad = check_heap_file(fd, (uint64_t)sb->st_size, &used, &free_bytes) != 0;
    if (json) {
        j_open(NULL, '{');
        j_name("name", name, strlen(name) - 4);
        j_bool("ok", !bad);
        j_close('}');
    }
    if (bad) {
        complain("%s: the heap in %s fails its checks (its blocks or free list are "
                 "damaged); lrvm_heap_open would fail with LRVM_ECORRUPT", st->dir,
                 shown(name, strlen(name)));
        failure.code = error_name(LRVM_ECORRUPT);
        ++*(int *)arg;
    }
}

/* The ranges and bytes the log names in the segment of the N bytes NAME. */
static void named_in_log(const struct lrvm__check *c, const char *name, size_t n,
                         uint64_t *ranges, uint64_t *bytes)
{
    *ranges = *bytes = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        if (strlen(c->segs[i].name) == n && memcmp(c->segs[i].name, name, n) == 0) {
            *ranges = c->segs[i].ranges;
            *bytes = c->segs[i].bytes;
        }
    }
}

/* each_segment_file: a line for the segment, with what the log names in
 * it, and what its heap says when it is one. */
static void print_segment(const struct store *st, const char *name, const struct stat *sb,
                          int fd, void *arg)
{
    const struct lrvm__check *c = arg;
    size_t n = strlen(name) - 4;
    uint64_t ranges, bytes;
    (void)st;
    named_in_log(c, name, n, &ranges, &bytes);
    printf("  ");
    int w = fprint_name(stdout, name, n);
    printf("%*s %16" PRIu64 " %12" PRIu64 " %16" PRIu64 "\n", w < 24 ? 24 - w : 0, "",
           (uint64_t)sb->st_size, ranges, bytes);
    struct lrvm__heap_info hi;
    uint64_t used, free_bytes;
    if (fd < 0 || lrvm__heap_describe(fd, &hi) != 1)
        return;
    printf("    a heap (format %" PRIu64 ") mapped at 0x%" PRIx64 ", %" PRIu64
           " bytes, %" PRIu64 " in use; root %s\n", hi.version, hi.base, hi.size,
           hi.allocated, hi.root != 0 ? "set" : "not set");
    int verdict = heap_file_verdict(c, fd, (uint64_t)sb->st_size, &used, &free_bytes);
    if (verdict < 0)
        printf("    its blocks: not checked, the log holds records to replay "
               "first (lrvmutl recover)\n");
    else if (verdict == 0)
        printf("    its blocks check: %" PRIu64 " used, %" PRIu64 " bytes free\n", used,
               free_bytes);
    else
        printf("    its blocks FAIL their checks\n");
}

/* each_segment_file, --json: the segment as an element of "segments". */
static void json_segment(const struct store *st, const char *name, const struct stat *sb,
                         int fd, void *arg)
{
    const struct lrvm__check *c = arg;
    size_t n = strlen(name) - 4;
    uint64_t ranges, bytes, used, free_bytes;
    struct lrvm__heap_info hi;
    (void)st;
    named_in_log(c, name, n, &ranges, &bytes);
    j_open(NULL, '{');
    j_name("name", name, n);
    j_u64("file_bytes", (uint64_t)sb->st_size);
    j_u64("log_ranges", ranges);
    j_u64("log_bytes", bytes);
    if (fd < 0 || lrvm__heap_describe(fd, &hi) != 1) {
        j_null("heap");
    } else {
        j_open("heap", '{');
        j_u64("format", hi.version);
        j_u64("base", hi.base);
        j_u64("size", hi.size);
        j_u64("allocated", hi.allocated);
        if (hi.root != 0)
            j_u64("root", hi.root);
        else
            j_null("root");
        int verdict = heap_file_verdict(c, fd, (uint64_t)sb->st_size, &used, &free_bytes);
        j_str("check", verdict < 0 ? "not checked" : verdict == 0 ? "ok" : "failed");
        if (verdict == 0) {
            j_u64("used_blocks", used);
            j_u64("free_bytes", free_bytes);
        } else {
            j_null("used_blocks");
            j_null("free_bytes");
        }
        j_close('}');
    }
    j_close('}');
}

/* The segment files of the directory, with what the log names in each. */
static void print_segments(const struct store *st, const struct lrvm__check *c)
{
    printf("segments:\n  %-24s %16s %12s %16s\n", "name", "file bytes", "log ranges",
           "log bytes");
    if (each_segment_file(st, print_segment, (void *)c) == 0)
        printf("  (none)\n");
}

static int cmd_info(const char *dir)
{
    struct store st;
    struct lrvm__check c = { 0 };
    int status = store_open(&st, dir);
    if (json)
        j_begin("info", dir);
    if (status != 0)
        goto out;
    int uffd = lrvm__uffd_usable();
    if (json) {
        j_bool("in_use", st.in_use);
        j_bool("uffd_tracker_offered", uffd);
        j_str("auto_tracker", uffd ? "uffd" : "mprotect");
        j_open("log", '{');
        j_str("file", LRVM__LOG_NAME);
        j_u64("bytes", st.log_size);
        j_u64("format", st.h.lh_version);
        j_u64("generation", st.h.lh_generation);
        j_u64("header_slot", (uint64_t)st.slot);
        j_u64("first_txno", st.h.lh_first_txno);
        j_u64("start", st.h.lh_start);
        if (st.h.lh_next_start != 0) {
            j_open("next", '{');
            j_u64("generation", st.h.lh_generation + 1);
            j_u64("start", st.h.lh_next_start);
            j_u64("first_txno", st.h.lh_next_txno);
            j_close('}');
        } else {
            j_null("next");
        }
        j_close('}');
    } else {
        printf("store: %s%s\n", dir, st.in_use ? " (open in another process)" : "");
        printf("automatic capture here: %s\n",
               uffd ? "the uffd tracker (userfaultfd write-protection); LRVM_TRACK_MPROTECT "
                      "names the other"
                    : "the mprotect tracker; the uffd tracker is not offered (no userfaultfd "
                      "WP_ASYNC with PAGEMAP_SCAN here)");
        printf("log: %s, %" PRIu64 " bytes, format %" PRIu32 ", generation %" PRIu64
               " (header slot %d), records from offset %" PRIu64 ", first transaction "
               "number %" PRIu64 "\n", LRVM__LOG_NAME, st.log_size, st.h.lh_version,
               st.h.lh_generation, st.slot, st.h.lh_start, st.h.lh_first_txno);
        if (st.h.lh_next_start != 0)
            printf("     then generation %" PRIu64 ", records from offset %" PRIu64
                   ", first transaction number %" PRIu64 " (a truncation beside the "
                   "commits was applying generation %" PRIu64 ", which holds %" PRIu64
                   " transactions)\n", st.h.lh_generation + 1, st.h.lh_next_start,
                   st.h.lh_next_txno, st.h.lh_generation,
                   st.h.lh_next_txno - st.h.lh_first_txno);
    }
    int rc = check(&st, &c, NULL, NULL);
    const struct lrvm__scan_result *r = &c.scan;
    if (rc == 0 && json) {
        j_u64("valid_records", r->sr_records);
        j_u64("complete_transactions", r->sr_txs);
        if (r->sr_txs > 0) {
            j_u64("first_txno_replayed", st.h.lh_first_txno);
            j_u64("last_txno_replayed", st.h.lh_first_txno + r->sr_txs - 1);
        } else {
            j_null("first_txno_replayed");
            j_null("last_txno_replayed");
        }
        j_u64("replay_bytes", c.replay_bytes);
        j_u64("scan_end", r->sr_scan_end);
        j_str("stop", r->sr_stop);
        j_u64("unfinished_bytes", r->sr_scan_end - r->sr_end);
        j_open("segments", '[');
        each_segment_file(&st, json_segment, &c);
        j_close(']');
    } else if (rc == 0) {
        printf("records: %" PRIu64 " valid, %" PRIu64 " complete transactions", r->sr_records,
               r->sr_txs);
        if (r->sr_txs > 0)
            printf(" (numbers %" PRIu64 " to %" PRIu64 ")", st.h.lh_first_txno,
                   st.h.lh_first_txno + r->sr_txs - 1);
        printf(", %" PRIu64 " bytes to replay\n", c.replay_bytes);
        printf("end: the scan stopped at offset %" PRIu64 ": %s\n", r->sr_scan_end, r->sr_stop);
        if (r->sr_scan_end > r->sr_end)
            printf("     %" PRIu64 " bytes of an unfinished transaction before it are not "
                   "replayed\n", r->sr_scan_end - r->sr_end);
        print_segments(&st, &c);
    }
    status = rc == 0 ? 0 : EXIT_DAMAGED;
out:
    if (json)
        j_end(status);
    free(c.segs);
    store_close(&st);
    return status;
}

static int cmd_verify(const char *dir)
{
    struct store st;
    struct lrvm__check c = { 0 };
    int status = store_open(&st, dir);
    if (json)
        j_begin("verify", dir);
    if (status == 0) {
        /* Heaps are checked in their files, which only an empty log leaves
         * complete. */
        int rc = check(&st, &c, NULL, NULL);
        int heaps_bad = 0, heaps_checked = rc == 0 && c.replay_bytes == 0;
        if (json && rc == 0) {
            j_u64("complete_transactions", c.scan.sr_txs);
            j_u64("replay_bytes", c.replay_bytes);
            j_bool("heaps_checked", heaps_checked);
            j_open("heaps", '[');
        }
        if (heaps_checked)
            each_segment_file(&st, count_damaged_heap, &heaps_bad);
        if (json && rc == 0)
            j_close(']');
        if (!json && rc == 0 && heaps_bad == 0)
            printf("%s: ok: %" PRIu64 " complete transactions in %" PRIu64 " log bytes; "
                   "lrvm_open would replay them\n", dir, c.scan.sr_txs, c.replay_bytes);
        status = rc == 0 && heaps_bad == 0 ? 0 : EXIT_DAMAGED;
    }
    if (json) {
        j_bool("ok", status == 0);
        j_end(status);
    }
    free(c.segs);
    store_close(&st);
    return status;
}
/* ------------------------------------------------------------ dump */

struct dump {
    int      data;          /* print the first bytes of each range */
    uint64_t ranges;
};

static int dump_range(void *arg, const char *name, size_t name_len, uint64_t off,
                      const unsigned char *data, uint64_t n)
{
    struct dump *d = arg;
    d->ranges++;
    if (json) {
        j_open(NULL, '{');
        j_name("segment", name, name_len);
        j_u64("offset", off);
        j_u64("length", n);
        if (d->data) {
            j_key("data");
            putchar('"');
            for (uint64_t i = 0; i < n && i < 32; i++)
                printf("%02x", data[i]);
            putchar('"');
        }
        j_close('}');
        return 0;
    }
    printf("    ");
    fprint_name(stdout, name, name_len);
    printf(" off %" PRIu64 " len %" PRIu64, off, n);
    if (d->data) {
        printf("  ");
        for (uint64_t i = 0; i < n && i < 32; i++)
            printf("%02x", data[i]);
        if (n > 32)
            printf("...");
    }
    putchar('\n');
    return 0;
}

static int dump_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                       const unsigned char *payload)
{
    if (json) {
        j_open(NULL, '{');
        j_u64("offset", off);
        j_u64("txno", h->rh_txno);
        j_u64("part", h->rh_part);
        j_bool("commit", (h->rh_flags & LRVM__REC_COMMIT) != 0);
        j_u64("payload_bytes", h->rh_payload_len);
        j_open("ranges", '[');
        int malformed = lrvm__payload_walk(payload, h->rh_payload_len, dump_range, arg) < 0;
        j_close(']');
        j_bool("malformed", malformed);
        j_close('}');
        return 0;
    }
    printf("record at %" PRIu64 ": transaction %" PRIu64 " part %u%s, %" PRIu32
           " payload bytes\n", off, h->rh_txno, (unsigned)h->rh_part,
           h->rh_flags & LRVM__REC_COMMIT ? " (commit)" : "", h->rh_payload_len);
    if (lrvm__payload_walk(payload, h->rh_payload_len, dump_range, arg) < 0)
        printf("    (payload malformed)\n");
    return 0;
}

static int cmd_dump(const char *dir, int data)
{
    struct store st;
    int status = store_open(&st, dir);
    if (json)
        j_begin("dump", dir);
    if (status != 0) {
        store_close(&st);
        return json ? j_end(status) : status;
    }
    struct dump d = { data, 0 };
    struct lrvm__scan_cb cb = { .arg = &d, .record = dump_record };
    struct lrvm__scan_result r;
    if (json)
        j_open("records", '[');
    /* A header that names a next generation: its own records, as many
     * transactions as it says, then the next generation's. */
    cb.end_txno = st.h.lh_next_start != 0 ? st.h.lh_next_txno : 0;
    int rc = lrvm__log_scan(st.logfd, &st.h, &cb, &r);
    if (rc == 0 && st.h.lh_next_start != 0) {
        struct lrvm__log_header next = { st.h.lh_version, st.h.lh_generation + 1,
                                         st.h.lh_next_txno, st.h.lh_next_start, 0, 0 };
        struct lrvm__scan_result first = r;
        cb.end_txno = 0;
        rc = lrvm__log_scan(st.logfd, &next, &cb, &r);
        r.sr_records += first.sr_records;
        r.sr_txs += first.sr_txs;
    }
    if (json)
        j_close(']');
    if (rc < 0) {
        failure.code = error_name(rc);
        complain("%s: reading the log: %s", dir, lrvm_strerror(rc));
        status = EXIT_DAMAGED;
    } else if (json) {
        j_u64("valid_records", r.sr_records);
        j_u64("range_count", d.ranges);
        j_u64("complete_transactions", r.sr_txs);
        j_u64("scan_end", r.sr_scan_end);
        j_str("stop", r.sr_stop);
    } else {
        printf("%" PRIu64 " records, %" PRIu64 " ranges, %" PRIu64 " complete transactions; "
               "the scan stopped at offset %" PRIu64 ": %s\n", r.sr_records, d.ranges,
               r.sr_txs, r.sr_scan_end, r.sr_stop);
    }
    store_close(&st);
    return json ? j_end(status) : status;
}

/* ------------------------------------------------------------ a segment as recovery leaves it */

/*
 * heap and cat show segment NAME as lrvm_open would leave it: its file
 * with the ranges recovery would write applied over it, in memory. The
 * ranges come from lrvm__recover_ranges, which is recovery's own scan
 * and checks, so the records applied, and their order, are recovery's:
 * the complete transactions of the log's valid prefix, in log order, and
 * none at all when the log fails a check (the command then fails as
 * verify does). A range is kept as pieces that each lie in one chunk of
 * the segment and in the bytes asked for, with the place of its bytes in
 * the log, and the pieces are sorted by chunk, then log order. The image
 * is then made a chunk at a time: the chunk read from the file, its
 * pieces copied over it from the log (mapped) in log order. So cat never
 * holds more than a chunk of a large segment, and a range costs 32 bytes
 * for each chunk it falls in, not its length.
 */
#define CHUNK ((uint64_t)64 << 10)

struct piece {
    uint64_t off;           /* in the segment; the piece lies in one chunk */
    uint64_t len;
    uint64_t log_off;       /* of its bytes, in the log */
    uint64_t seq;           /* its range's place among the segment's, in log order */
};

struct image {
    const char          *name;
    size_t               name_len;
    int                  fd;            /* NAME.seg, read-only, or -1 */
    uint64_t             size;          /* of the file */
    uint64_t             lo, hi;        /* the bytes wanted */
    uint64_t             ranges;        /* ranges recovery writes in the segment */
    uint64_t             range_bytes;
    struct piece        *p;             /* sorted by chunk, then seq */
    size_t               np, cap;
    size_t               next;          /* the first piece not yet applied */
    const unsigned char *log;           /* the log, mapped read-only, or NULL */
    uint64_t             log_len;
    int                  shrank;        /* the file shrank while it was read */
};

/* Open segment NAME's file; on failure say why and return the exit
 * status. The image is the whole segment until the caller narrows it. */
static int image_open(struct image *im, const struct store *st, const char *name)
{
    memset(im, 0, sizeof *im);
    im->fd = -1;
    im->name = name;
    im->name_len = strlen(name);
    if (!lrvm__name_ok_n(name, im->name_len)) {
        complain("%s: not a segment name (1 to %d bytes, no '/', no '..')", shown(name,
                 im->name_len), LRVM__NAME_MAX);
        return EXIT_USAGE;
    }
    int fd = lrvm__seg_open_file(st->dirfd, name, im->name_len, O_RDONLY);
    if (fd == LRVM_ENOENT) {
        complain("%s: no segment %s in this store (no file %s.seg)", st->dir,
                 shown(name, im->name_len), shown(name, im->name_len));
        return EXIT_USAGE;
    }
    if (fd < 0) {
        failure.code = error_name(fd);
        if (fd == LRVM_EACCES && errno == EACCES) {
            complain("%s: %s.seg: not a regular file (a symbolic link?), or no "
                     "permission: refused", st->dir, shown(name, im->name_len));
            return EXIT_DAMAGED;
        }
        complain("%s: %s.seg: %s", st->dir, shown(name, im->name_len), strerror(errno));
        return EXIT_USAGE;
    }
    im->fd = fd;
    int rc = lrvm__io_fstat_size(fd, &im->size);
    if (rc < 0) {
        complain("%s: %s.seg: %s", st->dir, shown(name, im->name_len), strerror(errno));
        return EXIT_USAGE;
    }
    im->hi = im->size;
    return 0;
}

static void image_close(struct image *im)
{
    if (im->log != NULL)
        lrvm__io_unmap(im->log, im->log_len);
    if (im->fd >= 0)
        close(im->fd);
    free(im->p);
}

/* lrvm__range_fn: keep the pieces of a range of the segment that fall in
 * [lo, hi). */
static int image_range(void *arg, const char *name, size_t name_len, uint64_t off,
                       const unsigned char *data, uint64_t n, uint64_t log_off)
{
    struct image *im = arg;
    (void)data;                         /* gone after the call: the log holds it */
    if (name_len != im->name_len || memcmp(name, im->name, name_len) != 0)
        return 0;
    uint64_t seq = im->ranges++;
    im->range_bytes += n;
    /* Recovery's checks put the range inside the file before it comes
     * (and off + n cannot wrap: the payload walk refuses such a range). */
    if (off >= im->hi || off + n <= im->lo)
        return 0;
    uint64_t a = off > im->lo ? off : im->lo, b = off + n < im->hi ? off + n : im->hi;
    while (a < b) {
        uint64_t end = (a / CHUNK + 1) * CHUNK < b ? (a / CHUNK + 1) * CHUNK : b;
        struct piece *t = lrvm__room_for(im->p, im->np, &im->cap, sizeof *t);
        if (t == NULL)
            return LRVM_ENOMEM;
        im->p = t;
        im->p[im->np++] = (struct piece){ a, end - a, log_off + (a - off), seq };
        a = end;
    }
    return 0;
}

static int piece_order(const void *x, const void *y)
{
    const struct piece *a = x, *b = y;
    if (a->off / CHUNK != b->off / CHUNK)
        return a->off / CHUNK < b->off / CHUNK ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Gather what recovery would write into [lo, hi) of the segment (the log
 * checked as verify checks it); on failure say why and return the exit
 * status. */
static int image_collect(struct image *im, struct store *st, struct lrvm__check *c)
{
    int rc = check(st, c, image_range, im);
    if (rc < 0)
        return EXIT_DAMAGED;
    if (im->np == 0)
        return 0;                       /* p is NULL: not even for qsort */
    qsort(im->p, im->np, sizeof *im->p, piece_order);
    /* Sized now: the log may have grown since the store was opened. A
     * piece past its end means it changed under the scan. */
    if ((rc = lrvm__io_fstat_size(st->logfd, &im->log_len)) < 0 ||
        (rc = lrvm__io_map_read(st->logfd, im->log_len, &im->log)) < 0) {
        im->log = NULL;
        complain("%s/%s: %s", st->dir, LRVM__LOG_NAME, strerror(errno));
        return EXIT_USAGE;
    }
    /* The mapping is made for a scan, read once in order; the pieces
     * are read by chunk, which jumps about the log. */
    (void)madvise((void *)im->log, (size_t)im->log_len, MADV_NORMAL);
    for (size_t i = 0; i < im->np; i++) {
        if (im->p[i].log_off > im->log_len || im->p[i].len > im->log_len - im->p[i].log_off) {
            complain("%s/%s changed while it was read: try again", st->dir, LRVM__LOG_NAME);
            return EXIT_DAMAGED;
        }
    }
    return 0;
}

/* The image's bytes [OFF, OFF+N) into BUF: the file's, then the pieces
 * that fall there, in log order. The calls must come in file order, each
 * for the part of one chunk that lies in [lo, hi) (image_each's). */
static int image_fill(struct image *im, uint64_t off, unsigned char *buf, size_t n)
{
    ssize_t got = lrvm__io_pread(im->fd, buf, n, off);
    if (got < 0)
        return (int)got;
    if ((size_t)got < n) {
        im->shrank = 1;
        return LRVM_EIO;
    }
    for (; im->next < im->np && im->p[im->next].off < off + n; im->next++) {
        const struct piece *q = &im->p[im->next];
        LRVM__ASSERT(q->off >= off && q->off + q->len <= off + n);
        memcpy(buf + (q->off - off), im->log + q->log_off, (size_t)q->len);
    }
    return 0;
}

/* The image of [lo, hi), a chunk at a time: into WHOLE (hi - lo bytes)
 * when it is not NULL, else through FN (ARG, the offset, the bytes, how
 * many), one chunk's buffer reused. On failure say why and return the
 * exit status. */
static int image_each(struct image *im, const char *dir, unsigned char *whole,
                      void (*fn)(void *arg, uint64_t off, const unsigned char *b, size_t n),
                      void *arg)
{
    unsigned char *buf = whole == NULL ? malloc(CHUNK) : NULL;
    int rc = whole == NULL && buf == NULL ? LRVM_ENOMEM : 0;
    for (uint64_t off = im->lo; off < im->hi && rc == 0;) {
        uint64_t end = (off / CHUNK + 1) * CHUNK < im->hi ? (off / CHUNK + 1) * CHUNK : im->hi;
        unsigned char *b = whole != NULL ? whole + (off - im->lo) : buf;
        if ((rc = image_fill(im, off, b, (size_t)(end - off))) == 0 && fn != NULL)
            fn(arg, off, b, (size_t)(end - off));
        off = end;
    }
    free(buf);
    if (rc == 0)
        return 0;
    failure.code = error_name(rc);
    if (im->shrank) {
        complain("%s: %s.seg shrank while it was read: try again", dir,
                 shown(im->name, im->name_len));
        return EXIT_DAMAGED;
    }
    complain("%s: %s.seg: %s", dir, shown(im->name, im->name_len), lrvm_strerror(rc));
    return EXIT_USAGE;
}
/* ------------------------------------------------------------ heap */

/* What the walk of a heap has shown so far. */
struct heap_show {
    uint64_t blocks, used_blocks, used_bytes, free_blocks, free_bytes;
    int      in_list;           /* a bin's list is open (a line, or a JSON array) */
};

static int show_block(void *arg, uint64_t off, uint64_t size, int used)
{
    struct heap_show *hs = arg;
    hs->blocks++;
    if (used) {
        hs->used_blocks++;
        hs->used_bytes += size;
    } else {
        hs->free_blocks++;
        hs->free_bytes += size;
    }
    if (json) {
        j_open(NULL, '{');
        j_u64("offset", off);
        j_u64("size", size);
        j_str("state", used ? "used" : "free");
        j_close('}');
    } else {
        printf("  %16" PRIu64 " %16" PRIu64 "  %s\n", off, size, used ? "used" : "free");
    }
    return 0;
}

static void end_list(struct heap_show *hs)
{
    if (!hs->in_list)
        return;
    if (json) {
        j_close(']');
        j_close('}');
    } else {
        putchar('\n');
    }
    hs->in_list = 0;
}

static int show_bin(void *arg, unsigned bin, uint64_t min_size, uint64_t max_size)
{
    struct heap_show *hs = arg;
    end_list(hs);
    if (json) {
        j_open(NULL, '{');
        j_u64("bin", bin);
        j_u64("min_size", min_size);
        j_u64("max_size", max_size);
        j_open("blocks", '[');
    } else if (min_size == max_size) {
        printf("  bin %u (%" PRIu64 " bytes):", bin, min_size);
    } else {
        printf("  bin %u (%" PRIu64 " to %" PRIu64 " bytes):", bin, min_size, max_size);
    }
    hs->in_list = 1;
    return 0;
}

static int show_free_block(void *arg, unsigned bin, uint64_t off, uint64_t size)
{
    (void)arg;
    (void)bin;
    (void)size;
    if (json)
        j_u64(NULL, off);
    else
        printf(" %" PRIu64, off);
    return 0;
}

/* Show the heap in IMG, the image of segment NAME (IM) of store DIR: its
 * header, its blocks, its lists, the check's verdict; the exit status. */
static int show_heap(const struct image *im, const unsigned char *img, const char *dir)
{
    struct heap_show hs = { 0 };
    struct lrvm__heap_walk w = { .arg = &hs };
    const char *name = shown(im->name, im->name_len);
    if (json) {
        j_u64("file_bytes", im->size);
        j_u64("log_ranges", im->ranges);
        j_u64("log_bytes", im->range_bytes);
    } else {
        printf("segment %s of %s: %" PRIu64 " bytes, as recovery would leave it (%" PRIu64
               " ranges of the log applied, %" PRIu64 " bytes)\n", name, dir, im->size,
               im->ranges, im->range_bytes);
    }
    /* Three walks: the header, the blocks, the lists; each is cheap, and
     * each list of the document so stays whole. */
    if (lrvm__heap_walk_image(img, im->size, &w) != 1) {
        if (json)
            j_null("heap");
        complain("%s: segment %s holds no heap (its first bytes are not a heap's header)",
                 dir, name);
        return EXIT_DAMAGED;
    }
    const struct lrvm__heap_info *hi = &w.info;
    if (json) {
        j_open("heap", '{');
        j_u64("format", hi->version);
        j_u64("base", hi->base);
        j_u64("size", hi->size);
        j_u64("allocated", hi->allocated);
        if (hi->root != 0)
            j_u64("root", hi->root);
        else
            j_null("root");
        j_close('}');
        j_open("blocks", '[');
    } else {
        printf("heap: format %" PRIu64 ", mapped at 0x%" PRIx64 ", %" PRIu64 " bytes, %" PRIu64
               " in use; root: ", hi->version, hi->base, hi->size, hi->allocated);
        if (hi->root != 0)
            printf("the object at offset %" PRIu64 " (0x%" PRIx64 ")\n", hi->root,
                   hi->base + hi->root);
        else
            printf("not set\n");
        printf("blocks:\n  %16s %16s  %s\n", "offset", "size", "state");
    }
    w.block = show_block;
    lrvm__heap_walk_image(img, im->size, &w);
    w.block = NULL;
    if (json) {
        j_close(']');
        if (w.blocks_why != NULL) {
            j_open("blocks_end", '{');
            j_u64("offset", w.blocks_stop);
            j_str("reason", w.blocks_why);
            j_close('}');
        } else {
            j_null("blocks_end");
        }
        j_u64("block_count", hs.blocks);
        j_u64("used_blocks", hs.used_blocks);
        j_u64("used_bytes", hs.used_bytes);
        j_u64("free_blocks", hs.free_blocks);
        j_u64("free_bytes", hs.free_bytes);
        j_open("free_lists", '[');
    } else {
        if (w.blocks_why != NULL)
            printf("  the walk stops at offset %" PRIu64 ": %s\n", w.blocks_stop, w.blocks_why);
        printf("  %" PRIu64 " blocks: %" PRIu64 " used (%" PRIu64 " bytes), %" PRIu64
               " free (%" PRIu64 " bytes)\n", hs.blocks, hs.used_blocks, hs.used_bytes,
               hs.free_blocks, hs.free_bytes);
        printf("free lists:\n");
    }
    w.bin = show_bin;
    w.free_block = show_free_block;
    lrvm__heap_walk_image(img, im->size, &w);
    end_list(&hs);
    if (json) {
        j_close(']');
        if (w.list_why != NULL) {
            j_open("free_lists_end", '{');
            j_u64("bin", w.list_stop_bin);
            j_u64("link", w.list_stop);
            j_str("reason", w.list_why);
            j_close('}');
        } else {
            j_null("free_lists_end");
        }
    } else {
        if (hs.free_blocks == 0 && w.list_why == NULL)
            printf("  (none)\n");
        if (w.list_why != NULL)
            printf("  the walk of bin %u stops at the link %" PRIu64 ": %s\n", w.list_stop_bin,
                   w.list_stop, w.list_why);
    }
    uint64_t used, free_bytes;
    int ok = lrvm__heap_check_image(img, im->size, &used, &free_bytes) == 0;
    if (json)
        j_str("check", ok ? "ok" : "failed");
    else if (ok)
        printf("check: ok: lrvm_heap_open would accept it (%" PRIu64 " used blocks, %" PRIu64
               " bytes free)\n", used, free_bytes);
    else
        printf("check: FAILED: lrvm_heap_open would refuse it with LRVM_ECORRUPT\n");
    if (ok)
        return 0;
    failure.code = error_name(LRVM_ECORRUPT);
    complain("%s: the heap in segment %s fails its checks (its blocks or free lists are "
             "damaged): lrvm_heap_open would fail with LRVM_ECORRUPT", dir, name);
    return EXIT_DAMAGED;
}

static int cmd_heap(const char *dir, const char *name)
{
    struct store st;
    struct lrvm__check c = { 0 };
    struct image im = { .fd = -1 };
    unsigned char *img = NULL;
    int status = store_open(&st, dir);
    if (json) {
        j_begin("heap", dir);
        j_name("segment", name, strlen(name));
    }
    if (status == 0)
        status = image_open(&im, &st, name);
    if (status == 0)
        status = image_collect(&im, &st, &c);
    /* The check needs the whole image. malloc aligns it for the heap's
     * words. */
    if (status == 0 && (img = malloc(im.size > 0 ? (size_t)im.size : 1)) == NULL) {
        complain("%s: %s.seg: %" PRIu64 " bytes: %s", dir, shown(name, im.name_len), im.size,
                 strerror(errno));
        status = EXIT_USAGE;
    }
    if (status == 0)
        status = image_each(&im, dir, img, NULL, NULL);
    if (status == 0)
        status = show_heap(&im, img, dir);
    free(img);
    image_close(&im);
    free(c.segs);
    store_close(&st);
    return json ? j_end(status) : status;
}

/* ------------------------------------------------------------ cat */

/* hexdump -C's format: the offset, 16 bytes in hex in two groups of 8,
 * the same as characters ('.' for one that does not print); a line that
 * repeats the line before it is skipped, and the first one skipped shows
 * as '*'; at the end, the offset after the last byte. */
struct hexdump {
    uint64_t      at;           /* offset of the line being filled */
    unsigned char line[16], prev[16];
    size_t        n;            /* bytes in line */
    int           have_prev;    /* a whole line came before */
    int           starred;      /* the '*' of a run of repeats is out */
};

static void hex_line(struct hexdump *h)
{
    if (h->n == 16 && h->have_prev && memcmp(h->line, h->prev, 16) == 0) {
        if (!h->starred)
            puts("*");
        h->starred = 1;
    } else {
        printf("%08" PRIx64 " ", h->at);
        for (size_t i = 0; i < 16; i++) {
            if (i % 8 == 0)
                putchar(' ');
            if (i < h->n)
                printf("%02x ", h->line[i]);
            else
                fputs("   ", stdout);
        }
        fputs(" |", stdout);
        for (size_t i = 0; i < h->n; i++)
            putchar(h->line[i] >= 0x20 && h->line[i] < 0x7f ? h->line[i] : '.');
        puts("|");
        h->starred = 0;
    }
    memcpy(h->prev, h->line, h->n);
    h->have_prev = h->n == 16;
    h->at += h->n;
    h->n = 0;
}

static void hex_bytes(void *arg, uint64_t off, const unsigned char *b, size_t n)
{
    struct hexdump *h = arg;
    (void)off;
    for (size_t i = 0; i < n; i++) {
        h->line[h->n++] = b[i];
        if (h->n == 16)
            hex_line(h);
    }
}

static void raw_bytes(void *arg, uint64_t off, const unsigned char *b, size_t n)
{
    (void)arg;
    (void)off;
    fwrite(b, 1, n, stdout);
}

/* A decimal or 0x-prefixed count of bytes in S; -1 when S is none. */
static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;                      /* strtoull would take "-1", " 1", "+1" */
    errno = 0;
    *v = strtoull(s, &end, 0);
    return *end != '\0' || errno != 0 ? -1 : 0;
}

static int cmd_cat(const char *dir, const char *name, const char *off_arg, const char *len_arg)
{
    struct store st;
    struct lrvm__check c = { 0 };
    struct image im = { .fd = -1 };
    uint64_t off = 0, len = 0;
    const char *bad = off_arg != NULL && parse_u64(off_arg, &off) < 0   ? off_arg
                      : len_arg != NULL && parse_u64(len_arg, &len) < 0 ? len_arg
                                                                          : NULL;
    if (bad != NULL) {
        complain("not a byte count: %s (OFFSET and LENGTH are decimal, or hex after 0x)", bad);
        return EXIT_USAGE;
    }
    int status = store_open(&st, dir);
    if (status == 0)
        status = image_open(&im, &st, name);
    /* Refused rather than cut short: a script that asks for bytes the
     * segment does not have should hear of it. */
    if (status == 0 && off > im.size) {
        complain("%s: OFFSET %" PRIu64 " is past the end of segment %s (%" PRIu64 " bytes)",
                 dir, off, shown(name, im.name_len), im.size);
        status = EXIT_USAGE;
    } else if (status == 0 && len_arg != NULL && len > im.size - off) {
        complain("%s: OFFSET %" PRIu64 " + LENGTH %" PRIu64 " is past the end of segment %s "
                 "(%" PRIu64 " bytes)", dir, off, len, shown(name, im.name_len), im.size);
        status = EXIT_USAGE;
    }
    if (status == 0) {
        im.lo = off;
        im.hi = len_arg != NULL ? off + len : im.size;
        status = image_collect(&im, &st, &c);
    }
    struct hexdump h = { .at = off };
    if (status == 0)
        status = image_each(&im, dir, NULL, raw ? raw_bytes : hex_bytes, &h);
    if (status == 0 && !raw) {
        if (h.n > 0)
            hex_line(&h);
        printf("%08" PRIx64 "\n", h.at);
    }
    image_close(&im);
    free(c.segs);
    store_close(&st);
    return status;
}
/* ------------------------------------------------------------ recover, truncate */

static int cmd_recover(const char *dir, int truncate)
{
    struct store st;
    struct lrvm__check c = { 0 };
    lrvm_t *s;
    /* Only a store: lrvm_open would make one of any directory. The check
     * counts what the replay will apply, and names a damaged record
     * before lrvm_open refuses it with no more than an error code. With
     * --discard-after, the log ends there on purpose: what lies after it
     * is named and dropped. */
    int status = store_open(&st, dir);
    if (status == 0 && discard_after != 0) {
        uint64_t records, commits, first;
        if (discard_after < LRVM__LOG_HEADER_SIZE || discard_after % 8 != 0) {
            complain("--discard-after: an offset of a record in the log (a multiple of 8, "
                     "at least %u), as lrvmutl verify names it", LRVM__LOG_HEADER_SIZE);
            status = EXIT_USAGE;
        } else if (lrvm__log_count_intact(st.logfd, &st.h, discard_after, &records, &commits,
                                          &first) == 0) {
            fprintf(stderr, "%s: %s: dropping the log from offset %" PRIu64 " on: %" PRIu64
                    " intact records, %" PRIu64 " transactions (from number %" PRIu64 ")\n",
                    prog, dir, discard_after, records, commits, first);
        }
    } else if (status == 0 && check(&st, &c, NULL, NULL) < 0) {
        status = EXIT_DAMAGED;
    }
    free(c.segs);
    store_close(&st);
    if (status != 0)
        return status;

    if (discard_after != 0)
        fprintf(stderr, "%s: %s: replaying the transactions before offset %" PRIu64 "...\n",
                prog, dir, discard_after);
    else
        fprintf(stderr, "%s: %s: replaying %" PRIu64 " transactions (%" PRIu64
                " log bytes)...\n", prog, dir, c.scan.sr_txs, c.replay_bytes);
    double t0 = now();
    /* Explicit tracking: nothing is mapped, so no fault handler is needed. */
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .shared = shared };
    int rc = lrvm__open_discarding(dir, &o, discard_after, &s);
    if (rc < 0) {
        complain("%s: lrvm_open: %s", dir, lrvm_strerror(rc));
        return EXIT_DAMAGED;
    }
    double secs = now() - t0;
    if (truncate)
        rc = lrvm_truncate(s);
    int rc2 = lrvm_close(s);
    if (rc == 0)
        rc = rc2;
    if (rc < 0) {
        complain("%s: %s: %s", dir, truncate ? "lrvm_truncate" : "lrvm_close",
                 lrvm_strerror(rc));
        return EXIT_DAMAGED;
    }
    if (discard_after != 0)
        printf("%s: the transactions before offset %" PRIu64 " replayed into the segment "
               "files in %.3f s; the rest dropped; the log is empty\n", dir, discard_after, secs);
    else
        printf("%s: %" PRIu64 " transactions replayed into the segment files in %.3f s; "
               "the log is empty\n", dir, c.scan.sr_txs, secs);
    return 0;
}

/* Which options COMMAND takes. */
static int takes(const char *cmd, const char *option)
{
    static const struct { const char *option, *cmds; } table[] = {
        { "--data", " dump " },
        { "--json", " info verify dump heap " },
        { "--raw", " cat " },
        { "--discard-after", " recover " },
    };
    char word[32];
    snprintf(word, sizeof word, " %s ", cmd);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(option, table[i].option) == 0)
            return strstr(table[i].cmds, word) != NULL;
    return strcmp(option, "--shared") == 0;
}

/* Bad usage: say so (a JSON document too when --json was given to a
 * command that takes it), show the usage, return its status. */
static int bad_usage(const char *cmd, const char *fmt, const char *what)
{
    if (fmt != NULL)
        complain(fmt, what);
    usage(stderr);
    if (json) {
        j_begin(cmd, NULL);
        j_end(EXIT_USAGE);
    }
    return EXIT_USAGE;
}

/* The positional arguments each command takes: at least, at most. */
static int arity(const char *cmd, int *least, int *most)
{
    static const struct { const char *cmd; int least, most; } table[] = {
        { "info", 1, 1 }, { "verify", 1, 1 }, { "dump", 1, 1 }, { "heap", 2, 2 },
        { "cat", 2, 4 }, { "recover", 1, 1 }, { "truncate", 1, 1 },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(cmd, table[i].cmd) == 0) {
            *least = table[i].least;
            *most = table[i].most;
            return 0;
        }
    }
    return -1;
}

static int run(const char *cmd, const char *const *arg, int data)
{
    if (strcmp(cmd, "info") == 0)
        return cmd_info(arg[0]);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(arg[0]);
    if (strcmp(cmd, "dump") == 0)
        return cmd_dump(arg[0], data);
    if (strcmp(cmd, "heap") == 0)
        return cmd_heap(arg[0], arg[1]);
    if (strcmp(cmd, "cat") == 0)
        return cmd_cat(arg[0], arg[1], arg[2], arg[3]);
    return cmd_recover(arg[0], strcmp(cmd, "truncate") == 0);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL, *arg[4] = { NULL, NULL, NULL, NULL };
    int data = 0, npos = 0, least, most, options = 1;

    if (cmd != NULL && (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (cmd != NULL && strcmp(cmd, "--version") == 0) {
        printf("lrvmutl (lrvm) %s\n", lrvm_version());
        return 0;
    }
    if (cmd == NULL)
        return bad_usage(NULL, NULL, NULL);
    if (arity(cmd, &least, &most) < 0) {
        complain("unknown command: %s", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* --json first, so that a usage error is a document too. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        json |= strcmp(argv[i], "--json") == 0 && takes(cmd, "--json");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = 0;                /* a segment name may begin with '-' */
        } else if (options && a[0] == '-' && !takes(cmd, a)) {
            return bad_usage(cmd, "unexpected argument: %s", a);
        } else if (options && strcmp(a, "--data") == 0) {
            data = 1;
        } else if (options && strcmp(a, "--json") == 0) {
            json = 1;
        } else if (options && strcmp(a, "--raw") == 0) {
            raw = 1;
        } else if (options && strcmp(a, "--shared") == 0) {
            shared = 1;
        } else if (options && strcmp(a, "--discard-after") == 0) {
            char *end;
            if (i + 1 == argc)
                return bad_usage(cmd, "%s: an offset must follow", a);
            discard_after = strtoull(argv[++i], &end, 0);
            if (*end != '\0' || discard_after == 0) {
                complain("--discard-after: not an offset: %s", argv[i]);
                return EXIT_USAGE;
            }
        } else if (npos == most) {
            return bad_usage(cmd, "unexpected argument: %s", a);
        } else {
            arg[npos++] = a;
        }
    }
    if (npos < least)
        return bad_usage(cmd, "%s: an argument is missing", cmd);
    int status = run(cmd, arg, data);
    /* Output cut short (a full disk) is a system error, not a result. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        complain("standard output: %s", strerror(errno));
        return status != 0 ? status : EXIT_USAGE;
    }
    return status;
}
