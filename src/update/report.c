/* Monitoring output (report.h): JSON, Prometheus text and the plugin verdict,
 * built from the updater's per-database reports. */
#include "clamfresh/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/fileio.h"

#include "clamfresh/fcerr.h"

void cf_report_add_msg(cf_report *r, const char *level, const char *text, size_t len)
{
    if (r->nmsg >= CF_REPORT_MAX_MSGS) {
        r->dropped++;
        return;
    }
    cf_report_msg *m = &r->msg[r->nmsg++];
    snprintf(m->level, sizeof m->level, "%s", level);
    if (len >= sizeof m->text)
        len = sizeof m->text - 1;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 when the bytes are not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

cf_code cf_report_json_string(cf_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    cf_code rc = cf_buf_append(out, "\"", 1);
    size_t i = 0;
    while (rc == CF_OK && i < len) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = cf_buf_append(out, esc, 2);
            i++;
        } else if (c == '\n') {
            rc = cf_buf_append(out, "\\n", 2);
            i++;
        } else if (c == '\r') {
            rc = cf_buf_append(out, "\\r", 2);
            i++;
        } else if (c == '\t') {
            rc = cf_buf_append(out, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            rc = cf_buf_printf(out, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_len(p + i, len - i);
            if (k == 0) {
                rc = cf_buf_append(out, "\\ufffd", 6);
                i++;
            } else {
                rc = cf_buf_append(out, p + i, k);
                i += k;
            }
        }
    }
    if (rc == CF_OK)
        rc = cf_buf_append(out, "\"", 1);
    return rc;
}

static cf_code json_str(cf_buf *out, const char *s)
{
    return cf_report_json_string(out, s, strlen(s));
}

long cf_report_behind(const cf_report_db *d)
{
    if (d->u.after == 0 || d->u.advertised == 0)
        return -1;
    return d->u.advertised > d->u.after ? (long)(d->u.advertised - d->u.after) : 0;
}

cf_report_status cf_report_db_status(const cf_report_db *d, const cf_report_thresholds *t)
{
    if (d->u.after == 0)
        return CF_REPORT_CRITICAL;
    long b = cf_report_behind(d);
    if (b < 0)
        return CF_REPORT_UNKNOWN;
    if (b >= t->crit_behind)
        return CF_REPORT_CRITICAL;
    if (b >= t->warn_behind)
        return CF_REPORT_WARNING;
    return CF_REPORT_OK;
}

/* Severity order for combining: CRITICAL > WARNING > UNKNOWN > OK. */
static int severity(cf_report_status s)
{
    static const int rank[] = {0, 2, 3, 1};
    return rank[s];
}

static cf_report_status worse(cf_report_status a, cf_report_status b)
{
    return severity(b) > severity(a) ? b : a;
}

static int cooldown_active(const cf_report *r, int64_t now)
{
    return r->cooldown_until > now;
}

cf_report_status cf_report_verdict(const cf_report *r, const cf_report_thresholds *t, int64_t now)
{
    if (r->ndb == 0)
        return CF_REPORT_UNKNOWN;
    cf_report_status v = CF_REPORT_OK;
    for (size_t i = 0; i < r->ndb; i++)
        v = worse(v, cf_report_db_status(&r->db[i], t));
    if (cooldown_active(r, now))
        v = worse(v, CF_REPORT_WARNING);
    return v;
}

const char *cf_report_status_name(cf_report_status s)
{
    static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    return (unsigned)s < 4 ? names[s] : "UNKNOWN";
}

static void utc_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)t);
}

/* Perfdata labels are database names; anything outside [A-Za-z0-9_.-] would
 * need quoting, so it becomes '_'. */
