/* A tar reader fed in pieces (formats.md §2.4-§2.6): cf_tar_read's rules and
 * messages, with the header checks it shares with tarball.c (tar_priv.h), and
 * member data handed on as it arrives instead of being collected. */
#include <stdlib.h>
#include <string.h>

#include "clamfresh/dbstream.h"
#include "clamfresh/limits.h"
#include "clamfresh/tarball.h"
#include "strset_priv.h"
#include "tar_priv.h"

#define TB CF_TAR_BLOCK

enum tar_state { T_HDR, T_DATA, T_PAD, T_DONE };

struct cf_tarin {
    cf_tarin_ops ops;
    enum tar_state st;
    uint8_t hdr[TB];
    size_t hlen;
    uint64_t pos;     /* archive bytes consumed */
    uint64_t fed;     /* bytes fed, the ignored tail included */
    uint64_t hdr_off; /* offset of the current header block */
    uint64_t size, remain, pad_left;
    char name[CF_TAR_NAMELEN + 1];
    char last[CF_TAR_NAMELEN + 1]; /* the last complete member, for messages */
    size_t count;
    uint64_t total;
    cf_strset names;
    cf_code failed;
    char failmsg[CF_ERR_MSG];
};

static cf_code tar_fail(cf_tarin *t, cf_err *e, cf_code rc)
{
    t->failed = rc;
    if (e != NULL)
        memcpy(t->failmsg, e->msg, sizeof(t->failmsg));
    else
        t->failmsg[0] = '\0';
    return rc;
}

static cf_code tar_again(const cf_tarin *t, cf_err *e)
{
    if (e != NULL) {
        e->code = t->failed;
        memcpy(e->msg, t->failmsg, sizeof(e->msg));
    }
    return t->failed;
}

