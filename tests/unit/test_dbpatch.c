/* The one-pass incremental update (dbpatch.h) against the in-memory reference:
 * for random databases and random chains of real, signed patches, the staged
 * CLD the stream writes is byte for byte the CLD the image path builds
 * (cf_verify_apply + cf_cld_write), from plain and gzip'd local files alike;
 * and every way the pass can fail says which side failed. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dbpatch.h"
#include "clamfresh/dsig.h"
#include "clamfresh/info.h"
#include "clamfresh/patch.h"
#include "clamfresh/verify.h"

#define NVER 6

static cf_rsakey *key;
static cf_trust trust;
static cf_verifyctx vctx;
static char *dir;
static int trusted; /* run the stream with base_trusted */

static cf_image img[NVER + 1];
static cf_buf scripts[NVER + 1]; /* scripts[v]: v-1 -> v */

static const char *const exts[] = {"ndb", "hdb", "ldb", "fp", "ign2"};

static void random_line(cf_buf *b, unsigned i)
{
    unsigned len = 8 + cf_test_rand() % 60;
    cf_buf_printf(b, "Sig.%u.%u:", i, cf_test_rand() % 1000);
    for (unsigned k = 0; k < len; k++)
        cf_buf_append(b, &"0123456789abcdef*?{}-"[cf_test_rand() % 21], 1);
    cf_buf_append(b, "\n", 1);
}

static void header_for(uint32_t v, cf_cvdhdr *h)
{
    memset(h, 0, sizeof *h);
    h->version = v;
    h->sigs = 100 + v;
    h->flevel = 90;
    h->stime = 1700000000 + (uint64_t)v * 3600;
    time_t t = (time_t)h->stime;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(h->time, sizeof h->time, "%d %b %Y %H-%M +0000", &tm);
    strcpy(h->builder, "clamfresh");
}

/* Version 1: COPYING and a few members of random lines. */
static void make_first(cf_image *im)
{
    cf_err e = {0};
    cf_image_init(im);
    assert_int_equal(cf_image_put(im, "COPYING", "GPL-2.0 text stand-in\n", 22, &e), CF_OK);
    for (size_t m = 0; m < sizeof exts / sizeof exts[0]; m++) {
        cf_buf b = CF_BUF_INIT;
        unsigned n = 50 + cf_test_rand() % 400;
        for (unsigned i = 0; i < n; i++)
            random_line(&b, i);
        char name[32];
        snprintf(name, sizeof name, "test.%s", exts[m]);
        assert_int_equal(cf_image_put(im, name, b.p, b.n, &e), CF_OK);
        cf_buf_free(&b);
    }
}

/* The next version: lines changed, dropped and added; now and then a member
 * created or removed. */
static void make_next(const cf_image *prev, cf_image *next, uint32_t v)
{
    cf_err e = {0};
    assert_int_equal(cf_image_copy(next, prev, &e), CF_OK);
    for (size_t i = 0; i < next->nfiles; i++) {
        cf_dbfile *f = &next->files[i];
        if (strcmp(f->name, "COPYING") == 0 || strstr(f->name, ".info") || cf_test_rand() % 3 == 0)
            continue;
        cf_buf out = CF_BUF_INIT;
        const uint8_t *p = f->data.p, *end = p + f->data.n;
        unsigned ln = 0;
        while (p < end) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = (size_t)(nl - p) + 1;
            unsigned r = cf_test_rand() % 100;
            if (r < 3) {
                /* dropped */
            } else if (r < 6) {
                random_line(&out, 9000 + ln);
            } else {
                cf_buf_append(&out, p, len);
            }
            if (r == 7)
                random_line(&out, 8000 + ln);
            p += len;
            ln++;
        }
        for (unsigned k = cf_test_rand() % 5; k > 0; k--)
            random_line(&out, 7000 + k);
        assert_int_equal(cf_image_put(next, f->name, out.p, out.n, &e), CF_OK);
        cf_buf_free(&out);
    }
    if (v % 3 == 0) {
        char name[32];
        snprintf(name, sizeof name, "test%u.mdb", v);
        cf_buf b = CF_BUF_INIT;
        for (unsigned i = 0; i < 20; i++)
            random_line(&b, i);
        assert_int_equal(cf_image_put(next, name, b.p, b.n, &e), CF_OK);
        cf_buf_free(&b);
    }
    if (v == 5)
        assert_int_equal(cf_image_remove(next, "test.fp", &e), CF_OK);
}

