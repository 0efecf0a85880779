/* The verifying scanner of a whole CVD/CLD, fed its bytes once:
 *
 *   header (512 bytes) ─┬─ MD5 of the body (CVD legacy dsig, §4.2)
 *                       └─ body sniff (§2.1) → [gunzip] → tar reader
 *                              → per-member SHA-256 → manifest check (§5.4)
 *
 * The verdict is cf_verify_cvd's / cf_verify_cld's for the same bytes. Those
 * check in a fixed order (size, header, the dsig over the whole body, gzip,
 * tar, manifest), and a stream meets the faults in file order instead, so
 * each stage's first fault is kept and the verdict is assembled in the
 * in-memory order at finish. feed returns a fault early only when nothing
 * later in the stream could outrank it; the stages behind a failed one are
 * no longer fed (the MD5 still is: it outranks everything in the body). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/dsig.h"
#include "clamfresh/limits.h"
#include "gzstream_priv.h"

enum body_kind { B_UNKNOWN, B_PLAIN, B_GZIP, B_NEITHER };

struct cf_dbscan {
    const cf_verifyctx *ctx;
    int is_cvd, legacy; /* legacy: the MD5 + RSA dsig decides (a CVD without an accepted .sign) */
    uint64_t nin;
    uint8_t hbuf[CF_HDR_SIZE];
    size_t hlen;
    cf_cvdhdr hdr;
    int hdr_ok;
    EVP_MD_CTX *md5;
    enum body_kind kind;
    uint8_t sniff[7];
    size_t nsniff;
    cf_gzin *gz;
    cf_tarin *tar;
    cf_mcheck *mc;
    /* the member being read */
    EVP_MD_CTX *sha;
    char name[CF_MAX_NAME + 1];
    uint64_t size;
    int capture; /* collecting the .info bytes */
    cf_buf info;
    /* first faults, by stage */
    cf_err gz_err, tar_err, fatal;
};

static cf_code report(const cf_err *slot, cf_err *e)
{
    if (e != NULL)
        *e = *slot;
    return slot->code;
}

