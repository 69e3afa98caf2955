/*
 * phonebook -- a phone book kept in a uthash table, made persistent by
 * lrvm without touching uthash and without declaring a single store.
 *
 * uthash (uthash-dev) is a header of macros that third-party C code uses
 * for hash tables; it is included here unmodified. The table code is
 * written as it would be in malloc'ed memory. What made it persistent:
 * uthash_malloc and uthash_free name lrvm_malloc and lrvm_free on the
 * store's heap, and so does the program's own allocation of a person; the
 * store and its heap are opened, and the book (uthash's head) is found
 * again through the heap's root; each command ends with lrvm_sync where a
 * program would save (README.md shows these lines). Every store the
 * program and uthash make lies outside any transaction, in the ambient
 * epoch (lrvm.h, "Tracking modes"), heap calls included: auto mode
 * captures them, and lrvm_sync commits them all at once. A crash between
 * two saves, kill -9 included, leaves the book of the last save, whole.
 *
 * What check verifies after a restart:
 *   - the table passes uthash's own consistency check, HASH_FSCK, compiled
 *     in by HASH_DEBUG (bucket chains and counts, the order list, the item
 *     count), and HASH_FIND finds every person in it by name, which
 *     HASH_FSCK does not test;
 *   - on a book made by torture, that it holds exactly the people of the
 *     last save that returned. torture's history is a function of a seed
 *     and the number of the save, both in the book and saved in the same
 *     commit as the people, so check can play it again in plain memory.
 *     The number alone would not catch a lost save (the book would look
 *     like the save before it), so torture writes the number of each save
 *     to DIR/phonebook.saved after lrvm_sync returns: the book must hold
 *     that save, or the next one when the process died while saving it.
 *     That file is not synced: it is exact for kill -9, which leaves the
 *     page cache, not for a power cut.
 * The hidden --selftest=lose|half|fsck of torture makes each of these
 * checks fail on purpose (tests/phonebook.sh asserts that it does).
 *
 * Exit status: 0 done; 1 the store has a problem (a check failed, the
 * store refused); 2 bad usage or a system error; 3 no such name.
 */
#include "lrvm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static lrvm_t      *store;
static lrvm_heap_t *heap;

static void out_of_heap(void);

/* uthash allocates its table and bucket arrays with these; they must live
 * in the heap with the people that point into them. */
#define uthash_malloc(size)    lrvm_malloc(heap, (size))
#define uthash_free(ptr, size) lrvm_free(heap, (ptr))
/* Without HASH_NONFATAL_OOM, uthash calls this when an allocation fails
 * and expects no return. */
#define uthash_fatal(msg)      out_of_heap()
/* HASH_DEBUG also runs HASH_FSCK after every add and delete, a walk of
 * the whole table: nothing at torture's few hundred people, quadratic in
 * a fill of tens of thousands. */
#define HASH_DEBUG 1
#include <uthash.h>

/* uthash's HASH_OOPS exits with status 255 at its first finding. Counting
 * the findings instead keeps this program's exit status and lets check
 * print all of them. */
