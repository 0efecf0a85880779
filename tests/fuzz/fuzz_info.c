/* The .info manifest parser, and the DSIG check with ClamAV's built-in key
 * (which decodes attacker-chosen CV64 text). */
#include "fuzz.h"

#include "clamfresh/dsig.h"
#include "clamfresh/image.h"
#include "clamfresh/info.h"

static cf_rsakey *info_key(void)
{
    static cf_rsakey *key;
    if (!key) {
        cf_err e = {0};
        if (cf_rsakey_builtin(CF_KEY_INFO, &key, &e) != CF_OK) {
            fprintf(stderr, "built-in .info key: %s\n", e.msg);
            abort();
        }
    }
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_info info = CF_INFO_INIT;
    cf_err e = {0};
    if (cf_info_parse(data, size, &info, &e) == CF_OK) {
        CF_FUZZ_ASSERT(info.signed_len <= size);
        for (size_t i = 0; i < info.n; i++)
            CF_FUZZ_ASSERT(cf_name_ok(info.entries[i].name));
        cf_info_free(&info);
    } else {
        CF_FUZZ_ASSERT(info.n == 0 && info.entries == NULL && info.dsig == NULL);
    }
    cf_info out = CF_INFO_INIT;
    if (cf_info_verify(data, size, info_key(), &out, &e) == CF_OK)
        cf_info_free(&out);
    return 0;
}
