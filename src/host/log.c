/* Message routing of freshclam-behavior.md §8: terminal streams and prefixes, LogTime,
 * the locked and size-rotated log file, syslog, and the progress line. */
#include "clamfresh/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

typedef enum level { L_INFO, L_WARN, L_ERROR, L_DEBUG, L_NF, L_TERM } level;

static struct {
    bool terminal; /* false in the background daemon */
    bool quiet, no_warnings, to_stdout, verbose, show_progress;
    bool ready; /* cf_log_init succeeded: timestamps, file and syslog are live */
    bool log_time, rotate, syslog_on;
    char *path;
    int fd;
    uint64_t max_size;
    cf_log_clock_fn clock;
} L = {true, false, false, false, false, false, false, false, false, false, NULL, -1, UINT64_MAX, NULL};

static volatile sig_atomic_t reopen_requested;

static cf_log_tap_fn tap;
static void *tap_arg;

void cf_log_set_tap(cf_log_tap_fn fn, void *arg)
{
    tap = fn;
    tap_arg = arg;
}

static const char DASHES[] = "--------------------------------------";

void cf_log_set_clock(cf_log_clock_fn fn)
{
    L.clock = fn;
}

static time_t now(void)
{
    return L.clock ? L.clock() : time(NULL);
}

void cf_log_init_terminal(const cf_settings *s)
{
    L.quiet = s->quiet;
    L.no_warnings = s->no_warnings;
    L.to_stdout = s->to_stdout;
    L.verbose = s->verbose;
    L.show_progress = s->show_progress;
}

void cf_log_set_terminal(bool enabled)
{
    L.terminal = enabled;
}

void cf_log_request_reopen(void)
{
    reopen_requested = 1;
}

static const struct {
    const char *name;
    int value;
} facilities[] = {
    {"LOG_AUTH", LOG_AUTH},     {"LOG_AUTHPRIV", LOG_AUTHPRIV}, {"LOG_CRON", LOG_CRON},
    {"LOG_DAEMON", LOG_DAEMON}, {"LOG_FTP", LOG_FTP},           {"LOG_KERN", LOG_KERN},
    {"LOG_LPR", LOG_LPR},       {"LOG_MAIL", LOG_MAIL},         {"LOG_NEWS", LOG_NEWS},
    {"LOG_SYSLOG", LOG_SYSLOG}, {"LOG_USER", LOG_USER},         {"LOG_UUCP", LOG_UUCP},
    {"LOG_LOCAL0", LOG_LOCAL0}, {"LOG_LOCAL1", LOG_LOCAL1},     {"LOG_LOCAL2", LOG_LOCAL2},
    {"LOG_LOCAL3", LOG_LOCAL3}, {"LOG_LOCAL4", LOG_LOCAL4},     {"LOG_LOCAL5", LOG_LOCAL5},
    {"LOG_LOCAL6", LOG_LOCAL6}, {"LOG_LOCAL7", LOG_LOCAL7},
};

/* Opens and locks L.path. On failure prints freshclam's stdout line and returns the
 * errno-based code; *unsupported is set when only locking is unavailable. */
static cf_code open_file(void)
{
    int fd = open(L.path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        printf("ERROR: Failed to open log file %s: %s\n", L.path, strerror(errno));
        fflush(stdout);
        return CF_EIO;
    }
    struct flock fl = {0};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int err = errno;
        if (err == EACCES || err == EAGAIN) {
            printf("ERROR: Failed to lock the log file %s: %s\n", L.path, strerror(err));
            fflush(stdout);
            close(fd);
            return CF_EIO;
        }
        /* e.g. NFS without a lock manager: freshclam carries on. */
        fprintf(stderr, "WARNING: File locking not supported (NFS?)\n");
    }
    L.fd = fd;
    return CF_OK;
}

