#!/usr/bin/env bash
# Mirror mode end to end: an upstream test mirror serves databases built here
# with cvdtool and a key made here; `clamfresh --mirror=DIR` fills DIR; a second
# test mirror serves DIR to a LAN; a clamfresh client installs and then patches
# from it. With the ClamAV-signed vectors as upstream, Debian's real freshclam
# 1.4.6 does the same (full download, then cdiffs) from the LAN mirror.
. "$(dirname "$0")/../lib/harness.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
[ -x "$CVDTOOL" ] || cf_skip "cvdtool not built"
cf_require_cmd python3
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

hdr_field() { head -c 512 "$1" | cut -d: -f"$2"; }

expect_version() { # FILE VERSION
    if [ -f "$1" ] && [ "$(hdr_field "$1" 3)" = "$2" ]; then
        cf_pass "$(basename "$1") is version $2"
    else
        cf_fail "$1 should be version $2 (is: $( [ -f "$1" ] && hdr_field "$1" 3 || echo missing))"
    fi
}

# ---------------------------------------------------------------- fixtures
cf_tmpdir K
cd "$K" || cf_abort "cannot enter $K"
cf_expect_exit 0 "$CVDTOOL" keygen -o key
mkdir v1
cp "$CF_SOURCE_DIR/COPYING" v1/ 2>/dev/null || echo "clamfresh mirror test" >v1/COPYING
for i in $(seq 1 30); do printf '%032x:%d:Cf.Mirror.Hash-%d\n' "$((i * 7919))" "$((i + 60))" "$i"; done >v1/daily.hdb
for v in 2 3 4 5; do
    cp -r "v$((v - 1))" "v$v"
    printf '%032x:%d:Cf.Mirror.New-%d\n' "$((v * 104729))" "$((v + 90))" "$v" >>"v$v/daily.hdb"
    sed -i "$((v))d" "v$v/daily.hdb"
done
# Build times an hour apart and in the past: a client's If-Modified-Since (its
# database's build time) must be older than the mirror files' mtimes, or a
# mirror may rightly answer 304 when everything happens within one second.
for v in 1 2 3 4 5; do
    cf_expect_exit 0 "$CVDTOOL" build "v$v" -o "daily-$v.cvd" --name daily --key key.key --version "$v" \
        --builder tester --time "$(($(date +%s) - (7 - v) * 3600))"
done
for v in 2 3 4 5; do
    cf_expect_exit 0 "$CVDTOOL" diff --trust-key key.pub "daily-$((v - 1)).cvd" "daily-$v.cvd" \
        -o "daily-$v.cdiff" --key key.key
done

cf_tmpdir UP
publish_up() { # VERSION: upstream moves to VERSION, cdiffs 2..VERSION
    local v=$1 n
    cp "$K/daily-$v.cvd" "$UP/daily.cvd"
    cp "$K/daily-$v.cvd" "$UP/"
    for n in $(seq 2 "$v"); do cp "$K/daily-$n.cdiff" "$UP/"; done
}
publish_up 3
cf_start_mirror "$UP"
UP_URL=$MIRROR_URL
UP_LOG=$MIRROR_LOG

cf_tmpdir M # the LAN mirror's directory
cf_tmpdir W
mkdir "$W/mdb" "$W/cdb"
cat >"$W/mirror.conf" <<EOF
DatabaseMirror $UP_URL
DatabaseDirectory $W/mdb
DatabaseOwner $(id -un)
EOF
mirror_run() { # EXIT
    cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$W/mirror.conf" --trust-key="$K/key.pub" \
        --update-db=daily --mirror="$M" --metrics="$W/mirror.prom"
}

# ---------------------------------------------------------------- 1. first mirror run
mirror_run 0
expect_version "$M/daily-3.cvd" 3
cf_check "daily.cvd is the upstream's daily-3.cvd" cmp -s "$M/daily.cvd" "$K/daily-3.cvd"
cf_check "daily.cvd and daily-3.cvd are one file" test "$M/daily.cvd" -ef "$M/daily-3.cvd"
cf_check "daily-2.cdiff published" cmp -s "$M/daily-2.cdiff" "$K/daily-2.cdiff"
cf_check "daily-3.cdiff published" cmp -s "$M/daily-3.cdiff" "$K/daily-3.cdiff"
cf_expect_file_match "$M/daily.version" '^3:\d+$'
cf_expect_file_match "$M/current.txt" '^0:0:3:\d+:0:\d+:0:0$'
cf_check "nothing unversioned was downloaded whole" \
    test "$(grep -cP '"path": "/daily\.cvd".*"status": 200' "$UP_LOG")" = 0
