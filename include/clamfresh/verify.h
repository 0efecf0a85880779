/* The trust path in one place: how a CVD, a CLD and a cdiff become trusted
 * database images (formats.md §8, with the stricter manifest rules of §5.4/§6.7).
 * Pure: the caller supplies the bytes of the file and of its optional .sign. */
#ifndef CLAMFRESH_VERIFY_H
#define CLAMFRESH_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/err.h"
#include "clamfresh/image.h"

struct cf_trust;
struct cf_certstore;

typedef struct cf_verifyctx {
    const struct cf_trust *trust;     /* public keys for dsig, .info and cdiff (dsig.h) */
    const struct cf_certstore *certs; /* .sign trust anchors; NULL = no .sign checking */
    unsigned flevel;                  /* selects .sign lines (formats.md §7.2) */
    int fips;                         /* FIPSCryptoHashLimits: no MD5 fallback for CVDs */
    time_t now;                       /* certificate validity time; 0 = current time */
} cf_verifyctx;

/* How a container's signature was established, for messages. */
typedef enum cf_sigsource {
    CF_SIGSRC_NONE,
    CF_SIGSRC_SIGNFILE,
    CF_SIGSRC_LEGACY,
    CF_SIGSRC_MANIFEST
} cf_sigsource;

/* A CVD: the .sign file when usable (a failing one is fatal), else the MD5 + RSA dsig
 * (refused under fips); then the body is read into img and its .info manifest is
 * checked (DSIG, header agreement, every file's size and SHA-256, no unlisted file).
 * sign may be NULL. On failure img is left empty. */
cf_code cf_verify_cvd(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const uint8_t *sign,
                      size_t sign_len, cf_image *img, cf_sigsource *how, cf_err *e);

/* A CLD (or a CVD read without its container signature): body read into img, then
 * the manifest check above. This is the only proof a CLD carries. */
cf_code cf_verify_cld(const cf_verifyctx *ctx, const uint8_t *p, size_t n, cf_image *img, cf_err *e);

/* In the store layer (dbcheck.c): a CVD (is_cvd) or CLD on disk, open on fd
 * (read with pread from offset 0;
 * the descriptor's position is not used), verified without holding it in
 * memory: cf_verify_cvd's or cf_verify_cld's verdict, code and message for the
 * same bytes, through cf_dbscan. A CVD's usable .sign (sign may be NULL) is
 * checked first in a pass of its own; a failing one is fatal. *hdr (may be
 * NULL) receives the header on success and is zeroed otherwise; *how (may be
 * NULL) says what established trust (CF_SIGSRC_MANIFEST for a CLD). Reading
 * faults are CF_EIO. */
cf_code cf_verify_file(const cf_verifyctx *ctx, int fd, int is_cvd, const uint8_t *sign, size_t sign_len,
                       cf_cvdhdr *hdr, cf_sigsource *how, cf_err *e);

/* A cdiff: the .sign file when usable (a failing one is fatal), else the PSS trailer.
 * On success the decompressed script is stored in script (appended). */
cf_code cf_verify_cdiff(const cf_verifyctx *ctx, const uint8_t *p, size_t n, const uint8_t *sign,
                        size_t sign_len, cf_buf *script, uint32_t *version, cf_sigsource *how, cf_err *e);

/* Applies verified cdiff scripts to img in order, then re-checks the manifest, so a
 * patched image is as trustworthy as a signed CVD. img is unchanged on failure. */
cf_code cf_verify_apply(const cf_verifyctx *ctx, cf_image *img, const cf_buf *scripts, size_t nscripts,
                        cf_err *e);

/* For callers that apply scripts themselves (one cf_cdiff_apply per patch, each
 * atomic): the manifest check of a patched image, after which img->hdr is the
 * header line of the patched .info. Nothing patched may be used before this
 * succeeds. img is not modified on failure. */
cf_code cf_verify_patched(const cf_verifyctx *ctx, cf_image *img, cf_err *e);

#endif
