#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/limits.h"
#include "tool.h"

void tool_err(const char *fmt, ...)
{
    va_list ap;
    fputs("cvdtool: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tool_parse_u32(const char *s, uint32_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int tool_opt_u32(const char *opt, const char *arg, uint32_t *out)
{
    if (tool_parse_u32(arg, out) == 0)
        return 0;
    tool_err("%s needs a number, not '%s'", opt, arg);
    return -1;
}

int tool_trust_opt(tool_trust *t, int opt, const char *arg)
{
    uint32_t fl;
    switch (opt) {
    case 0x100:
        t->trust_key = arg;
        return 1;
    case 0x101:
        t->certsdir = arg;
        return 1;
    case 0x102:
        if (tool_opt_u32("--flevel", arg, &fl) != 0)
            exit(TOOL_USAGE);
        t->flevel = fl;
        return 1;
    case 0x103:
        t->no_verify = 1;
        return 1;
    }
    return 0;
}

int tool_trust_setup(tool_trust *t)
{
    cf_err e = {0};
    if (cf_trust_init_builtin(&t->keys, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    if (t->trust_key != NULL &&
        cf_trust_load(&t->keys, t->trust_key, t->trust_key, t->trust_key, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    if (t->certsdir != NULL && cf_certstore_load(t->certsdir, &t->certs, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    memset(&t->ctx, 0, sizeof(t->ctx));
    t->ctx.trust = &t->keys;
    t->ctx.certs = t->certs;
    t->ctx.flevel = t->flevel ? t->flevel : CF_SIGN_MIN_FLEVEL;
    return TOOL_OK;
}

void tool_trust_free(tool_trust *t)
{
    cf_trust_free(&t->keys);
    cf_certstore_free(t->certs);
    t->certs = NULL;
}

tool_kind tool_kind_of(const char *path, const cf_buf *data)
{
    if (data->n >= 12 && memcmp(data->p, "ClamAV-Diff:", 12) == 0)
        return TOOL_KIND_CDIFF;
    if (data->n >= 11 && memcmp(data->p, "ClamAV-VDB:", 11) == 0) {
        size_t n = strlen(path);
        if (n >= 4 && (strcmp(path + n - 4, ".cld") == 0 || strcmp(path + n - 4, ".cud") == 0))
            return TOOL_KIND_CLD;
        return TOOL_KIND_CVD;
    }
    return TOOL_KIND_UNKNOWN;
}

void tool_dbname_from_path(const char *path, char *out, size_t outsz)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, "-.");
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

const char *tool_sigsource_str(cf_sigsource how)
{
    switch (how) {
    case CF_SIGSRC_SIGNFILE:
        return "detached .sign signature";
    case CF_SIGSRC_LEGACY:
        return "embedded signature";
    case CF_SIGSRC_MANIFEST:
        return "signed .info manifest";
    case CF_SIGSRC_NONE:
        break;
    }
    return "not verified";
}

/* Reads PATH.sign-style companions: returns 1 and fills out when the file exists. */
static int read_optional(const char *path, cf_buf *out)
{
    cf_err e = {0};
    if (access(path, F_OK) != 0)
        return 0;
    if (cf_file_read(path, CF_MAX_SIGN_BYTES, out, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return 0;
    }
    return 1;
}

int tool_load_database(tool_trust *t, const char *path, cf_image *img, cf_sigsource *how)
{
    cf_buf data = CF_BUF_INIT, sign = CF_BUF_INIT;
    cf_err e = {0};
    int rc = TOOL_OK;
    if (how != NULL)
        *how = CF_SIGSRC_NONE;
    if (cf_file_read(path, CF_MAX_DB_BYTES, &data, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    tool_kind kind = tool_kind_of(path, &data);
    if (kind != TOOL_KIND_CVD && kind != TOOL_KIND_CLD) {
        tool_err("%s: not a ClamAV database (no ClamAV-VDB header)", path);
        cf_buf_free(&data);
        return TOOL_INVALID;
    }
    cf_code c;
    if (t->no_verify) {
        cf_image_init(img);
        c = cf_cvd_read(data.p, data.n, img, &e);
    } else if (kind == TOOL_KIND_CLD) {
        c = cf_verify_cld(&t->ctx, data.p, data.n, img, &e);
        if (c == CF_OK && how != NULL)
            *how = CF_SIGSRC_MANIFEST;
    } else {
        /* The .sign of a CVD is named after its database and header version (§7.1). */
        cf_cvdhdr h;
        int have_sign = 0;
        if (cf_cvdhdr_parse(data.p, data.n, &h, NULL) == CF_OK) {
            char db[64], name[128], signpath[PATH_MAX];
            tool_dbname_from_path(path, db, sizeof(db));
            if (cf_signfile_name_cvd(db, h.version, name, sizeof(name)) == 0) {
                const char *slash = strrchr(path, '/');
                int dirlen = slash ? (int)(slash - path + 1) : 0;
                snprintf(signpath, sizeof(signpath), "%.*s%s", dirlen, path, name);
                have_sign = read_optional(signpath, &sign);
            }
        }
        c = cf_verify_cvd(&t->ctx, data.p, data.n, have_sign ? sign.p : NULL, sign.n, img, how, &e);
    }
    if (c != CF_OK) {
        tool_err("%s: %s", path, e.msg);
        rc = (c == CF_ESIG || c == CF_EFORMAT || c == CF_ETOOBIG) ? TOOL_INVALID : TOOL_ERROR;
    }
    cf_buf_free(&data);
    cf_buf_free(&sign);
    return rc;
}

int tool_load_cdiff(tool_trust *t, const char *path, cf_buf *script, uint32_t *version, cf_sigsource *how)
{
    cf_buf data = CF_BUF_INIT, sign = CF_BUF_INIT;
    cf_err e = {0};
    if (cf_file_read(path, CF_MAX_CDIFF_BYTES, &data, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    char signpath[PATH_MAX];
    snprintf(signpath, sizeof(signpath), "%s.sign", path);
    int have_sign = read_optional(signpath, &sign);
    cf_code c;
    if (t->no_verify) {
        /* Inspection without trust: parse only. */
        cf_cdiff d = CF_CDIFF_INIT;
        c = cf_cdiff_parse(data.p, data.n, &d, &e);
        if (c == CF_OK) {
            if (cf_buf_append(script, d.script.p, d.script.n) != CF_OK)
                c = cf_err_set(&e, CF_ENOMEM, "out of memory");
            if (version != NULL)
                *version = d.version;
        }
        cf_cdiff_free(&d);
    } else {
        c = cf_verify_cdiff(&t->ctx, data.p, data.n, have_sign ? sign.p : NULL, sign.n, script, version, how,
                            &e);
    }
    cf_buf_free(&data);
    cf_buf_free(&sign);
    if (c != CF_OK) {
        tool_err("%s: %s", path, e.msg);
        return (c == CF_ESIG || c == CF_EFORMAT || c == CF_ETOOBIG) ? TOOL_INVALID : TOOL_ERROR;
    }
    return TOOL_OK;
}

cf_rsakey *tool_load_signing_key(const char *path)
{
    cf_rsakey *k = NULL;
    cf_err e = {0};
    if (cf_rsakey_load_pem_file(path, &k, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return NULL;
    }
    if (!cf_rsakey_can_sign(k)) {
        tool_err("%s: holds only a public key; signing needs the private key", path);
        cf_rsakey_free(k);
        return NULL;
    }
    return k;
}

int tool_write_file(const char *path, const void *data, size_t n, unsigned mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        tool_err("%s: path too long", path);
        return TOOL_ERROR;
    }
    cf_err e = {0};
    unlink(tmp);
    if (cf_file_write_new(tmp, data, n, mode, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    if (rename(tmp, path) != 0) {
        tool_err("%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        return TOOL_ERROR;
    }
    return TOOL_OK;
}
