/* The engine module: the fork / pipe / timeout / stderr summary with children
 * made here (runs everywhere), then the real libclamav load test on databases
 * the test writes itself (skipped, saying why, when libclamav is absent). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../src/host/engine_priv.h"
#include "clamfresh/engine.h"
#include "clamfresh/fcerr.h"

/* ---- children ----------------------------------------------------------- */

static int child_ok(void *arg, cf_engine_report *rep)
{
    (void)arg;
    rep->sigs = 42;
    return 0;
}

static int child_noisy_ok(void *arg, cf_engine_report *rep)
{
    (void)arg;
    fputs("LibClamAV Warning: one\n", stderr);
    fputs("LibClamAV Warning: two\n", stderr);
    fputs("LibClamAV Error: the first real line\n", stderr);
    fputs("middle\n", stderr);
    fputs("the last line\r\n", stderr);
    rep->sigs = 7;
    return 0;
}

static int child_only_warnings(void *arg, cf_engine_report *rep)
{
    (void)arg;
    (void)rep;
    fputs("LibClamAV Warning: alpha\nLibClamAV Warning: omega\n", stderr);
    return 0;
}

static int child_fails(void *arg, cf_engine_report *rep)
{
    (void)arg;
    snprintf(rep->error, sizeof rep->error, "Failed to load new database: Malformed database");
    fprintf(stderr, "ERROR: %s\n", rep->error);
    return 8;
}

static int child_fails_silently(void *arg, cf_engine_report *rep)
{
    (void)arg;
    (void)rep;
    fputs("no newline at the end", stderr);
    _exit(3); /* no report written */
}

static int child_crashes(void *arg, cf_engine_report *rep)
{
    (void)arg;
    (void)rep;
    fputs("about to crash\n", stderr);
    raise(SIGSEGV); /* the test framework's handler is reset in the child */
    return 0;
}

static int child_hangs(void *arg, cf_engine_report *rep)
{
    (void)arg;
    (void)rep;
    fputs("LibClamAV Warning: hanging\n", stderr);
    for (int i = 0; i < 600; i++)
        sleep(1);
    return 0;
}

/* More than any pipe buffer: the parent must drain while the child writes. */
static int child_floods(void *arg, cf_engine_report *rep)
{
    (void)arg;
    char line[200];
    memset(line, 'x', sizeof line - 2);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = '\0';
    for (int i = 0; i < 5000; i++)
        fputs(line, stderr);
    fputs("done\n", stderr);
    rep->sigs = 1;
    return 0;
}

/* Longer than CF_ENGINE_LINE: cut, counted once. */
static int child_long_line(void *arg, cf_engine_report *rep)
{
    (void)arg;
    (void)rep;
    for (int i = 0; i < 3 * CF_ENGINE_LINE; i++)
        fputc('y', stderr);
    fputc('\n', stderr);
    return 0;
}

/* ---- process tests ------------------------------------------------------ */

static void test_child_ok(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_run_child(child_ok, NULL, 30, &r, &e), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_OK);
    assert_int_equal(r.sigs, 42);
    assert_int_equal(r.stderr_lines, 0);
    assert_string_equal(r.stderr_first, "");
    assert_string_equal(r.stderr_last, "");
    assert_false(r.timed_out);
}

static void test_child_stderr_summary(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_run_child(child_noisy_ok, NULL, 30, &r, &e), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_OK);
    assert_int_equal(r.sigs, 7);
    assert_int_equal(r.stderr_lines, 5);
    assert_string_equal(r.stderr_first, "LibClamAV Error: the first real line");
    assert_string_equal(r.stderr_last, "the last line");
}

static void test_child_only_warnings(void **state)
{
    (void)state;
    cf_engine_test_result r;
    assert_int_equal(cf_engine_run_child(child_only_warnings, NULL, 30, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_OK);
    assert_int_equal(r.stderr_lines, 2);
    assert_string_equal(r.stderr_first, "LibClamAV Warning: omega");
    assert_string_equal(r.stderr_last, "");
}

static void test_child_fails(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_run_child(child_fails, NULL, 30, &r, &e), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_FAILED);
    assert_int_equal(r.exit_code, 8);
    assert_string_equal(r.exit_text, "Test failed");
    assert_string_equal(r.error, "Failed to load new database: Malformed database");
    assert_string_equal(r.stderr_first, "ERROR: Failed to load new database: Malformed database");
    assert_string_equal(r.stderr_last, "");
    assert_int_equal(r.sigs, 0);
}

static void test_child_fails_without_report(void **state)
{
    (void)state;
    cf_engine_test_result r;
    assert_int_equal(cf_engine_run_child(child_fails_silently, NULL, 30, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_FAILED);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.exit_text, "Invalid, nonexistent, or inaccessible directory");
    assert_int_equal(r.stderr_lines, 1);
    assert_string_equal(r.stderr_first, "no newline at the end");
    assert_string_equal(r.error, "no newline at the end");
}

