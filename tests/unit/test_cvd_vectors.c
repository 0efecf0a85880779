/* Container layer against the real ClamAV-signed vectors (formats.md §9.1,
 * §9.2), plus CLDs built from them and loaded by the installed ClamAV. */
#include "testutil.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/image.h"
#include "clamfresh/tarball.h"

static void sha256_hex(const cf_buf *b, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(b->p, b->n, md, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void assert_member_sha(const cf_image *img, const char *name, const char *want)
{
    const cf_dbfile *f = cf_image_get(img, name);
    if (f == NULL)
        fail_msg("member %s missing", name);
    char got[65];
    sha256_hex(&f->data, got);
    assert_string_equal(got, want);
}

typedef struct member {
    const char *name;
    size_t size;
} member;

static const member k_members_1[] = {
    {"COPYING", 17992}, {"test.info", 568}, {"test.ndb", 240}, {"test.ldb", 44}};
static const member k_members_3[] = {
    {"COPYING", 17992}, {"test.info", 1800}, {"test.cfg", 44}, {"test.hdb", 113}, {"test.hdu", 57},
    {"test.hsb", 89},   {"test.hsu", 89},    {"test.mdb", 60}, {"test.mdu", 60},  {"test.msb", 92},
    {"test.msu", 92},   {"test.ndb", 240},   {"test.ndu", 44}, {"test.ldb", 44},  {"test.ldu", 44},
    {"test.idb", 44},   {"test.fp", 55},     {"test.sfp", 87}, {"test.crb", 44},  {"test.cdb", 44}};

static const struct vec {
    const char *file;
    size_t size;
    const char *time;
    uint32_t version, sigs, flevel;
    const char *md5, *builder;
    uint64_t stime;
    const member *members;
    size_t nmembers;
} k_vecs[] = {
    {"test-1.cvd", 8394, "22 Jun 2021 14-58 -0400", 1, 0, 81, "a4ab60ae1c1c4e8f787459102dcfd90b", "micasnyd",
     1624388302, k_members_1, 4},
    {"test-2.cvd", 8387, "22 Jun 2021 16-55 -0400", 2, 0, 81, "57ce21d16edad79ec53a16f03c96b680", "micasnyd",
     1624395301, k_members_1, 4},
    {"test-3.cvd", 9483, "22 Jun 2021 20-40 -0400", 3, 11, 81, "75c84c7f1a2d37d9c2a37b2bc9b3a670", "raynman",
     1624408809, k_members_3, 20},
};

#define SHA_COPYING "32b1062f7da84967e7019d01ab805935caa7ab7321a7ced0e30ebe75e5df1670"
#define SHA_NDB240 "244a20e9da37de181ede6db64f85c97916381d91f65e1b39e4f9300cb0726be9"
#define SHA_44 "0748b843a1cea3242d70531083b84f877d8de398cfefe65509b5d3bb1e3bcb57"
#define SHA_HDB "aaaaeddb8bf8648489ad0580fcb1ae7d09f91e55a20014c67af0b734a6496d4a"
#define SHA_INFO1 "bf2b110e9c180cb7bf13afb4385d29fb89ecefb93007a70e8012f1117c92bca4"

static void read_vector_image(const char *file, cf_buf *raw, cf_image *img)
{
    cf_err e = {0};
    cf_test_read_vector(file, raw);
    cf_image_init(img);
    if (cf_cvd_read(raw->p, raw->n, img, &e) != CF_OK)
        fail_msg("%s: %s", file, e.msg);
}

static void test_vector_headers_and_members(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(k_vecs) / sizeof(k_vecs[0]); v++) {
        const struct vec *t = &k_vecs[v];
        cf_buf raw = CF_BUF_INIT;
        cf_image img;
        read_vector_image(t->file, &raw, &img);
        assert_int_equal(raw.n, t->size);
        assert_false(cf_cvd_body_is_plain(raw.p, raw.n)); /* all vectors are gzip */

        assert_string_equal(img.hdr.time, t->time);
        assert_int_equal(img.hdr.version, t->version);
        assert_int_equal(img.hdr.sigs, t->sigs);
        assert_int_equal(img.hdr.flevel, t->flevel);
        assert_string_equal(img.hdr.md5, t->md5);
        assert_int_equal(strlen(img.hdr.dsig), 171);
        assert_string_equal(img.hdr.builder, t->builder);
        assert_true(img.hdr.stime == t->stime);

        /* Re-formatting the parsed header reproduces the original 512 bytes. */
        char hdr[CF_HDR_SIZE];
        cf_err e = {0};
        assert_int_equal(cf_cvdhdr_format(&img.hdr, hdr, &e), CF_OK);
        assert_memory_equal(hdr, raw.p, CF_HDR_SIZE);

        assert_int_equal(img.nfiles, t->nmembers);
        for (size_t i = 0; i < t->nmembers; i++) {
            assert_string_equal(img.files[i].name, t->members[i].name);
            assert_int_equal(img.files[i].data.n, t->members[i].size);
        }
        assert_member_sha(&img, "COPYING", SHA_COPYING);
        assert_member_sha(&img, "test.ndb", SHA_NDB240);
        assert_member_sha(&img, "test.ldb", SHA_44);
        if (t->version == 1)
            assert_member_sha(&img, "test.info", SHA_INFO1);
        if (t->version == 3) {
            assert_member_sha(&img, "test.hdb", SHA_HDB);
            static const char *const placeholders[] = {"test.cfg", "test.ndu", "test.ldu",
                                                       "test.idb", "test.crb", "test.cdb"};
            for (size_t i = 0; i < 6; i++)
                assert_member_sha(&img, placeholders[i], SHA_44);
        }
        cf_image_free(&img);
        cf_buf_free(&raw);
    }
}

/* A corrupted vector is refused with a message, not half-read. */
static void test_vector_damaged(void **state)
{
    (void)state;
    cf_buf raw = CF_BUF_INIT;
    cf_test_read_vector("test-1.cvd", &raw);
    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    assert_int_equal(cf_cvd_read(raw.p, raw.n - 1, &img, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "body: "));
    assert_int_equal(img.nfiles, 0);
    raw.p[511] = '\0';
    assert_int_equal(cf_cvd_read(raw.p, raw.n, &img, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "NUL byte at offset 511"));
    cf_image_free(&img);
    cf_buf_free(&raw);
}

static void info_line_padded(const cf_image *img, uint8_t out[CF_HDR_SIZE])
{
    const cf_dbfile *info = cf_image_get(img, "test.info");
    assert_non_null(info);
    const uint8_t *nl = memchr(info->data.p, '\n', info->data.n);
    assert_non_null(nl);
    memset(out, ' ', CF_HDR_SIZE);
    memcpy(out, info->data.p, (size_t)(nl - info->data.p));
}

static void test_vector_cld(void **state)
{
    (void)state;
    cf_buf raw = CF_BUF_INIT;
    cf_image img;
    read_vector_image("test-3.cvd", &raw, &img);
    uint8_t want[CF_HDR_SIZE];
    info_line_padded(&img, want);
    static const char line[] = "ClamAV-VDB:22 Jun 2021 20-40 -0400:3:11:81:X:X:raynman:1624408809";
    assert_memory_equal(want, line, sizeof(line) - 1);
    for (size_t i = sizeof(line) - 1; i < CF_HDR_SIZE; i++)
        assert_int_equal(want[i], ' ');

    for (int gz = 0; gz < 2; gz++) {
        cf_buf cld = CF_BUF_INIT;
        cf_err e = {0};
        assert_int_equal(cf_cld_write(&img, gz, &cld, &e), CF_OK);
        assert_memory_equal(cld.p, want, CF_HDR_SIZE);
        assert_int_equal(cf_cvd_body_is_plain(cld.p, cld.n), !gz);

        cf_image back;
        cf_image_init(&back);
        if (cf_cvd_read(cld.p, cld.n, &back, &e) != CF_OK)
            fail_msg("%s", e.msg);
        assert_int_equal(back.hdr.version, 3);
        assert_int_equal(back.hdr.sigs, 11);
        assert_string_equal(back.hdr.md5, "X");
        assert_string_equal(back.hdr.dsig, "X");
        /* Same members, same order (the vector already has COPYING, .info, .cfg first), same bytes. */
        assert_int_equal(back.nfiles, img.nfiles);
        assert_string_equal(back.files[0].name, "COPYING");
        for (size_t i = 0; i < img.nfiles; i++) {
            assert_string_equal(back.files[i].name, img.files[i].name);
            assert_int_equal(back.files[i].data.n, img.files[i].data.n);
            assert_memory_equal(back.files[i].data.p, img.files[i].data.p, img.files[i].data.n);
        }
        cf_image_free(&back);
        cf_buf_free(&cld);
    }

    /* COPYING, .info and .cfg go first even when the image holds them last. */
    cf_image shuffled;
    cf_image_init(&shuffled);
    cf_err e = {0};
    for (size_t i = img.nfiles; i-- > 0;)
        assert_int_equal(
            cf_image_put(&shuffled, img.files[i].name, img.files[i].data.p, img.files[i].data.n, &e), CF_OK);
    cf_buf cld = CF_BUF_INIT;
    assert_int_equal(cf_cld_write(&shuffled, 0, &cld, &e), CF_OK);
    cf_image back;
    cf_image_init(&back);
    assert_int_equal(cf_cvd_read(cld.p, cld.n, &back, &e), CF_OK);
    assert_string_equal(back.files[0].name, "COPYING");
    assert_string_equal(back.files[1].name, "test.info");
    assert_string_equal(back.files[2].name, "test.cfg");
    assert_string_equal(back.files[3].name, "test.cdb"); /* then the rest in image order */
    assert_string_equal(back.files[back.nfiles - 1].name, "test.hdb");
    cf_image_free(&back);
    cf_image_free(&shuffled);
    cf_buf_free(&cld);
    cf_image_free(&img);
    cf_buf_free(&raw);
}

/* ---- interop with the installed ClamAV ---- */

static int have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* Runs cmd with stdout and stderr captured in files; returns the exit status or -1. */
static int run(const char *cmd, const char *dir, cf_buf *out, cf_buf *err)
{
    char full[4096], po[1024], pe[1024];
    snprintf(po, sizeof(po), "%s.out", dir);
    snprintf(pe, sizeof(pe), "%s.err", dir);
    snprintf(full, sizeof(full), "%s >%s 2>%s", cmd, po, pe);
    int st = system(full);
    cf_test_read_file(po, out);
    cf_test_read_file(pe, err);
    cf_buf_append(out, "", 1);
    cf_buf_append(err, "", 1);
    remove(po);
    remove(pe);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_vector_cld_clamav_loads(void **state)
{
    (void)state;
    if (!have_tool("clamscan") || !have_tool("sigtool")) {
        print_message("SKIP: clamscan/sigtool not installed; ClamAV load test skipped\n");
        skip();
    }
    cf_buf raw = CF_BUF_INIT;
    cf_image img;
    read_vector_image("test-3.cvd", &raw, &img);

    for (int gz = 0; gz < 2; gz++) {
        char *dir = cf_test_mkdtemp();
        char *work = cf_test_mkdtemp();
        assert_non_null(dir);
        assert_non_null(work);
        cf_buf cld = CF_BUF_INIT, out = CF_BUF_INIT, err = CF_BUF_INIT;
        cf_err e = {0};
        assert_int_equal(cf_cld_write(&img, gz, &cld, &e), CF_OK);
        char path[1024], target[1024], cmd[3000], cap[1024];
        snprintf(path, sizeof(path), "%s/test.cld", dir);
        snprintf(target, sizeof(target), "%s/clean.txt", work);
        snprintf(cap, sizeof(cap), "%s/cap", work);
        assert_int_equal(cf_file_write_new(path, cld.p, cld.n, 0644, &e), CF_OK);
        assert_int_equal(cf_file_write_new(target, "nothing to see here\n", 20, 0644, &e), CF_OK);

        snprintf(cmd, sizeof(cmd), "sigtool --info %s", path);
        int st = run(cmd, cap, &out, &err);
        if (st != 0)
            fail_msg("sigtool --info exit %d: %s%s", st, (char *)out.p, (char *)err.p);
        assert_non_null(strstr((char *)out.p, "Version: 3"));

        snprintf(cmd, sizeof(cmd), "clamscan --no-summary -d %s %s", dir, target);
        st = run(cmd, cap, &out, &err);
        if ((st != 0 && st != 1) || strstr((char *)err.p, "Malformed") ||
            strstr((char *)err.p, "Corrupted") || strstr((char *)err.p, "Can't"))
            fail_msg("clamscan (%s CLD) exit %d: %s", gz ? "gzip" : "plain", st, (char *)err.p);

        /* 11 signatures in all; the .hdu/.mdu/.msu/.ndu/.ldu ones are PUA and load only with
         * --detect-pua, which is why plain clamscan reports 7 for the original test-3.cvd too. */
        snprintf(cmd, sizeof(cmd), "clamscan --detect-pua=yes -d %s %s", dir, target);
        st = run(cmd, cap, &out, &err);
        if (st != 0 || strstr((char *)out.p, "Known viruses: 11\n") == NULL)
            fail_msg("clamscan summary (%s CLD) exit %d: %s%s", gz ? "gzip" : "plain", st, (char *)out.p,
                     (char *)err.p);
        snprintf(cmd, sizeof(cmd), "clamscan -d %s %s", dir, target);
        st = run(cmd, cap, &out, &err);
        if (st != 0 || strstr((char *)out.p, "Known viruses: 7\n") == NULL)
            fail_msg("clamscan summary (%s CLD) exit %d: %s%s", gz ? "gzip" : "plain", st, (char *)out.p,
                     (char *)err.p);

        cf_buf_free(&cld);
        cf_buf_free(&out);
        cf_buf_free(&err);
        cf_test_rmtree(dir);
        cf_test_rmtree(work);
        free(dir);
        free(work);
    }
    cf_image_free(&img);
    cf_buf_free(&raw);
}

/* The loader really checks: a CLD whose .info no longer matches a member is refused. */
static void test_vector_cld_clamav_refuses_tampering(void **state)
{
    (void)state;
    if (!have_tool("clamscan")) {
        print_message("SKIP: clamscan not installed\n");
        skip();
    }
    cf_buf raw = CF_BUF_INIT;
    cf_image img;
    read_vector_image("test-3.cvd", &raw, &img);
    cf_err e = {0};
    const cf_dbfile *hdb = cf_image_get(&img, "test.hdb");
    cf_buf changed = CF_BUF_INIT;
    cf_buf_append(&changed, hdb->data.p, hdb->data.n);
    changed.p[0] ^= 1;
    assert_int_equal(cf_image_put(&img, "test.hdb", changed.p, changed.n, &e), CF_OK);
    char *dir = cf_test_mkdtemp(), *work = cf_test_mkdtemp();
    cf_buf cld = CF_BUF_INIT, out = CF_BUF_INIT, err = CF_BUF_INIT;
    assert_int_equal(cf_cld_write(&img, 0, &cld, &e), CF_OK);
    char path[1024], cmd[3000], cap[1024];
    snprintf(path, sizeof(path), "%s/test.cld", dir);
    snprintf(cap, sizeof(cap), "%s/cap", work);
    assert_int_equal(cf_file_write_new(path, cld.p, cld.n, 0644, &e), CF_OK);
    snprintf(cmd, sizeof(cmd), "clamscan --no-summary -d %s %s", dir, path);
    int st = run(cmd, cap, &out, &err);
    if (st != 2 || strstr((char *)err.p, "test.hdb") == NULL)
        fail_msg("tampered CLD: exit %d: %s", st, (char *)err.p);
    cf_test_rmtree(dir);
    cf_test_rmtree(work);
    free(dir);
    free(work);
    cf_buf_free(&cld);
    cf_buf_free(&out);
    cf_buf_free(&err);
    cf_buf_free(&changed);
    cf_image_free(&img);
    cf_buf_free(&raw);
}

int main(void)
{
    if (cf_test_vectors_dir() == NULL) {
        printf("SKIP: the ClamAV-signed vectors are not present\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_headers_and_members),
        cmocka_unit_test(test_vector_damaged),
        cmocka_unit_test(test_vector_cld),
        cmocka_unit_test(test_vector_cld_clamav_loads),
        cmocka_unit_test(test_vector_cld_clamav_refuses_tampering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
