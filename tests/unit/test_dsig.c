/* The signature layer (formats.md §4): CV64, legacy MD5 dsig, ClamAV's PSS
 * scheme, keys and the trust set. Real ClamAV signatures come from the spec
 * (§5.2, §6.2, §9.4) and, when present, from the shipped vectors. */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/dsig.h"
#include "clamfresh/fileio.h"

/* ---- fixtures from the spec ---- */

/* unit_tests/check_clamav.c legacy pairs (§9.4). */
static const char md5_a[] = "ae307614434715274c60854c931a26de";
static const char sig_a[] =
    "60uhCFmiN48J8r6c7coBv9Q1mehAWEGh6GPYA+60VhQcuXfb0iV1O+sCEyMiRXt/iYF6vXtPXHVd6DiuZ4Gfrry7sVQqNTt3o1"
    "/KwU1rc0l5FHgX/nC99fdr/fjaFtinMtRnUXHLeu0j8e6HK+7JLBpD37fZ60GC9YY86EclYGe";
static const char md5_b[] = "96b7feb3b2a863846438809fe481906f";
static const char sig_b[] =
    "Zh5gmf09Zfj6V4gmRKu/NURzhFiE9VloI7w1G33BgDdGSs0Xhscx6sjPUpFSCPsjOalyS4L8q7RS+NdGvNCsLymiIH6RYItlOZ"
    "sygFhcGuH4jt15KAaAkvEg2TwmqR8z41nUaMlZ0c8q1MXYCLvQJyFARsfzIxS3PAoN2Y3HPoe";

/* test-1.cvd test.info DSIG and its signed-prefix SHA-256 (§5.2, §5.3). */
static const char info1_digest[] = "679a67c9b7b694b964fcee5b791070000514af6ab3e78bf488e4a80b62096550";
static const char info1_sig[] =
    "TFd9RBeu6wZwfMrWGsGH9WOSs1j+3s+PD2fVTLwR8Qgv2QVF25EXnIfH4cKmKRDoqDCLE0P6Kk3KRROkvaSGv01aiGMNRzY3bH"
    "kGQlSUs2p6kXUoV4B+TLn1gZYR4x6XH7GuFPolfxgHuzK974zxoxXe7GhzHPVgxtUI6uODlzJNw2HfCXG/MqPnNmMSC1yquZ"
    "jmzA3ak0+jrdqfmg8c27xSrvd7/6K6ItyYEa9q3HPL/9g7ANKQ0B+0TegXySdmIkZ+PYgf6u3uEx09db3RXLkesU8K3bvdVZ"
    "SEyyRh0ir+GibrGM2Fef1GugtNAI8gUQAA9OtJmhuNUsbeWNdDV";

/* test-2.cdiff trailer and the SHA-256 of its signed region (§6.2). */
static const char cdiff2_digest[] = "eb8db63477d7e933290cf9465750bbdf3a9bf160e84e941e02ad7ae80d1023f5";
static const char cdiff2_sig[] =
    "3GYo0NXQzFJfEudDQDAxL2xGzIw/86MgHbcBGxmc3/BQZFUg0sl5JIBRuIExBN6rtbigqEb/dUpdGWEeb+/bL/AhlOeeRhjOlu"
    "JZUkKLhB45OFGdUmQCyv54NoTm4Ju2qoKxm/LIym7jpQOF/6rXIvg6QjKDQxwI4kSObM+Wf2FCA2znvaI+Y+iZl+gKC4i/yi"
    "EjU5z5zqfZSmBGXxvrNj06F82SeCvtQQnC0wK7mLzBMFhEI+kkbJvNdyzMI33yBbZuWU0+Ia8fUsWgeGloGCvLljWWguVr8v"
    "VW7XVDitd4Wp9wTHA4t2CyDZdKq5w9qp/JP6g6NTNV/WmtXaotb";

/* ---- helpers ---- */

static cf_rsakey *test_key; /* 2048-bit private key made once for the whole run */

static int group_setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &test_key, &e) != CF_OK) {
        fprintf(stderr, "key generation failed: %s\n", e.msg);
        return -1;
    }
    cf_test_srand(20240611);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cf_rsakey_free(test_key);
    return 0;
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static cf_rsakey *builtin(cf_keyrole role)
{
    cf_rsakey *k = NULL;
    cf_err e = {0};
    assert_int_equal(cf_rsakey_builtin(role, &k, &e), CF_OK);
    assert_non_null(k);
    return k;
}

static void rand_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)cf_test_rand();
}

/* An OpenSSL handle on the same key, for cross-checks done outside our code. */
static EVP_PKEY *ossl_key(const cf_rsakey *k, int private_part)
{
    cf_buf pem = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_rsakey_write_pem(k, private_part, &pem, &e), CF_OK);
    BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    assert_non_null(bio);
    EVP_PKEY *pkey = private_part ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                                  : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pkey);
    BIO_free(bio);
    cf_buf_free(&pem);
    return pkey;
}

/* Raw RSA with OpenSSL: private (sign) or public (recover) with no padding.
 * in is right-aligned into the modulus length; returns the output length. */
static size_t ossl_raw(EVP_PKEY *pkey, int private_op, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t size = (size_t)EVP_PKEY_get_size(pkey);
    uint8_t buf[1024] = {0};
    assert_true(n <= size && size <= sizeof(buf));
    memcpy(buf + size - n, in, n);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    assert_non_null(ctx);
    size_t outlen = size;
    if (private_op) {
        assert_true(EVP_PKEY_sign_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0);
        assert_true(EVP_PKEY_sign(ctx, out, &outlen, buf, size) > 0);
    } else {
        assert_true(EVP_PKEY_verify_recover_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0);
        assert_true(EVP_PKEY_verify_recover(ctx, out, &outlen, buf, size) > 0);
    }
    EVP_PKEY_CTX_free(ctx);
    return outlen;
}

/* CV64 text of the private-key operation on an arbitrary EM. */
static void sign_raw(EVP_PKEY *priv, const uint8_t *em, size_t n, cf_buf *sig)
{
    uint8_t s[1024];
    size_t sn = ossl_raw(priv, 1, em, n, s);
    cf_err e = {0};
    sig->n = 0;
    assert_int_equal(cf_cv64_encode(s, sn, sig, &e), CF_OK);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, 32);
}

