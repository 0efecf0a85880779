/* One pass from the local database to the staged CLD (dbpatch.h).
 *
 *   in_fd ─► header ─► [gunzip] ─► tar reader ─┬─► SHA-256 ─► old manifest check
 *                                              └─► patch filter (touched members)
 *                                                  or copy ─► SHA-256 ─► tar writer ─► out_fd
 *                                                                      └─► new manifest check
 *
 * A member the chain does not touch is hashed once: its input and output bytes
 * are the same. Tar headers are written as placeholders and filled in when the
 * member's size is known, so patched members never need to be held whole. */
#include "clamfresh/dbpatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/tarball.h"
#include "clamfresh/dsig.h"
#include "clamfresh/fileio.h"
#include "clamfresh/info.h"
#include "clamfresh/limits.h"
#include "rehash_priv.h"

#define IOBUF (1024 * 1024)

/* ------------------------------------------------------------ buffered output */

/* Sequential writes through a buffer, with pwrite for the headers filled in
 * afterwards; a rewind drops a member that the chain removed. */
typedef struct outw {
    int fd;
    uint64_t off; /* file offset of buf[0] */
    uint8_t *buf;
    size_t n;
    uint64_t kicked; /* writeback was started for [0, kicked) */
} outw;

/* Writeback is started every WRITEBACK_STEP bytes, so the disk works while the
 * rest of the database streams and the caller's fsync waits only for the
 * tail: without it that fsync would write the whole file after the stream
 * (as long again as the stream itself on a 164 MiB CLD). */
#define WRITEBACK_STEP (8u << 20)