/* ---- member callbacks: SHA-256 and the .info bytes into the manifest check ---- */

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static cf_code on_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    cf_dbscan *s = arg;
    if (EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->size = size;
    s->info.n = 0;
    s->capture = ends_with_ci(name, ".info") && size <= CF_MAX_INFO_BYTES;
    if (s->capture && cf_buf_reserve(&s->info, (size_t)size) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory reading %s", name);
    return CF_OK;
}

static cf_code on_data(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    cf_dbscan *s = arg;
    if (EVP_DigestUpdate(s->sha, p, n) != 1)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    if (s->capture && cf_buf_append(&s->info, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory reading %s", s->name);
    return CF_OK;
}

static cf_code on_end(void *arg, cf_err *e)
{
    cf_dbscan *s = arg;
    uint8_t d[32];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(s->sha, d, &len) != 1 || len != 32)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    cf_code rc = cf_mcheck_member(s->mc, s->name, s->size, d, e);
    if (rc == CF_OK && s->capture)
        rc = cf_mcheck_info(s->mc, s->name, s->info.p, s->info.n, e);
    s->capture = 0;
    return rc;
}

/* gunzip's sink: the tar reader, until it fails (then gunzip goes on alone,
 * since a gzip fault further on outranks the tar fault). */
static cf_code to_tar(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    cf_dbscan *s = arg;
    (void)e;
    if (s->tar_err.code == CF_OK && cf_tarin_feed(s->tar, p, n, &s->tar_err) != CF_OK &&
        s->tar_err.code == CF_OK)
        s->tar_err.code = CF_EFORMAT;
    return CF_OK;
}

cf_code cf_dbscan_new(const cf_verifyctx *ctx, int is_cvd, int sign_ok, cf_dbscan **out, cf_err *e)
{
    *out = NULL;
    if (ctx == NULL || ctx->trust == NULL)
        return cf_err_set(e, CF_EINVAL, "database scan: no trust configuration");
    cf_dbscan *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory setting up a database scan");
    s->ctx = ctx;
    s->is_cvd = is_cvd != 0;
    s->legacy = is_cvd && !sign_ok;
    cf_tarin_ops ops = {on_begin, on_data, on_end, s};
    cf_code rc = CF_OK;
    s->sha = EVP_MD_CTX_new();
    if (s->sha == NULL)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory setting up a database scan");
    if (rc == CF_OK && s->legacy && !ctx->fips) {
        s->md5 = EVP_MD_CTX_new();
        if (s->md5 == NULL || EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1) {
            /* Not fatal here: cf_verify_cvd reaches MD5 only after the header checks. */
            EVP_MD_CTX_free(s->md5);
            s->md5 = NULL;
        }
    }
    if (rc == CF_OK)
        rc = cf_tarin_new(&ops, &s->tar, e);
    if (rc == CF_OK)
        rc = cf_mcheck_new(&s->mc, e);
    if (rc != CF_OK) {
        cf_dbscan_free(s);
        return rc;
    }
    *out = s;
    return CF_OK;
}

/* The dsig route's refusals known from the header alone (verify_legacy's first two). */
static cf_code legacy_early(const cf_dbscan *s, cf_err *e)
{
    if (s->ctx->fips)
        return cf_err_set(e, CF_ESIG, "no valid .sign file, and FIPS limits forbid the MD5-based signature");
    if (strlen(s->hdr.dsig) <= 1)
        return cf_err_set(e, CF_ESIG, "the header carries no digital signature");
    return CF_OK;
}

/* Body bytes to the decoding stages, once the kind is known. */
static void body_decode(cf_dbscan *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (s->kind == B_PLAIN) {
        if (s->tar_err.code == CF_OK && cf_tarin_feed(s->tar, p, n, &s->tar_err) != CF_OK &&
            s->tar_err.code == CF_OK)
            s->tar_err.code = CF_EFORMAT;
    } else if (s->kind == B_GZIP) {
        if (s->gz_err.code == CF_OK && cf_gzin_feed(s->gz, p, n, &s->gz_err) != CF_OK) {
            if (s->gz_err.code == CF_OK)
                s->gz_err.code = CF_EFORMAT;
            cf_err_prefix(&s->gz_err, "body: ");
        }
    }
}

/* Sniffs the body (cf_cvd_body_is_plain, then the gzip magic) once enough
 * bytes are in, or at the end with what there is. */
static void body_decide(cf_dbscan *s, int at_end)
{
    static const char copying[7] = {'C', 'O', 'P', 'Y', 'I', 'N', 'G'};
    size_t k = s->nsniff;
    if (k >= 2 && s->sniff[0] == 0x1f && s->sniff[1] == 0x8b) {
        s->kind = B_GZIP;
    } else if (k == 7 && memcmp(s->sniff, copying, 7) == 0) {
        s->kind = B_PLAIN;
    } else {
        int could_plain = k < 7 && memcmp(s->sniff, copying, k) == 0;
        int could_gzip = k < 2 && (k == 0 || s->sniff[0] == 0x1f);
        s->kind = !at_end && (could_plain || could_gzip) ? B_UNKNOWN : B_NEITHER;
    }
    if (s->kind == B_UNKNOWN)
        return;
    if (s->kind == B_NEITHER) {
        cf_err_set(&s->gz_err, CF_EFORMAT,
                   "body at offset %d is neither gzip nor a tar starting with COPYING", CF_HDR_SIZE);
        return;
    }
    if (s->kind == B_GZIP) {
        cf_sink sink = {to_tar, s};
        if (cf_gzin_new(CF_MAX_DB_BYTES, &sink, &s->gz, &s->gz_err) != CF_OK) {
            s->kind = B_NEITHER;
            return;
        }
        cf_gzin_set_base(s->gz, CF_HDR_SIZE);
    }
    body_decode(s, s->sniff, s->nsniff);
}

/* Can a fault already found still be outranked by something later in the stream? */
static cf_code early_verdict(cf_dbscan *s, cf_err *e)
{
    if (s->legacy)
        return CF_OK; /* the MD5 over the whole body comes first */
    if (s->gz_err.code != CF_OK)
        return report(&s->gz_err, e);
    if (s->kind == B_PLAIN && s->tar_err.code != CF_OK)
        return report(&s->tar_err, e);
    return CF_OK;
}

cf_code cf_dbscan_feed(cf_dbscan *s, const uint8_t *p, size_t n, cf_err *e)
{
    if (s->fatal.code != CF_OK)
        return report(&s->fatal, e);
    if (n == 0)
        return CF_OK;
    if (n > CF_MAX_DB_BYTES - s->nin) {
        cf_err_set(&s->fatal, CF_ETOOBIG, "%zu bytes exceeds the database size limit", (size_t)(s->nin + n));
        return report(&s->fatal, e);
    }
    uint64_t before = s->nin;
    s->nin += n;
    if (s->hlen < CF_HDR_SIZE) {
        size_t k = CF_HDR_SIZE - s->hlen < n ? CF_HDR_SIZE - s->hlen : n;
        memcpy(s->hbuf + s->hlen, p, k);
        s->hlen += k;
        p += k;
        n -= k;
        if (s->hlen < CF_HDR_SIZE)
            return CF_OK;
        if (cf_cvdhdr_parse(s->hbuf, CF_HDR_SIZE, &s->hdr, &s->fatal) != CF_OK)
            return report(&s->fatal, e);
        s->hdr_ok = 1;
        if (n == 0)
            return CF_OK;
    }
    if (before <= CF_HDR_SIZE && s->legacy && legacy_early(s, &s->fatal) != CF_OK)
        return report(&s->fatal, e); /* a body exists, so nothing outranks these any more */
    if (s->md5 != NULL && EVP_DigestUpdate(s->md5, p, n) != 1) {
        EVP_MD_CTX_free(s->md5);
        s->md5 = NULL; /* finish reports it as cf_verify_cvd does */
    }
    if (s->kind == B_UNKNOWN) {
        size_t k = sizeof(s->sniff) - s->nsniff < n ? sizeof(s->sniff) - s->nsniff : n;
        memcpy(s->sniff + s->nsniff, p, k);
        s->nsniff += k;
        p += k;
        n -= k;
        body_decide(s, 0);
    }
    if (s->kind != B_UNKNOWN)
        body_decode(s, p, n);
    cf_code rc = early_verdict(s, e);
    if (rc != CF_OK)
        s->fatal = *e;
    return rc;
}

const cf_cvdhdr *cf_dbscan_header(const cf_dbscan *s)
{
    return s->hdr_ok ? &s->hdr : NULL;
}

/* verify_legacy's checks that need the whole body. */
static cf_code legacy_final(cf_dbscan *s, cf_err *e)
{
    cf_code rc = legacy_early(s, e);
    if (rc != CF_OK)
        return rc;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (s->md5 == NULL || EVP_DigestFinal_ex(s->md5, md, &mdlen) != 1 || mdlen != 16)
        return cf_err_set(e, CF_EUNSUPP, "MD5 is not available (FIPS mode?)");
    char md5[33];
    for (unsigned i = 0; i < 16; i++)
        snprintf(md5 + 2 * i, 3, "%02x", md[i]);
    if (strlen(s->hdr.md5) == 32 && strcmp(s->hdr.md5, md5) != 0)
        return cf_err_set(e, CF_ESIG, "MD5 of the body is %s, the header says %s (file damaged)", md5,
                          s->hdr.md5);
    rc = cf_dsig_verify_md5(s->ctx->trust->cvd, md5, s->hdr.dsig, e);
    if (rc != CF_OK)
        cf_err_prefix(e, "digital signature: ");
    return rc;
}

static cf_code finish(cf_dbscan *s, cf_err *e)
{
    size_t n = (size_t)s->nin;
    cf_code rc;
    if (s->is_cvd) {
        if (s->hlen < CF_HDR_SIZE) {
            /* what cf_verify_cvd makes of a file shorter than a header */
            cf_cvdhdr h;
            rc = cf_cvdhdr_parse(s->hbuf, s->hlen, &h, e);
            if (rc != CF_OK)
                return rc;
        }
        if (n <= CF_HDR_SIZE)
            return cf_err_set(e, CF_EFORMAT, "truncated: %zu bytes, no body after the header", n);
        if (s->legacy) {
            rc = legacy_final(s, e);
            if (rc != CF_OK)
                return rc;
        }
    } else {
        if (n < CF_HDR_SIZE)
            return cf_err_set(e, CF_EFORMAT, "database of %zu bytes is shorter than its %d-byte header", n,
                              CF_HDR_SIZE);
        if (n == CF_HDR_SIZE)
            return cf_err_set(e, CF_EFORMAT, "database has no body after its header");
    }
    if (s->kind == B_UNKNOWN)
        body_decide(s, 1);
    if (s->gz_err.code != CF_OK)
        return report(&s->gz_err, e);
    if (s->kind == B_GZIP && cf_gzin_end(s->gz, &s->gz_err) != CF_OK) {
        cf_err_prefix(&s->gz_err, "body: ");
        return report(&s->gz_err, e);
    }
    if (s->tar_err.code != CF_OK)
        return report(&s->tar_err, e);
    rc = cf_tarin_end(s->tar, e);
    if (rc != CF_OK)
        return rc;
    return cf_mcheck_finish(s->mc, &s->hdr, s->ctx->trust->info, 0, e);
}

cf_code cf_dbscan_finish(cf_dbscan *s, cf_cvdhdr *hdr, cf_err *e)
{
    cf_code rc = s->fatal.code != CF_OK ? report(&s->fatal, e) : finish(s, e);
    if (rc != CF_OK && s->fatal.code == CF_OK && e != NULL)
        s->fatal = *e;
    if (hdr != NULL) {
        if (rc == CF_OK)
            *hdr = s->hdr;
        else
            memset(hdr, 0, sizeof(*hdr));
    }
    return rc;
}

const cf_info *cf_dbscan_manifest(const cf_dbscan *s)
{
    return s->fatal.code == CF_OK ? cf_mcheck_manifest(s->mc) : NULL;
}

void cf_dbscan_free(cf_dbscan *s)
{
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->md5);
    EVP_MD_CTX_free(s->sha);
    cf_gzin_free(s->gz);
    cf_tarin_free(s->tar);
    cf_mcheck_free(s->mc);
    cf_buf_free(&s->info);
    free(s);
}
