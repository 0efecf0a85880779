#include "clamfresh/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

cf_code cf_err_set(cf_err *e, cf_code code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

void cf_err_prefix(cf_err *e, const char *fmt, ...)
{
    if (e == NULL)
        return;
    char head[CF_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Shift the old message right and put the context in front, truncating at the end. */
    size_t hn = (size_t)n < sizeof(e->msg) - 1 ? (size_t)n : sizeof(e->msg) - 1;
    size_t old = strnlen(e->msg, sizeof(e->msg) - 1);
    if (hn + old > sizeof(e->msg) - 1)
        old = sizeof(e->msg) - 1 - hn;
    memmove(e->msg + hn, e->msg, old);
    memcpy(e->msg, head, hn);
    e->msg[hn + old] = '\0';
}

void cf_err_clear(cf_err *e)
{
    if (e == NULL)
        return;
    e->code = CF_OK;
    e->msg[0] = '\0';
}

const char *cf_code_str(cf_code code)
{
    switch (code) {
    case CF_OK:
        return "success";
    case CF_EINVAL:
        return "invalid argument";
    case CF_EFORMAT:
        return "malformed input";
    case CF_ETOOBIG:
        return "input too large";
    case CF_ESIG:
        return "verification failed";
    case CF_ENOMEM:
        return "out of memory";
    case CF_EIO:
        return "I/O error";
    case CF_ENOTFOUND:
        return "not found";
    case CF_ENET:
        return "connection failed";
    case CF_EHTTP:
        return "unexpected HTTP response";
    case CF_EUNSUPP:
        return "unsupported";
    }
    return "unknown error";
}