static unsigned fsck_findings;
static void oops(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#undef HASH_OOPS
#define HASH_OOPS(...) oops(__VA_ARGS__)

#define HEAP_SIZE ((size_t)8 << 20)
/* torture's store truncates its log often, so that kills land in
 * truncations too. */
#define TORTURE_TRUNCATE ((size_t)1 << 20)

/* ---------------------------------------------------- the legacy code */

struct person {
    char           name[48];
    char           phone[24];
    UT_hash_handle hh;
};

/* The heap's root. torture's fields stay 0 in a book made by hand. */
struct book {
    struct person *people;      /* uthash's head */
    uint64_t       saves;       /* torture: the number of the last save */
    uint64_t       seed;        /* torture: its history; 0 in other books */
};

static struct book *book;

static struct person *find_person(const char *name)
{
    struct person *p;
    HASH_FIND_STR(book->people, name, p);
    return p;
}

/* Adds NAME, or gives NAME a new phone; returns 1 if NAME was new. */
static int add_person(const char *name, const char *phone)
{
    struct person *p = find_person(name);
    int added = p == NULL;
    if (added) {
        if ((p = lrvm_malloc(heap, sizeof *p)) == NULL)
            out_of_heap();
        snprintf(p->name, sizeof p->name, "%s", name);
        HASH_ADD_STR(book->people, name, p);
    }
    snprintf(p->phone, sizeof p->phone, "%s", phone);
    return added;
}

static int delete_person(const char *name)
{
    struct person *p = find_person(name);
    if (p == NULL)
        return -1;
    HASH_DEL(book->people, p);
    lrvm_free(heap, p);
    return 0;
}

static int by_name(const struct person *a, const struct person *b)
{
    return strcmp(a->name, b->name);
}

static void sort_book(void)
{
    HASH_SORT(book->people, by_name);
}

/* ---------------------------------------------------- persistence */

static void oops(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("HASH_FSCK: ");
    vprintf(fmt, ap);
    va_end(ap);
    fsck_findings++;
}

/* Refusals that say something about the store itself are status 1; the
 * rest (a missing directory, a kernel without the tracker asked for)
 * are the caller's or the system's. */
static int status_of(int rc)
{
    return rc == LRVM_ECORRUPT || rc == LRVM_EVERSION || rc == LRVM_EFAILED ? 1 : 2;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "phonebook: %s: %s\n", what, lrvm_strerror(rc));
    exit(status_of(rc));
}

/* Nothing since the last save is kept: exit does not save. */
static void out_of_heap(void)
{
    fprintf(stderr, "phonebook: out of heap space (lrvm_malloc: %s); the book stays as "
                    "it was at the last save\n", lrvm_strerror(lrvm_last_error()));
    exit(1);
}

/* A table uthash found broken during a command is not saved over the
 * last good one. */
static void save(void)
{
    if (fsck_findings != 0) {
        printf("phonebook: the table fails uthash's HASH_FSCK (%u findings above): "
               "not saved\n", fsck_findings);
        exit(1);
    }
    int rc = lrvm_sync(store);
    if (rc != 0)
        die("save (lrvm_sync)", rc);
}

/* LRVM_TRACKING picks the tracker as it does for rvm.h's programs; the
 * explicit mode is refused because nothing here declares a store. */
static int tracking(void)
{
    static const struct { const char *name; int mode; } modes[] = {
        { "auto", LRVM_TRACK_AUTO },
        { "mprotect", LRVM_TRACK_MPROTECT },
        { "uffd", LRVM_TRACK_UFFD },
    };
    const char *env = getenv("LRVM_TRACKING");
    if (env == NULL || env[0] == '\0')
        return LRVM_TRACK_AUTO;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcasecmp(env, modes[i].name) == 0)
            return modes[i].mode;
    fprintf(stderr, "phonebook: LRVM_TRACKING=%s: the phone book needs automatic capture "
                    "(auto, mprotect or uffd)\n", env);
    exit(2);
}

static void open_book(const char *dir, size_t truncate_threshold)
{
    lrvm_options_t opts = { .tracking = tracking(), .truncate_threshold = truncate_threshold };
    int rc = lrvm_open(dir, &opts, &store);
    if (rc != 0)
        die(dir, rc);
    if ((rc = lrvm_heap_open(store, "phonebook", HEAP_SIZE, &heap)) != 0)
        die("lrvm_heap_open", rc);
    book = lrvm_heap_root(heap);
    if (book == NULL) {
        if ((book = lrvm_calloc(heap, 1, sizeof *book)) == NULL)
            out_of_heap();
        if ((rc = lrvm_heap_set_root(heap, book)) != 0)
            die("lrvm_heap_set_root", rc);
        save();
    }
}

static void close_book(void)
{
    int rc = lrvm_close(store);
    if (rc != 0)
        die("lrvm_close", rc);
}

/* ---------------------------------------------------- torture's history */

