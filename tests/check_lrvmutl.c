/*
 * check_lrvmutl.c -- lrvmutl's readers, run as a program: --json on
 * info, verify, dump and heap, heap's walk, and cat.
 *
 * The stores are made by the library, in a child that dies of SIGKILL so
 * that the log keeps what it holds: committed transactions in one record
 * and in several, an aborted one, no-flush commits, a heap with blocks
 * allocated and freed, a segment whose name holds a quote and a
 * backslash, and a last transaction cut short (its COMMIT part wiped, as
 * a crash in the middle of its write leaves it). What lrvmutl shows is
 * checked against what the library makes of the same store: a copy
 * opened with lrvm_open, which recovers it. And every run must leave the
 * store as it was, byte for byte and to the modification time.
 *
 * The JSON documents are read by a strict parser of the test's own
 * (below): valid UTF-8, no control character in a string, integers only.
 * Where python3 is installed, its json module reads them too.
 *
 * lrvmutl is found through $LRVMUTL (make check sets it), else under
 * tools/ or ../tools/.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLAIN_SIZE ((size_t)192 << 10)
#define BIG_OFF    ((size_t)60 << 10)       /* across the tool's 64 KiB chunks */
#define BIG_LEN    ((size_t)40 << 10)
#define SMALL_SIZE ((size_t)96)
#define HEAP_SIZE  ((size_t)1 << 20)
#define NALLOC     10
static const char QUOTED[] = "q\"b\\s";     /* a quote and a backslash */

/* ------------------------------------------------------------ running lrvmutl */

static const char *tool(void)
{
    const char *env = getenv("LRVMUTL");
    if (env != NULL && env[0] != '\0')
        return env;
    return access("tools/lrvmutl", X_OK) == 0 ? "tools/lrvmutl" : "../tools/lrvmutl";
}

/* A run: its exit status (-1: a signal), its standard output (NUL added)
 * and its standard error. */
struct run {
    int    status;
    char  *out;
    size_t len;
    char  *err;
};

/* lrvmutl ARGS... (NULL-terminated); its outputs go through files in
 * tu_dir, so that a large one cannot fill a pipe. */
static void run_argv(struct run *r, const char *const *args)
{
    const char *argv[12] = { tool() };
    size_t n = 1;
    for (; args[n - 1] != NULL; n++) {
        ck_assert_uint_lt(n, 11);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    char out[4096], err[4096];
    snprintf(out, sizeof out, "%s/stdout", tu_dir);
    snprintf(err, sizeof err, "%s/stderr", tu_dir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(127);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = tu_wait(pid);
    ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 127), "cannot run %s", argv[0]);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out = tu_read_whole(out, &r->len);
    r->err = tu_read_whole(err, NULL);
}

#define LRVMUTL(r, ...)                                                   \
    do {                                                                  \
        const char *args_[] = { __VA_ARGS__, NULL };                      \
        run_argv((r), args_);                                             \
    } while (0)

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

#define ck_assert_has(text, part)                                                        \
    ck_assert_msg(strstr((text), (part)) != NULL, "no \"%s\" in:\n%s", (part), (text))

/* ------------------------------------------------------------ a JSON reader */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* A value; an object's members keep their names in key. */
struct jv {
    int        type;
    uint64_t   num;                 /* J_NUM; J_BOOL: 0 or 1 */
    char      *str;                 /* J_STR: the bytes, NUL added */
    size_t     len;
    char      *key;                 /* a member's name, NUL added */
    size_t     keylen;
    struct jv *kids;
    size_t     n, cap;
};

struct jp {
    const unsigned char *p, *end;
    const char          *why;       /* why the text is no JSON */
};

static void jv_free(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++)
        jv_free(&v->kids[i]);
    free(v->kids);
    free(v->str);
    free(v->key);
}

static void j_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
        j->p++;
}

static int j_fail(struct jp *j, const char *why)
{
    if (j->why == NULL)
        j->why = why;
    return -1;
}

