/* The update policy (freshclam-behavior.md §4.2-§4.9, §5.2, §5.3): for each
 * database, decide between "up to date", "patch L -> V with cdiffs" and "fetch
 * the whole database V under a cache-proof name", apply freshclam's retry,
 * fallback and partial-update rules, and install through install.h.
 *
 * The updater never talks to the network, the clock or the terminal itself: it
 * goes through cf_update_env (by way of the remote layer, remote.h), so tests
 * drive every branch with an in-memory mirror; and it touches files only
 * through the store (stage.h, install.h, vrecord.h, state.h). Mechanisms
 * (verification, containers, install) are the modules'. */
#ifndef CLAMFRESH_UPDATER_H
#define CLAMFRESH_UPDATER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/err.h"
#include "clamfresh/fcerr.h"
#include "clamfresh/http.h"
#include "clamfresh/image.h"
#include "clamfresh/remote.h"
#include "clamfresh/state.h"
#include "clamfresh/verify.h"

typedef struct cf_update_opts {
    const char *dbdir;          /* DatabaseDirectory (holds the lock) */
    const char *tmpdir;         /* private directory for files awaiting the load test */
    const char *const *mirrors; /* normalised mirror URLs, in order */
    size_t nmirrors;
    int private_mirror;         /* §4.8 */
    unsigned max_attempts;      /* MaxAttempts per mirror (0 skips everything, §3.2) */
    int scripted;               /* ScriptedUpdates (cdiffs) */
    int compress_cld;           /* CompressLocalDatabase */
    unsigned concurrency;       /* ConcurrentDownloads for cdiffs (>= 1) */
    unsigned retry_delay;       /* seconds between attempts (5) */
    int strict_exit_codes;      /* 12 for not-synced, 18 for 429, instead of 0 */
    unsigned engine_flevel;     /* for the OUTDATED f-level warning; 0 = no warning */
    const cf_verifyctx *verify; /* the trust path */
    const char *proxy_label;    /* "host:port" of HTTPProxyServer for messages, or NULL */
    cf_state *state;            /* cool-down; may be NULL. The caller saves it when
                                 * cf_updater.state_dirty is set. */
} cf_update_opts;

#define CF_UPDATER_MAX_MIRRORS 32

/* What one database's update did, for machine-readable reports (--json,
 * --metrics). Filled by cf_updater_db; how is one of "cdiffs", "NAME-V.cvd",
 * "NAME.cvd?version=V", "NAME.cvd", "up-to-date" or "" (nothing installed). */
#define CF_UPDATER_MAX_REPORTS 64
typedef struct cf_dbreport {
    char db[64];
    uint32_t before;     /* local version at the start; 0 = none */
    uint32_t after;      /* local version at the end; 0 = none */
    uint32_t advertised; /* the version the run aimed at (DNS or probe); 0 = unknown */
    char how[32];
    uint64_t bytes;    /* body bytes received for this database */
    unsigned requests; /* HTTP requests made for it */
    double seconds;    /* wall time spent on it */
    int outcome;       /* cf_fc code returned for it */
} cf_dbreport;

typedef struct cf_updater {
    cf_update_opts o;
    cf_update_env env;
    unsigned replaced; /* databases replaced on disk in this run (official + custom) */
    int state_dirty;   /* o.state changed (403/429/expired cool-down): save it */
    int tmp_ready;     /* o.tmpdir exists: made at the first file staged, so an
                        * up-to-date run creates (and syncs away) nothing */
    int forbidden;     /* a 403 was received: the run must end with 17 */
    cf_remote net;     /* the conversation with the mirrors */
    /* Mirrors whose host could not be resolved or whose network was
     * unreachable twice: not tried again in this run. */
    unsigned char unreachable[CF_UPDATER_MAX_MIRRORS];
    cf_dbreport reports[CF_UPDATER_MAX_REPORTS]; /* one per cf_updater_db call, in order */
    size_t nreports;
    cf_dbreport *cur; /* the report being filled, or NULL */
} cf_updater;

void cf_updater_init(cf_updater *u, const cf_update_opts *o, const cf_update_env *env);

/* Updates one official database. remote_version: from DNS, 0 = ask the mirror
 * (HTTP Range probe). Returns a cf_fc code: 0 for success, up to date, 429 and
 * every case freshclam counts as success; otherwise the failure that ends the
 * run (§2: stop at the first failing database). */
int cf_updater_db(cf_updater *u, const char *db, uint32_t remote_version);

/* Updates one DatabaseCustomURL (§4.9), file:// included. Returns a cf_fc code. */
int cf_updater_custom(cf_updater *u, const char *url);

/* The cool-down check of §5.3, at the start of the official phase: returns 1 when
 * no official mirror may be contacted (messages logged), 0 otherwise (an expired
 * cool-down is cleared and state_dirty set). */
int cf_updater_cooldown_active(cf_updater *u);

/* Steps 9 and 10 of §4.0: the cool-down check, every database in order (stop at
 * the first failure), then every custom URL. versions[i] is the DNS version of
 * dbs[i] (0 = probe). Returns the cf_fc code of the run. */
int cf_updater_run(cf_updater *u, const char *const *dbs, const uint32_t *versions, size_t ndbs,
                   const char *const *urls, size_t nurls);

/* The advertised version of db for --check-only: the same header probe a run
 * makes when DNS gives no version, mirror after mirror, downloading and
 * installing nothing. A "not modified since the local copy" answer counts as
 * the local version. Returns 0 with *version set, or the cf_fc code of the
 * last failure (*version 0). With o.state NULL, a 403/429 changes no state. */
int cf_updater_probe(cf_updater *u, const char *db, uint32_t *version);

/* Local version of db in dbdir: the header of <db>.cvd, else of <db>.cld (§4.3).
 * Returns 1 and fills *hdr and file ("<db>.cvd"/"<db>.cld") when one is readable,
 * else 0. file must hold 64 bytes. */
int cf_updater_local(const char *dbdir, const char *db, cf_cvdhdr *hdr, char *file);

#endif