static void sign_version(cf_image *im, uint32_t v)
{
    cf_cvdhdr h;
    header_for(v, &h);
    cf_err e = {0};
    if (cf_info_build(im, "test", &h, key, &e) != CF_OK)
        fail_msg("%s", e.msg);
    im->hdr = h;
}

static int group_setup(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_test_srand(20261206);
    if (cf_rsakey_generate(2048, &key, &e) != CF_OK)
        return -1;
    trust.info = key;
    vctx = (cf_verifyctx){.trust = &trust};
    make_first(&img[1]);
    sign_version(&img[1], 1);
    for (uint32_t v = 2; v <= NVER; v++) {
        make_next(&img[v - 1], &img[v], v);
        sign_version(&img[v], v);
        if (cf_cdiff_make_script(&img[v - 1], &img[v], &scripts[v], &e) != CF_OK) {
            fprintf(stderr, "script %u: %s\n", v, e.msg);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (uint32_t v = 0; v <= NVER; v++) {
        cf_image_free(&img[v]);
        cf_buf_free(&scripts[v]);
    }
    cf_rsakey_free(key);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    dir = cf_test_mkdtemp();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(dir);
    free(dir);
    return 0;
}

static void write_file(const char *path, const cf_buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->p, b->n), (ssize_t)b->n);
    close(fd);
}

/* The reference: image path from version `from`, scripts from+1..to. */
static void reference(uint32_t from, uint32_t to, cf_buf *cld)
{
    cf_image work;
    cf_err e = {0};
    assert_int_equal(cf_image_copy(&work, &img[from], &e), CF_OK);
    if (cf_verify_apply(&vctx, &work, &scripts[from + 1], to - from, &e) != CF_OK)
        fail_msg("reference: %s", e.msg);
    assert_int_equal(cf_cld_write(&work, 0, cld, &e), CF_OK);
    cf_image_free(&work);
}

typedef struct outcome {
    cf_code rc;
    cf_dbpatch_fault fault;
    cf_cvdhdr hdr;
    cf_buf out;
    cf_err e;
} outcome;

/* The stream: local file `local` (bytes), the chain from+1..to, as db/want. */
static void stream(const cf_buf *local, uint32_t from, uint32_t to, const char *db, uint32_t want, outcome *o)
{
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/local", dir);
    snprintf(out, sizeof out, "%s/staged.cld", dir);
    write_file(in, local);
    unlink(out);
    const char *labels[NVER + 1];
    char names[NVER + 1][32];
    for (uint32_t v = from + 1; v <= to; v++) {
        snprintf(names[v], sizeof names[v], "test-%u.cdiff", v);
        labels[v - from - 1] = names[v];
    }
    memset(o, 0, sizeof *o);
    cf_patchplan *plan = NULL;
    o->rc = cf_patchplan_new(&scripts[from + 1], labels, to - from, &plan, &o->e);
    if (o->rc != CF_OK)
        return;
    int ifd = open(in, O_RDONLY), ofd = open(out, O_RDWR | O_CREAT | O_EXCL, 0644);
    assert_true(ifd >= 0 && ofd >= 0);
    cf_dbpatch_opts opts = {
        .verify = &vctx, .db = db, .want_version = want, .spooldir = dir, .base_trusted = trusted};
    o->rc = cf_dbpatch_run(&opts, ifd, plan, ofd, &o->hdr, &o->fault, &o->e);
    close(ifd);
    close(ofd);
    cf_patchplan_free(plan);
    cf_test_read_file(out, &o->out);
}

static void local_cld(uint32_t v, int gz, cf_buf *b)
{
    cf_err e = {0};
    assert_int_equal(cf_cld_write(&img[v], gz, b, &e), CF_OK);
}

