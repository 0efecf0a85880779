/* Streaming cdiff patches (formats.md §6.5; see patch.h for the use).
 *
 * Semantics are those of cf_cdiff_apply in cdiff.c, script after script, with
 * every stricter-than-ClamAV rule of its "Script (§6.5)" list: the same
 * syntax, name and command rules (checked when the plan is made), the same
 * content rules (checked as the member streams). New here, because one pass
 * over each member must suffice:
 *  - a chain whose MOVEs form a cycle between members (a to b, later b to a,
 *    or longer) is refused with CF_EUNSUPP: no order of the members lets every
 *    MOVE source stream before its destination;
 *  - the lines MOVEs carry wait in memory between their source and their
 *    destination: more than CF_MAX_MOVE_BYTES held at once fails (CF_ETOOBIG);
 *  - a chain that touches more than CF_MAX_MEMBERS distinct names fails
 *    (CF_ETOOBIG), even when the database would end with fewer members;
 *    cf_cdiff_apply instead bounds the member count after each script, which
 *    only the caller, who sees every member, can do here.
 * Where several rules are broken the message may name another one than
 * cf_cdiff_apply would (a prefix mismatch is seen before a missing final
 * newline), but a chain fails here exactly when it fails there.
 *
 * Shape: the plan turns the chain into a list of stages per member (an
 * OPEN..CLOSE block with its edits sorted by line and its ADDs, an UNLINK, the
 * source or the destination side of a MOVE). A member's bytes run through its
 * stages only; each stage hands on spans of its input or of the plan (an XCHG
 * line, the ADDs, the moved lines), and the driver walks the stages without
 * recursion, so thousands of stages on one member cost no stack.
 *
 * Cost: bytes are searched for newlines once, as they enter the first stage,
 * and every span carries the positions of its newlines; a stage finds the line
 * it edits next by that index and hands on the lines before it as one span. A
 * member that thirty scripts edit is therefore read once, not thirty times,
 * and each stage costs a step per edit and per piece of input. */
#include "clamfresh/patch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "clamfresh/limits.h"
#include "cdiff_syntax_priv.h"

#define NONE ((size_t)-1)
#define HASH_SLOTS (2 * CF_MAX_MEMBERS) /* at most half full */

enum { ST_BLOCK, ST_UNLINK, ST_MOVE_OUT, ST_MOVE_IN };
enum { M_IDLE, M_RUNNING, M_DONE, M_FAILED };

typedef struct pedit {
    size_t line;       /* 1-based, of the member as it was at OPEN */
    size_t seq;        /* order in the plan, so that the last edit of a line wins */
    size_t sline;      /* script line, for messages */
    size_t poff, plen; /* prefix, in plan->text */
    size_t roff, rlen; /* XCHG: the new line with its '\n', in plan->text */
    uint32_t nlo;      /* XCHG: rlen - 1, where its one newline is (scripts stay far below 4 GiB) */
    int del;
} pedit;

typedef struct pstage {
    int kind;
    size_t script, sline; /* the CLOSE, UNLINK or MOVE line */
    size_t ed0, ned;      /* ST_BLOCK: edits in plan->ed */
    size_t aoff, alen;    /* ST_BLOCK: the added lines, in plan->adds */
    size_t move;          /* ST_MOVE_*: index in plan->mv */
    size_t next;          /* next stage of the same member, or NONE */
} pstage;

typedef struct pmove {
    size_t src, dst; /* member indices */
    size_t from, to;
    size_t p1off, p1len, p2off, p2len; /* prefixes in plan->text */
    size_t script, sline;              /* the MOVE line */
    cf_buf data;                       /* the moved lines, once the source streamed */
    int filled;
} pmove;

typedef struct pmember {
    char name[CF_MAX_NAME + 1];
    size_t head, tail; /* stages in chain order */
    size_t nst;
    int state;
} pmember;

struct cf_patchplan {
    char **labels;
    size_t nscripts;
    pmember *mem;
    size_t nmem, capmem;
    int32_t slot[HASH_SLOTS]; /* member index + 1, 0 = free */
    pstage *st;
    size_t nst, capst;
    pedit *ed;
    size_t ned, caped;
    pmove *mv;
    size_t nmv, capmv;
    cf_buf text; /* prefixes and XCHG lines */
    cf_buf adds; /* ADD lines, one block after the other */
    size_t held; /* moved bytes waiting for their destination */
};

/* ------------------------------------------------------------------ helpers */

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *np = realloc(*arr, nc * size);
    if (np == NULL)
        return -1;
    *arr = np;
    *cap = nc;
    return 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static long member_find(const cf_patchplan *p, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CF_MAX_NAME)
        return -1;
    for (size_t i = name_hash(name, n) % HASH_SLOTS;; i = (i + 1) % HASH_SLOTS) {
        int32_t v = p->slot[i];
        if (v == 0)
            return -1;
        if (strcmp(p->mem[v - 1].name, name) == 0)
            return v - 1;
    }
}

static const char *label_of(const cf_patchplan *p, size_t script)
{
    return p->labels[script];
}

/* Records a content failure of stage st: "<label>: script line <n>: <what>". */
static cf_code stage_fail(const cf_patchplan *p, const pstage *st, cf_code code, cf_err *e, const char *fmt,
                          ...) __attribute__((format(printf, 5, 6)));
