/* DNS update info: the c-ares lookup (the only network code here) and the pure
 * reading of freshclam's TXT records (behavior §4.2). */
#include "clamfresh/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the lookup ---------------------------------------------------------- */

typedef struct txt_query {
    int done;
    int status; /* ares status */
    cf_code code;
    cf_err *e;
    const char *name;
    char *out;
    size_t outsz;
    unsigned ttl;
} txt_query;

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Skips one (possibly compressed) domain name; returns the offset after it or 0. */
static size_t skip_name(const unsigned char *m, size_t n, size_t off)
{
    for (unsigned hops = 0; off < n && hops < 128; hops++) {
        unsigned len = m[off];
        if (len == 0)
            return off + 1;
        if ((len & 0xc0) == 0xc0)
            return off + 2 <= n ? off + 2 : 0;
        if (len & 0xc0)
            return 0;
        off += 1 + len;
    }
    return 0;
}

/* TTL of the first IN TXT answer; c-ares' TXT parser does not report it. */
static int answer_ttl(const unsigned char *m, size_t n, unsigned *ttl)
{
    if (n < 12)
        return 0;
    unsigned qd = get16(m + 4), an = get16(m + 6);
    size_t off = 12;
    for (unsigned i = 0; i < qd; i++) {
        off = skip_name(m, n, off);
        if (off == 0 || off + 4 > n)
            return 0;
        off += 4;
    }
    for (unsigned i = 0; i < an; i++) {
        off = skip_name(m, n, off);
        if (off == 0 || off + 10 > n)
            return 0;
        unsigned type = get16(m + off), cls = get16(m + off + 2);
        uint32_t t = ((uint32_t)m[off + 4] << 24) | ((uint32_t)m[off + 5] << 16) |
                     ((uint32_t)m[off + 6] << 8) | m[off + 7];
        unsigned rdlen = get16(m + off + 8);
        if (type == ns_t_txt && cls == ns_c_in) {
            *ttl = t;
            return 1;
        }
        off += 10 + rdlen;
        if (off > n)
            return 0;
    }
    return 0;
}

static void txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    txt_query *q = arg;
    q->done = 1;
    q->status = status;
    if (status != ARES_SUCCESS) {
        cf_code c = (status == ARES_ENOTFOUND || status == ARES_ENODATA) ? CF_ENOTFOUND : CF_ENET;
        q->code = cf_err_set(q->e, c, "DNS TXT query for %s failed: %s", q->name, ares_strerror(status));
        return;
    }
    struct ares_txt_ext *txt = NULL;
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
    if (rc != ARES_SUCCESS || txt == NULL) {
        cf_code c = (rc == ARES_ENODATA || txt == NULL) ? CF_ENOTFOUND : CF_EFORMAT;
        q->code = cf_err_set(q->e, c, "DNS TXT reply for %s unusable: %s", q->name,
                             ares_strerror(rc == ARES_SUCCESS ? ARES_ENODATA : rc));
        if (txt)
            ares_free_data(txt);
        return;
    }
    /* The list holds every character-string of every record; the head is the
     * first string of the first record, the only one freshclam reads. */
    if (txt->length + 1 > q->outsz) {
        q->code = cf_err_set(q->e, CF_ETOOBIG, "DNS TXT record of %s: %zu bytes, room for %zu", q->name,
                             txt->length, q->outsz ? q->outsz - 1 : 0);
    } else {
        memcpy(q->out, txt->txt, txt->length);
        q->out[txt->length] = '\0';
        if (memchr(q->out, '\0', txt->length) != NULL) {
            q->code = cf_err_set(q->e, CF_EFORMAT, "DNS TXT record of %s contains a NUL byte", q->name);
        } else {
            q->code = CF_OK;
            if (!answer_ttl(abuf, (size_t)alen, &q->ttl))
                q->ttl = 0;
        }
    }
    ares_free_data(txt);
}

static long ms_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static cf_code bind_local(ares_channel ch, const char *ip, cf_err *e)
{
    if (strchr(ip, ':')) {
        unsigned char a6[16];
        if (inet_pton(AF_INET6, ip, a6) != 1)
            return cf_err_set(e, CF_EINVAL, "LocalIPAddress %s is not an IPv6 address", ip);
        ares_set_local_ip6(ch, a6);
    } else {
        struct in_addr a4;
        if (inet_pton(AF_INET, ip, &a4) != 1)
            return cf_err_set(e, CF_EINVAL, "LocalIPAddress %s is not an IPv4 address", ip);
        ares_set_local_ip4(ch, ntohl(a4.s_addr));
    }
    return CF_OK;
}

