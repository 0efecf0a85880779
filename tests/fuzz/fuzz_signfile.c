/* A .sign file as a mirror could serve it, checked against an empty store:
 * the header, line, base64, DER and PKCS#7 parsing all run before trust is
 * consulted. */
#include "fuzz.h"

#include "clamfresh/codesign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cf_certstore *store;
    static const uint8_t signed_bytes[] = "ClamAV-VDB:22 Jun 2021 14-58 -0400:1:3:81:X:X:builder:1624388334";
    cf_err e = {0};
    if (!store && cf_certstore_new(&store, &e) != CF_OK) {
        fprintf(stderr, "certstore: %s\n", e.msg);
        abort();
    }
    const unsigned flevels[] = {0, 230, 231, 0xffffffffu};
    for (size_t i = 0; i < sizeof flevels / sizeof flevels[0]; i++) {
        char signer[CF_SIGN_SIGNER_MAX];
        cf_signverdict v = cf_signfile_verify(store, data, size, signed_bytes, sizeof signed_bytes - 1,
                                              flevels[i], 1700000000, signer, sizeof signer, &e);
        /* Nothing is trusted, so nothing may verify. */
        CF_FUZZ_ASSERT(v != CF_SIGN_VALID);
        CF_FUZZ_ASSERT(e.msg[0] != '\0');
    }
    return 0;
}
