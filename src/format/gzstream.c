/* gzip as a stream (RFC 1952, one member): the pushing counterparts of
 * cf_gz_inflate and cf_gz_deflate, with their messages and bounds. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "clamfresh/dbstream.h"
#include "gzstream_priv.h"

#define GZ_BUF (1024 * 1024)

struct cf_gzin {
    z_stream zs;
    cf_sink out;
    uint64_t max_out, total_out;
    uint64_t fed;      /* compressed bytes fed so far */
    uint64_t trailing; /* bytes fed after the end of the member */
    uint64_t base;     /* added to offsets in messages (the container's header) */
    uint8_t magic[2];  /* the first two bytes, for the magic check */
    int ended;         /* Z_STREAM_END seen */
    cf_code failed;
    char failmsg[CF_ERR_MSG];
    uint8_t *buf;
};

/* A failed stage keeps its verdict: later calls repeat it. */
static cf_code gz_fail(cf_gzin *g, cf_err *e, cf_code rc)
{
    g->failed = rc;
    if (e != NULL)
        memcpy(g->failmsg, e->msg, sizeof(g->failmsg));
    else
        g->failmsg[0] = '\0';
    return rc;
}

static cf_code gz_again(const cf_gzin *g, cf_err *e)
{
    if (e != NULL) {
        e->code = g->failed;
        memcpy(e->msg, g->failmsg, sizeof(e->msg));
    }
    return g->failed;
}

cf_code cf_gzin_new(uint64_t max_out, const cf_sink *out, cf_gzin **g, cf_err *e)
{
    *g = NULL;
    if (out == NULL || out->write == NULL)
        return cf_err_set(e, CF_EINVAL, "gzip: no output sink");
    cf_gzin *z = calloc(1, sizeof(*z));
    if (z == NULL || (z->buf = malloc(GZ_BUF)) == NULL) {
        free(z);
        return cf_err_set(e, CF_ENOMEM, "out of memory setting up gzip decompression");
    }
    /* 16 + MAX_WBITS: gzip wrapper only, as cf_gz_inflate. */
    if (inflateInit2(&z->zs, 16 + MAX_WBITS) != Z_OK) {
        free(z->buf);
        free(z);
        return cf_err_set(e, CF_ENOMEM, "cannot initialise zlib");
    }
    z->out = *out;
    z->max_out = max_out;
    *g = z;
    return CF_OK;
}

void cf_gzin_set_base(cf_gzin *g, uint64_t base)
{
    g->base = base;
}

uint64_t cf_gzin_total_out(const cf_gzin *g)
{
    return g->total_out;
}

/* One slice of at most UINT_MAX bytes. */
static cf_code gzin_slice(cf_gzin *g, const uint8_t *p, uInt n, cf_err *e)
{
    z_stream *zs = &g->zs;
    zs->next_in = (Bytef *)p;
    zs->avail_in = n;
    do {
        /* One byte more than the bound allows, so crossing it is seen. */
        uint64_t room = GZ_BUF;
        if (room > g->max_out - g->total_out + 1)
            room = g->max_out - g->total_out + 1;
        zs->next_out = g->buf;
        zs->avail_out = (uInt)room;
        int zrc = inflate(zs, Z_NO_FLUSH);
        size_t got = (size_t)(room - zs->avail_out);
        if (g->total_out + got > g->max_out) {
            size_t ok = (size_t)(g->max_out - g->total_out);
            if (ok > 0) {
                cf_code rc = cf_sink_write(&g->out, g->buf, ok, e);
                if (rc != CF_OK)
                    return gz_fail(g, e, rc);
                g->total_out += ok;
            }
            return gz_fail(
                g, e, cf_err_set(e, CF_ETOOBIG, "decompressed data exceeds %zu bytes", (size_t)g->max_out));
        }
        if (got > 0) {
            cf_code rc = cf_sink_write(&g->out, g->buf, got, e);
            if (rc != CF_OK)
                return gz_fail(g, e, rc);
            g->total_out += got;
        }
        if (zrc == Z_STREAM_END) {
            g->ended = 1;
            g->trailing += zs->avail_in;
            return CF_OK;
        }
        if (zrc == Z_BUF_ERROR && zs->avail_in == 0)
            return CF_OK; /* wants more input */
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return gz_fail(g, e,
                           cf_err_set(e, CF_EFORMAT, "corrupt gzip data at byte %lu: %s", zs->total_in,
                                      zs->msg ? zs->msg : "inflate failed"));
    } while (zs->avail_in > 0 || zs->avail_out == 0);
    return CF_OK;
}

cf_code cf_gzin_feed(cf_gzin *g, const uint8_t *p, size_t n, cf_err *e)
{
    if (g->failed != CF_OK)
        return gz_again(g, e);
    for (size_t i = 0; i < n && g->fed + i < 2; i++)
        g->magic[g->fed + i] = p[i];
    uint64_t before = g->fed;
    g->fed += n;
    if ((before < 1 && n >= 1 && g->magic[0] != 0x1f) || (before < 2 && g->fed >= 2 && g->magic[1] != 0x8b))
        return gz_fail(g, e, cf_err_set(e, CF_EFORMAT, "not gzip data (bad magic)"));
    if (g->ended) {
        g->trailing += n;
        return CF_OK;
    }
    while (n > 0) {
        uInt k = n > UINT_MAX ? UINT_MAX : (uInt)n;
        cf_code rc = gzin_slice(g, p, k, e);
        if (rc != CF_OK)
            return rc;
        p += k;
        n -= k;
        if (g->ended) {
            g->trailing += n;
            break;
        }
    }
    return CF_OK;
}

