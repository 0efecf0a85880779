/* The streaming patch engine against cf_cdiff_apply: the input is a chain of
 * up to four scripts separated by NUL bytes (a NUL can never be part of a
 * valid script), applied to a small fixed database image both ways. Both must
 * agree on success, and on success on every member's bytes; the engine's
 * messages must start with the label of a script; the sink never receives
 * more than the member's bytes plus the chain's and the image's bytes. Where
 * patch.c is stricter by design (MOVE cycles, more than CF_MAX_MEMBERS touched
 * names) or leaves the member count to its caller, only the engine's side is
 * checked. */
#include "fuzz.h"

#include "clamfresh/cdiff.h"
#include "clamfresh/image.h"
#include "clamfresh/limits.h"
#include "clamfresh/patch.h"

#define MAX_SCRIPTS 4

static void put(cf_image *img, const char *name, const char *text)
{
    cf_err e = {0};
    if (cf_image_put(img, name, text, strlen(text), &e) != CF_OK)
        abort();
}

static void make_image(cf_image *img)
{
    cf_image_init(img);
    put(img, "COPYING", "license text\n");
    /* Shaped like test-1.cvd's manifest, so the real test-2 script applies. */
    put(img, "test.info",
        "ClamAV-VDB:22 Jun 2021 14-58 -0400:1:0:81:X:X:micasnyd:1624388302\n"
        "test.ndb:240:0000000000000000000000000000000000000000000000000000000000000000\n"
        "test.ldb:44:1111111111111111111111111111111111111111111111111111111111111111\n"
        "DSIG:TFd9RBeu6wZwfMrWGsGH9WOSs1j\n");
    put(img, "test.hdb",
        "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
        "0123456789abcdef0123456789abcdef:10:Other\n"
        "fedcba9876543210fedcba9876543210:20:Third\n");
    put(img, "test.ndb", "Sig.One:0:*:414243\nSig.Two:0:*:444546\n");
    put(img, "test.cfg", "no final newline");
    put(img, "empty.ign2", "");
}

typedef struct counted {
    cf_buf data;
    size_t limit;
} counted;

