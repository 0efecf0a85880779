#include "clamfresh/image.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clamfresh/limits.h"

void cf_image_init(cf_image *img)
{
    memset(img, 0, sizeof(*img));
}

void cf_image_free(cf_image *img)
{
    for (size_t i = 0; i < img->nfiles; i++) {
        free(img->files[i].name);
        cf_buf_free(&img->files[i].data);
    }
    free(img->files);
    memset(img, 0, sizeof(*img));
}

int cf_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CF_MAX_NAME)
        return 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\')
            return 0;
    }
    return 1;
}

long cf_image_find(const cf_image *img, const char *name)
{
    for (size_t i = 0; i < img->nfiles; i++)
        if (strcmp(img->files[i].name, name) == 0)
            return (long)i;
    return -1;
}

const cf_dbfile *cf_image_get(const cf_image *img, const char *name)
{
    long i = cf_image_find(img, name);
    return i < 0 ? NULL : &img->files[i];
}

cf_code cf_image_put(cf_image *img, const char *name, const void *data, size_t n, cf_err *e)
{
    if (!cf_name_ok(name))
        return cf_err_set(e, CF_EFORMAT, "invalid database file name '%.120s'", name);
    long i = cf_image_find(img, name);
    if (i >= 0) {
        if (cf_buf_set(&img->files[i].data, data, n) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "out of memory storing %s", name);
        return CF_OK;
    }
    if (img->nfiles >= CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "more than %d files in one database", CF_MAX_MEMBERS);
    if (img->nfiles == img->cap) {
        size_t cap = img->cap ? img->cap * 2 : 16;
        cf_dbfile *f = realloc(img->files, cap * sizeof(*f));
        if (f == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        img->files = f;
        img->cap = cap;
    }
    cf_dbfile *f = &img->files[img->nfiles];
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    if (f->name == NULL || cf_buf_set(&f->data, data, n) != CF_OK) {
        free(f->name);
        cf_buf_free(&f->data);
        return cf_err_set(e, CF_ENOMEM, "out of memory storing %s", name);
    }
    img->nfiles++;
    return CF_OK;
}

cf_code cf_image_remove(cf_image *img, const char *name, cf_err *e)
{
    long i = cf_image_find(img, name);
    if (i < 0)
        return cf_err_set(e, CF_ENOTFOUND, "%s: no such file in the database", name);
    free(img->files[i].name);
    cf_buf_free(&img->files[i].data);
    memmove(&img->files[i], &img->files[i + 1], (img->nfiles - (size_t)i - 1) * sizeof(cf_dbfile));
    img->nfiles--;
    return CF_OK;
}

cf_code cf_image_copy(cf_image *dst, const cf_image *src, cf_err *e)
{
    cf_image_init(dst);
    dst->hdr = src->hdr;
    for (size_t i = 0; i < src->nfiles; i++) {
        cf_code rc = cf_image_put(dst, src->files[i].name, src->files[i].data.p, src->files[i].data.n, e);
        if (rc != CF_OK) {
            cf_image_free(dst);
            return rc;
        }
    }
    return CF_OK;
}

int cf_image_dbname(const cf_image *img, char *out, size_t outsz)
{
    for (size_t i = 0; i < img->nfiles; i++) {
        const char *nm = img->files[i].name;
        size_t n = strlen(nm);
        if (n > 5 && strcasecmp(nm + n - 5, ".info") == 0 && n - 5 < outsz) {
            memcpy(out, nm, n - 5);
            out[n - 5] = '\0';
            return 1;
        }
    }
    if (outsz > 0)
        out[0] = '\0';
    return 0;
}
