/*
 * fuzz_heap.c -- a libFuzzer target for the persistent heap: a heap file
 * whose words were changed (by a program's stray stores, or on disk),
 * then opened and used.
 *
 * Not part of make check. Build and run (clang, from the top directory):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -pthread \
 *       -Iinclude -Isrc src/[a-z]*.c tests/fuzz_heap.c -lsigsegv -o fuzz_heap
 *   ./fuzz_heap -max_total_time=300
 *
 * Once, the harness makes a heap of 64 KiB with blocks of many sizes, some
 * of them freed (free lists in several bins, merged neighbours), and keeps
 * its file. Each input then changes words of a copy of that file: its
 * first byte says how many changes (up to 16), each 3 bytes: a word of
 * the file, and how to change it (flip a bit, add a small number, copy
 * another word of the file, so that links point at other blocks, or
 * zero). The bytes after the changes are heap calls, each in a
 * transaction of explicit mode (libFuzzer owns SIGSEGV, so auto mode's
 * capture cannot run under it): malloc a size, free a block, realloc one.
 *
 * Oracles, beyond the sanitizers: lrvm_heap_open refuses the file or
 * opens it; a heap it opened passed lrvm__heap_check, so no call on it
 * may fail with LRVM_ECORRUPT, the check must still pass after every
 * call, and after the commit the heap must open again. lrvmutl's readers
 * of a heap file (lrvm__heap_describe, lrvm__heap_check_image, and the
 * walk of lrvmutl heap, lrvm__heap_walk_image) run on every changed
 * image: a heap that lrvm_heap_open accepts, lrvmutl must find sound,
 * with no more used bytes than the heap has, and walk whole, counting
 * what the check counts.
 *
 * Built with -DFUZZ_HEAP_CHECK_ONLY, the target stops after lrvmutl's
 * readers: the heap check alone, in memory, some hundred times faster
 * than a store per input (every store writes and scans its log).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAP_BYTES ((size_t)64 << 10)
#define SLOTS      32

static char           dir[64];
static unsigned char *template_;        /* the heap file before any change */

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_heap: %s\n", what);
        abort();
    }
}

#ifndef FUZZ_HEAP_CHECK_ONLY
static void put_file(const char *name, const void *buf, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    must(fd >= 0 && pwrite(fd, buf, n, 0) == (ssize_t)n, "cannot write the heap file");
    close(fd);
}
#endif

static void remove_store(void)
{
    static const char *const files[] = { "lrvm.log", "lrvm.lock", "heap.seg", "heap.seg.new" };
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
}

static lrvm_t *open_store(void)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = 4096,
                         .truncate_threshold = 65536 };
    lrvm_t *s;
    must(lrvm_open(dir, &o, &s) == 0, "lrvm_open");
    return s;
}

/* The template: a heap with free blocks of many sizes among used ones. */
static void make_template(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/lrvm-fuzz-heap-%d", base, (int)getpid());
    mkdir(dir, 0700);
    remove_store();
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    must(lrvm_heap_open(s, "heap", HEAP_BYTES, &h) == 0, "lrvm_heap_open (template)");
    void *hb = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    must(lrvm_begin(s, 1, &hb, &tx) == 0, "lrvm_begin (template)");
    void *p[48];
    for (int i = 0; i < 48; i++)
        must((p[i] = lrvm_malloc(h, (size_t)(16 + (i * 97) % 1500))) != NULL, "lrvm_malloc");
    for (int i = 0; i < 48; i += 3)
        lrvm_free(h, p[i]);
    for (int i = 1; i < 48; i += 6)
        lrvm_free(h, p[i]);                 /* some merge with a freed neighbour */
    must(lrvm_commit(tx, 0) == 0 && lrvm_close(s) == 0, "commit (template)");
    char path[128];
    snprintf(path, sizeof path, "%s/heap.seg", dir);
    int fd = open(path, O_RDONLY);
    must(fd >= 0 && (template_ = malloc(HEAP_BYTES)) != NULL &&
         pread(fd, template_, HEAP_BYTES, 0) == (ssize_t)HEAP_BYTES, "reading the template");
    close(fd);
}

/* Apply the changes at the start of the input to IMG; the bytes used. */
static size_t change_words(unsigned char *img, const uint8_t *in, size_t n)
{
    if (n == 0)
        return 0;
    size_t count = in[0] % 17, used = 1, words = HEAP_BYTES / 8;
    for (size_t c = 0; c < count && used + 3 <= n; c++, used += 3) {
        size_t w = ((size_t)in[used] | (size_t)in[used + 1] << 8) % words;
        unsigned how = in[used + 2];
        if (w == 2)
            continue;                       /* the base address: the heap would move */
        uint64_t v;
        memcpy(&v, img + 8 * w, 8);
        switch (how % 4) {
        case 0: v ^= 1ull << (how >> 2) % 64; break;
        case 1: v += (uint64_t)(int64_t)(int8_t)how; break;
        case 2: memcpy(&v, img + 8 * ((w + 1 + how * 31u) % words), 8); break;
        case 3: v = 0; break;
        }
        memcpy(img + 8 * w, &v, 8);
    }
    return used;
}