static void mgf1(const uint8_t seed[32], uint8_t *mask, size_t n)
{
    uint8_t in[36], blk[32];
    memcpy(in, seed, 32);
    for (uint32_t c = 0, done = 0; done < n; c++) {
        in[32] = (uint8_t)(c >> 24);
        in[33] = (uint8_t)(c >> 16);
        in[34] = (uint8_t)(c >> 8);
        in[35] = (uint8_t)c;
        sha256(in, sizeof(in), blk);
        size_t take = n - done < 32 ? n - done : 32;
        memcpy(mask + done, blk, take);
        done += (uint32_t)take;
    }
}

/* Builds a 256-byte EM the way §4.3 describes, with knobs to break it:
 * salt_len (32 is right), pad written into DB at pad_at (0 is right),
 * trailer (0xBC is right). */
static void make_em_at(const uint8_t digest[32], size_t salt_len, size_t pad_at, uint8_t pad,
                       uint8_t trailer, uint8_t em[256])
{
    uint8_t salt[64], hin[8 + 32 + 64] = {0}, h[32], db[223] = {0}, mask[223];
    rand_bytes(salt, salt_len);
    memcpy(hin + 8, digest, 32);
    memcpy(hin + 40, salt, salt_len);
    sha256(hin, 40 + salt_len, h);
    size_t sep = 223 - salt_len - 1;
    db[sep] = 0x01;
    if (pad_at < sep)
        db[pad_at] = pad;
    memcpy(db + sep + 1, salt, salt_len);
    mgf1(h, mask, sizeof(mask));
    for (size_t i = 0; i < 223; i++)
        em[i] = db[i] ^ mask[i];
    em[0] &= 0x7F;
    memcpy(em + 223, h, 32);
    em[255] = trailer;
}

/* As make_em_at with the pad byte just before the 0x01. */
static void make_em(const uint8_t digest[32], size_t salt_len, uint8_t pad, uint8_t trailer,
                    uint8_t em[256])
{
    make_em_at(digest, salt_len, 223 - salt_len - 2, pad, trailer, em);
}

/* Reads the dsig field of a CVD header: fields are `:`-separated and the
 * 7th (index 6) is the dsig (§1.1). */
static void cvd_header_dsig(const cf_buf *cvd, char *dsig, size_t cap)
{
    assert_true(cvd->n > 512);
    char hdr[513];
    memcpy(hdr, cvd->p, 512);
    hdr[512] = '\0';
    assert_memory_equal(hdr, "ClamAV-VDB:", 11);
    char *p = hdr;
    for (int i = 0; i < 6; i++) {
        p = strchr(p, ':');
        assert_non_null(p);
        p++;
    }
    char *end = strchr(p, ':');
    assert_non_null(end);
    assert_true((size_t)(end - p) < cap);
    memcpy(dsig, p, (size_t)(end - p));
    dsig[end - p] = '\0';
}

/* ---- CV64 ---- */

