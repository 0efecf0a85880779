/* The run cycle (freshclam-behavior.md §4.0 steps 5-12) and the version policy
 * behind it (DNS, §4.2), shared by the single shot, the daemon and mirror mode.
 * The programs parse options, initialise and choose the mode; what one run does
 * is decided here, once. */
#ifndef CLAMFRESH_CYCLE_H
#define CLAMFRESH_CYCLE_H

#include <sys/types.h>

#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/report.h"
#include "clamfresh/settings.h"
#include "clamfresh/verify.h"

/* What a run knows after initialisation. */
typedef struct cf_cycle_ctx {
    cf_settings s;
    cf_trust trust;
    cf_certstore *certs;
    cf_verifyctx vctx;
    const char *engine_version;
    unsigned engine_flevel; /* libclamav's, or EngineFlevel; 0 = unknown */
    int test_note_done;     /* "no libclamav" said once per process */
    cf_report *rep;         /* the run's account (--json, --metrics, --check-only); never NULL */
} cf_cycle_ctx;

typedef struct cf_cycle_result {
    int code;          /* freshclam exit status of the cycle (0 for up-to-date) */
    unsigned replaced; /* databases replaced on disk */
    char outdated[64]; /* newer ClamAV release reported by DNS, "" if none */
} cf_cycle_result;

/* One update run: lock, clean-up, prune, DNS, updates (with the load test of
 * TestDatabases), custom URLs, state, NotifyClamd, temporary directory removal,
 * then the --metrics file. Hooks are the caller's (they differ between
 * single-shot and daemon mode). */
void cf_cycle_run(cf_cycle_ctx *a, cf_cycle_result *out);

/* Mirror mode (mirror.h): fills MirrorDirectory instead of DatabaseDirectory.
 * Returns the process exit status. */
int cf_cycle_mirror(cf_cycle_ctx *a);

/* --check-only: prints the plugin text to stdout and writes --metrics; nothing
 * in DatabaseDirectory is written. Returns the plugin status (0-3). */
int cf_cycle_check(cf_cycle_ctx *a);

/* The header of <dir>/<name> (opened with cf_file_open_db's rules); 1 when it
 * parses, 0 otherwise. */
int cf_cycle_read_header(const char *dir, const char *name, cf_cvdhdr *h);

/* initgroups/setgid/setuid to DatabaseOwner when running as root (§9.1).
 * Returns 0 or -1 after logging why. */
int cf_cycle_drop_privileges(const cf_settings *s);

/* Seconds between daemon cycles: 86400 / Checks, or the test-only override
 * CLAMFRESH_DAEMON_INTERVAL (seconds). */
unsigned cf_cycle_interval(const cf_settings *s);

#endif
