/* `.sign` files with a PKI made at test time (formats.md §7): making, the
 * verdicts of verification, line parsing and the certificate directory. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clamfresh/codesign.h"
#include "clamfresh/fileio.h"
#include "clamfresh/limits.h"

#define ROOT_CN "clamfresh Test Root CA"
#define SIGNER_CN "clamfresh Test Signing Cert"
#define DAY 86400L

typedef struct pem {
    char *p;
    size_t n;
} pem;

/* The test PKI, made once for all tests. */
static struct {
    EVP_PKEY *root_key, *inter_key, *sign_key, *other_key;
    pem root, inter, signer, key, other_root, impostor_root, nocn_root;
    pem signer_expired, signer_codeonly, signer_nocn, signer_otherkey;
    uint8_t data[5000];
    cf_buf sign;       /* a valid .sign for data: signer + intermediate, min 230 */
    char *b64;         /* its base64 DER */
    cf_buf sign_other; /* a valid .sign for other bytes */
    char *b64_other;
} g;

static pem to_pem_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(b, x));
    char *p;
    long n = BIO_get_mem_data(b, &p);
    pem r = {malloc((size_t)n + 1), (size_t)n};
    memcpy(r.p, p, (size_t)n);
    r.p[n] = '\0';
    BIO_free(b);
    return r;
}

static pem to_pem_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
    char *p;
    long n = BIO_get_mem_data(b, &p);
    pem r = {malloc((size_t)n + 1), (size_t)n};
    memcpy(r.p, p, (size_t)n);
    r.p[n] = '\0';
    BIO_free(b);
    return r;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(ext);
    assert_true(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* A certificate for key, issued by (issuer, issuer_key) or self-signed when
 * issuer is NULL. cn NULL = a subject without CN. eku NULL = no EKU. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca,
                       const char *eku, long from, long to)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"clamfresh", -1, -1, 0);
    if (cn != NULL)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid");
    if (ca) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
    }
    if (eku != NULL)
        add_ext(x, &ctx, NID_ext_key_usage, eku);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void make_sign(const pem *cert, const pem *chain, const uint8_t *data, size_t n, unsigned min,
                      cf_buf *out)
{
    cf_err e = {0};
    out->n = 0;
    if (cf_signfile_make(data, n, (const uint8_t *)cert->p, cert->n, (const uint8_t *)g.key.p, g.key.n,
                         chain ? (const uint8_t *)chain->p : NULL, chain ? chain->n : 0, min, out,
                         &e) != CF_OK)
        fail_msg("cf_signfile_make: %s", e.msg);
}

/* The base64 field of the one signature line of a made .sign. */
static char *b64_of(const cf_buf *sign)
{
    const char *tag = "pkcs7-pem:";
    char *text = strndup((const char *)sign->p, sign->n);
    char *at = strstr(text, tag);
    assert_non_null(at);
    char *b = strdup(at + strlen(tag));
    free(text);
    b[strcspn(b, "\n")] = '\0';
    return b;
}

