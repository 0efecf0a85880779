/* The remote layer: how the updater and mirror mode talk to a mirror. One place
 * decides what a response means, how a failure is worded, how a 403 or 429 is
 * answered, which names a database is asked for under, how patches are
 * batched, and how the current version of a database is learnt so that no web
 * cache can make it stale.
 *
 * ## Version discovery (cf_remote_discover)
 *
 * DNS (current.cvd.clamav.net, or a LAN resolver fed from a mirror's
 * current.txt) is never cached by a web proxy and is used as it is. Without it
 * (--no-dns, DNSDatabaseInfo no, PrivateMirror without DNSDatabaseInfo) the
 * header of the mutable NAME.cvd may come from a cache that kept an old copy.
 * So in the same round as the header probe the client asks two small things:
 *
 *   NAME.version?r=<per-run random>   the mirror's version pointer, sent with
 *                                     no-cache headers; the query string makes
 *                                     it a URL no cache has seen. Tiny.
 *   NAME-(L+1).cdiff                  the next patch after the local version L
 *                                     (an immutable name: any cache is right).
 *
 * The advertised version is the largest of the header, the pointer and, when
 * the next patch exists but neither says so, "as far as the patches reach"
 * (the header was stale). Only when the mirror publishes neither a pointer nor
 * the next patch are versioned full files looked for, with HEAD requests on
 * NAME-V.cvd (doubling, then bisecting; at most CF_REMOTE_SEARCH_MAX). A large
 * file's URL never gets a cache-busting query: on a miss a CDN would fetch the
 * whole object from its origin for every client.
 *
 * ## The version pointer (NAME.version)
 *
 * Published by mirror mode beside NAME.cvd: ASCII "V" or "V:T", an optional
 * final '\n', at most CF_REMOTE_POINTER_MAX bytes. V is the version of the
 * newest NAME-V.cvd the mirror publishes (decimal, < 2^32); T the Unix time of
 * the run that last confirmed it. Nothing else: it names a version, never a
 * path, and the file it leads to is verified like any other. */
#ifndef CLAMFRESH_REMOTE_H
#define CLAMFRESH_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/err.h"
#include "clamfresh/http.h"
#include "clamfresh/state.h"

typedef enum cf_msglevel {
    CF_MSG_DEBUG,
    CF_MSG_INFO,
    CF_MSG_WARN,
    CF_MSG_ERROR,
    CF_MSG_PROGRESS, /* terminal only, when progress output is wanted (§8.5) */
} cf_msglevel;

/* The outside world of the updater and mirror mode. fetch runs n requests, at
 * most k at once, filling resps[i] for reqs[i] like cf_http_get_many (resps
 * are initialised by the caller with cf_http_resp_init and freed by the
 * caller). testdb loads a written database file into an engine (§4.7); NULL =
 * no load test; its context is arg. */
typedef struct cf_update_env {
    void *arg;
    void (*fetch)(void *arg, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k);
    time_t (*now)(void *arg);
    void (*sleep)(void *arg, unsigned seconds);
    void (*log)(void *arg, cf_msglevel level, const char *msg);
    cf_code (*testdb)(void *arg, const char *path, cf_err *e);
} cf_update_env;

/* Bounds of an incremental update. The official mirrors keep about 90 days of
 * patches and daily gains one to three versions a day, so a gap wider than the
 * window cannot be patched anyway: the whole database is fetched without
 * asking for a single patch. A real cdiff is about 10 KiB; one of 4 MiB is
 * already 400 times that, and a chain whose scripts pass 64 MiB costs more
 * than the database it patches. Patches are requested a batch at a time and
 * used in order, so a missing one stops the chain after at most one batch. */
#define CF_PATCH_WINDOW 300
#define CF_PATCH_BATCH 32
#define CF_PATCH_MAX_BYTES (4UL * 1024 * 1024)
#define CF_CHAIN_MAX_BYTES (64UL * 1024 * 1024)

#define CF_REMOTE_URL_MAX 1200
#define CF_REMOTE_POINTER_EXT ".version"
#define CF_REMOTE_POINTER_MAX 64              /* bytes of a NAME.version file */
#define CF_REMOTE_SEARCH_MAX 16               /* HEAD requests of one versioned-file search */
#define CF_REMOTE_SEARCH_SPAN CF_PATCH_WINDOW /* versions a search looks ahead */

/* The headers that ask every cache on the way to revalidate (for the small
 * mutable names only: the probe, the pointer, the last-resort NAME.cvd). */
extern const char *const cf_remote_nocache[];

/* One conversation with the mirrors of a run. */
typedef struct cf_remote {
    const cf_update_env *env;
    const char *proxy_label; /* "host:port" of HTTPProxyServer for messages, or NULL */
    cf_state *state;         /* cool-down; may be NULL */
    int state_dirty;         /* state changed: the caller saves it */
    int forbidden;           /* a 403 was answered: the run ends with 17 */
    unsigned requests;       /* requests made (running total) */
    uint64_t bytes;          /* body bytes received (running total) */
    int saw_unreachable;     /* a response since the last reset met an unreachable host */
    char unreachable_why[256];
    char nonce[24]; /* the per-run query value of pointer requests */
} cf_remote;

void cf_remote_init(cf_remote *r, const cf_update_env *env, const char *proxy_label, cf_state *state);

