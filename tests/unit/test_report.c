/* The monitoring writers (report.h): JSON string escaping, the JSON document,
 * the Prometheus exposition, the plugin verdict across thresholds, and the
 * atomic file write. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/report.h"
#include "clamfresh/settings.h"

static cf_report R; /* large: not on the stack */

static char *text_of(cf_buf *b)
{
    assert_int_equal(cf_buf_append(b, "", 1), CF_OK);
    return (char *)b->p;
}

static void escaped(const char *in, size_t n, const char *want)
{
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_report_json_string(&b, in, n), CF_OK);
    assert_string_equal(text_of(&b), want);
    cf_buf_free(&b);
}

static void test_json_string(void **state)
{
    (void)state;
    escaped("plain", 5, "\"plain\"");
    escaped("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    escaped("l1\nl2\r\t", 7, "\"l1\\nl2\\r\\t\"");
    escaped("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    /* A NUL inside the given length is data, not the end. */
    escaped("a\0b", 3, "\"a\\u0000b\"");
    /* Valid UTF-8 passes through; broken sequences become U+FFFD. */
    escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    escaped("\xff", 1, "\"\\ufffd\"");
    escaped("\xc3", 1, "\"\\ufffd\"");                                  /* truncated */
    escaped("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");                       /* overlong */
    escaped("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    escaped("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
}

static void set_db(size_t i, const char *name, uint32_t before, uint32_t after, uint32_t adv, const char *how)
{
    cf_report_db *d = &R.db[i];
    memset(d, 0, sizeof *d);
    snprintf(d->u.db, sizeof d->u.db, "%s", name);
    d->u.before = before;
    d->u.after = after;
    d->u.advertised = adv;
    snprintf(d->u.how, sizeof d->u.how, "%s", how);
    d->build_time = after ? 1700000000 + after : 0;
    if (i + 1 > R.ndb)
        R.ndb = i + 1;
}

static void reset(void)
{
    memset(&R, 0, sizeof R);
    R.version = "1.2.3";
    R.started = 1800000000;
}

static void test_behind_and_status(void **state)
{
    (void)state;
    reset();
    cf_report_thresholds t = {2, 5};
    set_db(0, "daily", 0, 100, 100, "");
    assert_int_equal(cf_report_behind(&R.db[0]), 0);
    assert_int_equal(cf_report_db_status(&R.db[0], &t), CF_REPORT_OK);
    set_db(0, "daily", 0, 101, 100, ""); /* newer than advertised: current */
    assert_int_equal(cf_report_behind(&R.db[0]), 0);
    assert_int_equal(cf_report_db_status(&R.db[0], &t), CF_REPORT_OK);
    /* The table: behind 1 OK, 2..4 WARNING, 5+ CRITICAL with 2/5. */
    static const struct {
        uint32_t behind;
        cf_report_status want;
    } table[] = {{1, CF_REPORT_OK},
                 {2, CF_REPORT_WARNING},
                 {4, CF_REPORT_WARNING},
                 {5, CF_REPORT_CRITICAL},
                 {90, CF_REPORT_CRITICAL}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        set_db(0, "daily", 0, 1000 - table[i].behind, 1000, "");
        assert_int_equal(cf_report_behind(&R.db[0]), (long)table[i].behind);
        assert_int_equal(cf_report_db_status(&R.db[0], &t), table[i].want);
    }
    /* warn == crit: straight to CRITICAL; warn 1: any lag warns. */
    cf_report_thresholds t11 = {1, 1}, t13 = {1, 3};
    set_db(0, "daily", 0, 99, 100, "");
    assert_int_equal(cf_report_db_status(&R.db[0], &t11), CF_REPORT_CRITICAL);
    assert_int_equal(cf_report_db_status(&R.db[0], &t13), CF_REPORT_WARNING);
    /* Missing is CRITICAL whatever is advertised; unknown advertised is UNKNOWN. */
    set_db(0, "daily", 0, 0, 100, "");
    assert_int_equal(cf_report_behind(&R.db[0]), -1);
    assert_int_equal(cf_report_db_status(&R.db[0], &t), CF_REPORT_CRITICAL);
    set_db(0, "daily", 0, 0, 0, "");
    assert_int_equal(cf_report_db_status(&R.db[0], &t), CF_REPORT_CRITICAL);
    set_db(0, "daily", 0, 100, 0, "");
    assert_int_equal(cf_report_db_status(&R.db[0], &t), CF_REPORT_UNKNOWN);
}

static void test_verdict(void **state)
{
    (void)state;
    cf_report_thresholds t = {2, 5};
    int64_t now = 1800000000;
    reset();
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_UNKNOWN); /* nothing configured */
    set_db(0, "daily", 0, 100, 100, "");
    set_db(1, "main", 0, 62, 62, "");
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_OK);
    set_db(1, "main", 0, 62, 0, "");
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_UNKNOWN);
    set_db(0, "daily", 0, 97, 100, "");
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_WARNING); /* WARNING beats UNKNOWN */
    set_db(1, "main", 0, 0, 62, "");
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_CRITICAL);
    /* A cool-down raises OK to WARNING while it lasts, and only then. */
    set_db(0, "daily", 0, 100, 100, "");
    set_db(1, "main", 0, 62, 62, "");
    R.cooldown_until = now + 60;
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_WARNING);
    assert_int_equal(cf_report_verdict(&R, &t, now + 60), CF_REPORT_OK);
    set_db(1, "main", 0, 0, 62, "");
    assert_int_equal(cf_report_verdict(&R, &t, now), CF_REPORT_CRITICAL); /* not lowered */
}