static void test_child_crashes(void **state)
{
    (void)state;
    cf_engine_test_result r;
    assert_int_equal(cf_engine_run_child(child_crashes, NULL, 30, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_KILLED);
    assert_int_equal(r.signo, SIGSEGV);
    assert_false(r.timed_out);
    assert_string_equal(r.stderr_first, "about to crash");
    assert_string_equal(r.error, "Database load killed by signal 11");
}

static void test_child_timeout(void **state)
{
    (void)state;
    cf_engine_test_result r;
    time_t t0 = time(NULL);
    assert_int_equal(cf_engine_run_child(child_hangs, NULL, 1, &r, NULL), CF_OK);
    time_t took = time(NULL) - t0;
    assert_int_equal(r.status, CF_ENGINE_TEST_KILLED);
    assert_true(r.timed_out);
    assert_int_equal(r.signo, SIGKILL);
    assert_true(took <= 5);
    assert_string_equal(r.stderr_first, "LibClamAV Warning: hanging");
    assert_non_null(strstr(r.error, "within 1 seconds"));
}

static void test_child_process_bound(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_engine_set_test_timeout(1); /* timeout 0 below means: the process-wide bound */
    assert_int_equal(cf_engine_run_child(child_hangs, NULL, 0, &r, NULL), CF_OK);
    cf_engine_set_test_timeout(0);
    assert_int_equal(r.status, CF_ENGINE_TEST_KILLED);
    assert_true(r.timed_out);
}

static void test_child_floods(void **state)
{
    (void)state;
    cf_engine_test_result r;
    assert_int_equal(cf_engine_run_child(child_floods, NULL, 60, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_OK);
    assert_int_equal(r.stderr_lines, 5001);
    assert_string_equal(r.stderr_last, "done");
    assert_int_equal(strlen(r.stderr_first), 198);
}

static void test_child_long_line(void **state)
{
    (void)state;
    cf_engine_test_result r;
    assert_int_equal(cf_engine_run_child(child_long_line, NULL, 30, &r, NULL), CF_OK);
    assert_int_equal(r.stderr_lines, 1);
    assert_int_equal(strlen(r.stderr_first), CF_ENGINE_LINE - 1);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_test_load(NULL, 0, &r, &e), CF_EINVAL);
    assert_int_equal(r.status, CF_ENGINE_TEST_FAILED);
    assert_int_equal(cf_engine_test_load("", 0, &r, &e), CF_EINVAL);
    assert_int_equal(cf_engine_test_load("x", 0, NULL, &e), CF_EINVAL);
    assert_int_equal(cf_engine_run_child(NULL, NULL, 1, &r, &e), CF_EINVAL);
}

static void test_strings(void **state)
{
    (void)state;
    assert_string_equal(cf_fc_str(0), "Success");
    assert_string_equal(cf_fc_str(8), "Test failed");
    assert_string_equal(cf_fc_str(18), "Too many requests; Retry later");
    assert_string_equal(cf_fc_str(19), "Unexpected error");
    assert_string_equal(cf_fc_str(20), "Unknown error");
    assert_string_equal(cf_fc_str(-1), "Unknown error");
    assert_string_equal(cf_engine_status_str(CF_ENGINE_TEST_OK), "ok");
    assert_string_equal(cf_engine_status_str(CF_ENGINE_TEST_UNAVAILABLE), "unavailable");
    /* Without libclamav the fallback is reported; with it, never the empty string. */
    assert_true(cf_engine_version()[0] != '\0');
    if (!cf_engine_available()) {
        assert_string_equal(cf_engine_version(), CF_ENGINE_FALLBACK_VERSION);
        assert_int_equal(cf_engine_flevel(), 0);
        assert_string_equal(cf_engine_library(), "");
    }
}

static void test_notes(void **state)
{
    (void)state;
    cf_engine_test_result r;
    cf_notes n;

    assert_int_equal(cf_engine_run_child(child_noisy_ok, NULL, 30, &r, NULL), CF_OK);
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 3);
    assert_int_equal(n.item[0].level, CF_NOTE_WARN);
    assert_string_equal(n.item[0].text, "Stderr output from database load : "
                                        "LibClamAV Error: the first real line [...] the last line");
    assert_string_equal(n.item[1].text, "Database successfully loaded, but there is stderr output");
    assert_int_equal(n.item[2].level, CF_NOTE_DEBUG);
    assert_string_equal(n.item[2].text, "Database load test: 7 signatures");

    assert_int_equal(cf_engine_run_child(child_fails, NULL, 30, &r, NULL), CF_OK);
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 2);
    assert_string_equal(n.item[0].text, "Stderr output from database load : "
                                        "ERROR: Failed to load new database: Malformed database");
    assert_int_equal(n.item[1].level, CF_NOTE_WARN);
    assert_string_equal(n.item[1].text, "Database load exited with \"Test failed\"");

    assert_int_equal(cf_engine_run_child(child_crashes, NULL, 30, &r, NULL), CF_OK);
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 2);
    assert_int_equal(n.item[1].level, CF_NOTE_ERROR);
    assert_string_equal(n.item[1].text, "Database load killed by signal 11");

    assert_int_equal(cf_engine_run_child(child_hangs, NULL, 1, &r, NULL), CF_OK);
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 3);
    assert_string_equal(n.item[1].text, "Database load did not finish within 1 seconds");
    assert_string_equal(n.item[2].text, "Database load killed by signal 9");

    memset(&r, 0, sizeof r);
    r.status = CF_ENGINE_TEST_UNAVAILABLE;
    snprintf(r.error, sizeof r.error, "no engine");
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 1);
    assert_int_equal(n.item[0].level, CF_NOTE_DEBUG);

    assert_int_equal(cf_engine_run_child(child_ok, NULL, 30, &r, NULL), CF_OK);
    cf_notes_clear(&n);
    cf_engine_test_notes(&r, &n);
    assert_int_equal(n.n, 1);
    assert_null(cf_notes_find(&n, CF_NOTE_INFO, ""));
}

