/*
 * lrvm-demo -- a bank whose accounts live in a recoverable segment.
 *
 * Written against the classic interface (rvm.h) only. Each run starts a
 * child that moves money between accounts in transactions as fast as it
 * can, kills it with SIGKILL at a random moment, then opens the store
 * again and checks that recovery kept the books balanced: the total is
 * unchanged and the transfer count matches the last committed state.
 *
 *   usage: lrvm-demo DIR [milliseconds]
 *
 * Exit status: 0 the books balance; 1 they do not, or the store cannot be
 * opened; 2 bad usage or a system error.
 */
#define _GNU_SOURCE
#include "rvm.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNTS 1000
#define START_BALANCE 1000
#define BANK_MAGIC 0x6c72766d62616e6bULL   /* "lrvmbank" */

struct bank {
    uint64_t magic;
    uint64_t transfers;                     /* committed transfers, all runs */
    int64_t  balance[ACCOUNTS];
};

static struct bank *open_bank(const char *dir, rvm_t *rvm)
{
    *rvm = rvm_init(dir);
    if (*rvm == NULL) {
        fprintf(stderr, "lrvm-demo: cannot open store %s: %s\n", dir,
                lrvm_strerror(lrvm_last_error()));
        exit(1);
    }
    struct bank *b = rvm_map(*rvm, "bank", sizeof *b);
    if (b == NULL) {
        fprintf(stderr, "lrvm-demo: cannot map the bank: %s\n",
                lrvm_strerror(lrvm_last_error()));
        exit(1);
    }
    if (b->magic != BANK_MAGIC) {
        trans_t t = rvm_begin_trans(*rvm, 1, (void **)&b);
        rvm_about_to_modify(t, b, 0, sizeof *b);
        b->magic = BANK_MAGIC;
        b->transfers = 0;
        for (int i = 0; i < ACCOUNTS; i++)
            b->balance[i] = START_BALANCE;
        rvm_commit_trans(t);
    }
    return b;
}

static void run_transfers(const char *dir)
{
    rvm_t rvm;
    struct bank *b = open_bank(dir, &rvm);
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL | 1;
    for (;;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int from = (int)(x % ACCOUNTS), to = (int)((x >> 20) % ACCOUNTS);
        int64_t amount = (int64_t)((x >> 40) % 100);
        trans_t t = rvm_begin_trans(rvm, 1, (void **)&b);
        rvm_about_to_modify(t, b, (int)offsetof(struct bank, balance[from]), sizeof(int64_t));
        rvm_about_to_modify(t, b, (int)offsetof(struct bank, balance[to]), sizeof(int64_t));
        rvm_about_to_modify(t, b, (int)offsetof(struct bank, transfers), sizeof(uint64_t));
        b->balance[from] -= amount;
        b->balance[to] += amount;
        b->transfers++;
        rvm_commit_trans(t);
        if (lrvm_last_error() != 0) {
            fprintf(stderr, "lrvm-demo: commit failed: %s\n", lrvm_strerror(lrvm_last_error()));
            _exit(1);
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: lrvm-demo DIR [milliseconds]\n"
               "       lrvm-demo --help | --version\n"
               "A bank whose books must balance after its process is killed with\n"
               "kill -9 after MILLISECONDS (300). Exit status: 0 the books balance;\n"
               "1 they do not (the store has a problem); 2 bad usage or a system error.\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("lrvm-demo (lrvm) %s\n", lrvm_version());
        return 0;
    }
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[1];
    long ms = argc == 3 ? atol(argv[2]) : 300;

    pid_t pid = fork();
    if (pid < 0) {
        perror("lrvm-demo: fork");
        return 2;
    }
    if (pid == 0)
        run_transfers(dir);
    struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&nap, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "lrvm-demo: the transfer process ended on its own (status %d)\n", status);
        return 1;
    }
    printf("killed the transfer process with SIGKILL after %ld ms\n", ms);

    rvm_t rvm;
    struct bank *b = open_bank(dir, &rvm);
    int64_t total = 0;
    for (int i = 0; i < ACCOUNTS; i++)
        total += b->balance[i];
    printf("recovered: %llu transfers committed so far, total balance %lld (expected %lld)\n",
           (unsigned long long)b->transfers, (long long)total,
           (long long)ACCOUNTS * START_BALANCE);
    if (total != (int64_t)ACCOUNTS * START_BALANCE) {
        printf("BOOKS DO NOT BALANCE\n");
        return 1;
    }
    printf("books balance: every committed transfer is whole, no torn one survived\n");
    return 0;
}
