/* OnUpdateExecute / OnErrorExecute / OnOutdatedExecute (freshclam-behavior.md §7).
 *
 * Two deliberate departures from freshclam 1.4.6, both fixing upstream bugs:
 *  - OnOutdatedExecute replaces the first %v by the new version number (upstream
 *    replaces it by an empty string although the documentation promises the
 *    version);
 *  - in daemon mode the caller runs OnOutdatedExecute for a newer ClamAV version
 *    (upstream runs the OnUpdateExecute command there). The functions below take
 *    the hook type and its command together so the two cannot be mixed up. */
#ifndef CLAMFRESH_HOOKS_H
#define CLAMFRESH_HOOKS_H

#include <stddef.h>
#include <sys/types.h>

#include "clamfresh/err.h"
#include "clamfresh/notes.h"

typedef enum cf_hook_type {
    CF_HOOK_UPDATE,   /* OnUpdateExecute */
    CF_HOOK_ERROR,    /* OnErrorExecute */
    CF_HOOK_OUTDATED, /* OnOutdatedExecute */
} cf_hook_type;

/* "OnUpdateExecute", "OnErrorExecute", "OnOutdatedExecute". */
const char *cf_hook_name(cf_hook_type type);

/* If cmd begins with EXIT_<n> (scanf %d rules after the prefix, so "EXIT_1
 * anything" counts), stores n and returns 1; otherwise returns 0. */
int cf_hook_exit_code(const char *cmd, int *n);

/* Builds the command line to run: for CF_HOOK_OUTDATED the first "%v" is
 * replaced by version, which must be digits and dots only (else CF_EINVAL with
 * the §7 error text, and nothing may run); other types are returned unchanged.
 * *out is malloc'ed; the caller frees it. */
cf_code cf_hook_command(cf_hook_type type, const char *cmd, const char *version, char **out, cf_err *e);

/* Single-shot run (§7 "How"). version is used by CF_HOOK_OUTDATED only (NULL
 * otherwise). On CF_OK, *exit_status is -1 when the command ran (its own status
 * is ignored) or n when the command is EXIT_<n>: the caller must then exit with
 * status n. Runs /bin/sh -c CMD in a child and waits for it, with stdio
 * inherited. Messages (DEBUG for EXIT_n, INFO when the shell could not be run,
 * ERROR for a bad version) are added to notes. */
cf_code cf_hook_run(cf_hook_type type, const char *cmd, const char *version, int *exit_status,
                    cf_notes *notes, cf_err *e);

/* Daemon mode: commands run asynchronously, EXIT_<n> has no special meaning, at
 * most CF_HOOK_MAX_CHILDREN at once (§7 "Daemon mode"). */
#define CF_HOOK_MAX_CHILDREN 5

typedef struct cf_hook_pool {
    pid_t pid[CF_HOOK_MAX_CHILDREN]; /* 0 = free slot */
    size_t active;
} cf_hook_pool;

void cf_hook_pool_init(cf_hook_pool *pool);

/* Reaps finished children of this pool without blocking (only its own PIDs, so
 * other children of the process are left alone); returns how many were reaped.
 * Call it from the daemon loop after SIGCHLD; cf_hook_pool_spawn calls it too. */
size_t cf_hook_pool_reap(cf_hook_pool *pool);

/* Starts cmd in the background. When the pool is full, adds WARN
 * "<Type>: already <n> processes active." and returns CF_EUNSUPP without
 * running it; fork failure adds WARN "<Type>::fork() failed, <err>.". */
cf_code cf_hook_pool_spawn(cf_hook_pool *pool, cf_hook_type type, const char *cmd, const char *version,
                           cf_notes *notes, cf_err *e);

/* Waits up to timeout_ms for every child of the pool to finish (daemon
 * shutdown, tests); returns how many are still running. */
size_t cf_hook_pool_drain(cf_hook_pool *pool, int timeout_ms);

#endif
