/* The update policy on an in-memory mirror: every scenario of
 * freshclam-behavior.md §10.3 that three versions can express, plus the
 * cache-proof names, 403/429/cool-down, retries and the refusal of a copy that is
 * not newer than ours. No network.
 *
 * The scenarios run once per fixture set: always on databases test-1..6 made
 * here with a generated key and a private PKI (so a clone without the shared
 * vectors still covers the updater), and again on the real ClamAV-signed vectors
 * (test-1..3, ClamAV's keys and test CA) when they are present. */
#include "testutil.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/info.h"
#include "clamfresh/updater.h"

#define MIRROR "http://mirror.test"
#define MIRROR2 "http://mirror2.test"

/* ---------------------------------------------------------------- fixture sets */

/* One fixture set: the files test-V.cvd (V = 1..top), test-V.cdiff (V = 2..top),
 * the .sign of each, and the trust (keys and .sign anchors) that accepts them. */
#define FX_MAX_FILES 48
#define FX_MAX_VERSION 6

typedef struct fxfile {
    char name[64];
    cf_buf data;
} fxfile;

typedef struct fixtures {
    const char *label;
    uint32_t top;                      /* newest version of database "test" */
    uint32_t sigs[FX_MAX_VERSION + 1]; /* header signature count of test-V.cvd */
    fxfile files[FX_MAX_FILES];
    size_t nfiles;
    cf_trust trust;
    cf_certstore *certs;
} fixtures;

static fixtures FX;

static void fx_add(const char *name, const void *p, size_t n)
{
    if (FX.nfiles >= FX_MAX_FILES)
        fail_msg("too many fixture files");
    fxfile *f = &FX.files[FX.nfiles++];
    snprintf(f->name, sizeof f->name, "%s", name);
    memset(&f->data, 0, sizeof f->data);
    if (cf_buf_set(&f->data, p, n) != CF_OK)
        fail_msg("out of memory");
}

/* Copies fixture `name` of the current set into out. */
static void fx_read(const char *name, cf_buf *out)
{
    for (size_t i = 0; i < FX.nfiles; i++)
        if (strcmp(FX.files[i].name, name) == 0) {
            if (cf_buf_set(out, FX.files[i].data.p, FX.files[i].data.n) != CF_OK)
                fail_msg("out of memory");
            return;
        }
    fail_msg("no fixture %s in the %s", name, FX.label);
}

static void fx_free(void)
{
    for (size_t i = 0; i < FX.nfiles; i++)
        cf_buf_free(&FX.files[i].data);
    cf_trust_free(&FX.trust);
    cf_certstore_free(FX.certs);
    memset(&FX, 0, sizeof FX);
}

/* The signature counts from the headers, so scenarios can name them. */
static int fx_read_sigs(void)
{
    for (uint32_t v = 1; v <= FX.top; v++) {
        char name[32];
        cf_buf b = CF_BUF_INIT;
        cf_cvdhdr h;
        cf_err e = {0};
        snprintf(name, sizeof name, "test-%u.cvd", v);
        fx_read(name, &b);
        cf_code rc = cf_cvdhdr_parse(b.p, b.n, &h, &e);
        cf_buf_free(&b);
        if (rc != CF_OK || h.version != v) {
            fprintf(stderr, "%s: %s\n", name, rc != CF_OK ? e.msg : "unexpected version");
            return -1;
        }
        FX.sigs[v] = h.sigs;
    }
    return 0;
}

/* The real vectors: ClamAV's built-in keys, its test CA for the .sign files. */
static int fx_load_vectors(void)
{
    static const char *const names[] = {
        "test-1.cvd",      "test-1.cvd.sign", "test-2.cvd",        "test-2.cvd.sign", "test-3.cvd",
        "test-3.cvd.sign", "test-2.cdiff",    "test-2.cdiff.sign", "test-3.cdiff",    "test-3.cdiff.sign"};
    FX.label = "ClamAV-signed vectors";
    FX.top = 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cf_buf b = CF_BUF_INIT;
        cf_test_read_vector(names[i], &b);
        fx_add(names[i], b.p, b.n);
        cf_buf_free(&b);
    }
    cf_err e = {0};
    cf_buf crt = CF_BUF_INIT;
    cf_test_read_vector("clamav-test.crt", &crt);
    cf_code rc = cf_trust_init_builtin(&FX.trust, &e);
    if (rc == CF_OK)
        rc = cf_certstore_new(&FX.certs, &e);
    if (rc == CF_OK)
        rc = cf_certstore_add_pem(FX.certs, crt.p, crt.n, "clamav-test.crt", &e);
    cf_buf_free(&crt);
    if (rc != CF_OK) {
        fprintf(stderr, "vectors: %s\n", e.msg);
        return -1;
    }
    return fx_read_sigs();
}

/* ---- the self-made set */

static int pem_of(BIO *b, cf_buf *out)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    int ok = n > 0 && cf_buf_set(out, p, (size_t)n) == CF_OK;
    BIO_free(b);
    return ok ? 0 : -1;
}

static int x509_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate valid from yesterday for 30 days: a CA when issuer is NULL
 * (self-signed), else a code-signing leaf issued by (issuer, issuer_key). */
static X509 *pki_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    int bad = x509_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (issuer == NULL) {
        bad |= x509_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        bad |= x509_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        bad |= x509_ext(x, &ctx, NID_authority_key_identifier, "keyid");
        bad |= x509_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        bad |= x509_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
        bad |= x509_ext(x, &ctx, NID_ext_key_usage, "codeSigning,emailProtection");
    }
    if (bad || X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* A root CA and a signer it issued: PEM texts of the root (the .sign trust
 * anchor), the signer's certificate and the signer's private key. */
static int own_pki(cf_buf *root_pem, cf_buf *cert_pem, cf_buf *key_pem)
{
    EVP_PKEY *rk = EVP_RSA_gen(2048), *sk = EVP_RSA_gen(2048);
    X509 *root = rk ? pki_cert("clamfresh Updater Test Root", rk, NULL, NULL, 1) : NULL;
    X509 *signer = root && sk ? pki_cert("clamfresh Updater Test Signer", sk, root, rk, 2) : NULL;
    int rc = -1;
    if (signer != NULL) {
        BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem()), *b3 = BIO_new(BIO_s_mem());
        int w = b1 && b2 && b3 && PEM_write_bio_X509(b1, root) && PEM_write_bio_X509(b2, signer) &&
                PEM_write_bio_PrivateKey(b3, sk, NULL, NULL, 0, NULL, NULL);
        if (w && pem_of(b1, root_pem) == 0 && pem_of(b2, cert_pem) == 0 && pem_of(b3, key_pem) == 0)
            rc = 0;
        else if (!w) {
            BIO_free(b1);
            BIO_free(b2);
            BIO_free(b3);
        }
    }
    X509_free(root);
    X509_free(signer);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(sk);
    return rc;
}

/* The members of version v: COPYING and a .ndb/.ldb from version 1 on (with
 * edits in 2 and 5), a .hdb growing from version 3 on and a .fp present in 3..5,
 * so the cdiffs carry OPEN/XCHG/ADD/DEL, new files and an UNLINK. */
