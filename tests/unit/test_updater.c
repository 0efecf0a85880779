/* The update policy on an in-memory mirror built from the real ClamAV vectors
 * (test-1..3): every scenario of freshclam-behavior.md §10.3 that three versions
 * can express, plus the cache-proof names, 403/429/cool-down, retries and the
 * refusal of a copy that is not newer than ours. No network. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/updater.h"

#define MIRROR "http://mirror.test"
#define MIRROR2 "http://mirror2.test"

typedef struct ffile {
    char name[128];
    cf_buf data;
} ffile;

typedef enum fmode { F_WWW, F_403, F_429, F_DOWN } fmode;

typedef struct fake {
    fmode mode;
    ffile files[64];
    size_t nfiles;
    char reqs[512][160]; /* "R name" (Range) or "G name" */
    size_t nreq;
    char msgs[1024][600];
    cf_msglevel lvl[1024];
    size_t nmsg;
    time_t now;
    unsigned slept;
    int test_fails;
    char tested[4096];
} fake;

static fake F;

static void ff_put(const char *name, const void *p, size_t n)
{
    for (size_t i = 0; i < F.nfiles; i++)
        if (strcmp(F.files[i].name, name) == 0) {
            cf_buf_set(&F.files[i].data, p, n);
            return;
        }
    ffile *f = &F.files[F.nfiles++];
    snprintf(f->name, sizeof f->name, "%s", name);
    memset(&f->data, 0, sizeof f->data);
    cf_buf_set(&f->data, p ? p : "", n);
}

static void ff_vector(const char *name, const char *vector)
{
    cf_buf b = CF_BUF_INIT;
    cf_test_read_vector(vector, &b);
    ff_put(name, b.p, b.n);
    cf_buf_free(&b);
}

static const ffile *ff_get(const char *name)
{
    for (size_t i = 0; i < F.nfiles; i++)
        if (strcmp(F.files[i].name, name) == 0)
            return &F.files[i];
    return NULL;
}

/* The freshclam test suite's Handler_WWW (§10.2): "advertised" is what the
 * probe sees, "served" what a full download of NAME.cvd gets; query strings are
 * ignored, as a static server does. */
static void serve(const cf_http_req *q, cf_http_resp *r)
{
    const char *path = strstr(q->url, ".test/");
    assert_non_null(path);
    path += 6;
    char name[160];
    snprintf(name, sizeof name, "%s", path);
    char *qm = strchr(name, '?');
    if (qm)
        *qm = '\0';
    if (F.nreq < 512)
        snprintf(F.reqs[F.nreq++], sizeof F.reqs[0], "%c %s", q->range_head ? 'R' : 'G', path);
    if (F.mode == F_DOWN) {
        r->err.code = CF_ENET;
        r->curl_code = 7;
        snprintf(r->curl_msg, sizeof r->curl_msg, "Couldn't connect to server");
        return;
    }
    if (F.mode == F_403 || F.mode == F_429) {
        if (q->range_head) {
            cf_buf v = CF_BUF_INIT;
            cf_test_read_vector("test-3.cvd", &v);
            r->status = 206;
            cf_buf_set(&r->body, v.p, 512);
            cf_buf_free(&v);
            return;
        }
        r->status = F.mode == F_403 ? 403 : 429;
        r->retry_after = F.mode == F_429 ? 60 : 0;
        cf_buf_set(&r->body, "<html>no</html>", 15);
        return;
    }
    size_t nl = strlen(name);
    if (nl > 4 && strcmp(name + nl - 4, ".cvd") == 0)
        strcat(name, q->range_head ? ".advertised" : ".served");
    const ffile *f = ff_get(name);
    if (!f) {
        r->status = 404;
        return;
    }
    if (q->if_modified_since && nl > 4 && strcmp(path + strlen(path) - 4, ".cvd") == 0) {
        /* no 304s from this mirror: it does not look at dates */
    }
    if (q->range_head) {
        r->status = 206;
        cf_buf_set(&r->body, f->data.p, f->data.n < 512 ? f->data.n : 512);
    } else {
        r->status = 200;
        cf_buf_set(&r->body, f->data.p ? (const void *)f->data.p : "", f->data.n);
    }
}

static void fake_fetch(void *arg, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k)
{
    (void)arg;
    assert_true(k >= 1);
    for (size_t i = 0; i < n; i++)
        serve(&reqs[i], &resps[i]);
}

