/* The streaming stages (dbstream.h) against the in-memory readers they
 * replace: for the same bytes, in every chunking, the same verdict, code and
 * message, across a systematic set of damaged inputs; and the bounds hold
 * before the memory is spent. */
#include "testutil.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/dsig.h"
#include "clamfresh/gz.h"
#include "clamfresh/info.h"
#include "clamfresh/tarball.h"
#include "clamfresh/verify.h"

static cf_rsakey *key, *other;
static cf_trust trust;

static const size_t k_chunks[] = {1, 7, 512, 4096, 0 /* whole */};
#define NCHUNKS (sizeof(k_chunks) / sizeof(k_chunks[0]))

static int setup(void **state)
{
    (void)state;
    cf_err e = {0};
    if (cf_rsakey_generate(2048, &key, &e) != CF_OK || cf_rsakey_generate(2048, &other, &e) != CF_OK)
        return -1;
    trust.cvd = key;
    trust.info = key;
    trust.cdiff = key;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_rsakey_free(key);
    cf_rsakey_free(other);
    return 0;
}

static cf_verifyctx ctx_of(const cf_trust *t)
{
    cf_verifyctx c = {.trust = t, .certs = NULL, .flevel = 230, .fips = 0, .now = 0};
    return c;
}

static void sha256_of(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

/* ---- fixtures ---- */

static cf_cvdhdr hdr_v(uint32_t version)
{
    cf_cvdhdr h;
    memset(&h, 0, sizeof h);
    strcpy(h.time, "27 Nov 2026 10-00 +0000");
    h.version = version;
    h.sigs = 2;
    h.flevel = 90;
    strcpy(h.md5, "X");
    strcpy(h.dsig, "X");
    strcpy(h.builder, "tester");
    h.stime = 1790000000 + version;
    return h;
}

/* COPYING, a signed t.info, t.ndb, t.hdb (1500 bytes: several blocks) and an unlisted-safe README. */
static void image_make(cf_image *img, const cf_rsakey *infokey)
{
    cf_err e = {0};
    cf_image_init(img);
    assert_int_equal(cf_image_put(img, "COPYING", "licence text\n", 13, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "t.ndb", "Sig.A:0:*:41424344\n", 19, &e), CF_OK);
    char hdb[1500];
    for (size_t i = 0; i < sizeof hdb; i++)
        hdb[i] = (char)('a' + i % 26);
    hdb[sizeof hdb - 1] = '\n';
    assert_int_equal(cf_image_put(img, "t.hdb", hdb, sizeof hdb, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "README", "not a database file\n", 20, &e), CF_OK);
    img->hdr = hdr_v(7);
    assert_int_equal(cf_info_build(img, "t", &img->hdr, infokey, &e), CF_OK);
}

/* A CVD as cvdtool builds it (body gzip'd or plain), dsig by dsigkey. */
static void cvd_make(const cf_image *img, int gzip, const cf_rsakey *dsigkey, cf_buf *out)
{
    cf_err e = {0};
    cf_buf body = CF_BUF_INIT, sig = CF_BUF_INIT;
    assert_int_equal(cf_cvd_body_make(img, gzip, &body, &e), CF_OK);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen;
    assert_int_equal(EVP_Digest(body.p, body.n, md, &mdlen, EVP_md5(), NULL), 1);
    cf_cvdhdr h = img->hdr;
    for (int i = 0; i < 16; i++)
        snprintf(h.md5 + 2 * i, 3, "%02x", md[i]);
    assert_int_equal(cf_dsig_sign_md5(dsigkey, md, &sig, &e), CF_OK);
    memcpy(h.dsig, sig.p, sig.n + 1);
    out->n = 0;
    assert_int_equal(cf_cvd_assemble(&h, &body, out, &e), CF_OK);
    cf_buf_free(&body);
    cf_buf_free(&sig);
}

static void cld_make(const cf_image *img, int gzip, cf_buf *out)
{
    cf_err e = {0};
    out->n = 0;
    assert_int_equal(cf_cld_write(img, gzip, out, &e), CF_OK);
}

/* ---- the reference verdicts ---- */

enum mode { M_CVD, M_CVD_SIGNED, M_CLD };

/* cf_verify_cvd with its .sign accepted: the same steps without the legacy
 * route (a .sign that verifies cannot be made for every damaged input). */
static cf_code ref_cvd_signed(const cf_verifyctx *c, const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    cf_image_init(img);
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes exceeds the database size limit", n);
    cf_cvdhdr h;
    cf_code rc = cf_cvdhdr_parse(p, n, &h, e);
    if (rc != CF_OK)
        return rc;
    if (n <= CF_HDR_SIZE)
        return cf_err_set(e, CF_EFORMAT, "truncated: %zu bytes, no body after the header", n);
    return cf_verify_cld(c, p, n, img, e);
}

static cf_code ref_verdict(const cf_verifyctx *c, enum mode m, const uint8_t *p, size_t n, cf_cvdhdr *h,
                           cf_err *e)
{
    cf_image img;
    cf_code rc;
    if (m == M_CVD)
        rc = cf_verify_cvd(c, p, n, NULL, 0, &img, NULL, e);
    else if (m == M_CVD_SIGNED)
        rc = ref_cvd_signed(c, p, n, &img, e);
    else
        rc = cf_verify_cld(c, p, n, &img, e);
    *h = img.hdr;
    cf_image_free(&img);
    return rc;
}

static cf_code scan(const cf_verifyctx *c, enum mode m, const uint8_t *p, size_t n, size_t chunk,
                    cf_cvdhdr *h, cf_err *e)
{
    cf_dbscan *s = NULL;
    cf_code rc = cf_dbscan_new(c, m != M_CLD, m == M_CVD_SIGNED, &s, e);
    assert_int_equal(rc, CF_OK);
    if (chunk == 0)
        chunk = n ? n : 1;
    cf_code frc = CF_OK;
    for (size_t off = 0; off < n && frc == CF_OK; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        frc = cf_dbscan_feed(s, p + off, k, e);
        if (off + k >= CF_HDR_SIZE && frc == CF_OK && off < CF_HDR_SIZE) {
            /* the header is known as soon as 512 bytes are in (when it parses) */
            cf_cvdhdr hh;
            cf_err he = {0};
            if (cf_cvdhdr_parse(p, CF_HDR_SIZE, &hh, &he) == CF_OK)
                assert_non_null(cf_dbscan_header(s));
        }
    }
    cf_err fe = {0};
    rc = cf_dbscan_finish(s, h, &fe);
    if (frc != CF_OK) {
        /* an early verdict is the final one */
        assert_int_equal(rc, frc);
        assert_string_equal(fe.msg, e->msg);
    }
    *e = fe;
    cf_dbscan_free(s);
    return rc;
}

static size_t g_compared;

/* Same code, message and header as the in-memory path, in every chunking
 * (byte by byte for one input in eight above 2 KiB, to keep the run short). */
static void same_verdict(const cf_verifyctx *c, enum mode m, const uint8_t *p, size_t n, const char *what)
{
    cf_err re = {0};
    cf_cvdhdr rh;
    cf_code want = ref_verdict(c, m, p, n, &rh, &re);
    for (size_t i = 0; i < NCHUNKS; i++) {
        if (k_chunks[i] == 1 && n > 2048 && g_compared % 8 != 0)
            continue;
        cf_err se = {0};
        cf_cvdhdr sh;
        cf_code got = scan(c, m, p, n, k_chunks[i], &sh, &se);
        if (got != want || (want != CF_OK && strcmp(se.msg, re.msg) != 0))
            fail_msg("%s (mode %d, %zu bytes, chunk %zu): in memory %d '%s', streamed %d '%s'", what, (int)m,
                     n, k_chunks[i], (int)want, re.msg, (int)got, se.msg);
        if (want == CF_OK)
            assert_memory_equal(&sh, &rh, sizeof sh);
    }
    g_compared++;
}

/* Every systematic corruption of one container. */
/* thorough: every truncation (else every one through the first blocks, then a
 * stride); flip_stride: which body bytes get a flipped bit. */
static void same_verdict_damaged(const cf_verifyctx *c, enum mode m, const cf_buf *good, int thorough,
                                 size_t flip_stride)
{
    char what[96];
    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_buf_set(&b, good->p, good->n), CF_OK);
    same_verdict(c, m, b.p, b.n, "intact");
    /* every header byte flipped */
    for (size_t i = 0; i < CF_HDR_SIZE && i < b.n; i++) {
        b.p[i] ^= 0x01;
        snprintf(what, sizeof what, "header byte %zu flipped", i);
        same_verdict(c, m, b.p, b.n, what);
        b.p[i] ^= 0x01;
    }
    /* truncations: all of the header and the first blocks, then a stride */
    for (size_t cut = 0; cut < b.n; cut += (cut < 1200 || thorough) ? 1 : 37) {
        snprintf(what, sizeof what, "truncated to %zu bytes", cut);
        same_verdict(c, m, b.p, cut, what);
    }
    /* every body byte flipped (each bit position in turn) */
    for (size_t i = CF_HDR_SIZE; i < b.n; i += flip_stride) {
        uint8_t bit = (uint8_t)(1u << (i % 8));
        b.p[i] ^= bit;
        snprintf(what, sizeof what, "body byte %zu flipped", i);
        same_verdict(c, m, b.p, b.n, what);
        b.p[i] ^= bit;
    }
    cf_buf_free(&b);
}