static cf_code own_members(uint32_t v, cf_image *img, cf_err *e)
{
    cf_buf ndb = CF_BUF_INIT, hdb = CF_BUF_INIT;
    cf_code rc = cf_image_put(img, "COPYING", "clamfresh updater test database, made at test time.\n",
                              strlen("clamfresh updater test database, made at test time.\n"), e);
    for (uint32_t i = 1; i <= 3; i++)
        cf_buf_printf(&ndb, "Cf.Test.Ndb-%u:0:*:%08x\n", i, i * 104729u + (v >= 2 && i == 2));
    if (rc == CF_OK)
        rc = cf_image_put(img, "test.ndb", ndb.p, ndb.n, e);
    const char *ldb = v >= 5 ? "Cf.Test.Ldb;Engine:51-255,Target:0;0;41424345\n"
                             : "Cf.Test.Ldb;Engine:51-255,Target:0;0;41424344\n";
    if (rc == CF_OK)
        rc = cf_image_put(img, "test.ldb", ldb, strlen(ldb), e);
    if (v >= 3) {
        for (uint32_t i = 1; i <= v; i++)
            cf_buf_printf(&hdb, "%032x:%u:Cf.Test.Hdb-%u\n", i * 7919u, 60 + i, i);
        if (rc == CF_OK)
            rc = cf_image_put(img, "test.hdb", hdb.p, hdb.n, e);
    }
    if (v >= 3 && v <= 5 && rc == CF_OK) {
        const char *fp = "44d88612fea8a8f36de82e1278abb02f:68:Cf.Test.Fp\n";
        rc = cf_image_put(img, "test.fp", fp, strlen(fp), e);
    }
    cf_buf_free(&ndb);
    cf_buf_free(&hdb);
    return rc;
}

/* A CVD as a publisher builds it: .info signed with key, tar.gz body, MD5 and
 * the legacy dsig with key (a new build time when the MD5 starts with 00, which
 * ClamAV 1.1-1.4 cannot verify, formats.md §4.2). */
static cf_code own_cvd(cf_image *img, cf_cvdhdr *h, const cf_rsakey *key, cf_buf *out, cf_err *e)
{
    for (int attempt = 0; attempt < 16; attempt++, h->stime++) {
        strcpy(h->md5, "X");
        strcpy(h->dsig, "X");
        cf_code rc = cf_info_build(img, "test", h, key, e);
        cf_buf body = CF_BUF_INIT, sig = CF_BUF_INIT;
        if (rc == CF_OK)
            rc = cf_cvd_body_make(img, 1, &body, e);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (rc == CF_OK && EVP_Digest(body.p, body.n, md, &mdlen, EVP_md5(), NULL) != 1)
            rc = cf_err_set(e, CF_EUNSUPP, "MD5 is not available");
        if (rc == CF_OK && md[0] == 0) {
            cf_buf_free(&body);
            continue;
        }
        for (unsigned i = 0; rc == CF_OK && i < 16; i++)
            snprintf(h->md5 + 2 * i, 3, "%02x", md[i]);
        if (rc == CF_OK)
            rc = cf_dsig_sign_md5(key, md, &sig, e);
        if (rc == CF_OK && sig.n >= sizeof h->dsig)
            rc = cf_err_set(e, CF_EUNSUPP, "signature too long for a header");
        if (rc == CF_OK) {
            memcpy(h->dsig, sig.p, sig.n);
            h->dsig[sig.n] = '\0';
            rc = cf_cvd_assemble(h, &body, out, e);
        }
        cf_buf_free(&body);
        cf_buf_free(&sig);
        return rc;
    }
    return cf_err_set(e, CF_EFORMAT, "every build time gave an MD5 starting with 00");
}

static cf_code own_sign(const char *name, const cf_buf *pki_cert_pem, const cf_buf *pki_key_pem, cf_err *e)
{
    cf_buf data = CF_BUF_INIT, sign = CF_BUF_INIT;
    char sname[80];
    fx_read(name, &data);
    snprintf(sname, sizeof sname, "%s.sign", name);
    cf_code rc = cf_signfile_make(data.p, data.n, pki_cert_pem->p, pki_cert_pem->n, pki_key_pem->p,
                                  pki_key_pem->n, NULL, 0, CF_SIGN_MIN_FLEVEL, &sign, e);
    if (rc == CF_OK)
        fx_add(sname, sign.p, sign.n);
    cf_buf_free(&data);
    cf_buf_free(&sign);
    return rc;
}

/* test-1..6 with the counts and f-level of freshclam's own fixtures (§10.2:
 * sigs 0, 0, 11, 12, 13, 14; f-level 81), cdiffs 2..6 made by diffing the images,
 * and a .sign for every file; one generated key plays all three key roles, as
 * --trust-key does. */
static int fx_load_own(void)
{
    static const uint32_t sigs[FX_MAX_VERSION + 1] = {0, 0, 0, 11, 12, 13, 14};
    cf_err e = {0};
    cf_rsakey *key = NULL;
    cf_buf root = CF_BUF_INIT, cert = CF_BUF_INIT, pkey = CF_BUF_INIT;
    cf_image img[FX_MAX_VERSION + 1];
    for (uint32_t v = 0; v <= FX_MAX_VERSION; v++)
        cf_image_init(&img[v]);
    FX.label = "self-made fixtures";
    FX.top = FX_MAX_VERSION;
    cf_code rc = cf_rsakey_generate(2048, &key, &e);
    if (rc == CF_OK && own_pki(&root, &cert, &pkey) != 0)
        rc = cf_err_set(&e, CF_EUNSUPP, "cannot make the test PKI");
    for (uint32_t v = 1; rc == CF_OK && v <= FX_MAX_VERSION; v++) {
        cf_cvdhdr h;
        memset(&h, 0, sizeof h);
        h.version = v;
        h.sigs = sigs[v];
        h.flevel = 81;
        h.stime = 1624388302 + (uint64_t)v * 7200;
        time_t t = (time_t)h.stime;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(h.time, sizeof h.time, "%d %b %Y %H-%M +0000", &tm);
        strcpy(h.builder, "clamfresh");
        cf_buf cvd = CF_BUF_INIT;
        char name[32];
        rc = own_members(v, &img[v], &e);
        if (rc == CF_OK)
            rc = own_cvd(&img[v], &h, key, &cvd, &e);
        snprintf(name, sizeof name, "test-%u.cvd", v);
        if (rc == CF_OK) {
            fx_add(name, cvd.p, cvd.n);
            rc = own_sign(name, &cert, &pkey, &e);
        }
        cf_buf_free(&cvd);
        if (rc != CF_OK || v == 1)
            continue;
        cf_buf script = CF_BUF_INIT, cdiff = CF_BUF_INIT;
        rc = cf_cdiff_make_script(&img[v - 1], &img[v], &script, &e);
        if (rc == CF_OK)
            rc = cf_cdiff_build(script.p, script.n, v, key, &cdiff, &e);
        snprintf(name, sizeof name, "test-%u.cdiff", v);
        if (rc == CF_OK) {
            fx_add(name, cdiff.p, cdiff.n);
            rc = own_sign(name, &cert, &pkey, &e);
        }
        cf_buf_free(&script);
        cf_buf_free(&cdiff);
    }
    if (rc == CF_OK)
        rc = cf_certstore_new(&FX.certs, &e);
    if (rc == CF_OK)
        rc = cf_certstore_add_pem(FX.certs, root.p, root.n, "own-root.crt", &e);
    for (uint32_t v = 0; v <= FX_MAX_VERSION; v++)
        cf_image_free(&img[v]);
    cf_buf_free(&root);
    cf_buf_free(&cert);
    cf_buf_free(&pkey);
    if (rc != CF_OK) {
        cf_rsakey_free(key);
        fprintf(stderr, "self-made fixtures: %s\n", e.msg);
        return -1;
    }
    /* cf_trust_free frees each role's key; the one key gets three owners. */
    cf_buf pub = CF_BUF_INIT;
    rc = cf_rsakey_write_pem(key, 0, &pub, &e);
    if (rc == CF_OK)
        rc = cf_rsakey_from_pem(pub.p, pub.n, &FX.trust.info, &e);
    if (rc == CF_OK)
        rc = cf_rsakey_from_pem(pub.p, pub.n, &FX.trust.cdiff, &e);
    FX.trust.cvd = key;
    cf_buf_free(&pub);
    if (rc != CF_OK) {
        fprintf(stderr, "self-made fixtures: %s\n", e.msg);
        return -1;
    }
    return fx_read_sigs();
}

