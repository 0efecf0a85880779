#!/usr/bin/env bash
# The integration files that `cmake --install` adds (dist/): the systemd units
# pass `systemd-analyze verify` offline, name the installed program and carry
# their hardening; the bash completions offer exactly the options the programs
# accept; the unit's capability bounding set suffices for an update that
# drops to DatabaseOwner; the example config is one clamfresh reads; CF_FRESHCLAM_ALIAS adds
# the freshclam link and man page. When systemd runs this machine (PID 1), the
# hardened service is also started once for real.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "${CLAMFRESH:-}" ] || cf_skip "clamfresh not built"
[ -x "${CVDTOOL:-}" ] || cf_skip "cvdtool not built"
cf_require_cmd cmake systemd-analyze

cf_tmpdir T

# stage PREFIX BUILD [cmake -D...]: configures the source tree (without tests:
# nothing is compiled) and installs the integration component under PREFIX.
stage() {
    local prefix=$1 build=$2
    shift 2
    cmake -S "$CF_SOURCE_DIR" -B "$build" -DCF_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" "$@" \
        >"$build.log" 2>&1 && cmake --install "$build" --component integration >>"$build.log" 2>&1
}

# ------------------------------------------------ installed layout, default options
P="$T/usr"
if stage "$P" "$T/b1"; then
    cf_pass "configure and install the integration component into $P"
else
    cat "$T/b1.log" >&2
    cf_abort "cannot stage the integration files"
fi
U="$P/lib/systemd/system"
for f in "$U/clamfresh.service" "$U/clamfresh.timer" "$U/clamfresh-daemon.service" \
    "$P/share/bash-completion/completions/clamfresh" "$P/share/bash-completion/completions/cvdtool" \
    "$P/share/doc/clamfresh/examples/freshclam.conf.example"; do
    cf_check "installed: ${f#"$P"/}" test -f "$f"
done
cf_check "no freshclam alias without CF_FRESHCLAM_ALIAS" test ! -e "$P/bin/freshclam" -a ! -e "$P/share/man/man1/freshclam.1"
cf_check "no @VAR@ left in the generated units" bash -c "! grep -n '@[A-Z_]*@' '$U'/*.service"

# ------------------------------------------------ static content of the units
unit_value() { # FILE KEY: every value of KEY, one per line
    sed -n "s/^$2=//p" "$1"
}
cf_check "clamfresh.service runs the installed program once" \
    test "$(unit_value "$U/clamfresh.service" ExecStart)" = "$P/bin/clamfresh"
cf_check "clamfresh.service is Type=oneshot" test "$(unit_value "$U/clamfresh.service" Type)" = oneshot
cf_check "clamfresh-daemon.service runs the installed program as a foreground daemon" \
    test "$(unit_value "$U/clamfresh-daemon.service" ExecStart)" = "$P/bin/clamfresh --daemon --foreground"
cf_check "timer: OnCalendar=daily" test "$(unit_value "$U/clamfresh.timer" OnCalendar)" = daily
cf_check "timer: RandomizedDelaySec=1h" test "$(unit_value "$U/clamfresh.timer" RandomizedDelaySec)" = 1h
cf_check "timer: Persistent=true" test "$(unit_value "$U/clamfresh.timer" Persistent)" = true
cf_check "timer is wanted by timers.target" test "$(unit_value "$U/clamfresh.timer" WantedBy)" = timers.target

for svc in clamfresh.service clamfresh-daemon.service; do
    f="$U/$svc"
    for want in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes PrivateDevices=yes \
        ProtectKernelTunables=yes ProtectKernelModules=yes ProtectControlGroups=yes RestrictNamespaces=yes \
        RestrictSUIDSGID=yes LockPersonality=yes SystemCallArchitectures=native \
        'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' SystemCallFilter=@system-service; do
        cf_check "$svc: $want" grep -qxF -- "$want" "$f"
    done
    rw=$(unit_value "$f" ReadWritePaths)
    cf_check "$svc: /var/lib/clamav and /var/log/clamav writable" \
        bash -c "[[ ' $rw ' == *' /var/lib/clamav '* && ' $rw ' =~ \ -?/var/log/clamav\  ]]"
    caps=$(unit_value "$f" CapabilityBoundingSet)
    for cap in CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE; do
        cf_check "$svc: bounding set keeps $cap (privilege drop to DatabaseOwner)" \
            bash -c "[[ ' $caps ' == *' $cap '* ]]"
    done
    # the drop to DatabaseOwner needs set*id and chown: nothing may filter them
    cf_check "$svc: no filter removes @setuid, @chown or @privileged" \
        bash -c "! grep -E '^SystemCallFilter=~.*@(setuid|chown|privileged)' '$f'"
    cf_check "$svc: no User= (clamfresh drops privileges itself)" bash -c "! grep -q '^User=' '$f'"
    cf_check "$svc: no MemoryDenyWriteExecute by default (libclamav's bytecode JIT)" \
        bash -c "! grep -q '^MemoryDenyWriteExecute=' '$f'"
    cf_check "$svc: stops Debian's freshclam daemon (one updater at a time)" \
        bash -c "[[ ' $(unit_value "$f" Conflicts) ' == *' clamav-freshclam.service '* ]]"
