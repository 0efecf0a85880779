/* freshclam.dat layout and cool-down transitions (behavior §5.3, §5.5). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/fileio.h"
#include "clamfresh/install.h"
#include "clamfresh/state.h"

/* The bytes freshclam 1.4.6 writes on x86-64, built independently of the
 * encoder: magic, version 1, UUID + NUL, 7 padding bytes, retry_after, cf-ray. */
static void real_layout(uint8_t out[90], const char *uuid, int64_t retry, const char *ray, uint8_t padbyte)
{
    memset(out, 0, 90);
    memcpy(out, "FreshClamData", 13);
    out[13] = 1; /* little-endian uint32 1 */
    memcpy(out + 17, uuid, 36);
    memset(out + 54, padbyte, 7);
    for (int i = 0; i < 8; i++)
        out[61 + i] = (uint8_t)((uint64_t)retry >> (8 * i));
    memcpy(out + 69, ray, strlen(ray));
}

static const char *UUID = "4150b19a-6eda-4e1e-8854-7483e8ea7f28";

static void test_layout(void **state)
{
    (void)state;
    cf_state s;
    memset(&s, 0, sizeof s);
    strcpy(s.uuid, UUID);
    s.retry_after = 1700000000;
    strcpy(s.cf_ray, "8e1f2a3b4c5d6e7f-AMS");
    uint8_t got[CF_STATE_SIZE], want[90];
    cf_state_encode(&s, got);
    real_layout(want, UUID, 1700000000, "8e1f2a3b4c5d6e7f-AMS", 0);
    assert_int_equal(CF_STATE_SIZE, 90);
    assert_memory_equal(got, want, 90);
    assert_int_equal(got[53], 0); /* UUID NUL */
    assert_int_equal(got[89], 0); /* cf-ray NUL */
}

static void test_decode_real_file(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);
    uint8_t bytes[90];
    /* Nonzero padding, as a struct dump may leave it: must be preserved. */
    /* A cool-down that has ended (or ends within CF_COOLDOWN_MAX) is kept as
     * stored; a later one would be shortened by the load. */
    real_layout(bytes, UUID, 1600000000, "0123456789abcdef-XYZ", 0xab);
    char path[4200];
    snprintf(path, sizeof path, "%s/freshclam.dat", dir);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(path, bytes, sizeof bytes, 0644, &e), CF_OK);

    cf_state s;
    int created = -1;
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 0);
    assert_string_equal(s.uuid, UUID);
    assert_int_equal(s.retry_after, 1600000000);
    assert_string_equal(s.cf_ray, "0123456789abcdef-XYZ");
    assert_int_equal(s.pad[0], 0xab);

    /* Saving what was loaded gives back the same 90 bytes. */
    assert_int_equal(cf_state_save(dir, &s, &e), CF_OK);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(path, &b);
    assert_int_equal(b.n, 90);
    assert_memory_equal(b.p, bytes, 90);
    cf_buf_free(&b);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0644 & ~mask); /* freshclam's 0644 minus umask */

    /* A 69-byte file (no cf-ray block) is accepted. */
    assert_int_equal(cf_state_decode(bytes, 69, &s, &e), CF_OK);
    assert_string_equal(s.cf_ray, "");
    assert_int_equal(s.retry_after, 1600000000);
    cf_test_rmtree(dir);
    free(dir);
}

static int is_v4_uuid(const char *u)
{
    if (strlen(u) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", u[i])) {
            return 0;
        }
    }
    return u[14] == '4' && strchr("89ab", u[19]) != NULL;
}