static int setup(void **state)
{
    (void)state;
    g.root_key = EVP_RSA_gen(2048);
    g.inter_key = EVP_RSA_gen(2048);
    g.sign_key = EVP_RSA_gen(2048);
    g.other_key = EVP_RSA_gen(2048);
    if (!g.root_key || !g.inter_key || !g.sign_key || !g.other_key)
        return -1;
    /* The CAs start 60 days ago so that the expired signer has a valid past to test. */
    X509 *root = make_cert(ROOT_CN, g.root_key, NULL, NULL, 1, NULL, -60 * DAY, 3650 * DAY);
    X509 *inter = make_cert("clamfresh Test Intermediate CA", g.inter_key, root, g.root_key, 1, NULL,
                            -60 * DAY, 3650 * DAY);
    const char *eku = "codeSigning,emailProtection";
    X509 *signer = make_cert(SIGNER_CN, g.sign_key, inter, g.inter_key, 0, eku, -DAY, 3650 * DAY);
    X509 *expired =
        make_cert("clamfresh Expired Signing Cert", g.sign_key, inter, g.inter_key, 0, eku, -30 * DAY, -DAY);
    X509 *codeonly = make_cert("clamfresh Code-only Signing Cert", g.sign_key, inter, g.inter_key, 0,
                               "codeSigning", -DAY, 3650 * DAY);
    X509 *nocn = make_cert(NULL, g.sign_key, inter, g.inter_key, 0, eku, -DAY, 3650 * DAY);
    X509 *otherkey = make_cert(SIGNER_CN, g.other_key, inter, g.inter_key, 0, eku, -DAY, 3650 * DAY);
    X509 *other = make_cert("clamfresh Other Root CA", g.other_key, NULL, NULL, 1, NULL, -DAY, 3650 * DAY);
    X509 *impostor = make_cert(ROOT_CN, g.other_key, NULL, NULL, 1, NULL, -DAY, 3650 * DAY);
    X509 *nocnroot = make_cert(NULL, g.other_key, NULL, NULL, 1, NULL, -DAY, 3650 * DAY);
    g.root = to_pem_cert(root);
    g.inter = to_pem_cert(inter);
    g.signer = to_pem_cert(signer);
    g.signer_expired = to_pem_cert(expired);
    g.signer_codeonly = to_pem_cert(codeonly);
    g.signer_nocn = to_pem_cert(nocn);
    g.signer_otherkey = to_pem_cert(otherkey);
    g.other_root = to_pem_cert(other);
    g.impostor_root = to_pem_cert(impostor);
    g.nocn_root = to_pem_cert(nocnroot);
    g.key = to_pem_key(g.sign_key);
    X509 *all[] = {root, inter, signer, expired, codeonly, nocn, otherkey, other, impostor, nocnroot};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        X509_free(all[i]);

    cf_test_srand(230);
    for (size_t i = 0; i < sizeof(g.data); i++)
        g.data[i] = (uint8_t)cf_test_rand();
    make_sign(&g.signer, &g.inter, g.data, sizeof(g.data), 230, &g.sign);
    g.b64 = b64_of(&g.sign);
    make_sign(&g.signer, &g.inter, (const uint8_t *)"other bytes", 11, 230, &g.sign_other);
    g.b64_other = b64_of(&g.sign_other);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pem *all[] = {&g.root,        &g.inter,          &g.signer,
                  &g.key,         &g.other_root,     &g.impostor_root,
                  &g.nocn_root,   &g.signer_expired, &g.signer_codeonly,
                  &g.signer_nocn, &g.signer_otherkey};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->p);
    EVP_PKEY_free(g.root_key);
    EVP_PKEY_free(g.inter_key);
    EVP_PKEY_free(g.sign_key);
    EVP_PKEY_free(g.other_key);
    cf_buf_free(&g.sign);
    cf_buf_free(&g.sign_other);
    free(g.b64);
    free(g.b64_other);
    return 0;
}

/* A store made of the given PEM texts (NULL-terminated). */
static cf_certstore *store_of(const pem *first, ...)
{
    cf_certstore *s = NULL;
    cf_err e = {0};
    cf_code rc = cf_certstore_new(&s, &e);
    va_list ap;
    va_start(ap, first);
    for (const pem *p = first; rc == CF_OK && p != NULL; p = va_arg(ap, const pem *))
        rc = cf_certstore_add_pem(s, (const uint8_t *)p->p, p->n, "test", &e);
    va_end(ap);
    if (rc != CF_OK)
        fail_msg("store: %s", e.msg);
    return s;
}

static cf_signverdict verify(const cf_certstore *s, const cf_buf *sign, const uint8_t *data, size_t n,
                             unsigned flevel, time_t now, char *signer, cf_err *e)
{
    return cf_signfile_verify(s, sign->p, sign->n, data, n, flevel, now, signer,
                              signer ? CF_SIGN_SIGNER_MAX : 0, e);
}

/* ---- making and the main verdicts --------------------------------------- */

