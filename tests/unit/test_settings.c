/* Command line, freshclam.conf and derived settings (freshclam-behavior.md §1, §3, §4.1). */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/log.h"
#include "clamfresh/settings.h"

/* ---- capturing stdout and stderr ---- */

static char *tmpdir;

typedef cf_test_capture capture;

static void cap_begin(capture *c)
{
    cf_test_capture_begin(c, tmpdir);
}

static void cap_end(capture *c)
{
    cf_test_capture_end(c);
}

static void cap_free(capture *c)
{
    cf_test_capture_free(c);
}

/* ---- helpers ---- */

static char *write_conf(const char *name, const char *text, mode_t mode)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

/* Parses a NULL-terminated argument list (program name added). */
static cf_code parse_args(cf_settings *s, cf_cli_result *r, capture *c, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "freshclam";
    va_list ap;
    va_start(ap, c);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    cap_begin(c);
    cf_code rc = cf_cli_parse(argc, argv, s, r);
    cap_end(c);
    return rc;
}

#define ARGS(...) parse_args(&s, &r, &c, __VA_ARGS__, (char *)NULL)

/* Loads text as a config file; returns the code, captured output in c. */
static cf_code load_text(cf_settings *s, const char *text, capture *c, cf_err *e)
{
    char *path = write_conf("t.conf", text, 0600);
    cap_begin(c);
    cf_code rc = cf_config_load(s, path, e);
    cap_end(c);
    return rc;
}

static cf_code finish(cf_settings *s, capture *c, cf_err *e)
{
    cap_begin(c);
    cf_code rc = cf_settings_finish(s, e);
    cap_end(c);
    return rc;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    cf_settings s;
    cf_settings_init(&s);
    assert_string_equal(s.database_directory, "/var/lib/clamav");
    assert_string_equal(s.database_owner, "clamav");
    assert_string_equal(s.config_file, "/etc/clamav/freshclam.conf");
    assert_string_equal(s.dns_database_info, "current.cvd.clamav.net");
    assert_string_equal(s.log_facility, "LOG_LOCAL6");
    assert_int_equal(s.checks, 12);
    assert_int_equal(s.max_attempts, 3);
    assert_int_equal(s.connect_timeout, 30);
    assert_int_equal(s.receive_timeout, 60);
    assert_int_equal(s.log_file_max_size, 1048576);
    assert_true(s.scripted_updates && s.test_databases && s.bytecode);
    assert_false(s.compress_local_database || s.log_time || s.log_rotate || s.verbose);
    assert_null(s.log_file);
    assert_null(s.notify_clamd);
    assert_int_equal(s.stall_timeout, 120);
    assert_int_equal(s.lock_timeout, 60);
    assert_int_equal(s.concurrent_downloads, 8);
    assert_false(s.strict_exit_codes);
    assert_null(s.mirror_directory);
    assert_int_equal(s.engine_flevel, 0);
    for (int i = 0; i < CF_OPT__COUNT; i++)
        assert_false(cf_settings_is_set(&s, (cf_opt_id)i));
    cf_settings_free(&s);
}

/* ---- command line ---- */