/* ---- libclamav tests ---------------------------------------------------- */

static char *g_dir;

static const char *write_db(const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static int lib_setup(void **state)
{
    (void)state;
    g_dir = cf_test_mkdtemp();
    return g_dir ? 0 : -1;
}

static int lib_teardown(void **state)
{
    (void)state;
    cf_test_rmtree(g_dir);
    return 0;
}

static void test_lib_facts(void **state)
{
    (void)state;
    assert_true(cf_engine_available());
    const char *v = cf_engine_version();
    assert_true(v[0] >= '0' && v[0] <= '9');
    assert_non_null(strchr(v, '.'));
    assert_true(cf_engine_flevel() > 0);
    assert_non_null(strstr(cf_engine_library(), "libclamav.so"));
    /* Cached: the same static string every time. */
    assert_ptr_equal(cf_engine_version(), v);
}

static void test_lib_valid_hdb(void **state)
{
    (void)state;
    const char *p = write_db("good.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n");
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_test_load(p, 1, &r, &e), CF_OK);
    if (r.status != CF_ENGINE_TEST_OK)
        fail_msg("status %s: %s / %s", cf_engine_status_str(r.status), r.error, r.stderr_first);
    assert_int_equal(r.sigs, 1);
    assert_false(r.timed_out);
}

static void test_lib_valid_without_bytecode(void **state)
{
    (void)state;
    const char *p = write_db("two.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
                                        "0123456789abcdef0123456789abcdef:10:Other-Test-Signature\n");
    cf_engine_test_result r;
    assert_int_equal(cf_engine_test_load(p, 0, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_OK);
    assert_int_equal(r.sigs, 2);
}

static void test_lib_broken_ndb(void **state)
{
    (void)state;
    const char *p = write_db("bad.ndb", "this is :: not a signature at all\n");
    cf_engine_test_result r;
    cf_err e = {0};
    assert_int_equal(cf_engine_test_load(p, 1, &r, &e), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_FAILED);
    assert_int_equal(r.exit_code, 8);
    assert_string_equal(r.exit_text, "Test failed");
    assert_non_null(strstr(r.error, "Failed to load new database: "));
    assert_true(strlen(r.error) > strlen("Failed to load new database: "));
    assert_true(r.stderr_lines >= 1);
    assert_true(r.stderr_first[0] != '\0');
    assert_int_equal(r.sigs, 0);
}

static void test_lib_missing_file(void **state)
{
    (void)state;
    char p[4200];
    snprintf(p, sizeof p, "%s/does-not-exist.cvd", g_dir);
    cf_engine_test_result r;
    assert_int_equal(cf_engine_test_load(p, 1, &r, NULL), CF_OK);
    assert_int_equal(r.status, CF_ENGINE_TEST_FAILED);
    assert_non_null(strstr(r.error, "Failed to load new database"));
}

int main(void)
{
    const struct CMUnitTest process_tests[] = {
        cmocka_unit_test(test_child_ok),
        cmocka_unit_test(test_child_stderr_summary),
        cmocka_unit_test(test_child_only_warnings),
        cmocka_unit_test(test_child_fails),
        cmocka_unit_test(test_child_fails_without_report),
        cmocka_unit_test(test_child_crashes),
        cmocka_unit_test(test_child_timeout),
        cmocka_unit_test(test_child_process_bound),
        cmocka_unit_test(test_child_floods),
        cmocka_unit_test(test_child_long_line),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_notes),
    };
    const struct CMUnitTest lib_tests[] = {
        cmocka_unit_test(test_lib_facts),
        cmocka_unit_test(test_lib_valid_hdb),
        cmocka_unit_test(test_lib_valid_without_bytecode),
        cmocka_unit_test(test_lib_broken_ndb),
        cmocka_unit_test(test_lib_missing_file),
    };
    int failed = cmocka_run_group_tests_name("engine process", process_tests, NULL, NULL);
    if (!cf_engine_available()) {
        printf("SKIP: libclamav tests: no libclamav.so.12/.11/.9/.so could be opened "
               "(Debian package libclamav12, pulled in by clamav)\n");
        return failed;
    }
    failed += cmocka_run_group_tests_name("engine libclamav", lib_tests, lib_setup, lib_teardown);
    return failed;
}
