/* Writing .info manifests (formats.md §5): the lines sigtool writes, in its
 * order, signed with PSS. cvdtool's side of info.h; the updater only reads
 * and checks manifests (info.c). */
#include "clamfresh/info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/limits.h"

static cf_code sha256(const void *p, size_t n, uint8_t out[32], cf_err *e)
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    return CF_OK;
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static void hex32(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

/* sigtool's fixed extension order for <db>.<ext> members (§2.3). */
static const char *const build_order[] = {
    "cfg", "ign", "ign2", "ftm", "db",  "hdb", "hdu", "hsb", "hsu", "mdb", "mdu", "msb", "msu", "ndb", "ndu",
    "ldb", "ldu", "sdb",  "zmd", "rmd", "idb", "fp",  "sfp", "gdb", "pdb", "wdb", "crb", "cdb", "imp", NULL};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills order[] with the names to list; returns the count. order has room for nfiles. */
static size_t entry_order(const cf_image *img, const char *dbname, const char *iname, const char **order)
{
    size_t k = 0, nfiles = img->nfiles;
    char *used = calloc(nfiles ? nfiles : 1, 1);
    if (used == NULL)
        return (size_t)-1;
    for (size_t i = 0; i < nfiles; i++)
        if (strcmp(img->files[i].name, "COPYING") == 0 || strcmp(img->files[i].name, iname) == 0)
            used[i] = 1;
    char want[CF_MAX_NAME + 8];
    for (size_t x = 0; build_order[x] != NULL; x++) {
        snprintf(want, sizeof(want), "%s.%s", dbname, build_order[x]);
        long i = cf_image_find(img, want);
        if (i >= 0 && !used[i]) {
            used[i] = 1;
            order[k++] = img->files[i].name;
        }
    }
    size_t start = k;
    for (size_t i = 0; i < nfiles; i++)
        if (!used[i] && ends_with_ci(img->files[i].name, ".cbc")) {
            used[i] = 1;
            order[k++] = img->files[i].name;
        }
    qsort(order + start, k - start, sizeof(*order), cmp_name);
    long lh = cf_image_find(img, "last.hdb");
    if (lh >= 0 && !used[lh]) {
        used[lh] = 1;
        order[k++] = img->files[lh].name;
    }
    start = k;
    for (size_t i = 0; i < nfiles; i++)
        if (!used[i])
            order[k++] = img->files[i].name;
    qsort(order + start, k - start, sizeof(*order), cmp_name);
    free(used);
    return k;
}

cf_code cf_info_format(const cf_image *img, const char *dbname, const cf_cvdhdr *h, const cf_rsakey *key,
                       cf_buf *out, cf_err *e)
{
    if (img == NULL || dbname == NULL || h == NULL || out == NULL)
        return cf_err_set(e, CF_EINVAL, ".info build: missing argument");
    char iname[CF_MAX_NAME + 8];
    if (strlen(dbname) + 5 > CF_MAX_NAME)
        return cf_err_set(e, CF_EINVAL, ".info build: database name too long");
    snprintf(iname, sizeof(iname), "%s.info", dbname);
    if (!cf_name_ok(iname))
        return cf_err_set(e, CF_EINVAL, ".info build: invalid database name '%s'", dbname);
    for (size_t i = 0; i < img->nfiles; i++)
        if (ends_with_ci(img->files[i].name, ".info") && strcmp(img->files[i].name, iname) != 0)
            return cf_err_set(e, CF_EINVAL, "%s: the database already holds another manifest, %s", iname,
                              img->files[i].name);

    const char **order = malloc((img->nfiles ? img->nfiles : 1) * sizeof(*order));
    if (order == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    size_t k = entry_order(img, dbname, iname, order);
    if (k == (size_t)-1) {
        free(order);
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    }

    cf_buf text = CF_BUF_INIT, sig = CF_BUF_INIT;
    cf_cvdhdr hh = *h;
    strcpy(hh.md5, "X");
    strcpy(hh.dsig, "X");
    cf_code rc = cf_cvdhdr_format_line(&hh, &text, e);
    if (rc == CF_OK && cf_buf_append(&text, "\n", 1) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CF_OK && i < k; i++) {
        const cf_dbfile *f = cf_image_get(img, order[i]);
        uint8_t d[32];
        char hx[65];
        rc = sha256(f->data.p, f->data.n, d, e);
        if (rc != CF_OK)
            break;
        hex32(d, hx);
        /* Lines are short by construction: name <= 99, size <= 20 digits, hash 64. */
        if (cf_buf_printf(&text, "%s:%zu:%s\n", f->name, f->data.n, hx) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && key != NULL) {
        uint8_t d[32];
        rc = sha256(text.p, text.n, d, e);
        if (rc == CF_OK)
            rc = cf_pss_sign(key, d, &sig, e);
        if (rc == CF_OK && (cf_buf_append_str(&text, "DSIG:") != CF_OK ||
                            cf_buf_append_str(&text, (const char *)sig.p) != CF_OK ||
                            cf_buf_append(&text, "\n", 1) != CF_OK))
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && text.n > CF_MAX_INFO_BYTES)
        rc = cf_err_set(e, CF_ETOOBIG, "%s: %zu bytes, more than the %lu allowed", iname, text.n,
                        (unsigned long)CF_MAX_INFO_BYTES);
    if (rc == CF_OK && cf_buf_append(out, text.p, text.n) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    if (rc != CF_OK)
        cf_err_prefix(e, "%s: ", iname);
    free(order);
    cf_buf_free(&text);
    cf_buf_free(&sig);
    return rc;
}

cf_code cf_info_build(cf_image *img, const char *dbname, const cf_cvdhdr *h, const cf_rsakey *key, cf_err *e)
{
    cf_buf text = CF_BUF_INIT;
    cf_code rc = cf_info_format(img, dbname, h, key, &text, e);
    if (rc != CF_OK)
        return rc;
    char iname[CF_MAX_NAME + 8];
    snprintf(iname, sizeof(iname), "%s.info", dbname);
    int existed = cf_image_find(img, iname) >= 0;
    rc = cf_image_put(img, iname, text.p, text.n, e);
    cf_buf_free(&text);
    if (rc != CF_OK || existed)
        return rc;
    /* New manifest: move it from the end to right after COPYING (or to the front). */
    size_t to = (img->nfiles > 1 && strcmp(img->files[0].name, "COPYING") == 0) ? 1 : 0;
    size_t from = img->nfiles - 1;
    if (from > to) {
        cf_dbfile f = img->files[from];
        memmove(&img->files[to + 1], &img->files[to], (from - to) * sizeof(cf_dbfile));
        img->files[to] = f;
    }
    return CF_OK;
}
