/* CVD/CLD container: header (formats.md §1) and body sniffing (§2.1, §3);
 * assembly is the publish layer's (cvdbuild.c). */
#include "clamfresh/cvd.h"

#include <stdio.h>
#include <string.h>

#include "clamfresh/gz.h"
#include "clamfresh/tarball.h"

#define HDR_MAGIC "ClamAV-VDB"
#define NFIELDS 9

static const char *const g_field_names[NFIELDS] = {"magic", "time", "version", "sigs", "flevel",
                                                   "md5",   "dsig", "builder", "stime"};

static const char g_cv64[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

/* ---- field checks shared by parse and format ---- */

static int is_print(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* Strict unsigned decimal: digits only (no sign, no spaces), value <= max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int md5_ok(const char *s, size_t n)
{
    if (n == 1 && s[0] == 'X')
        return 1;
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* "X" is itself a CV64 digit, so the placeholder needs no special case. */
static int dsig_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(g_cv64, s[i]) == NULL)
            return 0;
    return 1;
}

/* Text fields (time, builder): printable, no ':'. */
static int text_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_print((unsigned char)s[i]) || s[i] == ':')
            return 0;
    return 1;
}

/* ---- parsing ---- */

/* Parses the header text s[0..n), already known to be printable. */
static cf_code parse_fields(const char *s, size_t n, cf_cvdhdr *out, cf_err *e)
{
    const char *f[NFIELDS];
    size_t fl[NFIELDS];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ':') {
            if (nf == NFIELDS)
                return cf_err_set(e, CF_EFORMAT, "CVD header: more than %d fields (extra ':' at offset %zu)",
                                  NFIELDS, start - 1);
            f[nf] = s + start;
            fl[nf] = i - start;
            nf++;
            start = i + 1;
        }
    }
    if (nf < 1 || fl[0] != strlen(HDR_MAGIC) || memcmp(f[0], HDR_MAGIC, fl[0]) != 0)
        return cf_err_set(e, CF_EFORMAT, "CVD header: bad magic (expected '%s:')", HDR_MAGIC);
    if (nf < NFIELDS)
        return cf_err_set(e, CF_EFORMAT,
                          "CVD header: only %zu fields, expected %d (field %zu (%s) is missing)", nf, NFIELDS,
                          nf + 1, g_field_names[nf]);
    for (size_t i = 0; i < NFIELDS; i++)
        if (fl[i] == 0)
            return cf_err_set(e, CF_EFORMAT, "CVD header: field %zu (%s) is empty", i + 1, g_field_names[i]);

    cf_cvdhdr h;
    memset(&h, 0, sizeof(h));
    if (fl[1] >= sizeof(h.time))
        return cf_err_set(e, CF_EFORMAT, "CVD header: field 2 (time) is longer than %zu bytes",
                          sizeof(h.time) - 1);
    memcpy(h.time, f[1], fl[1]);

    uint32_t *nums[3] = {&h.version, &h.sigs, &h.flevel};
    for (size_t i = 0; i < 3; i++) {
        uint64_t v = 0;
        int ok = parse_dec(f[2 + i], fl[2 + i], UINT32_MAX, &v);
        if (ok == 0)
            return cf_err_set(e, CF_EFORMAT, "CVD header: field %zu (%s) is not a decimal number: '%.*s'",
                              i + 3, g_field_names[2 + i], (int)(fl[2 + i] > 40 ? 40 : fl[2 + i]), f[2 + i]);
        if (ok < 0)
            return cf_err_set(e, CF_EFORMAT, "CVD header: field %zu (%s) exceeds %u", i + 3,
                              g_field_names[2 + i], UINT32_MAX);
        *nums[i] = (uint32_t)v;
    }

    if (!md5_ok(f[5], fl[5]))
        return cf_err_set(e, CF_EFORMAT,
                          "CVD header: field 6 (md5) is neither 32 lowercase hex digits nor 'X'");
    memcpy(h.md5, f[5], fl[5]);

    if (fl[6] >= sizeof(h.dsig))
        return cf_err_set(e, CF_EFORMAT, "CVD header: field 7 (dsig) is longer than %zu bytes",
                          sizeof(h.dsig) - 1);
    if (!dsig_ok(f[6], fl[6]))
        return cf_err_set(e, CF_EFORMAT,
                          "CVD header: field 7 (dsig) has characters outside the signature alphabet");
    memcpy(h.dsig, f[6], fl[6]);

    if (fl[7] >= sizeof(h.builder))
        return cf_err_set(e, CF_EFORMAT, "CVD header: field 8 (builder) is longer than %zu bytes",
                          sizeof(h.builder) - 1);
    memcpy(h.builder, f[7], fl[7]);

    uint64_t st = 0;
    int ok = parse_dec(f[8], fl[8], UINT64_MAX, &st);
    if (ok == 0)
        return cf_err_set(e, CF_EFORMAT, "CVD header: field 9 (stime) is not a decimal number: '%.*s'",
                          (int)(fl[8] > 40 ? 40 : fl[8]), f[8]);
    if (ok < 0)
        return cf_err_set(e, CF_EFORMAT, "CVD header: field 9 (stime) exceeds 64 bits");
    h.stime = st;

    *out = h;
    return CF_OK;
}

