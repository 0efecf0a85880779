/* .info and cdiff against the real ClamAV-signed vectors (formats.md §9):
 * test-1/2/3.cvd manifests with the built-in .info key, test-2/3.cdiff with
 * the built-in cdiff key, and test-1 + test-2.cdiff + test-3.cdiff == test-3.
 * Exits 77 (skipped) when the vectors are absent. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/image.h"
#include "clamfresh/info.h"

static cf_rsakey *g_info_key, *g_cdiff_key;

static void load_cvd(const char *name, cf_image *img)
{
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    cf_test_read_vector(name, &b);
    cf_image_init(img);
    if (cf_cvd_read(b.p, b.n, img, &e) != CF_OK)
        fail_msg("%s: %s", name, e.msg);
    cf_buf_free(&b);
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

static void test_manifests_verify(void **state)
{
    (void)state;
    static const char *const cvds[] = {"test-1.cvd", "test-2.cvd", "test-3.cvd"};
    static const size_t entries[] = {2, 2, 18};
    static const size_t info_size[] = {568, 568, 1800};
    for (size_t i = 0; i < 3; i++) {
        cf_image img;
        cf_err e = {0};
        load_cvd(cvds[i], &img);
        const cf_dbfile *mf = cf_image_get(&img, "test.info");
        assert_non_null(mf);
        assert_int_equal(mf->data.n, info_size[i]);
        cf_info info;
        if (cf_info_verify(mf->data.p, mf->data.n, g_info_key, &info, &e) != CF_OK)
            fail_msg("%s: %s", cvds[i], e.msg);
        assert_int_equal(info.n, entries[i]);
        assert_int_equal(info.hdr.version, i + 1);
        assert_int_equal(info.hdr.flevel, 81);
        if (i == 0) {
            assert_int_equal(info.signed_len, 221); /* §5.3 */
            assert_string_equal(info.entries[0].name, "test.ndb");
            assert_int_equal(info.entries[0].size, 240);
            assert_int_equal(info.entries[0].sha256[0], 0x24);
            assert_int_equal(info.hdr.stime, 1624388302);
            assert_string_equal(info.hdr.builder, "micasnyd");
        }
        cf_info_free(&info);
        if (cf_image_verify_manifest(&img, &img.hdr, g_info_key, 0, &e) != CF_OK)
            fail_msg("%s: %s", cvds[i], e.msg);
        /* The cdiff key is not the .info key. */
        assert_int_equal(cf_image_verify_manifest(&img, &img.hdr, g_cdiff_key, 0, &e), CF_ESIG);
        cf_image_free(&img);
    }
}

static void test_info_bit_flips(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    load_cvd("test-1.cvd", &img);
    const cf_dbfile *mf = cf_image_get(&img, "test.info");
    cf_buf b = CF_BUF_INIT;
    cf_buf_set(&b, mf->data.p, mf->data.n);
    for (size_t i = 0; i < b.n; i++) {
        b.p[i] ^= 0x01;
        cf_err_clear(&e);
        if (cf_info_verify(b.p, b.n, g_info_key, NULL, &e) == CF_OK)
            fail_msg("test.info byte %zu flipped, still verifies", i);
        if (e.msg[0] == '\0')
            fail_msg("byte %zu: no message", i);
        b.p[i] ^= 0x01;
    }
    /* A member changed by one byte fails the manifest check, naming it. */
    cf_dbfile *ndb = (cf_dbfile *)cf_image_get(&img, "test.ndb");
    ndb->data.p[100] ^= 0x01;
    assert_int_equal(cf_image_verify_manifest(&img, &img.hdr, g_info_key, 0, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "test.ndb: SHA-256"));
    cf_buf_free(&b);
    cf_image_free(&img);
}

