/* Building CVD and CLD containers (formats.md §2.1, §3): the tar body in
 * sigtool's member order, optionally gzip'd, behind a formatted header.
 * cvdtool's side of cvd.h; the updater only reads containers (cvd.c). */
#include "clamfresh/cvd.h"

#include <stdio.h>
#include <string.h>

#include "clamfresh/gz.h"
#include "clamfresh/tarball.h"

cf_code cf_cvd_body_make(const cf_image *img, int gzip, cf_buf *out, cf_err *e)
{
    if (!gzip && cf_image_find(img, "COPYING") < 0)
        return cf_err_set(e, CF_EINVAL, "an uncompressed body must start with COPYING, which is missing");
    char db[CF_MAX_NAME + 1];
    char info[CF_MAX_NAME + 8], cfg[CF_MAX_NAME + 8];
    const char *first[4] = {"COPYING", NULL, NULL, NULL};
    if (cf_image_dbname(img, db, sizeof(db))) {
        snprintf(info, sizeof(info), "%s.info", db);
        snprintf(cfg, sizeof(cfg), "%s.cfg", db);
        first[1] = info;
        first[2] = cfg;
    }
    if (!gzip)
        return cf_tar_write(img, first, out, e);
    cf_buf tar = CF_BUF_INIT;
    cf_code rc = cf_tar_write(img, first, &tar, e);
    if (rc == CF_OK)
        rc = cf_gz_deflate(tar.p, tar.n, 9, 1, out, e);
    cf_buf_free(&tar);
    return rc;
}

cf_code cf_cld_write(const cf_image *img, int gzip, cf_buf *out, cf_err *e)
{
    char db[CF_MAX_NAME + 1], info[CF_MAX_NAME + 8];
    if (!cf_image_dbname(img, db, sizeof(db)))
        return cf_err_set(e, CF_EINVAL, "CLD: the database has no .info file");
    snprintf(info, sizeof(info), "%s.info", db);
    if (cf_image_find(img, "COPYING") < 0)
        return cf_err_set(e, CF_EINVAL, "CLD: COPYING is missing (it must be the first member)");
    const cf_dbfile *f = cf_image_get(img, info);
    const uint8_t *nl = memchr(f->data.p, '\n', f->data.n < CF_HDR_SIZE ? f->data.n : CF_HDR_SIZE);
    if (nl == NULL)
        return cf_err_set(e, CF_EFORMAT, "CLD: %s has no line break in its first %d bytes", info,
                          CF_HDR_SIZE);
    size_t len = (size_t)(nl - f->data.p);
    cf_cvdhdr h;
    cf_code rc = cf_cvdhdr_parse_line((const char *)f->data.p, len, &h, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "CLD: %s line 1: ", info);
        return rc;
    }
    /* The header is the .info line itself, not a reformatting of it (§3.2). */
    char hdr[CF_HDR_SIZE];
    memset(hdr, ' ', sizeof(hdr));
    memcpy(hdr, f->data.p, len);
    size_t start = out->n;
    if (cf_buf_append(out, hdr, sizeof(hdr)) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory writing a CLD");
    rc = cf_cvd_body_make(img, gzip, out, e);
    if (rc != CF_OK)
        out->n = start;
    return rc;
}

cf_code cf_cvd_assemble(const cf_cvdhdr *h, const cf_buf *body, cf_buf *out, cf_err *e)
{
    char hdr[CF_HDR_SIZE];
    cf_code rc = cf_cvdhdr_format(h, hdr, e);
    if (rc != CF_OK)
        return rc;
    size_t start = out->n;
    if (cf_buf_append(out, hdr, sizeof(hdr)) != CF_OK || cf_buf_append(out, body->p, body->n) != CF_OK) {
        out->n = start;
        return cf_err_set(e, CF_ENOMEM, "out of memory assembling a CVD");
    }
    return CF_OK;
}