static void test_cv64_known_values(void **state)
{
    (void)state;
    cf_buf out = CF_BUF_INIT;
    cf_err e = {0};
    const uint8_t zero[] = {0, 0}, one[] = {1}, v63[] = {63}, v64[] = {64}, v4095[] = {0x0f, 0xff};

    assert_int_equal(cf_cv64_encode(zero, sizeof(zero), &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "a");
    out.n = 0;
    assert_int_equal(cf_cv64_encode(one, 1, &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "b");
    out.n = 0;
    assert_int_equal(cf_cv64_encode(v63, 1, &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "/");
    out.n = 0;
    /* Least significant digit first: 64 = 0 + 1*64. */
    assert_int_equal(cf_cv64_encode(v64, 1, &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "ab");
    assert_int_equal(out.n, 2);
    out.n = 0;
    assert_int_equal(cf_cv64_encode(v4095, 2, &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "//");

    /* Encoding appends. */
    assert_int_equal(cf_cv64_encode(one, 1, &out, &e), CF_OK);
    assert_string_equal((char *)out.p, "//b");
    assert_int_equal(out.n, 3);

    /* Decoding gives minimal big-endian bytes; high-order "a" digits vanish. */
    assert_int_equal(cf_cv64_decode("abaaa", 5, &out, &e), CF_OK);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.p[0], 64);
    assert_int_equal(cf_cv64_decode("aaaa", 4, &out, &e), CF_OK);
    assert_int_equal(out.n, 0);
    assert_int_equal(cf_cv64_decode("9", 1, &out, &e), CF_OK);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.p[0], 61);
    cf_buf_free(&out);
}

static void test_cv64_round_trip(void **state)
{
    (void)state;
    cf_buf txt = CF_BUF_INIT, back = CF_BUF_INIT;
    cf_err e = {0};
    for (int iter = 0; iter < 500; iter++) {
        uint8_t v[300];
        size_t n = 1 + cf_test_rand() % sizeof(v);
        rand_bytes(v, n);
        /* Leading zero bytes in a third of the cases. */
        size_t zeros = iter % 3 == 0 ? cf_test_rand() % (n < 5 ? n : 5) : 0;
        memset(v, 0, zeros);
        txt.n = 0;
        assert_int_equal(cf_cv64_encode(v, n, &txt, &e), CF_OK);
        assert_int_equal(strlen((char *)txt.p), txt.n);
        size_t skip = 0;
        while (skip < n && v[skip] == 0)
            skip++;
        if (skip < n)
            assert_true(txt.n == 0 || txt.p[txt.n - 1] != 'a'); /* minimal */
        assert_int_equal(cf_cv64_decode((char *)txt.p, txt.n, &back, &e), CF_OK);
        assert_int_equal(back.n, n - skip);
        if (back.n > 0)
            assert_memory_equal(back.p, v + skip, back.n);
    }
    cf_buf_free(&txt);
    cf_buf_free(&back);
}

static void test_cv64_rejects(void **state)
{
    (void)state;
    cf_buf out = CF_BUF_INIT;
    cf_err e = {0};
    const char *bad[] = {"ab=", "ab-c", "ab c", "abc\n", "ABC_", "\x80" "ab"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cf_cv64_decode(bad[i], strlen(bad[i]), &out, &e), CF_EFORMAT);
        assert_non_null(strstr(e.msg, "offset"));
    }
    assert_int_equal(cf_cv64_decode("ab\0cd", 5, &out, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "offset 2"));
    assert_int_equal(cf_cv64_decode("", 0, &out, &e), CF_EFORMAT);

    char *huge = malloc(CF_SIG_MAX_CHARS + 2);
    assert_non_null(huge);
    memset(huge, 'b', CF_SIG_MAX_CHARS + 1);
    huge[CF_SIG_MAX_CHARS + 1] = '\0';
    assert_int_equal(cf_cv64_decode(huge, CF_SIG_MAX_CHARS + 1, &out, &e), CF_ETOOBIG);
    assert_int_equal(cf_cv64_decode(huge, CF_SIG_MAX_CHARS, &out, &e), CF_OK);
    assert_int_equal(out.n, CF_SIG_MAX_CHARS * 6 / 8);
    free(huge);
    cf_buf_free(&out);
}

/* ---- built-in keys and real ClamAV signatures ---- */

static void test_builtin_keys(void **state)
{
    (void)state;
    const int bits[] = {1024, 2047, 2047};
    for (int r = CF_KEY_CVD; r <= CF_KEY_CDIFF; r++) {
        cf_rsakey *k = builtin((cf_keyrole)r);
        assert_int_equal(cf_rsakey_bits(k), bits[r]);
        assert_false(cf_rsakey_can_sign(k));
        cf_rsakey_free(k);
    }
    cf_rsakey *k = NULL;
    cf_err e = {0};
    assert_int_equal(cf_rsakey_builtin((cf_keyrole)7, &k, &e), CF_EINVAL);
    assert_null(k);
}

static void test_legacy_check_clamav_vectors(void **state)
{
    (void)state;
    cf_rsakey *k = builtin(CF_KEY_CVD);
    cf_err e = {0};

    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig_a, &e), CF_OK);
    assert_int_equal(cf_dsig_verify_md5(k, md5_b, sig_b, &e), CF_OK);

    /* Swapped pairs. */
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig_b, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(cf_dsig_verify_md5(k, md5_b, sig_a, &e), CF_ESIG);

    /* One md5 digit changed. */
    char md5[40];
    strcpy(md5, md5_a);
    md5[31] = 'f';
    assert_int_equal(cf_dsig_verify_md5(k, md5, sig_a, &e), CF_ESIG);
    strcpy(md5, md5_b);
    md5[0] = '8';
    assert_int_equal(cf_dsig_verify_md5(k, md5, sig_b, &e), CF_ESIG);

    /* One signature character changed. */
    char sig[sizeof(sig_a) + 8];
    strcpy(sig, sig_a);
    sig[10] = sig[10] == 'x' ? 'y' : 'x';
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig, &e), CF_ESIG);

    /* A 33-character md5. */
    snprintf(md5, sizeof(md5), "%se", md5_a);
    assert_int_not_equal(cf_dsig_verify_md5(k, md5, sig_a, &e), CF_OK);
    /* Upper-case hex is not what we compute over the body. */
    assert_int_not_equal(cf_dsig_verify_md5(k, "AE307614434715274C60854C931A26DE", sig_a, &e), CF_OK);

    /* An extra trailing 'e' adds a high-order digit: the value outgrows 16 bytes. */
    snprintf(sig, sizeof(sig), "%se", sig_a);
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig, &e), CF_ESIG);

    /* Truncated signature. */
    strcpy(sig, sig_a);
    sig[strlen(sig) - 1] = '\0';
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig, &e), CF_ESIG);
    sig[40] = '\0';
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig, &e), CF_ESIG);

    /* Empty, outside the alphabet, absurdly long. */
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, "", &e), CF_ESIG);
    strcpy(sig, sig_a);
    sig[5] = '=';
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, sig, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "offset 5"));
    char *huge = malloc(4097);
    assert_non_null(huge);
    memset(huge, 'b', 4096);
    huge[4096] = '\0';
    assert_int_equal(cf_dsig_verify_md5(k, md5_a, huge, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "longer"));
    free(huge);

    cf_rsakey_free(k);
}

static void test_info_dsig_test1(void **state)
{
    (void)state;
    uint8_t digest[32];
    unhex(info1_digest, digest, 32);
    cf_rsakey *k = builtin(CF_KEY_INFO);
    cf_err e = {0};
    assert_int_equal(cf_pss_verify(k, digest, info1_sig, &e), CF_OK);

    /* Other digest. */
    digest[31] ^= 1;
    assert_int_equal(cf_pss_verify(k, digest, info1_sig, &e), CF_ESIG);
    digest[31] ^= 1;

    /* Every single flipped character of the first 50 fails. */
    char sig[sizeof(info1_sig)];
    for (size_t i = 0; i < 50; i++) {
        strcpy(sig, info1_sig);
        sig[i] = sig[i] == 'Q' ? 'R' : 'Q';
        assert_int_equal(cf_pss_verify(k, digest, sig, &e), CF_ESIG);
    }
    /* Truncated and extended. */
    strcpy(sig, info1_sig);
    sig[strlen(sig) - 1] = '\0';
    assert_int_equal(cf_pss_verify(k, digest, sig, &e), CF_ESIG);
    cf_buf longer = CF_BUF_INIT;
    cf_buf_printf(&longer, "%sb", info1_sig);
    assert_int_equal(cf_pss_verify(k, digest, (char *)longer.p, &e), CF_ESIG);
    cf_buf_free(&longer);
    /* Trailing "a" digits are high-order zeros: ClamAV accepts them, so do we. */
    cf_buf padded = CF_BUF_INIT;
    cf_buf_printf(&padded, "%saaa", info1_sig);
    assert_int_equal(cf_pss_verify(k, digest, (char *)padded.p, &e), CF_OK);
    cf_buf_free(&padded);
    cf_rsakey_free(k);
}

static void test_cdiff_sig_test2(void **state)
{
    (void)state;
    uint8_t digest[32];
    unhex(cdiff2_digest, digest, 32);
    cf_rsakey *k = builtin(CF_KEY_CDIFF);
    cf_err e = {0};
    assert_int_equal(cf_pss_verify(k, digest, cdiff2_sig, &e), CF_OK);
    char sig[sizeof(cdiff2_sig)];
    strcpy(sig, cdiff2_sig);
    sig[200] = sig[200] == 'A' ? 'B' : 'A';
    assert_int_equal(cf_pss_verify(k, digest, sig, &e), CF_ESIG);
    cf_rsakey_free(k);
}