cf_expect_file_match "$UP_LOG" '"path": "/daily-3\.cvd"'
cf_check "no temporaries left" test -z "$(find "$M" -name '*.tmp')"
cf_expect_file_match "$W/mirror.prom" '^clamfresh_database_version\{database="daily"\} 3$'
cf_expect_file_match "$W/mirror.prom" '^clamfresh_last_run_exit_code 0$'

# ---------------------------------------------------------------- 2. a client installs from the LAN mirror
cf_start_mirror "$M"
LAN_URL=$MIRROR_URL
LAN_LOG=$MIRROR_LOG
cat >"$W/client.conf" <<EOF
DatabaseMirror $LAN_URL
DatabaseDirectory $W/cdb
DatabaseOwner $(id -un)
TestDatabases no
EOF
client_run() { # EXIT
    cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$W/client.conf" --trust-key="$K/key.pub" \
        --update-db=daily
}
client_run 0
expect_version "$W/cdb/daily.cvd" 3
cf_expect_file_match "$LAN_LOG" '"path": "/daily-3\.cvd".*"status": 200'

# ---------------------------------------------------------------- 3. upstream moves on; the client patches
publish_up 5
mirror_run 0
expect_version "$M/daily.cvd" 5
cf_check "daily-4.cdiff published" cmp -s "$M/daily-4.cdiff" "$K/daily-4.cdiff"
cf_check "daily-5.cdiff published" cmp -s "$M/daily-5.cdiff" "$K/daily-5.cdiff"
cf_check "daily-3.cvd removed after publishing 5" test ! -e "$M/daily-3.cvd"
cf_expect_file_match "$M/daily.version" '^5:\d+$'
n=$(grep -cP '"path": "/daily-2\.cdiff"' "$UP_LOG")
cf_check "patches already held are not fetched again (daily-2.cdiff asked $n times)" test "$n" = 1
client_run 0
expect_version "$W/cdb/daily.cld" 5
cf_expect_file_match "$LAN_LOG" '"path": "/daily-4\.cdiff".*"status": 200'
cf_expect_file_match "$LAN_LOG" '"path": "/daily-5\.cdiff".*"status": 200'

# MirrorKeepPatches bounds the window: a second LAN mirror keeping two patches.
cf_tmpdir M3
sed 's/^DatabaseOwner .*/&\nMirrorKeepPatches 2/' "$W/mirror.conf" >"$W/mirror3.conf"
cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$W/mirror3.conf" --trust-key="$K/key.pub" \
    --update-db=daily --mirror="$M3"
cf_check "MirrorKeepPatches 2 keeps daily-4 and daily-5.cdiff only" \
    test "$(cd "$M3" && echo daily-*.cdiff)" = "daily-4.cdiff daily-5.cdiff"

# ---------------------------------------------------------------- 4. a bad patch upstream changes nothing
cp -r "$K/v5" "$K/v6"
echo "$(printf '%032x' 6):66:Cf.Mirror.New-6" >>"$K/v6/daily.hdb"
cf_expect_exit 0 "$CVDTOOL" build "$K/v6" -o "$K/daily-6.cvd" --name daily --key "$K/key.key" --version 6 \
    --time "$(($(date +%s) - 3600))"
cf_expect_exit 0 "$CVDTOOL" diff --trust-key "$K/key.pub" "$K/daily-5.cvd" "$K/daily-6.cvd" \
    -o "$K/daily-6.cdiff" --key "$K/key.key"
snap() { # every file but the lock and current.txt: name, mtime, bytes
    (cd "$M" && for f in *; do
        case $f in clamfresh.lock | current.txt) continue ;; esac
        printf '%s %s %s\n' "$f" "$(stat -c %Y.%y "$f")" "$(md5sum <"$f")"
    done) | md5sum
}
before=$(snap)
publish_up 5
cp "$K/daily-6.cvd" "$UP/daily.cvd"
cp "$K/daily-6.cvd" "$UP/"
python3 - "$K/daily-6.cdiff" "$UP/daily-6.cdiff" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x20
open(sys.argv[2], "wb").write(b)
EOF
mirror_run 7
cf_expect_err 'daily-6\.cdiff'
cf_check "the mirror directory is unchanged (names, times, bytes)" test "$(snap)" = "$before"
expect_version "$M/daily.cvd" 5
cf_expect_file_match "$M/daily.version" '^5:\d+$'
cf_check "daily-6.cvd not published" test ! -e "$M/daily-6.cvd"