static cf_code ow_flush(outw *w, cf_err *e)
{
    size_t done = 0;
    while (done < w->n) {
        ssize_t k = pwrite(w->fd, w->buf + done, w->n - done, (off_t)(w->off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return cf_err_set(e, CF_EIO, "write failed: %s", k < 0 ? strerror(errno) : "no progress");
        done += (size_t)k;
    }
    w->off += w->n;
    w->n = 0;
    if (w->off - w->kicked >= WRITEBACK_STEP) {
        /* Only a hint: durability is the caller's fsync, so a failure here
         * (a file system without it) changes nothing. */
        (void)sync_file_range(w->fd, (off_t)w->kicked, (off_t)(w->off - w->kicked), SYNC_FILE_RANGE_WRITE);
        w->kicked = w->off;
    }
    return CF_OK;
}

static cf_code ow_write(outw *w, const uint8_t *p, size_t n, cf_err *e)
{
    while (n > 0) {
        if (w->n == IOBUF) {
            cf_code rc = ow_flush(w, e);
            if (rc != CF_OK)
                return rc;
        }
        size_t k = IOBUF - w->n < n ? IOBUF - w->n : n;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        n -= k;
    }
    return CF_OK;
}

static uint64_t ow_pos(const outw *w)
{
    return w->off + w->n;
}

/* Writes n bytes at an earlier position (a tar header). */
static cf_code ow_patch(outw *w, const uint8_t *p, size_t n, uint64_t at, cf_err *e)
{
    if (at >= w->off && at + n <= w->off + w->n) {
        memcpy(w->buf + (at - w->off), p, n);
        return CF_OK;
    }
    cf_code rc = ow_flush(w, e);
    if (rc != CF_OK)
        return rc;
    if (pwrite(w->fd, p, n, (off_t)at) != (ssize_t)n)
        return cf_err_set(e, CF_EIO, "write failed: %s", strerror(errno));
    return CF_OK;
}

/* Forgets everything written from pos on (it is overwritten or truncated later). */
static void ow_rewind(outw *w, uint64_t pos)
{
    if (pos >= w->off) {
        w->n = (size_t)(pos - w->off);
    } else {
        w->off = pos;
        w->n = 0;
    }
    if (w->kicked > pos)
        w->kicked = pos;
}

/* ---------------------------------------------------------- names seen once */

typedef struct nameset {
    char **slot;
    size_t cap, n;
} nameset;

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603UL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211UL;
    return h;
}

static int nameset_has(const nameset *s, const char *name)
{
    if (s->cap == 0)
        return 0;
    for (size_t i = name_hash(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == NULL)
            return 0;
        if (strcmp(s->slot[i], name) == 0)
            return 1;
    }
}

static cf_code nameset_add(nameset *s, const char *name, cf_err *e)
{
    if (nameset_has(s, name))
        return CF_OK;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **slot = calloc(cap, sizeof *slot);
        if (slot == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slot[i] == NULL)
                continue;
            size_t j = name_hash(s->slot[i]) & (cap - 1);
            while (slot[j] != NULL)
                j = (j + 1) & (cap - 1);
            slot[j] = s->slot[i];
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    size_t j = name_hash(name) & (s->cap - 1);
    while (s->slot[j] != NULL)
        j = (j + 1) & (s->cap - 1);
    s->slot[j] = copy;
    s->n++;
    return CF_OK;
}

static void nameset_free(nameset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ----------------------------------------------------------------- the pass */

typedef struct deferred {
    char name[CF_MAX_NAME + 1];
    char path[4096];
    int done;
} deferred;

/* A member whose output hash the hashing thread computes: its index in the
 * new manifest check and its job there. */
typedef struct later {
    size_t member;
    long job;
} later;

/* Edited members from this size on are hashed on the second thread (smaller
 * ones are not worth the hand-over). */
#define REHASH_MIN (1024 * 1024)

typedef struct run {
    const cf_dbpatch_opts *o;
    cf_patchplan *plan;
    outw w;
    cf_mcheck *oldm, *newm;
    EVP_MD_CTX *insha, *outsha;
    cf_dbpatch_fault fault;
    unsigned members;     /* input members begun */
    unsigned out_members; /* members written */

    /* the input member streaming now */
    char name[CF_MAX_NAME + 1];
    uint64_t in_size;
    int is_info, touched, spool_fd;
    const cf_info_entry *trusted; /* from a trusted base, its manifest entry stands in for the input hash */
    cf_buf old_info;

    /* the output member being written */
    uint64_t hdr_at, out_size;
    cf_memberpatch *mp;
    cf_buf new_info;
    char new_info_name[CF_MAX_NAME + 1];
    cf_buf result_info; /* the .info the result carries, for its header */

    nameset seen;
    deferred *defer;
    size_t ndefer;

    cf_rehash *rh;   /* the hashing thread, started at the first large edited member */
    int rh_failed;   /* no thread could be had: hash inline */
    int hash_later;  /* the member being written is hashed by rh */
    long later_idx;  /* its index there */
    uint64_t fed_to; /* its bytes before this file offset are handed over */
    later *laters;
    size_t nlaters;
} run;

static int ends_with_info(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcasecmp(name + n - 5, ".info") == 0;
}

static cf_code fail(run *r, cf_dbpatch_fault f, cf_code rc)
{
    if (r->fault == CF_DBPATCH_NONE)
        r->fault = f;
    return rc;
}

static cf_code capture(cf_buf *b, const uint8_t *p, size_t n, const char *name, cf_err *e)
{
    if (n > CF_MAX_INFO_BYTES - b->n)
        return cf_err_set(e, CF_ETOOBIG, "%s: a manifest of more than %lu bytes", name, CF_MAX_INFO_BYTES);
    if (cf_buf_append(b, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    return CF_OK;
}

/* The sink the patch filter writes into: hash, count, keep a manifest, write. */
static cf_code out_sink(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    run *r = arg;
    if (n == 0)
        return CF_OK;
    if (r->out_size + n > CF_MAX_DB_BYTES)
        return fail(
            r, CF_DBPATCH_PATCH,
            cf_err_set(e, CF_ETOOBIG, "%s: the patched member exceeds %lu bytes", r->name, CF_MAX_DB_BYTES));
    if (ends_with_info(r->name)) {
        cf_code rc = capture(&r->new_info, p, n, r->name, e);
        if (rc != CF_OK)
            return fail(r, CF_DBPATCH_PATCH, rc);
    }
    if (!r->hash_later)
        EVP_DigestUpdate(r->outsha, p, n);
    r->out_size += n;
    cf_code rc = ow_write(&r->w, p, n, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_IO, rc);
    if (r->hash_later && r->w.off > r->fed_to) {
        /* What the writer flushed is in the file: the thread may read it. */
        cf_rehash_feed(r->rh, r->fed_to, r->w.off - r->fed_to);
        r->fed_to = r->w.off;
    }
    return CF_OK;
}

static cf_code out_begin(run *r, cf_err *e)
{
    static const uint8_t zero[512];
    r->hdr_at = ow_pos(&r->w);
    r->out_size = 0;
    r->new_info.n = 0;
    EVP_DigestInit_ex(r->outsha, EVP_sha256(), NULL);
    cf_code rc = ow_write(&r->w, zero, sizeof zero, e);
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_IO, rc);
}

/* Fills in the member's header and padding, and hands it to the new manifest. */
static cf_code out_end(run *r, const uint8_t digest[32], cf_err *e)
{
    static const uint8_t zero[512];
    uint8_t hdr[512];
    if (++r->out_members > CF_MAX_MEMBERS)
        return fail(
            r, CF_DBPATCH_PATCH,
            cf_err_set(e, CF_ETOOBIG, "the patched database has more than %d members", CF_MAX_MEMBERS));
    cf_code rc = cf_tar_header_make(r->name, r->out_size, hdr, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_PATCH, rc);
    rc = ow_patch(&r->w, hdr, sizeof hdr, r->hdr_at, e);
    if (rc == CF_OK)
        rc = ow_write(&r->w, zero, cf_tar_pad(r->out_size), e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_IO, rc);
    rc = cf_mcheck_member(r->newm, r->name, r->out_size, digest, e);
    if (rc == CF_OK && ends_with_info(r->name)) {
        rc = cf_mcheck_info(r->newm, r->name, r->new_info.p, r->new_info.n, e);
        if (rc == CF_OK) {
            snprintf(r->new_info_name, sizeof r->new_info_name, "%s", r->name);
            rc = cf_buf_set(&r->result_info, r->new_info.p ? r->new_info.p : (const uint8_t *)"",
                            r->new_info.n);
        }
    }
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_PATCH, rc);
}

/* A touched member through its patch filter; data comes from the input stream
 * (fed by the caller) or, for a deferred member, from its spool file. */
static cf_code patched_begin(run *r, int exists, uint64_t size_hint, cf_err *e)
{
    r->hash_later = 0;
    if (exists && size_hint >= REHASH_MIN && !ends_with_info(r->name) && !r->rh_failed) {
        cf_err ignored = {0};
        if (r->rh == NULL && (r->rh = cf_rehash_new(r->w.fd, &ignored)) == NULL)
            r->rh_failed = 1;
        r->hash_later = r->rh != NULL && r->nlaters < CF_MAX_MEMBERS;
    }
    cf_code rc = out_begin(r, e);
    if (rc == CF_OK && r->hash_later) {
        r->fed_to = r->hdr_at + 512;
        if ((r->later_idx = cf_rehash_begin(r->rh, e)) < 0)
            rc = fail(r, CF_DBPATCH_PATCH, e->code);
    }
    if (rc != CF_OK)
        return rc;
    cf_sink s = {out_sink, r};
    rc = cf_memberpatch_new(r->plan, r->name, exists, &s, &r->mp, e);
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_PATCH, rc);
}

/* Hands the member's bytes, written out, to the hashing thread; the new
 * manifest check gets a placeholder digest now and the real one in
 * settle_laters, before its verdict. */
static cf_code later_end(run *r, cf_err *e)
{
    static const uint8_t unknown[32];
    if (r->laters == NULL && (r->laters = calloc(CF_MAX_MEMBERS, sizeof *r->laters)) == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    cf_code rc = ow_flush(&r->w, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_IO, rc);
    cf_rehash_feed(r->rh, r->fed_to, r->hdr_at + 512 + r->out_size - r->fed_to);
    cf_rehash_end(r->rh, 1);
    r->hash_later = 0;
    rc = out_end(r, unknown, e);
    if (rc != CF_OK)
        return rc;
    r->laters[r->nlaters++] = (later){cf_mcheck_count(r->newm) - 1, r->later_idx};
    return CF_OK;
}

/* Waits for the hashing thread and gives the new manifest check its digests. */
static cf_code settle_laters(run *r, cf_err *e)
{
    if (r->nlaters == 0)
        return CF_OK;
    cf_code rc = cf_rehash_wait(r->rh, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_IO, rc);
    for (size_t i = 0; i < r->nlaters && rc == CF_OK; i++)
        rc = cf_mcheck_set_digest(r->newm, r->laters[i].member, cf_rehash_digest(r->rh, r->laters[i].job), e);
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_PATCH, rc);
}

static cf_code patched_end(run *r, cf_err *e)
{
    int exists_after = 0;
    cf_code rc = cf_memberpatch_end(r->mp, &exists_after, e);
    cf_memberpatch_free(r->mp);
    r->mp = NULL;
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_PATCH, rc);
    if (!exists_after) {
        if (r->hash_later) {
            cf_rehash_end(r->rh, 0);
            r->hash_later = 0;
        }
        ow_rewind(&r->w, r->hdr_at);
        return CF_OK;
    }
    if (r->hash_later)
        return later_end(r, e);
    uint8_t d[32];
    EVP_DigestFinal_ex(r->outsha, d, NULL);
    return out_end(r, d, e);
}