static void test_roles_reject_each_other(void **state)
{
    (void)state;
    cf_rsakey *cvd = builtin(CF_KEY_CVD), *info = builtin(CF_KEY_INFO), *cdiff = builtin(CF_KEY_CDIFF);
    uint8_t d_info[32], d_cdiff[32];
    unhex(info1_digest, d_info, 32);
    unhex(cdiff2_digest, d_cdiff, 32);
    cf_err e = {0};

    /* Right key, for reference. */
    assert_int_equal(cf_pss_verify(info, d_info, info1_sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(cdiff, d_cdiff, cdiff2_sig, &e), CF_OK);
    assert_int_equal(cf_dsig_verify_md5(cvd, md5_a, sig_a, &e), CF_OK);

    /* The .info signature under the other keys. */
    assert_int_equal(cf_pss_verify(cdiff, d_info, info1_sig, &e), CF_ESIG);
    assert_int_equal(cf_pss_verify(cvd, d_info, info1_sig, &e), CF_ESIG);
    /* The cdiff signature under the other keys. */
    assert_int_equal(cf_pss_verify(info, d_cdiff, cdiff2_sig, &e), CF_ESIG);
    assert_int_equal(cf_pss_verify(cvd, d_cdiff, cdiff2_sig, &e), CF_ESIG);
    /* The legacy signature under the PSS keys. */
    assert_int_equal(cf_dsig_verify_md5(info, md5_a, sig_a, &e), CF_ESIG);
    assert_int_equal(cf_dsig_verify_md5(cdiff, md5_a, sig_a, &e), CF_ESIG);
    /* And each scheme refuses the other scheme's signature under its own key. */
    assert_int_equal(cf_dsig_verify_md5(cvd, md5_a, info1_sig, &e), CF_ESIG);
    uint8_t d_legacy[32] = {0};
    unhex(md5_a, d_legacy, 16);
    assert_int_equal(cf_pss_verify(info, d_legacy, sig_a, &e), CF_ESIG);

    cf_rsakey_free(cvd);
    cf_rsakey_free(info);
    cf_rsakey_free(cdiff);
}

/* ---- shipped vector files (each test skips on its own when absent) ---- */

static void test_vectors_cvd_dsig(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL)
        skip();
    cf_rsakey *k = builtin(CF_KEY_CVD);
    const char *names[] = {"test-1.cvd", "test-2.cvd", "test-3.cvd"};
    for (size_t i = 0; i < 3; i++) {
        cf_buf cvd = CF_BUF_INIT;
        cf_test_read_vector(names[i], &cvd);
        uint8_t md5[16];
        unsigned int len = 0;
        assert_int_equal(EVP_Digest(cvd.p + 512, cvd.n - 512, md5, &len, EVP_md5(), NULL), 1);
        char hex[33];
        tohex(md5, 16, hex);
        char dsig[600];
        cvd_header_dsig(&cvd, dsig, sizeof(dsig));
        assert_int_equal(strlen(dsig), 171);

        cf_err e = {0};
        if (cf_dsig_verify_md5(k, hex, dsig, &e) != CF_OK)
            fail_msg("%s: %s", names[i], e.msg);
        /* A body one byte different no longer matches. */
        hex[5] = hex[5] == '0' ? '1' : '0';
        assert_int_equal(cf_dsig_verify_md5(k, hex, dsig, &e), CF_ESIG);
        cf_buf_free(&cvd);
    }
    cf_rsakey_free(k);
}

static void test_vectors_cdiff_trailer(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL)
        skip();
    cf_rsakey *k = builtin(CF_KEY_CDIFF);
    cf_rsakey *info = builtin(CF_KEY_INFO);
    const char *names[] = {"test-2.cdiff", "test-3.cdiff"};
    for (size_t i = 0; i < 2; i++) {
        cf_buf f = CF_BUF_INIT;
        cf_test_read_vector(names[i], &f);
        assert_true(f.n >= 350);
        /* §6.2: the signature follows the last ':' in the final 350 bytes. */
        size_t colon = f.n;
        for (size_t j = f.n; j > f.n - 350; j--) {
            if (f.p[j - 1] == ':') {
                colon = j - 1;
                break;
            }
        }
        assert_true(colon < f.n);
        size_t siglen = f.n - colon - 1;
        char sig[400];
        assert_true(siglen > 0 && siglen < sizeof(sig));
        memcpy(sig, f.p + colon + 1, siglen);
        sig[siglen] = '\0';
        uint8_t digest[32];
        sha256(f.p, colon, digest);
        if (i == 0) {
            char hex[65];
            tohex(digest, 32, hex);
            assert_string_equal(hex, cdiff2_digest);
            assert_string_equal(sig, cdiff2_sig);
        }
        cf_err e = {0};
        if (cf_pss_verify(k, digest, sig, &e) != CF_OK)
            fail_msg("%s: %s", names[i], e.msg);
        assert_int_equal(cf_pss_verify(info, digest, sig, &e), CF_ESIG);
        /* Hashing one byte more (the ':') breaks it. */
        sha256(f.p, colon + 1, digest);
        assert_int_equal(cf_pss_verify(k, digest, sig, &e), CF_ESIG);
        cf_buf_free(&f);
    }
    cf_rsakey_free(k);
    cf_rsakey_free(info);
}

/* ---- signing with our own keys ---- */