# ---------------------------------------------------------------- 5. nginx serves DIR with the generated snippet
if cf_have_cmd nginx curl; then
    cf_check "the nginx snippet was written" test -s "$M/nginx-clamfresh-mirror.conf"
    cf_tmpdir NG
    mkdir -p "$NG/tmp"
    NG_PID=
    for _ in 1 2 3 4 5; do
        port=$(cf__free_port)
        cat >"$NG/nginx.conf" <<EOF
daemon off;
$(cf_is_root && echo "user root root;")
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log info;
events { worker_connections 32; }
http {
    access_log $NG/access.log;
    include $CF_SOURCE_DIR/tests/lib/nginx-private-temp.conf;
    include $NG/site.conf;
}
EOF
        # The shipped site example, pointed at this directory and port.
        sed -e "s|listen 80;|listen 127.0.0.1:$port;|" -e '/listen \[::\]:80;/d' -e "s|/srv/clamav|$M|g" \
            "$CF_SOURCE_DIR/dist/examples/nginx-clamfresh-mirror-site.conf.example" >"$NG/site.conf"
        cf__bg "$NG/nginx.out" nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf"
        NG_PID=$CF__LASTPID
        cf__wait_port "$port" 10 "$NG_PID" && break
        cf_stop "$NG_PID"
        NG_PID=
    done
    if [ -n "$NG_PID" ]; then
        curl -sS -D "$NG/h1" -o /dev/null "http://127.0.0.1:$port/daily-5.cvd"
        cf_expect_file_match "$NG/h1" '^Cache-Control: public, max-age=31536000, immutable'
        curl -sS -D "$NG/h2" -o /dev/null "http://127.0.0.1:$port/daily.cvd"
        cf_expect_file_match "$NG/h2" '^Cache-Control: no-cache'
        curl -sS -D "$NG/h3" -o /dev/null "http://127.0.0.1:$port/daily.version"
        cf_expect_file_match "$NG/h3" '^Cache-Control: no-cache'
        curl -sS -D "$NG/h4" -o /dev/null "http://127.0.0.1:$port/daily-5.cdiff"
        cf_expect_file_match "$NG/h4" '^Cache-Control: public, max-age=31536000, immutable'
        # A versioned name that is not there yet: a 404 cached a minute at most,
        # never "immutable" (it would hide the next patch for a year).
        curl -sS -D "$NG/h5" -o /dev/null "http://127.0.0.1:$port/daily-99.cdiff"
        cf_expect_file_match "$NG/h5" '^HTTP/1\.1 404'
        cf_expect_file_match "$NG/h5" '^Cache-Control: public, max-age=60'
        cf_check "a 404 is never immutable" bash -c "! grep -qi immutable '$NG/h5'"
        cf_stop "$NG_PID"
    else
        cf_fail "nginx did not start with the generated snippet (see $NG/error.log)"
        cat "$NG/error.log" >&2
    fi
else
    cf__say "SKIP part: nginx or curl not installed"
fi

# ---------------------------------------------------------------- 6. a stale cache between LAN mirror and client
# The harness's nginx caches every 200/206 for 30 days whatever the headers
# say. A client that learns the version from a local DNS record made from
# current.txt still updates through it, because it asks versioned names.
if cf_is_root && cf_have_cmd ip dnsmasq nginx curl; then
    cf_netns_create
    export CF_SERVE_IN_NETNS=1
    cf_start_mirror "$M"
    cf_start_nginx_cache "$MIRROR_URL"
    mkdir "$W/cdb2"
    cat >"$W/client2.conf" <<EOF
