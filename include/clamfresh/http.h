/* The HTTP edge: libcurl requests into bounded memory buffers, shaped like
 * freshclam's (behavior §5.1), with its status handling expressed as outcomes
 * (§5.2) and its message texts produced by one helper. Retries, mirror rotation
 * and cool-down policy belong to the updater; this module only fetches. */
#ifndef CLAMFRESH_HTTP_H
#define CLAMFRESH_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/sink.h"

#define CF_HTTP_MAX_REDIRS 3
#define CF_HTTP_UA_MAX 127       /* freshclam's User-Agent bound (§5.1) */
#define CF_HTTP_RAY_SIZE 21      /* cf-ray value: 20 chars + NUL, as in freshclam.dat */
#define CF_HTTP_MSG_SIZE 1024    /* one formatted log line */
#define CF_HTTP_RANGE_HEAD 512   /* the version probe's Range: bytes=0-511 */
#define CF_HTTP_DEFAULT_STALL 60 /* seconds; used when stall_timeout is 0 */

/* The minimum rate that applies to every transfer, whatever ReceiveTimeout
 * says: fewer than CF_HTTP_MIN_RATE_BYTES (headers and body) in any window of
 * CF_HTTP_MIN_RATE_WINDOW seconds, counted from the moment the request is
 * sent, aborts it. 1 KiB in 30 s is about 34 bytes/s: a 2400 bit/s modem
 * clears it nine times over, GPRS a hundred times; 30 s outlasts four TCP
 * retransmission back-offs in a row (1+2+4+8 s) or a CDN's cold-cache first
 * byte. So only a server or middlebox that trickles on purpose (or is broken)
 * trips it. It bounds the trickle, not the total time (man clamfresh.conf(5),
 * StallTimeout). */
#define CF_HTTP_MIN_RATE_BYTES 1024
#define CF_HTTP_MIN_RATE_WINDOW 30

/* Plain parameters (not the settings struct) so the module stands alone.
 * Strings are copied by cf_http_new. NULL/0 means "not set". */
typedef struct cf_http_params {
    const char *user_agent; /* whole User-Agent value; NULL = libcurl sends none */
    long connect_timeout;   /* seconds (ConnectTimeout); 0 = libcurl default */
    long receive_timeout;   /* ReceiveTimeout: abort below 1 byte/s for this many s; 0 = off */
    long stall_timeout;     /* abort when no byte arrives for this many s, even when
                             * receive_timeout is 0; 0 = CF_HTTP_DEFAULT_STALL */
    const char *proxy_host; /* HTTPProxyServer; a leading "http://" is stripped */
    long proxy_port;        /* HTTPProxyPort; 0 = libcurl default */
    const char *proxy_user; /* HTTPProxyUsername (basic auth with proxy_password) */
    const char *proxy_password;
    int proxy_tunnel;     /* nonzero: CONNECT tunnel even for http:// URLs, as freshclam
                           * <= 1.5.3 does; 0: plain proxying (newer freshclam) */
    const char *local_ip; /* LocalIPAddress: binds DNS resolution only (§5.6) */
    int verbose;          /* curl trace to stdout (-v / LogVerbose) */
    /* Progress of a lone download (cf_http_get, or cf_http_get_many with one
     * request; never a Range probe), called about ten times a second while the
     * size is known and once more with done == total when it completed; NULL =
     * none. This is how the program draws freshclam's progress bar (§8.5). */
    void (*progress)(void *arg, double elapsed_s, uint64_t done, uint64_t total);
    void *progress_arg;
    /* The minimum rate; 0 = CF_HTTP_MIN_RATE_BYTES / CF_HTTP_MIN_RATE_WINDOW.
     * Not a setting: tests shorten the window to see the rule fire. */
    size_t min_rate_bytes;
    long min_rate_window; /* seconds */
} cf_http_params;

/* A client keeps its connections (one libcurl multi handle and its connection
 * cache) from request to request until cf_http_free, so the requests of a run
 * to one mirror share a connection: sequentially over HTTP/1.1 keep-alive, and
 * concurrently over HTTP/2 (negotiated by ALPN on https:// when libcurl has
 * nghttp2; plain HTTP/1.1 otherwise). One thread at a time; a progress
 * callback or sink must not call back into the same client. */
