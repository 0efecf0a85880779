/* On*Execute hooks (freshclam-behavior.md §7), run for real through /bin/sh. */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/hooks.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = cf_test_mkdtemp();
    return tmp == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(tmp);
    free(tmp);
    return 0;
}

static const char *tpath(const char *name)
{
    static char p[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, name);
    return p[i];
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void read_text(const char *path, char *out, size_t cap)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(out, 1, cap - 1, fp);
    out[n] = '\0';
    fclose(fp);
}

static void test_exit_code_parse(void **state)
{
    (void)state;
    int n = -99;
    assert_true(cf_hook_exit_code("EXIT_1", &n));
    assert_int_equal(n, 1);
    assert_true(cf_hook_exit_code("EXIT_1 anything", &n));
    assert_int_equal(n, 1);
    assert_true(cf_hook_exit_code("EXIT_0", &n));
    assert_int_equal(n, 0);
    assert_true(cf_hook_exit_code("EXIT_42;rm -rf /", &n));
    assert_int_equal(n, 42);
    assert_true(cf_hook_exit_code("EXIT_ 7", &n)); /* %d skips white space */
    assert_int_equal(n, 7);
    assert_true(cf_hook_exit_code("EXIT_-2", &n));
    assert_int_equal(n, -2);
    n = -99;
    assert_false(cf_hook_exit_code("EXIT_", &n));
    assert_false(cf_hook_exit_code("EXIT_abc", &n));
    assert_false(cf_hook_exit_code("EXIT_-", &n));
    assert_false(cf_hook_exit_code("exit_1", &n));
    assert_false(cf_hook_exit_code(" EXIT_1", &n));
    assert_false(cf_hook_exit_code("EXIT1", &n));
    assert_false(cf_hook_exit_code("/bin/true", &n));
    assert_int_equal(n, -99);
}

static void test_version_substitution(void **state)
{
    (void)state;
    char *out = NULL;
    cf_err e = {0};
    assert_int_equal(cf_hook_command(CF_HOOK_OUTDATED, "echo v=%v again %v", "1.4.7", &out, &e), CF_OK);
    assert_string_equal(out, "echo v=1.4.7 again %v"); /* only the first %v */
    free(out);
    assert_int_equal(cf_hook_command(CF_HOOK_OUTDATED, "%v", "10.20.30", &out, &e), CF_OK);
    assert_string_equal(out, "10.20.30");
    free(out);
    assert_int_equal(cf_hook_command(CF_HOOK_OUTDATED, "notify-admin", "1.5.0", &out, &e), CF_OK);
    assert_string_equal(out, "notify-admin");
    free(out);
    /* %v stays literal in the other hooks */
    assert_int_equal(cf_hook_command(CF_HOOK_UPDATE, "echo %v", "1.4.7", &out, &e), CF_OK);
    assert_string_equal(out, "echo %v");
    free(out);
    assert_int_equal(cf_hook_command(CF_HOOK_ERROR, "echo %v", NULL, &out, &e), CF_OK);
    assert_string_equal(out, "echo %v");
    free(out);

    const char *bad[] = {"1.4.7;reboot", "", "1.4.7 ", "$(id)", "1.4.7\n", "v1.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = (char *)"sentinel";
        assert_int_equal(cf_hook_command(CF_HOOK_OUTDATED, "echo %v", bad[i], &out, &e), CF_EINVAL);
        assert_null(out);
        assert_string_equal(e.msg,
                            "executeIfNewVersion: OnOutdatedExecute: Incorrect version number string");
    }
    assert_int_equal(cf_hook_command(CF_HOOK_OUTDATED, "echo %v", NULL, &out, &e), CF_EINVAL);
    assert_string_equal(cf_hook_name(CF_HOOK_UPDATE), "OnUpdateExecute");
    assert_string_equal(cf_hook_name(CF_HOOK_ERROR), "OnErrorExecute");
    assert_string_equal(cf_hook_name(CF_HOOK_OUTDATED), "OnOutdatedExecute");
}

static void test_run_shell_status_ignored(void **state)
{
    (void)state;
    char cmd[1024], text[256];
    /* shell syntax works (it is sh -c), the wait is synchronous, status 3 is ignored */
    snprintf(cmd, sizeof(cmd), "sleep 0.2; a=ok; [ $a = ok ] && echo \"ran $a\" > '%s'; exit 3",
             tpath("out1"));
    int st = 12345;
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    assert_int_equal(cf_hook_run(CF_HOOK_ERROR, cmd, NULL, &st, &notes, &e), CF_OK);
    assert_int_equal(st, -1);
    assert_true(exists(tpath("out1")));
    read_text(tpath("out1"), text, sizeof(text));
    assert_string_equal(text, "ran ok\n");
    assert_int_equal(notes.n, 0);

    /* a command the shell cannot find is still just "ran" */
    assert_int_equal(cf_hook_run(CF_HOOK_UPDATE, "/nonexistent/hook 2>/dev/null", NULL, &st, &notes, &e),
                     CF_OK);
    assert_int_equal(st, -1);
}

