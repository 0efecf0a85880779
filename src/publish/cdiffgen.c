/* Publishing cdiffs (formats.md §6): the script that turns one database image
 * into another, and the signed container around a script. cvdtool's side of
 * cdiff.h; the updater only reads cdiffs (cdiff.c in the format layer). */
#include "clamfresh/cdiff.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clamfresh/dsig.h"
#include "clamfresh/gz.h"
#include "clamfresh/limits.h"
#include "cdiff_syntax_priv.h"

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

/* ---------------------------------------------------------------------- build */

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