/* What lrvmutl heap's walk shows, counted. */
struct walked {
    uint64_t used, free_blocks, free_bytes, listed;
};

static int count_block(void *arg, uint64_t off, uint64_t size, int used)
{
    struct walked *w = arg;
    (void)off;
    if (used) {
        w->used++;
    } else {
        w->free_blocks++;
        w->free_bytes += size;
    }
    return 0;
}

static int count_listed(void *arg, unsigned bin, uint64_t off, uint64_t size)
{
    (void)bin, (void)off, (void)size;
    ((struct walked *)arg)->listed++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (template_ == NULL)
        make_template();
    unsigned char *img = malloc(HEAP_BYTES);
    must(img != NULL, "out of memory");
    memcpy(img, template_, HEAP_BYTES);
    size_t used = change_words(img, data, size);
    uint64_t blocks = 0, free_bytes = 0;
    int verdict = lrvm__heap_check_image(img, HEAP_BYTES, &blocks, &free_bytes);
    must(verdict == 0 || verdict == LRVM_ECORRUPT, "lrvm__heap_check_image: an unexpected error");
    must(verdict != 0 || free_bytes <= HEAP_BYTES, "the check counts more free bytes than the heap has");
    struct walked wc = { 0 };
    struct lrvm__heap_walk w = { .arg = &wc, .block = count_block, .free_block = count_listed };
    int is_heap = lrvm__heap_walk_image(img, HEAP_BYTES, &w);
    must(is_heap == 0 || is_heap == 1, "lrvm__heap_walk_image: an unexpected result");
    must(verdict != 0 || (is_heap == 1 && w.blocks_why == NULL && w.list_why == NULL &&
                          wc.used == blocks && wc.free_bytes == free_bytes &&
                          wc.listed == wc.free_blocks),
         "the walk of a sound heap stops, or counts other blocks than the check");
#ifdef FUZZ_HEAP_CHECK_ONLY
    (void)used;
    free(img);
    return 0;
#else
    remove_store();
    put_file("heap.seg", img, HEAP_BYTES);
    free(img);
    char path[128];
    snprintf(path, sizeof path, "%s/heap.seg", dir);
    struct lrvm__heap_info hi;
    int fd = open(path, O_RDONLY);
    must(fd >= 0 && lrvm__heap_describe(fd, &hi) >= 0, "lrvm__heap_describe failed");
    close(fd);

    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    int rc = lrvm_heap_open(s, "heap", HEAP_BYTES, &h);
    if (rc != 0) {
        must(rc == LRVM_ECORRUPT || rc == LRVM_EINVAL || rc == LRVM_EVERSION ||
             rc == LRVM_EADDR || rc == LRVM_ENOMEM, "lrvm_heap_open: an unexpected error");
        lrvm_close(s);
        return 0;
    }
    must(verdict == 0, "lrvm_heap_open accepts a heap that lrvmutl finds damaged");
    void *hb = lrvm_heap_base(h);
    unsigned char *slot[SLOTS] = { 0 };
    lrvm_tx_t *tx;
    must(lrvm_begin(s, 1, &hb, &tx) == 0, "lrvm_begin");
    for (size_t i = used; i + 2 <= size; i += 2) {
        unsigned op = data[i], k = op % SLOTS;
        size_t n = 1 + (size_t)data[i + 1] * 9;
        if (op & 0x40) {
            lrvm_free(h, slot[k]);
            slot[k] = NULL;
        } else if (op & 0x80) {
            unsigned char *q = lrvm_realloc(h, slot[k], n);
            if (q != NULL)
                slot[k] = q;
            else
                must(lrvm_last_error() == LRVM_ENOMEM, "lrvm_realloc failed, not for room");
        } else if (slot[k] == NULL) {
            slot[k] = lrvm_malloc(h, n);
            if (slot[k] == NULL)
                must(lrvm_last_error() == LRVM_ENOMEM, "lrvm_malloc failed, not for room");
            else {
                must(lrvm_set_range(tx, slot[k], n) == 0, "lrvm_set_range");
                memset(slot[k], (int)op, n);    /* the program's own bytes */
            }
        }
        must(lrvm__heap_check(h) == 0, "a checked heap broke under a call");
    }
    must(lrvm_commit(tx, 0) == 0, "lrvm_commit");
    must(lrvm_close(s) == 0, "lrvm_close");
    s = open_store();
    must(lrvm_heap_open(s, "heap", HEAP_BYTES, &h) == 0, "the committed heap does not open");
    lrvm_close(s);
    return 0;
#endif
}
