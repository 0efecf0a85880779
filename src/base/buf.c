#include "clamfresh/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cf_code cf_buf_reserve(cf_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->n)
        return CF_ENOMEM;
    size_t need = b->n + extra;
    if (need <= b->cap)
        return CF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return CF_ENOMEM;
    b->p = p;
    b->cap = cap;
    return CF_OK;
}

cf_code cf_buf_append(cf_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return CF_OK;
    cf_code rc = cf_buf_reserve(b, n);
    if (rc != CF_OK)
        return rc;
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return CF_OK;
}

cf_code cf_buf_append_str(cf_buf *b, const char *s)
{
    return cf_buf_append(b, s, strlen(s));
}

cf_code cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return CF_EINVAL;
    /* +1 for the terminator vsnprintf writes; it is not counted in n. */
    cf_code rc = cf_buf_reserve(b, (size_t)len + 1);
    if (rc != CF_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
    return CF_OK;
}

cf_code cf_buf_set(cf_buf *b, const void *data, size_t n)
{
    b->n = 0;
    return cf_buf_append(b, data, n);
}

uint8_t *cf_buf_steal(cf_buf *b, size_t *n)
{
    uint8_t *p = b->p;
    if (n != NULL)
        *n = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void cf_buf_free(cf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
