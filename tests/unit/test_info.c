/* .info manifests with self-made fixtures: build -> parse -> verify, and every
 * way the manifest check (formats.md §5.4 plus our stronger rules) must fail. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/dsig.h"
#include "clamfresh/image.h"
#include "clamfresh/info.h"

static cf_rsakey *g_key;

static void put(cf_image *img, const char *name, const char *text)
{
    cf_err e = {0};
    assert_int_equal(cf_image_put(img, name, text, strlen(text), &e), CF_OK);
}

static cf_cvdhdr test_hdr(void)
{
    cf_cvdhdr h;
    memset(&h, 0, sizeof(h));
    strcpy(h.time, "11 Jun 2024 10-00 +0000");
    h.version = 5;
    h.sigs = 3;
    h.flevel = 90;
    strcpy(h.md5, "0123456789abcdef0123456789abcdef");
    strcpy(h.dsig, "somedsig");
    strcpy(h.builder, "tester");
    h.stime = 1718100000;
    return h;
}

/* COPYING, test.ldb, test.ndb, test.hdb, then a signed test.info. */
static void signed_image(cf_image *img, const cf_rsakey *key)
{
    cf_err e = {0};
    cf_image_init(img);
    put(img, "COPYING", "GPL\n");
    put(img, "test.ldb", "Sig1;Target:0;0;41\n");
    put(img, "test.ndb", "Sig2:0:*:4142\nSig3:0:*:4344\n");
    put(img, "test.hdb", "d41d8cd98f00b204e9800998ecf8427e:0:Empty\n");
    cf_cvdhdr h = test_hdr();
    assert_int_equal(cf_info_build(img, "test", &h, key, &e), CF_OK);
}

static const cf_dbfile *manifest(const cf_image *img)
{
    const cf_dbfile *f = cf_image_get(img, "test.info");
    assert_non_null(f);
    return f;
}

static void test_build_parse_verify(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    signed_image(&img, g_key);
    /* Placed right after COPYING, as sigtool orders members. */
    assert_string_equal(img.files[0].name, "COPYING");
    assert_string_equal(img.files[1].name, "test.info");
    const cf_dbfile *mf = manifest(&img);
    const char *want_head = "ClamAV-VDB:11 Jun 2024 10-00 +0000:5:3:90:X:X:tester:1718100000\n"
                            "test.hdb:41:";
    assert_memory_equal(mf->data.p, want_head, strlen(want_head));

    cf_info info;
    assert_int_equal(cf_info_parse(mf->data.p, mf->data.n, &info, &e), CF_OK);
    assert_int_equal(info.hdr.version, 5);
    assert_int_equal(info.hdr.sigs, 3);
    assert_int_equal(info.hdr.flevel, 90);
    assert_int_equal(info.hdr.stime, 1718100000);
    assert_string_equal(info.hdr.md5, "X");
    assert_string_equal(info.hdr.dsig, "X");
    /* sigtool's extension order: hdb before ndb before ldb. */
    assert_int_equal(info.n, 3);
    assert_string_equal(info.entries[0].name, "test.hdb");
    assert_string_equal(info.entries[1].name, "test.ndb");
    assert_string_equal(info.entries[2].name, "test.ldb");
    assert_int_equal(info.entries[1].size, 28);
    assert_non_null(info.dsig);
    assert_memory_equal(mf->data.p + info.signed_len, "DSIG:", 5);
    assert_int_equal(info.signed_len + 5 + strlen(info.dsig) + 1, mf->data.n);
    cf_info_free(&info);

    cf_info out;
    assert_int_equal(cf_info_verify(mf->data.p, mf->data.n, g_key, &out, &e), CF_OK);
    assert_int_equal(out.n, 3);
    cf_info_free(&out);
    cf_cvdhdr h = test_hdr();
    assert_int_equal(cf_image_verify_manifest(&img, &h, g_key, 0, &e), CF_OK);
    assert_int_equal(cf_image_verify_manifest(&img, NULL, g_key, 0, &e), CF_OK);

    /* The built-in .info key did not sign it. */
    cf_rsakey *prod = NULL;
    assert_int_equal(cf_rsakey_builtin(CF_KEY_INFO, &prod, &e), CF_OK);
    assert_int_equal(cf_info_verify(mf->data.p, mf->data.n, prod, NULL, &e), CF_ESIG);
    assert_int_equal(cf_image_verify_manifest(&img, &h, prod, 0, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "test.info"));
    cf_rsakey_free(prod);

    /* Rebuilding replaces the manifest in place. */
    h.version = 6;
    assert_int_equal(cf_info_build(&img, "test", &h, g_key, &e), CF_OK);
    assert_string_equal(img.files[1].name, "test.info");
    assert_int_equal(img.nfiles, 5);
    assert_int_equal(cf_image_verify_manifest(&img, &h, g_key, 0, &e), CF_OK);
    cf_image_free(&img);
}

