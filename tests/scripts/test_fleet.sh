#!/usr/bin/env bash
# A fleet behind a site cache: no web cache can make an update stale, and the
# cache, not the origin, serves the fleet's bulk bytes.
#
#   upstream (tests/servers/mirror.py, databases built here with cvdtool)
#     -> clamfresh --mirror=DIR          (run after every upstream version)
#     -> nginx "origin" serving DIR with the snippet mirror mode writes
#     -> nginx caching proxy that keeps every 200/206 for 30 days whatever the
#        origin says (proxy_cache_lock on), primed with daily.cvd once
#     -> CF_FLEET_CLIENTS clients (default 21), each with its own database
#        directory and config, started at no database, version 1 or 3
#
# Upstream publishes versions 4..9, one per round; after each, the mirror runs
# and then every client, in parallel batches. After every round every client
# must hold the newest version, byte for byte the generated one (every member
# of the installed CVD/CLD equals the member of daily-V.cvd, and the file
# verifies). Per round the test prints the requests at the proxy, the requests
# reaching the origin and the bulk bytes (*.cvd, *.cdiff, ...) reaching the
# origin, and checks that those bytes do not grow with the number of clients:
# one copy of what the mirror publishes at most, nothing beyond a small
# constant from the clients after the first five, and no versioned name
# fetched from the origin twice.
#
# Four modes, each a fresh fleet, mirror directory, origin and proxy:
#   dns-off       DatabaseMirror = the proxy; half the clients --no-dns, half
#                 "DNSDatabaseInfo no": versions come over HTTP only
#   dns           the same with DNS on: dnsmasq answers current.cvd.clamav.net
#                 with the mirror's current.txt, refreshed every round
#   dbmirror-dns  DatabaseMirror by host name (resolved by that dnsmasq) and
#                 DNSDatabaseInfo naming the site's own record
#   private       PrivateMirror = the proxy
#
# Everything runs in a private network namespace (root); CF_FLEET_MODES and
# CF_FLEET_CLIENTS select a subset / another size.
. "$(dirname "$0")/../lib/harness.sh"

[ -x "${CLAMFRESH:-}" ] || cf_skip "clamfresh not built"
[ -x "${CVDTOOL:-}" ] || cf_skip "cvdtool not built"
cf_is_root || cf_skip "needs root (nginx workers as root, a network namespace, dnsmasq on port 53)"
cf_require_cmd nginx dnsmasq ip curl python3 sha256sum
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

NCLIENTS=${CF_FLEET_CLIENTS:-21}
MODES=${CF_FLEET_MODES:-dns-off dns dbmirror-dns private}
BATCH=4         # clients run at once
PILOT=5         # the first clients of a round; the rest must add no origin bulk
FIRST=4         # the version of round 1
TOP=9           # the version of the last round
MIDDLE=3        # a middle starting version
SLACK=1024      # bytes: "a small constant"
[ "$NCLIENTS" -gt "$PILOT" ] || cf_abort "CF_FLEET_CLIENTS must be above $PILOT"

hdr_field() { head -c 512 "$1" | cut -d: -f"$2"; }

# ---------------------------------------------------------------- databases 1..TOP
# A daily of a few thousand hashes; every version adds 150 and drops 5, so a
# full database is about twenty times a patch and a patch is well above SLACK.
cf_tmpdir K
(
    cd "$K" || exit 1
    "$CVDTOOL" keygen -o key || exit 1
    now=$(date +%s)
    mkdir v1
    cp "$CF_SOURCE_DIR/COPYING" v1/ 2>/dev/null || echo "clamfresh fleet test database" >v1/COPYING
    python3 - "$K" "$TOP" <<'PY' || exit 1
import hashlib, os, sys
root, top = sys.argv[1], int(sys.argv[2])
def line(i):
    return "%s:%d:Cf.Fleet.Hash-%d\n" % (hashlib.md5(b"fleet%d" % i).hexdigest(), 60 + i % 5000, i)
live = list(range(1, 3001))
nxt = 3001
for v in range(1, top + 1):
    if v > 1:
        del live[(v * 37) % len(live):(v * 37) % len(live) + 5]
        live += range(nxt, nxt + 150)
        nxt += 150
    d = os.path.join(root, "v%d" % v)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "daily.hdb"), "w") as f:
        f.writelines(line(i) for i in live)
    with open(os.path.join(d, "daily.ndb"), "w") as f:
        f.write("Cf.Fleet.Ndb-%d:0:*:%08x\n" % (v, v * 104729))