static cf_code spool_open(run *r, cf_err *e)
{
    deferred *d = realloc(r->defer, (r->ndefer + 1) * sizeof *d);
    if (d == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    r->defer = d;
    d = &r->defer[r->ndefer];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", r->name);
    snprintf(d->path, sizeof d->path, "%s/member-%zu.spool", r->o->spooldir, r->ndefer);
    r->spool_fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (r->spool_fd < 0)
        return fail(r, CF_DBPATCH_IO, cf_err_set(e, CF_EIO, "Can't create %s: %s", d->path, strerror(errno)));
    r->ndefer++;
    return CF_OK;
}

/* ------------------------------------------------------- tar reader callbacks */

static cf_code m_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    run *r = arg;
    if (r->members++ == 0 && strcmp(name, "COPYING") != 0)
        return fail(r, CF_DBPATCH_BASE,
                    cf_err_set(e, CF_EFORMAT, "the first member is '%s', not COPYING as a CLD needs", name));
    snprintf(r->name, sizeof r->name, "%s", name);
    r->in_size = 0;
    r->old_info.n = 0;
    r->is_info = ends_with_info(name);
    r->touched = cf_patchplan_touches(r->plan, name);
    r->spool_fd = -1;
    r->trusted = NULL;
    if (r->o->base_trusted && !r->is_info) {
        /* The recent full verification vouched for these input bytes, so
         * hashing them again proves nothing new. A member the chain edits is
         * still gated by the hash of its output against the new manifest.
         * One it leaves as it was is copied unhashed only when the new
         * manifest names the same bytes: both manifests are known by now
         * when the .info came early, as ClamAV orders members. */
        const cf_info_entry *was = cf_mcheck_expect(r->oldm, name);
        const cf_info_entry *now = r->touched ? was : cf_mcheck_expect(r->newm, name);
        if (was != NULL && now != NULL && was->size == size && now->size == size &&
            memcmp(was->sha256, now->sha256, 32) == 0)
            r->trusted = now;
    }
    if (r->trusted == NULL)
        EVP_DigestInit_ex(r->insha, EVP_sha256(), NULL);
    if (!r->touched)
        return out_begin(r, e);
    cf_code rc = nameset_add(&r->seen, name, e);
    if (rc != CF_OK)
        return rc;
    if (!cf_patchplan_ready(r->plan, name))
        return spool_open(r, e);
    return patched_begin(r, 1, size, e);
}

