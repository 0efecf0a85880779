/* A byte sink: where one stage of the data path hands its output to the next
 * (ARCHITECTURE "Bytes flow once"). A stage never learns what lies behind the
 * sink: a hash, a tar writer, a file or another filter. */
#ifndef CLAMFRESH_SINK_H
#define CLAMFRESH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/err.h"

typedef struct cf_sink {
    /* Takes n bytes (n may be 0). A failure stops the stream; its code and
     * message travel back to whoever fed the first stage. */
    cf_code (*write)(void *arg, const uint8_t *p, size_t n, cf_err *e);
    void *arg;
} cf_sink;

static inline cf_code cf_sink_write(const cf_sink *s, const void *p, size_t n, cf_err *e)
{
    return s->write(s->arg, (const uint8_t *)p, n, e);
}

#endif
