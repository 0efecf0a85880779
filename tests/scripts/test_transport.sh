#!/usr/bin/env bash
# Transport security and proxies, end to end with the real clamfresh binary
# (freshclam-behavior.md §1.2 environment, §3.2 HTTPProxy*, §5.1, §5.4): HTTPS
# mirrors verified against CURL_CA_BUNDLE (a test CA made here with openssl),
# host-name checking, client certificates from FRESHCLAM_CLIENT_CERT/KEY(/PASSWD),
# HTTPProxyServer/Port with and without Basic credentials (plain proxying for
# http:// mirrors, CONNECT for https://), the config-permission rule for
# HTTPProxyPassword, and the stall guard when ReceiveTimeout is 0. Every failure
# must leave the old database byte for byte.
. "$(dirname "$0")/../lib/harness.sh"

[ -x "${CLAMFRESH:-}" ] || cf_skip "clamfresh not built"
[ -x "${CVDTOOL:-}" ] || cf_skip "cvdtool not built"
cf_require_cmd openssl python3
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
# Only what each case sets may reach libcurl/OpenSSL.
unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR FRESHCLAM_CLIENT_CERT FRESHCLAM_CLIENT_KEY \
    FRESHCLAM_CLIENT_KEY_PASSWD http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
    no_proxy NO_PROXY

# ------------------------------------------------------------- fixtures
# daily version 1 (installed locally) and 2 (published with its cdiff), signed
# with a key made here; build times in the past so If-Modified-Since never
# turns the probe into a 304.
cf_tmpdir FIX
(
    cd "$FIX" || exit 1
    "$CVDTOOL" keygen -o db >/dev/null || exit 1
    mkdir v1
    cp "$CF_SOURCE_DIR/COPYING" v1/
    for i in $(seq 1 30); do printf '%032x:%d:Cf.Transport.Hash-%d\n' "$((i * 7919))" "$((i + 60))" "$i"; done >v1/daily.hdb
    cp -r v1 v2
    printf '%032x:99:Cf.Transport.New\n' 123457 >>v2/daily.hdb
    now=$(date +%s)
    "$CVDTOOL" build v1 -o daily-1.cvd --key db.key --version 1 --builder tester --time $((now - 7200)) >/dev/null &&
        "$CVDTOOL" build v2 -o daily-2.cvd --key db.key --version 2 --builder tester --time $((now - 3600)) >/dev/null &&
        "$CVDTOOL" diff --trust-key db.pub daily-1.cvd daily-2.cvd -o daily-2.cdiff --key db.key >/dev/null
) || cf_abort "cannot build the database fixtures"
cf_tmpdir WWW
cp "$FIX/daily-2.cvd" "$WWW/daily.cvd"
cp "$FIX/daily-2.cvd" "$FIX/daily-2.cdiff" "$WWW/"
cf_tmpdir EMPTY

# A test PKI: CA (and an unrelated second CA), server certificate for
# 127.0.0.1/localhost, one for another host name, a client certificate (plain
# and passphrase-protected key).
cf_tmpdir PKI
(
    cd "$PKI" || exit 1
    q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
    q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem \
        -subj "/CN=clamfresh test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca2.key -out ca2.pem \
        -subj "/CN=clamfresh other CA" -addext "basicConstraints=critical,CA:TRUE"
    leaf() { # NAME SUBJECT EXTENSIONS
        q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
        printf '%b\n' "$3" >"$1.ext"
        q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$RANDOM$RANDOM" \
            -days 2 -extfile "$1.ext" -out "$1.pem"
    }
    leaf server "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
    leaf other "/CN=mirror.example.org" "subjectAltName=DNS:mirror.example.org\nextendedKeyUsage=serverAuth"
    leaf client "/CN=clamfresh-client" "extendedKeyUsage=clientAuth"
    q openssl pkey -in client.key -aes256 -passout pass:k3y-pass -out client-enc.key
) || cf_abort "cannot create the test PKI"

