/* The verification record (vrecord.h): an entry vouches for a file only while
 * its identity, version and age all match; garbage is dropped; the file is
 * refused when it is a link or FIFO and always replaced atomically. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/fileio.h"
#include "clamfresh/install.h"
#include "clamfresh/vrecord.h"

static const time_t NOW = 1780000000;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void stat_of(const char *dir, const char *name, struct stat *st)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(stat(p, st), 0);
}

/* Writes dir/name with text and a fixed mtime (so only what a test changes differs). */
static void make_db(const char *dir, const char *name, const char *text, long nsec)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_text(p, text);
    struct timespec ts[2] = {{1700000000, nsec}, {1700000000, nsec}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    make_db(dir, "daily.cvd", "daily bytes", 123456789);
    make_db(dir, "main.cvd", "main bytes", 0);
    struct stat d, m;
    stat_of(dir, "daily.cvd", &d);
    stat_of(dir, "main.cvd", &m);

    cf_vrecord r = CF_VRECORD_INIT;
    cf_err e = {0};
    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_OK); /* missing file: empty */
    assert_int_equal(r.n, 0);
    assert_false(cf_vrecord_fresh(&r, "daily.cvd", &d, 27000, NOW));
    assert_int_equal(cf_vrecord_put(&r, "daily.cvd", &d, 27000, NOW), CF_OK);
    assert_int_equal(cf_vrecord_put(&r, "main.cvd", &m, 62, NOW - 100), CF_OK);
    assert_int_equal(cf_vrecord_save(dir, &r, &e), CF_OK);
    cf_vrecord_free(&r);

    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_OK);
    assert_int_equal(r.n, 2);
    assert_true(cf_vrecord_fresh(&r, "daily.cvd", &d, 27000, NOW));
    assert_true(cf_vrecord_fresh(&r, "main.cvd", &m, 62, NOW));
    assert_false(cf_vrecord_fresh(&r, "bytecode.cvd", &m, 62, NOW));
    /* Entries vouch only for their own file. */
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &d, 27000, NOW));

    /* Saved atomically: the file, mode 0644 minus umask, and nothing else. */
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, CF_VRECORD_FILE);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
    char *text = cf_test_slurp(p);
    assert_true(strncmp(text, CF_VRECORD_HEADER "\n", strlen(CF_VRECORD_HEADER) + 1) == 0);
    assert_non_null(strstr(text, "\ndaily.cvd "));
    assert_non_null(strstr(text, ".123456789 "));
    free(text);

    /* Replacing an entry keeps one line per name; forget drops it. */
    assert_int_equal(cf_vrecord_put(&r, "daily.cvd", &d, 27001, NOW), CF_OK);
    assert_int_equal(r.n, 2);
    assert_false(cf_vrecord_fresh(&r, "daily.cvd", &d, 27000, NOW));
    assert_true(cf_vrecord_fresh(&r, "daily.cvd", &d, 27001, NOW));
    cf_vrecord_forget(&r, "daily.cvd");
    cf_vrecord_forget(&r, "never.cvd");
    assert_int_equal(r.n, 1);
    assert_false(cf_vrecord_fresh(&r, "daily.cvd", &d, 27001, NOW));
    assert_true(cf_vrecord_fresh(&r, "main.cvd", &m, 62, NOW));
    cf_vrecord_free(&r);
    cf_test_rmtree(dir);
    free(dir);
}