static cf_code m_data(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    run *r = arg;
    if (r->trusted == NULL)
        EVP_DigestUpdate(r->insha, p, n);
    r->in_size += n;
    cf_code rc;
    if (r->is_info && (rc = capture(&r->old_info, p, n, r->name, e)) != CF_OK)
        return fail(r, CF_DBPATCH_BASE, rc);
    if (r->spool_fd >= 0) {
        rc = cf_fd_write_all(r->spool_fd, p, n, e);
        return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_IO, rc);
    }
    if (r->touched) {
        rc = cf_memberpatch_feed(r->mp, p, n, e);
        return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_PATCH, rc);
    }
    /* Copied through: the input hash will serve as the output hash. */
    if (r->is_info && (rc = capture(&r->new_info, p, n, r->name, e)) != CF_OK)
        return fail(r, CF_DBPATCH_BASE, rc);
    r->out_size += n;
    rc = ow_write(&r->w, p, n, e);
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_IO, rc);
}

static cf_code m_end(void *arg, cf_err *e)
{
    run *r = arg;
    uint8_t d[32];
    if (r->trusted != NULL)
        memcpy(d, r->trusted->sha256, 32);
    else
        EVP_DigestFinal_ex(r->insha, d, NULL);
    cf_code rc = cf_mcheck_member(r->oldm, r->name, r->in_size, d, e);
    if (rc == CF_OK && r->is_info)
        rc = cf_mcheck_info(r->oldm, r->name, r->old_info.p, r->old_info.n, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_BASE, rc);
    if (r->spool_fd >= 0) {
        int fd = r->spool_fd;
        r->spool_fd = -1;
        if (close(fd) != 0)
            return fail(r, CF_DBPATCH_IO, cf_err_set(e, CF_EIO, "spool write failed: %s", strerror(errno)));
        return CF_OK;
    }
    if (r->touched)
        return patched_end(r, e);
    return out_end(r, d, e);
}