/* Every chain from every start, plain and gzip'd local files, with the base
 * hashed and with a recently verified base whose unchanged members are not. */
static void test_stream_equals_reference(void **state)
{
    (void)state;
    for (trusted = 0; trusted < 2; trusted++)
        for (uint32_t from = 1; from < NVER; from++)
            for (uint32_t to = from + 1; to <= NVER; to++)
                for (int gz = 0; gz < 2; gz++) {
                    cf_buf local = CF_BUF_INIT, want = CF_BUF_INIT;
                    local_cld(from, gz, &local);
                    reference(from, to, &want);
                    outcome o;
                    stream(&local, from, to, "test", to, &o);
                    if (o.rc != CF_OK)
                        fail_msg("%u -> %u (gz %d): %s", from, to, gz, o.e.msg);
                    assert_int_equal(o.fault, CF_DBPATCH_NONE);
                    assert_int_equal(o.hdr.version, to);
                    assert_int_equal(o.out.n, want.n);
                    assert_memory_equal(o.out.p, want.p, want.n);
                    cf_buf_free(&o.out);
                    cf_buf_free(&local);
                    cf_buf_free(&want);
                }
    trusted = 0;
}

/* The result of the stream is a CLD the in-memory verifier accepts, and its
 * compressed form too. */
static void test_compressed_result_verifies(void **state)
{
    (void)state;
    cf_buf local = CF_BUF_INIT;
    local_cld(2, 0, &local);
    outcome o;
    stream(&local, 2, 5, "test", 5, &o);
    assert_int_equal(o.rc, CF_OK);
    char plain[4096], gz[4096];
    snprintf(plain, sizeof plain, "%s/staged.cld", dir);
    snprintf(gz, sizeof gz, "%s/staged.cld.gz", dir);
    int pfd = open(plain, O_RDONLY), zfd = open(gz, O_RDWR | O_CREAT | O_EXCL, 0644);
    cf_err e = {0};
    assert_int_equal(cf_dbpatch_compress(pfd, zfd, &e), CF_OK);
    close(pfd);
    close(zfd);
    cf_buf z = CF_BUF_INIT;
    cf_test_read_file(gz, &z);
    assert_true(z.n > 512 && z.p[512] == 0x1f && z.p[513] == 0x8b);
    cf_image got;
    assert_int_equal(cf_verify_cld(&vctx, z.p, z.n, &got, &e), CF_OK);
    assert_int_equal(got.hdr.version, 5);
    cf_image_free(&got);
    cf_buf_free(&z);
    cf_buf_free(&o.out);
    cf_buf_free(&local);
}

/* A damaged local database is the base's fault, whatever the patches say. */
static void test_corrupt_local_is_base_fault(void **state)
{
    (void)state;
    cf_buf local = CF_BUF_INIT;
    local_cld(1, 0, &local);
    /* A byte inside the last member's data (past every header). */
    local.p[local.n - 700] ^= 0x01;
    outcome o;
    stream(&local, 1, 2, "test", 2, &o);
    assert_int_not_equal(o.rc, CF_OK);
    assert_int_equal(o.fault, CF_DBPATCH_BASE);
    cf_buf_free(&o.out);
    local.n = 600; /* cut inside COPYING's data */
    stream(&local, 1, 2, "test", 2, &o);
    assert_int_equal(o.fault, CF_DBPATCH_BASE);
    cf_buf_free(&o.out);
    cf_buf_free(&local);
}

/* A trusted base skips the input hash of the members the chain edits too, so a
 * damaged byte in one of them must still be caught: by the hash of the
 * patched output against the new manifest (or by the script not applying). */
