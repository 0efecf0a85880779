/* cf_cvdhdr_parse / cf_cvdhdr_parse_line on arbitrary bytes, and the promise
 * of cf_cvdhdr_format: what it writes parses back to the same fields. */
#include "fuzz.h"

#include "clamfresh/cvd.h"

static void same_header(const cf_cvdhdr *a, const cf_cvdhdr *b)
{
    CF_FUZZ_ASSERT(strcmp(a->time, b->time) == 0);
    CF_FUZZ_ASSERT(a->version == b->version);
    CF_FUZZ_ASSERT(a->sigs == b->sigs);
    CF_FUZZ_ASSERT(a->flevel == b->flevel);
    CF_FUZZ_ASSERT(strcmp(a->md5, b->md5) == 0);
    CF_FUZZ_ASSERT(strcmp(a->dsig, b->dsig) == 0);
    CF_FUZZ_ASSERT(strcmp(a->builder, b->builder) == 0);
    CF_FUZZ_ASSERT(a->stime == b->stime);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_cvdhdr h, h2;
    cf_err e = {0};
    memset(&h, 0, sizeof h);
    if (cf_cvdhdr_parse(data, size, &h, &e) == CF_OK) {
        char out[CF_HDR_SIZE];
        if (cf_cvdhdr_format(&h, out, &e) == CF_OK) {
            memset(&h2, 0, sizeof h2);
            CF_FUZZ_ASSERT(cf_cvdhdr_parse((const uint8_t *)out, sizeof out, &h2, &e) == CF_OK);
            same_header(&h, &h2);
        }
        cf_buf line = CF_BUF_INIT;
        if (cf_cvdhdr_format_line(&h, &line, &e) == CF_OK) {
            memset(&h2, 0, sizeof h2);
            CF_FUZZ_ASSERT(cf_cvdhdr_parse_line((const char *)line.p, line.n, &h2, &e) == CF_OK);
            same_header(&h, &h2);
        }
        cf_buf_free(&line);
    }
    memset(&h, 0, sizeof h);
    (void)cf_cvdhdr_parse_line((const char *)data, size, &h, &e);
    (void)cf_cvd_body_is_plain(data, size);
    return 0;
}
