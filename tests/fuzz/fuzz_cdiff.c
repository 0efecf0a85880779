/* A .cdiff as downloaded: container parse and the PSS trailer check with the
 * built-in key; and the same bytes taken as a script and applied to a small
 * fixed database image (apply is atomic: a failure leaves the image as it
 * was). */
#include "fuzz.h"

#include "clamfresh/cdiff.h"
#include "clamfresh/dsig.h"
#include "clamfresh/image.h"

static cf_rsakey *cdiff_key(void)
{
    static cf_rsakey *key;
    if (!key) {
        cf_err e = {0};
        if (cf_rsakey_builtin(CF_KEY_CDIFF, &key, &e) != CF_OK) {
            fprintf(stderr, "built-in cdiff key: %s\n", e.msg);
            abort();
        }
    }
    return key;
}

static void put(cf_image *img, const char *name, const char *text)
{
    cf_err e = {0};
    if (cf_image_put(img, name, text, strlen(text), &e) != CF_OK)
        abort();
}

static void make_image(cf_image *img)
{
    cf_image_init(img);
    put(img, "COPYING", "license text\n");
    /* Shaped like test-1.cvd's manifest, so the real test-2 script applies. */
    put(img, "test.info",
        "ClamAV-VDB:22 Jun 2021 14-58 -0400:1:0:81:X:X:micasnyd:1624388302\n"
        "test.ndb:240:0000000000000000000000000000000000000000000000000000000000000000\n"
        "test.ldb:44:1111111111111111111111111111111111111111111111111111111111111111\n"
        "DSIG:TFd9RBeu6wZwfMrWGsGH9WOSs1j\n");
    put(img, "test.hdb",
        "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
        "0123456789abcdef0123456789abcdef:10:Other\n"
        "fedcba9876543210fedcba9876543210:20:Third\n");
    put(img, "test.ndb", "Sig.One:0:*:414243\nSig.Two:0:*:444546\n");
    put(img, "test.cfg", "no final newline");
    put(img, "empty.ign2", "");
}

static int same_image(const cf_image *a, const cf_image *b)
{
    if (a->nfiles != b->nfiles)
        return 0;
    for (size_t i = 0; i < a->nfiles; i++)
        if (strcmp(a->files[i].name, b->files[i].name) != 0 || a->files[i].data.n != b->files[i].data.n ||
            (a->files[i].data.n && memcmp(a->files[i].data.p, b->files[i].data.p, a->files[i].data.n) != 0))
            return 0;
    return 1;
}

static void apply_checked(const uint8_t *script, size_t n)
{
    cf_image img, pristine;
    cf_err e = {0};
    make_image(&img);
    make_image(&pristine);
    if (cf_cdiff_apply(&img, script, n, &e) == CF_OK) {
        for (size_t i = 0; i < img.nfiles; i++)
            CF_FUZZ_ASSERT(cf_name_ok(img.files[i].name));
    } else {
        CF_FUZZ_ASSERT(same_image(&img, &pristine));
        CF_FUZZ_ASSERT(e.msg[0] != '\0');
    }
    cf_image_free(&img);
    cf_image_free(&pristine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_cdiff d = CF_CDIFF_INIT;
    cf_err e = {0};
    if (cf_cdiff_parse(data, size, &d, &e) == CF_OK) {
        CF_FUZZ_ASSERT(d.script.n == d.script_len);
        CF_FUZZ_ASSERT(d.signed_len < size && d.gz_off <= d.signed_len);
        if (d.script.n <= 1024 * 1024)
            apply_checked(d.script.p, d.script.n);
        cf_cdiff_free(&d);
    }
    (void)cf_cdiff_verify(data, size, cdiff_key(), &e);
    apply_checked(data, size);
    return 0;
}