PY
    for v in $(seq 2 "$TOP"); do cp v1/COPYING "v$v/"; done
    # Build times an hour apart and in the past (see test_mirror_mode.sh).
    for v in $(seq 1 "$TOP"); do
        "$CVDTOOL" build "v$v" -o "daily-$v.cvd" --name daily --key key.key --version "$v" \
            --builder fleet --time "$((now - (TOP + 3 - v) * 3600))" || exit 1
    done
    for v in $(seq 2 "$TOP"); do
        "$CVDTOOL" diff --trust-key key.pub "daily-$((v - 1)).cvd" "daily-$v.cvd" -o "daily-$v.cdiff" \
            --key key.key || exit 1
    done
) >"$K/build.log" 2>&1 || {
    cat "$K/build.log" >&2
    cf_abort "cannot build the fleet's databases"
}

# The reference of version V: the sorted SHA-256 list of its members.
cf_tmpdir REF
for v in $(seq 1 "$TOP"); do
    "$CVDTOOL" unpack --trust-key "$K/key.pub" "$K/daily-$v.cvd" "$REF/u$v" >/dev/null 2>&1 ||
        cf_abort "cannot unpack daily-$v.cvd"
    (cd "$REF/u$v" && sha256sum -- * | sort -k2) >"$REF/$v.sum"
done
cf__say "# daily-$TOP.cvd is $(stat -c %s "$K/daily-$TOP.cvd") bytes, daily-$TOP.cdiff $(stat -c %s "$K/daily-$TOP.cdiff") bytes"

# ---------------------------------------------------------------- the servers' namespace
cf_netns_create
export CF_SERVE_IN_NETNS=1
cf_tmpdir UP
cf_start_mirror "$UP"
UP_URL=$MIRROR_URL

publish_up() { # VERSION: upstream serves VERSION, cdiffs 2..VERSION
    local v=$1 n
    rm -f "$UP"/daily*
    cp "$K/daily-$v.cvd" "$UP/daily.cvd"
    cp "$K/daily-$v.cvd" "$UP/"
    for n in $(seq 2 "$v"); do cp "$K/daily-$n.cdiff" "$UP/"; done
}

# mirror_run DIR: one mirror-mode run from upstream into DIR; must succeed.
mirror_run() {
    local out=$1.run.out
    if cf_netns_exec "$CLAMFRESH" --no-dns --config-file="$MIRROR_CONF" --trust-key="$K/key.pub" \
        --update-db=daily --mirror="$1" >"$out" 2>&1; then
        return 0
    fi
    cf_fail "mirror run into $1 failed"
    tail -n 20 "$out" >&2
    return 1
}

cf_tmpdir W
mkdir "$W/mdb"
MIRROR_CONF="$W/mirror.conf"
cat >"$MIRROR_CONF" <<EOF
DatabaseMirror $UP_URL
DatabaseDirectory $W/mdb
DatabaseOwner $(id -un)
EOF

# ---------------------------------------------------------------- clients

# client_setup MODE I DIR: DIR/db and DIR/c.conf for client I of MODE; its
# starting version cycles through none, 1 and MIDDLE.
client_setup() {
    local mode=$1 i=$2 dir=$3 start
    mkdir -p "$dir/db"
    start=$(((i - 1) % 3))
    case $start in
    1) cp "$K/daily-1.cvd" "$dir/db/daily.cvd" ;;
    2) cp "$K/daily-$MIDDLE.cvd" "$dir/db/daily.cvd" ;;
    esac
    {
        echo "DatabaseDirectory $dir/db"
        echo "DatabaseOwner $(id -un)"
        echo "TestDatabases no"
        case $mode in
        dns-off)
            echo "DatabaseMirror $PROXY_URL"
            [ $((i % 2)) = 1 ] && echo "DNSDatabaseInfo no"
            ;;
        dns) echo "DatabaseMirror $PROXY_URL" ;;
        dbmirror-dns)
            echo "DatabaseMirror http://fleet-mirror.test:$PROXY_PORT"
            echo "DNSDatabaseInfo current.fleet.test"
            ;;
        private) echo "PrivateMirror $PROXY_URL" ;;
        esac
    } >"$dir/c.conf"
    echo "$((start == 0 ? 0 : start == 1 ? 1 : MIDDLE))" >"$dir/start"
}

# client_run MODE I DIR ROUND: one update; exit status into DIR/rc.ROUND, its
# duration in milliseconds into DIR/ms.ROUND.
client_run() {
    local mode=$1 i=$2 dir=$3 round=$4 extra=() t0 rc
    [ "$mode" = dns-off ] && [ $((i % 2)) = 0 ] && extra=(--no-dns)
    t0=${EPOCHREALTIME/./}
    ip netns exec "$CF_NETNS" "$CLAMFRESH" --config-file="$dir/c.conf" --trust-key="$K/key.pub" \
        --update-db=daily "${extra[@]}" >"$dir/out.$round" 2>&1
    rc=$?
    echo $(((${EPOCHREALTIME/./} - t0) / 1000)) >"$dir/ms.$round"
    echo "$rc" >"$dir/rc.$round"
}

