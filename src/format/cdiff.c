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
