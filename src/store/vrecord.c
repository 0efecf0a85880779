/* The verification record (vrecord.h). The parser is strict about shape and
 * forgiving about content: whatever it cannot read exactly is dropped, and a
 * dropped entry costs one full verification, never a wrong "up-to-date". */
#include "clamfresh/vrecord.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/fileio.h"

#define FIELDS 8

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > CF_VRECORD_MAX_NAME || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

/* Canonical decimal (no sign, no leading zero unless "0") no larger than max. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

/* "[-]SECONDS.NNNNNNNNN", as the formatter writes it ("-0" is not canonical). */
static int parse_time(const char *s, size_t n, int64_t *sec, long *nsec)
{
    const char *dot = memchr(s, '.', n);
    if (!dot || (size_t)(s + n - dot) != 10)
        return 0;
    int neg = s[0] == '-';
    uint64_t v, ns;
    if (!parse_u64(s + neg, (size_t)(dot - s) - (size_t)neg, INT64_MAX, &v) || (neg && v == 0))
        return 0;
    for (int i = 1; i <= 9; i++)
        if (dot[i] < '0' || dot[i] > '9')
            return 0;
    /* Nine digits with leading zeros are canonical here, so parse them by hand. */
    ns = 0;
    for (int i = 1; i <= 9; i++)
        ns = ns * 10 + (uint64_t)(dot[i] - '0');
    *sec = neg ? -(int64_t)v : (int64_t)v;
    *nsec = (long)ns;
    return 1;
}

/* One line without its newline; 1 when it is a well-formed entry. */
static int parse_line(const char *s, size_t n, cf_vrecord_entry *en)
{
    const char *f[FIELDS];
    size_t len[FIELDS];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            if (k == FIELDS)
                return 0;
            f[k] = s + start;
            len[k++] = i - start;
            start = i + 1;
        }
    }
    if (k != FIELDS || !name_ok(f[0], len[0]))
        return 0;
    memset(en, 0, sizeof *en);
    memcpy(en->name, f[0], len[0]);
    uint64_t v;
    if (!parse_u64(f[1], len[1], INT64_MAX, &en->size) ||
        !parse_time(f[2], len[2], &en->mtime_sec, &en->mtime_nsec) ||
        !parse_time(f[3], len[3], &en->ctime_sec, &en->ctime_nsec) ||
        !parse_u64(f[4], len[4], UINT64_MAX, &en->ino) || !parse_u64(f[5], len[5], UINT64_MAX, &en->dev) ||
        !parse_u64(f[6], len[6], INT64_MAX, &v))
        return 0;
    en->verified_at = (int64_t)v;
    if (!parse_u64(f[7], len[7], UINT32_MAX, &v))
        return 0;
    en->version = (uint32_t)v;
    return 1;
}

static cf_vrecord_entry *find(const cf_vrecord *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

static cf_code grow(cf_vrecord *r)
{
    if (r->n < r->cap)
        return CF_OK;
    size_t cap = r->cap ? r->cap * 2 : 16;
    if (cap > CF_VRECORD_MAX_ENTRIES)
        cap = CF_VRECORD_MAX_ENTRIES;
    cf_vrecord_entry *v = realloc(r->v, cap * sizeof *v);
    if (!v)
        return CF_ENOMEM;
    r->v = v;
    r->cap = cap;
    return CF_OK;
}

cf_code cf_vrecord_parse(const uint8_t *p, size_t n, cf_vrecord *r)
{
    r->v = NULL;
    r->n = r->cap = 0;
    const char *s = (const char *)p, *end = s + n;
    size_t hl = strlen(CF_VRECORD_HEADER);
    /* Another first line is another format (or none): nothing in it is ours. */
    if (n < hl + 1 || memcmp(s, CF_VRECORD_HEADER, hl) != 0 || s[hl] != '\n')
        return CF_OK;
    s += hl + 1;
    bool dup[CF_VRECORD_MAX_ENTRIES] = {false};
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            break; /* cut short: not written by us in one piece */
        size_t len = (size_t)(nl - s);
        cf_vrecord_entry en;
        if (len <= CF_VRECORD_MAX_LINE && parse_line(s, len, &en)) {
            cf_vrecord_entry *old = find(r, en.name);
            if (old) {
                dup[old - r->v] = true; /* two claims for one file: believe neither */
            } else if (r->n < CF_VRECORD_MAX_ENTRIES) {
                if (grow(r) != CF_OK) {
                    cf_vrecord_free(r);
                    return CF_ENOMEM;
                }
                r->v[r->n++] = en;
            }
        }
        s = nl + 1;
    }
    size_t kept = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!dup[i])
            r->v[kept++] = r->v[i];
    r->n = kept;
    return CF_OK;
}