/* ---------------------------------------------------------------- the fake mirror */

typedef struct ffile {
    char name[128];
    cf_buf data;
} ffile;

typedef enum fmode { F_WWW, F_403, F_429, F_DOWN, F_NOHOST } fmode;

typedef struct fake {
    fmode mode;
    ffile files[64];
    size_t nfiles;
    char reqs[512][160]; /* "R name" (Range) or "G name" */
    size_t nreq;
    char msgs[1024][600];
    cf_msglevel lvl[1024];
    size_t nmsg;
    time_t now;
    unsigned slept;
    int test_fails;
    char tested[4096];
} fake;

static fake F;

static void ff_put(const char *name, const void *p, size_t n)
{
    for (size_t i = 0; i < F.nfiles; i++)
        if (strcmp(F.files[i].name, name) == 0) {
            cf_buf_set(&F.files[i].data, p, n);
            return;
        }
    ffile *f = &F.files[F.nfiles++];
    snprintf(f->name, sizeof f->name, "%s", name);
    memset(&f->data, 0, sizeof f->data);
    cf_buf_set(&f->data, p ? p : "", n);
}

static void ff_fx(const char *name, const char *vector)
{
    cf_buf b = CF_BUF_INIT;
    fx_read(vector, &b);
    ff_put(name, b.p, b.n);
    cf_buf_free(&b);
}

static const ffile *ff_get(const char *name)
{
    for (size_t i = 0; i < F.nfiles; i++)
        if (strcmp(F.files[i].name, name) == 0)
            return &F.files[i];
    return NULL;
}

/* The freshclam test suite's Handler_WWW (§10.2): "advertised" is what the
 * probe sees, "served" what a full download of NAME.cvd gets; query strings are
 * ignored, as a static server does. */
static void serve(const cf_http_req *q, cf_http_resp *r)
{
    const char *path = strstr(q->url, ".test/");
    assert_non_null(path);
    path += 6;
    char name[160];
    snprintf(name, sizeof name, "%s", path);
    char *qm = strchr(name, '?');
    if (qm)
        *qm = '\0';
    if (F.nreq < 512)
        snprintf(F.reqs[F.nreq++], sizeof F.reqs[0], "%c %s",
                 q->range_head ? 'R'
                 : q->head     ? 'H'
                               : 'G',
                 path);
    if (F.mode == F_NOHOST) {
        r->err.code = CF_ENET;
        r->curl_code = 6;
        r->unreachable = 1;
        snprintf(r->curl_msg, sizeof r->curl_msg, "Couldn't resolve host name");
        return;
    }
    if (F.mode == F_DOWN) {
        r->err.code = CF_ENET;
        r->curl_code = 7;
        snprintf(r->curl_msg, sizeof r->curl_msg, "Couldn't connect to server");
        return;
    }
    if (F.mode == F_403 || F.mode == F_429) {
        if (q->range_head) {
            cf_buf v = CF_BUF_INIT;
            fx_read("test-3.cvd", &v);
            r->status = 206;
            cf_buf_set(&r->body, v.p, 512);
            cf_buf_free(&v);
            return;
        }
        r->status = F.mode == F_403 ? 403 : 429;
        r->retry_after = F.mode == F_429 ? 60 : 0;
        cf_buf_set(&r->body, "<html>no</html>", 15);
        return;
    }
    size_t nl = strlen(name);
    if (nl > 4 && strcmp(name + nl - 4, ".cvd") == 0)
        strcat(name, q->range_head ? ".advertised" : ".served");
    const ffile *f = ff_get(name);
    if (!f) {
        r->status = 404;
        return;
    }
    if (q->if_modified_since && nl > 4 && strcmp(path + strlen(path) - 4, ".cvd") == 0) {
        /* no 304s from this mirror: it does not look at dates */
    }
    if (q->range_head) {
        r->status = 206;
        cf_buf_set(&r->body, f->data.p, f->data.n < 512 ? f->data.n : 512);
    } else if (q->head) {
        r->status = 200;
    } else {
        r->status = 200;
        cf_buf_set(&r->body, f->data.p ? (const void *)f->data.p : "", f->data.n);
    }
}

/* A streamed request gets its 2xx body through its sink, in uneven chunks, as
 * libcurl hands it over; a sink failure ends the transfer with that error. */
static void deliver(const cf_http_req *q, cf_http_resp *r)
{
    r->bytes = r->body.n;
    if (q->sink == NULL || r->err.code != CF_OK || r->status < 200 || r->status > 299)
        return;
    static const size_t steps[] = {1, 511, 3000, 16384};
    size_t off = 0;
    for (size_t i = 0; off < r->body.n; i++) {
        size_t k = steps[i % 4] < r->body.n - off ? steps[i % 4] : r->body.n - off;
        cf_err e = {0};
        if (cf_sink_write(q->sink, r->body.p + off, k, &e) != CF_OK) {
            r->err = e;
            break;
        }
        off += k;
    }
    cf_buf_free(&r->body);
}

static void fake_fetch(void *arg, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k)
{
    (void)arg;
    assert_true(k >= 1);
    for (size_t i = 0; i < n; i++) {
        serve(&reqs[i], &resps[i]);
        deliver(&reqs[i], &resps[i]);
    }
}

static time_t fake_now(void *arg)
{
    (void)arg;
    return F.now;
}

static void fake_sleep(void *arg, unsigned s)
{
    (void)arg;
    F.slept += s;
    F.now += s;
}

