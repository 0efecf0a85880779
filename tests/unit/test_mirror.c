/* Mirror mode (mirror.h) against an in-memory upstream serving databases and
 * cdiffs built here with a test key: first publication, growth by patches,
 * the publish order, window pruning and back-fill, stale and missing names,
 * corrupt and inconsistent patches (nothing changes), the chain check, probing,
 * 403, and the pointer and nginx helpers. */
#include "testutil.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/info.h"
#include "clamfresh/mirror.h"

#define UP "http://up.test/"
#define NOW 1700000000

/* ------------------------------------------------------------- fixtures */

static cf_rsakey *KEY;
static cf_trust TRUST;
static cf_verifyctx VCTX;

/* Version v of "daily": one signature line per version, so every version
 * differs from the previous one by an added line (and v % 3 == 0 drops one). */
static void make_image(uint32_t v, const char *salt, cf_image *img)
{
    cf_err e = {0};
    cf_image_init(img);
    const char *copying = "clamfresh test database\n";
    assert_int_equal(cf_image_put(img, "COPYING", copying, strlen(copying), &e), CF_OK);
    cf_buf hdb = CF_BUF_INIT;
    for (uint32_t i = 1; i <= v; i++)
        if (i % 3 != 0 || i == v)
            cf_buf_printf(&hdb, "%08x%024x:%u:Test.Sig-%u%s\n", i, i, 100 + i, i, salt);
    assert_int_equal(cf_image_put(img, "daily.hdb", hdb.p, hdb.n, &e), CF_OK);
    cf_buf_free(&hdb);
    cf_cvdhdr h = {0};
    snprintf(h.time, sizeof h.time, "14 Nov 2023 22-13 +0000");
    h.version = v;
    h.sigs = v;
    h.flevel = 90;
    snprintf(h.md5, sizeof h.md5, "X");
    snprintf(h.dsig, sizeof h.dsig, "X");
    snprintf(h.builder, sizeof h.builder, "tester");
    h.stime = NOW - 86400 + v;
    assert_int_equal(cf_info_build(img, "daily", &h, KEY, &e), CF_OK);
    img->hdr = h;
}

static void make_cvd_from(const cf_image *img, cf_buf *out)
{
    cf_err e = {0};
    cf_buf body = CF_BUF_INIT, sig = CF_BUF_INIT;
    assert_int_equal(cf_cvd_body_make(img, 1, &body, &e), CF_OK);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    assert_int_equal(EVP_Digest(body.p, body.n, md, &mdlen, EVP_md5(), NULL), 1);
    cf_cvdhdr h = img->hdr;
    for (unsigned i = 0; i < 16; i++)
        snprintf(h.md5 + 2 * i, 3, "%02x", md[i]);
    assert_int_equal(cf_dsig_sign_md5(KEY, md, &sig, &e), CF_OK);
    snprintf(h.dsig, sizeof h.dsig, "%s", (const char *)sig.p);
    out->n = 0;
    assert_int_equal(cf_cvd_assemble(&h, &body, out, &e), CF_OK);
    cf_buf_free(&body);
    cf_buf_free(&sig);
}

/* Cached builds of every version used (0..63): one image per version, so the
 * cdiff to v yields exactly the manifest inside the CVD of v, as a publisher's
 * cdiffs do (a manifest signature differs at every signing: random salt). */
#define MAXV 64
static cf_buf CVD[MAXV], CDIFF[MAXV];
static cf_image IMG[MAXV];
static int HAVE_IMG[MAXV];

static const cf_image *image(uint32_t v)
{
    assert_true(v < MAXV);
    if (!HAVE_IMG[v]) {
        make_image(v, "", &IMG[v]);
        HAVE_IMG[v] = 1;
    }
    return &IMG[v];
}

static const cf_buf *cvd(uint32_t v)
{
    if (CVD[v].n == 0)
        make_cvd_from(image(v), &CVD[v]);
    return &CVD[v];
}