/* ---- cf_dbscan ---- */

static void test_scan_fixtures_damaged(void **state)
{
    (void)state;
    cf_verifyctx c = ctx_of(&trust);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT;
    for (int gzip = 0; gzip <= 1; gzip++) {
        cvd_make(&img, gzip, key, &f);
        /* by its dsig a CVD with any damaged body byte fails on the MD5: a sample suffices */
        same_verdict_damaged(&c, M_CVD, &f, 0, 7);
        same_verdict_damaged(&c, M_CVD_SIGNED, &f, 0, 1);
        cld_make(&img, gzip, &f);
        same_verdict_damaged(&c, M_CLD, &f, gzip, 1);
    }
    /* the legacy route's own refusals */
    cvd_make(&img, 1, other, &f);
    same_verdict(&c, M_CVD, f.p, f.n, "dsig by an untrusted key");
    c.fips = 1;
    cvd_make(&img, 1, key, &f);
    same_verdict(&c, M_CVD, f.p, f.n, "FIPS limits");
    same_verdict(&c, M_CVD_SIGNED, f.p, f.n, "FIPS limits, .sign accepted");
    cf_buf_free(&f);
    cf_image_free(&img);
    print_message("compared %zu inputs\n", g_compared);
}

/* Faults of the manifest, each in every container form. */
static void all_forms(const cf_verifyctx *c, const cf_image *img, const char *what)
{
    cf_buf f = CF_BUF_INIT;
    char w[128];
    for (int gzip = 0; gzip <= 1; gzip++) {
        snprintf(w, sizeof w, "%s (%s CVD)", what, gzip ? "gzip" : "plain");
        cvd_make(img, gzip, key, &f);
        same_verdict(c, M_CVD, f.p, f.n, w);
        same_verdict(c, M_CVD_SIGNED, f.p, f.n, w);
        cf_err e = {0};
        f.n = 0;
        /* a CLD's header is its .info's first line: not every fault can be written */
        if (cf_cld_write(img, gzip, &f, &e) == CF_OK) {
            snprintf(w, sizeof w, "%s (%s CLD)", what, gzip ? "gzip" : "plain");
            same_verdict(c, M_CLD, f.p, f.n, w);
        }
    }
    cf_buf_free(&f);
}

static void test_scan_manifest_faults(void **state)
{
    (void)state;
    cf_verifyctx c = ctx_of(&trust);
    cf_image img;
    cf_err e = {0};

    image_make(&img, key);
    all_forms(&c, &img, "intact");
    assert_int_equal(cf_image_put(&img, "extra.ndb", "Sig.X:0:*:4142\n", 15, &e), CF_OK);
    all_forms(&c, &img, "unlisted .ndb");
    cf_image_free(&img);

    image_make(&img, key);
    assert_int_equal(cf_image_remove(&img, "t.hdb", &e), CF_OK);
    all_forms(&c, &img, "listed member missing");
    cf_image_free(&img);

    image_make(&img, key);
    assert_int_equal(cf_image_put(&img, "t.ndb", "Sig.B:0:*:41424344\n", 19, &e), CF_OK);
    all_forms(&c, &img, "member changed, same size");
    assert_int_equal(cf_image_put(&img, "t.ndb", "Sig.B:0:*:4142434\n", 18, &e), CF_OK);
    all_forms(&c, &img, "member changed size");
    cf_image_free(&img);

    image_make(&img, other);
    all_forms(&c, &img, "DSIG by an untrusted key");
    cf_image_free(&img);

    image_make(&img, key);
    cf_cvdhdr h = img.hdr;
    h.version = 8;
    img.hdr = h; /* container header disagrees with the .info */
    all_forms(&c, &img, "header disagreement");
    assert_int_equal(cf_image_put(&img, "u.info", "ClamAV-VDB:x\n", 13, &e), CF_OK);
    all_forms(&c, &img, "two manifests");
    assert_int_equal(cf_image_remove(&img, "u.info", &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "t.info", "", 0, &e), CF_OK);
    all_forms(&c, &img, "empty manifest");
    assert_int_equal(cf_image_put(&img, "t.info", "junk\n", 5, &e), CF_OK);
    all_forms(&c, &img, "malformed manifest");
    assert_int_equal(cf_image_remove(&img, "t.info", &e), CF_OK);
    all_forms(&c, &img, "no manifest");
    cf_image_free(&img);
}