static void perf_label(const char *db, char *out, size_t n)
{
    size_t i = 0;
    for (; db[i] && i + 1 < n; i++) {
        char c = db[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '-' || c == '.';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
}

static cf_code db_summary(cf_buf *out, const cf_report_db *d)
{
    long b = cf_report_behind(d);
    if (d->u.after == 0)
        return cf_buf_printf(out, "%s missing", d->u.db);
    if (b < 0)
        return cf_buf_printf(out, "%s %u (advertised version unknown)", d->u.db, d->u.after);
    if (b == 0)
        return cf_buf_printf(out, "%s %u (current)", d->u.db, d->u.after);
    return cf_buf_printf(out, "%s %u (%ld behind %u)", d->u.db, d->u.after, b, d->u.advertised);
}

cf_code cf_report_check_text(cf_buf *out, const cf_report *r, const cf_report_thresholds *t, int64_t now)
{
    cf_report_status v = cf_report_verdict(r, t, now);
    cf_code rc = cf_buf_printf(out, "CLAMFRESH %s - ", cf_report_status_name(v));
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        if (i > 0)
            rc = cf_buf_append_str(out, ", ");
        if (rc == CF_OK)
            rc = db_summary(out, &r->db[i]);
    }
    if (rc == CF_OK && r->ndb == 0)
        rc = cf_buf_append_str(out, "no databases configured");
    if (rc == CF_OK && cooldown_active(r, now)) {
        char when[32];
        utc_time(r->cooldown_until, when);
        rc = cf_buf_printf(out, ", cool-down until %s", when);
    }
    /* Perfdata: label=value;warn;crit, one per database whose lag is known. */
    const char *sep = " | ";
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        long b = cf_report_behind(&r->db[i]);
        if (b < 0)
            continue;
        char label[64];
        perf_label(r->db[i].u.db, label, sizeof label);
        rc = cf_buf_printf(out, "%s%s_behind=%ld;%ld;%ld", sep, label, b, t->warn_behind, t->crit_behind);
        sep = " ";
    }
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, "\n");
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        const cf_report_db *d = &r->db[i];
        char built[32] = "unknown";
        if (d->build_time > 0)
            utc_time(d->build_time, built);
        char local[16] = "missing", adv[16] = "unknown", behind[16] = "unknown";
        if (d->u.after)
            snprintf(local, sizeof local, "%u", d->u.after);
        if (d->u.advertised)
            snprintf(adv, sizeof adv, "%u", d->u.advertised);
        long b = cf_report_behind(d);
        if (b >= 0)
            snprintf(behind, sizeof behind, "%ld", b);
        rc = cf_buf_printf(out, "%s: %s, local version %s, advertised %s, behind %s, built %s\n", d->u.db,
                           cf_report_status_name(cf_report_db_status(d, t)), local, adv, behind, built);
    }
    if (rc == CF_OK && r->cooldown_until > 0) {
        char when[32];
        utc_time(r->cooldown_until, when);
        rc = cf_buf_printf(out, "cool-down: %s until %s\n", cooldown_active(r, now) ? "active" : "expired",
                           when);
    }
    return rc;
}

/* A version or time as a JSON number, or null when 0 (unknown/none). */
static cf_code json_opt(cf_buf *out, const char *key, int64_t v)
{
    if (v == 0)
        return cf_buf_printf(out, "\"%s\": null", key);
    return cf_buf_printf(out, "\"%s\": %lld", key, (long long)v);
}

static cf_code json_db(cf_buf *out, const cf_report *r, const cf_report_db *d)
{
    const cf_dbreport *u = &d->u;
    cf_code rc = cf_buf_append_str(out, "    {\"name\": ");
    if (rc == CF_OK)
        rc = json_str(out, u->db);
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ", ");
    if (rc == CF_OK)
        rc = json_opt(out, "version_before", u->before);
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ", ");
    if (rc == CF_OK)
        rc = json_opt(out, "version_after", u->after);
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ", ");
    if (rc == CF_OK)
        rc = json_opt(out, "advertised", u->advertised);
    long b = cf_report_behind(d);
    if (rc == CF_OK)
        rc =
            b < 0 ? cf_buf_append_str(out, ", \"behind\": null") : cf_buf_printf(out, ", \"behind\": %ld", b);
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ", \"how\": ");
    if (rc == CF_OK)
        rc = u->how[0] ? json_str(out, u->how) : cf_buf_append_str(out, "null");
    if (rc == CF_OK)
        rc = cf_buf_printf(out, ", \"bytes\": %llu, \"requests\": %u, \"seconds\": %.3f, ",
                           (unsigned long long)u->bytes, u->requests, u->seconds >= 0 ? u->seconds : 0.0);
    if (rc == CF_OK)
        rc = json_opt(out, "build_time", d->build_time);
    if (rc == CF_OK && !r->check_only) {
        rc = cf_buf_printf(out, ", \"outcome\": {\"code\": %d, \"text\": ", u->outcome);
        if (rc == CF_OK)
            rc = json_str(out, cf_fc_str(u->outcome));
        if (rc == CF_OK)
            rc = cf_buf_append_str(out, "}");
    }
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, "}");
    return rc;
}