static cf_code counted_write(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    counted *c = arg;
    CF_FUZZ_ASSERT(c->data.n + n <= c->limit);
    if (cf_buf_append(&c->data, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return CF_OK;
}

static cf_code run_member(cf_patchplan *plan, const char *name, const cf_buf *in, size_t chunk, size_t extra,
                          cf_image *out, cf_err *e)
{
    counted c = {CF_BUF_INIT, (in ? in->n : 0) + extra};
    cf_sink sink = {counted_write, &c};
    cf_memberpatch *mp = NULL;
    cf_code rc = cf_memberpatch_new(plan, name, in != NULL, &sink, &mp, e);
    for (size_t off = 0; rc == CF_OK && in != NULL && off < in->n; off += chunk)
        rc = cf_memberpatch_feed(mp, in->p + off, in->n - off < chunk ? in->n - off : chunk, e);
    int ex = 0;
    if (rc == CF_OK)
        rc = cf_memberpatch_end(mp, &ex, e);
    cf_memberpatch_free(mp);
    if (rc == CF_OK) {
        CF_FUZZ_ASSERT(ex == cf_patchplan_exists_after(plan, name, in != NULL));
        CF_FUZZ_ASSERT(ex || c.data.n == 0);
        if (ex && cf_image_put(out, name, c.data.p, c.data.n, e) != CF_OK)
            abort();
    }
    cf_buf_free(&c.data);
    return rc;
}

/* Streams img through the plan as a tar pass would: input members in order,
 * MOVE destinations deferred until their sources ended, created ones last. */
static cf_code stream(cf_patchplan *plan, const cf_image *img, size_t chunk, size_t extra, cf_image *out,
                      cf_err *e)
{
    size_t cnt = cf_patchplan_count(plan);
    const cf_buf **in = calloc(cnt + 1, sizeof(*in));
    uint8_t *done = calloc(cnt + 1, 1);
    if (in == NULL || done == NULL)
        abort();
    cf_code rc = CF_OK;
    for (size_t i = 0; i < img->nfiles; i++) {
        const cf_dbfile *f = &img->files[i];
        if (!cf_patchplan_touches(plan, f->name)) {
            if (cf_image_put(out, f->name, f->data.p, f->data.n, e) != CF_OK)
                abort();
            continue;
        }
        for (size_t j = 0; j < cnt; j++)
            if (strcmp(cf_patchplan_name(plan, j), f->name) == 0)
                in[j] = &f->data;
    }
    for (size_t left = cnt; rc == CF_OK && left > 0;) {
        size_t progress = 0;
        for (size_t j = 0; j < cnt && rc == CF_OK; j++) {
            if (done[j] || !cf_patchplan_ready(plan, cf_patchplan_name(plan, j)))
                continue;
            rc = run_member(plan, cf_patchplan_name(plan, j), in[j], chunk, extra, out, e);
            done[j] = 1;
            progress++;
            left--;
        }
        CF_FUZZ_ASSERT(rc != CF_OK || progress > 0); /* an acyclic plan always has a ready member */
    }
    free(in);
    free(done);
    return rc;
}

static int same_set(const cf_image *a, const cf_image *b)
{
    if (a->nfiles != b->nfiles)
        return 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        const cf_dbfile *f = cf_image_get(a, b->files[i].name);
        if (f == NULL || f->data.n != b->files[i].data.n ||
            (f->data.n && memcmp(f->data.p, b->files[i].data.p, f->data.n) != 0))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const labels[MAX_SCRIPTS] = {"p0", "p1", "p2", "p3"};
    if (size > 256 * 1024)
        return 0;
    cf_buf scripts[MAX_SCRIPTS];
    size_t n = 0, off = 0;
    while (n < MAX_SCRIPTS) {
        const uint8_t *nul = n + 1 < MAX_SCRIPTS && off < size ? memchr(data + off, 0, size - off) : NULL;
        size_t len = nul ? (size_t)(nul - (data + off)) : size - off;
        scripts[n].p = (uint8_t *)(uintptr_t)(data + off);
        scripts[n].n = len;
        scripts[n].cap = 0;
        n++;
        if (nul == NULL)
            break;
        off += len + 1;
    }
    cf_image img, ref, got;
    cf_err e = {0}, e2 = {0};
    make_image(&img);
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += scripts[i].n;
    for (size_t i = 0; i < img.nfiles; i++)
        extra += img.files[i].data.n;

    if (cf_image_copy(&ref, &img, &e) != CF_OK)
        abort();
    cf_code rr = CF_OK;
    for (size_t i = 0; i < n && rr == CF_OK; i++)
        rr = cf_cdiff_apply(&ref, scripts[i].p, scripts[i].n, &e);

    cf_patchplan *plan = NULL;
    cf_code rg = cf_patchplan_new(scripts, labels, n, &plan, &e2);
    cf_image_init(&got);
    if (rg == CF_OK)
        rg = stream(plan, &img, 1 + size % 7, extra, &got, &e2);
    cf_patchplan_free(plan);

    if (rg != CF_OK) {
        CF_FUZZ_ASSERT(e2.msg[0] == 'p' && e2.msg[1] >= '0' && e2.msg[1] < (char)('0' + n) &&
                       e2.msg[2] == ':');
    }
    /* Where the engine is stricter (patch.c), or leaves the member count to its caller. */
    int cycle = rg == CF_EUNSUPP && strstr(e2.msg, "cycle") != NULL;
    int touches = rg == CF_ETOOBIG && strstr(e2.msg, "the chain touches more than") != NULL;
    int count = rr == CF_ETOOBIG && rg == CF_OK && got.nfiles > CF_MAX_MEMBERS;
    if (!cycle && !touches && !count) {
        CF_FUZZ_ASSERT((rr == CF_OK) == (rg == CF_OK));
        if (rr == CF_OK)
            CF_FUZZ_ASSERT(same_set(&ref, &got));
    }
    cf_image_free(&img);
    cf_image_free(&ref);
    cf_image_free(&got);
    return 0;
}
