/* What main.c and daemon.c share: the program's state after initialisation
 * and one update cycle (freshclam-behavior.md §4.0 steps 5-12). */
#ifndef CLAMFRESH_APP_H
#define CLAMFRESH_APP_H

#include <sys/types.h>

#include "clamfresh/codesign.h"
#include "clamfresh/dsig.h"
#include "clamfresh/hooks.h"
#include "clamfresh/http.h"
#include "clamfresh/notes.h"
#include "clamfresh/settings.h"
#include "clamfresh/state.h"
#include "clamfresh/verify.h"

typedef struct cf_app {
    cf_settings s;
    cf_trust trust;
    cf_certstore *certs;
    cf_verifyctx vctx;
    const char *engine_version;
    unsigned engine_flevel; /* libclamav's, or EngineFlevel; 0 = unknown */
    int test_note_done;     /* "no libclamav" said once per process */
    int daemon;
    cf_hook_pool pool;
} cf_app;

typedef struct cf_cycle {
    int code;          /* freshclam exit status of the cycle (0 for up-to-date) */
    unsigned replaced; /* databases replaced on disk */
    char outdated[64]; /* newer ClamAV release reported by DNS, "" if none */
} cf_cycle;

/* One update run: lock, clean-up, prune, DNS, updates, custom URLs, state,
 * NotifyClamd, temporary directory removal. Hooks are the caller's (they
 * differ between single-shot and daemon mode). */
void cf_app_cycle(cf_app *a, cf_cycle *out);

/* Logs every note at its level. */
void cf_app_log_notes(const cf_notes *n);

/* initgroups/setgid/setuid to DatabaseOwner when running as root (§9.1).
 * Returns 0 or -1 after logging why. */
int cf_app_drop_privileges(const cf_settings *s);

/* Seconds between daemon cycles: 86400 / Checks, or the test-only override
 * CLAMFRESH_DAEMON_INTERVAL (seconds). */
unsigned cf_app_daemon_interval(const cf_settings *s);

/* Daemon mode (§9.4); returns the process exit status. */
int cf_daemon_main(cf_app *a);

#endif
