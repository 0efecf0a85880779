/* ClamAV 1.5 `.sign` files: detached PKCS#7 over the whole signed file,
 * checked against the certificates of a certs directory (formats.md §7). */
#include "codesign_priv.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "clamfresh/limits.h"

struct cf_certstore {
    STACK_OF(X509) * certs; /* trust anchors, each with a distinct subject CN */
};

/* ---- OpenSSL helpers ---------------------------------------------------- */

/* Drains the thread's OpenSSL error queue into text ("reason (data); ..."). */
void cf_codesign_ossl_errors(char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    const char *data = NULL;
    int flags = 0;
    unsigned long code;
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(code);
        char item[256];
        if (data != NULL && (flags & ERR_TXT_STRING) && *data != '\0')
            snprintf(item, sizeof(item), "%s (%s)", reason ? reason : "unknown error", data);
        else
            snprintf(item, sizeof(item), "%s", reason ? reason : "unknown error");
        int w = snprintf(out + used, outsz - used, "%s%s", used ? "; " : "", item);
        if (w < 0 || (size_t)w >= outsz - used)
            break;
        used += (size_t)w;
    }
    if (out[0] == '\0')
        snprintf(out, outsz, "no detail from OpenSSL");
}

/* A read-only memory BIO over len bytes (p may be NULL when len is 0). */
BIO *cf_codesign_mem_bio(const uint8_t *p, size_t len)
{
    static const uint8_t empty[1] = {0};
    if (len > INT_MAX)
        return NULL;
    return BIO_new_mem_buf(p != NULL ? (const void *)p : (const void *)empty, (int)len);
}

/* The first subject CN as a malloc'ed UTF-8 string, or NULL when there is none
 * (ClamAV takes the first CN entry too). */
static char *cert_cn(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx < 0)
        return NULL;
    ASN1_STRING *val = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, val);
    if (n < 0)
        return NULL;
    char *cn = malloc((size_t)n + 1);
    if (cn != NULL) {
        memcpy(cn, utf8, (size_t)n);
        cn[n] = '\0';
        /* An embedded NUL would make two different names compare equal; refuse it. */
        if (strlen(cn) != (size_t)n) {
            free(cn);
            cn = NULL;
        }
    }
    OPENSSL_free(utf8);
    return cn;
}

/* Reads all certificates of a PEM text into a new stack. Like ClamAV
 * (openssl's stack_from_pem), reading stops cleanly at "no more PEM blocks";
 * any other failure is a damaged block. */
cf_code cf_codesign_pem_certs(const uint8_t *pem, size_t n, const char *origin, STACK_OF(X509) * *out,
                              cf_err *e)
{
    *out = NULL;
    BIO *bio = cf_codesign_mem_bio(pem, n);
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (bio == NULL || certs == NULL) {
        BIO_free(bio);
        sk_X509_free(certs);
        return cf_err_set(e, n > INT_MAX ? CF_ETOOBIG : CF_ENOMEM, "%s: cannot read PEM text", origin);
    }
    ERR_clear_error();
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL) {
            unsigned long last = ERR_peek_last_error();
            if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            char why[300];
            cf_codesign_ossl_errors(why, sizeof(why));
            BIO_free(bio);
            sk_X509_pop_free(certs, X509_free);
            return cf_err_set(e, CF_EFORMAT, "%s: certificate %d is not valid PEM: %s", origin,
                              sk_X509_num(certs) + 1, why);
        }
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            BIO_free(bio);
            sk_X509_pop_free(certs, X509_free);
            return cf_err_set(e, CF_ENOMEM, "%s: out of memory", origin);
        }
    }
    BIO_free(bio);
    *out = certs;
    return CF_OK;
}

/* ---- certificate store -------------------------------------------------- */

cf_code cf_certstore_new(cf_certstore **out, cf_err *e)
{
    *out = NULL;
    cf_certstore *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->certs = sk_X509_new_null()) == NULL) {
        free(s);
        return cf_err_set(e, CF_ENOMEM, "certificate store: out of memory");
    }
    *out = s;
    return CF_OK;
}

void cf_certstore_free(cf_certstore *s)
{
    if (s == NULL)
        return;
    sk_X509_pop_free(s->certs, X509_free);
    free(s);
}