static cf_code stage_fail(const cf_patchplan *p, const pstage *st, cf_code code, cf_err *e, const char *fmt,
                          ...)
{
    char what[CF_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cf_err_set(e, code, "%s: script line %zu: %s", label_of(p, st->script), st->sline, what);
}

/* ------------------------------------------------------------------ parsing */

typedef struct parser {
    cf_patchplan *p;
    size_t script;
    int open;
    char name[CF_MAX_NAME + 1];
    size_t ed0, add0;
} parser;

static cf_code text_put(cf_buf *b, const uint8_t *s, size_t n, int nl, size_t *off, cf_err *e)
{
    *off = b->n;
    if (cf_buf_append(b, s, n) != CF_OK || (nl && cf_buf_append(b, "\n", 1) != CF_OK))
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return CF_OK;
}

/* The member called name, registered on first mention. */
static cf_code member_get(cf_patchplan *p, const char *name, const char *cmd, size_t *out, cf_err *e)
{
    size_t n = strlen(name);
    size_t i = name_hash(name, n) % HASH_SLOTS;
    for (; p->slot[i] != 0; i = (i + 1) % HASH_SLOTS)
        if (strcmp(p->mem[p->slot[i] - 1].name, name) == 0) {
            *out = (size_t)(p->slot[i] - 1);
            return CF_OK;
        }
    if (p->nmem >= CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "%s %s: the chain touches more than %d files", cmd, name,
                          CF_MAX_MEMBERS);
    if (grow((void **)&p->mem, &p->capmem, p->nmem, sizeof(*p->mem)) != 0)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    pmember *m = &p->mem[p->nmem];
    memset(m, 0, sizeof(*m));
    memcpy(m->name, name, n + 1);
    m->head = m->tail = NONE;
    p->slot[i] = (int32_t)(p->nmem + 1);
    *out = p->nmem++;
    return CF_OK;
}

static cf_code stage_add(cf_patchplan *p, size_t member, const pstage *tmpl, cf_err *e)
{
    if (grow((void **)&p->st, &p->capst, p->nst, sizeof(*p->st)) != 0)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    size_t k = p->nst++;
    p->st[k] = *tmpl;
    p->st[k].next = NONE;
    pmember *m = &p->mem[member];
    if (m->tail == NONE)
        m->head = k;
    else
        p->st[m->tail].next = k;
    m->tail = k;
    m->nst++;
    return CF_OK;
}

static int edit_cmp(const void *x, const void *y)
{
    const pedit *a = x, *b = y;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

static cf_code parse_close(parser *ps, size_t sline, cf_err *e)
{
    cf_patchplan *p = ps->p;
    size_t ned = p->ned - ps->ed0, alen = p->adds.n - ps->add0;
    ps->open = 0;
    if (ned == 0 && alen == 0)
        return CF_OK; /* OPEN/CLOSE alone changes nothing, even for a missing file */
    size_t kept = 0;
    if (ned > 0) {
        pedit *ed = p->ed + ps->ed0;
        qsort(ed, ned, sizeof(*ed), edit_cmp);
        for (size_t i = 0; i < ned; i++) {
            if (i + 1 < ned && ed[i + 1].line == ed[i].line)
                continue; /* the last edit of a line wins */
            ed[kept++] = ed[i];
        }
    }
    p->ned = ps->ed0 + kept;
    size_t m;
    cf_code rc = member_get(p, ps->name, "CLOSE", &m, e);
    if (rc != CF_OK)
        return rc;
    pstage st;
    memset(&st, 0, sizeof(st));
    st.kind = ST_BLOCK;
    st.script = ps->script;
    st.sline = sline;
    st.ed0 = ps->ed0;
    st.ned = kept;
    st.aoff = ps->add0;
    st.alen = alen;
    return stage_add(p, m, &st, e);
}

static cf_code parse_edit(parser *ps, size_t sline, int del, const uint8_t *args, size_t n, cf_err *e)
{
    cf_patchplan *p = ps->p;
    const char *cmd = del ? "DEL" : "XCHG";
    if (!ps->open)
        return cf_err_set(e, CF_EFORMAT, "%s without an open file", cmd);
    const uint8_t *s = args, *end = args + n, *w = NULL, *pre = NULL;
    size_t wn = 0, pn = 0;
    pedit ed;
    memset(&ed, 0, sizeof(ed));
    cf_cdiff_next_word(&s, end, &w, &wn);
    cf_code rc = cf_cdiff_lineno(w, wn, &ed.line, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s %s: ", cmd, ps->name);
        return rc;
    }
    if (!cf_cdiff_next_word(&s, end, &pre, &pn))
        return cf_err_set(e, CF_EFORMAT, "%s %s: missing the line prefix", cmd, ps->name);
    if (!del && s > end)
        return cf_err_set(e, CF_EFORMAT, "XCHG %s: missing the new line", ps->name);
    ed.del = del;
    ed.sline = sline;
    ed.seq = p->ned;
    rc = text_put(&p->text, pre, pn, 0, &ed.poff, e);
    ed.plen = pn;
    if (rc == CF_OK && !del) {
        ed.rlen = (size_t)(end - s) + 1;
        ed.nlo = (uint32_t)(ed.rlen - 1);
        rc = text_put(&p->text, s, ed.rlen - 1, 1, &ed.roff, e);
    }
    if (rc != CF_OK)
        return rc;
    if (grow((void **)&p->ed, &p->caped, p->ned, sizeof(*p->ed)) != 0)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    p->ed[p->ned++] = ed;
    return CF_OK;
}

static cf_code parse_move(parser *ps, size_t sline, const uint8_t *args, size_t n, cf_err *e)
{
    cf_patchplan *p = ps->p;
    if (ps->open)
        return cf_err_set(e, CF_EFORMAT, "MOVE while %s is open", ps->name);
    const uint8_t *s = args, *end = args + n, *w[7] = {NULL};
    size_t wn[7] = {0}, k = 0;
    while (k < 7 && cf_cdiff_next_word(&s, end, &w[k], &wn[k]))
        k++;
    if (k != 6)
        return cf_err_set(e, CF_EFORMAT,
                          "MOVE: expected 6 arguments (src dst start prefix end prefix), got %s",
                          k < 6 ? "fewer" : "more");
    char src[CF_MAX_NAME + 1], dst[CF_MAX_NAME + 1];
    pmove mv;
    memset(&mv, 0, sizeof(mv));
    cf_code rc = cf_cdiff_take_name(w[0], wn[0], "MOVE", src, e);
    if (rc == CF_OK)
        rc = cf_cdiff_take_name(w[1], wn[1], "MOVE", dst, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_cdiff_lineno(w[2], wn[2], &mv.from, e);
    if (rc == CF_OK)
        rc = cf_cdiff_lineno(w[4], wn[4], &mv.to, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "MOVE %s: ", src);
        return rc;
    }
    if (strcmp(src, dst) == 0)
        return cf_err_set(e, CF_EFORMAT, "MOVE: source and destination are both %s", src);
    if (mv.from > mv.to)
        return cf_err_set(e, CF_EFORMAT, "MOVE %s: start line %zu is after end line %zu", src, mv.from,
                          mv.to);
    rc = text_put(&p->text, w[3], wn[3], 0, &mv.p1off, e);
    if (rc == CF_OK)
        rc = text_put(&p->text, w[5], wn[5], 0, &mv.p2off, e);
    mv.p1len = wn[3];
    mv.p2len = wn[5];
    if (rc == CF_OK)
        rc = member_get(p, src, "MOVE", &mv.src, e);
    if (rc == CF_OK)
        rc = member_get(p, dst, "MOVE", &mv.dst, e);
    if (rc != CF_OK)
        return rc;
    if (grow((void **)&p->mv, &p->capmv, p->nmv, sizeof(*p->mv)) != 0)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    pstage st;
    memset(&st, 0, sizeof(st));
    st.script = mv.script = ps->script;
    st.sline = mv.sline = sline;
    st.move = p->nmv;
    p->mv[p->nmv++] = mv;
    st.kind = ST_MOVE_OUT;
    rc = stage_add(p, mv.src, &st, e);
    st.kind = ST_MOVE_IN;
    if (rc == CF_OK)
        rc = stage_add(p, mv.dst, &st, e);
    return rc;
}

static cf_code parse_unlink(parser *ps, size_t sline, const uint8_t *args, size_t n, cf_err *e)
{
    if (ps->open)
        return cf_err_set(e, CF_EFORMAT, "UNLINK while %s is open", ps->name);
    char name[CF_MAX_NAME + 1];
    size_t m;
    cf_code rc = cf_cdiff_take_name(args, n, "UNLINK", name, e);
    if (rc == CF_OK)
        rc = member_get(ps->p, name, "UNLINK", &m, e);
    if (rc != CF_OK)
        return rc;
    pstage st;
    memset(&st, 0, sizeof(st));
    st.kind = ST_UNLINK;
    st.script = ps->script;
    st.sline = sline;
    return stage_add(ps->p, m, &st, e);
}

static cf_code parse_command(parser *ps, size_t sline, const uint8_t *line, size_t len, cf_err *e)
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
        if (ps->open)
            return cf_err_set(e, CF_EFORMAT, "OPEN while %s is still open", ps->name);
        cf_code rc = cf_cdiff_take_name(args, alen, "OPEN", ps->name, e);
        if (rc == CF_OK) {
            ps->open = 1;
            ps->ed0 = ps->p->ned;
            ps->add0 = ps->p->adds.n;
        }
        return rc;
    }
    if (IS("ADD")) {
        size_t off;
        if (!ps->open)
            return cf_err_set(e, CF_EFORMAT, "ADD without an open file");
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "ADD %s: missing the line (write \"ADD \" for an empty one)",
                              ps->name);
        return text_put(&ps->p->adds, args, alen, 1, &off, e);
    }
    if (IS("DEL") || IS("XCHG")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "%.*s: missing arguments", (int)clen, (const char *)line);
        return parse_edit(ps, sline, IS("DEL"), args, alen, e);
    }
    if (IS("CLOSE")) {
        if (has_args)
            return cf_err_set(e, CF_EFORMAT, "CLOSE takes no argument");
        if (!ps->open)
            return cf_err_set(e, CF_EFORMAT, "CLOSE without an open file");
        return parse_close(ps, sline, e);
    }
    if (IS("MOVE")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "MOVE: missing arguments");
        return parse_move(ps, sline, args, alen, e);
    }
    if (IS("UNLINK")) {
        if (!has_args)
            return cf_err_set(e, CF_EFORMAT, "UNLINK: missing the file name");
        return parse_unlink(ps, sline, args, alen, e);
    }