static void gzip_of(const uint8_t *p, size_t n, cf_buf *out)
{
    cf_err e = {0};
    assert_int_equal(cf_gz_deflate(p, n, 9, 1, out, &e), CF_OK);
}

static void test_scan_gzip_faults(void **state)
{
    (void)state;
    cf_verifyctx c = ctx_of(&trust);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT, t = CF_BUF_INIT;
    cld_make(&img, 1, &f);
    size_t n = f.n;
    /* trailing garbage, and a second gzip member */
    assert_int_equal(cf_buf_append(&f, "garbage", 7), CF_OK);
    same_verdict(&c, M_CLD, f.p, f.n, "gzip trailing garbage");
    same_verdict(&c, M_CVD_SIGNED, f.p, f.n, "gzip trailing garbage");
    f.n = n;
    gzip_of((const uint8_t *)"more", 4, &f);
    same_verdict(&c, M_CLD, f.p, f.n, "second gzip member");
    /* a tar fault inside a gzip with a gzip fault after it: gzip comes first */
    cld_make(&img, 0, &t);
    t.p[CF_HDR_SIZE + 600] ^= 0x20; /* t.info's header block checksum */
    f.n = 0;
    assert_int_equal(cf_buf_append(&f, t.p, CF_HDR_SIZE), CF_OK);
    gzip_of(t.p + CF_HDR_SIZE, t.n - CF_HDR_SIZE, &f);
    same_verdict(&c, M_CLD, f.p, f.n, "tar fault in gzip");
    assert_int_equal(cf_buf_append(&f, "x", 1), CF_OK);
    same_verdict(&c, M_CLD, f.p, f.n, "tar fault in gzip, then trailing garbage");
    f.n -= 20;
    same_verdict(&c, M_CLD, f.p, f.n, "tar fault in gzip, then truncated gzip");
    /* bodies that are neither */
    f.n = CF_HDR_SIZE;
    assert_int_equal(cf_buf_append(&f, "COPYINX and more", 16), CF_OK);
    same_verdict(&c, M_CLD, f.p, f.n, "neither gzip nor COPYING");
    for (size_t k = 1; k <= 7; k++) {
        f.n = CF_HDR_SIZE;
        assert_int_equal(cf_buf_append(&f, k <= 2 ? "\x1f\x8b" : "COPYING", k), CF_OK);
        same_verdict(&c, M_CLD, f.p, f.n, "short body");
        same_verdict(&c, M_CVD_SIGNED, f.p, f.n, "short body");
    }
    cf_buf_free(&f);
    cf_buf_free(&t);
    cf_image_free(&img);
}

/* A gzip member of count zero bytes appended to out (run-length matching:
 * quick to make, about 1000:1). */
static void bomb_append(uint64_t count, cf_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_RLE), Z_OK);
    static uint8_t zeros[1 << 20];
    uint64_t left = count;
    int flush;
    do {
        size_t k = left < sizeof zeros ? (size_t)left : sizeof zeros;
        left -= k;
        flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
        zs.next_in = zeros;
        zs.avail_in = (uInt)k;
        do {
            assert_int_equal(cf_buf_reserve(out, 65536), CF_OK);
            zs.next_out = out->p + out->n;
            zs.avail_out = 65536;
            deflate(&zs, flush);
            out->n += 65536 - zs.avail_out;
        } while (zs.avail_out == 0);
    } while (flush != Z_FINISH);
    deflateEnd(&zs);
}

/* 1 GiB + 1 of zeros behind a valid header: refused by the gzip bound with
 * cf_verify_cld's message, without the stream holding the output. */
static void test_scan_bomb(void **state)
{
    (void)state;
    cf_verifyctx c = ctx_of(&trust);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT;
    cld_make(&img, 1, &f);
    f.n = CF_HDR_SIZE;
    bomb_append(CF_MAX_DB_BYTES + 1, &f);
    cf_err se = {0}, re = {0};
    cf_image got;
    cf_code want = cf_verify_cld(&c, f.p, f.n, &got, &re);
    assert_int_equal(want, CF_ETOOBIG);
    cf_cvdhdr h;
    assert_int_equal(scan(&c, M_CLD, f.p, f.n, 0, &h, &se), CF_ETOOBIG);
    assert_string_equal(se.msg, re.msg);
    assert_int_equal(scan(&c, M_CLD, f.p, f.n, 4096, &h, &se), CF_ETOOBIG);
    assert_string_equal(se.msg, re.msg);
    cf_buf_free(&f);
    cf_image_free(&img);
}

static void test_scan_vectors(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL) {
        print_message("vectors absent (CF_VECTORS): skipped\n");
        skip();
    }
    cf_trust real;
    cf_err e = {0};
    assert_int_equal(cf_trust_init_builtin(&real, &e), CF_OK);
    cf_verifyctx c = ctx_of(&real);
    static const char *const names[] = {"test-1.cvd", "test-2.cvd", "test-3.cvd"};
    for (size_t i = 0; i < 3; i++) {
        cf_buf f = CF_BUF_INIT;
        cf_test_read_vector(names[i], &f);
        cf_cvdhdr h;
        cf_err se = {0};
        assert_int_equal(scan(&c, M_CVD, f.p, f.n, 4096, &h, &se), CF_OK);
        assert_int_equal(h.version, i + 1);
        /* the MD5 refuses every damaged body of a CVD: a sample suffices there */
        same_verdict_damaged(&c, M_CVD, &f, 0, 97);
        same_verdict_damaged(&c, M_CLD, &f, 0, 5);
        cf_buf_free(&f);
    }
    cf_trust_free(&real);
}

/* ---- cf_tarin ---- */

typedef struct collect {
    cf_image img;
    char cur[CF_MAX_NAME + 1];
    cf_buf data;
    int open;
} collect;

static cf_code c_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    collect *c = arg;
    (void)e;
    assert_false(c->open);
    snprintf(c->cur, sizeof c->cur, "%s", name);
    c->data.n = 0;
    c->open = 1;
    assert_true(size <= CF_MAX_DB_BYTES);
    return CF_OK;
}

static cf_code c_data(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    collect *c = arg;
    (void)e;
    assert_true(c->open);
    assert_int_equal(cf_buf_append(&c->data, p, n), CF_OK);
    return CF_OK;
}

