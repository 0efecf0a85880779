#!/usr/bin/env bash
# A complete clamfresh update on a machine with no internet: builds clamfresh,
# publishes a small signed "daily" database in five versions with a demo key
# (cvdtool), serves them from a mirror on 127.0.0.1, installs version 1 and
# lets clamfresh bring it to version 5 through cdiffs. Everything lives in
# .demo/ and the mirror is stopped at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${CF_BUILD:-$here/build}
demo=$here/.demo

"$here/scripts/deps.sh"
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target clamfresh cvdtool >/dev/null
cvdtool=$build/cvdtool
clamfresh=$build/clamfresh

rm -rf "$demo"
mkdir -p "$demo/src" "$demo/www" "$demo/db"
cd "$demo"
echo "== Publishing a demo database (key made here: demo.key / demo.pub)"
"$cvdtool" keygen -o demo >/dev/null
cp "$here/COPYING" src/
: >src/daily.hdb
for v in 1 2 3 4 5; do
    # Each version adds a few hash signatures, as a real daily does.
    for i in 1 2 3; do
        printf '%032x:%d:Demo.Signature.%d-%d\n' "$((v * 1000 + i))" "$((v * 10 + i))" "$v" "$i" >>src/daily.hdb
    done
    # One version an hour, the last one an hour ago.
    "$cvdtool" build src -o "www/daily-$v.cvd" --key demo.key --name daily --version "$v" --builder demo \
        --time "$(($(date +%s) - (6 - v) * 3600))" >/dev/null
    if [ "$v" -gt 1 ]; then
        "$cvdtool" diff --trust-key demo.pub "www/daily-$((v - 1)).cvd" "www/daily-$v.cvd" \
            -o "www/daily-$v.cdiff" --key demo.key >/dev/null
    fi
done
cp www/daily-5.cvd www/daily.cvd
# The local database starts at version 1, as after an install some time ago.
cp www/daily-1.cvd db/daily.cvd
rm www/daily-1.cvd www/daily-2.cvd www/daily-3.cvd www/daily-4.cvd
ls www | sed 's/^/   mirror: /'

python3 "$here/tests/servers/mirror.py" --root www --port-file port --log mirror.log &
mirror_pid=$!
trap 'kill $mirror_pid 2>/dev/null; wait $mirror_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
port=$(cat port)

cat >freshclam.conf <<CONF
DatabaseDirectory $demo/db
DatabaseOwner $(id -un)
DatabaseMirror http://127.0.0.1:$port
# The demo database is signed by the demo key, not by ClamAV's keys.
CVDPublicKey $demo/demo.pub
InfoPublicKey $demo/demo.pub
CdiffPublicKey $demo/demo.pub
CVDCertsDirectory $demo
# libclamav accepts only ClamAV-signed manifests, so its load test would reject the
# demo key's database; clamfresh's own signed-manifest check still runs.
TestDatabases no
LogTime no
CONF

echo
echo "== clamfresh --no-dns --config-file=$demo/freshclam.conf --update-db=daily"
set +e
"$clamfresh" --no-dns --show-progress --config-file="$demo/freshclam.conf" --update-db=daily
status=$?
set -e
echo "== exit status: $status"
echo
echo "== Requests the mirror saw:"
python3 - "$demo/mirror.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("   %s %s -> %s (%s bytes)" % (r.get("method"), r.get("path"), r.get("status"), r.get("bytes")))
PY
echo
echo "== Installed database:"
ls -l db | sed 's/^/   /'
"$cvdtool" info db/daily.cld | grep -E '^(File|Container|Version|Signatures):' | sed 's/^/   /'
exit $status