cf_code cf_vrecord_format(const cf_vrecord *r, cf_buf *out)
{
    out->n = 0;
    if (cf_buf_printf(out, "%s\n", CF_VRECORD_HEADER) != CF_OK)
        return CF_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        const cf_vrecord_entry *en = &r->v[i];
        if (cf_buf_printf(out,
                          "%s %" PRIu64 " %" PRId64 ".%09ld %" PRId64 ".%09ld %" PRIu64 " %" PRIu64
                          " %" PRId64 " %" PRIu32 "\n",
                          en->name, en->size, en->mtime_sec, en->mtime_nsec, en->ctime_sec, en->ctime_nsec,
                          en->ino, en->dev, en->verified_at, en->version) != CF_OK)
            return CF_ENOMEM;
    }
    return CF_OK;
}

static cf_code record_path(const char *dir, char *out, size_t outsz, cf_err *e)
{
    int w = snprintf(out, outsz, "%s/%s", dir, CF_VRECORD_FILE);
    if (w < 0 || (size_t)w >= outsz)
        return cf_err_set(e, CF_EINVAL, "%s: database directory path too long", dir);
    return CF_OK;
}

cf_code cf_vrecord_load(const char *dir, cf_vrecord *r, cf_err *e)
{
    r->v = NULL;
    r->n = r->cap = 0;
    char path[4096];
    cf_code c = record_path(dir, path, sizeof path, e);
    if (c != CF_OK)
        return c;
    cf_buf b = CF_BUF_INIT;
    cf_err re = {0};
    c = cf_file_read_db(path, CF_VRECORD_MAX_BYTES, &b, &re);
    if (c == CF_OK)
        c = cf_vrecord_parse(b.p, b.n, r);
    else if (c == CF_ENOTFOUND)
        c = CF_OK;
    else if (e)
        *e = re;
    cf_buf_free(&b);
    if (c == CF_ENOMEM)
        cf_err_set(e, c, "%s: out of memory", path);
    return c;
}

static int valid_nsec(long ns)
{
    return ns >= 0 && ns < 1000000000L;
}

int cf_vrecord_fresh(const cf_vrecord *r, const char *name, const struct stat *st, uint32_t version,
                     time_t now)
{
    const cf_vrecord_entry *en = find(r, name);
    if (!en || st->st_size < 0 || en->size != (uint64_t)st->st_size ||
        en->mtime_sec != (int64_t)st->st_mtim.tv_sec || en->mtime_nsec != (long)st->st_mtim.tv_nsec ||
        en->ctime_sec != (int64_t)st->st_ctim.tv_sec || en->ctime_nsec != (long)st->st_ctim.tv_nsec ||
        en->ino != (uint64_t)st->st_ino || en->dev != (uint64_t)st->st_dev || en->version != version)
        return 0;
    int64_t t = (int64_t)now;
    if (en->verified_at > t)
        return 0;
    /* 0 <= verified_at <= now: the difference cannot overflow. */
    return t - en->verified_at < CF_VRECORD_MAX_AGE;
}

