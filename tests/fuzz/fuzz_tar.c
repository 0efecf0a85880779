/* cf_tar_read on arbitrary bytes; an archive that reads is written again and
 * must read back to the same members (what cf_tar_write promises). */
#include "fuzz.h"

#include "clamfresh/image.h"
#include "clamfresh/tarball.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_image img, again;
    cf_err e = {0};
    cf_image_init(&img);
    cf_image_init(&again);
    if (cf_tar_read(data, size, &img, &e) == CF_OK) {
        cf_buf out = CF_BUF_INIT;
        CF_FUZZ_ASSERT(cf_tar_write(&img, NULL, &out, &e) == CF_OK);
        CF_FUZZ_ASSERT(cf_tar_read(out.p, out.n, &again, &e) == CF_OK);
        CF_FUZZ_ASSERT(again.nfiles == img.nfiles);
        for (size_t i = 0; i < img.nfiles; i++) {
            CF_FUZZ_ASSERT(cf_name_ok(img.files[i].name));
            CF_FUZZ_ASSERT(strcmp(img.files[i].name, again.files[i].name) == 0);
            CF_FUZZ_ASSERT(img.files[i].data.n == again.files[i].data.n);
            CF_FUZZ_ASSERT(img.files[i].data.n == 0 ||
                           memcmp(img.files[i].data.p, again.files[i].data.p, img.files[i].data.n) == 0);
        }
        cf_buf_free(&out);
    } else {
        CF_FUZZ_ASSERT(img.nfiles == 0); /* "on failure img is left as it was" */
    }
    cf_image_free(&img);
    cf_image_free(&again);
    return 0;
}
