/* cdiff patches (formats.md §6).
 *
 * Where ClamAV is lax or inconsistent this module is stricter; every case below
 * makes a patch fail (the caller then falls back to the full CVD, as freshclam
 * does after any patch failure):
 *
 * Container (§6.1-§6.3)
 *  - header must be "ClamAV-Diff:<u32>:<u32>:" with plain decimal fields;
 *  - the last 350 bytes must hold a ':' followed by a non-empty CV64 signature
 *    (ClamAV would take all 350 bytes as the signature when there is no ':');
 *  - the gzip member must fill exactly the bytes between the header and that
 *    ':' (ClamAV ignores trailing bytes), and inflate to exactly the header's
 *    script length (ClamAV only logs it), at most CF_MAX_SCRIPT_BYTES.
 *
 * Script (§6.5)
 *  - every line, the last included, must end in '\n' (ClamAV panics on some
 *    commands and silently accepts others); a CR or NUL byte anywhere is an
 *    error (CRLF scripts are refused outright instead of producing names and
 *    lines that end in '\r');
 *  - an empty line is an error (as in ClamAV: the empty command is unknown);
 *    lines starting with '#' are comments (#LSIZE included, and lines of any
 *    length are handled);
 *  - commands are matched exactly; CLOSE takes no argument; "ADD" without the
 *    space is refused (ClamAV adds nothing) while "ADD " adds an empty line;
 *    DEL takes the first word after the line number as prefix and ignores the
 *    rest (as ClamAV); an empty prefix matches any line (as ClamAV);
 *  - names given to OPEN, UNLINK and MOVE (ClamAV checks only the first two)
 *    must be 1..99 bytes of [A-Za-z0-9._] and not "." or ".."; so '-', '/',
 *    spaces and "../x" are refused; '_' is accepted as in ClamAV 1.5;
 *  - the script must not end with a file still open (ClamAV silently drops the
 *    queued edits and reports success);
 *  - line-number edits need the file to exist and end in '\n'; a prefix
 *    mismatch or an edit past the end (or at line 0) is an error (as ClamAV);
 *  - ADD to an existing file that does not end in '\n' is an error (ClamAV
 *    glues the first added line to the last line);
 *  - MOVE: lines start..end inclusive, start <= end, both prefix-checked, the
 *    destination must exist and end in '\n' (or be empty), source and
 *    destination must differ, and start == end moves exactly one line (ClamAV
 *    moves everything to EOF and then fails); exactly six arguments;
 *  - UNLINK of a missing file is an error (as ClamAV).
 *
 * Atomicity: ClamAV edits files in place and leaves them half-patched when a
 * later command fails. Here every command works on a private copy of the
 * members it touches (an overlay over the untouched image), and the image is
 * changed only after the whole script succeeded, by a final step that cannot
 * fail halfway: all allocation happens before the first member is replaced.
 * Members keep their places; created members are appended.
 */
#include "clamfresh/cdiff.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clamfresh/dsig.h"
#include "clamfresh/gz.h"
#include "clamfresh/limits.h"
#include "cdiff_syntax_priv.h"

static const char cdiff_magic[] = "ClamAV-Diff:";
#define MAGIC_LEN (sizeof(cdiff_magic) - 1)

static cf_code sha256(const void *p, size_t n, uint8_t out[32], cf_err *e)
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 computation failed");
    return CF_OK;
}

/* Empty buffers may have no storage; the mem* functions want a pointer anyway. */
static const uint8_t *nz(const uint8_t *p)
{
    return p != NULL ? p : (const uint8_t *)"";
}

