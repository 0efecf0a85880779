#!/bin/bash
# Proves the end-to-end harness (tests/lib/harness.sh) on real servers: the test
# mirror honours Range, nginx serves a stale cached file (the problem clamfresh
# exists for), dnsmasq in a private namespace answers TXT queries for dig and for
# c-ares, and clamd 1.4.6 answers PING and reloads on RELOAD.
. "${CF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/harness.sh"

cf_require_cmd python3 curl

# ---- 1. test mirror and a Range request
cf_tmpdir WWW
head -c 4096 /dev/urandom >"$WWW/blob.bin"
cf_start_mirror "$WWW"
cf_tmpdir T
cf_expect_exit 0 curl -sS -r 0-511 -o "$T/range.bin" -w '%{http_code}' "$MIRROR_URL/blob.bin"
cf_expect_out '^206$'
cf_check "Range body is the first 512 bytes" cmp -s "$T/range.bin" <(head -c 512 "$WWW/blob.bin")
cf_expect_file_match "$MIRROR_LOG" '"path": "/blob\.bin".*"range": "bytes=0-511".*"status": 206'
cf_expect_exit 0 curl -sS -o /dev/null -w '%{http_code}' "$MIRROR_URL/absent.cvd"
cf_expect_out '^404$'

# ---- 2. nginx caching proxy serves a stale copy
if cf_have_cmd nginx; then
    printf 'daily version 1\n' >"$WWW/daily.cvd"
    cf_start_nginx_cache "$MIRROR_URL"
    cf_expect_exit 0 curl -sS -D "$T/h1" -o "$T/b1" "$PROXY_URL/daily.cvd"
    cf_check "first fetch through the cache is version 1" grep -qx 'daily version 1' "$T/b1"
    cf_expect_file_match "$T/h1" '^X-Cache-Status: MISS'
    printf 'daily version 2\n' >"$WWW/daily.cvd"
    cf_expect_exit 0 curl -sS -D "$T/h2" -o "$T/b2" "$PROXY_URL/daily.cvd"
    cf_check "after the upstream changed, the cache still serves version 1" \
        grep -qx 'daily version 1' "$T/b2"
    cf_expect_file_match "$T/h2" '^X-Cache-Status: HIT'
    # a request that asks for no-cache does not help either: the proxy ignores it
    cf_expect_exit 0 curl -sS -H 'Cache-Control: no-cache' -H 'Pragma: no-cache' -o "$T/b3" \
        "$PROXY_URL/daily.cvd"
    cf_check "no-cache request headers still get the stale copy" grep -qx 'daily version 1' "$T/b3"
    cf_expect_exit 0 curl -sS -D "$T/h4" -o "$T/b4" "$PROXY_URL/daily.cvd?version=2"
    cf_check "a query string is a new cache key and gets version 2" grep -qx 'daily version 2' "$T/b4"
    cf_expect_file_match "$T/h4" '^X-Cache-Status: MISS'
    n=$(cf_mirror_count '"path": "/daily\.cvd"')
    cf_check "the mirror saw exactly 2 requests for daily.cvd (got $n)" [ "$n" = 2 ]
else
    cf__say "SKIP part: nginx not installed"
fi

# ---- 3. DNS TXT in a private namespace
if cf_is_root && cf_have_cmd ip dnsmasq; then
    cf_netns_create
    TXT=$(cf_txt_now 1.4.6 62 27830)
    NOW=$(date +%s)
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$TXT" "test.cvd.clamav.net=6:$NOW"
    cf_check "namespace has its own resolv.conf" \
        cf_netns_exec grep -qx 'nameserver 127.0.0.1' /etc/resolv.conf
    if cf_have_cmd dig; then
        cf_expect_exit 0 cf_netns_exec dig +short +time=2 +tries=1 TXT current.cvd.clamav.net
        cf_expect_out "^\"\Q$TXT\E\"$"
        cf_expect_exit 0 cf_netns_exec dig +short +time=2 +tries=1 TXT test.cvd.clamav.net
        cf_expect_out "^\"6:$NOW\"$"
        cf_expect_file_match "$DNSMASQ_LOG" 'query\[TXT\] current\.cvd\.clamav\.net'
    else
        cf__say "SKIP part: dig not installed (Debian package dnsutils)"
    fi
    # the namespace cannot reach servers on the host's loopback ...
    cf_expect_exit 7 cf_netns_exec curl -sS --max-time 5 "$MIRROR_URL/blob.bin"
    # ... but a mirror started inside it is reachable from inside it
    CF_SERVE_IN_NETNS=1 cf_start_mirror "$WWW"
    cf_expect_exit 0 cf_netns_exec curl -sS -o /dev/null -w '%{http_code}' "$MIRROR_URL/blob.bin"
    cf_expect_out '^200$'

    # c-ares reads the namespace's resolv.conf like the system resolver does
    if cf_have_cmd cc pkg-config && pkg-config --exists libcares; then
        cat >"$T/txt.c" <<'CEOF'