static void fake_log(void *arg, cf_msglevel lvl, const char *msg)
{
    (void)arg;
    if (getenv("CF_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s\n", (int)lvl, msg);
    if (F.nmsg < 1024) {
        F.lvl[F.nmsg] = lvl;
        snprintf(F.msgs[F.nmsg++], sizeof F.msgs[0], "%s", msg);
    }
}

static cf_code fake_test(void *arg, const char *path, cf_err *e)
{
    (void)arg;
    snprintf(F.tested, sizeof F.tested, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return cf_err_set(e, CF_EIO, "test file missing");
    if (F.test_fails)
        return cf_err_set(e, CF_ESIG, "Database load exited with \"Malformed database\"");
    return CF_OK;
}

/* Index of the first message at level lvl (or any level when lvl < 0) containing s, or -1. */
static long find_msg(int lvl, const char *s)
{
    for (size_t i = 0; i < F.nmsg; i++)
        if ((lvl < 0 || (int)F.lvl[i] == lvl) && strstr(F.msgs[i], s))
            return (long)i;
    return -1;
}

static int has(const char *s)
{
    return find_msg(-1, s) >= 0;
}

static size_t count_req(const char *r)
{
    size_t n = 0;
    for (size_t i = 0; i < F.nreq; i++)
        n += strcmp(F.reqs[i], r) == 0;
    return n;
}

static void expect_reqs(const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (n != F.nreq) {
        for (size_t i = 0; i < F.nreq; i++)
            fprintf(stderr, "request %zu: %s\n", i, F.reqs[i]);
    }
    assert_int_equal(F.nreq, n);
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(want[i]);
        if (k > 0 && want[i][k - 1] == '*') /* a per-run query string follows */
            assert_int_equal(strncmp(F.reqs[i], want[i], k - 1), 0);
        else
            assert_string_equal(F.reqs[i], want[i]);
    }
}

/* ------------------------------------------------------------------ set-up */

static cf_verifyctx vctx;
static char *dbdir, *tmpdir;
static cf_state st;

/* The fixture set the scenarios run on; loaded once per cmocka group. */
static int group_setup_with(int (*load)(void))
{
    fx_free();
    if (load() != 0)
        return -1;
    vctx = (cf_verifyctx){.trust = &FX.trust, .certs = FX.certs, .flevel = 230};
    return 0;
}

static int group_setup_own(void **state)
{
    (void)state;
    return group_setup_with(fx_load_own);
}

static int group_setup_vectors(void **state)
{
    (void)state;
    return group_setup_with(fx_load_vectors);
}

static int group_teardown(void **state)
{
    (void)state;
    fx_free();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < F.nfiles; i++)
        cf_buf_free(&F.files[i].data);
    memset(&F, 0, sizeof F);
    F.now = 1700000000;
    dbdir = cf_test_mkdtemp();
    tmpdir = cf_test_mkdtemp();
    memset(&st, 0, sizeof st);
    snprintf(st.uuid, sizeof st.uuid, "4150b19a-6eda-4e1e-8854-7483e8ea7f28");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(dbdir);
    cf_test_rmtree(tmpdir);
    free(dbdir);
    free(tmpdir);
    return 0;
}

static const char *mirrors1[] = {MIRROR};
static const char *mirrors2[] = {MIRROR, MIRROR2};

static void make_updater(cf_updater *u, const char *const *mirrors, size_t nm)
{
    cf_update_opts o = {
        .dbdir = dbdir,
        .tmpdir = tmpdir,
        .mirrors = mirrors,
        .nmirrors = nm,
        .max_attempts = 3,
        .scripted = 1,
        .concurrency = 4,
        .retry_delay = 5,
        .verify = &vctx,
        .state = &st,
    };
    cf_update_env env = {NULL, fake_fetch, fake_now, fake_sleep, fake_log, fake_test};
    cf_updater_init(u, &o, &env);
}

/* Starts a new run: fresh messages and requests, same mirror contents. */
static int run_db(const char *db, uint32_t dnsver)
{
    F.nmsg = 0;
    F.nreq = 0;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    return cf_updater_db(&u, db, dnsver);
}

static void db_put_fx(const char *name, const char *vector)
{
    cf_buf b = CF_BUF_INIT;
    char p[4096];
    fx_read(vector, &b);
    snprintf(p, sizeof p, "%s/%s", dbdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
    fclose(f);
    cf_buf_free(&b);
}

static int db_exists(const char *name)
{
    char p[4096];
    struct stat s;
    snprintf(p, sizeof p, "%s/%s", dbdir, name);
    return stat(p, &s) == 0;
}

/* The installed database: its file, its version, and that it verifies. */
static void expect_db(const char *file, uint32_t version)
{
    cf_cvdhdr h;
    char got[64];
    assert_true(cf_updater_local(dbdir, "test", &h, got));
    assert_string_equal(got, file);
    assert_int_equal(h.version, version);
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dbdir, file);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(p, &b);
    cf_image img = CF_IMAGE_INIT;
    cf_image_init(&img);
    cf_err e = {0};
    cf_code rc = strstr(file, ".cld") ? cf_verify_cld(&vctx, b.p, b.n, &img, &e)
                                      : cf_verify_cvd(&vctx, b.p, b.n, NULL, 0, &img, NULL, &e);
    if (rc != CF_OK)
        fprintf(stderr, "%s: %s\n", file, e.msg);
    assert_int_equal(rc, CF_OK);
    cf_image_free(&img);
    cf_buf_free(&b);
}

static void local_test1(void)
{
    db_put_fx("test.cvd", "test-1.cvd");
    db_put_fx("test-1.cvd.sign", "test-1.cvd.sign");
}

/* ---------------------------------------------------------------- scenarios */

static void test_05_cdiff_update(void **state)
{
    (void)state;
    /* 1 -> top: 1 -> 3 on the vectors, 1 -> 6 as in freshclam's own suite on the self-made set */
    const uint32_t top = FX.top;
    char name[64], text[200], want_store[2 * FX_MAX_VERSION + 2][80];
    const char *want[2 * FX_MAX_VERSION + 2];
    size_t nw = 0;
    local_test1();
    snprintf(name, sizeof name, "test-%u.cvd", top);
    ff_fx("test.cvd.advertised", name);
    snprintf(want_store[nw], sizeof want_store[0], "R test.cvd");
    want[nw] = want_store[nw];
    nw++;
    /* in the probe's round: the version pointer and the next patch */
    want[nw++] = "G test.version?r=*";
    for (uint32_t v = 2; v <= top; v++) {
        snprintf(name, sizeof name, "test-%u.cdiff", v);
        ff_fx(name, name);
        snprintf(want_store[nw], sizeof want_store[0], "G %s", name);
        want[nw] = want_store[nw];
        nw++;
        strcat(name, ".sign");
        ff_fx(name, name);
        snprintf(want_store[nw], sizeof want_store[0], "G %s", name);
        want[nw] = want_store[nw];
        nw++;
    }
    want[nw] = NULL;
    assert_int_equal(run_db("test", 0), 0);
    snprintf(text, sizeof text, "test database available for update (local version: 1, remote version: %u)",
             top);
    assert_true(has(text));
    snprintf(text, sizeof text, "Current database is %u versions behind.", top - 1);
    assert_true(find_msg(CF_MSG_PROGRESS, text) >= 0);
    for (uint32_t v = 2; v <= top; v++) {
        snprintf(text, sizeof text, "Downloading database patch # %u...", v);
        assert_true(find_msg(CF_MSG_PROGRESS, text) >= 0);
    }
    assert_true(find_msg(CF_MSG_INFO, "Database test passed.") >= 0);
    snprintf(text, sizeof text, "test.cld updated (version: %u, sigs: %u, f-level: 81", top, FX.sigs[top]);
    assert_true(find_msg(CF_MSG_INFO, text) >= 0);
    assert_false(has("already up-to-date"));
    assert_false(has("fewer than"));
    expect_reqs(want);
    expect_db("test.cld", top);
    assert_false(db_exists("test.cvd"));
    assert_false(db_exists("test-1.cvd.sign"));
    /* the test-load saw a real file in the temporary area, and it is gone now */
    assert_non_null(strstr(F.tested, tmpdir));
    assert_int_equal(access(F.tested, F_OK), -1);

    /* next run: nothing to do, no download */
    assert_int_equal(run_db("test", 0), 0);
    snprintf(text, sizeof text, "test.cld database is up-to-date (version: %u, sigs: %u, f-level: 81", top,
             FX.sigs[top]);
    assert_true(has(text));
    /* the next patch beside the probe (the pointer's 404 of the first run is
     * remembered for a day); with no patch either, one HEAD for a newer
     * versioned file: two small requests beside the probe */
    char next[64], head[64];
    snprintf(next, sizeof next, "G test-%u.cdiff", top + 1);
    snprintf(head, sizeof head, "H test-%u.cvd", top + 1);
    const char *want2[] = {"R test.cvd", next, head, NULL};
    expect_reqs(want2);
}