static cf_code check_printable(const char *s, size_t n, cf_err *e)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_print(c))
            continue;
        if (c == 0)
            return cf_err_set(e, CF_EFORMAT, "CVD header: NUL byte at offset %zu (padding must be spaces)",
                              i);
        if (c == '\n' || c == '\r')
            return cf_err_set(e, CF_EFORMAT, "CVD header: line break at offset %zu (the header is one line)",
                              i);
        return cf_err_set(e, CF_EFORMAT, "CVD header: non-printable byte 0x%02x at offset %zu", c, i);
    }
    return CF_OK;
}

cf_code cf_cvdhdr_parse_line(const char *line, size_t n, cf_cvdhdr *h, cf_err *e)
{
    const char *nl = memchr(line, '\n', n);
    if (nl != NULL)
        n = (size_t)(nl - line);
    if (n >= CF_HDR_SIZE)
        return cf_err_set(e, CF_EFORMAT, "CVD header: line of %zu bytes does not fit in %d", n, CF_HDR_SIZE);
    cf_code rc = check_printable(line, n, e);
    if (rc != CF_OK)
        return rc;
    return parse_fields(line, n, h, e);
}

cf_code cf_cvdhdr_parse(const uint8_t *p, size_t n, cf_cvdhdr *h, cf_err *e)
{
    const char *s = (const char *)p;
    if (n < CF_HDR_SIZE) {
        /* A padded header cut short is a truncated file, not a .info line. */
        if (memchr(s, '\n', n) == NULL && n > 0 && s[n - 1] == ' ')
            return cf_err_set(e, CF_EFORMAT, "CVD header: truncated (%zu of %d bytes)", n, CF_HDR_SIZE);
        return cf_cvdhdr_parse_line(s, n, h, e);
    }
    /* freshclam's remote check wants all 512 bytes printable; 1.5's parser wants space padding. */
    cf_code rc = check_printable(s, CF_HDR_SIZE, e);
    if (rc != CF_OK)
        return rc;
    size_t len = CF_HDR_SIZE;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    return parse_fields(s, len, h, e);
}

/* ---- formatting ---- */

static cf_code check_for_format(const cf_cvdhdr *h, cf_err *e)
{
    size_t tl = strnlen(h->time, sizeof(h->time));
    if (tl == sizeof(h->time) || !text_ok(h->time, tl))
        return cf_err_set(e, CF_EINVAL, "CVD header: time '%.63s' must be 1..63 printable bytes without ':'",
                          h->time);
    size_t bl = strnlen(h->builder, sizeof(h->builder));
    if (bl == sizeof(h->builder) || !text_ok(h->builder, bl))
        return cf_err_set(e, CF_EINVAL,
                          "CVD header: builder '%.63s' must be 1..63 printable bytes without ':'",
                          h->builder);
    size_t ml = strnlen(h->md5, sizeof(h->md5));
    if (!md5_ok(h->md5, ml))
        return cf_err_set(e, CF_EINVAL, "CVD header: md5 must be 32 lowercase hex digits or 'X'");
    size_t dl = strnlen(h->dsig, sizeof(h->dsig));
    if (dl == sizeof(h->dsig) || !dsig_ok(h->dsig, dl))
        return cf_err_set(e, CF_EINVAL, "CVD header: dsig must be signature-alphabet characters or 'X'");
    return CF_OK;
}

