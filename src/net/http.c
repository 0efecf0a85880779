/* The HTTP edge over libcurl (behavior §5.1, §5.2, §5.4, §5.6). Every body goes
 * to a bounded memory buffer or, for a 2xx with a sink, through the sink; policy
 * (retries, mirrors, cool-down) is the updater's. All transfers of a client run
 * on one multi handle, whose connection cache is what lets them share
 * connections. */
#include "clamfresh/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clamfresh/limits.h"
#include "clamfresh/retryafter.h"
#include "clamfresh/version.h"
#include "curlapi_priv.h"

struct cf_http {
    char *user_agent;
    long connect_timeout, receive_timeout, stall_timeout;
    char *proxy_host;
    long proxy_port;
    char *proxy_user, *proxy_password;
    char *proxy_label;
    int proxy_tunnel;
    char *local_ip;
    int verbose;
    void (*progress)(void *arg, double elapsed_s, uint64_t done, uint64_t total);
    void *progress_arg;
    char *ca_bundle, *cert, *key, *key_passwd;
    char setup_error[CF_ERR_MSG]; /* "" = requests may run */
    size_t rate_bytes;            /* the minimum rate: rate_bytes per rate_window s */
    long rate_window;
    int http2;      /* libcurl can speak HTTP/2 (nghttp2) */
    CURLM *multi;   /* owns the connection cache shared by every request; NULL until the first */
    unsigned conns; /* CURLINFO_NUM_CONNECTS summed */
    unsigned reqs;
};

/* The minimum-rate window is checked in steps of window/RATE_STEPS, so "any
 * window" holds to within one step without keeping a sample per byte. */
#define RATE_STEPS 8

/* One transfer in flight. */
typedef struct xfer {
    cf_http *h;
    const cf_http_req *req;
    cf_http_resp *resp;
    CURL *c;
    struct curl_slist *hdrs;
    size_t max;
    int too_big;        /* the body bound was hit */
    uint64_t announced; /* Content-Length over the bound that was refused; 0 = none */
    int sent;           /* the request has gone out (left libcurl's queue and connected) */
    int stalled;        /* the stall guard fired */
    int slow;           /* the minimum rate was not met */
    int aborted;        /* the sink (or memory) failed: abort_err says why */
    cf_err abort_err;
    uint64_t rx;                    /* header and body bytes so far (the minimum rate counts both) */
    long long rate_next;            /* monotonic ms of the next rate sample; 0 = request not sent yet */
    uint64_t rate_ring[RATE_STEPS]; /* rx at the last RATE_STEPS samples */
    unsigned rate_n;                /* samples taken */
    int file_url;
    long retry_after;        /* the last Retry-After, parsed and capped (state.h) */
    long long last_activity; /* monotonic ms of the last header or body byte */
    int show_progress;       /* report to h->progress (a lone, non-probe download) */
    long long started, last_drawn;
    uint64_t total; /* announced size, 0 = unknown */
    char errbuf[CURL_ERROR_SIZE];
} xfer;

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

/* Milliseconds: whole seconds would let the guard fire up to a second early. */
static long long mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libcurl once loaded (curlapi.c); NULL until the first request of any client. */
static const cf_curl_api *curl;

/* Loads libcurl and sets up the client's connection cache: at the first
 * request, so a run that sends none never opens the library. */
static cf_code http_start(cf_http *h, cf_err *e)
{
    if (h->multi)
        return CF_OK;
    if (curl == NULL && (curl = cf_curl_api_get(e)) == NULL)
        return e ? e->code : CF_ENET;
    h->http2 = (curl->version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) != 0;
    h->multi = curl->multi_init();
    if (h->multi == NULL ||
        curl->multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK) {
        if (h->multi)
            curl->multi_cleanup(h->multi);
        h->multi = NULL;
        return cf_err_set(e, CF_ENOMEM, "cannot set up libcurl's multi interface");
    }
    return CF_OK;
}

