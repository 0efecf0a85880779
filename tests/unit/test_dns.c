/* Pure reading of the DNS update info records (behavior §4.2). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clamfresh/dns.h"

static const time_t NOW = 1731513540;

__attribute__((format(printf, 3, 4))) static void rec(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static void test_fresh_record(void **state)
{
    (void)state;
    char txt[256];
    cf_dnsinfo d;
    cf_err e = {0};
    unsigned v = 99;
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:1:90:49192:335", (long long)NOW - 600);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_string_equal(d.newest, "1.4.1");
    assert_int_equal(d.record_time, NOW - 600);
    assert_true(d.version_warning);
    assert_int_equal(cf_dnsinfo_db_version(&d, "main", &v, &e), CF_OK);
    assert_int_equal(v, 62);
    assert_int_equal(cf_dnsinfo_db_version(&d, "daily", &v, &e), CF_OK);
    assert_int_equal(v, 27450);
    assert_int_equal(cf_dnsinfo_db_version(&d, "safebrowsing", &v, &e), CF_OK);
    assert_int_equal(v, 49192);
    assert_int_equal(cf_dnsinfo_db_version(&d, "bytecode", &v, &e), CF_OK);
    assert_int_equal(v, 335);
    /* A record from the future is not stale. */
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:0", (long long)NOW + 3600);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_false(d.version_warning);
}