static const char test2_script_head[] =
    "OPEN test.info\n"
    "XCHG 1 ClamAV-VDB:22 ClamAV-VDB:22 Jun 2021 16-55 -0400:2:0:81:X:X:micasnyd:1624395301\n"
    "XCHG 4 DSIG:TFd9RBeu6wZ DSIG:SIpZwpONrJhe9smcPtzwDgZcAV7ktFxrg+mulLKIvVvyIHFAdLP8WfH0EVWjxmkDXw0gh+/"
    "Um+KGcJAOED7wTERnBsjdNjkyra2Ni6YYQZe2WVPVu4kbcFQkMEBfdbk/"
    "m0wb8sqPtG0Nh6cr5qx0Jkj7hZJlBSuLF+"
    "kbtQZ2Bq2NgrdVKuoGPQI0K4KaMU8Yhzo2tsV9pApqP2HXf9RdrdeRSZ6FxgpylWtlekem9"
    "YxyixSWq0SW37FZo1vDOp0bMYoGEogCI/"
    "yVdwLl0kmx7incSh0gAGvU6TWuseuGk7d5wQiaGMRdUeh2wGnPOmTXNMLvo0cZFLQ3sI4RvN7WW\n"
    "CLOSE\n";

static const char test2_sig[] =
    "3GYo0NXQzFJfEudDQDAxL2xGzIw/86MgHbcBGxmc3/BQZFUg0sl5JIBRuIExBN6rtbigqEb/dUpdGWEeb+/bL/"
    "AhlOeeRhjOluJZUkKLhB45OFGdUmQCyv54NoTm4Ju2qoKxm/LIym7jpQOF/"
    "6rXIvg6QjKDQxwI4kSObM+Wf2FCA2znvaI+Y+iZl+gKC4i/"
    "yiEjU5z5zqfZSmBGXxvrNj06F82SeCvtQQnC0wK7mLzBMFhEI+kkbJvNdyzMI33yBbZuWU0+"
    "Ia8fUsWgeGloGCvLljWWguVr8vVW7XVDitd4Wp9w"
    "THA4t2CyDZdKq5w9qp/JP6g6NTNV/WmtXaotb";

static void test_cdiffs_parse_and_verify(void **state)
{
    (void)state;
    cf_buf b = CF_BUF_INIT;
    cf_cdiff d;
    cf_err e = {0};

    cf_test_read_vector("test-2.cdiff", &b);
    assert_int_equal(b.n, 765);
    assert_memory_equal(b.p, "ClamAV-Diff:2:479:", 18);
    assert_int_equal(cf_cdiff_parse(b.p, b.n, &d, &e), CF_OK);
    assert_int_equal(d.version, 2);
    assert_int_equal(d.script_len, 479);
    assert_int_equal(d.script.n, 479);
    assert_int_equal(d.gz_off, 18);
    assert_int_equal(d.signed_len, 423);
    assert_string_equal(d.sig, test2_sig);
    assert_int_equal(sizeof(test2_script_head) - 1, 479);
    assert_memory_equal(d.script.p, test2_script_head, 479);
    cf_cdiff_free(&d);
    assert_int_equal(cf_cdiff_verify(b.p, b.n, g_cdiff_key, &e), CF_OK);
    assert_int_equal(cf_cdiff_verify(b.p, b.n, g_info_key, &e), CF_ESIG);

    cf_test_read_vector("test-3.cdiff", &b);
    assert_int_equal(b.n, 1637);
    assert_memory_equal(b.p, "ClamAV-Diff:3:3423:", 19);
    assert_int_equal(cf_cdiff_parse(b.p, b.n, &d, &e), CF_OK);
    assert_int_equal(d.version, 3);
    assert_int_equal(d.script_len, 3423);
    assert_int_equal(d.script.n, 3423);
    assert_memory_equal(d.script.p, "OPEN test.info\nXCHG 1 ClamAV-VDB:22 ", 36);
    cf_cdiff_free(&d);
    assert_int_equal(cf_cdiff_verify(b.p, b.n, g_cdiff_key, &e), CF_OK);
    cf_buf_free(&b);
}

static void test_cdiff_bit_flips(void **state)
{
    (void)state;
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    cf_image img, ref;
    load_cvd("test-1.cvd", &img);
    assert_int_equal(cf_image_copy(&ref, &img, &e), CF_OK);
    cf_test_read_vector("test-2.cdiff", &b);
    for (size_t i = 0; i < b.n; i++) {
        b.p[i] ^= 0x01;
        cf_err_clear(&e);
        if (cf_cdiff_verify(b.p, b.n, g_cdiff_key, &e) == CF_OK)
            fail_msg("test-2.cdiff byte %zu flipped, still verifies", i);
        if (e.msg[0] == '\0')
            fail_msg("byte %zu: no message", i);
        assert_int_not_equal(cf_test_cdiff_patch(&img, b.p, b.n, g_cdiff_key, &e), CF_OK);
        b.p[i] ^= 0x01;
    }
    /* Nothing of the refused patches reached the image. */
    assert_true(image_same_set(&img, &ref));
    assert_int_equal(img.nfiles, ref.nfiles);
    cf_buf_free(&b);
    cf_image_free(&img);
    cf_image_free(&ref);
}