static void test_cli_forms(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    capture c;
    cf_settings_init(&s);
    assert_int_equal(ARGS("-v", "-dF", "-l", "one.log", "-ltwo.log", "-c", "5", "--checks=7", "--datadir",
                          "/db", "--user=u1", "-u", "u2", "-p", "/p.pid", "-a", "10.0.0.1",
                          "--on-update-execute=up", "--on-error-execute", "err", "--on-outdated-execute=old",
                          "--config-file=/x.conf"),
                     CF_OK);
    assert_int_equal(r.action, CF_CLI_RUN);
    assert_string_equal(c.err, "");
    assert_true(s.verbose && s.daemon && s.foreground);
    assert_string_equal(s.log_file, "one.log"); /* first occurrence wins */
    assert_int_equal(s.checks, 5);
    assert_string_equal(s.database_directory, "/db");
    assert_string_equal(s.database_owner, "u1");
    assert_string_equal(s.pid_file, "/p.pid");
    assert_string_equal(s.local_address, "10.0.0.1");
    assert_string_equal(s.on_update_execute, "up");
    assert_string_equal(s.on_error_execute, "err");
    assert_string_equal(s.on_outdated_execute, "old");
    assert_string_equal(s.config_file, "/x.conf");
    assert_true(s.config_explicit);
    assert_true(s.set_by_cli[CF_OPT_CHECKS]);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_cli_booleans(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    capture c;
    cf_settings_init(&s);
    assert_int_equal(ARGS("--quiet=YES", "--stdout=no", "--foreground=true", "--no-dns=0", "--show-progress",
                          "--no-warnings=1", "--log-rotate=False", "--debug=TRUE"),
                     CF_OK);
    assert_true(s.quiet && s.foreground && s.show_progress && s.no_warnings && s.debug);
    assert_false(s.to_stdout || s.no_dns || s.log_rotate);
    assert_true(cf_settings_is_set(&s, CF_OPT_LOG_ROTATE));
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--quiet=maybe"), CF_EFORMAT);
    assert_int_equal(r.action, CF_CLI_ERROR);
    assert_int_equal(r.exit_code, 2);
    assert_string_equal(c.err, "ERROR: Incorrect argument format for option --quiet\n"
                               "ERROR: Can't parse command line options\n");
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--foreground=maybe"), CF_EFORMAT);
    assert_string_equal(c.err, "ERROR: Incorrect argument format for option --foreground (-F)\n"
                               "ERROR: Can't parse command line options\n");
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--checks=-1"), CF_EFORMAT);
    assert_string_equal(c.err, "ERROR: Incorrect argument format for option --checks (-c)\n"
                               "ERROR: Can't parse command line options\n");
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_cli_errors(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *arg2, *err;
    } cases[] = {
        {"--bogus", NULL,
         "freshclam: unrecognized option `--bogus'\nERROR: Unknown option passed\n"
         "ERROR: Can't parse command line options\n"},
        {"-x", NULL,
         "freshclam: illegal option -- x\nERROR: Unknown option passed\nERROR: Can't parse command line "
         "options\n"},
        {"-vx", NULL,
         "freshclam: illegal option -- x\nERROR: Unknown option passed\nERROR: Can't parse command line "
         "options\n"},
        {"--d", NULL,
         "freshclam: option `--d' is ambiguous\nERROR: Unknown option passed\n"
         "ERROR: Can't parse command line options\n"},
        {"--log", NULL,
         "freshclam: option `--log' requires an argument\nERROR: Incomplete option passed (missing "
         "argument)\n"
         "ERROR: Can't parse command line options\n"},
        {"-l", NULL,
         "freshclam: option requires an argument -- l\nERROR: Incomplete option passed (missing argument)\n"
         "ERROR: Can't parse command line options\n"},
        {"--log=", NULL,
         "ERROR: Option --log (-l) requires a non-empty string argument\nERROR: Can't parse command line "
         "options\n"},
        {"--update-db=", NULL,
         "ERROR: Option --update-db requires a non-empty string argument\n"
         "ERROR: Can't parse command line options\n"},
        {"--http-proxy=x", "--bogus",
         "WARNING: Ignoring deprecated option --http-proxy\nfreshclam: unrecognized option `--bogus'\n"
         "ERROR: Unknown option passed\nERROR: Can't parse command line options\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cf_settings s;
        cf_cli_result r;
        capture c;
        cf_settings_init(&s);
        cf_code rc =
            cases[i].arg2 ? ARGS((char *)cases[i].arg, (char *)cases[i].arg2) : ARGS((char *)cases[i].arg);
        assert_int_equal(rc, CF_EFORMAT);
        assert_int_equal(r.action, CF_CLI_ERROR);
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(c.err, cases[i].err);
        assert_string_equal(c.out, "");
        cap_free(&c);
        cf_settings_free(&s);
    }
}

static void test_cli_misc(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    capture c;

    /* Non-option arguments are ignored, "--" ends the options, --update-db accumulates. */
    cf_settings_init(&s);
    assert_int_equal(ARGS("foo", "--update-db=test", "bar", "--update-db", "daily", "--", "--bogus"), CF_OK);
    assert_int_equal(r.action, CF_CLI_RUN);
    assert_int_equal(s.update_db.n, 2);
    assert_string_equal(s.update_db.v[0], "test");
    assert_string_equal(s.update_db.v[1], "daily");
    cap_free(&c);
    cf_settings_free(&s);

    /* --daemon-notify takes its value only after '=' (§1.2). */
    cf_settings_init(&s);
    assert_int_equal(ARGS("--daemon-notify", "/tmp/other.conf"), CF_OK);
    assert_string_equal(s.notify_clamd, "/etc/clamav/clamd.conf");
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(ARGS("--daemon-notify=/tmp/other.conf"), CF_OK);
    assert_string_equal(s.notify_clamd, "/tmp/other.conf");
    cap_free(&c);
    cf_settings_free(&s);

    /* Deprecated options are warned about and ignored; unique prefixes work like getopt_long. */
    cf_settings_init(&s);
    assert_int_equal(ARGS("--proxy-user", "bob", "--log-verbose", "--verb"), CF_OK);
    assert_string_equal(c.err, "WARNING: Ignoring deprecated option --proxy-user\n"
                               "WARNING: Ignoring deprecated option --log-verbose\n");
    assert_true(s.verbose);
    cap_free(&c);
    cf_settings_free(&s);

    /* Actions. */
    cf_settings_init(&s);
    assert_int_equal(ARGS("-V", "-h"), CF_OK);
    assert_int_equal(r.action, CF_CLI_HELP);
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(ARGS("--version"), CF_OK);
    assert_int_equal(r.action, CF_CLI_VERSION);
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(ARGS("--list-mirrors"), CF_OK);
    assert_int_equal(r.action, CF_CLI_LIST_MIRRORS);
    cap_free(&c);
    cf_settings_free(&s);

    /* Our additions. */
    cf_settings_init(&s);
    assert_int_equal(
        ARGS("--trust-key=/k.pem", "--lock-timeout", "0", "--strict-exit-codes", "--mirror=/srv/m"), CF_OK);
    assert_string_equal(s.cvd_public_key, "/k.pem");
    assert_string_equal(s.info_public_key, "/k.pem");
    assert_string_equal(s.cdiff_public_key, "/k.pem");
    assert_int_equal(s.lock_timeout, 0);
    assert_true(s.strict_exit_codes);
    assert_string_equal(s.mirror_directory, "/srv/m");
    cf_err e = {0};
    capture c2;
    /* The command line wins over the config's per-role keys. */
    assert_int_equal(load_text(&s, "CVDPublicKey /other.pem\nStallTimeout 5\n", &c2, &e), CF_OK);
    assert_string_equal(s.cvd_public_key, "/k.pem");
    assert_int_equal(s.stall_timeout, 5);
    cap_free(&c2);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_help_text(void **state)
{
    (void)state;
    capture c;
    cap_begin(&c);
    cf_cli_help(stdout, "1.4.6");
    cap_end(&c);
    assert_non_null(strstr(c.out, "                      Clam AntiVirus: Database Updater 1.4.6\n"));
    assert_non_null(strstr(c.out, "    --update-db=DBNAME                   Only update database DBNAME\n"));
    assert_non_null(strstr(c.out, "clamfresh additions"));
    assert_non_null(strstr(c.out, "--trust-key=FILE"));
    assert_non_null(strstr(c.out, "--strict-exit-codes"));
    assert_non_null(strstr(c.out, "--lock-timeout"));
    assert_non_null(strstr(c.out, "--mirror=DIRECTORY"));
    assert_non_null(strstr(c.out, "Environment Variables:\n"));
    assert_non_null(strstr(c.out, "FRESHCLAM_CLIENT_KEY_PASSWD"));
    cap_free(&c);
}

/* ---- freshclam.conf ---- */

static void test_config_basic(void **state)
{
    (void)state;
    cf_settings s;
    cf_err e = {0};
    capture c;
    cf_settings_init(&s);
    /* Indented lines with blank first/last lines, as ClamAV's test harness writes them. */
    const char *text = "\n"
                       "    DatabaseMirror http://127.0.0.1:8001\n"
                       "  # a comment\n"
                       "\t\tDNSDatabaseInfo no\n"
                       "    LogVerbose yes\n"
                       "    LogFileMaxSize 0\n"
                       "    LogTime yes\n"
                       "    DatabaseDirectory /tmp/db\n"
                       "    DatabaseDirectory /tmp/ignored\n"
                       "    DatabaseMirror second.example\n"
                       "    ExcludeDatabase daily\n"
                       "    MaxAttempts 0\n"
                       "    Checks 12 # inline comment\n"
                       "    OnUpdateExecute /usr/bin/foo --bar\n"
                       "    OnErrorExecute \"/bin/echo a \"quoted\" b\"  \n"
                       "    DatabaseCustomURL http://x/a.ndb#frag\n"
                       "x\n"
                       "\n";
    assert_int_equal(load_text(&s, text, &c, &e), CF_OK);
    assert_string_equal(c.err, "");
    assert_int_equal(s.database_mirror.n, 2);
    assert_string_equal(s.database_mirror.v[0], "http://127.0.0.1:8001");
    assert_string_equal(s.database_mirror.v[1], "second.example");
    assert_string_equal(s.dns_database_info, "no");
    assert_true(s.verbose && s.log_time);
    assert_true(s.log_file_max_size == UINT64_MAX);
    assert_string_equal(s.database_directory, "/tmp/db");
    assert_int_equal(s.max_attempts, 0);
    assert_int_equal(s.checks, 12);
    assert_string_equal(s.on_update_execute, "/usr/bin/foo --bar");
    assert_string_equal(s.on_error_execute, "/bin/echo a \"quoted\" b");
    assert_string_equal(s.custom_url.v[0], "http://x/a.ndb");
    assert_true(cf_settings_is_set(&s, CF_OPT_MAX_ATTEMPTS));
    assert_false(s.set_by_cli[CF_OPT_MAX_ATTEMPTS]);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_config_precedence_and_quirks(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    cf_err e = {0};
    capture c;
    cf_settings_init(&s);
    assert_int_equal(ARGS("--datadir=/from/cli", "--checks=3"), CF_OK);
    cap_free(&c);
    assert_int_equal(
        load_text(&s,
                  "DatabaseDirectory /from/conf\nChecks 40\nuser someone\nlocal-address 1.2.3.4\n"
                  "quiet yes\nLogFileMaxSize 2k\nReceiveTimeout 0\n",
                  &c, &e),
        CF_OK);
    assert_string_equal(s.database_directory, "/from/cli");
    assert_int_equal(s.checks, 3);
    /* The long option name works as a config key (§3.1). */
    assert_string_equal(s.database_owner, "someone");
    assert_string_equal(s.local_address, "1.2.3.4");
    assert_true(s.quiet);
    assert_int_equal(s.log_file_max_size, 2048);
    assert_int_equal(s.receive_timeout, 0);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(load_text(&s, "datadir /quirk\nchecks 5\nLogFileMaxSize 3M\n", &c, &e), CF_OK);
    assert_string_equal(s.database_directory, "/quirk");
    assert_int_equal(s.checks, 5);
    assert_int_equal(s.log_file_max_size, 3 * 1048576);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(load_text(&s, "LogFileMaxSize 1G\n", &c, &e), CF_OK);
    assert_int_equal(s.log_file_max_size, 1073741824);
    cap_free(&c);
    cf_settings_free(&s);
}

/* Copies fmt into out with every "@F" replaced by file. */
static void expand(char *out, size_t n, const char *fmt, const char *file)
{
    size_t k = 0;
    for (const char *p = fmt; *p && k + 1 < n; p++) {
        if (p[0] == '@' && p[1] == 'F') {
            k += (size_t)snprintf(out + k, n - k, "%s", file);
            p++;
        } else {
            out[k++] = *p;
        }
    }
    out[k < n ? k : n - 1] = '\0';
}

static void test_config_errors(void **state)
{
    (void)state;
    char name[4096];
    snprintf(name, sizeof(name), "%s/t.conf", tmpdir);
    static const struct {
        const char *text, *fmt; /* "@F" stands for the file name */
        cf_code rc;
    } cases[] = {
        {"DatabaseMirror x\nExample\n",
         "ERROR: Please edit the example config file @F\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"  \n  Example line\n",
         "ERROR: Please edit the example config file @F\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"\n  DatabaseMirror x\n  LogFile /tmp/x\n",
         "ERROR: Parse error at @F:3: Unknown option LogFile\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"databasedirectory /x\n",
         "ERROR: Parse error at @F:1: Unknown option databasedirectory\nERROR: Can't open/parse the config "
         "file @F",
         CF_EFORMAT},
        {"DatabaseMirror x\nLogTime\n",
         "ERROR: Missing argument for option at @F:2\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"LogTime   # nothing\n",
         "ERROR: Missing argument for option at @F:1\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"LogTime maybe\n",
         "ERROR: Incorrect argument format for option LogTime\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"Checks -1\n",
         "ERROR: Incorrect argument format for option Checks\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"checks 12a\n",
         "ERROR: Incorrect argument format for option checks\nERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"LogFileMaxSize 5X\n",
         "ERROR: Incorrect argument format for option LogFileMaxSize\nERROR: Can't open/parse the config "
         "file @F",
         CF_EFORMAT},
        {"DatabaseMirror \"x\n",
         "ERROR: Missing closing parenthesis in option DatabaseMirror at @F:1\n"
         "ERROR: Can't open/parse the config file @F",
         CF_EFORMAT},
        {"DatabaseMirror \"\"\n",
         "ERROR: Empty argument for option DatabaseMirror at @F:1\nERROR: Can't open/parse the config file "
         "@F",
         CF_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cf_settings s;
        cf_err e = {0};
        capture c;
        char want[2048];
        cf_settings_init(&s);
        assert_int_equal(load_text(&s, cases[i].text, &c, &e), cases[i].rc);
        expand(want, sizeof(want), cases[i].fmt, name);
        assert_string_equal(e.msg, want);
        assert_int_equal(cf_settings_exit_code(e.code), 2);
        cap_free(&c);
        cf_settings_free(&s);
    }
}

static void test_config_deprecated_and_long_lines(void **state)
{
    (void)state;
    cf_settings s;
    cf_err e = {0};
    capture c;
    char want[4096];
    cf_settings_init(&s);
    assert_int_equal(
        load_text(&s, "  DatabaseMirror x\n  SafeBrowsing maybe\n  AllowSupplementaryGroups yes\n", &c, &e),
        CF_OK);
    snprintf(want, sizeof(want),
             "WARNING: Ignoring deprecated option SafeBrowsing at %s/t.conf:2\n"
             "WARNING: Ignoring deprecated option AllowSupplementaryGroups at %s/t.conf:3\n",
             tmpdir, tmpdir);
    assert_string_equal(c.err, want);
    cap_free(&c);
    cf_settings_free(&s);

    /* Lines are read in 1023-byte pieces: the rest of a long line is parsed as a new line. */
    char text[3000];
    memset(text, 0, sizeof(text));
    strcpy(text, "OnUpdateExecute ");
    size_t n = strlen(text);
    memset(text + n, 'a', 1023 - n);
    strcat(text, "Checks 7\nMaxAttempts 9\n");
    cf_settings_init(&s);
    assert_int_equal(load_text(&s, text, &c, &e), CF_OK);
    assert_int_equal(strlen(s.on_update_execute), 1023 - n);
    assert_int_equal(s.checks, 7);
    assert_int_equal(s.max_attempts, 9);
    cap_free(&c);
    cf_settings_free(&s);

    /* The line numbers in messages count those pieces. */
    memset(text, 0, sizeof(text));
    memset(text, 'b', 1500);
    text[0] = 'X';
    text[1] = ' ';
    cf_settings_init(&s);
    assert_int_equal(load_text(&s, text, &c, &e), CF_EFORMAT);
    snprintf(want, sizeof(want), "ERROR: Parse error at %s/t.conf:1: Unknown option X", tmpdir);
    assert_non_null(strstr(e.msg, want));
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_config_missing(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    cf_err e = {0};
    capture c;
    char path[4096];
    snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);

    /* Explicit --config-file that is missing: freshclam's error, exit 2. */
    cf_settings_init(&s);
    char arg[4200];
    snprintf(arg, sizeof(arg), "--config-file=%s", path);
    assert_int_equal(ARGS(arg), CF_OK);
    cap_free(&c);
    cap_begin(&c);
    assert_int_equal(cf_config_load(&s, NULL, &e), CF_EIO);
    cap_end(&c);
    char want[4300];
    snprintf(want, sizeof(want), "ERROR: Can't open/parse the config file %s", path);
    assert_string_equal(e.msg, want);
    assert_int_equal(cf_settings_exit_code(e.code), 2);
    cap_free(&c);
    cf_settings_free(&s);

    /* Default path missing: built-in defaults and one INFO note (clamfresh addition). */
    cf_settings_init(&s);
    free(s.config_file);
    s.config_file = strdup(path);
    cap_begin(&c);
    assert_int_equal(cf_config_load(&s, NULL, &e), CF_OK);
    cap_end(&c);
    assert_true(s.config_missing);
    assert_int_equal(s.database_mirror.n, 1);
    assert_string_equal(s.database_mirror.v[0], "database.clamav.net");
    assert_non_null(strstr(c.out, "No config file found at"));
    assert_string_equal(c.err, "");
    cap_free(&c);
    assert_int_equal(finish(&s, &c, &e), CF_OK);
    assert_string_equal(s.mirrors.v[0], "https://database.clamav.net");
    cap_free(&c);
    cf_settings_free(&s);
}

/* ---- derived settings ---- */

static cf_code conf_finish(cf_settings *s, const char *text, capture *c, cf_err *e)
{
    capture c0;
    cf_code rc = load_text(s, text, &c0, e);
    cap_free(&c0);
    if (rc != CF_OK)
        return rc;
    return finish(s, c, e);
}

static void test_mirrors(void **state)
{
    (void)state;
    cf_settings s;
    cf_err e = {0};
    capture c;
    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s,
                                 "DatabaseMirror database.clamav.net\nDatabaseMirror db.local.clamav.net\n"
                                 "DatabaseMirror http://127.0.0.1:8001\nDatabaseMirror mirror.example/sub\n",
                                 &c, &e),
                     CF_OK);
    assert_int_equal(s.mirrors.n, 4);
    assert_string_equal(s.mirrors.v[0], "https://database.clamav.net");
    assert_string_equal(s.mirrors.v[1], "https://database.clamav.net");
    assert_string_equal(s.mirrors.v[2], "http://127.0.0.1:8001");
    assert_string_equal(s.mirrors.v[3], "https://mirror.example/sub");
    assert_false(s.private_mode);
    assert_true(s.dns_enabled && s.scripted_effective);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(
        conf_finish(&s,
                    "DatabaseMirror database.clamav.net\nPrivateMirror 10.0.0.1\nPrivateMirror https://m2\n",
                    &c, &e),
        CF_OK);
    assert_true(s.private_mode);
    assert_false(s.dns_enabled || s.scripted_effective);
    assert_int_equal(s.mirrors.n, 2);
    assert_string_equal(s.mirrors.v[0], "http://10.0.0.1");
    assert_string_equal(s.mirrors.v[1], "https://m2");
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "PrivateMirror mirror.CLAMAV.net\n", &c, &e), CF_EINVAL);
    assert_string_equal(e.msg,
                        "ERROR: The PrivateMirror config option may not include servers under *.clamav.net.");
    assert_int_equal(cf_settings_exit_code(e.code), 9);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "Checks 3\n", &c, &e), CF_EINVAL);
    assert_string_equal(e.msg,
                        "ERROR: No DatabaseMirror or PrivateMirror servers set in freshclam config file.\n"
                        "ERROR: Unable to find DatabaseMirror or PrivateMirror option(s) that specify "
                        "database server FQDNs.");
    assert_int_equal(cf_settings_exit_code(e.code), 9);
    /* Printed with the right streams. */
    capture p;
    cap_begin(&p);
    cf_settings_print_err(&e);
    cap_end(&p);
    assert_string_equal(p.err,
                        "ERROR: No DatabaseMirror or PrivateMirror servers set in freshclam config file.\n"
                        "ERROR: Unable to find DatabaseMirror or PrivateMirror option(s) that specify "
                        "database server FQDNs.\n");
    assert_string_equal(p.out, "");
    cap_free(&p);
    cap_free(&c);
    cf_settings_free(&s);
}