typedef struct cf_http cf_http;

/* Creates a client. Environment read here: CURL_CA_BUNDLE, FRESHCLAM_CLIENT_CERT,
 * FRESHCLAM_CLIENT_KEY, FRESHCLAM_CLIENT_KEY_PASSWD. A configuration that
 * freshclam accepts at start-up but that makes every request fail (client cert
 * without key, LocalIPAddress without c-ares in libcurl) still yields a client:
 * cf_http_setup_error() then returns freshclam's message, and every request
 * fails with that message (CF_EINVAL) without touching the network.
 * Fails only on bad arguments or allocation failure. libcurl itself is opened
 * at the client's first request (or here, to check LocalIPAddress); when it
 * cannot be, every request fails with CF_ENET saying why. */
cf_code cf_http_new(const cf_http_params *p, cf_http **out, cf_err *e);
void cf_http_free(cf_http *h);

/* NULL when requests can be made, else the text freshclam logs (without the
 * "WARNING: "/"ERROR: " prefix) for the reason they cannot: the §1.2 client
 * certificate warning or the §5.6 LocalIPAddress error. */
const char *cf_http_setup_error(const cf_http *h);

/* "host:port" of the configured proxy, or NULL without one; used in the
 * " (Proxy: <host>:<port>)" suffix of 404 messages. */
const char *cf_http_proxy_label(const cf_http *h);

/* "<base>/<file>" with exactly one '/' between them, for a mirror URL and a
 * file name. Returns 0, or -1 when it does not fit in outsz bytes. */
int cf_http_url_join(char *out, size_t outsz, const char *base, const char *file);

typedef struct cf_http_req {
    const char *url;            /* http://, https:// or file:// */
    int range_head;             /* nonzero: send "Range: bytes=0-511" (version probe) */
    int head;                   /* nonzero: a HEAD request (is the file there?) */
    time_t if_modified_since;   /* nonzero: send If-Modified-Since (RFC 1123, GMT) */
    const char *const *headers; /* NULL or NULL-terminated extra lines, e.g.
                                 * "Cache-Control: no-cache", "Pragma: no-cache" */
    size_t max_bytes;           /* body bound; the transfer is aborted beyond it
                                 * (CF_ETOOBIG); 0 = CF_MAX_DB_BYTES */
    int stop_at_max;            /* nonzero: reaching max_bytes ends the transfer successfully
                                 * with the first max_bytes bytes (the probe, where a server
                                 * that ignores Range sends the whole file) */
    /* When set, a 2xx body is not kept in resp->body but handed to sink as it arrives
     * (max_bytes still bounds it, checked before the sink sees the excess); the body of any
     * other status stays in resp->body as today. A sink failure aborts the transfer; its code
     * and message become resp->err. A transfer that fails later (a cut connection, a bound)
     * may already have fed the sink part of the body: the caller discards what it built. */
    const cf_sink *sink;
} cf_http_req;

typedef struct cf_http_resp {
    cf_err err;                    /* outcome of the transfer itself (see cf_http_get) */
    long status;                   /* HTTP status; 200 for a successful file:// transfer; 0 = none */
    cf_buf body;                   /* owned; released by cf_http_resp_free */
    long retry_after;              /* seconds from now (Retry-After as seconds or HTTP date,
                                    * via libcurl); 0 = absent, as freshclam reads it */
    char cf_ray[CF_HTTP_RAY_SIZE]; /* "cf-ray" response header, truncated to 20 chars; "" if none */
    time_t last_modified;          /* Last-Modified; -1 if absent */
    int curl_code;                 /* CURLcode; 0 = transport succeeded */
    char curl_msg[256];            /* curl_easy_strerror(curl_code), the text freshclam prints;
                                    * "" when curl_code is 0 (details are in err.msg) */
    char effective_url[1024];      /* URL after redirects (truncated if longer) */
    uint64_t bytes;                /* body bytes received: kept in body or handed to the sink */
    int unreachable;               /* 1: the host (or proxy) name did not resolve, or the network
                                    * or host is unreachable (ENETUNREACH, EHOSTUNREACH): retrying
                                    * this mirror now is pointless; else 0 */
} cf_http_resp;