/* ------------------------------------------------------------- input side */

typedef struct input {
    run *r;
    cf_tarin *tar;
    cf_gzin *gz;
} input;

static cf_code to_tar(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    return cf_tarin_feed(arg, p, n, e);
}

static ssize_t read_some(int fd, uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t k = read(fd, p, n);
        if (k >= 0 || errno != EINTR)
            return k;
    }
}

static ssize_t pread_some(int fd, uint8_t *p, size_t n, off_t off)
{
    for (;;) {
        ssize_t k = pread(fd, p, n, off);
        if (k >= 0 || errno != EINTR)
            return k;
    }
}

/* A database body as a stream of tar members: plain when it starts with
 * COPYING (formats.md §2.1), else one gzip member. */
typedef struct body {
    cf_tarin *tar;
    cf_gzin *gz;
} body;

static cf_code body_new(body *b, const cf_tarin_ops *ops, const uint8_t *first, size_t nfirst, cf_err *e)
{
    memset(b, 0, sizeof *b);
    cf_code rc = cf_tarin_new(ops, &b->tar, e);
    if (rc == CF_OK && !(nfirst >= 7 && memcmp(first, "COPYING", 7) == 0)) {
        cf_sink s = {to_tar, b->tar};
        rc = cf_gzin_new(CF_MAX_DB_BYTES, &s, &b->gz, e);
    }
    return rc;
}

static cf_code body_feed(body *b, const uint8_t *p, size_t n, cf_err *e)
{
    return b->gz ? cf_gzin_feed(b->gz, p, n, e) : cf_tarin_feed(b->tar, p, n, e);
}

static cf_code body_end(body *b, cf_err *e)
{
    cf_code rc = b->gz ? cf_gzin_end(b->gz, e) : CF_OK;
    return rc == CF_OK ? cf_tarin_end(b->tar, e) : rc;
}

static void body_free(body *b)
{
    cf_gzin_free(b->gz);
    cf_tarin_free(b->tar);
}

/* Streams the body after the header; errors the callbacks did not attribute
 * are the local database's (a short, corrupt or hostile file). */
static cf_code read_body(run *r, int in_fd, uint8_t *buf, const uint8_t *first, size_t nfirst, cf_err *e)
{
    cf_tarin_ops ops = {m_begin, m_data, m_end, r};
    body b;
    cf_code rc = body_new(&b, &ops, first, nfirst, e);
    const uint8_t *p = first;
    size_t n = nfirst;
    while (rc == CF_OK && n > 0) {
        rc = body_feed(&b, p, n, e);
        if (rc != CF_OK)
            break;
        ssize_t k = read_some(in_fd, buf, IOBUF);
        if (k < 0) {
            rc = cf_err_set(e, CF_EIO, "read failed: %s", strerror(errno));
            break;
        }
        p = buf;
        n = (size_t)k;
    }
    if (rc == CF_OK)
        rc = body_end(&b, e);
    body_free(&b);
    if (rc != CF_OK)
        fail(r, CF_DBPATCH_BASE, rc);
    return rc;
}

