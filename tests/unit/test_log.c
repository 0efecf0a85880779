/* Terminal routing, LogTime, log file (lock, rotation, reopen), syslog facility and
 * progress output (freshclam-behavior.md §8). */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/log.h"
#include "clamfresh/settings.h"

#define TS "Fri Jan 15 08:00:00 2027 -> "

static char *tmpdir;

static time_t fixed_clock(void)
{
    return 1800000000; /* Fri Jan 15 08:00:00 2027 UTC */
}

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

static char *path_in_tmp(const char *name)
{
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
    return p[k];
}

/* One message of every kind. */
static void say_all(void)
{
    cf_log_info("info %d", 1);
    cf_log_warn("warn");
    cf_log_error("error\n"); /* a trailing newline is not doubled */
    cf_log_debug("debug");
    cf_log_nf("nf");
    cf_log_term_only("term");
}

static void init_ok(cf_settings *s)
{
    cf_err e = {0};
    cf_code rc = cf_log_init(s, &e);
    if (rc != CF_OK)
        fail_msg("cf_log_init: %s", e.msg);
}

static void test_default_routing(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    cap_begin(&c);
    init_ok(&s);
    say_all();
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, "info 1\nterm\n");
    assert_string_equal(c.err, "WARNING: warn\nERROR: error\n");
    cap_free(&c);

    s.verbose = true;
    cap_begin(&c);
    init_ok(&s);
    say_all();
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, "info 1\ndebug\nterm\n");
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_stdout_and_no_warnings(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.to_stdout = true;
    cap_begin(&c);
    init_ok(&s);
    say_all();
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, "info 1\nWARNING: warn\nERROR: error\nterm\n");
    assert_string_equal(c.err, "");
    cap_free(&c);

    /* --no-warnings: warnings neither on the terminal nor in the file. */
    s.to_stdout = false;
    s.no_warnings = true;
    s.log_file = strdup(path_in_tmp("nowarn.log"));
    cap_begin(&c);
    init_ok(&s);
    say_all();
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, "info 1\nterm\n");
    assert_string_equal(c.err, "ERROR: error\n");
    char *file = cf_test_slurp(s.log_file);
    assert_string_equal(file, "--------------------------------------\ninfo 1\nERROR: error\nnf\n");
    free(file);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_quiet_with_file_and_logtime(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.quiet = true;
    s.log_time = true;
    s.verbose = true;
    s.log_file = strdup(path_in_tmp("quiet.log"));
    mode_t old = umask(022);
    cap_begin(&c);
    init_ok(&s);
    say_all();
    cf_log_close();
    cap_end(&c);
    umask(old);
    /* Terminal: only errors, prefix before the time. */
    assert_string_equal(c.out, "");
    assert_string_equal(c.err, "ERROR: " TS "error\n");
    /* File: everything except terminal-only text, time before the prefix. */
    char *file = cf_test_slurp(s.log_file);
    assert_string_equal(file, TS "--------------------------------------\n" TS "info 1\n" TS
                                 "WARNING: warn\n" TS "ERROR: error\n" TS "debug\n" TS "nf\n");
    free(file);
    struct stat st;
    assert_int_equal(stat(s.log_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_logtime_terminal_and_before_init(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.log_time = true;

    /* Before cf_log_init (config errors, selection warnings): no timestamps. */
    cap_begin(&c);
    cf_log_close();
    cf_log_init_terminal(&s);
    cf_log_info("early");
    cf_log_warn("early warning");
    cap_end(&c);
    assert_string_equal(c.out, "early\n");
    assert_string_equal(c.err, "WARNING: early warning\n");
    cap_free(&c);

    cap_begin(&c);
    init_ok(&s);
    cf_log_info("DNS Update Info disabled.");
    cf_log_warn("DNS Update Info disabled. Falling back to HTTP mode.");
    cf_log_term_only("Pruning unwanted or deprecated database file x.cvd.");
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, TS
                        "DNS Update Info disabled.\nPruning unwanted or deprecated database file x.cvd.\n");
    assert_string_equal(c.err, "WARNING: " TS "DNS Update Info disabled. Falling back to HTTP mode.\n");
    cap_free(&c);

    /* --quiet also applies before init. */
    s.quiet = true;
    cap_begin(&c);
    cf_log_init_terminal(&s);
    cf_log_info("hidden");
    cf_log_warn("hidden");
    cf_log_error("shown");
    cap_end(&c);
    assert_string_equal(c.out, "");
    assert_string_equal(c.err, "ERROR: shown\n");
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_background_daemon_terminal_off(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("daemon.log"));
    cap_begin(&c);
    init_ok(&s);
    cf_log_set_terminal(false);
    cf_log_error("only in the file");
    cf_log_set_terminal(true);
    cf_log_close();
    cap_end(&c);
    assert_string_equal(c.out, "");
    assert_string_equal(c.err, "");
    char *file = cf_test_slurp(s.log_file);
    assert_string_equal(file, "--------------------------------------\nERROR: only in the file\n");
    free(file);
    cap_free(&c);
    cf_settings_free(&s);
}

static void test_rotation(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("rot2.txt"));
    s.log_file_max_size = 60;
    s.log_time = true;
    cap_begin(&c);
    init_ok(&s); /* 28 + 38 + 1 = 67 bytes: already over the limit */
    cf_log_info("first");
    cf_log_info("second");
    cf_log_close();
    cap_end(&c);
    cap_free(&c);

    /* Rotated to <name minus 4 chars>-YYYYMMDD_HHMMSS.log with the two notice lines. */
    char *rotated = cf_test_slurp(path_in_tmp("rot2-20270115_080000.log"));
    assert_string_equal(rotated,
                        TS "--------------------------------------\n"
                           "Log size = 67, max = 60\n"
                           "WARNING: Log size limit met but log file rotation turned off. Forcing log file "
                           "rotation anyways.\n");
    free(rotated);
    /* "first" started the new file; it was not yet over the limit for "second". */
    char *current = cf_test_slurp(s.log_file);
    assert_string_equal(current, TS "first\n" TS "second\n");
    free(current);

    /* With LogRotate on there are no notice lines; LogFileMaxSize 0 (unlimited) never rotates. */
    cf_settings_free(&s);
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("freshclam.log"));
    s.log_file_max_size = 10;
    s.log_rotate = true;
    cap_begin(&c);
    init_ok(&s);
    cf_log_info("x");
    cf_log_close();
    cap_end(&c);
    cap_free(&c);
    rotated = cf_test_slurp(path_in_tmp("freshclam-20270115_080000.log"));
    assert_string_equal(rotated, "--------------------------------------\n");
    free(rotated);
    cf_settings_free(&s);

    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("unlimited.log"));
    s.log_file_max_size = UINT64_MAX;
    cap_begin(&c);
    init_ok(&s);
    for (int i = 0; i < 100; i++)
        cf_log_nf("line %d", i);
    cf_log_close();
    cap_end(&c);
    cap_free(&c);
    struct stat st;
    assert_int_equal(stat(path_in_tmp("unlimited-20270115_080000.log"), &st), -1);
    cf_settings_free(&s);
}