static void test_apply_chain(void **state)
{
    (void)state;
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    cf_image img, v2, v3;
    load_cvd("test-1.cvd", &img);
    load_cvd("test-2.cvd", &v2);
    load_cvd("test-3.cvd", &v3);

    cf_test_read_vector("test-2.cdiff", &b);
    if (cf_test_cdiff_patch(&img, b.p, b.n, g_cdiff_key, &e) != CF_OK)
        fail_msg("test-2.cdiff: %s", e.msg);
    assert_true(image_same_set(&img, &v2));
    assert_int_equal(cf_image_verify_manifest(&img, &v2.hdr, g_info_key, 0, &e), CF_OK);

    cf_test_read_vector("test-3.cdiff", &b);
    if (cf_test_cdiff_patch(&img, b.p, b.n, g_cdiff_key, &e) != CF_OK)
        fail_msg("test-3.cdiff: %s", e.msg);
    assert_true(image_same_set(&img, &v3));
    /* Members already present keep their places; created ones follow them. */
    assert_string_equal(img.files[0].name, "COPYING");
    assert_string_equal(img.files[1].name, "test.info");
    assert_string_equal(img.files[2].name, "test.ndb");
    assert_string_equal(img.files[3].name, "test.ldb");
    assert_string_equal(img.files[4].name, "test.cfg");
    if (cf_image_verify_manifest(&img, &v3.hdr, g_info_key, 0, &e) != CF_OK)
        fail_msg("patched image: %s", e.msg);
    /* Applying test-3 again must fail (prefixes no longer match) and change nothing. */
    assert_int_not_equal(cf_test_cdiff_patch(&img, b.p, b.n, g_cdiff_key, &e), CF_OK);
    assert_true(image_same_set(&img, &v3));

    cf_buf_free(&b);
    cf_image_free(&img);
    cf_image_free(&v2);
    cf_image_free(&v3);
}

/* Our generator on real databases: test-1 -> test-3 in one script. */
static void test_make_script_real(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_image v1, v3;
    cf_buf s = CF_BUF_INIT;
    load_cvd("test-1.cvd", &v1);
    load_cvd("test-3.cvd", &v3);
    assert_int_equal(cf_cdiff_make_script(&v1, &v3, &s, &e), CF_OK);
    /* test.info grows from 4 to 20 lines: rewriting it is smaller than an XCHG cascade. */
    cf_buf_append(&s, "", 1);
    s.n--;
    assert_memory_equal(s.p,
                        "UNLINK test.info\nOPEN test.info\nADD ClamAV-VDB:22 Jun 2021 20-40 -0400:3:", 72);
    assert_non_null(strstr((const char *)s.p, "\nOPEN test.cdb\nADD "));
    assert_null(strstr((const char *)s.p, "OPEN test.ndb")); /* unchanged */
    assert_int_equal(cf_cdiff_apply(&v1, s.p, s.n, &e), CF_OK);
    assert_true(image_same_set(&v1, &v3));
    assert_int_equal(cf_image_verify_manifest(&v1, &v3.hdr, g_info_key, 0, &e), CF_OK);
    cf_buf_free(&s);
    cf_image_free(&v1);
    cf_image_free(&v3);
}

static int setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_builtin(CF_KEY_INFO, &g_info_key, &e) != CF_OK ||
        cf_rsakey_builtin(CF_KEY_CDIFF, &g_cdiff_key, &e) != CF_OK) {
        fprintf(stderr, "built-in keys: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_rsakey_free(g_info_key);
    cf_rsakey_free(g_cdiff_key);
    return 0;
}

int main(void)
{
    cf_test_require_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifests_verify),
        cmocka_unit_test(test_info_bit_flips),
        cmocka_unit_test(test_cdiffs_parse_and_verify),
        cmocka_unit_test(test_cdiff_bit_flips),
        cmocka_unit_test(test_apply_chain),
        cmocka_unit_test(test_make_script_real),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