cf_code cf_tarin_new(const cf_tarin_ops *ops, cf_tarin **t, cf_err *e)
{
    *t = NULL;
    if (ops == NULL)
        return cf_err_set(e, CF_EINVAL, "tar: no member callbacks");
    cf_tarin *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory setting up a tar reader");
    r->ops = *ops;
    cf_strset_init(&r->names);
    *t = r;
    return CF_OK;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* A complete header block at t->hdr_off: the checks of cf_tar_read in its order. */
static cf_code tar_header(cf_tarin *t, cf_err *e)
{
    size_t off = (size_t)t->hdr_off;
    if (all_zero(t->hdr, TB)) {
        t->st = T_DONE; /* end of archive; what follows is not read by ClamAV either */
        return CF_OK;
    }
    if (t->hdr[0] == 0)
        return cf_err_set(e, CF_EFORMAT, "tar: header at offset %zu has an empty name", off);
    size_t size = 0;
    cf_code rc = cf_tar_header_check(t->hdr, off, t->name, &size, e);
    if (rc != CF_OK)
        return rc;
    if (t->count >= CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "tar: member '%s' at offset %zu: more than %d members", t->name, off,
                          CF_MAX_MEMBERS);
    if (size > CF_MAX_DB_BYTES - t->total)
        return cf_err_set(e, CF_ETOOBIG, "tar: member '%s' at offset %zu: data exceeds %lu bytes in total",
                          t->name, off, CF_MAX_DB_BYTES);
    int added = cf_strset_add(&t->names, t->name);
    if (added < 0)
        return cf_err_set(e, CF_ENOMEM, "tar: out of memory reading member '%s'", t->name);
    if (added == 0)
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: duplicate name", t->name, off);
    t->size = size;
    t->remain = size;
    t->pad_left = cf_tar_pad(size);
    rc = t->ops.member_begin ? t->ops.member_begin(t->ops.arg, t->name, size, e) : CF_OK;
    if (rc != CF_OK)
        return rc;
    t->st = T_DATA;
    return CF_OK;
}

static cf_code tar_member_done(cf_tarin *t, cf_err *e)
{
    cf_code rc = t->ops.member_end ? t->ops.member_end(t->ops.arg, e) : CF_OK;
    if (rc != CF_OK)
        return rc;
    t->total += t->size;
    t->count++;
    memcpy(t->last, t->name, sizeof(t->last));
    t->st = T_HDR;
    t->hlen = 0;
    t->hdr_off = t->pos;
    return CF_OK;
}

cf_code cf_tarin_feed(cf_tarin *t, const uint8_t *p, size_t n, cf_err *e)
{
    if (t->failed != CF_OK)
        return tar_again(t, e);
    t->fed += n;
    if (t->fed > CF_MAX_DB_BYTES)
        return tar_fail(t, e,
                        cf_err_set(e, CF_ETOOBIG, "tar: archive of %zu bytes exceeds %lu", (size_t)t->fed,
                                   CF_MAX_DB_BYTES));
    while (n > 0 && t->st != T_DONE) {
        cf_code rc = CF_OK;
        size_t k;
        switch (t->st) {
        case T_HDR:
            k = TB - t->hlen < n ? TB - t->hlen : n;
            memcpy(t->hdr + t->hlen, p, k);
            t->hlen += k;
            t->pos += k;
            if (t->hlen == TB)
                rc = tar_header(t, e);
            break;
        case T_DATA:
            k = t->remain < n ? (size_t)t->remain : n;
            if (k > 0 && t->ops.member_data)
                rc = t->ops.member_data(t->ops.arg, p, k, e);
            t->remain -= k;
            t->pos += k;
            if (rc == CF_OK && t->remain == 0)
                t->st = T_PAD;
            break;
        case T_PAD:
        default:
            k = t->pad_left < n ? (size_t)t->pad_left : n;
            t->pad_left -= k;
            t->pos += k;
            break;
        }
        if (rc == CF_OK && t->st == T_PAD && t->pad_left == 0)
            rc = tar_member_done(t, e);
        if (rc != CF_OK)
            return tar_fail(t, e, rc);
        p += k;
        n -= k;
    }
    if (t->st == T_DATA && t->remain == 0) {
        /* a member of size 0 ends right after its header */
        t->st = T_PAD;
        if (t->pad_left == 0) {
            cf_code rc = tar_member_done(t, e);
            if (rc != CF_OK)
                return tar_fail(t, e, rc);
        }
    }
    return CF_OK;
}

cf_code cf_tarin_end(cf_tarin *t, cf_err *e)
{
    if (t->failed != CF_OK)
        return tar_again(t, e);
    size_t off = (size_t)t->hdr_off;
    switch (t->st) {
    case T_DONE:
        return CF_OK;
    case T_HDR:
        if (t->hlen == 0)
            return CF_OK; /* EOF without end-of-archive blocks, as ClamAV writes */
        return tar_fail(t, e,
                        cf_err_set(e, CF_EFORMAT,
                                   "tar: partial header block of %zu bytes at offset %zu%s%s%s", t->hlen, off,
                                   t->count ? " (after member '" : "", t->count ? t->last : "",
                                   t->count ? "')" : ""));
    case T_DATA:
        return tar_fail(
            t, e,
            cf_err_set(e, CF_EFORMAT,
                       "tar: member '%s' at offset %zu: data truncated (%zu of %zu bytes present)", t->name,
                       off, (size_t)(t->size - t->remain), (size_t)t->size));
    case T_PAD:
    default: {
        size_t padded = (size_t)(t->size + cf_tar_pad(t->size));
        size_t avail = (size_t)(t->pos - t->hdr_off - TB);
        return tar_fail(t, e,
                        cf_err_set(e, CF_EFORMAT,
                                   "tar: member '%s': partial last block at offset %zu (%zu of 512 bytes)",
                                   t->name, off + TB + padded - TB, avail - (padded - TB)));
    }
    }
}

void cf_tarin_free(cf_tarin *t)
{
    if (t == NULL)
        return;
    cf_strset_free(&t->names);
    free(t);
}
