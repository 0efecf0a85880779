/* clamfresh-verified.state (cf_vrecord_parse): a file in the database
 * directory that anyone able to write there controls. Whatever it holds, every
 * entry kept is one the formatter could have written (names from the safe
 * alphabet, no name twice, at most CF_VRECORD_MAX_ENTRIES), and formatting
 * then parsing gives the same entries back. */
#include "fuzz.h"

#include "clamfresh/vrecord.h"

static int safe_name(const char *s)
{
    size_t n = strnlen(s, CF_VRECORD_MAX_NAME + 1);
    if (n == 0 || n > CF_VRECORD_MAX_NAME || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_vrecord r = CF_VRECORD_INIT;
    if (cf_vrecord_parse(data, size, &r) != CF_OK)
        return 0;
    CF_FUZZ_ASSERT(r.n <= CF_VRECORD_MAX_ENTRIES);
    for (size_t i = 0; i < r.n; i++) {
        CF_FUZZ_ASSERT(safe_name(r.v[i].name));
        CF_FUZZ_ASSERT(r.v[i].verified_at >= 0);
        CF_FUZZ_ASSERT(r.v[i].mtime_nsec >= 0 && r.v[i].mtime_nsec < 1000000000L);
        CF_FUZZ_ASSERT(r.v[i].ctime_nsec >= 0 && r.v[i].ctime_nsec < 1000000000L);
        for (size_t j = 0; j < i; j++)
            CF_FUZZ_ASSERT(strcmp(r.v[i].name, r.v[j].name) != 0);
    }
    cf_buf b = CF_BUF_INIT;
    if (cf_vrecord_format(&r, &b) == CF_OK) {
        cf_vrecord back = CF_VRECORD_INIT;
        if (cf_vrecord_parse(b.p, b.n, &back) == CF_OK) {
            CF_FUZZ_ASSERT(back.n == r.n);
            for (size_t i = 0; i < r.n; i++)
                CF_FUZZ_ASSERT(memcmp(&back.v[i], &r.v[i], sizeof r.v[i]) == 0);
        }
        cf_vrecord_free(&back);
    }
    cf_buf_free(&b);
    cf_vrecord_free(&r);
    return 0;
}