static void close_file(void)
{
    if (L.fd >= 0)
        close(L.fd);
    L.fd = -1;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk must not stop the update; freshclam ignores it too */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* "Fri Nov 27 10:28:11 2026 -> " (§8.2). */
static void stamp(char *out, size_t n)
{
    time_t t = now();
    char buf[64];
    if (!ctime_r(&t, buf)) {
        snprintf(out, n, "? -> ");
        return;
    }
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(out, n, "%s -> ", buf);
}

/* §8.3: size check before every message. */
static void rotate_if_needed(void)
{
    if (L.fd < 0 || L.max_size == UINT64_MAX)
        return;
    struct stat st;
    if (fstat(L.fd, &st) != 0 || (uint64_t)st.st_size <= L.max_size)
        return;
    if (!L.rotate) {
        char line[256];
        int k = snprintf(line, sizeof(line),
                         "Log size = %llu, max = %llu\n"
                         "WARNING: Log size limit met but log file rotation turned off. Forcing log file "
                         "rotation anyways.\n",
                         (unsigned long long)st.st_size, (unsigned long long)L.max_size);
        if (k > 0)
            write_all(L.fd, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
    }
    size_t plen = strlen(L.path);
    size_t keep = plen > 4 ? plen - 4 : 0;
    char *rotated = malloc(keep + 32);
    if (!rotated)
        return;
    time_t t = now();
    struct tm tm;
    char when[32] = "00000000_000000";
    if (localtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y%m%d_%H%M%S", &tm);
    snprintf(rotated, keep + 32, "%.*s-%s.log", (int)keep, L.path, when);
    if (rename(L.path, rotated) == 0) {
        close_file();
        if (open_file() != CF_OK)
            L.fd = -1;
    }
    free(rotated);
}

static void reopen_if_requested(void)
{
    if (!reopen_requested || !L.path)
        return;
    reopen_requested = 0;
    close_file();
    if (open_file() != CF_OK)
        L.fd = -1;
}

static void emit(level lv, const char *fmt, va_list ap)
{
    if (lv == L_DEBUG && !L.verbose)
        return;
    if (lv == L_WARN && L.no_warnings)
        return; /* --no-warnings: nowhere, not even in the log (§8.1) */

    char small[1024], *msg = small;
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        if (!(msg = malloc((size_t)n + 1)))
            return;
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    }
    size_t len = (size_t)n;
    if (len && msg[len - 1] == '\n')
        len--;

    if (tap)
        tap(tap_arg,
            lv == L_ERROR   ? "error"
            : lv == L_WARN  ? "warning"
            : lv == L_DEBUG ? "debug"
                            : "info",
            msg, len);

    const char *prefix = lv == L_ERROR ? "ERROR: " : lv == L_WARN ? "WARNING: " : "";
    char ts[96] = "";
    if (L.ready && L.log_time && lv != L_TERM)
        stamp(ts, sizeof(ts));

    if (L.terminal && lv != L_NF && (lv == L_ERROR || !L.quiet)) {
        FILE *out = stdout;
        if ((lv == L_ERROR || lv == L_WARN) && !L.to_stdout)
            out = stderr;
        /* On the terminal the prefix comes before the timestamp (§8.2). */
        fprintf(out, "%s%s%.*s\n", prefix, ts, (int)len, msg);
        fflush(out);
    }

    if (L.ready && lv != L_TERM) {
        reopen_if_requested();
        rotate_if_needed();
        if (L.fd >= 0) {
            size_t total = strlen(ts) + strlen(prefix) + len + 1;
            char *line = malloc(total + 1);
            if (line) {
                snprintf(line, total + 1, "%s%s%.*s\n", ts, prefix, (int)len, msg);
                write_all(L.fd, line, total);
                free(line);
            }
        }
        if (L.syslog_on) {
            int pri = lv == L_ERROR   ? LOG_ERR
                      : lv == L_WARN  ? LOG_WARNING
                      : lv == L_DEBUG ? LOG_DEBUG
                                      : LOG_INFO;
            syslog(pri, "%.*s", (int)len, msg);
        }
    }
    if (msg != small)
        free(msg);
}

#define DEFINE_LOG_FN(fname, lv)                                                                             \
    void fname(const char *fmt, ...)                                                                         \
    {                                                                                                        \
        va_list ap;                                                                                          \
        va_start(ap, fmt);                                                                                   \
        emit(lv, fmt, ap);                                                                                   \
        va_end(ap);                                                                                          \
    }

DEFINE_LOG_FN(cf_log_info, L_INFO)
DEFINE_LOG_FN(cf_log_warn, L_WARN)
DEFINE_LOG_FN(cf_log_error, L_ERROR)
DEFINE_LOG_FN(cf_log_debug, L_DEBUG)
DEFINE_LOG_FN(cf_log_nf, L_NF)
DEFINE_LOG_FN(cf_log_term_only, L_TERM)

cf_code cf_log_init(const cf_settings *s, cf_err *e)
{
    cf_log_close();
    cf_log_init_terminal(s);
    L.log_time = s->log_time;
    L.rotate = s->log_rotate;
    L.max_size = s->log_file_max_size;

    int facility = -1;
    if (s->log_syslog) {
        const char *want = s->log_facility ? s->log_facility : "LOG_LOCAL6";
        for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
            if (strcmp(facilities[i].name, want) == 0)
                facility = facilities[i].value;
        if (facility < 0)
            return cf_err_set(e, CF_EFORMAT, "ERROR: LogFacility: %s: No such facility.", want);
    }

    if (s->log_file) {
        if (!(L.path = strdup(s->log_file)))
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
        if (open_file() != CF_OK) {
            cf_err_set(e, CF_EIO,
                       "ERROR: Problem with internal logger (UpdateLogFile = %s).\n"
                       "ERROR: initialize: libfreshclam init failed.\n"
                       "ERROR: Initialization error!",
                       L.path);
            free(L.path);
            L.path = NULL;
            return CF_EIO;
        }
    }
    L.ready = true;
    reopen_requested = 0;
    if (L.fd >= 0)
        cf_log_nf("%s", DASHES);
    /* freshclam opens syslog after writing the dashes (§4.0 step 4): that line
     * goes to the file only. */
    if (facility >= 0) {
        openlog("freshclam", LOG_PID, facility);
        L.syslog_on = true;
    }
    return CF_OK;
}

void cf_log_close(void)
{
    close_file();
    free(L.path);
    L.path = NULL;
    if (L.syslog_on)
        closelog();
    L.syslog_on = false;
    L.ready = false;
}

bool cf_log_progress_enabled(void)
{
    return L.terminal && !L.quiet && (L.show_progress || isatty(STDOUT_FILENO));
}

static void format_time(char *out, size_t n, double s)
{
    if (s < 60)
        snprintf(out, n, "%6.1fs", s);
    else if (s < 3600)
        snprintf(out, n, "%2.0fm %02.0fs", (double)(long)(s / 60), (double)((long)s % 60));
    else
        snprintf(out, n, "%2.0fh %02.0fm", (double)(long)(s / 3600), (double)(((long)s % 3600) / 60));
}

static void format_bytes(char *out, size_t n, uint64_t b, int width)
{
    if (b < 1024)
        snprintf(out, n, "%*.2fB", width, (double)b);
    else if (b < 1024 * 1024)
        snprintf(out, n, "%*.2fKiB", width, (double)b / 1024);
    else
        snprintf(out, n, "%*.2fMiB", width, (double)b / (1024 * 1024));
}

void cf_progress_format(char *out, size_t outsz, double elapsed_s, uint64_t done, uint64_t total)
{
    enum { CELLS = 25 };
    if (done > total)
        done = total;
    double eta = (done && total) ? elapsed_s / (double)done * (double)(total - done) : 0.0;
    size_t filled = total ? (size_t)((double)done / (double)total * CELLS) : 0;
    char bar[CELLS + 1];
    for (size_t i = 0; i < CELLS; i++)
        bar[i] = i + 1 < filled ? '=' : i + 1 == filled ? '>' : ' ';
    bar[CELLS] = '\0';
    char t1[32], t2[32], b1[32], b2[32];
    format_time(t1, sizeof(t1), elapsed_s);
    format_time(t2, sizeof(t2), eta);
    format_bytes(b1, sizeof(b1), done, 7);
    format_bytes(b2, sizeof(b2), total, 0);
    snprintf(out, outsz, "Time: %s, ETA: %s [%s] %s/%s", t1, t2, bar, b1, b2);
}

void cf_log_progress(double elapsed_s, uint64_t done, uint64_t total)
{
    if (!total || !cf_log_progress_enabled())
        return;
    char line[256];
    cf_progress_format(line, sizeof(line), elapsed_s, done, total);
    /* Auto-wrap off while drawing so a narrow terminal does not scroll (§8.5). */
    fprintf(stdout, "\033[?7l%s%s\033[?7h", line, done >= total ? "\n" : "\r");
    fflush(stdout);
}

void cf_log_notes(const cf_notes *notes)
{
    for (size_t i = 0; i < notes->n; i++) {
        const cf_note *t = &notes->item[i];
        switch (t->level) {
        case CF_NOTE_DEBUG:
            cf_log_debug("%s", t->text);
            break;
        case CF_NOTE_INFO:
            cf_log_info("%s", t->text);
            break;
        case CF_NOTE_WARN:
            cf_log_warn("%s", t->text);
            break;
        case CF_NOTE_ERROR:
            cf_log_error("%s", t->text);
            break;
        }
    }
}
