/* Retry-After (cf_retry_after_parse) as a server or proxy sends it, then the
 * cool-down it leads to: the first 8 bytes are the clock (any time_t), the rest
 * the header value. Whatever they are, the wait is within [0, CF_COOLDOWN_MAX]
 * and the cool-down ends no later than now + CF_COOLDOWN_MAX and not before now
 * (saturating at the end of time), without overflow (UBSan). */
#include "fuzz.h"

#include "clamfresh/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t now = 0;
    if (size >= sizeof now) {
        memcpy(&now, data, sizeof now);
        data += sizeof now;
        size -= sizeof now;
    }
    char *value = cf_fuzz_strndup(data, size);
    if (!value)
        return 0;
    long secs = -1;
    cf_code c = cf_retry_after_parse(value, (time_t)now, &secs);
    free(value);
    if (c != CF_OK) {
        CF_FUZZ_ASSERT(c == CF_EFORMAT && secs == -1);
        return 0;
    }
    CF_FUZZ_ASSERT(secs >= 0 && secs <= CF_COOLDOWN_MAX);
    cf_state s;
    memset(&s, 0, sizeof s);
    cf_state_block_429(&s, (time_t)now, secs);
    CF_FUZZ_ASSERT(s.retry_after >= now);
    CF_FUZZ_ASSERT(s.retry_after - now <= CF_COOLDOWN_MAX); /* no overflow: retry_after >= now */
    CF_FUZZ_ASSERT(s.retry_after == INT64_MAX || s.retry_after > now);
    /* The stored end, read back by a later run at the same clock, is not shortened. */
    CF_FUZZ_ASSERT(cf_state_cooldown_clamp(&s, (time_t)now) == 0);
    return 0;
}
