/* clamfresh: freshclam's command line over the library. main() follows
 * freshclam's order of operations (freshclam-behavior.md §4.0) up to the choice
 * of mode; one run (single shot, daemon cycle, mirror mode, --check-only) is
 * the library's (cycle.h), the policy of one database's update the updater's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "clamfresh/cvd.h"
#include "clamfresh/engine.h"
#include "clamfresh/fcerr.h"
#include "clamfresh/fileio.h"
#include "clamfresh/http.h"
#include "clamfresh/log.h"
#include "clamfresh/report.h"
#include "clamfresh/version.h"

static void die_oom(void)
{
    fputs("ERROR: Memory allocation error\n", stderr);
    exit(CF_FC_EMEM);
}

/* --json, --metrics and --check-only: what the run did, filled as it goes. */
static cf_report g_rep;
static int g_json_fd = -1; /* --json to the original stdout */

static void report_tap(void *arg, const char *level, const char *msg, size_t len)
{
    cf_report_add_msg(arg, level, msg, len);
}

/* ------------------------------------------------------------------ main */

static int print_version(const cf_app *a)
{
    cf_cvdhdr c1, c2, *best = NULL;
    const char *dir = a->c.s.database_directory;
    int h1 = dir && cf_cycle_read_header(dir, "daily.cvd", &c1);
    int h2 = dir && cf_cycle_read_header(dir, "daily.cld", &c2);
    if (h1)
        best = &c1;
    if (h2 && (!best || c2.version > best->version))
        best = &c2;
    char line[512];
    if (cf_version_format(a->c.engine_version, best, line, sizeof line) != CF_OK)
        snprintf(line, sizeof line, "ClamAV %s", a->c.engine_version);
    printf("%s\n", line);
    return 0;
}

/* freshclam creates a missing database directory before dropping privileges (§9.1). */
static int ensure_dbdir(const cf_settings *s)
{
    const char *dir = s->database_directory;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            cf_log_error("%s is not a directory", dir);
            return -1;
        }
        return 0;
    }
    cf_log_info("Creating missing database directory: %s", dir);
    if (mkdir(dir, 0755) != 0) {
        cf_log_error("Failed to create database directory: %s", dir);
        cf_log_info("Manually prepare the database directory, or re-run freshclam with higher privileges.");
        return -1;
    }
    if (geteuid() == 0) {
        const char *user = s->database_owner ? s->database_owner : CF_DEFAULT_OWNER;
        struct passwd *pw = getpwnam(user);
        if (pw && chown(dir, pw->pw_uid, pw->pw_gid) == 0)
            cf_log_info("Assigned ownership of database directory to user \"%s\".", user);
    }
    return 0;
}

static int load_trust(cf_app *a)
{
    const cf_settings *s = &a->c.s;
    cf_err e = {0};
    if (cf_trust_init_builtin(&a->c.trust, &e) != CF_OK ||
        cf_trust_load(&a->c.trust, s->cvd_public_key, s->info_public_key, s->cdiff_public_key, &e) != CF_OK) {
        cf_log_error("%s", e.msg);
        return -1;
    }
    const char *dir = s->cvd_certs_dir ? s->cvd_certs_dir : cf_certstore_default_dir();
    if (cf_certstore_load(dir, &a->c.certs, &e) != CF_OK) {
        int explicit_dir =
            s->cvd_certs_dir_opt != NULL || (getenv("CVD_CERTS_DIR") && *getenv("CVD_CERTS_DIR"));
        if (explicit_dir) {
            cf_log_error("Failed to create a new code-signature verifier: Invalid certs directory %s", dir);
            return -1;
        }
        /* The 1.4 layout has no certs directory: the embedded signatures still
         * protect every file, so the .sign files are just not consulted. */
        cf_log_debug("No certificates directory %s (%s): .sign files will not be checked", dir, e.msg);
        a->c.certs = NULL;
    }
    unsigned flevel = a->c.engine_flevel ? a->c.engine_flevel : CF_FALLBACK_FLEVEL;
    a->c.vctx =
        (cf_verifyctx){.trust = &a->c.trust, .certs = a->c.certs, .flevel = flevel, .fips = s->fips_limits};
    return 0;
}