size_t cf_certstore_count(const cf_certstore *s)
{
    return s == NULL ? 0 : (size_t)sk_X509_num(s->certs);
}

/* Is cn already the CN of a certificate in certs[0..upto)? */
static int cn_taken(STACK_OF(X509) * certs, int upto, const char *cn)
{
    for (int i = 0; i < upto; i++) {
        char *other = cert_cn(sk_X509_value(certs, i));
        int same = other != NULL && strcmp(other, cn) == 0;
        free(other);
        if (same)
            return 1;
    }
    return 0;
}

cf_code cf_certstore_add_pem(cf_certstore *s, const uint8_t *pem, size_t n, const char *origin, cf_err *e)
{
    if (origin == NULL)
        origin = "PEM text";
    if (s == NULL || (pem == NULL && n > 0))
        return cf_err_set(e, CF_EINVAL, "%s: no store or no text", origin);
    STACK_OF(X509) * certs;
    cf_code rc = cf_codesign_pem_certs(pem, n, origin, &certs, e);
    if (rc != CF_OK)
        return rc;
    /* Check the whole file before adding any of it, so a failure leaves the store as it was. */
    int have = sk_X509_num(s->certs);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        char *cn = cert_cn(x);
        if (cn == NULL) {
            rc = cf_err_set(e, CF_EFORMAT, "%s: certificate %d has no usable subject CN", origin, i + 1);
            break;
        }
        /* OpenSSL may pick the wrong one of two anchors with the same name
         * (openssl/openssl#16304), so ClamAV refuses them; §7.4. */
        if (cn_taken(s->certs, have, cn) || cn_taken(certs, i, cn)) {
            rc = cf_err_set(e, CF_EFORMAT,
                            "%s: certificate %d: another trusted certificate has the same "
                            "common name '%s'",
                            origin, i + 1, cn);
            free(cn);
            break;
        }
        free(cn);
    }
    while (rc == CF_OK && sk_X509_num(certs) > 0) {
        X509 *x = sk_X509_shift(certs);
        if (!sk_X509_push(s->certs, x)) {
            X509_free(x);
            while (sk_X509_num(s->certs) > have)
                X509_free(sk_X509_pop(s->certs));
            rc = cf_err_set(e, CF_ENOMEM, "%s: out of memory", origin);
        }
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

/* ---- .sign text --------------------------------------------------------- */

const char *cf_signverdict_str(cf_signverdict v)
{
    switch (v) {
    case CF_SIGN_VALID:
        return "valid";
    case CF_SIGN_INVALID:
        return "invalid";
    case CF_SIGN_UNUSABLE:
        return "unusable";
    }
    return "unknown";
}

typedef struct span {
    const uint8_t *p;
    size_t n;
} span;

/* Up to 24 bytes of untrusted text for a message, non-printables as '?'. */
static const char *show(span s, char *buf, size_t sz)
{
    size_t n = 0;
    for (; n < s.n && n < 24 && n + 1 < sz; n++)
        buf[n] = s.p[n] >= ' ' && s.p[n] <= '~' ? (char)s.p[n] : '?';
    if (n < s.n && n + 4 < sz) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static int span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static span trim(span s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Splits the next ':'-separated field off *rest; returns 0 when there is none. */
static int next_field(span *rest, span *field, int *more)
{
    if (!*more)
        return 0;
    const uint8_t *colon = rest->n ? memchr(rest->p, ':', rest->n) : NULL;
    field->p = rest->p;
    if (colon == NULL) {
        field->n = rest->n;
        rest->p += rest->n;
        rest->n = 0;
        *more = 0;
    } else {
        field->n = (size_t)(colon - rest->p);
        rest->n -= field->n + 1;
        rest->p = colon + 1;
    }
    return 1;
}

/* A decimal f-level: 1..9 digits, nothing else. */
static int parse_flevel(span f, unsigned *out)
{
    if (f.n == 0 || f.n > 9)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(f.p[i] - '0');
    }
    *out = v;
    return 1;
}

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict RFC 4648 base64 (padded, no whitespace). Returns the decoded length,
 * or -1 with the offending offset in *bad. out must hold n / 4 * 3 bytes. */
static long b64_decode(span in, uint8_t *out, size_t *bad)
{
    if (in.n == 0 || in.n % 4 != 0) {
        *bad = in.n;
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < in.n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            uint8_t c = in.p[i + (size_t)k];
            /* '=' may only end the text: "ab==" or "abc=". */
            if (c == '=' && i + 4 == in.n && k >= 2 && (k == 3 || in.p[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0 || (v[k] = b64_value(c)) < 0) {
                *bad = i + (size_t)k;
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

typedef struct signline {
    unsigned min, max;
    int has_max;
    PKCS7 *p7;
} signline;

/* Parses "<min>:<max>:pkcs7-pem:<base64 DER>" (§7.2). Any failure makes the
 * whole file unusable, so the message names the line and the field. */
static cf_code signline_parse(span line, size_t lineno, signline *out, cf_err *e)
{
    memset(out, 0, sizeof(*out));
    char shown[32];
    span rest = line, f[4];
    int more = 1;
    for (int i = 0; i < 4; i++) {
        if (!next_field(&rest, &f[i], &more))
            return cf_err_set(e, CF_EFORMAT, "line %zu: expected min:max:format:data, found %d field%s",
                              lineno, i, i == 1 ? "" : "s");
    }
    if (more)
        return cf_err_set(e, CF_EFORMAT, "line %zu: text after the signature data (offset %zu)", lineno,
                          (size_t)(rest.p - line.p - 1));
    if (!parse_flevel(f[0], &out->min))
        return cf_err_set(e, CF_EFORMAT, "line %zu: minimum f-level '%s' is not a number", lineno,
                          show(f[0], shown, sizeof(shown)));
    if (out->min < CF_SIGN_MIN_FLEVEL)
        return cf_err_set(e, CF_EFORMAT,
                          "line %zu: minimum f-level %u is below %u, the first that reads .sign "
                          "files",
                          lineno, out->min, CF_SIGN_MIN_FLEVEL);
    if (f[1].n > 0) {
        if (!parse_flevel(f[1], &out->max))
            return cf_err_set(e, CF_EFORMAT, "line %zu: maximum f-level '%s' is not a number", lineno,
                              show(f[1], shown, sizeof(shown)));
        if (out->max < out->min)
            return cf_err_set(e, CF_EFORMAT, "line %zu: maximum f-level %u is below the minimum %u", lineno,
                              out->max, out->min);
        out->has_max = 1;
    }
    if (!span_is(f[2], "pkcs7-pem"))
        return cf_err_set(e, CF_EUNSUPP, "line %zu: unsupported signature format '%s'", lineno,
                          show(f[2], shown, sizeof(shown)));
    if (f[3].n > CF_SIGN_MAX_B64)
        return cf_err_set(e, CF_ETOOBIG, "line %zu: signature data of %zu bytes exceeds the limit of %lu",
                          lineno, f[3].n, (unsigned long)CF_SIGN_MAX_B64);
    uint8_t *der = malloc(f[3].n / 4 * 3 + 1);
    if (der == NULL)
        return cf_err_set(e, CF_ENOMEM, "line %zu: out of memory", lineno);
    size_t bad = 0;
    long dn = b64_decode(f[3], der, &bad);
    if (dn < 0) {
        free(der);
        return cf_err_set(e, CF_EFORMAT, "line %zu: signature data is not base64 (at offset %zu of %zu)",
                          lineno, bad, f[3].n);
    }
    const unsigned char *q = der;
    out->p7 = d2i_PKCS7(NULL, &q, dn);
    size_t used = (size_t)(q - der);
    free(der);
    if (out->p7 == NULL || used != (size_t)dn) {
        PKCS7_free(out->p7);
        out->p7 = NULL;
        ERR_clear_error();
        return cf_err_set(e, CF_EFORMAT, "line %zu: signature data is not a DER PKCS#7 object%s", lineno,
                          used != (size_t)dn ? " (trailing bytes)" : "");
    }
    return CF_OK;
}

/* Copies the first-CN of every signer, joined by ", ". 0 when one has no CN. */
static int signer_names(STACK_OF(X509) * signers, char *out, size_t outsz)
{
    size_t used = 0;
    if (outsz > 0)
        out[0] = '\0';
    for (int i = 0; i < sk_X509_num(signers); i++) {
        char *cn = cert_cn(sk_X509_value(signers, i));
        if (cn == NULL)
            return 0;
        if (outsz > used) {
            int w = snprintf(out + used, outsz - used, "%s%s", i ? ", " : "", cn);
            used = w < 0 ? used : used + (size_t)w;
        }
        free(cn);
    }
    return 1;
}

enum check { CHECK_OK, CHECK_FAIL, CHECK_SKIP };

/* One PKCS7_verify (§7.4). CHECK_SKIP mirrors ClamAV moving on to the next
 * line when the object is not signed data or its signer cannot be found. */
/* The signed bytes: in memory, or read through a caller's source from offset 0. */
typedef struct datasrc {
    const uint8_t *p;
    size_t n;
    const cf_signsrc *ext; /* NULL: p[0..n) */
} datasrc;

static BIO *src_bio(const datasrc *d);

static enum check signline_check(const cf_certstore *s, PKCS7 *p7, const datasrc *src, time_t now,
                                 char *names, size_t names_sz, char *why, size_t why_sz)
{
    size_t data_len = src->n;
    const int flags = PKCS7_DETACHED | PKCS7_BINARY | PKCS7_NOCRL;
    if (p7 == NULL || !PKCS7_type_is_signed(p7)) {
        snprintf(why, why_sz, "the PKCS#7 object is not signed data");
        return CHECK_SKIP;
    }
    /* A store per call: the time setting stays local and the cert store stays
     * immutable. Only the store's certificates are trusted, none from the system. */
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *none = sk_X509_new_null();
    BIO *in = src_bio(src);
    if (store == NULL || none == NULL || in == NULL) {
        X509_STORE_free(store);
        sk_X509_free(none);
        BIO_free_all(in);
        snprintf(why, why_sz, "%s", data_len > INT_MAX ? "signed data too large" : "out of memory");
        return CHECK_SKIP;
    }
    int added = 1;
    for (int i = 0; added && i < sk_X509_num(s->certs); i++)
        added = X509_STORE_add_cert(store, sk_X509_value(s->certs, i));
    if (!added) {
        ERR_clear_error();
        X509_STORE_free(store);
        sk_X509_free(none);
        BIO_free_all(in);
        snprintf(why, why_sz, "cannot build the trust store");
        return CHECK_SKIP;
    }
    if (now != 0)
        X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), now);

    ERR_clear_error();
    /* Default purpose inside PKCS7_verify: S/MIME signing ("smime_sign"). */
    int ok = PKCS7_verify(p7, none, store, in, NULL, flags);
    char fail[400] = "";
    if (!ok)
        cf_codesign_ossl_errors(fail, sizeof(fail));
    STACK_OF(X509) *signers = PKCS7_get0_signers(p7, none, flags);
    ERR_clear_error();
    enum check r;
    if (signers == NULL || sk_X509_num(signers) == 0) {
        snprintf(why, why_sz, "the signer's certificate is not in the PKCS#7 object");
        r = CHECK_SKIP;
    } else if (!signer_names(signers, names, names_sz)) {
        snprintf(why, why_sz, "a signer certificate has no subject CN");
        r = CHECK_FAIL;
    } else if (!ok) {
        snprintf(why, why_sz, "signed by '%.200s': %.380s", names, fail);
        r = CHECK_FAIL;
    } else {
        r = CHECK_OK;
    }
    sk_X509_free(signers);
    BIO_free_all(in);
    sk_X509_free(none);
    X509_STORE_free(store);
    return r;
}

/* Checks line 1: "#clamsign" and, after its first '-', exactly "1.0" (§7.2). */
static cf_code header_check(span first, cf_err *e)
{
    static const char magic[] = "#clamsign";
    if (first.n < sizeof(magic) - 1 || memcmp(first.p, magic, sizeof(magic) - 1) != 0)
        return cf_err_set(e, CF_EFORMAT, "line 1: not a .sign file (expected '%s')", CF_SIGN_HEADER);
    const uint8_t *dash = memchr(first.p, '-', first.n);
    if (dash == NULL)
        return cf_err_set(e, CF_EFORMAT, "line 1: header has no version (expected '%s')", CF_SIGN_HEADER);
    char shown[32];
    span ver = {dash + 1, first.n - (size_t)(dash + 1 - first.p)};
    if (!span_is(ver, "1.0"))
        return cf_err_set(e, CF_EUNSUPP, "line 1: unsupported .sign version '%s' (expected 1.0)",
                          show(ver, shown, sizeof(shown)));
    return CF_OK;
}

static cf_signverdict signfile_verify(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                      const datasrc *src, unsigned flevel, time_t now, char *signer,
                                      size_t signer_sz, cf_err *e);

cf_signverdict cf_signfile_verify(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                  const uint8_t *data, size_t data_len, unsigned flevel, time_t now,
                                  char *signer, size_t signer_sz, cf_err *e)
{
    if (signer != NULL && signer_sz > 0)
        signer[0] = '\0';
    if (s == NULL || (sign == NULL && sign_len > 0) || (data == NULL && data_len > 0)) {
        cf_err_set(e, CF_EINVAL, ".sign: no certificate store or no bytes");
        return CF_SIGN_UNUSABLE;
    }
    datasrc src = {data, data_len, NULL};
    return signfile_verify(s, sign, sign_len, &src, flevel, now, signer, signer_sz, e);
}

/* ---- the signed bytes read through a source (a file, for the store) ---- */

#define FD_READ_BUF (1024 * 1024)

typedef struct fdsrc {
    const cf_signsrc *src;
    uint64_t off;
} fdsrc;

static int fdbio_create(BIO *b)
{
    BIO_set_data(b, NULL);
    BIO_set_init(b, 1);
    return 1;
}

static int fdbio_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

/* Reads at the BIO's own offset: the source keeps no position of its own. */
static int fdbio_read(BIO *b, char *out, int len)
{
    fdsrc *f = BIO_get_data(b);
    if (f == NULL || len <= 0)
        return 0;
    long k = f->src->read(f->src->arg, (uint8_t *)out, (size_t)len, f->off);
    if (k < 0)
        return -1;
    f->off += (uint64_t)k;
    return (int)k;
}

static long fdbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *g_fdbio_method;
static pthread_once_t g_fdbio_once = PTHREAD_ONCE_INIT;

static void fdbio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "clamfresh pread");
    if (m != NULL &&
        (BIO_meth_set_create(m, fdbio_create) != 1 || BIO_meth_set_destroy(m, fdbio_destroy) != 1 ||
         BIO_meth_set_read(m, fdbio_read) != 1 || BIO_meth_set_ctrl(m, fdbio_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    g_fdbio_method = m;
}

/* A source BIO over the file behind a 1 MiB read buffer (PKCS7_verify reads
 * in 4 KiB steps). NULL when out of memory or, as for memory, too large. */
static BIO *src_bio(const datasrc *d)
{
    if (d->ext == NULL)
        return cf_codesign_mem_bio(d->p, d->n);
    if (d->n > INT_MAX || pthread_once(&g_fdbio_once, fdbio_method_init) != 0 || g_fdbio_method == NULL)
        return NULL;
    fdsrc *f = malloc(sizeof(*f));
    BIO *raw = BIO_new(g_fdbio_method);
    BIO *buf = BIO_new(BIO_f_buffer());
    if (f == NULL || raw == NULL || buf == NULL || BIO_set_read_buffer_size(buf, FD_READ_BUF) != 1) {
        free(f);
        BIO_free(raw);
        BIO_free(buf);
        return NULL;
    }
    f->src = d->ext;
    f->off = 0;
    BIO_set_data(raw, f);
    return BIO_push(buf, raw);
}

cf_signverdict cf_signfile_verify_src(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                      const cf_signsrc *src, unsigned flevel, time_t now, char *signer,
                                      size_t signer_sz, cf_err *e)
{
    if (signer != NULL && signer_sz > 0)
        signer[0] = '\0';
    if (s == NULL || (sign == NULL && sign_len > 0) || src == NULL || src->read == NULL) {
        cf_err_set(e, CF_EINVAL, ".sign: no certificate store or no bytes");
        return CF_SIGN_UNUSABLE;
    }
    datasrc d = {NULL, src->n, src};
    return signfile_verify(s, sign, sign_len, &d, flevel, now, signer, signer_sz, e);
}

static cf_signverdict signfile_verify(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                      const datasrc *src, unsigned flevel, time_t now, char *signer,
                                      size_t signer_sz, cf_err *e)
{
    if (sign_len > CF_MAX_SIGN_BYTES) {
        cf_err_set(e, CF_ETOOBIG, ".sign: %zu bytes exceeds the limit of %lu", sign_len,
                   (unsigned long)CF_MAX_SIGN_BYTES);
        return CF_SIGN_UNUSABLE;
    }
    if (sign_len == 0) {
        cf_err_set(e, CF_EFORMAT, ".sign: empty file");
        return CF_SIGN_UNUSABLE;
    }

    size_t pos = 0, lineno = 0, skipped = 0;
    char skip_why[640] = "";
    while (pos < sign_len) {
        const uint8_t *nl = memchr(sign + pos, '\n', sign_len - pos);
        span line = {sign + pos, nl ? (size_t)(nl - (sign + pos)) : sign_len - pos};
        pos += line.n + (nl ? 1 : 0);
        lineno++;
        if (lineno == 1) {
            if (line.n > 0 && line.p[line.n - 1] == '\r')
                line.n--;
            if (header_check(line, e) != CF_OK)
                return CF_SIGN_UNUSABLE;
            continue;
        }
        line = trim(line);
        if (line.n == 0 || line.p[0] == '#')
            continue;
        signline sl;
        if (signline_parse(line, lineno, &sl, e) != CF_OK)
            return CF_SIGN_UNUSABLE;
        if (flevel < sl.min || (sl.has_max && flevel > sl.max)) {
            PKCS7_free(sl.p7);
            skipped++;
            continue;
        }
        char names[CF_SIGN_SIGNER_MAX];
        char why[600];
        enum check r = signline_check(s, sl.p7, src, now, names, sizeof(names), why, sizeof(why));
        PKCS7_free(sl.p7);
        if (r == CHECK_OK) {
            if (signer != NULL && signer_sz > 0)
                snprintf(signer, signer_sz, "%s", names);
            cf_err_set(e, CF_OK, "line %zu: signature by '%s' verified", lineno, names);
            return CF_SIGN_VALID;
        }
        if (r == CHECK_FAIL) {
            cf_err_set(e, CF_ESIG, "line %zu: signature verification failed: %s", lineno, why);
            return CF_SIGN_INVALID;
        }
        snprintf(skip_why, sizeof(skip_why), "line %zu: %.600s", lineno, why);
    }
    if (skip_why[0] != '\0') {
        cf_err_set(e, CF_ENOTFOUND, "no usable signature line (%s)", skip_why);
    } else {
        cf_err_set(e, CF_ENOTFOUND, "no signature line for f-level %u (%zu skipped)", flevel, skipped);
    }
    return CF_SIGN_UNUSABLE;
}

/* ---- making .sign files ------------------------------------------------- */

/* ---- names -------------------------------------------------------------- */

/* A database name as ClamAV derives it from a file name: the stem before the
 * first '-' or '.' (§7.1). */
static int dbname_ok(const char *db)
{
    if (db == NULL || *db == '\0' || strlen(db) > CF_MAX_NAME)
        return 0;
    for (const char *c = db; *c; c++)
        if (*c <= ' ' || *c > '~' || *c == '/' || *c == '\\' || *c == '-' || *c == '.')
            return 0;
    return 1;
}

static int sign_name(const char *db, uint32_t version, const char *kind, char *out, size_t outsz)
{
    if (out == NULL || outsz == 0)
        return -1;
    out[0] = '\0';
    if (!dbname_ok(db))
        return -1;
    int n = snprintf(out, outsz, "%s-%lu.%s.sign", db, (unsigned long)version, kind);
    if (n < 0 || (size_t)n >= outsz) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int cf_signfile_name_cvd(const char *db, uint32_t version, char *out, size_t outsz)
{
    return sign_name(db, version, "cvd", out, outsz);
}

int cf_signfile_name_cdiff(const char *db, uint32_t version, char *out, size_t outsz)
{
    return sign_name(db, version, "cdiff", out, outsz);
}