static void test_trusted_base_still_gates_edited_members(void **state)
{
    (void)state;
    const cf_dbfile *edited = NULL;
    for (size_t i = 0; i < img[1].nfiles && edited == NULL; i++) {
        const cf_dbfile *f = &img[1].files[i], *g = cf_image_get(&img[2], f->name);
        if (strstr(f->name, ".info") == NULL && strcmp(f->name, "COPYING") != 0 && g != NULL &&
            (g->data.n != f->data.n || memcmp(g->data.p, f->data.p, f->data.n) != 0))
            edited = f;
    }
    assert_non_null(edited);
    cf_buf local = CF_BUF_INIT;
    local_cld(1, 0, &local);
    const uint8_t *at = memmem(local.p, local.n, edited->data.p, edited->data.n);
    assert_non_null(at);
    /* One signature character, mid-member: the line structure stays. */
    size_t off = (size_t)(at - local.p) + edited->data.n / 2;
    while (local.p[off] == '\n' || local.p[off] == ':')
        off++;
    local.p[off] = local.p[off] == 'a' ? 'b' : 'a';
    for (trusted = 0; trusted < 2; trusted++) {
        outcome o;
        stream(&local, 1, 2, "test", 2, &o);
        if (o.rc == CF_OK)
            fail_msg("a damaged byte in %s passed (trusted %d)", edited->name, trusted);
        /* Untrusted, the base's own manifest names the damage first. */
        assert_int_equal(o.fault, trusted ? CF_DBPATCH_PATCH : CF_DBPATCH_BASE);
        cf_buf_free(&o.out);
    }
    trusted = 0;
    cf_buf_free(&local);
}

/* Members of several MiB are hashed on the stream's second thread: the result
 * is the reference, byte for byte, and a damaged byte in such a member of a
 * trusted base is refused by the digest that thread computed. */
static void test_large_members_hashed_aside(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_image a, b;
    cf_image_init(&a);
    assert_int_equal(cf_image_put(&a, "COPYING", "GPL-2.0 text stand-in\n", 22, &e), CF_OK);
    const char *const big[] = {"big.hdb", "big.ndb"};
    for (size_t m = 0; m < 2; m++) {
        cf_buf body = CF_BUF_INIT;
        for (unsigned i = 0; body.n < (3u << 20) + 12345 * m; i++)
            random_line(&body, i);
        assert_int_equal(cf_image_put(&a, big[m], body.p, body.n, &e), CF_OK);
        cf_buf_free(&body);
    }
    assert_int_equal(cf_image_put(&a, "small.fp", "Sig.1:0\n", 8, &e), CF_OK);
    sign_version(&a, 1);
    make_next(&a, &b, 2);
    /* Every large member edited, so both go to the second thread. */
    for (size_t m = 0; m < 2; m++) {
        const cf_dbfile *f = cf_image_get(&b, big[m]);
        cf_buf body = CF_BUF_INIT;
        cf_buf_append(&body, f->data.p, f->data.n);
        random_line(&body, 424242);
        assert_int_equal(cf_image_put(&b, big[m], body.p, body.n, &e), CF_OK);
        cf_buf_free(&body);
    }
    sign_version(&b, 2);
    cf_buf script = CF_BUF_INIT, local = CF_BUF_INIT, want = CF_BUF_INIT;
    assert_int_equal(cf_cdiff_make_script(&a, &b, &script, &e), CF_OK);
    assert_int_equal(cf_cld_write(&b, 0, &want, &e), CF_OK);
    assert_int_equal(cf_cld_write(&a, 0, &local, &e), CF_OK);
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/local", dir);
    snprintf(out, sizeof out, "%s/staged.cld", dir);
    const char *labels[1] = {"test-2.cdiff"};
    for (int damaged = 0; damaged < 2; damaged++) {
        if (damaged) {
            /* In a line the script keeps as it is, so the patch applies and
             * only the digest can tell. */
            const cf_dbfile *f = cf_image_get(&a, "big.ndb"), *g = cf_image_get(&b, "big.ndb");
            uint8_t *at = memmem(local.p, local.n, f->data.p, f->data.n);
            assert_non_null(at);
            size_t off = f->data.n / 3;
            for (;;) {
                const uint8_t *ls = memchr(at + off, '\n', f->data.n - off);
                assert_non_null(ls);
                ls++;
                const uint8_t *le = memchr(ls, '\n', f->data.n - (size_t)(ls - at));
                assert_non_null(le);
                off = (size_t)(ls - at);
                if (memmem(g->data.p, g->data.n, ls, (size_t)(le - ls) + 1) != NULL)
                    break;
            }
            off += 4; /* past "Sig." */
            at[off] = at[off] == '7' ? '8' : '7';
        }
        for (int tb = 0; tb < 2; tb++) {
            write_file(in, &local);
            unlink(out);
            cf_patchplan *plan = NULL;
            assert_int_equal(cf_patchplan_new(&script, labels, 1, &plan, &e), CF_OK);
            int ifd = open(in, O_RDONLY), ofd = open(out, O_RDWR | O_CREAT | O_EXCL, 0644);
            assert_true(ifd >= 0 && ofd >= 0);
            cf_dbpatch_opts opts = {
                .verify = &vctx, .db = "test", .want_version = 2, .spooldir = dir, .base_trusted = tb};
            cf_cvdhdr h;
            cf_dbpatch_fault fault = CF_DBPATCH_NONE;
            cf_code rc = cf_dbpatch_run(&opts, ifd, plan, ofd, &h, &fault, &e);
            close(ifd);
            close(ofd);
            cf_patchplan_free(plan);
            if (!damaged) {
                if (rc != CF_OK)
                    fail_msg("trusted %d: %s", tb, e.msg);
                cf_buf got = CF_BUF_INIT;
                cf_test_read_file(out, &got);
                assert_int_equal(got.n, want.n);
                assert_memory_equal(got.p, want.p, want.n);
                cf_buf_free(&got);
            } else {
                if (rc == CF_OK)
                    fail_msg("a damaged byte in big.ndb passed (trusted %d)", tb);
                assert_int_equal(fault, tb ? CF_DBPATCH_PATCH : CF_DBPATCH_BASE);
                if (tb)
                    assert_non_null(strstr(e.msg, "big.ndb"));
            }
        }
    }
    cf_buf_free(&script);
    cf_buf_free(&local);
    cf_buf_free(&want);
    cf_image_free(&a);
    cf_image_free(&b);
}