cf_code cf_dns_query_txt_from(const char *name, const char *local_ip, char *out, size_t outsz, unsigned *ttl,
                              cf_err *e)
{
    if (name == NULL || *name == '\0' || out == NULL || outsz == 0)
        return cf_err_set(e, CF_EINVAL, "DNS TXT query: no name or no output buffer");
    out[0] = '\0';
    if (ttl)
        *ttl = 0;

    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS)
        return cf_err_set(e, CF_ENET, "c-ares initialization failed: %s", ares_strerror(rc));

    /* Short per-try timeout and few tries: the whole lookup must end well
     * within CF_DNS_TIMEOUT_MS, after which it is cancelled anyway. */
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.timeout = 1500;
    opts.tries = 2;
    ares_channel ch = NULL;
    rc = ares_init_options(&ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        ares_library_cleanup();
        return cf_err_set(e, CF_ENET, "c-ares resolver setup failed (reading /etc/resolv.conf): %s",
                          ares_strerror(rc));
    }
    cf_code code = CF_OK;
    if (local_ip && *local_ip && (code = bind_local(ch, local_ip, e)) != CF_OK)
        goto out;

    txt_query q = {0, 0, CF_ENET, e, name, out, outsz, 0};
    /* ares_query, not ares_search: like freshclam's res_query, no search-list expansion. */
    ares_query(ch, name, ns_c_in, ns_t_txt, txt_done, &q);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += CF_DNS_TIMEOUT_MS / 1000;
    deadline.tv_nsec += (long)(CF_DNS_TIMEOUT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    while (!q.done) {
        long left = ms_until(&deadline);
        if (left <= 0) {
            ares_cancel(ch); /* runs the callback with ARES_ECANCELLED */
            cf_err_set(e, CF_ENET, "DNS TXT query for %s timed out after %d ms", name, CF_DNS_TIMEOUT_MS);
            q.code = CF_ENET;
            break;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t np = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            /* c-ares' own READABLE/WRITABLE macros shift a signed 1 into the
             * sign bit for the last socket; test the bits unsigned. */
            if (((unsigned)bits >> i) & 1u)
                ev |= POLLIN;
            if (((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u)
                ev |= POLLOUT;
            if (ev) {
                pfd[np].fd = socks[i];
                pfd[np].events = ev;
                pfd[np].revents = 0;
                np++;
            }
        }
        struct timeval tv, maxtv = {left / 1000, (left % 1000) * 1000};
        struct timeval *tvp = ares_timeout(ch, &maxtv, &tv);
        int wait_ms = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
        if (wait_ms < 1)
            wait_ms = 1;
        int n = poll(pfd, np, wait_ms);
        if (n < 0 && errno != EINTR) {
            ares_cancel(ch);
            cf_err_set(e, CF_ENET, "DNS TXT query for %s: poll failed: %s", name, strerror(errno));
            q.code = CF_ENET;
            break;
        }
        if (n <= 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts, retries */
            continue;
        }
        for (nfds_t i = 0; i < np; i++) {
            ares_socket_t r = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
                ares_process_fd(ch, r, w);
        }
    }
    code = q.code;
    if (code == CF_OK && ttl)
        *ttl = q.ttl;
    if (code != CF_OK)
        out[0] = '\0';
out:
    ares_destroy(ch);
    ares_library_cleanup();
    return code;
}

cf_code cf_dns_query_txt(const char *name, char *out, size_t outsz, unsigned *ttl, cf_err *e)
{
    return cf_dns_query_txt_from(name, NULL, out, outsz, ttl, e);
}

/* ---- the record ---------------------------------------------------------- */

cf_code cf_dnsinfo_field(const char *txt, unsigned n, char *out, size_t outsz, cf_err *e)
{
    if (txt == NULL || out == NULL || outsz == 0)
        return cf_err_set(e, CF_EINVAL, "DNS record field: no record or no output buffer");
    out[0] = '\0';
    /* freshclam's splitter: each run of ':' is one separator, and a leading
     * separator counts, leaving field 0 empty. */
    size_t i = 0;
    unsigned k = 0;
    while (txt[i] && k != n) {
        if (txt[i] == ':') {
            k++;
            while (txt[i + 1] == ':')
                i++;
        }
        i++;
    }
    if (txt[i] == '\0' || txt[i] == ':')
        return cf_err_set(e, CF_ENOTFOUND, "DNS record has no field %u", n);
    size_t j = i;
    while (txt[j] && txt[j] != ':')
        j++;
    if (j - i + 1 > outsz)
        return cf_err_set(e, CF_ETOOBIG, "DNS record field %u: %zu bytes, room for %zu", n, j - i, outsz - 1);
    memcpy(out, txt + i, j - i);
    out[j - i] = '\0';
    return CF_OK;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* atoi-like reading of a time field (freshclam uses atoi: leading digits,
 * anything else reads as 0 and so counts as stale). */
static long long leading_number(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return 0;
    return v;
}

static int is_stale(long long record_time, time_t now)
{
    return (long long)now - record_time > CF_DNSINFO_MAX_AGE;
}

cf_code cf_dnsinfo_parse(const char *txt, time_t now, cf_dnsinfo *out, cf_err *e)
{
    if (txt == NULL || out == NULL)
        return cf_err_set(e, CF_EINVAL, "DNS update info: no record");
    memset(out, 0, sizeof *out);
    size_t len = strlen(txt);
    if (len >= sizeof out->txt)
        return cf_err_set(e, CF_ETOOBIG, "DNS update info: record of %zu bytes exceeds %zu", len,
                          sizeof out->txt - 1);
    memcpy(out->txt, txt, len + 1);

    char f[CF_DNS_TXT_MAX];
    if (cf_dnsinfo_field(txt, 3, f, sizeof f, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "Failed to find Record Time field in DNS Update Info.");
    long long rt = leading_number(f);
    if (is_stale(rt, now))
        return cf_err_set(e, CF_EFORMAT, "DNS record is older than 12 hours.");
    out->record_time = (time_t)rt;

    if (cf_dnsinfo_field(txt, 4, f, sizeof f, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "Failed to find Version Warning Flag in DNS Update Info.");
    out->version_warning = f[0] != '0';

    if (cf_dnsinfo_field(txt, 0, out->newest, sizeof out->newest, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "Failed to find New Version field in DNS Update Info.");
    return CF_OK;
}

int cf_dnsinfo_db_field(const char *db)
{
    static const struct {
        const char *name;
        int field;
    } map[] = {{"main", 1}, {"daily", 2}, {"safebrowsing", 6}, {"bytecode", 7}};
    if (db == NULL)
        return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(db, map[i].name) == 0)
            return map[i].field;
    return -1;
}

/* Versions are u32 in the CVD header; digits beyond that are "broken" too. */
static int parse_version(const char *s, unsigned *v)
{
    if (!all_digits(s) || strlen(s) > 10)
        return 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (x > UINT32_MAX)
        return 0;
    *v = (unsigned)x;
    return 1;
}

cf_code cf_dnsinfo_db_version(const cf_dnsinfo *d, const char *db, unsigned *version, cf_err *e)
{
    if (d == NULL || db == NULL || version == NULL)
        return cf_err_set(e, CF_EINVAL, "DNS update info: missing argument");
    *version = 0;
    int field = cf_dnsinfo_db_field(db);
    if (field < 0)
        return cf_err_set(
            e, CF_ENOTFOUND,
            "query_remote_database_version: Database name \"%s\" isn't listed in DNS update info.", db);
    char f[CF_DNS_TXT_MAX];
    if (cf_dnsinfo_field(d->txt, (unsigned)field, f, sizeof f, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "Invalid DNS update info. Falling back to HTTP mode.");
    if (!parse_version(f, version))
        return cf_err_set(e, CF_EFORMAT, "Broken database version in TXT record. Falling back to HTTP mode.");
    return CF_OK;
}

cf_code cf_dnsinfo_parse_db(const char *txt, time_t now, const char *db, unsigned *version, cf_err *e)
{
    if (txt == NULL || db == NULL || version == NULL)
        return cf_err_set(e, CF_EINVAL, "DNS database record: missing argument");
    *version = 0;
    if (strlen(txt) >= CF_DNS_TXT_MAX)
        return cf_err_set(e, CF_ETOOBIG, "DNS record for %s.cvd exceeds %d bytes", db, CF_DNS_TXT_MAX - 1);
    char f[CF_DNS_TXT_MAX];
    if (cf_dnsinfo_field(txt, 1, f, sizeof f, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "No recordtime field in TXT record for %s.cvd", db);
    if (is_stale(leading_number(f), now))
        return cf_err_set(e, CF_EFORMAT, "DNS record is older than 12 hours.");
    if (cf_dnsinfo_field(txt, 0, f, sizeof f, NULL) != CF_OK)
        return cf_err_set(e, CF_EFORMAT, "Invalid DNS reply. Falling back to HTTP mode.");
    if (!parse_version(f, version))
        return cf_err_set(e, CF_EFORMAT, "Broken database version in TXT record for %s.cvd", db);
    return CF_OK;
}

/* Length of the part of v that is compared: up to the first '-'. */
static size_t version_core(const char *v)
{
    const char *dash = strchr(v, '-');
    return dash ? (size_t)(dash - v) : strlen(v);
}

int cf_version_compare(const char *a, const char *b)
{
    size_t na = version_core(a), nb = version_core(b);
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        unsigned long long x = 0, y = 0;
        for (; i < na && a[i] != '.'; i++)
            if (isdigit((unsigned char)a[i]) && x < 1000000000ULL)
                x = x * 10 + (unsigned)(a[i] - '0');
        for (; j < nb && b[j] != '.'; j++)
            if (isdigit((unsigned char)b[j]) && y < 1000000000ULL)
                y = y * 10 + (unsigned)(b[j] - '0');
        if (x != y)
            return x < y ? -1 : 1;
        i++;
        j++;
    }
    return 0;
}

int cf_dnsinfo_outdated(const cf_dnsinfo *d, const char *local_version)
{
    if (d == NULL || local_version == NULL || !d->version_warning || d->newest[0] == '\0')
        return 0;
    if (strstr(local_version, "devel") || strstr(local_version, "beta") || strstr(local_version, "rc"))
        return 0;
    return cf_version_compare(local_version, d->newest) < 0;
}