# ------------------------------------------------------------- helpers
# new_case URL [extra config lines]: fresh database dir holding daily.cvd v1.
new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    cp "$FIX/daily-1.cvd" "$DB/daily.cvd"
    CONF="$CASE/freshclam.conf"
    {
        echo "DatabaseMirror $1"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        echo "TestDatabases no"
        echo "MaxAttempts 1"
        [ -n "${2:-}" ] && printf '%b\n' "$2"
    } >"$CONF"
    chmod 600 "$CONF"
}

# fc CODE [VAR=VALUE...]: runs clamfresh with exactly those extra environment variables.
fc() {
    local want=$1
    shift
    cf_expect_exit "$want" env "$@" "$CLAMFRESH" --no-dns --config-file="$CONF" \
        --trust-key="$FIX/db.pub" --update-db=daily
}

old_db_kept() {
    if cmp -s "$FIX/daily-1.cvd" "$DB/daily.cvd" && [ ! -e "$DB/daily.cld" ]; then
        cf_pass "old database kept byte for byte"
    else
        cf_fail "old database changed: $(ls "$DB")"
    fi
}

new_db() {
    if [ -f "$DB/daily.cld" ] && [ "$(head -c 512 "$DB/daily.cld" | cut -d: -f3)" = 2 ] && [ ! -e "$DB/daily.cvd" ]; then
        cf_pass "daily.cld version 2 installed"
    else
        cf_fail "database not updated to version 2: $(ls "$DB")"
    fi
}

# count FILE REGEX: matching lines (0 when none).
count() { grep -cP -- "$2" "$1" 2>/dev/null || true; }

expect_count() { # DESCRIPTION FILE REGEX OP N
    local n
    n=$(count "$2" "$3")
    if test "$n" "$4" "$5"; then
        cf_pass "$1 ($n)"
    else
        cf_fail "$1: $n lines match /$3/ in $(basename "$2"), expected $4 $5"
        tail -n 5 "$2" >&2
    fi
}

lines() { wc -l <"$1" | tr -d ' '; }

# The server logs a failed handshake after sending its alert, so the client
# may already be gone: wait for the line.
expect_tls_error() { # DESCRIPTION FILE REGEX
    if cf_wait_log "$2" "\"tls_error\": \".*$3" 5; then
        cf_pass "$1"
    else
        cf_fail "$1: no tls_error matching /$3/ in $(basename "$2")"
        tail -n 5 "$2" >&2
    fi
}

# A mirror's variables, saved because cf_start_mirror overwrites them.
start_tls_mirror() { # VAR-PREFIX CERT-NAME [mirror.py args]
    local pfx=$1 cert=$2
    shift 2
    cf_start_mirror "$WWW" --tls-cert "$PKI/$cert.pem" --tls-key "$PKI/$cert.key" "$@"
    printf -v "${pfx}_PORT" '%s' "$MIRROR_PORT"
    printf -v "${pfx}_LOG" '%s' "$MIRROR_LOG"
}

# ------------------------------------------------------------- HTTPS, server verification
start_tls_mirror TLS server
TLS_URL="https://127.0.0.1:$TLS_PORT"

new_case "$TLS_URL"
fc 11
cf_expect_err "remote_cvdhead: Download failed \\(60\\).*certificate.*\\Q$TLS_URL/daily.cvd\\E"
cf_expect_err 'Update failed for database: daily'
expect_tls_error "the mirror saw the handshake fail on our unknown CA" "$TLS_LOG" '(unknown ca|certificate unknown)'
expect_count "no request was sent over the unverified connection" "$TLS_LOG" '"method"' -eq 0
old_db_kept

fc 0 CURL_CA_BUNDLE="$PKI/ca.pem"
cf_expect_out 'daily\.cld updated \(version: 2'
new_db
expect_count "the update went over TLS" "$TLS_LOG" '"path": "/daily-2\.cdiff".*"tls": true' -ge 1

# CURL_CA_BUNDLE replaces the CA store rather than adding to it: a bundle with
# another CA does not vouch for the mirror.
new_case "$TLS_URL"
fc 11 CURL_CA_BUNDLE="$PKI/ca2.pem"
cf_expect_err "Download failed \\(60\\)"
old_db_kept