static void test_bad_files_make_new(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/freshclam.dat", dir);
    uint8_t bytes[90];
    cf_err e = {0};
    cf_state s;
    int created = 0;

    /* Missing file. */
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 1);
    assert_true(is_v4_uuid(s.uuid));
    char first[37];
    strcpy(first, s.uuid);
    assert_int_equal(s.retry_after, 0);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(path, &b);
    assert_int_equal(b.n, 90);
    assert_memory_equal(b.p, "FreshClamData", 13);
    cf_buf_free(&b);
    /* Loaded again: same UUID, not recreated. */
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 0);
    assert_string_equal(s.uuid, first);

    /* Bad magic. */
    real_layout(bytes, UUID, 5, "", 0);
    bytes[0] = 'f';
    unlink(path);
    assert_int_equal(cf_file_write_new(path, bytes, 90, 0644, &e), CF_OK);
    assert_int_equal(cf_state_decode(bytes, 90, &s, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "magic"));
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 1);
    assert_string_not_equal(s.uuid, UUID);
    assert_int_equal(s.retry_after, 0);

    /* Short file. */
    real_layout(bytes, UUID, 5, "", 0);
    unlink(path);
    assert_int_equal(cf_file_write_new(path, bytes, 68, 0644, &e), CF_OK);
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 1);
    assert_string_not_equal(s.uuid, UUID);

    /* Wrong version. */
    real_layout(bytes, UUID, 5, "", 0);
    bytes[13] = 2;
    assert_int_equal(cf_state_decode(bytes, 90, &s, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "version"));

    /* Two fresh states differ. */
    cf_state a, c;
    assert_int_equal(cf_state_init_new(&a, &e), CF_OK);
    assert_int_equal(cf_state_init_new(&c, &e), CF_OK);
    assert_string_not_equal(a.uuid, c.uuid);

    /* An unwritable directory is the one hard failure. */
    assert_int_equal(cf_state_load("/nonexistent/cf-dir", &s, &created, &e), CF_EIO);
    assert_string_equal(e.msg,
                        "Can't create freshclam.dat in /nonexistent/cf-dir: No such file or directory");
    cf_test_rmtree(dir);
    free(dir);
}

static void test_cooldown(void **state)
{
    (void)state;
    const time_t now = 1700000000;
    cf_state s;
    cf_err e = {0};
    assert_int_equal(cf_state_init_new(&s, &e), CF_OK);
    assert_int_equal(cf_state_cooldown_check(&s, now), CF_COOLDOWN_NONE);

    cf_state_block_403(&s, now);
    assert_int_equal(s.retry_after, now + 24 * 3600);
    assert_int_equal(cf_state_cooldown_check(&s, now + 24 * 3600 - 1), CF_COOLDOWN_ACTIVE);
    assert_int_equal(s.retry_after, now + 24 * 3600);
    /* retry_after <= now: expired, and cleared. */
    assert_int_equal(cf_state_cooldown_check(&s, now + 24 * 3600), CF_COOLDOWN_EXPIRED);
    assert_int_equal(s.retry_after, 0);
    assert_int_equal(cf_state_cooldown_check(&s, now + 24 * 3600), CF_COOLDOWN_NONE);

    cf_state_block_429(&s, now, 60);
    assert_int_equal(s.retry_after, now + 60);
    cf_state_block_429(&s, now, 0);
    assert_int_equal(s.retry_after, now + 4 * 3600);
    cf_state_block_429(&s, now, -5);
    assert_int_equal(s.retry_after, now + 4 * 3600);

    cf_state_set_ray(&s, "0123456789abcdef-XYZ-and-more");
    assert_string_equal(s.cf_ray, "0123456789abcdef-XYZ");
    cf_state_set_ray(&s, NULL);
    assert_string_equal(s.cf_ray, "");
}

static void test_messages(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    cf_state s;
    memset(&s, 0, sizeof s);
    s.retry_after = 1700000000; /* 2023-11-14 22:13:20 UTC */
    char msg[CF_STATE_MSG_SIZE], t[20];
    cf_state_format_time(1700000000, t);
    assert_string_equal(t, "2023-11-14 22:13:20");
    cf_state_msg_on_cooldown(&s, msg);
    assert_string_equal(msg, "You are on cool-down until after: 2023-11-14 22:13:20");
    cf_state_msg_still_cooldown(&s, msg);
    assert_string_equal(msg, "You are still on cool-down until after: 2023-11-14 22:13:20");
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    cf_state_format_time(1700000000, t);
    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0)
        assert_string_equal(t, "2023-11-14 23:13:20"); /* local time, not UTC */
}

