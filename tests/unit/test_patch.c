/* The streaming patch engine against cf_cdiff_apply, the in-memory reference:
 * a differential oracle over random databases and random chains (valid and
 * not), the real test-2/test-3 cdiffs, every stricter rule of cdiff.c, the
 * member and MOVE bounds, MOVE cycles, long lines and member bytes that reach
 * the sink as they are fed. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/image.h"
#include "clamfresh/limits.h"
#include "clamfresh/patch.h"

/* ------------------------------------------------------------------ helpers */

typedef struct capture {
    cf_buf data;
    size_t writes;
    size_t fed;   /* bytes the member had been fed when the last write came */
    size_t limit; /* the most a write may bring the total to: fed + script bytes */
    int over;     /* a write went past limit */
} capture;

static size_t g_fed; /* bytes fed to the member being streamed */
static size_t g_extra;

static cf_code capture_write(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    capture *c = arg;
    if (cf_buf_append(&c->data, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    c->writes++;
    c->fed = g_fed;
    if (c->data.n > g_fed + g_extra)
        c->over = 1;
    return CF_OK;
}

/* Chunk sizes: 0 = random 1..7, 1 = single bytes, 2 = random up to 64 KiB, else that size. */
static size_t next_chunk(int mode, size_t left)
{
    size_t c;
    if (mode == 0)
        c = 1 + cf_test_rand() % 7;
    else if (mode == 1)
        c = 1;
    else if (mode == 2)
        c = 1 + cf_test_rand() % 65536;
    else
        c = (size_t)mode;
    return c < left ? c : left;
}

static cf_code stream_member(cf_patchplan *plan, const char *name, const cf_buf *in, int mode, cf_image *out,
                             cf_err *e)
{
    capture c;
    memset(&c, 0, sizeof(c));
    cf_sink sink = {capture_write, &c};
    cf_memberpatch *mp = NULL;
    g_fed = 0;
    cf_code rc = cf_memberpatch_new(plan, name, in != NULL, &sink, &mp, e);
    for (size_t off = 0; rc == CF_OK && in != NULL && off < in->n;) {
        size_t k = next_chunk(mode, in->n - off);
        g_fed += k;
        rc = cf_memberpatch_feed(mp, in->p + off, k, e);
        off += k;
    }
    int ex = -1;
    if (rc == CF_OK)
        rc = cf_memberpatch_end(mp, &ex, e);
    cf_memberpatch_free(mp);
    if (rc == CF_OK) {
        assert_int_equal(c.over, 0);
        assert_int_equal(ex, cf_patchplan_exists_after(plan, name, in != NULL));
        if (ex)
            rc = cf_image_put(out, name, c.data.p, c.data.n, e);
        else
            assert_int_equal(c.data.n, 0);
    }
    cf_buf_free(&c.data);
    return rc;
}

/* The caller's side of patch.h: input members in order (touched ones through
 * the engine, deferring MOVE destinations), then the created ones. */
static cf_code stream_chain(const cf_image *img, const cf_buf *scripts, const char *const *labels, size_t n,
                            int mode, cf_image *out, cf_err *e)
{
    cf_patchplan *plan = NULL;
    cf_code rc = cf_patchplan_new(scripts, labels, n, &plan, e);
    if (rc != CF_OK)
        return rc;
    /* What a member may receive beyond its own bytes: script text and moved lines. */
    g_extra = 0;
    for (size_t i = 0; i < n; i++)
        g_extra += scripts[i].n;
    for (size_t i = 0; i < img->nfiles; i++)
        g_extra += img->files[i].data.n;
    cf_image_init(out);
    size_t cnt = cf_patchplan_count(plan);
    /* jobs: touched names, each with its input or NULL */
    const cf_buf **in = calloc(cnt ? cnt : 1, sizeof(*in));
    int *done = calloc(cnt ? cnt : 1, sizeof(int));
    assert_non_null(in);
    assert_non_null(done);
    for (size_t i = 0; i < img->nfiles && rc == CF_OK; i++) {
        const cf_dbfile *f = &img->files[i];
        if (!cf_patchplan_touches(plan, f->name)) {
            rc = cf_image_put(out, f->name, f->data.p, f->data.n, e);
            continue;
        }
        for (size_t j = 0; j < cnt; j++)
            if (strcmp(cf_patchplan_name(plan, j), f->name) == 0)
                in[j] = &f->data;
    }
    size_t left = cnt;
    while (rc == CF_OK && left > 0) {
        size_t progress = 0;
        for (size_t j = 0; j < cnt && rc == CF_OK; j++) {
            const char *name = cf_patchplan_name(plan, j);
            if (done[j] || !cf_patchplan_ready(plan, name))
                continue;
            rc = stream_member(plan, name, in[j], mode, out, e);
            done[j] = 1;
            progress++;
            left--;
        }
        assert_true(rc != CF_OK || progress > 0);
    }
    free(in);
    free(done);
    cf_patchplan_free(plan);
    if (rc != CF_OK)
        cf_image_free(out);
    return rc;
}

static cf_code reference_chain(const cf_image *img, const cf_buf *scripts, size_t n, cf_image *out, cf_err *e)
{
    cf_code rc = cf_image_copy(out, img, e);
    for (size_t i = 0; i < n && rc == CF_OK; i++)
        rc = cf_cdiff_apply(out, scripts[i].p, scripts[i].n, e);
    if (rc != CF_OK)
        cf_image_free(out);
    return rc;
}

static int image_same_set(const cf_image *a, const cf_image *b)
{
    if (a->nfiles != b->nfiles)
        return 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        const cf_dbfile *f = cf_image_get(a, b->files[i].name);
        if (f == NULL || f->data.n != b->files[i].data.n ||
            (f->data.n && memcmp(f->data.p, b->files[i].data.p, f->data.n) != 0))
            return 0;
    }
    return 1;
}

static void put(cf_image *img, const char *name, const char *text)
{
    cf_err e = {0};
    assert_int_equal(cf_image_put(img, name, text, strlen(text), &e), CF_OK);
}

static void dump_image(const char *what, const cf_image *img)
{
    fprintf(stderr, "%s:\n", what);
    for (size_t i = 0; i < img->nfiles; i++)
        fprintf(stderr, "  %s: '%.*s'\n", img->files[i].name, (int)img->files[i].data.n,
                (const char *)img->files[i].data.p);
}

/* ---------------------------------------------------------- random oracle */

static const char *const names[] = {"a.ndb", "b.hdb", "c.ldb", "d.info", "e_x", "f"};
#define NNAMES (sizeof(names) / sizeof(names[0]))
static const char *const words[] = {"A", "AB", "ABC", "B", "Sig", "x", "", "A B", "Sig.x:1"};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* In a clean case the generator avoids the mistakes it otherwise makes on purpose. */
static int g_clean;

static const char *rname(void)
{
    return names[cf_test_rand() % NNAMES];
}

/* Any name, unless the case is clean: then a member of cur (ending in '\n'
 * when nl, named after `after` so that clean MOVEs form no cycle), or NULL. */
static const char *existing_name(const cf_image *cur, int nl, const char *after)
{
    if (!g_clean)
        return rname();
    for (int tries = 0; tries < 8 && cur->nfiles > 0; tries++) {
        const cf_dbfile *f = &cur->files[cf_test_rand() % cur->nfiles];
        if ((!nl || f->data.n == 0 || f->data.p[f->data.n - 1] == '\n') &&
            (after == NULL || strcmp(f->name, after) > 0))
            return f->name;
    }
    return NULL;
}

/* Any name, unless the case is clean: then one that cur lacks, or NULL. */
static const char *missing_name(const cf_image *cur)
{
    const char *n = rname();
    return !g_clean || cf_image_get(cur, n) == NULL ? n : NULL;
}

static void random_text(cf_buf *b)
{
    size_t lines = cf_test_rand() % 6;
    for (size_t i = 0; i < lines; i++)
        cf_buf_printf(b, "%s%u\n", words[cf_test_rand() % NWORDS], cf_test_rand() % 4);
    if (b->n > 0 && cf_test_rand() % 6 == 0)
        b->n--; /* no final newline */
    if (cf_test_rand() % 8 == 0)
        cf_buf_append_str(b, "tail");
}

static void random_image(cf_image *img)
{
    cf_err e = {0};
    cf_image_init(img);
    for (size_t i = 0; i < NNAMES; i++) {
        if (cf_test_rand() % 3 == 0)
            continue;
        cf_buf b = CF_BUF_INIT;
        random_text(&b);
        assert_int_equal(cf_image_put(img, names[i], b.p, b.n, &e), CF_OK);
        cf_buf_free(&b);
    }
}

/* Line ln (1-based) of a member of img, or NULL. */
static const uint8_t *line_of(const cf_image *img, const char *name, size_t ln, size_t *len, size_t *count)
{
    const cf_dbfile *f = cf_image_get(img, name);
    *count = 0;
    if (f == NULL)
        return NULL;
    const uint8_t *res = NULL;
    size_t off = 0;
    while (off < f->data.n) {
        const uint8_t *nl = memchr(f->data.p + off, '\n', f->data.n - off);
        size_t l = nl ? (size_t)(nl - (f->data.p + off)) : f->data.n - off;
        ++*count;
        if (*count == ln) {
            res = f->data.p + off;
            *len = l;
        }
        off += l + 1;
    }
    return res;
}

/* A prefix for line ln: usually a true one (up to its first space), sometimes wrong. */
static void prefix_for(cf_buf *s, const cf_image *cur, const char *name, size_t ln)
{
    size_t len = 0, count;
    const uint8_t *l = line_of(cur, name, ln, &len, &count);
    if (l == NULL || (!g_clean && cf_test_rand() % 10 == 0)) {
        cf_buf_append_str(s, cf_test_rand() % 2 ? "Q" : "");
        return;
    }
    const uint8_t *sp = memchr(l, ' ', len);
    size_t max = sp ? (size_t)(sp - l) : len;
    size_t k = cf_test_rand() % (max + 1);
    cf_buf_append(s, l, k);
}

/* Complete lines ('\n'-terminated) of a member of cur. */
static size_t complete_lines(const cf_image *cur, const char *name)
{
    const cf_dbfile *f = cf_image_get(cur, name);
    size_t k = 0;
    for (size_t i = 0; f != NULL && i < f->data.n; i++)
        k += f->data.p[i] == '\n';
    return k;
}

static size_t pick_line(const cf_image *cur, const char *name)
{
    size_t len, count;
    line_of(cur, name, 0, &len, &count);
    if (g_clean)
        count = complete_lines(cur, name);
    else if (cf_test_rand() % 12 == 0)
        return count + 1 + cf_test_rand() % 2; /* past the end */
    return 1 + cf_test_rand() % (count ? count : 1);
}

/* One command group (a block, an UNLINK or a MOVE), written with cur, the
 * reference's state so far, in view so that most of them are plausible. */
static void random_group(cf_buf *s, const cf_image *cur)
{
    unsigned r = cf_test_rand() % (g_clean ? 19 : 20);
    const char *name = r >= 12              ? existing_name(cur, 0, NULL)
                       : cf_test_rand() % 3 ? existing_name(cur, 1, NULL)
                                            : missing_name(cur);
    if (name == NULL)
        name = missing_name(cur);
    if (name == NULL)
        return;
    if (r < 12 || (r >= 15 && r < 19 && g_clean && cf_image_get(cur, name) == NULL)) {
        cf_buf_printf(s, "OPEN %s\n", name);
        size_t ops = cf_test_rand() % 5;
        for (size_t i = 0; i < ops; i++) {
            unsigned o = cf_test_rand() % 10;
            if (g_clean && complete_lines(cur, name) == 0)
                o = 0; /* nothing to edit: add */
            if (o < 3) {
                cf_buf_printf(s, "ADD %s%u\n", words[cf_test_rand() % NWORDS], cf_test_rand() % 9);
            } else if (o < 6) {
                size_t ln = pick_line(cur, name);
                cf_buf_printf(s, "DEL %zu ", ln);
                prefix_for(s, cur, name, ln);
                cf_buf_append_str(s, cf_test_rand() % 3 ? "\n" : " ignored words\n");
            } else {
                size_t ln = pick_line(cur, name);
                cf_buf_printf(s, "XCHG %zu ", ln);
                prefix_for(s, cur, name, ln);
                cf_buf_printf(s, " %s%u\n", words[cf_test_rand() % NWORDS], cf_test_rand() % 9);
            }
        }
        cf_buf_append_str(s, "CLOSE\n");
    } else if (r < 15) {
        cf_buf_printf(s, "UNLINK %s\n", name);
    } else if (r < 19) {
        if (g_clean && complete_lines(cur, name) == 0) {
            cf_buf_printf(s, "OPEN %s\nADD %s\nCLOSE\n", name, words[cf_test_rand() % NWORDS]);
            return;
        }
        const char *dst = existing_name(cur, 1, name);
        if (dst == NULL)
            return;
        size_t a = pick_line(cur, name), b = pick_line(cur, name);
        if (a > b && (g_clean || cf_test_rand() % 4))
            a = b;
        cf_buf_printf(s, "MOVE %s %s %zu ", name, dst, a);
        prefix_for(s, cur, name, a);
        cf_buf_printf(s, " %zu ", b);
        prefix_for(s, cur, name, b);
        cf_buf_append_str(s, "\n");
    } else {
        static const char *const junk[] = {"CLOSE\n", "OPEN x/y\n",   "ADD\n",
                                           "\n",      "# comment\n",  "DEL 0 A\n",
                                           "FOO\n",   "OPEN a.ndb\n", "UNLINK ..\n"};
        cf_buf_append_str(s, junk[cf_test_rand() % (sizeof(junk) / sizeof(junk[0]))]);
    }
}

static void random_script(cf_buf *s, cf_image *cur)
{
    size_t groups = 1 + cf_test_rand() % 5;
    for (size_t g = 0; g < groups; g++) {
        size_t mark = s->n;
        random_group(s, cur);
        /* keep cur in step with the reference where the group applies */
        cf_err e = {0};
        (void)cf_cdiff_apply(cur, s->p + mark, s->n - mark, &e);
    }
}

static void test_oracle(void **state)
{
    (void)state;
    size_t agree_ok = 0, agree_fail = 0, cycles = 0, cases = 20000;
    static const char *const labels[] = {"s0", "s1", "s2", "s3", "s4"};
    for (size_t c = 0; c < cases; c++) {
        cf_test_srand((uint32_t)(c * 2654435761u + 17));
        g_clean = c % 2;
        cf_image img, cur, ref, got;
        random_image(&img);
        cf_err e = {0}, e2 = {0};
        assert_int_equal(cf_image_copy(&cur, &img, &e), CF_OK);
        size_t n = 1 + cf_test_rand() % 5;
        cf_buf scripts[5];
        for (size_t i = 0; i < n; i++) {
            memset(&scripts[i], 0, sizeof(scripts[i]));
            random_script(&scripts[i], &cur);
        }
        int mode = (int)(cf_test_rand() % 4);
        if (mode == 3)
            mode = 4096;
        cf_code rr = reference_chain(&img, scripts, n, &ref, &e);
        cf_code rg = stream_chain(&img, scripts, labels, n, mode, &got, &e2);
        if (rg == CF_EUNSUPP && strstr(e2.msg, "cycle") != NULL) {
            cycles++;
            if (rr == CF_OK)
                cf_image_free(&ref);
        } else if ((rr == CF_OK) != (rg == CF_OK)) {
            dump_image("input", &img);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "script %zu:\n%.*s", i, (int)scripts[i].n, (const char *)scripts[i].p);
            fail_msg("case %zu: reference %s (%s), engine %s (%s)", c, rr == CF_OK ? "ok" : "fails", e.msg,
                     rg == CF_OK ? "ok" : "fails", e2.msg);
        } else if (rr == CF_OK) {
            if (!image_same_set(&ref, &got)) {
                dump_image("input", &img);
                for (size_t i = 0; i < n; i++)
                    fprintf(stderr, "script %zu:\n%.*s", i, (int)scripts[i].n, (const char *)scripts[i].p);
                dump_image("reference", &ref);
                dump_image("engine", &got);
                fail_msg("case %zu: results differ", c);
            }
            agree_ok++;
            cf_image_free(&ref);
            cf_image_free(&got);
        } else {
            /* the engine's message starts with the label of a script */
            assert_true(e2.msg[0] == 's' && e2.msg[1] >= '0' && e2.msg[1] < (char)('0' + n) &&
                        e2.msg[2] == ':');
            agree_fail++;
        }
        for (size_t i = 0; i < n; i++)
            cf_buf_free(&scripts[i]);
        cf_image_free(&img);
        cf_image_free(&cur);
    }
    fprintf(stderr, "oracle: %zu cases, %zu succeed in both, %zu fail in both, %zu MOVE cycles\n", cases,
            agree_ok, agree_fail, cycles);
    /* The generator must exercise both outcomes, and cycles must stay rare. */
    assert_true(agree_ok > cases / 10);
    assert_true(agree_fail > cases / 10);
    assert_true(cycles < cases / 10);
}