static time_t fake_now(void *arg)
{
    (void)arg;
    return F.now;
}

static void fake_sleep(void *arg, unsigned s)
{
    (void)arg;
    F.slept += s;
    F.now += s;
}

static void fake_log(void *arg, cf_msglevel lvl, const char *msg)
{
    (void)arg;
    if (getenv("CF_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s\n", (int)lvl, msg);
    if (F.nmsg < 1024) {
        F.lvl[F.nmsg] = lvl;
        snprintf(F.msgs[F.nmsg++], sizeof F.msgs[0], "%s", msg);
    }
}

static cf_code fake_test(void *arg, const char *path, cf_err *e)
{
    (void)arg;
    snprintf(F.tested, sizeof F.tested, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return cf_err_set(e, CF_EIO, "test file missing");
    if (F.test_fails)
        return cf_err_set(e, CF_ESIG, "Database load exited with \"Malformed database\"");
    return CF_OK;
}

/* Index of the first message at level lvl (or any level when lvl < 0) containing s, or -1. */
static long find_msg(int lvl, const char *s)
{
    for (size_t i = 0; i < F.nmsg; i++)
        if ((lvl < 0 || (int)F.lvl[i] == lvl) && strstr(F.msgs[i], s))
            return (long)i;
    return -1;
}

static int has(const char *s)
{
    return find_msg(-1, s) >= 0;
}

static size_t count_req(const char *r)
{
    size_t n = 0;
    for (size_t i = 0; i < F.nreq; i++)
        n += strcmp(F.reqs[i], r) == 0;
    return n;
}

static void expect_reqs(const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (n != F.nreq) {
        for (size_t i = 0; i < F.nreq; i++)
            fprintf(stderr, "request %zu: %s\n", i, F.reqs[i]);
    }
    assert_int_equal(F.nreq, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(F.reqs[i], want[i]);
}

/* ------------------------------------------------------------------ set-up */

static cf_trust trust;
static cf_certstore *certs;
static cf_verifyctx vctx;
static char *dbdir, *tmpdir;
static cf_state st;

static int group_setup(void **state)
{
    (void)state;
    cf_test_require_vectors();
    cf_err e = {0};
    if (cf_trust_init_builtin(&trust, &e) != CF_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    cf_buf crt = CF_BUF_INIT;
    cf_test_read_vector("clamav-test.crt", &crt);
    if (cf_certstore_new(&certs, &e) != CF_OK || cf_certstore_add_pem(certs, crt.p, crt.n, "clamav-test.crt", &e) != CF_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    cf_buf_free(&crt);
    vctx = (cf_verifyctx){.trust = &trust, .certs = certs, .flevel = 230};
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cf_trust_free(&trust);
    cf_certstore_free(certs);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < F.nfiles; i++)
        cf_buf_free(&F.files[i].data);
    memset(&F, 0, sizeof F);
    F.now = 1700000000;
    dbdir = strdup(cf_test_mkdtemp());
    tmpdir = strdup(cf_test_mkdtemp());
    memset(&st, 0, sizeof st);
    snprintf(st.uuid, sizeof st.uuid, "4150b19a-6eda-4e1e-8854-7483e8ea7f28");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(dbdir);
    cf_test_rmtree(tmpdir);
    free(dbdir);
    free(tmpdir);
    return 0;
}

static const char *mirrors1[] = {MIRROR};
static const char *mirrors2[] = {MIRROR, MIRROR2};

static void make_updater(cf_updater *u, const char *const *mirrors, size_t nm)
{
    cf_update_opts o = {
        .dbdir = dbdir,
        .tmpdir = tmpdir,
        .mirrors = mirrors,
        .nmirrors = nm,
        .max_attempts = 3,
        .scripted = 1,
        .concurrency = 4,
        .retry_delay = 5,
        .verify = &vctx,
        .state = &st,
    };
    cf_update_env env = {NULL, fake_fetch, fake_now, fake_sleep, fake_log, fake_test};
    cf_updater_init(u, &o, &env);
}

/* Starts a new run: fresh messages and requests, same mirror contents. */
static int run_db(const char *db, uint32_t dnsver)
{
    F.nmsg = 0;
    F.nreq = 0;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    return cf_updater_db(&u, db, dnsver);
}

static void db_put_vector(const char *name, const char *vector)
{
    cf_buf b = CF_BUF_INIT;
    char p[4096];
    cf_test_read_vector(vector, &b);
    snprintf(p, sizeof p, "%s/%s", dbdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
    fclose(f);
    cf_buf_free(&b);
}

static int db_exists(const char *name)
{
    char p[4096];
    struct stat s;
    snprintf(p, sizeof p, "%s/%s", dbdir, name);
    return stat(p, &s) == 0;
}

/* The installed database: its file, its version, and that it verifies. */
static void expect_db(const char *file, uint32_t version)
{
    cf_cvdhdr h;
    char got[64];
    assert_true(cf_updater_local(dbdir, "test", &h, got));
    assert_string_equal(got, file);
    assert_int_equal(h.version, version);
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dbdir, file);
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(p, &b);
    cf_image img = CF_IMAGE_INIT;
    cf_image_init(&img);
    cf_err e = {0};
    cf_code rc = strstr(file, ".cld") ? cf_verify_cld(&vctx, b.p, b.n, &img, &e)
                                       : cf_verify_cvd(&vctx, b.p, b.n, NULL, 0, &img, NULL, &e);
    if (rc != CF_OK)
        fprintf(stderr, "%s: %s\n", file, e.msg);
    assert_int_equal(rc, CF_OK);
    cf_image_free(&img);
    cf_buf_free(&b);
}

static void local_test1(void)
{
    db_put_vector("test.cvd", "test-1.cvd");
    db_put_vector("test-1.cvd.sign", "test-1.cvd.sign");
}

/* ---------------------------------------------------------------- scenarios */

static void test_05_cdiff_update(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_vector("test-2.cdiff", "test-2.cdiff");
    ff_vector("test-2.cdiff.sign", "test-2.cdiff.sign");
    ff_vector("test-3.cdiff", "test-3.cdiff");
    ff_vector("test-3.cdiff.sign", "test-3.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test database available for update (local version: 1, remote version: 3)"));
    assert_true(find_msg(CF_MSG_PROGRESS, "Current database is 2 versions behind.") >= 0);
    assert_true(find_msg(CF_MSG_PROGRESS, "Downloading database patch # 2...") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "Database test passed.") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "test.cld updated (version: 3, sigs: 11, f-level: 81") >= 0);
    assert_false(has("already up-to-date"));
    assert_false(has("fewer than"));
    const char *want[] = {"R test.cvd", "G test-2.cdiff", "G test-2.cdiff.sign", "G test-3.cdiff",
                          "G test-3.cdiff.sign", NULL};
    expect_reqs(want);
    expect_db("test.cld", 3);
    assert_false(db_exists("test.cvd"));
    assert_false(db_exists("test-1.cvd.sign"));
    /* the test-load saw a real file in the temporary area, and it is gone now */
    assert_non_null(strstr(F.tested, tmpdir));
    assert_int_equal(access(F.tested, F_OK), -1);

    /* next run: nothing to do, no download */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld database is up-to-date (version: 3, sigs: 11, f-level: 81"));
    const char *want2[] = {"R test.cvd", NULL};
    expect_reqs(want2);
}

static void test_05_dns_version_means_no_probe(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test-2.cdiff", "test-2.cdiff");
    ff_vector("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 2), 0);
    const char *want[] = {"G test-2.cdiff", "G test-2.cdiff.sign", NULL};
    expect_reqs(want);
    expect_db("test.cld", 2);
    /* up to date by DNS: zero requests */
    assert_int_equal(run_db("test", 2), 0);
    assert_int_equal(F.nreq, 0);
    assert_true(has("test.cld database is up-to-date (version: 2"));
}

static void test_06_partial_minus_one(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_vector("test-2.cdiff", "test-2.cdiff");
    ff_vector("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_INFO, "Downloaded 1 patches for test, which is fewer than the 2 expected patches.") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "We'll settle for this partial-update, at least for now.") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "downloadFile: file not found: " MIRROR "/test-3.cdiff") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "downloadPatchAndApply: Can't download test-3.cdiff from " MIRROR "/test-3.cdiff") >= 0);
    assert_true(has("test.cld updated (version: 2"));
    assert_false(has("already up-to-date"));
    /* MaxAttempts tries of the missing patch, without sleeping */
    assert_int_equal(count_req("G test-3.cdiff"), 3);
    assert_int_equal(F.slept, 0);
    expect_db("test.cld", 2);

    /* run 2: one behind, the patch still missing: no change, success */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_INFO,
                         "The database server doesn't have the latest patch for the test database (version 3). The "
                         "server will likely have updated if you check again in a few hours.") >= 0);
    assert_false(has("test.cld updated"));
    assert_false(has("test.cvd updated"));
    assert_int_equal(count_req("G test.cvd"), 0);
    expect_db("test.cld", 2);
}

static void test_07_partial_minus_two(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_vector("test.cvd.served", "test-3.cvd");
    ff_vector("test-3.cvd.sign", "test-3.cvd.sign");
    /* no cdiff at all: 0 patches while 2 behind -> the whole database */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "Incremental update failed, trying to download test.cvd") >= 0);
    assert_true(has("test.cvd updated (version: 3"));
    assert_false(has("test.cld updated"));
    const char *want[] = {"R test.cvd",   "G test-2.cdiff",       "G test-2.cdiff.sign", "G test-3.cdiff",
                          "G test-3.cdiff.sign", "G test-2.cdiff", "G test-2.cdiff",
                          /* versioned name first (not published here), then the cache-busting one */
                          "G test-3.cvd", "G test.cvd?version=3", "G test-3.cvd.sign", NULL};
    expect_reqs(want);
    expect_db("test.cvd", 3);
    assert_true(db_exists("test-3.cvd.sign"));
    assert_false(db_exists("test-1.cvd.sign"));
}