/* The patch from v-1 to v, or, with salt, to a different version v. */
static void make_cdiff(uint32_t v, const char *salt, cf_buf *out)
{
    cf_image a, b;
    cf_err e0 = {0};
    cf_image_init(&a);
    assert_int_equal(cf_image_copy(&a, image(v - 1), &e0), CF_OK);
    if (salt[0]) {
        make_image(v, salt, &b);
    } else {
        cf_image_init(&b);
        assert_int_equal(cf_image_copy(&b, image(v), &e0), CF_OK);
    }
    cf_buf script = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_cdiff_make_script(&a, &b, &script, &e), CF_OK);
    out->n = 0;
    assert_int_equal(cf_cdiff_build(script.p, script.n, v, KEY, out, &e), CF_OK);
    cf_buf_free(&script);
    cf_image_free(&a);
    cf_image_free(&b);
}

static const cf_buf *cdiff(uint32_t v)
{
    if (CDIFF[v].n == 0)
        make_cdiff(v, "", &CDIFF[v]);
    return &CDIFF[v];
}

/* ------------------------------------------------------- fake upstream */

typedef struct ufile {
    char name[128];
    cf_buf data;
} ufile;

static struct {
    ufile files[256];
    size_t nfiles;
    char reqs[1024][160]; /* "G name", "R name" (Range), "N name" (no-cache headers) */
    size_t nreq;
    char msgs[512][600];
    cf_msglevel lvl[512];
    size_t nmsg;
    int status; /* nonzero: answer every request with it */
    time_t now;
} U;

static void up_reset(void)
{
    for (size_t i = 0; i < U.nfiles; i++)
        cf_buf_free(&U.files[i].data);
    memset(&U, 0, sizeof U);
    U.now = NOW;
}

static void up_put(const char *name, const cf_buf *b)
{
    for (size_t i = 0; i < U.nfiles; i++)
        if (strcmp(U.files[i].name, name) == 0) {
            cf_buf_set(&U.files[i].data, b->p, b->n);
            return;
        }
    assert_true(U.nfiles < 256);
    ufile *f = &U.files[U.nfiles++];
    snprintf(f->name, sizeof f->name, "%s", name);
    memset(&f->data, 0, sizeof f->data);
    cf_buf_set(&f->data, b->p, b->n);
}

static void up_del(const char *name)
{
    for (size_t i = 0; i < U.nfiles; i++)
        if (strcmp(U.files[i].name, name) == 0) {
            cf_buf_free(&U.files[i].data);
            U.files[i] = U.files[--U.nfiles];
            return;
        }
}

/* Upstream at version v: daily.cvd and daily-v.cvd, cdiffs from..v. */
static void up_publish(uint32_t v, uint32_t from)
{
    char name[64];
    up_put("daily.cvd", cvd(v));
    snprintf(name, sizeof name, "daily-%u.cvd", v);
    up_put(name, cvd(v));
    for (uint32_t n = from; n <= v; n++) {
        snprintf(name, sizeof name, "daily-%u.cdiff", n);
        up_put(name, cdiff(n));
    }
}

static const ufile *up_find(const char *name)
{
    for (size_t i = 0; i < U.nfiles; i++)
        if (strcmp(U.files[i].name, name) == 0)
            return &U.files[i];
    return NULL;
}

/* A static server: the query string is ignored unless a file is stored
 * under the name with its query (a server that maps it). */
static void serve(const cf_http_req *q, cf_http_resp *r)
{
    assert_true(strncmp(q->url, UP, strlen(UP)) == 0);
    const char *path = q->url + strlen(UP);
    int nc = 0;
    for (const char *const *h = q->headers; h && *h; h++)
        nc |= strstr(*h, "no-cache") != NULL;
    if (U.nreq < 1024)
        snprintf(U.reqs[U.nreq++], sizeof U.reqs[0], "%c %s", q->range_head ? 'R' : nc ? 'N' : 'G', path);
    if (U.status) {
        r->status = U.status;
        return;
    }
    const ufile *f = up_find(path);
    if (!f) {
        char name[160];
        snprintf(name, sizeof name, "%s", path);
        char *qm = strchr(name, '?');
        if (qm)
            *qm = '\0';
        f = up_find(name);
    }
    if (!f) {
        r->status = 404;
        cf_buf_set(&r->body, "not here", 8);
        return;
    }
    size_t n = f->data.n;
    if (q->range_head && n > 512)
        n = 512;
    r->status = q->range_head ? 206 : 200;
    cf_buf_set(&r->body, f->data.p ? (const void *)f->data.p : "", n);
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
    return U.now;
}