static int is_cv64(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* ------------------------------------------------------------------ container */

void cf_cdiff_free(cf_cdiff *d)
{
    if (d == NULL)
        return;
    cf_buf_free(&d->script);
    memset(d, 0, sizeof(*d));
}

/* The signature per §6.2: after the last ':' of the final 350 bytes. */
static cf_code locate_sig(const uint8_t *p, size_t n, size_t *signed_len, char sig[CF_CDIFF_SIG_WINDOW + 1],
                          cf_err *e)
{
    if (n < CF_CDIFF_SIG_WINDOW)
        return cf_err_set(e, CF_EFORMAT, "only %zu bytes; a cdiff has at least %d", n, CF_CDIFF_SIG_WINDOW);
    size_t w = n - CF_CDIFF_SIG_WINDOW, colon = n;
    for (size_t i = n; i > w; i--)
        if (p[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    if (colon == n)
        return cf_err_set(e, CF_EFORMAT, "no signature: no ':' in the last %d bytes", CF_CDIFF_SIG_WINDOW);
    size_t slen = n - colon - 1;
    if (slen == 0)
        return cf_err_set(e, CF_EFORMAT, "no signature after the final ':' at offset %zu", colon);
    for (size_t i = 0; i < slen; i++)
        if (!is_cv64(p[colon + 1 + i]))
            return cf_err_set(e, CF_EFORMAT, "signature has a byte outside the CV64 alphabet at offset %zu",
                              colon + 1 + i);
    memcpy(sig, p + colon + 1, slen);
    sig[slen] = '\0';
    *signed_len = colon;
    return CF_OK;
}

/* A decimal u32 field starting at *off and ending at the next ':'. */
static cf_code header_field(const uint8_t *p, size_t n, size_t *off, const char *what, uint32_t *out,
                            cf_err *e)
{
    size_t i = *off;
    uint64_t v = 0;
    while (i < n && i - *off <= 10 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == *off || i >= n || p[i] != ':')
        return cf_err_set(e, CF_EFORMAT, "header: %s field at offset %zu is not a decimal number", what,
                          *off);
    if (v > UINT32_MAX)
        return cf_err_set(e, CF_EFORMAT, "header: %s field at offset %zu is out of range", what, *off);
    *out = (uint32_t)v;
    *off = i + 1;
    return CF_OK;
}

cf_code cf_cdiff_parse(const uint8_t *p, size_t n, cf_cdiff *d, cf_err *e)
{
    if (d == NULL || (p == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "cdiff parse: missing argument");
    memset(d, 0, sizeof(*d));
    if (n > CF_MAX_CDIFF_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes, more than the %lu allowed for a cdiff", n,
                          (unsigned long)CF_MAX_CDIFF_BYTES);
    if (n < MAGIC_LEN || memcmp(p, cdiff_magic, MAGIC_LEN) != 0)
        return cf_err_set(e, CF_EFORMAT, "not a cdiff (does not start with \"ClamAV-Diff:\")");
    size_t off = MAGIC_LEN;
    cf_code rc = header_field(p, n, &off, "version", &d->version, e);
    if (rc == CF_OK)
        rc = header_field(p, n, &off, "script size", &d->script_len, e);
    if (rc == CF_OK)
        rc = locate_sig(p, n, &d->signed_len, d->sig, e);
    if (rc != CF_OK)
        return rc;
    d->gz_off = off;
    if (d->gz_off >= d->signed_len)
        return cf_err_set(e, CF_EFORMAT, "no compressed script between the header and the signature");
    if (d->script_len > CF_MAX_SCRIPT_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "header declares a %u-byte script, more than the %lu allowed",
                          d->script_len, (unsigned long)CF_MAX_SCRIPT_BYTES);
    size_t zlen = d->signed_len - d->gz_off, used = 0;
    rc = cf_gz_inflate(p + d->gz_off, zlen, d->script_len, &d->script, &used, e);
    if (rc == CF_ETOOBIG)
        rc = cf_err_set(e, CF_EFORMAT, "script is longer than the %u bytes the header declares",
                        d->script_len);
    else if (rc != CF_OK)
        cf_err_prefix(e, "compressed script at offset %zu: ", d->gz_off);
    else if (used != zlen)
        rc = cf_err_set(e, CF_EFORMAT,
                        "%zu stray bytes between the compressed script and the signature (offset %zu)",
                        zlen - used, d->gz_off + used);
    else if (d->script.n != d->script_len)
        rc = cf_err_set(e, CF_EFORMAT, "script is %zu bytes but the header declares %u", d->script.n,
                        d->script_len);
    if (rc != CF_OK)
        cf_cdiff_free(d);
    return rc;
}

cf_code cf_cdiff_verify(const uint8_t *p, size_t n, const cf_rsakey *key, cf_err *e)
{
    if (key == NULL || (p == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "cdiff verify: missing argument");
    if (n > CF_MAX_CDIFF_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes, more than the %lu allowed for a cdiff", n,
                          (unsigned long)CF_MAX_CDIFF_BYTES);
    size_t signed_len;
    char sig[CF_CDIFF_SIG_WINDOW + 1];
    cf_code rc = locate_sig(p, n, &signed_len, sig, e);
    if (rc != CF_OK)
        return rc;
    uint8_t d[32];
    rc = sha256(p, signed_len, d, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_pss_verify(key, d, sig, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "cdiff signature does not verify: ");
        return rc == CF_ENOMEM ? rc : CF_ESIG;
    }
    return CF_OK;
}

cf_code cf_cdiff_build(const uint8_t *script, size_t n, uint32_t version, const cf_rsakey *key, cf_buf *out,
                       cf_err *e)
{
    if (key == NULL || out == NULL || (script == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "cdiff build: missing argument");
    if (n > CF_MAX_SCRIPT_BYTES || n > UINT32_MAX)
        return cf_err_set(e, CF_ETOOBIG, "script of %zu bytes is too large for a cdiff", n);
    cf_buf f = CF_BUF_INIT, sig = CF_BUF_INIT;
    uint8_t d[32];
    /* Level 9 gives the gzip header sigtool's cdiffs carry (XFL 2, OS 3). */
    cf_code rc = cf_buf_printf(&f, "ClamAV-Diff:%u:%zu:", version, n) == CF_OK
                     ? cf_gz_deflate(script, n, 9, 0, &f, e)
                     : cf_err_set(e, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = sha256(f.p, f.n, d, e);
    if (rc == CF_OK)
        rc = cf_pss_sign(key, d, &sig, e);
    if (rc == CF_OK) {
        size_t slen = strlen((const char *)sig.p);
        if (slen > CF_CDIFF_SIG_WINDOW - 1)
            rc = cf_err_set(e, CF_EINVAL,
                            "a %zu-character signature does not fit the %d-byte window ClamAV reads "
                            "(use a key of at most 2048 bits)",
                            slen, CF_CDIFF_SIG_WINDOW);
        else if (cf_buf_append(&f, ":", 1) != CF_OK || cf_buf_append(&f, sig.p, slen) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && f.n < CF_CDIFF_SIG_WINDOW)
        rc = cf_err_set(e, CF_EINVAL, "cdiff would be %zu bytes, below ClamAV's %d-byte minimum", f.n,
                        CF_CDIFF_SIG_WINDOW);
    if (rc == CF_OK && f.n > CF_MAX_CDIFF_BYTES)
        rc = cf_err_set(e, CF_ETOOBIG, "cdiff would be %zu bytes, more than the %lu allowed", f.n,
                        (unsigned long)CF_MAX_CDIFF_BYTES);
    if (rc == CF_OK && cf_buf_append(out, f.p, f.n) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    cf_buf_free(&f);
    cf_buf_free(&sig);
    return rc;
}

/* ---------------------------------------------------------------------- apply */

/* A member as the script has left it so far. */
typedef struct shadow {
    char *name;
    int present;
    cf_buf data;
} shadow;

typedef struct edit {
    size_t line;  /* 1-based line of the file as it was at OPEN */
    size_t seq;   /* order in the script, so the last edit of a line wins */
    size_t sline; /* script line, for messages */
    int del;
    const uint8_t *prefix, *repl; /* point into the script */
    size_t plen, rlen;
} edit;

typedef struct applier {
    const cf_image *img;
    shadow *sh;
    size_t nsh, capsh;
    int open;
    char name[CF_MAX_NAME + 1];
    edit *ed;
    size_t ned, caped;
    cf_buf adds;
} applier;

static void applier_free(applier *a)
{
    for (size_t i = 0; i < a->nsh; i++) {
        free(a->sh[i].name);
        cf_buf_free(&a->sh[i].data);
    }
    free(a->sh);
    free(a->ed);
    cf_buf_free(&a->adds);
}

static shadow *shadow_find(applier *a, const char *name)
{
    for (size_t i = 0; i < a->nsh; i++)
        if (strcmp(a->sh[i].name, name) == 0)
            return &a->sh[i];
    return NULL;
}

/* Current contents of a member; 0 when it does not exist. */
static int member_get(applier *a, const char *name, const uint8_t **p, size_t *n)
{
    const shadow *s = shadow_find(a, name);
    if (s != NULL) {
        *p = nz(s->data.p);
        *n = s->data.n;
        return s->present;
    }
    const cf_dbfile *f = cf_image_get(a->img, name);
    if (f == NULL)
        return 0;
    *p = nz(f->data.p);
    *n = f->data.n;
    return 1;
}

/* Records the new state of a member, taking ownership of *data (NULL = removed). */
static cf_code member_set(applier *a, const char *name, cf_buf *data, cf_err *e)
{
    shadow *s = shadow_find(a, name);
    if (s == NULL) {
        /* Checked when crossed, as the streaming applier does: a script
         * naming 100,000 files stops here, not after a quadratic search. */
        if (a->nsh >= CF_MAX_MEMBERS)
            return cf_err_set(e, CF_ETOOBIG, "the script touches more than %d files", CF_MAX_MEMBERS);
        if (a->nsh == a->capsh) {
            size_t cap = a->capsh ? a->capsh * 2 : 8;
            shadow *ns = realloc(a->sh, cap * sizeof(*ns));
            if (ns == NULL)
                return cf_err_set(e, CF_ENOMEM, "out of memory");
            a->sh = ns;
            a->capsh = cap;
        }
        s = &a->sh[a->nsh];
        memset(s, 0, sizeof(*s));
        s->name = strdup(name);
        if (s->name == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        a->nsh++;
    }
    cf_buf_free(&s->data);
    s->present = data != NULL;
    if (data != NULL) {
        s->data = *data;
        memset(data, 0, sizeof(*data));
    }
    return CF_OK;
}

/* Byte ranges of the lines of a '\n'-terminated text; *count lines. */
typedef struct linepos {
    const uint8_t *p;
    size_t n; /* without '\n' */
} linepos;

static int starts_with(const uint8_t *line, size_t n, const uint8_t *pre, size_t pn)
{
    return pn <= n && memcmp(line, pre, pn) == 0;
}

static int edit_cmp(const void *x, const void *y)
{
    const edit *a = x, *b = y;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

static cf_code do_close(applier *a, cf_err *e)
{
    const char *name = a->name;
    const uint8_t *cur = NULL;
    size_t curn = 0;
    int exists = member_get(a, name, &cur, &curn);
    cf_buf out = CF_BUF_INIT;
    cf_code rc = CF_OK;

    if (a->ned > 0) {
        if (!exists)
            return cf_err_set(e, CF_ENOTFOUND,
                              "CLOSE %s: the file does not exist, so its lines cannot be edited", name);
        if (curn > 0 && cur[curn - 1] != '\n')
            return cf_err_set(e, CF_EFORMAT, "CLOSE %s: the file has no final newline", name);
        qsort(a->ed, a->ned, sizeof(edit), edit_cmp);
        if (cf_buf_reserve(&out, curn) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        size_t k = 0, lineno = 0, off = 0;
        while (off < curn && rc == CF_OK) {
            lineno++;
            const uint8_t *line = cur + off;
            size_t len = (size_t)((const uint8_t *)memchr(line, '\n', curn - off) - line);
            off += len + 1;
            if (k < a->ned && a->ed[k].line == lineno) {
                while (k + 1 < a->ned && a->ed[k + 1].line == lineno)
                    k++; /* the last edit of a line wins */
                const edit *ed = &a->ed[k++];
                if (!starts_with(line, len, ed->prefix, ed->plen)) {
                    rc = cf_err_set(e, CF_EFORMAT,
                                    "CLOSE %s: %s of line %zu (script line %zu): the line does not "
                                    "start with '%.*s'",
                                    name, ed->del ? "DEL" : "XCHG", lineno, ed->sline,
                                    (int)(ed->plen > 60 ? 60 : ed->plen), ed->prefix);
                    break;
                }
                if (!ed->del && (cf_buf_append(&out, ed->repl, ed->rlen) != CF_OK ||
                                 cf_buf_append(&out, "\n", 1) != CF_OK))
                    rc = cf_err_set(e, CF_ENOMEM, "out of memory");
            } else if (cf_buf_append(&out, line, len + 1) != CF_OK) {
                rc = cf_err_set(e, CF_ENOMEM, "out of memory");
            }
        }
        if (rc == CF_OK && k < a->ned)
            rc = cf_err_set(e, CF_EFORMAT,
                            "CLOSE %s: %s of line %zu (script line %zu) is past the end of the "
                            "file (%zu lines)",
                            name, a->ed[k].del ? "DEL" : "XCHG", a->ed[k].line, a->ed[k].sline, lineno);
        exists = 1;
    } else if (a->adds.n > 0 && exists) {
        if (cf_buf_set(&out, cur, curn) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && a->adds.n > 0) {
        if (out.n > 0 && out.p[out.n - 1] != '\n')
            rc = cf_err_set(e, CF_EFORMAT, "CLOSE %s: cannot add lines: the file does not end with a newline",
                            name);
        else if (out.n + a->adds.n > CF_MAX_DB_BYTES)
            rc = cf_err_set(e, CF_ETOOBIG, "CLOSE %s: the file would exceed %lu bytes", name,
                            (unsigned long)CF_MAX_DB_BYTES);
        else if (cf_buf_append(&out, a->adds.p, a->adds.n) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && (a->ned > 0 || a->adds.n > 0)) {
        /* Reserve so that even an emptied file has storage (memcmp on NULL is undefined). */
        if (cf_buf_reserve(&out, 1) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
        else
            rc = member_set(a, name, &out, e);
    }
    cf_buf_free(&out);
    a->open = 0;
    a->ned = 0;
    a->adds.n = 0;
    return rc;
}

static cf_code add_edit(applier *a, size_t sline, int del, const uint8_t *args, size_t n, cf_err *e)
{
    const char *cmd = del ? "DEL" : "XCHG";
    if (!a->open)
        return cf_err_set(e, CF_EFORMAT, "%s without an open file", cmd);
    const uint8_t *s = args, *end = args + n, *w = NULL, *pre = NULL;
    size_t wn = 0, pn = 0;
    edit ed;
    memset(&ed, 0, sizeof(ed));
    cf_cdiff_next_word(&s, end, &w, &wn);
    cf_code rc = cf_cdiff_lineno(w, wn, &ed.line, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s: ", cmd);
        return rc;
    }
    if (!cf_cdiff_next_word(&s, end, &pre, &pn))
        return cf_err_set(e, CF_EFORMAT, "%s: missing the line prefix", cmd);
    if (!del) {
        if (s > end)
            return cf_err_set(e, CF_EFORMAT, "XCHG: missing the new line");
        ed.repl = s;
        ed.rlen = (size_t)(end - s);
    }
    ed.del = del;
    ed.prefix = pre;
    ed.plen = pn;
    ed.sline = sline;
    ed.seq = a->ned;
    if (a->ned == a->caped) {
        size_t cap = a->caped ? a->caped * 2 : 64;
        edit *ne = realloc(a->ed, cap * sizeof(*ne));
        if (ne == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        a->ed = ne;
        a->caped = cap;
    }
    a->ed[a->ned++] = ed;
    return CF_OK;
}

/* Position of line ln (1-based) in a '\n'-terminated text; 0 if absent or unterminated. */
static int find_line(const uint8_t *p, size_t n, size_t ln, size_t *start, size_t *len)
{
    size_t off = 0;
    for (size_t i = 1; off < n; i++) {
        const uint8_t *nl = memchr(p + off, '\n', n - off);
        if (nl == NULL)
            return 0;
        if (i == ln) {
            *start = off;
            *len = (size_t)(nl - (p + off));
            return 1;
        }
        off = (size_t)(nl - p) + 1;
    }
    return 0;
}

static cf_code do_move(applier *a, const uint8_t *args, size_t n, cf_err *e)
{
    if (a->open)
        return cf_err_set(e, CF_EFORMAT, "MOVE while %s is open", a->name);
    const uint8_t *s = args, *end = args + n, *w[7] = {NULL};
    size_t wn[7] = {0}, k = 0;
    while (k < 7 && cf_cdiff_next_word(&s, end, &w[k], &wn[k]))
        k++;
    if (k != 6)
        return cf_err_set(e, CF_EFORMAT,
                          "MOVE: expected 6 arguments (src dst start prefix end prefix), got %s",
                          k < 6 ? "fewer" : "more");
    char src[CF_MAX_NAME + 1], dst[CF_MAX_NAME + 1];
    size_t from, to;
    cf_code rc = cf_cdiff_take_name(w[0], wn[0], "MOVE", src, e);
    if (rc == CF_OK)
        rc = cf_cdiff_take_name(w[1], wn[1], "MOVE", dst, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_cdiff_lineno(w[2], wn[2], &from, e);
    if (rc == CF_OK)
        rc = cf_cdiff_lineno(w[4], wn[4], &to, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "MOVE: ");
        return rc;
    }
    if (strcmp(src, dst) == 0)
        return cf_err_set(e, CF_EFORMAT, "MOVE: source and destination are both %s", src);
    if (from > to)
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: start line %zu is after end line %zu", src, from, to);
    const uint8_t *sp, *dp;
    size_t sn, dn;
    if (!member_get(a, src, &sp, &sn))
        return cf_err_set(e, CF_ENOTFOUND, "MOVE: source %s does not exist", src);
    if (!member_get(a, dst, &dp, &dn))
        return cf_err_set(e, CF_ENOTFOUND, "MOVE: destination %s does not exist", dst);
    if (dn > 0 && dp[dn - 1] != '\n')
        return cf_err_set(e, CF_EFORMAT, "MOVE: destination %s does not end with a newline", dst);
    size_t s0, l0, s1, l1;
    if (!find_line(sp, sn, from, &s0, &l0))
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: no complete line %zu", src, from);
    if (!find_line(sp, sn, to, &s1, &l1))
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: no complete line %zu", src, to);
    if (!starts_with(sp + s0, l0, w[3], wn[3]))
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: line %zu does not start with '%.*s'", src, from,
                          (int)(wn[3] > 60 ? 60 : wn[3]), w[3]);
    if (!starts_with(sp + s1, l1, w[5], wn[5]))
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: line %zu does not start with '%.*s'", src, to,
                          (int)(wn[5] > 60 ? 60 : wn[5]), w[5]);
    size_t mlen = s1 + l1 + 1 - s0;
    cf_buf ns = CF_BUF_INIT, nd = CF_BUF_INIT;
    if (cf_buf_reserve(&ns, sn - mlen + 1) != CF_OK || cf_buf_append(&ns, sp, s0) != CF_OK ||
        cf_buf_append(&ns, sp + s0 + mlen, sn - s0 - mlen) != CF_OK ||
        cf_buf_reserve(&nd, dn + mlen) != CF_OK || cf_buf_append(&nd, dp, dn) != CF_OK ||
        cf_buf_append(&nd, sp + s0, mlen) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = member_set(a, dst, &nd, e);
    if (rc == CF_OK)
        rc = member_set(a, src, &ns, e);
    cf_buf_free(&ns);
    cf_buf_free(&nd);
    return rc;
}

static cf_code do_line(applier *a, size_t sline, const uint8_t *line, size_t len, cf_err *e)
{
    const uint8_t *sp = memchr(line, ' ', len);
    size_t clen = sp ? (size_t)(sp - line) : len;
    const uint8_t *args = sp ? sp + 1 : line + len;
    size_t alen = sp ? len - clen - 1 : 0;
    int has_args = sp != NULL;
#define IS(word) (clen == sizeof(word) - 1 && memcmp(line, word, clen) == 0)
    if (IS("OPEN")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "OPEN: missing the file name");
        if (a->open)
            return cf_err_set(e, CF_EFORMAT, "OPEN while %s is still open", a->name);
        cf_code rc = cf_cdiff_take_name(args, alen, "OPEN", a->name, e);
        if (rc == CF_OK)
            a->open = 1;
        return rc;
    }
    if (IS("ADD")) {
        if (!a->open)
            return cf_err_set(e, CF_EFORMAT, "ADD without an open file");
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "ADD: missing the line (write \"ADD \" for an empty one)");
        if (cf_buf_append(&a->adds, args, alen) != CF_OK || cf_buf_append(&a->adds, "\n", 1) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        return CF_OK;
    }
    if (IS("DEL") || IS("XCHG")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "%.*s: missing arguments", (int)clen, line);
        return add_edit(a, sline, IS("DEL"), args, alen, e);
    }
    if (IS("CLOSE")) {
        if (has_args)
            return cf_err_set(e, CF_EFORMAT, "CLOSE takes no argument");
        if (!a->open)
            return cf_err_set(e, CF_EFORMAT, "CLOSE without an open file");
        return do_close(a, e);
    }
    if (IS("MOVE")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "MOVE: missing arguments");
        return do_move(a, args, alen, e);
    }
    if (IS("UNLINK")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "UNLINK: missing the file name");
        if (a->open)
            return cf_err_set(e, CF_EFORMAT, "UNLINK while %s is open", a->name);
        char name[CF_MAX_NAME + 1];
        cf_code rc = cf_cdiff_take_name(args, alen, "UNLINK", name, e);
        if (rc != CF_OK)
            return rc;
        const uint8_t *p;
        size_t n;
        if (!member_get(a, name, &p, &n))
            return cf_err_set(e, CF_ENOTFOUND, "UNLINK: %s does not exist", name);
        return member_set(a, name, NULL, e);
    }
#undef IS
    return cf_err_set(e, CF_EFORMAT, "unknown command '%.*s'", (int)(clen > 40 ? 40 : clen), line);
}

/* Moves the overlay into the image. Everything that can fail is done first. */
static cf_code commit(applier *a, cf_image *img, cf_err *e)
{
    size_t creates = 0, removes = 0;
    for (size_t i = 0; i < a->nsh; i++) {
        int in_img = cf_image_find(img, a->sh[i].name) >= 0;
        creates += a->sh[i].present && !in_img;
        removes += !a->sh[i].present && in_img;
    }
    if (img->nfiles - removes + creates > CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "the database would have more than %d files", CF_MAX_MEMBERS);
    if (img->nfiles + creates > img->cap) {
        size_t cap = img->nfiles + creates;
        cf_dbfile *f = realloc(img->files, cap * sizeof(*f));
        if (f == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        img->files = f;
        img->cap = cap;
    }
    for (size_t i = 0; i < a->nsh; i++) {
        shadow *s = &a->sh[i];
        long at = cf_image_find(img, s->name);
        if (!s->present) {
            if (at >= 0)
                cf_image_remove(img, s->name, NULL);
        } else if (at >= 0) {
            cf_buf old = img->files[at].data;
            img->files[at].data = s->data;
            s->data = old; /* freed with the overlay */
        } else {
            cf_dbfile *f = &img->files[img->nfiles++];
            f->name = s->name;
            f->data = s->data;
            s->name = NULL;
            memset(&s->data, 0, sizeof(s->data));
        }
    }
    return CF_OK;
}

cf_code cf_cdiff_apply(cf_image *img, const uint8_t *script, size_t n, cf_err *e)
{
    if (img == NULL || (script == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "cdiff apply: missing argument");
    if (n > CF_MAX_SCRIPT_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "script of %zu bytes, more than the %lu allowed", n,
                          (unsigned long)CF_MAX_SCRIPT_BYTES);
    applier a;
    memset(&a, 0, sizeof(a));
    a.img = img;
    cf_code rc = CF_OK;
    size_t off = 0, sline = 0;
    while (off < n && rc == CF_OK) {
        sline++;
        const uint8_t *line = script + off;
        const uint8_t *nl = memchr(line, '\n', n - off);
        if (nl == NULL) {
            rc = cf_err_set(e, CF_EFORMAT, "script line %zu: no final newline", sline);
            break;
        }
        size_t len = (size_t)(nl - line);
        off += len + 1;
        if (len == 0)
            rc = cf_err_set(e, CF_EFORMAT, "script line %zu: empty line (not a command)", sline);
        else if (memchr(line, '\r', len) != NULL)
            rc = cf_err_set(e, CF_EFORMAT,
                            "script line %zu: carriage return (CRLF scripts are not supported)", sline);
        else if (memchr(line, '\0', len) != NULL)
            rc = cf_err_set(e, CF_EFORMAT, "script line %zu: NUL byte", sline);
        else if (line[0] != '#') {
            rc = do_line(&a, sline, line, len, e);
            if (rc != CF_OK)
                cf_err_prefix(e, "script line %zu: ", sline);
        }
    }
    if (rc == CF_OK && a.open)
        rc =
            cf_err_set(e, CF_EFORMAT, "script line %zu: end of script while %s is still open (missing CLOSE)",
                       sline, a.name);
    if (rc == CF_OK)
        rc = commit(&a, img, e);
    applier_free(&a);
    return rc;
}

cf_code cf_cdiff_patch(cf_image *img, const uint8_t *p, size_t n, const cf_rsakey *key, cf_err *e)
{
    cf_code rc = CF_OK;
    if (key != NULL)
        rc = cf_cdiff_verify(p, n, key, e);
    if (rc != CF_OK)
        return rc;
    cf_cdiff d;
    rc = cf_cdiff_parse(p, n, &d, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_cdiff_apply(img, d.script.p, d.script.n, e);
    cf_cdiff_free(&d);
    return rc;
}

/* --------------------------------------------------------------- make_script
 *
 * A cdiff can only delete or replace lines of the old file in place and append
 * lines at its end (§6.5). The script therefore follows from a common
 * subsequence of the old and new lines: old lines off it are deleted, new lines
 * off it are queued, every old line (kept or deleted) that finds a queued new
 * line takes the oldest one by XCHG, and what is still queued at the end is
 * ADDed. The longer the subsequence, the shorter the script.
 *
 * Finding it (diff_lines), for N old and M new lines:
 *  1. every line gets a class number, equal lines (confirmed byte by byte
 *     after a hash) sharing one, so the diff compares integers;
 *  2. the common prefix and suffix are kept; lines of the middle whose class
 *     does not occur in the other side's middle are off the subsequence. That
 *     loses nothing (they match nothing) and leaves, for a database that
 *     replaces, drops and appends some signatures, two nearly equal sequences;
 *  3. what is left goes to Myers' linear-space divide and conquer ("An O(ND)
 *     Difference Algorithm and Its Variations", 1986, §4b): a minimal diff in
 *     O((N+M)·D) time, O(N+M) memory, within DIFF_MAX_WORK steps per member
 *     (a step = one diagonal visited or one line pair compared; 2^27 steps
 *     take about 0.3 s and cover some 16,000 differences left after step 2);
 *  4. a part whose search would overrun that budget is aligned instead on its
 *     lines that occur exactly once on each side: the longest run of them in
 *     the same order on both sides (as in "patience" diff), widened over equal
 *     neighbours; everything else in the part is off the subsequence. Correct
 *     but not minimal: a moved block comes out as DEL plus ADD, a shuffled
 *     file as mostly XCHG, and then the rewrite is smaller and is chosen.
 * Bound: O(N+M) memory, O((N+M)·log(N+M) + DIFF_MAX_WORK) time per member.
 */

#define DIFF_MAX_WORK ((uint64_t)1 << 27)

typedef struct tline {
    const uint8_t *p;
    size_t n;
    uint32_t h;
} tline;

/* Lines of a text whose every line ends in '\n' (checked by the caller). */
static tline *split_lines(const uint8_t *p, size_t n, size_t *count)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    tline *v = malloc((c ? c : 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    size_t off = 0;
    for (size_t k = 0; k < c; k++) {
        const uint8_t *nl = memchr(p + off, '\n', n - off);
        v[k].p = p + off;
        v[k].n = (size_t)(nl - (p + off));
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < v[k].n; i++)
            h = (h ^ v[k].p[i]) * 16777619u;
        v[k].h = h;
        off += v[k].n + 1;
    }
    *count = c;
    return v;
}

static int line_eq(const tline *a, const tline *b)
{
    return a->h == b->h && a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* Numbers the distinct lines of a and b (open addressing on the line hash):
 * ca[i] == cb[j] exactly when a[i] and b[j] are equal. Returns 0, or -1 when
 * out of memory. */
static int classify(const tline *a, size_t na, const tline *b, size_t nb, uint32_t *ca, uint32_t *cb,
                    size_t *nclass)
{
    size_t total = na + nb, cap = 64;
    unsigned bits = 6;
    if (total >= UINT32_MAX / 2)
        return -1;
    while (cap < 2 * total) {
        cap *= 2;
        bits++;
    }
    uint32_t *slot = calloc(cap, sizeof(*slot)); /* class + 1; 0 = free */
    const tline **rep = malloc((total ? total : 1) * sizeof(*rep));
    if (slot == NULL || rep == NULL) {
        free(slot);
        free(rep);
        return -1;
    }
    uint32_t nc = 0;
    for (size_t k = 0; k < total; k++) {
        const tline *l = k < na ? &a[k] : &b[k - na];
        /* FNV's low bits are weak; take the high bits of a multiplicative mix. */
        size_t s = (size_t)(((uint64_t)l->h * 0x9E3779B97F4A7C15ull) >> (64 - bits));
        uint32_t c;
        for (;;) {
            if (slot[s] == 0) {
                rep[nc] = l;
                c = nc++;
                slot[s] = nc;
                break;
            }
            if (line_eq(rep[slot[s] - 1], l)) {
                c = slot[s] - 1;
                break;
            }
            s = (s + 1) & (cap - 1);
        }
        if (k < na)
            ca[k] = c;
        else
            cb[k - na] = c;
    }
    free(slot);
    free(rep);
    *nclass = nc;
    return 0;
}

/* State of the diff of two class sequences a[0..n) and b[0..m). */
typedef struct differ {
    const uint32_t *a, *b;
    uint8_t *xa, *xb;   /* set for the lines off the common subsequence */
    ptrdiff_t *fd, *bd; /* furthest x per diagonal k = x - y, valid from k = -(m+1) */
    uint64_t work;      /* steps spent so far, against DIFF_MAX_WORK */
    size_t nclass;
    uint8_t *ua, *ub; /* fallback: occurrences of each class, capped at 2 */
    ptrdiff_t *posb;  /* fallback: where in b each class was seen */
} differ;

/* Finds a point (*xm, *ym) on a minimal edit path of a[xoff..xlim) against
 * b[yoff..ylim) (both non-empty, first and last elements different) such that
 * either half needs about half the edits: the forward search from the top-left
 * and the backward search from the bottom-right, one edit at a time, until
 * they meet. Returns 0, or -1 as soon as the work budget is spent. */
static int middle_snake(differ *d, ptrdiff_t xoff, ptrdiff_t xlim, ptrdiff_t yoff, ptrdiff_t ylim,
                        ptrdiff_t *xm, ptrdiff_t *ym)
{
    const uint32_t *a = d->a, *b = d->b;
    ptrdiff_t *fd = d->fd, *bd = d->bd;
    const ptrdiff_t dmin = xoff - ylim, dmax = xlim - yoff;
    const ptrdiff_t fmid = xoff - yoff, bmid = xlim - ylim;
    ptrdiff_t fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;
    /* Odd delta: the paths can first meet after a forward step, else after a backward one. */
    const int odd = ((fmid - bmid) & 1) != 0;
    fd[fmid] = xoff;
    bd[bmid] = xlim;
    for (;;) {
        /* Widen the forward diagonals by one where the rectangle allows;
         * the new outer neighbours are sentinels that never win. */
        if (fmin > dmin)
            fd[--fmin - 1] = -1;
        else
            ++fmin;
        if (fmax < dmax)
            fd[++fmax + 1] = -1;
        else
            --fmax;
        for (ptrdiff_t k = fmax; k >= fmin; k -= 2) {
            ptrdiff_t lo = fd[k - 1], hi = fd[k + 1];
            ptrdiff_t x0 = lo < hi ? hi : lo + 1, x = x0, y = x0 - k;
            while (x < xlim && y < ylim && a[x] == b[y]) {
                x++;
                y++;
            }
            d->work += 1 + (uint64_t)(x - x0);
            if (d->work > DIFF_MAX_WORK)
                return -1;
            fd[k] = x;
            if (odd && bmin <= k && k <= bmax && bd[k] <= x) {
                *xm = x;
                *ym = y;
                return 0;
            }
        }
        if (bmin > dmin)
            bd[--bmin - 1] = PTRDIFF_MAX;
        else
            ++bmin;
        if (bmax < dmax)
            bd[++bmax + 1] = PTRDIFF_MAX;
        else
            --bmax;
        for (ptrdiff_t k = bmax; k >= bmin; k -= 2) {
            ptrdiff_t lo = bd[k - 1], hi = bd[k + 1];
            ptrdiff_t x0 = lo < hi ? lo : hi - 1, x = x0, y = x0 - k;
            while (x > xoff && y > yoff && a[x - 1] == b[y - 1]) {
                x--;
                y--;
            }
            d->work += 1 + (uint64_t)(x0 - x);
            if (d->work > DIFF_MAX_WORK)
                return -1;
            bd[k] = x;
            if (!odd && fmin <= k && k <= fmax && x <= fd[k]) {
                *xm = x;
                *ym = y;
                return 0;
            }
        }
    }
}

/* Marks what lies between two aligned points as changed, after keeping the
 * equal lines at both of its ends. */
static void mark_gap(differ *d, ptrdiff_t x0, ptrdiff_t x1, ptrdiff_t y0, ptrdiff_t y1)
{
    while (x0 < x1 && y0 < y1 && d->a[x0] == d->b[y0]) {
        x0++;
        y0++;
    }
    while (x0 < x1 && y0 < y1 && d->a[x1 - 1] == d->b[y1 - 1]) {
        x1--;
        y1--;
    }
    if (x1 > x0)
        memset(d->xa + x0, 1, (size_t)(x1 - x0));
    if (y1 > y0)
        memset(d->xb + y0, 1, (size_t)(y1 - y0));
}

/* Step 4 of the comment above: align a part on the longest increasing run of
 * its lines that are unique on both sides. Any allocation failure leaves the
 * whole part changed, which is still correct. */
static void align_unique(differ *d, ptrdiff_t xoff, ptrdiff_t xlim, ptrdiff_t yoff, ptrdiff_t ylim)
{
    size_t n = (size_t)(xlim - xoff);
    ptrdiff_t *ax = NULL, *ay = NULL, *tail = NULL, *prev = NULL;
    if (d->ua == NULL) {
        d->ua = calloc(d->nclass, 1);
        d->ub = calloc(d->nclass, 1);
        d->posb = malloc(d->nclass * sizeof(*d->posb));
    }
    if (d->ua != NULL && d->ub != NULL && d->posb != NULL) {
        ax = malloc(n * sizeof(*ax));
        ay = malloc(n * sizeof(*ay));
        tail = malloc(n * sizeof(*tail));
        prev = malloc(n * sizeof(*prev));
    }
    if (ax == NULL || ay == NULL || tail == NULL || prev == NULL) {
        mark_gap(d, xoff, xlim, yoff, ylim);
        free(ax), free(ay), free(tail), free(prev);
        return;
    }
    const uint32_t *a = d->a, *b = d->b;
    for (ptrdiff_t y = yoff; y < ylim; y++) {
        d->ub[b[y]] += d->ub[b[y]] < 2;
        d->posb[b[y]] = y;
    }
    for (ptrdiff_t x = xoff; x < xlim; x++)
        d->ua[a[x]] += d->ua[a[x]] < 2;
    size_t k = 0;
    for (ptrdiff_t x = xoff; x < xlim; x++)
        if (d->ua[a[x]] == 1 && d->ub[a[x]] == 1) {
            ax[k] = x;
            ay[k] = d->posb[a[x]];
            k++;
        }
    for (ptrdiff_t y = yoff; y < ylim; y++)
        d->ub[b[y]] = 0;
    for (ptrdiff_t x = xoff; x < xlim; x++)
        d->ua[a[x]] = 0;
    /* Longest increasing subsequence of ay[] (patience sorting): tail[l] is
     * the pair ending the best run of length l + 1 found so far. */
    size_t len = 0;
    for (size_t i = 0; i < k; i++) {
        size_t lo = 0, hi = len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ay[tail[mid]] < ay[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        tail[lo] = (ptrdiff_t)i;
        prev[i] = lo > 0 ? tail[lo - 1] : -1;
        if (lo == len)
            len++;
    }
    /* The run, in order, into tail[0..len). */
    for (ptrdiff_t i = len > 0 ? tail[len - 1] : -1, l = (ptrdiff_t)len - 1; l >= 0; l--) {
        tail[l] = i;
        i = prev[i];
    }
    ptrdiff_t px = xoff, py = yoff;
    for (size_t l = 0; l < len; l++) {
        mark_gap(d, px, ax[tail[l]], py, ay[tail[l]]);
        px = ax[tail[l]] + 1;
        py = ay[tail[l]] + 1;
    }
    mark_gap(d, px, xlim, py, ylim);
    free(ax), free(ay), free(tail), free(prev);
}

/* Marks the lines off a longest common subsequence of a[xoff..xlim) and
 * b[yoff..ylim); recursion depth is about log2 of the number of differences. */
static void compare_seq(differ *d, ptrdiff_t xoff, ptrdiff_t xlim, ptrdiff_t yoff, ptrdiff_t ylim)
{
    for (;;) {
        while (xoff < xlim && yoff < ylim && d->a[xoff] == d->b[yoff]) {
            xoff++;
            yoff++;
        }
        while (xoff < xlim && yoff < ylim && d->a[xlim - 1] == d->b[ylim - 1]) {
            xlim--;
            ylim--;
        }
        if (xoff == xlim || yoff == ylim) {
            mark_gap(d, xoff, xlim, yoff, ylim);
            return;
        }
        ptrdiff_t xm, ym;
        /* The split is strictly inside the rectangle (both halves hold
         * edits); the check only guards the loop against a broken invariant. */
        if (d->work > DIFF_MAX_WORK || middle_snake(d, xoff, xlim, yoff, ylim, &xm, &ym) != 0 ||
            (xm == xoff && ym == yoff) || (xm == xlim && ym == ylim)) {
            align_unique(d, xoff, xlim, yoff, ylim);
            return;
        }
        compare_seq(d, xoff, xm, yoff, ym);
        xoff = xm;
        yoff = ym;
    }
}

/* Sets dela[i] for the old lines and insb[j] for the new lines that are off
 * the common subsequence chosen by the steps described above; cla and clb
 * receive the line classes. Returns 0, or -1 when out of memory. */
static int diff_lines(const tline *a, size_t na, const tline *b, size_t nb, uint32_t *cla, uint32_t *clb,
                      uint8_t *dela, uint8_t *insb)
{
    size_t nclass = 0;
    if (classify(a, na, b, nb, cla, clb, &nclass) != 0)
        return -1;
    memset(dela, 0, na);
    memset(insb, 0, nb);
    size_t pre = 0, suf = 0;
    while (pre < na && pre < nb && cla[pre] == clb[pre])
        pre++;
    while (suf < na - pre && suf < nb - pre && cla[na - 1 - suf] == clb[nb - 1 - suf])
        suf++;
    size_t ea = na - suf, eb = nb - suf; /* the middles: a[pre..ea), b[pre..eb) */
    uint8_t *side = calloc(nclass ? nclass : 1, 1);
    if (side == NULL)
        return -1;
    for (size_t i = pre; i < ea; i++)
        side[cla[i]] |= 1;
    for (size_t j = pre; j < eb; j++)
        side[clb[j]] |= 2;
    size_t n = 0, m = 0;
    for (size_t i = pre; i < ea; i++)
        n += side[cla[i]] == 3;
    for (size_t j = pre; j < eb; j++)
        m += side[clb[j]] == 3;
    differ d;
    memset(&d, 0, sizeof(d));
    d.nclass = nclass;
    size_t *ia = malloc((n ? n : 1) * sizeof(*ia)), *ib = malloc((m ? m : 1) * sizeof(*ib));
    uint32_t *fa = malloc((n ? n : 1) * sizeof(*fa)), *fb = malloc((m ? m : 1) * sizeof(*fb));
    d.xa = calloc(n ? n : 1, 1);
    d.xb = calloc(m ? m : 1, 1);
    ptrdiff_t *fdv = malloc((n + m + 3) * sizeof(*fdv)), *bdv = malloc((n + m + 3) * sizeof(*bdv));
    int rc = -1;
    if (ia != NULL && ib != NULL && fa != NULL && fb != NULL && d.xa != NULL && d.xb != NULL && fdv != NULL &&
        bdv != NULL) {
        size_t k = 0;
        for (size_t i = pre; i < ea; i++) {
            if (side[cla[i]] == 3) {
                ia[k] = i;
                fa[k++] = cla[i];
            } else
                dela[i] = 1;
        }
        k = 0;
        for (size_t j = pre; j < eb; j++) {
            if (side[clb[j]] == 3) {
                ib[k] = j;
                fb[k++] = clb[j];
            } else
                insb[j] = 1;
        }
        d.a = fa;
        d.b = fb;
        d.fd = fdv + m + 1;
        d.bd = bdv + m + 1;
        compare_seq(&d, 0, (ptrdiff_t)n, 0, (ptrdiff_t)m);
        for (size_t i = 0; i < n; i++)
            dela[ia[i]] = d.xa[i];
        for (size_t j = 0; j < m; j++)
            insb[ib[j]] = d.xb[j];
        rc = 0;
    }
    free(side);
    free(ia), free(ib), free(fa), free(fb);
    free(d.xa), free(d.xb), free(d.ua), free(d.ub), free(d.posb);
    free(fdv), free(bdv);
    return rc;
}

/* sigtool's prefix: the first 16 bytes of the old line, cut at the first space. */
static size_t line_prefix(const tline *l)
{
    size_t n = l->n < 16 ? l->n : 16;
    const uint8_t *sp = memchr(l->p, ' ', n);
    return sp ? (size_t)(sp - l->p) : n;
}

static int clean_text(const uint8_t *p, size_t n)
{
    return memchr(p, '\r', n) == NULL && memchr(p, '\0', n) == NULL && (n == 0 || p[n - 1] == '\n');
}

static cf_code emit_rewrite(const char *name, const uint8_t *p, size_t n, int unlink_first, cf_buf *s,
                            cf_err *e)
{
    int bad = (unlink_first && cf_buf_printf(s, "UNLINK %s\n", name) != CF_OK) ||
              cf_buf_printf(s, "OPEN %s\n", name) != CF_OK;
    size_t off = 0;
    while (!bad && off < n) {
        const uint8_t *nl = memchr(p + off, '\n', n - off);
        size_t len = (size_t)(nl - (p + off));
        bad = cf_buf_append(s, "ADD ", 4) != CF_OK || cf_buf_append(s, p + off, len + 1) != CF_OK;
        off += len + 1;
    }
    if (bad || cf_buf_append_str(s, "CLOSE\n") != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return CF_OK;
}

/* The edit for old line i (0-based) as the queue of new lines stands: it takes
 * the oldest queued new line (XCHG unless equal), or is deleted when del and
 * nothing is queued. Sets *need_rewrite for an edit on a line whose prefix is
 * empty, which sigtool's forms cannot address (§6.6), unless any_prefix. */
static int emit_line(cf_buf *s, const tline *a, const uint32_t *cla, const tline *b, const uint32_t *clb,
                     size_t i, int del, size_t target, int any_prefix, int *need_rewrite)
{
    if (!del && cla[i] == clb[target])
        return 0;
    size_t pl = line_prefix(&a[i]);
    if (pl == 0 && !any_prefix) {
        *need_rewrite = 1;
        return 0;
    }
    if (del)
        return cf_buf_printf(s, "DEL %zu %.*s\n", i + 1, (int)pl, (const char *)a[i].p) != CF_OK;
    return cf_buf_printf(s, "XCHG %zu %.*s ", i + 1, (int)pl, (const char *)a[i].p) != CF_OK ||
           cf_buf_append(s, b[target].p, b[target].n) != CF_OK || cf_buf_append(s, "\n", 1) != CF_OK;
}

/* Line edits for one changed member with clean old and new texts. Sets
 * *need_rewrite when an edit would target a line with an empty prefix (empty
 * or space-leading; new_empty allows those for the all-DEL case, where no
 * rewrite can help), or as soon as the edits for this member pass limit bytes. */
static cf_code emit_edits(const char *name, const cf_dbfile *of, const cf_dbfile *nf, int new_empty,
                          size_t limit, cf_buf *s, int *need_rewrite, cf_err *e)
{
    size_t na = 0, nb = 0, mark = s->n;
    tline *a = split_lines(of->data.p, of->data.n, &na);
    tline *b = split_lines(nf->data.p, nf->data.n, &nb);
    uint32_t *cla = malloc((na ? na : 1) * sizeof(*cla)), *clb = malloc((nb ? nb : 1) * sizeof(*clb));
    uint8_t *dela = malloc(na ? na : 1), *insb = malloc(nb ? nb : 1);
    size_t *pend = malloc((nb ? nb : 1) * sizeof(*pend));
    int oom =
        a == NULL || b == NULL || cla == NULL || clb == NULL || dela == NULL || insb == NULL || pend == NULL;
    if (!oom)
        oom = diff_lines(a, na, b, nb, cla, clb, dela, insb) != 0;
    if (!oom)
        oom = cf_buf_printf(s, "OPEN %s\n", name) != CF_OK;
    /* Walk both files run by run: a run is the new lines off the subsequence
     * (queued first, so that a replaced line becomes one XCHG), then the old
     * lines off it, then the next kept pair. pend[ph..pt) is the queue. */
    size_t i = 0, j = 0, ph = 0, pt = 0;
    while (!oom && !*need_rewrite && (i < na || j < nb)) {
        while (j < nb && insb[j])
            pend[pt++] = j++;
        while (!oom && !*need_rewrite && i < na && dela[i]) {
            int del = ph == pt;
            oom = emit_line(s, a, cla, b, clb, i, del, del ? 0 : pend[ph++], new_empty, need_rewrite);
            i++;
        }
        if (oom || *need_rewrite)
            break;
        if (i < na && j < nb) {
            /* A kept pair: in place when nothing is queued, else the old line
             * takes the oldest queued line and the new one joins the queue. */
            size_t target = j;
            if (ph < pt) {
                target = pend[ph++];
                pend[pt++] = j;
            }
            oom = emit_line(s, a, cla, b, clb, i, 0, target, new_empty, need_rewrite);
            i++;
            j++;
        } else if (j < nb) {
            pend[pt++] = j++; /* unreachable with a consistent diff; still correct */
        } else if (i < na) {
            int del = ph == pt;
            oom = emit_line(s, a, cla, b, clb, i, del, del ? 0 : pend[ph++], new_empty, need_rewrite);
            i++;
        }
        if (s->n - mark > limit)
            *need_rewrite = 1;
    }
    for (; ph < pt && !oom && !*need_rewrite; ph++) {
        oom = cf_buf_append(s, "ADD ", 4) != CF_OK ||
              cf_buf_append(s, b[pend[ph]].p, b[pend[ph]].n) != CF_OK || cf_buf_append(s, "\n", 1) != CF_OK;
        if (s->n - mark > limit)
            *need_rewrite = 1;
    }
    if (!oom && !*need_rewrite)
        oom = cf_buf_append_str(s, "CLOSE\n") != CF_OK;
    if (!oom && s->n - mark > limit)
        *need_rewrite = 1;
    cf_code rc = CF_OK;
    if (oom)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory while comparing %s", name);
    free(a), free(b), free(cla), free(clb), free(dela), free(insb), free(pend);
    return rc;
}

static cf_code diff_member(const char *name, const cf_dbfile *of, const cf_dbfile *nf, cf_buf *script,
                           cf_err *e)
{
    const uint8_t *np = nz(nf->data.p);
    size_t nn = nf->data.n;
    if (!cf_cdiff_name_ok((const uint8_t *)name, strlen(name)))
        return cf_err_set(e, CF_EUNSUPP,
                          "%s: a cdiff cannot name this file (allowed: letters, digits, '.', '_')", name);
    if (memchr(np, '\r', nn) != NULL || memchr(np, '\0', nn) != NULL)
        return cf_err_set(e, CF_EUNSUPP, "%s: contains a CR or NUL byte, which a cdiff cannot carry", name);
    if (nn > 0 && np[nn - 1] != '\n')
        return cf_err_set(e, CF_EUNSUPP, "%s: does not end with a newline, which a cdiff cannot express",
                          name);
    if (of == NULL) {
        if (nn == 0)
            return cf_err_set(e, CF_EUNSUPP, "%s: a cdiff cannot create an empty file", name);
        return emit_rewrite(name, np, nn, 0, script, e);
    }
    int old_clean = clean_text(nz(of->data.p), of->data.n);
    if (nn == 0 && !old_clean)
        return cf_err_set(e, CF_EUNSUPP,
                          "%s: cannot be emptied by a cdiff (the old file has CR/NUL bytes or no final "
                          "newline)",
                          name);
    if (old_clean) {
        /* Line edits when they are possible and not larger than a rewrite
         * (UNLINK, OPEN, "ADD " before every line, CLOSE). Emptying a file
         * has no rewrite form, so there is no limit then. */
        size_t lines = 0;
        for (size_t i = 0; i < nn; i++)
            lines += np[i] == '\n';
        size_t rewrite_size = 2 * strlen(name) + 20 + nn + 4 * lines;
        size_t mark = script->n;
        int need_rewrite = 0;
        cf_code rc =
            emit_edits(name, of, nf, nn == 0, nn == 0 ? SIZE_MAX : rewrite_size, script, &need_rewrite, e);
        if (rc != CF_OK || !need_rewrite) {
            if (rc != CF_OK)
                script->n = mark;
            return rc;
        }
        script->n = mark;
    }
    return emit_rewrite(name, np, nn, 1, script, e);
}

cf_code cf_cdiff_make_script(const cf_image *oldimg, const cf_image *newimg, cf_buf *script, cf_err *e)
{
    if (oldimg == NULL || newimg == NULL || script == NULL)
        return cf_err_set(e, CF_EINVAL, "cdiff make: missing argument");
    size_t start = script->n;
    cf_code rc = CF_OK;
    for (size_t i = 0; i < newimg->nfiles && rc == CF_OK; i++) {
        const cf_dbfile *nf = &newimg->files[i];
        const cf_dbfile *of = cf_image_get(oldimg, nf->name);
        if (of != NULL && of->data.n == nf->data.n && memcmp(nz(of->data.p), nz(nf->data.p), nf->data.n) == 0)
            continue;
        rc = diff_member(nf->name, of, nf, script, e);
    }
    for (size_t i = 0; i < oldimg->nfiles && rc == CF_OK; i++) {
        const char *nm = oldimg->files[i].name;
        if (cf_image_find(newimg, nm) >= 0)
            continue;
        if (!cf_cdiff_name_ok((const uint8_t *)nm, strlen(nm)))
            rc = cf_err_set(e, CF_EUNSUPP,
                            "%s: a cdiff cannot name this file (allowed: letters, digits, '.', '_')", nm);
        else if (cf_buf_printf(script, "UNLINK %s\n", nm) != CF_OK)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK && script->n - start > CF_MAX_SCRIPT_BYTES)
        rc = cf_err_set(e, CF_ETOOBIG, "the script would be %zu bytes, more than the %lu allowed",
                        script->n - start, (unsigned long)CF_MAX_SCRIPT_BYTES);
    if (rc != CF_OK)
        script->n = start;
    return rc;
}