/* Any change to the file's identity means a full verification. */
static void test_identity_changes(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char p[4200], q[4200];
    snprintf(p, sizeof p, "%s/daily.cld", dir);
    make_db(dir, "daily.cld", "0123456789", 5);
    struct stat st, now_st;
    stat_of(dir, "daily.cld", &st);
    cf_vrecord r = CF_VRECORD_INIT;
    assert_int_equal(cf_vrecord_put(&r, "daily.cld", &st, 27000, NOW), CF_OK);
    assert_true(cf_vrecord_fresh(&r, "daily.cld", &st, 27000, NOW));
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &st, 27001, NOW)); /* another version */

    /* Size: bytes appended, mtime put back. */
    FILE *f = fopen(p, "a");
    fputs("x", f);
    fclose(f);
    struct timespec ts[2] = {{1700000000, 5}, {1700000000, 5}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    stat_of(dir, "daily.cld", &now_st);
    assert_int_not_equal(now_st.st_size, st.st_size);
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &now_st, 27000, NOW));

    /* mtime: one nanosecond is enough. */
    make_db(dir, "daily.cld", "0123456789", 6);
    stat_of(dir, "daily.cld", &now_st);
    assert_int_equal(now_st.st_ino, st.st_ino);
    assert_int_equal(now_st.st_size, st.st_size);
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &now_st, 27000, NOW));

    /* Inode: the same bytes and mtime renamed over it. */
    assert_int_equal(cf_vrecord_put(&r, "daily.cld", &now_st, 27000, NOW), CF_OK);
    assert_true(cf_vrecord_fresh(&r, "daily.cld", &now_st, 27000, NOW));
    make_db(dir, "other", "0123456789", 6);
    snprintf(q, sizeof q, "%s/other", dir);
    assert_int_equal(rename(q, p), 0);
    struct stat renamed;
    stat_of(dir, "daily.cld", &renamed);
    assert_int_not_equal(renamed.st_ino, now_st.st_ino);
    assert_int_equal(renamed.st_size, now_st.st_size);
    assert_int_equal(renamed.st_mtim.tv_nsec, now_st.st_mtim.tv_nsec);
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &renamed, 27000, NOW));

    /* ctime and device (a restored mtime, another file system). */
    struct stat x = now_st;
    x.st_ctim.tv_nsec = (x.st_ctim.tv_nsec + 1) % 1000000000;
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &x, 27000, NOW));
    x = now_st;
    x.st_ctim.tv_sec++;
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &x, 27000, NOW));
    x = now_st;
    x.st_dev++;
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &x, 27000, NOW));
    x = now_st;
    x.st_mtim.tv_sec--;
    assert_false(cf_vrecord_fresh(&r, "daily.cld", &x, 27000, NOW));
    cf_vrecord_free(&r);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_age_and_clock(void **state)
{
    (void)state;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_size = 10;
    st.st_ino = 7;
    cf_vrecord r = CF_VRECORD_INIT;
    assert_int_equal(cf_vrecord_put(&r, "main.cvd", &st, 62, NOW), CF_OK);
    assert_true(cf_vrecord_fresh(&r, "main.cvd", &st, 62, NOW));
    assert_true(cf_vrecord_fresh(&r, "main.cvd", &st, 62, NOW + CF_VRECORD_MAX_AGE - 1));
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &st, 62, NOW + CF_VRECORD_MAX_AGE));
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &st, 62, (time_t)INT64_MAX));
    /* The clock went backwards: a verification "in the future" proves nothing. */
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &st, 62, NOW - 1));
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &st, 62, (time_t)INT64_MIN));
    /* Verified at 0, asked at the end of time: no overflow. */
    assert_int_equal(cf_vrecord_put(&r, "main.cvd", &st, 62, 0), CF_OK);
    assert_false(cf_vrecord_fresh(&r, "main.cvd", &st, 62, (time_t)INT64_MAX));
    assert_true(cf_vrecord_fresh(&r, "main.cvd", &st, 62, 0));
    assert_int_equal(cf_vrecord_put(&r, "main.cvd", &st, 62, -1), CF_EINVAL);
    cf_vrecord_free(&r);
}

static void parse_text(const char *text, cf_vrecord *r)
{
    assert_int_equal(cf_vrecord_parse((const uint8_t *)text, strlen(text), r), CF_OK);
}

#define GOOD "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n"