/* ------------------------------------------- long chains on large members */

/* Line lengths around the engine's internal boundaries: empty lines, 16- and
 * 64-byte multiples (its newline search reads 64 bytes at a time) and, now and
 * then, lines about and beyond the 16 KiB pieces it indexes fed bytes in. */
static size_t chain_line_len(void)
{
    static const size_t lens[] = {0, 1, 14, 15, 16, 17, 62, 63, 64, 65, 80, 127, 128};
    unsigned r = cf_test_rand() % 200;
    if (r == 0)
        return 16370 + cf_test_rand() % 30;
    if (r == 1)
        return 20000 + cf_test_rand() % 30000;
    return lens[cf_test_rand() % (sizeof(lens) / sizeof(lens[0]))];
}

static void chain_member(cf_buf *b, size_t lines)
{
    static const char alphabet[] = "ABCSigx0123456789:._ ";
    for (size_t i = 0; i < lines; i++) {
        size_t len = chain_line_len();
        /* a word first, so that prefixes are often shared and sometimes not */
        const char *w = words[cf_test_rand() % NWORDS];
        size_t wn = strlen(w) < len ? strlen(w) : len;
        cf_buf_append(b, w, wn);
        for (size_t k = wn; k < len; k++)
            cf_buf_append(b, &alphabet[cf_test_rand() % (sizeof(alphabet) - 1)], 1);
        cf_buf_append(b, "\n", 1);
    }
}

