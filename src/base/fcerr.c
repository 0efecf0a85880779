#include "clamfresh/fcerr.h"

#include <stddef.h>

const char *cf_fc_str(int code)
{
    static const char *const text[] = {
        "Success",
        "Up-to-date",
        "Failed to initialize",
        "Invalid, nonexistent, or inaccessible directory",
        "Invalid, nonexistent, or inaccessible file",
        "Connection failed",
        "Empty file",
        "Invalid or corrupted CVD/CLD database",
        "Test failed",
        "Invalid configuration settings(s)",
        "Failed to read/write file to database directory",
        "HTTP GET failed",
        "Downloaded database had lower version than advertised",
        "Failed to write to log",
        "Failed to update database",
        "Memory allocation error",
        "Invalid argument(s)",
        "Forbidden; Blocked by CDN",
        "Too many requests; Retry later",
        "Unexpected error",
    };
    if (code < 0 || (size_t)code >= sizeof text / sizeof text[0])
        return "Unknown error";
    return text[code];
}
