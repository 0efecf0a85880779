/* Machine-readable accounts of a run for monitoring: the --json document, the
 * Prometheus textfile of --metrics and the plugin verdict of --check-only
 * (Nagios/Icinga convention). The writers and the verdict are pure: they read a
 * cf_report and append text to a cf_buf; only cf_report_write_atomic touches
 * the file system. */
#ifndef CLAMFRESH_REPORT_H
#define CLAMFRESH_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/updater.h"

/* A run keeps this many messages; later ones are counted in dropped. A message
 * longer than CF_REPORT_MSG_MAX - 1 bytes is cut there. */
#define CF_REPORT_MAX_MSGS 512
#define CF_REPORT_MSG_MAX 512

/* Plugin exit statuses (Nagios plugin guidelines). */
typedef enum cf_report_status {
    CF_REPORT_OK = 0,
    CF_REPORT_WARNING = 1,
    CF_REPORT_CRITICAL = 2,
    CF_REPORT_UNKNOWN = 3,
} cf_report_status;

/* Default thresholds: the official daily database gains one to three versions
 * a day and freshclam checks every two hours by default, so being one version
 * behind is the normal state between a publication and the next check. Two
 * behind means at least one check was missed; five behind is about two days. */
#define CF_REPORT_WARN_BEHIND 2
#define CF_REPORT_CRIT_BEHIND 5

typedef struct cf_report_thresholds {
    long warn_behind; /* WARNING when versions behind >= this (>= 1) */
    long crit_behind; /* CRITICAL when versions behind >= this (>= warn_behind) */
} cf_report_thresholds;

typedef struct cf_report_db {
    cf_dbreport u;      /* what the updater reported, or what the check found:
                         * u.after is the local version (0 = missing), u.advertised
                         * the remote one (0 = unknown) */
    int64_t build_time; /* build time (header stime) of the local copy; 0 = none */
} cf_report_db;

typedef struct cf_report_msg {
    char level[8]; /* "debug", "info", "warning", "error" */
    char text[CF_REPORT_MSG_MAX];
} cf_report_msg;

typedef struct cf_report {
    const char *version;    /* clamfresh's version */
    int check_only;         /* the run was --check-only */
    int64_t started;        /* Unix seconds */
    int exit_code;          /* the process's exit status */
    int64_t cooldown_until; /* freshclam.dat's cool-down end; 0 = none */
    int64_t last_success;   /* the last successful update run; 0 = unknown */
    cf_report_db db[CF_UPDATER_MAX_REPORTS];
    size_t ndb;
    cf_report_msg msg[CF_REPORT_MAX_MSGS];
    size_t nmsg;
    size_t dropped; /* messages beyond CF_REPORT_MAX_MSGS */
} cf_report;

/* Keeps one message (level as above); a full list counts it in dropped. */
void cf_report_add_msg(cf_report *r, const char *level, const char *text, size_t len);

/* Appends s (len bytes) as a JSON string with its quotes: ", \ and control
 * characters escaped, bytes that are not valid UTF-8 replaced by U+FFFD, so
 * the document is valid whatever a server sent. */
cf_code cf_report_json_string(cf_buf *out, const char *s, size_t len);

/* Versions db is behind its advertised version: -1 when either is unknown or
 * the database is missing, 0 when the local copy is current or newer. */
long cf_report_behind(const cf_report_db *d);

/* The verdict for one database: missing = CRITICAL, advertised unknown =
 * UNKNOWN, behind >= crit = CRITICAL, behind >= warn = WARNING, else OK. */
cf_report_status cf_report_db_status(const cf_report_db *d, const cf_report_thresholds *t);

/* The verdict of the run: the worst database (CRITICAL > WARNING > UNKNOWN >
 * OK), raised to WARNING by a cool-down that is active at now; UNKNOWN when
 * there is no database at all. */
cf_report_status cf_report_verdict(const cf_report *r, const cf_report_thresholds *t, int64_t now);

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *cf_report_status_name(cf_report_status s);

/* The plugin output: one status line, "CLAMFRESH OK - daily 27830 (current),
 * main 62 (current) | daily_behind=0;2;5 main_behind=0;2;5", then one detail
 * line per database and the cool-down, each ending in a newline. */
cf_code cf_report_check_text(cf_buf *out, const cf_report *r, const cf_report_thresholds *t, int64_t now);

/* The --json document (one object, newline-terminated). */
cf_code cf_report_json(cf_buf *out, const cf_report *r);

/* The Prometheus text exposition (format 0.0.4) for node_exporter's textfile
 * collector, with HELP and TYPE lines. Values that are unknown are left out. */
cf_code cf_report_metrics(cf_buf *out, const cf_report *r);

/* The value of clamfresh_last_success_timestamp_seconds in an earlier metrics
 * file's text, so a failed run keeps reporting the last success; 0 if absent. */
int64_t cf_report_metrics_last_success(const char *text, size_t n);

/* Writes data to path atomically: a temporary in the same directory (so the
 * rename cannot cross file systems), fsync, mode 0644, rename. A reader sees
 * the old or the new file, never a partial one. */
cf_code cf_report_write_atomic(const char *path, const void *data, size_t n, cf_err *e);

#endif