void cf_remote_say(const cf_remote *r, cf_msglevel lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

time_t cf_remote_now(const cf_remote *r);

/* Runs n requests (at most k at once), counting them and noting unreachable
 * hosts. resps are initialised here; the caller frees them. */
void cf_remote_fetch(cf_remote *r, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k);

/* What a response means: the one classifier (cf_http_classify). */
cf_http_outcome cf_remote_kind(const cf_http_resp *resp);

/* freshclam's wording of a failed response (§5.2). fn is "remote_cvdhead" or
 * "downloadFile"; mirror is named instead of url where freshclam does. */
void cf_remote_say_failure(const cf_remote *r, cf_msglevel lvl, const cf_http_resp *resp, const char *fn,
                           const char *url, const char *mirror);

/* A short reason for "<url>: <reason>" lines (mirror mode, debug lines). */
void cf_remote_reason(const cf_http_resp *resp, char *out, size_t n);

/* The reaction to a 403 (24 h cool-down, help text; returns CF_FC_EFORBIDDEN)
 * and to a 429 (cool-down from Retry-After; returns CF_FC_ERETRYLATER). file
 * and url name what was refused; resp may be NULL. */
int cf_remote_forbidden(cf_remote *r, const char *file, const char *url, const cf_http_resp *resp);
int cf_remote_rate_limited(cf_remote *r, const cf_http_resp *resp);

/* The cool-down check of §5.3: 1 when no official mirror may be contacted
 * (messages logged), 0 otherwise (an expired cool-down is cleared). */
int cf_remote_cooldown_active(cf_remote *r);

/* "<mirror>/<file>" into a CF_REMOTE_URL_MAX buffer; 0, or -1 when too long. */
int cf_remote_url(char *out, const char *mirror, const char *file);

/* The cache-proof names of a whole database, in the order they are asked
 * for: step 0 "NAME-V.EXT" (immutable; EXT "cvd" only), 1 "NAME.EXT?version=V"
 * (one URL per version, so a cache keeps it apart from others), 2 "NAME.EXT"
 * with no-cache headers. Returns 0 with out and *headers set, -1 when the step
 * does not apply. */
#define CF_REMOTE_FULL_STEPS 3
int cf_remote_full_name(const char *db, const char *ext, uint32_t version, int step, char *out, size_t n,
                        const char *const **headers);

/* One batch of patches: NAME-v.cdiff for each of vers[0..n) (and its .sign
 * when with_sign), all requested at once, at most k in flight. resps has n
 * (or 2n with .sign: resps[2i] the cdiff, resps[2i+1] its .sign) entries,
 * freed by the caller. have_first: the first patch is already here (it came
 * with the version probe), so only its .sign is asked for; resps[0] is left
 * empty for the caller to fill. Returns 0, or -1 on a name or allocation
 * failure. */
int cf_remote_patch_batch(cf_remote *r, const char *mirror, const char *db, const uint32_t *vers, size_t n,
                          int with_sign, size_t max_bytes, unsigned k, int have_first, cf_http_resp *resps);

/* Reads a version pointer (format above). */
cf_code cf_remote_pointer_parse(const uint8_t *p, size_t n, uint32_t *version, time_t *when, cf_err *e);

/* The requests discovery adds to a header probe, run in the same round. */
typedef struct cf_discovery {
    uint32_t local;   /* L: the local version (0 = none) */
    int want_pointer; /* ask NAME.version */
    int want_next;    /* ask NAME-(L+1).cdiff (L > 0) */
    char pointer_url[CF_REMOTE_URL_MAX];
    char next_url[CF_REMOTE_URL_MAX];
    /* Results. */
    uint32_t pointer;    /* the pointer's version; 0 = none */
    int pointer_missing; /* the mirror publishes no pointer (a 404, now or remembered) */
    int pointer_asked;   /* and it was asked in this round */
    int next_exists;     /* NAME-(L+1).cdiff was served */
    cf_http_resp next;   /* its response (kept for the patch chain when it exists) */
    int blocked;         /* a 403/429 on one of them: the caller's probe decides */
} cf_discovery;

/* Prepares the extra requests for db at mirror; appends them to reqs (which
 * has room for 2) and returns how many were added. ask_pointer 0: the mirror
 * is known to publish no pointer (pointer_missing is set without asking). */
size_t cf_discovery_prepare(cf_remote *r, cf_discovery *d, const char *mirror, const char *db, uint32_t local,
                            int scripted, int ask_pointer, cf_http_req *reqs);

/* Reads the responses of the requests cf_discovery_prepare added (resps in
 * the same order). Takes ownership of the next patch's response. */
void cf_discovery_read(cf_remote *r, cf_discovery *d, const char *db, cf_http_resp *resps, size_t n);

void cf_discovery_free(cf_discovery *d);

/* The newest version V > from for which <mirror>/NAME-V.EXT exists (EXT "cvd"
 * or "cdiff"), found with HEAD requests (doubling, then bisecting: right for
 * a contiguous run of versions such as a patch window or kept full files), at
 * most CF_REMOTE_SEARCH_MAX of them and never beyond from +
 * CF_REMOTE_SEARCH_SPAN. 0 when NAME-(from+1).EXT is not there. A 403/429
 * ends the search (*code set to the reaction's code). */
uint32_t cf_remote_newest_versioned(cf_remote *r, const char *mirror, const char *db, const char *ext,
                                    uint32_t from, int *code);

#endif