# run_clients MODE ROUND FROM TO: clients FROM..TO, BATCH at a time.
run_clients() {
    local mode=$1 round=$2 i pids=()
    for i in $(seq "$3" "$4"); do
        client_run "$mode" "$i" "$(client_dir "$i")" "$round" &
        pids+=($!)
        if [ "${#pids[@]}" -ge "$BATCH" ]; then
            wait "${pids[0]}"
            pids=("${pids[@]:1}")
        fi
    done
    wait "${pids[@]}"
}

client_dir() { printf '%s/c%02d' "$FLEET" "$1"; }

# installed_ok DIR V: succeeds when DIR/db holds exactly one of
# daily.cvd/daily.cld, at version V, verifying, with V's members byte for byte;
# otherwise WHY says what is wrong. Files already found good are known by their
# SHA-256 (run it in this shell, not in $(...), or that memory is lost).
declare -A GOOD
installed_ok() {
    local db=$1/db v=$2 f files=() sum u
    WHY=
    for f in "$db/daily.cvd" "$db/daily.cld"; do [ -f "$f" ] && files+=("$f"); done
    if [ "${#files[@]}" != 1 ]; then
        WHY="${#files[@]} of daily.cvd/daily.cld"
        return 1
    fi
    f=${files[0]}
    local hdr fields
    read -r -N 512 hdr <"$f"
    IFS=: read -r -a fields <<<"$hdr"
    if [ "${fields[2]:-}" != "$v" ]; then
        WHY="${f##*/} version ${fields[2]:-?}"
        return 1
    fi
    sum=$(sha256sum <"$f")
    sum=${sum%% *}
    [ "${GOOD[$sum]:-}" = "$v" ] && return 0
    u="$1/unpacked"
    rm -rf "$u"
    if ! "$CVDTOOL" unpack --trust-key "$K/key.pub" "$f" "$u" >"$1/unpack.out" 2>&1; then
        WHY="${f##*/} does not verify: $(tail -n 1 "$1/unpack.out")"
        return 1
    fi
    if ! (cd "$u" && sha256sum -- * | sort -k2) | cmp -s - "$REF/$v.sum"; then
        WHY="${f##*/} members differ from daily-$v.cvd"
        return 1
    fi
    rm -rf "$u"
    GOOD[$sum]=$v
}