/* The code point of the UTF-8 sequence at *P (moved past it), or -1. */
static long j_utf8(struct jp *j)
{
    const unsigned char *p = j->p;
    long cp;
    int len;
    if (p[0] < 0x80)
        len = 1, cp = p[0];
    else if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07;
    else
        return -1;
    if (j->end - p < len)
        return -1;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const long least[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    j->p += len;
    return cp;
}

static void put_utf8(char *b, size_t *n, long cp)
{
    if (cp < 0x80) {
        b[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        b[(*n)++] = (char)(0xc0 | cp >> 6);
        b[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        b[(*n)++] = (char)(0xe0 | cp >> 12);
        b[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        b[(*n)++] = (char)(0xf0 | cp >> 18);
        b[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static long j_hex4(struct jp *j)
{
    long v = 0;
    if (j->end - j->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int c = *j->p++, d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* A string, after its opening quote, into *S (*N bytes). */
static int j_string(struct jp *j, char **s, size_t *n)
{
    /* Its decoded bytes are never more than its text. */
    char *b = malloc((size_t)(j->end - j->p) + 1);
    ck_assert_ptr_nonnull(b);
    *n = 0;
    for (;;) {
        if (j->p == j->end) {
            free(b);
            return j_fail(j, "a string that does not end");
        }
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) {
            free(b);
            return j_fail(j, "a control character in a string");
        }
        if (c != '\\') {
            long cp = j_utf8(j);
            if (cp < 0) {
                free(b);
                return j_fail(j, "a string that is not UTF-8");
            }
            put_utf8(b, n, cp);
            continue;
        }
        j->p++;
        c = j->p < j->end ? *j->p++ : 0;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c != 0 && simple != NULL) {
            b[(*n)++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        long cp = c == 'u' ? j_hex4(j) : -1;
        if (cp >= 0xd800 && cp <= 0xdbff && j->end - j->p >= 2 && j->p[0] == '\\' &&
            j->p[1] == 'u') {
            j->p += 2;
            long lo = j_hex4(j);
            cp = lo >= 0xdc00 && lo <= 0xdfff ? 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                                              : -1;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
            cp = -1;                    /* half a surrogate pair */
        }
        if (cp < 0) {
            free(b);
            return j_fail(j, "a bad escape in a string");
        }
        put_utf8(b, n, cp);
    }
    b[*n] = '\0';
    *s = b;
    return 0;
}

static int j_value(struct jp *j, struct jv *v, int depth);

static struct jv *j_add(struct jv *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->kids = realloc(v->kids, v->cap * sizeof *v->kids);
        ck_assert_ptr_nonnull(v->kids);
    }
    memset(&v->kids[v->n], 0, sizeof v->kids[v->n]);
    return &v->kids[v->n++];
}

/* The members or elements of V, after its opening bracket. */
static int j_container(struct jp *j, struct jv *v, int depth, char close)
{
    j_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        struct jv *kid = j_add(v);
        if (close == '}') {
            j_ws(j);
            if (j->p == j->end || *j->p++ != '"' || j_string(j, &kid->key, &kid->keylen) < 0)
                return j_fail(j, "a member without a name");
            j_ws(j);
            if (j->p == j->end || *j->p++ != ':')
                return j_fail(j, "a member name without ':'");
        }
        if (j_value(j, kid, depth + 1) < 0)
            return -1;
        j_ws(j);
        if (j->p == j->end)
            return j_fail(j, "an array or object that does not end");
        unsigned char c = *j->p++;
        if (c == (unsigned char)close)
            return 0;
        if (c != ',')
            return j_fail(j, "no ',' between values");
    }
}

static int j_value(struct jp *j, struct jv *v, int depth)
{
    j_ws(j);
    if (depth > 32 || j->p == j->end)
        return j_fail(j, "no value");
    size_t left = (size_t)(j->end - j->p);
    unsigned char c = *j->p;
    if (left >= 4 && memcmp(j->p, "null", 4) == 0) {
        v->type = J_NULL;
        j->p += 4;
    } else if (left >= 4 && memcmp(j->p, "true", 4) == 0) {
        v->type = J_BOOL;
        v->num = 1;
        j->p += 4;
    } else if (left >= 5 && memcmp(j->p, "false", 5) == 0) {
        v->type = J_BOOL;
        j->p += 5;
    } else if (c >= '0' && c <= '9') {
        /* lrvmutl writes integers, never negative: anything else fails. */
        v->type = J_NUM;
        if (c == '0' && left > 1 && j->p[1] >= '0' && j->p[1] <= '9')
            return j_fail(j, "a number with a leading zero");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            if (v->num > (UINT64_MAX - 9) / 10)
                return j_fail(j, "an integer past 64 bits");
            v->num = v->num * 10 + (uint64_t)(*j->p++ - '0');
        }
        if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
            return j_fail(j, "a number that is not an integer");
    } else if (c == '"') {
        j->p++;
        v->type = J_STR;
        return j_string(j, &v->str, &v->len);
    } else if (c == '[' || c == '{') {
        j->p++;
        v->type = c == '[' ? J_ARR : J_OBJ;
        return j_container(j, v, depth, c == '[' ? ']' : '}');
    } else {
        return j_fail(j, "not a value");
    }
    return 0;
}

/* Parse the N bytes of TEXT, which must be one JSON document, into *V;
 * fails the test, quoting it, when they are not. */
static void json_parse(const char *text, size_t n, struct jv *v)
{
    struct jp j = { (const unsigned char *)text, (const unsigned char *)text + n, NULL };
    memset(v, 0, sizeof *v);
    if (j_value(&j, v, 0) == 0) {
        j_ws(&j);
        if (j.p != j.end)
            j_fail(&j, "more after the document");
    }
    ck_assert_msg(j.why == NULL, "not JSON (%s, at byte %zu):\n%s", j.why,
                  (size_t)((const char *)j.p - text), text);
}

/* Member KEY of object O: it must be there. */
static const struct jv *jget(const struct jv *o, const char *key)
{
    ck_assert_int_eq(o->type, J_OBJ);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->kids[i].key, key) == 0)
            return &o->kids[i];
    ck_abort_msg("no member \"%s\"", key);
    return NULL;
}

static int jhas(const struct jv *o, const char *key)
{
    for (size_t i = 0; o->type == J_OBJ && i < o->n; i++)
        if (strcmp(o->kids[i].key, key) == 0)
            return 1;
    return 0;
}

static uint64_t jnum(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    ck_assert_msg(v->type == J_NUM, "\"%s\" is no number", key);
    return v->num;
}

static int jbool(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    ck_assert_msg(v->type == J_BOOL, "\"%s\" is no boolean", key);
    return (int)v->num;
}

static const char *jstr(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    ck_assert_msg(v->type == J_STR, "\"%s\" is no string", key);
    return v->str;
}

static const struct jv *jarr(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    ck_assert_msg(v->type == J_ARR, "\"%s\" is no array", key);
    return v;
}

/* python3's interpreter, or "" when there is none. */
static char python[4096];

/* R's output as a document: one, valid (to python3's json module as
 * well, when there is one), with the command's name and R's status. */
static void json_of(const struct run *r, const char *command, struct jv *v)
{
    json_parse(r->out, r->len, v);
    ck_assert_str_eq(jstr(v, "command"), command);
    ck_assert_uint_eq(jnum(v, "status"), (uint64_t)r->status);
    ck_assert_int_eq(jget(v, "error")->type, r->status == 0 ? J_NULL : J_OBJ);
    if (python[0] != '\0') {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import json,sys; json.load(sys.stdin)' < '%s/stdout'",
                 python, tu_dir);
        ck_assert_msg(system(cmd) == 0, "python3 refuses the document:\n%s", r->out);
    }
}

/* Find python3 once, before the tests fork: the interpreter itself, not
 * a wrapper on the PATH that may take half a second to start it. */
static void find_python(void)
{
    FILE *p = popen("python3 -c 'import json, sys; print(sys.executable)' 2>/dev/null", "r");
    if (p == NULL)
        return;
    if (fgets(python, sizeof python, p) == NULL)
        python[0] = '\0';
    python[strcspn(python, "\n")] = '\0';
    if (pclose(p) != 0 || strchr(python, '\'') != NULL)
        python[0] = '\0';
}

/* ------------------------------------------------------------ the stores */

static char store[4200];

/* Byte I of the pattern that transaction T writes. */
static unsigned char pat(unsigned t, size_t i)
{
    return (unsigned char)(t * 37 + i * 7 + (i >> 8));
}

static void fill(unsigned char *p, size_t n, unsigned t)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(t, i);
}

#define MUST(x) do { if ((x) != 0) _exit(10 + __LINE__ % 100); } while (0)

/* Child: the store described at the top, then death by SIGKILL. */
static void build_child(void *arg)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = 4096,
                         .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s;
    lrvm_heap_t *h;
    lrvm_tx_t *tx;
    void *plain, *small, *quoted, *hb;
    MUST(lrvm_open(arg, &o, &s));
    /* The heap first: lrvm_heap_open truncates the log. */
    MUST(lrvm_heap_open(s, "heap", HEAP_SIZE, &h));
    hb = lrvm_heap_base(h);
    MUST(lrvm_map(s, "plain", PLAIN_SIZE, &plain));
    MUST(lrvm_map(s, "small", SMALL_SIZE, &small));
    MUST(lrvm_map(s, QUOTED, 4096, &quoted));
    unsigned char *p = plain, *sm = small;

    MUST(lrvm_begin(s, 1, &plain, &tx));                    /* committed */
    MUST(lrvm_set_range(tx, p, 100));
    fill(p, 100, 1);
    MUST(lrvm_commit(tx, 0));
    MUST(lrvm_begin(s, 1, &plain, &tx));                    /* aborted */
    MUST(lrvm_set_range(tx, p + 200, 100));
    memset(p + 200, 'X', 100);
    MUST(lrvm_abort(tx));
    MUST(lrvm_begin(s, 1, &plain, &tx));                    /* no-flush */
    MUST(lrvm_set_range(tx, p + 300, 100));
    fill(p + 300, 100, 3);
    MUST(lrvm_commit(tx, LRVM_NO_FLUSH));
    MUST(lrvm_begin(s, 1, &plain, &tx));                    /* over the first */
    MUST(lrvm_set_range(tx, p + 50, 100));
    fill(p + 50, 100, 4);
    MUST(lrvm_commit(tx, 0));
    MUST(lrvm_begin(s, 1, &plain, &tx));                    /* in several records */
    MUST(lrvm_set_range(tx, p + BIG_OFF, BIG_LEN));
    fill(p + BIG_OFF, BIG_LEN, 5);
    MUST(lrvm_commit(tx, 0));

    MUST(lrvm_begin(s, 1, &small, &tx));
    MUST(lrvm_set_range(tx, sm, SMALL_SIZE));
    memcpy(sm, "persistent\n", 11);
    memset(sm + 40, 0xff, 8);
    MUST(lrvm_commit(tx, LRVM_NO_FLUSH));

    /* The heap: blocks allocated, one the root, two freed; an aborted
     * allocation; a last free in a no-flush commit. */
    void *b[NALLOC];
    MUST(lrvm_begin(s, 1, &hb, &tx));
    for (int i = 0; i < NALLOC; i++) {
        b[i] = lrvm_malloc(h, 24 + 300 * (size_t)i);
        MUST(b[i] == NULL);
    }
    MUST(lrvm_heap_set_root(h, b[3]));
    lrvm_free(h, b[1]);
    lrvm_free(h, b[5]);
    MUST(lrvm_commit(tx, 0));
    MUST(lrvm_begin(s, 1, &hb, &tx));
    MUST(lrvm_malloc(h, 5000) == NULL);
    lrvm_free(h, b[8]);
    MUST(lrvm_abort(tx));
    MUST(lrvm_begin(s, 1, &hb, &tx));
    lrvm_free(h, b[7]);
    MUST(lrvm_commit(tx, LRVM_NO_FLUSH));

    MUST(lrvm_begin(s, 1, &quoted, &tx));
    MUST(lrvm_set_range(tx, quoted, 5));
    memcpy(quoted, "quote", 5);
    MUST(lrvm_commit(tx, 0));

    /* Last, in several records too: the test wipes its COMMIT part. */
    MUST(lrvm_begin(s, 1, &plain, &tx));
    MUST(lrvm_set_range(tx, p + BIG_OFF - 1000, BIG_LEN));
    fill(p + BIG_OFF - 1000, BIG_LEN, 6);
    MUST(lrvm_commit(tx, 0));
    kill(getpid(), SIGKILL);
}

/* The records of the log of DIR, through the library's scan. */
struct records {
    uint64_t off[4096], size[4096], txno[4096];
    int      commit[4096];
    size_t   n;
};

static int note_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                       const unsigned char *payload)
{
    struct records *r = arg;
    (void)payload;
    ck_assert_uint_lt(r->n, 4096);
    r->off[r->n] = off;
    r->size[r->n] = lrvm__rec_size(h);
    r->txno[r->n] = h->rh_txno;
    r->commit[r->n] = (h->rh_flags & LRVM__REC_COMMIT) != 0;
    r->n++;
    return 0;
}