DatabaseMirror $PROXY_URL
DatabaseDirectory $W/cdb2
DatabaseOwner $(id -un)
TestDatabases no
EOF
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --no-dns --config-file="$W/client2.conf" \
        --trust-key="$K/key.pub" --update-db=daily
    expect_version "$W/cdb2/daily.cvd" 5
    # warm the cache with the mutable name, as earlier clients would have
    cf_netns_exec curl -s -o /dev/null -r 0-511 "$PROXY_URL/daily.cvd"
    cf_netns_exec curl -s -o /dev/null "$PROXY_URL/daily.cvd"
    # upstream publishes a good version 6; the LAN mirror takes it
    cp "$K/daily-6.cdiff" "$UP/daily-6.cdiff"
    mirror_run 0
    expect_version "$M/daily.cvd" 6
    cf_netns_exec curl -s -o "$W/stale.hdr" -r 0-511 "$PROXY_URL/daily.cvd"
    cf_check "the cache still hands out daily.cvd version 5" test "$(hdr_field "$W/stale.hdr" 3)" = 5
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$(cat "$M/current.txt")"
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$W/client2.conf" --trust-key="$K/key.pub" \
        --update-db=daily
    expect_version "$W/cdb2/daily.cld" 6
    cf_expect_file_match "$PROXY_LOG" 'GET /daily-6\.cdiff'
    unset CF_SERVE_IN_NETNS
else
    cf__say "SKIP part: the stale-cache case needs root, ip, dnsmasq, nginx and curl"
fi

# ---------------------------------------------------------------- 7. real freshclam from the LAN mirror
if ! cf_have_cmd freshclam; then
    cf__say "SKIP part: freshclam not installed (Debian package clamav-freshclam)"
    exit 0
fi
V=$CF_VECTORS/clamav
if [ ! -f "$V/test-1.cvd" ]; then
    cf__say "SKIP part: ClamAV vectors not present"
    exit 0
fi
cf_tmpdir UP2
cf_tmpdir M2
cf_tmpdir F
mkdir "$F/db" "$F/mdb"
cp "$V/test-1.cvd" "$UP2/test.cvd"
cp "$V/test-1.cvd" "$V/test-1.cvd.sign" "$UP2/"
cf_start_mirror "$UP2"
UP2_URL=$MIRROR_URL
cat >"$F/mirror.conf" <<EOF
DatabaseMirror $UP2_URL
DatabaseDirectory $F/mdb
DatabaseOwner $(id -un)
EOF
# ClamAV's built-in keys; no certificates directory, so .sign files are not
# checked and therefore not published (freshclam 1.4.6 does not read them).
mirror2_run() {
    cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$F/mirror.conf" --update-db=test --mirror="$M2"
}
mirror2_run 0
expect_version "$M2/test.cvd" 1
cf_start_mirror "$M2"
LAN2_LOG=$MIRROR_LOG
cat >"$F/freshclam.conf" <<EOF

    DatabaseMirror $MIRROR_URL
    DNSDatabaseInfo no
    PidFile $F/freshclam.pid
    LogVerbose yes
    LogFileMaxSize 0
    DatabaseDirectory $F/db
    DatabaseOwner $(id -un)

EOF
cf_expect_exit 0 freshclam --no-dns --config-file="$F/freshclam.conf" --update-db=test
cf_expect_out 'test\.cvd updated \(version: 1'
expect_version "$F/db/test.cvd" 1

cp "$V/test-3.cvd" "$UP2/test.cvd"
cp "$V/test-3.cvd" "$V/test-3.cvd.sign" "$V/test-2.cdiff" "$V/test-2.cdiff.sign" "$V/test-3.cdiff" \
    "$V/test-3.cdiff.sign" "$UP2/"
mirror2_run 0
expect_version "$M2/test-3.cvd" 3
cf_check "test-2.cdiff published" cmp -s "$M2/test-2.cdiff" "$V/test-2.cdiff"
cf_check "test-3.cdiff published" cmp -s "$M2/test-3.cdiff" "$V/test-3.cdiff"
cf_expect_exit 0 freshclam --no-dns --config-file="$F/freshclam.conf" --update-db=test
cf_expect_out 'test\.cld updated \(version: 3'
cf_expect_no 'Incremental update failed'
expect_version "$F/db/test.cld" 3
cf_expect_file_match "$LAN2_LOG" '"path": "/test-2\.cdiff".*"status": 200'
cf_expect_file_match "$LAN2_LOG" '"path": "/test-3\.cdiff".*"status": 200'
