/* Where freshclam's messages go (freshclam-behavior.md §8): the terminal (INFO to stdout,
 * WARNING/ERROR to stderr with their prefixes), the log file (UpdateLogFile) and syslog.
 *
 * Before cf_log_init() (config errors, database selection warnings) messages go to the
 * terminal only, without timestamps; cf_log_init_terminal() applies --quiet, --stdout,
 * --no-warnings and verbosity to that early output. Messages are printf formats; a
 * newline is appended unless the text already ends with one. stdout is flushed after
 * every line. Not thread-safe: log from one thread. */
#ifndef CLAMFRESH_LOG_H
#define CLAMFRESH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/err.h"
#include "clamfresh/notes.h"
#include "clamfresh/settings.h"

#define CF_LOG_FMT(a, b) __attribute__((format(printf, a, b)))

/* Terminal flags only (quiet, no-warnings, stdout, verbose, show-progress). */
void cf_log_init_terminal(const cf_settings *s);

/* Full set-up: terminal flags, LogTime, the log file (opened O_APPEND|O_NOFOLLOW 0640,
 * exclusively fcntl-locked without waiting, first line of 38 dashes) and syslog.
 * On failure e->msg holds the remaining lines of §8.3/§3.2, ending with
 * "ERROR: Initialization error!" (the "Failed to open/lock the log file" line has already
 * been printed to stdout, as freshclam does); print them with cf_settings_print_err() and
 * exit 2. Errors: CF_EIO (file, lock), CF_EFORMAT (LogFacility). */
cf_code cf_log_init(const cf_settings *s, cf_err *e);

/* Closes the log file and syslog; later messages go to the terminal only. */
void cf_log_close(void);

/* Async-signal-safe: the log file is closed and reopened before the next message
 * (SIGHUP from logrotate in daemon mode). */
void cf_log_request_reopen(void);

/* Background daemon: no terminal output at all. */
void cf_log_set_terminal(bool enabled);

void cf_log_info(const char *fmt, ...) CF_LOG_FMT(1, 2);
void cf_log_warn(const char *fmt, ...) CF_LOG_FMT(1, 2);
void cf_log_error(const char *fmt, ...) CF_LOG_FMT(1, 2);
/* Only when verbose (-v / LogVerbose); terminal (stdout) and log. */
void cf_log_debug(const char *fmt, ...) CF_LOG_FMT(1, 2);
/* Log file and syslog only, never the terminal. */
void cf_log_nf(const char *fmt, ...) CF_LOG_FMT(1, 2);
/* Terminal-only INFO (prune messages, "versions behind", "Downloading database patch #"):
 * stdout, hidden by --quiet, never in the log file or syslog. */
void cf_log_term_only(const char *fmt, ...) CF_LOG_FMT(1, 2);

/* Logs every note at its level (debug, info, warning, error). */
void cf_log_notes(const cf_notes *notes);

/* Whether progress output is wanted: not --quiet, terminal enabled, and stdout is a TTY
 * or --show-progress (§8.5). */
bool cf_log_progress_enabled(void);

/* Formats one progress line of §8.5 into out (without the leading/trailing control
 * sequences): "Time: %6.1fs, ETA: %6.1fs [=====>   ] 1.60KiB/1.60KiB". */
void cf_progress_format(char *out, size_t outsz, double elapsed_s, uint64_t done, uint64_t total);

/* Prints a progress line to stdout when cf_log_progress_enabled(): "\r"-terminated while
 * done < total, "\n"-terminated on completion. Does nothing when total is 0 (unknown). */
void cf_log_progress(double elapsed_s, uint64_t done, uint64_t total);

/* Receives every message that passes the level filters (-v for debug,
 * --no-warnings), wherever the terminal and log settings send it, for the
 * --json report. level is "debug", "info", "warning" or "error"; msg has len
 * bytes and no trailing newline. NULL removes the tap. */
typedef void (*cf_log_tap_fn)(void *arg, const char *level, const char *msg, size_t len);
void cf_log_set_tap(cf_log_tap_fn fn, void *arg);

/* Timestamp source for LogTime and rotation names; NULL restores time(). For tests. */
typedef time_t (*cf_log_clock_fn)(void);
void cf_log_set_clock(cf_log_clock_fn fn);

#endif