static void scan_log(const char *dir, struct records *r, struct lrvm__scan_result *res)
{
    int fd = open(tu_path(dir, LRVM__LOG_NAME), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct lrvm__log_header h;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(fd, &h, &slot), 0);
    struct lrvm__scan_cb cb = { .arg = r, .record = note_record };
    r->n = 0;
    ck_assert_int_eq(lrvm__log_scan(fd, &h, &cb, res), 0);
    close(fd);
}

/* tu_dir/store: the store, its last transaction cut short. */
static void make_store(void)
{
    snprintf(store, sizeof store, "%s/store", tu_dir);
    int st = tu_in_child(build_child, store);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    struct records r;
    struct lrvm__scan_result res;
    scan_log(store, &r, &res);
    /* The last transaction is in parts (so is the one of BIG_LEN bytes
     * before it): wipe its last, as a crash during its write may. */
    ck_assert_uint_ge(r.n, 4);
    ck_assert(r.commit[r.n - 1] && !r.commit[r.n - 2] && r.txno[r.n - 2] == r.txno[r.n - 1]);
    char *zero = calloc(1, r.size[r.n - 1]);
    ck_assert_int_eq(tu_write(tu_path(store, LRVM__LOG_NAME), zero, r.size[r.n - 1],
                              r.off[r.n - 1]), 0);
    free(zero);
    struct lrvm__scan_result after;
    scan_log(store, &r, &after);
    ck_assert_uint_eq(after.sr_txs, res.sr_txs - 1);
    ck_assert_uint_gt(after.sr_scan_end, after.sr_end);     /* parts of it still valid */
}