/* Whatever a server or a stored file asks for, a cool-down ends at most
 * CF_COOLDOWN_MAX after now, and nothing overflows at the ends of time_t. */
static void test_cooldown_cap(void **state)
{
    (void)state;
    const time_t now = 1700000000;
    cf_state s;
    memset(&s, 0, sizeof s);
    assert_int_equal(CF_COOLDOWN_MAX, 24 * 3600);

    cf_state_block_429(&s, now, LONG_MAX); /* Retry-After: 9223372036854775807 */
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
    cf_state_block_429(&s, now, 10L * 365 * 86400);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
    cf_state_block_429(&s, now, CF_COOLDOWN_MAX);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
    cf_state_block_429(&s, now, CF_COOLDOWN_MAX - 1);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX - 1);

    /* A now at the end of time saturates instead of wrapping to the past. */
    const time_t end = (time_t)INT64_MAX;
    cf_state_block_429(&s, end - 10, LONG_MAX);
    assert_int_equal(s.retry_after, INT64_MAX);
    cf_state_block_403(&s, end);
    assert_int_equal(s.retry_after, INT64_MAX);
    assert_int_equal(cf_state_cooldown_check(&s, end), CF_COOLDOWN_EXPIRED);
    cf_state_block_429(&s, (time_t)INT64_MIN, 0);
    assert_int_equal(s.retry_after, INT64_MIN + CF_COOLDOWN_429);
    assert_int_equal(cf_state_cooldown_check(&s, (time_t)INT64_MIN), CF_COOLDOWN_NONE);

    /* A stored end far away (freshclam has no cap; a clock was wrong) is
     * shortened to now + cap, and then runs out like any other. */
    s.retry_after = INT64_MAX;
    assert_int_equal(cf_state_cooldown_clamp(&s, now), 1);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
    assert_int_equal(cf_state_cooldown_clamp(&s, now), 0);
    assert_int_equal(cf_state_cooldown_clamp(&s, now + 5), 0);
    s.retry_after = 253402300799; /* 9999-12-31 23:59:59 */
    assert_int_equal(cf_state_cooldown_check(&s, now), CF_COOLDOWN_ACTIVE);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
    assert_int_equal(cf_state_cooldown_check(&s, now + CF_COOLDOWN_MAX - 1), CF_COOLDOWN_ACTIVE);
    assert_int_equal(cf_state_cooldown_check(&s, now + CF_COOLDOWN_MAX), CF_COOLDOWN_EXPIRED);
    s.retry_after = now + CF_COOLDOWN_MAX + 1;
    assert_int_equal(cf_state_cooldown_check(&s, now), CF_COOLDOWN_ACTIVE);
    assert_int_equal(s.retry_after, now + CF_COOLDOWN_MAX);
}

/* The load shortens a stored absurd cool-down and saves it, so it expires
 * within a day however many runs read it. */
static void test_load_clamps_stored_cooldown(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/freshclam.dat", dir);
    uint8_t bytes[90];
    real_layout(bytes, UUID, INT64_MAX, "", 0);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(path, bytes, sizeof bytes, 0644, &e), CF_OK);
    cf_state s;
    int created = -1;
    time_t t0 = time(NULL);
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    time_t t1 = time(NULL);
    assert_int_equal(created, 0);
    assert_string_equal(s.uuid, UUID);
    assert_true(s.retry_after >= t0 + CF_COOLDOWN_MAX && s.retry_after <= t1 + CF_COOLDOWN_MAX);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(path, &b);
    cf_state disk;
    assert_int_equal(cf_state_decode(b.p, b.n, &disk, &e), CF_OK);
    assert_int_equal(disk.retry_after, s.retry_after);
    cf_buf_free(&b);
    cf_test_rmtree(dir);
    free(dir);
}

typedef struct ra_case {
    const char *value;
    time_t now;
    cf_code code;
    long seconds;
} ra_case;