done

# ------------------------------------------------ systemd-analyze verify (offline)
# verify checks that ExecStart's program and the Documentation= man pages exist.
mkdir -p "$P/bin" "$P/share/man/man1" "$P/share/man/man5"
cp "$CLAMFRESH" "$P/bin/clamfresh"
cp "$CF_SOURCE_DIR/man/clamfresh.1" "$P/share/man/man1/"
cp "$CF_SOURCE_DIR/man/clamfresh.conf.5" "$P/share/man/man5/"
export MANPATH="$P/share/man"
cf_expect_exit 0 systemd-analyze verify "$U/clamfresh.service" "$U/clamfresh.timer" "$U/clamfresh-daemon.service"
cf_expect_no '.'
# ... and it does catch a broken unit: the check above can fail.
mkdir "$T/broken"
sed "s|^ExecStart=.*|ExecStart=$T/no-such-program|" "$U/clamfresh.service" >"$T/broken/clamfresh.service"
cf_expect_exit 1 systemd-analyze verify "$T/broken/clamfresh.service"
cf_expect_err 'no-such-program'

# The exposure score systemd computes from the sandboxing (0 safe .. 10 unsafe).
if systemd-analyze security --offline=yes "$U/clamfresh.service" >"$T/security" 2>&1; then
    score=$(grep -oP 'Overall exposure level for clamfresh.service: \K[0-9.]+' "$T/security")
    echo "# systemd-analyze security: clamfresh.service exposure $score"
    cf_check "exposure level $score is at most 4.0 (OK)" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 4.0) }'
else
    echo "SKIP part: systemd-analyze security --offline not supported here"
fi

# ------------------------------------------------ the capability bounding set is enough
# An update as the service runs it: started as root with the unit's
# CapabilityBoundingSet and NoNewPrivileges (setpriv), dropping to the user
# clamav. Without CAP_SETUID the same run must fail, so the check can fail.
if ! cf_is_root; then
    echo "SKIP part: the bounding set is not tried: needs root"
elif ! cf_have_cmd setpriv || ! getent passwd clamav >/dev/null; then
    echo "SKIP part: the bounding set is not tried: needs setpriv and the user clamav (package clamav-base)"
else
    setpriv_caps=$(unit_value "$U/clamfresh.service" CapabilityBoundingSet | tr ' ' '\n' |
        sed -n 's/^CAP_\(.*\)/+\L\1/p' | paste -sd, -)
    cf_fixtures_use own
    cf_tmpdir WWW
    cf_start_mirror "$WWW" --advertised-served
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.served"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    export CLAMFRESH_RETRY_DELAY=0
    caps_run() { # DB CAPS: one update into DB with bounding set CAPS
        local db=$1
        mkdir "$db"
        chown clamav: "$db"
        {
            echo "DatabaseMirror $MIRROR_URL"
            echo "DatabaseDirectory $db"
            echo "DatabaseOwner clamav"
            cf_fixtures_conf
        } >"$db.conf"
        cf_expect_exit "$3" setpriv --no-new-privs --bounding-set="-all,$2" \
            "$CLAMFRESH" --no-dns --config-file="$db.conf" --update-db=test
    }
    cf_tmpdir CAPS
    caps_run "$CAPS/db" "$setpriv_caps" 0
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_check "the database belongs to clamav" test "$(stat -c %U "$CAPS/db/test.cvd" 2>/dev/null)" = clamav
    caps_run "$CAPS/nosetuid" "$(tr , '\n' <<<"$setpriv_caps" | grep -vx '+setuid' | paste -sd, -)" 2
    cf_expect_err 'Failed to switch to clamav user'
    unset CF_LABEL
fi

