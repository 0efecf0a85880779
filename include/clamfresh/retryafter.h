/* The Retry-After header (RFC 9110 §10.2.3) as a bounded wait: a pure parser
 * the HTTP edge uses, and the cap every cool-down obeys (state.h). */
#ifndef CLAMFRESH_RETRYAFTER_H
#define CLAMFRESH_RETRYAFTER_H

#include <time.h>

#include "clamfresh/err.h"

/* No cool-down lasts longer: freshclam's own 403 cool-down. Retry-After of
 * years (or the year 9999) would otherwise silence every later run. */
#define CF_COOLDOWN_MAX (24 * 3600)

/* Pure: the value of a Retry-After header: delay-seconds (digits) or an
 * HTTP-date (IMF-fixdate, obsolete RFC 850 or asctime form, GMT), surrounding
 * blanks allowed. *seconds receives the wait from now, 0 for a date not after
 * now, at most CF_COOLDOWN_MAX (longer waits, however many digits, saturate
 * there). CF_EFORMAT when value is neither form (*seconds untouched); the
 * caller then uses the 4 h default. */
cf_code cf_retry_after_parse(const char *value, time_t now, long *seconds);

#endif