static void test_retry_after_parse(void **state)
{
    (void)state;
    const time_t t = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    const time_t y2026 = 1780000000;
    const ra_case cases[] = {
        {"120", t, CF_OK, 120},
        {" \t120 ", t, CF_OK, 120},
        {"0", t, CF_OK, 0},
        {"86400", t, CF_OK, 86400},
        {"86401", t, CF_OK, CF_COOLDOWN_MAX},
        {"9223372036854775807", t, CF_OK, CF_COOLDOWN_MAX},
        {"99999999999999999999999999999999999999999999", t, CF_OK, CF_COOLDOWN_MAX},
        {"000000000000000000000000000000000000000000007", t, CF_OK, 7},
        {"", t, CF_EFORMAT, -1},
        {"   ", t, CF_EFORMAT, -1},
        {"-1", t, CF_EFORMAT, -1},
        {"+5", t, CF_EFORMAT, -1},
        {"1.5", t, CF_EFORMAT, -1},
        {"12 34", t, CF_EFORMAT, -1},
        {"0x10", t, CF_EFORMAT, -1},
        {"soon", t, CF_EFORMAT, -1},
        /* The three date forms, all naming the same instant. */
        {"Sun, 06 Nov 1994 08:49:37 GMT", t - 37, CF_OK, 37},
        {"Sunday, 06-Nov-94 08:49:37 GMT", t - 37, CF_OK, 37},
        {"Sun Nov  6 08:49:37 1994", t - 37, CF_OK, 37},
        {"Sun, 06 Nov 1994 08:49:37 GMT", t, CF_OK, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT", t + 1, CF_OK, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT", t - CF_COOLDOWN_MAX, CF_OK, CF_COOLDOWN_MAX},
        {"Sun, 06 Nov 1994 08:49:37 GMT", t - CF_COOLDOWN_MAX - 1, CF_OK, CF_COOLDOWN_MAX},
        {"Fri, 31 Dec 9999 23:59:59 GMT", t, CF_OK, CF_COOLDOWN_MAX},
        {"Thu, 01 Jan 1970 00:00:00 GMT", t, CF_OK, 0},
        {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400 - 10, CF_OK, 10},
        /* Extreme clocks: no overflow either way. */
        {"Fri, 31 Dec 9999 23:59:59 GMT", (time_t)INT64_MAX, CF_OK, 0},
        {"Thu, 01 Jan 1970 00:00:00 GMT", (time_t)INT64_MIN, CF_OK, CF_COOLDOWN_MAX},
        {"Sunday, 06-Nov-94 08:49:37 GMT", (time_t)INT64_MAX, CF_EFORMAT, -1},
        /* Two-digit years: no more than 50 years ahead of now. */
        {"Saturday, 01-Jan-76 00:00:00 GMT", y2026, CF_OK, CF_COOLDOWN_MAX},
        {"Friday, 01-Jan-77 00:00:00 GMT", y2026, CF_OK, 0},
        /* Not dates. */
        {"Sun, 06 Nov 1994 08:49:37 gmt", t, CF_EFORMAT, -1},
        {"Sun, 06 Nov 1994 08:49:37", t, CF_EFORMAT, -1},
        {"Sun, 06 Nov 1994 08:49:37 GMT x", t, CF_EFORMAT, -1},
        {"Sun, 6 Nov 1994 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Sun, 31 Feb 1994 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Sun, 29 Feb 1900 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Sun, 06 Nov 1994 24:00:00 GMT", t, CF_EFORMAT, -1},
        {"Sun, 06 Nov 1994 08:60:00 GMT", t, CF_EFORMAT, -1},
        {"Sun, 06 Nov 1994 08:49:61 GMT", t, CF_EFORMAT, -1},
        {"Sun, 00 Nov 1994 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Sun, 06 Foo 1994 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", t, CF_EFORMAT, -1},
        {"Sun Nov 6 08:49:37 1994", t, CF_EFORMAT, -1},
        {"Sunday, 06-Nov-1994 08:49:37 GMT", t, CF_EFORMAT, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long got = -1;
        cf_code c = cf_retry_after_parse(cases[i].value, cases[i].now, &got);
        if (c != cases[i].code || got != cases[i].seconds)
            fail_msg("\"%s\" at %lld: got code %d, %ld s; want %d, %ld s", cases[i].value,
                     (long long)cases[i].now, c, got, cases[i].code, cases[i].seconds);
    }
    long got = -1;
    assert_int_equal(cf_retry_after_parse(NULL, t, &got), CF_EFORMAT);
}

static void write_at(const char *dir, const char *name, const char *text)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int present(const char *dir, const char *name)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

/* A freshclam.dat that is not a regular file is refused with a message that
 * names it, never read through, never blocks. */
static void test_load_refuses_links_and_fifos(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    char *outside = cf_test_mkdtemp();
    char path[4200], secret[4200], want[4400];
    snprintf(path, sizeof path, "%s/freshclam.dat", dir);
    snprintf(secret, sizeof secret, "%s/secret", outside);
    uint8_t bytes[90];
    real_layout(bytes, UUID, 0, "", 0);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(secret, bytes, sizeof bytes, 0600, &e), CF_OK);
    cf_state s;
    int created = -1;

    assert_int_equal(symlink(secret, path), 0);
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_EUNSUPP);
    snprintf(want, sizeof want, "%s is a symbolic link, not a regular file", path);
    assert_string_equal(e.msg, want);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* left for the administrator to see */
    /* A save replaces the link, never writes through it. */
    assert_int_equal(cf_state_init_new(&s, &e), CF_OK);
    assert_int_equal(cf_state_save(dir, &s, &e), CF_OK);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(secret, &b);
    assert_memory_equal(b.p, bytes, 90);
    cf_buf_free(&b);
    unlink(path);

    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_EUNSUPP);
    snprintf(want, sizeof want, "%s is a FIFO, not a regular file", path);
    assert_string_equal(e.msg, want);
    unlink(path);

    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_EUNSUPP);
    snprintf(want, sizeof want, "%s is a directory, not a regular file", path);
    assert_string_equal(e.msg, want);
    cf_test_rmtree(dir);
    cf_test_rmtree(outside);
    free(dir);
    free(outside);
}

