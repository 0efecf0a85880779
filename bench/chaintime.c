/* The streaming patch engine alone (patch.h), without download, hashing or
 * writing: plans a chain of cdiffs and streams every member of a plain CLD
 * that the chain touches through it, from memory into a sink that only
 * counts. It shows what a chain costs against a single cdiff, free of the
 * noise of a whole update.
 *
 *   chaintime [-r RUNS] LOCAL.cld CDIFF...    (cdiffs in the order they apply)
 *
 * Build it against the library run.sh builds in bench/build:
 *   cc -O2 -Iinclude -Ibench/build/include bench/chaintime.c \
 *      bench/build/libclamfresh_core.a -lcrypto -lz -ltar -o chaintime
 * Signatures are not checked (the timing is of applying), and MOVEs between
 * members are refused: the bench data has none. Each run is timed from the
 * plan to the last member; the best and the median of RUNS (default 10) are
 * printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/fileio.h"
#include "clamfresh/limits.h"
#include "clamfresh/patch.h"

#define CHUNK (1024 * 1024) /* what dbpatch.c reads at a time */

typedef struct pass {
    cf_patchplan *plan;
    cf_memberpatch *mp; /* the touched member streaming now, or NULL */
    uint64_t in, out;   /* bytes of touched members in and out */
    size_t touched;
    unsigned char seen[CF_MAX_MEMBERS]; /* by plan index: the input had it */
} pass;

static cf_code count(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    (void)p, (void)e;
    ((pass *)arg)->out += n;
    return CF_OK;
}

static cf_code m_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    pass *s = arg;
    (void)size;
    if (!cf_patchplan_touches(s->plan, name))
        return CF_OK;
    if (!cf_patchplan_ready(s->plan, name))
        return cf_err_set(e, CF_EUNSUPP, "%s: a MOVE feeds it; this timer does not wait for MOVEs", name);
    for (size_t i = 0; i < cf_patchplan_count(s->plan); i++)
        if (strcmp(cf_patchplan_name(s->plan, i), name) == 0)
            s->seen[i] = 1;
    cf_sink sink = {count, s};
    s->touched++;
    return cf_memberpatch_new(s->plan, name, 1, &sink, &s->mp, e);
}

static cf_code m_data(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    pass *s = arg;
    if (s->mp == NULL)
        return CF_OK;
    s->in += n;
    return cf_memberpatch_feed(s->mp, p, n, e);
}

static cf_code m_end(void *arg, cf_err *e)
{
    pass *s = arg;
    if (s->mp == NULL)
        return CF_OK;
    cf_code rc = cf_memberpatch_end(s->mp, NULL, e);
    cf_memberpatch_free(s->mp);
    s->mp = NULL;
    return rc;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One timed pass: plan, the input members, then the members the chain creates. */
static cf_code run_once(const cf_buf *cld, const cf_buf *scripts, size_t n, pass *s, cf_err *e)
{
    memset(s, 0, sizeof(*s));
    cf_code rc = cf_patchplan_new(scripts, NULL, n, &s->plan, e);
    if (rc != CF_OK)
        return rc;
    cf_tarin_ops ops = {m_begin, m_data, m_end, s};
    cf_tarin *tar = NULL;
    rc = cf_tarin_new(&ops, &tar, e);
    for (size_t off = CF_HDR_SIZE; rc == CF_OK && off < cld->n; off += CHUNK)
        rc = cf_tarin_feed(tar, cld->p + off, cld->n - off < CHUNK ? cld->n - off : CHUNK, e);
    if (rc == CF_OK)
        rc = cf_tarin_end(tar, e);
    cf_tarin_free(tar);
    for (size_t i = 0; rc == CF_OK && i < cf_patchplan_count(s->plan); i++) {
        if (s->seen[i])
            continue;
        cf_sink sink = {count, s};
        cf_memberpatch *mp = NULL;
        rc = cf_memberpatch_new(s->plan, cf_patchplan_name(s->plan, i), 0, &sink, &mp, e);
        if (rc == CF_OK)
            rc = cf_memberpatch_end(mp, NULL, e);
        cf_memberpatch_free(mp);
    }
    cf_memberpatch_free(s->mp);
    cf_patchplan_free(s->plan);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = 10, a = 1;
    if (argc > 2 && strcmp(argv[1], "-r") == 0) {
        runs = atoi(argv[2]);
        a = 3;
    }
    if (runs < 1 || argc - a < 2) {
        fprintf(stderr, "usage: chaintime [-r RUNS] LOCAL.cld CDIFF...\n");
        return 2;
    }
    cf_err e = {0};
    cf_buf cld = CF_BUF_INIT;
    if (cf_file_read(argv[a], CF_MAX_DB_BYTES, &cld, &e) != CF_OK) {
        fprintf(stderr, "chaintime: %s\n", e.msg);
        return 1;
    }
    if (cld.n < CF_HDR_SIZE + 7 || memcmp(cld.p + CF_HDR_SIZE, "COPYING", 7) != 0) {
        fprintf(stderr, "chaintime: %s: not a plain CLD (header, then a tar starting with COPYING)\n",
                argv[a]);
        return 1;
    }
    size_t n = (size_t)(argc - a - 1);
    cf_buf *scripts = calloc(n, sizeof(*scripts));
    double *t = calloc((size_t)runs, sizeof(*t));
    if (scripts == NULL || t == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        cf_buf f = CF_BUF_INIT;
        cf_cdiff d = CF_CDIFF_INIT;
        if (cf_file_read(argv[a + 1 + i], CF_MAX_SCRIPT_BYTES, &f, &e) != CF_OK ||
            cf_cdiff_parse(f.p, f.n, &d, &e) != CF_OK) {
            fprintf(stderr, "chaintime: %s: %s\n", argv[a + 1 + i], e.msg);
            return 1;
        }
        scripts[i] = d.script; /* taken over; the rest of d holds nothing */
        cf_buf_free(&f);
    }
    static pass s; /* large: not on the stack */
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        if (run_once(&cld, scripts, n, &s, &e) != CF_OK) {
            fprintf(stderr, "chaintime: %s\n", e.msg);
            return 1;
        }
        t[r] = now() - t0;
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_double);
    printf("%zu script(s), %zu touched member(s), %.1f MiB in, %.1f MiB out: best %.2f ms, median %.2f ms "
           "(%d runs)\n",
           n, s.touched, (double)s.in / 1048576, (double)s.out / 1048576, t[0] * 1e3, t[runs / 2] * 1e3,
           runs);
    for (size_t i = 0; i < n; i++)
        cf_buf_free(&scripts[i]);
    free(scripts);
    free(t);
    cf_buf_free(&cld);
    return 0;
}
