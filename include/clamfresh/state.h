/* freshclam.dat (behavior §5.5): UUID and CDN cool-down, shared byte-for-byte
 * with the real freshclam. Encoding and decoding are pure; load/save are the
 * only functions that touch the file. */
#ifndef CLAMFRESH_STATE_H
#define CLAMFRESH_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/err.h"
#include "clamfresh/retryafter.h"

#define CF_STATE_FILE "freshclam.dat"
#define CF_STATE_MAGIC "FreshClamData" /* 13 bytes, no NUL */
#define CF_STATE_VERSION 1u
#define CF_STATE_SIZE 90     /* the x86-64 struct dump */
#define CF_STATE_MIN_SIZE 69 /* the cf-ray block is optional on load */
#define CF_STATE_UUID_SIZE 37
#define CF_STATE_RAY_SIZE 21
#define CF_STATE_OFF_VERSION 13
#define CF_STATE_OFF_UUID 17
#define CF_STATE_OFF_PAD 54
#define CF_STATE_PAD_SIZE 7
#define CF_STATE_OFF_RETRY 61
#define CF_STATE_OFF_RAY 69

#define CF_COOLDOWN_403 (24 * 3600) /* seconds */
#define CF_COOLDOWN_429 (4 * 3600)  /* when the 429 has no usable Retry-After */
/* The longest cool-down clamfresh honours, whatever a Retry-After header or a
 * freshclam.dat (possibly written by freshclam, which has no cap, or under a
 * clock that was wrong) asks for: CF_COOLDOWN_MAX, in retryafter.h. */

typedef struct cf_state {
    char uuid[CF_STATE_UUID_SIZE];  /* 36 chars + NUL */
    uint8_t pad[CF_STATE_PAD_SIZE]; /* alignment bytes of the original struct, preserved */
    int64_t retry_after;            /* Unix seconds; 0 = no cool-down */
    char cf_ray[CF_STATE_RAY_SIZE]; /* last cf-ray id, "" if none */
} cf_state;

/* Pure: the 90 bytes freshclam writes on x86-64 (host byte order). */
void cf_state_encode(const cf_state *s, uint8_t out[CF_STATE_SIZE]);

/* Pure: magic must match, version must be 1, n >= 69 (cf-ray read when n >= 90).
 * CF_EFORMAT otherwise, with the reason. */
cf_code cf_state_decode(const uint8_t *p, size_t n, cf_state *s, cf_err *e);

/* A new state with a random version-4 UUID (OpenSSL RAND_bytes), no cool-down. */
cf_code cf_state_init_new(cf_state *s, cf_err *e);

/* Loads <dbdir>/freshclam.dat (read with cf_file_read_db's rules, at most
 * 4096 bytes). When it is missing or does not decode, a new state is created and
 * saved; *created (may be NULL) is set to 1 then, so the caller can log "Failed
 * to load freshclam.dat; will create a new freshclam.dat" (DEBUG). A stored
 * cool-down ending more than CF_COOLDOWN_MAX after the current time is shortened
 * to end then and saved (best effort), so it expires within a day. Temporaries
 * of an earlier save that was killed are removed. Fails (exit 2, freshclam's
 * init error) when freshclam.dat is a symbolic link, FIFO, directory or other
 * non-regular file (CF_EUNSUPP, "<dbdir>/freshclam.dat is a FIFO, not a regular
 * file") or when the new file cannot be written (CF_EIO, "Can't create
 * freshclam.dat in <dbdir>: <reason>"); e->msg is the whole sentence to log. */
cf_code cf_state_load(const char *dbdir, cf_state *s, int *created, cf_err *e);

/* Writes <dbdir>/freshclam.dat atomically with cf_file_replace_db (temporary
 * ".freshclam.dat.<random>.tmp", fsync, rename, fsync of dbdir), mode 0644 minus
 * umask. On failure: "Can't create freshclam.dat in <dbdir>: <reason>". */
cf_code cf_state_save(const char *dbdir, const cf_state *s, cf_err *e);