cf_code cf_report_json(cf_buf *out, const cf_report *r)
{
    char started[32];
    utc_time(r->started, started);
    cf_code rc = cf_buf_append_str(out, "{\n  \"program\": \"clamfresh\",\n  \"version\": ");
    if (rc == CF_OK)
        rc = json_str(out, r->version ? r->version : "");
    if (rc == CF_OK)
        rc = cf_buf_printf(out, ",\n  \"mode\": \"%s\",\n  \"started\": %lld,\n  \"started_utc\": \"%s\",\n",
                           r->check_only ? "check" : "update", (long long)r->started, started);
    if (rc == CF_OK)
        rc = cf_buf_printf(out, "  \"exit_code\": %d,\n  \"exit_meaning\": ", r->exit_code);
    if (rc == CF_OK)
        rc = json_str(out, r->check_only ? cf_report_status_name((cf_report_status)r->exit_code)
                                         : cf_fc_str(r->exit_code));
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ",\n  ");
    if (rc == CF_OK)
        rc = json_opt(out, "cooldown_until", r->cooldown_until);
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, ",\n  \"databases\": [");
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        rc = cf_buf_append_str(out, i ? ",\n" : "\n");
        if (rc == CF_OK)
            rc = json_db(out, r, &r->db[i]);
    }
    if (rc == CF_OK)
        rc = cf_buf_append_str(out, r->ndb ? "\n  ],\n  \"messages\": [" : "],\n  \"messages\": [");
    for (size_t i = 0; rc == CF_OK && i < r->nmsg; i++) {
        rc = cf_buf_append_str(out, i ? ",\n    {\"level\": " : "\n    {\"level\": ");
        if (rc == CF_OK)
            rc = json_str(out, r->msg[i].level);
        if (rc == CF_OK)
            rc = cf_buf_append_str(out, ", \"text\": ");
        if (rc == CF_OK)
            rc = json_str(out, r->msg[i].text);
        if (rc == CF_OK)
            rc = cf_buf_append_str(out, "}");
    }
    if (rc == CF_OK)
        rc = cf_buf_printf(out, "%s],\n  \"messages_dropped\": %zu\n}\n", r->nmsg ? "\n  " : "", r->dropped);
    return rc;
}

/* A label value in the exposition format: \, " and newline escaped. */
static cf_code prom_label(cf_buf *out, const char *v)
{
    cf_code rc = CF_OK;
    for (const char *p = v; rc == CF_OK && *p; p++) {
        if (*p == '\\')
            rc = cf_buf_append(out, "\\\\", 2);
        else if (*p == '"')
            rc = cf_buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            rc = cf_buf_append(out, "\\n", 2);
        else
            rc = cf_buf_append(out, p, 1);
    }
    return rc;
}

static cf_code prom_head(cf_buf *out, const char *name, const char *help)
{
    return cf_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

typedef enum per_db { M_VERSION, M_BUILD, M_BEHIND } per_db;

static cf_code prom_per_db(cf_buf *out, const cf_report *r, const char *name, const char *help, per_db what)
{
    cf_code rc = prom_head(out, name, help);
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        const cf_report_db *d = &r->db[i];
        long long v;
        if (what == M_VERSION)
            v = d->u.after;
        else if (what == M_BUILD)
            v = d->build_time;
        else
            v = cf_report_behind(d);
        if ((what == M_BEHIND && v < 0) || (what == M_BUILD && v <= 0))
            continue; /* unknown: no sample rather than a made-up one */
        rc = cf_buf_printf(out, "%s{database=\"", name);
        if (rc == CF_OK)
            rc = prom_label(out, d->u.db);
        if (rc == CF_OK)
            rc = cf_buf_printf(out, "\"} %lld\n", v);
    }
    return rc;
}