/* torture's people: 512 names, each one a slot of the history. */
#define SLOTS 512
static const char *const first_names[16] = {
    "Ada", "Alan", "Barbara", "Butler", "Dennis", "Donald", "Edsger", "Frances",
    "Grace", "Jim", "John", "Ken", "Leslie", "Margaret", "Radia", "Tony",
};
static const char *const last_names[32] = {
    "Allen", "Backus", "Bartik", "Codd", "Dijkstra", "Engelbart", "Floyd", "Goldberg",
    "Gray", "Hamilton", "Hamming", "Hoare", "Hopper", "Kahan", "Kay", "Knuth",
    "Lamport", "Liskov", "Lovelace", "McCarthy", "Milner", "Naur", "Perlis", "Perlman",
    "Ritchie", "Sammet", "Stonebraker", "Tarjan", "Thompson", "Turing", "Wilkes", "Wirth",
};

/* The history's people in plain memory: a phone code per slot, 0: absent. */
static uint32_t model[SLOTS];

static void name_of(unsigned slot, char name[48])
{
    snprintf(name, 48, "%s %s", first_names[slot % 16], last_names[slot / 16 % 32]);
}

static void phone_of(uint32_t code, char phone[24])
{
    snprintf(phone, 24, "555-%03u-%04u", (unsigned)(code / 10000 % 1000),
             (unsigned)(code % 10000));
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Change J of save S; J 15 draws how many changes save S makes. */
static uint64_t draw(uint64_t seed, uint64_t s, unsigned j)
{
    return mix(seed ^ mix(s * 16 + j));
}

static unsigned changes_in(uint64_t seed, uint64_t s)
{
    return 1 + (unsigned)(draw(seed, s, 15) % 8);
}

/* Plays one change on the model, and on the book when ON_BOOK. Returns
 * whether it changed the people (a sort changes only their order). */
static int play(uint64_t r, int on_book)
{
    unsigned slot = (unsigned)(r % SLOTS);
    uint32_t code = (uint32_t)(1 + (r >> 32) % 9999999);
    char name[48], phone[24];
    name_of(slot, name);
    phone_of(code, phone);
    if ((r >> 16) % 16 == 0) {
        if (on_book)
            sort_book();
        return 0;
    }
    if (model[slot] != 0 && (r >> 24) % 2 == 0) {
        model[slot] = 0;
        if (on_book)
            delete_person(name);
    } else {
        model[slot] = code;
        if (on_book)
            add_person(name, phone);
    }
    return 1;
}

static void play_save(uint64_t seed, uint64_t s, int on_book)
{
    unsigned n = changes_in(seed, s);
    for (unsigned j = 0; j < n; j++)
        play(draw(seed, s, j), on_book);
}

static void replay(uint64_t seed, uint64_t saves)
{
    memset(model, 0, sizeof model);
    for (uint64_t s = 1; s <= saves; s++)
        play_save(seed, s, 0);
}

/* DIR/phonebook.saved holds the number of the last save that returned,
 * 8 bytes written in one pwrite; missing or short: none yet. */
static int open_saved(const char *dir, int flags)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/phonebook.saved", dir);
    return open(path, flags | O_CLOEXEC, 0600);
}

static uint64_t read_saved(const char *dir)
{
    uint64_t n = 0;
    int fd = open_saved(dir, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, &n, sizeof n, 0) != (ssize_t)sizeof n)
            n = 0;
        close(fd);
    }
    return n;
}

static void write_saved(int fd, uint64_t n)
{
    if (pwrite(fd, &n, sizeof n, 0) != (ssize_t)sizeof n) {
        perror("phonebook: phonebook.saved");
        exit(2);
    }
}

/* ---------------------------------------------------- check */

static const char *tracker_name(void)
{
    lrvm_stats_t st;
    if (lrvm_stats(store, &st) != 0)
        return "?";
    return st.tracking == LRVM_TRACK_UFFD ? "uffd" :
           st.tracking == LRVM_TRACK_MPROTECT ? "mprotect" : "explicit";
}

/* Prints what it verified when VERBOSE, each finding always (after
 * PREFIX); returns the exit status. */
