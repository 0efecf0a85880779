/* A whole CVD/CLD/CUD as a mirror could serve it: container parse (header,
 * gzip or plain tar body), then the manifest check with ClamAV's built-in
 * .info key, and the unsigned (CUD) variant. */
#include "fuzz.h"

#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
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
    cf_rsakey *key = info_key();
    cf_image img;
    cf_err e = {0};
    cf_image_init(&img);
    if (cf_cvd_read(data, size, &img, &e) == CF_OK) {
        (void)cf_image_verify_manifest(&img, &img.hdr, key, 0, &e);
        (void)cf_image_verify_manifest(&img, NULL, NULL, 1, &e);
        char db[128];
        (void)cf_image_dbname(&img, db, sizeof db);
    } else {
        /* Failure leaves no members behind. */
        CF_FUZZ_ASSERT(e.msg[0] != '\0');
    }
    cf_image_free(&img);
    return 0;
}
