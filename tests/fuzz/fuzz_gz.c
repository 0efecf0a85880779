/* The bounded gzip reader every database body and cdiff goes through. */
#include "fuzz.h"

#include "clamfresh/gz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_buf out = CF_BUF_INIT;
    cf_err e = {0};
    size_t used = 0;
    const size_t bound = 1024 * 1024;
    if (cf_gz_inflate(data, size, bound, &out, &used, &e) == CF_OK) {
        CF_FUZZ_ASSERT(out.n <= bound);
        CF_FUZZ_ASSERT(used <= size);
        CF_FUZZ_ASSERT(cf_gz_is_gzip(data, size));
    }
    cf_buf_free(&out);
    return 0;
}