static void test_make_format(void **state)
{
    (void)state;
    const char *head = "#clamsign-1.0\n230::pkcs7-pem:";
    assert_true(g.sign.n > strlen(head) + 100);
    assert_memory_equal(g.sign.p, head, strlen(head));
    assert_int_equal(g.sign.p[g.sign.n - 1], '\n');
    size_t lines = 0;
    for (size_t i = 0; i < g.sign.n; i++)
        lines += g.sign.p[i] == '\n';
    assert_int_equal(lines, 2);
    size_t n = strlen(g.b64);
    assert_int_equal(n % 4, 0);
    assert_int_equal(strspn(g.b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="), n);

    /* Appends, with the requested minimum f-level. */
    cf_buf out = CF_BUF_INIT;
    cf_buf_append_str(&out, "kept");
    cf_err e = {0};
    assert_int_equal(cf_signfile_make(g.data, 10, (const uint8_t *)g.signer.p, g.signer.n,
                                      (const uint8_t *)g.key.p, g.key.n, NULL, 0, 245, &out, &e),
                     CF_OK);
    assert_memory_equal(out.p, "kept#clamsign-1.0\n245::pkcs7-pem:", 33);
    cf_buf_free(&out);
}

static void test_make_rejects(void **state)
{
    (void)state;
    cf_buf out = CF_BUF_INIT;
    cf_err e = {0};
    const uint8_t *c = (const uint8_t *)g.signer.p, *k = (const uint8_t *)g.key.p;
    assert_int_equal(cf_signfile_make(g.data, 10, c, g.signer.n, k, g.key.n, NULL, 0, 229, &out, &e),
                     CF_EINVAL);
    assert_non_null(strstr(e.msg, "229"));
    assert_int_equal(
        cf_signfile_make(g.data, 10, (const uint8_t *)"junk", 4, k, g.key.n, NULL, 0, 230, &out, &e),
        CF_EFORMAT);
    assert_int_equal(
        cf_signfile_make(g.data, 10, c, g.signer.n, (const uint8_t *)"junk", 4, NULL, 0, 230, &out, &e),
        CF_EFORMAT);
    assert_non_null(strstr(e.msg, "key"));
    /* The key does not belong to the certificate. */
    assert_int_equal(cf_signfile_make(g.data, 10, (const uint8_t *)g.signer_otherkey.p, g.signer_otherkey.n,
                                      k, g.key.n, NULL, 0, 230, &out, &e),
                     CF_EINVAL);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(out.n, 0);
    cf_buf_free(&out);
}

static void test_make_verify_valid(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    unsigned levels[] = {230, 233, 240, 100000};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char signer[CF_SIGN_SIGNER_MAX];
        cf_err e = {0};
        cf_signverdict v = verify(s, &g.sign, g.data, sizeof(g.data), levels[i], 0, signer, &e);
        if (v != CF_SIGN_VALID)
            fail_msg("flevel %u: %s: %s", levels[i], cf_signverdict_str(v), e.msg);
        assert_int_equal(e.code, CF_OK);
        assert_string_equal(signer, SIGNER_CN);
        assert_non_null(strstr(e.msg, SIGNER_CN));
    }
    /* A signer buffer too small truncates, still terminated. */
    char small[6];
    cf_err e = {0};
    assert_int_equal(
        cf_signfile_verify(s, g.sign.p, g.sign.n, g.data, sizeof(g.data), 230, 0, small, sizeof(small), &e),
        CF_SIGN_VALID);
    assert_string_equal(small, "clamf");
    cf_certstore_free(s);
}

static void test_wrong_root_invalid(void **state)
{
    (void)state;
    const pem *roots[] = {&g.other_root, &g.impostor_root, NULL};
    for (size_t i = 0; i < 3; i++) {
        cf_certstore *s = roots[i] ? store_of(roots[i], NULL) : store_of(NULL);
        char signer[CF_SIGN_SIGNER_MAX] = "x";
        cf_err e = {0};
        assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, 0, signer, &e), CF_SIGN_INVALID);
        assert_int_equal(e.code, CF_ESIG);
        assert_string_equal(signer, "");
        assert_non_null(strstr(e.msg, "line 2"));
        cf_certstore_free(s);
    }
}

static void test_changed_data_invalid(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    uint8_t copy[sizeof(g.data) + 1];
    memcpy(copy, g.data, sizeof(g.data));
    copy[sizeof(g.data)] = 0;
    cf_err e = {0};
    /* One bit anywhere, one byte less, one byte more, nothing at all. */
    size_t at[] = {0, 2500, sizeof(g.data) - 1};
    for (size_t i = 0; i < 3; i++) {
        copy[at[i]] ^= 0x80;
        assert_int_equal(verify(s, &g.sign, copy, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
        copy[at[i]] ^= 0x80;
    }
    assert_int_equal(verify(s, &g.sign, copy, sizeof(g.data) - 1, 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_int_equal(verify(s, &g.sign, copy, sizeof(g.data) + 1, 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_int_equal(verify(s, &g.sign, NULL, 0, 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_int_equal(e.code, CF_ESIG);
    /* Sanity: the unchanged copy still verifies. */
    assert_int_equal(verify(s, &g.sign, copy, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_VALID);
    cf_certstore_free(s);
}

static void test_missing_intermediate(void **state)
{
    (void)state;
    cf_buf sign = CF_BUF_INIT;
    make_sign(&g.signer, NULL, g.data, sizeof(g.data), 230, &sign);
    cf_err e = {0};
    /* Extra untrusted certificates are never supplied: the chain breaks. */
    cf_certstore *s = store_of(&g.root, NULL);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "issuer"));
    cf_certstore_free(s);
    /* Trusting the intermediate too makes it work. */
    s = store_of(&g.root, &g.inter, NULL);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_VALID);
    cf_certstore_free(s);
    cf_buf_free(&sign);
}

static void test_validity_time(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf sign = CF_BUF_INIT;
    make_sign(&g.signer_expired, &g.inter, g.data, sizeof(g.data), 230, &sign);
    cf_err e = {0};
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "expired"));
    /* Inside its validity period (10 days ago) it verifies: `now` is honoured. */
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, time(NULL) - 10 * DAY, NULL, &e),
                     CF_SIGN_VALID);
    /* Before the PKI existed, the good signature is not yet valid. */
    assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, time(NULL) - 100 * DAY, NULL, &e),
                     CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "not yet valid"));
    /* ... and after it ends, it has expired. */
    assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, time(NULL) + 4000 * DAY, NULL, &e),
                     CF_SIGN_INVALID);
    cf_certstore_free(s);
    cf_buf_free(&sign);
}

