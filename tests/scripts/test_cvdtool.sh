#!/usr/bin/env bash
# cvdtool end to end: a publisher's whole cycle with a key made here (keygen,
# build, diff, apply, verify, unpack, sign), tampering caught at every step,
# and interop with real ClamAV on the ClamAV-signed vectors.
. "$(dirname "$0")/../lib/harness.sh"

cf_tmpdir T
cd "$T" || cf_abort "cannot enter $T"

cf_expect_exit 0 "$CVDTOOL" keygen -o pub
cf_check "private key is private" test "$(stat -c %a pub.key)" = 600

# Four versions of a small database: lines added, changed, removed, files added and dropped.
mkdir v1
cp "$CF_SOURCE_DIR/COPYING" v1/
for i in $(seq 1 40); do printf '%032x:%d:Cf.Test.Hash-%d\n' "$((i * 7919))" "$((i + 60))" "$i"; done >v1/demo.hdb
for i in $(seq 1 30); do printf 'Cf.Test.Ndb-%d:0:*:%s\n' "$i" "$(printf '%08x' $((i * 104729)))"; done >v1/demo.ndb
cp -r v1 v2 && sed -i '5d;17s/Hash-17/Hash-17b/' v2/demo.hdb && echo 'Cf.Test.Ndb-new:0:*:deadbeef' >>v2/demo.ndb
cp -r v2 v3 && printf 'Cf.Test.Ldb;Engine:51-255,Target:0;0;41424344\n' >v3/demo.ldb && sed -i '1,3d' v3/demo.ndb
cp -r v3 v4 && rm v4/demo.hdb && sed -i 's/deadbeef/deadbeee/' v4/demo.ndb
for v in 1 2 3 4; do
    cf_expect_exit 0 "$CVDTOOL" build "v$v" -o "demo-$v.cvd" --key pub.key --version "$v" --builder tester
done
cf_expect_exit 0 "$CVDTOOL" verify --trust-key pub.pub demo-1.cvd demo-4.cvd
cf_expect_out 'demo-4.cvd: OK \(version 4'
# ClamAV's built-in keys do not vouch for our key's work.
cf_expect_exit 1 "$CVDTOOL" verify demo-1.cvd
cf_expect_err 'digital signature'

cf_expect_exit 0 "$CVDTOOL" info demo-3.cvd
cf_expect_out '^Version: 3$'
cf_expect_out 'demo.ldb'
cf_expect_out 'Manifest: demo.info, 3 entries, signed'

for v in 2 3 4; do
    cf_expect_exit 0 "$CVDTOOL" diff --trust-key pub.pub "demo-$((v - 1)).cvd" "demo-$v.cvd" -o "demo-$v.cdiff" --key pub.key
done
cf_expect_exit 0 "$CVDTOOL" verify --trust-key pub.pub demo-2.cdiff demo-3.cdiff demo-4.cdiff
cf_expect_exit 0 "$CVDTOOL" apply --trust-key pub.pub demo-1.cvd demo-2.cdiff demo-3.cdiff demo-4.cdiff -o demo.cld
cf_expect_out 'version 4'
cf_expect_exit 0 "$CVDTOOL" verify --trust-key pub.pub demo.cld
cf_expect_exit 0 "$CVDTOOL" unpack --trust-key pub.pub demo.cld out-cld
cf_expect_exit 0 "$CVDTOOL" unpack --trust-key pub.pub demo-4.cvd out-cvd
cf_check "patched CLD holds exactly the files of version 4" diff -r out-cld out-cvd
# Out of order or skipped patches are refused before anything is written.
cf_expect_exit 1 "$CVDTOOL" apply --trust-key pub.pub demo-1.cvd demo-3.cdiff -o bad.cld
cf_expect_err 'next version is 2'
cf_check "nothing written for a refused patch" test ! -e bad.cld

# flip_byte FILE OFFSET: puts a control byte (1, or 2 where 1 already is) at
# OFFSET: never the byte that was there, whatever the random key and data put
# there, and never valid in a header's text or a signature.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    if [ "$b" = 1 ]; then printf '\x02'; else printf '\x01'; fi |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# One flipped byte anywhere in a cdiff is caught.
size=$(stat -c %s demo-3.cdiff)
for off in 5 40 $((size / 2)) $((size - 3)); do
    cp demo-3.cdiff bad-3.cdiff
    flip_byte bad-3.cdiff "$off"
    cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub bad-3.cdiff
    cf_expect_out 'bad-3.cdiff: FAILED'
done
# ...and in a CVD, header or body.
size=$(stat -c %s demo-2.cvd)
for off in 20 300 600 $((size / 2)) $((size - 1)); do
    cp demo-2.cvd bad.cvd
    flip_byte bad.cvd "$off"
    cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub bad.cvd
    cf_expect_err 'bad.cvd: '
