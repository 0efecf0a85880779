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

/* OPEN/UNLINK/MOVE name rule (see the top of this file). */
static int script_name_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > CF_MAX_NAME)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_'))
            return 0;
    }
    return 1;
}

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

/* Splits off the next space-delimited word of [*s, end). */
static int next_word(const uint8_t **s, const uint8_t *end, const uint8_t **w, size_t *wn)
{
    if (*s > end)
        return 0;
    const uint8_t *sp = memchr(*s, ' ', (size_t)(end - *s));
    *w = *s;
    *wn = (size_t)((sp ? sp : end) - *s);
    *s = sp ? sp + 1 : end + 1; /* end + 1 marks "no more words" */
    return 1;
}

static cf_code parse_lineno(const uint8_t *w, size_t n, size_t *out, cf_err *e)
{
    size_t v = 0;
    if (n == 0 || n > 19)
        return cf_err_set(e, CF_EFORMAT, "bad line number '%.*s'", (int)(n > 40 ? 40 : n), w);
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return cf_err_set(e, CF_EFORMAT, "bad line number '%.*s'", (int)n, w);
        v = v * 10 + (size_t)(w[i] - '0');
    }
    if (v == 0)
        return cf_err_set(e, CF_EFORMAT, "line number 0 (lines count from 1)");
    *out = v;
    return CF_OK;
}

static cf_code take_name(const uint8_t *w, size_t n, const char *cmd, char out[CF_MAX_NAME + 1], cf_err *e)
{
    if (!script_name_ok(w, n))
        return cf_err_set(e, CF_EFORMAT,
                          "%s: invalid database name '%.*s' (allowed: letters, digits, '.', '_')", cmd,
                          (int)(n > 120 ? 120 : n), w);
    memcpy(out, w, n);
    out[n] = '\0';
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
    next_word(&s, end, &w, &wn);
    cf_code rc = parse_lineno(w, wn, &ed.line, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s: ", cmd);
        return rc;
    }
    if (!next_word(&s, end, &pre, &pn))
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
    while (k < 7 && next_word(&s, end, &w[k], &wn[k]))
        k++;
    if (k != 6)
        return cf_err_set(e, CF_EFORMAT,
                          "MOVE: expected 6 arguments (src dst start prefix end prefix), got %s",
                          k < 6 ? "fewer" : "more");
    char src[CF_MAX_NAME + 1], dst[CF_MAX_NAME + 1];
    size_t from, to;
    cf_code rc = take_name(w[0], wn[0], "MOVE", src, e);
    if (rc == CF_OK)
        rc = take_name(w[1], wn[1], "MOVE", dst, e);
    if (rc != CF_OK)
        return rc;
    rc = parse_lineno(w[2], wn[2], &from, e);
    if (rc == CF_OK)
        rc = parse_lineno(w[4], wn[4], &to, e);
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
        cf_code rc = take_name(args, alen, "OPEN", a->name, e);
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
        cf_code rc = take_name(args, alen, "UNLINK", name, e);
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

/* --------------------------------------------------------------- make_script */

typedef struct tline {
    const uint8_t *p;
    size_t n;
    uint32_t h;
} tline;

enum { OP_EQ, OP_DEL, OP_INS };

typedef struct op {
    uint8_t kind;
    size_t i, j; /* old line (EQ, DEL) and new line (EQ, INS), 0-based */
} op;

typedef struct opvec {
    op *v;
    size_t n, cap;
} opvec;

static int opvec_push(opvec *o, int kind, size_t i, size_t j)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        op *nv = realloc(o->v, cap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n].kind = (uint8_t)kind;
    o->v[o->n].i = i;
    o->v[o->n].j = j;
    o->n++;
    return 0;
}

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
        uint32_t h = 2166136261u; /* FNV-1a, only to skip most memcmp calls */
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

/* Beyond this many differences the middle is treated as replaced wholesale:
 * still a correct script, only larger, and memory stays below ~16 MiB. */
#define DIFF_MAX_D 2048

/* Myers' O(ND) diff of a[0..n) and b[0..m), appending ops in order.
 * Returns 0, or -1 when out of memory. */
