/* freshclam.dat layout and cool-down transitions (behavior §5.3, §5.5). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/fileio.h"
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
    assert_int_equal(got[53], 0);  /* UUID NUL */
    assert_int_equal(got[89], 0);  /* cf-ray NUL */
}

static void test_decode_real_file(void **state)
{
    (void)state;
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);
    uint8_t bytes[90];
    /* Nonzero padding, as a struct dump may leave it: must be preserved. */
    real_layout(bytes, UUID, 1800000000, "0123456789abcdef-XYZ", 0xab);
    char path[4200];
    snprintf(path, sizeof path, "%s/freshclam.dat", dir);
    cf_err e = {0};
    assert_int_equal(cf_file_write_new(path, bytes, sizeof bytes, 0644, &e), CF_OK);

    cf_state s;
    int created = -1;
    assert_int_equal(cf_state_load(dir, &s, &created, &e), CF_OK);
    assert_int_equal(created, 0);
    assert_string_equal(s.uuid, UUID);
    assert_int_equal(s.retry_after, 1800000000);
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
    assert_int_equal(s.retry_after, 1800000000);
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

    char lines[CF_STATE_HELP_LINES][CF_STATE_MSG_SIZE];
    size_t n = cf_state_help(CF_STATE_HELP_403, "", lines);
    assert_int_equal(n, 12);
    assert_string_equal(lines[0], "This could mean several things:");
    size_t m = cf_state_help(CF_STATE_HELP_403, "0123456789abcdef-XYZ", lines);
    assert_int_equal(m, n + 2);
    assert_string_equal(lines[n], "      Please provide the following cf-ray id with your ticket: 0123456789abcdef-XYZ");
    assert_string_equal(lines[n + 1], "");
    n = cf_state_help(CF_STATE_HELP_429, "ray", lines);
    assert_int_equal(n, 9);
    assert_string_equal(lines[0], "This means that you have been rate limited by the CDN.");
    n = cf_state_help(CF_STATE_HELP_PREVIOUS, "abc", lines);
    assert_int_equal(n, 15);
    assert_string_equal(lines[0], "This means that you have been rate limited or blocked by the CDN.");
    assert_string_equal(lines[13], "    submitting a ticket: abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),   cmocka_unit_test(test_decode_real_file),
        cmocka_unit_test(test_bad_files_make_new), cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
