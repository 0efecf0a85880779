/* The real ClamAV-signed `.sign` vectors against the ClamAV test root
 * (formats.md §7.6). Skipped (77) when the vectors are absent. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clamfresh/codesign.h"
#include "clamfresh/fileio.h"

#define SIGNER "ClamAV TEST CVD Signing Cert"
#define T_2026_01_01 ((time_t)1767225600)
#define T_ROOT_EXPIRY ((time_t)1806083792) /* notAfter of the test root, 2027-03-26 17:56:32 */
#define T_2028_01_01 ((time_t)1830297600)

typedef struct pair {
    char sign[256]; /* e.g. "test-1.cvd.sign" */
    char data[256]; /* e.g. "test-1.cvd" */
} pair;

static pair g_pairs[64];
static size_t g_npairs;

static int list_pairs(void **state)
{
    (void)state;
    DIR *d = opendir(cf_test_vectors_dir());
    if (d == NULL)
        return -1;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (n <= 5 || strcmp(ent->d_name + n - 5, ".sign") != 0 || n >= sizeof(g_pairs[0].sign))
            continue;
        if (g_npairs == sizeof(g_pairs) / sizeof(g_pairs[0]))
            break;
        snprintf(g_pairs[g_npairs].sign, sizeof(g_pairs[0].sign), "%s", ent->d_name);
        snprintf(g_pairs[g_npairs].data, sizeof(g_pairs[0].data), "%.*s", (int)(n - 5), ent->d_name);
        g_npairs++;
    }
    closedir(d);
    return 0;
}

/* A temp certs dir holding a copy of one vector certificate. */
static cf_certstore *store_with(const char *certname, char **dir_out)
{
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);
    cf_buf pem = CF_BUF_INIT;
    cf_test_read_vector(certname, &pem);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, certname);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(path, pem.p, pem.n, 0644, &e), CF_OK);
    cf_buf_free(&pem);
    cf_certstore *s = NULL;
    if (cf_certstore_load(dir, &s, &e) != CF_OK)
        fail_msg("loading %s: %s", dir, e.msg);
    assert_int_equal(cf_certstore_count(s), 1);
    *dir_out = dir;
    return s;
}

static cf_signverdict check(const cf_certstore *s, const pair *p, int flip, unsigned flevel, time_t now,
                            char *signer, size_t signer_sz, cf_err *e)
{
    cf_buf sign = CF_BUF_INIT, data = CF_BUF_INIT;
    cf_test_read_vector(p->sign, &sign);
    cf_test_read_vector(p->data, &data);
    if (flip)
        data.p[data.n / 2] ^= 0x01;
    cf_signverdict v =
        cf_signfile_verify(s, sign.p, sign.n, data.p, data.n, flevel, now, signer, signer_sz, e);
    cf_buf_free(&sign);
    cf_buf_free(&data);
    return v;
}

static void test_every_vector_verifies(void **state)
{
    (void)state;
    char *dir;
    cf_certstore *s = store_with("clamav-test.crt", &dir);
    assert_true(g_npairs >= 5);
    for (size_t i = 0; i < g_npairs; i++) {
        char signer[CF_SIGN_SIGNER_MAX];
        cf_err e = {0};
        cf_signverdict v = check(s, &g_pairs[i], 0, 230, T_2026_01_01, signer, sizeof(signer), &e);
        if (v != CF_SIGN_VALID)
            fail_msg("%s: %s: %s", g_pairs[i].sign, cf_signverdict_str(v), e.msg);
        assert_string_equal(signer, SIGNER);
        assert_int_equal(e.code, CF_OK);
        /* "230::" has no upper bound. */
        assert_int_equal(check(s, &g_pairs[i], 0, 240, T_2026_01_01, NULL, 0, &e), CF_SIGN_VALID);
    }
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_production_root_rejects_test_signatures(void **state)
{
    (void)state;
    char *dir;
    cf_certstore *s = store_with("clamav.crt", &dir);
    for (size_t i = 0; i < g_npairs; i++) {
        cf_err e = {0};
        char signer[CF_SIGN_SIGNER_MAX] = "x";
        cf_signverdict v = check(s, &g_pairs[i], 0, 230, T_2026_01_01, signer, sizeof(signer), &e);
        if (v != CF_SIGN_INVALID)
            fail_msg("%s: %s: %s", g_pairs[i].sign, cf_signverdict_str(v), e.msg);
        assert_int_equal(e.code, CF_ESIG);
        assert_string_equal(signer, "");
        assert_non_null(strstr(e.msg, SIGNER));
    }
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_changed_byte_is_invalid(void **state)
{
    (void)state;
    char *dir;
    cf_certstore *s = store_with("clamav-test.crt", &dir);
    for (size_t i = 0; i < g_npairs; i++) {
        cf_err e = {0};
        cf_signverdict v = check(s, &g_pairs[i], 1, 230, T_2026_01_01, NULL, 0, &e);
        if (v != CF_SIGN_INVALID)
            fail_msg("%s: %s: %s", g_pairs[i].sign, cf_signverdict_str(v), e.msg);
        assert_int_equal(e.code, CF_ESIG);
    }
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_old_flevel_is_unusable(void **state)
{
    (void)state;
    char *dir;
    cf_certstore *s = store_with("clamav-test.crt", &dir);
    for (size_t i = 0; i < g_npairs; i++) {
        cf_err e = {0};
        assert_int_equal(check(s, &g_pairs[i], 0, 220, T_2026_01_01, NULL, 0, &e), CF_SIGN_UNUSABLE);
        assert_int_equal(e.code, CF_ENOTFOUND);
        assert_non_null(strstr(e.msg, "220"));
    }
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    free(dir);
}

/* The test root expires 2027-03-26: after it the same files are invalid (no fallback). */
static void test_time_is_honoured(void **state)
{
    (void)state;
    char *dir;
    cf_certstore *s = store_with("clamav-test.crt", &dir);
    cf_err e = {0};
    assert_int_equal(check(s, &g_pairs[0], 0, 230, T_2028_01_01, NULL, 0, &e), CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "expired"));
    /* now = 0 means the clock: the verdict depends on today's date. */
    cf_signverdict today = check(s, &g_pairs[0], 0, 230, 0, NULL, 0, &e);
    time_t t = time(NULL);
    if (t < T_ROOT_EXPIRY - 60 || t > T_ROOT_EXPIRY + 60)
        assert_int_equal(today, t < T_ROOT_EXPIRY ? CF_SIGN_VALID : CF_SIGN_INVALID);
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    cf_test_require_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_vector_verifies),
        cmocka_unit_test(test_production_root_rejects_test_signatures),
        cmocka_unit_test(test_changed_byte_is_invalid),
        cmocka_unit_test(test_old_flevel_is_unusable),
        cmocka_unit_test(test_time_is_honoured),
    };
    return cmocka_run_group_tests(tests, list_pairs, NULL);
}
