/* cdiff script words (cdiff_syntax_priv.h). */
#include "cdiff_syntax_priv.h"

#include <string.h>

int cf_cdiff_name_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > CF_MAX_NAME)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_'))
            return 0;
    }
    return 1;
}

int cf_cdiff_next_word(const uint8_t **s, const uint8_t *end, const uint8_t **w, size_t *wn)
{
    if (*s > end)
        return 0;
    const uint8_t *sp = memchr(*s, ' ', (size_t)(end - *s));
    *w = *s;
    *wn = (size_t)((sp ? sp : end) - *s);
    *s = sp ? sp + 1 : end + 1;
    return 1;
}

cf_code cf_cdiff_lineno(const uint8_t *w, size_t n, size_t *out, cf_err *e)
{
    size_t v = 0;
    if (n == 0 || n > 19)
        return cf_err_set(e, CF_EFORMAT, "bad line number '%.*s'", (int)(n > 40 ? 40 : n), (const char *)w);
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return cf_err_set(e, CF_EFORMAT, "bad line number '%.*s'", (int)n, (const char *)w);
        v = v * 10 + (size_t)(w[i] - '0');
    }
    if (v == 0)
        return cf_err_set(e, CF_EFORMAT, "line number 0 (lines count from 1)");
    *out = v;
    return CF_OK;
}

cf_code cf_cdiff_take_name(const uint8_t *w, size_t n, const char *cmd, char out[CF_MAX_NAME + 1], cf_err *e)
{
    if (!cf_cdiff_name_ok(w, n))
        return cf_err_set(e, CF_EFORMAT,
                          "%s: invalid database name '%.*s' (allowed: letters, digits, '.', '_')", cmd,
                          (int)(n > 120 ? 120 : n), (const char *)w);
    memcpy(out, w, n);
    out[n] = '\0';
    return CF_OK;
}