# ------------------------------------------------------------- HTTPS, host name
start_tls_mirror OTHER other
new_case "https://127.0.0.1:$OTHER_PORT"
fc 11 CURL_CA_BUNDLE="$PKI/ca.pem"
cf_expect_err "remote_cvdhead: Download failed \\(60\\).*\\Qhttps://127.0.0.1:$OTHER_PORT/daily.cvd\\E"
expect_count "no request sent to a server with another name" "$OTHER_LOG" '"method"' -eq 0
old_db_kept
# The same certificate is good for its own name: only the name was wrong.
cf_check "the mismatched certificate verifies for mirror.example.org" python3 - "$PKI/ca.pem" "$OTHER_PORT" <<'EOF'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname="mirror.example.org") as t:
        sys.exit(0 if t.getpeercert() else 1)
EOF

# ------------------------------------------------------------- client certificates
start_tls_mirror MTLS server --client-ca "$PKI/ca.pem"
MTLS_URL="https://localhost:$MTLS_PORT" # the DNS name in the SAN, this time

new_case "$MTLS_URL"
fc 11 CURL_CA_BUNDLE="$PKI/ca.pem"
cf_expect_err "remote_cvdhead: Download failed \\(\\d+\\).*\\Q$MTLS_URL/daily.cvd\\E"
expect_tls_error "the mirror refused the connection without a client certificate" "$MTLS_LOG" '(did not return a certificate|certificate required)'
expect_count "no request served without a client certificate" "$MTLS_LOG" '"status"' -eq 0
old_db_kept

before=$(lines "$MTLS_LOG")
fc 11 CURL_CA_BUNDLE="$PKI/ca.pem" FRESHCLAM_CLIENT_CERT="$PKI/client.pem"
cf_expect_err '^WARNING: The FRESHCLAM_CLIENT_CERT environment variable was set, but FRESHCLAM_CLIENT_KEY was not set\. A client private key is also required if specifying a client certificate\.$'
cf_expect_err 'Update failed for database: daily'
cf_check "certificate without key: nothing reached the mirror" test "$(lines "$MTLS_LOG")" = "$before"
old_db_kept

fc 0 CURL_CA_BUNDLE="$PKI/ca.pem" FRESHCLAM_CLIENT_CERT="$PKI/client.pem" FRESHCLAM_CLIENT_KEY="$PKI/client.key"
cf_expect_out 'daily\.cld updated \(version: 2'
new_db
expect_count "the mirror saw our client certificate" "$MTLS_LOG" '"client_cert": "clamfresh-client".*"path": "/daily-2\.cdiff"' -ge 1

new_case "$MTLS_URL"
fc 0 CURL_CA_BUNDLE="$PKI/ca.pem" FRESHCLAM_CLIENT_CERT="$PKI/client.pem" \
    FRESHCLAM_CLIENT_KEY="$PKI/client-enc.key" FRESHCLAM_CLIENT_KEY_PASSWD=k3y-pass
new_db

# ------------------------------------------------------------- proxies
cf_start_mirror "$WWW"
ORIGIN_URL=$MIRROR_URL
ORIGIN_PORT=$MIRROR_PORT
ORIGIN_LOG=$MIRROR_LOG
cf_start_mirror "$EMPTY"
OPEN_PORT=$MIRROR_PORT
OPEN_LOG=$MIRROR_LOG
cf_start_mirror "$EMPTY" --proxy-auth 'clamuser:s3cret pass'
AUTH_PORT=$MIRROR_PORT
AUTH_LOG=$MIRROR_LOG