static void test_07_noversioned_memory(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.served", "test-3.cvd");
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 1);
    assert_true(db_exists(CF_MIRROR_STATE_FILE));
    /* back to version 1: the next run does not ask for test-3.cvd again */
    char p[4096];
    snprintf(p, sizeof p, "%s/test.cvd", dbdir);
    remove(p);
    local_test1();
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 0);
    assert_int_equal(count_req("G test.cvd?version=3"), 1);
    /* a day later it is asked again */
    remove(p);
    local_test1();
    F.now += CF_NOVERSIONED_RETRY + 1;
    assert_int_equal(run_db("test", 3), 0);
    assert_int_equal(count_req("G test-3.cvd"), 1);
}

static void test_07_zero_byte_cdiff(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_put("test-2.cdiff", NULL, 0);
    ff_vector("test.cvd.served", "test-2.cvd");
    ff_vector("test-2.cvd.sign", "test-2.cvd.sign");
    ff_vector("test-3.cdiff", "test-3.cdiff");
    ff_vector("test-3.cdiff.sign", "test-3.cdiff.sign");

    /* run 1: empty patch -> whole database, which is older than advertised: settle */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(find_msg(CF_MSG_INFO, "Empty script test-2.cdiff, need to download entire database") >= 0);
    assert_true(find_msg(CF_MSG_WARN, MIRROR "/test.cvd?version=3 served version 2, advertised 3") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "test.cvd updated (version: 2") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "Received an older test CVD than was advertised. Incremental updates either "
                                      "failed or are disabled, so we'll have to settle for a slightly out-of-date "
                                      "database.") >= 0);
    assert_false(has("already up-to-date"));
    expect_db("test.cvd", 2);
    assert_true(db_exists("test-2.cvd.sign"));

    /* run 2: patch 3 applies to the CVD of version 2 */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 3"));
    assert_false(has("Received an older test CVD"));
    assert_false(has("Incremental update failed"));
    expect_db("test.cld", 3);
    assert_false(db_exists("test.cvd"));
    assert_false(db_exists("test-2.cvd.sign"));

    /* run 3: up to date */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("database is up-to-date"));
    assert_false(has("updated (version"));
}

