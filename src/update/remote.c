/* The remote layer (remote.h): one reading of responses, one wording of
 * failures, one reaction to 403 and 429, the cache-proof names, the patch
 * batch and the version discovery no cache can stale. */
#include "clamfresh/remote.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clamfresh/fcerr.h"
#include "clamfresh/limits.h"

#define MSG_MAX 2048

const char *const cf_remote_nocache[] = {"Cache-Control: no-cache", "Pragma: no-cache", NULL};

void cf_remote_init(cf_remote *r, const cf_update_env *env, const char *proxy_label, cf_state *state)
{
    memset(r, 0, sizeof *r);
    r->env = env;
    r->proxy_label = proxy_label;
    r->state = state;
    unsigned char raw[8];
    if (getrandom(raw, sizeof raw, GRND_NONBLOCK) != (ssize_t)sizeof raw) {
        /* Uniqueness, not secrecy, is what the query string needs. */
        unsigned long long t = (unsigned long long)time(NULL) ^ ((unsigned long long)(uintptr_t)r << 16);
        memcpy(raw, &t, sizeof raw);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(r->nonce + 2 * i, 3, "%02x", raw[i]);
}

void cf_remote_say(const cf_remote *r, cf_msglevel lvl, const char *fmt, ...)
{
    if (r->env == NULL || r->env->log == NULL)
        return;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->env->log(r->env->arg, lvl, msg);
}

time_t cf_remote_now(const cf_remote *r)
{
    return r->env != NULL && r->env->now ? r->env->now(r->env->arg) : time(NULL);
}

void cf_remote_fetch(cf_remote *r, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        cf_http_resp_init(&resps[i]);
    if (n == 0)
        return;
    r->env->fetch(r->env->arg, reqs, resps, n, k ? k : 1);
    r->requests += (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        r->bytes += resps[i].bytes ? resps[i].bytes : resps[i].body.n;
        if (resps[i].unreachable && !r->saw_unreachable) {
            r->saw_unreachable = 1;
            snprintf(r->unreachable_why, sizeof r->unreachable_why, "%.200s",
                     resps[i].curl_msg[0] ? resps[i].curl_msg : resps[i].err.msg);
        }
    }
}

cf_http_outcome cf_remote_kind(const cf_http_resp *resp)
{
    return cf_http_classify(resp);
}

void cf_remote_say_failure(const cf_remote *r, cf_msglevel lvl, const cf_http_resp *resp, const char *fn,
                           const char *url, const char *mirror)
{
    /* freshclam names the proxy in these two messages when one is in use. */
    char via[300] = "";
    if (r->proxy_label != NULL)
        snprintf(via, sizeof via, " (Proxy: %s)", r->proxy_label);
    int probe = strcmp(fn, "remote_cvdhead") == 0;
    switch (cf_remote_kind(resp)) {
    case CF_HTTP_NOT_FOUND:
        cf_remote_say(r, lvl, "%s: file not found: %s%s", fn, url, via);
        break;
    case CF_HTTP_ORIGIN_TIMEOUT:
        cf_remote_say(
            r, lvl,
            "%s: Origin Connection Time-out. Cloudflare was unable to reach the origin web server and "
            "the request timed out. URL: %s",
            fn, url);
        break;
    case CF_HTTP_UNEXPECTED:
        cf_remote_say(r, lvl, "%s: Unexpected response (%ld) from %s%s", fn, resp->status,
                      probe ? mirror : url, via);
        break;
    case CF_HTTP_TRANSPORT:
        if (resp->err.code == CF_ETOOBIG)
            /* A bound was hit: say which, for which URL, not curl's "Failed
             * writing received data". */
            cf_remote_say(r, lvl, "%s: %s", fn, resp->err.msg);
        else if (resp->curl_code)
            cf_remote_say(r, lvl, "%sDownload failed (%d)  Message: %s (%s)", probe ? "remote_cvdhead: " : "",
                          resp->curl_code, resp->curl_msg, url);
        else
            cf_remote_say(r, lvl, "%s: %s (%s)", fn, resp->err.msg[0] ? resp->err.msg : "transfer failed",
                          url);
        break;
    default:
        break;
    }
}

void cf_remote_reason(const cf_http_resp *resp, char *out, size_t n)
{
    switch (cf_remote_kind(resp)) {
    case CF_HTTP_TRANSPORT:
        if (resp->curl_code)
            snprintf(out, n, "transfer failed (%d): %.200s", resp->curl_code, resp->curl_msg);
        else
            snprintf(out, n, "transfer failed: %.400s", resp->err.msg[0] ? resp->err.msg : "no response");
        break;
    case CF_HTTP_NOT_FOUND:
        snprintf(out, n, "not found (404)");
        break;
    default:
        snprintf(out, n, "unexpected response (%ld)", resp->status);
        break;
    }
}

/* ---------------------------------------------------------- 403, 429, cool-down */

int cf_remote_forbidden(cf_remote *r, const char *file, const char *url, const cf_http_resp *resp)
{
    cf_remote_say(r, CF_MSG_WARN, "Can't download %s from %s", file, url);
    cf_remote_say(r, CF_MSG_WARN, "%s", CF_STATE_MSG_403);
    cf_remote_say(r, CF_MSG_INFO, "This could mean several things:");
    cf_remote_say(r, CF_MSG_INFO, " 1. You are running an out-of-date version of ClamAV / FreshClam.");
    cf_remote_say(r, CF_MSG_INFO,
                  "    Ensure you are the most updated version by visiting https://www.clamav.net/downloads");
    cf_remote_say(r, CF_MSG_INFO, " 2. Your network is explicitly denied by the FreshClam CDN.");
    cf_remote_say(r, CF_MSG_INFO, "    In order to rectify this please check that you are:");
    cf_remote_say(r, CF_MSG_INFO, "   a. Running an up-to-date version of FreshClam");
    cf_remote_say(r, CF_MSG_INFO, "   b. Running FreshClam no more than once an hour");
    cf_remote_say(r, CF_MSG_INFO, "   c. Connecting from an IP in a blocked region");
    cf_remote_say(r, CF_MSG_INFO,
                  "      Please see https://www.cisco.com/c/m/en_us/crisis-response/russia-ukraine.html");
    cf_state tmp = {0};
    cf_state *s = r->state ? r->state : &tmp;
    if (resp && resp->cf_ray[0]) {
        cf_remote_say(r, CF_MSG_INFO,
                      "    If you believe you are not in any of the above categories, please contact the "
                      "ClamAV team with this reference: %s",
                      resp->cf_ray);
        cf_state_set_ray(s, resp->cf_ray);
    }
    cf_state_block_403(s, cf_remote_now(r));
    char msg[CF_STATE_MSG_SIZE];
    cf_state_msg_on_cooldown(s, msg);
    cf_remote_say(r, CF_MSG_WARN, "%s", msg);
    r->state_dirty = r->state != NULL;
    r->forbidden = 1;
    return CF_FC_EFORBIDDEN;
}

int cf_remote_rate_limited(cf_remote *r, const cf_http_resp *resp)
{
    cf_remote_say(r, CF_MSG_WARN, "%s", CF_STATE_MSG_429);
    cf_remote_say(r, CF_MSG_INFO, "This means that you have been rate limited by the CDN.");
    cf_remote_say(r, CF_MSG_INFO, " 1. Run FreshClam no more than once an hour to check for updates.");
    cf_remote_say(r, CF_MSG_INFO, "    FreshClam should check DNS first to see if an update is needed.");
    cf_remote_say(r, CF_MSG_INFO,
                  " 2. If you have more than 10 hosts on your network attempting to download,");
    cf_remote_say(r, CF_MSG_INFO, "    it is recommended that you set up a private mirror on your network.");
    cf_state tmp = {0};
    cf_state *s = r->state ? r->state : &tmp;
    if (resp->cf_ray[0])
        cf_state_set_ray(s, resp->cf_ray);
    cf_state_block_429(s, cf_remote_now(r), resp->retry_after);
    char msg[CF_STATE_MSG_SIZE];
    cf_state_msg_on_cooldown(s, msg);
    cf_remote_say(r, CF_MSG_WARN, "%s", msg);
    r->state_dirty = r->state != NULL;
    return CF_FC_ERETRYLATER;
}

int cf_remote_cooldown_active(cf_remote *r)
{
    if (!r->state)
        return 0;
    switch (cf_state_cooldown_check(r->state, cf_remote_now(r))) {
    case CF_COOLDOWN_ACTIVE: {
        cf_remote_say(r, CF_MSG_WARN, "%s", CF_STATE_MSG_PREVIOUS);
        cf_remote_say(r, CF_MSG_INFO, "This means that you have been rate limited or blocked by the CDN.");
        cf_remote_say(r, CF_MSG_INFO, " 1. Verify that you're running a supported ClamAV version.");
        cf_remote_say(r, CF_MSG_INFO, " 2. Run FreshClam no more than once an hour to check for updates.");
        cf_remote_say(r, CF_MSG_INFO,
                      " 3. If you have more than 10 hosts on your network attempting to download,");
        cf_remote_say(r, CF_MSG_INFO,
                      "    it is recommended that you set up a private mirror on your network.");
        char msg[CF_STATE_MSG_SIZE];
        cf_state_msg_still_cooldown(r->state, msg);
        cf_remote_say(r, CF_MSG_WARN, "%s", msg);
        return 1;
    }
    case CF_COOLDOWN_EXPIRED:
        cf_remote_say(r, CF_MSG_WARN, "%s", CF_STATE_MSG_EXPIRED);
        r->state_dirty = 1;
        return 0;
    default:
        return 0;
    }
}

/* -------------------------------------------------------------------- names */

int cf_remote_url(char *out, const char *mirror, const char *file)
{
    return cf_http_url_join(out, CF_REMOTE_URL_MAX, mirror, file);
}

int cf_remote_full_name(const char *db, const char *ext, uint32_t version, int step, char *out, size_t n,
                        const char *const **headers)
{
    int w;
    *headers = NULL;
    switch (step) {
    case 0:
        if (strcmp(ext, "cvd") != 0)
            return -1;
        w = snprintf(out, n, "%s-%u.cvd", db, version);
        break;
    case 1:
        w = snprintf(out, n, "%s.%s?version=%u", db, ext, version);
        break;
    case 2:
        w = snprintf(out, n, "%s.%s", db, ext);
        *headers = cf_remote_nocache;
        break;
    default:
        return -1;
    }
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* ------------------------------------------------------------------ patches */

int cf_remote_patch_batch(cf_remote *r, const char *mirror, const char *db, const uint32_t *vers, size_t n,
                          int with_sign, size_t max_bytes, unsigned k, int have_first, cf_http_resp *resps)
{
    size_t per = with_sign ? 2 : 1;
    cf_http_req *reqs = calloc(per * n + 1, sizeof *reqs);
    cf_http_resp *got = calloc(per * n + 1, sizeof *got);
    size_t *slot = calloc(per * n + 1, sizeof *slot);
    char(*urls)[CF_REMOTE_URL_MAX] = calloc(per * n + 1, CF_REMOTE_URL_MAX);
    int rc = reqs && urls && got && slot ? 0 : -1;
    size_t m = 0;
    for (size_t i = 0; i < per * n; i++)
        cf_http_resp_init(&resps[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char name[160];
        if (!(i == 0 && have_first)) {
            snprintf(name, sizeof name, "%s-%u.cdiff", db, vers[i]);
            if (cf_remote_url(urls[m], mirror, name) != 0)
                rc = -1;
            reqs[m] = (cf_http_req){.url = urls[m], .max_bytes = max_bytes};
            slot[m++] = per * i;
        }
        if (with_sign) {
            snprintf(name, sizeof name, "%s-%u.cdiff.sign", db, vers[i]);
            if (cf_remote_url(urls[m], mirror, name) != 0)
                rc = -1;
            reqs[m] = (cf_http_req){.url = urls[m], .max_bytes = CF_MAX_SIGN_BYTES};
            slot[m++] = per * i + 1;
        }
    }
    if (rc == 0) {
        cf_remote_fetch(r, reqs, got, m, k);
        for (size_t i = 0; i < m; i++)
            resps[slot[i]] = got[i];
    }
    free(got);
    free(slot);
    free(reqs);
    free(urls);
    return rc;
}

/* ------------------------------------------------------------------ pointer */

cf_code cf_remote_pointer_parse(const uint8_t *p, size_t n, uint32_t *version, time_t *when, cf_err *e)
{
    if (n > CF_REMOTE_POINTER_MAX)
        return cf_err_set(e, CF_ETOOBIG, "pointer file: %zu bytes, at most %d expected", n,
                          CF_REMOTE_POINTER_MAX);
    if (n > 0 && p[n - 1] == '\n')
        n--;
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > UINT32_MAX)
            return cf_err_set(e, CF_EFORMAT, "pointer file: version out of range at offset %zu", i);
        i++;
    }
    if (i == 0)
        return cf_err_set(e, CF_EFORMAT, "pointer file: no version number at offset 0");
    uint64_t t = 0;
    if (i < n) {
        if (p[i] != ':')
            return cf_err_set(e, CF_EFORMAT, "pointer file: unexpected byte 0x%02x at offset %zu", p[i], i);
        size_t j = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            t = t * 10 + (uint64_t)(p[i] - '0');
            if (t > (uint64_t)INT64_MAX / 10)
                return cf_err_set(e, CF_EFORMAT, "pointer file: time out of range at offset %zu", i);
            i++;
        }
        if (i == j || i != n)
            return cf_err_set(e, CF_EFORMAT, "pointer file: bad time field at offset %zu", i);
    }
    if (version)
        *version = (uint32_t)v;
    if (when)
        *when = (time_t)t;
    return CF_OK;
}

