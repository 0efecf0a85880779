#!/usr/bin/env bash
# The Debian package: `dpkg-buildpackage -b` builds clamfresh_*.deb from a
# temporary copy of the source tree (the tree itself stays untouched), the
# .deb holds what debian/README.Debian promises, and lintian reports no error.
# As root with CI=true or CF_PACKAGE_INSTALL=1, the package is also installed
# with apt-get beside Debian's ClamAV packages, its /usr/bin/clamfresh updates
# a database from the test mirror with a config made from the packaged
# example, the freshclam takeover is switched on, and `apt-get purge` must
# leave no file, diversion or unit link behind. The freshclam takeover and its
# undoing by purge are tried in a throwaway overlay copy of the system.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

cf_is_root || cf_skip "needs root (the build and the installation run as root here)"
cf_require_cmd dpkg-buildpackage dpkg-deb dpkg-parsechangelog dh lintian
[ -f "$CF_SOURCE_DIR/debian/control" ] || cf_skip "no debian/ in $CF_SOURCE_DIR"

cf_tmpdir T
version=$(dpkg-parsechangelog -l "$CF_SOURCE_DIR/debian/changelog" -S Version)
SRC="$T/clamfresh-$version"
mkdir "$SRC"

# ------------------------------------------------ build in a copy of the tree
# The files git knows (tracked, or new and not ignored), so build directories
# inside the tree are left out; a tree without git is copied without them.
if git -C "$CF_SOURCE_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$CF_SOURCE_DIR" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$SRC" || cf_abort "cannot copy the source tree"
else
    tar -C "$CF_SOURCE_DIR" --exclude='./build*' --exclude='./obj-*' --exclude=./.git -cf - . |
        tar -xf - -C "$SRC" || cf_abort "cannot copy the source tree"
fi
before=$(cd "$CF_SOURCE_DIR" && ls -A)
(cd "$SRC" && dpkg-checkbuilddeps) >"$T/builddeps" 2>&1 ||
    cf_skip "build dependencies missing: $(sed -n 's/.*Unmet build dependencies: //p' "$T/builddeps") (scripts/deps.sh installs them)"