/* 20 to 40 scripts after each other, as a month of daily updates is, on
 * members of hundreds of lines and several pieces, fed in many chunkings:
 * every stage of a member must find its lines from the shared index exactly
 * where the reference finds them. */
static void test_long_chains(void **state)
{
    (void)state;
    enum { CASES = 240, MAXS = 40 };
    static const int modes[] = {0, 2, 4096, 16383, 16384, 16385, 100000};
    size_t agree_ok = 0, agree_fail = 0;
    for (size_t c = 0; c < CASES; c++) {
        cf_test_srand((uint32_t)(c * 2246822519u + 3));
        g_clean = c % 4 != 0;
        cf_image img, cur, ref, got;
        cf_err e = {0}, e2 = {0};
        cf_image_init(&img);
        for (size_t i = 0; i < NNAMES; i++) {
            if (cf_test_rand() % 4 == 0)
                continue;
            cf_buf b = CF_BUF_INIT;
            chain_member(&b, cf_test_rand() % 400);
            assert_int_equal(cf_image_put(&img, names[i], b.p, b.n, &e), CF_OK);
            cf_buf_free(&b);
        }
        assert_int_equal(cf_image_copy(&cur, &img, &e), CF_OK);
        size_t n = 20 + cf_test_rand() % (MAXS - 19);
        cf_buf scripts[MAXS];
        for (size_t i = 0; i < n; i++) {
            memset(&scripts[i], 0, sizeof(scripts[i]));
            random_script(&scripts[i], &cur);
        }
        int mode = modes[cf_test_rand() % (sizeof(modes) / sizeof(modes[0]))];
        cf_code rr = reference_chain(&img, scripts, n, &ref, &e);
        cf_code rg = stream_chain(&img, scripts, NULL, n, mode, &got, &e2);
        if (rg == CF_EUNSUPP && strstr(e2.msg, "cycle") != NULL) {
            if (rr == CF_OK)
                cf_image_free(&ref);
        } else if ((rr == CF_OK) != (rg == CF_OK)) {
            fail_msg("case %zu (%zu scripts, chunks %d): reference %s (%s), engine %s (%s)", c, n, mode,
                     rr == CF_OK ? "ok" : "fails", e.msg, rg == CF_OK ? "ok" : "fails", e2.msg);
        } else if (rr == CF_OK) {
            if (!image_same_set(&ref, &got))
                fail_msg("case %zu (%zu scripts, chunks %d): results differ", c, n, mode);
            agree_ok++;
            cf_image_free(&ref);
            cf_image_free(&got);
        } else {
            assert_true(strncmp(e2.msg, "script ", 7) == 0);
            agree_fail++;
        }
        for (size_t i = 0; i < n; i++)
            cf_buf_free(&scripts[i]);
        cf_image_free(&img);
        cf_image_free(&cur);
    }
    fprintf(stderr, "long chains: %d cases, %zu succeed in both, %zu fail in both\n", CASES, agree_ok,
            agree_fail);
    assert_true(agree_ok > CASES / 2);
    assert_true(agree_fail > 0);
}

