/* The run cycle, mirror mode and --check-only over the library (cycle.h); the
 * policy of one database's update is the updater's, the mechanisms are in
 * their modules. */
#include "clamfresh/cycle.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/clamd.h"
#include "clamfresh/dns.h"
#include "clamfresh/engine.h"
#include "clamfresh/fileio.h"
#include "clamfresh/http.h"
#include "clamfresh/install.h"
#include "clamfresh/limits.h"
#include "clamfresh/log.h"
#include "clamfresh/mirror.h"
#include "clamfresh/stage.h"
#include "clamfresh/state.h"
#include "clamfresh/updater.h"

/* A freshclam temporary directory this much older than our lock cannot
 * belong to a live freshclam run (they take seconds to minutes). */
#define FRESHCLAM_TMP_GRACE 3600

static void die_oom(void)
{
    fputs("ERROR: Memory allocation error\n", stderr);
    exit(CF_FC_EMEM);
}

/* The cool-down end in <dbdir>/freshclam.dat, read without creating or fixing
 * the file (cf_state_load would): 0 when absent or unreadable. An end further
 * than CF_COOLDOWN_MAX away is reported as a run would honour it. */
static int64_t read_cooldown(const char *dbdir, cf_state *st)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dbdir, CF_STATE_FILE);
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    cf_state tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof *st);
    int64_t until = 0;
    if (cf_file_read_db(p, 4096, &b, &e) == CF_OK && cf_state_decode(b.p, b.n, st, &e) == CF_OK) {
        /* cf_state_load's cap, applied to this copy only. */
        cf_state_cooldown_clamp(st, time(NULL));
        until = st->retry_after;
    } else
        memset(st, 0, sizeof *st);
    cf_buf_free(&b);
    return until;
}

/* rep->db for the configured databases: the updater's reports where there are
 * some, the local copy otherwise; the build time from the header on disk. */
static void report_fill_dbs(cf_report *rep, const cf_settings *s, const cf_dbreport *reps, size_t nreps,
                            const uint32_t *adv)
{
    rep->ndb = 0;
    for (size_t i = 0; i < s->databases.n && rep->ndb < CF_UPDATER_MAX_REPORTS; i++) {
        const char *db = s->databases.v[i];
        cf_report_db *d = &rep->db[rep->ndb++];
        memset(d, 0, sizeof *d);
        const cf_dbreport *found = NULL;
        for (size_t k = 0; k < nreps; k++)
            if (strcmp(reps[k].db, db) == 0)
                found = &reps[k];
        cf_cvdhdr h;
        char file[64];
        int have = cf_updater_local(s->database_directory, db, &h, file);
        if (found) {
            d->u = *found;
        } else {
            snprintf(d->u.db, sizeof d->u.db, "%s", db);
            d->u.before = have ? h.version : 0;
            d->u.advertised = adv ? adv[i] : 0;
        }
        d->u.after = have ? h.version : 0;
        d->build_time = have ? (int64_t)h.stime : 0;
    }
}

/* Writes the --metrics file; a failure is a warning, never the run's result. */
static void report_write_metrics(cf_report *rep, const cf_settings *s, int code, int success)
{
    if (!s->metrics_file)
        return;
    cf_buf old = CF_BUF_INIT;
    cf_err e = {0};
    if (!success) {
        /* A failed run keeps the previous success time. */
        if (cf_file_read_db(s->metrics_file, 1u << 20, &old, &e) == CF_OK)
            rep->last_success = cf_report_metrics_last_success((const char *)old.p, old.n);
        cf_buf_free(&old);
    } else {
        rep->last_success = rep->started;
    }
    rep->exit_code = code;
    cf_buf b = CF_BUF_INIT;
    if (cf_report_metrics(&b, rep) != CF_OK)
        die_oom();
    if (cf_report_write_atomic(s->metrics_file, b.p, b.n, &e) != CF_OK)
        cf_log_warn("%s", e.msg);
    cf_buf_free(&b);
}

unsigned cf_cycle_interval(const cf_settings *s)
{
    /* Test-only: lets the end-to-end tests watch two cycles in seconds. */
    const char *v = getenv("CLAMFRESH_DAEMON_INTERVAL");
    if (v && *v) {
        long n = strtol(v, NULL, 10);
        if (n > 0)
            return (unsigned)n;
    }
    long checks = s->checks > 0 ? s->checks : 12;
    return (unsigned)(86400 / checks);
}