start=$SECONDS
# nocheck: the suite runs on its own; debian/rules builds without the tests.
if (cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1; then
    cf_pass "dpkg-buildpackage -b -us -uc ($((SECONDS - start)) s)"
else
    tail -n 40 "$T/build.log" >&2
    cf_abort "dpkg-buildpackage failed (log: $T/build.log)"
fi
cf_check "the source tree is left as it was" test "$(cd "$CF_SOURCE_DIR" && ls -A)" = "$before"
cf_check "no debhelper output in the source tree" \
    test ! -e "$CF_SOURCE_DIR/debian/clamfresh" -a ! -e "$CF_SOURCE_DIR/debian/.debhelper" -a ! -e "$CF_SOURCE_DIR/debian/tmp"
mapfile -t debs < <(find "$T" -maxdepth 1 -name "clamfresh_${version}_*.deb")
[ ${#debs[@]} -eq 1 ] || cf_abort "expected one clamfresh_${version}_*.deb, found ${#debs[@]}"
DEB=${debs[0]}
cf_pass "built $(basename "$DEB")"

# ------------------------------------------------ contents
dpkg-deb -c "$DEB" | awk '{ print $NF }' | sed 's|^\./|/|; s|/$||' >"$T/contents"
for f in /usr/bin/clamfresh /usr/bin/cvdtool /usr/share/man/man1/clamfresh.1.gz /usr/share/man/man1/cvdtool.1.gz \
    /usr/share/man/man5/clamfresh.conf.5.gz /lib/systemd/system/clamfresh.service \
    /lib/systemd/system/clamfresh.timer /lib/systemd/system/clamfresh-daemon.service \
    /usr/share/bash-completion/completions/clamfresh /usr/share/bash-completion/completions/cvdtool \
    /usr/share/doc/clamfresh/copyright \
    /usr/libexec/clamfresh/freshclam-takeover /var/lib/clamav /var/log/clamav; do
    cf_check "package contains $f" grep -qxF "$f" "$T/contents"
done
# dh_compress gzips documents over 4 kB
cf_check "README.Debian is packaged" grep -qE '^/usr/share/doc/clamfresh/README\.Debian(\.gz)?$' "$T/contents"
cf_check "the example config is packaged" grep -qE '^/usr/share/doc/clamfresh/examples/freshclam\.conf\.example(\.gz)?$' "$T/contents"
cf_check "the nginx site example is packaged" \
    grep -qE '^/usr/share/doc/clamfresh/examples/nginx-clamfresh-mirror-site\.conf\.example(\.gz)?$' "$T/contents"
# Files of clamav-freshclam must not be in the package, or dpkg refuses it.
for f in /usr/bin/freshclam /etc/clamav/freshclam.conf /usr/share/man/man1/freshclam.1.gz; do
    cf_check "package leaves $f to ClamAV's packages" bash -c "! grep -qxF '$f' '$T/contents'"
done
dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./lib/systemd/system/clamfresh.service >"$T/unit"
cf_expect_file_match "$T/unit" '^ExecStart=/usr/bin/clamfresh$'
cf_expect_file_match "$T/unit" '^MemoryDenyWriteExecute=yes$'
dpkg-deb -f "$DEB" Depends >"$T/depends"
cf_check "depends on adduser (postinst creates the user clamav)" grep -qw adduser "$T/depends"
# clamfresh opens libcurl with dlopen at its first request, so dh_shlibdeps
# cannot see it: control names it.
cf_check "depends on libcurl4 (opened at run time, not linked)" grep -qE '(^|, )libcurl4 \(>= 7\.85' "$T/depends"
cf_check "no Conflicts/Breaks/Replaces with ClamAV's packages" \
    test -z "$(dpkg-deb -f "$DEB" Conflicts Breaks Replaces)"

# ------------------------------------------------ lintian
lintian --fail-on error "$DEB" >"$T/lintian.log" 2>&1
lint_rc=$?
grep -E '^[EW]:' "$T/lintian.log" | sed 's/^/# lintian: /'
if [ $lint_rc -eq 0 ] && ! grep -q '^E:' "$T/lintian.log"; then
    cf_pass "lintian: no error ($(grep -c '^W:' "$T/lintian.log") warnings)"
else
    cf_fail "lintian reports errors (exit $lint_rc)"
    cat "$T/lintian.log" >&2
fi

# ------------------------------------------------ install, update, purge
if [ "${CI:-}" != true ] && [ "${CF_PACKAGE_INSTALL:-0}" != 1 ]; then
    echo "SKIP part: installation not tried (it changes this machine: set CF_PACKAGE_INSTALL=1, or CI=true)"
    exit 0
fi
cf_require_cmd apt-get dpkg-divert python3 openssl
if dpkg-query -W -f='${db:Status-Abbrev}' clamfresh 2>/dev/null | grep -q '^.i'; then
    echo "SKIP part: a clamfresh package is already installed here; not replacing it"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600)
INSTALLED=0
# Whatever happens, the machine ends without the package (purge also undoes
# the takeover); then the harness cleans up as usual.
pkg_cleanup() {
    if [ "$INSTALLED" = 1 ]; then
        "${APT[@]}" purge clamfresh >"$T/cleanup-purge.log" 2>&1 || cat "$T/cleanup-purge.log" >&2
        INSTALLED=0
    fi
}
pkg_exit() {
    local rc=$?
    pkg_cleanup
    (exit "$rc") # cf__cleanup takes the script's status from $?
    cf__cleanup
}
trap pkg_exit EXIT

clamav_fc=0
dpkg-query -W -f='${db:Status-Abbrev}' clamav-freshclam 2>/dev/null | grep -q '^ii' && clamav_fc=1
clamav_fc_sum=
[ $clamav_fc = 1 ] && clamav_fc_sum=$(sha256sum /usr/bin/freshclam | cut -d' ' -f1)

INSTALLED=1
cf_expect_exit 0 "${APT[@]}" install "$DEB"
cf_check "dpkg reports clamfresh installed" \
    bash -c "dpkg-query -W -f='\${db:Status-Abbrev}' clamfresh | grep -q '^ii'"
dpkg -L clamfresh >"$T/installed"
cf_check "/usr/bin/clamfresh runs" bash -c "/usr/bin/clamfresh --help | grep -q 'clamfresh: a drop-in replacement'"
cf_check "user clamav exists" bash -c "getent passwd clamav >/dev/null"
cf_check "/var/lib/clamav is owned by clamav" test "$(stat -c %U /var/lib/clamav)" = clamav
cf_check "/var/log/clamav is owned by clamav" test "$(stat -c %U /var/log/clamav)" = clamav
if [ $clamav_fc = 1 ]; then
    cf_check "/usr/bin/freshclam is still ClamAV's" \
        bash -c "[ ! -L /usr/bin/freshclam ] && [ \"\$(sha256sum /usr/bin/freshclam | cut -d' ' -f1)\" = '$clamav_fc_sum' ]"
fi
cf_check "no clamfresh unit enabled by installation" \
    bash -c "! find /etc/systemd/system -name 'clamfresh*' | grep -q ."
if cf_have_cmd systemd-analyze; then
    cf_expect_exit 0 systemd-analyze verify /lib/systemd/system/clamfresh.service \
        /lib/systemd/system/clamfresh.timer /lib/systemd/system/clamfresh-daemon.service
fi
if [ -f /usr/share/bash-completion/bash_completion ]; then
    cf_check "the installed completion defines clamfresh's" bash --norc -c \
        '. /usr/share/bash-completion/bash_completion; . /usr/share/bash-completion/completions/clamfresh; complete -p clamfresh'
fi

# An update with the installed program: the packaged example config, pointed
# at a private database directory owned by clamav and at the test mirror.
cf_fixtures_use own
cf_tmpdir WWW
cf_start_mirror "$WWW" --advertised-served
cf_tmpdir CASE
DB="$CASE/db"
mkdir "$DB"
chown clamav: "$DB" "$CASE"
example=$(grep -E '^/usr/share/doc/clamfresh/examples/freshclam\.conf\.example(\.gz)?$' "$T/installed")
CONF="$CASE/freshclam.conf"
# The fixture lines below set TestDatabases; the first setting of a directive wins.
zcat -f "$example" | sed -e "s|^DatabaseDirectory .*|DatabaseDirectory $DB|" \
    -e "s|^UpdateLogFile .*|UpdateLogFile $CASE/freshclam.log|" \
    -e "s|^DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" -e '/^TestDatabases /d' >"$CONF"
cf_fixtures_conf >>"$CONF"
cf_check "the config keeps DatabaseOwner clamav from the example" grep -qx 'DatabaseOwner clamav' "$CONF"

cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
cp "$FX/test-3.cvd" "$WWW/test.cvd.served"
cp "$FX/test-3.cvd.sign" "$WWW/"
export CLAMFRESH_RETRY_DELAY=0
cf_expect_exit 0 /usr/bin/clamfresh --no-dns --config-file="$CONF" --update-db=test
cf_expect_out 'test.cvd updated \(version: 3'
cf_check "test.cvd version 3 installed" test "$(head -c 512 "$DB/test.cvd" | cut -d: -f3)" = 3
cf_check "the database belongs to clamav (privileges dropped)" test "$(stat -c %U "$DB/test.cvd")" = clamav
cf_check "the log was written" grep -q 'test.cvd updated' "$CASE/freshclam.log"

# then incrementally to the newest version
cp "$FX/test-$FX_TOP.cvd" "$WWW/test.cvd.advertised"
rm -f "$WWW/test.cvd.served"
for v in $(seq 4 "$FX_TOP"); do cp "$FX/test-$v.cdiff" "$FX/test-$v.cdiff.sign" "$WWW/"; done
cf_expect_exit 0 /usr/bin/clamfresh --no-dns --config-file="$CONF" --update-db=test
cf_expect_out "test.cld updated \\(version: $FX_TOP"
cf_check "the CLD verifies" cf_fixtures_verify "$DB/test.cld"

# The opt-in takeover of /usr/bin/freshclam, left on: purge must undo it.
# Other tests run Debian's freshclam at the same time, so this happens in a
# throwaway copy of the system (an overlay of / in a private mount namespace,
# entered with chroot) that vanishes afterwards; the real system never sees it.
cat >"$T/takeover.sh" <<'EOF'
#!/bin/bash
# $1: sha256 of ClamAV's /usr/bin/freshclam, empty when clamav-freshclam is absent
sum=$1
TAKE=/usr/libexec/clamfresh/freshclam-takeover
check() {
    local d=$1
    shift
    if "$@"; then echo "PASS: $d"; else echo "FAIL: $d"; fi
}
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
check "freshclam-takeover enable" "$TAKE" enable
check "/usr/bin/freshclam -> clamfresh" test "$(readlink /usr/bin/freshclam)" = clamfresh
check "the diversion belongs to clamfresh" test "$(dpkg-divert --listpackage /usr/bin/freshclam)" = clamfresh
check "freshclam now runs clamfresh" sh -c '/usr/bin/freshclam --help | grep -q "clamfresh: a drop-in replacement"'
check "freshclam-takeover status" test "$("$TAKE" status)" = "freshclam is clamfresh"
if [ -n "$sum" ]; then
    check "ClamAV's freshclam moved to freshclam.clamav" test "$(sha /usr/bin/freshclam.clamav)" = "$sum"
fi
check "dpkg --purge clamfresh with the takeover on" dpkg --purge clamfresh
check "no diversion by clamfresh remains" sh -c '! dpkg-divert --list | grep -q "by clamfresh"'
if [ -n "$sum" ]; then
    check "/usr/bin/freshclam is ClamAV's again" sh -c "[ ! -L /usr/bin/freshclam ] && [ \"\$(sha256sum /usr/bin/freshclam | cut -d' ' -f1)\" = '$sum' ]"
    check "freshclam.clamav is gone" test ! -e /usr/bin/freshclam.clamav
    check "ClamAV's freshclam.1.gz is back" sh -c '[ -f /usr/share/man/man1/freshclam.1.gz ] && [ ! -L /usr/share/man/man1/freshclam.1.gz ]'
else
    check "no /usr/bin/freshclam left" sh -c '[ ! -e /usr/bin/freshclam ] && [ ! -L /usr/bin/freshclam ]'
fi
EOF
cat >"$T/sandbox.sh" <<'EOF'
#!/bin/bash
# Runs $2 with argument $3 chrooted into a copy-on-write overlay of / kept in
# a tmpfs under $1; everything it changes is gone when this namespace ends.
set -e
x=$1
mount --make-rprivate /
mount -t tmpfs tmpfs "$x"
mkdir "$x/upper" "$x/work" "$x/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$x/upper,workdir=$x/work" "$x/root"
mount --rbind /dev "$x/root/dev"
mount -t proc proc "$x/root/proc"
cp "$2" "$x/root/takeover.sh"
exec chroot "$x/root" /bin/bash /takeover.sh "$3"
EOF
mkdir "$T/sandbox"
if unshare -m bash "$T/sandbox.sh" "$T/sandbox" "$T/takeover.sh" "$clamav_fc_sum" >"$T/takeover.out" 2>&1 &&
    grep -q '^PASS: freshclam-takeover enable' "$T/takeover.out"; then
    while IFS= read -r line; do
        case $line in
        PASS:*) cf_pass "(system copy) ${line#PASS: }" ;;
        FAIL:*) cf_fail "(system copy) ${line#FAIL: }" ;;
        esac
    done <"$T/takeover.out"
    if grep -q '^FAIL' "$T/takeover.out"; then cat "$T/takeover.out" >&2; fi