static void fake_sleep(void *arg, unsigned s)
{
    (void)arg;
    U.now += s;
}

static void fake_log(void *arg, cf_msglevel lvl, const char *msg)
{
    (void)arg;
    if (getenv("CF_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s\n", (int)lvl, msg);
    if (U.nmsg < 512) {
        U.lvl[U.nmsg] = lvl;
        snprintf(U.msgs[U.nmsg++], sizeof U.msgs[0], "%s", msg);
    }
}

static const cf_update_env ENV = {NULL, fake_fetch, fake_now, fake_sleep, fake_log, NULL};

static int has_msg(int lvl, const char *s)
{
    for (size_t i = 0; i < U.nmsg; i++)
        if ((lvl < 0 || (int)U.lvl[i] == lvl) && strstr(U.msgs[i], s))
            return 1;
    return 0;
}

static size_t count_req(const char *r)
{
    size_t n = 0;
    for (size_t i = 0; i < U.nreq; i++)
        n += strcmp(U.reqs[i], r) == 0;
    return n;
}

static long req_index(const char *r)
{
    for (size_t i = 0; i < U.nreq; i++)
        if (strcmp(U.reqs[i], r) == 0)
            return (long)i;
    return -1;
}

static size_t count_prefix(const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < U.nreq; i++)
        n += strncmp(U.reqs[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* --------------------------------------------------------- the directory */

static char *DIRP;

static int setup(void **state)
{
    (void)state;
    up_reset();
    DIRP = strdup(cf_test_mkdtemp());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(DIRP);
    free(DIRP);
    up_reset();
    return 0;
}

static const char *RUN_DB = "daily";
static const cf_verifyctx *RUN_CTX = &VCTX;

static cf_state *RUN_STATE; /* the cool-down state a run is given, or NULL */

static int run(uint32_t v, unsigned keep, int nginx)
{
    const char *dbs[] = {RUN_DB};
    static const char *const mirrors[] = {UP};
    uint32_t versions[1] = {v};
    cf_mirror_opts o = {
        .dir = DIRP,
        .dbs = dbs,
        .ndbs = 1,
        .versions = versions,
        .mirrors = mirrors,
        .nmirrors = 1,
        .keep_patches = keep,
        .concurrency = 4,
        .max_attempts = 1,
        .verify = RUN_CTX,
        .newest_clamav = "1.4.6",
        .no_nginx_conf = !nginx,
        .state = RUN_STATE,
    };
    U.nreq = 0;
    U.nmsg = 0;
    return cf_mirror_run(&o, &ENV);
}

static int exists(const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", DIRP, name);
    return stat(p, &st) == 0;
}

static void read_dir_file(const char *name, cf_buf *out)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", DIRP, name);
    out->n = 0;
    cf_test_read_file(p, out);
}

static void expect_same(const char *name, const cf_buf *want)
{
    cf_buf b = CF_BUF_INIT;
    read_dir_file(name, &b);
    if (b.n != want->n || memcmp(b.p, want->p, b.n) != 0)
        fail_msg("%s differs from what upstream published", name);
    cf_buf_free(&b);
}

static void expect_text(const char *name, const char *want)
{
    cf_buf b = CF_BUF_INIT;
    read_dir_file(name, &b);
    cf_buf_append(&b, "", 1);
    assert_string_equal((const char *)b.p, want);
    cf_buf_free(&b);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every visible name and its bytes, in name order (the lock file aside). */
static void snapshot(cf_buf *out)
{
    DIR *d = opendir(DIRP);
    assert_non_null(d);
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "clamfresh.lock") != 0 && n < 512)
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmpstr);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        cf_buf b = CF_BUF_INIT;
        read_dir_file(names[i], &b);
        cf_buf_printf(out, "%s %zu\n", names[i], b.n);
        cf_buf_append(out, b.p, b.n);
        cf_buf_free(&b);
        free(names[i]);
    }
}