# No credentials needed. http:// is stripped from HTTPProxyServer (§3.2).
new_case "$ORIGIN_URL" "HTTPProxyServer http://127.0.0.1\nHTTPProxyPort $OPEN_PORT"
o_before=$(lines "$ORIGIN_LOG")
fc 0
cf_expect_out '^Connecting via 127\.0\.0\.1$'
cf_expect_out 'daily\.cld updated \(version: 2'
new_db
expect_count "the probe went through the proxy" "$OPEN_LOG" "\"path\": \"/daily\\.cvd\".*\"proxy\": true.*\"target\": \"127\\.0\\.0\\.1:$ORIGIN_PORT\"" -eq 1
expect_count "the cdiff went through the proxy" "$OPEN_LOG" '"path": "/daily-2\.cdiff".*"proxy": true.*"status": 200' -eq 1
expect_count "http:// mirrors are proxied in absolute-URI form, not tunnelled" "$OPEN_LOG" '"connect": true' -eq 0
cf_check "every request the origin saw came through the proxy" \
    test "$(($(lines "$ORIGIN_LOG") - o_before))" = "$(count "$OPEN_LOG" '"proxy": true')"

# Basic credentials from HTTPProxyUsername/HTTPProxyPassword (config 0600).
new_case "$ORIGIN_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT\nHTTPProxyUsername clamuser\nHTTPProxyPassword s3cret pass"
fc 0
cf_expect_out '^Connecting via 127\.0\.0\.1$'
new_db
expect_count "the proxy received our credentials" "$AUTH_LOG" '"proxy_auth_ok": true, "proxy_credentials": "clamuser:s3cret pass"' -ge 2
expect_count "no request without them" "$AUTH_LOG" '"proxy_auth_ok": false' -eq 0

# Wrong password: the proxy says 407, the run fails and names the mirror.
new_case "$ORIGIN_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT\nHTTPProxyUsername clamuser\nHTTPProxyPassword wrong"
o_before=$(lines "$ORIGIN_LOG")
fc 11
cf_expect_err "^ERROR: remote_cvdhead: Unexpected response \\(407\\) from \\Q$ORIGIN_URL\\E \\(Proxy: 127\\.0\\.0\\.1:$AUTH_PORT\\)"
cf_expect_err 'Update failed for database: daily'
expect_count "the proxy refused the wrong password" "$AUTH_LOG" '"proxy_auth_ok": false, "proxy_credentials": "clamuser:wrong".*"status": 407' -ge 1
expect_count "the proxy let nothing through with the wrong password" "$AUTH_LOG" '"proxy_credentials": "clamuser:wrong".*"status": (?!407)' -eq 0
cf_check "nothing reached the origin" test "$(lines "$ORIGIN_LOG")" = "$o_before"
old_db_kept

# No credentials at all for a proxy that wants them.
new_case "$ORIGIN_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT"
fc 11
cf_expect_err 'Unexpected response \(407\)'
old_db_kept

# HTTPProxyPassword in a config readable by group or others: refused at start-up.
for mode in 640 604 660; do
    new_case "$ORIGIN_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT\nHTTPProxyUsername clamuser\nHTTPProxyPassword s3cret pass"
    chmod "$mode" "$CONF"
    p_before=$(lines "$AUTH_LOG")
    fc 2
    cf_expect_err "^WARNING: Insecure permissions \\(for HTTPProxyPassword\\): \\Q$CONF\\E must have no more than 0700 permissions\\.$"
    cf_expect_err '^ERROR: Initialization error!$'
    cf_check "mode $mode: the proxy was never contacted" test "$(lines "$AUTH_LOG")" = "$p_before"
    old_db_kept
done

# A user name without a password is an initialization error too (§3.2).
new_case "$ORIGIN_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT\nHTTPProxyUsername clamuser"
fc 2
cf_expect_out 'HTTPProxyUsername requires HTTPProxyPassword'
old_db_kept

# An https:// mirror through the proxy: a CONNECT tunnel carrying the
# credentials, with TLS verified end to end against the mirror's name.
new_case "$TLS_URL" "HTTPProxyServer 127.0.0.1\nHTTPProxyPort $AUTH_PORT\nHTTPProxyUsername clamuser\nHTTPProxyPassword s3cret pass"
t_before=$(lines "$TLS_LOG")
fc 0 CURL_CA_BUNDLE="$PKI/ca.pem"
new_db
expect_count "CONNECT tunnels to the HTTPS mirror, with credentials" "$AUTH_LOG" \
    "\"connect\": true.*\"proxy_auth_ok\": true, \"proxy_credentials\": \"clamuser:s3cret pass\".*\"target\": \"127\\.0\\.0\\.1:$TLS_PORT\"" -ge 2
