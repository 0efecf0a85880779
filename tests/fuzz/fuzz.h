/* Shared by the fuzz targets and the replay driver. Each target defines the
 * libFuzzer entry point below; a target that needs one-time set-up (keys)
 * does it lazily on the first call, so replay.c needs nothing else. */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code promises was broken: report and abort so the fuzzer
 * (or the replay driver) records the input as a crash. */
#define CF_FUZZ_ASSERT(cond)                                                                                 \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);                      \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* A NUL-terminated copy (for the text parsers), or NULL when out of memory. */
static inline char *cf_fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        if (size)
            memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