static void test_05_dns_version_means_no_probe(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 2), 0);
    const char *want[] = {"G test-2.cdiff", "G test-2.cdiff.sign", NULL};
    expect_reqs(want);
    expect_db("test.cld", 2);
    /* up to date by DNS: zero requests */
    assert_int_equal(run_db("test", 2), 0);
    assert_int_equal(F.nreq, 0);
    assert_true(has("test.cld database is up-to-date (version: 2"));
}

static void test_06_partial_minus_one(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-3.cvd");
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_INFO,
                         "Downloaded 1 patches for test, which is fewer than the 2 expected patches.") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "We'll settle for this partial-update, at least for now.") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "downloadFile: file not found: " MIRROR "/test-3.cdiff") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "downloadPatchAndApply: Can't download test-3.cdiff from " MIRROR
                                      "/test-3.cdiff") >= 0);
    assert_true(has("test.cld updated (version: 2"));
    assert_false(has("already up-to-date"));
    /* MaxAttempts tries of the missing patch, without sleeping */
    assert_int_equal(count_req("G test-3.cdiff"), 3);
    assert_int_equal(F.slept, 0);
    expect_db("test.cld", 2);

    /* run 2: one behind, the patch still missing: no change, success */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(
        find_msg(CF_MSG_INFO,
                 "The database server doesn't have the latest patch for the test database (version 3). The "
                 "server will likely have updated if you check again in a few hours.") >= 0);
    assert_false(has("test.cld updated"));
    assert_false(has("test.cvd updated"));
    assert_int_equal(count_req("G test.cvd"), 0);
    expect_db("test.cld", 2);
}

static void test_07_partial_minus_two(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-3.cvd");
    ff_fx("test.cvd.served", "test-3.cvd");
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    /* no cdiff at all: 0 patches while 2 behind -> the whole database */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "Incremental update failed, trying to download test.cvd") >= 0);
    assert_true(has("test.cvd updated (version: 3"));
    assert_false(has("test.cld updated"));
    const char *want[] = {
        "R test.cvd", "G test.version?r=*", "G test-2.cdiff", "G test-2.cdiff", "G test-2.cdiff.sign",
        "G test-3.cdiff", "G test-3.cdiff.sign", "G test-2.cdiff", "G test-2.cdiff",
        /* versioned name first with its .sign alongside (not published
         * here), then the cache-busting one and the .sign of what came */
        "G test-3.cvd", "G test-3.cvd.sign", "G test.cvd?version=3", "G test-3.cvd.sign", NULL};
    expect_reqs(want);
    expect_db("test.cvd", 3);
    assert_true(db_exists("test-3.cvd.sign"));
    assert_false(db_exists("test-1.cvd.sign"));
}

static void test_07_noversioned_memory(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.served", "test-3.cvd");
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 1);
    assert_true(db_exists(CF_MIRROR_STATE_FILE));
    /* back to version 1: the next run does not ask for test-3.cvd again */
    char p[4096];
    snprintf(p, sizeof p, "%s/test.cvd", dbdir);
    remove(p);
    local_test1();
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 0);
    assert_int_equal(count_req("G test.cvd?version=3"), 1);
    /* a day later it is asked again */
    remove(p);
    local_test1();
    F.now += CF_NOVERSIONED_RETRY + 1;
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 1);
}

static void test_07_zero_byte_cdiff(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-3.cvd");
    ff_put("test-2.cdiff", NULL, 0);
    ff_fx("test.cvd.served", "test-2.cvd");
    ff_fx("test-2.cvd.sign", "test-2.cvd.sign");
    ff_fx("test-3.cdiff", "test-3.cdiff");
    ff_fx("test-3.cdiff.sign", "test-3.cdiff.sign");

    /* run 1: empty patch -> whole database, which is older than advertised: settle */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_INFO, "Empty script test-2.cdiff, need to download entire database") >= 0);
    assert_true(find_msg(CF_MSG_WARN, MIRROR "/test.cvd?version=3 served version 2, advertised 3") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "test.cvd updated (version: 2") >= 0);
    assert_true(find_msg(CF_MSG_WARN,
                         "Received an older test CVD than was advertised. Incremental updates either "
                         "failed or are disabled, so we'll have to settle for a slightly out-of-date "
                         "database.") >= 0);
    assert_false(has("already up-to-date"));
    expect_db("test.cvd", 2);
    assert_true(db_exists("test-2.cvd.sign"));

    /* run 2: patch 3 applies to the CVD of version 2 */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 3"));
    assert_false(has("Received an older test CVD"));
    assert_false(has("Incremental update failed"));
    expect_db("test.cld", 3);
    assert_false(db_exists("test.cvd"));
    assert_false(db_exists("test-2.cvd.sign"));

    /* run 3: up to date */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("database is up-to-date"));
    assert_false(has("updated (version"));
}

static void test_08_cdiff_twice(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-2.cvd");
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 2"));
    expect_db("test.cld", 2);
    ff_fx("test.cvd.advertised", "test-3.cvd");
    ff_fx("test-3.cdiff", "test-3.cdiff");
    ff_fx("test-3.cdiff.sign", "test-3.cdiff.sign");
    /* the second patch applies to the CLD we built */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 3"));
    const char *want[] = {"R test.cvd", "G test-3.cdiff", "G test-3.cdiff.sign", NULL};
    expect_reqs(want);
    expect_db("test.cld", 3);
    /* a day later the pointer is asked again */
    F.now += CF_MIRROR_LACK_RETRY + 1;
    assert_int_equal(run_db("test", 0), 0);
    assert_int_equal(strncmp(F.reqs[1], "G test.version?r=", 17), 0);
}

/* Cache-proof discovery (remote.h): a cache that still holds the v1 header of
 * test.cvd cannot keep a client at v1 while the mirror has patches past it. */
static void test_stale_header_patches_reach(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-1.cvd"); /* the cache's old copy */
    for (uint32_t v = 2; v <= FX.top; v++) {
        char name[64];
        snprintf(name, sizeof name, "test-%u.cdiff", v);
        ff_fx(name, name);
        strcat(name, ".sign");
        ff_fx(name, name);
    }
    assert_int_equal(run_db("test", 0), 0);
    char text[160];
    snprintf(text, sizeof text, "test.cvd from " MIRROR " is stale: says 1, patches reach %u", FX.top);
    assert_true(find_msg(CF_MSG_WARN, text) >= 0);
    expect_db("test.cld", FX.top);
}