cf_code cf_vrecord_put(cf_vrecord *r, const char *name, const struct stat *st, uint32_t version, time_t now)
{
    if (!name_ok(name, strlen(name)) || now < 0 || st->st_size < 0 || st->st_mtim.tv_sec == INT64_MIN ||
        st->st_ctim.tv_sec == INT64_MIN || !valid_nsec(st->st_mtim.tv_nsec) ||
        !valid_nsec(st->st_ctim.tv_nsec))
        return CF_EINVAL;
    cf_vrecord_entry *en = find(r, name);
    if (!en) {
        if (r->n >= CF_VRECORD_MAX_ENTRIES)
            return CF_ETOOBIG;
        if (grow(r) != CF_OK)
            return CF_ENOMEM;
        en = &r->v[r->n++];
    }
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", name);
    en->size = (uint64_t)st->st_size;
    en->mtime_sec = (int64_t)st->st_mtim.tv_sec;
    en->mtime_nsec = (long)st->st_mtim.tv_nsec;
    en->ctime_sec = (int64_t)st->st_ctim.tv_sec;
    en->ctime_nsec = (long)st->st_ctim.tv_nsec;
    en->ino = (uint64_t)st->st_ino;
    en->dev = (uint64_t)st->st_dev;
    en->verified_at = (int64_t)now;
    en->version = version;
    return CF_OK;
}

void cf_vrecord_forget(cf_vrecord *r, const char *name)
{
    cf_vrecord_entry *en = find(r, name);
    if (!en)
        return;
    size_t i = (size_t)(en - r->v);
    memmove(en, en + 1, (r->n - i - 1) * sizeof *en);
    r->n--;
}

cf_code cf_vrecord_save(const char *dir, const cf_vrecord *r, cf_err *e)
{
    cf_buf b = CF_BUF_INIT;
    if (cf_vrecord_format(r, &b) != CF_OK) {
        cf_buf_free(&b);
        return cf_err_set(e, CF_ENOMEM, "Can't create %s in %s: out of memory", CF_VRECORD_FILE, dir);
    }
    cf_code c = cf_file_replace_db(dir, CF_VRECORD_FILE, b.p, b.n, e);
    cf_buf_free(&b);
    return c;
}

void cf_vrecord_free(cf_vrecord *r)
{
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

int cf_vrecord_fresh_fd(const char *dir, const char *name, int fd, uint32_t version, time_t now)
{
    struct stat st;
    cf_vrecord rec;
    cf_err e = {0};
    if (fstat(fd, &st) != 0)
        return 0;
    int fresh = cf_vrecord_load(dir, &rec, &e) == CF_OK && cf_vrecord_fresh(&rec, name, &st, version, now);
    cf_vrecord_free(&rec);
    return fresh;
}

cf_code cf_vrecord_note(const char *dir, const char *name, int fd, uint32_t version, int ok, time_t now,
                        cf_err *e)
{
    struct stat st;
    cf_vrecord rec;
    cf_err le = {0};
    (void)cf_vrecord_load(dir, &rec, &le); /* an unreadable record is replaced */
    cf_code rc = CF_OK;
    if (ok) {
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/%s", dir, name);
        int have = fd >= 0 ? fstat(fd, &st) == 0 : w > 0 && (size_t)w < sizeof path && lstat(path, &st) == 0;
        if (!have)
            rc = cf_err_set(e, CF_EIO, "%s: %s", path, strerror(errno));
        else
            rc = cf_vrecord_put(&rec, name, &st, version, now);
        if (rc != CF_OK && e->msg[0] == '\0')
            cf_err_set(e, rc, "%s: can't be recorded as verified", name);
    } else {
        cf_vrecord_forget(&rec, name);
    }
    if (rc == CF_OK)
        rc = cf_vrecord_save(dir, &rec, e);
    cf_vrecord_free(&rec);
    return rc;
}
