/*
 * kv -- a key-value store on the command line, written as ordinary C: a
 * chained hash table of malloc'ed nodes, whose stores declare nothing.
 * Making it persistent took three changes: the table and its nodes come
 * from an lrvm heap (lrvm_malloc/lrvm_free instead of malloc/free), the
 * table is found again through the heap's root, and each command runs in
 * one transaction. Automatic capture does the rest, so a crash (kill -9
 * included) leaves every command either whole or not there at all.
 *
 *   kv DIR set KEY VALUE   kv DIR get KEY   kv DIR del KEY
 *   kv DIR list            kv DIR count
 *   kv DIR load N          set keys k0..k(N-1), one transaction each
 *   kv DIR check           walk the table: every node hashed right, the
 *                          count right (exit 1 if not)
 */
#include "lrvm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024
#define HEAP_SIZE ((size_t)64 << 20)

struct node {
    struct node *next;
    char        *key, *value;
};

struct table {
    uint64_t     count;
    struct node *bucket[BUCKETS];
};

static lrvm_t      *store;
static lrvm_heap_t *heap;

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s != '\0')
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % BUCKETS;
}

static char *heap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = lrvm_malloc(heap, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------- the legacy code */

static struct node **find(struct table *t, const char *key)
{
    struct node **pp = &t->bucket[hash(key)];
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int set(struct table *t, const char *key, const char *value)
{
    struct node **pp = find(t, key);
    char *v = heap_strdup(value);
    if (v == NULL)
        return -1;
    if (*pp != NULL) {
        lrvm_free(heap, (*pp)->value);
        (*pp)->value = v;
        return 0;
    }
    struct node *n = lrvm_malloc(heap, sizeof *n);
    if (n == NULL || (n->key = heap_strdup(key)) == NULL)
        return -1;
    n->value = v;
    n->next = NULL;
    *pp = n;
    t->count++;
    return 0;
}

static int del(struct table *t, const char *key)
{
    struct node **pp = find(t, key), *n = *pp;
    if (n == NULL)
        return -1;
    *pp = n->next;
    lrvm_free(heap, n->key);
    lrvm_free(heap, n->value);
    lrvm_free(heap, n);
    t->count--;
    return 0;
}

static int check(const struct table *t)
{
    uint64_t seen = 0;
    for (unsigned b = 0; b < BUCKETS; b++)
        for (const struct node *n = t->bucket[b]; n != NULL; n = n->next, seen++)
            if (hash(n->key) != b) {
                printf("%s is in bucket %u, hashes to %u\n", n->key, b, hash(n->key));
                return 1;
            }
    if (seen != t->count) {
        printf("count %llu, nodes %llu\n", (unsigned long long)t->count,
               (unsigned long long)seen);
        return 1;
    }
    printf("ok: %llu keys\n", (unsigned long long)seen);
    return 0;
}

/* ---------------------------------------------------- persistence */

static lrvm_tx_t *begin(void)
{
    void *base = lrvm_heap_base(heap);
    lrvm_tx_t *tx;
    int rc = lrvm_begin(store, 1, &base, &tx);
    if (rc != 0) {
        fprintf(stderr, "kv: lrvm_begin: %s\n", lrvm_strerror(rc));
        exit(1);
    }
    return tx;
}

static void commit(lrvm_tx_t *tx)
{
    int rc = lrvm_commit(tx, 0);
    if (rc != 0) {
        fprintf(stderr, "kv: lrvm_commit: %s\n", lrvm_strerror(rc));
        exit(1);
    }
}

static struct table *open_table(const char *dir)
{
    int rc = lrvm_open(dir, NULL, &store);
    if (rc == 0)
        rc = lrvm_heap_open(store, "kv", HEAP_SIZE, &heap);
    if (rc != 0) {
        fprintf(stderr, "kv: %s: %s\n", dir, lrvm_strerror(rc));
        exit(1);
    }
    struct table *t = lrvm_heap_root(heap);
    if (t == NULL) {
        lrvm_tx_t *tx = begin();
        if ((t = lrvm_calloc(heap, 1, sizeof *t)) == NULL ||
            lrvm_heap_set_root(heap, t) != 0) {
            fprintf(stderr, "kv: cannot make the table: %s\n",
                    lrvm_strerror(lrvm_last_error()));
            exit(1);
        }
        commit(tx);
    }
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kv DIR set KEY VALUE | get KEY | del KEY | list | count | "
                        "load N | check\n");
        return 2;
    }
    struct table *t = open_table(argv[1]);
    const char *cmd = argv[2];
    int status = 0;

    if (strcmp(cmd, "set") == 0 && argc == 5) {
        lrvm_tx_t *tx = begin();
        if (set(t, argv[3], argv[4]) != 0) {
            fprintf(stderr, "kv: out of heap\n");
            lrvm_abort(tx);
            status = 1;
        } else {
            commit(tx);
        }
    } else if (strcmp(cmd, "get") == 0 && argc == 4) {
        struct node *n = *find(t, argv[3]);
        if (n != NULL)
            printf("%s\n", n->value);
        status = n == NULL;
    } else if (strcmp(cmd, "del") == 0 && argc == 4) {
        lrvm_tx_t *tx = begin();
        status = del(t, argv[3]) != 0;
        commit(tx);
    } else if (strcmp(cmd, "list") == 0 && argc == 3) {
        for (unsigned b = 0; b < BUCKETS; b++)
            for (struct node *n = t->bucket[b]; n != NULL; n = n->next)
                printf("%s=%s\n", n->key, n->value);
    } else if (strcmp(cmd, "count") == 0 && argc == 3) {
        printf("%llu\n", (unsigned long long)t->count);
    } else if (strcmp(cmd, "load") == 0 && argc == 4) {
        long n = atol(argv[3]);
        for (long i = 0; i < n && status == 0; i++) {
            char key[32], value[64];
            snprintf(key, sizeof key, "k%ld", i);
            snprintf(value, sizeof value, "value of k%ld", i);
            lrvm_tx_t *tx = begin();
            if (set(t, key, value) != 0) {
                fprintf(stderr, "kv: out of heap at %s\n", key);
                lrvm_abort(tx);
                status = 1;
            } else {
                commit(tx);
            }
        }
    } else if (strcmp(cmd, "check") == 0 && argc == 3) {
        status = check(t);
    } else {
        fprintf(stderr, "kv: bad command\n");
        status = 2;
    }
    lrvm_close(store);
    return status;
}