static int check_book(const char *dir, int verbose, const char *prefix)
{
    fsck_findings = 0;
    HASH_FSCK(hh, book->people, "check");
    if (fsck_findings != 0) {
        printf("%sthe table fails uthash's HASH_FSCK (see above)\n", prefix);
        return 1;
    }
    unsigned n = 0;
    struct person *p, *next;
    HASH_ITER(hh, book->people, p, next) {
        if (find_person(p->name) != p) {
            printf("%s%s is in the table, but HASH_FIND does not find it\n", prefix, p->name);
            return 1;
        }
        n++;
    }
    if (verbose)
        printf("%suthash's HASH_FSCK passes: %u people in %u buckets, each found by its name\n",
               prefix, n, book->people != NULL ? book->people->hh.tbl->num_buckets : 0);
    if (book->seed == 0)
        return 0;

    uint64_t s = book->saves, returned = read_saved(dir);
    if (s < returned) {
        printf("%sLOST: the book holds save %" PRIu64 ", but save %" PRIu64 " had returned\n",
               prefix, s, returned);
        return 1;
    }
    if (s > returned + 1) {
        printf("%sUNSAVED: the book holds save %" PRIu64 ", but the last save to return "
               "was %" PRIu64 ", and no save past the next one had begun\n", prefix, s, returned);
        return 1;
    }
    if (verbose && s == returned)
        printf("%sthe book holds save %" PRIu64 ", the last save to return\n", prefix, s);
    else if (verbose)
        printf("%sthe book holds save %" PRIu64 ", under way when the process died (the "
               "last to return: %" PRIu64 ")\n", prefix, s, returned);

    replay(book->seed, s);
    unsigned want = 0, wrong = 0;
    for (unsigned slot = 0; slot < SLOTS; slot++) {
        char name[48], phone[24];
        name_of(slot, name);
        phone_of(model[slot], phone);
        p = find_person(name);
        want += model[slot] != 0;
        if (model[slot] == 0 && p != NULL)
            printf("%sWRONG: %s is in the book, not in save %" PRIu64 "\n", prefix, name, s);
        else if (model[slot] != 0 && p == NULL)
            printf("%sWRONG: %s is in save %" PRIu64 ", not in the book\n", prefix, name, s);
        else if (p != NULL && strcmp(p->phone, phone) != 0)
            printf("%sWRONG: %s has %s in the book, %s in save %" PRIu64 "\n", prefix, name,
                   p->phone, phone, s);
        else
            continue;
        wrong++;
    }
    if (wrong == 0 && n != want)
        printf("%sWRONG: %u people in the book, %u in save %" PRIu64 "\n", prefix, n, want, s);
    if (wrong != 0 || n != want)
        return 1;
    if (verbose)
        printf("%sthe people are exactly the %u of save %" PRIu64 "\n", prefix, want, s);
    return 0;
}

/* ---------------------------------------------------- torture and demo */

/* Runs until the book holds save UNTIL (0: until killed). SELFTEST breaks
 * one check's premise after that, then dies without closing. */
static int torture(const char *dir, uint64_t until, const char *selftest)
{
    open_book(dir, TORTURE_TRUNCATE);
    if (book->seed == 0) {
        if (book->people != NULL || book->saves != 0) {
            fprintf(stderr, "phonebook: %s: a book written by hand; torture needs a new "
                            "directory\n", dir);
            return 2;
        }
        book->seed = mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)) | 1;
        save();
    }
    int status = check_book(dir, 0, "torture: at start: ");
    if (status != 0)
        return status;
    int fd = open_saved(dir, O_RDWR | O_CREAT);
    if (fd < 0) {
        perror("phonebook: phonebook.saved");
        return 2;
    }
    /* The book is durable once recovered, and may hold the save that was
     * under way when the last torture died. */
    write_saved(fd, book->saves);
    replay(book->seed, book->saves);

    while (until == 0 || book->saves < until) {
        uint64_t s = book->saves + 1;
        play_save(book->seed, s, 1);
        book->saves = s;
        save();
        write_saved(fd, s);
    }

    if (selftest == NULL) {
        close(fd);
        close_book();
        return 0;
    }
    if (strcmp(selftest, "lose") == 0) {
        /* Claims the next save without making it. */
        uint64_t s = book->saves + 1;
        play_save(book->seed, s, 1);
        book->saves = s;
        write_saved(fd, s);
    } else if (strcmp(selftest, "half") == 0) {
        /* Saves part of the next save's changes, its number unchanged. */
        uint64_t s = book->saves + 1;
        unsigned j = 0;
        while (!play(draw(book->seed, s, j), 1))
            if (++j == changes_in(book->seed, s))
                s++, j = 0;
        save();
    } else if (book->people != NULL) {
        /* fsck: a bucket's count one off, as a torn save could leave it. */
        book->people->hh.tbl->buckets[0].count++;
        save();
    } else {
        fprintf(stderr, "phonebook: --selftest=fsck needs people in the book\n");
        return 2;
    }
    _exit(0);
}