#undef IS
    return cf_err_set(e, CF_EFORMAT, "unknown command '%.*s'", (int)(clen > 40 ? 40 : clen),
                      (const char *)line);
}

static cf_code parse_script(cf_patchplan *p, size_t k, const uint8_t *script, size_t n, cf_err *e)
{
    const char *label = label_of(p, k);
    if (script == NULL && n != 0)
        return cf_err_set(e, CF_EINVAL, "%s: missing script", label);
    if (n > CF_MAX_SCRIPT_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%s: script of %zu bytes, more than the %lu allowed", label, n,
                          (unsigned long)CF_MAX_SCRIPT_BYTES);
    parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.p = p;
    ps.script = k;
    cf_code rc = CF_OK;
    size_t off = 0, sline = 0;
    while (off < n && rc == CF_OK) {
        sline++;
        const uint8_t *line = script + off;
        const uint8_t *nl = memchr(line, '\n', n - off);
        if (nl == NULL)
            return cf_err_set(e, CF_EFORMAT, "%s: script line %zu: no final newline", label, sline);
        size_t len = (size_t)(nl - line);
        off += len + 1;
        if (len == 0)
            rc = cf_err_set(e, CF_EFORMAT, "empty line (not a command)");
        else if (memchr(line, '\r', len) != NULL)
            rc = cf_err_set(e, CF_EFORMAT, "carriage return (CRLF scripts are not supported)");
        else if (memchr(line, '\0', len) != NULL)
            rc = cf_err_set(e, CF_EFORMAT, "NUL byte");
        else if (line[0] != '#')
            rc = parse_command(&ps, sline, line, len, e);
        if (rc != CF_OK && ps.open && e != NULL && strstr(e->msg, ps.name) == NULL)
            cf_err_prefix(e, "%s: script line %zu: in OPEN %s: ", label, sline, ps.name);
        else if (rc != CF_OK)
            cf_err_prefix(e, "%s: script line %zu: ", label, sline);
    }
    if (rc == CF_OK && ps.open)
        rc = cf_err_set(e, CF_EFORMAT,
                        "%s: script line %zu: end of script while %s is still open (missing CLOSE)", label,
                        sline, ps.name);
    return rc;
}