# ------------------------------------------------ the options: CF_FRESHCLAM_ALIAS, CF_SYSTEMD_DENY_WX
P2="$T/alias"
if stage "$P2" "$T/b2" -DCF_FRESHCLAM_ALIAS=ON -DCF_SYSTEMD_DENY_WX=ON -DCF_SYSTEMD_UNITDIR="$T/units"; then
    cf_pass "configure with CF_FRESHCLAM_ALIAS=ON, CF_SYSTEMD_DENY_WX=ON, CF_SYSTEMD_UNITDIR"
else
    cat "$T/b2.log" >&2
    cf_abort "cannot stage the integration files with the options on"
fi
cf_check "freshclam -> clamfresh symlink" test "$(readlink "$P2/bin/freshclam")" = clamfresh
cf_check "freshclam.1 is a man page alias of clamfresh.1" grep -qx '.so man1/clamfresh.1' "$P2/share/man/man1/freshclam.1"
cf_check "freshclam completion -> clamfresh's" \
    test "$(readlink "$P2/share/bash-completion/completions/freshclam")" = clamfresh
cp "$CLAMFRESH" "$P2/bin/clamfresh"
if [ -f /usr/share/bash-completion/bash_completion ]; then
    cf_check "freshclam completes like clamfresh when it is the alias" env PATH="$P2/bin:$PATH" bash --norc -c \
        ". /usr/share/bash-completion/bash_completion; . '$P2/share/bash-completion/completions/freshclam'
         complete -p freshclam | grep -q _clamfresh"
    cf_check "ClamAV's freshclam is left alone" env PATH="$P/bin:$PATH" bash --norc -c \
        ". /usr/share/bash-completion/bash_completion; . '$P/share/bash-completion/completions/clamfresh'
         ! complete -p freshclam 2>/dev/null | grep -q _clamfresh"
fi
cf_check "CF_SYSTEMD_UNITDIR places the units" test -f "$T/units/clamfresh.service" -a -f "$T/units/clamfresh.timer"
cf_check "CF_SYSTEMD_DENY_WX sets MemoryDenyWriteExecute" grep -qx 'MemoryDenyWriteExecute=yes' "$T/units/clamfresh.service"

# ------------------------------------------------ example config
cf_tmpdir EX
sed -e "s|^DatabaseDirectory .*|DatabaseDirectory $EX|" -e "s|^UpdateLogFile .*|UpdateLogFile $EX/log|" \
    -e 's|^#\(StallTimeout\|LockTimeout\|ConcurrentDownloads\) |\1 |' \
    "$P/share/doc/clamfresh/examples/freshclam.conf.example" >"$EX/freshclam.conf"
# --update-db with an unknown name stops right after the config is read (exit 9)
cf_expect_exit 9 "$CLAMFRESH" --config-file="$EX/freshclam.conf" --no-dns --update-db=no-such-db
cf_expect_err 'Requested database is not available: no-such-db'
cf_expect_no 'Parse error|Unknown option'

# ------------------------------------------------ bash completion
BC=/usr/share/bash-completion/bash_completion
if [ ! -f "$BC" ]; then
    echo "SKIP part: bash completion not checked: $BC missing (Debian package bash-completion)"
    exit 0