/* A copy of the store, recovered by lrvm_open (and closed). */
static const char *recovered_copy(void)
{
    static char copy[4200];
    snprintf(copy, sizeof copy, "%s/copy", tu_dir);
    ck_assert_int_eq(mkdir(copy, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(store, copy), 0);
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(copy, &o, &s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    return copy;
}

/* What lrvm_open and lrvm_map show of segment NAME (SIZE bytes) of the
 * store, through a fresh copy (malloc'ed). */
static unsigned char *as_the_library_shows(const char *name, size_t size)
{
    char copy[4200];
    snprintf(copy, sizeof copy, "%s/shown", tu_dir);
    tu_rmrf(copy);
    ck_assert_int_eq(mkdir(copy, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(store, copy), 0);
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(copy, &o, &s), 0);
    unsigned char *b = malloc(size);
    ck_assert_ptr_nonnull(b);
    if (strcmp(name, "heap") == 0) {
        lrvm_heap_t *h;
        ck_assert_int_eq(lrvm_heap_open(s, name, size, &h), 0);
        memcpy(b, lrvm_heap_base(h), size);
    } else {
        memcpy(b, tu_map(s, name, size), size);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
    tu_rmrf(copy);
    return b;
}

/* Every file of a directory: name, bytes, modification time. */
struct dirsnap {
    char            name[64][256];
    char           *data[64];
    size_t          len[64];
    struct timespec mtime[64];
    int             n;
};

static void dir_snap(const char *dir, struct dirsnap *s)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    s->n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ck_assert_int_lt(s->n, 64);
        struct stat sb;
        ck_assert_int_eq(lstat(tu_path(dir, e->d_name), &sb), 0);
        snprintf(s->name[s->n], sizeof s->name[s->n], "%s", e->d_name);
        s->data[s->n] = tu_read_whole(tu_path(dir, e->d_name), &s->len[s->n]);
        s->mtime[s->n] = sb.st_mtim;
        s->n++;
    }
    closedir(d);
}

/* DIR is as it was at BEFORE: the same files, bytes and times. */
static void assert_unchanged(const char *dir, struct dirsnap *before, const char *after)
{
    struct dirsnap now;
    dir_snap(dir, &now);
    ck_assert_msg(now.n == before->n, "%s: %d files, %d before", after, now.n, before->n);
    for (int i = 0; i < before->n; i++) {
        int k = 0;
        while (k < now.n && strcmp(now.name[k], before->name[i]) != 0)
            k++;
        ck_assert_msg(k < now.n, "%s: %s is gone", after, before->name[i]);
        ck_assert_msg(now.len[k] == before->len[i] &&
                          memcmp(now.data[k], before->data[i], now.len[k]) == 0,
                      "%s: %s changed", after, before->name[i]);
        ck_assert_msg(now.mtime[k].tv_sec == before->mtime[i].tv_sec &&
                          now.mtime[k].tv_nsec == before->mtime[i].tv_nsec,
                      "%s: %s was written", after, before->name[i]);
        free(now.data[k]);
    }
}

static void snap_free(struct dirsnap *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
}

/* ------------------------------------------------------------ cat */

/* cat --raw is what the library shows after recovery: whole, and in
 * pieces that start and end inside chunks and cross their borders. The
 * log is needed for it (the files alone differ), its last transaction,
 * cut short, is left out, and the store is not touched. */
START_TEST(test_lrvmutl_cat_is_what_recovery_leaves)
{
    make_store();
    struct dirsnap before;
    dir_snap(store, &before);
    static const struct { const char *name; size_t size; } segs[] = {
        { "plain", PLAIN_SIZE }, { "small", SMALL_SIZE }, { "heap", HEAP_SIZE },
        { QUOTED, 4096 },
    };
    struct run r;
    for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
        unsigned char *want = as_the_library_shows(segs[i].name, segs[i].size);
        LRVMUTL(&r, "cat", store, segs[i].name, "--raw");
        ck_assert_msg(r.status == 0, "%s: status %d: %s", segs[i].name, r.status, r.err);
        ck_assert_uint_eq(r.len, segs[i].size);
        ck_assert_msg(memcmp(r.out, want, segs[i].size) == 0,
                      "cat --raw of %s is not what recovery leaves", segs[i].name);
        size_t flen;
        char seg[300];
        snprintf(seg, sizeof seg, "%s.seg", segs[i].name);
        char *file = tu_read_whole(tu_path(store, seg), &flen);
        ck_assert_msg(memcmp(file, want, segs[i].size) != 0,
                      "%s: the file already holds what the log would bring", segs[i].name);
        free(file);
        run_free(&r);
        free(want);
    }

    unsigned char *want = as_the_library_shows("plain", PLAIN_SIZE);
    /* The transaction of BIG_LEN bytes is there, the one cut short not. */
    ck_assert_int_eq(want[BIG_OFF], pat(5, 0));
    ck_assert_int_eq(want[50], pat(4, 0));
    ck_assert_int_eq(want[49], pat(1, 49));
    ck_assert_int_eq(want[200], 0);
    ck_assert_int_eq(want[300], pat(3, 0));
    static const struct { const char *off, *len; size_t o, n; } cuts[] = {
        { "0", "1", 0, 1 },
        { "65535", "2", 65535, 2 },
        { "61000", "70000", 61000, 70000 },
        { "0x10000", NULL, 65536, PLAIN_SIZE - 65536 },
        { "131071", "0", 131071, 0 },
        { "196607", NULL, PLAIN_SIZE - 1, 1 },
        { "196608", NULL, PLAIN_SIZE, 0 },
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i].len != NULL)
            LRVMUTL(&r, "cat", store, "plain", cuts[i].off, cuts[i].len, "--raw");
        else
            LRVMUTL(&r, "cat", store, "plain", cuts[i].off, "--raw");
        ck_assert_msg(r.status == 0, "cat %s %s: %s", cuts[i].off, cuts[i].len, r.err);
        ck_assert_uint_eq(r.len, cuts[i].n);
        ck_assert_msg(memcmp(r.out, want + cuts[i].o, cuts[i].n) == 0, "cat %s %s", cuts[i].off,
                      cuts[i].len);
        run_free(&r);
    }
    free(want);
    assert_unchanged(store, &before, "cat");
    snap_free(&before);
}
END_TEST

/* The hexdump: hexdump -C's lines, a repeat as '*', the end offset. */
START_TEST(test_lrvmutl_cat_hexdump)
{
    make_store();
    struct run r;
    LRVMUTL(&r, "cat", store, "small");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out,
        "00000000  70 65 72 73 69 73 74 65  6e 74 0a 00 00 00 00 00  |persistent......|\n"
        "00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
        "00000020  00 00 00 00 00 00 00 00  ff ff ff ff ff ff ff ff  |................|\n"
        "00000030  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
        "*\n"
        "00000060\n");
    run_free(&r);
    /* From an offset: lines start there; a short last line is padded. */
    LRVMUTL(&r, "cat", store, "small", "3", "0x14");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out,
        "00000003  73 69 73 74 65 6e 74 0a  00 00 00 00 00 00 00 00  |sistent.........|\n"
        "00000013  00 00 00 00                                       |....|\n"
        "00000017\n");
    run_free(&r);
    /* Across a chunk of the tool's: the same lines as one read. */
    LRVMUTL(&r, "cat", store, "plain", "65520", "32");
    ck_assert_int_eq(r.status, 0);
    unsigned char *want = as_the_library_shows("plain", PLAIN_SIZE);
    char line[2][100];
    for (int k = 0; k < 2; k++) {
        int n = snprintf(line[k], sizeof line[k], "%08x", 65520 + 16 * k);
        for (int i = 0; i < 16; i++)
            n += snprintf(line[k] + n, sizeof line[k] - (size_t)n, "%s%02x", i % 8 ? " " : "  ",
                          want[65520 + 16 * k + i]);
        ck_assert_has(r.out, line[k]);
    }
    ck_assert_has(r.out, "\n00010010\n");
    free(want);
    run_free(&r);
}
END_TEST