static void test_legacy_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *pub = ossl_key(test_key, 0);
    cf_buf sig = CF_BUF_INIT;
    cf_err e = {0};
    for (int i = 0; i < 50; i++) {
        uint8_t md5[16];
        rand_bytes(md5, 16);
        if (i == 0)
            memset(md5, 0, 3); /* leading zero bytes must survive (right alignment) */
        char hex[33];
        tohex(md5, 16, hex);
        assert_int_equal(cf_dsig_sign_md5(test_key, md5, &sig, &e), CF_OK);
        assert_int_equal(strlen((char *)sig.p), sig.n);
        assert_true(sig.n <= 342 && sig.n >= 300);
        assert_int_equal(cf_dsig_verify_md5(test_key, hex, (char *)sig.p, &e), CF_OK);

        /* Textbook RSA: OpenSSL's raw public operation gives back the MD5. */
        cf_buf raw = CF_BUF_INIT;
        assert_int_equal(cf_cv64_decode((char *)sig.p, sig.n, &raw, &e), CF_OK);
        uint8_t m[512];
        size_t mn = ossl_raw(pub, 0, raw.p, raw.n, m);
        assert_int_equal(mn, 256);
        for (size_t j = 0; j < 240; j++)
            assert_int_equal(m[j], 0);
        assert_memory_equal(m + 240, md5, 16);
        cf_buf_free(&raw);

        /* Another digest fails. */
        hex[0] = hex[0] == 'a' ? 'b' : 'a';
        assert_int_equal(cf_dsig_verify_md5(test_key, hex, (char *)sig.p, &e), CF_ESIG);
    }
    EVP_PKEY_free(pub);
    cf_buf_free(&sig);
}

static void test_pss_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *pub = ossl_key(test_key, 0);
    cf_rsakey *info = builtin(CF_KEY_INFO);
    cf_buf sig = CF_BUF_INIT;
    cf_err e = {0};
    for (int i = 0; i < 50; i++) {
        uint8_t digest[32];
        rand_bytes(digest, 32);
        assert_int_equal(cf_pss_sign(test_key, digest, &sig, &e), CF_OK);
        assert_int_equal(strlen((char *)sig.p), sig.n);
        assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);
        assert_int_equal(cf_pss_verify(info, digest, (char *)sig.p, &e), CF_ESIG);
        digest[i % 32] ^= 0x40;
        assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
        digest[i % 32] ^= 0x40;

        /* EM never starts with 0x00 (ClamAV 1.1-1.4 compatibility). */
        cf_buf raw = CF_BUF_INIT;
        assert_int_equal(cf_cv64_decode((char *)sig.p, sig.n, &raw, &e), CF_OK);
        uint8_t em[512];
        assert_int_equal(ossl_raw(pub, 0, raw.p, raw.n, em), 256);
        assert_int_not_equal(em[0], 0);
        assert_int_equal(em[255], 0xBC);
        cf_buf_free(&raw);

        /* With a 2048-bit key the encoding is standard RSASSA-PSS: OpenSSL agrees. */
        uint8_t s[256];
        assert_int_equal(cf_cv64_decode((char *)sig.p, sig.n, &raw, &e), CF_OK);
        memset(s, 0, sizeof(s));
        memcpy(s + 256 - raw.n, raw.p, raw.n);
        cf_buf_free(&raw);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        assert_true(EVP_PKEY_verify_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) > 0);
        assert_int_equal(EVP_PKEY_verify(ctx, s, sizeof(s), digest, 32), 1);
        EVP_PKEY_CTX_free(ctx);
    }
    cf_rsakey_free(info);
    EVP_PKEY_free(pub);
    cf_buf_free(&sig);
}

/* 2047-bit moduli, like ClamAV's production keys: EM can exceed N, so the
 * signer must retry; every signature still verifies. */
static void test_pss_2047_bit_key(void **state)
{
    (void)state;
    cf_rsakey *k = NULL;
    cf_err e = {0};
    assert_int_equal(cf_rsakey_generate(2047, &k, &e), CF_OK);
    assert_int_equal(cf_rsakey_bits(k), 2047);
    EVP_PKEY *pub = ossl_key(k, 0);
    cf_buf sig = CF_BUF_INIT, raw = CF_BUF_INIT;
    for (int i = 0; i < 40; i++) {
        uint8_t digest[32], em[512];
        rand_bytes(digest, 32);
        if (cf_pss_sign(k, digest, &sig, &e) != CF_OK)
            fail_msg("signing %d: %s", i, e.msg);
        assert_true(sig.n <= 342);
        assert_int_equal(cf_pss_verify(k, digest, (char *)sig.p, &e), CF_OK);
        assert_int_equal(cf_cv64_decode((char *)sig.p, sig.n, &raw, &e), CF_OK);
        assert_int_equal(ossl_raw(pub, 0, raw.p, raw.n, em), 256);
        assert_int_not_equal(em[0], 0);
        assert_true(em[0] < 0x80);
    }
    cf_buf_free(&sig);
    cf_buf_free(&raw);
    EVP_PKEY_free(pub);
    cf_rsakey_free(k);
}

/* A signature made by OpenSSL's stock PSS signer verifies with ClamAV's algorithm (§4.3). */
static void test_pss_accepts_openssl_signature(void **state)
{
    (void)state;
    EVP_PKEY *priv = ossl_key(test_key, 1);
    uint8_t digest[32], s[256];
    rand_bytes(digest, 32);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    assert_true(EVP_PKEY_sign_init(ctx) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
    assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) > 0);
    size_t sn = sizeof(s);
    assert_true(EVP_PKEY_sign(ctx, s, &sn, digest, 32) > 0);
    EVP_PKEY_CTX_free(ctx);
    cf_buf sig = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_cv64_encode(s, sn, &sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);
    cf_buf_free(&sig);
    EVP_PKEY_free(priv);
}