void cf_http_free(cf_http *h)
{
    if (h == NULL)
        return;
    if (h->multi)
        curl->multi_cleanup(h->multi);
    free(h->user_agent);
    free(h->proxy_host);
    free(h->proxy_user);
    free(h->proxy_password);
    free(h->proxy_label);
    free(h->local_ip);
    free(h->ca_bundle);
    free(h->cert);
    free(h->key);
    free(h->key_passwd);
    free(h);
}

/* Detects at start-up what freshclam only finds per request: whether libcurl
 * accepts LocalIPAddress (it needs c-ares, §5.6). */
static void check_local_ip(cf_http *h)
{
    cf_err e = {0};
    if (http_start(h, &e) != CF_OK) {
        snprintf(h->setup_error, sizeof h->setup_error, "%s", e.msg);
        return;
    }
    CURL *c = curl->easy_init();
    if (c == NULL)
        return;
    int v6 = strchr(h->local_ip, ':') != NULL;
    CURLcode rc = curl->easy_setopt(c, v6 ? CURLOPT_DNS_LOCAL_IP6 : CURLOPT_DNS_LOCAL_IP4, h->local_ip);
    if (rc == CURLE_UNKNOWN_OPTION || rc == CURLE_NOT_BUILT_IN)
        snprintf(h->setup_error, sizeof h->setup_error,
                 "create_curl_handle: Unable to bind DNS resolves to %s. Option requires that libcurl was "
                 "built with c-ares.",
                 h->local_ip);
    else if (rc == CURLE_BAD_FUNCTION_ARGUMENT)
        /* freshclam says "IPv4" for both families. */
        snprintf(h->setup_error, sizeof h->setup_error,
                 "create_curl_handle: Unable to bind DNS resolves to %s. Invalid IPv4 address.", h->local_ip);
    curl->easy_cleanup(c);
}

cf_code cf_http_new(const cf_http_params *p, cf_http **out, cf_err *e)
{
    if (p == NULL || out == NULL)
        return cf_err_set(e, CF_EINVAL, "cf_http_new: missing argument");
    *out = NULL;
    cf_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return cf_err_set(e, CF_ENOMEM, "cf_http_new: out of memory");
    h->connect_timeout = p->connect_timeout > 0 ? p->connect_timeout : 0;
    h->receive_timeout = p->receive_timeout > 0 ? p->receive_timeout : 0;
    h->stall_timeout = p->stall_timeout > 0 ? p->stall_timeout : CF_HTTP_DEFAULT_STALL;
    h->proxy_port = p->proxy_port;
    h->proxy_tunnel = p->proxy_tunnel;
    h->verbose = p->verbose;
    h->progress = p->progress;
    h->progress_arg = p->progress_arg;
    h->rate_bytes = p->min_rate_bytes ? p->min_rate_bytes : CF_HTTP_MIN_RATE_BYTES;
    h->rate_window = p->min_rate_window > 0 ? p->min_rate_window : CF_HTTP_MIN_RATE_WINDOW;
    h->user_agent = dup_or_null(p->user_agent);
    const char *ph = p->proxy_host;
    if (ph && strncasecmp(ph, "http://", 7) == 0)
        ph += 7;
    h->proxy_host = dup_or_null(ph);
    h->proxy_user = dup_or_null(p->proxy_user);
    h->proxy_password = p->proxy_password ? strdup(p->proxy_password) : NULL;
    h->local_ip = dup_or_null(p->local_ip);
    h->ca_bundle = dup_or_null(getenv("CURL_CA_BUNDLE"));
    h->cert = dup_or_null(getenv("FRESHCLAM_CLIENT_CERT"));
    h->key = dup_or_null(getenv("FRESHCLAM_CLIENT_KEY"));
    h->key_passwd = dup_or_null(getenv("FRESHCLAM_CLIENT_KEY_PASSWD"));
    if (h->proxy_host) {
        size_t n = strlen(h->proxy_host) + 24;
        if ((h->proxy_label = malloc(n)) != NULL)
            snprintf(h->proxy_label, n, "%s:%ld", h->proxy_host, h->proxy_port);
    }
    if ((p->user_agent && !h->user_agent && *p->user_agent) || (ph && *ph && !h->proxy_host) ||
        (h->proxy_host && !h->proxy_label) || (p->proxy_password && !h->proxy_password)) {
        cf_http_free(h);
        return cf_err_set(e, CF_ENOMEM, "cf_http_new: out of memory");
    }
    if (h->cert && !h->key)
        snprintf(h->setup_error, sizeof h->setup_error, "%s",
                 "The FRESHCLAM_CLIENT_CERT environment variable was set, but FRESHCLAM_CLIENT_KEY was not "
                 "set. A client private key is also required if specifying a client certificate.");
    else if (h->local_ip)
        check_local_ip(h);
    *out = h;
    return CF_OK;
}

