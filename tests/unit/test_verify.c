/* The trust path (verify.c) on fixtures made here with a generated key: what is
 * accepted, what is refused and why, and that a refused patch changes nothing. */
#include "testutil.h"

#include <openssl/evp.h>
#include <string.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/info.h"
#include "clamfresh/verify.h"

static cf_rsakey *key, *other;
static cf_trust trust;

static int setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &key, &e) != CF_OK || cf_rsakey_generate(2048, &other, &e) != CF_OK)
        return -1;
    /* All three roles trust the one test key (as --trust-key does). */
    trust.cvd = key;
    trust.info = key;
    trust.cdiff = key;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_rsakey_free(key);
    cf_rsakey_free(other);
    return 0;
}

static cf_verifyctx ctx(void)
{
    cf_verifyctx c = {.trust = &trust, .certs = NULL, .flevel = 230, .fips = 0, .now = 0};
    return c;
}

static void image_v(cf_image *img, uint32_t version, const char *ndb)
{
    cf_err e = {0};
    cf_image_init(img);
    assert_int_equal(cf_image_put(img, "COPYING", "licence\n", 8, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "t.ndb", ndb, strlen(ndb), &e), CF_OK);
    cf_cvdhdr h;
    memset(&h, 0, sizeof h);
    strcpy(h.time, "27 Nov 2026 10-00 +0000");
    h.version = version;
    h.sigs = 1;
    h.flevel = 90;
    strcpy(h.md5, "X");
    strcpy(h.dsig, "X");
    strcpy(h.builder, "tester");
    h.stime = 1790000000 + version;
    img->hdr = h;
    assert_int_equal(cf_info_build(img, "t", &h, key, &e), CF_OK);
}

/* A CVD as cvdtool builds it; md5key/dsigkey let tests break one part. */
static void make_cvd(cf_image *img, const cf_rsakey *dsigkey, int corrupt_md5_field, cf_buf *out)
{
    cf_err e = {0};
    cf_buf body = CF_BUF_INIT, sig = CF_BUF_INIT;
    assert_int_equal(cf_cvd_body_make(img, 1, &body, &e), CF_OK);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen;
    assert_int_equal(EVP_Digest(body.p, body.n, md, &mdlen, EVP_md5(), NULL), 1);
    cf_cvdhdr h = img->hdr;
    for (int i = 0; i < 16; i++)
        snprintf(h.md5 + 2 * i, 3, "%02x", md[i]);
    if (corrupt_md5_field)
        h.md5[0] = h.md5[0] == 'a' ? 'b' : 'a';
    assert_int_equal(cf_dsig_sign_md5(dsigkey, md, &sig, &e), CF_OK);
    memcpy(h.dsig, sig.p, sig.n + 1);
    assert_int_equal(cf_cvd_assemble(&h, &body, out, &e), CF_OK);
    cf_buf_free(&body);
    cf_buf_free(&sig);
}

static void test_cvd_accepted(void **state)
{
    (void)state;
    cf_image src, got;
    cf_buf cvd = CF_BUF_INIT;
    cf_err e = {0};
    image_v(&src, 3, "Sig.A:0:*:41424344\n");
    make_cvd(&src, key, 0, &cvd);
    cf_verifyctx c = ctx();
    cf_sigsource how;
    assert_int_equal(cf_verify_cvd(&c, cvd.p, cvd.n, NULL, 0, &got, &how, &e), CF_OK);
    assert_int_equal(how, CF_SIGSRC_LEGACY);
    assert_int_equal(got.hdr.version, 3);
    assert_non_null(cf_image_get(&got, "t.ndb"));
    cf_image_free(&got);
    /* FIPS limits forbid the MD5 route, and there is no .sign. */
    c.fips = 1;
    assert_int_equal(cf_verify_cvd(&c, cvd.p, cvd.n, NULL, 0, &got, &how, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "FIPS"));
    assert_int_equal(got.nfiles, 0);
    cf_image_free(&src);
    cf_buf_free(&cvd);
}