/* MOVE sources must stream before their destinations; Kahn's algorithm over
 * the members finds whether some order does that. */
static cf_code check_cycles(cf_patchplan *p, cf_err *e)
{
    if (p->nmv == 0)
        return CF_OK;
    size_t nm = p->nmem;
    size_t *indeg = calloc(nm, sizeof(size_t)), *first = calloc(nm + 1, sizeof(size_t));
    size_t *adj = malloc(p->nmv * sizeof(size_t)), *queue = malloc(nm * sizeof(size_t));
    cf_code rc = CF_OK;
    if (indeg == NULL || first == NULL || adj == NULL || queue == NULL) {
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->nmv; i++) {
        indeg[p->mv[i].dst]++;
        first[p->mv[i].src + 1]++;
    }
    for (size_t i = 0; i < nm; i++)
        first[i + 1] += first[i];
    for (size_t i = 0; i < p->nmv; i++)
        adj[first[p->mv[i].src]++] = p->mv[i].dst; /* first[s] ends as the end of s's edges */
    size_t qh = 0, qt = 0;
    for (size_t i = 0; i < nm; i++)
        if (indeg[i] == 0)
            queue[qt++] = i;
    while (qh < qt) {
        size_t v = queue[qh++];
        for (size_t j = v ? first[v - 1] : 0; j < first[v]; j++)
            if (--indeg[adj[j]] == 0)
                queue[qt++] = adj[j];
    }
    if (qt == nm)
        goto out;
    /* Every member left over has a left-over predecessor; walking back from
     * one of them nm times ends on a cycle. */
    size_t *pred = queue; /* reused: move index into each left-over member */
    size_t v = NONE;
    for (size_t i = 0; i < p->nmv; i++)
        if (indeg[p->mv[i].src] > 0 && indeg[p->mv[i].dst] > 0) {
            pred[p->mv[i].dst] = i;
            v = p->mv[i].dst;
        }
    for (size_t i = 0; i < nm; i++)
        v = p->mv[pred[v]].src;
    const pmove *mv = &p->mv[pred[v]];
    rc = cf_err_set(e, CF_EUNSUPP,
                    "%s: script line %zu: MOVE %s %s: the MOVEs of the chain form a cycle between "
                    "members, which one pass over each member cannot apply",
                    label_of(p, mv->script), mv->sline, p->mem[mv->src].name, p->mem[mv->dst].name);
out:
    free(indeg);
    free(first);
    free(adj);
    free(queue);
    return rc;
}

void cf_patchplan_free(cf_patchplan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->labels != NULL && i < p->nscripts; i++)
        free(p->labels[i]);
    free(p->labels);
    for (size_t i = 0; i < p->nmv; i++)
        cf_buf_free(&p->mv[i].data);
    free(p->mv);
    free(p->mem);
    free(p->st);
    free(p->ed);
    cf_buf_free(&p->text);
    cf_buf_free(&p->adds);
    free(p);
}