/* The mirror's version pointer is read past any cache (a per-run query). */
static void test_pointer_beats_stale_header(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-1.cvd");
    ff_put("test.version", "2:1700000000\n", 13);
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "test.cvd from " MIRROR " is stale: says 1, test.version says 2") >= 0);
    expect_db("test.cld", 2);
    /* up to date against a pointer: two small requests beside the probe */
    ff_fx("test.cvd.advertised", "test-2.cvd");
    assert_int_equal(run_db("test", 0), 0);
    const char *want[] = {"R test.cvd", "G test.version?r=*", "G test-3.cdiff", NULL};
    expect_reqs(want);
}

/* Versioned full files only (no patches, no pointer): HEAD requests find the
 * newest NAME-V.cvd. */
static void test_versioned_search(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-1.cvd");
    ff_fx("test-2.cvd.served", "test-2.cvd");
    ff_fx("test-3.cvd.served", "test-3.cvd");
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "test.cvd from " MIRROR " is stale: says 1, test-3.cvd is published") >=
                0);
    expect_db("test.cvd", 3);
}

static void test_cdiff_without_sign_uses_embedded_signature(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test-2.cdiff", "test-2.cdiff");
    assert_int_equal(run_db("test", 2), 0);
    assert_true(has("No external .sign digital signature file for test-2.cdiff"));
    expect_db("test.cld", 2);
}

/* A .sign that does not vouch for its file is fatal although the cdiff's own
 * signature is good (formats.md §7.4): the set's .sign files really are checked,
 * against its anchors. The whole database is fetched instead. */
static void test_wrong_sign_is_fatal(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-3.cdiff.sign");
    ff_fx("test.cvd.served", "test-2.cvd");
    ff_fx("test-2.cvd.sign", "test-2.cvd.sign");
    assert_int_equal(run_db("test", 2), 0);
    assert_true(find_msg(CF_MSG_ERROR, "downloadPatchAndApply: Can't apply 'test-2.cdiff': ") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "Incremental update failed, trying to download test.cvd") >= 0);
    assert_true(has("test.cvd updated (version: 2"));
    expect_db("test.cvd", 2);
    assert_true(db_exists("test-2.cvd.sign"));
}

static void test_no_local_full_download(void **state)
{
    (void)state;
    ff_fx("test.cvd.advertised", "test-3.cvd");
    ff_fx("test-3.cvd.served", "test-3.cvd");
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test database available for download (remote version: 3)"));
    const char *want[] = {"R test.cvd",   "G test.version?r=*", "H test-4.cvd",
                          "G test-3.cvd", "G test-3.cvd.sign",  NULL};
    expect_reqs(want);
    expect_db("test.cvd", 3);
    assert_true(db_exists("test-3.cvd.sign"));
}

/* The stale cache: plain NAME.cvd is old, the versioned name is right. */
static void test_stale_cache_versioned_name_preferred(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.served", "test-1.cvd");   /* what a stale cache hands out */
    ff_fx("test-3.cvd.served", "test-3.cvd"); /* the cache-proof name */
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 3), 0);
    assert_true(has("test.cvd updated (version: 3"));
    assert_int_equal(count_req("G test.cvd"), 0);
    assert_int_equal(count_req("G test.cvd?version=3"), 0);
    expect_db("test.cvd", 3);
}

/* Stricter than freshclam: a copy not newer than ours is never installed. */
static void test_older_than_local_refused(void **state)
{
    (void)state;
    db_put_fx("test.cvd", "test-2.cvd");
    db_put_fx("test-2.cvd.sign", "test-2.cvd.sign");
    /* cdiff 3 is broken (apply failure) so the full file is needed; the mirror
     * only has version 1 under every name */
    ff_put("test-3.cdiff", "ClamAV-Diff:3:garbage", 21);
    ff_fx("test.cvd.served", "test-1.cvd");
    assert_int_equal(run_db("test", 3), 0);
    assert_true(find_msg(CF_MSG_ERROR, "downloadPatchAndApply: Can't apply 'test-3.cdiff'") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "Incremental update failed, trying to download test.cvd") >= 0);
    assert_true(find_msg(CF_MSG_WARN, MIRROR "/test.cvd served version 1, advertised 3") >= 0);
    assert_false(has("updated (version"));
    expect_db("test.cvd", 2);
    assert_true(db_exists("test-2.cvd.sign"));
    /* not-synchronised is retried at once, never slept on */
    assert_int_equal(F.slept, 0);
    assert_int_equal(count_req("G test.cvd"), 3);
}

static void test_bad_signature_keeps_old(void **state)
{
    (void)state;
    local_test1();
    cf_buf b = CF_BUF_INIT;
    fx_read("test-3.cvd", &b);
    b.p[b.n - 100] ^= 0x55;
    ff_put("test.cvd.served", b.p, b.n);
    cf_buf_free(&b);
    assert_int_equal(run_db("test", 3), CF_FC_EBADCVD);
    assert_true(find_msg(CF_MSG_ERROR, "Verification: ") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "Trying again in 5 secs...") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "Giving up on " MIRROR "...") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Update failed for database: test") >= 0);
    assert_int_equal(F.slept, 10);
    expect_db("test.cvd", 1);
}

static void test_html_instead_of_cvd(void **state)
{
    (void)state;
    const char html[] = "<html><body>Welcome to our captive portal</body></html>";
    ff_put("test.cvd.advertised", html, sizeof html - 1);
    assert_int_equal(run_db("test", 0), CF_FC_EFAILEDGET);
    assert_true(has("remote_cvdhead: Malformed CVD header (too short)"));
    assert_true(has("check_for_new_database_version: Failed to find test database using server " MIRROR "."));
    assert_false(db_exists("test.cvd"));
}

static void test_empty_full_file(void **state)
{
    (void)state;
    ff_put("test.cvd.served", NULL, 0);
    assert_int_equal(run_db("test", 3), CF_FC_EEMPTYFILE);
    assert_true(has("the server sent an empty file"));
    assert_true(has("Unexpected error when attempting to update test: Empty file"));
}

static void test_truncated_full_file(void **state)
{
    (void)state;
    local_test1();
    cf_buf b = CF_BUF_INIT;
    fx_read("test-3.cvd", &b);
    ff_put("test.cvd.served", b.p, b.n / 2);
    cf_buf_free(&b);
    assert_int_equal(run_db("test", 3), CF_FC_EBADCVD);
    expect_db("test.cvd", 1);
}