void cf_http_stats(const cf_http *h, unsigned *connections, unsigned *requests)
{
    if (connections)
        *connections = h ? h->conns : 0;
    if (requests)
        *requests = h ? h->reqs : 0;
}

const char *cf_http_setup_error(const cf_http *h)
{
    return (h && h->setup_error[0]) ? h->setup_error : NULL;
}

int cf_http_url_join(char *out, size_t outsz, const char *base, const char *file)
{
    size_t bl = strlen(base);
    int slash = bl > 0 && base[bl - 1] == '/';
    int w = snprintf(out, outsz, "%s%s%s", base, slash ? "" : "/", file);
    return w < 0 || (size_t)w >= outsz ? -1 : 0;
}

const char *cf_http_proxy_label(const cf_http *h)
{
    return h ? h->proxy_label : NULL;
}

void cf_http_resp_init(cf_http_resp *r)
{
    memset(r, 0, sizeof *r);
    r->last_modified = -1;
}

void cf_http_resp_free(cf_http_resp *r)
{
    if (r)
        cf_buf_free(&r->body);
}

void cf_http_date(time_t t, char out[32])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        out[0] = '\0';
}

/* ---- one transfer -------------------------------------------------------- */

/* A 2xx body (or a file:// one) goes to the request's sink when it has one. */
static int body_streams(const xfer *x)
{
    if (x->req->sink == NULL)
        return 0;
    if (x->file_url)
        return 1;
    long status = 0;
    curl->easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

/* Hands n body bytes on; 0, or -1 after recording why the transfer must stop. */
static int body_deliver(xfer *x, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (body_streams(x)) {
        if (cf_sink_write(x->req->sink, data, n, &x->abort_err) != CF_OK) {
            if (x->abort_err.code == CF_OK)
                cf_err_set(&x->abort_err, CF_EIO, "%s: the body's consumer failed", x->req->url);
            x->aborted = 1;
            return -1;
        }
    } else if (cf_buf_append(&x->resp->body, data, n) != CF_OK) {
        cf_err_set(&x->abort_err, CF_ENOMEM, "%s: out of memory for the body (%llu bytes so far)",
                   x->req->url, (unsigned long long)x->resp->bytes);
        x->aborted = 1;
        return -1;
    }
    x->resp->bytes += n;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    size_t n = size * nmemb;
    x->last_activity = mono_now();
    x->rx += n;
    uint64_t room = x->max - x->resp->bytes;
    if (n > room) {
        /* Hand on what fits when the caller asked for a prefix; either way
         * stop here: neither the buffer nor the sink sees the excess. */
        if (x->req->stop_at_max && body_deliver(x, data, (size_t)room) != 0)
            return 0;
        x->too_big = 1;
        return 0;
    }
    if (body_deliver(x, data, n) != 0)
        return 0;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    size_t n = size * nmemb;
    x->last_activity = mono_now();
    x->rx += n;
    /* A new status line starts a new response (redirect, 100-continue): forget
     * the previous response's cf-ray. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        x->resp->cf_ray[0] = '\0';
        x->retry_after = 0;
    }
    /* Header names are case-insensitive (HTTP/2 sends them in lower case). */
    static const char ray[] = "cf-ray: ";
    if (n > sizeof ray - 1 && strncasecmp(data, ray, sizeof ray - 1) == 0) {
        size_t i = sizeof ray - 1, k = 0;
        while (i < n && k < CF_HTTP_RAY_SIZE - 1 && data[i] != '\r' && data[i] != '\n')
            x->resp->cf_ray[k++] = data[i++];
        x->resp->cf_ray[k] = '\0';
    }
    /* Retry-After read here, bounded, instead of through libcurl, which
     * neither caps it nor saturates an overlong value. */
    static const char ra[] = "Retry-After:";
    if (n > sizeof ra - 1 && strncasecmp(data, ra, sizeof ra - 1) == 0) {
        char v[128];
        size_t k = 0;
        for (size_t i = sizeof ra - 1; i < n && k < sizeof v - 1 && data[i] != '\r' && data[i] != '\n'; i++)
            v[k++] = data[i];
        v[k] = '\0';
        long secs = 0;
        x->retry_after = cf_retry_after_parse(v, time(NULL), &secs) == CF_OK ? secs : 0;
    }
    /* Refuse an announced body over the bound before any of it arrives. */
    if (!x->req->stop_at_max && n > 15 && strncasecmp(data, "Content-Length:", 15) == 0) {
        unsigned long long len = strtoull(data + 15, NULL, 10);
        if (len > x->max) {
            x->too_big = 1;
            x->announced = len;
            return 0;
        }
    }
    return n;
}

/* The minimum rate: samples rx every window/RATE_STEPS ms from the moment the
 * request went out (connecting is ConnectTimeout's business) and fails when
 * the bytes of the last whole window fall short. Returns -1 to abort. */
static int rate_check(xfer *x, long long now)
{
    cf_http *h = x->h;
    long long step = (long long)h->rate_window * 1000 / RATE_STEPS;
    if (step < 1)
        step = 1;
    if (x->rate_next == 0) {
        curl_off_t sent = 0;
        if (x->rx == 0 &&
            (curl->easy_getinfo(x->c, CURLINFO_PRETRANSFER_TIME_T, &sent) != CURLE_OK || sent <= 0))
            return 0;
        x->rate_ring[0] = x->rx;
        x->rate_n = 1;
        x->rate_next = now + step;
        return 0;
    }
    while (now >= x->rate_next) {
        unsigned slot = x->rate_n % RATE_STEPS;
        /* Before it is overwritten, the slot holds rx of one window ago. */
        if (x->rate_n >= RATE_STEPS && x->rx - x->rate_ring[slot] < h->rate_bytes)
            return -1;
        x->rate_ring[slot] = x->rx;
        x->rate_n++;
        x->rate_next += step;
    }
    return 0;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    xfer *x = arg;
    long long now = mono_now();
    if (!x->sent) {
        /* Queued behind the connection limit, or connecting (ConnectTimeout's
         * business): the stall and rate clocks start when the request goes out. */
        curl_off_t pre = 0;
        if (curl->easy_getinfo(x->c, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK || pre <= 0) {
            x->last_activity = now;
            return 0;
        }
        x->sent = 1;
    }
    if (now - x->last_activity >= (long long)x->h->stall_timeout * 1000) {
        x->stalled = 1;
        return 1;
    }
    if (rate_check(x, now) != 0) {
        x->slow = 1;
        return 1;
    }
    long status = 0;
    if (x->show_progress && dltotal > 0 &&
        curl->easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status >= 200 &&
        status < 300) {
        x->total = (uint64_t)dltotal;
        /* The final line (done == total) is drawn once, after the transfer. */
        if (dlnow < dltotal && now - x->last_drawn >= 100) {
            x->last_drawn = now;
            x->h->progress(x->h->progress_arg, (double)(now - x->started) / 1000.0, (uint64_t)dlnow,
                           (uint64_t)dltotal);
        }
    }
    return 0;
}

#define SETOPT(opt, val)                                                                                     \
    do {                                                                                                     \
        if (curl->easy_setopt(x->c, opt, val) != CURLE_OK)                                                   \
            return cf_err_set(&x->resp->err, CF_EINVAL, "%s: libcurl rejected option %s", x->req->url,       \
                              #opt);                                                                         \
    } while (0)

static cf_code xfer_setup(xfer *x)
{
    cf_http *h = x->h;
    const cf_http_req *req = x->req;
    x->max = req->max_bytes ? req->max_bytes : CF_MAX_DB_BYTES;
    x->last_activity = mono_now();
    x->file_url = strncasecmp(req->url, "file:", 5) == 0;
    if ((x->c = curl->easy_init()) == NULL)
        return cf_err_set(&x->resp->err, CF_ENOMEM, "%s: curl_easy_init failed", req->url);

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https,file");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
    SETOPT(CURLOPT_MAXREDIRS, (long)CF_HTTP_MAX_REDIRS);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, x);
    SETOPT(CURLOPT_NOPROGRESS, 0L);
    SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(CURLOPT_XFERINFODATA, x);
    SETOPT(CURLOPT_FILETIME, 1L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->http2) {
        /* HTTP/2 when the server offers it by ALPN; HTTP/1.1 otherwise. */
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /* Concurrent requests wait for the first connection to say whether it
         * multiplexes instead of each opening its own. */
        if (strncasecmp(req->url, "https:", 6) == 0)
            SETOPT(CURLOPT_PIPEWAIT, 1L);
    }
    if (h->verbose) {
        SETOPT(CURLOPT_VERBOSE, 1L);
        SETOPT(CURLOPT_STDERR, stdout);
    }
    if (h->user_agent)
        SETOPT(CURLOPT_USERAGENT, h->user_agent);
    if (h->connect_timeout)
        SETOPT(CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
    if (h->receive_timeout) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(CURLOPT_LOW_SPEED_TIME, h->receive_timeout);
    }
    if (h->local_ip) {
        int v6 = strchr(h->local_ip, ':') != NULL;
        SETOPT(v6 ? CURLOPT_DNS_LOCAL_IP6 : CURLOPT_DNS_LOCAL_IP4, h->local_ip);
        SETOPT(CURLOPT_IPRESOLVE, v6 ? CURL_IPRESOLVE_V6 : CURL_IPRESOLVE_V4);
    }
    if (h->proxy_host) {
        SETOPT(CURLOPT_PROXY, h->proxy_host);
        if (h->proxy_port)
            SETOPT(CURLOPT_PROXYPORT, h->proxy_port);
        if (h->proxy_tunnel) {
            SETOPT(CURLOPT_HTTPPROXYTUNNEL, 1L);
            SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
        }
        if (h->proxy_user) {
            SETOPT(CURLOPT_PROXYUSERNAME, h->proxy_user);
            SETOPT(CURLOPT_PROXYPASSWORD, h->proxy_password ? h->proxy_password : "");
        }
    }
    if (h->ca_bundle)
        SETOPT(CURLOPT_CAINFO, h->ca_bundle);
    if (h->cert) {
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(CURLOPT_SSLCERT, h->cert);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        SETOPT(CURLOPT_SSLKEY, h->key);
        if (h->key_passwd)
            SETOPT(CURLOPT_KEYPASSWD, h->key_passwd);
    }
    if (req->range_head)
        SETOPT(CURLOPT_RANGE, "0-511");
    if (req->head)
        SETOPT(CURLOPT_NOBODY, 1L);
    if (req->if_modified_since) {
        SETOPT(CURLOPT_TIMEVALUE_LARGE, (curl_off_t)req->if_modified_since);
        SETOPT(CURLOPT_TIMECONDITION, (long)CURL_TIMECOND_IFMODSINCE);
    }
    if (!x->file_url && req->headers && *req->headers) {
        /* Connections stay open for the client's next request (freshclam
         * sends "Connection: close"); libcurl's own default Accept header
         * stays and no Accept-Encoding is sent. */
        struct curl_slist *l = NULL;
        for (const char *const *p = req->headers; *p; p++) {
            struct curl_slist *t = curl->slist_append(l, *p);
            if (t == NULL) {
                curl->slist_free_all(l);
                return cf_err_set(&x->resp->err, CF_ENOMEM, "%s: out of memory for headers", req->url);
            }
            l = t;
        }
        x->hdrs = l;
        SETOPT(CURLOPT_HTTPHEADER, x->hdrs);
    }
    return CF_OK;
}

/* Turns libcurl's result into the response fields and the cf_err outcome. */
static cf_code xfer_finish(xfer *x, CURLcode rc)
{
    cf_http_resp *r = x->resp;
    long status = 0, unmet = 0;
    curl_off_t ftime = -1;
    char *eff = NULL;
    curl->easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
    curl->easy_getinfo(x->c, CURLINFO_CONDITION_UNMET, &unmet);
    curl->easy_getinfo(x->c, CURLINFO_FILETIME_T, &ftime);
    if (curl->easy_getinfo(x->c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
        snprintf(r->effective_url, sizeof r->effective_url, "%s", eff);
    r->status = status;
    r->retry_after = x->retry_after;
    r->last_modified = ftime >= 0 ? (time_t)ftime : -1;
    long conns = 0;
    if (curl->easy_getinfo(x->c, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
        x->h->conns += (unsigned)conns;
    x->h->reqs++;

    if (x->too_big && x->req->stop_at_max && rc == CURLE_WRITE_ERROR)
        rc = CURLE_OK; /* the prefix the caller asked for has arrived */
    if (rc == CURLE_OK) {
        if (unmet)
            r->status = 304;
        else if (r->status == 0 && x->file_url)
            r->status = 200;
        if (x->show_progress && x->total > 0 && r->bytes == x->total && r->status >= 200 && r->status < 300)
            x->h->progress(x->h->progress_arg, (double)(mono_now() - x->started) / 1000.0, x->total,
                           x->total);
        return r->err.code = CF_OK;
    }
    if (x->aborted) {
        /* The consumer's own words; libcurl's "Failed writing received data"
         * would hide them. */
        r->err = x->abort_err;
        return r->err.code;
    }
    if (x->too_big) {
        r->curl_code = (int)rc;
        snprintf(r->curl_msg, sizeof r->curl_msg, "%s", curl->easy_strerror(rc));
        if (x->announced)
            return cf_err_set(&r->err, CF_ETOOBIG,
                              "%s: the server announced %llu bytes; the bound for this file is %zu bytes",
                              x->req->url, (unsigned long long)x->announced, x->max);
        return cf_err_set(&r->err, CF_ETOOBIG,
                          "%s: more than %zu bytes; the bound for this file is %zu bytes", x->req->url,
                          x->max, x->max);
    }
    if (x->stalled || x->slow) {
        r->curl_code = CURLE_OPERATION_TIMEDOUT;
        snprintf(r->curl_msg, sizeof r->curl_msg, "%s", curl->easy_strerror(CURLE_OPERATION_TIMEDOUT));
        if (x->slow)
            return cf_err_set(&r->err, CF_ENET, "%s: fewer than %zu bytes in %ld seconds; giving up",
                              x->req->url, x->h->rate_bytes, x->h->rate_window);
        return cf_err_set(&r->err, CF_ENET, "%s: no data received for %ld seconds (%llu body bytes so far)",
                          x->req->url, x->h->stall_timeout, (unsigned long long)r->bytes);
    }
    r->curl_code = (int)rc;
    snprintf(r->curl_msg, sizeof r->curl_msg, "%s", curl->easy_strerror(rc));
    long oserr = 0;
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
        r->unreachable = 1;
    else if (rc == CURLE_COULDNT_CONNECT && curl->easy_getinfo(x->c, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK &&
             (oserr == ENETUNREACH || oserr == EHOSTUNREACH))
        r->unreachable = 1;
    return cf_err_set(&r->err, CF_ENET, "%s: %s (curl error %d)", x->req->url,
                      x->errbuf[0] ? x->errbuf : curl->easy_strerror(rc), (int)rc);
}

static void xfer_cleanup(xfer *x)
{
    if (x->c)
        curl->easy_cleanup(x->c);
    curl->slist_free_all(x->hdrs);
    x->c = NULL;
    x->hdrs = NULL;
}

/* Prepares resp and either sets up the transfer or records why it cannot run. */
static cf_code xfer_begin(cf_http *h, const cf_http_req *req, cf_http_resp *resp, xfer *x)
{
    cf_http_resp_init(resp);
    memset(x, 0, sizeof *x);
    x->h = h;
    x->req = req;
    x->resp = resp;
    if (req == NULL || req->url == NULL || *req->url == '\0')
        return cf_err_set(&resp->err, CF_EINVAL, "HTTP request without a URL");
    if (h->setup_error[0])
        return cf_err_set(&resp->err, CF_EINVAL, "%s", h->setup_error);
    x->started = mono_now();
    cf_code c = xfer_setup(x);
    if (c != CF_OK)
        xfer_cleanup(x);
    return c;
}

static void copy_err(cf_err *e, const cf_err *src)
{
    if (e)
        *e = *src;
}

cf_code cf_http_get(cf_http *h, const cf_http_req *req, cf_http_resp *resp, cf_err *e)
{
    if (h == NULL || resp == NULL)
        return cf_err_set(e, CF_EINVAL, "cf_http_get: missing argument");
    if (req == NULL) {
        cf_http_resp_init(resp);
        cf_err_set(&resp->err, CF_EINVAL, "HTTP request without a URL");
    } else {
        (void)cf_http_get_many(h, req, resp, 1, 1, NULL);
    }
    copy_err(e, &resp->err);
    return resp->err.code;
}

/* Starts reqs[i] on the client's multi handle; 0, or -1 when it finished at
 * once (resps[i].err says why). */
static int many_start(cf_http *h, const cf_http_req *reqs, cf_http_resp *resps, size_t n, size_t i, xfer *x)
{
    if (xfer_begin(h, &reqs[i], &resps[i], x) != CF_OK)
        return -1;
    /* Concurrent transfers would overwrite each other's bar. */
    x->show_progress = n == 1 && h->progress != NULL && !reqs[i].range_head;
    curl->easy_setopt(x->c, CURLOPT_PRIVATE, (void *)x);
    if (curl->multi_add_handle(h->multi, x->c) != CURLM_OK) {
        cf_err_set(&resps[i].err, CF_ENET, "%s: cannot add the transfer", reqs[i].url);
        xfer_cleanup(x);
        return -1;
    }
    return 0;
}

/* Collects the transfers libcurl reports done; returns how many. */
static size_t many_reap(cf_http *h)
{
    size_t done = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl->multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = msg->data.result;
        curl->multi_remove_handle(h->multi, msg->easy_handle);
        xfer_finish(x, rc);
        xfer_cleanup(x);
        done++;
    }
    return done;
}

cf_code cf_http_get_many(cf_http *h, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k,
                         cf_err *e)
{
    if (h == NULL || (n > 0 && (reqs == NULL || resps == NULL)))
        return cf_err_set(e, CF_EINVAL, "cf_http_get_many: missing argument");
    if (k == 0)
        k = 1;
    xfer *xs = calloc(n ? n : 1, sizeof *xs);
    if (xs == NULL) {
        for (size_t i = 0; i < n; i++) {
            cf_http_resp_init(&resps[i]);
            cf_err_set(&resps[i].err, CF_ENOMEM, "%s: out of memory", reqs[i].url ? reqs[i].url : "?");
        }
        return cf_err_set(e, CF_ENOMEM, "cf_http_get_many: out of memory");
    }
    cf_err se = {0};
    if (n > 0 && http_start(h, &se) != CF_OK) {
        for (size_t i = 0; i < n; i++) {
            cf_http_resp_init(&resps[i]);
            cf_err_set(&resps[i].err, se.code, "%s: %s", reqs[i].url ? reqs[i].url : "?", se.msg);
        }
        free(xs);
        copy_err(e, &resps[0].err);
        return se.code;
    }
    /* Keep up to k idle connections (at least libcurl's usual 4) for the
     * next call instead of closing all but a few. */
    curl->multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(k > 4 ? k : 4));
    /* k bounds the connections to a host, not the transfers: every transfer
     * is handed to libcurl at once, so a multiplexed (HTTP/2) connection
     * carries them all as streams in one round, and over HTTP/1.1 libcurl
     * starts a queued transfer the moment one of the k connections frees up. */
    curl->multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)k);

    size_t next = 0, running = 0, finished = 0;
    while (finished < n) {
        /* Hand every transfer over; one that cannot start is finished at once. */
        while (next < n) {
            size_t i = next++;
            if (many_start(h, reqs, resps, n, i, &xs[i]) != 0)
                finished++;
            else
                running++;
        }
        if (running == 0)
            continue;
        int still = 0;
        if (curl->multi_perform(h->multi, &still) != CURLM_OK)
            break;
        size_t done = many_reap(h);
        running -= done;
        finished += done;
        /* Finished transfers may have freed connections: reuse them before waiting. */
        if (done == 0 && (still > 0 || running > 0))
            curl->multi_poll(h->multi, NULL, 0, 200, NULL);
    }
    /* Only reached early if libcurl's multi interface itself failed. */
    for (size_t i = 0; i < n; i++) {
        if (xs[i].c) {
            curl->multi_remove_handle(h->multi, xs[i].c);
            cf_err_set(&resps[i].err, CF_ENET, "%s: transfer abandoned (multi interface failure)",
                       reqs[i].url);
            xfer_cleanup(&xs[i]);
        }
    }
    for (size_t i = next; i < n; i++) {
        cf_http_resp_init(&resps[i]);
        cf_err_set(&resps[i].err, CF_ENET, "%s: not started (multi interface failure)", reqs[i].url);
    }
    free(xs);

    cf_code c = CF_OK;
    for (size_t i = 0; i < n; i++) {
        if (resps[i].err.code != CF_OK) {
            copy_err(e, &resps[i].err);
            c = resps[i].err.code;
            break;
        }
    }
    return c;
}

/* ---- freshclam's reading and wording ------------------------------------ */

cf_http_outcome cf_http_classify(const cf_http_resp *r)
{
    /* No status at all is no answer, whatever err says. */
    if (r->err.code != CF_OK || r->status == 0)
        return CF_HTTP_TRANSPORT;
    switch (r->status) {
    case 200:
    case 206:
        return CF_HTTP_OK;
    case 304:
        return CF_HTTP_NOT_MODIFIED;
    case 403:
        return CF_HTTP_FORBIDDEN;
    case 404:
        return CF_HTTP_NOT_FOUND;
    case 429:
        return CF_HTTP_RATE_LIMITED;
    case 522:
        return CF_HTTP_ORIGIN_TIMEOUT;
    default:
        return CF_HTTP_UNEXPECTED;
    }
}

/* Build-time strings, as freshclam's TARGET_ARCH_TYPE / TARGET_CPU_TYPE. */
#if defined(__x86_64__)
#define CF_ARCH "x86_64"
#elif defined(__i386__)
#define CF_ARCH "i386"
#elif defined(__aarch64__)
#define CF_ARCH "aarch64"
#elif defined(__arm__)
#define CF_ARCH "arm"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CF_ARCH "ppc64le"
#elif defined(__powerpc64__)
#define CF_ARCH "ppc64"
#elif defined(__s390x__)
#define CF_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define CF_ARCH "riscv64"
#else
#define CF_ARCH "unknown"
#endif

void cf_http_user_agent(const char *engine_version, const char *uuid, char out[CF_HTTP_UA_MAX + 1])
{
    /* freshclam formats into a 128-byte buffer, so its part is cut at 127. */
    snprintf(out, CF_HTTP_UA_MAX + 1, "ClamAV/%s (OS: Linux, ARCH: " CF_ARCH ", CPU: " CF_ARCH ", UUID: %s)",
             engine_version ? engine_version : "", uuid ? uuid : "");
    size_t n = strlen(out);
    size_t tok = strlen(" " CF_PRODUCT);
    if (n + tok <= CF_HTTP_UA_MAX)
        memcpy(out + n, " " CF_PRODUCT, tok + 1);
}