static void test_lock_conflict(void **state)
{
    (void)state;
    cf_settings s;
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("locked.log"));
    init_ok(&s);
    const char *child_out = path_in_tmp("child-out");
    const char *child_msg = path_in_tmp("child-msg");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A second process opening the same log file must fail at once (§8.3, §9.2). */
        int fd = open(child_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        cf_log_close(); /* drops only the inherited descriptor; the lock belongs to the parent */
        cf_err e = {0};
        cf_code rc = cf_log_init(&s, &e);
        FILE *m = fopen(child_msg, "w");
        fputs(e.msg, m);
        fclose(m);
        fflush(stdout);
        _exit(cf_settings_exit_code(rc));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    char want[8192];
    char *out = cf_test_slurp(child_out), *msg = cf_test_slurp(child_msg);
    snprintf(want, sizeof(want), "ERROR: Failed to lock the log file %s: Resource temporarily unavailable\n",
             s.log_file);
    assert_string_equal(out, want);
    snprintf(want, sizeof(want),
             "ERROR: Problem with internal logger (UpdateLogFile = %s).\n"
             "ERROR: initialize: libfreshclam init failed.\n"
             "ERROR: Initialization error!",
             s.log_file);
    assert_string_equal(msg, want);
    free(out);
    free(msg);
    cf_log_close();
    cf_settings_free(&s);
}

