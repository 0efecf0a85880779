/* cdiff with self-made fixtures: every script command, every error of
 * formats.md §6.5 (each must leave the image untouched), the container round
 * trip with a key made here, and make_script/apply as a property. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/dsig.h"
#include "clamfresh/gz.h"
#include "clamfresh/image.h"

static cf_rsakey *g_key;

static void put(cf_image *img, const char *name, const char *text)
{
    cf_err e = {0};
    assert_int_equal(cf_image_put(img, name, text, strlen(text), &e), CF_OK);
}

static void assert_member(const cf_image *img, const char *name, const char *text)
{
    const cf_dbfile *f = cf_image_get(img, name);
    if (f == NULL)
        fail_msg("member %s missing", name);
    if (f->data.n != strlen(text) || memcmp(f->data.p, text, f->data.n) != 0)
        fail_msg("member %s is '%.*s', expected '%s'", name, (int)f->data.n, (const char *)f->data.p, text);
}

/* Exact equality: same members, same order, same bytes. */
static int image_same(const cf_image *a, const cf_image *b)
{
    if (a->nfiles != b->nfiles)
        return 0;
    for (size_t i = 0; i < a->nfiles; i++)
        if (strcmp(a->files[i].name, b->files[i].name) != 0 || a->files[i].data.n != b->files[i].data.n ||
            (a->files[i].data.n && memcmp(a->files[i].data.p, b->files[i].data.p, a->files[i].data.n) != 0))
            return 0;
    return 1;
}

/* Equality as sets of (name, bytes): what make_script promises. */
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

static cf_code apply_str(cf_image *img, const char *script, cf_err *e)
{
    return cf_cdiff_apply(img, (const uint8_t *)script, strlen(script), e);
}

static void base_image(cf_image *img)
{
    cf_image_init(img);
    put(img, "COPYING", "license\n");
    put(img, "a.ndb", "l1\nl2\nl3\nl4\nl5\n");
    put(img, "b.ldb", "x\n");
    put(img, "c.hdb", "h\n");
    put(img, "nonl.ndb", "abc");
    put(img, "empty.ndb", "");
}

static void test_apply_all_commands(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    base_image(&img);
    const char *script = "# a comment line\n"
                         "#LSIZE 100\n"
                         "OPEN a.ndb\n"
                         "DEL 2 l2 extra words are ignored\n"
                         "XCHG 4 l4 first replacement\n"
                         "XCHG 4 l wins four\n" /* same line again: the last edit wins; prefix match */
                         "ADD added line: with colon\n"
                         "ADD \n"
                         "CLOSE\n"
                         /* a.ndb is now l1 l3 "wins four" l5 "added line: with colon" "" */
                         "MOVE a.ndb b.ldb 1 l1 1 l1\n"   /* single line */
                         "MOVE a.ndb b.ldb 2 wins 3 l5\n" /* two lines, numbered after the first MOVE */
                         "UNLINK c.hdb\n"
                         "OPEN new_file.db\n"
                         "ADD hello world\n"
                         "CLOSE\n"
                         "OPEN empty.ndb\n"
                         "ADD first\n"
                         "CLOSE\n"
                         "OPEN untouched.ndb\n" /* no edits and no adds: nothing happens */
                         "CLOSE\n";
    assert_int_equal(apply_str(&img, script, &e), CF_OK);
    assert_member(&img, "a.ndb", "l3\nadded line: with colon\n\n");
    assert_member(&img, "b.ldb", "x\nl1\nwins four\nl5\n");
    assert_member(&img, "new_file.db", "hello world\n");
    assert_member(&img, "empty.ndb", "first\n");
    assert_null(cf_image_get(&img, "c.hdb"));
    assert_null(cf_image_get(&img, "untouched.ndb"));
    /* Members keep their places; the created one comes last. */
    assert_string_equal(img.files[0].name, "COPYING");
    assert_string_equal(img.files[1].name, "a.ndb");
    assert_string_equal(img.files[img.nfiles - 1].name, "new_file.db");
    assert_int_equal(img.nfiles, 6);
    cf_image_free(&img);
}

static void test_apply_edit_semantics(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    base_image(&img);
    /* Line numbers refer to the file at OPEN: deleting 1 and 2 does not shift 3. */
    assert_int_equal(
        apply_str(&img, "OPEN a.ndb\nDEL 1 l1\nDEL 2 l2\nXCHG 3 l3 three\nDEL 5 l5\nCLOSE\n", &e), CF_OK);
    assert_member(&img, "a.ndb", "three\nl4\n");
    /* XCHG to an empty line, and a line with spaces. */
    assert_int_equal(apply_str(&img, "OPEN a.ndb\nXCHG 1 three \nXCHG 2 l4 a b  c\nCLOSE\n", &e), CF_OK);
    assert_member(&img, "a.ndb", "\na b  c\n");
    /* Empty prefix matches any line, also an empty one. */
    assert_int_equal(apply_str(&img, "OPEN a.ndb\nDEL 1 \nCLOSE\n", &e), CF_OK);
    assert_member(&img, "a.ndb", "a b  c\n");
    /* Deleting every line leaves an existing, empty file. */
    assert_int_equal(apply_str(&img, "OPEN a.ndb\nDEL 1 a\nCLOSE\n", &e), CF_OK);
    assert_member(&img, "a.ndb", "");
    /* An empty script changes nothing. */
    assert_int_equal(cf_cdiff_apply(&img, (const uint8_t *)"", 0, &e), CF_OK);
    /* UNLINK then re-create in the same script (sigtool's rewrite form). */
    assert_int_equal(apply_str(&img, "UNLINK b.ldb\nOPEN b.ldb\nADD y\nCLOSE\n", &e), CF_OK);
    assert_member(&img, "b.ldb", "y\n");
    cf_image_free(&img);
}

struct bad_case {
    const char *script;
    const char *msg; /* expected in the error message */
};