done
head -c 4000 demo-2.cvd >short.cvd
cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub short.cvd
cf_expect_err 'short.cvd: '
printf '<html><body>Not Found</body></html>\n' >html.cvd
cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub html.cvd
cf_expect_err 'not a ClamAV database|neither a CVD'

# Detached .sign files with a private PKI made here.
mkdir pki certs
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/root.key -out pki/root.crt -days 30 \
    -subj "/CN=Demo Root CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/sign.key -out pki/sign.csr -subj "/CN=Demo Signer" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning,emailProtection\n' >pki/ext
openssl x509 -req -in pki/sign.csr -CA pki/root.crt -CAkey pki/root.key -CAcreateserial -days 30 \
    -extfile pki/ext -out pki/sign.crt 2>/dev/null
cp pki/root.crt certs/
cf_expect_exit 0 "$CVDTOOL" sign demo-2.cvd --cert pki/sign.crt --key pki/sign.key
cf_check "CVD .sign named after database and version" test -s demo-2.cvd.sign
cf_expect_exit 0 "$CVDTOOL" sign demo-3.cdiff --cert pki/sign.crt --key pki/sign.key
cf_expect_exit 0 "$CVDTOOL" verify --trust-key pub.pub --certsdir certs demo-2.cvd demo-3.cdiff
cf_expect_out 'demo-2.cvd: OK .*detached .sign'
cf_expect_out 'demo-3.cdiff: OK .*detached .sign'
# A valid .sign stands even where the embedded signature would not: ClamAV's
# built-in keys cannot verify our header, yet the .sign vouches for the file.
cf_expect_exit 0 "$CVDTOOL" verify --certsdir certs --trust-key pub.pub demo-2.cvd
# A .sign that fails is fatal: no fallback to the embedded signature. (A .sign
# that cannot be parsed is "unusable" and falls back, as in ClamAV.)
cp demo-2.cvd.sign good.sign
cf_expect_exit 0 "$CVDTOOL" sign demo-3.cvd --cert pki/sign.crt --key pki/sign.key -o demo-2.cvd.sign
cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub --certsdir certs demo-2.cvd
cf_expect_err 'sign signature is invalid'
sed -i '2s/pkcs7-pem:/pkcs7-pem:!!/' demo-2.cvd.sign
cf_expect_exit 0 "$CVDTOOL" verify --trust-key pub.pub --certsdir certs demo-2.cvd
cf_expect_out 'demo-2.cvd: OK .*embedded signature'
mv good.sign demo-2.cvd.sign
mkdir othercerts
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/other.key -out othercerts/other.crt -days 30 \
    -subj "/CN=Other Root" 2>/dev/null
cf_expect_exit 1 "$CVDTOOL" verify --trust-key pub.pub --certsdir othercerts demo-2.cvd
cf_expect_err 'invalid'

# The real ClamAV-signed vectors: verify, patch test-1 to test-3, and let ClamAV load the result.
V="$CF_VECTORS/clamav"
if [ ! -f "$V/test-1.cvd" ]; then
    echo "SKIP (part): the ClamAV-signed vectors are not present"
else
    mkdir vcerts && cp "$V/clamav-test.crt" vcerts/
    cf_expect_exit 0 "$CVDTOOL" verify "$V/test-1.cvd" "$V/test-2.cvd" "$V/test-3.cvd" "$V/test-2.cdiff" "$V/test-3.cdiff"
    cf_expect_exit 0 "$CVDTOOL" apply "$V/test-1.cvd" "$V/test-2.cdiff" "$V/test-3.cdiff" -o real.cld
    cf_expect_exit 0 "$CVDTOOL" unpack real.cld real-cld
    cf_expect_exit 0 "$CVDTOOL" unpack "$V/test-3.cvd" real-cvd
    cf_check "test-1 + test-2.cdiff + test-3.cdiff = the files of test-3.cvd" diff -r real-cld real-cvd
    cf_expect_exit 0 "$CVDTOOL" apply --gzip "$V/test-1.cvd" "$V/test-2.cdiff" "$V/test-3.cdiff" -o realz.cld
    cf_expect_exit 0 "$CVDTOOL" verify realz.cld
    cp "$V/test-2.cdiff" test-2.cdiff
    printf '\x30' | dd of=test-2.cdiff bs=1 seek=200 conv=notrunc status=none
    cf_expect_exit 1 "$CVDTOOL" apply "$V/test-1.cvd" test-2.cdiff -o never.cld
    cf_expect_err 'test-2.cdiff'
    if cf_have_cmd sigtool && cf_have_cmd clamscan; then
        for f in real.cld realz.cld; do
            mkdir "load-$f" && cp "$f" "load-$f/test.cld"
            cf_expect_exit 0 sigtool --info "load-$f/test.cld"
            cf_expect_out 'Verification OK'
            echo "clean file" >sample.txt
            cf_expect_exit 0 clamscan --detect-pua=yes -d "load-$f" sample.txt
            cf_expect_out 'Known viruses: 11'
        done
    else
        echo "SKIP (part): sigtool/clamscan not installed"
    fi
fi