/* A member a MOVE made wait, from its spool file once its sources are done. */
static cf_code replay(run *r, deferred *d, uint8_t *buf, cf_err *e)
{
    int fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fail(r, CF_DBPATCH_IO, cf_err_set(e, CF_EIO, "Can't open %s: %s", d->path, strerror(errno)));
    snprintf(r->name, sizeof r->name, "%s", d->name);
    cf_code rc = patched_begin(r, 1, 0, e);
    for (;;) {
        if (rc != CF_OK)
            break;
        ssize_t k = read_some(fd, buf, IOBUF);
        if (k < 0)
            rc = fail(r, CF_DBPATCH_IO,
                      cf_err_set(e, CF_EIO, "read of %s failed: %s", d->path, strerror(errno)));
        if (k <= 0)
            break;
        rc = cf_memberpatch_feed(r->mp, buf, (size_t)k, e);
        if (rc != CF_OK)
            fail(r, CF_DBPATCH_PATCH, rc);
    }
    close(fd);
    unlink(d->path);
    if (rc == CF_OK)
        rc = patched_end(r, e);
    d->done = 1;
    return rc;
}

static cf_code run_deferred(run *r, uint8_t *buf, cf_err *e)
{
    size_t left = r->ndefer;
    while (left > 0) {
        size_t before = left;
        for (size_t i = 0; i < r->ndefer; i++) {
            if (r->defer[i].done || !cf_patchplan_ready(r->plan, r->defer[i].name))
                continue;
            cf_code rc = replay(r, &r->defer[i], buf, e);
            if (rc != CF_OK)
                return rc;
            left--;
        }
        if (left == before)
            return fail(r, CF_DBPATCH_PATCH,
                        cf_err_set(e, CF_EUNSUPP, "members moved into each other cannot be streamed"));
    }
    return CF_OK;
}