cf_code cf_cvdhdr_format_line(const cf_cvdhdr *h, cf_buf *out, cf_err *e)
{
    cf_code rc = check_for_format(h, e);
    if (rc != CF_OK)
        return rc;
    size_t start = out->n;
    if (cf_buf_printf(out, "%s:%s:%u:%u:%u:%s:%s:%s:%llu", HDR_MAGIC, h->time, (unsigned)h->version,
                      (unsigned)h->sigs, (unsigned)h->flevel, h->md5, h->dsig, h->builder,
                      (unsigned long long)h->stime) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory formatting a CVD header");
    if (out->n - start > CF_HDR_SIZE) {
        size_t len = out->n - start;
        out->n = start;
        return cf_err_set(e, CF_EINVAL, "CVD header: %zu bytes do not fit in %d", len, CF_HDR_SIZE);
    }
    return CF_OK;
}

cf_code cf_cvdhdr_format(const cf_cvdhdr *h, char out[CF_HDR_SIZE], cf_err *e)
{
    cf_buf line = CF_BUF_INIT;
    cf_code rc = cf_cvdhdr_format_line(h, &line, e);
    if (rc == CF_OK) {
        memset(out, ' ', CF_HDR_SIZE);
        memcpy(out, line.p, line.n);
    }
    cf_buf_free(&line);
    return rc;
}

/* ---- containers ---- */

int cf_cvd_body_is_plain(const uint8_t *p, size_t n)
{
    return n >= CF_HDR_SIZE + 7 && memcmp(p + CF_HDR_SIZE, "COPYING", 7) == 0;
}

cf_code cf_cvd_read(const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "database of %zu bytes exceeds %lu", n, CF_MAX_DB_BYTES);
    if (n < CF_HDR_SIZE)
        return cf_err_set(e, CF_EFORMAT, "database of %zu bytes is shorter than its %d-byte header", n,
                          CF_HDR_SIZE);
    cf_cvdhdr h;
    cf_code rc = cf_cvdhdr_parse(p, CF_HDR_SIZE, &h, e);
    if (rc != CF_OK)
        return rc;
    const uint8_t *body = p + CF_HDR_SIZE;
    size_t bn = n - CF_HDR_SIZE;
    if (bn == 0)
        return cf_err_set(e, CF_EFORMAT, "database has no body after its header");

    if (cf_cvd_body_is_plain(p, n)) {
        rc = cf_tar_read(body, bn, img, e);
    } else {
        if (!cf_gz_is_gzip(body, bn))
            return cf_err_set(e, CF_EFORMAT,
                              "body at offset %d is neither gzip nor a tar starting with COPYING",
                              CF_HDR_SIZE);
        cf_buf tar = CF_BUF_INIT;
        size_t used = 0;
        rc = cf_gz_inflate(body, bn, CF_MAX_DB_BYTES, &tar, &used, e);
        if (rc == CF_OK && used != bn)
            rc = cf_err_set(e, CF_EFORMAT,
                            "%zu bytes after the gzip member at offset %zu (only one member is allowed)",
                            bn - used, CF_HDR_SIZE + used);
        if (rc != CF_OK)
            cf_err_prefix(e, "body: ");
        else
            rc = cf_tar_read(tar.p, tar.n, img, e);
        cf_buf_free(&tar);
    }
    if (rc == CF_OK)
        img->hdr = h;
    return rc;
}
