/* The .info manifest (formats.md §5). Parsing is stricter than libclamav's
 * reader where that costs nothing for files sigtool writes:
 *  - every line, the last included, ends in '\n'; a CR anywhere, an empty line
 *    or a line of CF_MAX_INFO_LINE bytes or more (with its '\n') is refused;
 *  - the DSIG line, when present, must be the last line (libclamav ignores what
 *    follows it, so bytes there would be unsigned yet shipped);
 *  - entry names must be valid member names and unique, sizes plain decimal
 *    that fits 64 bits, hashes exactly 64 hex digits (either case, as libclamav);
 *  - the header md5/dsig fields are not required to be "X": nothing reads them.
 * The manifest check (§5.4) additionally catches what libclamav misses: listed
 * files that are absent, empty files, and a second .info member. */
#include "clamfresh/info.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "clamfresh/cvd.h"
#include "clamfresh/dsig.h"
#include "clamfresh/limits.h"

static cf_code sha256(const void *p, size_t n, uint8_t out[32], cf_err *e)
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    return CF_OK;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_cv64(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

void cf_info_free(cf_info *info)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < info->n; i++)
        free(info->entries[i].name);
    free(info->entries);
    free(info->dsig);
    memset(info, 0, sizeof(*info));
}

/* One "name:size:sha256" line (without its '\n'); lineno for messages. */
static cf_code parse_entry(const char *s, size_t len, size_t lineno, cf_info_entry *ent, cf_err *e)
{
    const char *c1 = memchr(s, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - s)) : NULL;
    if (c2 == NULL || memchr(c2 + 1, ':', len - (size_t)(c2 + 1 - s)) != NULL)
        return cf_err_set(e, CF_EFORMAT, "line %zu: expected name:size:sha256 (three fields)", lineno);
    size_t nlen = (size_t)(c1 - s);
    if (nlen == 0 || nlen > CF_MAX_NAME)
        return cf_err_set(e, CF_EFORMAT, "line %zu: file name of %zu bytes", lineno, nlen);
    char name[CF_MAX_NAME + 1];
    memcpy(name, s, nlen);
    name[nlen] = '\0';
    if (memchr(name, '\0', nlen) != NULL || !cf_name_ok(name))
        return cf_err_set(e, CF_EFORMAT, "line %zu: invalid file name '%.*s'", lineno, (int)nlen, s);

    const char *sz = c1 + 1;
    size_t szlen = (size_t)(c2 - sz);
    if (szlen == 0 || szlen > 20)
        return cf_err_set(e, CF_EFORMAT, "line %zu (%s): bad size field", lineno, name);
    uint64_t size = 0;
    for (size_t i = 0; i < szlen; i++) {
        unsigned d = (unsigned char)sz[i] - '0';
        if (d > 9)
            return cf_err_set(e, CF_EFORMAT, "line %zu (%s): size '%.*s' is not a decimal number", lineno,
                              name, (int)szlen, sz);
        if (size > (UINT64_MAX - d) / 10)
            return cf_err_set(e, CF_EFORMAT, "line %zu (%s): size out of range", lineno, name);
        size = size * 10 + d;
    }

    const char *hx = c2 + 1;
    size_t hxlen = len - (size_t)(hx - s);
    if (hxlen != 64)
        return cf_err_set(e, CF_EFORMAT, "line %zu (%s): SHA-256 has %zu characters, not 64", lineno, name,
                          hxlen);
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)hx[2 * i]), lo = hexval((unsigned char)hx[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cf_err_set(e, CF_EFORMAT, "line %zu (%s): SHA-256 is not hexadecimal", lineno, name);
        ent->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    ent->name = strdup(name);
    if (ent->name == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    ent->size = size;
    return CF_OK;
}

static cf_code parse_lines(const uint8_t *p, size_t n, cf_info *info, cf_err *e)
{
    if (n == 0)
        return cf_err_set(e, CF_EFORMAT, "empty file");
    if (n > CF_MAX_INFO_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes, more than the %lu allowed", n,
                          (unsigned long)CF_MAX_INFO_BYTES);
    size_t cap = 0, off = 0, lineno = 0;
    while (off < n) {
        lineno++;
        const uint8_t *line = p + off;
        const uint8_t *nl = memchr(line, '\n', n - off);
        size_t len = nl ? (size_t)(nl - line) : n - off;
        if (nl == NULL)
            return cf_err_set(e, CF_EFORMAT, "line %zu: no final newline", lineno);
        if (len + 1 >= CF_MAX_INFO_LINE)
            return cf_err_set(e, CF_EFORMAT, "line %zu: %zu bytes, longer than %d", lineno, len + 1,
                              CF_MAX_INFO_LINE - 1);
        if (len == 0)
            return cf_err_set(e, CF_EFORMAT, "line %zu: empty line", lineno);
        if (memchr(line, '\r', len) != NULL)
            return cf_err_set(e, CF_EFORMAT, "line %zu: carriage return (only LF line ends are valid)",
                              lineno);
        if (memchr(line, '\0', len) != NULL)
            return cf_err_set(e, CF_EFORMAT, "line %zu: NUL byte", lineno);

        if (lineno == 1) {
            if (len < 11 || memcmp(line, "ClamAV-VDB:", 11) != 0)
                return cf_err_set(e, CF_EFORMAT, "line 1: does not start with ClamAV-VDB:");
            cf_code rc = cf_cvdhdr_parse_line((const char *)line, len, &info->hdr, e);
            if (rc != CF_OK) {
                cf_err_prefix(e, "line 1: ");
                return rc;
            }
        } else if (len >= 5 && memcmp(line, "DSIG:", 5) == 0) {
            if (off + len + 1 != n)
                return cf_err_set(e, CF_EFORMAT, "line %zu: DSIG is not the last line", lineno);
            size_t slen = len - 5;
            if (slen == 0)
                return cf_err_set(e, CF_EFORMAT, "line %zu: empty DSIG", lineno);
            for (size_t i = 0; i < slen; i++)
                if (!is_cv64(line[5 + i]))
                    return cf_err_set(e, CF_EFORMAT,
                                      "line %zu: DSIG has a character outside the CV64 alphabet at "
                                      "column %zu",
                                      lineno, 6 + i);
            info->dsig = strndup((const char *)line + 5, slen);
            if (info->dsig == NULL)
                return cf_err_set(e, CF_ENOMEM, "out of memory");
            info->signed_len = off;
        } else {
            if (info->n >= CF_MAX_MEMBERS)
                return cf_err_set(e, CF_ETOOBIG, "line %zu: more than %d entries", lineno, CF_MAX_MEMBERS);
            if (info->n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                cf_info_entry *ne = realloc(info->entries, ncap * sizeof(*ne));
                if (ne == NULL)
                    return cf_err_set(e, CF_ENOMEM, "out of memory");
                info->entries = ne;
                cap = ncap;
            }
            cf_info_entry *ent = &info->entries[info->n];
            memset(ent, 0, sizeof(*ent));
            cf_code rc = parse_entry((const char *)line, len, lineno, ent, e);
            if (rc != CF_OK)
                return rc;
            info->n++;
            for (size_t i = 0; i + 1 < info->n; i++)
                if (strcmp(info->entries[i].name, ent->name) == 0)
                    return cf_err_set(e, CF_EFORMAT, "line %zu: %s is listed twice", lineno, ent->name);
        }
        off += len + 1;
    }
    if (info->dsig == NULL)
        info->signed_len = n;
    return CF_OK;
}

cf_code cf_info_parse(const uint8_t *p, size_t n, cf_info *info, cf_err *e)
{
    if (info == NULL || (p == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, ".info parse: missing argument");
    memset(info, 0, sizeof(*info));
    cf_code rc = parse_lines(p, n, info, e);
    if (rc != CF_OK)
        cf_info_free(info);
    return rc;
}

/* DSIG check of an already parsed manifest whose bytes are p[0..n). */
static cf_code check_dsig(const uint8_t *p, const cf_info *info, const cf_rsakey *key, cf_err *e)
{
    if (info->dsig == NULL)
        return cf_err_set(e, CF_ESIG, "no DSIG line (the manifest is unsigned)");
    uint8_t digest[32];
    cf_code rc = sha256(p, info->signed_len, digest, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_pss_verify(key, digest, info->dsig, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "DSIG does not verify: ");
        return rc == CF_ENOMEM ? rc : CF_ESIG;
    }
    return CF_OK;
}

cf_code cf_info_verify(const uint8_t *p, size_t n, const cf_rsakey *key, cf_info *out, cf_err *e)
{
    if (key == NULL)
        return cf_err_set(e, CF_EINVAL, ".info verify: no key");
    cf_info info;
    cf_code rc = cf_info_parse(p, n, &info, e);
    if (rc != CF_OK)
        return rc;
    rc = check_dsig(p, &info, key, e);
    if (rc == CF_OK && out != NULL)
        *out = info;
    else
        cf_info_free(&info);
    return rc;
}

/* CLI_DBEXT (§5.4), .yar/.yara included: a YARA-enabled engine loads them. */
static const char *const dbext[] = {
    ".db",  ".hdb", ".hdu", ".fp",  ".mdb", ".mdu", ".hsb", ".hsu",  ".sfp",  ".msb", ".msu",  ".ndb", ".ndu",
    ".ldb", ".ldu", ".sdb", ".zmd", ".rmd", ".pdb", ".gdb", ".wdb",  ".cbc",  ".ftm", ".cfg",  ".cvd", ".cld",
    ".cud", ".cdb", ".cat", ".crb", ".idb", ".ioc", ".yar", ".yara", ".pwdb", ".ign", ".ign2", ".imp", NULL};

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int cf_info_is_dbext(const char *name)
{
    for (size_t i = 0; dbext[i] != NULL; i++)
        if (ends_with_ci(name, dbext[i]))
            return 1;
    return 0;
}

static void hex32(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

static cf_code check_members(const cf_image *img, const char *iname, const cf_info *info, cf_err *e)
{
    for (size_t i = 0; i < info->n; i++) {
        const cf_info_entry *ent = &info->entries[i];
        const cf_dbfile *f = cf_image_get(img, ent->name);
        if (f == NULL)
            return cf_err_set(e, CF_ESIG, "%s: listed in %s but missing from the database", ent->name, iname);
        if ((uint64_t)f->data.n != ent->size)
            return cf_err_set(e, CF_ESIG, "%s: size is %zu bytes but %s says %" PRIu64, ent->name, f->data.n,
                              iname, ent->size);
        uint8_t d[32];
        cf_code rc = sha256(f->data.p, f->data.n, d, e);
        if (rc != CF_OK)
            return rc;
        if (memcmp(d, ent->sha256, 32) != 0) {
            char want[65], got[65];
            hex32(ent->sha256, want);
            hex32(d, got);
            return cf_err_set(e, CF_ESIG, "%s: SHA-256 is %s but %s says %s", ent->name, got, iname, want);
        }
    }
    for (size_t i = 0; i < img->nfiles; i++) {
        const char *nm = img->files[i].name;
        if (!cf_info_is_dbext(nm))
            continue;
        size_t j = 0;
        while (j < info->n && strcmp(info->entries[j].name, nm) != 0)
            j++;
        if (j == info->n)
            return cf_err_set(e, CF_ESIG, "%s: database file not listed in %s", nm, iname);
    }
    return CF_OK;
}

cf_code cf_info_check_header(const cf_cvdhdr *got, const cf_cvdhdr *want, const char *iname, cf_err *e)
{
    if (got->version != want->version)
        return cf_err_set(e, CF_ESIG, "%s: header says version %u but the container says %u", iname,
                          got->version, want->version);
    if (got->sigs != want->sigs)
        return cf_err_set(e, CF_ESIG, "%s: header says %u signatures but the container says %u", iname,
                          got->sigs, want->sigs);
    if (got->flevel != want->flevel)
        return cf_err_set(e, CF_ESIG, "%s: header says f-level %u but the container says %u", iname,
                          got->flevel, want->flevel);
    if (got->stime != want->stime)
        return cf_err_set(e, CF_ESIG,
                          "%s: header says build time %" PRIu64 " but the container says %" PRIu64, iname,
                          got->stime, want->stime);
    return CF_OK;
}

cf_code cf_image_verify_manifest(const cf_image *img, const cf_cvdhdr *hdr_or_null, const cf_rsakey *key,
                                 int allow_unsigned, cf_err *e)
{
    if (img == NULL || (key == NULL && !allow_unsigned))
        return cf_err_set(e, CF_EINVAL, "manifest check: no key given for a signed database");
    const cf_dbfile *mf = NULL;
    for (size_t i = 0; i < img->nfiles; i++) {
        if (!ends_with_ci(img->files[i].name, ".info"))
            continue;
        if (mf != NULL)
            return cf_err_set(e, CF_ESIG, "two manifests in one database: %s and %s", mf->name,
                              img->files[i].name);
        mf = &img->files[i];
    }
    if (mf == NULL)
        return cf_err_set(e, CF_ESIG, "the database has no .info manifest");

    cf_info info;
    cf_code rc = cf_info_parse(mf->data.p, mf->data.n, &info, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s: ", mf->name);
        return rc;
    }
    if (key != NULL) {
        rc = check_dsig(mf->data.p, &info, key, e);
        if (rc != CF_OK)
            cf_err_prefix(e, "%s: ", mf->name);
    } else if (info.dsig != NULL) {
        /* A CUD .info must not have one: libclamav reads it as a bad entry (§5.5). */
        rc = cf_err_set(e, CF_ESIG, "%s: unsigned database, yet the manifest has a DSIG line", mf->name);
    }
    if (rc == CF_OK && hdr_or_null != NULL)
        rc = cf_info_check_header(&info.hdr, hdr_or_null, mf->name, e);
    if (rc == CF_OK)
        rc = check_members(img, mf->name, &info, e);
    cf_info_free(&info);
    return rc;
}