static int demo(const char *dir, int kills)
{
    printf("phonebook demo in %s:\n"
           "a torture process adds, changes, deletes and sorts people in a uthash table,\n"
           "saving (lrvm_sync) after every 1 to 8 changes; it is killed with kill -9 at a\n"
           "random moment, %d times, and each restart checks the book.\n", dir, kills);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int k = 1; k <= kills; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("phonebook: fork");
            return 2;
        }
        if (pid == 0) {
            int status = torture(dir, 0, NULL);
            fflush(stdout);
            _exit(status);
        }
        long ms = 200 + rand() % 600;
        struct timespec nap = { ms / 1000, ms % 1000 * 1000000L };
        nanosleep(&nap, NULL);
        kill(pid, SIGKILL);
        int st;
        if (waitpid(pid, &st, 0) != pid) {
            perror("phonebook: waitpid");
            return 2;
        }
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            printf("the torture process ended on its own (status 0x%x)\n", (unsigned)st);
            return WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 1;
        }
        open_book(dir, 0);
        printf("kill -9 number %d, after %ld ms; lrvm_open recovered the store (%s tracker):\n",
               k, ms, tracker_name());
        int status = check_book(dir, 1, "  ");
        close_book();
        if (status != 0)
            return status;
    }
    printf("phonebook demo: %d kills, and every restart found the book of the last save "
           "that returned, whole\n", kills);
    return 0;
}

/* ---------------------------------------------------- commands */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: phonebook DIR COMMAND\n"
        "       phonebook --help | --version\n"
        "  add NAME PHONE   add NAME, or give NAME a new phone; then save\n"
        "  lookup NAME      print NAME's phone\n"
        "  delete NAME      take NAME out of the book; then save\n"
        "  list             every person, in the book's order\n"
        "  sort             put the book in order of names; then save\n"
        "  fill N           add N made-up people, then save once\n"
        "  check            run uthash's HASH_FSCK on the table and find every person\n"
        "                   by name; on a book made by torture, also check that it holds\n"
        "                   exactly the people of the last save that returned (or of the\n"
        "                   save under way when torture died)\n"
        "  torture [SAVES]  add, change, delete and sort made-up people in a new book,\n"
        "                   saving after every 1 to 8 changes, until killed (or SAVES)\n"
        "  demo [KILLS]     run torture and kill it with kill -9 at random moments, KILLS\n"
        "                   times (6), checking the book after each\n"
        "The book is a uthash table on an lrvm heap in store DIR; LRVM_TRACKING=auto,\n"
        "mprotect or uffd picks the tracker that captures its stores. Exit status: 0 done;\n"
        "1 the store has a problem (a check failed); 2 bad usage or a system error;\n"
        "3 no such name.\n");
}

/* A fresh made-up name: torture's names with a number, so that fill never
 * takes one of torture's. */
static void fill(long n)
{
    unsigned long r = (unsigned long)time(NULL) ^ (unsigned long)getpid();
    for (long i = 0; i < n; i++) {
        char name[48], phone[24];
        do {
            r = mix(r);
            snprintf(name, sizeof name, "%s %s %lu", first_names[r % 16],
                     last_names[(r >> 8) % 32], (r >> 16) % 100000);
        } while (find_person(name) != NULL);
        phone_of((uint32_t)(r >> 40), phone);
        add_person(name, phone);
    }
}