/* ---------------------------------------------------------------- discovery */

size_t cf_discovery_prepare(cf_remote *r, cf_discovery *d, const char *mirror, const char *db, uint32_t local,
                            int scripted, int ask_pointer, cf_http_req *reqs)
{
    memset(d, 0, sizeof *d);
    cf_http_resp_init(&d->next);
    d->local = local;
    char name[200];
    size_t n = 0;
    /* The query string makes the pointer's URL one no cache has stored. */
    snprintf(name, sizeof name, "%s%s?r=%s", db, CF_REMOTE_POINTER_EXT, r->nonce);
    if (!ask_pointer) {
        d->pointer_missing = 1; /* known from an earlier run */
    } else if (cf_remote_url(d->pointer_url, mirror, name) == 0) {
        d->want_pointer = 1;
        d->pointer_asked = 1;
        reqs[n++] = (cf_http_req){
            .url = d->pointer_url, .headers = cf_remote_nocache, .max_bytes = CF_REMOTE_POINTER_MAX};
    }
    snprintf(name, sizeof name, "%s-%u.cdiff", db, local + 1);
    if (local > 0 && local < UINT32_MAX && scripted && cf_remote_url(d->next_url, mirror, name) == 0) {
        d->want_next = 1;
        reqs[n++] = (cf_http_req){.url = d->next_url, .max_bytes = CF_PATCH_MAX_BYTES};
    }
    return n;
}