cf_code cf_report_metrics(cf_buf *out, const cf_report *r)
{
    cf_code rc = prom_per_db(out, r, "clamfresh_database_version",
                             "Version of the local database (0 = missing).", M_VERSION);
    if (rc == CF_OK)
        rc = prom_per_db(out, r, "clamfresh_database_build_timestamp_seconds",
                         "Build time of the local database (CVD header), Unix seconds.", M_BUILD);
    if (rc == CF_OK)
        rc = prom_per_db(out, r, "clamfresh_database_versions_behind",
                         "Versions the local database is behind the advertised one.", M_BEHIND);
    if (rc == CF_OK)
        rc = prom_head(out, "clamfresh_update_method",
                       "How the last run brought the database up to date (1 for the method used).");
    for (size_t i = 0; rc == CF_OK && i < r->ndb; i++) {
        const cf_report_db *d = &r->db[i];
        if (!d->u.how[0])
            continue;
        rc = cf_buf_append_str(out, "clamfresh_update_method{database=\"");
        if (rc == CF_OK)
            rc = prom_label(out, d->u.db);
        if (rc == CF_OK)
            rc = cf_buf_append_str(out, "\",method=\"");
        if (rc == CF_OK)
            rc = prom_label(out, d->u.how);
        if (rc == CF_OK)
            rc = cf_buf_append_str(out, "\"} 1\n");
    }
    if (rc == CF_OK)
        rc = prom_head(out, "clamfresh_cooldown_until_timestamp_seconds",
                       "End of the CDN cool-down from freshclam.dat, Unix seconds (0 = none).");
    if (rc == CF_OK)
        rc = cf_buf_printf(out, "clamfresh_cooldown_until_timestamp_seconds %lld\n",
                           (long long)(r->cooldown_until > 0 ? r->cooldown_until : 0));
    if (rc == CF_OK && r->last_success > 0) {
        rc = prom_head(out, "clamfresh_last_success_timestamp_seconds",
                       "Start of the last successful update run, Unix seconds.");
        if (rc == CF_OK)
            rc = cf_buf_printf(out, "clamfresh_last_success_timestamp_seconds %lld\n",
                               (long long)r->last_success);
    }
    if (rc == CF_OK)
        rc = prom_head(out, "clamfresh_last_run_exit_code",
                       r->check_only
                           ? "Exit status of the last run (--check-only: 0 OK, 1 WARNING, 2 CRITICAL, "
                             "3 UNKNOWN)."
                           : "Exit status of the last run (freshclam's codes).");
    if (rc == CF_OK)
        rc = cf_buf_printf(out, "clamfresh_last_run_exit_code %d\n", r->exit_code);
    return rc;
}

int64_t cf_report_metrics_last_success(const char *text, size_t n)
{
    static const char key[] = "clamfresh_last_success_timestamp_seconds ";
    size_t kl = sizeof key - 1;
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && text[end] != '\n')
            end++;
        if (end - i > kl && memcmp(text + i, key, kl) == 0) {
            int64_t v = 0;
            size_t j = i + kl;
            for (; j < end && text[j] >= '0' && text[j] <= '9' && v < INT64_MAX / 10; j++)
                v = v * 10 + (text[j] - '0');
            return j == end || text[j] == '\r' ? v : 0;
        }
        i = end + 1;
    }
    return 0;
}

cf_code cf_report_write_atomic(const char *path, const void *data, size_t n, cf_err *e)
{
    size_t pl = strlen(path);
    if (pl == 0 || pl > 4000)
        return cf_err_set(e, CF_EINVAL, "Can't write %s: bad path", path);
    const char *slash = strrchr(path, '/');
    char tmp[4096 + 32];
    /* A dot file in the same directory: node_exporter reads only *.prom, and
     * the rename stays on one file system. */
    if (slash)
        snprintf(tmp, sizeof tmp, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
    else
        snprintf(tmp, sizeof tmp, ".%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "Can't write %s: %s", path, strerror(errno));
    cf_err we = {0};
    int err = cf_fd_write_all(fd, data, n, &we) != CF_OK ? (errno ? errno : EIO) : 0;
    if (!err && fchmod(fd, 0644) != 0)
        err = errno;
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return cf_err_set(e, CF_EIO, "Can't write %s: %s", path, strerror(err ? err : EIO));
    }
    return CF_OK;
}