else
    cat "$T/takeover.out" >&2
    echo "SKIP part: takeover not tried: no private overlay copy of the system here (unshare -m, overlayfs);" \
        "it is never tried on the real system, where tests run Debian's freshclam"
fi
cf_check "the real /usr/bin/freshclam was not touched" \
    bash -c "! dpkg-divert --list | grep -q 'by clamfresh'"

cf_expect_exit 0 "${APT[@]}" purge clamfresh
INSTALLED=0
cf_check "dpkg no longer knows clamfresh" \
    bash -c "! dpkg-query -W -f='\${db:Status-Abbrev}' clamfresh 2>/dev/null | grep -q '^.[ic]'"
# A directory is left over when no package owns it and it is empty or named
# after clamfresh; shared ones (/usr/bin, /var/lib/clamav of clamav-base) stay.
left=()
while read -r f; do
    [ "$f" = /. ] && continue
    if [ -d "$f" ]; then
        if ! dpkg -S "$f" >/dev/null 2>&1 && { [ -z "$(ls -A "$f")" ] || [[ $f == *clamfresh* ]]; }; then
            left+=("$f")
        fi
    elif [ -e "$f" ] || [ -L "$f" ]; then
        left+=("$f")
    fi
done <"$T/installed"
cf_check "every file of the package is gone${left[*]:+ (left: ${left[*]})}" test ${#left[@]} -eq 0
cf_check "no diversion by clamfresh remains" bash -c "! dpkg-divert --list | grep -q 'by clamfresh'"
cf_check "no clamfresh unit link or state remains" \
    bash -c "! find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name '*clamfresh*' 2>/dev/null | grep -q ."
cf_check "no dpkg maintainer files remain" bash -c "! ls /var/lib/dpkg/info/clamfresh.* 2>/dev/null | grep -q ."
if [ $clamav_fc = 1 ]; then
    cf_check "/usr/bin/freshclam is ClamAV's" \
        bash -c "[ ! -L /usr/bin/freshclam ] && [ \"\$(sha256sum /usr/bin/freshclam | cut -d' ' -f1)\" = '$clamav_fc_sum' ]"
    cf_check "no freshclam.clamav" test ! -e /usr/bin/freshclam.clamav
else
    cf_check "no /usr/bin/freshclam left" test ! -e /usr/bin/freshclam -a ! -L /usr/bin/freshclam
fi