/* ----------------------------------------------------------- real vectors */

static void test_vectors(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL) {
        fprintf(stderr, "SKIP: no vectors ($CF_VECTORS/clamav)\n");
        skip();
    }
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    cf_image v1, v3, ref, got;
    cf_cdiff d2 = CF_CDIFF_INIT, d3 = CF_CDIFF_INIT;
    cf_test_read_vector("test-1.cvd", &b);
    cf_image_init(&v1);
    assert_int_equal(cf_cvd_read(b.p, b.n, &v1, &e), CF_OK);
    cf_test_read_vector("test-3.cvd", &b);
    cf_image_init(&v3);
    assert_int_equal(cf_cvd_read(b.p, b.n, &v3, &e), CF_OK);
    cf_test_read_vector("test-2.cdiff", &b);
    assert_int_equal(cf_cdiff_parse(b.p, b.n, &d2, &e), CF_OK);
    cf_test_read_vector("test-3.cdiff", &b);
    assert_int_equal(cf_cdiff_parse(b.p, b.n, &d3, &e), CF_OK);
    cf_buf scripts[2] = {d2.script, d3.script};
    static const char *const labels[] = {"test-2.cdiff", "test-3.cdiff"};
    for (int mode = 0; mode < 3; mode++) {
        assert_int_equal(reference_chain(&v1, scripts, 2, &ref, &e), CF_OK);
        if (stream_chain(&v1, scripts, labels, 2, mode, &got, &e) != CF_OK)
            fail_msg("test-1 + test-2 + test-3: %s", e.msg);
        assert_true(image_same_set(&got, &ref));
        assert_true(image_same_set(&got, &v3));
        cf_image_free(&ref);
        cf_image_free(&got);
    }
    /* test-3 alone on test-1 fails in both, and the engine names test-3.cdiff. */
    assert_int_not_equal(reference_chain(&v1, scripts + 1, 1, &ref, &e), CF_OK);
    assert_int_not_equal(stream_chain(&v1, scripts + 1, labels + 1, 1, 2, &got, &e), CF_OK);
    assert_memory_equal(e.msg, "test-3.cdiff: ", 14);
    cf_cdiff_free(&d2);
    cf_cdiff_free(&d3);
    cf_buf_free(&b);
    cf_image_free(&v1);
    cf_image_free(&v3);
}