/* Cool-down transitions (§5.3). The caller saves the state afterwards. Every
 * end time is computed without overflow (it saturates at INT64_MAX for a now
 * at the end of time) and lies at most CF_COOLDOWN_MAX after now. */
void cf_state_block_403(cf_state *s, time_t now);
/* retry_after_secs <= 0 means absent (or "retry now", which a rate-limited
 * client should not take literally): now + 4 h. More than CF_COOLDOWN_MAX
 * counts as CF_COOLDOWN_MAX. */
void cf_state_block_429(cf_state *s, time_t now, long retry_after_secs);
void cf_state_set_ray(cf_state *s, const char *ray);

/* Shortens a cool-down that ends more than CF_COOLDOWN_MAX after now to end
 * exactly then. Returns 1 when it changed s (save it), else 0. */
int cf_state_cooldown_clamp(cf_state *s, time_t now);

typedef enum cf_cooldown {
    CF_COOLDOWN_NONE,    /* retry_after == 0 */
    CF_COOLDOWN_ACTIVE,  /* retry_after > now: contact no official mirror */
    CF_COOLDOWN_EXPIRED, /* was set and has passed: now cleared to 0; save it */
} cf_cooldown;

/* Applies cf_state_cooldown_clamp first, so an active cool-down never reaches
 * further than CF_COOLDOWN_MAX past now. */
cf_cooldown cf_state_cooldown_check(cf_state *s, time_t now);

/* Local time "YYYY-MM-DD HH:MM:SS". */
void cf_state_format_time(time_t t, char out[20]);

/* The §5.3 texts (no level prefix, no newline). Each returns a pointer to a
 * static string or fills out. */
#define CF_STATE_MSG_SIZE 128
/* "You are on cool-down until after: <time>" */
void cf_state_msg_on_cooldown(const cf_state *s, char out[CF_STATE_MSG_SIZE]);
/* "You are still on cool-down until after: <time>" */
void cf_state_msg_still_cooldown(const cf_state *s, char out[CF_STATE_MSG_SIZE]);
#define CF_STATE_MSG_EXPIRED "Cool-down expired, ok to try again."
#define CF_STATE_MSG_PREVIOUS                                                                                \
    "FreshClam previously received error code 429 or 403 from the ClamAV Content Delivery Network (CDN)."
#define CF_STATE_MSG_403 "FreshClam received error code 403 from the ClamAV Content Delivery Network (CDN)."
#define CF_STATE_MSG_429 "FreshClam received error code 429 from the ClamAV Content Delivery Network (CDN)."

/* Per-mirror memory, in DatabaseDirectory, of what a mirror does not publish,
 * so that a run does not ask it again for a day: versioned full files
 * (NAME-V.cvd answered 404) and the version pointer (NAME.version answered
 * 404), a PrivateMirror's NAME.cld (answered 404). Lines "<unix time> <mirror
 * url>" and "<unix time> <kind> <mirror url>" (kind "pointer" or "cld"). */
#define CF_MIRROR_STATE_FILE "clamfresh-mirrors.state"
#define CF_MIRROR_STATE_MAX (64 * 1024)
#define CF_MIRROR_LACK_RETRY (24 * 3600) /* ask a mirror again after a day */
#define CF_NOVERSIONED_RETRY CF_MIRROR_LACK_RETRY

typedef enum cf_mirror_lack {
    CF_MIRROR_LACKS_VERSIONED, /* NAME-V.cvd */
    CF_MIRROR_LACKS_POINTER,   /* NAME.version */
    CF_MIRROR_LACKS_CLD,       /* NAME.cld (a PrivateMirror that serves CVDs) */
} cf_mirror_lack;

/* Nonzero when dbdir's memory says mirror lacked kind less than a day before now. */
int cf_state_mirror_lacks(const char *dbdir, cf_mirror_lack kind, const char *mirror, time_t now);

/* Records (when != 0) or forgets (when == 0) that mirror lacks kind. */
cf_code cf_state_mirror_note(const char *dbdir, cf_mirror_lack kind, const char *mirror, time_t when,
                             cf_err *e);

#endif
