/*
 * bench-report.c -- what lrvm-bench prints: the summaries (median, min,
 * max) of the runs that completed, the workload table or its CSV rows,
 * the sections of the floors, group commit, the heap, recovery, large
 * and stall, the target lines, and the list of failed runs.
 *
 * Reads results, never makes them: nothing here runs a measurement or
 * touches a store. bench_compute is the only function that writes to
 * struct bench, and only its summaries.
 */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct summary summarize(const double *v, int n)
{
    struct summary s = { NAN, NAN, NAN, n };
    if (n <= 0)
        return s;
    double tmp[MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    s.min = tmp[0];
    s.max = tmp[n - 1];
    s.med = (n % 2) ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    return s;
}

/* The RUNS threads-workload results RS as transactions a second, pages
 * captured a second (none counted unless CAPTURES: explicit mode captures
 * none), CPU microseconds a transaction, cores busy and, when DISK is
 * not NULL, bytes written toward storage a transaction (of the runs that
 * could count them). */
static void summarize_threads(const struct threads_result *rs, int runs, int captures,
                              struct summary *txs, struct summary *pgs, struct summary *cpu,
                              struct summary *cores, struct summary *disk)
{
    double v[MAX_RUNS], u[MAX_RUNS], c[MAX_RUNS], k[MAX_RUNS], d[MAX_RUNS];
    int nv = 0, nd = 0;
    for (int i = 0; i < runs; i++) {
        const struct threads_result *r = &rs[i];
        if (r->tx == 0 || r->secs <= 0)
            continue;
        u[nv] = (double)r->pages / r->secs;
        c[nv] = r->cpu * 1e6 / (double)r->tx;
        k[nv] = r->cpu / r->secs;
        v[nv++] = (double)r->tx / r->secs;
        if (r->disk >= 0)
            d[nd++] = r->disk / (double)r->tx;
    }
    *txs = summarize(v, nv);
    *pgs = summarize(u, captures ? nv : 0);
    *cpu = summarize(c, nv);
    *cores = summarize(k, nv);
    if (disk != NULL)
        *disk = summarize(d, nd);
}

/* Failed runs were zeroed by bench_run_child; only completed runs are
 * counted. */
static void compute_workloads(struct bench *b)
{
    double v[MAX_RUNS], u[MAX_RUNS];
    int nv;
    for (int w = 0; w < NWORK; w++)
        for (int m = 0; m < NMODES; m++)
            for (int f = 0; f < 2; f++) {
                struct row *row = &b->rows[w][m][f];
                double pages = 0, bytes = 0, tx = 0, fsyncs = 0, truncs = 0;
                nv = 0;
                row->w = &bench_workloads[w];
                row->mode = m;
                row->flush = f;
                for (int i = 0; i < b->runs; i++) {
                    const struct wl_result *r = &b->wl_res[w][m][f][i];
                    if (r->tx == 0 || r->pages == 0 || r->secs <= 0)
                        continue;
                    v[nv] = (double)r->tx / r->secs;
                    u[nv++] = r->secs * 1e9 / (double)r->pages;
                    pages += (double)r->pages;
                    bytes += (double)r->bytes;
                    tx += (double)r->tx;
                    fsyncs += (double)r->fsyncs;
                    truncs += (double)r->truncations;
                }
                row->ok = nv;
                row->txs = summarize(v, nv);
                row->nsp = summarize(u, f ? 0 : nv);
                row->pages_per_tx = nv ? pages / tx : NAN;
                row->bytes_per_tx = nv ? bytes / tx : NAN;
                row->fsyncs_per_tx = nv ? fsyncs / tx : NAN;
                row->truncations = nv ? truncs / nv : NAN;
                row->floor_ns = row->ratio = NAN;
            }
    for (int fl = 0; fl < NFLOORS; fl++)
        for (int st = 0; st < NFLSTATES; st++) {
            nv = 0;
            for (int i = 0; i < b->runs; i++) {
                const struct floor_result *r = &b->fl_res[fl][st][i];
                if (r->pages > 0 && r->secs > 0)
                    v[nv++] = r->secs * 1e9 / (double)r->pages;
            }
            b->floor_sum[fl][st] = summarize(v, nv);
        }
    /* The workloads' pages were all written before timing: the "copied"
     * floor of each tracker's mechanism is the one in the same state. */
    for (int w = 0; w < NWORK; w++)
        for (int m = 0; m < NMODES; m++) {
            struct row *row = &b->rows[w][m][0];
            if (m == BM_EXPLICIT)
                continue;
            int st = m == BM_UFFD ? FL_UFFD : FL_COPIED;
            row->floor_ns = b->floor_sum[bench_workloads[w].floor][st].med;
            row->ratio = row->nsp.med / row->floor_ns;
        }
    nv = 0;
    for (int i = 0; i < b->runs; i++)
        if (b->wf_res[i].ops > 0 && b->wf_res[i].secs > 0)
            v[nv++] = (double)b->wf_res[i].ops / b->wf_res[i].secs;
    b->wfloor_sum = summarize(v, nv);
    nv = 0;
    for (int i = 0; i < b->runs; i++)
        if (b->df_res[i].bytes > 0 && b->df_res[i].secs > 0)
            v[nv++] = (double)b->df_res[i].bytes / b->df_res[i].secs / 1e6;
    b->dfloor_sum = summarize(v, nv);
    double d[MAX_RUNS];
    nv = 0;
    for (int i = 0; i < b->runs; i++) {
        const struct lfloor_result *r = &b->lf_res[i];
        if (r->ops > 0) {
            u[nv] = r->shared_ns;
            v[nv] = r->own_ns;
            d[nv++] = r->shared_ns - r->own_ns;
        }
    }
    b->lfloor_shared = summarize(u, nv);
    b->lfloor_own = summarize(v, nv);
    b->lfloor_sum = summarize(d, nv);
    for (int k = 0; k < 3; k++) {
        nv = 0;
        for (int i = 0; i < b->runs; i++)
            if (b->hp_res[k][i].ops > 0 && b->hp_res[k][i].secs > 0)
                v[nv++] = b->hp_res[k][i].secs * 1e9 / (double)b->hp_res[k][i].ops;
        b->heap_sum[k] = summarize(v, nv);
    }
    for (int t = 0; t < 2; t++) {
        double c[MAX_RUNS], k[MAX_RUNS], f[MAX_RUNS];
        nv = 0;
        for (int i = 0; i < b->runs; i++) {
            const struct heap_result *r = &b->hs_res[t][i];
            if (r->ops == 0 || r->secs <= 0 || r->cold_secs <= 0)
                continue;
            c[nv] = r->cpu * 1e6 / (double)r->ops;
            k[nv] = r->cpu / r->secs;
            f[nv] = (double)r->cold_ops / r->cold_secs;
            v[nv++] = (double)r->ops / r->secs;
        }
        b->heap_shared_sum[t] = summarize(v, nv);
        b->heap_shared_cpu[t] = summarize(c, nv);
        b->heap_shared_cores[t] = summarize(k, nv);
        b->heap_shared_cold[t] = summarize(f, nv);
    }
    for (int g = 0; g < NGROUP; g++) {
        double tx = 0, syncs = 0;
        nv = 0;
        for (int i = 0; i < b->runs; i++) {
            const struct group_result *r = &b->gr_res[g][i];
            if (r->tx == 0 || r->secs <= 0)
                continue;
            v[nv++] = (double)r->tx / r->secs;
            tx += (double)r->tx;
            syncs += (double)r->fsyncs;
        }
        b->group_sum[g] = summarize(v, nv);
        b->group_per_sync[g] = syncs > 0 ? tx / syncs : NAN;
    }
    for (int g = 0; g < NGROUP; g++) {
        for (int m = 0; m < NMODES; m++)
            summarize_threads(b->th_res[g][m], b->runs, m != BM_EXPLICIT, &b->threads_txs[g][m],
                              &b->threads_pgs[g][m], &b->threads_cpu[g][m],
                              &b->threads_cores[g][m], &b->threads_disk[g][m]);
        struct summary none;
        summarize_threads(b->th_held[g], b->runs, 0, &b->held_txs[g], &none, &b->held_cpu[g],
                          &b->held_cores[g], NULL);
        summarize_threads(b->th_shared[g], b->runs, 0, &b->shared_txs[g], &none,
                          &b->shared_cpu[g], &b->shared_cores[g], NULL);
    }
    for (int g = 0; g < NGROUP; g++)
        for (int kind = 0; kind < NTFLOORS; kind++) {
            double k[MAX_RUNS];
            nv = 0;
            for (int i = 0; i < b->runs; i++) {
                const struct tfloor_result *r = &b->tf_res[g][kind][i];
                if (r->pages == 0 || r->secs <= 0)
                    continue;
                k[nv] = r->cpu / r->secs;
                v[nv++] = (double)r->pages / r->secs;
            }
            b->tfloor_pgs[g][kind] = summarize(v, nv);
            b->tfloor_cores[g][kind] = summarize(k, nv);
        }
    nv = 0;
    for (int i = 0; i < b->runs; i++)
        if (b->pm_res[i].tx > 0 && b->pm_res[i].secs > 0)
            v[nv++] = (double)b->pm_res[i].tx / b->pm_res[i].secs;
    b->pmem_sum = summarize(v, nv);
}

static void compute_recovery(struct bench *b)
{
    double v[MAX_RUNS], u[MAX_RUNS], x[MAX_RUNS];
    int nv, nu;
    b->rec_cached = NAN;
    for (int sh = 0; sh < NSHAPES; sh++) {
        double mb = 0, commits = 0;
        int made = 0;
        for (int i = 0; i < b->rec_runs; i++)
            if (b->mk_res[sh][i].log_size > 0) {
                mb += (double)b->mk_res[sh][i].log_size / 1e6;
                commits += (double)b->mk_res[sh][i].commits;
                made++;
            }
        b->rec_log_mb[sh] = made ? mb / made : NAN;
        b->rec_commits[sh] = made ? commits / made : NAN;
        for (int st = 0; st < NSTATES; st++) {
            struct rec_row *row = &b->rec_rows[sh][st];
            nv = nu = 0;
            for (int i = 0; i < b->rec_runs; i++) {
                const struct recover_result *rc = &b->rc_res[sh][st][i];
                const struct rfloor_result *rf = &b->rf_res[sh][st][i];
                if (b->mk_res[sh][i].log_size > 0 && rc->secs > 0) {
                    v[nv] = rc->secs;
                    u[nv++] = (double)b->mk_res[sh][i].log_size / 1e6 / rc->secs;
                }
                if (rf->bytes > 0 && rf->secs > 0)
                    x[nu++] = (double)rf->bytes / 1e6 / rf->secs;
                if (st == COLD && rc->secs > 0)
                    b->rec_cached = isnan(b->rec_cached) ? rc->cached
                                                         : fmax(b->rec_cached, rc->cached);
                if (st == COLD && rf->bytes > 0)
                    b->rec_cached = isnan(b->rec_cached) ? rf->cached
                                                         : fmax(b->rec_cached, rf->cached);
            }
            row->ok = nv;
            row->secs = summarize(v, nv);
            row->mbs = summarize(u, nv);
            row->floor = summarize(x, nu);
            row->ratio = row->mbs.med / row->floor.med;
        }
    }
}

/* The median of V[0..N), NAN for none. */
static double median(const double *v, int n)
{
    return summarize(v, n).med;
}

static void compute_large(struct bench *b)
{
    double txs[MAX_RUNS], f[9][MAX_RUNS];
    for (int m = 0; m < LARGE_MODES; m++)
        for (int l = 0; l < 2; l++) {
            struct large_row *row = &b->lg_rows[m][l];
            int nv = 0;
            row->full = 0;
            row->tracking = -1;
            for (int i = 0; i < b->runs; i++) {
                const struct large_result *r = &b->lg_res[m][l][i];
                if (r->tx == 0 || r->secs <= 0)
                    continue;
                txs[nv] = (double)r->tx / r->secs;
                f[0][nv] = (double)r->tx;
                f[1][nv] = (double)r->rss_base / 1024;
                f[2][nv] = (double)r->rss_peak / 1024;
                f[3][nv] = (double)r->rss_final / 1024;
                f[4][nv] = (double)r->pages_private;
                f[5][nv] = (double)r->pages_shadow;
                f[6][nv] = (double)r->pages_released;
                f[7][nv] = (double)r->truncations;
                nv++;
                row->full += !r->capped;
                row->tracking = r->tracking;
            }
            row->ok = nv;
            row->txs = summarize(txs, nv);
            row->tx = median(f[0], nv);
            row->base_mib = median(f[1], nv);
            row->peak_mib = median(f[2], nv);
            row->final_mib = median(f[3], nv);
            row->pages_private = median(f[4], nv);
            row->pages_shadow = median(f[5], nv);
            row->pages_released = median(f[6], nv);
            row->truncations = median(f[7], nv);
        }
}

/* ROW from the RUNS results at RES, those that completed. */
static void stall_summary(struct stall_row *row, const struct stall_result *res, int runs)
{
    double txs[MAX_RUNS], med[MAX_RUNS], p99[MAX_RUNS], max[MAX_RUNS], tx[MAX_RUNS],
        tr[MAX_RUNS], wt[MAX_RUNS];
    int nv = 0;
    row->capped = 0;
    for (int i = 0; i < runs; i++) {
        const struct stall_result *r = &res[i];
        if (r->tx == 0 || r->secs <= 0)
            continue;
        txs[nv] = (double)r->tx / r->secs;
        med[nv] = r->med_us;
        p99[nv] = r->p99_us;
        max[nv] = r->max_us;
        tx[nv] = (double)r->tx;
        wt[nv] = (double)r->waits;
        tr[nv++] = (double)r->truncations;
        row->capped += r->capped;
    }
    row->ok = nv;
    row->txs = summarize(txs, nv);
    row->med_us = summarize(med, nv);
    row->p99_us = summarize(p99, nv);
    row->max_us = summarize(max, nv);
    row->tx = median(tx, nv);
    row->truncations = median(tr, nv);
    row->waits = median(wt, nv);
}

static void compute_stall(struct bench *b)
{
    struct stall_result fl[MAX_RUNS];
    for (int f = 0; f < 2; f++)
        stall_summary(&b->st_rows[f], b->st_res[f], b->runs);
    for (int i = 0; i < b->runs; i++) {
        const struct wfloor_result *w = &b->st_floor[i];
        fl[i] = (struct stall_result){ .tx = w->ops, .secs = w->secs, .med_us = w->med_us,
                                       .p99_us = w->p99_us, .max_us = w->max_us };
    }
    stall_summary(&b->st_floor_row, fl, b->runs);
}

void bench_compute(struct bench *b)
{
    compute_workloads(b);
    compute_recovery(b);
    compute_large(b);
    compute_stall(b);
}

/* ------------------------------------------------------------ printing */

/* "median (min-max)" with the given precision, or "-" when not measured. */
static const char *fmt_sum(char *buf, size_t len, struct summary s, int prec)
{
    if (s.n == 0 || isnan(s.med))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f (%.*f-%.*f)", prec, s.med, prec, s.min, prec, s.max);
    return buf;
}

static void print_table(const struct bench *b, FILE *o)
{
    char a[80], s[80], c[80], d[40], e[40];
    if (!bench_workloads_run(b))
        return;
    fprintf(o, "%-10s %-8s %-8s %-4s  %-26s %-22s %7s %9s  %s\n", "workload", "mode",
            "commit", "runs", "tx/s median (min-max)", "ns/page median (min-max)",
            "pg/tx", "logB/tx", "tracker / fault floor");
    for (int w = 0; w < NWORK; w++)
        for (int m = 0; m < NMODES && bench_part_runs(b, w); m++)
            for (int f = 1; f >= 0 && bench_mode_runs(b, m); f--) {
                const struct row *r = &b->rows[w][m][f];
                if (isnan(r->ratio))
                    snprintf(c, sizeof c, "-");
                else
                    snprintf(c, sizeof c, "%.2fx (%s, %s: %.0f ns)", r->ratio,
                             m == BM_UFFD ? "uffd" : "copied", bench_floors[r->w->floor].name,
                             r->floor_ns);
                snprintf(d, sizeof d, "%d/%d", r->ok, b->runs);
                if (r->ok == 0)
                    snprintf(a, sizeof a, "FAILED");
                else
                    fmt_sum(a, sizeof a, r->txs, 0);
                snprintf(e, sizeof e, "%7.1f %9.1f", r->pages_per_tx, r->bytes_per_tx);
                fprintf(o, "%-10s %-8s %-8s %-4s  %-26s %-22s %s  %s\n",
                        r->w->name, bench_mode_name(m), bench_flush_name(f), d, a,
                        fmt_sum(s, sizeof s, r->nsp, 0), r->ok ? e : "      -         -", c);
            }
    fprintf(o, "runs: runs completed / runs made (failed runs are listed at the end and "
               "left out of the figures).\n"
               "ns/page: whole run time (stores, faults, commits, final flush) / pages "
               "the workload wrote (every mode), no-flush runs only.\n"
               "mprotect, uffd: automatic capture by each tracker (LRVM_TRACK_MPROTECT, "
               "LRVM_TRACK_UFFD); uffd runs only where the kernel offers it.\n"
               "Workload pages were all written once before timing, so they are already "
               "private copies: the \"copied\" fault floor is the mprotect tracker's, the "
               "uffd floor the uffd tracker's.\n");
}

static void csv_num(FILE *o, double v, int prec, const char *sep)
{
    if (isnan(v))
        fprintf(o, "%s", sep);
    else
        fprintf(o, "%.*f%s", prec, v, sep);
}

static void print_csv(const struct bench *b, FILE *o)
{
    fprintf(o, "workload,mode,commit,runs,runs_ok,tx_per_s_median,tx_per_s_min,tx_per_s_max,"
               "ns_per_page_median,ns_per_page_min,ns_per_page_max,pages_per_tx,"
               "log_bytes_per_tx,fsyncs_per_tx,truncations_per_run,fault_floor,"
               "fault_floor_ns_per_page,ratio_to_fault_floor\n");
    for (int w = 0; w < NWORK; w++)
        for (int m = 0; m < NMODES && bench_part_runs(b, w); m++)
            for (int f = 1; f >= 0 && bench_mode_runs(b, m); f--) {
                const struct row *r = &b->rows[w][m][f];
                fprintf(o, "%s,%s,%s,%d,%d,", r->w->name, bench_mode_name(m),
                        bench_flush_name(f), b->runs, r->ok);
                csv_num(o, r->txs.med, 1, ",");
                csv_num(o, r->txs.min, 1, ",");
                csv_num(o, r->txs.max, 1, ",");
                csv_num(o, r->nsp.med, 1, ",");
                csv_num(o, r->nsp.min, 1, ",");
                csv_num(o, r->nsp.max, 1, ",");
                csv_num(o, r->pages_per_tx, 2, ",");
                csv_num(o, r->bytes_per_tx, 1, ",");
                csv_num(o, r->fsyncs_per_tx, 4, ",");
                csv_num(o, r->truncations, 1, ",");
                if (r->flush || r->mode == BM_EXPLICIT)
                    fprintf(o, ",,\n");
                else {
                    fprintf(o, "%s %s,", r->mode == BM_UFFD ? "uffd" : "copied",
                            bench_floors[r->w->floor].name);
                    csv_num(o, r->floor_ns, 1, ",");
                    csv_num(o, r->ratio, 3, "\n");
                }
            }
}

static void print_failures(const struct bench *b, FILE *o)
{
    if (b->nfailures == 0)
        return;
    fprintf(o, "\nFAILED runs (%d; left out of every figure above)\n", b->nfailures);
    for (int i = 0; i < b->nnotes; i++)
        fprintf(o, "  %s\n", b->notes[i]);
    if (b->nfailures > b->nnotes)
        fprintf(o, "  ... and %d more\n", b->nfailures - b->nnotes);
}

static void print_floors(const struct bench *b, FILE *o)
{
    char s[80], t[80], u[80];
    if (!bench_write_floor_runs(b) && !bench_part_runs(b, PART_PMEMOBJ) &&
        !bench_part_runs(b, PART_RECOVERY))
        return;                             /* the heap has its own floor */
    fprintf(o, "\nfloors (no lrvm; each run in its own process)\n");
    if (bench_workloads_run(b)) {
        fprintf(o, "fault floor, ns/page median (min-max): SIGSEGV handler mprotects the page RW; "
                   "one mprotect(PROT_READ) over the span after each batch\n");
        if (b->uffd)
            fprintf(o, "uffd floor: the copied batches under userfaultfd write-protection "
                       "(async mode); after each batch a PAGEMAP_SCAN of its span and one "
                       "UFFDIO_WRITEPROTECT per written run\n");
        fprintf(o, "  %-18s %-26s %-26s %s\n", "batch", "copied (written before)",
                "fresh (copy on write)", b->uffd ? "uffd (written before)" : "");
        for (int fl = 0; fl < NFLOORS; fl++)
            fprintf(o, "  %-18s %-26s %-26s %s\n", bench_floors[fl].name,
                    fmt_sum(s, sizeof s, b->floor_sum[fl][FL_COPIED], 0),
                    fmt_sum(t, sizeof t, b->floor_sum[fl][FL_FRESH], 0),
                    b->uffd ? fmt_sum(u, sizeof u, b->floor_sum[fl][FL_UFFD], 0) : "");
    }
    if (bench_write_floor_runs(b))
        fprintf(o, "write floor: %d-byte in-place pwrite + fdatasync, preallocated file: "
                   "%s ops/s\n", WFLOOR_OP, fmt_sum(s, sizeof s, b->wfloor_sum, 0));
    if (bench_part_runs(b, PART_RECOVERY))
        fprintf(o, "read floor: read() in 1 MiB chunks of each recovery log, warm and cold: "
                   "in the recovery table below\n");
    if (bench_part_runs(b, PART_PMEMOBJ)) {
        if (bench_pmem_available())
            fprintf(o, "libpmemobj small-tx (pmem forced, CPU cache flushes off): %s tx/s\n",
                    fmt_sum(s, sizeof s, b->pmem_sum, 0));
        else
            fprintf(o, "libpmemobj small-tx: not measured (lrvm-bench was built without "
                       "libpmemobj; Debian: libpmemobj-dev)\n");
    }
}

static void print_group(const struct bench *b, FILE *o)
{
    char s[80];
    fprintf(o, "\ngroup commit: flushed small-tx (explicit) from T threads at once, each on "
               "its own %zu MiB segment\n", GROUP_SEG >> 20);
    fprintf(o, "  %-8s %-28s %-15s %s\n", "threads", "tx/s median (min-max)", "commits/fsync",
            "tx/s / write floor");
    for (int g = 0; g < NGROUP; g++)
        fprintf(o, "  %-8d %-28s %-15.2f %.2fx\n", bench_group_threads[g],
                fmt_sum(s, sizeof s, b->group_sum[g], 0), b->group_per_sync[g],
                b->group_sum[g].med / b->wfloor_sum.med);
}

/* A table of the threads part's explicit runs beside the main one (held
 * off, one shared segment): TITLE, then a row for each count of threads,
 * MODE in its mode column. */
static void print_explicit_rows(FILE *o, const char *title, const char *mode,
                                const struct summary *txs, const struct summary *cpu,
                                const struct summary *cores)
{
    char s[80];
    fprintf(o, "  %s\n", title);
    fprintf(o, "  %-8s %-9s %-28s %-10s %-10s %s\n", "threads", "mode", "tx/s median (min-max)",
            "/ 1 thread", "CPU us/tx", "cores");
    for (int g = 0; g < NGROUP && txs[0].n > 0; g++)
        fprintf(o, "  %-8d %-9s %-28s %-10.2f %-10.2f %.2f\n", bench_group_threads[g], mode,
                fmt_sum(s, sizeof s, txs[g], 0), txs[g].med / txs[0].med, cpu[g].med,
                cores[g].med);
}

/* The line floor, under the threads part, or the heap's when that ran
 * alone: the targets of both read it. */
static void print_line_floor(const struct bench *b, FILE *o)
{
    char s[80], t[80], u[80];
    if (b->lfloor_sum.n == 0) {
        fprintf(o, "  line floor (no lrvm): not measured (it needs two CPUs; a failed run is "
                   "named at the end)\n");
        return;
    }
    fprintf(o, "  line floor (no lrvm): two threads on two CPUs, each doing %d dependent steps "
               "of work of its own and then one compare-and-swap, whose result the next steps "
               "need, an operation; ns an operation "
               "with one word both swap %s, with words on lines of their own %s: a line taken "
               "from the other CPU adds %s\n", LFLOOR_WORK,
            fmt_sum(s, sizeof s, b->lfloor_shared, 0), fmt_sum(t, sizeof t, b->lfloor_own, 0),
            fmt_sum(u, sizeof u, b->lfloor_sum, 0));
}

static void print_threads(const struct bench *b, FILE *o)
{
    char s[80], t[80], q[40], u[40];
    fprintf(o, "\nthreads: no-flush small-tx (%d random 8-byte words) from T threads at once, "
               "each on its own %zu MiB segment of one store; captured pages/s: lrvm_stats' "
               "pages_captured; CPU: user + system time of the whole process (lrvm's own "
               "threads too) per transaction, and over the wall time (cores busy, of %ld); "
               "disk: bytes the process wrote toward storage (/proc/self/io write_bytes) "
               "per transaction\n",
            TX_WORDS, THREAD_SEG >> 20, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(o, "  %-8s %-9s %-28s %-10s %-28s %-10s %-10s %-10s %s\n", "threads", "mode",
            "tx/s median (min-max)", "/ 1 thread", "captured pages/s median", "/ 1 thread",
            "CPU us/tx", "cores", "disk B/tx");
    for (int m = 0; m < NMODES; m++)
        for (int g = 0; g < NGROUP && bench_mode_runs(b, m); g++) {
            const struct summary *x = &b->threads_txs[g][m], *p = &b->threads_pgs[g][m];
            int ex = m == BM_EXPLICIT;      /* captures nothing: no pages column */
            const struct summary *d = &b->threads_disk[g][m];
            snprintf(q, sizeof q, "%.2f", p->med / b->threads_pgs[0][m].med);
            snprintf(u, sizeof u, "%.0f", d->med);
            fprintf(o, "  %-8d %-9s %-28s %-10.2f %-28s %-10s %-10.2f %-10.2f %s\n",
                    bench_group_threads[g], bench_mode_name(m), fmt_sum(s, sizeof s, *x, 0),
                    x->med / b->threads_txs[0][m].med, ex ? "-" : fmt_sum(t, sizeof t, *p, 0),
                    ex ? "-" : q, b->threads_cpu[g][m].med, b->threads_cores[g][m].med,
                    d->n > 0 ? u : "-");
        }
    char title[200];
    snprintf(title, sizeof title, "explicit with the truncation held off (truncate_threshold "
             "%zu MiB: none starts in the timed loop, so the commits are not paced to its disk "
             "work)", HELD_OFF_THRESHOLD >> 20);
    print_explicit_rows(o, title, "explicit", b->held_txs, b->held_cpu, b->held_cores);
    snprintf(title, sizeof title, "explicit on one segment the threads share "
             "(lrvm_begin_shared), each changing words of its own %zu MiB part of it",
             THREAD_SEG >> 20);
    print_explicit_rows(o, title, "shared", b->shared_txs, b->shared_cpu, b->shared_cores);
    fprintf(o, "  threads floor (no lrvm): T threads at once, each storing into %d random "
               "pages of a %zu MiB slice of its own and protecting them again, as the fault "
               "floor (mprotect) and the uffd floor (uffd) do\n", bench_floors[FLOOR_P4].pages,
            THREAD_SEG >> 20);
    fprintf(o, "  %-8s %-9s %-28s %-10s %s\n", "threads", "floor", "pages/s median (min-max)",
            "/ 1 thread", "cores");
    for (int kind = 0; kind < NTFLOORS; kind++)
        for (int g = 0; g < NGROUP && b->tfloor_pgs[0][kind].n > 0; g++) {
            const struct summary *p = &b->tfloor_pgs[g][kind];
            fprintf(o, "  %-8d %-9s %-28s %-10.2f %.2f\n", bench_group_threads[g],
                    kind == TF_UFFD ? "uffd" : "mprotect", fmt_sum(s, sizeof s, *p, 0),
                    p->med / b->tfloor_pgs[0][kind].med, b->tfloor_cores[g][kind].med);
        }
    fprintf(o, "  disk floor (no lrvm): %zu MiB in 1 MiB pwrites to a new file, an fdatasync "
               "after each %zu MiB: %s MB/s\n", bench_dfloor_size(b) >> 20,
            DFLOOR_SYNC >> 20, fmt_sum(s, sizeof s, b->dfloor_sum, 0));
    print_line_floor(b, o);
}

static void print_heap(const struct bench *b, FILE *o)
{
    char s[80];
    fprintf(o, "\nheap: per no-flush transaction, lrvm_free + lrvm_malloc (16-256 B) among "
               "%u live blocks and an 8-byte store; floor: the same on the C library's "
               "malloc and free\n", HEAP_LIVE);
    fprintf(o, "  %-10s %-28s %s\n", "", "ns/op median (min-max)", "/ floor");
    static const char *const heap_rows[] = { "auto", "explicit", "floor" };
    for (int k = 0; k < 3; k++)
        fprintf(o, "  %-10s %-28s %.1fx\n", heap_rows[k],
                fmt_sum(s, sizeof s, b->heap_sum[k], 0), b->heap_sum[k].med / b->heap_sum[2].med);
    fprintf(o, "  shared heap: the same from T threads at once on one heap, explicit mode, each "
               "in shared transactions of its own on its share of the blocks, %ld operations "
               "in all, timed after a first window of as many (cold, below); CPU: user + "
               "system time of the whole process per operation, and cores busy\n",
            200000 / b->tx_div);
    fprintf(o, "  %-10s %-28s %-10s %-10s %s\n", "threads", "ops/s median (min-max)",
            "/ 1 thread", "CPU us/op", "cores");
    for (int t = 0; t < 2; t++)
        fprintf(o, "  %-10d %-28s %-10.2f %-10.2f %.2f\n", t + 1,
                fmt_sum(s, sizeof s, b->heap_shared_sum[t], 0),
                b->heap_shared_sum[t].med / b->heap_shared_sum[0].med,
                b->heap_shared_cpu[t].med, b->heap_shared_cores[t].med);
    fprintf(o, "  cold: the first window, from the heap as lrvm_heap_open leaves it (the caches "
               "of shared transactions empty, filled from the bins under the store lock as "
               "the threads go)\n");
    for (int t = 0; t < 2; t++)
        fprintf(o, "  %-10d %-28s %.2f\n", t + 1,
                fmt_sum(s, sizeof s, b->heap_shared_cold[t], 0),
                b->heap_shared_cold[t].med / b->heap_shared_cold[0].med);
    if (!bench_part_runs(b, PART_THREADS))
        print_line_floor(b, o);
}

static void print_recovery(const struct bench *b, FILE *o)
{
    char s[80], t[80], c[80], d[40], e[40];
    fprintf(o, "\nrecovery: lrvm_open of a store whose log holds the records of no-flush "
               "commits (explicit mode, one lrvm_flush at the end, never truncated); "
               "%d run%s per row\n", b->rec_runs, b->rec_runs == 1 ? "" : "s");
    for (int sh = 0; sh < NSHAPES; sh++) {
        if (sh == REC_BIG)
            snprintf(c, sizeof c, "%zu KiB contiguous", REC_TX_BYTES >> 10);
        else
            snprintf(c, sizeof c, "%d random 8-byte words", TX_WORDS);
        if (isnan(b->rec_log_mb[sh]))
            fprintf(o, "  log %-9s  not made (see the failures at the end)\n",
                    bench_shape_names[sh]);
        else
            fprintf(o, "  log %-9s  %.1f MB of %.0f transactions of %s (%.0f log bytes/tx)\n",
                    bench_shape_names[sh], b->rec_log_mb[sh], b->rec_commits[sh], c,
                    b->rec_log_mb[sh] * 1e6 / b->rec_commits[sh]);
    }
    fprintf(o, "  warm: page cache warm (after a process crash)\n");
    fprintf(o, "  cold: every file of the store fdatasync'ed and dropped with "
               "POSIX_FADV_DONTNEED (after a machine crash); ");
    if (isnan(b->rec_cached))
        fprintf(o, "no cold run completed\n");
    else
        fprintf(o, "mincore() found at most %.1f%% of a file still cached\n",
                100 * b->rec_cached);
    fprintf(o, "  read floor: read() of the same log in 1 MiB chunks, page cache in the "
               "same state\n");
    fprintf(o, "  %-10s %-6s %-5s %-26s %-24s %-24s %s\n", "log", "cache", "runs",
            "seconds median (min-max)", "MB/s median (min-max)", "read floor MB/s",
            "recovery / read floor");
    for (int sh = 0; sh < NSHAPES; sh++)
        for (int st = 0; st < NSTATES; st++) {
            const struct rec_row *r = &b->rec_rows[sh][st];
            snprintf(d, sizeof d, "%d/%d", r->ok, b->rec_runs);
            if (isnan(r->ratio))
                snprintf(e, sizeof e, "-");
            else
                snprintf(e, sizeof e, "%.2fx", r->ratio);
            fprintf(o, "  %-10s %-6s %-5s %-26s %-24s %-24s %s\n", bench_shape_names[sh],
                    bench_state_names[st], d,
                    r->ok ? fmt_sum(s, sizeof s, r->secs, 3) : "FAILED",
                    fmt_sum(t, sizeof t, r->mbs, 0), fmt_sum(c, sizeof c, r->floor, 0), e);
        }
    fprintf(o, "(MB = 10^6 bytes)\n");
}

static const char *tracker_name(int tracking)
{
    switch (tracking) {
    case LRVM_TRACK_EXPLICIT: return "explicit";
    case LRVM_TRACK_MPROTECT: return "mprotect";
    case LRVM_TRACK_UFFD:     return "uffd";
    default:                  return "-";
    }
}

static double gib(uint64_t bytes)
{
    return (double)bytes / (double)(1u << 30);
}

/* The resident limit of configuration L of the large part, in bytes. */
static size_t large_limit(const struct bench *b, int l)
{
    return l ? LARGE_LIMIT : b->default_limit;
}

static void print_large(const struct bench *b, FILE *o)
{
    char s[80], lim[40], d[24], t[40];
    fprintf(o, "\nlarge: a %.1f GiB segment (the smaller of twice physical memory, 2 x %.1f "
               "GiB, and %.0f GiB) mapped with lrvm_map; per run %" PRIu64 " no-flush "
               "transactions, each storing one 8-byte word at a random page (xorshift64, "
               "seed %u); explicit: lrvm_set_range then the store; auto: LRVM_TRACK_AUTO, the "
               "store alone; each run in a process of its own, stopped after %.0f s at most\n",
            gib(b->large_seg), gib(b->phys_bytes), gib(b->quick ? LARGE_QUICK : LARGE_MAX),
            b->large_tx, SEED, b->large_cap);
    if (b->large_skipped) {
        fprintf(o, "  skipped: needs %.1f GiB free where the stores are (the segment, whose "
                   "blocks lrvm_map reserves, and 1 GiB for the log and truncation); %.1f GiB "
                   "free\n", gib(b->large_need), gib(b->large_free));
        return;
    }
    fprintf(o, "  RssAnon (/proc/self/status, MiB): base before lrvm_open, peak of the samples "
               "every %d transactions and at the end, final after the last lrvm_flush; "
               "pages: lrvm_stats at the end\n", LARGE_SAMPLE);
    fprintf(o, "  resident_limit 0 (default) is %zu MiB here: 256 MiB, or an eighth of physical "
               "memory when that is less\n", b->default_limit >> 20);
    fprintf(o, "  %-8s %-8s %-15s %-5s %-26s %-16s %7s %7s %7s %9s %9s %9s %6s\n", "mode",
            "tracker", "resident limit", "runs", "tx/s median (min-max)", "transactions",
            "base", "peak", "final", "private", "shadow", "released", "trunc");
    for (int m = 0; m < LARGE_MODES; m++)
        for (int l = 0; l < 2; l++) {
            const struct large_row *r = &b->lg_rows[m][l];
            snprintf(lim, sizeof lim, "%zu MiB%s", large_limit(b, l) >> 20,
                     l ? "" : " (def)");
            snprintf(d, sizeof d, "%d/%d", r->ok, b->runs);
            if (r->ok == 0) {
                fprintf(o, "  %-8s %-8s %-15s %-5s FAILED\n", bench_large_mode_names[m], "-",
                        lim, d);
                continue;
            }
            snprintf(t, sizeof t, "%.0f%s", r->tx, r->full < r->ok ? " (cap)" : "");
            fprintf(o, "  %-8s %-8s %-15s %-5s %-26s %-16s %7.1f %7.1f %7.1f %9.0f %9.0f %9.0f "
                       "%6.0f\n", bench_large_mode_names[m], tracker_name(r->tracking), lim, d,
                    fmt_sum(s, sizeof s, r->txs, 0), t, r->base_mib, r->peak_mib, r->final_mib,
                    r->pages_private, r->pages_shadow, r->pages_released, r->truncations);
        }
    fprintf(o, "  (figures are medians of the runs that completed; \"(cap)\": the time cap "
               "stopped a run before its %" PRIu64 " transactions)\n", b->large_tx);
}

static void print_stall(const struct bench *b, FILE *o)
{
    char s[80], u[80], v[80], w[80], d[24], threshold[120] =
        "lrvm's default (the segment's bytes, held within 32 to 64 MiB and a quarter of the "
        "resident limit)";
    if (b->stall_threshold != 0)
        snprintf(threshold, sizeof threshold, "%zu MiB (--quick)", b->stall_threshold >> 20);
    fprintf(o, "\nstall: explicit mode, a %zu MiB segment, transactions of %d ranges of %d "
               "bytes (random %d-byte-aligned offsets: lrvm_set_range, then the stores); "
               "truncate_threshold %s; each run stops at truncation %d "
               "(or %" PRIu64 " transactions, or %.0f s)\n",
            STALL_SEG >> 20, STALL_RANGES, STALL_RANGE, STALL_RANGE,
            threshold,
            b->stall_truncs, b->stall_max_tx, b->stall_cap);
    fprintf(o, "  latency: each lrvm_commit on CLOCK_MONOTONIC; tx/s: transactions over the "
               "wall time of the whole loop, truncations (and a no-flush run's final "
               "lrvm_flush) included\n");
    fprintf(o, "  %-8s %-5s %-24s %-24s %-24s %-26s %8s %6s %6s\n", "commit", "runs",
            "tx/s median (min-max)", "median us (min-max)", "p99 us (min-max)",
            "worst us (min-max)", "tx", "trunc", "waits");
    for (int f = 1; f >= 0; f--) {
        const struct stall_row *r = &b->st_rows[f];
        snprintf(d, sizeof d, "%d/%d", r->ok, b->runs);
        if (r->ok == 0) {
            fprintf(o, "  %-8s %-5s FAILED\n", bench_flush_name(f), d);
            continue;
        }
        fprintf(o, "  %-8s %-5s %-24s %-24s %-24s %-26s %8.0f %6.0f %6.0f%s\n",
                bench_flush_name(f), d, fmt_sum(s, sizeof s, r->txs, 0),
                fmt_sum(u, sizeof u, r->med_us, 1), fmt_sum(v, sizeof v, r->p99_us, 1),
                fmt_sum(w, sizeof w, r->max_us, 0), r->tx, r->truncations, r->waits,
                r->capped ? "  (stopped by the cap)" : "");
    }
    const struct stall_row *r = &b->st_floor_row;
    if (r->ok == 0)
        return;
    snprintf(d, sizeof d, "%d/%d", r->ok, b->runs);
    fprintf(o, "  %-8s %-5s %-24s %-24s %-24s %-26s %8.0f\n", "floor", d,
            fmt_sum(s, sizeof s, r->txs, 0), fmt_sum(u, sizeof u, r->med_us, 1),
            fmt_sum(v, sizeof v, r->p99_us, 1), fmt_sum(w, sizeof w, r->max_us, 0), r->tx);
    fprintf(o, "  floor: beside each flushed run, as many overwrites of as many bytes as its "
               "commits wrote, one after another through a 16 MiB file, each followed by "
               "fdatasync and timed: the disk's own tail, with no truncation beside it\n");
}

/* Everything but the workload table and the targets: the floors, then the
 * sections of the parts that ran. */
static void print_sections(const struct bench *b, FILE *o)
{
    print_floors(b, o);
    if (bench_part_runs(b, PART_GROUP))
        print_group(b, o);
    if (bench_part_runs(b, PART_THREADS))
        print_threads(b, o);
    if (bench_part_runs(b, PART_HEAP))
        print_heap(b, o);
    if (bench_part_runs(b, PART_RECOVERY))
        print_recovery(b, o);
    if (bench_part_runs(b, PART_STALL))
        print_stall(b, o);
    if (bench_part_runs(b, PART_LARGE))
        print_large(b, o);
}

static void target_line(FILE *o, const char *what, double value, const char *unit,
                        int at_most, double limit)
{
    char v[40], t[40];
    int met = !isnan(value) && (at_most ? value <= limit : value >= limit);
    if (isnan(value))
        snprintf(v, sizeof v, "not measured");
    else
        snprintf(v, sizeof v, "%.2f%s", value, unit);
    snprintf(t, sizeof t, "%s %.2f%s", at_most ? "<=" : ">=", limit, unit);
    fprintf(o, "  %-66s %12s  target %-10s %s\n", what, v, t, met ? "met" : "NOT met");
}

/* Issue 18's targets: the large part's memory, the stall part's worst
 * commit. */
static void print_targets_18(const struct bench *b, FILE *o)
{
    char what[120], v[40], t[40];
    if (bench_part_runs(b, PART_STALL)) {
        for (int f = 1; f >= 0; f--) {
            const struct stall_row *r = &b->st_rows[f];
            snprintf(what, sizeof what, "stall worst lrvm_commit latency, %s (worst of %d run%s)",
                     bench_flush_name(f), r->ok, r->ok == 1 ? "" : "s");
            target_line(o, what, r->ok ? r->max_us.max / 1e3 : NAN, " ms", 1, 20);
        }
        if (b->st_floor_row.ok)
            fprintf(o, "  (the floor's worst overwrite + fdatasync in the same runs: %.2f ms, "
                       "worst of %d)\n", b->st_floor_row.max_us.max / 1e3, b->st_floor_row.ok);
        fprintf(o, "  stall sustained no-flush tx/s: %.0f; target: at least 1.5x the figure "
                   "before the change, which is in README.md's table (this bench cannot run "
                   "the old library)\n", b->st_rows[0].txs.med);
    }
    if (!bench_part_runs(b, PART_LARGE))
        return;
    if (b->large_skipped) {
        fprintf(o, "  large: skipped (too little free space): its targets not measured\n");
        return;
    }
    fprintf(o, "  large: peak RssAnon at most 1.5 x the resident limit + 64 MiB, and every "
               "run makes all its transactions\n");
    for (int m = 0; m < LARGE_MODES; m++)
        for (int l = 0; l < 2; l++) {
            const struct large_row *r = &b->lg_rows[m][l];
            size_t lim = large_limit(b, l);
            snprintf(what, sizeof what, "large %s, limit %zu MiB%s: peak RssAnon%s",
                     bench_large_mode_names[m], lim >> 20, l ? "" : " (default)",
                     r->full < r->ok ? " (capped run)" : "");
            target_line(o, what, r->ok ? r->peak_mib : NAN, " MiB", 1,
                        1.5 * (double)(lim >> 20) + 64);
            snprintf(what, sizeof what, "large %s, limit %zu MiB%s: runs with all %" PRIu64
                     " tx", bench_large_mode_names[m], lim >> 20, l ? "" : " (default)",
                     b->large_tx);
            snprintf(v, sizeof v, "%d/%d", r->full, b->runs);
            snprintf(t, sizeof t, "%d/%d", b->runs, b->runs);
            fprintf(o, "  %-66s %12s  target %-10s %s\n", what, v, t,
                    r->full == b->runs ? "met" : "NOT met");
        }
}

/* Under a target of two threads against one: the cores one thread keeps
 * busy, two threads' cores and CPU for each UNIT (CPU1, CPU2, CORES1,
 * CORES2), and the cap the cores here put on any count of threads at one
 * thread's CPU for each UNIT. One thread keeps more than a core busy when
 * lrvm's own threads work for it (the truncation, the syncer). Whether
 * the ratio falls short of the cap, or the cap short of the target, says
 * which cost to work on: a UNIT's at more threads, or one thread's. */
static void cores_cap(const struct bench *b, FILE *o, const char *unit,
                      const struct summary *cpu1, const struct summary *cpu2,
                      const struct summary *cores1, const struct summary *cores2)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double cap = (double)ncpu / cores1->med;
    fprintf(o, "    (one thread keeps %.2f cores busy; 2 threads %.2f, at %.2fx the CPU %s; "
               "at one thread's CPU %s, the %ld cores here allow at most %.2fx)\n",
            cores1->med, cores2->med, cpu2->med / cpu1->med, unit, unit, ncpu, cap);
    /* The log's one order: while two threads' commits alternate, each
     * takes the word that orders them from the other's CPU, as any log
     * of one order must. So an operation of two threads costs at least
     * one thread's CPU and the line floor's line. */
    if (b->lfloor_sum.n > 0)
        fprintf(o, "    (one order in the log: while two threads' commits alternate, each "
                   "takes its place from the other's CPU; at one thread's CPU %s and the line "
                   "floor's %.0f ns, the %ld cores here allow at most %.2fx)\n",
                unit, b->lfloor_sum.med, ncpu,
                cap * cpu1->med / (cpu1->med + b->lfloor_sum.med / 1e3));
}

static void print_targets(const struct bench *b, FILE *o)
{
    int am = bench_auto_mode(b);           /* the tracker AUTO takes here */
    const char *an = bench_mode_name(am);
    const struct row *p256 = &b->rows[PART_PAGES_256][BM_MPROTECT][0];
    const struct row *sx_f = &b->rows[PART_SMALL_TX][BM_EXPLICIT][1];
    const struct row *sa_f = &b->rows[PART_SMALL_TX][am][1];
    const struct row *sx_n = &b->rows[PART_SMALL_TX][BM_EXPLICIT][0];
    const struct row *sa_n = &b->rows[PART_SMALL_TX][am][0];
    const struct row *u16 = &b->rows[PART_PAGES_16][BM_UFFD][0];
    const struct row *m16 = &b->rows[PART_PAGES_16][BM_MPROTECT][0];
    double wfloor = b->wfloor_sum.med;
    char what[120];
    if (!bench_part_runs(b, PART_SMALL_TX) && !bench_part_runs(b, PART_PAGES_256) &&
        !bench_part_runs(b, PART_PAGES_16) && !bench_part_runs(b, PART_THREADS) &&
        !bench_part_runs(b, PART_RECOVERY) && !bench_part_runs(b, PART_LARGE) &&
        !bench_part_runs(b, PART_STALL) && !bench_part_runs(b, PART_HEAP))
        return;                             /* no part with a target ran */
    fprintf(o, "\ntargets (from the medians above; with --only, those of the parts run)\n");
    if (bench_part_runs(b, PART_PAGES_256)) {
        snprintf(what, sizeof what,
                 "mprotect ns/page, pages-256 no-flush / fault floor (copied, %s)",
                 bench_floors[bench_workloads[PART_PAGES_256].floor].name);
        target_line(o, what, p256->ratio, "x", 1, 1.5);
    }
    if (bench_part_runs(b, PART_PAGES_16) && b->uffd) {
        const struct summary *fl = b->floor_sum[bench_workloads[PART_PAGES_16].floor];
        target_line(o, "uffd ns/page / mprotect ns/page, pages-16 no-flush",
                    u16->nsp.med / m16->nsp.med, "x", 1, 0.3);
        fprintf(o, "    (their floors here, uffd / copied fault floor at %s: %.2fx)\n",
                bench_floors[bench_workloads[PART_PAGES_16].floor].name,
                fl[FL_UFFD].med / fl[FL_COPIED].med);
    }
    if (bench_part_runs(b, PART_HEAP)) {
        target_line(o, "heap shared explicit ops/s, 2 threads / 1 thread",
                    b->heap_shared_sum[1].med / b->heap_shared_sum[0].med, "x", 0, 1.5);
        cores_cap(b, o, "an operation", &b->heap_shared_cpu[0], &b->heap_shared_cpu[1],
                  &b->heap_shared_cores[0], &b->heap_shared_cores[1]);
    }
    if (bench_part_runs(b, PART_THREADS)) {
        const struct summary (*tx)[NMODES] = b->threads_txs, (*pg)[NMODES] = b->threads_pgs;
        if (b->uffd) {
            const struct summary (*fl)[NTFLOORS] = b->tfloor_pgs;
            target_line(o, "threads uffd captured pages/s, 2 threads / 1 thread",
                        pg[1][BM_UFFD].med / pg[0][BM_UFFD].med, "x", 0, 1.5);
            fprintf(o, "    (the uffd floor's own here, 2 threads / 1 thread: %.2fx)\n",
                    fl[1][TF_UFFD].med / fl[0][TF_UFFD].med);
            target_line(o, "threads uffd captured pages/s, the lower of 4 and 8 threads / 2",
                        fmin(pg[2][BM_UFFD].med, pg[3][BM_UFFD].med) / pg[1][BM_UFFD].med,
                        "x", 0, 1.0);
        }
        target_line(o, "threads explicit tx/s, 2 threads / 1 thread",
                    tx[1][BM_EXPLICIT].med / tx[0][BM_EXPLICIT].med, "x", 0, 1.6);
        target_line(o, "threads explicit tx/s, the lower of 4 and 8 threads / 1 thread",
                    fmin(tx[2][BM_EXPLICIT].med, tx[3][BM_EXPLICIT].med) /
                        tx[0][BM_EXPLICIT].med, "x", 0, 1.5);
        cores_cap(b, o, "a transaction", &b->threads_cpu[0][BM_EXPLICIT],
                  &b->threads_cpu[1][BM_EXPLICIT], &b->threads_cores[0][BM_EXPLICIT],
                  &b->threads_cores[1][BM_EXPLICIT]);
        /* Each generation rewrites the blocks its random words fell on,
         * nearly all of every thread's segment, so the bytes a
         * transaction writes grow with the threads: at two threads' bytes
         * a transaction, the disk floor's rate is a bound on their rate. */
        const struct summary *d2 = &b->threads_disk[1][BM_EXPLICIT];
        if (d2->n > 0 && b->dfloor_sum.n > 0)
            fprintf(o, "    (two threads wrote %.0f bytes a transaction toward the disk, one "
                       "%.0f; at the disk floor's %.0f MB/s, two threads' bytes allow at most "
                       "%.2fx)\n", d2->med, b->threads_disk[0][BM_EXPLICIT].med,
                    b->dfloor_sum.med,
                    b->dfloor_sum.med * 1e6 / d2->med / tx[0][BM_EXPLICIT].med);
        const struct summary *h = b->held_txs;
        fprintf(o, "    (with the truncation held off: 2 threads / 1 thread %.2fx, the lower "
                   "of 4 and 8 threads / 1 thread %.2fx)\n", h[1].med / h[0].med,
                fmin(h[2].med, h[3].med) / h[0].med);
        snprintf(what, sizeof what, "threads auto (%s) tx/s, 2 threads / 1 thread", an);
        target_line(o, what, tx[1][am].med / tx[0][am].med, "x", 0, 1.2);
        int kind = am == BM_UFFD ? TF_UFFD : TF_MPROTECT;
        fprintf(o, "    (its floor's own here, pages/s, 2 threads / 1 thread: %.2fx)\n",
                b->tfloor_pgs[1][kind].med / b->tfloor_pgs[0][kind].med);
    }
    if (bench_part_runs(b, PART_SMALL_TX)) {
        target_line(o, "flushed small-tx explicit tx/s / write floor ops/s",
                    sx_f->txs.med / wfloor, "x", 0, 0.9);
        snprintf(what, sizeof what, "flushed small-tx auto (%s) tx/s / write floor ops/s", an);
        target_line(o, what, sa_f->txs.med / wfloor, "x", 0, 0.9);
        /* A flushed commit of the auto mode pays the write floor's op and
         * its tracker's fault floor for each page it captures, so no
         * tracker on this machine can do better than this ratio. */
        double bound = 1.0 / (1.0 + sa_n->pages_per_tx * sa_n->floor_ns * 1e-9 * wfloor);
        fprintf(o, "    (the most its floors allow here, per transaction a write floor op and "
                   "%.0f pages at its tracker's floor, %.0f ns each: %.2fx)\n",
                sa_n->pages_per_tx, sa_n->floor_ns, bound);
    }
    if (bench_part_runs(b, PART_SMALL_TX) && bench_part_runs(b, PART_PMEMOBJ))
        target_line(o, "small-tx explicit no-flush tx/s / libpmemobj tx/s",
                    sx_n->txs.med / b->pmem_sum.med, "x", 0, 2.0);
    if (bench_part_runs(b, PART_SMALL_TX)) {
        target_line(o, "small-tx explicit log bytes/tx (no-flush run)", sx_n->bytes_per_tx, "",
                    1, 128);
        snprintf(what, sizeof what, "small-tx auto (%s) log bytes/tx / explicit (no-flush runs)",
                 an);
        target_line(o, what, sa_n->bytes_per_tx / sx_n->bytes_per_tx, "x", 1, 1.5);
    }
    for (int sh = 0; sh < (bench_part_runs(b, PART_RECOVERY) ? NSHAPES : 0); sh++)
        for (int st = 0; st < NSTATES; st++) {
            snprintf(what, sizeof what, "recovery MB/s / read floor MB/s, %s log, %s cache",
                     bench_shape_names[sh], bench_state_names[st]);
            target_line(o, what, b->rec_rows[sh][st].ratio, "x", 0, 0.5);
        }
    print_targets_18(b, o);
}

void bench_report(const struct bench *b)
{
    if (b->csv) {
        print_csv(b, stdout);
        print_sections(b, stderr);
        print_targets(b, stderr);
        print_failures(b, stderr);
    } else {
        print_table(b, stdout);
        print_sections(b, stdout);
        print_targets(b, stdout);
        print_failures(b, stdout);
    }
}