static void test_load_test_failure_keeps_old(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test-2.cdiff", "test-2.cdiff");
    F.test_fails = 1;
    assert_int_equal(run_db("test", 2), CF_FC_ETESTFAIL);
    assert_true(find_msg(CF_MSG_ERROR, "Database test FAILED.") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Unexpected error when attempting to update test: Test failed") >= 0);
    assert_false(has("Database test passed."));
    expect_db("test.cvd", 1);
}

static void test_transport_failure_rotation(void **state)
{
    (void)state;
    F.mode = F_DOWN;
    cf_updater u;
    make_updater(&u, mirrors2, 2);
    assert_int_equal(cf_updater_db(&u, "test", 0), CF_FC_EFAILEDGET);
    assert_int_equal(F.nreq, 12); /* each attempt: the probe and the version pointer */
    assert_int_equal(F.slept, 4 * 5);
    assert_true(has("Giving up on " MIRROR "..."));
    assert_true(has("Giving up on " MIRROR2 "..."));
    assert_true(find_msg(CF_MSG_ERROR, "remote_cvdhead: Download failed (7)") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Update failed for database: test") >= 0);

    /* a file download that fails in transport is code 5 */
    teardown(NULL);
    setup(NULL);
    F.mode = F_DOWN;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_db(&u, "test", 3), CF_FC_ECONNECTION);
}

static void test_403_then_cooldown(void **state)
{
    (void)state;
    F.mode = F_403;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    const char *dbs[] = {"daily", "main"};
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), CF_FC_EFORBIDDEN);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam received error code 403") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are on cool-down until after: ") >= 0);
    assert_true(u.forbidden);
    assert_true(u.state_dirty);
    assert_int_equal(st.retry_after, F.now + 24 * 3600);
    /* stopped at the first database */
    assert_int_equal(count_req("R main.cvd"), 0);

    /* run 2: still on cool-down, nothing contacted, success */
    F.nreq = 0;
    F.nmsg = 0;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), 0);
    assert_int_equal(F.nreq, 0);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam previously received error code 429 or 403") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are still on cool-down until after: ") >= 0);

    /* after it expires */
    F.now += 24 * 3600 + 1;
    F.nmsg = 0;
    F.mode = F_WWW;
    make_updater(&u, mirrors1, 1);
    cf_updater_run(&u, dbs, NULL, 0, NULL, 0);
    assert_int_equal(cf_updater_cooldown_active(&u), 0);
    assert_true(has("Cool-down expired, ok to try again."));
    assert_int_equal(st.retry_after, 0);
    assert_true(u.state_dirty);
}

static void test_429_next_db_still_tried(void **state)
{
    (void)state;
    F.mode = F_429;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    const char *dbs[] = {"daily", "main"};
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam received error code 429") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are on cool-down until after: ") >= 0);
    assert_int_equal(count_req("R daily.cvd"), 1);
    assert_int_equal(count_req("R main.cvd"), 1);
    assert_int_equal(st.retry_after, F.now + 60);
    assert_false(u.forbidden);
    /* StrictExitCodes reports it */
    memset(&st.retry_after, 0, sizeof st.retry_after);
    make_updater(&u, mirrors1, 1);
    u.o.strict_exit_codes = 1;
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), CF_FC_ERETRYLATER);
}

static void test_custom_file_url(void **state)
{
    (void)state;
    char src[4096];
    char *wd = cf_test_mkdtemp();
    snprintf(src, sizeof src, "%s/clamav.hdb", wd);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fputs("# comment\naa6b9c7e8ce2a5bc8bb5c0a5c4a3d5b7:68:Test.Sig\n\n", f);
    fclose(f);
    char url[4200];
    snprintf(url, sizeof url, "file://%s", src);
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_custom(&u, url), 0);
    assert_true(has("Downloading clamav.hdb [100%]"));
    assert_true(has("Database test passed."));
    assert_true(has("clamav.hdb updated (version: custom database, sigs: 1)"));
    assert_int_equal(u.replaced, 1);
    assert_true(db_exists("clamav.hdb"));
    /* our copy is newer than the source now */
    sleep(1);
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/clamav.hdb", dbdir);
    struct timespec later[2] = {{time(NULL) + 10, 0}, {time(NULL) + 10, 0}};
    utimensat(AT_FDCWD, dst, later, 0);
    F.nmsg = 0;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_custom(&u, url), 0);
    assert_true(has("clamav.hdb is up-to-date (version: custom database)"));
    assert_int_equal(u.replaced, 0);
    /* missing source */
    snprintf(url, sizeof url, "file://%s/missing.hdb", wd);
    assert_int_equal(cf_updater_custom(&u, url), CF_FC_EFAILEDUPDATE);
    assert_true(has("DatabaseCustomURL: file "));
    assert_int_equal(cf_updater_custom(&u, "http://x/a"), CF_FC_EFAILEDUPDATE);
    assert_true(has("DatabaseCustomURL: Incorrect URL"));
    cf_test_rmtree(wd);
}

static void test_private_mirror_cld(void **state)
{
    (void)state;
    /* a private mirror serving a CLD built from version 3 */
    cf_buf b = CF_BUF_INIT, cld = CF_BUF_INIT;
    cf_image img = CF_IMAGE_INIT;
    cf_image_init(&img);
    cf_err e = {0};
    fx_read("test-3.cvd", &b);
    assert_int_equal(cf_verify_cvd(&vctx, b.p, b.n, NULL, 0, &img, NULL, &e), CF_OK);
    assert_int_equal(cf_cld_write(&img, 0, &cld, &e), CF_OK);
    ff_put("test.cld", cld.p, cld.n);
    cf_image_free(&img);
    cf_buf_free(&b);
    cf_buf_free(&cld);
    local_test1();
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    u.o.private_mirror = 1;
    assert_int_equal(cf_updater_db(&u, "test", 0), 0);
    /* no cdiffs on this mirror: the whole CLD, verified by its manifest */
    assert_int_equal(count_req("R test.cld"), 1);
    assert_int_equal(count_req("G test.cld?version=3"), 1);
    assert_int_equal(count_req("G test-3.cvd"), 0);
    expect_db("test.cld", 3);
    assert_false(db_exists("test.cvd"));
}

/* A PrivateMirror that serves CVDs answers 404 for NAME.cld: remembered, so
 * the next run does not ask again (its 404s would reach the mirror per run). */
static void test_private_mirror_without_cld(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.advertised", "test-2.cvd");
    ff_fx("test-2.cdiff", "test-2.cdiff");
    ff_fx("test-2.cdiff.sign", "test-2.cdiff.sign");
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    u.o.private_mirror = 1;
    assert_int_equal(cf_updater_db(&u, "test", 0), 0);
    assert_int_equal(count_req("R test.cld"), 1);
    expect_db("test.cld", 2);
    F.nreq = 0;
    make_updater(&u, mirrors1, 1);
    u.o.private_mirror = 1;
    assert_int_equal(cf_updater_db(&u, "test", 0), 0);
    assert_int_equal(count_req("R test.cld"), 0);
    assert_int_equal(count_req("R test.cvd"), 1);
    assert_true(has("test.cld database is up-to-date (version: 2"));
}

static void test_fc_texts(void **state)
{
    (void)state;
    assert_string_equal(cf_fc_str(17), "Forbidden; Blocked by CDN");
    assert_string_equal(cf_fc_str(11), "HTTP GET failed");
    assert_string_equal(cf_fc_str(8), "Test failed");
}

/* ------------------------------------------------- hostile mirrors (classes) */

/* Identity: a validly signed database of another name is not installed in the
 * place of the one asked for. */
static void test_other_database_refused(void **state)
{
    (void)state;
    ff_fx("daily.cvd.advertised", "test-3.cvd");
    ff_fx("daily-3.cvd.served", "test-3.cvd");
    ff_fx("daily.cvd.served", "test-3.cvd");
    ff_fx("daily-3.cvd.sign", "test-3.cvd.sign");
    assert_int_not_equal(run_db("daily", 3), 0);
    assert_true(find_msg(CF_MSG_ERROR, "is not the daily database: its manifest is test.info") >= 0);
    assert_false(db_exists("daily.cvd"));
    assert_false(db_exists("test.cvd"));
}

/* Identity: a signed chain that ends at another version than its last patch
 * is named for is not installed; the whole file at the planned version is. */
