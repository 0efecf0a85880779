/* CV64, ClamAV's radix-64 integer text (formats.md §4.1): one non-negative
 * integer, 6 bits per character, least significant digit first. Worked on
 * bytes directly, so it needs no bignum library. */
#include "clamfresh/dsig.h"

#include <string.h>

static const char cv64_alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

static int cv64_digit(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Bit i (0 = least significant) of the big-endian magnitude be[0..n). */
static unsigned be_bit(const uint8_t *be, size_t n, size_t i)
{
    return (be[n - 1 - i / 8] >> (i % 8)) & 1u;
}

cf_code cf_cv64_encode(const uint8_t *be, size_t n, cf_buf *out, cf_err *e)
{
    if (out == NULL || (be == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "cv64 encode: missing argument");
    while (n > 0 && be[0] == 0) {
        be++;
        n--;
    }
    if (n > (SIZE_MAX - 16) / 8)
        return cf_err_set(e, CF_ETOOBIG, "cv64 encode: %zu bytes is too large", n);

    size_t bits = 0;
    if (n > 0) {
        unsigned top = be[0];
        unsigned topbits = 0;
        while (top != 0) {
            topbits++;
            top >>= 1;
        }
        bits = (n - 1) * 8 + topbits;
    }
    /* Zero has no digits in ClamAV's producer; we write one "a" so the text decodes. */
    size_t digits = bits == 0 ? 1 : (bits + 5) / 6;
    if (cf_buf_reserve(out, digits + 1) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "cv64 encode: out of memory");

    char *dst = (char *)out->p + out->n;
    for (size_t d = 0; d < digits; d++) {
        unsigned v = 0;
        for (unsigned b = 0; b < 6; b++) {
            size_t i = d * 6 + b;
            if (i < bits)
                v |= be_bit(be, n, i) << b;
        }
        dst[d] = cv64_alphabet[v];
    }
    dst[digits] = '\0';
    out->n += digits;
    return CF_OK;
}

cf_code cf_cv64_decode(const char *s, size_t len, cf_buf *be_out, cf_err *e)
{
    if (be_out == NULL || (s == NULL && len != 0))
        return cf_err_set(e, CF_EINVAL, "cv64 decode: missing argument");
    if (len == 0)
        return cf_err_set(e, CF_EFORMAT, "signature text is empty");
    if (len > CF_SIG_MAX_CHARS)
        return cf_err_set(e, CF_ETOOBIG, "signature text has %zu characters, more than %d", len,
                          CF_SIG_MAX_CHARS);

    size_t nbytes = (len * 6 + 7) / 8;
    uint8_t tmp[(CF_SIG_MAX_CHARS * 6 + 7) / 8];
    memset(tmp, 0, nbytes);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int v = cv64_digit(c);
        if (v < 0) {
            if (c >= 0x21 && c <= 0x7e)
                return cf_err_set(e, CF_EFORMAT,
                                  "signature text: character '%c' at offset %zu is not a CV64 digit", c, i);
            return cf_err_set(e, CF_EFORMAT, "signature text: byte 0x%02x at offset %zu is not a CV64 digit",
                              c, i);
        }
        for (unsigned b = 0; b < 6; b++) {
            if (((unsigned)v >> b) & 1u) {
                size_t bit = i * 6 + b;
                tmp[nbytes - 1 - bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
        }
    }
    size_t skip = 0;
    while (skip < nbytes && tmp[skip] == 0)
        skip++;
    be_out->n = 0;
    if (cf_buf_append(be_out, tmp + skip, nbytes - skip) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "cv64 decode: out of memory");
    return CF_OK;
}
