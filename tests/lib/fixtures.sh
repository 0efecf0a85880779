# shellcheck shell=bash
# Fixture sets for the end-to-end tests of the updater, the program and clamd
# notification. Source it after harness.sh:
#
#   . "$(dirname "$0")/../lib/fixtures.sh"
#   for set in "${CF_FIXTURE_SETS[@]}"; do
#       cf_fixtures_use "$set"
#       ... scenario bodies using $FX/test-3.cvd, "${FX_ARGS[@]}", cf_fixtures_conf ...
#   done
#
# Two sets, each a directory $FX with test-N.cvd (N = 1..FX_TOP), test-N.cdiff
# (N = 2..FX_TOP), a .sign beside each (test-N.cvd.sign, test-N.cdiff.sign) and
# certs/ (the .sign trust anchors):
#
#   own      made here at test time, always available: FX_TOP=6, headers as in
#            freshclam's own fixtures (sigs 0 0 11 12 13 14, f-level 81), signed
#            with a key from `cvdtool keygen` (key.key / key.pub) and .sign files
#            from a private PKI made with openssl.
#   vectors  the real ClamAV-signed files of $CF_VECTORS/clamav (FX_TOP=3, ClamAV's
#            built-in keys, ClamAV's test CA), copied into a private directory;
#            only when present. Tests that need them skip that set and say so.
#
# After cf_fixtures_use SET:
#   FX         the set's directory         FX_SET   own | vectors
#   FX_TOP     its newest version           FX_CERTS the .sign anchors (FX/certs)
#   FX_ARGS    clamfresh options trusting the set (--cvdcertsdir, and --trust-key
#              for the own set)
#   CF_LABEL   "own" / "vectors": the harness prefixes every check with it
#   cf_fixtures_conf  prints the freshclam.conf lines trusting the set
#   cf_fixtures_conf_loadtest  only the load-test line of those (for use with FX_ARGS)
#   cf_fixtures_verify FILE  verifies a CVD/CLD/cdiff with the set's trust

CF_FIXTURE_SETS=(own)
if [ -f "$CF_VECTORS/clamav/test-1.cvd" ]; then
    CF_FIXTURE_SETS+=(vectors)
else
    echo "SKIP (vector variant): the ClamAV-signed vectors ($CF_VECTORS/clamav) are not present;" \
        "the scenarios run on the self-made fixtures only"
fi

CF__FX_OWN=
CF__FX_VECTORS=

# cf_fixtures_own DIR: builds the own set in DIR (created). Returns non-zero,
# with the failing step's output on stderr, when a step fails.
cf_fixtures_own() {
    local dir=$1 v i log
    local sigs=(0 0 0 11 12 13 14)
    [ -x "${CVDTOOL:-}" ] || { echo "fixtures: CVDTOOL not set or not built" >&2; return 1; }
    command -v openssl >/dev/null || { echo "fixtures: openssl not found" >&2; return 1; }
    mkdir -p "$dir/src" "$dir/certs" "$dir/pki" || return 1
    log="$dir/build.log"
    : >"$log"
    "$CVDTOOL" keygen -o "$dir/key" >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
    # Versions 1..6: a .ndb and .ldb from the start (edited in 2 and 5), a .hdb
    # that grows from 3 on and a .fp present in 3..5, so the cdiffs edit lines,
    # add files and remove one.
    for v in 1 2 3 4 5 6; do
        local s="$dir/src/v$v"
        mkdir "$s"
        if [ -f "$CF_SOURCE_DIR/COPYING" ]; then
            cp "$CF_SOURCE_DIR/COPYING" "$s/"
        else
            echo "clamfresh test database, made at test time" >"$s/COPYING"
        fi
        for i in 1 2 3; do
            printf 'Cf.Test.Ndb-%d:0:*:%08x\n' "$i" "$((i * 104729 + (v >= 2 && i == 2)))"
        done >"$s/test.ndb"
        printf 'Cf.Test.Ldb;Engine:51-255,Target:0;0;%s\n' "$([ "$v" -ge 5 ] && echo 41424345 || echo 41424344)" \
            >"$s/test.ldb"
        if [ "$v" -ge 3 ]; then
            for i in $(seq 1 "$v"); do printf '%032x:%d:Cf.Test.Hdb-%d\n' "$((i * 7919))" "$((60 + i))" "$i"; done \
                >"$s/test.hdb"
        fi
        if [ "$v" -ge 3 ] && [ "$v" -le 5 ]; then
            echo '44d88612fea8a8f36de82e1278abb02f:68:Cf.Test.Fp' >"$s/test.fp"
        fi
        "$CVDTOOL" build "$s" -o "$dir/test-$v.cvd" --name test --key "$dir/key.key" --version "$v" \
            --builder clamfresh --flevel 81 --sigs "${sigs[$v]}" --time "$((1624388302 + v * 7200))" \
            >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
    done
    for v in 2 3 4 5 6; do
        "$CVDTOOL" diff --trust-key "$dir/key.pub" "$dir/test-$((v - 1)).cvd" "$dir/test-$v.cvd" \
            -o "$dir/test-$v.cdiff" --key "$dir/key.key" >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
    done
    # A root CA (the certs directory) and a code-signing certificate it issued.
    (
        cd "$dir/pki" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days 30 \
            -subj "/CN=clamfresh Fixture Root CA" -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign &&
            openssl req -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr \
                -subj "/CN=clamfresh Fixture Signer" &&
            printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning,emailProtection\n' >ext &&
            openssl x509 -req -in sign.csr -CA root.crt -CAkey root.key -CAcreateserial -days 30 \
                -extfile ext -out sign.crt
    ) >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
    cp "$dir/pki/root.crt" "$dir/certs/" || return 1
    for f in "$dir"/test-*.cvd "$dir"/test-*.cdiff; do
        "$CVDTOOL" sign "$f" --cert "$dir/pki/sign.crt" --key "$dir/pki/sign.key" -o "$f.sign" >>"$log" 2>&1 ||
            { cat "$log" >&2; return 1; }
    done
    "$CVDTOOL" verify -q --trust-key "$dir/key.pub" --certsdir "$dir/certs" "$dir"/test-*.cvd "$dir"/test-*.cdiff \
        >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
}

