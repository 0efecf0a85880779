#!/usr/bin/env bash
# One client without DNS behind a cache that hands out an old test.cvd.
#
# The client holds test-3.cvd. An nginx caching proxy (every 200/206 kept for
# 30 days whatever the upstream says) in front of the upstream test mirror is
# primed with a Range request for test.cvd while upstream serves version 3;
# then upstream moves to version 6. `clamfresh --no-dns` through the proxy
# sees a version-3 header, and must still reach version 6:
#
#   patches       upstream has test-6.cvd and test-4..6.cdiff: the client asks
#                 test-4.cdiff, patches forward and says
#                 "test.cvd from MIRROR is stale: says 3, patches reach 6"
#   full-only     upstream has only versioned full files test-4..6.cvd: small
#                 HEAD requests on test-V.cvd find 6, one download
#   pointer       upstream has the pointer test.version ("6:T") and test-6.cvd:
#                 the pointer, read under a per-run query string with no-cache
#                 headers, says 6
#   broken        the pointer says 6 but the patch and every copy of version 6
#                 are damaged: the run fails and the old database stays
#   unreachable   upstream stops answering (the proxy answers 502 for
#                 everything it does not hold): whatever the run decides, the
#                 old database stays and nothing is left behind
#
# After an update, a second run is up to date with at most 2 small requests
# beyond the header probe. Runs on the self-made fixture set (fixtures.sh);
# nginx is the only server that is not Python, and it needs no root here.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "${CLAMFRESH:-}" ] || cf_skip "clamfresh not built"
[ -x "${CVDTOOL:-}" ] || cf_skip "cvdtool not built"
cf_require_cmd nginx curl python3 sha256sum
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

cf_fixtures_use own
hdr_field() { head -c 512 "$1" | cut -d: -f"$2"; }

# members FILE: the sorted SHA-256 list of a verified CVD/CLD's members.
members() {
    local u
    u=$(mktemp -d "$CF__BASE/unpack.XXXXXX")
    "$CVDTOOL" unpack --trust-key "$FX/key.pub" "$1" "$u/m" >/dev/null 2>&1 || return 1
    (cd "$u/m" && sha256sum -- * | sort -k2)
    rm -rf "$u"
}
WANT6=$(members "$FX/test-6.cvd") || cf_abort "cannot unpack $FX/test-6.cvd"

# expect_version6: the database directory holds version 6, byte for byte.
expect_version6() {
    local f files=()
    for f in "$DB/test.cvd" "$DB/test.cld"; do [ -f "$f" ] && files+=("$f"); done
    if [ "${#files[@]}" != 1 ]; then
        cf_fail "one of test.cvd/test.cld expected, found ${#files[@]}"
        return
    fi
    f=${files[0]}
    if [ "$(hdr_field "$f" 3)" != 6 ]; then
        cf_fail "$(basename "$f") is version $(hdr_field "$f" 3), not 6"
    elif [ "$(members "$f")" = "$WANT6" ]; then
        cf_pass "$(basename "$f") is version 6, verifies and has its members byte for byte"
    else
        cf_fail "$(basename "$f") is version 6 but does not verify or its members differ from test-6.cvd's"
    fi
}

expect_old_kept() {
    cf_check "test.cvd is still test-3.cvd byte for byte" cmp -s "$FX/test-3.cvd" "$DB/test.cvd"
    cf_check "no test.cld appeared" test ! -e "$DB/test.cld"
    cf_check "no temporaries left in the database directory" \
        test -z "$(find "$DB" -mindepth 1 -name '*tmp*')"
}

# new_case NAME: upstream serving version 3 only, a proxy in front of it
# primed with test.cvd's header, and a client database directory with
# test-3.cvd. Sets CASE, UP, DB, CONF, UP_LOG.
new_case() {
    CASE=$1
    # shellcheck disable=SC2034 # read by the harness, which prefixes every check with it
    CF_LABEL=$CASE
    cf_tmpdir UP
    cp "$FX/test-3.cvd" "$UP/test.cvd"
    cp "$FX/test-3.cvd" "$UP/"
    cf_start_mirror "$UP"
    UP_LOG=$MIRROR_LOG
    cf_start_nginx_shared_cache "$MIRROR_URL"
    curl -s -r 0-511 -o "$UP/../primed.hdr" "$PROXY_URL/test.cvd"
    cf_check "the proxy holds test.cvd version 3" test "$(hdr_field "$UP/../primed.hdr" 3)" = 3
    cf_tmpdir C
    DB="$C/db"
    mkdir "$DB"
    cp "$FX/test-3.cvd" "$DB/test.cvd"
    CONF="$C/c.conf"
    {
        echo "DatabaseMirror $PROXY_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        cf_fixtures_conf
    } >"$CONF"
    rm -f "$UP"/test*
}

# upstream FILES...: what upstream serves from now on: names in $FX, with
# their .sign as a real mirror has them (so an engine that reads .sign files
# finds them and has no reason to ask again), or NAME=SRC to serve SRC under
# NAME without a .sign.
upstream() {
    local a
    rm -f "$UP"/test*
    for a in "$@"; do
        case $a in
        *=*) cp "${a#*=}" "$UP/${a%%=*}" ;;
        *)
            cp "$FX/$a" "$UP/$a"
            if [ -f "$FX/$a.sign" ]; then cp "$FX/$a.sign" "$UP/"; fi
            ;;
        esac
    done
}

# stale_header_check: the proxy still answers test.cvd with version 3 (the premise).
stale_header_check() {
    curl -s -r 0-511 -o "$UP/../now.hdr" "$PROXY_URL/test.cvd"
    cf_check "the proxy still serves test.cvd version 3 while upstream has 6" \
        test "$(hdr_field "$UP/../now.hdr" 3)" = 3
}