fi
# complete FILE CWD WORD...: the candidates the completion function of FILE
# offers for the last WORD, one per line, computed in CWD.
complete_words() {
    local file=$1 cwd=$2
    shift 2
    (cd "$cwd" && bash --norc --noprofile -c '
        . "$0" >/dev/null 2>&1
        . "$1"
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        # the line as typed: "=" is a word of its own but has no blanks around it
        COMP_LINE=$1
        for ((i = 1; i < $#; i++)); do
            if [ "${COMP_WORDS[i]}" = "=" ] || [ "${COMP_WORDS[i - 1]}" = "=" ]; then
                COMP_LINE+=${COMP_WORDS[i]}
            else
                COMP_LINE+=" ${COMP_WORDS[i]}"
            fi
        done
        COMP_POINT=${#COMP_LINE}
        fn=$(complete -p "$1" | grep -oP "(?<=-F )\S+")
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' "$BC" "$file" "$@")
}
CC="$P/share/bash-completion/completions/clamfresh"
CV="$P/share/bash-completion/completions/cvdtool"

"$CLAMFRESH" --help | grep -oP '^\s+\K--[a-z][a-z-]*' | sort -u >"$T/help.long"
complete_words "$CC" "$T" clamfresh -- | grep -- '^--' | sed 's/=$//' | sort -u >"$T/comp.long"
if [ -s "$T/help.long" ] && cmp -s "$T/help.long" "$T/comp.long"; then
    cf_pass "clamfresh: completion offers exactly the $(wc -l <"$T/help.long") long options of --help"
else
    cf_fail "clamfresh: completion and --help differ (< help, > completion)"
    diff "$T/help.long" "$T/comp.long" >&2
fi
"$CLAMFRESH" --help | grep -oP '^\s+--\S+\s+\K-[a-zA-Z](?=[\s])' | sort -u >"$T/help.short"
complete_words "$CC" "$T" clamfresh - | grep -xE -- '-[a-zA-Z]' | sort -u >"$T/comp.short"
cf_check "clamfresh: completion offers the short options of --help" cmp -s "$T/help.short" "$T/comp.short"

mkdir "$T/files" "$T/files/dbdir"
: >"$T/files/my.conf"
out=$(complete_words "$CC" "$T/files" clamfresh --config-file = '')
cf_check "clamfresh --config-file=<TAB> offers files" grep -qx my.conf <<<"$out"
out=$(complete_words "$CC" "$T/files" clamfresh -l '')
cf_check "clamfresh -l <TAB> offers files" grep -qx my.conf <<<"$out"
out=$(complete_words "$CC" "$T/files" clamfresh --datadir = '')
cf_check "clamfresh --datadir=<TAB> offers directories only" \
    bash -c "grep -qx dbdir <<<'$out' && ! grep -qx my.conf <<<'$out'"
out=$(complete_words "$CC" "$T/files" clamfresh --log-rotate = '')
cf_check "clamfresh --log-rotate=<TAB> offers yes and no" test "$(sort <<<"$out" | tr '\n' ' ')" = "no yes "

"$CVDTOOL" --help | grep -oP '^  \K[a-z]+(?= )' | sort >"$T/help.cmds"
complete_words "$CV" "$T" cvdtool '' | grep -v '^-' | sort >"$T/comp.cmds"
cf_check "cvdtool: completion offers the subcommands of --help ($(tr '\n' ' ' <"$T/help.cmds"))" \
    bash -c "[ -s '$T/help.cmds' ] && cmp -s '$T/help.cmds' '$T/comp.cmds'"
while read -r cmd; do
    # the options that the subcommand's help lists in its usage line and option table
    "$CVDTOOL" "$cmd" --help | grep -P '^\s+-|^Usage' | grep -oP '(?<![\w-])--[a-z][a-z-]*' | sort -u >"$T/h.$cmd"
    complete_words "$CV" "$T" cvdtool "$cmd" -- | sort -u >"$T/c.$cmd"
    missing=$(comm -23 "$T/h.$cmd" "$T/c.$cmd" | tr '\n' ' ')
    cf_check "cvdtool $cmd: completion offers every option of its --help${missing:+ (missing: $missing)}" \
        test -z "$missing"
    bad=
    while read -r opt; do
        "$CVDTOOL" "$cmd" "$opt" 2>&1 </dev/null | grep -q 'unrecognized option' && bad+="$opt "
    done <"$T/c.$cmd"
    cf_check "cvdtool $cmd: every option completed is accepted${bad:+ (refused: $bad)}" test -z "$bad"
done <"$T/help.cmds"
out=$(complete_words "$CV" "$T/files" cvdtool verify --trust-key '')
cf_check "cvdtool verify --trust-key <TAB> offers files" grep -qx my.conf <<<"$out"
out=$(complete_words "$CV" "$T/files" cvdtool unpack --certsdir '')
cf_check "cvdtool unpack --certsdir <TAB> offers directories only" \
    bash -c "grep -qx dbdir <<<'$out' && ! grep -qx my.conf <<<'$out'"

# ------------------------------------------------ the service under systemd
if [ ! -d /run/systemd/system ]; then
    echo "SKIP part: the service is not started: systemd is not PID 1 here ($(ps -p 1 -o comm=))"
elif ! cf_is_root; then
    echo "SKIP part: the service is not started: starting a system unit needs root"
else
    # The unit as installed, but printing the version only: it shows that the
    # sandbox lets the program start, without needing a mirror.
    name="clamfresh-test-$$"
    sed "s|^ExecStart=.*|ExecStart=$CLAMFRESH --version|" "$U/clamfresh.service" >"/run/systemd/system/$name.service"
    systemctl daemon-reload
    cf_expect_exit 0 systemctl start "$name.service"
    cf_check "the hardened service ran to success" \
        test "$(systemctl show -p Result --value "$name.service")" = success
    rm -f "/run/systemd/system/$name.service"
    systemctl daemon-reload
fi