static size_t count_files(const char *prefix, const char *suffix)
{
    DIR *d = opendir(DIRP);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0 && l > sl &&
             strcmp(de->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

static struct timespec mtime_of(const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", DIRP, name);
    assert_int_equal(stat(p, &st), 0);
    return st.st_mtim;
}

static int ts_le(struct timespec a, struct timespec b)
{
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

/* ------------------------------------------------------------------ tests */

static void first_run_publishes(void **state)
{
    (void)state;
    up_publish(3, 2);
    assert_int_equal(run(3, 0, 1), 0);
    expect_same("daily-3.cvd", cvd(3));
    expect_same("daily.cvd", cvd(3));
    expect_same("daily-2.cdiff", cdiff(2));
    expect_same("daily-3.cdiff", cdiff(3));
    assert_false(exists("daily-1.cdiff"));
    expect_text("daily.version", "3:1700000000\n");
    expect_text("current.txt", "1.4.6:0:3:1700000000:0:90:0:0\n");
    assert_true(exists(CF_MIRROR_NGINX_CONF));
    /* the whole database came under its versioned name; the plain one was never asked */
    assert_int_equal(count_req("G daily-3.cvd"), 1);
    assert_int_equal(count_prefix("G daily.cvd"), 0);
    assert_int_equal(count_prefix("N daily.cvd"), 0);
    /* back-fill went down to the first missing patch and no further */
    assert_int_equal(count_req("G daily-1.cdiff"), 1);
    assert_int_equal(count_req("G daily-3.cdiff.sign"), 1);
    /* NAME.cvd is a second name of NAME-V.cvd */
    char a[4096], b[4096];
    struct stat sa, sb;
    snprintf(a, sizeof a, "%s/daily.cvd", DIRP);
    snprintf(b, sizeof b, "%s/daily-3.cvd", DIRP);
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(stat(b, &sb), 0);
    assert_true(sa.st_ino == sb.st_ino);
    /* what was published verifies */
    cf_buf bytes = CF_BUF_INIT;
    read_dir_file("daily.cvd", &bytes);
    cf_image img;
    cf_err e = {0};
    assert_int_equal(cf_verify_cvd(&VCTX, bytes.p, bytes.n, NULL, 0, &img, NULL, &e), CF_OK);
    assert_int_equal(img.hdr.version, 3);
    cf_image_free(&img);
    cf_buf_free(&bytes);
    assert_true(has_msg(CF_MSG_INFO, "daily-3.cvd published (version: 3"));
}

static void second_run_adds_patches(void **state)
{
    (void)state;
    up_publish(3, 2);
    assert_int_equal(run(3, 0, 0), 0);
    assert_false(exists(CF_MIRROR_NGINX_CONF));
    up_publish(5, 4);
    U.now = NOW + 3600;
    usleep(20000); /* distinct mtimes for the order check */
    assert_int_equal(run(5, 0, 0), 0);
    expect_same("daily-4.cdiff", cdiff(4));
    expect_same("daily-5.cdiff", cdiff(5));
    expect_same("daily-5.cvd", cvd(5));
    expect_same("daily.cvd", cvd(5));
    expect_same("daily-2.cdiff", cdiff(2));
    expect_same("daily-3.cdiff", cdiff(3));
    assert_false(exists("daily-3.cvd"));
    expect_text("daily.version", "5:1700003600\n");
    expect_text("current.txt", "1.4.6:0:5:1700003600:0:90:0:0\n");
    /* only the new patches were asked for */
    assert_int_equal(count_req("G daily-4.cdiff"), 1);
    assert_int_equal(count_req("G daily-5.cdiff"), 1);
    assert_int_equal(count_prefix("G daily-3.cdiff"), 0);
    assert_int_equal(count_prefix("G daily-2.cdiff"), 0);
    assert_int_equal(count_prefix("G daily-1.cdiff"), 0);
    /* versioned files first, then NAME.cvd, then the pointer */
    assert_true(ts_le(mtime_of("daily-4.cdiff"), mtime_of("daily-5.cdiff")));
    assert_true(ts_le(mtime_of("daily-5.cdiff"), mtime_of("daily-5.cvd")));
    assert_true(ts_le(mtime_of("daily-5.cvd"), mtime_of("daily.version")));
    assert_true(has_msg(CF_MSG_DEBUG, "patches 4..5 reproduce version 5"));
    /* a third run with nothing new changes nothing but the time */
    U.now = NOW + 7200;
    assert_int_equal(run(5, 0, 0), 0);
    assert_int_equal(count_prefix("G "), 0);
    expect_text("daily.version", "5:1700007200\n");
    assert_true(has_msg(CF_MSG_INFO, "daily is up-to-date in the mirror (version: 5"));
}

static void window_is_pruned(void **state)
{
    (void)state;
    up_publish(5, 1);
    assert_int_equal(run(5, 3, 0), 0);
    assert_int_equal(count_files("daily-", ".cdiff"), 3);
    assert_true(exists("daily-3.cdiff") && exists("daily-4.cdiff") && exists("daily-5.cdiff"));
    assert_int_equal(count_prefix("G daily-2.cdiff"), 0); /* below the window: not asked */
    up_publish(8, 6);
    assert_int_equal(run(8, 3, 0), 0);
    assert_int_equal(count_files("daily-", ".cdiff"), 3);
    assert_true(exists("daily-6.cdiff") && exists("daily-7.cdiff") && exists("daily-8.cdiff"));
    assert_false(exists("daily-5.cdiff"));
    assert_false(exists("daily-5.cvd"));
    assert_int_equal(count_files("daily-", ".cvd"), 1);
    expect_same("daily.cvd", cvd(8));
}

static void backfill_stops_at_gap(void **state)
{
    (void)state;
    up_publish(40, 30);
    assert_int_equal(run(40, 0, 0), 0);
    assert_int_equal(count_files("daily-", ".cdiff"), 11);
    assert_true(exists("daily-30.cdiff"));
    assert_false(exists("daily-29.cdiff"));
    /* one batch of 16 (40..25) found the gap; nothing below was asked */
    assert_int_equal(count_req("G daily-25.cdiff"), 1);
    assert_int_equal(count_prefix("G daily-24.cdiff"), 0);
    assert_int_equal(count_prefix("G daily-1.cdiff"), 0);
}

static void corrupt_cdiff_changes_nothing(void **state)
{
    (void)state;
    up_publish(3, 2);
    assert_int_equal(run(3, 0, 1), 0);
    cf_buf before = CF_BUF_INIT, after = CF_BUF_INIT;
    snapshot(&before);
    up_publish(5, 4);
    cf_buf bad = CF_BUF_INIT;
    cf_buf_set(&bad, cdiff(5)->p, cdiff(5)->n);
    bad.p[bad.n / 2] ^= 0x20;
    up_put("daily-5.cdiff", &bad);
    assert_int_equal(run(5, 0, 1), CF_FC_EBADCVD);
    snapshot(&after);
    assert_true(before.n == after.n && memcmp(before.p, after.p, before.n) == 0);
    assert_true(has_msg(CF_MSG_ERROR, UP "daily-5.cdiff"));
    assert_true(has_msg(CF_MSG_ERROR, "still publishing version 3"));
    /* no temporaries left either */
    DIR *d = opendir(DIRP);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        assert_false(strstr(de->d_name, ".tmp"));
    closedir(d);
    cf_buf_free(&bad);
    cf_buf_free(&before);
    cf_buf_free(&after);
}

static void inconsistent_patch_is_refused(void **state)
{
    (void)state;
    up_publish(3, 2);
    assert_int_equal(run(3, 0, 0), 0);
    cf_buf before = CF_BUF_INIT, after = CF_BUF_INIT;
    snapshot(&before);
    up_publish(4, 4);
    /* validly signed, but it leads to another version 4 than daily-4.cvd */
    cf_buf other = CF_BUF_INIT;
    make_cdiff(4, "-x", &other);
    up_put("daily-4.cdiff", &other);
    assert_int_equal(run(4, 0, 0), CF_FC_EBADCVD);
    snapshot(&after);
    assert_true(before.n == after.n && memcmp(before.p, after.p, before.n) == 0);
    assert_true(has_msg(CF_MSG_ERROR, "do not reproduce the manifest of daily-4.cvd"));
    cf_buf_free(&other);
    cf_buf_free(&before);
    cf_buf_free(&after);
}

static void stale_plain_name_is_not_used(void **state)
{
    (void)state;
    up_publish(5, 1);
    up_put("daily.cvd", cvd(3)); /* a cache in front of upstream */
    assert_int_equal(run(5, 0, 0), 0);
    expect_same("daily.cvd", cvd(5));
    expect_text("daily.version", "5:1700000000\n");
    assert_int_equal(count_prefix("N daily.cvd"), 0);
}

static void missing_versioned_name_tries_query(void **state)
{
    (void)state;
    up_publish(5, 4);
    up_del("daily-5.cvd");
    up_put("daily.cvd", cvd(3));
    up_put("daily.cvd?version=5", cvd(5));
    assert_int_equal(run(5, 0, 0), 0);
    long a = req_index("G daily-5.cvd"), b = req_index("G daily.cvd?version=5");
    assert_true(a >= 0 && b > a);
    assert_int_equal(count_prefix("N daily.cvd"), 0);
    expect_same("daily-5.cvd", cvd(5));
    expect_same("daily.cvd", cvd(5));
}

static void only_stale_copies_fail_precisely(void **state)
{
    (void)state;
    up_publish(3, 2);
    assert_int_equal(run(3, 0, 0), 0);
    cf_buf before = CF_BUF_INIT, after = CF_BUF_INIT;
    snapshot(&before);
    up_publish(5, 4);
    up_del("daily-5.cvd");
    up_put("daily.cvd", cvd(4)); /* static server: ?version=5 gets this too */
    int rc = run(5, 0, 0);
    assert_int_equal(rc, CF_FC_EMIRRORNOTSYNC);
    assert_int_equal(count_req("N daily.cvd"), 1); /* last resort, with no-cache headers */
    assert_true(has_msg(CF_MSG_WARN, "mirror/cache served version 4, advertised 5"));
    snapshot(&after);
    assert_true(before.n == after.n && memcmp(before.p, after.p, before.n) == 0);
    cf_buf_free(&before);
    cf_buf_free(&after);
}

static void probe_finds_version(void **state)
{
    (void)state;
    up_publish(4, 3);
    assert_int_equal(run(0, 0, 0), 0);
    assert_int_equal(count_req("R daily.cvd"), 1);
    expect_same("daily.cvd", cvd(4));
    expect_text("daily.version", "4:1700000000\n");
}

/* Upstream behind a cache that kept an old daily.cvd (remote.h): with the
 * mirror at version 2, the next patch proves the header stale and the patch
 * window tells how far upstream is. */
static void stale_upstream_header(void **state)
{
    (void)state;
    up_publish(2, 2);
    assert_int_equal(run(0, 0, 0), 0);
    expect_same("daily.cvd", cvd(2));
    up_publish(5, 2);
    up_put("daily.cvd", cvd(2)); /* what the cache still answers */
    assert_int_equal(run(0, 0, 0), 0);
    expect_same("daily.cvd", cvd(5));
    assert_true(has_msg(CF_MSG_WARN, "is stale: says 2, daily-5.cdiff is published"));
}

/* The pointer of an upstream clamfresh mirror is read past any cache. */
static void upstream_pointer(void **state)
{
    (void)state;
    up_publish(4, 3);
    up_put("daily.cvd", cvd(3));
    cf_buf p = CF_BUF_INIT;
    cf_buf_set(&p, "4:1700000000\n", 13);
    up_put("daily.version", &p);
    cf_buf_free(&p);
    assert_int_equal(run(0, 0, 0), 0);
    expect_same("daily.cvd", cvd(4));
    assert_true(has_msg(CF_MSG_WARN, "is stale: says 3, daily.version says 4"));
}

static void forbidden_stops(void **state)
{
    (void)state;
    up_publish(4, 3);
    U.status = 403;
    assert_int_equal(run(4, 0, 0), CF_FC_EFORBIDDEN);
    assert_int_equal(U.nreq, 1);
    assert_false(exists("daily.cvd"));
    assert_false(exists("daily.version"));
}

/* A 403 upstream gets the client's reaction: a 24 h cool-down in the state,
 * and the next mirror run asks nothing while it lasts. */
static void forbidden_cools_down(void **state)
{
    (void)state;
    up_publish(4, 3);
    cf_state st;
    memset(&st, 0, sizeof st);
    RUN_STATE = &st;
    U.status = 403;
    assert_int_equal(run(4, 0, 0), CF_FC_EFORBIDDEN);
    assert_true(st.retry_after >= U.now + CF_COOLDOWN_403 - 1);
    assert_true(has_msg(CF_MSG_WARN, CF_STATE_MSG_403));
    U.status = 0;
    U.now += 3600;
    assert_int_equal(run(4, 0, 0), 0);
    assert_int_equal(U.nreq, 0);
    assert_true(has_msg(CF_MSG_WARN, CF_STATE_MSG_PREVIOUS));
    assert_false(exists("daily.cvd"));
    U.now += CF_COOLDOWN_403;
    assert_int_equal(run(4, 0, 0), 0);
    expect_same("daily.cvd", cvd(4));
    RUN_STATE = NULL;
}

static void unchecked_sign_not_published(void **state)
{
    (void)state;
    up_publish(3, 3);
    cf_buf junk = CF_BUF_INIT;
    cf_buf_set(&junk, "#clamsign-1.0\n230::pkcs7-pem:AAAA\n", 34);
    up_put("daily-3.cvd.sign", &junk);
    up_put("daily-3.cdiff.sign", &junk);
    assert_int_equal(run(3, 0, 0), 0);
    assert_true(exists("daily-3.cvd"));
    assert_false(exists("daily-3.cvd.sign"));
    assert_false(exists("daily-3.cdiff.sign"));
    cf_buf_free(&junk);
}

/* The ClamAV-signed vectors: .sign files that verify are published with their
 * files, and the real cdiffs reproduce the real manifest of version 3. */
static void real_vectors_with_signs(void **state)
{
    (void)state;
    if (!cf_test_vectors_dir()) {
        skip();
        return;
    }
    cf_trust builtin = {0};
    cf_certstore *certs = NULL;
    cf_err e = {0};
    assert_int_equal(cf_trust_init_builtin(&builtin, &e), CF_OK);
    assert_int_equal(cf_certstore_new(&certs, &e), CF_OK);
    cf_buf pem = CF_BUF_INIT;
    cf_test_read_vector("clamav-test.crt", &pem);
    assert_int_equal(cf_certstore_add_pem(certs, pem.p, pem.n, "clamav-test.crt", &e), CF_OK);
    /* inside the test root's validity, whatever the date of the run */
    cf_verifyctx ctx = {.trust = &builtin, .certs = certs, .flevel = 230, .now = 1750000000};
    RUN_DB = "test";
    RUN_CTX = &ctx;
    static const char *const names[] = {"test-1.cvd",        "test-1.cvd.sign", "test-2.cdiff",
                                        "test-2.cdiff.sign", "test-3.cdiff",    "test-3.cdiff.sign",
                                        "test-3.cvd",        "test-3.cvd.sign"};
    cf_buf b = CF_BUF_INIT;
    for (size_t i = 0; i < 2; i++) {
        b.n = 0;
        cf_test_read_vector(names[i], &b);
        up_put(names[i], &b);
    }
    b.n = 0;
    cf_test_read_vector("test-1.cvd", &b);
    up_put("test.cvd", &b);
    assert_int_equal(run(1, 0, 0), 0);
    expect_same("test-1.cvd.sign", &up_find("test-1.cvd.sign")->data);
    expect_same("test.cvd", &b);
    for (size_t i = 2; i < 8; i++) {
        b.n = 0;
        cf_test_read_vector(names[i], &b);
        up_put(names[i], &b);
    }
    up_put("test.cvd", &up_find("test-3.cvd")->data);
    assert_int_equal(run(3, 0, 0), 0);
    for (size_t i = 2; i < 8; i++)
        expect_same(names[i], &up_find(names[i])->data);
    expect_same("test.cvd", &up_find("test-3.cvd")->data);
    assert_false(exists("test-1.cvd"));
    assert_false(exists("test-1.cvd.sign"));
    assert_true(has_msg(CF_MSG_DEBUG, "patches 2..3 reproduce version 3"));
    expect_text("test.version", "3:1700000000\n");
    RUN_DB = "daily";
    RUN_CTX = &VCTX;
    cf_buf_free(&b);
    cf_buf_free(&pem);
    cf_certstore_free(certs);
    cf_trust_free(&builtin);
}

static void pointer_parse(void **state)
{
    (void)state;
    uint32_t v = 0;
    time_t t = 0;
    cf_err e = {0};
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"27450:1731513540\n", 17, &v, &t, &e), CF_OK);
    assert_int_equal(v, 27450);
    assert_int_equal((long long)t, 1731513540LL);
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"62", 2, &v, &t, &e), CF_OK);
    assert_int_equal(v, 62);
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"", 0, &v, &t, &e), CF_EFORMAT);
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"5:\n", 3, &v, &t, &e), CF_EFORMAT);
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"5x\n", 3, &v, &t, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "offset 1"));
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"99999999999", 11, &v, &t, &e), CF_EFORMAT);
    assert_int_equal(cf_remote_pointer_parse((const uint8_t *)"5\n\n", 3, &v, &t, &e), CF_EFORMAT);
}