/* What a killed save leaves is removed: the old temporary name by the next
 * load, the current one by cf_install_cleanup (under the lock) or by a load
 * once it is old enough not to belong to a live writer. */
static void test_load_removes_stale_temps(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    write_at(dir, "freshclam.dat.tmp-deadbeef", "half");
    write_at(dir, ".freshclam.dat.OLDoldOL.tmp", "half");
    write_at(dir, ".freshclam.dat.NEWnewNE.tmp", "half");
    write_at(dir, "freshclam.dat.tmp-notours!", "keep");
    write_at(dir, ".daily.cvd.Ab12Cd34.tmp", "not freshclam.dat's");
    char p[4200];
    snprintf(p, sizeof p, "%s/.freshclam.dat.OLDoldOL.tmp", dir);
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    cf_state s;
    int created = -1;
    cf_err e = {0};
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_false(present(dir, "freshclam.dat.tmp-deadbeef"));
    assert_false(present(dir, ".freshclam.dat.OLDoldOL.tmp"));
    assert_true(present(dir, ".freshclam.dat.NEWnewNE.tmp"));
    assert_true(present(dir, "freshclam.dat.tmp-notours!"));
    assert_true(present(dir, ".daily.cvd.Ab12Cd34.tmp"));
    assert_true(present(dir, "freshclam.dat"));
    assert_int_equal(cf_install_cleanup(dir, 0, NULL, NULL, &e), CF_OK);
    assert_false(present(dir, ".freshclam.dat.NEWnewNE.tmp"));
    cf_test_rmtree(dir);
    free(dir);
}

/* SIGKILL while saving, again and again: freshclam.dat is always whole, and
 * everything else left is a temporary that the clean-up removes. */
