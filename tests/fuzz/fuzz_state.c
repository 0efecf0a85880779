/* freshclam.dat (cf_state_decode): a file in the database directory; what
 * decodes must encode to the same bytes it came from. */
#include "fuzz.h"

#include "clamfresh/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_state s;
    cf_err e = {0};
    memset(&s, 0, sizeof s);
    if (cf_state_decode(data, size, &s, &e) == CF_OK) {
        CF_FUZZ_ASSERT(size >= CF_STATE_MIN_SIZE);
        CF_FUZZ_ASSERT(memchr(s.uuid, '\0', sizeof s.uuid) != NULL);
        CF_FUZZ_ASSERT(memchr(s.cf_ray, '\0', sizeof s.cf_ray) != NULL);
        uint8_t out[CF_STATE_SIZE];
        cf_state_encode(&s, out);
        CF_FUZZ_ASSERT(memcmp(out, data, CF_STATE_OFF_VERSION) == 0);
    }
    return 0;
}
