/* The streaming scanner and tar reader against the in-memory path on the same
 * bytes: a CLD, a CVD by its dsig, a CVD with an accepted .sign, and the input
 * as a bare tar, each in two chunkings, must give the same code and message. */
#include "fuzz.h"

#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/dsig.h"
#include "clamfresh/tarball.h"
#include "clamfresh/verify.h"

static const cf_trust *trust(void)
{
    static cf_trust t;
    static int ready;
    if (!ready) {
        cf_err e = {0};
        if (cf_trust_init_builtin(&t, &e) != CF_OK) {
            fprintf(stderr, "built-in keys: %s\n", e.msg);
            abort();
        }
        ready = 1;
    }
    return &t;
}

static cf_code scan(const cf_verifyctx *c, int is_cvd, int sign_ok, const uint8_t *p, size_t n, size_t chunk,
                    cf_cvdhdr *h, cf_err *e)
{
    cf_dbscan *s = NULL;
    CF_FUZZ_ASSERT(cf_dbscan_new(c, is_cvd, sign_ok, &s, e) == CF_OK);
    cf_code rc = CF_OK;
    for (size_t off = 0; off < n && rc == CF_OK; off += chunk)
        rc = cf_dbscan_feed(s, p + off, n - off < chunk ? n - off : chunk, e);
    cf_err fe = {0};
    cf_code frc = cf_dbscan_finish(s, h, &fe);
    /* an early verdict is the final one */
    CF_FUZZ_ASSERT(rc == CF_OK || (frc == rc && strcmp(fe.msg, e->msg) == 0));
    *e = fe;
    cf_dbscan_free(s);
    return frc;
}

/* cf_verify_cvd when its .sign verified. */
static cf_code ref_signed(const cf_verifyctx *c, const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    cf_image_init(img);
    cf_cvdhdr h;
    cf_code rc = cf_cvdhdr_parse(p, n, &h, e);
    if (rc != CF_OK)
        return rc;
    if (n <= CF_HDR_SIZE)
        return cf_err_set(e, CF_EFORMAT, "truncated: %zu bytes, no body after the header", n);
    return cf_verify_cld(c, p, n, img, e);
}

static void same(const cf_verifyctx *c, int mode, const uint8_t *p, size_t n)
{
    cf_image img;
    cf_err re = {0};
    cf_code want = mode == 0   ? cf_verify_cld(c, p, n, &img, &re)
                   : mode == 1 ? cf_verify_cvd(c, p, n, NULL, 0, &img, NULL, &re)
                               : ref_signed(c, p, n, &img, &re);
    size_t chunks[2] = {n ? n : 1, 1 + n % 509};
    for (size_t i = 0; i < 2; i++) {
        cf_err se = {0};
        cf_cvdhdr h;
        cf_code got = scan(c, mode != 0, mode == 2, p, n, chunks[i], &h, &se);
        if (got != want || (want != CF_OK && strcmp(se.msg, re.msg) != 0)) {
            fprintf(stderr, "mode %d chunk %zu: in memory %d '%s', streamed %d '%s'\n", mode, chunks[i],
                    (int)want, re.msg, (int)got, se.msg);
            abort();
        }
        if (want == CF_OK)
            CF_FUZZ_ASSERT(memcmp(&h, &img.hdr, sizeof h) == 0);
    }
    cf_image_free(&img);
}

static cf_code t_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    (void)name;
    (void)e;
    *(uint64_t *)arg += size;
    return CF_OK;
}

static void same_tar(const uint8_t *p, size_t n)
{
    cf_image img;
    cf_image_init(&img);
    cf_err re = {0}, se = {0};
    cf_code want = cf_tar_read(p, n, &img, &re);
    uint64_t total = 0;
    cf_tarin_ops ops = {t_begin, NULL, NULL, &total};
    cf_tarin *t = NULL;
    CF_FUZZ_ASSERT(cf_tarin_new(&ops, &t, &se) == CF_OK);
    size_t chunk = 1 + n % 1021;
    cf_code got = CF_OK;
    for (size_t off = 0; off < n && got == CF_OK; off += chunk)
        got = cf_tarin_feed(t, p + off, n - off < chunk ? n - off : chunk, &se);
    if (got == CF_OK)
        got = cf_tarin_end(t, &se);
    if (got != want || (want != CF_OK && strcmp(se.msg, re.msg) != 0)) {
        fprintf(stderr, "tar: in memory %d '%s', streamed %d '%s'\n", (int)want, re.msg, (int)got, se.msg);
        abort();
    }
    if (want == CF_OK) {
        uint64_t sum = 0;
        for (size_t i = 0; i < img.nfiles; i++)
            sum += img.files[i].data.n;
        CF_FUZZ_ASSERT(sum == total);
    }
    cf_tarin_free(t);
    cf_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_verifyctx c = {.trust = trust(), .certs = NULL, .flevel = 230, .fips = 0, .now = 0};
    for (int mode = 0; mode < 3; mode++)
        same(&c, mode, data, size);
    same_tar(data, size);
    return 0;
}