int cf_cycle_drop_privileges(const cf_settings *s)
{
    if (geteuid() != 0)
        return 0;
    const char *user = s->database_owner ? s->database_owner : CF_DEFAULT_OWNER;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        cf_log_warn("Can't get information about user %s.", user);
        cf_log_error("Can't get information about user %s.", user);
        cf_log_error("Failed to switch to %s user.", user);
        return -1;
    }
    if (pw->pw_uid == 0)
        return 0;
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        cf_log_error("Failed to switch to %s user: %s", user, strerror(errno));
        return -1;
    }
    /* Refuse to go on if root could be regained. */
    if (setuid(0) == 0) {
        cf_log_error("Failed to switch to %s user: root privileges could be regained", user);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------- updater's outside */

/* What the updater's callbacks share: one arg for all of them. */
typedef struct env_ctx {
    cf_http *http;
    cf_cycle_ctx *a; /* for the load test's settings and its once-per-process note */
} env_ctx;

static void env_fetch(void *arg, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k)
{
    cf_http *h = ((const env_ctx *)arg)->http;
    cf_err e = {0};
    (void)cf_http_get_many(h, reqs, resps, n, k, &e);
}

static time_t env_now(void *arg)
{
    (void)arg;
    return time(NULL);
}

static void env_sleep(void *arg, unsigned s)
{
    (void)arg;
    struct timespec ts = {(time_t)s, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void env_log(void *arg, cf_msglevel lvl, const char *msg)
{
    (void)arg;
    switch (lvl) {
    case CF_MSG_DEBUG:
        cf_log_debug("%s", msg);
        break;
    case CF_MSG_INFO:
        cf_log_info("%s", msg);
        break;
    case CF_MSG_WARN:
        cf_log_warn("%s", msg);
        break;
    case CF_MSG_ERROR:
        cf_log_error("%s", msg);
        break;
    case CF_MSG_PROGRESS:
        if (cf_log_progress_enabled())
            cf_log_term_only("%s", msg);
        break;
    }
}

/* TestDatabases (§4.7) through libclamav when it is installed. */
static cf_code env_testdb(void *arg, const char *path, cf_err *e)
{
    const env_ctx *ec = arg;
    cf_cycle_ctx *a = ec->a;
    if (!a->s.test_databases)
        return CF_OK;
    cf_engine_test_result res;
    if (cf_engine_test_load(path, a->s.bytecode, &res, e) != CF_OK) {
        cf_log_warn("Database load could not be run: %s", e->msg);
        e->msg[0] = '\0';
        return CF_EIO;
    }
    if (res.status == CF_ENGINE_TEST_UNAVAILABLE) {
        if (!a->test_note_done) {
            cf_log_info(
                "libclamav is not available: the signed-manifest check (every file against the signed "
                ".info) stands in for the database load test.");
            a->test_note_done = 1;
        }
        return CF_OK;
    }
    /* freshclam's §4.7 lines, worded and ordered by the engine module. */
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_engine_test_notes(&res, &notes);
    cf_log_notes(&notes);
    if (res.status == CF_ENGINE_TEST_OK)
        return CF_OK;
    e->code = CF_ESIG;
    e->msg[0] = '\0';
    return CF_ESIG;
}

/* ------------------------------------------------------------------- DNS */

/* §4.2: versions[i] for s->databases.v[i], 0 = probe over HTTP. outdated gets
 * the newer ClamAV release when the record says ours is outdated; newest (may be
 * NULL) gets the record's release field whenever DNS answered. */
static void dns_versions(cf_cycle_ctx *a, uint32_t *versions, char *outdated, size_t outdated_sz,
                         char *newest, size_t newest_sz)
{
    const cf_settings *s = &a->s;
    outdated[0] = '\0';
    if (newest != NULL && newest_sz > 0)
        newest[0] = '\0';
    if (!s->dns_enabled) {
        cf_log_warn("DNS Update Info disabled. Falling back to HTTP mode.");
        return;
    }
    const char *name = s->dns_database_info ? s->dns_database_info : CF_DNSINFO_DEFAULT;
    char txt[CF_DNS_TXT_MAX];
    unsigned ttl = 0;
    cf_err e = {0};
    cf_log_debug("Querying %s", name);
    if (cf_dns_query_txt_from(name, s->local_address, txt, sizeof txt, &ttl, &e) != CF_OK) {
        cf_log_warn("Can't query %s", name);
        cf_log_warn("Invalid DNS reply. Falling back to HTTP mode.");
        return;
    }
    cf_log_debug("TTL: %u", ttl);
    cf_dnsinfo di;
    if (cf_dnsinfo_parse(txt, time(NULL), &di, &e) != CF_OK) {
        cf_log_warn("%s", e.msg);
        cf_log_warn("Invalid DNS reply. Falling back to HTTP mode.");
        return;
    }
    if (newest != NULL && newest_sz > 0)
        snprintf(newest, newest_sz, "%s", di.newest);
    if (cf_dnsinfo_outdated(&di, a->engine_version)) {
        cf_log_warn("Your ClamAV installation is OUTDATED!");
        cf_log_warn("Local version: %s Recommended version: %s", a->engine_version, di.newest);
        cf_log_info("DON'T PANIC! Read https://docs.clamav.net/manual/Installing.html");
        snprintf(outdated, outdated_sz, "%s", di.newest);
    }
    for (size_t i = 0; i < s->databases.n; i++) {
        const char *db = s->databases.v[i];
        unsigned v = 0;
        cf_code rc = cf_dnsinfo_db_version(&di, db, &v, &e);
        if (rc == CF_ENOTFOUND) {
            cf_log_debug("%s", e.msg);
            char qn[256], t2[CF_DNS_TXT_MAX];
            snprintf(qn, sizeof qn, "%s.%s", db, CF_DNS_DB_DOMAIN);
            if (cf_dns_query_txt_from(qn, s->local_address, t2, sizeof t2, NULL, &e) != CF_OK ||
                cf_dnsinfo_parse_db(t2, time(NULL), db, &v, &e) != CF_OK) {
                cf_log_warn("%s", e.code == CF_EFORMAT ? e.msg : "");
                if (e.code != CF_EFORMAT)
                    cf_log_warn("No timestamp in TXT record for %s.cvd", db);
                v = 0;
            }
        } else if (rc != CF_OK) {
            cf_log_warn("%s", e.msg);
            v = 0;
        }
        versions[i] = v;
    }
}

/* ------------------------------------------------------------ one cycle */

static void prune_report(void *arg, const char *name)
{
    (void)arg;
    cf_log_term_only("Pruning unwanted or deprecated database file %s.", name);
}

static void cleanup_report(void *arg, const char *name)
{
    (void)arg;
    cf_log_debug("Removed %s left behind by an interrupted update", name);
}

/* Names the run's private directory; the updater makes it when it first
 * stages a file (an up-to-date run never does). Here only whether dbdir takes
 * new entries at all is checked, for freshclam's error at start. */
static int name_tmpdir(const char *dbdir, char *out, size_t outsz)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (int i = 0; i < 8; i++)
            r[i] = (unsigned char)(rand() & 0xff);
    char rnd[9];
    for (int i = 0; i < 8; i++)
        rnd[i] = al[r[i] % (sizeof al - 1)];
    rnd[8] = '\0';
    /* Shaped like install's temporaries, so a killed run's directory is
     * removed by the next run's clean-up. */
    snprintf(out, outsz, "%s/.clamfresh.%s.tmp", dbdir, rnd);
    return faccessat(AT_FDCWD, dbdir, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : -1;
}

/* freshclam's bar (cf_log_progress); on a terminal, the transfer rate is
 * added after it. Anything that is not a terminal (a --show-progress run
 * piped to a file) gets freshclam's line unchanged. */
static void draw_progress(void *arg, double elapsed_s, uint64_t done, uint64_t total)
{
    (void)arg;
    if (!isatty(STDOUT_FILENO)) {
        cf_log_progress(elapsed_s, done, total);
        return;
    }
    if (!total || !cf_log_progress_enabled())
        return;
    char line[256];
    cf_progress_format(line, sizeof line, elapsed_s, done > total ? total : done, total);
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0.0;
    char rs[32];
    if (rate < 1024)
        snprintf(rs, sizeof rs, "%7.1fB/s", rate);
    else if (rate < 1024.0 * 1024)
        snprintf(rs, sizeof rs, "%7.1fKiB/s", rate / 1024);
    else
        snprintf(rs, sizeof rs, "%7.1fMiB/s", rate / (1024.0 * 1024));
    fprintf(stdout, "\033[?7l%s %s\033[K\033[?7h%s", line, rs, done >= total ? "\n" : "\r");
    fflush(stdout);
}

static int make_http(cf_cycle_ctx *a, const cf_state *st, cf_http **out)
{
    const cf_settings *s = &a->s;
    char ua[CF_HTTP_UA_MAX + 1];
    const char *agent = NULL;
    if (s->user_agent) {
        if (!s->private_mode && s->mirrors.n > 0 && strstr(s->mirrors.v[0], "clamav.net")) {
            cf_log_info(
                "In an effort to reduce CDN data costs, HTTPUserAgent may not be used when updating from "
                "clamav.net.");
            cf_log_info("The HTTPUserAgent specified in your config will be ignored so that FreshClam is not "
                        "blocked by the CDN.");
            cf_log_info(
                "If ClamAV's user agent is not allowed through your firewall/proxy, please contact your "
                "network administrator.");
        } else {
            agent = s->user_agent;
        }
    }
    if (!agent) {
        cf_http_user_agent(a->engine_version, st->uuid, ua);
        agent = ua;
    }
    if (s->proxy_host)
        cf_log_info("Connecting via %s", s->proxy_host);
    cf_http_params p = {
        .user_agent = agent,
        .connect_timeout = s->connect_timeout,
        .receive_timeout = s->receive_timeout,
        .stall_timeout = s->stall_timeout,
        .proxy_host = s->proxy_host,
        .proxy_port = s->proxy_port_effective,
        .proxy_user = s->proxy_username,
        .proxy_password = s->proxy_password,
        .local_ip = s->local_address,
        .verbose = s->verbose,
        .progress = cf_log_progress_enabled() ? draw_progress : NULL,
    };
    cf_err e = {0};
    if (cf_http_new(&p, out, &e) != CF_OK) {
        cf_log_error("%s", e.msg);
        return -1;
    }
    const char *why = cf_http_setup_error(*out);
    if (why) {
        /* freshclam reports a client certificate without key as a warning
         * (§1.2) but the LocalIPAddress failure as an error (§5.6). */
        if (s->local_address && strncmp(why, "create_curl_handle:", 19) == 0)
            cf_log_error("%s", why);
        else
            cf_log_warn("%s", why);
    }
    return 0;
}

static unsigned retry_delay(void)
{
    /* Test-only: CLAMFRESH_RETRY_DELAY replaces freshclam's 5 s between attempts. */
    const char *v = getenv("CLAMFRESH_RETRY_DELAY");
    if (v && *v) {
        long n = strtol(v, NULL, 10);
        if (n >= 0 && n <= 3600)
            return (unsigned)n;
    }
    return 5;
}

/* What the last cycle's updater reported, for report_fill_dbs. */
typedef struct cycle_reports {
    cf_dbreport reps[CF_UPDATER_MAX_REPORTS];
    size_t nreps;
    uint32_t adv[CF_UPDATER_MAX_REPORTS]; /* DNS versions, by s->databases index */
} cycle_reports;

static void cycle(cf_cycle_ctx *a, cf_cycle_result *out, cycle_reports *cr)
{
    const cf_settings *s = &a->s;
    const char *dbdir = s->database_directory;
    memset(out, 0, sizeof *out);
    cf_err e = {0};

    cf_dblock lk;
    if (cf_install_lock(dbdir, (unsigned)(s->lock_timeout > 0 ? s->lock_timeout : 0), &lk, NULL, &e) !=
        CF_OK) {
        cf_log_error("%s", e.msg);
        /* Our lock file is the first thing written, so it meets the case
         * freshclam reports at freshclam.dat (§9.1): same hint. */
        if (access(dbdir, W_OK | X_OK) != 0)
            cf_log_info("Hint: The database directory must be writable for UID %ld or GID %ld",
                        (long)getuid(), (long)getgid());
        out->code = CF_LOCK_EXIT;
        return;
    }
    cf_install_cleanup(dbdir, lk.acquired - FRESHCLAM_TMP_GRACE, cleanup_report, NULL, &e);

    cf_state st;
    int created = 0;
    if (cf_state_load(dbdir, &st, &created, &e) != CF_OK) {
        /* The message names the file and why: not a regular file, no space, ... */
        cf_log_error("%s", e.msg);
        if (e.code == CF_EIO)
            cf_log_info("Hint: The database directory must be writable for UID %ld or GID %ld",
                        (long)getuid(), (long)getgid());
        cf_install_unlock(&lk);
        out->code = CF_FC_EINIT;
        return;
    }
    if (created)
        cf_log_debug("Failed to load freshclam.dat; will create a new freshclam.dat");

    time_t now = time(NULL);
    cf_log_info("ClamAV update process started at %s", ctime(&now));

    if (s->prune) {
        const char **keep = calloc(s->databases.n + s->custom_url.n + 1, sizeof *keep);
        if (!keep)
            die_oom();
        size_t nk = 0;
        for (size_t i = 0; i < s->databases.n; i++)
            keep[nk++] = s->databases.v[i];
        for (size_t i = 0; i < s->custom_url.n; i++) {
            const char *u = s->custom_url.v[i];
            const char *b = strrchr(u, '/');
            b = b ? b + 1 : u;
            size_t bl = strlen(b);
            if (bl > 4 && strcmp(b + bl - 4, ".cvd") == 0)
                keep[nk++] = b;
        }
        cf_install_prune(dbdir, keep, nk, prune_report, NULL, &e);
        free(keep);
    }

    uint32_t *versions = calloc(s->databases.n + 1, sizeof *versions);
    if (!versions)
        die_oom();
    dns_versions(a, versions, out->outdated, sizeof out->outdated, NULL, 0);
    for (size_t i = 0; i < s->databases.n && i < CF_UPDATER_MAX_REPORTS; i++)
        cr->adv[i] = versions[i];

    char tmpdir[4096];
    if (name_tmpdir(dbdir, tmpdir, sizeof tmpdir) != 0) {
        cf_log_error("Can't create temporary directory %s", tmpdir);
        cf_log_info("Hint: The database directory must be writable for UID %ld or GID %ld", (long)getuid(),
                    (long)getgid());
        free(versions);
        cf_install_unlock(&lk);
        out->code = CF_FC_EDBDIRACCESS;
        return;
    }

    cf_http *http = NULL;
    int code;
    unsigned replaced = 0;
    if (make_http(a, &st, &http) != 0) {
        code = CF_FC_EINIT;
    } else {
        cf_update_opts o = {
            .dbdir = dbdir,
            .tmpdir = tmpdir,
            .mirrors = (const char *const *)s->mirrors.v,
            .nmirrors = s->mirrors.n,
            .private_mirror = s->private_mode,
            .max_attempts = s->max_attempts > 0 ? (unsigned)s->max_attempts : 0,
            .scripted = s->scripted_effective || (s->private_mode && s->scripted_updates),
            .compress_cld = s->compress_local_database,
            .concurrency = s->concurrent_downloads > 0 ? (unsigned)s->concurrent_downloads : 1,
            .retry_delay = retry_delay(),
            .strict_exit_codes = s->strict_exit_codes,
            .engine_flevel = a->engine_flevel,
            .verify = &a->vctx,
            .proxy_label = cf_http_proxy_label(http),
            .state = &st,
        };
        env_ctx ec = {http, a};
        cf_update_env env = {&ec, env_fetch, env_now, env_sleep, env_log, env_testdb};
        cf_updater u;
        cf_updater_init(&u, &o, &env);
        code = cf_updater_run(&u, (const char *const *)s->databases.v, versions, s->databases.n,
                              s->use_custom_urls ? (const char *const *)s->custom_url.v : NULL,
                              s->use_custom_urls ? s->custom_url.n : 0);
        replaced = u.replaced;
        cr->nreps = u.nreports;
        memcpy(cr->reps, u.reports, u.nreports * sizeof u.reports[0]);
        if (u.state_dirty && cf_state_save(dbdir, &st, &e) != CF_OK)
            cf_log_warn("%s", e.msg);
        cf_http_free(http);
    }
    free(versions);

    if (code == CF_FC_UPTODATE)
        code = CF_FC_SUCCESS;
    if (code == CF_FC_SUCCESS && replaced > 0 && s->notify_clamd) {
        cf_clamd_result res;
        cf_clamd_notify(s->notify_clamd, 0, &res, &e);
        cf_log_notes(&res.notes);
    }
    /* Our temporary directory (and anything else of ours) goes. */
    cf_install_cleanup(dbdir, 0, NULL, NULL, &e);
    cf_install_unlock(&lk);
    if (code != CF_FC_SUCCESS && code != CF_FC_EMIRRORNOTSYNC && code != CF_FC_ERETRYLATER)
        cf_log_error("Database update process failed: %s", cf_fc_str(code));
    out->code = code;
    out->replaced = replaced;
}

void cf_cycle_run(cf_cycle_ctx *a, cf_cycle_result *out)
{
    const cf_settings *s = &a->s;
    cf_report *rep = a->rep;
    cycle_reports *cr = calloc(1, sizeof *cr);
    if (!cr)
        die_oom();
    rep->started = (int64_t)time(NULL);
    cycle(a, out, cr);
    report_fill_dbs(rep, s, cr->reps, cr->nreps, cr->adv);
    free(cr);
    rep->cooldown_until = read_cooldown(s->database_directory, NULL);
    report_write_metrics(rep, s, out->code, out->code == CF_FC_SUCCESS);
}

/* --metrics in mirror mode: what the mirror publishes now, per database. */
static void report_fill_mirror(cf_report *rep, const cf_settings *s, const uint32_t *before,
                               const uint32_t *advertised)
{
    rep->ndb = 0;
    for (size_t i = 0; i < s->databases.n && rep->ndb < CF_UPDATER_MAX_REPORTS; i++) {
        const char *db = s->databases.v[i];
        cf_report_db *d = &rep->db[rep->ndb++];
        memset(d, 0, sizeof *d);
        snprintf(d->u.db, sizeof d->u.db, "%s", db);
        d->u.before = before[i];
        d->u.after = cf_mirror_published(s->mirror_directory, db);
        d->u.advertised = advertised[i];
        char name[128];
        cf_cvdhdr h;
        snprintf(name, sizeof name, "%s.cvd", db);
        if (d->u.after && cf_cycle_read_header(s->mirror_directory, name, &h))
            d->build_time = (int64_t)h.stime;
        if (d->u.after > d->u.before)
            snprintf(d->u.how, sizeof d->u.how, "mirror");
    }
}

/* Mirror mode (mirror.h): fill MirrorDirectory instead of DatabaseDirectory. */
int cf_cycle_mirror(cf_cycle_ctx *a)
{
    const cf_settings *s = &a->s;
    cf_report *rep = a->rep;
    cf_err e = {0};
    cf_state st;
    int created = 0;
    if (cf_state_load(s->database_directory, &st, &created, &e) != CF_OK) {
        cf_log_error("%s", e.msg);
        return CF_FC_EINIT;
    }
    time_t now = time(NULL);
    cf_log_info("ClamAV update process started at %s", ctime(&now));
    uint32_t *versions = calloc(s->databases.n + 1, sizeof *versions);
    if (!versions)
        die_oom();
    char outdated[64];
    char newest[sizeof outdated];
    dns_versions(a, versions, outdated, sizeof outdated, newest, sizeof newest);
    cf_http *http = NULL;
    if (make_http(a, &st, &http) != 0) {
        free(versions);
        return CF_FC_EINIT;
    }
    cf_mirror_opts o = {
        .dir = s->mirror_directory,
        .dbs = (const char *const *)s->databases.v,
        .ndbs = s->databases.n,
        .versions = versions,
        .mirrors = (const char *const *)s->mirrors.v,
        .nmirrors = s->mirrors.n,
        .concurrency = s->concurrent_downloads > 0 ? (unsigned)s->concurrent_downloads : 1,
        .keep_patches = (unsigned)s->mirror_keep_patches,
        .max_attempts = s->max_attempts > 0 ? (unsigned)s->max_attempts : 1,
        .retry_delay = retry_delay(),
        .lock_timeout = (unsigned)(s->lock_timeout > 0 ? s->lock_timeout : 0),
        .verify = &a->vctx,
        .newest_clamav = newest[0] ? newest : NULL,
        .state = &st,
    };
    cf_state st_before = st;
    env_ctx ec = {http, a};
    cf_update_env env = {&ec, env_fetch, env_now, env_sleep, env_log, NULL};
    uint32_t *before = calloc(s->databases.n + 1, sizeof *before);
    if (!before)
        die_oom();
    for (size_t i = 0; i < s->databases.n; i++)
        before[i] = cf_mirror_published(s->mirror_directory, s->databases.v[i]);
    int code = cf_mirror_run(&o, &env);
    cf_http_free(http);
    /* A 403/429 from upstream (or an expired cool-down) changed the state:
     * the next mirror run must see it, as a client's would. */
    if (memcmp(&st, &st_before, sizeof st) != 0 && cf_state_save(s->database_directory, &st, &e) != CF_OK)
        cf_log_warn("%s", e.msg);
    report_fill_mirror(rep, s, before, versions);
    rep->cooldown_until = read_cooldown(s->database_directory, NULL);
    report_write_metrics(rep, s, code == CF_FC_UPTODATE ? CF_FC_SUCCESS : code,
                         code == CF_FC_SUCCESS || code == CF_FC_UPTODATE);
    free(before);
    free(versions);
    if (code != CF_FC_SUCCESS && code != CF_FC_UPTODATE) {
        cf_log_error("Database update process failed: %s", cf_fc_str(code));
        cf_log_error("Update failed.");
        return code;
    }
    return CF_FC_SUCCESS;
}

/* --check-only: the versions and the cool-down, as a monitoring plugin sees
 * them. Nothing in DatabaseDirectory is written: no lock (a running update
 * must not be blocked, nor block the check), no freshclam.dat, no download;
 * only DNS and, for a database DNS gives no version for, the header probe. */
int cf_cycle_check(cf_cycle_ctx *a)
{
    const cf_settings *s = &a->s;
    cf_report *rep = a->rep;
    rep->check_only = 1;
    cf_state st;
    rep->cooldown_until = read_cooldown(s->database_directory, &st);
    int64_t now = (int64_t)time(NULL);
    int cooling = rep->cooldown_until > now;

    /* The plugin's first line must be its status: the run's own messages are
     * kept for --json (and shown with -v) but not printed before it. */
    if (!s->verbose)
        cf_log_set_terminal(false);
    uint32_t *versions = calloc(s->databases.n + 1, sizeof *versions);
    if (!versions)
        die_oom();
    char outdated[64];
    dns_versions(a, versions, outdated, sizeof outdated, NULL, 0);
    int need_probe = 0;
    for (size_t i = 0; i < s->databases.n; i++)
        need_probe |= versions[i] == 0;
    if (need_probe && cooling) {
        /* The CDN asked for silence: the check does not ask it either. */
        cf_log_info("On cool-down: no version probe");
    } else if (need_probe) {
        cf_http *http = NULL;
        if (make_http(a, &st, &http) == 0) {
            cf_update_opts o = {
                .dbdir = s->database_directory,
                .mirrors = (const char *const *)s->mirrors.v,
                .nmirrors = s->mirrors.n,
                .private_mirror = s->private_mode,
                .max_attempts = 1,
                .proxy_label = cf_http_proxy_label(http),
                .state = NULL, /* a 403/429 seen here changes no file */
            };
            env_ctx ec = {http, a};
            cf_update_env env = {&ec, env_fetch, env_now, env_sleep, env_log, NULL};
            cf_updater u;
            cf_updater_init(&u, &o, &env);
            for (size_t i = 0; i < s->databases.n; i++)
                if (versions[i] == 0 &&
                    cf_updater_probe(&u, s->databases.v[i], &versions[i]) != CF_FC_SUCCESS)
                    versions[i] = 0;
            cf_http_free(http);
        }
    }
    cf_log_set_terminal(true);
    report_fill_dbs(rep, s, NULL, 0, versions);
    free(versions);

    cf_report_thresholds t = {s->warn_behind, s->crit_behind};
    cf_report_status v = cf_report_verdict(rep, &t, now);
    cf_buf b = CF_BUF_INIT;
    if (cf_report_check_text(&b, rep, &t, now) != CF_OK)
        die_oom();
    fwrite(b.p, 1, b.n, stdout);
    fflush(stdout);
    cf_buf_free(&b);
    rep->started = now;
    report_write_metrics(rep, s, (int)v, 0);
    return (int)v;
}

int cf_cycle_read_header(const char *dir, const char *name, cf_cvdhdr *h)
{
    return cf_stage_read_header(dir, name, h);
}