static void test_08_cdiff_twice(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.advertised", "test-2.cvd");
    ff_vector("test-2.cdiff", "test-2.cdiff");
    ff_vector("test-2.cdiff.sign", "test-2.cdiff.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 2"));
    expect_db("test.cld", 2);
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_vector("test-3.cdiff", "test-3.cdiff");
    ff_vector("test-3.cdiff.sign", "test-3.cdiff.sign");
    /* the second patch applies to the CLD we built */
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test.cld updated (version: 3"));
    const char *want[] = {"R test.cvd", "G test-3.cdiff", "G test-3.cdiff.sign", NULL};
    expect_reqs(want);
    expect_db("test.cld", 3);
}

static void test_cdiff_without_sign_uses_embedded_signature(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test-2.cdiff", "test-2.cdiff");
    assert_int_equal(run_db("test", 2), 0);
    assert_true(has("No external .sign digital signature file for test-2.cdiff"));
    expect_db("test.cld", 2);
}

static void test_no_local_full_download(void **state)
{
    (void)state;
    ff_vector("test.cvd.advertised", "test-3.cvd");
    ff_vector("test-3.cvd.served", "test-3.cvd");
    ff_vector("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 0), 0);
    assert_true(has("test database available for download (remote version: 3)"));
    const char *want[] = {"R test.cvd", "G test-3.cvd", "G test-3.cvd.sign", NULL};
    expect_reqs(want);
    expect_db("test.cvd", 3);
    assert_true(db_exists("test-3.cvd.sign"));
}

/* The stale cache: plain NAME.cvd is old, the versioned name is right. */
static void test_stale_cache_versioned_name_preferred(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test.cvd.served", "test-1.cvd");  /* what a stale cache hands out */
    ff_vector("test-3.cvd.served", "test-3.cvd"); /* the cache-proof name */
    ff_vector("test-3.cvd.sign", "test-3.cvd.sign");
    assert_int_equal(run_db("test", 3), 0);
    assert_true(has("test.cvd updated (version: 3"));
    assert_int_equal(count_req("G test.cvd"), 0);
    assert_int_equal(count_req("G test.cvd?version=3"), 0);
    expect_db("test.cvd", 3);
}

/* Stricter than freshclam: a copy not newer than ours is never installed. */
static void test_older_than_local_refused(void **state)
{
    (void)state;
    db_put_vector("test.cvd", "test-2.cvd");
    db_put_vector("test-2.cvd.sign", "test-2.cvd.sign");
    /* cdiff 3 is broken (apply failure) so the full file is needed; the mirror
     * only has version 1 under every name */
    ff_put("test-3.cdiff", "ClamAV-Diff:3:garbage", 21);
    ff_vector("test.cvd.served", "test-1.cvd");
    assert_int_equal(run_db("test", 3), 0);
    assert_true(find_msg(CF_MSG_ERROR, "downloadPatchAndApply: Can't apply 'test-3.cdiff'") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "Incremental update failed, trying to download test.cvd") >= 0);
    assert_true(find_msg(CF_MSG_WARN, MIRROR "/test.cvd served version 1, advertised 3") >= 0);
    assert_false(has("updated (version"));
    expect_db("test.cvd", 2);
    assert_true(db_exists("test-2.cvd.sign"));
    /* not-synchronised is retried at once, never slept on */
    assert_int_equal(F.slept, 0);
    assert_int_equal(count_req("G test.cvd"), 3);
}