static void assert_dbs(const cf_settings *s, const char *const *want, size_t n)
{
    assert_int_equal(s->databases.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(s->databases.v[i], want[i]);
}

static void test_database_selection(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    cf_err e = {0};
    capture c;

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\n", &c, &e), CF_OK);
    assert_dbs(&s, (const char *const[]){"daily", "main", "bytecode"}, 3);
    assert_true(s.prune);
    assert_false(s.use_custom_urls);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(
        conf_finish(&s,
                    "DatabaseMirror m\nExcludeDatabase MAIN\nBytecode no\nExtraDatabase SafeBrowsing\n"
                    "ExtraDatabase bogus\nExtraDatabase valhalla\nDatabaseCustomURL file:///x/y.hdb\n",
                    &c, &e),
        CF_OK);
    assert_dbs(&s, (const char *const[]){"daily", "safebrowsing", "valhalla"}, 3);
    assert_true(s.use_custom_urls);
    assert_string_equal(c.err, "WARNING: Desired optional database \"bogus\" is not available.\n");
    cap_free(&c);
    cf_settings_free(&s);

    /* --update-db: exactly those, in order, no pruning; custom only when listed. */
    cf_settings_init(&s);
    assert_int_equal(ARGS("--update-db=test", "--update-db=daily"), CF_OK);
    cap_free(&c);
    assert_int_equal(
        conf_finish(&s, "DatabaseMirror m\nDatabaseCustomURL http://x/y.ndb\nExcludeDatabase daily\n", &c,
                    &e),
        CF_OK);
    assert_dbs(&s, (const char *const[]){"test", "daily"}, 2);
    assert_false(s.prune);
    assert_false(s.use_custom_urls);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--update-db=custom"), CF_OK);
    cap_free(&c);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nDatabaseCustomURL http://x/y.ndb\n", &c, &e), CF_OK);
    assert_int_equal(s.databases.n, 0);
    assert_true(s.use_custom_urls);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--update-db=Daily"), CF_OK);
    cap_free(&c);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\n", &c, &e), CF_EINVAL);
    assert_string_equal(e.msg,
                        "ERROR: Requested database is not available: Daily.\n"
                        "ERROR: Failed to select specific databases from available official databases.");
    assert_int_equal(cf_settings_exit_code(e.code), 9);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--update-db=custom"), CF_OK);
    cap_free(&c);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\n", &c, &e), CF_EINVAL);
    assert_string_equal(
        e.msg, "ERROR: --update-db=custom requires at least one DatabaseCustomURL in freshclam.conf");
    assert_int_equal(cf_settings_exit_code(e.code), 9);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(
        conf_finish(&s, "DatabaseMirror m\nExcludeDatabase daily\nExcludeDatabase main\nBytecode no\n", &c,
                    &e),
        CF_ENOTFOUND);
    assert_string_equal(e.msg, "ERROR: perform_database_update: No databases requested.");
    assert_int_equal(cf_settings_exit_code(e.code), 16);
    cap_free(&c);
    cf_settings_free(&s);

    /* Everything excluded but a custom URL: fine (test 01 of ClamAV's suite). */
    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s,
                                 "DatabaseMirror m\nExcludeDatabase daily\nExcludeDatabase main\n"
                                 "ExcludeDatabase bytecode\nDatabaseCustomURL file:///w/clamav.hdb\n",
                                 &c, &e),
                     CF_OK);
    assert_int_equal(s.databases.n, 0);
    assert_true(s.use_custom_urls);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_proxy(void **state)
{
    (void)state;
    cf_settings s;
    cf_err e = {0};
    capture c;

    cf_settings_init(&s);
    assert_int_equal(
        conf_finish(&s, "DatabaseMirror m\nHTTPProxyServer HTTP://proxy.lan\nHTTPProxyPort 3128\n", &c, &e),
        CF_OK);
    assert_string_equal(s.proxy_host, "proxy.lan");
    assert_int_equal(s.proxy_port_effective, 3128);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nHTTPProxyServer socks5://p\n", &c, &e), CF_OK);
    assert_string_equal(s.proxy_host, "socks5://p");
    assert_int_equal(s.proxy_port_effective, 8080); /* webcache/tcp, or 8080 */
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nHTTPProxyServer p\nHTTPProxyUsername u\n", &c, &e),
                     CF_EFORMAT);
    assert_string_equal(e.msg, "HTTPProxyUsername requires HTTPProxyPassword\nERROR: Initialization error!");
    assert_int_equal(cf_settings_exit_code(e.code), 2);
    capture p;
    cap_begin(&p);
    cf_settings_print_err(&e);
    cap_end(&p);
    assert_string_equal(p.out, "HTTPProxyUsername requires HTTPProxyPassword\n");
    assert_string_equal(p.err, "ERROR: Initialization error!\n");
    cap_free(&p);
    cap_free(&c);
    cf_settings_free(&s);

    /* A password in a group/world-readable config file is refused. */
    const char *text = "DatabaseMirror m\nHTTPProxyServer p\nHTTPProxyUsername u\nHTTPProxyPassword secret\n";
    char *path = write_conf("pw.conf", text, 0640);
    char want[4300];
    snprintf(
        want, sizeof(want),
        "WARNING: Insecure permissions (for HTTPProxyPassword): %s must have no more than 0700 permissions.\n"
        "ERROR: Initialization error!",
        path);
    cf_settings_init(&s);
    cap_begin(&c);
    assert_int_equal(cf_config_load(&s, path, &e), CF_OK);
    cap_end(&c);
    cap_free(&c);
    assert_int_equal(finish(&s, &c, &e), CF_EFORMAT);
    assert_string_equal(e.msg, want);
    assert_int_equal(cf_settings_exit_code(e.code), 2);
    cap_free(&c);
    chmod(path, 0600);
    assert_int_equal(finish(&s, &c, &e), CF_OK);
    assert_string_equal(s.proxy_password, "secret");
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_certs_dir_and_ranges(void **state)
{
    (void)state;
    cf_settings s;
    cf_cli_result r;
    cf_err e = {0};
    capture c;

    unsetenv("CVD_CERTS_DIR");
    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\n", &c, &e), CF_OK);
    assert_string_equal(s.cvd_certs_dir, "/etc/clamav/certs");
    cap_free(&c);
    setenv("CVD_CERTS_DIR", "/env/certs", 1);
    assert_int_equal(finish(&s, &c, &e), CF_OK);
    assert_string_equal(s.cvd_certs_dir, "/env/certs");
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(ARGS("--cvdcertsdir=/opt/certs"), CF_OK);
    cap_free(&c);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nCVDCertsDirectory /conf/certs\n", &c, &e), CF_OK);
    assert_string_equal(s.cvd_certs_dir, "/opt/certs");
    cap_free(&c);
    cf_settings_free(&s);
    unsetenv("CVD_CERTS_DIR");

    /* Checks is validated only in daemon mode. */
    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nChecks 0\n", &c, &e), CF_OK);
    cap_free(&c);
    s.daemon = true;
    assert_int_equal(finish(&s, &c, &e), CF_EINVAL);
    assert_string_equal(e.msg, "WARNING: Number of checks must be a positive integer.");
    assert_int_equal(cf_settings_exit_code(e.code), 9);
    cap_free(&c);
    s.checks = 51;
    assert_int_equal(finish(&s, &c, &e), CF_OK);
    cap_free(&c);
    s.no_dns = true;
    assert_int_equal(finish(&s, &c, &e), CF_EINVAL);
    assert_string_equal(e.msg, "WARNING: Number of checks must be between 1 and 50.");
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nStallTimeout 0\n", &c, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "StallTimeout"));
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nConcurrentDownloads 17\n", &c, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "ConcurrentDownloads must be between 1 and 16"));
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(s.mirror_keep_patches, 120);
    assert_int_equal(conf_finish(&s, "DatabaseMirror m\nMirrorKeepPatches 0\n", &c, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "MirrorKeepPatches must be between 1 and 100000"));
    cap_free(&c);
    cf_settings_free(&s);
    cf_settings_init(&s);
    assert_int_equal(
        conf_finish(&s,
                    "DatabaseMirror m\nConcurrentDownloads 16\nEngineFlevel 230\nStrictExitCodes yes\n"
                    "MirrorDirectory /srv/mirror\nLockTimeout 0\nInfoPublicKey /i.pem\nMirrorKeepPatches 30\n",
                    &c, &e),
        CF_OK);
    assert_int_equal(s.concurrent_downloads, 16);
    assert_int_equal(s.engine_flevel, 230);
    assert_true(s.strict_exit_codes);
    assert_string_equal(s.mirror_directory, "/srv/mirror");
    assert_int_equal(s.mirror_keep_patches, 30);
    assert_int_equal(s.lock_timeout, 0);
    assert_string_equal(s.info_public_key, "/i.pem");
    assert_null(s.cvd_public_key);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_version_and_codes(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(cf_version_format("1.4.6", NULL, out, sizeof(out)), CF_OK);
    assert_string_equal(out, "ClamAV 1.4.6");
    cf_cvdhdr h;
    memset(&h, 0, sizeof(h));
    h.version = 27450;
    h.stime = 1624412045;
    assert_int_equal(cf_version_format(NULL, &h, out, sizeof(out)), CF_OK);
    assert_string_equal(out, "ClamAV 1.4.6/27450/Wed Jun 23 01:34:05 2021");
    assert_int_equal(cf_version_format("1.4.6", &h, out, 10), CF_ETOOBIG);

    assert_int_equal(cf_settings_exit_code(CF_OK), 0);
    assert_int_equal(cf_settings_exit_code(CF_EFORMAT), 2);
    assert_int_equal(cf_settings_exit_code(CF_EIO), 2);
    assert_int_equal(cf_settings_exit_code(CF_EINVAL), 9);
    assert_int_equal(cf_settings_exit_code(CF_ENOTFOUND), 16);
    assert_int_equal(cf_settings_exit_code(CF_ENOMEM), 15);

    assert_int_equal(cf_opt_lookup("DatabaseDirectory"), CF_OPT_DATABASE_DIRECTORY);
    assert_int_equal(cf_opt_lookup("datadir"), CF_OPT_DATABASE_DIRECTORY);
    assert_int_equal(cf_opt_lookup("databasedirectory"), -1);
    assert_int_equal(cf_opt_lookup("LogVerbose"), CF_OPT_LOG_VERBOSE);
}

static int setup(void **state)
{
    (void)state;
    tmpdir = cf_test_mkdtemp();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(tmpdir);
    return 0;
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_cli_forms),
        cmocka_unit_test(test_cli_booleans),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_misc),
        cmocka_unit_test(test_help_text),
        cmocka_unit_test(test_config_basic),
        cmocka_unit_test(test_config_precedence_and_quirks),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_deprecated_and_long_lines),
        cmocka_unit_test(test_config_missing),
        cmocka_unit_test(test_mirrors),
        cmocka_unit_test(test_database_selection),
        cmocka_unit_test(test_proxy),
        cmocka_unit_test(test_certs_dir_and_ranges),
        cmocka_unit_test(test_version_and_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
