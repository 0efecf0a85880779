/* Files in DatabaseDirectory (fileio.h): what is not a regular file is refused
 * and named, nothing is read or written through a link, a FIFO never blocks,
 * and a replacement is atomic and leaves no temporary behind. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clamfresh/fileio.h"
#include "clamfresh/install.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_regular_file(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char p[4200];
    snprintf(p, sizeof p, "%s/freshclam.dat", dir);
    write_text(p, "hello");
    cf_err e = {0};
    int fd = cf_file_open_db(p, O_RDONLY, 0, &e);
    assert_true(fd >= 0);
    /* Blocking again for the reader, and not inherited by hooks we run. */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);

    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_file_read_db(p, 5, &b, &e), CF_OK);
    assert_int_equal(b.n, 5);
    assert_memory_equal(b.p, "hello", 5);
    assert_int_equal(cf_file_read_db(p, 4, &b, &e), CF_ETOOBIG);

    /* Creation goes through the same rules. */
    char q[4200];
    snprintf(q, sizeof q, "%s/new", dir);
    fd = cf_file_open_db(q, O_WRONLY | O_CREAT | O_EXCL, 0600, &e);
    assert_true(fd >= 0);
    close(fd);

    snprintf(q, sizeof q, "%s/missing", dir);
    assert_int_equal(cf_file_read_db(q, 100, &b, &e), CF_ENOTFOUND);
    assert_int_equal(cf_file_open_db(q, O_RDONLY, 0, &e), -1);
    assert_int_equal(e.code, CF_ENOTFOUND);
    cf_buf_free(&b);
    cf_test_rmtree(dir);
    free(dir);
}

/* path must be refused for reading, writing and creating, with what it is named. */
static void expect_refused(const char *path, const char *kind)
{
    char want[4300];
    snprintf(want, sizeof want, "%s is %s, not a regular file", path, kind);
    cf_err e = {0};
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_file_read_db(path, 4096, &b, &e), CF_EUNSUPP);
    assert_string_equal(e.msg, want);
    cf_buf_free(&b);
    const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR | O_CREAT, O_WRONLY | O_CREAT | O_TRUNC};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_int_equal(cf_file_open_db(path, modes[i], 0644, &e), -1);
        assert_int_equal(e.code, CF_EUNSUPP);
        assert_string_equal(e.msg, want);
    }
}

static void test_not_regular(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char *outside = cf_test_mkdtemp();
    char p[4200], secret[4200];

    /* A FIFO with no writer: an ordinary open would wait for ever. */
    snprintf(p, sizeof p, "%s/freshclam.dat", dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    expect_refused(p, "a FIFO");
    unlink(p);

    /* A link to a file elsewhere is not read through, nor written through. */
    snprintf(secret, sizeof secret, "%s/secret", outside);
    write_text(secret, "private\n");
    assert_int_equal(symlink(secret, p), 0);
    expect_refused(p, "a symbolic link");
    char *kept = cf_test_slurp(secret);
    assert_string_equal(kept, "private\n");
    free(kept);
    unlink(p);

    /* A dangling link: creating through it would create a file elsewhere. */
    char elsewhere[4200];
    snprintf(elsewhere, sizeof elsewhere, "%s/created", outside);
    assert_int_equal(symlink(elsewhere, p), 0);
    expect_refused(p, "a symbolic link");
    struct stat st;
    assert_int_equal(lstat(elsewhere, &st), -1);
    unlink(p);

    assert_int_equal(mkdir(p, 0755), 0);
    expect_refused(p, "a directory");
    rmdir(p);

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(p) < sizeof sa.sun_path) {
        memcpy(sa.sun_path, p, strlen(p) + 1);
        assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
        expect_refused(p, "a socket");
        unlink(p);
    }
    close(s);

    /* Configuration files keep following links (cf_file_read). */
    assert_int_equal(symlink(secret, p), 0);
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_file_read(p, 100, &b, &e), CF_OK);
    assert_int_equal(b.n, 8);
    cf_buf_free(&b);
    cf_test_rmtree(dir);
    free(dir);
    cf_test_rmtree(outside);
    free(outside);
}

static int count_entries(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    int n = -1;
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static void test_replace(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char *outside = cf_test_mkdtemp();
    char p[4200], secret[4200];
    snprintf(p, sizeof p, "%s/state", dir);
    cf_err e = {0};
    assert_int_equal(cf_file_replace_db(dir, "state", "one\n", 4, &e), CF_OK);
    char *t = cf_test_slurp(p);
    assert_string_equal(t, "one\n");
    free(t);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
    assert_int_equal(cf_file_replace_db(dir, "state", "two\n", 4, &e), CF_OK);
    t = cf_test_slurp(p);
    assert_string_equal(t, "two\n");
    free(t);
    assert_int_equal(count_entries(dir), 1); /* no temporary left */

    /* A link in its place is replaced, its target untouched. */
    snprintf(secret, sizeof secret, "%s/secret", outside);
    write_text(secret, "private\n");
    unlink(p);
    assert_int_equal(symlink(secret, p), 0);
    assert_int_equal(cf_file_replace_db(dir, "state", "three\n", 6, &e), CF_OK);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    t = cf_test_slurp(secret);
    assert_string_equal(t, "private\n");
    free(t);

    /* So is a FIFO, without ever opening it. */
    unlink(p);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(cf_file_replace_db(dir, "state", "four\n", 5, &e), CF_OK);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    assert_int_equal(cf_file_replace_db("/nonexistent/cf-dir", "state", "x", 1, &e), CF_EIO);
    assert_string_equal(e.msg, "Can't create state in /nonexistent/cf-dir: No such file or directory");
    cf_test_rmtree(dir);
    free(dir);
    cf_test_rmtree(outside);
    free(outside);
}

/* The temporary name is one that cf_install_cleanup removes after a kill. */
static void test_temp_shape(void **state)
{
    (void)state;
    static const char *const yes[] = {".freshclam.dat.Ab12Cd34.tmp", ".x.00000000.tmp",
                                      ".clamfresh-verified.state.zzzzZZZZ.tmp"};
    static const char *const names[] = {"freshclam.dat", "x", "clamfresh-verified.state"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(cf_file_is_replace_temp(yes[i], names[i]));
        assert_true(cf_install_is_temp(yes[i]));
    }
    static const char *const no[] = {"freshclam.dat.Ab12Cd34.tmp",  ".freshclam.dat.Ab12Cd3.tmp",
                                     ".freshclam.dat.Ab12Cd3-.tmp", ".freshclam.dat.Ab12Cd34.tmpx",
                                     ".freshclam.datXAb12Cd34.tmp", ".other.dat.Ab12Cd34.tmp",
                                     "freshclam.dat.tmp-deadbeef",  ".freshclam.dat..tmp"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(cf_file_is_replace_temp(no[i], "freshclam.dat"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_file),
        cmocka_unit_test(test_not_regular),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_temp_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