static cf_code c_end(void *arg, cf_err *e)
{
    collect *c = arg;
    assert_true(c->open);
    c->open = 0;
    return cf_image_put(&c->img, c->cur, c->data.p, c->data.n, e);
}

static void same_tar(const uint8_t *p, size_t n, const char *what)
{
    cf_image want;
    cf_image_init(&want);
    cf_err re = {0};
    cf_code rc = cf_tar_read(p, n, &want, &re);
    for (size_t i = 0; i < NCHUNKS; i++) {
        size_t chunk = k_chunks[i] ? k_chunks[i] : (n ? n : 1);
        collect c;
        memset(&c, 0, sizeof c);
        cf_image_init(&c.img);
        cf_tarin_ops ops = {c_begin, c_data, c_end, &c};
        cf_tarin *t = NULL;
        cf_err se = {0};
        assert_int_equal(cf_tarin_new(&ops, &t, &se), CF_OK);
        cf_code got = CF_OK;
        for (size_t off = 0; off < n && got == CF_OK; off += chunk)
            got = cf_tarin_feed(t, p + off, n - off < chunk ? n - off : chunk, &se);
        if (got == CF_OK)
            got = cf_tarin_end(t, &se);
        if (got != rc || (rc != CF_OK && strcmp(re.msg, se.msg) != 0))
            fail_msg("%s (chunk %zu): cf_tar_read %d '%s', cf_tarin %d '%s'", what, chunk, (int)rc, re.msg,
                     (int)got, se.msg);
        if (rc == CF_OK) {
            assert_int_equal(c.img.nfiles, want.nfiles);
            for (size_t j = 0; j < want.nfiles; j++) {
                assert_string_equal(c.img.files[j].name, want.files[j].name);
                assert_int_equal(c.img.files[j].data.n, want.files[j].data.n);
                if (want.files[j].data.n)
                    assert_memory_equal(c.img.files[j].data.p, want.files[j].data.p, want.files[j].data.n);
            }
        }
        cf_tarin_free(t);
        cf_image_free(&c.img);
        cf_buf_free(&c.data);
    }
    cf_image_free(&want);
}

static void test_tarin_matches_tar_read(void **state)
{
    (void)state;
    cf_image img;
    image_make(&img, key);
    cf_err e = {0};
    assert_int_equal(cf_image_put(&img, "empty.cfg", "", 0, &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "block.ldb", NULL, 0, &e), CF_OK);
    uint8_t blk[512];
    memset(blk, 'x', sizeof blk);
    assert_int_equal(cf_image_put(&img, "block.ldb", blk, sizeof blk, &e), CF_OK);
    cf_buf t = CF_BUF_INIT;
    assert_int_equal(cf_tar_write(&img, NULL, &t, &e), CF_OK);
    char what[64];
    same_tar(t.p, t.n, "intact");
    same_tar(t.p, 0, "empty");
    for (size_t cut = 0; cut < t.n; cut++) {
        snprintf(what, sizeof what, "truncated to %zu", cut);
        same_tar(t.p, cut, what);
    }
    for (size_t i = 0; i < t.n; i++) {
        uint8_t bit = (uint8_t)(1u << (i % 8));
        t.p[i] ^= bit;
        snprintf(what, sizeof what, "byte %zu flipped", i);
        same_tar(t.p, t.n, what);
        t.p[i] ^= bit;
    }
    /* end blocks, then anything */
    size_t n = t.n;
    assert_int_equal(cf_buf_reserve(&t, 1536), CF_OK);
    memset(t.p + n, 0, 1024);
    memcpy(t.p + n + 1024, "trailing junk", 13);
    same_tar(t.p, n + 1024 + 13, "end blocks and junk");
    same_tar(t.p, n + 100, "partial zero block");
    /* a duplicate name */
    cf_buf d = CF_BUF_INIT;
    assert_int_equal(cf_buf_append(&d, t.p, n), CF_OK);
    assert_int_equal(cf_buf_append(&d, t.p, 1024), CF_OK);
    same_tar(d.p, d.n, "duplicate");
    cf_buf_free(&d);
    cf_buf_free(&t);
    cf_image_free(&img);
}

static void test_tarin_member_bound(void **state)
{
    (void)state;
    /* CF_MAX_MEMBERS + 1 empty members: refused on the last header */
    cf_buf t = CF_BUF_INIT;
    cf_err e = {0};
    for (int i = 0; i <= 4096; i++) {
        char name[32];
        uint8_t h[512];
        snprintf(name, sizeof name, "m%d.ndb", i);
        assert_int_equal(cf_tar_header_make(name, 0, h, &e), CF_OK);
        assert_int_equal(cf_buf_append(&t, h, sizeof h), CF_OK);
    }
    same_tar(t.p, t.n, "too many members");
    cf_buf_free(&t);
}

static void test_tar_header_make(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 511, 512, 513, 4096, 100000, 1048577};
    static const char *const names[] = {"COPYING", "daily.info", "x", "a-b_c.ldb"};
    uint8_t *data = calloc(1, 1048577);
    assert_non_null(data);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
            cf_image img;
            cf_image_init(&img);
            cf_err e = {0};
            assert_int_equal(cf_image_put(&img, names[j], data, sizes[i], &e), CF_OK);
            cf_buf t = CF_BUF_INIT;
            assert_int_equal(cf_tar_write(&img, NULL, &t, &e), CF_OK);
            uint8_t h[512];
            assert_int_equal(cf_tar_header_make(names[j], sizes[i], h, &e), CF_OK);
            assert_memory_equal(h, t.p, 512);
            assert_int_equal(t.n, 512 + sizes[i] + cf_tar_pad(sizes[i]));
            cf_buf_free(&t);
            cf_image_free(&img);
        }
    free(data);
    cf_err e = {0};
    uint8_t h[512];
    assert_int_equal(cf_tar_header_make("a/b", 1, h, &e), CF_EINVAL);
    assert_int_equal(cf_tar_header_make("ok", (uint64_t)CF_MAX_DB_BYTES + 1, h, &e), CF_ETOOBIG);
    assert_int_equal(cf_tar_pad(0), 0);
    assert_int_equal(cf_tar_pad(1), 511);
    assert_int_equal(cf_tar_pad(512), 0);
}

/* ---- gzip ---- */

typedef struct bufsink {
    cf_buf b;
    uint64_t got;
    int keep;
} bufsink;