void cf_discovery_read(cf_remote *r, cf_discovery *d, const char *db, cf_http_resp *resps, size_t n)
{
    size_t i = 0;
    if (d->want_pointer && i < n) {
        cf_http_resp *p = &resps[i++];
        cf_http_outcome k = cf_remote_kind(p);
        cf_err e = {0};
        uint32_t v = 0;
        if (k == CF_HTTP_OK && cf_remote_pointer_parse(p->body.p, p->body.n, &v, NULL, &e) == CF_OK) {
            d->pointer = v;
            cf_remote_say(r, CF_MSG_DEBUG, "%s version pointer %s: %u", db, d->pointer_url, v);
        } else if (k == CF_HTTP_OK) {
            cf_remote_say(r, CF_MSG_DEBUG, "%s: %s", d->pointer_url, e.msg);
        } else if (k == CF_HTTP_NOT_FOUND) {
            d->pointer_missing = 1;
        } else if (k == CF_HTTP_FORBIDDEN || k == CF_HTTP_RATE_LIMITED) {
            d->blocked = 1;
        }
    }
    if (d->want_next && i < n) {
        cf_http_resp *p = &resps[i++];
        cf_http_outcome k = cf_remote_kind(p);
        if (k == CF_HTTP_OK && p->body.n > 0) {
            d->next_exists = 1;
            d->next = *p;
            cf_http_resp_init(p);
        } else if (k == CF_HTTP_FORBIDDEN || k == CF_HTTP_RATE_LIMITED) {
            d->blocked = 1;
        }
    }
}