/* Hand-made encodings that break one rule each (§4.3 steps 2 and 6). */
static void test_pss_rejects_bad_encodings(void **state)
{
    (void)state;
    EVP_PKEY *priv = ossl_key(test_key, 1);
    uint8_t digest[32], em[256];
    rand_bytes(digest, 32);
    cf_buf sig = CF_BUF_INIT;
    cf_err e = {0};

    /* Control: the well-formed encoding verifies. */
    make_em(digest, 32, 0, 0xBC, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);

    /* Nonzero padding before the 0x01 is accepted, as in ClamAV. */
    make_em(digest, 32, 0x5A, 0xBC, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);

    /* Wrong trailer byte. */
    make_em(digest, 32, 0, 0xBD, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "trailer"));

    /* Salt of 31 and 33 bytes (0x01 at DB index 191 / 189), H computed consistently. */
    make_em(digest, 31, 0, 0xBC, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "salt is 31 bytes"));
    make_em(digest, 33, 0, 0xBC, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "salt is 33 bytes"));

    /* A 0x01 padding byte ahead of the real separator makes the salt too long. */
    make_em(digest, 32, 0x01, 0xBC, em);
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);

    /* No separator at all: DB of zeros with the mask applied. */
    make_em(digest, 32, 0, 0xBC, em);
    {
        uint8_t mask[223];
        mgf1(em + 223, mask, sizeof(mask));
        for (size_t i = 0; i < 223; i++)
            em[i] = mask[i];
        em[0] &= 0x7F;
    }
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "separator"));

    /* DB[0] = 0x01 is the first separator once its top bit is cleared
     * (step 5), leaving a 222-byte salt: rejected whatever the mask bit. */
    for (int i = 0; i < 16; i++) {
        make_em_at(digest, 32, 0, 0x01, 0xBC, em);
        sign_raw(priv, em, sizeof(em), &sig);
        assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);
        assert_non_null(strstr(e.msg, "salt is 222 bytes"));
    }

    /* Hash mismatch: H replaced. */
    make_em(digest, 32, 0, 0xBC, em);
    em[230] ^= 1;
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_ESIG);

    /* Right-alignment: an EM that begins with zero bytes still verifies. */
    for (int tries = 0;; tries++) {
        assert_true(tries < 5000);
        make_em(digest, 32, 0, 0xBC, em);
        if (em[0] == 0)
            break;
    }
    sign_raw(priv, em, sizeof(em), &sig);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);

    cf_buf_free(&sig);
    EVP_PKEY_free(priv);
}

/* With a 3072-bit key the decoded value can exceed 256 bytes: rejected. PSS
 * signing with such a key still works, since EM < 2^2047 < N. */
static void test_pss_large_key(void **state)
{
    (void)state;
    cf_rsakey *big = NULL;
    cf_err e = {0};
    assert_int_equal(cf_rsakey_generate(3072, &big, &e), CF_OK);
    EVP_PKEY *priv = ossl_key(big, 1);
    uint8_t digest[32], v[300];
    rand_bytes(digest, 32);

    cf_buf sig = CF_BUF_INIT;
    assert_int_equal(cf_pss_sign(big, digest, &sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(big, digest, (char *)sig.p, &e), CF_OK);

    uint8_t em[256];
    make_em(digest, 32, 0, 0xBC, em);
    memset(v, 0, sizeof(v));
    v[300 - 257] = 1; /* 257-byte value: 0x01 || EM */
    memcpy(v + 300 - 256, em, 256);
    sign_raw(priv, v + 300 - 257, 257, &sig);
    assert_int_equal(cf_pss_verify(big, digest, (char *)sig.p, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "more than 256"));

    /* And a legacy value above 16 bytes. */
    uint8_t m17[17] = {1};
    sign_raw(priv, m17, sizeof(m17), &sig);
    assert_int_equal(cf_dsig_verify_md5(big, "00000000000000000000000000000000", (char *)sig.p, &e),
                     CF_ESIG);
    assert_non_null(strstr(e.msg, "more than 16"));

    cf_buf_free(&sig);
    EVP_PKEY_free(priv);
    cf_rsakey_free(big);
}

static void test_sign_key_requirements(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_buf sig = CF_BUF_INIT;
    uint8_t md5[16] = {1, 2, 3}, digest[32] = {4, 5, 6};

    /* Public-only keys cannot sign. */
    cf_rsakey *info = builtin(CF_KEY_INFO);
    assert_int_equal(cf_pss_sign(info, digest, &sig, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "public only"));
    cf_rsakey *cvd = builtin(CF_KEY_CVD);
    assert_int_equal(cf_dsig_sign_md5(cvd, md5, &sig, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "public only"));
    cf_rsakey_free(info);
    cf_rsakey_free(cvd);

    /* A 1024-bit key signs legacy but is too small for PSS. */
    cf_rsakey *small = NULL;
    assert_int_equal(cf_rsakey_generate(1024, &small, &e), CF_OK);
    assert_int_equal(cf_dsig_sign_md5(small, md5, &sig, &e), CF_OK);
    assert_true(sig.n >= 160 && sig.n <= 171);
    char hex[33];
    tohex(md5, 16, hex);
    assert_int_equal(cf_dsig_verify_md5(small, hex, (char *)sig.p, &e), CF_OK);
    assert_int_equal(cf_pss_sign(small, digest, &sig, &e), CF_EUNSUPP);
    assert_non_null(strstr(e.msg, "1024 bits"));
    cf_rsakey_free(small);

    /* A 512-bit key (made by OpenSSL directly) loads but signs nothing. */
    EVP_PKEY *p512 = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    assert_true(EVP_PKEY_keygen_init(ctx) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 512) > 0);
    assert_true(EVP_PKEY_generate(ctx, &p512) > 0);
    EVP_PKEY_CTX_free(ctx);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PrivateKey(bio, p512, NULL, NULL, 0, NULL, NULL) > 0);
    char *pem = NULL;
    long pn = BIO_get_mem_data(bio, &pem);
    cf_rsakey *tiny = NULL;
    assert_int_equal(cf_rsakey_from_pem((uint8_t *)pem, (size_t)pn, &tiny, &e), CF_OK);
    assert_true(cf_rsakey_can_sign(tiny));
    assert_int_equal(cf_dsig_sign_md5(tiny, md5, &sig, &e), CF_EUNSUPP);
    assert_int_equal(cf_pss_sign(tiny, digest, &sig, &e), CF_EUNSUPP);
    cf_rsakey_free(tiny);
    BIO_free(bio);
    EVP_PKEY_free(p512);

    assert_int_equal(cf_rsakey_generate(100, &small, &e), CF_EINVAL);
    assert_null(small);
    cf_buf_free(&sig);
}

/* ---- PEM ---- */