static cf_code bs_write(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    bufsink *s = arg;
    s->got += n;
    if (s->keep && cf_buf_append(&s->b, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return CF_OK;
}

static cf_code gzin_run(const uint8_t *p, size_t n, size_t chunk, uint64_t max, bufsink *s, cf_err *e)
{
    cf_sink sink = {bs_write, s};
    cf_gzin *g = NULL;
    assert_int_equal(cf_gzin_new(max, &sink, &g, e), CF_OK);
    cf_code rc = CF_OK;
    for (size_t off = 0; off < n && rc == CF_OK; off += chunk)
        rc = cf_gzin_feed(g, p + off, n - off < chunk ? n - off : chunk, e);
    if (rc == CF_OK)
        rc = cf_gzin_end(g, e);
    assert_true(cf_gzin_total_out(g) <= max);
    cf_gzin_free(g);
    return rc;
}

static void test_gz_round_trip(void **state)
{
    (void)state;
    size_t n = 3 * 1024 * 1024 + 17;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    cf_test_srand(7);
    for (size_t i = 0; i < n; i++)
        data[i] = i < n / 2 ? (uint8_t)cf_test_rand() : (uint8_t) "freshclam"[i % 9];
    for (int filtered = 0; filtered <= 1; filtered++) {
        cf_buf want = CF_BUF_INIT;
        cf_err e = {0};
        assert_int_equal(cf_gz_deflate(data, n, 9, filtered, &want, &e), CF_OK);
        static const size_t chunks[] = {1000, 65536, 3 * 1024 * 1024 + 17};
        for (size_t c = 0; c < 3; c++) {
            bufsink s = {CF_BUF_INIT, 0, 1};
            cf_sink sink = {bs_write, &s};
            cf_gzout *g = NULL;
            assert_int_equal(cf_gzout_new(9, filtered, &sink, &g, &e), CF_OK);
            for (size_t off = 0; off < n; off += chunks[c])
                assert_int_equal(cf_gzout_feed(g, data + off, n - off < chunks[c] ? n - off : chunks[c], &e),
                                 CF_OK);
            assert_int_equal(cf_gzout_end(g, &e), CF_OK);
            cf_gzout_free(g);
            /* the same bytes as the in-memory writer */
            assert_int_equal(s.b.n, want.n);
            assert_memory_equal(s.b.p, want.p, want.n);
            bufsink back = {CF_BUF_INIT, 0, 1};
            assert_int_equal(gzin_run(s.b.p, s.b.n, chunks[c] / 3 + 1, n, &back, &e), CF_OK);
            assert_int_equal(back.b.n, n);
            assert_memory_equal(back.b.p, data, n);
            /* one byte under the output bound */
            bufsink cut = {CF_BUF_INIT, 0, 0};
            assert_int_equal(gzin_run(s.b.p, s.b.n, chunks[c], n - 1, &cut, &e), CF_ETOOBIG);
            assert_true(cut.got <= n - 1);
            cf_buf_free(&s.b);
            cf_buf_free(&back.b);
        }
        cf_buf_free(&want);
    }
    free(data);
}

/* The bound is enforced before the output exists: a bomb stops at max_out. */
static void test_gzin_bomb(void **state)
{
    (void)state;
    /* 256 MiB of zeros in about 256 KiB */
    cf_buf bomb = CF_BUF_INIT;
    bomb_append(256ULL << 20, &bomb);
    assert_true(bomb.n < 1024 * 1024);
    static const uint64_t bounds[] = {0, 1, 1000000, 64ULL << 20};
    for (size_t i = 0; i < 4; i++) {
        bufsink s = {CF_BUF_INIT, 0, 0};
        cf_err ge = {0};
        assert_int_equal(gzin_run(bomb.p, bomb.n, 4096, bounds[i], &s, &ge), CF_ETOOBIG);
        /* refused right at the bound: the sink got max_out bytes, never more */
        assert_int_equal(s.got, bounds[i]);
        char want[64];
        snprintf(want, sizeof want, "decompressed data exceeds %zu bytes", (size_t)bounds[i]);
        assert_string_equal(ge.msg, want);
    }
    cf_buf_free(&bomb);
}

/* gunzip of damaged members: the verdict of cf_gz_inflate (plus its caller's
 * one-member rule, which cf_gzin_end applies). */
static void same_gz(const uint8_t *p, size_t n, const char *what)
{
    cf_buf out = CF_BUF_INIT;
    cf_err re = {0};
    size_t used = 0;
    cf_code want = cf_gz_inflate(p, n, 1 << 20, &out, &used, &re);
    if (want == CF_OK && used != n)
        want = cf_err_set(&re, CF_EFORMAT,
                          "%zu bytes after the gzip member at offset %zu (only one member is allowed)",
                          n - used, used);
    for (size_t c = 0; c < NCHUNKS; c++) {
        bufsink s = {CF_BUF_INIT, 0, 1};
        cf_err se = {0};
        size_t chunk = k_chunks[c] ? k_chunks[c] : (n ? n : 1);
        cf_code got = gzin_run(p, n, chunk, 1 << 20, &s, &se);
        if (got != want || (want != CF_OK && strcmp(se.msg, re.msg) != 0))
            fail_msg("%s (chunk %zu): cf_gz_inflate %d '%s', cf_gzin %d '%s'", what, chunk, (int)want, re.msg,
                     (int)got, se.msg);
        if (want == CF_OK) {
            assert_int_equal(s.b.n, out.n);
            assert_memory_equal(s.b.p, out.p, out.n);
        }
        cf_buf_free(&s.b);
    }
    cf_buf_free(&out);
}

static void test_gzin_matches_inflate(void **state)
{
    (void)state;
    cf_buf z = CF_BUF_INIT;
    uint8_t text[3000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("Sig.A:0:*:414243\n"[i % 17] + (i / 500));
    gzip_of(text, sizeof text, &z);
    char what[64];
    for (size_t cut = 0; cut <= z.n; cut++) {
        snprintf(what, sizeof what, "cut to %zu", cut);
        same_gz(z.p, cut, what);
    }
    for (size_t i = 0; i < z.n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            z.p[i] ^= (uint8_t)(1u << bit);
            snprintf(what, sizeof what, "byte %zu bit %d flipped", i, bit);
            same_gz(z.p, z.n, what);
            z.p[i] ^= (uint8_t)(1u << bit);
        }
    }
    size_t n = z.n;
    assert_int_equal(cf_buf_append(&z, "junk", 4), CF_OK);
    same_gz(z.p, z.n, "trailing junk");
    z.n = n;
    gzip_of(text, 10, &z);
    same_gz(z.p, z.n, "second member");
    cf_buf_free(&z);
}

/* ---- cf_mcheck ---- */

static cf_code mcheck_image(const cf_image *img, const cf_cvdhdr *h, const cf_rsakey *k, int allow_unsigned,
                            cf_err *e)
{
    cf_mcheck *m = NULL;
    assert_int_equal(cf_mcheck_new(&m, e), CF_OK);
    cf_code rc = CF_OK;
    for (size_t i = 0; i < img->nfiles && rc == CF_OK; i++) {
        const cf_dbfile *f = &img->files[i];
        uint8_t d[32];
        sha256_of(f->data.p, f->data.n, d);
        rc = cf_mcheck_member(m, f->name, f->data.n, d, e);
        size_t len = strlen(f->name);
        if (rc == CF_OK && len >= 5 && strcasecmp(f->name + len - 5, ".info") == 0)
            rc = cf_mcheck_info(m, f->name, f->data.p, f->data.n, e);
    }
    if (rc == CF_OK)
        rc = cf_mcheck_finish(m, h, k, allow_unsigned, e);
    if (rc == CF_OK) {
        const cf_info *info = cf_mcheck_manifest(m);
        assert_non_null(info);
        for (size_t i = 0; i < info->n; i++)
            assert_ptr_equal(cf_mcheck_expect(m, info->entries[i].name), &info->entries[i]);
    } else {
        assert_null(cf_mcheck_manifest(m));
    }
    assert_null(cf_mcheck_expect(m, "no-such-member"));
    cf_mcheck_free(m);
    return rc;
}

static void same_mcheck(const cf_image *img, const char *what)
{
    const cf_cvdhdr good = hdr_v(7), bad = hdr_v(9);
    const cf_cvdhdr *hs[] = {NULL, &good, &bad};
    const cf_rsakey *ks[] = {key, other, NULL};
    for (size_t h = 0; h < 3; h++)
        for (size_t k = 0; k < 3; k++)
            for (int au = 0; au <= 1; au++) {
                cf_err re = {0}, se = {0};
                cf_code want = cf_image_verify_manifest(img, hs[h], ks[k], au, &re);
                cf_code got = mcheck_image(img, hs[h], ks[k], au, &se);
                if (got != want || strcmp(re.msg, se.msg) != 0)
                    fail_msg("%s (h%zu k%zu u%d): image %d '%s', mcheck %d '%s'", what, h, k, au, (int)want,
                             re.msg, (int)got, se.msg);
            }
}

static void test_mcheck_matches_image(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    image_make(&img, key);
    same_mcheck(&img, "intact");
    assert_int_equal(cf_image_put(&img, "z.NDB", "x\n", 2, &e), CF_OK);
    same_mcheck(&img, "unlisted");
    assert_int_equal(cf_image_remove(&img, "z.NDB", &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "t.hdb", "short\n", 6, &e), CF_OK);
    same_mcheck(&img, "size");
    assert_int_equal(cf_image_remove(&img, "t.hdb", &e), CF_OK);
    same_mcheck(&img, "missing");
    cf_image_free(&img);

    image_make(&img, NULL); /* unsigned, as a CUD */
    same_mcheck(&img, "unsigned");
    assert_int_equal(cf_image_put(&img, "two.Info", "x\n", 2, &e), CF_OK);
    same_mcheck(&img, "two manifests");
    assert_int_equal(cf_image_remove(&img, "two.Info", &e), CF_OK);
    assert_int_equal(cf_image_remove(&img, "t.info", &e), CF_OK);
    same_mcheck(&img, "none");
    cf_image_free(&img);

    /* a manifest over CF_MAX_INFO_BYTES is refused without being handed over */
    image_make(&img, key);
    size_t big = CF_MAX_INFO_BYTES + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, 'a', big);
    assert_int_equal(cf_image_put(&img, "t.info", text, big, &e), CF_OK);
    free(text);
    cf_err re = {0}, se = {0};
    cf_code want = cf_image_verify_manifest(&img, NULL, key, 0, &re);
    cf_mcheck *m = NULL;
    assert_int_equal(cf_mcheck_new(&m, &se), CF_OK);
    uint8_t d[32] = {0};
    for (size_t i = 0; i < img.nfiles; i++)
        assert_int_equal(cf_mcheck_member(m, img.files[i].name, img.files[i].data.n, d, &se), CF_OK);
    assert_int_equal(cf_mcheck_finish(m, NULL, key, 0, &se), want);
    assert_string_equal(se.msg, re.msg);
    cf_mcheck_free(m);
    cf_image_free(&img);
}

/* ---- files on disk: cf_verify_file and cf_signfile_verify_fd ---- */

#define T_2026_01_01 ((time_t)1767225600)

static char *g_dir;

static int file_of(const uint8_t *p, size_t n)
{
    if (g_dir == NULL)
        g_dir = cf_test_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/db", g_dir);
    unlink(path);
    cf_err e = {0};
    if (cf_file_write_new(path, p, n, 0644, &e) != CF_OK)
        fail_msg("%s: %s", path, e.msg);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    /* the checks read from offset 0 whatever the descriptor's position */
    assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
    return fd;
}

static void same_file_verdict(const cf_verifyctx *c, int is_cvd, const uint8_t *p, size_t n,
                              const cf_buf *sign, const char *what)
{
    cf_err re = {0}, fe = {0};
    cf_image img;
    cf_sigsource rhow = CF_SIGSRC_NONE, fhow = CF_SIGSRC_NONE;
    cf_code want = is_cvd
                       ? cf_verify_cvd(c, p, n, sign ? sign->p : NULL, sign ? sign->n : 0, &img, &rhow, &re)
                       : cf_verify_cld(c, p, n, &img, &re);
    if (!is_cvd && want == CF_OK)
        rhow = CF_SIGSRC_MANIFEST;
    int fd = file_of(p, n);
    cf_cvdhdr h;
    cf_code got = cf_verify_file(c, fd, is_cvd, sign ? sign->p : NULL, sign ? sign->n : 0, &h, &fhow, &fe);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
    close(fd);
    if (got != want || (want != CF_OK && strcmp(re.msg, fe.msg) != 0))
        fail_msg("%s: in memory %d '%s', from the file %d '%s'", what, (int)want, re.msg, (int)got, fe.msg);
    assert_int_equal(fhow, rhow);
    if (want == CF_OK)
        assert_memory_equal(&h, &img.hdr, sizeof h);
    cf_image_free(&img);
}

static void test_verify_file_fixtures(void **state)
{
    (void)state;
    cf_verifyctx c = ctx_of(&trust);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT;
    char what[64];
    for (int form = 0; form < 4; form++) {
        int is_cvd = form < 2, gzip = form % 2;
        if (is_cvd)
            cvd_make(&img, gzip, key, &f);
        else
            cld_make(&img, gzip, &f);
        same_file_verdict(&c, is_cvd, f.p, f.n, NULL, "intact");
        for (size_t i = 0; i < f.n; i += 29) {
            f.p[i] ^= 0x04;
            snprintf(what, sizeof what, "form %d, byte %zu flipped", form, i);
            same_file_verdict(&c, is_cvd, f.p, f.n, NULL, what);
            f.p[i] ^= 0x04;
        }
        for (size_t cut = 0; cut < f.n; cut += 53) {
            snprintf(what, sizeof what, "form %d, cut to %zu", form, cut);
            same_file_verdict(&c, is_cvd, f.p, cut, NULL, what);
        }
    }
    /* not a regular file */
    cf_err e = {0};
    int fd = open(g_dir, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(cf_verify_file(&c, fd, 1, NULL, 0, NULL, NULL, &e), CF_EIO);
    close(fd);
    cf_buf_free(&f);
    cf_image_free(&img);
}

static cf_certstore *vector_store(const char *certname)
{
    cf_buf pem = CF_BUF_INIT;
    cf_test_read_vector(certname, &pem);
    cf_certstore *s = NULL;
    cf_err e = {0};
    assert_int_equal(cf_certstore_new(&s, &e), CF_OK);
    assert_int_equal(cf_certstore_add_pem(s, pem.p, pem.n, certname, &e), CF_OK);
    cf_buf_free(&pem);
    return s;
}

static void same_sign_verdict(const cf_certstore *s, const cf_buf *sign, const uint8_t *p, size_t n,
                              unsigned flevel, const char *what)
{
    char rsig[CF_SIGN_SIGNER_MAX], fsig[CF_SIGN_SIGNER_MAX];
    cf_err re = {0}, fe = {0};
    cf_signverdict want =
        cf_signfile_verify(s, sign->p, sign->n, p, n, flevel, T_2026_01_01, rsig, sizeof rsig, &re);
    int fd = file_of(p, n);
    cf_signverdict got =
        cf_signfile_verify_fd(s, sign->p, sign->n, fd, flevel, T_2026_01_01, fsig, sizeof fsig, &fe);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
    close(fd);
    if (got != want || re.code != fe.code || strcmp(re.msg, fe.msg) != 0)
        fail_msg("%s: in memory %s '%s', from the file %s '%s'", what, cf_signverdict_str(want), re.msg,
                 cf_signverdict_str(got), fe.msg);
    assert_string_equal(rsig, fsig);
}

static void test_signfile_fd_vectors(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL) {
        print_message("vectors absent (CF_VECTORS): skipped\n");
        skip();
    }
    cf_certstore *test = vector_store("clamav-test.crt"), *prod = vector_store("clamav.crt");
    static const char *const names[] = {"test-1.cvd", "test-2.cvd", "test-2.cdiff", "test-3.cdiff"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cf_buf data = CF_BUF_INIT, sign = CF_BUF_INIT;
        char sname[64];
        snprintf(sname, sizeof sname, "%s.sign", names[i]);
        cf_test_read_vector(names[i], &data);
        cf_test_read_vector(sname, &sign);
        same_sign_verdict(test, &sign, data.p, data.n, 230, "valid");
        same_sign_verdict(prod, &sign, data.p, data.n, 230, "untrusted root");
        same_sign_verdict(test, &sign, data.p, data.n, 229, "f-level below");
        data.p[data.n / 2] ^= 0x01;
        same_sign_verdict(test, &sign, data.p, data.n, 230, "changed byte");
        data.p[data.n / 2] ^= 0x01;
        same_sign_verdict(test, &sign, data.p, data.n - 1, 230, "shorter");
        same_sign_verdict(test, &sign, data.p, 0, 230, "empty");
        sign.n /= 2;
        same_sign_verdict(test, &sign, data.p, data.n, 230, "damaged .sign");
        cf_buf_free(&data);
        cf_buf_free(&sign);
    }
    cf_certstore_free(test);
    cf_certstore_free(prod);
}

static void test_verify_file_vectors(void **state)
{
    (void)state;
    if (cf_test_vectors_dir() == NULL) {
        print_message("vectors absent (CF_VECTORS): skipped\n");
        skip();
    }
    cf_trust real;
    cf_err e = {0};
    assert_int_equal(cf_trust_init_builtin(&real, &e), CF_OK);
    cf_verifyctx c = ctx_of(&real);
    c.now = T_2026_01_01;
    c.certs = vector_store("clamav-test.crt");
    static const char *const names[] = {"test-1.cvd", "test-2.cvd"};
    char what[64];
    for (size_t i = 0; i < 2; i++) {
        cf_buf f = CF_BUF_INIT, sign = CF_BUF_INIT, bad = CF_BUF_INIT;
        char sname[64];
        snprintf(sname, sizeof sname, "%s.sign", names[i]);
        cf_test_read_vector(names[i], &f);
        cf_test_read_vector(sname, &sign);
        assert_int_equal(cf_buf_set(&bad, "#clamsign-1.0\n", 14), CF_OK);
        same_file_verdict(&c, 1, f.p, f.n, &sign, ".sign");
        same_file_verdict(&c, 1, f.p, f.n, NULL, "no .sign");
        same_file_verdict(&c, 1, f.p, f.n, &bad, "unusable .sign");
        same_file_verdict(&c, 0, f.p, f.n, &sign, "as a CLD");
        c.fips = 1;
        same_file_verdict(&c, 1, f.p, f.n, &sign, ".sign under FIPS");
        same_file_verdict(&c, 1, f.p, f.n, &bad, "unusable .sign under FIPS");
        c.fips = 0;
        for (size_t k = 0; k < f.n; k += 101) {
            f.p[k] ^= 0x02;
            snprintf(what, sizeof what, "%s byte %zu flipped", names[i], k);
            same_file_verdict(&c, 1, f.p, f.n, &sign, what);
            f.p[k] ^= 0x02;
        }
        for (size_t cut = 0; cut < f.n; cut += 211) {
            snprintf(what, sizeof what, "%s cut to %zu", names[i], cut);
            same_file_verdict(&c, 1, f.p, cut, &sign, what);
        }
        cf_buf_free(&f);
        cf_buf_free(&sign);
        cf_buf_free(&bad);
    }
    cf_certstore_free((cf_certstore *)c.certs);
    cf_trust_free(&real);
}

/* A test PKI made here: a root, and a signing certificate it issued. */
static struct {
    cf_buf root, leaf, leafkey, other;
} g_pki;

static void pem_of(int (*write)(BIO *, void *), void *obj, cf_buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(write(b, obj));
    char *p;
    long n = BIO_get_mem_data(b, &p);
    assert_int_equal(cf_buf_set(out, p, (size_t)n), CF_OK);
    BIO_free(b);
}

static int write_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static X509 *cert_make(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    const char *ext[][2] = {{"basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
                            {"keyUsage", ca ? "critical,keyCertSign" : "critical,digitalSignature"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, ext[i][0], ext[i][1]);
        assert_non_null(e);
        assert_true(X509_add_ext(x, e, -1));
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : k, EVP_sha256()) > 0);
    return x;
}

static void pki_make(void)
{
    if (g_pki.root.n != 0)
        return;
    EVP_PKEY *rk = EVP_RSA_gen(2048), *lk = EVP_RSA_gen(2048), *ok = EVP_RSA_gen(2048);
    assert_true(rk && lk && ok);
    X509 *root = cert_make("Test Root", rk, NULL, NULL, 1);
    X509 *leaf = cert_make("Test Signer", lk, root, rk, 0);
    X509 *oroot = cert_make("Other Root", ok, NULL, NULL, 1);
    pem_of(write_cert, root, &g_pki.root);
    pem_of(write_cert, leaf, &g_pki.leaf);
    pem_of(write_key, lk, &g_pki.leafkey);
    pem_of(write_cert, oroot, &g_pki.other);
    X509_free(root);
    X509_free(leaf);
    X509_free(oroot);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(lk);
    EVP_PKEY_free(ok);
}

static cf_certstore *pem_store(const cf_buf *pem)
{
    cf_certstore *s = NULL;
    cf_err e = {0};
    assert_int_equal(cf_certstore_new(&s, &e), CF_OK);
    assert_int_equal(cf_certstore_add_pem(s, pem->p, pem->n, "test", &e), CF_OK);
    return s;
}

static void sign_of(const uint8_t *p, size_t n, cf_buf *out)
{
    cf_err e = {0};
    out->n = 0;
    if (cf_signfile_make(p, n, g_pki.leaf.p, g_pki.leaf.n, g_pki.leafkey.p, g_pki.leafkey.n, NULL, 0, 230,
                         out, &e) != CF_OK)
        fail_msg("cf_signfile_make: %s", e.msg);
}

static void test_signfile_fd_fixtures(void **state)
{
    (void)state;
    pki_make();
    cf_certstore *s = pem_store(&g_pki.root), *wrong = pem_store(&g_pki.other);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT, sign = CF_BUF_INIT;
    cvd_make(&img, 1, key, &f);
    sign_of(f.p, f.n, &sign);
    same_sign_verdict(s, &sign, f.p, f.n, 230, "valid");
    same_sign_verdict(wrong, &sign, f.p, f.n, 230, "untrusted root");
    same_sign_verdict(s, &sign, f.p, f.n, 229, "f-level below");
    same_sign_verdict(s, &sign, f.p, f.n - 1, 230, "shorter");
    same_sign_verdict(s, &sign, f.p, 0, 230, "empty file");
    for (size_t i = 0; i < f.n; i += 97) {
        f.p[i] ^= 0x10;
        same_sign_verdict(s, &sign, f.p, f.n, 230, "changed byte");
        f.p[i] ^= 0x10;
    }
    sign.n -= 20;
    same_sign_verdict(s, &sign, f.p, f.n, 230, "damaged .sign");
    cf_buf_free(&f);
    cf_buf_free(&sign);
    cf_image_free(&img);
    cf_certstore_free(s);
    cf_certstore_free(wrong);
}

/* A .sign made for each damaged CVD: cf_verify_cvd takes the .sign route and
 * cf_verify_file must too, down to the manifest's verdict. */
static void test_verify_file_signed(void **state)
{
    (void)state;
    pki_make();
    cf_verifyctx c = ctx_of(&trust);
    c.certs = pem_store(&g_pki.root);
    cf_image img;
    image_make(&img, key);
    cf_buf f = CF_BUF_INIT, sign = CF_BUF_INIT;
    char what[64];
    for (int gzip = 0; gzip <= 1; gzip++) {
        cvd_make(&img, gzip, other, &f); /* a dsig nobody trusts: only the .sign can vouch */
        sign_of(f.p, f.n, &sign);
        same_file_verdict(&c, 1, f.p, f.n, &sign, "signed");
        int fd = file_of(f.p, f.n);
        cf_sigsource how = CF_SIGSRC_NONE;
        cf_err e = {0};
        assert_int_equal(cf_verify_file(&c, fd, 1, sign.p, sign.n, NULL, &how, &e), CF_OK);
        assert_int_equal(how, CF_SIGSRC_SIGNFILE);
        close(fd);
        c.fips = 1;
        same_file_verdict(&c, 1, f.p, f.n, &sign, "signed, FIPS");
        c.fips = 0;
        for (size_t i = 0; i < f.n; i += 41) {
            f.p[i] ^= 0x08;
            sign_of(f.p, f.n, &sign);
            snprintf(what, sizeof what, "gzip %d, byte %zu flipped, signed", gzip, i);
            same_file_verdict(&c, 1, f.p, f.n, &sign, what);
            f.p[i] ^= 0x08;
        }
        for (size_t cut = 0; cut < f.n; cut += 301) {
            sign_of(f.p, cut, &sign);
            snprintf(what, sizeof what, "gzip %d, cut to %zu, signed", gzip, cut);
            same_file_verdict(&c, 1, f.p, cut, &sign, what);
        }
    }
    cf_buf_free(&f);
    cf_buf_free(&sign);
    cf_image_free(&img);
    cf_certstore_free((cf_certstore *)c.certs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_header_make),
        cmocka_unit_test(test_tarin_matches_tar_read),
        cmocka_unit_test(test_tarin_member_bound),
        cmocka_unit_test(test_gz_round_trip),
        cmocka_unit_test(test_gzin_bomb),
        cmocka_unit_test(test_gzin_matches_inflate),
        cmocka_unit_test(test_mcheck_matches_image),
        cmocka_unit_test(test_scan_manifest_faults),
        cmocka_unit_test(test_scan_gzip_faults),
        cmocka_unit_test(test_scan_fixtures_damaged),
        cmocka_unit_test(test_scan_bomb),
        cmocka_unit_test(test_scan_vectors),
        cmocka_unit_test(test_verify_file_fixtures),
        cmocka_unit_test(test_signfile_fd_vectors),
        cmocka_unit_test(test_verify_file_vectors),
        cmocka_unit_test(test_signfile_fd_fixtures),
        cmocka_unit_test(test_verify_file_signed),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    cf_buf_free(&g_pki.root);
    cf_buf_free(&g_pki.leaf);
    cf_buf_free(&g_pki.leafkey);
    cf_buf_free(&g_pki.other);
    if (g_dir != NULL) {
        cf_test_rmtree(g_dir);
        free(g_dir);
    }
    return rc;
}