/* Members the chain creates: touched names the input did not have. */
static cf_code run_created(run *r, cf_err *e)
{
    for (size_t i = 0; i < cf_patchplan_count(r->plan); i++) {
        const char *name = cf_patchplan_name(r->plan, i);
        if (nameset_has(&r->seen, name))
            continue;
        snprintf(r->name, sizeof r->name, "%s", name);
        cf_code rc = patched_begin(r, 0, 0, e);
        if (rc == CF_OK)
            rc = patched_end(r, e);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

/* The result's header is its manifest's first line, padded with spaces (§3.2). */
static cf_code write_header(run *r, cf_cvdhdr *h, cf_err *e)
{
    const cf_buf *info = &r->result_info;
    if (!r->new_info_name[0])
        return fail(r, CF_DBPATCH_PATCH,
                    cf_err_set(e, CF_EFORMAT, "the patched database has no .info manifest"));
    const uint8_t *nl = memchr(info->p, '\n', info->n < CF_HDR_SIZE ? info->n : CF_HDR_SIZE);
    if (nl == NULL)
        return fail(r, CF_DBPATCH_PATCH,
                    cf_err_set(e, CF_EFORMAT, "%s has no line break in its first %d bytes", r->new_info_name,
                               CF_HDR_SIZE));
    size_t len = (size_t)(nl - info->p);
    cf_code rc = cf_cvdhdr_parse_line((const char *)info->p, len, h, e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s line 1: ", r->new_info_name);
        return fail(r, CF_DBPATCH_PATCH, rc);
    }
    uint8_t hdr[CF_HDR_SIZE];
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, info->p, len);
    rc = ow_patch(&r->w, hdr, sizeof hdr, 0, e);
    return rc == CF_OK ? CF_OK : fail(r, CF_DBPATCH_IO, rc);
}

/* Is the result the database asked for, at the version planned? */
static cf_code check_identity(run *r, const cf_cvdhdr *h, cf_err *e)
{
    char want[CF_MAX_NAME + 8];
    snprintf(want, sizeof want, "%s.info", r->o->db);
    if (strcmp(r->new_info_name, want) != 0)
        return fail(r, CF_DBPATCH_PATCH,
                    cf_err_set(e, CF_ESIG, "the patched database is '%s', not %s", r->new_info_name, want));
    if (h->version != r->o->want_version)
        return fail(r, CF_DBPATCH_PATCH,
                    cf_err_set(e, CF_ESIG,
                               "the patches lead to version %u, not the version %u they are named for",
                               h->version, r->o->want_version));
    return CF_OK;
}

static cf_code finish(run *r, const cf_cvdhdr *local, cf_cvdhdr *newhdr, cf_err *e)
{
    cf_code rc = cf_mcheck_finish(r->oldm, local, r->o->verify->trust->info, 0, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_BASE, rc);
    rc = write_header(r, newhdr, e);
    if (rc == CF_OK)
        rc = ow_flush(&r->w, e) == CF_OK ? CF_OK : fail(r, CF_DBPATCH_IO, e->code);
    if (rc == CF_OK && ftruncate(r->w.fd, (off_t)ow_pos(&r->w)) != 0)
        rc = fail(r, CF_DBPATCH_IO, cf_err_set(e, CF_EIO, "truncate failed: %s", strerror(errno)));
    if (rc == CF_OK)
        rc = settle_laters(r, e);
    if (rc != CF_OK)
        return rc;
    rc = cf_mcheck_finish(r->newm, NULL, r->o->verify->trust->info, 0, e);
    if (rc != CF_OK)
        return fail(r, CF_DBPATCH_PATCH, rc);
    return check_identity(r, newhdr, e);
}

static void run_free(run *r)
{
    cf_rehash_free(r->rh);
    free(r->laters);
    cf_memberpatch_free(r->mp);
    if (r->spool_fd >= 0)
        close(r->spool_fd);
    for (size_t i = 0; i < r->ndefer; i++)
        if (!r->defer[i].done)
            unlink(r->defer[i].path);
    free(r->defer);
    nameset_free(&r->seen);
    cf_mcheck_free(r->oldm);
    cf_mcheck_free(r->newm);
    EVP_MD_CTX_free(r->insha);
    EVP_MD_CTX_free(r->outsha);
    cf_buf_free(&r->old_info);
    cf_buf_free(&r->new_info);
    cf_buf_free(&r->result_info);
    free(r->w.buf);
}

cf_code cf_dbpatch_run(const cf_dbpatch_opts *o, int in_fd, cf_patchplan *plan, int out_fd, cf_cvdhdr *newhdr,
                       cf_dbpatch_fault *fault, cf_err *e)
{
    run r = {.o = o, .plan = plan, .w = {.fd = out_fd}, .spool_fd = -1};
    *fault = CF_DBPATCH_NONE;
    uint8_t *buf = malloc(IOBUF);
    r.w.buf = malloc(IOBUF);
    r.insha = EVP_MD_CTX_new();
    r.outsha = EVP_MD_CTX_new();
    cf_code rc = CF_OK;
    if (buf == NULL || r.w.buf == NULL || r.insha == NULL || r.outsha == NULL)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = cf_mcheck_new(&r.oldm, e);
    if (rc == CF_OK)
        rc = cf_mcheck_new(&r.newm, e);

    /* The header: the local version and what its manifest must agree with. */
    cf_cvdhdr local;
    size_t got = 0;
    while (rc == CF_OK && got < IOBUF) {
        ssize_t k = read_some(in_fd, buf + got, IOBUF - got);
        if (k < 0)
            rc = fail(&r, CF_DBPATCH_BASE, cf_err_set(e, CF_EIO, "read failed: %s", strerror(errno)));
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (rc == CF_OK && got < CF_HDR_SIZE)
        rc = fail(
            &r, CF_DBPATCH_BASE,
            cf_err_set(e, CF_EFORMAT, "only %zu bytes; a database has a %d-byte header", got, CF_HDR_SIZE));
    if (rc == CF_OK && (rc = cf_cvdhdr_parse(buf, CF_HDR_SIZE, &local, e)) != CF_OK)
        fail(&r, CF_DBPATCH_BASE, rc);
    if (rc == CF_OK) {
        static const uint8_t blank[CF_HDR_SIZE];
        rc = ow_write(&r.w, blank, sizeof blank, e); /* filled in from the result's manifest */
    }
    if (rc == CF_OK) {
        /* The first chunk after the header is handed on from a copy: buf is reused. */
        uint8_t *first = malloc(got - CF_HDR_SIZE + 1);
        if (first == NULL) {
            rc = cf_err_set(e, CF_ENOMEM, "out of memory");
        } else {
            memcpy(first, buf + CF_HDR_SIZE, got - CF_HDR_SIZE);
            rc = read_body(&r, in_fd, buf, first, got - CF_HDR_SIZE, e);
            free(first);
        }
    }
    if (rc == CF_OK)
        rc = run_deferred(&r, buf, e);
    if (rc == CF_OK)
        rc = run_created(&r, e);
    if (rc == CF_OK)
        rc = finish(&r, &local, newhdr, e);
    if (rc != CF_OK)
        *fault = r.fault != CF_DBPATCH_NONE ? r.fault : CF_DBPATCH_BASE;
    free(buf);
    run_free(&r);
    return rc;
}

/* ------------------------------------------------------------ compression */

static cf_code to_fd(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    return cf_fd_write_all(*(int *)arg, p, n, e);
}

cf_code cf_dbpatch_compress(int plain_fd, int out_fd, cf_err *e)
{
    uint8_t *buf = malloc(IOBUF);
    if (buf == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    cf_code rc = CF_OK;
    if (pread(plain_fd, buf, CF_HDR_SIZE, 0) != CF_HDR_SIZE)
        rc = cf_err_set(e, CF_EIO, "read failed: %s", strerror(errno));
    if (rc == CF_OK)
        rc = cf_fd_write_all(out_fd, buf, CF_HDR_SIZE, e);
    cf_gzout *gz = NULL;
    cf_sink s = {to_fd, &out_fd};
    if (rc == CF_OK)
        rc = cf_gzout_new(9, 1, &s, &gz, e);
    for (off_t off = CF_HDR_SIZE; rc == CF_OK;) {
        ssize_t k = pread_some(plain_fd, buf, IOBUF, off);
        if (k < 0)
            rc = cf_err_set(e, CF_EIO, "read failed: %s", strerror(errno));
        if (k <= 0)
            break;
        rc = cf_gzout_feed(gz, buf, (size_t)k, e);
        off += k;
    }
    if (rc == CF_OK)
        rc = cf_gzout_end(gz, e);
    cf_gzout_free(gz);
    free(buf);
    return rc;
}

/* ------------------------------------------------------ which database is it */

typedef struct finder {
    char *out;
    size_t outsz;
    int found;
} finder;

static cf_code find_begin(void *arg, const char *name, uint64_t size, cf_err *e)
{
    finder *f = arg;
    (void)size;
    if (!ends_with_info(name))
        return CF_OK;
    snprintf(f->out, f->outsz, "%s", name);
    f->found = 1;
    /* Nothing after this header matters: stop the stream here. */
    return cf_err_set(e, CF_EUNSUPP, "found");
}

static cf_code find_data(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    (void)arg, (void)p, (void)n, (void)e;
    return CF_OK;
}

static cf_code find_end(void *arg, cf_err *e)
{
    (void)arg, (void)e;
    return CF_OK;
}

cf_code cf_dbfile_info_name(int fd, char *out, size_t outsz, cf_err *e)
{
    enum { CHUNK = 64 * 1024 };
    finder f = {out, outsz, 0};
    cf_tarin_ops ops = {find_begin, find_data, find_end, &f};
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    body b = {0};
    cf_code rc = CF_OK;
    for (off_t off = CF_HDR_SIZE; rc == CF_OK && !f.found;) {
        ssize_t k = pread_some(fd, buf, CHUNK, off);
        if (k < 0)
            rc = cf_err_set(e, CF_EIO, "read failed: %s", strerror(errno));
        if (k <= 0)
            break;
        if (b.tar == NULL)
            rc = body_new(&b, &ops, buf, (size_t)k, e);
        if (rc == CF_OK)
            rc = body_feed(&b, buf, (size_t)k, e);
        off += k;
    }
    body_free(&b);
    free(buf);
    if (f.found) {
        cf_err_clear(e);
        return CF_OK;
    }
    return rc != CF_OK ? rc : cf_err_set(e, CF_EFORMAT, "no .info member");
}