cf_code cf_patchplan_new(const cf_buf *scripts, const char *const *labels, size_t n, cf_patchplan **out,
                         cf_err *e)
{
    if (out == NULL || (scripts == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "patch plan: missing argument");
    *out = NULL;
    cf_patchplan *p = calloc(1, sizeof(*p));
    if (p == NULL || (n > 0 && (p->labels = calloc(n, sizeof(char *))) == NULL)) {
        free(p);
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    p->nscripts = n;
    /* Storage from the start: empty prefixes then still point somewhere. */
    cf_code rc = cf_buf_reserve(&p->text, 1) == CF_OK && cf_buf_reserve(&p->adds, 1) == CF_OK
                     ? CF_OK
                     : cf_err_set(e, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        char fallback[32];
        const char *l = labels != NULL ? labels[i] : NULL;
        if (l == NULL) {
            snprintf(fallback, sizeof(fallback), "script %zu", i);
            l = fallback;
        }
        p->labels[i] = strdup(l);
        if (p->labels[i] == NULL)
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    /* The copies of prefixes, lines and ADDs are shorter than the scripts:
     * reserving that much at once spares the copying of regrowth (pages the
     * copies never reach are never touched). */
    size_t total = 0;
    for (size_t i = 0; i < n && total <= CF_MAX_SCRIPT_BYTES; i++)
        total += scripts[i].n < CF_MAX_SCRIPT_BYTES ? scripts[i].n : CF_MAX_SCRIPT_BYTES;
    if (rc == CF_OK && total <= CF_MAX_SCRIPT_BYTES &&
        (cf_buf_reserve(&p->text, total) != CF_OK || cf_buf_reserve(&p->adds, total) != CF_OK))
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == CF_OK; i++)
        rc = parse_script(p, i, scripts[i].p, scripts[i].n, e);
    if (rc == CF_OK)
        rc = check_cycles(p, e);
    if (rc != CF_OK) {
        cf_patchplan_free(p);
        return rc;
    }
    *out = p;
    return CF_OK;
}

int cf_patchplan_touches(const cf_patchplan *p, const char *name)
{
    return p != NULL && name != NULL && member_find(p, name) >= 0;
}

size_t cf_patchplan_count(const cf_patchplan *p)
{
    return p != NULL ? p->nmem : 0;
}

const char *cf_patchplan_name(const cf_patchplan *p, size_t i)
{
    return p != NULL && i < p->nmem ? p->mem[i].name : NULL;
}

int cf_patchplan_exists_after(const cf_patchplan *p, const char *name, int exists_before)
{
    long m = p != NULL && name != NULL ? member_find(p, name) : -1;
    int ex = exists_before != 0;
    for (size_t s = m >= 0 ? p->mem[m].head : NONE; s != NONE; s = p->st[s].next) {
        if (p->st[s].kind == ST_BLOCK)
            ex = 1;
        else if (p->st[s].kind == ST_UNLINK)
            ex = 0;
    }
    return ex;
}

int cf_patchplan_ready(const cf_patchplan *p, const char *name)
{
    long m = p != NULL && name != NULL ? member_find(p, name) : -1;
    for (size_t s = m >= 0 ? p->mem[m].head : NONE; s != NONE; s = p->st[s].next)
        if (p->st[s].kind == ST_MOVE_IN && p->mem[p->mv[p->st[s].move].src].state != M_DONE)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- streaming */

/* Bytes without an index (fed bytes, trailing ADDs, moved lines) are indexed
 * in pieces of at most PIECE bytes before they enter the stages; the index of
 * a piece has at most PIECE entries. */
#define PIECE (16 * 1024)

/* Bytes handed from one stage to the next, with where their newlines are:
 * nl[0..nnl) are offsets from base, ascending. Sub-spans of a span share its
 * index, so a piece is searched for newlines once, however many stages it
 * passes: a stage jumps to its next edited line by index and hands on the
 * lines before it whole. */
typedef struct span {
    const uint8_t *p, *base;
    size_t n;
    const uint32_t *nl;
    size_t nnl;
} span;

typedef struct run {
    const pstage *st;
    int in_exists, out_exists;
    span in;             /* pending input; in.p advances as it is used */
    uint64_t seen, sent; /* bytes taken in and handed on */
    uint8_t last;        /* last byte taken in */
    size_t line;         /* 1-based line of the input being read */
    size_t col;          /* bytes of that line read so far (edited and moved lines only) */
    size_t k;            /* next edit (ST_BLOCK) */
} run;

struct cf_memberpatch {
    cf_patchplan *p;
    long m; /* -1: a name the chain does not touch */
    cf_sink out;
    run *r;
    size_t nst;
    uint32_t *idx; /* the index of the piece being driven, PIECE entries */
    int exists, failed, ended;
};

/* Where the newlines of p[0..n) are, as offsets from p; returns how many.
 * Signature lines are short (tens of bytes), so one memchr call per line
 * costs more than the search itself: with SSE2 (every x86-64) 64 bytes are
 * compared at a time and the newlines read off a bit mask. */
static size_t index_lines(const uint8_t *p, size_t n, uint32_t *out)
{
    size_t k = 0, i = 0;
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n');
    for (; i + 64 <= n; i += 64) {
        uint64_t m = 0;
        for (int j = 0; j < 4; j++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16 * (size_t)j));
            m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) << (16 * j);
        }
        for (; m != 0; m &= m - 1)
            out[k++] = (uint32_t)(i + (size_t)__builtin_ctzll(m));
    }
#endif
    for (const uint8_t *q = p + i, *end = p + n; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        out[k++] = (uint32_t)(q - p);
    return k;
}

static void take(run *r, const span *s)
{
    r->in = *s;
    r->seen += s->n;
    r->last = s->p[s->n - 1];
}

/* Uses up the first len bytes of the pending input, which hold k newlines. */
static void drop(run *r, size_t len, size_t k)
{
    r->in.p += len;
    r->in.n -= len;
    r->in.nl += k;
    r->in.nnl -= k;
    r->line += k;
}

/* Hands on the first len bytes of the pending input, which hold k newlines. */
static void pass(run *r, size_t len, size_t k, span *out)
{
    *out = (span){r->in.p, r->in.base, len, r->in.nl, k};
    drop(r, len, k);
}

/* Hands on the pending input up to the start of line target (or all of it). */
static void pass_lines(run *r, size_t target, span *out)
{
    size_t need = target - r->line;
    if (need <= r->in.nnl)
        pass(r, (size_t)(r->in.base + r->in.nl[need - 1] + 1 - r->in.p), need, out);
    else
        pass(r, r->in.n, r->in.nnl, out);
}

/* The pending input's next newline, or NULL when the rest is part of one line. */
static const uint8_t *next_nl(const run *r)
{
    return r->in.nnl > 0 ? r->in.base + r->in.nl[0] : NULL;
}

/* Whether n bytes at column col of a line agree with a prefix (the part of
 * the prefix they overlap), and, when the line ends after them, cover it. */
static int prefix_agrees(const uint8_t *pre, size_t plen, size_t col, const uint8_t *s, size_t n, int ends)
{
    if (col < plen) {
        size_t m = plen - col < n ? plen - col : n;
        if (memcmp(s, pre + col, m) != 0)
            return 0;
    }
    return !ends || col + n >= plen;
}

static const char *member_name(const cf_memberpatch *mp)
{
    return mp->p->mem[mp->m].name;
}

static cf_code step_block(cf_memberpatch *mp, run *r, span *out, cf_err *e)
{
    const cf_patchplan *p = mp->p;
    const pstage *st = r->st;
    while (r->in.n > 0) {
        if (r->k >= st->ned) {
            pass(r, r->in.n, r->in.nnl, out);
            return CF_OK;
        }
        const pedit *x = &p->ed[st->ed0 + r->k];
        if (r->line < x->line) {
            pass_lines(r, x->line, out);
            return CF_OK;
        }
        const uint8_t *nl = next_nl(r);
        size_t seg = nl ? (size_t)(nl - r->in.p) : r->in.n;
        if (!prefix_agrees(p->text.p + x->poff, x->plen, r->col, r->in.p, seg, nl != NULL))
            return stage_fail(
                p, st, CF_EFORMAT, e,
                "CLOSE %s: %s of line %zu (script line %zu): the line does not start with '%.*s'",
                member_name(mp), x->del ? "DEL" : "XCHG", x->line, x->sline,
                (int)(x->plen > 60 ? 60 : x->plen), (const char *)p->text.p + x->poff);
        if (nl == NULL) {
            r->col += seg;
            drop(r, seg, 0);
            break;
        }
        drop(r, seg + 1, 1);
        r->col = 0;
        r->k++;
        if (!x->del) {
            *out = (span){p->text.p + x->roff, p->text.p + x->roff, x->rlen, &x->nlo, 1};
            return CF_OK;
        }
    }
    out->n = 0;
    return CF_OK;
}

static cf_code step_move_out(cf_memberpatch *mp, run *r, span *out, cf_err *e)
{
    cf_patchplan *p = mp->p;
    pmove *mv = &p->mv[r->st->move];
    while (r->in.n > 0) {
        if (r->line > mv->to) {
            pass(r, r->in.n, r->in.nnl, out);
            return CF_OK;
        }
        if (r->line < mv->from) {
            pass_lines(r, mv->from, out);
            return CF_OK;
        }
        const uint8_t *nl = next_nl(r);
        size_t seg = nl ? (size_t)(nl - r->in.p) : r->in.n, len = seg + (nl != NULL);
        int bad1 = r->line == mv->from &&
                   !prefix_agrees(p->text.p + mv->p1off, mv->p1len, r->col, r->in.p, seg, nl != NULL);
        int bad2 = r->line == mv->to &&
                   !prefix_agrees(p->text.p + mv->p2off, mv->p2len, r->col, r->in.p, seg, nl != NULL);
        if (bad1 || bad2)
            return stage_fail(
                p, r->st, CF_EFORMAT, e, "MOVE %s: line %zu does not start with '%.*s'", member_name(mp),
                r->line, (int)((bad1 ? mv->p1len : mv->p2len) > 60 ? 60 : (bad1 ? mv->p1len : mv->p2len)),
                (const char *)p->text.p + (bad1 ? mv->p1off : mv->p2off));
        if (len > CF_MAX_MOVE_BYTES - p->held)
            return stage_fail(
                p, r->st, CF_ETOOBIG, e,
                "MOVE %s %s: more than %lu bytes of moved lines would wait for their destination",
                member_name(mp), p->mem[mv->dst].name, (unsigned long)CF_MAX_MOVE_BYTES);
        if (cf_buf_append(&mv->data, r->in.p, len) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        p->held += len;
        if (nl != NULL) {
            drop(r, len, 1);
            r->col = 0;
        } else {
            r->col += seg;
            drop(r, len, 0);
        }
    }
    out->n = 0;
    return CF_OK;
}

/* Hands on one span of stage r's output, consuming its input; out->n == 0
 * once the pending input is used up. */
static cf_code step(cf_memberpatch *mp, run *r, span *out, cf_err *e)
{
    switch (r->st->kind) {
    case ST_BLOCK:
        return step_block(mp, r, out, e);
    case ST_MOVE_OUT:
        return step_move_out(mp, r, out, e);
    case ST_UNLINK:
        drop(r, r->in.n, r->in.nnl);
        out->n = 0;
        return CF_OK;
    default: /* ST_MOVE_IN: the destination passes through until its end */
        pass(r, r->in.n, r->in.nnl, out);
        return CF_OK;
    }
}

/* Runs an indexed span through stages lvl.. and into the sink, depth first:
 * a stage takes new input only once the stages after it used up what it
 * handed on, so a span (and the index it shares) is never needed later. */
static cf_code drive(cf_memberpatch *mp, size_t lvl, const span *s, cf_err *e)
{
    if (s->n == 0)
        return CF_OK;
    if (lvl == mp->nst)
        return cf_sink_write(&mp->out, s->p, s->n, e);
    take(&mp->r[lvl], s);
    size_t i = lvl;
    for (;;) {
        run *r = &mp->r[i];
        if (r->in.n == 0) {
            if (i == lvl)
                return CF_OK;
            i--;
            continue;
        }
        span o = {0};
        cf_code rc = step(mp, r, &o, e);
        if (rc != CF_OK)
            return rc;
        if (o.n == 0)
            continue;
        r->sent += o.n;
        if (i + 1 == mp->nst) {
            rc = cf_sink_write(&mp->out, o.p, o.n, e);
            if (rc != CF_OK)
                return rc;
        } else {
            take(&mp->r[i + 1], &o);
            i++;
        }
    }
}

/* Runs n bytes without an index through stages lvl.., indexing them a piece
 * at a time into mp->idx. */
static cf_code drive_bytes(cf_memberpatch *mp, size_t lvl, const uint8_t *p, size_t n, cf_err *e)
{
    if (n == 0)
        return CF_OK;
    if (lvl == mp->nst)
        return cf_sink_write(&mp->out, p, n, e);
    if (mp->idx == NULL && (mp->idx = malloc(PIECE * sizeof(*mp->idx))) == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    while (n > 0) {
        size_t k = n < PIECE ? n : PIECE;
        span s = {p, p, k, mp->idx, index_lines(p, k, mp->idx)};
        cf_code rc = drive(mp, lvl, &s, e);
        if (rc != CF_OK)
            return rc;
        p += k;
        n -= k;
    }
    return CF_OK;
}

/* The checks and the trailing output of a stage at the end of its input. */
static cf_code stage_end(cf_memberpatch *mp, run *r, const uint8_t **op, size_t *on, cf_err *e)
{
    cf_patchplan *p = mp->p;
    const pstage *st = r->st;
    const char *name = member_name(mp);
    *on = 0;
    if (st->kind == ST_BLOCK) {
        if (st->ned > 0 && r->seen > 0 && r->last != '\n')
            return stage_fail(p, st, CF_EFORMAT, e, "CLOSE %s: the file has no final newline", name);
        if (r->k < st->ned) {
            const pedit *x = &p->ed[st->ed0 + r->k];
            return stage_fail(p, st, CF_EFORMAT, e,
                              "CLOSE %s: %s of line %zu (script line %zu) is past the end of the file (%zu "
                              "lines)",
                              name, x->del ? "DEL" : "XCHG", x->line, x->sline, r->line - 1);
        }
        if (st->alen > 0) {
            if (st->ned == 0 && r->seen > 0 && r->last != '\n')
                return stage_fail(p, st, CF_EFORMAT, e,
                                  "CLOSE %s: cannot add lines: the file does not end with a newline", name);
            if (r->sent + st->alen > CF_MAX_DB_BYTES)
                return stage_fail(p, st, CF_ETOOBIG, e, "CLOSE %s: the file would exceed %lu bytes", name,
                                  (unsigned long)CF_MAX_DB_BYTES);
            *op = p->adds.p + st->aoff;
            *on = st->alen;
        }
    } else if (st->kind == ST_MOVE_OUT) {
        const pmove *mv = &p->mv[st->move];
        if (r->line <= mv->to)
            return stage_fail(p, st, CF_EFORMAT, e, "MOVE %s: no complete line %zu", name,
                              r->line <= mv->from ? mv->from : mv->to);
    } else if (st->kind == ST_MOVE_IN) {
        const pmove *mv = &p->mv[st->move];
        if (r->seen > 0 && r->last != '\n')
            return stage_fail(p, st, CF_EFORMAT, e, "MOVE: destination %s does not end with a newline", name);
        if (!mv->filled)
            return stage_fail(p, st, CF_EINVAL, e, "MOVE %s %s: the source has not been streamed yet",
                              p->mem[mv->src].name, name);
        *op = mv->data.p;
        *on = mv->data.n;
    }
    return CF_OK;
}

static cf_code member_fail(cf_memberpatch *mp, cf_code rc)
{
    mp->failed = 1;
    if (mp->m >= 0)
        mp->p->mem[mp->m].state = M_FAILED;
    return rc;
}

/* Whether the member exists where each stage needs it, from the scripts alone. */
static cf_code check_existence(cf_memberpatch *mp, cf_err *e)
{
    const cf_patchplan *p = mp->p;
    const char *name = member_name(mp);
    int ex = mp->exists;
    for (size_t i = 0; i < mp->nst; i++) {
        run *r = &mp->r[i];
        const pstage *st = r->st;
        r->in_exists = ex;
        if (st->kind == ST_BLOCK) {
            if (st->ned > 0 && !ex)
                return stage_fail(p, st, CF_ENOTFOUND, e,
                                  "CLOSE %s: the file does not exist, so its lines cannot be edited", name);
            ex = 1;
        } else if (!ex) {
            return stage_fail(p, st, CF_ENOTFOUND, e, "%s: %s%s does not exist",
                              st->kind == ST_UNLINK ? "UNLINK" : "MOVE",
                              st->kind == ST_MOVE_OUT  ? "source "
                              : st->kind == ST_MOVE_IN ? "destination "
                                                       : "",
                              name);
        } else if (st->kind == ST_UNLINK) {
            ex = 0;
        }
        r->out_exists = ex;
    }
    return CF_OK;
}

cf_code cf_memberpatch_new(cf_patchplan *p, const char *name, int exists, const cf_sink *out,
                           cf_memberpatch **mpp, cf_err *e)
{
    if (p == NULL || name == NULL || out == NULL || out->write == NULL || mpp == NULL)
        return cf_err_set(e, CF_EINVAL, "member patch: missing argument");
    *mpp = NULL;
    long m = member_find(p, name);
    if (m >= 0 && p->mem[m].state != M_IDLE)
        return cf_err_set(e, CF_EINVAL, "%s: already streamed through this patch plan", name);
    if (m >= 0 && !cf_patchplan_ready(p, name))
        return cf_err_set(e, CF_EINVAL, "%s: a MOVE source feeding it has not been streamed yet", name);
    cf_memberpatch *mp = calloc(1, sizeof(*mp));
    size_t nst = m >= 0 ? p->mem[m].nst : 0;
    if (mp == NULL || (nst > 0 && (mp->r = calloc(nst, sizeof(run))) == NULL)) {
        free(mp);
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    mp->p = p;
    mp->m = m;
    mp->out = *out;
    mp->nst = nst;
    mp->exists = exists != 0;
    size_t i = 0;
    for (size_t s = m >= 0 ? p->mem[m].head : NONE; s != NONE; s = p->st[s].next, i++) {
        mp->r[i].st = &p->st[s];
        mp->r[i].line = 1;
    }
    if (m >= 0) {
        p->mem[m].state = M_RUNNING;
        cf_code rc = check_existence(mp, e);
        if (rc != CF_OK) {
            member_fail(mp, rc);
            cf_memberpatch_free(mp);
            return rc;
        }
    }
    *mpp = mp;
    return CF_OK;
}

cf_code cf_memberpatch_feed(cf_memberpatch *mp, const uint8_t *p, size_t n, cf_err *e)
{
    if (mp == NULL || (p == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "member patch: missing argument");
    if (mp->failed || mp->ended)
        return cf_err_set(e, CF_EINVAL, "member patch: fed after %s", mp->failed ? "a failure" : "its end");
    if (n > 0 && !mp->exists)
        return member_fail(mp, cf_err_set(e, CF_EINVAL, "%s: bytes fed for a member said not to exist",
                                          mp->m >= 0 ? member_name(mp) : "member"));
    cf_code rc = drive_bytes(mp, 0, p, n, e);
    return rc == CF_OK ? rc : member_fail(mp, rc);
}

cf_code cf_memberpatch_end(cf_memberpatch *mp, int *exists_after, cf_err *e)
{
    if (mp == NULL)
        return cf_err_set(e, CF_EINVAL, "member patch: missing argument");
    if (mp->failed || mp->ended)
        return cf_err_set(e, CF_EINVAL, "member patch: ended after %s", mp->failed ? "a failure" : "its end");
    cf_patchplan *p = mp->p;
    for (size_t i = 0; i < mp->nst; i++) {
        run *r = &mp->r[i];
        const uint8_t *op = NULL;
        size_t on = 0;
        cf_code rc = stage_end(mp, r, &op, &on, e);
        if (rc == CF_OK) {
            r->sent += on;
            rc = drive_bytes(mp, i + 1, op, on, e);
        }
        if (rc != CF_OK)
            return member_fail(mp, rc);
        if (r->st->kind == ST_MOVE_IN) {
            pmove *mv = &p->mv[r->st->move];
            p->held -= mv->data.n;
            cf_buf_free(&mv->data);
        }
    }
    mp->ended = 1;
    if (mp->m >= 0) {
        for (size_t i = 0; i < mp->nst; i++)
            if (mp->r[i].st->kind == ST_MOVE_OUT)
                p->mv[mp->r[i].st->move].filled = 1;
        p->mem[mp->m].state = M_DONE;
    }
    if (exists_after != NULL)
        *exists_after = mp->nst > 0 ? mp->r[mp->nst - 1].out_exists : mp->exists;
    return CF_OK;
}

void cf_memberpatch_free(cf_memberpatch *mp)
{
    if (mp == NULL)
        return;
    free(mp->r);
    free(mp->idx);
    free(mp);
}