static void test_pem_round_trip(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_buf pub = CF_BUF_INIT, priv = CF_BUF_INIT, sig = CF_BUF_INIT;
    assert_int_equal(cf_rsakey_write_pem(test_key, 0, &pub, &e), CF_OK);
    assert_int_equal(cf_rsakey_write_pem(test_key, 1, &priv, &e), CF_OK);
    assert_non_null(strstr((char *)pub.p, "-----BEGIN PUBLIC KEY-----"));
    assert_non_null(memmem(priv.p, priv.n, "-----BEGIN PRIVATE KEY-----", 27));

    cf_rsakey *kpub = NULL, *kpriv = NULL;
    assert_int_equal(cf_rsakey_from_pem(pub.p, pub.n, &kpub, &e), CF_OK);
    assert_int_equal(cf_rsakey_from_pem(priv.p, priv.n, &kpriv, &e), CF_OK);
    assert_false(cf_rsakey_can_sign(kpub));
    assert_true(cf_rsakey_can_sign(kpriv));
    assert_int_equal(cf_rsakey_bits(kpub), 2048);

    /* Public part cannot be exported as private, nor sign. */
    cf_buf tmp = CF_BUF_INIT;
    assert_int_equal(cf_rsakey_write_pem(kpub, 1, &tmp, &e), CF_EINVAL);
    uint8_t digest[32], md5[16];
    rand_bytes(digest, 32);
    rand_bytes(md5, 16);
    assert_int_equal(cf_pss_sign(kpub, digest, &sig, &e), CF_EINVAL);

    /* Signed by the reloaded private key, verified by the reloaded public key and the original. */
    assert_int_equal(cf_pss_sign(kpriv, digest, &sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(kpub, digest, (char *)sig.p, &e), CF_OK);
    assert_int_equal(cf_pss_verify(test_key, digest, (char *)sig.p, &e), CF_OK);
    char hex[33];
    tohex(md5, 16, hex);
    assert_int_equal(cf_dsig_sign_md5(kpriv, md5, &sig, &e), CF_OK);
    assert_int_equal(cf_dsig_verify_md5(kpub, hex, (char *)sig.p, &e), CF_OK);

    /* Export again: the same public key text. */
    assert_int_equal(cf_rsakey_write_pem(kpriv, 0, &tmp, &e), CF_OK);
    assert_int_equal(tmp.n, pub.n);
    assert_memory_equal(tmp.p, pub.p, pub.n);

    cf_rsakey_free(kpub);
    cf_rsakey_free(kpriv);
    cf_buf_free(&tmp);
    cf_buf_free(&pub);
    OPENSSL_cleanse(priv.p, priv.n);
    cf_buf_free(&priv);
    cf_buf_free(&sig);
}

static void test_pem_formats(void **state)
{
    (void)state;
    cf_err e = {0};
    EVP_PKEY *pkey = ossl_key(test_key, 1);
    uint8_t digest[32];
    rand_bytes(digest, 32);
    cf_buf sig = CF_BUF_INIT;
    assert_int_equal(cf_pss_sign(test_key, digest, &sig, &e), CF_OK);

    /* PKCS#1 "RSA PUBLIC KEY" and "RSA PRIVATE KEY". */
    const struct {
        int selection;
        const char *banner;
        int can_sign;
    } forms[] = {
        {EVP_PKEY_PUBLIC_KEY, "-----BEGIN RSA PUBLIC KEY-----", 0},
        {EVP_PKEY_KEYPAIR, "-----BEGIN RSA PRIVATE KEY-----", 1},
    };
    for (size_t i = 0; i < 2; i++) {
        OSSL_ENCODER_CTX *ectx =
            OSSL_ENCODER_CTX_new_for_pkey(pkey, forms[i].selection, "PEM", "type-specific", NULL);
        assert_non_null(ectx);
        unsigned char *data = NULL;
        size_t len = 0;
        assert_int_equal(OSSL_ENCODER_to_data(ectx, &data, &len), 1);
        OSSL_ENCODER_CTX_free(ectx);
        assert_non_null(memmem(data, len, forms[i].banner, strlen(forms[i].banner)));
        cf_rsakey *k = NULL;
        assert_int_equal(cf_rsakey_from_pem(data, len, &k, &e), CF_OK);
        assert_int_equal(cf_rsakey_can_sign(k), forms[i].can_sign);
        assert_int_equal(cf_pss_verify(k, digest, (char *)sig.p, &e), CF_OK);
        cf_rsakey_free(k);
        OPENSSL_free(data);
    }

    /* Encrypted private key: refused without prompting. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PKCS8PrivateKey(bio, pkey, EVP_aes_128_cbc(), NULL, 0, NULL,
                                              (void *)"secret") > 0);
    char *enc = NULL;
    long en = BIO_get_mem_data(bio, &enc);
    cf_rsakey *k = NULL;
    assert_int_equal(cf_rsakey_from_pem((uint8_t *)enc, (size_t)en, &k, &e), CF_EFORMAT);
    assert_null(k);
    BIO_free(bio);

    /* Not a key; not RSA; empty; too big. */
    const char junk[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_int_equal(cf_rsakey_from_pem((const uint8_t *)junk, strlen(junk), &k, &e), CF_EFORMAT);
    assert_int_equal(cf_rsakey_from_pem((const uint8_t *)"hello", 5, &k, &e), CF_EFORMAT);
    assert_int_equal(cf_rsakey_from_pem((const uint8_t *)"", 0, &k, &e), CF_EFORMAT);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PUBKEY(bio, ec) > 0);
    char *ecpem = NULL;
    long ecn = BIO_get_mem_data(bio, &ecpem);
    assert_int_not_equal(cf_rsakey_from_pem((uint8_t *)ecpem, (size_t)ecn, &k, &e), CF_OK);
    assert_null(k);
    BIO_free(bio);
    EVP_PKEY_free(ec);
    uint8_t *big = calloc(1, CF_MAX_PEM_BYTES + 1);
    assert_non_null(big);
    assert_int_equal(cf_rsakey_from_pem(big, CF_MAX_PEM_BYTES + 1, &k, &e), CF_ETOOBIG);
    free(big);

    EVP_PKEY_free(pkey);
    cf_buf_free(&sig);
}

/* The built-in keys export as PEM and reload to the same key. */
static void test_pem_builtin_export(void **state)
{
    (void)state;
    cf_err e = {0};
    cf_rsakey *info = builtin(CF_KEY_INFO);
    cf_buf pem = CF_BUF_INIT;
    assert_int_equal(cf_rsakey_write_pem(info, 0, &pem, &e), CF_OK);
    cf_rsakey *back = NULL;
    assert_int_equal(cf_rsakey_from_pem(pem.p, pem.n, &back, &e), CF_OK);
    assert_int_equal(cf_rsakey_bits(back), 2047);
    uint8_t digest[32];
    unhex(info1_digest, digest, 32);
    assert_int_equal(cf_pss_verify(back, digest, info1_sig, &e), CF_OK);
    cf_rsakey_free(back);
    cf_rsakey_free(info);
    cf_buf_free(&pem);
}

/* ---- files and trust ---- */

static char *write_temp(const char *dir, const char *name, const void *data, size_t n)
{
    static char paths[4][4200];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 4200, "%s/%s", dir, name);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(p, data, n, 0600, &e), CF_OK);
    return p;
}