static const struct bad_case bad_cases[] = {
    {"OPEN a.ndb\nDEL 2 zz\nCLOSE\n", "does not start with 'zz'"},
    {"OPEN a.ndb\nXCHG 3 l4 new\nCLOSE\n", "does not start with 'l4'"},
    {"OPEN a.ndb\nDEL 6 l\nCLOSE\n", "past the end"},
    {"OPEN a.ndb\nXCHG 9 l x\nCLOSE\n", "past the end"},
    {"OPEN a.ndb\nDEL 0 l\nCLOSE\n", "line number 0"},
    {"OPEN a.ndb\nDEL x1 l\nCLOSE\n", "bad line number"},
    {"OPEN a.ndb\nDEL 1\nCLOSE\n", "missing the line prefix"},
    {"OPEN a.ndb\nXCHG 1 l1\nCLOSE\n", "missing the new line"},
    {"OPEN a.ndb\nOPEN b.ldb\nCLOSE\n", "OPEN while a.ndb is still open"},
    {"ADD x\n", "ADD without an open file"},
    {"DEL 1 l1\n", "DEL without an open file"},
    {"XCHG 1 l1 x\n", "XCHG without an open file"},
    {"CLOSE\n", "CLOSE without an open file"},
    {"OPEN ../x\nADD x\nCLOSE\n", "invalid database name '../x'"},
    {"OPEN a/b\nADD x\nCLOSE\n", "invalid database name 'a/b'"},
    {"OPEN a-b.ndb\nADD x\nCLOSE\n", "invalid database name"},
    {"OPEN a b\nADD x\nCLOSE\n", "invalid database name"},
    {"OPEN ..\nCLOSE\n", "invalid database name"},
    {"OPEN .\nCLOSE\n", "invalid database name"},
    {"OPEN \nCLOSE\n", "invalid database name"},
    {"OPEN\nCLOSE\n", "missing the file name"},
    {"UNLINK ../a.ndb\n", "invalid database name"},
    {"UNLINK a/b\n", "invalid database name"},
    {"MOVE ../x b.ldb 1 l 1 l\n", "invalid database name"},
    {"MOVE a.ndb b/c 1 l 1 l\n", "invalid database name"},
    {"OPEN a.ndb\n\nCLOSE\n", "empty line"},
    {"\n", "empty line"},
    {"OPEN a.ndb\r\nADD x\r\nCLOSE\r\n", "carriage return"},
    {"OPEN a.ndb\nADD x\r\nCLOSE\n", "carriage return"},
    {"FOO bar\n", "unknown command 'FOO'"},
    {"open a.ndb\nclose\n", "unknown command 'open'"},
    {"CLOSEX\n", "unknown command"},
    {" OPEN a.ndb\nCLOSE\n", "unknown command"},
    {"UNLINK missing.ndb\n", "missing.ndb does not exist"},
    {"MOVE a.ndb missing.ndb 1 l1 2 l2\n", "destination missing.ndb does not exist"},
    {"MOVE missing.ndb a.ndb 1 l1 2 l2\n", "source missing.ndb does not exist"},
    {"MOVE a.ndb b.ldb 1 zz 2 l2\n", "line 1 does not start with 'zz'"},
    {"MOVE a.ndb b.ldb 1 l1 2 zz\n", "line 2 does not start with 'zz'"},
    {"MOVE a.ndb b.ldb 3 l3 2 l2\n", "after end line"},
    {"MOVE a.ndb b.ldb 1 l1 9 l\n", "no complete line 9"},
    {"MOVE a.ndb a.ndb 1 l1 1 l1\n", "source and destination"},
    {"MOVE a.ndb b.ldb 1 l1 1\n", "expected 6 arguments"},
    {"MOVE a.ndb b.ldb 1 l1 1 l1 extra\n", "expected 6 arguments"},
    {"MOVE a.ndb nonl.ndb 1 l1 1 l1\n", "does not end with a newline"},
    {"OPEN a.ndb\nMOVE a.ndb b.ldb 1 l1 1 l1\nCLOSE\n", "MOVE while a.ndb is open"},
    {"OPEN a.ndb\nUNLINK b.ldb\nCLOSE\n", "UNLINK while a.ndb is open"},
    {"OPEN a.ndb\nADD x\n", "still open"},
    {"OPEN a.ndb\nADD x\nCLOSE", "no final newline"},
    {"OPEN a.ndb\nADD\nCLOSE\n", "ADD: missing the line"},
    {"OPEN a.ndb\nCLOSE now\n", "CLOSE takes no argument"},
    {"OPEN missing.ndb\nDEL 1 x\nCLOSE\n", "does not exist"},
    {"OPEN nonl.ndb\nADD x\nCLOSE\n", "does not end with a newline"},
    {"OPEN nonl.ndb\nDEL 1 abc\nCLOSE\n", "no final newline"},
    {"OPEN empty.ndb\nDEL 1 a\nCLOSE\n", "past the end"},
    /* Earlier commands succeeded, a later one fails: nothing may stick. */
    {"UNLINK c.hdb\nOPEN a.ndb\nADD z\nCLOSE\nOPEN new.db\nADD n\nCLOSE\nOPEN b.ldb\nDEL 5 x\nCLOSE\n",
     "past the end"},
    {"MOVE a.ndb b.ldb 1 l1 2 l2\nUNLINK c.hdb\nUNLINK c.hdb\n", "c.hdb does not exist"},
};

static void test_apply_errors_leave_image_unchanged(void **state)
{
    (void)state;
    cf_image img, ref;
    cf_err e = {0};
    base_image(&img);
    assert_int_equal(cf_image_copy(&ref, &img, &e), CF_OK);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        cf_err_clear(&e);
        cf_code rc = apply_str(&img, bad_cases[i].script, &e);
        if (rc == CF_OK)
            fail_msg("case %zu applied: %s", i, bad_cases[i].script);
        if (strstr(e.msg, bad_cases[i].msg) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.msg, bad_cases[i].msg);
        if (strstr(e.msg, "script line ") == NULL)
            fail_msg("case %zu: message '%s' does not name the script line", i, e.msg);
        if (!image_same(&img, &ref))
            fail_msg("case %zu changed the image", i);
    }
    /* A NUL byte inside a line. */
    static const char nul[] = "OPEN a.ndb\nADD a\0b\nCLOSE\n";
    assert_int_equal(cf_cdiff_apply(&img, (const uint8_t *)nul, sizeof(nul) - 1, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "NUL"));
    assert_true(image_same(&img, &ref));
    cf_image_free(&img);
    cf_image_free(&ref);
}

