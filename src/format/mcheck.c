/* The manifest check (formats.md §5.4) fed member by member: what
 * cf_image_verify_manifest checks on a whole image, from each member's name,
 * size and SHA-256 plus the bytes of the .info alone. Faults are held until
 * finish and reported in cf_image_verify_manifest's order and words. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "clamfresh/dbstream.h"
#include "clamfresh/limits.h"

typedef struct mmember {
    char *name;
    uint64_t size;
    uint8_t sha256[32];
} mmember;

struct cf_mcheck {
    mmember *m; /* archive order */
    size_t n, cap;
    size_t ninfo;        /* members whose name ends in ".info" */
    size_t info1, info2; /* indices of the first two */
    cf_buf text;         /* the .info bytes */
    int have_text;
    cf_info info; /* parsed from text (not yet verified) */
    cf_code parse_rc;
    char parse_msg[CF_ERR_MSG];
    const cf_info_entry **byname; /* info entries sorted by name */
    int verified;
};

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

cf_code cf_mcheck_new(cf_mcheck **m, cf_err *e)
{
    *m = calloc(1, sizeof(**m));
    if (*m == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory setting up the manifest check");
    return CF_OK;
}

cf_code cf_mcheck_member(cf_mcheck *m, const char *name, uint64_t size, const uint8_t sha256[32], cf_err *e)
{
    if (m->n >= CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "more than %d files in one database", CF_MAX_MEMBERS);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        mmember *nm = realloc(m->m, cap * sizeof(*nm));
        if (nm == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        m->m = nm;
        m->cap = cap;
    }
    mmember *x = &m->m[m->n];
    x->name = strdup(name);
    if (x->name == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    x->size = size;
    memcpy(x->sha256, sha256, 32);
    if (ends_with_ci(name, ".info")) {
        if (m->ninfo == 0)
            m->info1 = m->n;
        else if (m->ninfo == 1)
            m->info2 = m->n;
        m->ninfo++;
    }
    m->n++;
    return CF_OK;
}

size_t cf_mcheck_count(const cf_mcheck *m)
{
    return m->n;
}

cf_code cf_mcheck_set_digest(cf_mcheck *m, size_t index, const uint8_t sha256[32], cf_err *e)
{
    if (index >= m->n)
        return cf_err_set(e, CF_EINVAL, "member %zu of %zu: no such member recorded", index, m->n);
    memcpy(m->m[index].sha256, sha256, 32);
    return CF_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(const cf_info_entry *const *)a)->name, (*(const cf_info_entry *const *)b)->name);
}