static void test_bad_signature_keeps_old(void **state)
{
    (void)state;
    local_test1();
    cf_buf b = CF_BUF_INIT;
    cf_test_read_vector("test-3.cvd", &b);
    b.p[b.n - 100] ^= 0x55;
    ff_put("test.cvd.served", b.p, b.n);
    cf_buf_free(&b);
    assert_int_equal(run_db("test", 3), CF_FC_EBADCVD);
    assert_true(find_msg(CF_MSG_ERROR, "Verification: ") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "Trying again in 5 secs...") >= 0);
    assert_true(find_msg(CF_MSG_INFO, "Giving up on " MIRROR "...") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Update failed for database: test") >= 0);
    assert_int_equal(F.slept, 10);
    expect_db("test.cvd", 1);
}

static void test_html_instead_of_cvd(void **state)
{
    (void)state;
    const char html[] = "<html><body>Welcome to our captive portal</body></html>";
    ff_put("test.cvd.advertised", html, sizeof html - 1);
    assert_int_equal(run_db("test", 0), CF_FC_EFAILEDGET);
    assert_true(has("remote_cvdhead: Malformed CVD header (too short)"));
    assert_true(has("check_for_new_database_version: Failed to find test database using server " MIRROR "."));
    assert_false(db_exists("test.cvd"));
}