/* ----------------------------------------------------------- stricter rules */

typedef struct rule_case {
    const char *script;
    const char *member; /* must be named in the message, or NULL */
    const char *line;   /* must appear in the message ("script line N", "line N") */
    size_t len;         /* of the script, when it holds a NUL; else 0 */
} rule_case;

static void base_image(cf_image *img)
{
    cf_image_init(img);
    put(img, "a.ndb", "A1\nB2\nC3\n");
    put(img, "b.hdb", "X1\nY2\n");
    put(img, "nonl.cfg", "no final newline");
    put(img, "empty.ign", "");
}

static void test_stricter_rules(void **state)
{
    (void)state;
    static const rule_case cases[] = {
        {"OPEN a.ndb\nADD x\nCLOSE", NULL, "script line 3", 0},                    /* no final newline */
        {"OPEN a.ndb\r\nADD x\nCLOSE\n", NULL, "script line 1", 0},                /* CR */
        {"OPEN a.ndb\nADD x\0y\nCLOSE\n", "a.ndb", "script line 2", 25},           /* NUL */
        {"OPEN a.ndb\n\nCLOSE\n", "in OPEN a.ndb", "script line 2", 0},            /* empty line */
        {"OPEN a.ndb\nFOO 1\nCLOSE\n", "in OPEN a.ndb", "script line 2", 0},       /* unknown command */
        {"OPEN a.ndb\nADD\nCLOSE\n", "a.ndb", "script line 2", 0},                 /* ADD without space */
        {"OPEN a.ndb\nADD x\nCLOSE a.ndb\n", "in OPEN a.ndb", "script line 3", 0}, /* CLOSE takes nothing */
        {"OPEN a-b.ndb\nADD x\nCLOSE\n", "a-b.ndb", "script line 1", 0},           /* name rule */
        {"OPEN ../a.ndb\nADD x\nCLOSE\n", "../a.ndb", "script line 1", 0},
        {"UNLINK ..\n", "..", "script line 1", 0},
        {"MOVE a.ndb b/c 1 A 1 A\n", "b/c", "script line 1", 0},                 /* MOVE names too */
        {"OPEN a.ndb\nADD x\n", "a.ndb", "script line 2", 0},                    /* ends open */
        {"OPEN new.ndb\nDEL 1 A\nCLOSE\n", "new.ndb", "script line 3", 0},       /* edit, no file */
        {"OPEN nonl.cfg\nXCHG 1 no x\nCLOSE\n", "nonl.cfg", "script line 3", 0}, /* no final '\n' */
        {"OPEN a.ndb\nXCHG 2 C y\nCLOSE\n", "a.ndb", "line 2", 0},               /* prefix */
        {"OPEN a.ndb\nDEL 4 \nCLOSE\n", "a.ndb", "line 4", 0},                   /* past the end */
        {"OPEN empty.ign\nDEL 1 \nCLOSE\n", "empty.ign", "line 1", 0},
        {"OPEN a.ndb\nDEL 0 A\nCLOSE\n", "a.ndb", "script line 2", 0},      /* line 0 */
        {"OPEN nonl.cfg\nADD x\nCLOSE\n", "nonl.cfg", "script line 3", 0},  /* ADD, no final '\n' */
        {"UNLINK gone.ndb\n", "gone.ndb", "script line 1", 0},              /* UNLINK missing */
        {"MOVE a.ndb b.hdb 2 B 1 A\n", "a.ndb", "script line 1", 0},        /* start > end */
        {"MOVE a.ndb gone.hdb 1 A 1 A\n", "gone.hdb", "script line 1", 0},  /* no destination */
        {"MOVE gone.ndb a.ndb 1 A 1 A\n", "gone.ndb", "script line 1", 0},  /* no source */
        {"MOVE a.ndb nonl.cfg 1 A 1 A\n", "nonl.cfg", "script line 1", 0},  /* dst without '\n' */
        {"MOVE a.ndb a.ndb 1 A 1 A\n", "a.ndb", "script line 1", 0},        /* same member */
        {"MOVE a.ndb b.hdb 1 A 2 C\n", "a.ndb", "line 2", 0},               /* end prefix */
        {"MOVE a.ndb b.hdb 1 Z 2 B\n", "a.ndb", "line 1", 0},               /* start prefix */
        {"MOVE a.ndb b.hdb 2 B 5 X\n", "a.ndb", "line 5", 0},               /* past the end */
        {"MOVE a.ndb b.hdb 1 A 1\n", NULL, "script line 1", 0},             /* 5 arguments */
        {"MOVE a.ndb b.hdb 1 A 1 A \n", NULL, "script line 1", 0},          /* 7 arguments */
        {"OPEN a.ndb\nUNLINK b.hdb\nCLOSE\n", "a.ndb", "script line 2", 0}, /* UNLINK while open */
        {"OPEN a.ndb\nOPEN b.hdb\n", "a.ndb", "script line 2", 0},          /* OPEN while open */
        {"OPEN a.ndb\nXCHG 1 A\nCLOSE\n", "a.ndb", "script line 2", 0},     /* XCHG without line */
        {"OPEN a.ndb\nDEL 1\nCLOSE\n", "a.ndb", "script line 2", 0},        /* DEL without prefix */
        {"OPEN a.ndb\nDEL x A\nCLOSE\n", "a.ndb", "script line 2", 0},      /* bad number */
        {"ADD x\n", NULL, "script line 1", 0},                              /* ADD outside a block */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rule_case *rc = &cases[i];
        cf_image img, out;
        cf_err e = {0};
        base_image(&img);
        size_t len = rc->len ? rc->len : strlen(rc->script);
        cf_buf s = {(uint8_t *)rc->script, len, len};
        /* Both engines refuse it. */
        assert_int_not_equal(cf_cdiff_apply(&img, s.p, s.n, &e), CF_OK);
        /* After a harmless first script, so that the label names the second one. */
        static const char first[] = "OPEN b.hdb\nADD more\nCLOSE\n";
        cf_buf chain[2] = {{(uint8_t *)first, sizeof(first) - 1, 0}, s};
        static const char *const labels[] = {"daily-1.cdiff", "daily-2.cdiff"};
        cf_err_clear(&e);
        cf_code code = stream_chain(&img, chain, labels, 2, 0, &out, &e);
        if (code == CF_OK)
            fail_msg("case %zu ('%s'): the engine accepts it", i, rc->script);
        if (strncmp(e.msg, "daily-2.cdiff: ", 15) != 0 || (rc->member && !strstr(e.msg, rc->member)) ||
            !strstr(e.msg, rc->line))
            fail_msg("case %zu ('%s'): message '%s'", i, rc->script, e.msg);
        cf_image_free(&img);
    }
}