cf_code cf_mcheck_info(cf_mcheck *m, const char *name, const uint8_t *p, size_t n, cf_err *e)
{
    if (m->have_text)
        return CF_OK; /* a second manifest: finish refuses the database for it */
    if (n > CF_MAX_INFO_BYTES)
        return cf_err_set(e, CF_EINVAL, "%s: manifest of %zu bytes handed over (at most %lu)", name, n,
                          (unsigned long)CF_MAX_INFO_BYTES);
    if (cf_buf_set(&m->text, p, n) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    m->have_text = 1;
    cf_err pe = {0};
    m->parse_rc = cf_info_parse(m->text.p, m->text.n, &m->info, &pe);
    memcpy(m->parse_msg, pe.msg, sizeof(m->parse_msg));
    if (m->parse_rc == CF_OK && m->info.n > 0) {
        m->byname = malloc(m->info.n * sizeof(*m->byname));
        if (m->byname == NULL)
            return cf_err_set(e, CF_ENOMEM, "out of memory");
        for (size_t i = 0; i < m->info.n; i++)
            m->byname[i] = &m->info.entries[i];
        qsort(m->byname, m->info.n, sizeof(*m->byname), cmp_entry);
    }
    return CF_OK;
}

const cf_info_entry *cf_mcheck_expect(const cf_mcheck *m, const char *name)
{
    if (m->byname == NULL)
        return NULL;
    cf_info_entry key = {(char *)name, 0, {0}};
    const cf_info_entry *kp = &key;
    const cf_info_entry **hit = bsearch(&kp, m->byname, m->info.n, sizeof(*m->byname), cmp_entry);
    return hit ? *hit : NULL;
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

static int cmp_member(const void *a, const void *b)
{
    const mmember *x = *(const mmember *const *)a, *y = *(const mmember *const *)b;
    int c = strcmp(x->name, y->name);
    /* the first of equal names wins, as cf_image_get finds it */
    return c != 0 ? c : (x < y ? -1 : x > y);
}

static const mmember *member_get(const mmember **sorted, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(sorted[lo]->name, name) == 0 ? sorted[lo] : NULL;
}

static cf_code check_members(const cf_mcheck *m, const char *iname, cf_err *e)
{
    const mmember **sorted = malloc((m->n ? m->n : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++)
        sorted[i] = &m->m[i];
    qsort(sorted, m->n, sizeof(*sorted), cmp_member);
    cf_code rc = CF_OK;
    for (size_t i = 0; i < m->info.n && rc == CF_OK; i++) {
        const cf_info_entry *ent = &m->info.entries[i];
        const mmember *f = member_get(sorted, m->n, ent->name);
        if (f == NULL) {
            rc = cf_err_set(e, CF_ESIG, "%s: listed in %s but missing from the database", ent->name, iname);
        } else if (f->size != ent->size) {
            rc = cf_err_set(e, CF_ESIG, "%s: size is %zu bytes but %s says %" PRIu64, ent->name,
                            (size_t)f->size, iname, ent->size);
        } else if (memcmp(f->sha256, ent->sha256, 32) != 0) {
            char want[65], got[65];
            hex32(ent->sha256, want);
            hex32(f->sha256, got);
            rc = cf_err_set(e, CF_ESIG, "%s: SHA-256 is %s but %s says %s", ent->name, got, iname, want);
        }
    }
    free(sorted);
    for (size_t i = 0; i < m->n && rc == CF_OK; i++)
        if (cf_info_is_dbext(m->m[i].name) && cf_mcheck_expect(m, m->m[i].name) == NULL)
            rc = cf_err_set(e, CF_ESIG, "%s: database file not listed in %s", m->m[i].name, iname);
    return rc;
}

cf_code cf_mcheck_finish(cf_mcheck *m, const cf_cvdhdr *hdr_or_null, const cf_rsakey *key, int allow_unsigned,
                         cf_err *e)
{
    m->verified = 0;
    if (key == NULL && !allow_unsigned)
        return cf_err_set(e, CF_EINVAL, "manifest check: no key given for a signed database");
    if (m->ninfo > 1)
        return cf_err_set(e, CF_ESIG, "two manifests in one database: %s and %s", m->m[m->info1].name,
                          m->m[m->info2].name);
    if (m->ninfo == 0)
        return cf_err_set(e, CF_ESIG, "the database has no .info manifest");
    const mmember *mf = &m->m[m->info1];
    if (!m->have_text) {
        /* cf_info_parse's own refusals of a manifest too large to hand over */
        if (mf->size > CF_MAX_INFO_BYTES)
            return cf_err_set(e, CF_ETOOBIG, "%s: %zu bytes, more than the %lu allowed", mf->name,
                              (size_t)mf->size, (unsigned long)CF_MAX_INFO_BYTES);
        return cf_err_set(e, CF_EINVAL, "manifest check: the bytes of %s were not handed over", mf->name);
    }
    cf_code rc = m->parse_rc;
    if (rc != CF_OK) {
        cf_err_set(e, rc, "%s", m->parse_msg);
        cf_err_prefix(e, "%s: ", mf->name);
        return rc;
    }
    if (key != NULL) {
        /* the same parse again, then the DSIG, in cf_info_verify's words */
        rc = cf_info_verify(m->text.p, m->text.n, key, NULL, e);
        if (rc != CF_OK)
            cf_err_prefix(e, "%s: ", mf->name);
    } else if (m->info.dsig != NULL) {
        rc = cf_err_set(e, CF_ESIG, "%s: unsigned database, yet the manifest has a DSIG line", mf->name);
    }
    if (rc == CF_OK && hdr_or_null != NULL)
        rc = cf_info_check_header(&m->info.hdr, hdr_or_null, mf->name, e);
    if (rc == CF_OK)
        rc = check_members(m, mf->name, e);
    m->verified = rc == CF_OK;
    return rc;
}

const cf_info *cf_mcheck_manifest(const cf_mcheck *m)
{
    return m->verified ? &m->info : NULL;
}

void cf_mcheck_free(cf_mcheck *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->m[i].name);
    free(m->m);
    cf_buf_free(&m->text);
    cf_info_free(&m->info);
    free(m->byname);
    free(m);
}