static void test_build_order_bytecode_and_others(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    cf_image_init(&img);
    put(&img, "COPYING", "GPL\n");
    put(&img, "last.hdb", "h\n");
    put(&img, "zzz.txt", "notes\n");
    put(&img, "782872.cbc", "b\n");
    put(&img, "767944.cbc", "a\n");
    put(&img, "bytecode.cfg", "c\n");
    cf_cvdhdr h = test_hdr();
    cf_buf text = CF_BUF_INIT;
    assert_int_equal(cf_info_format(&img, "bytecode", &h, NULL, &text, &e), CF_OK);
    cf_info info;
    assert_int_equal(cf_info_parse(text.p, text.n, &info, &e), CF_OK);
    assert_null(info.dsig);
    assert_int_equal(info.signed_len, text.n);
    assert_int_equal(info.n, 5);
    assert_string_equal(info.entries[0].name, "bytecode.cfg");
    assert_string_equal(info.entries[1].name, "767944.cbc");
    assert_string_equal(info.entries[2].name, "782872.cbc");
    assert_string_equal(info.entries[3].name, "last.hdb");
    assert_string_equal(info.entries[4].name, "zzz.txt");
    cf_info_free(&info);
    cf_buf_free(&text);
    /* Another manifest in the image is refused. */
    put(&img, "other.info", "x\n");
    assert_int_equal(cf_info_build(&img, "bytecode", &h, NULL, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "other.info"));
    cf_image_free(&img);
}

static void test_unsigned_manifest(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    signed_image(&img, NULL);
    cf_cvdhdr h = test_hdr();
    assert_int_equal(cf_image_verify_manifest(&img, &h, NULL, 1, &e), CF_OK);
    /* A signed database needs the signature. */
    assert_int_equal(cf_image_verify_manifest(&img, &h, g_key, 0, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "no DSIG"));
    assert_int_equal(cf_image_verify_manifest(&img, &h, NULL, 0, &e), CF_EINVAL);
    cf_image_free(&img);
    /* A CUD manifest must not carry a DSIG line (§5.5). */
    signed_image(&img, g_key);
    assert_int_equal(cf_image_verify_manifest(&img, &h, NULL, 1, &e), CF_ESIG);
    assert_non_null(strstr(e.msg, "DSIG"));
    cf_image_free(&img);
}

/* Applies a change to a copy of the signed image, expects the check to fail. */
static void expect_reject(const cf_image *good, void (*change)(cf_image *), const cf_cvdhdr *h, cf_code code,
                          const char *msg)
{
    cf_image img;
    cf_err e = {0};
    assert_int_equal(cf_image_copy(&img, good, &e), CF_OK);
    change(&img);
    cf_code rc = cf_image_verify_manifest(&img, h, g_key, 0, &e);
    if (rc != code)
        fail_msg("expected code %d with '%s', got %d: %s", (int)code, msg, (int)rc, e.msg);
    if (strstr(e.msg, msg) == NULL)
        fail_msg("message '%s' lacks '%s'", e.msg, msg);
    cf_image_free(&img);
}

static void ch_none(cf_image *img)
{
    (void)img;
}
static void ch_missing_entry(cf_image *img)
{
    cf_image_remove(img, "test.ldb", NULL);
}
static void ch_extra_ndb(cf_image *img)
{
    put(img, "extra.ndb", "Sig9:0:*:00\n");
}
static void ch_extra_upper(cf_image *img)
{
    put(img, "EXTRA.HDB", "x\n");
}
static void ch_extra_empty(cf_image *img)
{
    put(img, "empty.ldb", "");
}
static void ch_wrong_size(cf_image *img)
{
    put(img, "test.ndb", "Sig2:0:*:4142\n");
}
static void ch_wrong_hash(cf_image *img)
{
    put(img, "test.ndb", "Sig2:0:*:4142\nSig3:0:*:4345\n");
}
static void ch_no_info(cf_image *img)
{
    cf_image_remove(img, "test.info", NULL);
}
static void ch_two_infos(cf_image *img)
{
    put(img, "more.INFO", "x\n");
}
static void ch_extra_other(cf_image *img)
{
    put(img, "README.txt", "not a database\n");
}

/* Edits the manifest bytes: replace the first occurrence of from by to. */
static const char *g_from, *g_to;
static void ch_edit_manifest(cf_image *img)
{
    const cf_dbfile *f = cf_image_get(img, "test.info");
    cf_buf b = CF_BUF_INIT;
    cf_buf_append(&b, f->data.p, f->data.n);
    cf_buf_append(&b, "", 1);
    char *at = strstr((char *)b.p, g_from);
    assert_non_null(at);
    cf_buf out = CF_BUF_INIT;
    cf_buf_append(&out, b.p, (size_t)(at - (char *)b.p));
    cf_buf_append_str(&out, g_to);
    cf_buf_append_str(&out, at + strlen(g_from));
    cf_err e = {0};
    assert_int_equal(cf_image_put(img, "test.info", out.p, out.n, &e), CF_OK);
    cf_buf_free(&b);
    cf_buf_free(&out);
}

