/* CVD/CLD/CUD containers: the 512-byte header (formats.md §1) and the tar or
 * tar.gz body (§2, §3). Pure functions on bytes; no signature checks here. */
#ifndef CLAMFRESH_CVD_H
#define CLAMFRESH_CVD_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"
#include "clamfresh/limits.h"

/* Parses a container header. With n >= CF_HDR_SIZE the first 512 bytes are the
 * header: all printable, space padded, exactly 9 non-empty fields (§1.2);
 * version/sigs/flevel strict u32 decimal, stime strict u64 decimal, md5 32
 * lowercase hex or "X", dsig CV64 characters (or "X"), time/builder without ':'.
 * With n < CF_HDR_SIZE, p is taken as the first line of a .info file (as
 * cf_cvdhdr_parse_line, which also stops at the first '\n'); short input with
 * no '\n' that ends in a space is refused as a truncated padded header. */
cf_code cf_cvdhdr_parse(const uint8_t *p, size_t n, cf_cvdhdr *h, cf_err *e);

/* Parses a .info header line "ClamAV-VDB:time:ver:sigs:fl:md5:dsig:builder:stime"
 * (md5 and dsig usually "X"). Reads up to n bytes or the first '\n'; a
 * trailing '\r' before it is refused like any other control byte. */
cf_code cf_cvdhdr_parse_line(const char *line, size_t n, cf_cvdhdr *h, cf_err *e);

/* Writes the header padded with spaces to exactly CF_HDR_SIZE printable bytes
 * (no NUL terminator). Refuses fields that would not parse back identically. */
cf_code cf_cvdhdr_format(const cf_cvdhdr *h, char out[CF_HDR_SIZE], cf_err *e);

/* Appends "ClamAV-VDB:...:stime" to out, without padding or newline. */
cf_code cf_cvdhdr_format_line(const cf_cvdhdr *h, cf_buf *out, cf_err *e);

/* 1 when the 7 bytes at offset 512 are "COPYING", i.e. the body is a plain tar (§2.1). */
int cf_cvd_body_is_plain(const uint8_t *p, size_t n);

/* Parses a whole CVD/CLD/CUD: header into img->hdr, body (gzip or plain,
 * sniffed per §2.1) into members appended to img. No signature checks. */
cf_code cf_cvd_read(const uint8_t *p, size_t n, cf_image *img, cf_err *e);

/* Appends the container body for img to out: a tar with COPYING, <db>.info and
 * <db>.cfg first (those present), then the other members in image order;
 * gzip-compressed (one member, level 9, Z_FILTERED) when gzip is non-zero. */
cf_code cf_cvd_body_make(const cf_image *img, int gzip, cf_buf *out, cf_err *e);

/* Appends a CLD for img to out (§3): the header is the first line of <db>.info
 * padded with spaces (img->hdr is not used); COPYING must exist; the body is
 * cf_cvd_body_make(img, gzip). */
cf_code cf_cld_write(const cf_image *img, int gzip, cf_buf *out, cf_err *e);

/* Appends header h (md5 and dsig as the caller filled them) and body to out. */
cf_code cf_cvd_assemble(const cf_cvdhdr *h, const cf_buf *body, cf_buf *out, cf_err *e);

#endif