static void test_stale_record(void **state)
{
    (void)state;
    char txt[256];
    cf_dnsinfo d;
    cf_err e = {0};
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:1:90:49192:335", (long long)NOW - 43201);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "DNS record is older than 12 hours.");
    /* Exactly 12 hours is still acceptable (freshclam compares with '>'). */
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:1:90:49192:335", (long long)NOW - 43200);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    /* A non-numeric time reads as 0, i.e. ancient. */
    assert_int_equal(cf_dnsinfo_parse("1.4.1:62:27450:soon:1", NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "DNS record is older than 12 hours.");
}

static void test_missing_fields(void **state)
{
    (void)state;
    char txt[256];
    cf_dnsinfo d;
    cf_err e = {0};
    assert_int_equal(cf_dnsinfo_parse("1.4.1:62:27450", NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Failed to find Record Time field in DNS Update Info.");
    assert_int_equal(cf_dnsinfo_parse("", NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Failed to find Record Time field in DNS Update Info.");
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Failed to find Version Warning Flag in DNS Update Info.");
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Failed to find Version Warning Flag in DNS Update Info.");
    /* A leading ':' counts as a separator and leaves field 0 empty. */
    rec(txt, sizeof txt, ":62:27450:%lld:1:90:49192:335", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Failed to find New Version field in DNS Update Info.");
}

static void test_collapsed_colons(void **state)
{
    (void)state;
    char txt[256], f[64];
    cf_dnsinfo d;
    cf_err e = {0};
    unsigned v = 0;
    /* "::" is one separator: the empty field vanishes and later fields shift. */
    rec(txt, sizeof txt, "1.4.1:62::27450:%lld:1:90:49192:335", (long long)NOW);
    assert_int_equal(cf_dnsinfo_field(txt, 2, f, sizeof f, &e), CF_OK);
    assert_string_equal(f, "27450");
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_int_equal(cf_dnsinfo_db_version(&d, "daily", &v, &e), CF_OK);
    assert_int_equal(v, 27450);
    /* Here main is missing, so field 1 is daily's number and field 2 the time. */
    rec(txt, sizeof txt, "1.4.1::27450:%lld:1:90:49192:335", (long long)NOW);
    assert_int_equal(cf_dnsinfo_field(txt, 1, f, sizeof f, &e), CF_OK);
    assert_string_equal(f, "27450");
    assert_int_equal(cf_dnsinfo_field(txt, 3, f, sizeof f, &e), CF_OK);
    assert_string_equal(f, "1");
    assert_int_equal(cf_dnsinfo_field(txt, 7, f, sizeof f, &e), CF_ENOTFOUND);
    assert_int_equal(cf_dnsinfo_field("a:b:", 2, f, sizeof f, &e), CF_ENOTFOUND);
    assert_int_equal(cf_dnsinfo_field("abcdef:1", 0, f, 4, &e), CF_ETOOBIG);
}

static void test_db_versions(void **state)
{
    (void)state;
    char txt[256];
    cf_dnsinfo d;
    cf_err e = {0};
    unsigned v = 7;
    rec(txt, sizeof txt, "1.4.1:6x:27450:%lld:1:90", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_int_equal(cf_dnsinfo_db_version(&d, "main", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Broken database version in TXT record. Falling back to HTTP mode.");
    assert_int_equal(v, 0);
    assert_int_equal(cf_dnsinfo_db_version(&d, "daily", &v, &e), CF_OK);
    assert_int_equal(v, 27450);
    assert_int_equal(cf_dnsinfo_db_version(&d, "safebrowsing", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Invalid DNS update info. Falling back to HTTP mode.");
    assert_int_equal(cf_dnsinfo_db_version(&d, "bytecode", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Invalid DNS update info. Falling back to HTTP mode.");
    assert_int_equal(cf_dnsinfo_db_version(&d, "test", &v, &e), CF_ENOTFOUND);
    assert_string_equal(e.msg, "query_remote_database_version: Database name \"test\" isn't listed in DNS update info.");
    assert_int_equal(cf_dnsinfo_db_field("valhalla"), -1);
    assert_int_equal(cf_dnsinfo_db_field("bytecode"), 7);
    /* Wider than a CVD version can be. */
    rec(txt, sizeof txt, "1.4.1:99999999999:1:%lld:1", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_int_equal(cf_dnsinfo_db_version(&d, "main", &v, &e), CF_EFORMAT);
}

static void test_per_db_record(void **state)
{
    (void)state;
    char txt[256];
    cf_err e = {0};
    unsigned v = 0;
    rec(txt, sizeof txt, "6:%lld", (long long)NOW - 60);
    assert_int_equal(cf_dnsinfo_parse_db(txt, NOW, "test", &v, &e), CF_OK);
    assert_int_equal(v, 6);
    rec(txt, sizeof txt, "6:%lld", (long long)NOW - 43201);
    assert_int_equal(cf_dnsinfo_parse_db(txt, NOW, "test", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "DNS record is older than 12 hours.");
    assert_int_equal(cf_dnsinfo_parse_db("6", NOW, "test", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "No recordtime field in TXT record for test.cvd");
    rec(txt, sizeof txt, ":%lld", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse_db(txt, NOW, "test", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Invalid DNS reply. Falling back to HTTP mode.");
    rec(txt, sizeof txt, "v6:%lld", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse_db(txt, NOW, "valhalla", &v, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Broken database version in TXT record for valhalla.cvd");
    char no_rec[64];
    snprintf(no_rec, sizeof no_rec, CF_DNSINFO_MSG_NO_RECORD, "test.cvd");
    assert_string_equal(no_rec, "No timestamp in TXT record for test.cvd");
}

static void test_outdated(void **state)
{
    (void)state;
    char txt[256];
    cf_dnsinfo d;
    cf_err e = {0};
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:1:90:49192:335", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_true(cf_dnsinfo_outdated(&d, "1.4.0"));
    assert_true(cf_dnsinfo_outdated(&d, "0.103.12"));
    assert_true(cf_dnsinfo_outdated(&d, "1.4.0-1")); /* only the text before '-' counts */
    assert_false(cf_dnsinfo_outdated(&d, "1.4.1"));
    assert_false(cf_dnsinfo_outdated(&d, "1.4.2"));
    assert_false(cf_dnsinfo_outdated(&d, "1.10.0")); /* numeric, not textual */
    assert_false(cf_dnsinfo_outdated(&d, "1.3.0-devel-20240101"));
    assert_false(cf_dnsinfo_outdated(&d, "1.3.0-beta"));
    assert_false(cf_dnsinfo_outdated(&d, "1.3.0-rc2"));
    /* Flag field starting with '0' turns the warning off. */
    rec(txt, sizeof txt, "1.4.1:62:27450:%lld:0:90:49192:335", (long long)NOW);
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_OK);
    assert_false(cf_dnsinfo_outdated(&d, "1.4.0"));
    assert_int_equal(cf_version_compare("1.4", "1.4.0"), 0);
    assert_int_equal(cf_version_compare("1.4.6", "1.4.10"), -1);
    assert_int_equal(cf_version_compare("2.0", "1.99.99"), 1);
}

static void test_bounds(void **state)
{
    (void)state;
    char txt[400];
    cf_dnsinfo d;
    cf_err e = {0};
    memset(txt, '1', sizeof txt - 1);
    txt[sizeof txt - 1] = '\0';
    assert_int_equal(cf_dnsinfo_parse(txt, NOW, &d, &e), CF_ETOOBIG);
    unsigned v;
    assert_int_equal(cf_dnsinfo_parse_db(txt, NOW, "test", &v, &e), CF_ETOOBIG);
    assert_int_equal(cf_dnsinfo_parse(NULL, NOW, &d, &e), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_record),    cmocka_unit_test(test_stale_record),
        cmocka_unit_test(test_missing_fields),  cmocka_unit_test(test_collapsed_colons),
        cmocka_unit_test(test_db_versions),     cmocka_unit_test(test_per_db_record),
        cmocka_unit_test(test_outdated),        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