/* ------------------------------------------------------------ bounds, cycles */

static void test_member_limit(void **state)
{
    (void)state;
    cf_buf s = CF_BUF_INIT;
    for (size_t i = 0; i < 100000; i++)
        cf_buf_printf(&s, "OPEN f%zu.ndb\nADD x\nCLOSE\n", i);
    cf_patchplan *plan = NULL;
    cf_err e = {0};
    const char *label = "big.cdiff";
    assert_int_equal(cf_patchplan_new(&s, &label, 1, &plan, &e), CF_ETOOBIG);
    assert_null(plan);
    char want[64];
    snprintf(want, sizeof(want), "f%d.ndb", CF_MAX_MEMBERS);
    assert_non_null(strstr(e.msg, want));
    assert_memory_equal(e.msg, "big.cdiff: script line ", 23);
    /* Exactly the limit is fine. */
    s.n = 0;
    for (size_t i = 0; i < CF_MAX_MEMBERS; i++)
        cf_buf_printf(&s, "UNLINK f%zu.ndb\n", i);
    assert_int_equal(cf_patchplan_new(&s, &label, 1, &plan, &e), CF_OK);
    assert_int_equal(cf_patchplan_count(plan), CF_MAX_MEMBERS);
    assert_string_equal(cf_patchplan_name(plan, 17), "f17.ndb");
    assert_true(cf_patchplan_touches(plan, "f4095.ndb"));
    assert_false(cf_patchplan_touches(plan, "f4096.ndb"));
    cf_patchplan_free(plan);
    cf_buf_free(&s);
}

static void test_move_cycle(void **state)
{
    (void)state;
    static const char s1[] = "MOVE a.ndb b.hdb 1 A 1 A\n", s2[] = "MOVE c.ldb a.ndb 1 Z 1 Z\n",
                      s3[] = "MOVE b.hdb c.ldb 1 X 1 X\n";
    cf_buf chain[3] = {{(uint8_t *)s1, sizeof(s1) - 1, 0},
                       {(uint8_t *)s2, sizeof(s2) - 1, 0},
                       {(uint8_t *)s3, sizeof(s3) - 1, 0}};
    static const char *const labels[] = {"x-1.cdiff", "x-2.cdiff", "x-3.cdiff"};
    cf_patchplan *plan = NULL;
    cf_err e = {0};
    assert_int_equal(cf_patchplan_new(chain, labels, 3, &plan, &e), CF_EUNSUPP);
    assert_non_null(strstr(e.msg, "cycle"));
    assert_memory_equal(e.msg, "x-", 2);
    /* Two of them form no cycle: the order is c, a, b. */
    assert_int_equal(cf_patchplan_new(chain, labels, 2, &plan, &e), CF_OK);
    assert_false(cf_patchplan_ready(plan, "b.hdb"));
    assert_false(cf_patchplan_ready(plan, "a.ndb"));
    assert_true(cf_patchplan_ready(plan, "c.ldb"));
    assert_true(cf_patchplan_ready(plan, "untouched"));
    /* Starting a member before its source is refused. */
    capture c;
    memset(&c, 0, sizeof(c));
    cf_sink sink = {capture_write, &c};
    cf_memberpatch *mp = NULL;
    assert_int_equal(cf_memberpatch_new(plan, "a.ndb", 1, &sink, &mp, &e), CF_EINVAL);
    cf_patchplan_free(plan);
    /* And the chain applies as the reference does. */
    cf_image img, ref, got;
    cf_image_init(&img);
    put(&img, "a.ndb", "A1\nA2\n");
    put(&img, "b.hdb", "B1\n");
    put(&img, "c.ldb", "Z1\nZ2\n");
    assert_int_equal(reference_chain(&img, chain, 2, &ref, &e), CF_OK);
    assert_int_equal(stream_chain(&img, chain, labels, 2, 1, &got, &e), CF_OK);
    assert_true(image_same_set(&got, &ref));
    const cf_dbfile *b = cf_image_get(&got, "b.hdb");
    assert_int_equal(b->data.n, 6);
    assert_memory_equal(b->data.p, "B1\nA1\n", 6);
    assert_memory_equal(cf_image_get(&got, "a.ndb")->data.p, "A2\nZ1\n", 6);
    cf_image_free(&img);
    cf_image_free(&ref);
    cf_image_free(&got);
    cf_buf_free(&c.data);
}

