/* The trust path (formats.md §8), kept short enough to audit in one sitting:
 *
 *   CVD:   .sign (valid → trusted; invalid → refused; unusable → legacy MD5 dsig,
 *          which FIPS limits refuse) → body → signed .info manifest.
 *   CLD:   body → signed .info manifest (a CLD has no container signature).
 *   cdiff: .sign (as above) → else the PSS trailer → script.
 *   patch: scripts applied to a copy → signed .info manifest → commit.
 *
 * Unlike freshclam, which leaves the manifest check to a later libclamav load,
 * every image that leaves this file has passed the manifest check. */
#include "clamfresh/verify.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/dsig.h"
#include "clamfresh/info.h"
#include "clamfresh/limits.h"

static cf_code md5_hex(const uint8_t *p, size_t n, char out[33], cf_err *e)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
        return cf_err_set(e, CF_EUNSUPP, "MD5 is not available (FIPS mode?)");
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return CF_OK;
}

/* The legacy container signature: MD5 of everything after the header,
 * compared with the header's md5 field, and the RSA dsig over it (§4.2). */
static cf_code verify_legacy(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const cf_cvdhdr *h,
                             cf_err *e)
{
    if (ctx->fips)
        return cf_err_set(e, CF_ESIG, "no valid .sign file, and FIPS limits forbid the MD5-based signature");
    if (strlen(h->dsig) <= 1)
        return cf_err_set(e, CF_ESIG, "the header carries no digital signature");
    char md5[33];
    cf_code rc = md5_hex(p + CF_HDR_SIZE, n - CF_HDR_SIZE, md5, e);
    if (rc != CF_OK)
        return rc;
    if (strlen(h->md5) == 32 && strcmp(h->md5, md5) != 0)
        return cf_err_set(e, CF_ESIG, "MD5 of the body is %s, the header says %s (file damaged)", md5,
                          h->md5);
    rc = cf_dsig_verify_md5(ctx->trust->cvd, md5, h->dsig, e);
    if (rc != CF_OK)
        cf_err_prefix(e, "digital signature: ");
    return rc;
}

/* Runs the .sign check when there is a .sign and a certificate store.
 * Returns CF_OK with *valid set when the .sign decided, CF_OK with *valid
 * clear when the caller must fall back, and an error when it is invalid. */
static cf_code check_signfile(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const uint8_t *sign,
                              size_t sign_len, int *valid, cf_err *e)
{
    *valid = 0;
    if (sign == NULL || ctx->certs == NULL)
        return CF_OK;
    cf_err se = {0};
    char signer[CF_SIGN_SIGNER_MAX];
    cf_signverdict v = cf_signfile_verify(ctx->certs, sign, sign_len, p, n, ctx->flevel, ctx->now, signer,
                                          sizeof(signer), &se);
    if (v == CF_SIGN_VALID) {
        *valid = 1;
        return CF_OK;
    }
    if (v == CF_SIGN_INVALID)
        return cf_err_set(e, CF_ESIG, "detached .sign signature is invalid: %s", se.msg);
    return CF_OK;
}

cf_code cf_verify_cvd(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const uint8_t *sign,
                      size_t sign_len, cf_image *img, cf_sigsource *how, cf_err *e)
{
    cf_image_init(img);
    if (how != NULL)
        *how = CF_SIGSRC_NONE;
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes exceeds the database size limit", n);
    cf_cvdhdr h;
    cf_code rc = cf_cvdhdr_parse(p, n, &h, e);
    if (rc != CF_OK)
        return rc;
    if (n <= CF_HDR_SIZE)
        return cf_err_set(e, CF_EFORMAT, "truncated: %zu bytes, no body after the header", n);
    int signed_ok = 0;
    rc = check_signfile(ctx, p, n, sign, sign_len, &signed_ok, e);
    if (rc != CF_OK)
        return rc;
    if (!signed_ok) {
        rc = verify_legacy(ctx, p, n, &h, e);
        if (rc != CF_OK)
            return rc;
    }
    rc = cf_cvd_read(p, n, img, e);
    if (rc == CF_OK)
        rc = cf_image_verify_manifest(img, &img->hdr, ctx->trust->info, 0, e);
    if (rc != CF_OK) {
        cf_image_free(img);
        return rc;
    }
    if (how != NULL)
        *how = signed_ok ? CF_SIGSRC_SIGNFILE : CF_SIGSRC_LEGACY;
    return CF_OK;
}