static void test_chain_to_other_version_refused(void **state)
{
    (void)state;
    if (FX.trust.cvd == NULL || FX.top < 3 || strcmp(FX.label, "self-made fixtures") != 0)
        skip(); /* needs the set's own private key to sign the hostile patch */
    local_test1();
    cf_buf c2 = CF_BUF_INIT, c3 = CF_BUF_INIT, both = CF_BUF_INIT, forged = CF_BUF_INIT;
    fx_read("test-2.cdiff", &c2);
    fx_read("test-3.cdiff", &c3);
    cf_cdiff d2 = CF_CDIFF_INIT, d3 = CF_CDIFF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_cdiff_parse(c2.p, c2.n, &d2, &e), CF_OK);
    assert_int_equal(cf_cdiff_parse(c3.p, c3.n, &d3, &e), CF_OK);
    cf_buf_append(&both, d2.script.p, d2.script.n);
    cf_buf_append(&both, d3.script.p, d3.script.n);
    /* Patches 2 and 3 in one, signed and named as patch 2. */
    assert_int_equal(cf_cdiff_build(both.p, both.n, 2, FX.trust.cvd, &forged, &e), CF_OK);
    ff_put("test-2.cdiff", forged.p, forged.n);
    ff_fx("test-2.cvd.served", "test-2.cvd");
    ff_fx("test-2.cvd.sign", "test-2.cvd.sign");
    assert_int_equal(run_db("test", 2), 0);
    assert_true(has("the patches lead to version 3, not the version 2 they are named for"));
    expect_db("test.cvd", 2);
    cf_cdiff_free(&d2);
    cf_cdiff_free(&d3);
    cf_buf_free(&c2);
    cf_buf_free(&c3);
    cf_buf_free(&both);
    cf_buf_free(&forged);
}

/* An absurd advertised version costs no patch request and no memory: the
 * whole file, and a copy older than advertised is settled for. */
static void test_huge_gap_goes_to_whole_file(void **state)
{
    (void)state;
    local_test1();
    ff_fx("test.cvd.served", "test-3.cvd");
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 4294967295u), 0);
    assert_true(has("beyond the 300 patches a mirror keeps"));
    for (size_t i = 0; i < F.nreq; i++)
        assert_null(strstr(F.reqs[i], ".cdiff"));
    assert_true(F.nreq <= 8);
    expect_db("test.cvd", 3);
}

/* A damaged local database at the advertised version is found and fetched
 * again; the next run trusts the verified file without checking it again. */
static void test_damaged_local_fetched_again(void **state)
{
    (void)state;
    char name[32];
    snprintf(name, sizeof name, "test-%u.cvd", FX.top);
    db_put_fx("test.cvd", name);
    char p[4096];
    snprintf(p, sizeof p, "%s/test.cvd", dbdir);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, -40, SEEK_END);
    int c = fgetc(f);
    fseek(f, -40, SEEK_END);
    fputc(c ^ 0x20, f);
    fclose(f);
    char served[32];
    snprintf(served, sizeof served, "test-%u.cvd.served", FX.top);
    ff_fx(served, name);
    snprintf(served, sizeof served, "test-%u.cvd.sign", FX.top);
    snprintf(name, sizeof name, "test-%u.cvd.sign", FX.top);
    ff_fx(served, name);
    assert_int_equal(run_db("test", FX.top), 0);
    assert_true(find_msg(CF_MSG_WARN, "test.cvd is damaged (") >= 0);
    assert_false(has("database is up-to-date"));
    expect_db("test.cvd", FX.top);
    assert_true(db_exists("clamfresh-verified.state"));
    /* the repaired file is recorded: the next run neither checks nor asks */
    assert_int_equal(run_db("test", FX.top), 0);
    assert_true(has("database is up-to-date"));
    assert_false(has("verified in full"));
    assert_int_equal(F.nreq, 0);
}

/* No DNS for the mirror's name: one retry, then the mirror is given up for
 * the rest of the run, here and for the next database. */
static void test_unreachable_mirror_given_up(void **state)
{
    (void)state;
    F.mode = F_NOHOST;
    cf_updater u;
    make_updater(&u, mirrors2, 2);
    assert_int_equal(cf_updater_db(&u, "test", 3), CF_FC_ECONNECTION);
    assert_true(find_msg(CF_MSG_WARN, MIRROR " cannot be reached (Couldn't resolve host name)") >= 0);
    assert_true(find_msg(CF_MSG_WARN, MIRROR2 " cannot be reached") >= 0);
    assert_int_equal(F.slept, 2 * 5); /* one retry per mirror, not MaxAttempts */
    size_t before = F.nreq;
    assert_int_equal(cf_updater_db(&u, "test2", 3), CF_FC_ECONNECTION);
    assert_int_equal(F.nreq, before);
    assert_true(has("Not trying " MIRROR " again in this run"));
}

/* A FIFO where the database should be neither hangs the run nor is read. */
static void test_fifo_database_not_read(void **state)
{
    (void)state;
    char p[4096];
    snprintf(p, sizeof p, "%s/test.cvd", dbdir);
    assert_int_equal(mkfifo(p, 0644), 0);
    ff_fx("test-3.cvd.served", "test-3.cvd");
    ff_fx("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 3), 0);
    assert_true(has("test database available for download (remote version: 3)"));
    expect_db("test.cvd", 3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_05_cdiff_update),
        T(test_05_dns_version_means_no_probe),
        T(test_06_partial_minus_one),
        T(test_07_partial_minus_two),
        T(test_07_noversioned_memory),
        T(test_07_zero_byte_cdiff),
        T(test_08_cdiff_twice),
        T(test_private_mirror_without_cld),
        T(test_stale_header_patches_reach),
        T(test_pointer_beats_stale_header),
        T(test_versioned_search),
        T(test_cdiff_without_sign_uses_embedded_signature),
        T(test_wrong_sign_is_fatal),
        T(test_no_local_full_download),
        T(test_stale_cache_versioned_name_preferred),
        T(test_older_than_local_refused),
        T(test_bad_signature_keeps_old),
        T(test_html_instead_of_cvd),
        T(test_empty_full_file),
        T(test_truncated_full_file),
        T(test_load_test_failure_keeps_old),
        T(test_transport_failure_rotation),
        T(test_403_then_cooldown),
        T(test_429_next_db_still_tried),
        T(test_custom_file_url),
        T(test_private_mirror_cld),
        T(test_fc_texts),
        T(test_other_database_refused),
        T(test_chain_to_other_version_refused),
        T(test_huge_gap_goes_to_whole_file),
        T(test_damaged_local_fetched_again),
        T(test_unreachable_mirror_given_up),
        T(test_fifo_database_not_read),
    };
    const size_t n = sizeof tests / sizeof tests[0];
    printf("Scenarios on the self-made fixtures (test-1..6, generated key and PKI):\n");
    int failed =
        _cmocka_run_group_tests("updater on self-made fixtures", tests, n, group_setup_own, group_teardown);
    if (cf_test_vectors_dir() != NULL) {
        printf("The same scenarios on the ClamAV-signed vectors (test-1..3):\n");
        failed += _cmocka_run_group_tests("updater on the ClamAV-signed vectors", tests, n,
                                          group_setup_vectors, group_teardown);
    } else {
        printf("SKIP (vector variant): the ClamAV-signed vectors ($CF_VECTORS/clamav) are not present; "
               "the scenarios ran on the self-made fixtures only\n");
    }
    return failed != 0;
}