static void test_move_bound(void **state)
{
    (void)state;
    /* One line longer than CF_MAX_MOVE_BYTES, moved: refused while streaming. */
    size_t n = CF_MAX_MOVE_BYTES + 2;
    cf_buf big = CF_BUF_INIT;
    assert_int_equal(cf_buf_reserve(&big, n), CF_OK);
    memset(big.p, 'M', n - 1);
    big.p[n - 1] = '\n';
    big.n = n;
    static const char s[] = "MOVE a.ndb b.hdb 1 MM 1 M\n";
    cf_buf chain[1] = {{(uint8_t *)s, sizeof(s) - 1, 0}};
    const char *label = "m.cdiff";
    cf_patchplan *plan = NULL;
    cf_err e = {0};
    assert_int_equal(cf_patchplan_new(chain, &label, 1, &plan, &e), CF_OK);
    capture c;
    memset(&c, 0, sizeof(c));
    cf_sink sink = {capture_write, &c};
    cf_memberpatch *mp = NULL;
    assert_int_equal(cf_memberpatch_new(plan, "a.ndb", 1, &sink, &mp, &e), CF_OK);
    cf_code rc = CF_OK;
    for (size_t off = 0; off < n && rc == CF_OK; off += 1 << 20)
        rc = cf_memberpatch_feed(mp, big.p + off, n - off < (1 << 20) ? n - off : (1 << 20), &e);
    assert_int_equal(rc, CF_ETOOBIG);
    assert_non_null(strstr(e.msg, "m.cdiff: script line 1: MOVE a.ndb b.hdb"));
    cf_memberpatch_free(mp);
    cf_patchplan_free(plan);
    cf_buf_free(&big);
    cf_buf_free(&c.data);
}

/* ------------------------------------------------------ long lines, streaming */

static void test_long_lines(void **state)
{
    (void)state;
    size_t L = 1 << 20;
    cf_buf m = CF_BUF_INIT, s = CF_BUF_INIT;
    /* line 1: 1 MiB of 'a'; line 2: 'P' + 1 MiB of 'b'; line 3: 1 MiB of 'c' */
    assert_int_equal(cf_buf_reserve(&m, 3 * L + 8), CF_OK);
    memset(m.p, 'a', L);
    m.p[L] = '\n';
    m.p[L + 1] = 'P';
    memset(m.p + L + 2, 'b', L);
    m.p[2 * L + 2] = '\n';
    memset(m.p + 2 * L + 3, 'c', L);
    m.p[3 * L + 3] = '\n';
    m.n = 3 * L + 4;
    /* XCHG line 2 whose prefix (100,001 bytes) spans many chunks; DEL line 3. */
    cf_buf_append_str(&s, "OPEN a.ndb\nXCHG 2 P");
    for (size_t i = 0; i < 100000; i++)
        cf_buf_append(&s, "b", 1);
    cf_buf_append_str(&s, " new\nDEL 3 ccc\nADD tail\nCLOSE\n");
    cf_image img, ref, got;
    cf_err e = {0};
    cf_image_init(&img);
    assert_int_equal(cf_image_put(&img, "a.ndb", m.p, m.n, &e), CF_OK);
    const char *label = "long.cdiff";
    assert_int_equal(reference_chain(&img, &s, 1, &ref, &e), CF_OK);
    for (int mode = 2; mode <= 4096; mode = mode == 2 ? 4093 : 8192) {
        assert_int_equal(stream_chain(&img, &s, &label, 1, mode, &got, &e), CF_OK);
        assert_true(image_same_set(&got, &ref));
        assert_int_equal(cf_image_get(&got, "a.ndb")->data.n, L + 1 + 4 + 5);
        cf_image_free(&got);
    }
    /* A wrong byte at 99,999 of the prefix is found. */
    s.p[sizeof("OPEN a.ndb\nXCHG 2 P") - 1 + 99999] = 'x';
    assert_int_equal(stream_chain(&img, &s, &label, 1, 4093, &got, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "long.cdiff: script line 5: CLOSE a.ndb: XCHG of line 2"));
    cf_image_free(&img);
    cf_image_free(&ref);
    cf_buf_free(&m);
    cf_buf_free(&s);
}