static void test_garbage(void **state)
{
    (void)state;
    cf_vrecord r = CF_VRECORD_INIT;
    parse_text(CF_VRECORD_HEADER "\n" GOOD, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].name, "daily.cvd");
    assert_int_equal(r.v[0].size, 10);
    assert_int_equal(r.v[0].mtime_nsec, 5);
    assert_int_equal(r.v[0].ctime_sec, 1700000001);
    assert_int_equal(r.v[0].ino, 7);
    assert_int_equal(r.v[0].dev, 2049);
    assert_int_equal(r.v[0].verified_at, 1780000000);
    assert_int_equal(r.v[0].version, 27000);
    cf_vrecord_free(&r);

    /* Each of these lines alone must be dropped. */
    static const char *const bad[] = {
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000 9\n",
        "daily.cvd -10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 010 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd +10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000.00000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 -0.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000.00000000x 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 -1780000000 27000\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 4294967296\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 18446744073709551616 2049 1780000000 27000\n",
        "daily.cvd 9223372036854775808 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 9223372036854775808.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\r\n",
        "daily.cvd\t10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd  10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        " daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "../daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        ".daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "da/ily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n",
        "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000", /* cut short */
        "\n",
        "garbage\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        /* Between two good lines, so a bad line cannot spoil its neighbours. */
        int last = strchr(bad[i], '\n') == NULL;
        snprintf(text, sizeof text, "%s\n%s%s%s", CF_VRECORD_HEADER,
                 "main.cvd 1 1.000000000 1.000000000 1 1 1 1\n", last ? "" : bad[i],
                 last ? bad[i] : "bytecode.cvd 1 1.000000000 1.000000000 1 1 1 1\n");
        parse_text(text, &r);
        size_t want = last ? 1 : 2;
        if (r.n != want)
            fail_msg("line %zu kept: %s", i, bad[i]);
        for (size_t j = 0; j < r.n; j++)
            assert_string_not_equal(r.v[j].name, "daily.cvd");
        cf_vrecord_free(&r);
    }

    /* A name twice: neither is believed. */
    parse_text(CF_VRECORD_HEADER "\n" GOOD "main.cvd 1 1.000000000 1.000000000 1 1 1 1\n" GOOD GOOD, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].name, "main.cvd");
    cf_vrecord_free(&r);

    /* Another first line: nothing is ours. */
    parse_text("clamfresh-verified 2\n" GOOD, &r);
    assert_int_equal(r.n, 0);
    parse_text(GOOD, &r);
    assert_int_equal(r.n, 0);
    parse_text(CF_VRECORD_HEADER, &r);
    assert_int_equal(r.n, 0);
    parse_text("", &r);
    assert_int_equal(r.n, 0);

    /* A line longer than the bound is dropped even when well-formed. */
    char name[CF_VRECORD_MAX_NAME + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char text[2048];
    snprintf(text, sizeof text, "%s\n%s 1 1.000000000 1.000000000 1 1 1 1\n", CF_VRECORD_HEADER, name);
    parse_text(text, &r);
    assert_int_equal(r.n, 0);
    name[CF_VRECORD_MAX_NAME] = '\0';
    snprintf(text, sizeof text, "%s\n%s 1 1.000000000 1.000000000 1 1 1 1\n", CF_VRECORD_HEADER, name);
    parse_text(text, &r);
    assert_int_equal(r.n, 1);
    cf_vrecord_free(&r);

    /* Bounded in count. */
    cf_buf b = CF_BUF_INIT;
    cf_buf_printf(&b, "%s\n", CF_VRECORD_HEADER);
    for (int i = 0; i < CF_VRECORD_MAX_ENTRIES + 50; i++)
        cf_buf_printf(&b, "db%d.cvd 1 1.000000000 1.000000000 1 1 1 1\n", i);
    assert_int_equal(cf_vrecord_parse(b.p, b.n, &r), CF_OK);
    assert_int_equal(r.n, CF_VRECORD_MAX_ENTRIES);
    struct stat st;
    memset(&st, 0, sizeof st);
    assert_int_equal(cf_vrecord_put(&r, "new.cvd", &st, 1, NOW), CF_ETOOBIG);
    assert_int_equal(cf_vrecord_put(&r, "db0.cvd", &st, 1, NOW), CF_OK); /* replacing is fine */
    cf_vrecord_free(&r);
    cf_buf_free(&b);

    /* Names the format cannot hold are refused by put, not written. */
    assert_int_equal(cf_vrecord_put(&r, "", &st, 1, NOW), CF_EINVAL);
    assert_int_equal(cf_vrecord_put(&r, "a b", &st, 1, NOW), CF_EINVAL);
    assert_int_equal(cf_vrecord_put(&r, "a\nb", &st, 1, NOW), CF_EINVAL);
    assert_int_equal(cf_vrecord_put(&r, "../x", &st, 1, NOW), CF_EINVAL);
    assert_int_equal(cf_vrecord_put(&r, ".x", &st, 1, NOW), CF_EINVAL);
    assert_int_equal(r.n, 0);
    cf_vrecord_free(&r);
}

