/* Mirror mode: keep a directory that any static web server (nginx, Apache,
 * `python3 -m http.server`) can serve to the machines of a LAN, so that stock
 * freshclam and clamfresh clients both update from it, and so that no cache
 * between this mirror and its clients can make them stale (ARCHITECTURE.md,
 * "The one idea").
 *
 * ## Mirror mode (README section)
 *
 *     clamfresh --mirror=/srv/clamav          (or "MirrorDirectory /srv/clamav")
 *
 * reads freshclam.conf as usual (DatabaseMirror, databases, DNS, proxy, keys)
 * but, instead of updating DatabaseDirectory, fills /srv/clamav with:
 *
 *   NAME-V.cvd             the whole database, version V   (immutable)
 *   NAME-V.cvd.sign        its detached signature, when upstream has a valid one
 *   NAME-N.cdiff           patch N-1 -> N, for the last MirrorKeepPatches versions
 *                          (default 120) up to V            (immutable)
 *   NAME-N.cdiff.sign      its detached signature, when upstream has a valid one
 *   NAME.cvd               the same bytes as NAME-V.cvd (a hard link)  (mutable)
 *   NAME.version           "V:T\n": the version and the Unix time of the run that
 *                          last confirmed it                           (mutable)
 *   current.txt            "R:main:daily:T:0:F:0:bytecode\n", the record that
 *                          current.cvd.clamav.net would hold for this mirror (mutable)
 *   nginx-clamfresh-mirror.conf   cache-header snippet for nginx (below), rewritten
 *                          by every run
 *
 * Point the clients at it with `DatabaseMirror http://mirror.lan/` (freshclam
 * also needs `ScriptedUpdates yes`, its default). Run the mirror from cron, e.g.
 * hourly; each run is one update and exits with freshclam's codes.
 *
 * Why caches cannot hurt: every name except NAME.cvd, NAME.version and
 * current.txt always holds the same bytes, so a cache can only ever give back
 * the right file. clamfresh clients ask versioned names first (NAME-N.cdiff,
 * NAME-V.cvd), and check the header version of a plain NAME.cvd against the
 * advertised one; stock freshclam patches with NAME-N.cdiff too and only takes
 * NAME.cvd for a first download. The snippet nginx-clamfresh-mirror.conf, meant
 * for `include` inside the serving `server { }` block, marks the mutable names
 * `Cache-Control: no-cache` and the versioned ones `immutable` for one year, to
 * help well-behaved downstream caches.
 *
 * Local DNS: a LAN resolver can answer the clients' TXT queries from the
 * pointer files, e.g. `dnsmasq --txt-record=current.cvd.clamav.net,$(cat
 * current.txt)` and `--txt-record=NAME.cvd.clamav.net,$(cat NAME.version)`
 * for databases without a field there. The time fields let freshclam's 12-hour
 * rule see how fresh the record is (refreshed by every successful run).
 *
 * ## Rules of one run (cf_mirror_run)
 *
 *  1. Lock DIR (install.h; clamfresh.lock), remove temporaries a killed run left.
 *  2. For each database, with upstream version V (given, from DNS; else a
 *     Range probe of NAME.cvd with no-cache headers) and published version P
 *     (header of DIR/NAME.cvd; 0 when none):
 *     - V <= P: up to date (a mirror never goes back), only prune (step 4).
 *     - otherwise, per upstream mirror in order (max_attempts each, retry_delay
 *       apart), until one succeeds:
 *       a. the whole database: NAME-V.cvd, else NAME.cvd?version=V, else NAME.cvd
 *          with no-cache headers; the header version must equal V ("upstream
 *          served version X, advertised V" otherwise), then NAME-V.cvd.sign;
 *          cf_verify_cvd must accept it.
 *       b. the new patches NAME-(P+1..V).cdiff (+ .sign), concurrently; on the
 *          first run (P = 0, or P below the window) the window is back-filled
 *          instead, newest first in batches of CF_MIRROR_BACKFILL_BATCH, down to
 *          the window's start or the first version upstream does not have.
 *          Each must pass cf_verify_cdiff and be the patch to its own version.
 *          A 404 means "upstream does not have it" (the window then starts
 *          above the gap); any other failure, an empty or a bad cdiff fails the
 *          database.
 *       c. when the published NAME-P.cvd verifies and patches P+1..V are all
 *          there, they are applied to it in order and must reproduce the
 *          manifest (<db>.info) of version V byte for byte.
 *     - publish: every new immutable file first (cdiffs ascending, then
 *       NAME-V.cvd.sign, NAME-V.cvd), each as temp + fsync + rename + directory
 *       fsync; then NAME.cvd (hard link of NAME-V.cvd, else a copy, renamed over
 *       the old one), then NAME.version. A client that sees version V anywhere
 *       can therefore get every file it needs. A .sign is published only when it
 *       verified as valid: a damaged one would make a ClamAV 1.5 client refuse
 *       the file without falling back to the other signature.
 *     - on failure nothing visible changes: the new immutable files written in
 *       this run are removed again, NAME.cvd and NAME.version are untouched, and
 *       the log says which URL failed and why.
 *  3. current.txt is rewritten after all databases from what is published,
 *     then the nginx snippet (unless no_nginx_conf).
 *  4. Prune: NAME-N.cdiff(.sign) with N outside [V-K+1, V] (K = keep_patches),
 *     and NAME-M.cvd(.sign) with M != V, for every database handled.
 *  5. The run goes on after a failing database (databases are independent) and
 *     returns the first failure's code; 0 when every database is published or
 *     up to date. 403 and 429 from upstream end the run at once (17, 18) with
 *     the client's reaction (remote.h): the cool-down is recorded in o->state
 *     (the caller saves it), and while it runs a mirror run asks nothing.
 *
 * Upstream transport comes through cf_update_env (updater.h): fetch, now,
 * sleep, log; testdb is not used (the clients load-test what they install). */