static void test_kill_while_saving(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    cf_state s;
    cf_err e = {0};
    assert_int_equal(cf_state_init_new(&s, &e), CF_OK);
    assert_int_equal(cf_state_save(dir, &s, &e), CF_OK);
    for (int round = 0; round < 20; round++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            cf_state c = s;
            for (int64_t i = 1;; i++) {
                c.retry_after = i;
                if (cf_state_save(dir, &c, NULL) != CF_OK)
                    _exit(1);
                if (i == 3 && write(pfd[1], "x", 1) != 1)
                    _exit(1);
            }
        }
        close(pfd[1]);
        char x;
        assert_int_equal(read(pfd[0], &x, 1), 1);
        close(pfd[0]);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));

        char path[4200];
        snprintf(path, sizeof path, "%s/freshclam.dat", dir);
        cf_buf b = CF_BUF_INIT;
        cf_test_read_file(path, &b);
        cf_state got;
        assert_int_equal(cf_state_decode(b.p, b.n, &got, &e), CF_OK);
        assert_string_equal(got.uuid, s.uuid);
        cf_buf_free(&b);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                strcmp(de->d_name, "freshclam.dat") == 0)
                continue;
            if (!cf_install_is_temp(de->d_name))
                fail_msg("left behind: %s", de->d_name);
        }
        closedir(d);
        assert_int_equal(cf_install_cleanup(dir, 0, NULL, NULL, &e), CF_OK);
    }
    cf_test_rmtree(dir);
    free(dir);
}

/* In a private mount namespace: a full 4 KiB tmpfs at dir. 0, or the reason it
 * cannot be had here. */
static const char *full_tmpfs(const char *dir)
{
    if (geteuid() != 0)
        return "not root";
    if (unshare(CLONE_NEWNS) != 0)
        return "unshare(CLONE_NEWNS) refused";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return "cannot make mounts private";
    if (mount("tmpfs", dir, "tmpfs", 0, "size=4k,mode=0755") != 0)
        return "cannot mount a tmpfs";
    char p[4200];
    snprintf(p, sizeof p, "%s/filler", dir);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return "cannot create the filler";
    char block[1024] = {0};
    while (write(fd, block, sizeof block) > 0) {
    }
    close(fd);
    return NULL;
}

/* Out of space: the message says so and names the file and the directory, and
 * nothing half-written is left. Runs in a child, which owns the mount. */
static void test_enospc(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        const char *why = full_tmpfs(dir);
        char msg[1200];
        int rc = 0;
        if (why) {
            snprintf(msg, sizeof msg, "%s", why);
            rc = 77;
        } else {
            cf_state s;
            int created = 0;
            cf_err e = {0};
            char want[4400];
            snprintf(want, sizeof want, "Can't create freshclam.dat in %s: No space left on device", dir);
            if (cf_state_load(dir, &s, &created, &e) != CF_EIO || strcmp(e.msg, want) != 0) {
                snprintf(msg, sizeof msg, "load: %s", e.msg);
                rc = 1;
            } else if (cf_state_save(dir, &s, &e) != CF_EIO || strcmp(e.msg, want) != 0) {
                snprintf(msg, sizeof msg, "save: %s", e.msg);
                rc = 1;
            } else {
                DIR *d = opendir(dir);
                struct dirent *de;
                while (d && (de = readdir(d)) != NULL)
                    if (de->d_name[0] != '.' || cf_install_is_temp(de->d_name))
                        if (strcmp(de->d_name, "filler") != 0) {
                            snprintf(msg, sizeof msg, "left behind: %s", de->d_name);
                            rc = 1;
                        }
                if (d)
                    closedir(d);
            }
        }
        if (rc && write(pfd[1], msg, strlen(msg)) < 0)
            rc = 2;
        _exit(rc);
    }
    close(pfd[1]);
    char msg[1200] = "";
    ssize_t n = read(pfd[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    cf_test_rmtree(dir);
    free(dir);
    if (WEXITSTATUS(status) == 77) {
        print_message("skipped: %s\n", msg);
        skip();
    }
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s", msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_decode_real_file),
        cmocka_unit_test(test_bad_files_make_new),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_cooldown_cap),
        cmocka_unit_test(test_load_clamps_stored_cooldown),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_load_refuses_links_and_fifos),
        cmocka_unit_test(test_load_removes_stale_temps),
        cmocka_unit_test(test_kill_while_saving),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