static void test_eku_without_email_invalid(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf sign = CF_BUF_INIT;
    make_sign(&g.signer_codeonly, &g.inter, g.data, sizeof(g.data), 230, &sign);
    cf_err e = {0};
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "purpose"));
    cf_certstore_free(s);
    cf_buf_free(&sign);
}

static void test_signer_without_cn_invalid(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf sign = CF_BUF_INIT;
    make_sign(&g.signer_nocn, &g.inter, g.data, sizeof(g.data), 230, &sign);
    cf_err e = {0};
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
    assert_non_null(strstr(e.msg, "CN"));
    cf_certstore_free(s);
    cf_buf_free(&sign);
}

/* Writes "#clamsign-1.0\n230::pkcs7-pem:<base64 of der>\n". */
static void sign_of_der(const unsigned char *der, int n, cf_buf *out)
{
    char *b = malloc((size_t)n / 3 * 4 + 8);
    EVP_EncodeBlock((unsigned char *)b, der, n);
    out->n = 0;
    cf_buf_printf(out, "#clamsign-1.0\n230::pkcs7-pem:%s\n", b);
    free(b);
}

/* ClamAV moves on (and ends up "cannot verify") when the object is not
 * signed data or does not carry the signer's certificate. */
static void test_unverifiable_objects_unusable(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, &g.inter, NULL);
    cf_buf sign = CF_BUF_INIT;
    cf_err e = {0};

    BIO *in = BIO_new_mem_buf(g.data, sizeof(g.data));
    BIO *kb = BIO_new_mem_buf(g.key.p, (int)g.key.n);
    BIO *cb = BIO_new_mem_buf(g.signer.p, (int)g.signer.n);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    PKCS7 *p7 = PKCS7_sign(cert, key, NULL, in, PKCS7_DETACHED | PKCS7_BINARY | PKCS7_NOCERTS);
    assert_non_null(p7);
    unsigned char *der = NULL;
    int n = i2d_PKCS7(p7, &der);
    sign_of_der(der, n, &sign);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_ENOTFOUND);
    assert_non_null(strstr(e.msg, "certificate"));
    OPENSSL_free(der);
    PKCS7_free(p7);

    PKCS7 *plain = PKCS7_new();
    assert_true(PKCS7_set_type(plain, NID_pkcs7_data));
    der = NULL;
    n = i2d_PKCS7(plain, &der);
    assert_true(n > 0);
    sign_of_der(der, n, &sign);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_non_null(strstr(e.msg, "not signed data"));
    OPENSSL_free(der);
    PKCS7_free(plain);

    /* A good object followed by bytes that are not part of it. */
    size_t blen = strlen(g.b64);
    unsigned char *raw = malloc(blen);
    int rn = EVP_DecodeBlock(raw, (const unsigned char *)g.b64, (int)blen);
    assert_true(rn > 3);
    rn -= (g.b64[blen - 1] == '=') + (g.b64[blen - 2] == '=');
    raw[rn] = raw[rn + 1] = raw[rn + 2] = 0;
    sign_of_der(raw, rn, &sign);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_VALID);
    sign_of_der(raw, rn + 3, &sign);
    assert_int_equal(verify(s, &sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_non_null(strstr(e.msg, "trailing"));
    free(raw);

    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(in);
    BIO_free(kb);
    BIO_free(cb);
    cf_buf_free(&sign);
    cf_certstore_free(s);
}

/* ---- file and line syntax ----------------------------------------------- */

typedef struct variant {
    const char *what;
    const char *fmt; /* %1$s = good base64, %2$s = base64 of a signature over other bytes */
    unsigned flevel;
    cf_signverdict want;
} variant;

static const variant variants[] = {
    {"plain", "#clamsign-1.0\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_VALID},
    {"no final newline", "#clamsign-1.0\n230::pkcs7-pem:%1$s", 230, CF_SIGN_VALID},
    {"CRLF", "#clamsign-1.0\r\n230::pkcs7-pem:%1$s\r\n", 230, CF_SIGN_VALID},
    {"blank, comment, spaces", "#clamsign-1.0\n\n# note\n \t\n  230::pkcs7-pem:%1$s  \n\n", 230,
     CF_SIGN_VALID},
    {"garbage after the used line", "#clamsign-1.0\n230::pkcs7-pem:%1$s\ngarbage\n", 230, CF_SIGN_VALID},
    {"max is inclusive", "#clamsign-1.0\n230:240:pkcs7-pem:%1$s\n", 240, CF_SIGN_VALID},
    {"second line matches", "#clamsign-1.0\n230:235:pkcs7-pem:%2$s\n\n236::pkcs7-pem:%1$s\n", 240,
     CF_SIGN_VALID},
    {"first line matches", "#clamsign-1.0\n230:235:pkcs7-pem:%2$s\n\n236::pkcs7-pem:%1$s\n", 233,
     CF_SIGN_INVALID},
    {"version 2.0", "#clamsign-2.0\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"version 1", "#clamsign-1\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"space after version", "#clamsign-1.0 \n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"header without '-'", "#clamsign\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"header 1.0 without '-'", "#clamsign1.0\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"no header", "230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"header after a blank line", "\n#clamsign-1.0\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"empty", "", 230, CF_SIGN_UNUSABLE},
    {"header only", "#clamsign-1.0\n", 230, CF_SIGN_UNUSABLE},
    {"garbage line first", "#clamsign-1.0\ngarbage\n230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"min 229", "#clamsign-1.0\n229::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"min above flevel", "#clamsign-1.0\n241::pkcs7-pem:%1$s\n", 240, CF_SIGN_UNUSABLE},
    {"max below flevel", "#clamsign-1.0\n230:239:pkcs7-pem:%1$s\n", 240, CF_SIGN_UNUSABLE},
    {"flevel below 230", "#clamsign-1.0\n230::pkcs7-pem:%1$s\n", 220, CF_SIGN_UNUSABLE},
    {"max below min", "#clamsign-1.0\n240:230:pkcs7-pem:%1$s\n230::pkcs7-pem:%1$s\n", 235, CF_SIGN_UNUSABLE},
    {"skipped line still parsed", "#clamsign-1.0\n230:231:pkcs7-pem:!!!!\n232::pkcs7-pem:%1$s\n", 240,
     CF_SIGN_UNUSABLE},
    {"unknown format", "#clamsign-1.0\n230::pkcs7-der:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"three fields", "#clamsign-1.0\n230::pkcs7-pem\n", 230, CF_SIGN_UNUSABLE},
    {"five fields", "#clamsign-1.0\n230::pkcs7-pem:%1$s:x\n", 230, CF_SIGN_UNUSABLE},
    {"signed min", "#clamsign-1.0\n+230::pkcs7-pem:%1$s\n", 230, CF_SIGN_UNUSABLE},
    {"missing min", "#clamsign-1.0\n:240:pkcs7-pem:%1$s\n", 235, CF_SIGN_UNUSABLE},
    {"min too long", "#clamsign-1.0\n0000000000230::pkcs7-pem:%1$s\n", 235, CF_SIGN_UNUSABLE},
    {"max not a number", "#clamsign-1.0\n230:x:pkcs7-pem:%1$s\n", 235, CF_SIGN_UNUSABLE},
    {"empty data", "#clamsign-1.0\n230::pkcs7-pem:\n", 230, CF_SIGN_UNUSABLE},
    {"wrapped base64", "#clamsign-1.0\n230::pkcs7-pem:AAAA\nAAAA\n", 230, CF_SIGN_UNUSABLE},
    {"base64 not DER", "#clamsign-1.0\n230::pkcs7-pem:aGVsbG8gd29ybGQ=\n", 230, CF_SIGN_UNUSABLE},
    {"base64 padding inside", "#clamsign-1.0\n230::pkcs7-pem:aG==aG==\n", 230, CF_SIGN_UNUSABLE},
};

static void test_file_variants(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const variant *v = &variants[i];
        char *text = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        int n = asprintf(&text, v->fmt, g.b64, g.b64_other);
#pragma GCC diagnostic pop
        assert_true(n >= 0);
        cf_err e = {0};
        char signer[CF_SIGN_SIGNER_MAX];
        cf_signverdict got = cf_signfile_verify(s, (const uint8_t *)text, (size_t)n, g.data, sizeof(g.data),
                                                v->flevel, 0, signer, sizeof(signer), &e);
        if (got != v->want)
            fail_msg("%s: got %s, want %s (%s)", v->what, cf_signverdict_str(got),
                     cf_signverdict_str(v->want), e.msg);
        assert_true(e.msg[0] != '\0');
        if (got == CF_SIGN_VALID)
            assert_string_equal(signer, SIGNER_CN);
        else
            assert_string_equal(signer, "");
        free(text);
    }
    cf_certstore_free(s);
}

/* Named check (also in the table above): max < min spoils the file even
 * though the line would otherwise be skipped. */
static void test_max_below_min_unusable(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf text = CF_BUF_INIT;
    cf_buf_printf(&text, "#clamsign-1.0\n231:230:pkcs7-pem:%s\n", g.b64);
    cf_err e = {0};
    assert_int_equal(verify(s, &text, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EFORMAT);
    assert_non_null(strstr(e.msg, "line 2"));
    assert_non_null(strstr(e.msg, "below the minimum"));
    cf_buf_free(&text);
    cf_certstore_free(s);
}

static void test_error_codes_and_messages(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf text = CF_BUF_INIT;
    cf_err e = {0};
    cf_buf_printf(&text, "#clamsign-2.0\n");
    assert_int_equal(verify(s, &text, g.data, 1, 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EUNSUPP);
    assert_non_null(strstr(e.msg, "2.0"));

    text.n = 0;
    cf_buf_printf(&text, "#clamsign-1.0\n\n230::pkcs7-pem:ab!d\n");
    assert_int_equal(verify(s, &text, g.data, 1, 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EFORMAT);
    assert_non_null(strstr(e.msg, "line 3"));
    assert_non_null(strstr(e.msg, "offset 2"));

    /* A NUL or control byte is reported, not printed raw. */
    text.n = 0;
    static const char ctl[] = "#clamsign-1.0\n23\0\x1b::pkcs7-pem:AAAA\n";
    cf_buf_append(&text, ctl, sizeof(ctl) - 1);
    assert_int_equal(verify(s, &text, g.data, 1, 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_non_null(strstr(e.msg, "'23?"
                                  "?'"));

    text.n = 0;
    cf_buf_printf(&text, "#clamsign-1.0\n230:231:pkcs7-pem:%s\n", g.b64);
    assert_int_equal(verify(s, &text, g.data, 1, 240, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_ENOTFOUND);
    assert_non_null(strstr(e.msg, "240"));

    assert_int_equal(cf_signfile_verify(NULL, text.p, text.n, g.data, 1, 230, 0, NULL, 0, &e),
                     CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EINVAL);
    /* e may be NULL. */
    assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, 0, NULL, NULL), CF_SIGN_VALID);
    cf_buf_free(&text);
    cf_certstore_free(s);
}

static void test_size_bounds(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf text = CF_BUF_INIT;
    cf_err e = {0};
    /* A valid file padded past the file bound. */
    cf_buf_append(&text, g.sign.p, g.sign.n);
    while (text.n <= CF_MAX_SIGN_BYTES)
        cf_buf_append_str(&text, "# padding padding padding padding padding padding padding\n");
    assert_int_equal(verify(s, &text, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_ETOOBIG);
    /* The same file just under the bound still verifies. */
    text.n = CF_MAX_SIGN_BYTES;
    text.p[text.n - 1] = '\n';
    assert_int_equal(verify(s, &text, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_VALID);
    /* One base64 field over its own bound. */
    text.n = 0;
    cf_buf_append_str(&text, "#clamsign-1.0\n230::pkcs7-pem:");
    while (text.n < 40 + CF_SIGN_MAX_B64)
        cf_buf_append_str(&text, "AAAA");
    cf_buf_append_str(&text, "\n");
    assert_int_equal(verify(s, &text, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_ETOOBIG);
    cf_buf_free(&text);
    cf_certstore_free(s);
}

/* ---- certificate store -------------------------------------------------- */

static void put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cf_err e = {0};
    if (cf_file_write_new(path, p, n, 0644, &e) != CF_OK)
        fail_msg("%s", e.msg);
}

static void put_pem(const char *dir, const char *name, const pem *p)
{
    put(dir, name, p->p, p->n);
}

static void test_certstore_load_dir(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp(), *elsewhere = cf_test_mkdtemp();
    char path[4200], target[4200];
    put_pem(dir, "root.crt", &g.root);
    put_pem(dir, "inter.pem", &g.inter);
    put(dir, "notes.txt", "-----BEGIN CERTIFICATE-----\n!!\n", 31); /* not a cert file name */
    put(dir, "upper.CRT", "-----BEGIN CERTIFICATE-----\n!!\n", 31);
    put(dir, ".crt", "-----BEGIN CERTIFICATE-----\n!!\n", 31);
    put(dir, "root.crt.bak", "-----BEGIN CERTIFICATE-----\n!!\n", 31);
    put(dir, "readme.pem", "no PEM block in here\n", 21); /* read, holds nothing */
    snprintf(path, sizeof(path), "%s/sub.crt", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    put_pem(elsewhere, "other", &g.other_root);
    snprintf(target, sizeof(target), "%s/other", elsewhere);
    snprintf(path, sizeof(path), "%s/link.pem", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/dangling.pem", dir);
    assert_int_equal(symlink("/nonexistent/cert", path), 0);

    cf_certstore *s = NULL;
    cf_err e = {0};
    if (cf_certstore_load(dir, &s, &e) != CF_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(cf_certstore_count(s), 3);
    assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_VALID);
    cf_certstore_free(s);
    cf_test_rmtree(dir);
    cf_test_rmtree(elsewhere);
    free(dir);
    free(elsewhere);
}

static void expect_load_error(const char *dir, cf_code want, const char *needle1, const char *needle2)
{
    cf_certstore *s = (cf_certstore *)&s; /* must be reset */
    cf_err e = {0};
    assert_int_equal(cf_certstore_load(dir, &s, &e), want);
    assert_null(s);
    if (strstr(e.msg, needle1) == NULL || (needle2 && strstr(e.msg, needle2) == NULL))
        fail_msg("message '%s' lacks '%s'/'%s'", e.msg, needle1, needle2 ? needle2 : "");
}

static void test_certstore_errors(void **state)
{
    (void)state;
    char *base = cf_test_mkdtemp();
    char dir[4200];

    snprintf(dir, sizeof(dir), "%s/missing", base);
    expect_load_error(dir, CF_ENOTFOUND, dir, NULL);

    put_pem(base, "file.crt", &g.root);
    snprintf(dir, sizeof(dir), "%s/file.crt", base);
    expect_load_error(dir, CF_EIO, dir, NULL);

    /* A damaged certificate block: a bad character in the base64, then a missing END line. */
    snprintf(dir, sizeof(dir), "%s/bad", base);
    mkdir(dir, 0755);
    put_pem(dir, "a.crt", &g.root);
    char *bad = strdup(g.inter.p);
    bad[100] = '*';
    put(dir, "bad.pem", bad, strlen(bad));
    expect_load_error(dir, CF_EFORMAT, "bad.pem", "not valid PEM");
    free(bad);
    snprintf(dir, sizeof(dir), "%s/cut", base);
    mkdir(dir, 0755);
    put(dir, "cut.crt", g.root.p, g.root.n - 20);
    expect_load_error(dir, CF_EFORMAT, "cut.crt", NULL);

    /* The same CN twice: the same certificate in two files, or a different one. */
    snprintf(dir, sizeof(dir), "%s/dup", base);
    mkdir(dir, 0755);
    put_pem(dir, "a.crt", &g.root);
    put_pem(dir, "b.pem", &g.root);
    expect_load_error(dir, CF_EFORMAT, "b.pem", ROOT_CN);
    snprintf(dir, sizeof(dir), "%s/impostor", base);
    mkdir(dir, 0755);
    put_pem(dir, "a.crt", &g.root);
    put_pem(dir, "z.crt", &g.impostor_root);
    expect_load_error(dir, CF_EFORMAT, "z.crt", "same common name");

    /* Within one file. */
    snprintf(dir, sizeof(dir), "%s/dup1", base);
    mkdir(dir, 0755);
    cf_buf two = CF_BUF_INIT;
    cf_buf_append(&two, g.inter.p, g.inter.n);
    cf_buf_append(&two, g.impostor_root.p, g.impostor_root.n);
    cf_buf_append(&two, g.root.p, g.root.n);
    put(dir, "bundle.pem", two.p, two.n);
    expect_load_error(dir, CF_EFORMAT, "bundle.pem", "certificate 3");
    cf_buf_free(&two);

    snprintf(dir, sizeof(dir), "%s/nocn", base);
    mkdir(dir, 0755);
    put_pem(dir, "nocn.crt", &g.nocn_root);
    expect_load_error(dir, CF_EFORMAT, "nocn.crt", "CN");

    /* An empty directory is a valid, empty store: everything is then invalid. */
    snprintf(dir, sizeof(dir), "%s/empty", base);
    mkdir(dir, 0755);
    cf_certstore *s = NULL;
    cf_err e = {0};
    assert_int_equal(cf_certstore_load(dir, &s, &e), CF_OK);
    assert_int_equal(cf_certstore_count(s), 0);
    assert_int_equal(verify(s, &g.sign, g.data, sizeof(g.data), 230, 0, NULL, &e), CF_SIGN_INVALID);
    cf_certstore_free(s);

    cf_test_rmtree(base);
    free(base);
}

static void test_certstore_add_is_atomic(void **state)
{
    (void)state;
    cf_certstore *s = store_of(&g.root, NULL);
    cf_buf text = CF_BUF_INIT;
    cf_buf_append(&text, g.inter.p, g.inter.n);
    cf_buf_append(&text, g.other_root.p, g.other_root.n);
    cf_buf_append(&text, g.root.p, g.root.n); /* duplicate CN: the whole text is refused */
    cf_err e = {0};
    assert_int_equal(cf_certstore_add_pem(s, text.p, text.n, "bundle", &e), CF_EFORMAT);
    assert_int_equal(cf_certstore_count(s), 1);
    assert_non_null(strstr(e.msg, "bundle: certificate 3"));
    /* Without the duplicate it goes in whole. */
    assert_int_equal(cf_certstore_add_pem(s, text.p, g.inter.n + g.other_root.n, "pair", &e), CF_OK);
    assert_int_equal(cf_certstore_count(s), 3);
    assert_int_equal(cf_certstore_add_pem(s, NULL, 0, NULL, &e), CF_OK);
    assert_int_equal(cf_certstore_count(s), 3);
    cf_buf_free(&text);
    cf_certstore_free(s);
    cf_certstore_free(NULL);
}

static void test_certstore_default_dir(void **state)
{
    (void)state;
    assert_int_equal(setenv("CVD_CERTS_DIR", "/srv/certs", 1), 0);
    assert_string_equal(cf_certstore_default_dir(), "/srv/certs");
    assert_int_equal(setenv("CVD_CERTS_DIR", "", 1), 0);
    assert_string_equal(cf_certstore_default_dir(), "/etc/clamav/certs");
    assert_int_equal(unsetenv("CVD_CERTS_DIR"), 0);
    assert_string_equal(cf_certstore_default_dir(), "/etc/clamav/certs");
}

/* ---- names ----------------------------------------------------------------*/

static void test_names(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cf_signfile_name_cvd("daily", 27500, out, sizeof(out)), 0);
    assert_string_equal(out, "daily-27500.cvd.sign");
    assert_int_equal(cf_signfile_name_cdiff("daily", 27501, out, sizeof(out)), 0);
    assert_string_equal(out, "daily-27501.cdiff.sign");
    assert_int_equal(cf_signfile_name_cvd("bytecode", 4294967295u, out, sizeof(out)), 0);
    assert_string_equal(out, "bytecode-4294967295.cvd.sign");
    /* Exactly fits, one byte short. */
    assert_int_equal(cf_signfile_name_cvd("main", 62, out, 17), 0);
    assert_string_equal(out, "main-62.cvd.sign");
    assert_int_equal(cf_signfile_name_cvd("main", 62, out, 16), -1);
    assert_string_equal(out, "");
    const char *bad[] = {"", "a/b", "a-b", "daily.cvd", "..", "a b", "a\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cf_signfile_name_cvd(bad[i], 1, out, sizeof(out)), -1);
    assert_int_equal(cf_signfile_name_cdiff(NULL, 1, out, sizeof(out)), -1);
    assert_string_equal(cf_signverdict_str(CF_SIGN_VALID), "valid");
    assert_string_equal(cf_signverdict_str(CF_SIGN_INVALID), "invalid");
    assert_string_equal(cf_signverdict_str(CF_SIGN_UNUSABLE), "unusable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_format),
        cmocka_unit_test(test_make_rejects),
        cmocka_unit_test(test_make_verify_valid),
        cmocka_unit_test(test_wrong_root_invalid),
        cmocka_unit_test(test_changed_data_invalid),
        cmocka_unit_test(test_missing_intermediate),
        cmocka_unit_test(test_validity_time),
        cmocka_unit_test(test_eku_without_email_invalid),
        cmocka_unit_test(test_signer_without_cn_invalid),
        cmocka_unit_test(test_unverifiable_objects_unusable),
        cmocka_unit_test(test_file_variants),
        cmocka_unit_test(test_max_below_min_unusable),
        cmocka_unit_test(test_error_codes_and_messages),
        cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_certstore_load_dir),
        cmocka_unit_test(test_certstore_errors),
        cmocka_unit_test(test_certstore_add_is_atomic),
        cmocka_unit_test(test_certstore_default_dir),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