#ifndef CLAMFRESH_MIRROR_H
#define CLAMFRESH_MIRROR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/updater.h"
#include "clamfresh/verify.h"

#define CF_MIRROR_KEEP_PATCHES 120 /* default patch window (MirrorKeepPatches) */
#define CF_MIRROR_BACKFILL_BATCH 16
#define CF_MIRROR_CURRENT "current.txt"
#define CF_MIRROR_NGINX_CONF "nginx-clamfresh-mirror.conf"

typedef struct cf_mirror_opts {
    const char *dir;        /* MirrorDirectory / --mirror (must exist) */
    const char *const *dbs; /* databases, in order (settings' databases) */
    size_t ndbs;
    const uint32_t *versions;   /* advertised version of dbs[i] (DNS); NULL or 0 = probe */
    const char *const *mirrors; /* upstream URLs, in order (settings' mirrors) */
    size_t nmirrors;
    unsigned keep_patches;      /* cdiff window; 0 = CF_MIRROR_KEEP_PATCHES */
    unsigned concurrency;       /* parallel downloads (ConcurrentDownloads); 0 = 1 */
    unsigned max_attempts;      /* per upstream mirror (MaxAttempts); 0 = 1 */
    unsigned retry_delay;       /* seconds between attempts */
    unsigned lock_timeout;      /* seconds to wait for DIR's lock */
    const cf_verifyctx *verify; /* the trust path */
    const char *newest_clamav;  /* field 0 of current.txt (from the DNS record); NULL = "0" */
    int no_nginx_conf;          /* nonzero: don't (re)write CF_MIRROR_NGINX_CONF */
    cf_state *state;            /* cool-down after a 403/429 upstream; may be NULL */
} cf_mirror_opts;

/* One mirror run (rules above). Returns a cf_fc code. */
int cf_mirror_run(const cf_mirror_opts *o, const cf_update_env *env);

/* Steps 2 and 4 for one database, without the lock (the caller holds it).
 * version: advertised version, 0 = probe. Returns a cf_fc code. */
int cf_mirror_db(const cf_mirror_opts *o, const cf_update_env *env, const char *db, uint32_t version);

/* The published version of db in dir: the header of dir/db.cvd. 0 when none. */
uint32_t cf_mirror_published(const char *dir, const char *db);

/* The nginx snippet for a mirror served from dir (appended to out). Fails with
 * CF_EINVAL when dir holds characters nginx would need escaped ('"', '\\', '$',
 * control bytes). */
cf_code cf_mirror_nginx_text(const char *dir, cf_buf *out, cf_err *e);

#endif