static void nginx_text(void **state)
{
    (void)state;
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    assert_int_equal(cf_mirror_nginx_text("/srv/clamav", &b, &e), CF_OK);
    cf_buf_append(&b, "", 1);
    assert_non_null(strstr((const char *)b.p, "root \"/srv/clamav\";"));
    assert_non_null(strstr((const char *)b.p, "immutable"));
    assert_non_null(strstr((const char *)b.p, "no-cache"));
    b.n = 0;
    assert_int_equal(cf_mirror_nginx_text("/srv/a\"b", &b, &e), CF_EINVAL);
    assert_int_equal(cf_mirror_nginx_text("/srv/$x", &b, &e), CF_EINVAL);
    cf_buf_free(&b);
}

int main(void)
{
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &KEY, &e) != CF_OK) {
        fprintf(stderr, "keygen: %s\n", e.msg);
        return 1;
    }
    TRUST.cvd = TRUST.info = TRUST.cdiff = KEY;
    VCTX.trust = &TRUST;
    VCTX.flevel = 230;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_run_publishes, setup, teardown),
        cmocka_unit_test_setup_teardown(second_run_adds_patches, setup, teardown),
        cmocka_unit_test_setup_teardown(window_is_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(backfill_stops_at_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_cdiff_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(inconsistent_patch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_plain_name_is_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_versioned_name_tries_query, setup, teardown),
        cmocka_unit_test_setup_teardown(only_stale_copies_fail_precisely, setup, teardown),
        cmocka_unit_test_setup_teardown(probe_finds_version, setup, teardown),
        cmocka_unit_test_setup_teardown(forbidden_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(unchecked_sign_not_published, setup, teardown),
        cmocka_unit_test_setup_teardown(real_vectors_with_signs, setup, teardown),
        cmocka_unit_test(pointer_parse),
        cmocka_unit_test_setup_teardown(forbidden_cools_down, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_upstream_header, setup, teardown),
        cmocka_unit_test_setup_teardown(upstream_pointer, setup, teardown),
        cmocka_unit_test(nginx_text),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < MAXV; i++) {
        cf_buf_free(&CVD[i]);
        cf_buf_free(&CDIFF[i]);
        if (HAVE_IMG[i])
            cf_image_free(&IMG[i]);
    }
    cf_rsakey_free(KEY);
    return rc;
}