static void test_pem_file_and_trust(void **state)
{
    (void)state;
    cf_err e = {0};
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);

    cf_buf pub = CF_BUF_INIT;
    assert_int_equal(cf_rsakey_write_pem(test_key, 0, &pub, &e), CF_OK);
    char *good = write_temp(dir, "info.pem", pub.p, pub.n);
    char *junk = write_temp(dir, "junk.pem", "not a key\n", 10);
    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);

    cf_rsakey *k = NULL;
    assert_int_equal(cf_rsakey_load_pem_file(good, &k, &e), CF_OK);
    assert_int_equal(cf_rsakey_bits(k), 2048);
    cf_rsakey_free(k);
    assert_int_not_equal(cf_rsakey_load_pem_file(junk, &k, &e), CF_OK);
    assert_non_null(strstr(e.msg, junk));
    assert_int_equal(cf_rsakey_load_pem_file(missing, &k, &e), CF_ENOTFOUND);
    assert_non_null(strstr(e.msg, missing));

    cf_trust t;
    assert_int_equal(cf_trust_init_builtin(&t, &e), CF_OK);
    assert_non_null(t.cvd);
    assert_non_null(t.info);
    assert_non_null(t.cdiff);
    uint8_t d_info[32], d_cdiff[32];
    unhex(info1_digest, d_info, 32);
    unhex(cdiff2_digest, d_cdiff, 32);
    assert_int_equal(cf_pss_verify(t.info, d_info, info1_sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(t.cdiff, d_cdiff, cdiff2_sig, &e), CF_OK);
    assert_int_equal(cf_dsig_verify_md5(t.cvd, md5_a, sig_a, &e), CF_OK);

    /* A failing file leaves every key in place. */
    cf_rsakey *cvd0 = t.cvd, *info0 = t.info, *cdiff0 = t.cdiff;
    assert_int_not_equal(cf_trust_load(&t, NULL, good, missing, &e), CF_OK);
    assert_non_null(strstr(e.msg, missing));
    assert_non_null(strstr(e.msg, "cdiff"));
    assert_ptr_equal(t.cvd, cvd0);
    assert_ptr_equal(t.info, info0);
    assert_ptr_equal(t.cdiff, cdiff0);

    /* Replace only the .info key. */
    assert_int_equal(cf_trust_load(&t, NULL, good, NULL, &e), CF_OK);
    assert_ptr_equal(t.cvd, cvd0);
    assert_ptr_equal(t.cdiff, cdiff0);
    assert_int_equal(cf_pss_verify(t.info, d_info, info1_sig, &e), CF_ESIG);
    cf_buf sig = CF_BUF_INIT;
    assert_int_equal(cf_pss_sign(test_key, d_info, &sig, &e), CF_OK);
    assert_int_equal(cf_pss_verify(t.info, d_info, (char *)sig.p, &e), CF_OK);
    assert_int_equal(cf_pss_verify(t.cdiff, d_info, (char *)sig.p, &e), CF_ESIG);
    assert_false(cf_rsakey_can_sign(t.info));

    cf_trust_free(&t);
    assert_null(t.cvd);
    assert_null(t.info);
    assert_null(t.cdiff);
    cf_trust_free(&t);

    cf_buf_free(&sig);
    cf_buf_free(&pub);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_null_arguments(void **state)
{
    (void)state;
    cf_err e = {0};
    uint8_t d[32] = {0};
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_pss_verify(NULL, d, "abc", &e), CF_EINVAL);
    assert_int_equal(cf_pss_verify(test_key, d, NULL, &e), CF_EINVAL);
    assert_int_equal(cf_dsig_verify_md5(NULL, md5_a, sig_a, &e), CF_EINVAL);
    assert_int_equal(cf_dsig_verify_md5(test_key, NULL, sig_a, &e), CF_EINVAL);
    assert_int_equal(cf_pss_sign(NULL, d, &b, &e), CF_EINVAL);
    assert_int_equal(cf_cv64_decode(NULL, 3, &b, &e), CF_EINVAL);
    assert_false(cf_rsakey_can_sign(NULL));
    cf_rsakey_free(NULL);
    cf_trust_free(NULL);
    /* Zero as a signature decodes to an all-zero EM / MD5. */
    assert_int_equal(cf_pss_verify(test_key, d, "aaaa", &e), CF_ESIG);
    assert_int_equal(cf_dsig_verify_md5(test_key, "00000000000000000000000000000000", "a", &e), CF_OK);
    /* A NULL error pointer is allowed. */
    assert_int_equal(cf_pss_verify(test_key, d, "zz", NULL), CF_ESIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cv64_known_values),
        cmocka_unit_test(test_cv64_round_trip),
        cmocka_unit_test(test_cv64_rejects),
        cmocka_unit_test(test_builtin_keys),
        cmocka_unit_test(test_legacy_check_clamav_vectors),
        cmocka_unit_test(test_info_dsig_test1),
        cmocka_unit_test(test_cdiff_sig_test2),
        cmocka_unit_test(test_roles_reject_each_other),
        cmocka_unit_test(test_vectors_cvd_dsig),
        cmocka_unit_test(test_vectors_cdiff_trailer),
        cmocka_unit_test(test_legacy_round_trip),
        cmocka_unit_test(test_pss_round_trip),
        cmocka_unit_test(test_pss_2047_bit_key),
        cmocka_unit_test(test_pss_accepts_openssl_signature),
        cmocka_unit_test(test_pss_rejects_bad_encodings),
        cmocka_unit_test(test_pss_large_key),
        cmocka_unit_test(test_sign_key_requirements),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_pem_formats),
        cmocka_unit_test(test_pem_builtin_export),
        cmocka_unit_test(test_pem_file_and_trust),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