static void test_open_failures_and_facility(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_err e = {0};
    char want[8192];

    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("no/such/dir.log"));
    cap_begin(&c);
    assert_int_equal(cf_log_init(&s, &e), CF_EIO);
    cap_end(&c);
    snprintf(want, sizeof(want), "ERROR: Failed to open log file %s: No such file or directory\n",
             s.log_file);
    assert_string_equal(c.out, want);
    assert_int_equal(cf_settings_exit_code(e.code), 2);
    cap_free(&c);
    cf_settings_free(&s);

    /* O_NOFOLLOW: a symlink planted at the log path is refused. */
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("link.log"));
    assert_int_equal(symlink(path_in_tmp("target.log"), s.log_file), 0);
    cap_begin(&c);
    assert_int_equal(cf_log_init(&s, &e), CF_EIO);
    cap_end(&c);
    assert_non_null(strstr(c.out, "ERROR: Failed to open log file"));
    struct stat st;
    assert_int_equal(stat(path_in_tmp("target.log"), &st), -1);
    cap_free(&c);
    cf_settings_free(&s);

    cf_settings_init(&s);
    s.log_syslog = true;
    free(s.log_facility);
    s.log_facility = strdup("LOG_BOGUS");
    assert_int_equal(cf_log_init(&s, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "ERROR: LogFacility: LOG_BOGUS: No such facility.");
    assert_int_equal(cf_settings_exit_code(e.code), 2);
    free(s.log_facility);
    s.log_facility = strdup("log_local6"); /* names are case-sensitive */
    assert_int_equal(cf_log_init(&s, &e), CF_EFORMAT);
    free(s.log_facility);
    s.log_facility = strdup("LOG_LOCAL6");
    assert_int_equal(cf_log_init(&s, &e), CF_OK);
    cf_log_close();
    cf_settings_free(&s);
}

static void test_reopen(void **state)
{
    (void)state;
    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.log_file = strdup(path_in_tmp("reopen.log"));
    cap_begin(&c);
    init_ok(&s);
    cf_log_info("before");
    assert_int_equal(rename(s.log_file, path_in_tmp("reopen.log.1")), 0);
    cf_log_request_reopen();
    cf_log_info("after");
    cf_log_close();
    cap_end(&c);
    cap_free(&c);
    char *old = cf_test_slurp(path_in_tmp("reopen.log.1"));
    char *cur = cf_test_slurp(s.log_file);
    assert_string_equal(old, "--------------------------------------\nbefore\n");
    assert_string_equal(cur, "after\n");
    free(old);
    free(cur);
    cf_settings_free(&s);
}

static void test_progress(void **state)
{
    (void)state;
    char line[256];
    cf_progress_format(line, sizeof(line), 0.0, 1638, 1638);
    assert_string_equal(line, "Time:    0.0s, ETA:    0.0s [========================>]    1.60KiB/1.60KiB");
    cf_progress_format(line, sizeof(line), 2.0, 500, 1000);
    assert_string_equal(line, "Time:    2.0s, ETA:    2.0s [===========>             ]  500.00B/1000.00B");
    cf_progress_format(line, sizeof(line), 90.0, 3 * 1048576, 6 * 1048576);
    assert_string_equal(line, "Time:  1m 30s, ETA:  1m 30s [===========>             ]    3.00MiB/6.00MiB");
    cf_progress_format(line, sizeof(line), 7200.0, 1, 2);
    assert_string_equal(line, "Time:  2h 00m, ETA:  2h 00m [===========>             ]    1.00B/2.00B");

    cf_settings s;
    capture c;
    cf_settings_init(&s);
    s.show_progress = true;
    cf_log_init_terminal(&s);
    assert_true(cf_log_progress_enabled());
    cap_begin(&c);
    cf_log_progress(0.0, 512, 1024);
    cf_log_progress(0.0, 1024, 1024);
    cf_log_progress(0.0, 5, 0); /* unknown size: nothing */
    cap_end(&c);
    assert_string_equal(
        c.out,
        "\033[?7lTime:    0.0s, ETA:    0.0s [===========>             ]  512.00B/1.00KiB\r\033[?7h"
        "\033[?7lTime:    0.0s, ETA:    0.0s [========================>]    1.00KiB/1.00KiB\n\033[?7h");
    cap_free(&c);

    s.quiet = true;
    cf_log_init_terminal(&s);
    assert_false(cf_log_progress_enabled());
    s.quiet = false;
    s.show_progress = false;
    cf_log_init_terminal(&s);
    /* stdout of a test run is not a terminal. */
    if (!isatty(1))
        assert_false(cf_log_progress_enabled());
    cf_settings_free(&s);
}

static int setup(void **state)
{
    (void)state;
    tmpdir = cf_test_mkdtemp();
    cf_log_set_clock(fixed_clock);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_log_close();
    cf_log_set_clock(NULL);
    cf_test_rmtree(tmpdir);
    return 0;
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_routing),
        cmocka_unit_test(test_stdout_and_no_warnings),
        cmocka_unit_test(test_quiet_with_file_and_logtime),
        cmocka_unit_test(test_logtime_terminal_and_before_init),
        cmocka_unit_test(test_background_daemon_terminal_off),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_lock_conflict),
        cmocka_unit_test(test_open_failures_and_facility),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