/* Whatever put accepts, format and parse give back unchanged. */
static void test_format_parse_property(void **state)
{
    (void)state;
    cf_test_srand(12345);
    for (int round = 0; round < 200; round++) {
        cf_vrecord r = CF_VRECORD_INIT;
        int n = (int)(cf_test_rand() % 8);
        for (int i = 0; i < n; i++) {
            struct stat st;
            memset(&st, 0, sizeof st);
            st.st_size = (off_t)(((uint64_t)cf_test_rand() << 31) ^ cf_test_rand());
            st.st_mtim.tv_sec = (time_t)((int32_t)cf_test_rand()) * (cf_test_rand() % 3 ? 1 : 100000);
            st.st_mtim.tv_nsec = (long)(cf_test_rand() % 1000000000u);
            st.st_ctim.tv_sec = (time_t)((int32_t)cf_test_rand());
            st.st_ctim.tv_nsec = (long)(cf_test_rand() % 1000000000u);
            st.st_ino = (ino_t)(((uint64_t)cf_test_rand() << 32) | cf_test_rand());
            st.st_dev = (dev_t)(((uint64_t)cf_test_rand() << 32) | cf_test_rand());
            char name[32];
            snprintf(name, sizeof name, "db-%u_x.c%s", cf_test_rand() % 10, i % 2 ? "vd" : "ld");
            assert_int_equal(
                cf_vrecord_put(&r, name, &st, cf_test_rand(), (time_t)(cf_test_rand() % 2000000000u)), CF_OK);
        }
        cf_buf b = CF_BUF_INIT;
        assert_int_equal(cf_vrecord_format(&r, &b), CF_OK);
        cf_vrecord back = CF_VRECORD_INIT;
        assert_int_equal(cf_vrecord_parse(b.p, b.n, &back), CF_OK);
        assert_int_equal(back.n, r.n);
        for (size_t i = 0; i < r.n; i++)
            assert_memory_equal(&back.v[i], &r.v[i], sizeof r.v[i]);
        cf_buf_free(&b);
        cf_vrecord_free(&back);
        cf_vrecord_free(&r);
    }
}

/* The one-call forms the updater uses: note a verification (by descriptor or
 * by name), see it fresh through the open file, forget it after a failure. */
