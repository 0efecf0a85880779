/* A growable byte buffer that carries its own length. */
#ifndef CLAMFRESH_BUF_H
#define CLAMFRESH_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/err.h"

typedef struct cf_buf {
    uint8_t *p;
    size_t n;   /* bytes in use */
    size_t cap; /* bytes allocated */
} cf_buf;

#define CF_BUF_INIT                                                                                          \
    {                                                                                                        \
        NULL, 0, 0                                                                                           \
    }

/* Ensures room for `extra` more bytes. CF_ENOMEM on failure (or on overflow). */
cf_code cf_buf_reserve(cf_buf *b, size_t extra);
cf_code cf_buf_append(cf_buf *b, const void *data, size_t n);
cf_code cf_buf_append_str(cf_buf *b, const char *s);
cf_code cf_buf_printf(cf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replaces the contents with a copy of data. */
cf_code cf_buf_set(cf_buf *b, const void *data, size_t n);
/* Hands the storage to the caller (who frees it) and empties the buffer. */
uint8_t *cf_buf_steal(cf_buf *b, size_t *n);
void cf_buf_free(cf_buf *b);

#endif