START_TEST(test_lrvmutl_cat_refuses_what_is_not_there)
{
    make_store();
    struct dirsnap before;
    dir_snap(store, &before);
    struct run r;
    LRVMUTL(&r, "cat", store, "small", "97");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "OFFSET 97 is past the end of segment small (96 bytes)");
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "90", "7");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "OFFSET 90 + LENGTH 7 is past the end of segment small (96 bytes)");
    ck_assert_uint_eq(r.len, 0);
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "18446744073709551615", "2");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "-1");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "unexpected argument: -1");
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "--", "-1");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "not a byte count: -1");
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "12abc");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    LRVMUTL(&r, "cat", store, "nosuch");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "no segment nosuch in this store");
    run_free(&r);
    LRVMUTL(&r, "cat", store, "small", "--json");
    ck_assert_int_eq(r.status, 2);
    ck_assert_has(r.err, "unexpected argument: --json");
    run_free(&r);
    LRVMUTL(&r, "cat", store);
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    assert_unchanged(store, &before, "cat refused");
    snap_free(&before);
}
END_TEST

/* ------------------------------------------------------------ heap */

/* heap --json: the header, blocks that tile the heap, lists that hold
 * exactly the free blocks (each in a bin of its size), the root, the
 * verdict; all of them as the heap is after recovery (the log holds
 * its changes), as a recovered copy shows. */
START_TEST(test_lrvmutl_heap_walks_the_recovered_heap)
{
    make_store();
    struct dirsnap before;
    dir_snap(store, &before);
    struct run r;
    struct jv d;
    LRVMUTL(&r, "heap", store, "heap", "--json");
    ck_assert_msg(r.status == 0, "status %d: %s\n%s", r.status, r.err, r.out);
    json_of(&r, "heap", &d);
    ck_assert_str_eq(jstr(&d, "segment"), "heap");
    ck_assert_uint_eq(jnum(&d, "file_bytes"), HEAP_SIZE);
    ck_assert_uint_gt(jnum(&d, "log_ranges"), 0);            /* the log was needed */
    const struct jv *hd = jget(&d, "heap");
    ck_assert_uint_eq(jnum(hd, "format"), 4);
    ck_assert_uint_eq(jnum(hd, "size"), HEAP_SIZE);

    /* The library's view, from a recovered copy. */
    const char *copy = recovered_copy();
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_open(copy, &o, &s), 0);
    ck_assert_int_eq(lrvm_heap_open(s, "heap", HEAP_SIZE, &h), 0);
    unsigned char *base = lrvm_heap_base(h);
    ck_assert_uint_eq(jnum(hd, "base"), (uint64_t)(uintptr_t)base);
    ck_assert_uint_eq(jnum(hd, "root"), (uint64_t)((unsigned char *)lrvm_heap_root(h) - base));
    uint64_t used_blocks, free_bytes;
    lrvm__heap_usage(h, &used_blocks, &free_bytes);
    ck_assert_int_eq(lrvm_close(s), 0);

    /* Blocks: from the first to the epilogue, back to back. */
    const struct jv *blocks = jarr(&d, "blocks");
    uint64_t at = 4104, used = 0, used_bytes = 0, nfree = 0, root_block = 0;
    for (size_t i = 0; i < blocks->n; i++) {
        const struct jv *b = &blocks->kids[i];
        ck_assert_uint_eq(jnum(b, "offset"), at);
        const char *state = jstr(b, "state");
        ck_assert_msg(strcmp(state, "used") == 0 || strcmp(state, "free") == 0, "%s", state);
        if (strcmp(state, "used") == 0) {
            used++;
            used_bytes += jnum(b, "size");
            root_block |= at + 8 == jnum(hd, "root");
        } else {
            nfree++;
        }
        at += jnum(b, "size");
    }
    ck_assert_uint_eq(at, (HEAP_SIZE & ~(uint64_t)15) - 8);
    ck_assert_int_eq(jget(&d, "blocks_end")->type, J_NULL);
    ck_assert_uint_eq(used, NALLOC - 3);                     /* 1, 5 and 7 freed */
    ck_assert_uint_eq(used, used_blocks);
    ck_assert_uint_eq(used, jnum(&d, "used_blocks"));
    ck_assert_uint_eq(used_bytes, jnum(hd, "allocated"));
    ck_assert_uint_eq(used_bytes, jnum(&d, "used_bytes"));
    ck_assert_uint_eq(jnum(&d, "free_bytes"), free_bytes);
    ck_assert_uint_eq(nfree, jnum(&d, "free_blocks"));
    ck_assert_uint_ge(nfree, 3);
    ck_assert_msg(root_block, "the root is no used block's payload");

    /* Lists: each free block once, in a bin that fits its size. */
    const struct jv *lists = jarr(&d, "free_lists");
    uint64_t listed = 0;
    for (size_t i = 0; i < lists->n; i++) {
        const struct jv *l = &lists->kids[i], *offs = jarr(l, "blocks");
        ck_assert_uint_gt(offs->n, 0);
        for (size_t k = 0; k < offs->n; k++) {
            ck_assert_int_eq(offs->kids[k].type, J_NUM);
            size_t b = 0;
            while (b < blocks->n && jnum(&blocks->kids[b], "offset") != offs->kids[k].num)
                b++;
            ck_assert_msg(b < blocks->n, "listed %" PRIu64 " is no block", offs->kids[k].num);
            ck_assert_str_eq(jstr(&blocks->kids[b], "state"), "free");
            uint64_t size = jnum(&blocks->kids[b], "size");
            ck_assert_uint_ge(size, jnum(l, "min_size"));
            ck_assert_uint_le(size, jnum(l, "max_size"));
            listed++;
        }
    }
    ck_assert_uint_eq(listed, nfree);
    ck_assert_int_eq(jget(&d, "free_lists_end")->type, J_NULL);
    ck_assert_str_eq(jstr(&d, "check"), "ok");
    uint64_t first_size = jnum(&blocks->kids[0], "size");
    jv_free(&d);

    /* The same walk in the recovered copy, whose log is empty. */
    struct run again;
    LRVMUTL(&again, "heap", copy, "heap", "--json");
    ck_assert_int_eq(again.status, 0);
    const char *from = strstr(r.out, "\"blocks\": ["), *to = strstr(r.out, "\"check\"");
    ck_assert_ptr_nonnull(from);
    ck_assert_ptr_nonnull(to);
    ck_assert_msg(strstr(again.out, "\"log_ranges\": 0,") != NULL, "%s", again.out);
    char *part = strndup(from, (size_t)(to - from));
    ck_assert_msg(strstr(again.out, part) != NULL, "the walk differs after recovery:\n%s\n%s",
                  r.out, again.out);
    free(part);
    run_free(&again);
    run_free(&r);

    /* The text says the same. */
    LRVMUTL(&r, "heap", store, "heap");
    ck_assert_int_eq(r.status, 0);
    char line[128];
    snprintf(line, sizeof line, "  %" PRIu64 " blocks: %" PRIu64 " used (%" PRIu64 " bytes), ",
             used + nfree, used, used_bytes);
    ck_assert_has(r.out, line);
    ck_assert_has(r.out, "\ncheck: ok: lrvm_heap_open would accept it");
    snprintf(line, sizeof line, "  %16d %16" PRIu64 "  used\n", 4104, first_size);
    ck_assert_has(r.out, line);
    run_free(&r);
    assert_unchanged(store, &before, "heap");
    snap_free(&before);
}
END_TEST

