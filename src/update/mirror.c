/* Mirror mode (mirror.h): fetch, verify, then publish versioned files before the
 * two mutable names, so a client that sees a version anywhere can get every file
 * it needs, and no cache can hand it a wrong one. */
#include "clamfresh/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/info.h"
#include "clamfresh/install.h"
#include "clamfresh/limits.h"
#include "clamfresh/stage.h"

#define MSG_MAX 2048
#define URL_MAX CF_REMOTE_URL_MAX
#define NAME_MAX_DB 64 /* database names are short words (daily, main, ...) */

typedef struct mctx {
    const cf_mirror_opts *o;
    const cf_update_env *env;
    const char *db;
    unsigned keep;
    cf_remote *net; /* the run's conversation with upstream (remote.h) */
} mctx;

/* One patch of the window while it is being fetched and checked. */
typedef struct patch {
    uint32_t ver;
    cf_buf cdiff, sign; /* sign kept only when it verified as a valid .sign */
    cf_buf script;
    int have;
} patch;

/* Everything one attempt gathered, before anything is written. */
typedef struct staged {
    cf_buf cvd, cvdsign;
    cf_cvdhdr hdr;
    cf_image img;
    patch *p;     /* p[i] is the patch to version V - i */
    size_t np;    /* patches fetched (p[0..np) valid, possibly with have == 0) */
    uint32_t gap; /* highest version upstream lacks (404/empty), 0 = none seen */
    char why[MSG_MAX];
} staged;

/* ------------------------------------------------------------------ helpers */

#define say(c, ...) cf_remote_say((c)->net, __VA_ARGS__)

