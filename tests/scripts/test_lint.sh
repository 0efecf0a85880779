#!/usr/bin/env bash
# Static checks CI applies to every change: the C sources follow .clang-format,
# cppcheck finds no warning, and the shell scripts pass shellcheck. A tool that
# is missing skips its check and says so (scripts/deps.sh installs all three).
. "$(dirname "$0")/../lib/harness.sh"

cd "$CF_SOURCE_DIR" || cf_abort "cannot enter $CF_SOURCE_DIR"
mapfile -t csrc < <(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 2>/dev/null || find src include -name '*.[ch]')
mapfile -t shsrc < <(git ls-files '*.sh' .ci/run 2>/dev/null || find . -name '*.sh' -not -path './build*')

if cf_have_cmd clang-format; then
    if clang-format --dry-run -Werror "${csrc[@]}" >"$CF__BASE/fmt.log" 2>&1; then
        cf_pass "clang-format: ${#csrc[@]} files follow .clang-format"
    else
        cf_fail "clang-format: files differ from .clang-format (run clang-format -i on them)"
        grep -E '^[^ ].*warning' "$CF__BASE/fmt.log" | cut -d: -f1 | sort | uniq -c >&2
    fi
else
    echo "SKIP part: clang-format not installed"
fi

if cf_have_cmd cppcheck; then
    gen=${CF_BINARY_DIR:-build}/include
    if cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr --std=c11 \
        -I include -I "$gen" src >"$CF__BASE/cppcheck.log" 2>&1; then
        cf_pass "cppcheck: no warnings in src/"
    else
        cf_fail "cppcheck reports problems"
        cat "$CF__BASE/cppcheck.log" >&2
    fi
else
    echo "SKIP part: cppcheck not installed"
fi

if cf_have_cmd shellcheck; then
    if shellcheck -S warning -x "${shsrc[@]}" >"$CF__BASE/sc.log" 2>&1; then
        cf_pass "shellcheck: ${#shsrc[@]} scripts clean at warning level"
    else
        cf_fail "shellcheck reports problems"
        cat "$CF__BASE/sc.log" >&2
    fi
else
    echo "SKIP part: shellcheck not installed"
fi
