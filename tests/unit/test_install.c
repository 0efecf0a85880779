#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/install.h"

static void put(const char *dir, const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

static void expect_content(const char *dir, const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(p, &b);
    assert_int_equal(b.n, strlen(text));
    assert_memory_equal(b.p, text, b.n);
    cf_buf_free(&b);
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_install_file_replaces_atomically(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    cf_err e = {0};
    mode_t old = umask(022);
    put(dir, "daily.cvd", "old contents");
    assert_int_equal(cf_install_file(dir, "daily.cvd", "new", 3, &e), CF_OK);
    expect_content(dir, "daily.cvd", "new");
    struct stat st;
    char p[4096];
    snprintf(p, sizeof p, "%s/daily.cvd", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* no temporary left behind */
    assert_int_equal(count_entries(dir), 1);
    /* names from the network never become paths */
    assert_int_equal(cf_install_file(dir, "../evil", "x", 1, &e), CF_EINVAL);
    assert_int_equal(cf_install_file(dir, "a/b", "x", 1, &e), CF_EINVAL);
    /* a missing directory fails without creating anything */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(cf_install_file(missing, "daily.cvd", "x", 1, &e), CF_EIO);
    assert_non_null(strstr(e.msg, "nope"));
    umask(old);
    cf_test_rmtree(dir);
}

static void test_temp_name_shape(void **state)
{
    (void)state;
    assert_true(cf_install_is_temp(".daily.cld.Ab12Cd34.tmp"));
    assert_false(cf_install_is_temp("daily.cld.Ab12Cd34.tmp"));
    assert_false(cf_install_is_temp(".daily.cld.Ab12-d34.tmp"));
    assert_false(cf_install_is_temp(".daily.cld.tmp"));
    assert_false(cf_install_is_temp(".Ab12Cd34.tmp"));
}

static void test_install_db_removes_stale(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    cf_err e = {0};
    int stale = -1;
    put(dir, "daily.cld", "old cld");
    put(dir, "daily-5.cvd.sign", "old sign");
    put(dir, "daily-6.cdiff.sign", "left-over");
    put(dir, "dailyx-1.cvd.sign", "another db");
    put(dir, "main.cvd", "main");
    assert_int_equal(cf_install_db(dir, "daily", "cvd", "CVD7", 4, "SIGN7", 5, 7, &stale, &e), CF_OK);
    assert_int_equal(stale, 0);
    expect_content(dir, "daily.cvd", "CVD7");
    expect_content(dir, "daily-7.cvd.sign", "SIGN7");
    assert_false(exists(dir, "daily.cld"));
    assert_false(exists(dir, "daily-5.cvd.sign"));
    assert_false(exists(dir, "daily-6.cdiff.sign"));
    assert_true(exists(dir, "dailyx-1.cvd.sign"));
    assert_true(exists(dir, "main.cvd"));

    /* a CLD never keeps a .sign and replaces the CVD */
    assert_int_equal(cf_install_db(dir, "daily", "cld", "CLD8", 4, NULL, 0, 8, &stale, &e), CF_OK);
    expect_content(dir, "daily.cld", "CLD8");
    assert_false(exists(dir, "daily.cvd"));
    assert_false(exists(dir, "daily-7.cvd.sign"));
    assert_int_equal(count_entries(dir), 3);

    assert_int_equal(cf_install_db(dir, "../x", "cvd", "x", 1, NULL, 0, 1, NULL, &e), CF_EINVAL);
    assert_int_equal(cf_install_db(dir, "daily", "exe", "x", 1, NULL, 0, 1, NULL, &e), CF_EINVAL);
    cf_test_rmtree(dir);
}

static void test_lock_contention(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        cf_dblock lk;
        cf_err ce = {0};
        if (cf_install_lock(dir, 0, &lk, NULL, &ce) != CF_OK)
            _exit(3);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1)
            _exit(4);
        if (read(go[0], &c, 1) != 1)
            _exit(5);
        /* hold a little longer so the parent's bounded wait has to poll */
        usleep(400 * 1000);
        cf_install_unlock(&lk);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);

    cf_dblock lk;
    cf_err e = {0};
    pid_t holder = 0;
    time_t t0 = time(NULL);
    assert_int_equal(cf_install_lock(dir, 1, &lk, &holder, &e), CF_EIO);
    assert_true(time(NULL) - t0 >= 1);
    assert_int_equal(holder, child);
    char expect[8192];
    snprintf(expect, sizeof expect,
             "Another clamfresh or freshclam update is running in %s (lock held by PID %ld); "
             "giving up after 1 seconds.",
             dir, (long)child);
    assert_string_equal(e.msg, expect);
    assert_int_equal(lk.fd, -1);

    /* released while we wait: the bounded wait succeeds */
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(cf_install_lock(dir, 5, &lk, &holder, &e), CF_OK);
    assert_true(lk.fd >= 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the file names the holder */
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "%ld\n", (long)getpid());
    expect_content(dir, CF_LOCK_NAME, pidtxt);
    cf_install_unlock(&lk);
    assert_int_equal(lk.fd, -1);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    cf_test_rmtree(dir);
}

static void test_lock_released_by_death(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        cf_dblock lk;
        if (cf_install_lock(dir, 0, &lk, NULL, NULL) != CF_OK)
            _exit(3);
        if (write(ready[1], "r", 1) != 1)
            _exit(4);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cf_dblock lk;
    cf_err e = {0};
    assert_int_equal(cf_install_lock(dir, 0, &lk, NULL, &e), CF_OK);
    cf_install_unlock(&lk);
    close(ready[0]);
    close(ready[1]);
    cf_test_rmtree(dir);
}

static char reported[16][128];
static int nreported;

static void report(void *arg, const char *name)
{
    (void)arg;
    if (nreported < 16)
        snprintf(reported[nreported++], sizeof reported[0], "%s", name);
}

static int was_reported(const char *name)
{
    for (int i = 0; i < nreported; i++)
        if (strcmp(reported[i], name) == 0)
            return 1;
    return 0;
}

static void test_cleanup_leftovers(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char p[4096];
    put(dir, ".daily.cld.Ab12Cd34.tmp", "half written");
    put(dir, ".profile", "not ours");
    snprintf(p, sizeof p, "%s/.clamfresh.Zz09Yy18.tmp", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    put(dir, ".clamfresh.Zz09Yy18.tmp/daily.cld", "test copy");
    put(dir, "daily.cvd", "db");
    snprintf(p, sizeof p, "%s/tmp.0123456789", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/tmp.0123456789/cld.abcdef0123", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    put(dir, "tmp.0123456789/cld.abcdef0123/daily.info", "x");
    put(dir, "tmp.0123456789/daily.cvd", "x");
    /* an old one (killed run) and a recent one (a live freshclam's) */
    snprintf(p, sizeof p, "%s/tmp.0123456789", dir);
    struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    snprintf(p, sizeof p, "%s/tmp.abcdef0123", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/tmp.notahexname", dir);
    assert_int_equal(mkdir(p, 0700), 0);

    nreported = 0;
    cf_err e = {0};
    assert_int_equal(cf_install_cleanup(dir, time(NULL) - 60, report, NULL, &e), CF_OK);
    assert_int_equal(nreported, 3);
    assert_true(was_reported(".daily.cld.Ab12Cd34.tmp"));
    assert_true(was_reported(".clamfresh.Zz09Yy18.tmp"));
    assert_false(exists(dir, ".clamfresh.Zz09Yy18.tmp"));
    assert_true(was_reported("tmp.0123456789"));
    assert_false(exists(dir, ".daily.cld.Ab12Cd34.tmp"));
    assert_false(exists(dir, "tmp.0123456789"));
    assert_true(exists(dir, "tmp.abcdef0123"));
    assert_true(exists(dir, "tmp.notahexname"));
    assert_true(exists(dir, ".profile"));
    assert_true(exists(dir, "daily.cvd"));
    cf_test_rmtree(dir);
}

static void test_prune(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    const char *files[] = {"daily.cvd",     "main.cvd",           "bytecode.cld", "x.cvd.bak",
                           "safebrowsing.cvd", "daily-123.cvd.sign", "freshclam.dat", "local.ign2",
                           "main.cld"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        put(dir, files[i], "x");
    const char *keep[] = {"daily", "main"};
    nreported = 0;
    cf_err e = {0};
    assert_int_equal(cf_install_prune(dir, keep, 2, report, NULL, &e), CF_OK);
    assert_int_equal(nreported, 3);
    assert_true(was_reported("bytecode.cld"));
    assert_true(was_reported("x.cvd.bak"));
    assert_true(was_reported("safebrowsing.cvd"));
    assert_false(exists(dir, "bytecode.cld"));
    assert_false(exists(dir, "x.cvd.bak"));
    assert_false(exists(dir, "safebrowsing.cvd"));
    assert_true(exists(dir, "daily.cvd"));
    assert_true(exists(dir, "main.cvd"));
    assert_true(exists(dir, "main.cld"));
    assert_true(exists(dir, "daily-123.cvd.sign"));
    assert_true(exists(dir, "freshclam.dat"));
    assert_true(exists(dir, "local.ign2"));
    cf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_file_replaces_atomically),
        cmocka_unit_test(test_temp_name_shape),
        cmocka_unit_test(test_install_db_removes_stale),
        cmocka_unit_test(test_lock_contention),
        cmocka_unit_test(test_lock_released_by_death),
        cmocka_unit_test(test_cleanup_leftovers),
        cmocka_unit_test(test_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
