#include "clamfresh/gz.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

int cf_gz_is_gzip(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

cf_code cf_gz_inflate(const uint8_t *p, size_t n, size_t max_out, cf_buf *out, size_t *consumed, cf_err *e)
{
    if (!cf_gz_is_gzip(p, n))
        return cf_err_set(e, CF_EFORMAT, "not gzip data (bad magic)");
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip wrapper only, so a raw zlib stream is refused. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return cf_err_set(e, CF_ENOMEM, "cannot initialise zlib");
    size_t start = out->n;
    size_t in_off = 0;
    int zrc = Z_OK;
    cf_code rc = CF_OK;
    while (zrc != Z_STREAM_END) {
        if (zs.avail_in == 0) {
            size_t chunk = n - in_off;
            if (chunk > UINT_MAX)
                chunk = UINT_MAX;
            zs.next_in = (Bytef *)(p + in_off);
            zs.avail_in = (uInt)chunk;
            in_off += chunk;
        }
        if (cf_buf_reserve(out, 65536) != CF_OK) {
            rc = cf_err_set(e, CF_ENOMEM, "out of memory while decompressing");
            break;
        }
        size_t room = out->cap - out->n;
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs.next_out = out->p + out->n;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->n += room - zs.avail_out;
        if (out->n - start > max_out) {
            rc = cf_err_set(e, CF_ETOOBIG, "decompressed data exceeds %zu bytes", max_out);
            break;
        }
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0 && in_off >= n) {
            rc = cf_err_set(e, CF_EFORMAT, "truncated gzip data after %zu bytes", n);
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = cf_err_set(e, CF_EFORMAT, "corrupt gzip data at byte %lu: %s", zs.total_in,
                            zs.msg ? zs.msg : "inflate failed");
            break;
        }
    }
    if (rc == CF_OK && consumed != NULL)
        *consumed = (size_t)zs.total_in;
    inflateEnd(&zs);
    if (rc != CF_OK)
        out->n = start;
    return rc;
}

cf_code cf_gz_deflate(const uint8_t *p, size_t n, int level, int filtered, cf_buf *out, cf_err *e)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, filtered ? Z_FILTERED : Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return cf_err_set(e, CF_ENOMEM, "cannot initialise zlib");
    /* zlib's gzip header: no name, mtime 0; OS byte set to Unix (3) as ClamAV's gzopen does. */
    gz_header gh;
    memset(&gh, 0, sizeof(gh));
    gh.os = 3;
    deflateSetHeader(&zs, &gh);
    size_t start = out->n;
    size_t in_off = 0;
    int zrc;
    cf_code rc = CF_OK;
    do {
        size_t chunk = n - in_off;
        if (chunk > UINT_MAX)
            chunk = UINT_MAX;
        zs.next_in = (Bytef *)(p + in_off);
        zs.avail_in = (uInt)chunk;
        in_off += chunk;
        int flush = in_off >= n ? Z_FINISH : Z_NO_FLUSH;
        do {
            if (cf_buf_reserve(out, 65536) != CF_OK) {
                rc = cf_err_set(e, CF_ENOMEM, "out of memory while compressing");
                goto done;
            }
            size_t room = out->cap - out->n;
            if (room > UINT_MAX)
                room = UINT_MAX;
            zs.next_out = out->p + out->n;
            zs.avail_out = (uInt)room;
            zrc = deflate(&zs, flush);
            out->n += room - zs.avail_out;
            if (zrc == Z_STREAM_ERROR) {
                rc = cf_err_set(e, CF_EFORMAT, "zlib deflate failed");
                goto done;
            }
        } while (zs.avail_out == 0);
    } while (in_off < n);
    if (zrc != Z_STREAM_END)
        rc = cf_err_set(e, CF_EFORMAT, "zlib deflate did not finish");
done:
    deflateEnd(&zs);
    if (rc != CF_OK)
        out->n = start;
    return rc;
}