cf_check "the HTTPS mirror served the tunnelled requests" test "$(($(lines "$TLS_LOG") - t_before))" -ge 2

# ------------------------------------------------------------- LocalIPAddress (§5.6)
# It only binds DNS resolution and needs libcurl built with c-ares; Debian's is
# not, and then freshclam fails every request with an ERROR and exit 11.
if cf_have_cmd curl; then
    new_case "$ORIGIN_URL" "LocalIPAddress 127.0.0.1"
    o_before=$(lines "$ORIGIN_LOG")
    if curl -V | head -n 1 | grep -q 'c-ares'; then
        fc 0
        new_db
    else
        fc 11
        cf_expect_err '^ERROR: create_curl_handle: Unable to bind DNS resolves to 127\.0\.0\.1\. Option requires that libcurl was built with c-ares\.$'
        cf_expect_err 'Update failed for database: daily'
        cf_check "LocalIPAddress without c-ares: nothing reached the mirror" test "$(lines "$ORIGIN_LOG")" = "$o_before"
        old_db_kept
    fi
fi

# ------------------------------------------------------------- stalls, ReceiveTimeout 0
# ReceiveTimeout 0 disables libcurl's low-speed abort; StallTimeout still ends a
# transfer that stops moving. Elapsed time must be about StallTimeout, not more.
STALL_CONF="ReceiveTimeout 0\nStallTimeout 3"
timed_fc() { # CODE [VAR=VALUE...]: fc, and checks 3 s <= elapsed <= 3 s + margin
    local t0 t1 ms
    t0=${EPOCHREALTIME/./}
    fc "$@"
    t1=${EPOCHREALTIME/./}
    ms=$(((t1 - t0) / 1000))
    if [ "$ms" -ge 2900 ] && [ "$ms" -le 8000 ]; then
        cf_pass "ended by the stall guard after ${ms} ms"
    else
        cf_fail "run took ${ms} ms, expected StallTimeout (3 s) plus a margin"
    fi
}
cf_tmpdir SWWW
cp "$WWW"/* "$SWWW/"
: >"$SWWW/faults"
cf_start_mirror "$SWWW" --faults "$SWWW/faults"
STALL_URL=$MIRROR_URL
STALL_LOG=$MIRROR_LOG

# The whole database stalls after 1000 bytes: connection failure (5).
echo '{"/daily-2.cvd": {"stall_after": 1000}}' >"$SWWW/faults"
new_case "$STALL_URL" "$STALL_CONF\nScriptedUpdates no"
timed_fc 5
cf_expect_err "\\Q$STALL_URL/daily-2.cvd\\E"
cf_expect_err 'Timeout was reached'
cf_expect_err 'Database update process failed: Connection failed'
expect_count "the mirror stalled the download on purpose" "$STALL_LOG" '"path": "/daily-2\.cvd".*"stall": true' -eq 1
old_db_kept

# The version probe stalls: every probe failure is 11.
echo '{"/daily.cvd": {"stall_after": 100}}' >"$SWWW/faults"
new_case "$STALL_URL" "$STALL_CONF"
timed_fc 11
cf_expect_err "remote_cvdhead: Download failed \\(28\\).*\\Q$STALL_URL/daily.cvd\\E"
old_db_kept

# The only cdiff stalls, one version behind: freshclam's "server doesn't have
# the latest patch" case, success with nothing changed.
echo '{"/daily-2.cdiff": {"stall_after": 100}}' >"$SWWW/faults"
new_case "$STALL_URL" "$STALL_CONF"
timed_fc 0
cf_expect_out "The database server doesn't have the latest patch for the daily database \\(version 2\\)"
old_db_kept