# cf_fixtures_vectors DIR: copies the ClamAV-signed vectors into DIR; returns 1
# when they are absent.
cf_fixtures_vectors() {
    local dir=$1 src="$CF_VECTORS/clamav"
    [ -f "$src/test-1.cvd" ] || return 1
    mkdir -p "$dir/certs" || return 1
    cp "$src"/test-* "$dir/" && cp "$src/clamav-test.crt" "$dir/certs/"
}

# cf_fixtures_use SET: makes SET current (built on first use, once per test).
# The variables it sets are read by the scripts that source this file.
# shellcheck disable=SC2034
cf_fixtures_use() {
    FX_SET=$1
    case $FX_SET in
    own)
        if [ -z "$CF__FX_OWN" ]; then
            cf_tmpdir CF__FX_OWN
            cf_fixtures_own "$CF__FX_OWN" || cf_abort "cannot build the self-made fixtures"
        fi
        FX=$CF__FX_OWN
        FX_TOP=6
        FX_ARGS=(--cvdcertsdir="$FX/certs" --trust-key="$FX/key.pub")
        ;;
    vectors)
        if [ -z "$CF__FX_VECTORS" ]; then
            cf_tmpdir CF__FX_VECTORS
            cf_fixtures_vectors "$CF__FX_VECTORS" || cf_abort "cannot copy the vectors from $CF_VECTORS/clamav"
        fi
        FX=$CF__FX_VECTORS
        FX_TOP=3
        FX_ARGS=(--cvdcertsdir="$FX/certs")
        ;;
    *) cf_abort "cf_fixtures_use: unknown set '$FX_SET'" ;;
    esac
    FX_CERTS="$FX/certs"
    CF_LABEL=$FX_SET
    cf__say "# fixture set: $FX_SET ($FX)"
}

# cf_fixtures_conf: freshclam.conf lines that make clamfresh trust the current set.
cf_fixtures_conf() {
    echo "CVDCertsDirectory $FX_CERTS"
    if [ "$FX_SET" = own ]; then
        echo "CVDPublicKey $FX/key.pub"
        echo "InfoPublicKey $FX/key.pub"
        echo "CdiffPublicKey $FX/key.pub"
    fi
    cf_fixtures_conf_loadtest
}

# cf_fixtures_conf_loadtest: the TestDatabases line the current set needs.
cf_fixtures_conf_loadtest() {
    if [ "$FX_SET" = own ]; then
        # libclamav accepts only ClamAV-signed databases (it checks the header
        # dsig and the .info DSIG with ClamAV's own keys and has no option to
        # trust another), so its load test would refuse every file of this set.
        echo "TestDatabases no"
    fi
}

# cf_fixtures_verify FILE: FILE (CVD, CLD or cdiff) verifies with the set's trust;
# its .sign is used when one lies beside it.
cf_fixtures_verify() {
    local trust=()
    [ "$FX_SET" = own ] && trust=(--trust-key "$FX/key.pub")
    "$CVDTOOL" verify -q "${trust[@]}" --certsdir "$FX_CERTS" "$1" >/dev/null 2>&1
}