/* ----------------------------------------------------------- container */

static const char sample_script[] = "OPEN a.ndb\nXCHG 1 l1 one\nADD six\nCLOSE\nUNLINK c.hdb\n";

static void test_build_parse_verify_round_trip(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_buf f = CF_BUF_INIT;
    assert_int_equal(cf_cdiff_build((const uint8_t *)sample_script, strlen(sample_script), 7, g_key, &f, &e),
                     CF_OK);
    char head[64];
    snprintf(head, sizeof(head), "ClamAV-Diff:7:%zu:", strlen(sample_script));
    assert_memory_equal(f.p, head, strlen(head));
    /* gzip header as sigtool writes it: no flags, mtime 0, XFL 2, OS 3. */
    static const uint8_t gzh[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3};
    assert_memory_equal(f.p + strlen(head), gzh, sizeof(gzh));

    cf_cdiff d;
    assert_int_equal(cf_cdiff_parse(f.p, f.n, &d, &e), CF_OK);
    assert_int_equal(d.version, 7);
    assert_int_equal(d.script_len, strlen(sample_script));
    assert_int_equal(d.script.n, strlen(sample_script));
    assert_memory_equal(d.script.p, sample_script, d.script.n);
    assert_int_equal(d.gz_off, strlen(head));
    assert_int_equal(f.p[d.signed_len], ':');
    assert_int_equal(strlen(d.sig), f.n - d.signed_len - 1);
    assert_in_range(strlen(d.sig), 300, 349);
    cf_cdiff_free(&d);

    assert_int_equal(cf_cdiff_verify(f.p, f.n, g_key, &e), CF_OK);
    /* ClamAV's production cdiff key did not make this signature. */
    cf_rsakey *prod = NULL;
    assert_int_equal(cf_rsakey_builtin(CF_KEY_CDIFF, &prod, &e), CF_OK);
    assert_int_equal(cf_cdiff_verify(f.p, f.n, prod, &e), CF_ESIG);
    cf_rsakey_free(prod);

    /* verify + parse + apply in one call. */
    cf_image img;
    base_image(&img);
    assert_int_equal(cf_test_cdiff_patch(&img, f.p, f.n, g_key, &e), CF_OK);
    assert_member(&img, "a.ndb", "one\nl2\nl3\nl4\nl5\nsix\n");
    assert_null(cf_image_get(&img, "c.hdb"));
    cf_image_free(&img);

    /* One flipped bit anywhere fails the signature check, and patch leaves the image alone. */
    base_image(&img);
    cf_image ref;
    assert_int_equal(cf_image_copy(&ref, &img, &e), CF_OK);
    for (size_t i = 0; i < f.n; i++) {
        f.p[i] ^= 0x01;
        cf_err_clear(&e);
        cf_code rc = cf_cdiff_verify(f.p, f.n, g_key, &e);
        if (rc == CF_OK)
            fail_msg("flipped byte %zu still verifies", i);
        if (e.msg[0] == '\0')
            fail_msg("flipped byte %zu: no message", i);
        assert_int_not_equal(cf_test_cdiff_patch(&img, f.p, f.n, g_key, &e), CF_OK);
        f.p[i] ^= 0x01;
    }
    assert_true(image_same(&img, &ref));
    assert_int_equal(cf_cdiff_verify(f.p, f.n, g_key, &e), CF_OK);
    cf_image_free(&img);
    cf_image_free(&ref);
    cf_buf_free(&f);
}

/* A hand-made container: header text, gzip of body, optional raw tail. */
static void make_raw(cf_buf *out, const char *head, const char *body, const char *between,
                     const char *sigpart)
{
    cf_err e = {0};
    out->n = 0;
    cf_buf_append_str(out, head);
    assert_int_equal(cf_gz_deflate((const uint8_t *)body, strlen(body), 9, 0, out, &e), CF_OK);
    cf_buf_append_str(out, between);
    cf_buf_append_str(out, sigpart);
}

static void expect_parse_error(const cf_buf *f, const char *msg)
{
    cf_cdiff d;
    cf_err e = {0};
    cf_code rc = cf_cdiff_parse(f->p, f->n, &d, &e);
    if (rc == CF_OK)
        fail_msg("parsed, expected an error with '%s'", msg);
    if (strstr(e.msg, msg) == NULL)
        fail_msg("message '%s' lacks '%s'", e.msg, msg);
}