/* A heap whose block header was overwritten fails (exit 1), says where
 * its walk stopped, and --json says "failed"; a segment that holds no
 * heap fails too, and one that does not exist is a usage error. */
START_TEST(test_lrvmutl_heap_damaged_and_no_heap)
{
    make_store();
    const char *copy = recovered_copy();
    struct run r;
    uint64_t garbage = 0x123456789abcdef0ull;
    ck_assert_int_eq(tu_write(tu_path(copy, "heap.seg"), &garbage, 8, 4104), 0);
    LRVMUTL(&r, "heap", copy, "heap");
    ck_assert_int_eq(r.status, 1);
    ck_assert_has(r.out, "the walk stops at offset 4104: ");
    ck_assert_has(r.out, "check: FAILED");
    ck_assert_has(r.err, "the heap in segment heap fails its checks");
    run_free(&r);
    struct jv d;
    LRVMUTL(&r, "heap", copy, "heap", "--json");
    ck_assert_int_eq(r.status, 1);
    json_of(&r, "heap", &d);
    ck_assert_str_eq(jstr(&d, "check"), "failed");
    ck_assert_uint_eq(jnum(jget(&d, "blocks_end"), "offset"), 4104);
    ck_assert_uint_eq(jnum(&d, "block_count"), 0);
    ck_assert_str_eq(jstr(jget(&d, "error"), "code"), "LRVM_ECORRUPT");
    jv_free(&d);
    run_free(&r);

    /* The header's magic overwritten: no heap at all. */
    ck_assert_int_eq(tu_write(tu_path(copy, "heap.seg"), &garbage, 8, 0), 0);
    LRVMUTL(&r, "heap", copy, "heap");
    ck_assert_int_eq(r.status, 1);
    ck_assert_has(r.err, "segment heap holds no heap");
    run_free(&r);

    LRVMUTL(&r, "heap", store, "plain");
    ck_assert_int_eq(r.status, 1);
    ck_assert_has(r.err, "segment plain holds no heap");
    run_free(&r);
    LRVMUTL(&r, "heap", store, "plain", "--json");
    ck_assert_int_eq(r.status, 1);
    json_of(&r, "heap", &d);
    ck_assert_int_eq(jget(&d, "heap")->type, J_NULL);
    ck_assert_has(jstr(jget(&d, "error"), "message"), "holds no heap");
    jv_free(&d);
    run_free(&r);
    LRVMUTL(&r, "heap", store, "nosuch", "--json");
    ck_assert_int_eq(r.status, 2);
    json_of(&r, "heap", &d);
    ck_assert_has(jstr(jget(&d, "error"), "message"), "no segment nosuch");
    jv_free(&d);
    run_free(&r);
}
END_TEST

/* A free block's link overwritten with the offset of a used block: the
 * lists' walk stops at that link, and the check fails. */
START_TEST(test_lrvmutl_heap_bad_link)
{
    make_store();
    const char *copy = recovered_copy();
    struct run r;
    struct jv d;
    LRVMUTL(&r, "heap", copy, "heap", "--json");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "heap", &d);
    const struct jv *lists = jarr(&d, "free_lists");
    ck_assert_uint_gt(lists->n, 0);
    uint64_t first = jarr(&lists->kids[0], "blocks")->kids[0].num;
    uint64_t bin = jnum(&lists->kids[0], "bin");
    uint64_t used_at = 4104;                            /* b[0], never freed */
    jv_free(&d);
    run_free(&r);
    ck_assert_int_eq(tu_write(tu_path(copy, "heap.seg"), &used_at, 8, first + 8), 0);
    LRVMUTL(&r, "heap", copy, "heap", "--json");
    ck_assert_int_eq(r.status, 1);
    json_of(&r, "heap", &d);
    const struct jv *end = jget(&d, "free_lists_end");
    ck_assert_int_eq(end->type, J_OBJ);
    ck_assert_uint_eq(jnum(end, "link"), used_at);
    ck_assert_uint_eq(jnum(end, "bin"), bin);
    ck_assert_str_eq(jstr(&d, "check"), "failed");
    jv_free(&d);
    run_free(&r);
}
END_TEST

/* ------------------------------------------------------------ --json */

/* info, verify and dump: one document each, the figures the store
 * holds, and nothing written. */