static void test_cvd_refused(void **state)
{
    (void)state;
    cf_image src, got;
    cf_buf cvd = CF_BUF_INIT;
    cf_err e = {0};
    cf_verifyctx c = ctx();
    image_v(&src, 4, "Sig.B:0:*:41424344\n");

    make_cvd(&src, other, 0, &cvd); /* signed by a key nobody trusts */
    assert_int_equal(cf_verify_cvd(&c, cvd.p, cvd.n, NULL, 0, &got, NULL, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "digital signature"));
    cvd.n = 0;

    make_cvd(&src, key, 1, &cvd); /* header md5 field disagrees with the body */
    assert_int_equal(cf_verify_cvd(&c, cvd.p, cvd.n, NULL, 0, &got, NULL, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "MD5"));
    cvd.n = 0;

    /* Properly signed container whose manifest does not match a member: the
     * .info lists the old t.ndb, the body carries another. */
    cf_err pe = {0};
    assert_int_equal(cf_image_put(&src, "t.ndb", "Sig.C:0:*:45464748\n", 19, &pe), CF_OK);
    make_cvd(&src, key, 0, &cvd);
    assert_int_equal(cf_verify_cvd(&c, cvd.p, cvd.n, NULL, 0, &got, NULL, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "t.ndb"));
    assert_int_equal(got.nfiles, 0);
    cvd.n = 0;

    /* Truncated: only the header. */
    make_cvd(&src, key, 0, &cvd);
    assert_int_not_equal(cf_verify_cvd(&c, cvd.p, 512, NULL, 0, &got, NULL, &e), CF_OK);
    cf_image_free(&src);
    cf_buf_free(&cvd);
}

static void test_cld_and_patch(void **state)
{
    (void)state;
    cf_image v1, v2, got;
    cf_err e = {0};
    cf_verifyctx c = ctx();
    image_v(&v1, 1, "Sig.A:0:*:41424344\n");
    image_v(&v2, 2, "Sig.A:0:*:41424344\nSig.B:0:*:45464748\n");

    cf_buf cld = CF_BUF_INIT;
    assert_int_equal(cf_cld_write(&v1, 0, &cld, &e), CF_OK);
    assert_int_equal(cf_verify_cld(&c, cld.p, cld.n, &got, &e), CF_OK);
    assert_int_equal(got.hdr.version, 1);

    cf_buf script = CF_BUF_INIT, cdiff = CF_BUF_INIT, out = CF_BUF_INIT;
    assert_int_equal(cf_cdiff_make_script(&v1, &v2, &script, &e), CF_OK);
    assert_int_equal(cf_cdiff_build(script.p, script.n, 2, key, &cdiff, &e), CF_OK);
    uint32_t version = 0;
    cf_sigsource how;
    assert_int_equal(cf_verify_cdiff(&c, cdiff.p, cdiff.n, NULL, 0, &out, &version, &how, &e), CF_OK);
    assert_int_equal(version, 2);
    assert_int_equal(how, CF_SIGSRC_LEGACY);
    assert_int_equal(cf_verify_apply(&c, &got, &out, 1, &e), CF_OK);
    assert_int_equal(got.hdr.version, 2); /* header taken from the patched manifest */
    assert_memory_equal(cf_image_get(&got, "t.ndb")->data.p, cf_image_get(&v2, "t.ndb")->data.p,
                        cf_image_get(&v2, "t.ndb")->data.n);

    /* A patch that leaves the manifest unsatisfied is refused as a whole:
     * append a line to t.ndb without touching t.info. */
    const char *bad = "OPEN t.ndb\nADD Sig.X:0:*:00\nCLOSE\n";
    cf_buf badscript = CF_BUF_INIT;
    cf_buf_append_str(&badscript, bad);
    size_t before = cf_image_get(&got, "t.ndb")->data.n;
    assert_int_equal(cf_verify_apply(&c, &got, &badscript, 1, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "t.ndb"));
    assert_int_equal(cf_image_get(&got, "t.ndb")->data.n, before);
    assert_int_equal(got.hdr.version, 2);

    /* A cdiff signed by an untrusted key. */
    cdiff.n = 0;
    assert_int_equal(cf_cdiff_build(script.p, script.n, 2, other, &cdiff, &e), CF_OK);
    out.n = 0;
    assert_int_equal(cf_verify_cdiff(&c, cdiff.p, cdiff.n, NULL, 0, &out, &version, &how, &e), CF_ESIG);

    /* A CLD with a member changed after the fact. */
    cld.p[cld.n - 600] ^= 0x20;
    cf_image bad_img;
    assert_int_not_equal(cf_verify_cld(&c, cld.p, cld.n, &bad_img, &e), CF_OK);
    assert_int_equal(bad_img.nfiles, 0);

    cf_buf_free(&badscript);
    cf_buf_free(&script);
    cf_buf_free(&cdiff);
    cf_buf_free(&out);
    cf_buf_free(&cld);
    cf_image_free(&got);
    cf_image_free(&v1);
    cf_image_free(&v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cvd_accepted),
        cmocka_unit_test(test_cvd_refused),
        cmocka_unit_test(test_cld_and_patch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