static int run_hook(cf_hook_type type, const char *cmd, const char *version)
{
    if (!cmd)
        return -1;
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    int status = -1;
    cf_hook_run(type, cmd, version, &status, &notes, &e);
    cf_log_notes(&notes);
    return status;
}

/* A failure after the config was read (§2 code >= 2): freshclam runs
 * OnErrorExecute on its way out, for configuration and initialisation errors
 * as well as failed updates (§7). Returns the exit status. */
static int fail_after_config(cf_app *a, int code)
{
    const char *cmd = a->c.s.on_error_execute;
    /* A --check-only run reports; it is not an update that failed. */
    if (code < 2 || !cmd || a->c.s.check_only)
        return code;
    if (a->c.s.daemon) {
        /* Daemon semantics: EXIT_<n> is an ordinary command, run in the background. */
        cf_notes notes;
        cf_notes_clear(&notes);
        cf_err e = {0};
        cf_hook_pool_init(&a->pool);
        cf_hook_pool_spawn(&a->pool, CF_HOOK_ERROR, cmd, NULL, &notes, &e);
        cf_log_notes(&notes);
        return code;
    }
    int n = run_hook(CF_HOOK_ERROR, cmd, NULL);
    return n >= 0 ? n : code;
}

static void on_sigint(int sig)
{
    (void)sig;
    /* Nothing half-done survives a kill: the next run cleans up. */
    _exit(0);
}

/* The engine's facts cache is a DatabaseDirectory file: the store's rules. */
static const cf_engine_facts_io facts_io = {cf_file_read_db, cf_file_replace_db};

static int run(cf_app *a, const cf_cli_result *cr)
{
    cf_cli_result r = *cr;
    cf_log_init_terminal(&a->c.s);
    cf_err e = {0};
    cf_code rc = cf_config_load(&a->c.s, NULL, &e);
    if (rc != CF_OK) {
        cf_settings_print_err(&e);
        return cf_settings_exit_code(rc);
    }
    cf_log_init_terminal(&a->c.s);
    /* libclamav's version and f-level from the cache beside the databases
     * while the library file is unchanged: an up-to-date run never opens it. */
    if (a->c.s.database_directory) {
        char facts[4096];
        if (snprintf(facts, sizeof facts, "%s/%s", a->c.s.database_directory, CF_ENGINE_FACTS_FILE) <
            (int)sizeof facts)
            cf_engine_facts_cache(facts, r.action == CF_CLI_RUN && !a->c.s.check_only, &facts_io);
    }
    a->c.engine_version = cf_engine_version();
    if (r.action == CF_CLI_VERSION)
        return print_version(a);
    if (r.action == CF_CLI_LIST_MIRRORS) {
        cf_log_warn("Deprecated option --list-mirrors. Individual mirrors are no longer tracked, as official "
                    "signature distribution is now done through the CloudFlare CDN.");
        return 0;
    }
    rc = cf_settings_finish(&a->c.s, &e);
    if (rc != CF_OK) {
        cf_settings_print_err(&e);
        return fail_after_config(a, cf_settings_exit_code(rc));
    }
    cf_settings *s = &a->c.s;
    a->daemon = s->daemon;
    unsigned lib_flevel = cf_engine_flevel();
    a->c.engine_flevel = s->engine_flevel > 0 ? (unsigned)s->engine_flevel : lib_flevel;
    cf_engine_set_debug(s->debug);

    if (s->check_only) {
        /* No log file: a running freshclam holds its lock, and a plugin run
         * every few minutes has nothing to add to the update log. */
        if (cf_cycle_drop_privileges(s) != 0)
            return CF_REPORT_UNKNOWN;
        return cf_cycle_check(&a->c);
    }

    /* §4.0 step 4: initialisation; every failure is exit 2. */
    if (ensure_dbdir(s) != 0)
        return fail_after_config(a, CF_FC_EINIT);
    if (!a->daemon && cf_cycle_drop_privileges(s) != 0) {
        cf_log_error("Initialization error!");
        return fail_after_config(a, CF_FC_EINIT);
    }
    if (cf_log_init(s, &e) != CF_OK) {
        cf_settings_print_err(&e);
        return fail_after_config(a, CF_FC_EINIT);
    }
    if (load_trust(a) != 0) {
        cf_log_error("Initialization error!");
        return fail_after_config(a, CF_FC_EINIT);
    }
    if (!a->daemon)
        cf_engine_facts_save(); /* as DatabaseOwner, now */

    if (s->mirror_directory)
        return fail_after_config(a, cf_cycle_mirror(&a->c));
    if (a->daemon) {
        /* The daemon runs OnErrorExecute after each failed cycle itself (a 403
         * included); what remains is a failure to start it. */
        int dc = cf_daemon_main(a);
        return dc == CF_FC_EFORBIDDEN ? dc : fail_after_config(a, dc);
    }

    signal(SIGINT, on_sigint);
    cf_cycle_result c;
    cf_cycle_run(&a->c, &c);
    int code = c.code;
    if (code == CF_FC_SUCCESS || code == CF_FC_EMIRRORNOTSYNC || code == CF_FC_ERETRYLATER) {
        if (c.replaced > 0) {
            int n = run_hook(CF_HOOK_UPDATE, s->on_update_execute, NULL);
            if (n >= 0)
                return n;
        }
        if (c.outdated[0]) {
            int n = run_hook(CF_HOOK_OUTDATED, s->on_outdated_execute, c.outdated);
            if (n >= 0)
                return n;
        }
        return code;
    }
    cf_log_error("Update failed.");
    return fail_after_config(a, code);
}

