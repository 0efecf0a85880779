#!/usr/bin/env bash
# The layers of ARCHITECTURE.md as the build produced them: one static library
# per layer and a shared check library linked with --no-undefined against the
# allowed layers only. Checks what the link alone cannot see: that the format,
# base and publish layers call no file, network or process function of libc,
# that clamfresh carries none of the publish layer's code, and that a call
# into a layer that is not allowed really is a link error.
. "$(dirname "$0")/../lib/harness.sh"

[ -n "${CF_BINARY_DIR:-}" ] || cf_skip "CF_BINARY_DIR not set"
cf_require_cmd nm readelf
B=$CF_BINARY_DIR
layers=(base format publish net sys store host config update)

for l in "${layers[@]}"; do
    if [ -f "$B/libcf_$l.a" ]; then
        cf_pass "layer $l: libcf_$l.a built"
    else
        cf_fail "layer $l: libcf_$l.a missing"
    fi
    if [ -f "$B/layercheck/libcf_${l}_layercheck.so" ]; then
        cf_pass "layer $l: its link check was built"
    else
        cf_fail "layer $l: layercheck/libcf_${l}_layercheck.so missing (the layer's link check did not run)"
    fi
done

# libc functions that reach the disk, the network or other processes.
io_calls='open|open64|openat|openat64|creat|fopen|fopen64|fdopen|read|write|pread|pread64|pwrite|pwrite64'
io_calls+='|readv|writev|lseek|lseek64|stat|stat64|fstat|fstat64|lstat|lstat64|fstatat|fstatat64|statx|access'
io_calls+='|opendir|fdopendir|readdir|readdir64|unlink|unlinkat|rename|renameat|mkdir|mkdirat|rmdir|link|symlink'
io_calls+='|chmod|fchmod|chown|fchown|lchown|ftruncate|truncate|fsync|fdatasync|mkstemp|mkostemp|tmpfile|dup|dup2'
net_calls='socket|connect|bind|listen|accept|accept4|send|sendto|sendmsg|recv|recvfrom|recvmsg|getaddrinfo'
net_calls+='|gethostbyname|curl_.*|ares_.*'
proc_calls='fork|vfork|execl|execlp|execv|execve|execvp|posix_spawn|posix_spawnp|system|popen|dlopen|kill|waitpid'

# imports LIB: the undefined symbols of an archive, one a line.
imports() { nm -u "$1" 2>/dev/null | awk 'NF==2 && $1=="U" {print $2}' | sed 's/@.*//' | sort -u; }

check_pure() { # check_pure LAYER REGEX WHAT
    local lib="$B/libcf_$1.a" bad
    [ -f "$lib" ] || return
    bad=$(imports "$lib" | grep -xE "$2" | tr '\n' ' ')
    if [ -z "$bad" ]; then
        cf_pass "layer $1 calls no $3 function"
    else
        cf_fail "layer $1 calls $3 functions: $bad"
    fi
}
check_pure base "$io_calls|$net_calls|$proc_calls" "file, network or process"
check_pure format "$io_calls|$net_calls|$proc_calls" "file, network or process"
check_pure publish "$io_calls|$net_calls|$proc_calls" "file, network or process"
# The net layer opens libcurl itself, at the first request (src/net/curlapi.c):
# dlopen is the one process function it may call, and no curl_ function may
# be linked directly, or every run would load libcurl at start.
check_pure net "$io_calls|${proc_calls//|dlopen/}" "file or process"
curl_direct=$(imports "$B/libcf_net.a" | grep -E '^curl_' | tr '\n' ' ')
if [ -z "$curl_direct" ]; then
    cf_pass "layer net links no libcurl function directly"
else
    cf_fail "layer net links libcurl functions directly: $curl_direct"
fi
if [ -x "$B/clamfresh" ]; then
    if readelf -d "$B/clamfresh" | grep NEEDED | grep -q libcurl; then
        cf_fail "clamfresh lists libcurl as NEEDED: every run would load it at start"
    else
        cf_pass "clamfresh does not load libcurl at start"
    fi
fi

# Publishing code is cvdtool's: none of it in clamfresh, all of it in cvdtool.
mapfile -t pub < <(nm --defined-only -g "$B/libcf_publish.a" 2>/dev/null | awk 'NF==3 && $2=="T" {print $3}' | sort -u)
if [ "${#pub[@]}" -eq 0 ]; then
    cf_fail "the publish layer defines no function"
else
    defined() { nm --defined-only "$1" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u; }
    in_clamfresh=$(comm -12 <(printf '%s\n' "${pub[@]}") <(defined "$CLAMFRESH") | tr '\n' ' ')
    if [ -z "$in_clamfresh" ]; then
        cf_pass "clamfresh holds none of the ${#pub[@]} publish functions"
    else
        cf_fail "clamfresh holds publish functions: $in_clamfresh"
    fi
    if defined "$CVDTOOL" | grep -qx cf_cdiff_make_script; then
        cf_pass "cvdtool holds the cdiff generator"
    else
        cf_fail "cvdtool lacks cf_cdiff_make_script"
    fi
fi
needed=$(readelf -d "$B/layercheck/libcf_update_layercheck.so" 2>/dev/null | grep NEEDED || true)
if grep -q publish <<<"$needed"; then
    cf_fail "the update layer's check links the publish layer"
elif grep -q libcf_store_layercheck <<<"$needed"; then
    cf_pass "the update layer links the store, not the publish layer"
else
    cf_fail "the update layer's check library lists no layer: $needed"
fi

# The mechanism itself: a library of format-layer code that calls a function of
# the sys layer does not link against the format and base checks; the same
# code calling the format layer does.
if cf_have_cmd cc && ! grep -q '^CF_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
    cf_tmpdir T
    cat >"$T/bad.c" <<'C'
#include "clamfresh/fileio.h"
int probe(cf_buf *b, cf_err *e) { return cf_file_read("/etc/hostname", 100, b, e); }
C
    cat >"$T/good.c" <<'C'
#include "clamfresh/cvd.h"
int probe(const uint8_t *p, size_t n, cf_cvdhdr *h, cf_err *e) { return cf_cvdhdr_parse(p, n, h, e); }
C
    link_against_format() {
        cc -std=c11 -shared -fPIC -I"$CF_SOURCE_DIR/include" -I"$B/include" "$T/$1.c" -o "$T/lib$1.so" \
            -L"$B/layercheck" -lcf_format_layercheck -lcf_base_layercheck -Wl,-rpath-link,"$B/layercheck" \
            -Wl,--no-undefined 2>"$T/$1.err"
    }
    if link_against_format good; then
        cf_pass "a call into an allowed layer links"
    else
        cf_fail "a call into an allowed layer does not link: $(head -3 "$T/good.err")"
    fi
    if link_against_format bad; then
        cf_fail "a call from format into sys linked"
    elif grep -q "undefined reference to .cf_file_read" "$T/bad.err"; then
        cf_pass "a call from format into sys is a link error (undefined reference to cf_file_read)"
    else
        cf_fail "the forbidden call failed for another reason: $(head -3 "$T/bad.err")"
    fi
else
    echo "SKIP part: no cc, or a sanitizer build (the link probe needs the plain check libraries)"
fi