# published_bulk DIR: bytes of every database and patch name the mirror serves.
published_bulk() {
    local total=0 f
    for f in "$1"/daily.cvd "$1"/daily-*.cvd "$1"/daily-*.cdiff "$1"/*.sign; do
        [ -f "$f" ] && total=$((total + $(stat -c %s "$f")))
    done
    echo "$total"
}

# dns_publish MODE MIRROR_DIR: the site's DNS answers from the mirror's current.txt.
dns_publish() {
    local txt
    txt=$(cat "$2/current.txt")
    case $1 in
    dns) cf_dnsmasq_serve "current.cvd.clamav.net=$txt" ;;
    dbmirror-dns) cf_dnsmasq_serve "current.fleet.test=$txt" "fleet-mirror.test@127.0.0.1" ;;
    esac
}

SUMMARY=()

# ---------------------------------------------------------------- one fleet
run_mode() {
    local mode=$1 M i v round=0 primed bad stuck p0 o0 om p1 o1 line
    local preq pall phits oreq obulk mbulk bound t0 ms
    # shellcheck disable=SC2034 # read by the harness, which prefixes every check with it
    CF_LABEL=$mode
    cf__say "# ---- mode $mode: $NCLIENTS clients"
    cf_tmpdir FLEET
    M="$FLEET/mirror"
    mkdir "$M"
    publish_up "$FIRST"
    mirror_run "$M" || return 1
    cf_start_nginx_origin "$M"
    cf_start_nginx_shared_cache "$ORIGIN_URL"
    # Earlier machines of the site asked daily.cvd through the proxy: from now
    # on it hands out this copy whatever the origin publishes.
    cf_netns_exec curl -s -r 0-511 -o "$FLEET/primed.hdr" "$PROXY_URL/daily.cvd"
    primed=$(hdr_field "$FLEET/primed.hdr" 3)
    cf_check "the proxy holds daily.cvd version $FIRST" test "$primed" = "$FIRST"
    for i in $(seq 1 "$NCLIENTS"); do client_setup "$mode" "$i" "$(client_dir "$i")"; done

    for v in $(seq "$FIRST" "$TOP"); do
        round=$((round + 1))
        if [ "$v" != "$FIRST" ]; then
            publish_up "$v"
            mirror_run "$M" || return 1
        fi
        dns_publish "$mode" "$M"
        cf_check "round $round: the mirror publishes version $v" test "$(published_version "$M")" = "$v"
        if [ "$v" != "$FIRST" ]; then
            cf_netns_exec curl -s -r 0-511 -o "$FLEET/stale.hdr" "$PROXY_URL/daily.cvd"
            cf_check "round $round: the proxy still serves daily.cvd version $primed (stale; the premise)" \
                test "$(hdr_field "$FLEET/stale.hdr" 3)" = "$primed"
        fi
        p0=$(cf_nginx_lines "$PROXY_LOG")
        o0=$(cf_nginx_lines "$ORIGIN_LOG")
        t0=$SECONDS
        run_clients "$mode" "$round" 1 "$PILOT"
        sleep 0.2 # nginx logs a request when it ends
        om=$(cf_nginx_lines "$ORIGIN_LOG")
        run_clients "$mode" "$round" $((PILOT + 1)) "$NCLIENTS"
        sleep 0.2
        p1=$(cf_nginx_lines "$PROXY_LOG")
        o1=$(cf_nginx_lines "$ORIGIN_LOG")
        read -r preq _ pall phits < <(cf_nginx_tally "$PROXY_LOG" "$p0" "$p1")
        read -r oreq obulk _ _ < <(cf_nginx_tally "$ORIGIN_LOG" "$o0" "$o1")
        read -r _ mbulk _ _ < <(cf_nginx_tally "$ORIGIN_LOG" "$om" "$o1")
        ms=$(cat "$FLEET"/c*/ms."$round" | sort -n | awk '{ a[NR] = $1; s += $1 } END { printf "%d/%d", s / NR, a[NR] }')
        line=$(printf '%-12s round %d v%d: proxy %4d requests (%4d hits, %8d bytes out), origin %3d requests, origin bulk %7d bytes (%d after the first %d clients); %ds, client ms avg/max %s' \
            "$mode" "$round" "$v" "$preq" "$phits" "$pall" "$oreq" "$obulk" "$mbulk" "$PILOT" $((SECONDS - t0)) "$ms")
        cf__say "# $line"
        SUMMARY+=("$line")

        # every client: exit 0, version v, byte for byte
        bad=()
        stuck=()
        for i in $(seq 1 "$NCLIENTS"); do
            local d r
            d=$(client_dir "$i")
            r=$(cat "$d/rc.$round")
            installed_ok "$d" "$v" || stuck+=("c$i(start $(cat "$d/start")): $WHY")
            [ "$r" = 0 ] || bad+=("c$i:exit $r")
        done
        if [ "${#bad[@]}" = 0 ]; then
            cf_pass "round $round: all $NCLIENTS clients exited 0"
        else
            cf_fail "round $round: ${#bad[@]} clients failed: ${bad[*]}"
        fi
        if [ "${#stuck[@]}" = 0 ]; then
            cf_pass "round $round: all $NCLIENTS clients hold version $v byte for byte"
        else
            cf_fail "round $round: ${#stuck[@]} of $NCLIENTS clients do not hold version $v: $(printf '%s; ' "${stuck[@]:0:6}")"
            i=${stuck[0]%%(*}
            d=$(client_dir "${i#c}")
            cf__say "#   output of ${stuck[0]%%:*} this round:"
            sed 's/^/#     /' "$d/out.$round" | tail -n 15
        fi

        # the origin's bulk bytes do not grow with the fleet
        bound=$(($(published_bulk "$M") + SLACK))
        cf_check "round $round: origin bulk bytes $obulk <= one copy of what the mirror publishes + $SLACK ($bound)" \
            test "$obulk" -le "$bound"
        cf_check "round $round: clients $((PILOT + 1))..$NCLIENTS added $mbulk <= $SLACK bulk bytes at the origin" \
            test "$mbulk" -le "$SLACK"
    done

    # a versioned name never changes, so the origin serves it once per fleet
    local twice
    twice=$(awk '$4 ~ /^2/ && $2 ~ /-[0-9]+\.(cvd|cdiff)(\.sign)?$/ { n[$2]++ }
                 END { for (k in n) if (n[k] > 1) printf "%s x%d ", k, n[k] }' "$ORIGIN_LOG")
    cf_check "no versioned name reached the origin twice${twice:+ ($twice)}" test -z "$twice"
    cf_stop "$PROXY_PID"
    cf_stop "$ORIGIN_PID"
}

# published_version DIR: the version of DIR/daily.cvd (0 when none).
published_version() {
    if [ -f "$1/daily.cvd" ]; then hdr_field "$1/daily.cvd" 3; else echo 0; fi
}

for mode in $MODES; do
    case $mode in
    dns-off | dns | dbmirror-dns | private) run_mode "$mode" ;;
    *) cf_abort "unknown mode '$mode' in CF_FLEET_MODES" ;;
    esac
done

cf__say "# ---- summary (requests and bytes per round)"
for line in "${SUMMARY[@]}"; do cf__say "# $line"; done
