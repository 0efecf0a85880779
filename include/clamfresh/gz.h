/* gzip in memory (RFC 1952, one member), with output bounds. */
#ifndef CLAMFRESH_GZ_H
#define CLAMFRESH_GZ_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

/* Does the data start with the gzip magic 1f 8b? */
int cf_gz_is_gzip(const uint8_t *p, size_t n);

/* Inflates exactly one gzip member from p. Stops at the end of that member;
 * *consumed (optional) receives the compressed bytes used. Output beyond
 * max_out bytes fails with CF_ETOOBIG; a truncated or corrupt stream with
 * CF_EFORMAT. Appends to out. */
cf_code cf_gz_inflate(const uint8_t *p, size_t n, size_t max_out, cf_buf *out, size_t *consumed, cf_err *e);

/* Writes one gzip member (header: no name, mtime 0, OS Unix) for data.
 * level 0..9; filtered selects Z_FILTERED as ClamAV's writers do. Appends to out. */
cf_code cf_gz_deflate(const uint8_t *p, size_t n, int level, int filtered, cf_buf *out, cf_err *e);

#endif