static void test_check_text(void **state)
{
    (void)state;
    cf_report_thresholds t = {2, 5};
    reset();
    set_db(0, "daily", 0, 27830, 27830, "");
    set_db(1, "main", 0, 60, 62, "");
    set_db(2, "bytecode", 0, 0, 339, "");
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_report_check_text(&b, &R, &t, 1800000000), CF_OK);
    const char *s = text_of(&b);
    const char *first =
        "CLAMFRESH CRITICAL - daily 27830 (current), main 60 (2 behind 62), bytecode missing | "
        "daily_behind=0;2;5 main_behind=2;2;5\n";
    assert_true(strncmp(s, first, strlen(first)) == 0);
    assert_non_null(strstr(s, "\nmain: WARNING, local version 60, advertised 62, behind 2, built "
                              "2023-11-14T22:14:20Z\n"));
    assert_non_null(strstr(s, "\nbytecode: CRITICAL, local version missing, advertised 339, behind unknown"));
    cf_buf_free(&b);
}

static void test_json_document(void **state)
{
    (void)state;
    reset();
    R.exit_code = 0;
    set_db(0, "daily", 27828, 27830, 27830, "cdiffs");
    R.db[0].u.bytes = 12345;
    R.db[0].u.requests = 3;
    R.db[0].u.seconds = 0.25;
    set_db(1, "main", 0, 0, 0, "");
    R.db[1].u.outcome = 11;
    cf_report_add_msg(&R, "warning", "quote \" and\nnewline", 19);
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_report_json(&b, &R), CF_OK);
    const char *s = text_of(&b);
    assert_non_null(strstr(s, "\"version\": \"1.2.3\""));
    assert_non_null(strstr(s, "\"mode\": \"update\""));
    assert_non_null(strstr(s, "\"started_utc\": \"2027-01-15T08:00:00Z\""));
    assert_non_null(strstr(s, "\"exit_meaning\": \"Success\""));
    assert_non_null(strstr(s, "{\"name\": \"daily\", \"version_before\": 27828, \"version_after\": 27830, "
                              "\"advertised\": 27830, \"behind\": 0, \"how\": \"cdiffs\", \"bytes\": 12345, "
                              "\"requests\": 3, \"seconds\": 0.250, \"build_time\": 1700027830, "
                              "\"outcome\": {\"code\": 0, \"text\": \"Success\"}}"));
    assert_non_null(strstr(s, "\"version_before\": null, \"version_after\": null, \"advertised\": null, "
                              "\"behind\": null, \"how\": null"));
    assert_non_null(strstr(s, "\"outcome\": {\"code\": 11, \"text\": \"HTTP GET failed\"}"));
    assert_non_null(strstr(s, "{\"level\": \"warning\", \"text\": \"quote \\\" and\\nnewline\"}"));
    assert_non_null(strstr(s, "\"messages_dropped\": 0\n}\n"));
    cf_buf_free(&b);

    /* Empty lists still make a document; check mode names the plugin status. */
    reset();
    R.check_only = 1;
    R.exit_code = 3;
    assert_int_equal(cf_report_json(&b, &R), CF_OK);
    s = text_of(&b);
    assert_non_null(strstr(s, "\"databases\": [],\n  \"messages\": [],\n"));
    assert_non_null(strstr(s, "\"exit_meaning\": \"UNKNOWN\""));
    cf_buf_free(&b);
}

static void test_messages_bounded(void **state)
{
    (void)state;
    reset();
    char big[CF_REPORT_MSG_MAX * 2];
    memset(big, 'x', sizeof big);
    for (size_t i = 0; i < CF_REPORT_MAX_MSGS + 7; i++)
        cf_report_add_msg(&R, "info", big, sizeof big);
    assert_int_equal(R.nmsg, CF_REPORT_MAX_MSGS);
    assert_int_equal(R.dropped, 7);
    assert_int_equal(strlen(R.msg[0].text), CF_REPORT_MSG_MAX - 1);
}