START_TEST(test_lrvmutl_json_info_verify_dump)
{
    make_store();
    struct dirsnap before;
    dir_snap(store, &before);
    struct records recs;
    struct lrvm__scan_result res;
    scan_log(store, &recs, &res);
    struct run r;
    struct jv d;

    LRVMUTL(&r, "info", store, "--json");
    ck_assert_msg(r.status == 0, "%s", r.err);
    json_of(&r, "info", &d);
    ck_assert_str_eq(jstr(&d, "store"), store);
    ck_assert_int_eq(jbool(&d, "in_use"), 0);
    /* The tracker auto mode takes here, as a store opened here gets it. */
    ck_assert_int_eq(jbool(&d, "uffd_tracker_offered"), tu_uffd_offered());
    ck_assert_str_eq(jstr(&d, "auto_tracker"),
                     tu_auto_tracker() == LRVM_TRACK_UFFD ? "uffd" : "mprotect");
    const struct jv *log = jget(&d, "log");
    ck_assert_str_eq(jstr(log, "file"), "lrvm.log");
    ck_assert_uint_eq(jnum(log, "bytes"), (uint64_t)tu_file_size(tu_path(store, "lrvm.log")));
    ck_assert_uint_eq(jnum(log, "format"), 3);
    ck_assert_uint_eq(jnum(log, "start"), 4096);
    ck_assert_int_eq(jget(log, "next")->type, J_NULL);     /* no truncation was running */
    ck_assert_uint_eq(jnum(&d, "valid_records"), res.sr_records);
    ck_assert_uint_eq(jnum(&d, "complete_transactions"), res.sr_txs);
    ck_assert_uint_eq(jnum(&d, "first_txno_replayed"), jnum(log, "first_txno"));
    ck_assert_uint_eq(jnum(&d, "last_txno_replayed"), jnum(log, "first_txno") + res.sr_txs - 1);
    ck_assert_uint_eq(jnum(&d, "replay_bytes"), res.sr_end - 4096);
    ck_assert_uint_eq(jnum(&d, "scan_end"), res.sr_scan_end);
    ck_assert_uint_eq(jnum(&d, "unfinished_bytes"), res.sr_scan_end - res.sr_end);
    ck_assert_uint_gt(jnum(&d, "unfinished_bytes"), 0);
    ck_assert_str_eq(jstr(&d, "stop"), "no record");
    const struct jv *segs = jarr(&d, "segments");
    ck_assert_uint_eq(segs->n, 4);
    int seen = 0;
    uint64_t plain_ranges = 0, plain_bytes = 0;
    for (size_t i = 0; i < segs->n; i++) {
        const struct jv *s = &segs->kids[i];
        const char *name = jstr(s, "name");
        if (strcmp(name, "plain") == 0) {
            seen |= 1;
            ck_assert_uint_eq(jnum(s, "file_bytes"), PLAIN_SIZE);
            /* Every valid record's, the unfinished transaction's too. */
            plain_ranges = jnum(s, "log_ranges");
            plain_bytes = jnum(s, "log_bytes");
            ck_assert_uint_gt(plain_bytes, 300 + BIG_LEN);
            ck_assert_int_eq(jget(s, "heap")->type, J_NULL);
        } else if (strcmp(name, "heap") == 0) {
            seen |= 2;
            const struct jv *h = jget(s, "heap");
            ck_assert_uint_eq(jnum(h, "size"), HEAP_SIZE);
            ck_assert_str_eq(jstr(h, "check"), "not checked");   /* the log is not empty */
            ck_assert_int_eq(jget(h, "used_blocks")->type, J_NULL);
        } else if (strcmp(name, QUOTED) == 0) {
            seen |= 4;
            ck_assert_uint_eq(jnum(s, "log_ranges"), 1);
            ck_assert_uint_eq(jnum(s, "log_bytes"), 5);
            ck_assert(!jhas(s, "name_hex"));
        } else {
            ck_assert_str_eq(name, "small");
            seen |= 8;
        }
    }
    ck_assert_int_eq(seen, 15);
    jv_free(&d);
    run_free(&r);

    LRVMUTL(&r, "verify", store, "--json");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "verify", &d);
    ck_assert_int_eq(jbool(&d, "ok"), 1);
    ck_assert_uint_eq(jnum(&d, "complete_transactions"), res.sr_txs);
    ck_assert_int_eq(jbool(&d, "heaps_checked"), 0);
    jv_free(&d);
    run_free(&r);
    /* In the recovered copy the heaps are checked. */
    const char *copy = recovered_copy();
    LRVMUTL(&r, "verify", copy, "--json");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "verify", &d);
    ck_assert_int_eq(jbool(&d, "heaps_checked"), 1);
    const struct jv *heaps = jarr(&d, "heaps");
    ck_assert_uint_eq(heaps->n, 1);
    ck_assert_str_eq(jstr(&heaps->kids[0], "name"), "heap");
    ck_assert_int_eq(jbool(&heaps->kids[0], "ok"), 1);
    jv_free(&d);
    run_free(&r);

    LRVMUTL(&r, "dump", store, "--json", "--data");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "dump", &d);
    const struct jv *rs = jarr(&d, "records");
    ck_assert_uint_eq(rs->n, recs.n);
    ck_assert_uint_eq(jnum(&d, "valid_records"), recs.n);
    ck_assert_uint_eq(jnum(&d, "complete_transactions"), res.sr_txs);
    ck_assert_uint_eq(jnum(&d, "scan_end"), res.sr_scan_end);
    uint64_t ranges = 0, dumped_ranges = 0, dumped_bytes = 0;
    int found_first = 0, found_quoted = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const struct jv *rec = &rs->kids[i], *rr = jarr(rec, "ranges");
        ck_assert_uint_eq(jnum(rec, "offset"), recs.off[i]);
        ck_assert_uint_eq(jnum(rec, "txno"), recs.txno[i]);
        ck_assert_int_eq(jbool(rec, "commit"), recs.commit[i]);
        ck_assert_int_eq(jbool(rec, "malformed"), 0);
        ranges += rr->n;
        for (size_t k = 0; k < rr->n; k++) {
            const struct jv *g = &rr->kids[k];
            const char *data = jstr(g, "data");
            uint64_t len = jnum(g, "length");
            ck_assert_uint_eq(strlen(data), 2 * (len < 32 ? len : 32));
            if (strcmp(jstr(g, "segment"), "plain") == 0) {
                dumped_ranges++;
                dumped_bytes += len;
            }
            if (strcmp(jstr(g, "segment"), "plain") == 0 && jnum(g, "offset") == 0) {
                char want[8];
                snprintf(want, sizeof want, "%02x%02x", pat(1, 0), pat(1, 1));
                ck_assert_int_eq(strncmp(data, want, 4), 0);
                found_first = 1;
            }
            if (strcmp(jstr(g, "segment"), QUOTED) == 0) {
                ck_assert_str_eq(data, "71756f7465");        /* "quote" */
                found_quoted = 1;
            }
        }
    }
    ck_assert(found_first && found_quoted);
    ck_assert_uint_eq(jnum(&d, "range_count"), ranges);
    ck_assert_uint_eq(dumped_ranges, plain_ranges);
    ck_assert_uint_eq(dumped_bytes, plain_bytes);
    jv_free(&d);
    run_free(&r);
    assert_unchanged(store, &before, "info, verify and dump --json");
    snap_free(&before);
}
END_TEST

/* Names hold any byte but NUL and '/': a quote, a backslash, control
 * bytes and bytes that are no UTF-8 come back from the document as they
 * are, or (not UTF-8) through their _hex member. */