static void edit_reject(const cf_image *good, const char *from, const char *to, cf_code code, const char *msg)
{
    cf_cvdhdr h = test_hdr();
    g_from = from;
    g_to = to;
    expect_reject(good, ch_edit_manifest, &h, code, msg);
}

static void test_manifest_rejections(void **state)
{
    (void)state;
    cf_image good;
    signed_image(&good, g_key);
    cf_cvdhdr h = test_hdr();
    /* Baseline: the unmodified image passes, so each failure below is caused by its change. */
    cf_err e = {0};
    assert_int_equal(cf_image_verify_manifest(&good, &h, g_key, 0, &e), CF_OK);
    expect_reject(&good, ch_extra_other, &h, CF_OK, "");

    expect_reject(&good, ch_missing_entry, &h, CF_ESIG, "test.ldb: listed in test.info but missing");
    expect_reject(&good, ch_extra_ndb, &h, CF_ESIG, "extra.ndb: database file not listed in test.info");
    expect_reject(&good, ch_extra_upper, &h, CF_ESIG, "EXTRA.HDB: database file not listed");
    expect_reject(&good, ch_extra_empty, &h, CF_ESIG, "empty.ldb: database file not listed");
    expect_reject(&good, ch_wrong_size, &h, CF_ESIG, "test.ndb: size is 14 bytes but test.info says 28");
    expect_reject(&good, ch_wrong_hash, &h, CF_ESIG, "test.ndb: SHA-256 is");
    expect_reject(&good, ch_no_info, &h, CF_ESIG, "no .info manifest");
    expect_reject(&good, ch_two_infos, &h, CF_ESIG, "two manifests");

    cf_cvdhdr bad = h;
    bad.version = 4;
    expect_reject(&good, ch_none, &bad, CF_ESIG, "header says version 5 but the container says 4");
    bad = h;
    bad.sigs = 4;
    expect_reject(&good, ch_none, &bad, CF_ESIG, "3 signatures but the container says 4");
    bad = h;
    bad.flevel = 91;
    expect_reject(&good, ch_none, &bad, CF_ESIG, "f-level 90");
    bad = h;
    bad.stime++;
    expect_reject(&good, ch_none, &bad, CF_ESIG, "build time 1718100000");
    /* Time text, builder, md5 and dsig are not compared (as libclamav). */
    bad = h;
    strcpy(bad.builder, "other");
    strcpy(bad.time, "01 Jan 2000 00-00 +0000");
    expect_reject(&good, ch_none, &bad, CF_OK, "");

    /* Manifest text damage. */
    edit_reject(&good, "DSIG:", "DSIG:a", CF_ESIG, "DSIG does not verify");
    edit_reject(&good, "DSIG:", "DSIG:=", CF_EFORMAT, "CV64");
    edit_reject(&good, "DSIG:", "DSIX:", CF_EFORMAT, "three fields");
    edit_reject(&good, "\ntest.ldb", "\ntest.LDB", CF_ESIG, "DSIG does not verify");
    edit_reject(&good, "\n", "\r\n", CF_EFORMAT, "line 1: carriage return");
    edit_reject(&good, "\ntest.ndb", "\n\ntest.ndb", CF_EFORMAT, "line 3: empty line");
    edit_reject(&good, "\nDSIG:", "\nDSIG:abc\ntest.cdb:1:", CF_EFORMAT, "DSIG is not the last line");
    edit_reject(&good, "ClamAV-VDB:", "Clamav-VDB:", CF_EFORMAT, "line 1: does not start with ClamAV-VDB:");
    edit_reject(&good, "test.hdb:41:", "test.hdb:4x:", CF_EFORMAT, "size '4x' is not a decimal number");
    edit_reject(&good, "test.hdb:41:", "../x:41:", CF_EFORMAT, "invalid file name '../x'");
    edit_reject(&good, "test.hdb:41:", "test.ndb:41:", CF_EFORMAT, "listed twice");
    edit_reject(&good, "test.hdb:41:", "test.hdb:41:00", CF_EFORMAT, "SHA-256 has 66 characters");
    edit_reject(&good, "test.hdb:41:", "test.hdb:41:x:", CF_EFORMAT, "three fields");
    edit_reject(&good, "test.hdb:41:", "test.hdb::", CF_EFORMAT, "bad size field");
    edit_reject(&good, "test.hdb:41:", "test.hdb:99999999999999999999:", CF_EFORMAT, "size out of range");
    cf_image_free(&good);
}