static void test_parse_errors(void **state)
{
    (void)state;
    char sig[343], longsig[361];
    memset(sig, 'a', sizeof(sig) - 1);
    sig[sizeof(sig) - 1] = '\0';
    memset(longsig, 'b', sizeof(longsig) - 1);
    longsig[sizeof(longsig) - 1] = '\0';
    char head[64];
    snprintf(head, sizeof(head), "ClamAV-Diff:3:%zu:", strlen(sample_script));
    cf_buf f = CF_BUF_INIT;
    cf_cdiff d;
    cf_err e = {0};

    /* The well-formed baseline parses (the signature is not checked by parse). */
    make_raw(&f, head, sample_script, ":", sig);
    assert_int_equal(cf_cdiff_parse(f.p, f.n, &d, &e), CF_OK);
    cf_cdiff_free(&d);

    make_raw(&f, "ClamAV-Dif:3:50:", sample_script, ":", sig);
    expect_parse_error(&f, "not a cdiff");
    make_raw(&f, "ClamAV-VDB:3:50:", sample_script, ":", sig);
    expect_parse_error(&f, "not a cdiff");
    make_raw(&f, "ClamAV-Diff:x3:50:", sample_script, ":", sig);
    expect_parse_error(&f, "version field");
    make_raw(&f, "ClamAV-Diff::50:", sample_script, ":", sig);
    expect_parse_error(&f, "version field");
    make_raw(&f, "ClamAV-Diff:3:5a:", sample_script, ":", sig);
    expect_parse_error(&f, "script size field");
    make_raw(&f, "ClamAV-Diff:3:-5:", sample_script, ":", sig);
    expect_parse_error(&f, "script size field");
    make_raw(&f, "ClamAV-Diff:99999999999:5:", sample_script, ":", sig);
    expect_parse_error(&f, "version field");
    /* Size field disagrees with the decompressed script, both ways. */
    snprintf(head, sizeof(head), "ClamAV-Diff:3:%zu:", strlen(sample_script) + 1);
    make_raw(&f, head, sample_script, ":", sig);
    expect_parse_error(&f, "but the header declares");
    snprintf(head, sizeof(head), "ClamAV-Diff:3:%zu:", strlen(sample_script) - 1);
    make_raw(&f, head, sample_script, ":", sig);
    expect_parse_error(&f, "longer than the");
    snprintf(head, sizeof(head), "ClamAV-Diff:3:%zu:", strlen(sample_script));
    /* No ':' in the final 350 bytes, or nothing after it. */
    make_raw(&f, head, sample_script, ":", longsig);
    expect_parse_error(&f, "no signature");
    make_raw(&f, head, sample_script, ":", "");
    cf_buf_append(&f, sig, 340); /* keep >= 350 bytes, then end with ':' */
    cf_buf_append(&f, ":", 1);
    expect_parse_error(&f, "no signature after");
    /* Signature with a non-CV64 byte. */
    make_raw(&f, head, sample_script, ":", sig);
    f.p[f.n - 5] = '=';
    expect_parse_error(&f, "CV64");
    /* Too small. */
    make_raw(&f, head, sample_script, ":", "abc");
    expect_parse_error(&f, "at least 350");
    /* Bytes between the gzip member and the signature's ':'. */
    make_raw(&f, head, sample_script, "xyz:", sig);
    expect_parse_error(&f, "stray bytes");
    /* Corrupt gzip data, and truncated gzip data. */
    make_raw(&f, head, sample_script, ":", sig);
    f.p[strlen(head) + 12] ^= 0x55;
    assert_int_not_equal(cf_cdiff_parse(f.p, f.n, &d, &e), CF_OK);
    assert_non_null(strstr(e.msg, "compressed script"));
    cf_buf z = CF_BUF_INIT;
    cf_buf_append_str(&z, head);
    assert_int_equal(cf_gz_deflate((const uint8_t *)sample_script, strlen(sample_script), 9, 0, &z, &e),
                     CF_OK);
    z.n -= 4;
    cf_buf_append_str(&z, ":");
    cf_buf_append_str(&z, sig);
    expect_parse_error(&z, "truncated");
    /* Not gzip at all. */
    f.n = 0;
    cf_buf_append_str(&f, head);
    cf_buf_append_str(&f, sample_script);
    cf_buf_append_str(&f, ":");
    cf_buf_append_str(&f, sig);
    expect_parse_error(&f, "not gzip");
    cf_buf_free(&z);
    cf_buf_free(&f);
}

/* -------------------------------------------------------- make_script */

static void expect_script(const cf_image *o, const cf_image *n, const char *want)
{
    cf_buf s = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_cdiff_make_script(o, n, &s, &e), CF_OK);
    if (s.n != strlen(want) || (s.n > 0 && memcmp(s.p, want, s.n) != 0))
        fail_msg("script:\n%.*s\nexpected:\n%s", (int)s.n, (const char *)s.p, want);
    cf_image t;
    assert_int_equal(cf_image_copy(&t, o, &e), CF_OK);
    assert_int_equal(cf_cdiff_apply(&t, s.p, s.n, &e), CF_OK);
    assert_true(image_same_set(&t, n));
    cf_image_free(&t);
    cf_buf_free(&s);
}

static void pair(cf_image *o, cf_image *n, const char *name, const char *old_text, const char *new_text)
{
    cf_image_init(o);
    cf_image_init(n);
    if (old_text)
        put(o, name, old_text);
    if (new_text)
        put(n, name, new_text);
}