static void test_empty_full_file(void **state)
{
    (void)state;
    ff_put("test.cvd.served", NULL, 0);
    assert_int_equal(run_db("test", 3), CF_FC_EEMPTYFILE);
    assert_true(has("the server sent an empty file"));
    assert_true(has("Unexpected error when attempting to update test: Empty file"));
}

static void test_truncated_full_file(void **state)
{
    (void)state;
    local_test1();
    cf_buf b = CF_BUF_INIT;
    cf_test_read_vector("test-3.cvd", &b);
    ff_put("test.cvd.served", b.p, b.n / 2);
    cf_buf_free(&b);
    assert_int_equal(run_db("test", 3), CF_FC_EBADCVD);
    expect_db("test.cvd", 1);
}

static void test_load_test_failure_keeps_old(void **state)
{
    (void)state;
    local_test1();
    ff_vector("test-2.cdiff", "test-2.cdiff");
    F.test_fails = 1;
    assert_int_equal(run_db("test", 2), CF_FC_ETESTFAIL);
    assert_true(find_msg(CF_MSG_ERROR, "Database test FAILED.") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Unexpected error when attempting to update test: Test failed") >= 0);
    assert_false(has("Database test passed."));
    expect_db("test.cvd", 1);
}

static void test_transport_failure_rotation(void **state)
{
    (void)state;
    F.mode = F_DOWN;
    cf_updater u;
    make_updater(&u, mirrors2, 2);
    assert_int_equal(cf_updater_db(&u, "test", 0), CF_FC_EFAILEDGET);
    assert_int_equal(F.nreq, 6);
    assert_int_equal(F.slept, 4 * 5);
    assert_true(has("Giving up on " MIRROR "..."));
    assert_true(has("Giving up on " MIRROR2 "..."));
    assert_true(find_msg(CF_MSG_ERROR, "remote_cvdhead: Download failed (7)") >= 0);
    assert_true(find_msg(CF_MSG_ERROR, "Update failed for database: test") >= 0);

    /* a file download that fails in transport is code 5 */
    teardown(NULL);
    setup(NULL);
    F.mode = F_DOWN;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_db(&u, "test", 3), CF_FC_ECONNECTION);
}

static void test_403_then_cooldown(void **state)
{
    (void)state;
    F.mode = F_403;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    const char *dbs[] = {"daily", "main"};
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), CF_FC_EFORBIDDEN);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam received error code 403") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are on cool-down until after: ") >= 0);
    assert_true(u.forbidden);
    assert_true(u.state_dirty);
    assert_int_equal(st.retry_after, F.now + 24 * 3600);
    /* stopped at the first database */
    assert_int_equal(count_req("R main.cvd"), 0);

    /* run 2: still on cool-down, nothing contacted, success */
    F.nreq = 0;
    F.nmsg = 0;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), 0);
    assert_int_equal(F.nreq, 0);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam previously received error code 429 or 403") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are still on cool-down until after: ") >= 0);

    /* after it expires */
    F.now += 24 * 3600 + 1;
    F.nmsg = 0;
    F.mode = F_WWW;
    make_updater(&u, mirrors1, 1);
    cf_updater_run(&u, dbs, NULL, 0, NULL, 0);
    assert_int_equal(cf_updater_cooldown_active(&u), 0);
    assert_true(has("Cool-down expired, ok to try again."));
    assert_int_equal(st.retry_after, 0);
    assert_true(u.state_dirty);
}

static void test_429_next_db_still_tried(void **state)
{
    (void)state;
    F.mode = F_429;
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    const char *dbs[] = {"daily", "main"};
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), 0);
    assert_true(find_msg(CF_MSG_WARN, "FreshClam received error code 429") >= 0);
    assert_true(find_msg(CF_MSG_WARN, "You are on cool-down until after: ") >= 0);
    assert_int_equal(count_req("R daily.cvd"), 1);
    assert_int_equal(count_req("R main.cvd"), 1);
    assert_int_equal(st.retry_after, F.now + 60);
    assert_false(u.forbidden);
    /* StrictExitCodes reports it */
    memset(&st.retry_after, 0, sizeof st.retry_after);
    make_updater(&u, mirrors1, 1);
    u.o.strict_exit_codes = 1;
    assert_int_equal(cf_updater_run(&u, dbs, NULL, 2, NULL, 0), CF_FC_ERETRYLATER);
}