static int myers(const tline *a, size_t n, const tline *b, size_t m, size_t ioff, size_t joff, opvec *out)
{
    if (n + m == 0)
        return 0;
    size_t maxd = n + m < DIFF_MAX_D ? n + m : DIFF_MAX_D;
    if (n + m > (size_t)INT32_MAX)
        maxd = 0;
    /* trace[d] holds V[-d..d] after round d; stored back to back. */
    size_t total = 0, dfound = (size_t)-1;
    int32_t *trace = NULL;
    size_t tcap = 0;
    int32_t *v = calloc(2 * maxd + 3, sizeof(int32_t));
    if (v == NULL)
        return -1;
    int32_t *V = v + maxd + 1; /* V[k] for k in [-maxd-1, maxd+1] */
    for (size_t d = 0; d <= maxd && dfound == (size_t)-1; d++) {
        int32_t id = (int32_t)d;
        for (int32_t k = -id; k <= id; k += 2) {
            int32_t x;
            if (k == -id || (k != id && V[k - 1] < V[k + 1]))
                x = V[k + 1];
            else
                x = V[k - 1] + 1;
            int32_t y = x - k;
            while ((size_t)x < n && (size_t)y < m && line_eq(&a[x], &b[y])) {
                x++;
                y++;
            }
            V[k] = x;
            if ((size_t)x >= n && (size_t)y >= m)
                dfound = d;
        }
        size_t need = total + 2 * d + 1;
        if (need > tcap) {
            size_t cap = tcap ? tcap * 2 : 1024;
            while (cap < need)
                cap *= 2;
            int32_t *nt = realloc(trace, cap * sizeof(int32_t));
            if (nt == NULL) {
                free(trace);
                free(v);
                return -1;
            }
            trace = nt;
            tcap = cap;
        }
        memcpy(trace + total, V - id, (2 * d + 1) * sizeof(int32_t));
        total = need;
    }
    free(v);
    if (dfound == (size_t)-1) {
        free(trace);
        for (size_t i = 0; i < n; i++)
            if (opvec_push(out, OP_DEL, ioff + i, 0) != 0)
                return -1;
        for (size_t j = 0; j < m; j++)
            if (opvec_push(out, OP_INS, 0, joff + j) != 0)
                return -1;
        return 0;
    }
    /* Walk back from (n, m), collecting ops in reverse. */
    opvec rev = {NULL, 0, 0};
    int32_t x = (int32_t)n, y = (int32_t)m;
    int fail = 0;
    for (size_t d = dfound; d > 0 && !fail; d--) {
        int32_t id = (int32_t)d;
        const int32_t *P = trace + (d - 1) * (d - 1) + (d - 1); /* V of round d-1, centred */
        int32_t k = x - y, pk;
        if (k == -id || (k != id && P[k - 1] < P[k + 1]))
            pk = k + 1;
        else
            pk = k - 1;
        int32_t px = P[pk], py = px - pk;
        while (x > px && y > py && !fail) {
            fail |= opvec_push(&rev, OP_EQ, ioff + (size_t)x - 1, joff + (size_t)y - 1);
            x--;
            y--;
        }
        if (x == px)
            fail |= opvec_push(&rev, OP_INS, 0, joff + (size_t)py);
        else
            fail |= opvec_push(&rev, OP_DEL, ioff + (size_t)px, 0);
        x = px;
        y = py;
    }
    while (x > 0 && y > 0 && !fail) {
        fail |= opvec_push(&rev, OP_EQ, ioff + (size_t)x - 1, joff + (size_t)y - 1);
        x--;
        y--;
    }
    free(trace);
    for (size_t i = rev.n; i > 0 && !fail; i--)
        fail |= opvec_push(out, rev.v[i - 1].kind, rev.v[i - 1].i, rev.v[i - 1].j);
    free(rev.v);
    return fail ? -1 : 0;
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

/* Line edits for one changed member with clean old and new texts. Sets
 * *need_rewrite when an edit would have to target a line whose prefix is
 * empty (empty or space-leading line), as sigtool does (§6.6); new_empty
 * allows those for the all-DEL case, where no rewrite can help. */
static cf_code emit_edits(const char *name, const cf_dbfile *of, const cf_dbfile *nf, int new_empty,
                          cf_buf *s, int *need_rewrite, cf_err *e)
{
    size_t na = 0, nb = 0;
    tline *a = split_lines(of->data.p, of->data.n, &na);
    tline *b = split_lines(nf->data.p, nf->data.n, &nb);
    opvec ops = {NULL, 0, 0};
    size_t *pend = malloc((nb ? nb : 1) * sizeof(size_t));
    cf_code rc = CF_OK;
    int oom = a == NULL || b == NULL || pend == NULL;
    if (!oom) {
        size_t pre = 0, suf = 0;
        while (pre < na && pre < nb && line_eq(&a[pre], &b[pre]))
            pre++;
        while (suf < na - pre && suf < nb - pre && line_eq(&a[na - 1 - suf], &b[nb - 1 - suf]))
            suf++;
        for (size_t i = 0; i < pre && !oom; i++)
            oom = opvec_push(&ops, OP_EQ, i, i) != 0;
        if (!oom)
            oom = myers(a + pre, na - pre - suf, b + pre, nb - pre - suf, pre, pre, &ops) != 0;
        for (size_t i = 0; i < suf && !oom; i++)
            oom = opvec_push(&ops, OP_EQ, na - suf + i, nb - suf + i) != 0;
    }
    /* Within each run of changes, let insertions come first so that a replaced
     * line becomes one XCHG instead of a DEL plus a shifted tail. */
    for (size_t k = 0; k < ops.n && !oom;) {
        if (ops.v[k].kind == OP_EQ) {
            k++;
            continue;
        }
        size_t r = k;
        while (r < ops.n && ops.v[r].kind != OP_EQ)
            r++;
        op *tmp = malloc((r - k) * sizeof(op));
        if (tmp == NULL) {
            oom = 1;
            break;
        }
        size_t t = 0;
        for (size_t q = k; q < r; q++)
            if (ops.v[q].kind == OP_INS)
                tmp[t++] = ops.v[q];
        for (size_t q = k; q < r; q++)
            if (ops.v[q].kind == OP_DEL)
                tmp[t++] = ops.v[q];
        memcpy(&ops.v[k], tmp, (r - k) * sizeof(op));
        free(tmp);
        k = r;
    }
    /* Kept old lines take the new lines in order; new lines that find no old
     * line to take wait in pend[] (a FIFO) and are finally ADDed at the end. */
    size_t ph = 0, pt = 0;
    if (!oom)
        oom = cf_buf_printf(s, "OPEN %s\n", name) != CF_OK;
    for (size_t k = 0; k < ops.n && !oom && !*need_rewrite; k++) {
        const op *o = &ops.v[k];
        if (o->kind == OP_INS) {
            pend[pt++] = o->j;
            continue;
        }
        const tline *ol = &a[o->i];
        size_t target;
        int del = 0;
        if (o->kind == OP_EQ) {
            if (ph == pt)
                continue; /* unchanged and in place */
            target = pend[ph++];
            pend[pt++] = o->j;
        } else if (ph < pt) {
            target = pend[ph++];
        } else {
            del = 1;
            target = 0;
        }
        if (!del && line_eq(ol, &b[target]))
            continue;
        size_t pl = line_prefix(ol);
        if (pl == 0 && !new_empty) {
            *need_rewrite = 1;
            break;
        }
        if (del)
            oom = cf_buf_printf(s, "DEL %zu %.*s\n", o->i + 1, (int)pl, (const char *)ol->p) != CF_OK;
        else
            oom = cf_buf_printf(s, "XCHG %zu %.*s ", o->i + 1, (int)pl, (const char *)ol->p) != CF_OK ||
                  cf_buf_append(s, b[target].p, b[target].n) != CF_OK || cf_buf_append(s, "\n", 1) != CF_OK;
    }
    for (; ph < pt && !oom && !*need_rewrite; ph++)
        oom = cf_buf_append(s, "ADD ", 4) != CF_OK ||
              cf_buf_append(s, b[pend[ph]].p, b[pend[ph]].n) != CF_OK || cf_buf_append(s, "\n", 1) != CF_OK;
    if (!oom && !*need_rewrite)
        oom = cf_buf_append_str(s, "CLOSE\n") != CF_OK;
    if (oom)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory while comparing %s", name);
    free(a);
    free(b);
    free(ops.v);
    free(pend);
    return rc;
}

static cf_code diff_member(const char *name, const cf_dbfile *of, const cf_dbfile *nf, cf_buf *script,
                           cf_err *e)
{
    const uint8_t *np = nz(nf->data.p);
    size_t nn = nf->data.n;
    if (!script_name_ok((const uint8_t *)name, strlen(name)))
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
        size_t mark = script->n;
        int need_rewrite = 0;
        cf_code rc = emit_edits(name, of, nf, nn == 0, script, &need_rewrite, e);
        if (rc != CF_OK)
            return rc;
        /* Line edits when they are possible and not larger than a rewrite. */
        size_t lines = 0;
        for (size_t i = 0; i < nn; i++)
            lines += np[i] == '\n';
        size_t rewrite_size = 2 * strlen(name) + 20 + nn + 4 * lines;
        if (!need_rewrite && (nn == 0 || script->n - mark <= rewrite_size))
            return CF_OK;
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
        if (!script_name_ok((const uint8_t *)nm, strlen(nm)))
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