void cf_discovery_free(cf_discovery *d)
{
    cf_http_resp_free(&d->next);
    d->next_exists = 0;
}

/* One HEAD on NAME-v.EXT: 1 there, 0 not, -1 a 403/429 (reaction done). */
static int versioned_exists(cf_remote *r, const char *mirror, const char *db, const char *ext, uint32_t v,
                            int *code)
{
    char name[160], url[CF_REMOTE_URL_MAX];
    snprintf(name, sizeof name, "%s-%u.%s", db, v, ext);
    if (cf_remote_url(url, mirror, name) != 0)
        return 0;
    cf_http_req req = {.url = url, .head = 1, .max_bytes = CF_MAX_DB_BYTES};
    cf_http_resp resp;
    cf_remote_fetch(r, &req, &resp, 1, 1);
    cf_http_outcome k = cf_remote_kind(&resp);
    int there = 0;
    if (k == CF_HTTP_OK)
        there = 1;
    else if (k == CF_HTTP_FORBIDDEN) {
        *code = cf_remote_forbidden(r, name, url, &resp);
        there = -1;
    } else if (k == CF_HTTP_RATE_LIMITED) {
        *code = cf_remote_rate_limited(r, &resp);
        there = -1;
    }
    cf_http_resp_free(&resp);
    return there;
}

