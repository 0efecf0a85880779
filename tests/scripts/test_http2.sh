#!/usr/bin/env bash
# HTTP/2 against real nginx: 30 files fetched with one cf_http_get_many travel
# over ONE TLS connection (multiplexed streams), and later requests of the same
# client reuse it. nginx serves https on loopback with a certificate from a CA
# made here with openssl; CURL_CA_BUNDLE points at that CA. Its access log
# records $connection and $server_protocol per request, which is what is
# counted. A second server without http2 shows the same client falling back to
# HTTP/1.1 with at most k connections.
#
# The client side is a small driver compiled here against libclamfresh_core.a,
# so the test exercises src/http.c itself.
. "$(dirname "$0")/../lib/harness.sh"

cf_is_root || cf_skip "needs root (nginx workers run as root to read the test's private directory)"
cf_require_cmd nginx openssl cc
nginx -V 2>&1 | grep -q -- '--with-http_v2_module' || cf_skip "this nginx has no http_v2_module"
if [ -z "${CF_BINARY_DIR:-}" ] || [ ! -f "$CF_BINARY_DIR/libclamfresh_core.a" ]; then
    cf_skip "libclamfresh_core.a not built (CF_BINARY_DIR)"
fi
curl_features=$(curl-config --features 2>/dev/null || true)
grep -qx HTTP2 <<<"$curl_features" || cf_skip "libcurl has no HTTP/2 (nghttp2)"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# ------------------------------------------------------------- the driver
cf_tmpdir DRV
cat >"$DRV/fetch.c" <<'EOF'
/* fetch OUTDIR BASE_URL N K: cf_http_get_many of BASE/f-1.bin .. f-N.bin with K
 * at once, then two cf_http_get of f-1.bin on the same client; writes each
 * body to OUTDIR and prints "connections=C requests=R" after each phase. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/http.h"

static void stats(const cf_http *h, const char *phase)
{
    unsigned c = 0, r = 0;
    cf_http_stats(h, &c, &r);
    printf("%s connections=%u requests=%u\n", phase, c, r);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    size_t n = strtoul(argv[3], NULL, 10);
    unsigned k = (unsigned)strtoul(argv[4], NULL, 10);
    cf_http_params p;
    memset(&p, 0, sizeof p);
    p.connect_timeout = 10;
    cf_http *h = NULL;
    cf_err e = {0};
    if (cf_http_new(&p, &h, &e) != CF_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    cf_http_req *reqs = calloc(n, sizeof *reqs);
    cf_http_resp *resps = calloc(n, sizeof *resps);
    char (*urls)[512] = calloc(n, sizeof *urls);
    if (!reqs || !resps || !urls)
        return 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(urls[i], sizeof urls[i], "%s/f-%zu.bin", argv[2], i + 1);
        reqs[i].url = urls[i];
    }
    int rc = 0;
    if (cf_http_get_many(h, reqs, resps, n, k, &e) != CF_OK) {
        fprintf(stderr, "%s\n", e.msg);
        rc = 1;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/f-%zu.bin", argv[1], i + 1);
        FILE *f = fopen(path, "wb");
        if (f == NULL || resps[i].status != 200 || fwrite(resps[i].body.p, 1, resps[i].body.n, f) != resps[i].body.n)
            rc = 1;
        if (f)
            fclose(f);
        cf_http_resp_free(&resps[i]);
    }
    stats(h, "many");
    for (int i = 0; i < 2; i++) {
        cf_http_resp r;
        if (cf_http_get(h, &reqs[0], &r, &e) != CF_OK || r.status != 200) {
            fprintf(stderr, "%s\n", e.msg);
            rc = 1;
        }
        cf_http_resp_free(&r);
    }
    stats(h, "after");
    cf_http_free(h);
    free(reqs);
    free(resps);
    free(urls);
    return rc;
}
EOF
# http.c needs only libcurl from the core library's dependencies.
read -r -a curl_libs <<<"$(pkg-config --libs libcurl)"
read -r -a core_cflags <<<"$(cf_core_cflags)"
cc -std=c11 "${core_cflags[@]}" -D_GNU_SOURCE -I"$CF_SOURCE_DIR/include" -I"$CF_BINARY_DIR/include" -o "$DRV/fetch" \
    "$DRV/fetch.c" "$CF_BINARY_DIR/libclamfresh_core.a" "${curl_libs[@]}" 2>"$DRV/cc.err" || {
    cat "$DRV/cc.err" >&2
    cf_abort "cannot build the driver"
}

# ------------------------------------------------------------- PKI and files
cf_tmpdir PKI
(
    cd "$PKI" || exit 1
    q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
    q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem \
        -subj "/CN=clamfresh h2 test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    q openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >srv.ext
    q openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial "$RANDOM$RANDOM" -days 2 \
        -extfile srv.ext -out srv.pem
) || cf_abort "cannot make the test PKI"
export CURL_CA_BUNDLE="$PKI/ca.pem"

cf_tmpdir WWW
for i in $(seq 1 30); do
    head -c $((20000 + i * 1000)) /dev/urandom >"$WWW/f-$i.bin"
done

# ------------------------------------------------------------- nginx
cf_tmpdir NG
mkdir -p "$NG/tmp"
for _ in 1 2 3 4 5; do
    P2=$(cf__free_port)
    P1=$(cf__free_port)
    [ "$P1" != "$P2" ] || continue
    cat >"$NG/nginx.conf" <<EOF
include $CF_SOURCE_DIR/tests/lib/nginx-private-main.conf;
user root root;
http {
    log_format conn '\$connection \$server_port \$server_protocol \$status \$request_uri';
    access_log $NG/access.log conn;
    include $CF_SOURCE_DIR/tests/lib/nginx-private-temp.conf;
    ssl_certificate $PKI/srv.pem;
    ssl_certificate_key $PKI/srv.key;
    keepalive_requests 1000;
    server {
        listen 127.0.0.1:$P2 ssl http2;
        root $WWW;
    }
    server {
        listen 127.0.0.1:$P1 ssl;
        root $WWW;
    }
}
EOF
    cf__bg "$NG/nginx.out" nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf"
    NGINX_PID=$CF__LASTPID
    if cf__wait_port "$P2" 10 "$NGINX_PID" && cf__wait_port "$P1" 10 "$NGINX_PID"; then
        break
    fi
    cf_stop "$NGINX_PID"
    NGINX_PID=
    grep -q 'Address already in use' "$NG/error.log" "$NG/nginx.out" 2>/dev/null || break
done
if [ -z "${NGINX_PID:-}" ]; then
    cat "$NG/error.log" "$NG/nginx.out" >&2 2>/dev/null
    cf_abort "nginx did not start"
fi

# conn_count PORT PROTOCOL: distinct connections that carried PROTOCOL requests on PORT.
conn_count() {
    awk -v p="$1" -v proto="$2" '$2 == p && $3 == proto { print $1 }' "$NG/access.log" | sort -u | wc -l
}
req_count() {
    awk -v p="$1" -v proto="$2" '$2 == p && $3 == proto && $4 == 200' "$NG/access.log" | wc -l
}

# ------------------------------------------------------------- HTTP/2: one connection
cf_tmpdir OUT2
if "$DRV/fetch" "$OUT2" "https://127.0.0.1:$P2" 30 30 >"$DRV/h2.out" 2>"$DRV/h2.err"; then
    cf_pass "HTTP/2: 30 files and 2 more requests succeeded"
else
    cat "$DRV/h2.err" >&2
    cf_fail "HTTP/2: the driver failed"
fi
same=0
for i in $(seq 1 30); do
    cmp -s "$WWW/f-$i.bin" "$OUT2/f-$i.bin" && same=$((same + 1))
done
cf_check "HTTP/2: the 30 bodies are byte for byte the served files" [ "$same" = 30 ]
sleep 0.2 # nginx writes its access log line when a request ends
cf_check "HTTP/2: nginx saw 32 requests as HTTP/2.0 (saw $(req_count "$P2" HTTP/2.0))" \
    [ "$(req_count "$P2" HTTP/2.0)" = 32 ]
cf_check "HTTP/2: all over ONE connection (nginx saw $(conn_count "$P2" HTTP/2.0))" \
    [ "$(conn_count "$P2" HTTP/2.0)" = 1 ]
cf_check "HTTP/2: the client counted 1 connection for 30 requests" \
    grep -qx 'many connections=1 requests=30' "$DRV/h2.out"
cf_check "HTTP/2: and still 1 after two more requests" \
    grep -qx 'after connections=1 requests=32' "$DRV/h2.out"

# ------------------------------------------------------------- HTTP/1.1 fallback
cf_tmpdir OUT1
if "$DRV/fetch" "$OUT1" "https://127.0.0.1:$P1" 30 4 >"$DRV/h1.out" 2>"$DRV/h1.err"; then
    cf_pass "HTTP/1.1: 30 files and 2 more requests succeeded"
else
    cat "$DRV/h1.err" >&2
    cf_fail "HTTP/1.1: the driver failed"
fi
sleep 0.2
n1=$(conn_count "$P1" HTTP/1.1)
cf_check "HTTP/1.1: nginx saw 32 requests as HTTP/1.1" [ "$(req_count "$P1" HTTP/1.1)" = 32 ]
cf_check "HTTP/1.1: kept alive, at most k = 4 connections for 32 requests (nginx saw $n1)" \
    test "$n1" -ge 1 -a "$n1" -le 4
cf_check "HTTP/1.1: the client's count agrees with nginx's" \
    grep -qx "after connections=$n1 requests=32" "$DRV/h1.out"