static void test_make_script_forms(void **state)
{
    (void)state;
    cf_image o, n;
    pair(&o, &n, "a.ndb", "A 1\nB 2\nC 3\n", "A 1\nX 9\nC 3\nD 4\n");
    expect_script(&o, &n, "OPEN a.ndb\nXCHG 2 B X 9\nADD D 4\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    pair(&o, &n, "a.ndb", "A 1\nB 2\nC 3\n", "A 1\nC 3\n");
    expect_script(&o, &n, "OPEN a.ndb\nDEL 2 B\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    /* Prefix: the first 16 bytes, cut at the first space. */
    pair(&o, &n, "a.ndb", "0123456789abcdefXYZ\nk\nl\nm\n", "new\nk\nl\nm\n");
    expect_script(&o, &n, "OPEN a.ndb\nXCHG 1 0123456789abcdef new\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    pair(&o, &n, "n.ndb", NULL, "x\ny z\n");
    expect_script(&o, &n, "OPEN n.ndb\nADD x\nADD y z\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    pair(&o, &n, "gone.hdb", "h\n", NULL);
    expect_script(&o, &n, "UNLINK gone.hdb\n");
    cf_image_free(&o), cf_image_free(&n);

    /* XCHG of an empty or space-leading old line: sigtool's rewrite form. */
    pair(&o, &n, "a.ndb", "A\n\nC\n", "A\nB\nC\n");
    expect_script(&o, &n, "UNLINK a.ndb\nOPEN a.ndb\nADD A\nADD B\nADD C\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);
    pair(&o, &n, "a.ndb", "A\n lead\nC\nD\nE\nF\n", "A\nC\nD\nE\nF\n");
    expect_script(&o, &n, "UNLINK a.ndb\nOPEN a.ndb\nADD A\nADD C\nADD D\nADD E\nADD F\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    /* Old file without a final newline cannot be line-edited: rewrite. */
    pair(&o, &n, "a.ndb", "A\nB", "A\nB\nC\n");
    expect_script(&o, &n, "UNLINK a.ndb\nOPEN a.ndb\nADD A\nADD B\nADD C\nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    /* Emptying a file: DEL every line (an empty prefix where the line has none). */
    pair(&o, &n, "a.ndb", "A\n\n", "");
    expect_script(&o, &n, "OPEN a.ndb\nDEL 1 A\nDEL 2 \nCLOSE\n");
    cf_image_free(&o), cf_image_free(&n);

    /* Identical images: empty script. */
    pair(&o, &n, "a.ndb", "same\n", "same\n");
    expect_script(&o, &n, "");
    cf_image_free(&o), cf_image_free(&n);

    /* What no script can express is refused, naming the file. */
    struct {
        const char *name, *old_text, *new_text, *msg;
    } bad[] = {
        {"a.ndb", "A\n", "A\nB", "does not end with a newline"},
        {"a.ndb", NULL, "A", "does not end with a newline"},
        {"a.ndb", "A\n", "A\r\nB\r\n", "CR or NUL"},
        {"a.ndb", NULL, "", "cannot create an empty file"},
        {"a.ndb", "A", "", "cannot be emptied"},
        {"daily-1.ndb", NULL, "x\n", "cannot name this file"},
        {"a+b.ndb", "x\n", NULL, "cannot name this file"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pair(&o, &n, bad[i].name, bad[i].old_text, bad[i].new_text);
        cf_buf s = CF_BUF_INIT;
        cf_err e = {0};
        assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_EUNSUPP);
        if (strstr(e.msg, bad[i].msg) == NULL || strstr(e.msg, bad[i].name) == NULL)
            fail_msg("case %zu: message '%s'", i, e.msg);
        assert_int_equal(s.n, 0);
        cf_buf_free(&s);
        cf_image_free(&o), cf_image_free(&n);
    }
}

/* Random line from a small vocabulary, so that repeats, empty lines and
 * space-leading lines (which force rewrites) all occur. */
static void rand_line(cf_buf *b)
{
    static const char *const words[] = {"Sig", "a", "b", "c:d", "x*y", "0", "{-}", "Trojan.Foo", "z"};
    uint32_t r = cf_test_rand() % 40;
    if (r == 0)
        return; /* empty line */
    if (r == 1)
        cf_buf_append(b, " ", 1);
    int nw = 1 + (int)(cf_test_rand() % 4);
    for (int i = 0; i < nw; i++) {
        if (i)
            cf_buf_append(b, cf_test_rand() % 5 ? ":" : " ", 1);
        cf_buf_append_str(b, words[cf_test_rand() % (sizeof(words) / sizeof(words[0]))]);
    }
    if (cf_test_rand() % 10 == 0)
        cf_buf_printf(b, "%u", cf_test_rand() % 1000);
}

/* lines[] of a text (each without '\n'), as offsets into text. */
typedef struct lines {
    cf_buf *v;
    size_t n;
} lines;

static void text_to_lines(const cf_buf *t, lines *L)
{
    L->v = NULL;
    L->n = 0;
    size_t off = 0;
    while (off < t->n) {
        const uint8_t *nl = memchr(t->p + off, '\n', t->n - off);
        size_t len = nl ? (size_t)(nl - (t->p + off)) : t->n - off;
        L->v = realloc(L->v, (L->n + 1) * sizeof(cf_buf));
        cf_buf z = CF_BUF_INIT;
        L->v[L->n] = z;
        cf_buf_append(&L->v[L->n], t->p + off, len);
        L->n++;
        off += len + 1;
    }
}

static void mutate(const cf_buf *old, cf_buf *out)
{
    lines L;
    text_to_lines(old, &L);
    out->n = 0;
    int mode = (int)(cf_test_rand() % 4); /* 0: light edits, 1: heavy, 2: append only, 3: mixed */
    for (size_t i = 0; i < L.n; i++) {
        uint32_t r = cf_test_rand() % 100;
        int p_del = mode == 1 ? 25 : mode == 2 ? 0 : 5;
        int p_chg = mode == 1 ? 25 : mode == 2 ? 0 : 5;
        int p_ins = mode == 1 ? 20 : mode == 2 ? 0 : 4;
        if ((int)r < p_ins) {
            rand_line(out);
            cf_buf_append(out, "\n", 1);
        }
        r = cf_test_rand() % 100;
        if ((int)r < p_del)
            continue;
        if ((int)r < p_del + p_chg)
            rand_line(out);
        else
            cf_buf_append(out, L.v[i].p, L.v[i].n);
        cf_buf_append(out, "\n", 1);
    }
    int tail = (int)(cf_test_rand() % 5);
    for (int i = 0; i < tail; i++) {
        rand_line(out);
        cf_buf_append(out, "\n", 1);
    }
    for (size_t i = 0; i < L.n; i++)
        cf_buf_free(&L.v[i]);
    free(L.v);
}

static void rand_text(cf_buf *b, size_t nlines)
{
    b->n = 0;
    for (size_t i = 0; i < nlines; i++) {
        rand_line(b);
        cf_buf_append(b, "\n", 1);
    }
}

static void test_make_script_property(void **state)
{
    (void)state;
    static const char *const names[] = {"COPYING", "x.info", "x.ndb",   "x.ldb",
                                        "x.hdb",   "x.fp",   "x_y.cbc", "a.db"};
    const size_t nnames = sizeof(names) / sizeof(names[0]);
    cf_test_srand(20240611);
    size_t rewrites = 0, xchgs = 0, dels = 0, unlinks = 0, adds = 0;
    for (int iter = 0; iter < 300; iter++) {
        cf_image o, n;
        cf_image_init(&o);
        cf_image_init(&n);
        cf_err e = {0};
        cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT;
        for (size_t k = 0; k < nnames; k++) {
            uint32_t r = cf_test_rand() % 10;
            int in_old = r < 7;
            size_t nl = cf_test_rand() % 8 == 0 ? 300 + cf_test_rand() % 400 : cf_test_rand() % 30;
            rand_text(&t, nl);
            /* Sometimes an old file without a final newline. */
            if (in_old && cf_test_rand() % 12 == 0)
                cf_buf_append_str(&t, "tail without newline");
            if (in_old)
                assert_int_equal(cf_image_put(&o, names[k], t.p, t.n, &e), CF_OK);
            uint32_t fate = cf_test_rand() % 10;
            if (in_old && fate == 0)
                continue; /* removed */
            if (in_old && fate < 4) {
                /* unchanged, unless it lacks the final newline (then it must change) */
                if (t.n == 0 || t.p[t.n - 1] == '\n') {
                    assert_int_equal(cf_image_put(&n, names[k], t.p, t.n, &e), CF_OK);
                    continue;
                }
            }
            if (!in_old && fate < 5)
                continue; /* absent from both */
            if (in_old)
                mutate(&t, &u);
            else
                rand_text(&u, 1 + cf_test_rand() % 20);
            /* A new file may not be empty; an old one may become empty only when it is clean. */
            if (u.n == 0 && (!in_old || (t.n > 0 && t.p[t.n - 1] != '\n')))
                cf_buf_append_str(&u, "filler\n");
            assert_int_equal(cf_image_put(&n, names[k], u.p, u.n, &e), CF_OK);
        }
        cf_buf script = CF_BUF_INIT;
        cf_code rc = cf_cdiff_make_script(&o, &n, &script, &e);
        if (rc != CF_OK)
            fail_msg("iteration %d: make_script: %s", iter, e.msg);
        cf_image r;
        assert_int_equal(cf_image_copy(&r, &o, &e), CF_OK);
        rc = cf_cdiff_apply(&r, script.p, script.n, &e);
        if (rc != CF_OK)
            fail_msg("iteration %d: apply: %s\n%.*s", iter, e.msg, (int)(script.n > 3000 ? 3000 : script.n),
                     (const char *)script.p);
        if (!image_same_set(&r, &n))
            fail_msg("iteration %d: result differs from the new image", iter);
        /* Count the forms used so the test proves it exercised them. */
        for (size_t off = 0; off < script.n;) {
            const uint8_t *l = script.p + off, *nl = memchr(l, '\n', script.n - off);
            rewrites +=
                strncmp((const char *)l, "UNLINK", 6) == 0 && nl + 1 < script.p + script.n && nl[1] == 'O';
            unlinks += strncmp((const char *)l, "UNLINK", 6) == 0;
            xchgs += strncmp((const char *)l, "XCHG", 4) == 0;
            dels += strncmp((const char *)l, "DEL", 3) == 0;
            adds += strncmp((const char *)l, "ADD", 3) == 0;
            off = (size_t)(nl - script.p) + 1;
        }
        cf_image_free(&r);
        cf_buf_free(&script);
        cf_buf_free(&t);
        cf_buf_free(&u);
        cf_image_free(&o);
        cf_image_free(&n);
    }
    assert_true(rewrites > 10);
    assert_true(unlinks > rewrites);
    assert_true(xchgs > 100);
    assert_true(dels > 100);
    assert_true(adds > 100);
}

/* Line-edit scripts stay small for the common case of a few changes in a big file. */
static void test_make_script_small_for_small_changes(void **state)
{
    (void)state;
    cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT, s = CF_BUF_INIT;
    cf_err e = {0};
    for (int i = 0; i < 20000; i++)
        cf_buf_printf(&t, "Sig.%d:0:*:%08x\n", i, (unsigned)i * 2654435761u);
    cf_buf_set(&u, t.p, t.n);
    /* change one line in the middle, append two */
    const char *mid = strstr((const char *)u.p, "Sig.10000:");
    memcpy((char *)mid + 3, "X", 1);
    cf_buf_append_str(&u, "New.1:0:*:aa\nNew.2:0:*:bb\n");
    cf_image o, n;
    cf_image_init(&o);
    cf_image_init(&n);
    assert_int_equal(cf_image_put(&o, "d.ndb", t.p, t.n, &e), CF_OK);
    assert_int_equal(cf_image_put(&n, "d.ndb", u.p, u.n, &e), CF_OK);
    assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_OK);
    const char *want = "OPEN d.ndb\nXCHG 10001 Sig.10000:0:*:";
    assert_memory_equal(s.p, want, strlen(want));
    cf_buf_append(&s, "", 1);
    assert_non_null(strstr((const char *)s.p, " SigX10000:0:*:"));
    assert_null(strstr((const char *)s.p, "\nDEL "));
    s.n--;
    assert_true(s.n < 200);
    assert_int_equal(cf_cdiff_apply(&o, s.p, s.n, &e), CF_OK);
    assert_true(image_same_set(&o, &n));
    cf_image_free(&o);
    cf_image_free(&n);
    cf_buf_free(&t);
    cf_buf_free(&u);
    cf_buf_free(&s);
}

/* Number of script lines whose command word is cmd. */
static size_t count_cmd(const cf_buf *s, const char *cmd)
{
    size_t n = 0, len = strlen(cmd);
    for (size_t off = 0; off < s->n;) {
        const uint8_t *l = s->p + off, *nl = memchr(l, '\n', s->n - off);
        size_t ll = (size_t)(nl - l);
        n += ll >= len && memcmp(l, cmd, len) == 0 && (ll == len || l[len] == ' ');
        off += ll + 1;
    }
    return n;
}

static size_t digits(size_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Applies s to a copy of o and checks the result equals n. */
static void assert_round_trip(const cf_image *o, const cf_image *n, const cf_buf *s)
{
    cf_err e = {0};
    cf_image r;
    assert_int_equal(cf_image_copy(&r, o, &e), CF_OK);
    if (cf_cdiff_apply(&r, s->p, s->n, &e) != CF_OK)
        fail_msg("apply: %s", e.msg);
    assert_true(image_same_set(&r, n));
    cf_image_free(&r);
}

/* A real-sized member changing the way a daily database does (1% of the lines
 * deleted, 0.5% replaced, 1% appended): one command per touched line, so the
 * script is as small as the command forms allow. */
static void test_make_script_large_member(void **state)
{
    (void)state;
    enum { N = 200000, NDEL = 2000, NCHG = 1000, NADD = 2000 };
    uint8_t *fate = calloc(N, 1); /* 1 deleted, 2 replaced */
    assert_non_null(fate);
    cf_test_srand(4242);
    for (int k = 0; k < NDEL + NCHG;) {
        uint32_t i = cf_test_rand() % N;
        if (fate[i] == 0)
            fate[i] = k++ < NDEL ? 1 : 2;
    }
    cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT, s = CF_BUF_INIT, l = CF_BUF_INIT;
    /* The smallest script the forms allow: OPEN, DEL n prefix, XCHG n prefix
     * line, ADD line, CLOSE; prefixes are 16 bytes (no space in them here). */
    size_t minimal = strlen("OPEN d.ndb\n") + strlen("CLOSE\n");
    for (uint32_t i = 0; i < N; i++) {
        l.n = 0;
        cf_buf_printf(&l, "Bench.Ndb.Sig-%u-0:0:*:%08x%08x\n", i, cf_test_rand(), cf_test_rand());
        cf_buf_append(&t, l.p, l.n);
        if (fate[i] == 1) {
            minimal += strlen("DEL ") + digits(i + 1) + 1 + 16 + 1;
        } else if (fate[i] == 2) {
            size_t before = u.n;
            cf_buf_printf(&u, "Bench.Ndb.Sig-%u-1:0:*:%08x\n", i, cf_test_rand());
            minimal += strlen("XCHG ") + digits(i + 1) + 1 + 16 + 1 + (u.n - before);
        } else {
            cf_buf_append(&u, l.p, l.n);
        }
    }
    for (uint32_t k = 0; k < NADD; k++) {
        size_t before = u.n;
        cf_buf_printf(&u, "Bench.Ndb.Sig-%u-0:1:*:%08x\n", N + k, cf_test_rand());
        minimal += strlen("ADD ") + (u.n - before);
    }
    cf_image o, n;
    cf_image_init(&o);
    cf_image_init(&n);
    cf_err e = {0};
    assert_int_equal(cf_image_put(&o, "d.ndb", t.p, t.n, &e), CF_OK);
    assert_int_equal(cf_image_put(&n, "d.ndb", u.p, u.n, &e), CF_OK);
    assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_OK);
    assert_int_equal(count_cmd(&s, "UNLINK"), 0);
    assert_int_equal(count_cmd(&s, "DEL"), NDEL);
    assert_int_equal(count_cmd(&s, "XCHG"), NCHG);
    assert_int_equal(count_cmd(&s, "ADD"), NADD);
    /* A deleted line next to a replaced one may pair the other way round
     * (XCHG on the first, DEL on the second): a line number's digit either way. */
    if (s.n > minimal + minimal / 100)
        fail_msg("script of %zu bytes; the smallest possible is %zu", s.n, minimal);
    assert_round_trip(&o, &n, &s);
    free(fate);
    cf_image_free(&o);
    cf_image_free(&n);
    cf_buf_free(&t);
    cf_buf_free(&u);
    cf_buf_free(&s);
    cf_buf_free(&l);
}

/* Worst case for a line diff: every line moved. The search gives up within
 * its work budget and the rewrite, smaller than any line edits, is chosen. The
 * time bound only catches an unbounded search (hours at this size); the
 * budgeted one takes well under a second. */
static void test_make_script_shuffled(void **state)
{
    (void)state;
    enum { N = 200000 };
    cf_test_srand(99);
    size_t *perm = malloc(N * sizeof(*perm));
    assert_non_null(perm);
    for (size_t i = 0; i < N; i++)
        perm[i] = i;
    for (size_t i = N - 1; i > 0; i--) {
        size_t k = cf_test_rand() % (i + 1), tmp = perm[i];
        perm[i] = perm[k];
        perm[k] = tmp;
    }
    cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT, s = CF_BUF_INIT;
    for (size_t i = 0; i < N; i++)
        cf_buf_printf(&t, "Sig.%zu:0:*:%08x\n", i, (unsigned)(i * 2654435761u));
    for (size_t i = 0; i < N; i++)
        cf_buf_printf(&u, "Sig.%zu:0:*:%08x\n", perm[i], (unsigned)(perm[i] * 2654435761u));
    assert_int_equal(t.n, u.n);
    cf_image o, n;
    cf_image_init(&o);
    cf_image_init(&n);
    cf_err e = {0};
    assert_int_equal(cf_image_put(&o, "d.ndb", t.p, t.n, &e), CF_OK);
    assert_int_equal(cf_image_put(&n, "d.ndb", u.p, u.n, &e), CF_OK);
    double t0 = now_s();
    assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_OK);
    double took = now_s() - t0;
    if (took > 20.0)
        fail_msg("make_script took %.1f s on a shuffled 200,000-line member", took);
    const char *want = "UNLINK d.ndb\nOPEN d.ndb\nADD ";
    assert_true(s.n > strlen(want));
    assert_memory_equal(s.p, want, strlen(want));
    assert_int_equal(count_cmd(&s, "ADD"), N);
    assert_round_trip(&o, &n, &s);
    free(perm);
    cf_image_free(&o);
    cf_image_free(&n);
    cf_buf_free(&t);
    cf_buf_free(&u);
    cf_buf_free(&s);
}

/* A block of 30,000 lines moved to the end: 60,000 differences, more than the
 * exact search covers, so the alignment on unique lines takes over and still
 * finds the move: DEL where the block was, ADD at the end, no rewrite. With
 * repeated lines sprinkled in (dups), which that alignment cannot anchor on. */
static void test_make_script_moved_block(void **state)
{
    (void)state;
    enum { N = 200000, FROM = 10000, LEN = 30000 };
    for (int dups = 0; dups < 2; dups++) {
        cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT, s = CF_BUF_INIT;
        size_t *off = malloc((N + 1) * sizeof(*off));
        assert_non_null(off);
        for (size_t i = 0; i < N; i++) {
            off[i] = t.n;
            if (dups && i % 20 == 7)
                cf_buf_append_str(&t, "Repeated.Sig:0:*:00\n");
            else
                cf_buf_printf(&t, "Sig.%zu:0:*:%08x\n", i, (unsigned)(i * 2654435761u));
        }
        off[N] = t.n;
        cf_buf_append(&u, t.p, off[FROM]);
        cf_buf_append(&u, t.p + off[FROM + LEN], off[N] - off[FROM + LEN]);
        cf_buf_append(&u, t.p + off[FROM], off[FROM + LEN] - off[FROM]);
        cf_image o, n;
        cf_image_init(&o);
        cf_image_init(&n);
        cf_err e = {0};
        assert_int_equal(cf_image_put(&o, "d.ndb", t.p, t.n, &e), CF_OK);
        assert_int_equal(cf_image_put(&n, "d.ndb", u.p, u.n, &e), CF_OK);
        assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_OK);
        assert_int_equal(count_cmd(&s, "UNLINK"), 0);
        size_t dels = count_cmd(&s, "DEL"), adds = count_cmd(&s, "ADD"), xchgs = count_cmd(&s, "XCHG");
        if (dups) {
            /* Repeated lines at the block's edges may pair either way. */
            if (dels + adds + xchgs > 2 * LEN + 20 || dels < LEN - 10 || adds < LEN - 10)
                fail_msg("dups: %zu DEL, %zu ADD, %zu XCHG", dels, adds, xchgs);
        } else {
            assert_int_equal(dels, LEN);
            assert_int_equal(adds, LEN);
            assert_int_equal(xchgs, 0);
        }
        assert_round_trip(&o, &n, &s);
        free(off);
        cf_image_free(&o);
        cf_image_free(&n);
        cf_buf_free(&t);
        cf_buf_free(&u);
        cf_buf_free(&s);
    }
}

/* The exact search is minimal even with many repeated lines: when the new
 * text is a subsequence of the old one plus lines that occur nowhere in it,
 * the longest common subsequence is that subsequence, so a minimal diff gives
 * one DEL per dropped line and one ADD per new line (or an XCHG for a pair of
 * them at the end), and nothing else. */
static void test_make_script_minimal_with_repeats(void **state)
{
    (void)state;
    cf_test_srand(31337);
    for (int iter = 0; iter < 200; iter++) {
        size_t nl = 1 + cf_test_rand() % 1500, vocab = 2 + cf_test_rand() % 6;
        uint32_t pdel = 1 + cf_test_rand() % 25; /* percent; more makes the rewrite smaller */
        size_t ndel = 0, nadd = cf_test_rand() % 6;
        cf_buf t = CF_BUF_INIT, u = CF_BUF_INIT, s = CF_BUF_INIT;
        for (size_t i = 0; i < nl; i++) {
            size_t before = t.n;
            cf_buf_printf(&t, "w%u\n", (unsigned)(cf_test_rand() % vocab));
            if (cf_test_rand() % 100 < pdel)
                ndel++;
            else
                cf_buf_append(&u, t.p + before, t.n - before);
        }
        for (size_t k = 0; k < nadd; k++)
            cf_buf_printf(&u, "new%zu\n", k);
        if (u.n == 0) {
            cf_buf_append_str(&u, "new\n");
            nadd = 1;
        }
        cf_image o, n;
        cf_image_init(&o);
        cf_image_init(&n);
        cf_err e = {0};
        assert_int_equal(cf_image_put(&o, "d.ndb", t.p, t.n, &e), CF_OK);
        assert_int_equal(cf_image_put(&n, "d.ndb", u.p, u.n, &e), CF_OK);
        assert_int_equal(cf_cdiff_make_script(&o, &n, &s, &e), CF_OK);
        size_t dels = count_cmd(&s, "DEL"), adds = count_cmd(&s, "ADD"), xchgs = count_cmd(&s, "XCHG");
        /* Dropped lines at the very end may take new lines by XCHG instead of
         * DEL + ADD; any extra difference would add a DEL or an XCHG. */
        if (count_cmd(&s, "UNLINK") != 0 || dels + xchgs != ndel || adds + xchgs != nadd)
            fail_msg(
                "iteration %d (%zu lines, %zu words): %zu DEL, %zu ADD, %zu XCHG for %zu dropped and %zu "
                "new lines",
                iter, nl, vocab, dels, adds, xchgs, ndel, nadd);
        assert_round_trip(&o, &n, &s);
        cf_image_free(&o);
        cf_image_free(&n);
        cf_buf_free(&t);
        cf_buf_free(&u);
        cf_buf_free(&s);
    }
}

static int setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &g_key, &e) != CF_OK) {
        fprintf(stderr, "key generation failed: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_rsakey_free(g_key);
    return 0;
}

/* A script naming more files than a database may hold stops when the bound is
 * crossed, before the rest of it is read (no quadratic search). */
static void test_apply_member_bound_checked_when_crossed(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    base_image(&img);
    cf_buf script = CF_BUF_INIT;
    for (unsigned i = 0; i < 100000; i++)
        cf_buf_printf(&script, "OPEN f%u.ndb\nADD x\nCLOSE\n", i);
    assert_int_equal(cf_cdiff_apply(&img, script.p, script.n, &e), CF_ETOOBIG);
    assert_non_null(strstr(e.msg, "more than 4096 files"));
    cf_buf_free(&script);
    cf_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_all_commands),
        cmocka_unit_test(test_apply_member_bound_checked_when_crossed),
        cmocka_unit_test(test_apply_edit_semantics),
        cmocka_unit_test(test_apply_errors_leave_image_unchanged),
        cmocka_unit_test(test_build_parse_verify_round_trip),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_make_script_forms),
        cmocka_unit_test(test_make_script_property),
        cmocka_unit_test(test_make_script_small_for_small_changes),
        cmocka_unit_test(test_make_script_large_member),
        cmocka_unit_test(test_make_script_shuffled),
        cmocka_unit_test(test_make_script_moved_block),
        cmocka_unit_test(test_make_script_minimal_with_repeats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
