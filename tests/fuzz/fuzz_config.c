/* freshclam.conf from memory (cf_config_parse): the parser runs before
 * privileges are dropped, on a file another administrator may have written. */
#include "fuzz.h"

#include "clamfresh/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    cf_settings s;
    cf_err e = {0};
    cf_settings_init(&s);
    (void)cf_config_parse(&s, (const char *)data, size, "fuzz.conf", &e);
    cf_settings_free(&s);

    return 0;
}
