/* Key and signature texts: CV64 decoding (signatures in headers, .info DSIG
 * lines and cdiff trailers are CV64) with its encode round trip, and PEM
 * public keys (cvdtool and the key-override options read them). */
#include "fuzz.h"

#include "clamfresh/dsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_err e = {0};
    if (size >= 1 && size <= CF_SIG_MAX_CHARS) {
        cf_buf be = CF_BUF_INIT, text = CF_BUF_INIT, be2 = CF_BUF_INIT;
        if (cf_cv64_decode((const char *)data, size, &be, &e) == CF_OK) {
            CF_FUZZ_ASSERT(be.n == 0 || be.p[0] != 0); /* minimal */
            CF_FUZZ_ASSERT(cf_cv64_encode(be.p, be.n, &text, &e) == CF_OK);
            CF_FUZZ_ASSERT(cf_cv64_decode((const char *)text.p, text.n, &be2, &e) == CF_OK);
            CF_FUZZ_ASSERT(be.n == be2.n && (be.n == 0 || memcmp(be.p, be2.p, be.n) == 0));
        }
        cf_buf_free(&be);
        cf_buf_free(&text);
        cf_buf_free(&be2);
    }
    if (size <= CF_MAX_PEM_BYTES) {
        cf_rsakey *k = NULL;
        if (cf_rsakey_from_pem(data, size, &k, &e) == CF_OK) {
            CF_FUZZ_ASSERT(cf_rsakey_bits(k) >= 512 && cf_rsakey_bits(k) <= 16384);
            cf_rsakey_free(k);
        }
    }
    return 0;
}