static void test_note_and_fresh_fd(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    make_db(dir, "daily.cvd", "daily bytes", 5);
    char p[4200];
    snprintf(p, sizeof p, "%s/daily.cvd", dir);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    cf_err e = {0};
    assert_false(cf_vrecord_fresh_fd(dir, "daily.cvd", fd, 7, NOW));
    assert_int_equal(cf_vrecord_note(dir, "daily.cvd", fd, 7, 1, NOW, &e), CF_OK);
    assert_true(cf_vrecord_fresh_fd(dir, "daily.cvd", fd, 7, NOW + 60));
    assert_false(cf_vrecord_fresh_fd(dir, "daily.cvd", fd, 8, NOW + 60)); /* another version */
    assert_int_equal(cf_vrecord_note(dir, "daily.cvd", fd, 7, 0, NOW, &e), CF_OK);
    assert_false(cf_vrecord_fresh_fd(dir, "daily.cvd", fd, 7, NOW + 60));
    /* by name (no descriptor): the file as it is on disk */
    assert_int_equal(cf_vrecord_note(dir, "daily.cvd", -1, 7, 1, NOW, &e), CF_OK);
    assert_true(cf_vrecord_fresh_fd(dir, "daily.cvd", fd, 7, NOW + 60));
    /* a file that is not there cannot be recorded */
    assert_int_not_equal(cf_vrecord_note(dir, "main.cvd", -1, 7, 1, NOW, &e), CF_OK);
    close(fd);
    cf_test_rmtree(dir);
    free(dir);
}

static void test_file_refusals(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char *outside = cf_test_mkdtemp();
    char p[4200], secret[4200], want[4400];
    snprintf(p, sizeof p, "%s/%s", dir, CF_VRECORD_FILE);
    snprintf(secret, sizeof secret, "%s/elsewhere", outside);
    write_text(secret, CF_VRECORD_HEADER "\n" GOOD);
    cf_vrecord r = CF_VRECORD_INIT;
    cf_err e = {0};

    /* A link to a record that vouches for anything: not followed. */
    assert_int_equal(symlink(secret, p), 0);
    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_EUNSUPP);
    snprintf(want, sizeof want, "%s is a symbolic link, not a regular file", p);
    assert_string_equal(e.msg, want);
    assert_int_equal(r.n, 0);
    /* The next save replaces the link itself. */
    struct stat st;
    memset(&st, 0, sizeof st);
    assert_int_equal(cf_vrecord_put(&r, "main.cvd", &st, 1, NOW), CF_OK);
    assert_int_equal(cf_vrecord_save(dir, &r, &e), CF_OK);
    cf_vrecord_free(&r);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    char *t = cf_test_slurp(secret);
    assert_string_equal(t, CF_VRECORD_HEADER "\n" GOOD);
    free(t);
    unlink(p);

    /* A FIFO: refused at once instead of blocking. */
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_EUNSUPP);
    snprintf(want, sizeof want, "%s is a FIFO, not a regular file", p);
    assert_string_equal(e.msg, want);
    assert_int_equal(r.n, 0);
    unlink(p);

    /* Too big: ignored as a whole. */
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(CF_VRECORD_HEADER "\n", f);
    for (int i = 0; i < CF_VRECORD_MAX_BYTES / 64 + 10; i++)
        fputs(GOOD, f);
    fclose(f);
    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_ETOOBIG);
    assert_int_equal(r.n, 0);

    /* No temporary outlives a save; the one a kill would leave is of the shape
     * cf_install_cleanup removes. */
    assert_int_equal(cf_vrecord_save(dir, &r, &e), CF_OK);
    assert_int_equal(cf_vrecord_load(dir, &r, &e), CF_OK);
    assert_int_equal(r.n, 0);
    assert_true(cf_install_is_temp(".clamfresh-verified.state.Ab12Cd34.tmp"));
    assert_true(cf_file_is_replace_temp(".clamfresh-verified.state.Ab12Cd34.tmp", CF_VRECORD_FILE));

    assert_int_equal(cf_vrecord_save("/nonexistent/cf-dir", &r, &e), CF_EIO);
    assert_string_equal(
        e.msg, "Can't create clamfresh-verified.state in /nonexistent/cf-dir: No such file or directory");
    cf_vrecord_free(&r);
    cf_test_rmtree(dir);
    cf_test_rmtree(outside);
    free(dir);
    free(outside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_note_and_fresh_fd),
        cmocka_unit_test(test_identity_changes), cmocka_unit_test(test_age_and_clock),
        cmocka_unit_test(test_garbage),          cmocka_unit_test(test_format_parse_property),
        cmocka_unit_test(test_file_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