#include <ares.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>

static int status = 2;

static void done(void *arg, int st, int timeouts, unsigned char *abuf, int alen)
{
    (void)arg;
    (void)timeouts;
    struct ares_txt_reply *txt = NULL;
    if (st != ARES_SUCCESS || ares_parse_txt_reply(abuf, alen, &txt) != ARES_SUCCESS) {
        fprintf(stderr, "lookup failed: %s\n", ares_strerror(st));
        return;
    }
    printf("%.*s\n", (int)txt->length, (const char *)txt->txt);
    ares_free_data(txt);
    status = 0;
}

int main(int argc, char **argv)
{
    ares_channel ch;
    if (argc != 2 || ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS || ares_init(&ch) != ARES_SUCCESS)
        return 2;
    ares_query(ch, argv[1], ns_c_in, ns_t_txt, done, NULL);
    for (;;) {
        fd_set r, w;
        FD_ZERO(&r);
        FD_ZERO(&w);
        int n = ares_fds(ch, &r, &w);
        if (n == 0)
            break;
        struct timeval tv, *tp = ares_timeout(ch, NULL, &tv);
        select(n, &r, &w, NULL, tp);
        ares_process(ch, &r, &w);
    }
    ares_destroy(ch);
    return status;
}
CEOF
        # shellcheck disable=SC2046
        if cc -w -o "$T/txt" "$T/txt.c" $(pkg-config --cflags --libs libcares) 2>"$T/cc.err"; then
            cf_expect_exit 0 cf_netns_exec "$T/txt" current.cvd.clamav.net
            cf_expect_out "^\Q$TXT\E$"
            cf_expect_exit 2 cf_netns_exec "$T/txt" nosuch.cvd.clamav.net
        else
            cat "$T/cc.err" >&2
            cf_fail "cannot build the c-ares check program"
        fi
    else
        cf__say "SKIP part: no C compiler or libcares pkg-config for the c-ares check"
    fi
else
    cf__say "SKIP part: DNS in a namespace needs root, ip (iproute2) and dnsmasq"
fi

# ---- 4. real clamd on a 0-signature database
if cf_have_cmd clamd || [ -x /usr/sbin/clamd ]; then
    if [ -f "$CF_VECTORS/clamav/test-1.cvd" ]; then
        cf_tmpdir DB
        # ClamAV-signed test database (0 signatures); clamd accepts only
        # ClamAV-signed containers, so a cvdtool-made one (test key) would not load.
        cp "$CF_VECTORS/clamav/test-1.cvd" "$DB/test.cvd"
        for mode in unix tcp; do
            cf_start_clamd "$DB" "$mode"
            cf_check "clamd ($mode) answers PING" [ "$(cf_clamd_cmd 'nPING\n')" = PONG ]
            cf_check "clamd ($mode) loaded 0 signatures" grep -q 'Loaded 0 signatures' "$CLAMD_LOG"
            cf_check "clamd ($mode) answers RELOAD\\0 with RELOADING" \
                [ "$(cf_clamd_cmd 'RELOAD\0')" = RELOADING ]
            cf_check "clamd ($mode) logs the reload" \
                cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded \(0 signatures\)' 60
            cf_stop "$CLAMD_PID"
        done
    else
        cf__say "SKIP part: $CF_VECTORS/clamav/test-1.cvd absent"
    fi
else
    cf__say "SKIP part: clamd not installed (Debian package clamav-daemon)"
fi
