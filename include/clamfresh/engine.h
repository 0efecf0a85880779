/* Engine facts without a build-time dependency on libclamav: freshclam takes
 * its version, its functionality level and the TestDatabases load (behavior
 * §1.3, §4.6 item 5, §4.7) from libclamav. clamfresh opens libclamav at run
 * time when it is installed and keeps working, with documented fallbacks,
 * when it is not. */
#ifndef CLAMFRESH_ENGINE_H
#define CLAMFRESH_ENGINE_H

#include <stddef.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/notes.h"

/* Version reported when libclamav is absent. The CDN serves freshclam-style
 * agents by the version in the User-Agent, so we present the release whose
 * behaviour we reproduce; callers with a better value (a setting) pass their
 * own instead. settings.h uses it as CF_FALLBACK_ENGINE_VERSION. */
#define CF_ENGINE_FALLBACK_VERSION "1.4.6"

/* Default bound on one test load, in seconds. A full main.cvd loads in well
 * under a minute on a slow machine; a child that takes ten is stuck. */
#define CF_ENGINE_TEST_TIMEOUT 600

/* Nonzero when libclamav could be opened and every function we use resolved.
 * The first call of any cf_engine_* function opens the library once (the
 * result is cached for the life of the process). */
int cf_engine_available(void);

/* libclamav's version string (cl_retver), or CF_ENGINE_FALLBACK_VERSION when
 * libclamav is absent. Static storage. */
const char *cf_engine_version(void);

/* libclamav's functionality level (cl_retflevel), or 0 when absent: the caller
 * decides what to assume (settings: EngineFlevel, CF_FALLBACK_FLEVEL). */
unsigned cf_engine_flevel(void);

/* How the facts cache reaches the disk: the file lives in DatabaseDirectory,
 * whose rules (no FIFO, no link followed, atomic replacement) are the store's,
 * so the caller passes the store's functions (cf_file_read_db and
 * cf_file_replace_db) and this module touches no file for the cache. */
typedef struct cf_engine_facts_io {
    cf_code (*read)(const char *path, size_t max, cf_buf *out, cf_err *e);
    cf_code (*replace)(const char *dir, const char *name, const void *data, size_t n, cf_err *e);
} cf_engine_facts_io;

/* Keeps libclamav's version and f-level in file (beside the databases), so a
 * later run whose library file is unchanged need not open it; only the load
 * test does. Call before the first cf_engine_* query; file NULL or "" = none;
 * may_write 0 for runs that must change nothing (-V, --check-only): they use
 * the cache but never write it; io NULL = no cache. The cache is only ever a reason to skip the
 * dlopen: anything about it that does not match exactly means the library is
 * opened. */
void cf_engine_facts_cache(const char *file, int may_write, const cf_engine_facts_io *io);
/* Writes the cache when this run had to open libclamav for its facts (and may
 * write): call it once privileges are dropped, so the file is the database
 * owner's. */
void cf_engine_facts_save(void);
#define CF_ENGINE_FACTS_FILE "clamfresh-engine.state"

/* Which libclamav file was opened ("libclamav.so.12"), or "" when none. Static. */
const char *cf_engine_library(void);

typedef enum cf_engine_status {
    CF_ENGINE_TEST_OK,          /* loaded (and compiled); child exited 0 */
    CF_ENGINE_TEST_FAILED,      /* child exited non-zero: load or compile refused the file */
    CF_ENGINE_TEST_KILLED,      /* child died of a signal (also after our timeout) */
    CF_ENGINE_TEST_UNAVAILABLE, /* libclamav absent: no test was made (not a failure) */
} cf_engine_status;

#define CF_ENGINE_LINE 512

typedef struct cf_engine_test_result {
    cf_engine_status status;
    int exit_code; /* FAILED: the child's exit status (freshclam's fc_error_t numbering) */
    int signo;     /* KILLED: the signal */
    int timed_out; /* KILLED because the bound was reached (signo is SIGKILL) */
    unsigned sigs; /* OK: signatures loaded (cl_load's signo count) */
    /* FAILED: freshclam's text for exit_code, the "<error text>" of
     * `Database load exited with "<error text>"` (e.g. "Test failed"). */
    char exit_text[128];
    /* FAILED: what went wrong, e.g. "Failed to load new database: Malformed
     * database"; also the last line the child wrote to stderr. */
    char error[CF_ENGINE_LINE];
    /* The child's stderr as freshclam summarises it (§4.7): the first line not
     * starting with "LibClamAV Warning:" and the last line, both without the
     * newline. With only warnings, stderr_first is the last warning (freshclam
     * reads them into the same buffer); stderr_last is the last line after
     * stderr_first, "" when there is none. stderr_lines counts all lines; a
     * line longer than the buffer is cut. */
    char stderr_first[CF_ENGINE_LINE];
    char stderr_last[CF_ENGINE_LINE];
    unsigned stderr_lines;
} cf_engine_test_result;

/* Sets the bound on one test load in seconds (0 restores CF_ENGINE_TEST_TIMEOUT).
 * Process-wide; meant to be set once at start-up or by tests. */
void cf_engine_set_test_timeout(unsigned seconds);

/* --debug / Debug: libclamav's debug output (cl_debug) during the load test. */
void cf_engine_set_debug(int on);

/* Loads the database file at path into a fresh libclamav engine in a forked
 * child, as freshclam's TestDatabases does (§4.7): options phishing, phishing
 * URLs, PUA, "enhanced", and bytecode when bytecode is nonzero; then
 * cl_engine_compile. The child's stderr is piped to the parent and summarised
 * in res; a child that outlives the bound is killed with SIGKILL.
 *
 * Returns CF_OK whenever a verdict was reached - res->status says which,
 * including CF_ENGINE_TEST_UNAVAILABLE when libclamav is absent. Returns an
 * error (CF_EINVAL, CF_EIO for pipe/fork/wait failures) only when the test
 * could not be run at all; res->status is then CF_ENGINE_TEST_FAILED. */
cf_code cf_engine_test_load(const char *path, int bytecode, cf_engine_test_result *res, cf_err *e);

/* freshclam's messages for a verdict (§4.7), in its order, appended to notes
 * for the caller to log. The caller adds "Testing database: '<path>' ..."
 * before and "Database test passed." / "Database test FAILED." after, since
 * those also depend on TestDatabases.
 *   stderr_first set:  WARN  Stderr output from database load : <first>[ [...] <last>]
 *   FAILED:            WARN  Database load exited with "<exit_text>"
 *   KILLED:            WARN  Database load did not finish within <n> seconds (timeout only)
 *                      ERROR Database load killed by signal <n>
 *   OK with stderr:    WARN  Database successfully loaded, but there is stderr output
 *   OK:                DEBUG Database load test: <sigs> signatures
 *   UNAVAILABLE:       DEBUG the reason: without libclamav there is no local engine
 *                      that the file could break, and the signatures and the
 *                      manifest have been checked already. */
void cf_engine_test_notes(const cf_engine_test_result *res, cf_notes *notes);

/* "ok", "failed", "killed", "unavailable". */
const char *cf_engine_status_str(cf_engine_status s);

#endif