cf_code cf_gzin_end(cf_gzin *g, cf_err *e)
{
    if (g->failed != CF_OK)
        return gz_again(g, e);
    if (g->fed < 2)
        return gz_fail(g, e, cf_err_set(e, CF_EFORMAT, "not gzip data (bad magic)"));
    if (!g->ended)
        return gz_fail(g, e,
                       cf_err_set(e, CF_EFORMAT, "truncated gzip data after %zu bytes", (size_t)g->fed));
    if (g->trailing > 0)
        return gz_fail(
            g, e,
            cf_err_set(e, CF_EFORMAT,
                       "%zu bytes after the gzip member at offset %zu (only one member is allowed)",
                       (size_t)g->trailing, (size_t)(g->base + g->fed - g->trailing)));
    return CF_OK;
}

void cf_gzin_free(cf_gzin *g)
{
    if (g == NULL)
        return;
    inflateEnd(&g->zs);
    free(g->buf);
    free(g);
}

/* ---- deflate ---- */

struct cf_gzout {
    z_stream zs;
    gz_header gh; /* zlib keeps a pointer to it until the header is out */
    cf_sink out;
    int finished;
    cf_code failed;
    char failmsg[CF_ERR_MSG];
    uint8_t *buf;
};

cf_code cf_gzout_new(int level, int filtered, const cf_sink *out, cf_gzout **g, cf_err *e)
{
    *g = NULL;
    if (out == NULL || out->write == NULL)
        return cf_err_set(e, CF_EINVAL, "gzip: no output sink");
    cf_gzout *z = calloc(1, sizeof(*z));
    if (z == NULL || (z->buf = malloc(GZ_BUF)) == NULL) {
        free(z);
        return cf_err_set(e, CF_ENOMEM, "out of memory setting up gzip compression");
    }
    if (deflateInit2(&z->zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     filtered ? Z_FILTERED : Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z->buf);
        free(z);
        return cf_err_set(e, CF_ENOMEM, "cannot initialise zlib");
    }
    /* cf_gz_deflate's header: no name, mtime 0, OS Unix (3). */
    z->gh.os = 3;
    deflateSetHeader(&z->zs, &z->gh);
    z->out = *out;
    *g = z;
    return CF_OK;
}

static cf_code gzout_run(cf_gzout *g, int flush, cf_err *e)
{
    z_stream *zs = &g->zs;
    int zrc;
    do {
        zs->next_out = g->buf;
        zs->avail_out = GZ_BUF;
        zrc = deflate(zs, flush);
        if (zrc == Z_STREAM_ERROR) {
            g->failed = cf_err_set(e, CF_EFORMAT, "zlib deflate failed");
            break;
        }
        size_t got = GZ_BUF - zs->avail_out;
        if (got > 0) {
            cf_code rc = cf_sink_write(&g->out, g->buf, got, e);
            if (rc != CF_OK) {
                g->failed = rc;
                break;
            }
        }
    } while (zs->avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    if (g->failed != CF_OK) {
        if (e != NULL)
            memcpy(g->failmsg, e->msg, sizeof(g->failmsg));
        return g->failed;
    }
    return CF_OK;
}

static cf_code gzout_again(const cf_gzout *g, cf_err *e)
{
    if (e != NULL) {
        e->code = g->failed;
        memcpy(e->msg, g->failmsg, sizeof(e->msg));
    }
    return g->failed;
}

cf_code cf_gzout_feed(cf_gzout *g, const uint8_t *p, size_t n, cf_err *e)
{
    if (g->failed != CF_OK)
        return gzout_again(g, e);
    if (g->finished)
        return cf_err_set(e, CF_EINVAL, "gzip: data after the end of the stream");
    while (n > 0) {
        uInt k = n > UINT_MAX ? UINT_MAX : (uInt)n;
        g->zs.next_in = (Bytef *)p;
        g->zs.avail_in = k;
        cf_code rc = gzout_run(g, Z_NO_FLUSH, e);
        if (rc != CF_OK)
            return rc;
        p += k;
        n -= k;
    }
    return CF_OK;
}

cf_code cf_gzout_end(cf_gzout *g, cf_err *e)
{
    if (g->failed != CF_OK)
        return gzout_again(g, e);
    if (g->finished)
        return CF_OK;
    g->zs.next_in = NULL;
    g->zs.avail_in = 0;
    cf_code rc = gzout_run(g, Z_FINISH, e);
    if (rc == CF_OK)
        g->finished = 1;
    return rc;
}

void cf_gzout_free(cf_gzout *g)
{
    if (g == NULL)
        return;
    deflateEnd(&g->zs);
    free(g->buf);
    free(g);
}