START_TEST(test_lrvmutl_json_names_round_trip)
{
    make_store();
    static const char *const odd[] = {
        "tab\there", "ctl\001\037\177", "back\\slash\"quote", "caf\xc3\xa9", "bad\xff\xc3",
        "nl\nx",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.seg", odd[i]);
        int fd = open(tu_path(store, name), O_WRONLY | O_CREAT | O_EXCL, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        close(fd);
    }
    struct run r;
    struct jv d;
    LRVMUTL(&r, "info", store, "--json");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "info", &d);
    const struct jv *segs = jarr(&d, "segments");
    ck_assert_uint_eq(segs->n, 4 + sizeof odd / sizeof odd[0]);
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        size_t k = 0, n = strlen(odd[i]);
        int utf8 = strstr(odd[i], "\xff") == NULL;
        for (; k < segs->n; k++) {
            const struct jv *s = &segs->kids[k];
            if (utf8 && strcmp(jstr(s, "name"), odd[i]) == 0) {
                ck_assert(!jhas(s, "name_hex"));
                break;
            }
            if (!utf8 && jhas(s, "name_hex")) {
                char hex[64] = "";
                for (size_t b = 0; b < n; b++)
                    snprintf(hex + 2 * b, sizeof hex - 2 * b, "%02x", (unsigned char)odd[i][b]);
                ck_assert_str_eq(jstr(s, "name_hex"), hex);
                ck_assert_str_eq(jstr(s, "name"), "bad\xef\xbf\xbd\xef\xbf\xbd");  /* U+FFFD */
                break;
            }
        }
        ck_assert_msg(k < segs->n, "name %zu is not in the document:\n%s", i, r.out);
    }
    /* No control byte reached the document as it is. */
    for (size_t i = 0; i < r.len; i++)
        ck_assert_msg((unsigned char)r.out[i] >= 0x20 || r.out[i] == '\n',
                      "byte 0x%02x at %zu", (unsigned char)r.out[i], i);
    jv_free(&d);
    run_free(&r);

    /* A store in a directory whose own name is odd. */
    char odd_dir[4200];
    snprintf(odd_dir, sizeof odd_dir, "%s/st\"o\\re\001", tu_dir);
    ck_assert_int_eq(rename(store, odd_dir), 0);
    LRVMUTL(&r, "verify", odd_dir, "--json");
    ck_assert_int_eq(r.status, 0);
    json_of(&r, "verify", &d);
    ck_assert_str_eq(jstr(&d, "store"), odd_dir);
    jv_free(&d);
    run_free(&r);
}
END_TEST

/* A failure is a document too: its status, its message, the code and
 * offset when the log is refused; a usage error as well. */
START_TEST(test_lrvmutl_json_on_failure)
{
    make_store();
    struct run r;
    struct jv d;
    char nowhere[4200];
    snprintf(nowhere, sizeof nowhere, "%s/none", tu_dir);
    ck_assert_int_eq(mkdir(nowhere, 0700), 0);
    static const char *const cmds[] = { "info", "verify", "dump" };
    for (size_t i = 0; i < 3; i++) {
        LRVMUTL(&r, cmds[i], nowhere, "--json");
        ck_assert_int_eq(r.status, 2);
        json_of(&r, cmds[i], &d);
        ck_assert_has(jstr(jget(&d, "error"), "message"), "not an lrvm store");
        jv_free(&d);
        run_free(&r);
    }
    LRVMUTL(&r, "heap", nowhere, "x", "--json");
    ck_assert_int_eq(r.status, 2);
    json_of(&r, "heap", &d);
    jv_free(&d);
    run_free(&r);

    /* A valid record that names bytes past its segment: refused. */
    struct records recs;
    struct lrvm__scan_result res;
    scan_log(store, &recs, &res);
    ck_assert_int_eq(truncate(tu_path(store, "small.seg"), 16), 0);
    for (size_t i = 0; i < 3; i++) {
        LRVMUTL(&r, cmds[i], store, "--json");
        json_of(&r, cmds[i], &d);
        if (i < 2) {
            ck_assert_int_eq(r.status, 1);
            const struct jv *e = jget(&d, "error");
            ck_assert_str_eq(jstr(e, "code"), "LRVM_ECORRUPT");
            ck_assert_has(jstr(e, "message"), "past the end of its segment file");
            uint64_t at = jnum(e, "offset");
            size_t k = 0;
            while (k < recs.n && recs.off[k] != at)
                k++;
            ck_assert_msg(k < recs.n, "offset %" PRIu64 " is no record", at);
        } else {
            ck_assert_int_eq(r.status, 0);           /* dump does not check ranges */
        }
        jv_free(&d);
        run_free(&r);
    }
    LRVMUTL(&r, "heap", store, "heap", "--json");
    ck_assert_int_eq(r.status, 1);
    json_of(&r, "heap", &d);
    ck_assert_str_eq(jstr(jget(&d, "error"), "code"), "LRVM_ECORRUPT");
    jv_free(&d);
    run_free(&r);
    LRVMUTL(&r, "cat", store, "plain");
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(r.len, 0);
    run_free(&r);

    LRVMUTL(&r, "info", store, "surplus", "--json");
    ck_assert_int_eq(r.status, 2);
    json_of(&r, "info", &d);
    ck_assert_int_eq(jget(&d, "store")->type, J_NULL);
    ck_assert_has(jstr(jget(&d, "error"), "message"), "unexpected argument: surplus");
    jv_free(&d);
    run_free(&r);
    LRVMUTL(&r, "heap", store, "--json");
    ck_assert_int_eq(r.status, 2);
    json_of(&r, "heap", &d);
    jv_free(&d);
    run_free(&r);
}
END_TEST

int main(void)
{
    find_python();
    Suite *s = suite_create("lrvmutl");
    TCase *tc = tu_tcase("cat", 60);
    tcase_add_test(tc, test_lrvmutl_cat_is_what_recovery_leaves);
    tcase_add_test(tc, test_lrvmutl_cat_hexdump);
    tcase_add_test(tc, test_lrvmutl_cat_refuses_what_is_not_there);
    suite_add_tcase(s, tc);
    tc = tu_tcase("heap", 60);
    tcase_add_test(tc, test_lrvmutl_heap_walks_the_recovered_heap);
    tcase_add_test(tc, test_lrvmutl_heap_damaged_and_no_heap);
    tcase_add_test(tc, test_lrvmutl_heap_bad_link);
    suite_add_tcase(s, tc);
    tc = tu_tcase("json", 60);
    tcase_add_test(tc, test_lrvmutl_json_info_verify_dump);
    tcase_add_test(tc, test_lrvmutl_json_names_round_trip);
    tcase_add_test(tc, test_lrvmutl_json_on_failure);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