uint32_t cf_remote_newest_versioned(cf_remote *r, const char *mirror, const char *db, const char *ext,
                                    uint32_t from, int *code)
{
    *code = 0;
    unsigned asked = 0;
    uint64_t limit = (uint64_t)from + CF_REMOTE_SEARCH_SPAN;
    if (limit > UINT32_MAX)
        limit = UINT32_MAX;
    if ((uint64_t)from + 1 > limit)
        return 0;
    /* lo: newest known to exist (0: none yet); hi: first known missing. */
    uint64_t lo = 0, hi = limit + 1, step = 1;
    uint64_t v = (uint64_t)from + 1;
    while (asked < CF_REMOTE_SEARCH_MAX) {
        int t = versioned_exists(r, mirror, db, ext, (uint32_t)v, code);
        asked++;
        if (t < 0)
            return 0;
        if (!t) {
            hi = v;
            break;
        }
        lo = v;
        if (v == limit)
            break;
        step *= 2;
        v = (uint64_t)from + step;
        if (v > limit)
            v = limit;
    }
    if (lo == 0)
        return 0;
    while (hi - lo > 1 && asked < CF_REMOTE_SEARCH_MAX && hi <= limit) {
        uint64_t mid = lo + (hi - lo) / 2;
        int t = versioned_exists(r, mirror, db, ext, (uint32_t)mid, code);
        asked++;
        if (t < 0)
            return 0;
        if (t)
            lo = mid;
        else
            hi = mid;
    }
    cf_remote_say(r, CF_MSG_DEBUG, "%s: newest %s-N.%s at %s is %llu (%u requests)", db, db, ext, mirror,
                  (unsigned long long)lo, asked);
    return (uint32_t)lo;
}
