/*
 * bench-plot.c -- --plot: ns per page against pages per transaction, for
 * both modes and both fault floors, as a gnuplot data file and script in
 * a new directory, drawn into a PNG when gnuplot is on PATH.
 *
 * Reads the summaries bench_compute made, and writes nothing but its own
 * directory and the PNG it was asked for. It runs after the stores are
 * removed, so it must not rely on the run's directory.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char buf[PATH_LEN];
        if (n > 0 && (size_t)snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog) < sizeof buf &&
            access(buf, X_OK) == 0)
            return 1;
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

/* A gnuplot single-quoted string: a quote inside is doubled. */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The medians of pages-1, pages-16 and pages-256, a line each. */
static void write_data(const struct bench *b, const char *data)
{
    FILE *f = fopen(data, "w");
    if (f == NULL)
        bench_die(b, "%s: %s", data, strerror(errno));
    fprintf(f, "# P  mprotect_ns_per_page  uffd_ns_per_page  explicit_ns_per_page"
               "  fault_floor_copied  fault_floor_fresh  (medians, no-flush commits)\n");
    const int pw[3] = { PART_PAGES_1, PART_PAGES_16, PART_PAGES_256 };
    for (int i = 0; i < 3; i++) {
        const struct workload *w = &bench_workloads[pw[i]];
        const double y[5] = { b->rows[pw[i]][BM_MPROTECT][0].nsp.med,
                              b->rows[pw[i]][BM_UFFD][0].nsp.med,
                              b->rows[pw[i]][BM_EXPLICIT][0].nsp.med,
                              b->floor_sum[w->floor][FL_COPIED].med,
                              b->floor_sum[w->floor][FL_FRESH].med };
        fprintf(f, "%d", w->pages);
        for (int k = 0; k < 5; k++) {
            if (isnan(y[k]))
                fputs(" ?", f);                 /* not measured */
            else
                fprintf(f, " %.1f", y[k]);
        }
        fputc('\n', f);
    }
    fclose(f);
}

static void write_script(const struct bench *b, const char *script, const char *data,
                         const char *out)
{
    FILE *f = fopen(script, "w");
    if (f == NULL)
        bench_die(b, "%s: %s", script, strerror(errno));
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "    set terminal pngcairo size 800,500\n"
               "} else {\n"
               "    set terminal png size 800,500\n"
               "}\n");
    fputs("set output ", f);
    gp_string(f, out);
    fputs("\nset title 'lrvm-bench: cost per page, no-flush commits (median)'\n"
          "set xlabel 'pages per transaction P'\n"
          "set ylabel 'ns per page'\n"
          "set logscale x\n"
          "set xtics (1, 16, 256)\n"
          "set xrange [0.7:400]\n"
          "set yrange [0:*]\n"
          "set key top right\n"
          "set grid\n"
          "set datafile missing '?'\n"
          "plot ", f);
    gp_string(f, data);
    fputs(" using 1:2 with linespoints lw 2 title 'mprotect tracker', \\\n     ''"
          " using 1:3 with linespoints lw 2 title 'uffd tracker', \\\n     ''"
          " using 1:4 with linespoints lw 2 title 'explicit', \\\n     ''"
          " using 1:5 with linespoints title 'fault floor (copied)', \\\n     ''"
          " using 1:6 with linespoints title 'fault floor (fresh)'\n", f);
    fclose(f);
}

int bench_plot(const struct bench *b, const char *out)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_LEN], data[PATH_LEN], script[PATH_LEN];
    if ((size_t)snprintf(dir, sizeof dir, "%s/lrvm-bench-plot.XXXXXX",
                         tmp && *tmp ? tmp : "/tmp") >= sizeof dir || mkdtemp(dir) == NULL) {
        fprintf(stderr, "lrvm-bench: cannot make a directory for the plot: %s\n", strerror(errno));
        return 1;
    }
    bench_path_join(b, data, dir, "ns-per-page.dat");
    bench_path_join(b, script, dir, "ns-per-page.gp");
    write_data(b, data);
    write_script(b, script, data, out);

    if (!on_path("gnuplot")) {
        fprintf(stderr, "lrvm-bench: gnuplot is not on PATH: no plot drawn "
                        "(script and data left in %s)\n", dir);
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die(b, "fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "lrvm-bench: cannot run gnuplot: %s\n", strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            bench_die(b, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "lrvm-bench: gnuplot failed; script and data left in %s\n", dir);
        return 1;
    }
    fprintf(stderr, "lrvm-bench: plot written to %s\n", out);
    bench_rm_rf(dir);
    return 0;
}