/* --json: the document for the whole run, to FILE or to the original stdout. */
static void write_json(const cf_settings *s, int code)
{
    g_rep.exit_code = code;
    cf_buf b = CF_BUF_INIT;
    if (cf_report_json(&b, &g_rep) != CF_OK)
        die_oom();
    if (strcmp(s->json_file, "-") == 0) {
        fflush(stdout);
        cf_err we = {0};
        if (cf_fd_write_all(g_json_fd, b.p, b.n, &we) != CF_OK)
            fprintf(stderr, "WARNING: --json: %s\n", we.msg);
    } else {
        cf_err e = {0};
        if (cf_report_write_atomic(s->json_file, b.p, b.n, &e) != CF_OK)
            fprintf(stderr, "ERROR: %s\n", e.msg);
    }
    cf_buf_free(&b);
}

int main(int argc, char **argv)
{
    static cf_app app;
    cf_app *a = &app;
    a->c.rep = &g_rep;
    signal(SIGPIPE, SIG_IGN);
    g_rep.started = (int64_t)time(NULL);
    g_rep.version = CF_VERSION;
    cf_settings_init(&a->c.s);
    cf_cli_result r = {0};
    cf_cli_parse(argc, argv, &a->c.s, &r);
    if (r.action == CF_CLI_ERROR)
        return r.exit_code;
    if (r.action == CF_CLI_HELP) {
        cf_cli_help(stdout, cf_engine_version());
        return 0;
    }
    /* One document per run: a daemon never finishes one, so --json is for
     * single runs and --check-only (the daemon writes --metrics per cycle). */
    int json = r.action == CF_CLI_RUN && a->c.s.json_file != NULL && !a->c.s.daemon;
    if (json && strcmp(a->c.s.json_file, "-") == 0) {
        /* stdout carries the document alone (`clamfresh --json > run.json` in
         * a Dockerfile); everything the run prints goes to stderr. */
        fflush(stdout);
        g_json_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (g_json_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
            fprintf(stderr, "ERROR: --json: can't set up stdout: %s\n", strerror(errno));
            return CF_FC_EINIT;
        }
    }
    if (json)
        cf_log_set_tap(report_tap, &g_rep);
    int code = run(a, &r);
    /* A plugin must exit 0-3: a configuration error is UNKNOWN. */
    if (a->c.s.check_only && (code < 0 || code > CF_REPORT_UNKNOWN))
        code = CF_REPORT_UNKNOWN;
    if (json)
        write_json(&a->c.s, code);
    return code;
}