static void test_parse_limits(void **state)
{
    (void)state;
    cf_info info;
    cf_err e = {0};
    cf_buf b = CF_BUF_INIT;
    const char *head = "ClamAV-VDB:11 Jun 2024 10-00 +0000:5:3:90:X:X:tester:1718100000\n";
    const char *entry = "a.ndb:1:0748b843a1cea3242d70531083b84f877d8de398cfefe65509b5d3bb1e3bcb57\n";

    cf_buf_append_str(&b, head);
    cf_buf_append_str(&b, entry);
    assert_int_equal(cf_info_parse(b.p, b.n, &info, &e), CF_OK);
    assert_int_equal(info.n, 1);
    assert_int_equal(info.entries[0].sha256[0], 0x07);
    assert_int_equal(info.entries[0].sha256[31], 0x57);
    cf_info_free(&info);
    /* Upper-case hex is accepted (libclamav does). */
    b.n = 0;
    cf_buf_append_str(&b, head);
    cf_buf_append_str(&b, "a.ndb:1:0748B843A1CEA3242D70531083B84F877D8DE398CFEFE65509B5D3BB1E3BCB57\n");
    assert_int_equal(cf_info_parse(b.p, b.n, &info, &e), CF_OK);
    assert_int_equal(info.entries[0].sha256[1], 0x48);
    cf_info_free(&info);

    /* No final newline. */
    b.n = 0;
    cf_buf_append_str(&b, head);
    cf_buf_append(&b, entry, strlen(entry) - 1);
    assert_int_equal(cf_info_parse(b.p, b.n, &info, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "line 2: no final newline"));

    /* A line of 8192 bytes with its newline is too long; 8191 is fine. */
    for (size_t len = 8190; len <= 8191; len++) {
        b.n = 0;
        cf_buf_append_str(&b, head);
        char *name = malloc(len + 2);
        memset(name, 'n', len);
        memcpy(name, "a.ndb:1:", 8);
        memset(name + 8, 'a', 64);
        name[len] = '\n';
        name[len + 1] = '\0';
        cf_buf_append_str(&b, name);
        free(name);
        cf_code rc = cf_info_parse(b.p, b.n, &info, &e);
        if (len == 8191) {
            assert_int_equal(rc, CF_EFORMAT);
            assert_non_null(strstr(e.msg, "line 2: 8192 bytes"));
        } else {
            /* Not too long, but not a valid entry either. */
            assert_int_equal(rc, CF_EFORMAT);
            assert_non_null(strstr(e.msg, "SHA-256 has"));
        }
    }
    /* Empty input, header only, NUL byte. */
    assert_int_equal(cf_info_parse((const uint8_t *)"", 0, &info, &e), CF_EFORMAT);
    assert_int_equal(cf_info_parse((const uint8_t *)head, strlen(head), &info, &e), CF_OK);
    assert_int_equal(info.n, 0);
    cf_info_free(&info);
    b.n = 0;
    cf_buf_append_str(&b, head);
    cf_buf_append(&b, "a.ndb\0:1:x\n", 11);
    assert_int_equal(cf_info_parse(b.p, b.n, &info, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "NUL"));
    /* A DSIG line with nothing after the colon. */
    b.n = 0;
    cf_buf_append_str(&b, head);
    cf_buf_append_str(&b, "DSIG:\n");
    assert_int_equal(cf_info_parse(b.p, b.n, &info, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "empty DSIG"));
    cf_buf_free(&b);
}

/* One flipped bit anywhere in a signed manifest fails cf_info_verify. */
static void test_bit_flips(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    signed_image(&img, g_key);
    const cf_dbfile *mf = manifest(&img);
    cf_buf b = CF_BUF_INIT;
    cf_buf_set(&b, mf->data.p, mf->data.n);
    assert_int_equal(cf_info_verify(b.p, b.n, g_key, NULL, &e), CF_OK);
    for (size_t i = 0; i < b.n; i++) {
        b.p[i] ^= 0x01;
        cf_err_clear(&e);
        if (cf_info_verify(b.p, b.n, g_key, NULL, &e) == CF_OK)
            fail_msg("byte %zu flipped, still verifies", i);
        if (e.msg[0] == '\0')
            fail_msg("byte %zu flipped: no message", i);
        b.p[i] ^= 0x01;
    }
    cf_buf_free(&b);
    cf_image_free(&img);
}

static int setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &g_key, &e) != CF_OK) {
        fprintf(stderr, "key generation failed: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_rsakey_free(g_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_parse_verify), cmocka_unit_test(test_build_order_bytecode_and_others),
        cmocka_unit_test(test_unsigned_manifest),  cmocka_unit_test(test_manifest_rejections),
        cmocka_unit_test(test_parse_limits),       cmocka_unit_test(test_bit_flips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