static void test_metrics(void **state)
{
    (void)state;
    reset();
    R.exit_code = 17;
    R.cooldown_until = 1800086400;
    R.last_success = 1799990000;
    set_db(0, "daily", 27828, 27830, 27833, "NAME-V.cvd");
    set_db(1, "we\"ird\\db", 0, 0, 5, "");
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_report_metrics(&b, &R), CF_OK);
    const char *s = text_of(&b);
    assert_non_null(strstr(s, "# HELP clamfresh_database_version "));
    assert_non_null(strstr(s, "# TYPE clamfresh_database_version gauge\n"));
    assert_non_null(strstr(s, "\nclamfresh_database_version{database=\"daily\"} 27830\n"));
    assert_non_null(strstr(s, "\nclamfresh_database_version{database=\"we\\\"ird\\\\db\"} 0\n"));
    assert_non_null(
        strstr(s, "\nclamfresh_database_build_timestamp_seconds{database=\"daily\"} 1700027830\n"));
    assert_null(strstr(s, "clamfresh_database_build_timestamp_seconds{database=\"we"));
    assert_non_null(strstr(s, "\nclamfresh_database_versions_behind{database=\"daily\"} 3\n"));
    assert_null(strstr(s, "clamfresh_database_versions_behind{database=\"we"));
    assert_non_null(strstr(s, "\nclamfresh_update_method{database=\"daily\",method=\"NAME-V.cvd\"} 1\n"));
    assert_non_null(strstr(s, "\nclamfresh_cooldown_until_timestamp_seconds 1800086400\n"));
    assert_non_null(strstr(s, "\nclamfresh_last_success_timestamp_seconds 1799990000\n"));
    assert_non_null(strstr(s, "\nclamfresh_last_run_exit_code 17\n"));
    /* Every line is a comment or "name[{labels}] value". */
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl > p);
        if (*p != '#') {
            const char *sp = nl;
            while (sp > p && sp[-1] != ' ')
                sp--;
            assert_true(sp > p + 1);
            assert_true(strncmp(p, "clamfresh_", 10) == 0);
        }
        p = nl + 1;
    }
    assert_int_equal(cf_report_metrics_last_success(s, strlen(s)), 1799990000);
    cf_buf_free(&b);
    assert_int_equal(cf_report_metrics_last_success("", 0), 0);
    assert_int_equal(cf_report_metrics_last_success("clamfresh_last_success_timestamp_seconds x\n", 43), 0);
    const char *t = "# x\nclamfresh_last_success_timestamp_seconds 42";
    assert_int_equal(cf_report_metrics_last_success(t, strlen(t)), 42);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/cf_report_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/clamfresh.prom", dir);
    cf_err e = {0};
    assert_int_equal(cf_report_write_atomic(path, "a 1\n", 4, &e), CF_OK);
    assert_int_equal(cf_report_write_atomic(path, "b 2\n", 4, &e), CF_OK);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(path, &b);
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, "b 2\n", 4);
    cf_buf_free(&b);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* No temporary is left behind. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    /* A directory that does not exist: an error naming the file. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/nodir/x.prom", dir);
    assert_int_equal(cf_report_write_atomic(bad, "x", 1, &e), CF_EIO);
    assert_non_null(strstr(e.msg, bad));
    cf_test_rmtree(dir);
}

/* Parses argv (NULL-terminated after the program name) into fresh settings. */
static int parse(cf_settings *s, const char *const *args)
{
    char *argv[16] = {"clamfresh"};
    int argc = 1;
    for (; args[argc - 1] && argc < 15; argc++)
        argv[argc] = (char *)args[argc - 1];
    cf_settings_init(s);
    cf_cli_result r = {0};
    cf_cli_parse(argc, argv, s, &r);
    return r.action == CF_CLI_ERROR ? -1 : 0;
}

static void test_cli_options(void **state)
{
    (void)state;
    cf_settings s;
    /* freshclam's abbreviation --check still means --checks. */
    assert_int_equal(parse(&s, (const char *const[]){"--check=7", NULL}), 0);
    assert_int_equal(s.checks, 7);
    assert_false(s.check_only);
    cf_settings_free(&s);
    assert_int_equal(parse(&s, (const char *const[]){"--checks", "9", "--check-only", NULL}), 0);
    assert_int_equal(s.checks, 9);
    assert_true(s.check_only);
    cf_settings_free(&s);
    /* The new options are full names only. */
    assert_int_equal(parse(&s, (const char *const[]){"--check-o", NULL}), -1);
    cf_settings_free(&s);
    assert_int_equal(parse(&s, (const char *const[]){"--js", NULL}), -1);
    cf_settings_free(&s);
    /* --json without a value is stdout; thresholds default to 2 and 5. */
    assert_int_equal(parse(&s, (const char *const[]){"--json", "--metrics=/x/m.prom", NULL}), 0);
    assert_string_equal(s.json_file, "-");
    assert_string_equal(s.metrics_file, "/x/m.prom");
    assert_int_equal(s.warn_behind, CF_REPORT_WARN_BEHIND);
    assert_int_equal(s.crit_behind, CF_REPORT_CRIT_BEHIND);
    cf_settings_free(&s);
    assert_int_equal(
        parse(&s, (const char *const[]){"--json=/r.json", "--warn-behind=3", "--crit-behind=4", NULL}), 0);
    assert_string_equal(s.json_file, "/r.json");
    assert_int_equal(s.warn_behind, 3);
    assert_int_equal(s.crit_behind, 4);
    cf_settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string),   cmocka_unit_test(test_behind_and_status),
        cmocka_unit_test(test_verdict),       cmocka_unit_test(test_check_text),
        cmocka_unit_test(test_json_document), cmocka_unit_test(test_messages_bounded),
        cmocka_unit_test(test_metrics),       cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_cli_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