/* Identity: the chain must make the database asked for at the version planned. */
static void test_identity_checked(void **state)
{
    (void)state;
    cf_buf local = CF_BUF_INIT;
    local_cld(1, 0, &local);
    outcome o;
    stream(&local, 1, 3, "test", 4, &o);
    assert_int_not_equal(o.rc, CF_OK);
    assert_int_equal(o.fault, CF_DBPATCH_PATCH);
    assert_non_null(strstr(o.e.msg, "version 3"));
    cf_buf_free(&o.out);
    stream(&local, 1, 3, "daily", 3, &o);
    assert_int_equal(o.fault, CF_DBPATCH_PATCH);
    assert_non_null(strstr(o.e.msg, "daily.info"));
    cf_buf_free(&o.out);
    cf_buf_free(&local);
}

/* A patch that does not fit the base (applied to the wrong version) fails as
 * the patch's fault. */
static void test_wrong_base_is_patch_fault(void **state)
{
    (void)state;
    cf_buf local = CF_BUF_INIT;
    local_cld(3, 0, &local);
    outcome o;
    stream(&local, 1, 2, "test", 2, &o); /* v3's bytes, v1->v2's patch */
    assert_int_not_equal(o.rc, CF_OK);
    assert_true(o.fault == CF_DBPATCH_PATCH || o.fault == CF_DBPATCH_BASE);
    cf_buf_free(&o.out);
    cf_buf_free(&local);
}

/* The first *.info member names the database a file holds. */
static void test_info_name(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        cf_buf local = CF_BUF_INIT;
        local_cld(2, gz, &local);
        char path[4096], name[128] = "";
        snprintf(path, sizeof path, "%s/f", dir);
        write_file(path, &local);
        int fd = open(path, O_RDONLY);
        cf_err e = {0};
        assert_int_equal(cf_dbfile_info_name(fd, name, sizeof name, &e), CF_OK);
        assert_string_equal(name, "test.info");
        close(fd);
        cf_buf_free(&local);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_equals_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_result_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_local_is_base_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_base_still_gates_edited_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_members_hashed_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_base_is_patch_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