static int name_ok(const char *name)
{
    if (strlen(name) < sizeof ((struct person *)0)->name)
        return 1;
    fprintf(stderr, "phonebook: a name has at most %zu bytes\n",
            sizeof ((struct person *)0)->name - 1);
    return 0;
}

/* A torture book must stay the history's for check to mean anything. */
static int hands_off(const char *dir)
{
    if (book->seed == 0)
        return 0;
    fprintf(stderr, "phonebook: %s is torture's book; change it only with torture\n", dir);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("phonebook (lrvm) %s\n", lrvm_version());
        return 0;
    }
    if (argc < 3 || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[1], *cmd = argv[2];
    char *end;

    if (strcmp(cmd, "torture") == 0 && argc <= 5) {
        uint64_t until = 0;
        const char *selftest = NULL;
        for (int i = 3; i < argc; i++) {
            if (strncmp(argv[i], "--selftest=", 11) == 0) {
                selftest = argv[i] + 11;
                if (strcmp(selftest, "lose") != 0 && strcmp(selftest, "half") != 0 &&
                    strcmp(selftest, "fsck") != 0) {
                    fprintf(stderr, "phonebook: --selftest=lose|half|fsck\n");
                    return 2;
                }
            } else {
                errno = 0;
                until = strtoull(argv[i], &end, 10);
                if (errno != 0 || *end != '\0' || until == 0) {
                    usage(stderr);
                    return 2;
                }
            }
        }
        if (selftest != NULL && until == 0) {
            fprintf(stderr, "phonebook: --selftest needs SAVES\n");
            return 2;
        }
        return torture(dir, until, selftest);
    }
    if (strcmp(cmd, "demo") == 0 && argc <= 4) {
        long kills = argc == 4 ? strtol(argv[3], &end, 10) : 6;
        if (argc == 4 && (*end != '\0' || kills < 1 || kills > 1000)) {
            usage(stderr);
            return 2;
        }
        return demo(dir, (int)kills);
    }

    int status = 0;
    if (strcmp(cmd, "add") == 0 && argc == 5) {
        if (!name_ok(argv[3]))
            return 2;
        open_book(dir, 0);
        if (hands_off(dir))
            return 2;
        printf("%s %s\n", argv[3], add_person(argv[3], argv[4]) ? "added" : "changed");
        save();
    } else if (strcmp(cmd, "lookup") == 0 && argc == 4) {
        open_book(dir, 0);
        struct person *p = find_person(argv[3]);
        if (p != NULL)
            printf("%s\n", p->phone);
        else
            fprintf(stderr, "phonebook: %s is not in the book\n", argv[3]);
        status = p == NULL ? 3 : 0;
    } else if (strcmp(cmd, "delete") == 0 && argc == 4) {
        open_book(dir, 0);
        if (hands_off(dir))
            return 2;
        if (delete_person(argv[3]) == 0) {
            save();
        } else {
            fprintf(stderr, "phonebook: %s is not in the book\n", argv[3]);
            status = 3;
        }
    } else if (strcmp(cmd, "list") == 0 && argc == 3) {
        open_book(dir, 0);
        struct person *p, *next;
        HASH_ITER(hh, book->people, p, next)
            printf("%-40s %s\n", p->name, p->phone);
    } else if (strcmp(cmd, "sort") == 0 && argc == 3) {
        open_book(dir, 0);
        sort_book();
        save();
    } else if (strcmp(cmd, "fill") == 0 && argc == 4) {
        long n = strtol(argv[3], &end, 10);
        if (*end != '\0' || n < 0) {
            usage(stderr);
            return 2;
        }
        open_book(dir, 0);
        if (hands_off(dir))
            return 2;
        fill(n);
        save();
        printf("%u people\n", HASH_COUNT(book->people));
    } else if (strcmp(cmd, "check") == 0 && argc == 3) {
        open_book(dir, 0);
        printf("check: tracker: %s\n", tracker_name());
        status = check_book(dir, 1, "check: ");
    } else {
        usage(stderr);
        return 2;
    }
    close_book();
    return status;
}