/* Initializes *r to an empty response (also done by the request functions). */
void cf_http_resp_init(cf_http_resp *r);
void cf_http_resp_free(cf_http_resp *r);

/* Runs one request. If-Modified-Since that libcurl finds unmet (a 304, or a
 * file:// file not newer) is reported as status 304. Returns CF_OK when a complete response arrived, whatever
 * its status (classify it with cf_http_classify). Otherwise: CF_ENET for a libcurl failure (connect, timeout,
 * partial body, ...; curl_code/curl_msg set), CF_ETOOBIG when the announced Content-Length or the body
 * exceeds max_bytes ("<url>: the server announced N bytes; the bound for this file is M bytes" as soon as the
 * headers arrive, "<url>: more than M bytes; the bound for this file is M bytes" as soon as the body crosses
 * it), the sink's code and message when the sink failed (curl_code 0), CF_ENOMEM, CF_EINVAL for a setup
 * error. The stall guard and the minimum rate ("<url>: fewer than N bytes in M seconds; giving up") report
 * curl_code 28 (CURLE_OPERATION_TIMEDOUT, "Timeout was reached"), the code libcurl gives for ReceiveTimeout;
 * resp->err says which. resp->err carries the same code and message as *e. *resp must be freed with
 * cf_http_resp_free in every case. */
cf_code cf_http_get(cf_http *h, const cf_http_req *req, cf_http_resp *resp, cf_err *e);

/* Runs n requests over at most k connections to a host (curl multi: all n
 * at once as streams of one connection where HTTP/2 multiplexes), filling
 * resps[i] for reqs[i] exactly as cf_http_get would (each resps[i].err holds
 * that request's result). Returns CF_OK when every request got a complete
 * response, else the code of the first failed one (by index) in *e; the others
 * are still run to completion. k = 0 means 1. */
cf_code cf_http_get_many(cf_http *h, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k,
                         cf_err *e);

/* freshclam's reading of a response (§5.2). */
typedef enum cf_http_outcome {
    CF_HTTP_OK,             /* 200 or 206 (or a successful file:// transfer) */
    CF_HTTP_NOT_MODIFIED,   /* 304: up-to-date */
    CF_HTTP_FORBIDDEN,      /* 403: 24 h cool-down, exit 17 */
    CF_HTTP_NOT_FOUND,      /* 404 */
    CF_HTTP_RATE_LIMITED,   /* 429: cool-down from retry_after (or 4 h), DB counts as done */
    CF_HTTP_ORIGIN_TIMEOUT, /* 522: Cloudflare could not reach the origin */
    CF_HTTP_UNEXPECTED,     /* any other status */
    CF_HTTP_TRANSPORT,      /* no usable response: libcurl error, body too big, setup error */
} cf_http_outcome;

/* The one reading of a response; a response without a status is TRANSPORT. */
cf_http_outcome cf_http_classify(const cf_http_resp *r);

/* Connections opened (CURLINFO_NUM_CONNECTS summed) and requests run by h so
 * far; either pointer may be NULL. For benchmarks and tests of reuse. */
void cf_http_stats(const cf_http *h, unsigned *connections, unsigned *requests);

/* freshclam's User-Agent with an honest product token:
 *   "ClamAV/<engine> (OS: Linux, ARCH: <arch>, CPU: <cpu>, UUID: <uuid>) clamfresh/<v>"
 * The freshclam part is cut at CF_HTTP_UA_MAX chars exactly as freshclam cuts it;
 * the " clamfresh/<v>" token is appended only when the result still fits in
 * CF_HTTP_UA_MAX, so the string never exceeds freshclam's bound. out must hold
 * CF_HTTP_UA_MAX + 1 bytes. OS/ARCH/CPU are build-time strings, as in freshclam. */
void cf_http_user_agent(const char *engine_version, const char *uuid, char out[CF_HTTP_UA_MAX + 1]);

/* Formats t as an RFC 1123 date ("Tue, 22 Jun 2021 18:58:22 GMT"). */
void cf_http_date(time_t t, char out[32]);

#endif