static void why(staged *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why(staged *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

static time_t now_of(const mctx *c)
{
    return cf_remote_now(c->net);
}

static void fetch(const mctx *c, const cf_http_req *reqs, cf_http_resp *resps, size_t n)
{
    cf_remote_fetch(c->net, reqs, resps, n, c->o->concurrency ? c->o->concurrency : 1);
}

/* Every URL buffer here is URL_MAX bytes. */
static int url_join(char *out, const char *mirror, const char *file)
{
    return cf_remote_url(out, mirror, file);
}

static int path_join(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* 403 and 429 end the run: asking again at once only prolongs the block. The
 * reaction (cool-down, help text) is the remote layer's, as for a client. */
static int blocked(const mctx *c, const cf_http_resp *r, const char *url)
{
    cf_http_outcome k = cf_remote_kind(r);
    if (k == CF_HTTP_FORBIDDEN) {
        const char *file = strrchr(url, '/');
        return cf_remote_forbidden(c->net, file ? file + 1 : url, url, r);
    }
    if (k == CF_HTTP_RATE_LIMITED)
        return cf_remote_rate_limited(c->net, r);
    return 0;
}

/* One request; a 403/429 gets the reaction and its code, else 0 with *r set
 * (freed by the caller). */
static int get_one(const mctx *c, const cf_http_req *req, cf_http_resp *r)
{
    fetch(c, req, r, 1);
    int b = blocked(c, r, req->url);
    if (b)
        cf_http_resp_free(r);
    return b;
}

static void staged_init(staged *s)
{
    memset(s, 0, sizeof *s);
    cf_image_init(&s->img);
}

static void staged_free(staged *s)
{
    cf_buf_free(&s->cvd);
    cf_buf_free(&s->cvdsign);
    cf_image_free(&s->img);
    for (size_t i = 0; i < s->np; i++) {
        cf_buf_free(&s->p[i].cdiff);
        cf_buf_free(&s->p[i].sign);
        cf_buf_free(&s->p[i].script);
    }
    free(s->p);
    memset(s, 0, sizeof *s);
}

/* ----------------------------------------------------------- pure helpers */

cf_code cf_mirror_nginx_text(const char *dir, cf_buf *out, cf_err *e)
{
    for (const char *q = dir; *q; q++)
        if (*q == '"' || *q == '\\' || *q == '$' || (unsigned char)*q < 0x20 || *q == 0x7f)
            return cf_err_set(e, CF_EINVAL, "%s: the directory name needs escaping for nginx", dir);
    cf_code rc =
        cf_buf_printf(out,
                      "# Cache headers for a clamfresh mirror directory (written by clamfresh --mirror).\n"
                      "# Include it inside the server { } block that serves the directory:\n"
                      "#     include \"%s/" CF_MIRROR_NGINX_CONF "\";\n"
                      "# Versioned names never change content: cacheable for a year, but only a\n"
                      "# success (no \"always\"): clients ask for the next patch before it exists,\n"
                      "# and a 404 kept for long would hide it. A 404 may be kept a minute.\n"
                      "# The mutable names (aliases) must be revalidated every time.\n"
                      "location ~ \"^/[A-Za-z0-9_]+-[0-9]+\\.(cvd|cdiff)(\\.sign)?$\" {\n"
                      "    root \"%s\";\n"
                      "    add_header Cache-Control \"public, max-age=31536000, immutable\";\n"
                      "    error_page 404 = @clamfresh_missing;\n"
                      "}\n"
                      "location ~ \"^/([A-Za-z0-9_]+\\.(cvd|cld|version)|current\\.txt)$\" {\n"
                      "    root \"%s\";\n"
                      "    add_header Cache-Control \"no-cache\" always;\n"
                      "}\n"
                      "location @clamfresh_missing {\n"
                      "    add_header Cache-Control \"public, max-age=60\" always;\n"
                      "    return 404;\n"
                      "}\n",
                      dir, dir, dir);
    return rc == CF_OK ? CF_OK : cf_err_set(e, CF_ENOMEM, "out of memory");
}

/* NAME.cvd gives the version; NAME-V.cvd must be there too, or the directory
 * does not hold a complete published state for it. */
uint32_t cf_mirror_published(const char *dir, const char *db)
{
    char name[128];
    cf_cvdhdr h;
    snprintf(name, sizeof name, "%s.cvd", db);
    if (!cf_stage_read_header(dir, name, &h))
        return 0;
    snprintf(name, sizeof name, "%s-%u.cvd", db, h.version);
    return cf_stage_exists(dir, name) ? h.version : 0;
}

/* ------------------------------------------------------------ version probe */

/* Upstream's version, learnt so that no cache between here and upstream can
 * make it stale (remote.h, "Version discovery"): the header of NAME.cvd, the
 * pointer and the next patch after P in one round; versioned files when
 * neither of the latter answers. */
static int probe(const mctx *c, uint32_t P, uint32_t *ver)
{
    char file[128], url[URL_MAX];
    snprintf(file, sizeof file, "%s.cvd", c->db);
    for (size_t m = 0; m < c->o->nmirrors; m++) {
        const char *mirror = c->o->mirrors[m];
        if (url_join(url, mirror, file) != 0)
            continue;
        cf_http_req reqs[3] = {{.url = url,
                                .range_head = 1,
                                .headers = cf_remote_nocache,
                                .max_bytes = CF_HDR_SIZE,
                                .stop_at_max = 1}};
        cf_discovery d;
        size_t extra = cf_discovery_prepare(c->net, &d, mirror, c->db, P, 1, 1, reqs + 1);
        cf_http_resp resps[3];
        fetch(c, reqs, resps, 1 + extra);
        cf_discovery_read(c->net, &d, c->db, resps + 1, extra);
        cf_http_resp *r = &resps[0];
        int b = blocked(c, r, url);
        for (size_t i = 1; i <= extra && !b; i++)
            b = blocked(c, &resps[i], reqs[i].url);
        uint32_t said = 0;
        cf_cvdhdr h;
        cf_err e = {0};
        if (b) {
            /* reaction done */
        } else if (cf_remote_kind(r) != CF_HTTP_OK) {
            char rs[512];
            cf_remote_reason(r, rs, sizeof rs);
            say(c, CF_MSG_WARN, "%s: can't read the upstream version from %s: %s", c->db, url, rs);
        } else if (r->body.n < CF_HDR_SIZE || cf_cvdhdr_parse(r->body.p, CF_HDR_SIZE, &h, &e) != CF_OK) {
            say(c, CF_MSG_WARN, "%s: malformed CVD header from %s: %s", c->db, url,
                r->body.n < CF_HDR_SIZE ? "shorter than 512 bytes" : e.msg);
        } else {
            said = h.version;
            say(c, CF_MSG_DEBUG, "%s database version obtained using HTTP GET: %u", c->db, h.version);
        }
        for (size_t i = 0; i <= extra; i++)
            cf_http_resp_free(&resps[i]);
        if (b) {
            cf_discovery_free(&d);
            return b;
        }
        uint32_t best = said > d.pointer ? said : d.pointer;
        if (said && d.pointer > said)
            say(c, CF_MSG_WARN, "%s.cvd from %s is stale: says %u, %s%s says %u", c->db, mirror, said, c->db,
                CF_REMOTE_POINTER_EXT, d.pointer);
        if (!d.pointer && (said || d.next_exists) && (d.next_exists || d.pointer_missing)) {
            /* Neither a pointer nor a header newer than what is published:
             * the patch window (contiguous) tells how far upstream is, else
             * its versioned full files. */
            int code = 0;
            uint32_t from = said > P ? said : P;
            uint32_t found = cf_remote_newest_versioned(
                c->net, mirror, c->db, d.next_exists ? "cdiff" : "cvd", d.next_exists ? P : from, &code);
            if (code) {
                cf_discovery_free(&d);
                return code;
            }
            if (found > best) {
                if (said)
                    say(c, CF_MSG_WARN, "%s.cvd from %s is stale: says %u, %s-%u.%s is published", c->db,
                        mirror, said, c->db, found, d.next_exists ? "cdiff" : "cvd");
                best = found;
            }
        }
        cf_discovery_free(&d);
        if (best) {
            *ver = best;
            return 0;
        }
    }
    say(c, CF_MSG_ERROR, "%s: no upstream mirror told its version", c->db);
    return CF_FC_EFAILEDGET;
}

/* ----------------------------------------------------------- the whole CVD */

/* Cache-proof names first; the header version must be exactly V. */
static int fetch_cvd(const mctx *c, const char *mirror, uint32_t V, staged *s)
{
    char file[160], url[URL_MAX];
    int rc = CF_FC_EFAILEDGET;
    for (int step = 0; step < CF_REMOTE_FULL_STEPS; step++) {
        const char *const *headers = NULL;
        if (cf_remote_full_name(c->db, "cvd", V, step, file, sizeof file, &headers) != 0 ||
            url_join(url, mirror, file) != 0)
            return CF_FC_EFAILEDGET;
        cf_http_req req = {.url = url, .headers = headers, .max_bytes = CF_MAX_DB_BYTES};
        cf_http_resp r;
        int b = get_one(c, &req, &r);
        if (b)
            return b;
        cf_cvdhdr h;
        cf_err e = {0};
        if (cf_remote_kind(&r) != CF_HTTP_OK) {
            char rs[512];
            cf_remote_reason(&r, rs, sizeof rs);
            say(c, step == 0 && r.status == 404 ? CF_MSG_DEBUG : CF_MSG_WARN, "%s: %s", url, rs);
            why(s, "%s: %s", url, rs);
            rc = cf_remote_kind(&r) == CF_HTTP_TRANSPORT ? CF_FC_ECONNECTION : CF_FC_EFAILEDGET;
        } else if (r.body.n < CF_HDR_SIZE || cf_cvdhdr_parse(r.body.p, CF_HDR_SIZE, &h, &e) != CF_OK) {
            say(c, CF_MSG_WARN, "%s: not a CVD: %s", url,
                r.body.n < CF_HDR_SIZE ? "shorter than 512 bytes" : e.msg);
            why(s, "%s: not a CVD", url);
            rc = CF_FC_EBADCVD;
        } else if (h.version != V) {
            say(c, CF_MSG_WARN, "%s: mirror/cache served version %u, advertised %u", url, h.version, V);
            why(s, "%s: mirror/cache served version %u, advertised %u", url, h.version, V);
            rc = CF_FC_EMIRRORNOTSYNC;
        } else {
            s->cvd = r.body;
            memset(&r.body, 0, sizeof r.body);
            s->hdr = h;
            cf_http_resp_free(&r);
            return 0;
        }
        cf_http_resp_free(&r);
    }
    return rc;
}

static int verify_cvd(const mctx *c, const char *mirror, uint32_t V, staged *s)
{
    char name[160], url[URL_MAX];
    snprintf(name, sizeof name, "%s-%u.cvd.sign", c->db, V);
    cf_buf sign = CF_BUF_INIT;
    if (url_join(url, mirror, name) == 0) {
        cf_http_req req = {.url = url, .max_bytes = CF_MAX_SIGN_BYTES};
        cf_http_resp r;
        int b = get_one(c, &req, &r);
        if (b)
            return b;
        if (cf_remote_kind(&r) == CF_HTTP_OK && r.body.n > 0) {
            sign = r.body;
            memset(&r.body, 0, sizeof r.body);
        } else {
            say(c, CF_MSG_DEBUG, "No external .sign digital signature file for %s-%u", c->db, V);
        }
        cf_http_resp_free(&r);
    }
    cf_err e = {0};
    cf_sigsource how = CF_SIGSRC_NONE;
    char file[160];
    snprintf(file, sizeof file, "%s-%u.cvd", c->db, V);
    if (cf_verify_cvd(c->o->verify, s->cvd.p, s->cvd.n, sign.n ? sign.p : NULL, sign.n, &s->img, &how, &e) !=
        CF_OK) {
        say(c, CF_MSG_ERROR, "%s: verification of %s from %s failed: %s", c->db, file, mirror, e.msg);
        why(s, "%s from %s: %s", file, mirror, e.msg);
        cf_buf_free(&sign);
        return CF_FC_EBADCVD;
    }
    if (how == CF_SIGSRC_SIGNFILE) {
        s->cvdsign = sign;
    } else {
        if (sign.n)
            say(c, CF_MSG_DEBUG, "%s.sign could not be checked here; not publishing it", file);
        cf_buf_free(&sign);
    }
    return 0;
}

/* ---------------------------------------------------------------- patches */

/* Fetches the patches to versions hi, hi-1, ... floor (newest first, in
 * batches), stopping below the first one upstream does not have. */
static int fetch_patches(const mctx *c, const char *mirror, uint32_t V, uint32_t floor, uint32_t P, staged *s)
{
    if (floor > V)
        return 0;
    size_t total = (size_t)(V - floor) + 1;
    s->p = calloc(total, sizeof *s->p);
    if (!s->p)
        return CF_FC_EMEM;
    size_t batch = total;
    /* Back-filling asks for versions that may not exist: go in batches, so a
     * gap near the top costs few requests. New patches all come at once. */
    if (batch > CF_MIRROR_BACKFILL_BATCH && floor == (V >= c->keep ? V - c->keep + 1 : 1))
        batch = CF_MIRROR_BACKFILL_BATCH;
    cf_http_resp *resps = calloc(2 * batch, sizeof *resps);
    uint32_t *vers = calloc(batch, sizeof *vers);
    char(*urls)[URL_MAX] = calloc(2 * batch, URL_MAX);
    int rc = 0;
    if (!vers || !resps || !urls)
        rc = CF_FC_EMEM;
    size_t done = 0;
    while (rc == 0 && done < total && s->gap == 0) {
        size_t n = total - done < batch ? total - done : batch;
        for (size_t i = 0; i < n; i++) {
            uint32_t ver = V - (uint32_t)(done + i);
            char name[160];
            vers[i] = ver;
            snprintf(name, sizeof name, "%s-%u.cdiff", c->db, ver);
            url_join(urls[2 * i], mirror, name);
            snprintf(name, sizeof name, "%s-%u.cdiff.sign", c->db, ver);
            url_join(urls[2 * i + 1], mirror, name);
        }
        if (cf_remote_patch_batch(c->net, mirror, c->db, vers, n, 1, CF_MAX_CDIFF_BYTES,
                                  c->o->concurrency ? c->o->concurrency : 1, 0, resps) != 0) {
            rc = CF_FC_EMEM;
            break;
        }
        for (size_t i = 0; i < n && rc == 0 && s->gap == 0; i++) {
            uint32_t ver = V - (uint32_t)(done + i);
            patch *p = &s->p[s->np++];
            p->ver = ver;
            cf_http_resp *r = &resps[2 * i], *sr = &resps[2 * i + 1];
            int b = blocked(c, r, urls[2 * i]);
            if (!b)
                b = blocked(c, sr, urls[2 * i + 1]);
            if (b) {
                rc = b;
                break;
            }
            cf_http_outcome k = cf_remote_kind(r);
            if (k == CF_HTTP_NOT_FOUND || (k == CF_HTTP_OK && r->body.n == 0)) {
                /* Upstream lacks it (an empty cdiff means "take the whole
                 * database"): the window starts above it. */
                say(c, P > 0 && ver > P ? CF_MSG_WARN : CF_MSG_DEBUG, "%s: %s; the patch window starts at %u",
                    urls[2 * i], k == CF_HTTP_OK ? "empty patch" : "not found (404)", ver + 1);
                s->gap = ver;
                break;
            }
            if (k != CF_HTTP_OK) {
                char rs[512];
                cf_remote_reason(r, rs, sizeof rs);
                say(c, CF_MSG_WARN, "%s: %s", urls[2 * i], rs);
                why(s, "%s: %s", urls[2 * i], rs);
                rc = k == CF_HTTP_TRANSPORT ? CF_FC_ECONNECTION : CF_FC_EFAILEDGET;
                break;
            }
            const uint8_t *sp = NULL;
            size_t sn = 0;
            if (cf_remote_kind(sr) == CF_HTTP_OK && sr->body.n > 0) {
                sp = sr->body.p;
                sn = sr->body.n;
            }
            cf_err e = {0};
            uint32_t got = 0;
            cf_sigsource how = CF_SIGSRC_NONE;
            if (cf_verify_cdiff(c->o->verify, r->body.p, r->body.n, sp, sn, &p->script, &got, &how, &e) !=
                CF_OK) {
                say(c, CF_MSG_ERROR, "%s: verification failed: %s", urls[2 * i], e.msg);
                why(s, "%s: %s", urls[2 * i], e.msg);
                rc = CF_FC_EBADCVD;
                break;
            }
            if (got != ver) {
                say(c, CF_MSG_ERROR, "%s: it is the patch to version %u", urls[2 * i], got);
                why(s, "%s: it is the patch to version %u", urls[2 * i], got);
                rc = CF_FC_EBADCVD;
                break;
            }
            p->cdiff = r->body;
            memset(&r->body, 0, sizeof r->body);
            if (how == CF_SIGSRC_SIGNFILE) {
                p->sign = sr->body;
                memset(&sr->body, 0, sizeof sr->body);
            } else if (sn) {
                say(c, CF_MSG_DEBUG, "%s could not be checked here; not publishing it", urls[2 * i + 1]);
            }
            p->have = 1;
        }
        for (size_t i = 0; i < 2 * n; i++)
            cf_http_resp_free(&resps[i]);
        done += n;
    }
    free(vers);
    free(resps);
    free(urls);
    return rc;
}

/* Bytes of a manifest before its DSIG line (the whole text without one). */
static size_t signed_part(const cf_dbfile *f)
{
    cf_info info = CF_INFO_INIT;
    cf_err e = {0};
    size_t n = f->data.n;
    if (cf_info_parse(f->data.p, f->data.n, &info, &e) == CF_OK)
        n = info.signed_len;
    cf_info_free(&info);
    return n;
}

/* The stronger check: the published NAME-P.cvd patched with P+1..V must carry
 * exactly the manifest of the NAME-V.cvd just fetched. Returns 0 when it holds
 * or cannot be made (old CVD unusable), a cf_fc code when it fails. */
static int check_chain(const mctx *c, uint32_t P, uint32_t V, staged *s)
{
    char name[160], path[4096];
    snprintf(name, sizeof name, "%s-%u.cvd", c->db, P);
    if (path_join(path, sizeof path, c->o->dir, name) != 0)
        return 0;
    cf_buf old = CF_BUF_INIT, sign = CF_BUF_INIT, *scripts = NULL;
    cf_image img = CF_IMAGE_INIT;
    cf_image_init(&img);
    cf_err e = {0};
    int rc = 0;
    if (cf_file_read_db(path, CF_MAX_DB_BYTES, &old, &e) != CF_OK) {
        say(c, CF_MSG_WARN, "%s: can't check the patches against %s: %s", c->db, name, e.msg);
        goto out;
    }
    char sp[4096];
    snprintf(name, sizeof name, "%s-%u.cvd.sign", c->db, P);
    if (path_join(sp, sizeof sp, c->o->dir, name) == 0) {
        cf_err se = {0};
        if (cf_file_read_db(sp, CF_MAX_SIGN_BYTES, &sign, &se) != CF_OK)
            sign.n = 0;
    }
    if (cf_verify_cvd(c->o->verify, old.p, old.n, sign.n ? sign.p : NULL, sign.n, &img, NULL, &e) != CF_OK) {
        say(c, CF_MSG_WARN, "%s: can't check the patches against %s-%u.cvd: %s", c->db, c->db, P, e.msg);
        goto out;
    }
    size_t n = V - P;
    scripts = calloc(n, sizeof *scripts);
    if (!scripts) {
        rc = CF_FC_EMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        scripts[i] = s->p[n - 1 - i].script; /* p[] is newest first; borrowed */
    if (cf_verify_apply(c->o->verify, &img, scripts, n, &e) != CF_OK) {
        say(c, CF_MSG_ERROR, "%s: patches %u..%u do not apply to version %u: %s", c->db, P + 1, V, P, e.msg);
        why(s, "patches %s-%u..%u.cdiff do not apply to version %u: %s", c->db, P + 1, V, P, e.msg);
        rc = CF_FC_EBADCVD;
        goto out;
    }
    char db[CF_MAX_NAME + 1], info[CF_MAX_NAME + 8];
    const cf_dbfile *a = NULL, *b = NULL;
    if (cf_image_dbname(&s->img, db, sizeof db)) {
        snprintf(info, sizeof info, "%s.info", db);
        a = cf_image_get(&img, info);
        b = cf_image_get(&s->img, info);
    }
    /* The signed part: a manifest re-signed with a fresh PSS salt is the same. */
    if (!a || !b || signed_part(a) != signed_part(b) || memcmp(a->data.p, b->data.p, signed_part(a)) != 0) {
        say(c, CF_MSG_ERROR,
            "%s: patches %u..%u applied to version %u do not reproduce the manifest of %s-%u.cvd", c->db,
            P + 1, V, P, c->db, V);
        why(s, "patches %u..%u do not reproduce the manifest of %s-%u.cvd", P + 1, V, c->db, V);
        rc = CF_FC_EBADCVD;
        goto out;
    }
    say(c, CF_MSG_DEBUG, "%s: patches %u..%u reproduce version %u", c->db, P + 1, V, V);
out:
    free(scripts);
    cf_image_free(&img);
    cf_buf_free(&old);
    cf_buf_free(&sign);
    return rc;
}

/* ---------------------------------------------------------------- publish */

typedef struct written {
    char (*names)[160];
    size_t n, cap;
} written;

static int remember(written *w, const char *name)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        void *p = realloc(w->names, cap * sizeof *w->names);
        if (!p)
            return -1;
        w->names = p;
        w->cap = cap;
    }
    snprintf(w->names[w->n++], sizeof w->names[0], "%s", name);
    return 0;
}

/* Writes one immutable file; remembers it when it did not exist, so a failed
 * publish can take it back. */
static cf_code put_file(const mctx *c, written *w, const char *name, const cf_buf *b, cf_err *e)
{
    int existed = cf_stage_exists(c->o->dir, name);
    cf_code rc = cf_install_file(c->o->dir, name, b->p ? (const void *)b->p : "", b->n, e);
    if (rc == CF_OK && !existed && remember(w, name) != 0)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return rc;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* NAME.cvd becomes a second name of NAME-V.cvd: a hard link made under a
 * temporary name (the shape install.h cleans up) and renamed over the old one. */
static cf_code link_current(const mctx *c, uint32_t V, const cf_buf *bytes, cf_err *e)
{
    char src[4096], tmp[4096], dst[4096], name[160];
    snprintf(name, sizeof name, "%s-%u.cvd", c->db, V);
    if (path_join(src, sizeof src, c->o->dir, name) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: path too long", c->o->dir);
    snprintf(name, sizeof name, "%s.cvd", c->db);
    if (path_join(dst, sizeof dst, c->o->dir, name) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: path too long", c->o->dir);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int tries = 0; tries < 8; tries++) {
        unsigned char raw[8];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            for (int i = 0; i < 8; i++)
                raw[i] = (unsigned char)(rand() >> 3);
        char rnd[9];
        for (int i = 0; i < 8; i++)
            rnd[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
        rnd[8] = '\0';
        int w = snprintf(tmp, sizeof tmp, "%s/.%s.cvd.%s.tmp", c->o->dir, c->db, rnd);
        if (w < 0 || (size_t)w >= sizeof tmp)
            return cf_err_set(e, CF_EINVAL, "%s: path too long", c->o->dir);
        if (link(src, tmp) == 0) {
            if (rename(tmp, dst) == 0) {
                fsync_dir(c->o->dir);
                return CF_OK;
            }
            int err = errno;
            unlink(tmp);
            return cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", tmp, dst, strerror(err));
        }
        if (errno != EEXIST)
            break;
    }
    /* No hard links here (some network file systems): a copy is as good. */
    return cf_install_file(c->o->dir, name, bytes->p, bytes->n, e);
}

static int write_pointer(const mctx *c, uint32_t V)
{
    char name[160], text[CF_REMOTE_POINTER_MAX + 1];
    snprintf(name, sizeof name, "%s%s", c->db, CF_REMOTE_POINTER_EXT);
    snprintf(text, sizeof text, "%u:%lld\n", V, (long long)now_of(c));
    cf_err e = {0};
    if (cf_install_file(c->o->dir, name, text, strlen(text), &e) != CF_OK) {
        say(c, CF_MSG_ERROR, "%s: can't write %s: %s", c->db, name, e.msg);
        return CF_FC_EDBDIRACCESS;
    }
    return 0;
}

/* Immutable files first, then NAME.cvd, then the pointer. On failure the new
 * files are removed and the mutable names are as before. */
static int publish(const mctx *c, uint32_t V, staged *s)
{
    written w = {0};
    cf_err e = {0};
    char name[160];
    cf_code rc = CF_OK;
    for (size_t i = s->np; i-- > 0 && rc == CF_OK;) {
        patch *p = &s->p[i];
        if (!p->have)
            continue;
        snprintf(name, sizeof name, "%s-%u.cdiff", c->db, p->ver);
        rc = put_file(c, &w, name, &p->cdiff, &e);
        snprintf(name, sizeof name, "%s-%u.cdiff.sign", c->db, p->ver);
        if (rc == CF_OK && p->sign.n)
            rc = put_file(c, &w, name, &p->sign, &e);
    }
    snprintf(name, sizeof name, "%s-%u.cvd.sign", c->db, V);
    if (rc == CF_OK && s->cvdsign.n)
        rc = put_file(c, &w, name, &s->cvdsign, &e);
    snprintf(name, sizeof name, "%s-%u.cvd", c->db, V);
    if (rc == CF_OK)
        rc = put_file(c, &w, name, &s->cvd, &e);
    if (rc == CF_OK)
        rc = link_current(c, V, &s->cvd, &e);
    if (rc != CF_OK) {
        say(c, CF_MSG_ERROR, "%s: publishing version %u in %s failed: %s", c->db, V, c->o->dir, e.msg);
        for (size_t i = 0; i < w.n; i++) {
            char path[4096];
            if (path_join(path, sizeof path, c->o->dir, w.names[i]) == 0)
                unlink(path);
        }
        fsync_dir(c->o->dir);
        free(w.names);
        return CF_FC_EDBDIRACCESS;
    }
    free(w.names);
    return write_pointer(c, V);
}

/* ------------------------------------------------------------------ prune */

/* "<db>-<digits><suffix>" -> the number, else -1. */
static long long versioned(const char *name, const char *db, const char *suffix)
{
    size_t dl = strlen(db), sl = strlen(suffix), n = strlen(name);
    if (n <= dl + 1 + sl || strncmp(name, db, dl) != 0 || name[dl] != '-' ||
        strcmp(name + n - sl, suffix) != 0)
        return -1;
    long long v = 0;
    size_t i = dl + 1;
    if (i == n - sl)
        return -1;
    for (; i < n - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > UINT32_MAX)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* Lowest version of the contiguous run of published patches ending at V. */
static uint32_t window_start(const mctx *c, uint32_t V)
{
    uint32_t lo = V >= c->keep ? V - c->keep + 1 : 1, n = V;
    char name[160];
    while (n >= lo && n > 0) {
        snprintf(name, sizeof name, "%s-%u.cdiff", c->db, n);
        if (!cf_stage_exists(c->o->dir, name))
            break;
        n--;
    }
    return n + 1;
}

static void prune(const mctx *c, uint32_t V)
{
    uint32_t start = window_start(c, V);
    DIR *d = opendir(c->o->dir);
    if (!d)
        return;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        long long v;
        int drop = 0;
        if ((v = versioned(nm, c->db, ".cdiff")) >= 0 || (v = versioned(nm, c->db, ".cdiff.sign")) >= 0)
            drop = v < start || v > V;
        else if ((v = versioned(nm, c->db, ".cvd")) >= 0 || (v = versioned(nm, c->db, ".cvd.sign")) >= 0)
            drop = v != V;
        if (!drop)
            continue;
        char path[4096];
        if (path_join(path, sizeof path, c->o->dir, nm) == 0 && unlink(path) == 0) {
            say(c, CF_MSG_DEBUG, "%s: removed %s", c->db, nm);
            removed = 1;
        } else {
            say(c, CF_MSG_WARN, "%s: can't remove %s: %s", c->db, nm, strerror(errno));
        }
    }
    closedir(d);
    if (removed)
        fsync_dir(c->o->dir);
    if (start <= V)
        say(c, CF_MSG_DEBUG, "%s: patches %u..%u published", c->db, start, V);
}

/* ---------------------------------------------------------------- one db */

static int attempt(const mctx *c, const char *mirror, uint32_t V, uint32_t P, staged *s)
{
    int rc = fetch_cvd(c, mirror, V, s);
    if (rc == 0)
        rc = verify_cvd(c, mirror, V, s);
    if (rc != 0)
        return rc;
    uint32_t lo = V >= c->keep ? V - c->keep + 1 : 1;
    uint32_t floor = P > 0 && P + 1 > lo ? P + 1 : lo;
    rc = fetch_patches(c, mirror, V, floor, P, s);
    if (rc != 0)
        return rc;
    if (P > 0 && P < V && s->gap == 0 && s->np == V - P && V - P <= c->keep)
        rc = check_chain(c, P, V, s);
    return rc;
}

static mctx db_ctx(const cf_mirror_opts *o, const cf_update_env *env, cf_remote *net, const char *db)
{
    mctx c = {.o = o,
              .env = env,
              .db = db,
              .keep = o->keep_patches ? o->keep_patches : CF_MIRROR_KEEP_PATCHES,
              .net = net};
    return c;
}

/* Step 2 for one database: fetch, verify, publish; nothing is pruned here
 * (step 4 comes after every alias names the new files). */
static int mirror_db(const cf_mirror_opts *o, const cf_update_env *env, cf_remote *net, const char *db,
                     uint32_t version)
{
    mctx c = db_ctx(o, env, net, db);
    if (strlen(db) >= NAME_MAX_DB || !cf_name_ok(db) || strchr(db, '-') || strchr(db, '.')) {
        say(&c, CF_MSG_ERROR, "%s: not a database name", db);
        return CF_FC_EARG;
    }
    uint32_t V = version;
    int rc;
    uint32_t P = cf_mirror_published(o->dir, db);
    if (V == 0 && (rc = probe(&c, P, &V)) != 0)
        return rc;
    if (P >= V) {
        say(&c, CF_MSG_INFO, "%s is up-to-date in the mirror (version: %u, upstream: %u)", db, P, V);
        return write_pointer(&c, P);
    }
    if (P)
        say(&c, CF_MSG_INFO, "%s database available for update (mirror version: %u, remote version: %u)", db,
            P, V);
    else
        say(&c, CF_MSG_INFO, "%s database available for download (remote version: %u)", db, V);

    unsigned attempts = o->max_attempts ? o->max_attempts : 1;
    char last_why[MSG_MAX] = "no upstream mirror";
    rc = CF_FC_EFAILEDGET;
    for (size_t m = 0; m < o->nmirrors; m++) {
        for (unsigned a = 1; a <= attempts; a++) {
            staged s;
            staged_init(&s);
            rc = attempt(&c, o->mirrors[m], V, P, &s);
            if (rc == 0) {
                rc = publish(&c, V, &s);
                if (rc == 0) {
                    uint32_t start = window_start(&c, V);
                    say(&c, CF_MSG_INFO,
                        "%s-%u.cvd published (version: %u, sigs: %u, f-level: %u, builder: %s)%s", db, V, V,
                        s.hdr.sigs, s.hdr.flevel, s.hdr.builder, start <= V ? "" : ", no patches");
                    if (start <= V)
                        say(&c, CF_MSG_INFO, "%s: patches %s-%u.cdiff .. %s-%u.cdiff available", db, db,
                            start, db, V);
                }
                staged_free(&s);
                return rc;
            }
            if (s.why[0])
                snprintf(last_why, sizeof last_why, "%s", s.why);
            staged_free(&s);
            if (rc == CF_FC_EFORBIDDEN || rc == CF_FC_ERETRYLATER || rc == CF_FC_EMEM)
                return rc;
            if (a < attempts && o->retry_delay) {
                say(&c, CF_MSG_INFO, "Trying again in %u secs...", o->retry_delay);
                if (env->sleep)
                    env->sleep(env->arg, o->retry_delay);
            }
        }
    }
    if (P)
        say(&c, CF_MSG_ERROR, "%s: mirror not updated (%s); still publishing version %u", db, last_why, P);
    else
        say(&c, CF_MSG_ERROR, "%s: mirror not updated (%s); nothing published", db, last_why);
    return rc;
}

int cf_mirror_db(const cf_mirror_opts *o, const cf_update_env *env, const char *db, uint32_t version)
{
    cf_remote net;
    cf_remote_init(&net, env, NULL, o->state);
    int rc = mirror_db(o, env, &net, db, version);
    mctx c = db_ctx(o, env, &net, db);
    uint32_t P = cf_mirror_published(o->dir, db);
    if (P)
        prune(&c, P);
    return rc;
}

/* ---------------------------------------------------------------- the run */

static void write_current(const mctx *c)
{
    static const struct {
        const char *db;
        int field;
    } slots[] = {{"main", 1}, {"daily", 2}, {"safebrowsing", 6}, {"bytecode", 7}};
    uint32_t v[8] = {0}, fl = 0;
    for (size_t i = 0; i < c->o->ndbs; i++) {
        uint32_t P = cf_mirror_published(c->o->dir, c->o->dbs[i]);
        char name[160];
        cf_cvdhdr h;
        snprintf(name, sizeof name, "%s.cvd", c->o->dbs[i]);
        if (P && cf_stage_read_header(c->o->dir, name, &h) && h.flevel > fl)
            fl = h.flevel;
        for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++)
            if (strcmp(slots[k].db, c->o->dbs[i]) == 0)
                v[slots[k].field] = P;
    }
    const char *rel = c->o->newest_clamav && c->o->newest_clamav[0] && !strchr(c->o->newest_clamav, ':')
                          ? c->o->newest_clamav
                          : "0";
    char text[256];
    /* Warning flag 0: the mirror has no opinion on the clients' ClamAV version. */
    snprintf(text, sizeof text, "%s:%u:%u:%lld:0:%u:%u:%u\n", rel, v[1], v[2], (long long)now_of(c), fl, v[6],
             v[7]);
    cf_err e = {0};
    if (cf_install_file(c->o->dir, CF_MIRROR_CURRENT, text, strlen(text), &e) != CF_OK)
        say(c, CF_MSG_WARN, "can't write %s: %s", CF_MIRROR_CURRENT, e.msg);
}

static void write_nginx(const mctx *c)
{
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    char abs[4096];
    const char *dir = realpath(c->o->dir, abs) ? abs : c->o->dir;
    cf_buf old = CF_BUF_INIT;
    char path[4096];
    if (cf_mirror_nginx_text(dir, &b, &e) != CF_OK) {
        say(c, CF_MSG_WARN, "can't write %s: %s", CF_MIRROR_NGINX_CONF, e.msg);
    } else if (path_join(path, sizeof path, c->o->dir, CF_MIRROR_NGINX_CONF) == 0 &&
               cf_file_read_db(path, 65536, &old, &e) == CF_OK && old.n == b.n &&
               memcmp(old.p, b.p, b.n) == 0) {
        /* unchanged: leave it (and its date) alone */
    } else if (cf_install_file(c->o->dir, CF_MIRROR_NGINX_CONF, b.p, b.n, &e) != CF_OK) {
        say(c, CF_MSG_WARN, "can't write %s: %s", CF_MIRROR_NGINX_CONF, e.msg);
    }
    cf_buf_free(&old);
    cf_buf_free(&b);
}

static void report_cleanup(void *arg, const char *name)
{
    const mctx *c = arg;
    say(c, CF_MSG_DEBUG, "removed leftover %s", name);
}

int cf_mirror_run(const cf_mirror_opts *o, const cf_update_env *env)
{
    cf_remote net;
    cf_remote_init(&net, env, NULL, o->state);
    mctx c = {.o = o, .env = env, .db = "mirror", .net = &net};
    struct stat st;
    if (!o->dir || stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        say(&c, CF_MSG_ERROR, "Mirror directory %s does not exist or is not a directory",
            o->dir ? o->dir : "(none)");
        return CF_FC_EDIRECTORY;
    }
    if (o->nmirrors == 0) {
        say(&c, CF_MSG_ERROR, "Mirror mode needs at least one DatabaseMirror");
        return CF_FC_ECONFIG;
    }
    cf_dblock lk;
    cf_err e = {0};
    if (cf_install_lock(o->dir, o->lock_timeout, &lk, NULL, &e) != CF_OK) {
        say(&c, CF_MSG_ERROR, "%s", e.msg);
        return CF_LOCK_EXIT;
    }
    cf_install_cleanup(o->dir, time(NULL) - 3600, report_cleanup, &c, &e);
    if (cf_remote_cooldown_active(&net)) {
        /* Upstream said stop (403/429) and the cool-down runs: nothing is
         * asked and nothing in the directory changes. */
        cf_install_unlock(&lk);
        return CF_FC_SUCCESS;
    }
    int first = 0;
    for (size_t i = 0; i < o->ndbs; i++) {
        int rc = mirror_db(o, env, &net, o->dbs[i], o->versions ? o->versions[i] : 0);
        if (rc != 0 && first == 0)
            first = rc;
        if (rc == CF_FC_EFORBIDDEN || rc == CF_FC_ERETRYLATER)
            break;
    }
    c.db = "mirror";
    write_current(&c);
    if (!o->no_nginx_conf)
        write_nginx(&c);
    /* Step 4 only now: every alias (NAME.cvd, NAME.version, current.txt)
     * already names the newest files, so no alias ever names a pruned one. */
    for (size_t i = 0; i < o->ndbs; i++) {
        mctx d = db_ctx(o, env, &net, o->dbs[i]);
        uint32_t P = cf_mirror_published(o->dir, o->dbs[i]);
        if (P && cf_name_ok(o->dbs[i]))
            prune(&d, P);
    }
    cf_install_unlock(&lk);
    return first;
}