static void test_run_exit_n(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "EXIT_5 ; touch '%s'", tpath("never"));
    int st = 0;
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    assert_int_equal(cf_hook_run(CF_HOOK_UPDATE, cmd, NULL, &st, &notes, &e), CF_OK);
    assert_int_equal(st, 5);
    assert_false(exists(tpath("never")));
    assert_int_equal(notes.n, 1);
    assert_int_equal(notes.item[0].level, CF_NOTE_DEBUG);
    assert_string_equal(notes.item[0].text, "OnUpdateExecute: EXIT_5");

    assert_int_equal(cf_hook_run(CF_HOOK_ERROR, "EXIT_0", NULL, &st, &notes, &e), CF_OK);
    assert_int_equal(st, 0);
}

static void test_run_outdated(void **state)
{
    (void)state;
    char cmd[1024], text[256];
    snprintf(cmd, sizeof(cmd), "echo \"v=%%v\" > '%s'", tpath("ver"));
    int st = 0;
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    assert_int_equal(cf_hook_run(CF_HOOK_OUTDATED, cmd, "1.5.2", &st, &notes, &e), CF_OK);
    read_text(tpath("ver"), text, sizeof(text));
    assert_string_equal(text, "v=1.5.2\n");
    unlink(tpath("ver"));

    /* a bad version runs nothing */
    assert_int_equal(cf_hook_run(CF_HOOK_OUTDATED, cmd, "1.5.2`id`", &st, &notes, &e), CF_EINVAL);
    assert_false(exists(tpath("ver")));
    assert_int_equal(st, -1);
    assert_non_null(cf_notes_find(&notes, CF_NOTE_ERROR,
                                  "executeIfNewVersion: OnOutdatedExecute: Incorrect version number string"));
}

static void test_pool_limit(void **state)
{
    (void)state;
    cf_hook_pool pool;
    cf_hook_pool_init(&pool);
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    char cmd[1024];
    /* each child waits for the "go" file, so all five stay alive */
    snprintf(cmd, sizeof(cmd), "while [ ! -e '%s' ]; do sleep 0.05; done", tpath("go"));
    for (int i = 0; i < CF_HOOK_MAX_CHILDREN; i++)
        assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_UPDATE, cmd, NULL, &notes, &e), CF_OK);
    assert_int_equal(pool.active, 5);
    assert_int_equal(notes.n, 0);
    assert_int_equal(cf_hook_pool_reap(&pool), 0);

    char marker[1024];
    snprintf(marker, sizeof(marker), "touch '%s'", tpath("sixth"));
    assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_ERROR, marker, NULL, &notes, &e), CF_EUNSUPP);
    assert_int_equal(notes.n, 1);
    assert_int_equal(notes.item[0].level, CF_NOTE_WARN);
    assert_string_equal(notes.item[0].text, "OnErrorExecute: already 5 processes active.");

    FILE *fp = fopen(tpath("go"), "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(cf_hook_pool_drain(&pool, 10000), 0);
    assert_int_equal(pool.active, 0);
    assert_false(exists(tpath("sixth")));

    /* room again */
    assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_ERROR, marker, NULL, &notes, &e), CF_OK);
    assert_int_equal(cf_hook_pool_drain(&pool, 10000), 0);
    assert_true(exists(tpath("sixth")));
}

static void test_pool_async_and_own_children(void **state)
{
    (void)state;
    cf_hook_pool pool;
    cf_hook_pool_init(&pool);
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    char cmd[1024], text[64];

    /* a child that is not the pool's must not be reaped by it */
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0)
        _exit(9);

    snprintf(cmd, sizeof(cmd), "sleep 0.5; echo %%v > '%s'", tpath("late"));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_OUTDATED, cmd, "1.6.0", &notes, &e), CF_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(dt < 0.4); /* returned before the command finished */
    assert_false(exists(tpath("late")));

    /* EXIT_n is an ordinary (failing) command in daemon mode; it does not exit us */
    assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_UPDATE, "EXIT_3 2>/dev/null", NULL, &notes, &e),
                     CF_OK);
    assert_int_equal(cf_hook_pool_drain(&pool, 10000), 0);
    read_text(tpath("late"), text, sizeof(text));
    assert_string_equal(text, "1.6.0\n");

    int status = 0;
    assert_int_equal(waitpid(other, &status, 0), other);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 9);

    /* bad version: nothing started */
    assert_int_equal(cf_hook_pool_spawn(&pool, CF_HOOK_OUTDATED, cmd, "x", &notes, &e), CF_EINVAL);
    assert_int_equal(pool.active, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_code_parse),
        cmocka_unit_test(test_version_substitution),
        cmocka_unit_test(test_run_shell_status_ignored),
        cmocka_unit_test(test_run_exit_n),
        cmocka_unit_test(test_run_outdated),
        cmocka_unit_test(test_pool_limit),
        cmocka_unit_test(test_pool_async_and_own_children),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