/* Untouched spans reach the sink as they are fed: nothing is held back. */
static void test_streams_as_fed(void **state)
{
    (void)state;
    static const char script[] = "OPEN a.ndb\nXCHG 1 A B\nCLOSE\n";
    cf_buf s = {(uint8_t *)script, sizeof(script) - 1, 0};
    const char *label = "s.cdiff";
    cf_patchplan *plan = NULL;
    cf_err e = {0};
    assert_int_equal(cf_patchplan_new(&s, &label, 1, &plan, &e), CF_OK);
    capture c;
    memset(&c, 0, sizeof(c));
    cf_sink sink = {capture_write, &c};
    cf_memberpatch *mp = NULL;
    g_fed = 5;
    g_extra = s.n;
    assert_int_equal(cf_memberpatch_new(plan, "a.ndb", 1, &sink, &mp, &e), CF_OK);
    assert_int_equal(cf_memberpatch_feed(mp, (const uint8_t *)"Aold\n", 5, &e), CF_OK);
    assert_int_equal(c.data.n, 2); /* "B\n" as soon as line 1 ended */
    uint8_t chunk[4096];
    memset(chunk, 'z', sizeof(chunk));
    for (size_t i = 0; i < 256; i++) {
        g_fed += sizeof(chunk);
        assert_int_equal(cf_memberpatch_feed(mp, chunk, sizeof(chunk), &e), CF_OK);
        assert_int_equal(c.data.n, 2 + (i + 1) * sizeof(chunk));
    }
    assert_int_equal(cf_memberpatch_feed(mp, (const uint8_t *)"\n", 1, &e), CF_OK);
    int ex = 0;
    assert_int_equal(cf_memberpatch_end(mp, &ex, &e), CF_OK);
    assert_int_equal(ex, 1);
    assert_int_equal(c.data.n, 3 + 256 * sizeof(chunk));
    cf_memberpatch_free(mp);
    /* A name the chain does not touch passes through. */
    assert_int_equal(cf_memberpatch_new(plan, "other", 1, &sink, &mp, &e), CF_OK);
    assert_int_equal(cf_memberpatch_feed(mp, (const uint8_t *)"x", 1, &e), CF_OK);
    assert_int_equal(cf_memberpatch_end(mp, &ex, &e), CF_OK);
    assert_int_equal(ex, 1);
    assert_int_equal(c.data.p[c.data.n - 1], 'x');
    cf_memberpatch_free(mp);
    /* A touched member runs once per plan. */
    assert_int_equal(cf_memberpatch_new(plan, "a.ndb", 1, &sink, &mp, &e), CF_EINVAL);
    cf_patchplan_free(plan);
    cf_buf_free(&c.data);
}

static void test_three_scripts(void **state)
{
    (void)state;
    static const char s1[] = "OPEN a.ndb\nXCHG 2 B b2\nADD D4\nCLOSE\n";
    static const char s2[] = "OPEN a.ndb\nDEL 1 A\nXCHG 4 D D4x\nCLOSE\nUNLINK b.hdb\n";
    static const char s3[] = "OPEN a.ndb\nXCHG 1 b b2y\nADD E5\nCLOSE\nOPEN b.hdb\nADD new\nCLOSE\n"
                             "MOVE a.ndb b.hdb 2 C3 3 D4x\n";
    cf_buf chain[3] = {{(uint8_t *)s1, sizeof(s1) - 1, 0},
                       {(uint8_t *)s2, sizeof(s2) - 1, 0},
                       {(uint8_t *)s3, sizeof(s3) - 1, 0}};
    static const char *const labels[] = {"d-1.cdiff", "d-2.cdiff", "d-3.cdiff"};
    cf_image img, ref, got;
    cf_err e = {0};
    cf_image_init(&img);
    put(&img, "a.ndb", "A1\nB2\nC3\n");
    put(&img, "b.hdb", "old\n");
    assert_int_equal(reference_chain(&img, chain, 3, &ref, &e), CF_OK);
    for (int mode = 0; mode < 3; mode++) {
        if (stream_chain(&img, chain, labels, 3, mode, &got, &e) != CF_OK)
            fail_msg("%s", e.msg);
        assert_true(image_same_set(&got, &ref));
        const cf_dbfile *a = cf_image_get(&got, "a.ndb"), *b = cf_image_get(&got, "b.hdb");
        assert_int_equal(a->data.n, 7);
        assert_memory_equal(a->data.p, "b2y\nE5\n", 7);
        assert_int_equal(b->data.n, 11);
        assert_memory_equal(b->data.p, "new\nC3\nD4x\n", 11);
        cf_image_free(&got);
    }
    cf_image_free(&ref);
    cf_patchplan *plan = NULL;
    assert_int_equal(cf_patchplan_new(chain, labels, 3, &plan, &e), CF_OK);
    assert_int_equal(cf_patchplan_count(plan), 2);
    assert_string_equal(cf_patchplan_name(plan, 0), "a.ndb");
    assert_int_equal(cf_patchplan_exists_after(plan, "b.hdb", 1), 1);
    assert_int_equal(cf_patchplan_exists_after(plan, "c", 0), 0);
    cf_patchplan_free(plan);
    /* The third edit on a line that is no longer there fails, naming d-3. */
    static const char bad[] = "OPEN a.ndb\nXCHG 1 A x\nCLOSE\n";
    chain[2] = (cf_buf){(uint8_t *)bad, sizeof(bad) - 1, 0};
    assert_int_not_equal(reference_chain(&img, chain, 3, &ref, &e), CF_OK);
    assert_int_equal(stream_chain(&img, chain, labels, 3, 1, &got, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "d-3.cdiff: script line 3: CLOSE a.ndb: XCHG of line 1"));
    cf_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle),         cmocka_unit_test(test_long_chains),
        cmocka_unit_test(test_vectors),        cmocka_unit_test(test_stricter_rules),
        cmocka_unit_test(test_member_limit),   cmocka_unit_test(test_move_cycle),
        cmocka_unit_test(test_move_bound),     cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_streams_as_fed), cmocka_unit_test(test_three_scripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