cf_code cf_verify_cld(const cf_verifyctx *ctx, const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    cf_image_init(img);
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes exceeds the database size limit", n);
    cf_code rc = cf_cvd_read(p, n, img, e);
    if (rc == CF_OK)
        rc = cf_image_verify_manifest(img, &img->hdr, ctx->trust->info, 0, e);
    if (rc != CF_OK)
        cf_image_free(img);
    return rc;
}

cf_code cf_verify_cdiff(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const uint8_t *sign,
                        size_t sign_len, cf_buf *script, uint32_t *version, cf_sigsource *how, cf_err *e)
{
    if (how != NULL)
        *how = CF_SIGSRC_NONE;
    if (n > CF_MAX_CDIFF_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes exceeds the cdiff size limit", n);
    int signed_ok = 0;
    cf_code rc = check_signfile(ctx, p, n, sign, sign_len, &signed_ok, e);
    if (rc != CF_OK)
        return rc;
    if (!signed_ok) {
        rc = cf_cdiff_verify(p, n, ctx->trust->cdiff, e);
        if (rc != CF_OK)
            return rc;
    }
    cf_cdiff d = CF_CDIFF_INIT;
    rc = cf_cdiff_parse(p, n, &d, e);
    if (rc == CF_OK) {
        rc = cf_buf_append(script, d.script.p, d.script.n);
        if (rc != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
        if (version != NULL)
            *version = d.version;
    }
    cf_cdiff_free(&d);
    if (rc == CF_OK && how != NULL)
        *how = signed_ok ? CF_SIGSRC_SIGNFILE : CF_SIGSRC_LEGACY;
    return rc;
}

/* After patching, the image header is whatever the patched .info says. */
static cf_code header_from_manifest(cf_image *img, cf_err *e)
{
    char db[CF_MAX_NAME + 1];
    if (!cf_image_dbname(img, db, sizeof(db)))
        return cf_err_set(e, CF_EFORMAT, "the patched database has no .info manifest");
    char name[CF_MAX_NAME + 8];
    snprintf(name, sizeof(name), "%s.info", db);
    const cf_dbfile *f = cf_image_get(img, name);
    if (f == NULL)
        return cf_err_set(e, CF_EFORMAT, "the patched database has no %s", name);
    cf_info info = CF_INFO_INIT;
    cf_code rc = cf_info_parse(f->data.p, f->data.n, &info, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s: ", name);
        return rc;
    }
    img->hdr = info.hdr;
    cf_info_free(&info);
    return CF_OK;
}

cf_code cf_verify_patched(const cf_verifyctx *ctx, cf_image *img, cf_err *e)
{
    cf_code rc = cf_image_verify_manifest(img, NULL, ctx->trust->info, 0, e);
    if (rc == CF_OK)
        rc = header_from_manifest(img, e);
    return rc;
}

cf_code cf_verify_apply(const cf_verifyctx *ctx, cf_image *img, const cf_buf *scripts, size_t nscripts,
                        cf_err *e)
{
    cf_image work;
    cf_code rc = cf_image_copy(&work, img, e);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < nscripts && rc == CF_OK; i++) {
        rc = cf_cdiff_apply(&work, scripts[i].p, scripts[i].n, e);
        if (rc != CF_OK)
            cf_err_prefix(e, "patch %zu of %zu: ", i + 1, nscripts);
    }
    if (rc == CF_OK)
        rc = cf_verify_patched(ctx, &work, e);
    if (rc != CF_OK) {
        cf_image_free(&work);
        return rc;
    }
    cf_image_free(img);
    *img = work;
    return CF_OK;
}