static void test_custom_file_url(void **state)
{
    (void)state;
    char src[4096];
    char *wd = cf_test_mkdtemp();
    snprintf(src, sizeof src, "%s/clamav.hdb", wd);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fputs("# comment\naa6b9c7e8ce2a5bc8bb5c0a5c4a3d5b7:68:Test.Sig\n\n", f);
    fclose(f);
    char url[4200];
    snprintf(url, sizeof url, "file://%s", src);
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_custom(&u, url), 0);
    assert_true(has("Downloading clamav.hdb [100%]"));
    assert_true(has("Database test passed."));
    assert_true(has("clamav.hdb updated (version: custom database, sigs: 1)"));
    assert_int_equal(u.replaced, 1);
    assert_true(db_exists("clamav.hdb"));
    /* our copy is newer than the source now */
    sleep(1);
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/clamav.hdb", dbdir);
    struct timespec later[2] = {{time(NULL) + 10, 0}, {time(NULL) + 10, 0}};
    utimensat(AT_FDCWD, dst, later, 0);
    F.nmsg = 0;
    make_updater(&u, mirrors1, 1);
    assert_int_equal(cf_updater_custom(&u, url), 0);
    assert_true(has("clamav.hdb is up-to-date (version: custom database)"));
    assert_int_equal(u.replaced, 0);
    /* missing source */
    snprintf(url, sizeof url, "file://%s/missing.hdb", wd);
    assert_int_equal(cf_updater_custom(&u, url), CF_FC_EFAILEDUPDATE);
    assert_true(has("DatabaseCustomURL: file "));
    assert_int_equal(cf_updater_custom(&u, "http://x/a"), CF_FC_EFAILEDUPDATE);
    assert_true(has("DatabaseCustomURL: Incorrect URL"));
    cf_test_rmtree(wd);
}

static void test_private_mirror_cld(void **state)
{
    (void)state;
    /* a private mirror serving a CLD built from version 3 */
    cf_buf b = CF_BUF_INIT, cld = CF_BUF_INIT;
    cf_image img = CF_IMAGE_INIT;
    cf_image_init(&img);
    cf_err e = {0};
    cf_test_read_vector("test-3.cvd", &b);
    assert_int_equal(cf_verify_cvd(&vctx, b.p, b.n, NULL, 0, &img, NULL, &e), CF_OK);
    assert_int_equal(cf_cld_write(&img, 0, &cld, &e), CF_OK);
    ff_put("test.cld", cld.p, cld.n);
    cf_image_free(&img);
    cf_buf_free(&b);
    cf_buf_free(&cld);
    local_test1();
    cf_updater u;
    make_updater(&u, mirrors1, 1);
    u.o.private_mirror = 1;
    assert_int_equal(cf_updater_db(&u, "test", 0), 0);
    /* no cdiffs on this mirror: the whole CLD, verified by its manifest */
    assert_int_equal(count_req("R test.cld"), 1);
    assert_int_equal(count_req("G test.cld?version=3"), 1);
    assert_int_equal(count_req("G test-3.cvd"), 0);
    expect_db("test.cld", 3);
    assert_false(db_exists("test.cvd"));
}

static void test_fc_texts(void **state)
{
    (void)state;
    assert_string_equal(cf_fc_str(17), "Forbidden; Blocked by CDN");
    assert_string_equal(cf_fc_str(11), "HTTP GET failed");
    assert_string_equal(cf_fc_str(8), "Test failed");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_05_cdiff_update),
        T(test_05_dns_version_means_no_probe),
        T(test_06_partial_minus_one),
        T(test_07_partial_minus_two),
        T(test_07_noversioned_memory),
        T(test_07_zero_byte_cdiff),
        T(test_08_cdiff_twice),
        T(test_cdiff_without_sign_uses_embedded_signature),
        T(test_no_local_full_download),
        T(test_stale_cache_versioned_name_preferred),
        T(test_older_than_local_refused),
        T(test_bad_signature_keeps_old),
        T(test_html_instead_of_cvd),
        T(test_empty_full_file),
        T(test_truncated_full_file),
        T(test_load_test_failure_keeps_old),
        T(test_transport_failure_rotation),
        T(test_403_then_cooldown),
        T(test_429_next_db_still_tried),
        T(test_custom_file_url),
        T(test_private_mirror_cld),
        T(test_fc_texts),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