RUN_FROM=0
client() { # EXIT
    RUN_FROM=$(cf_nginx_lines "$PROXY_LOG")
    cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    sleep 0.2 # nginx logs a request when it ends
}

# run_log: the proxy's log lines of the last client run.
run_log() { tail -n +"$((RUN_FROM + 1))" "$PROXY_LOG"; }

# up_to_date_rerun: a second run is up to date and cheap.
up_to_date_rerun() {
    local n bytes
    client 0
    cf_expect_out 'test\.c[vl]d database is up-to-date \(version: 6'
    read -r n _ bytes _ < <(cf_nginx_tally "$PROXY_LOG" "$RUN_FROM")
    cf_check "up to date in at most 3 requests (made $n)" test "$n" -le 3
    cf_check "and at most 4096 bytes (got $bytes)" test "$bytes" -le 4096
    expect_version6
}

# ---------------------------------------------------------------- patches
new_case patches
upstream test.cvd="$FX/test-6.cvd" test-6.cvd test-4.cdiff test-5.cdiff test-6.cdiff
stale_header_check
client 0
cf_expect_err "test\\.cvd from \\S*127\\.0\\.0\\.1:$PROXY_PORT\\S* is stale: says 3, patches reach 6"
expect_version6
cf_check "test-4.cdiff was asked through the proxy" grep -q '^GET /test-4\.cdiff ' <(run_log)
cf_check "no whole database was downloaded" \
    test -z "$(run_log | awk '$2 ~ /\.cvd$/ && $4 == 200')"
up_to_date_rerun

# ---------------------------------------------------------------- full-only
new_case full-only
upstream test.cvd="$FX/test-6.cvd" test-4.cvd test-5.cvd test-6.cvd
stale_header_check
client 0
expect_version6
cf_check "HEAD requests on versioned names" grep -qP '^HEAD /test-\d+\.cvd ' <(run_log)
full=$(run_log | awk '$1 == "GET" && $4 == 200 && $2 ~ /\.cvd$/ { print $2 }' | tr '\n' ' ')
cf_check "one whole database downloaded, test-6.cvd (got: ${full:-none})" test "$full" = "/test-6.cvd "
read -r _ _ bytes _ < <(cf_nginx_tally "$PROXY_LOG" "$RUN_FROM")
max=$(($(stat -c %s "$FX/test-6.cvd") + 8192))
cf_check "the run moved $bytes <= $max bytes (one database and small answers)" test "$bytes" -le "$max"
up_to_date_rerun

# ---------------------------------------------------------------- pointer
new_case pointer
upstream test.cvd="$FX/test-6.cvd" test-6.cvd
printf '6:%s\n' "$(date +%s)" >"$UP/test.version"
stale_header_check
client 0
expect_version6
# the pointer must reach upstream (no cache hit) with a query string and no-cache headers
cf_check "the pointer was read under a query string" \
    grep -qP '^GET /test\.version "(?!-")[^"]+" 200 ' <(run_log)
cf_check "the pointer request reached upstream with Cache-Control: no-cache" \
    python3 - "$UP_LOG" <<'EOF'
import json, sys
hits = [r for r in map(json.loads, open(sys.argv[1])) if r.get("path") == "/test.version"]
sys.exit(0 if hits and all("no-cache" in (r["headers"].get("Cache-Control") or "") for r in hits) else 1)
EOF
up_to_date_rerun

# ---------------------------------------------------------------- broken
new_case broken
cf_tmpdir BAD
python3 - "$FX" "$BAD" <<'EOF'
import sys
src, dst = sys.argv[1], sys.argv[2]
for name in ("test-4.cdiff", "test-6.cvd"):
    b = bytearray(open("%s/%s" % (src, name), "rb").read())
    b[len(b) // 2] ^= 0x20
    open("%s/%s" % (dst, name), "wb").write(b)
EOF
upstream test.cvd="$BAD/test-6.cvd" test-6.cvd="$BAD/test-6.cvd" test-4.cdiff="$BAD/test-4.cdiff" \
    test-5.cdiff test-6.cdiff
printf '6:%s\n' "$(date +%s)" >"$UP/test.version"
stale_header_check
client_rc=0
RUN_FROM=$(cf_nginx_lines "$PROXY_LOG")
"$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test >"$CF__BASE/broken.out" 2>&1 ||
    client_rc=$?
cf_check "the run fails (exit $client_rc) when version 6 cannot be had" test "$client_rc" != 0
cf_check "and says which file failed" grep -qP 'test-(4\.cdiff|6\.cvd)' "$CF__BASE/broken.out"
expect_old_kept
if [ "$client_rc" = 0 ]; then
    sed 's/^/#   /' "$CF__BASE/broken.out" | tail -n 12
fi

# ---------------------------------------------------------------- unreachable
new_case unreachable
upstream test.cvd="$FX/test-6.cvd" test-6.cvd test-4.cdiff test-5.cdiff test-6.cdiff
printf '6:%s\n' "$(date +%s)" >"$UP/test.version"
cf_stop "$MIRROR_PID"
client_rc=0
"$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test >"$CF__BASE/unreachable.out" 2>&1 ||
    client_rc=$?
cf_check "the run ends by itself (exit $client_rc, not a signal)" test "$client_rc" -lt 128
cf_check "nothing claims an update" test -z "$(grep -P 'test\.c[vl]d updated' "$CF__BASE/unreachable.out")"
expect_old_kept
