/* The database image: an in-memory database (header fields and an ordered list
 * of named files). A CVD or CLD is parsed into an image once, cdiffs edit the
 * image, and the image is serialized once into a CLD. */
#ifndef CLAMFRESH_IMAGE_H
#define CLAMFRESH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

/* The fields of a CVD/CLD/CUD header or of a .info first line (formats.md §1). */
typedef struct cf_cvdhdr {
    char time[64]; /* build-date text, e.g. "22 Jun 2021 14-58 -0400" */
    uint32_t version;
    uint32_t sigs;
    uint32_t flevel;
    char md5[33];   /* 32 lowercase hex, or "X" */
    char dsig[400]; /* CV64 legacy signature, or "X" */
    char builder[64];
    uint64_t stime; /* build time, Unix seconds */
} cf_cvdhdr;

typedef struct cf_dbfile {
    char *name; /* bare member name, validated: no '/', no "..", <= CF_MAX_NAME */
    cf_buf data;
} cf_dbfile;

typedef struct cf_image {
    cf_cvdhdr hdr; /* container header as read; rewritten from the .info on CLD write */
    cf_dbfile *files;
    size_t nfiles;
    size_t cap;
} cf_image;

#define CF_IMAGE_INIT                                                                                        \
    {                                                                                                        \
        {{0}, 0, 0, 0, {0}, {0}, {0}, 0}, NULL, 0, 0                                                         \
    }

void cf_image_init(cf_image *img);
void cf_image_free(cf_image *img);

/* A member name is acceptable when it is 1..CF_MAX_NAME bytes of printable ASCII
 * other than '/' and '\\', and is not "." or "..". */
int cf_name_ok(const char *name);

/* Index of the member called name, or -1. */
long cf_image_find(const cf_image *img, const char *name);
const cf_dbfile *cf_image_get(const cf_image *img, const char *name);

/* Adds a member or replaces the contents of an existing one (keeping its place). */
cf_code cf_image_put(cf_image *img, const char *name, const void *data, size_t n, cf_err *e);
/* Removes a member; CF_ENOTFOUND if absent. */
cf_code cf_image_remove(cf_image *img, const char *name, cf_err *e);
/* Deep copy. */
cf_code cf_image_copy(cf_image *dst, const cf_image *src, cf_err *e);

/* Database name of an image: the stem of its first member ending in ".info"
 * ("daily" for "daily.info"). Returns 0 and writes "" when there is none. */
int cf_image_dbname(const cf_image *img, char *out, size_t outsz);

#endif
