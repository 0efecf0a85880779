/* In-memory tar via libtar (formats.md §2.2, §2.4–§2.6).
 *
 * libtar only speaks file descriptors, through a tartype_t of open/close/
 * read/write callbacks. To keep these functions pure, the "descriptor" we
 * hand to tar_fdopen() is an index into a small table of memory streams:
 * a reader walks a caller's byte array, a writer appends to a cf_buf. Slots
 * are claimed with an atomic compare-and-swap, so concurrent callers on
 * different threads never share one.
 *
 * Reading: libtar is lenient where ClamAV's readers are not (it accepts a
 * signed-sum checksum, skips lone zero blocks, follows GNU long-name records,
 * and would extract with mode 0). So every header block is first checked on
 * its raw bytes against ClamAV's rules; only then is it handed to th_read(),
 * whose decoding is cross-checked, and the data is read block by block with
 * tar_block_read(). tar_extract_*() is never used.
 *
 * Writing: headers come from libtar's th_set_*() + th_write() with TAR_GNU
 * off, i.e. POSIX ustar headers (magic "ustar\0", version "00", mode 644,
 * uid/gid 0, mtime 0, typeflag '0'). §2.6 lists these as accepted by every
 * ClamAV reader; GNU tar and libtar read them too. ClamAV's own v7 layout
 * (§2.2) would be equally valid; the ustar form was chosen because it is
 * what the library we already depend on writes and what generic tools
 * expect. */
#include "clamfresh/tarball.h"

#include <errno.h>
#include <fcntl.h>
#include <libtar.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clamfresh/limits.h"
#include "tar_priv.h"

#define TB 512 /* tar block */

/* ---- memory streams behind libtar's descriptor interface ---- */

#define MEM_SLOTS 64
#define MEM_FD_BASE 0x4000 /* keeps fake descriptors clear of real low-numbered ones */

typedef struct memstream {
    atomic_int busy;
    const uint8_t *src; /* reading */
    size_t n, pos;
    cf_buf *dst; /* writing */
} memstream;

static memstream g_streams[MEM_SLOTS];

static memstream *mem_get(int fd)
{
    if (fd < MEM_FD_BASE || fd >= MEM_FD_BASE + MEM_SLOTS)
        return NULL;
    memstream *m = &g_streams[fd - MEM_FD_BASE];
    return atomic_load(&m->busy) ? m : NULL;
}

static int mem_claim(const uint8_t *src, size_t n, cf_buf *dst)
{
    for (int i = 0; i < MEM_SLOTS; i++) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&g_streams[i].busy, &expect, 1)) {
            g_streams[i].src = src;
            g_streams[i].n = n;
            g_streams[i].pos = 0;
            g_streams[i].dst = dst;
            return MEM_FD_BASE + i;
        }
    }
    return -1;
}

static void mem_release(int fd)
{
    memstream *m = mem_get(fd);
    if (m == NULL)
        return;
    m->src = NULL;
    m->dst = NULL;
    atomic_store(&m->busy, 0);
}

static int mem_open(const char *path, int flags, ...)
{
    (void)path;
    (void)flags;
    errno = ENOTSUP; /* tar_fdopen() is the only entry point used */
    return -1;
}

static int mem_close(int fd)
{
    mem_release(fd);
    return 0;
}

static ssize_t mem_read(int fd, void *buf, size_t count)
{
    memstream *m = mem_get(fd);
    if (m == NULL || m->src == NULL) {
        errno = EBADF;
        return -1;
    }
    size_t k = m->n - m->pos;
    if (k > count)
        k = count;
    memcpy(buf, m->src + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

static ssize_t mem_write(int fd, const void *buf, size_t count)
{
    memstream *m = mem_get(fd);
    if (m == NULL || m->dst == NULL) {
        errno = EBADF;
        return -1;
    }
    if (cf_buf_append(m->dst, buf, count) != CF_OK) {
        errno = ENOMEM;
        return -1;
    }
    return (ssize_t)count;
}

static tartype_t g_memtype = {mem_open, mem_close, mem_read, mem_write};

/* Opens a libtar handle on a memory stream; the handle owns the slot from here on. */
static cf_code mem_tar_open(TAR **t, const uint8_t *src, size_t n, cf_buf *dst, cf_err *e)
{
    int fd = mem_claim(src, n, dst);
    if (fd < 0)
        return cf_err_set(e, CF_ENOMEM, "tar: more than %d archives open at once", MEM_SLOTS);
    /* options 0: no GNU extensions, checksum checked, no magic required (ClamAV writes none) */
    if (tar_fdopen(t, fd, "memory", &g_memtype, dst ? O_WRONLY : O_RDONLY, 0644, 0) != 0) {
        mem_release(fd);
        return cf_err_set(e, CF_ENOMEM, "tar: cannot set up libtar: %s", strerror(errno));
    }
    return CF_OK;
}

/* ---- raw header checks (ClamAV's rules, §2.4–§2.6) ---- */

_Static_assert(T_NAMELEN == CF_TAR_NAMELEN, "libtar's name field is the header's");

void cf_tar_header_name(const uint8_t *hdr, char out[T_NAMELEN + 1])
{
    size_t i;
    for (i = 0; i < T_NAMELEN && hdr[i] != 0; i++)
        out[i] = (hdr[i] >= 0x20 && hdr[i] < 0x7f) ? (char)hdr[i] : '?';
    out[i] = '\0';
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* Octal number field: optional leading spaces, at least one octal digit, then
 * only NUL or space to the end of the field. Values above max are refused. */
static int parse_octal(const uint8_t *f, size_t len, unsigned long max, unsigned long *out)
{
    size_t i = 0;
    while (i < len && f[i] == ' ')
        i++;
    size_t first = i;
    unsigned long v = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        v = v * 8 + (unsigned long)(f[i] - '0');
        if (v > max)
            return -1;
    }
    if (i == first)
        return 0;
    for (; i < len; i++)
        if (f[i] != 0 && f[i] != ' ')
            return 0;
    *out = v;
    return 1;
}

static unsigned long header_sum(const uint8_t *hdr)
{
    unsigned long s = 0;
    for (size_t i = 0; i < TB; i++)
        s += (i >= 148 && i < 156) ? ' ' : hdr[i];
    return s;
}

static const char *type_desc(uint8_t t)
{
    switch (t) {
    case '1':
        return "a hard link";
    case '2':
        return "a symbolic link";
    case '3':
        return "a character device";
    case '4':
        return "a block device";
    case '5':
        return "a directory";
    case '6':
        return "a FIFO";
    case '7':
        return "a contiguous file";
    case 'x':
        return "a pax extended header";
    case 'g':
        return "a pax global header";
    case 'L':
        return "a GNU long-name record";
    case 'K':
        return "a GNU long-link record";
    default:
        return "not a regular file";
    }
}

cf_code cf_tar_header_check(const uint8_t *hdr, size_t off, char name[T_NAMELEN + 1], size_t *size, cf_err *e)
{
    char shown[T_NAMELEN + 1];
    cf_tar_header_name(hdr, shown);

    unsigned long stored = 0;
    int ok = parse_octal(hdr + 148, 8, 07777777, &stored);
    unsigned long sum = header_sum(hdr);
    if (ok != 1)
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: checksum field is not octal", shown,
                          off);
    if (stored != sum)
        return cf_err_set(e, CF_EFORMAT,
                          "tar: member '%s' at offset %zu: bad header checksum (stored %lo, computed %lo)",
                          shown, off, stored, sum);

    uint8_t type = hdr[156];
    if (type != '0' && type != 0) {
        if (type >= 0x20 && type < 0x7f)
            return cf_err_set(
                e, CF_EFORMAT,
                "tar: member '%s' at offset %zu: type '%c' is %s; only regular files are allowed", shown, off,
                type, type_desc(type));
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: type 0x%02x is not a regular file",
                          shown, off, type);
    }

    if (memchr(hdr, 0, T_NAMELEN) == NULL)
        return cf_err_set(e, CF_EFORMAT,
                          "tar: member '%s' at offset %zu: name fills all 100 bytes (at most %d allowed)",
                          shown, off, CF_MAX_NAME);
    memcpy(name, hdr, T_NAMELEN);
    name[T_NAMELEN] = '\0';
    if (name[0] == '/')
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: absolute names are not allowed",
                          shown, off);
    if (strchr(name, '/') != NULL)
        return cf_err_set(e, CF_EFORMAT,
                          "tar: member '%s' at offset %zu: directory separators are not allowed", shown, off);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: not a file name", shown, off);
    if (!cf_name_ok(name))
        return cf_err_set(e, CF_EFORMAT,
                          "tar: member '%s' at offset %zu: name has characters outside printable ASCII",
                          shown, off);
    /* A ustar prefix would make other readers see "prefix/name". */
    if (memcmp(hdr + 257, "ustar", 5) == 0 && hdr[345] != 0)
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: has a directory prefix", shown,
                          off);

    if (hdr[124] & 0x80)
        return cf_err_set(e, CF_EUNSUPP, "tar: member '%s' at offset %zu: base-256 size field", shown, off);
    unsigned long sz = 0;
    ok = parse_octal(hdr + 124, 12, CF_MAX_DB_BYTES, &sz);
    if (ok < 0)
        return cf_err_set(e, CF_ETOOBIG, "tar: member '%s' at offset %zu: size exceeds %lu bytes", shown, off,
                          CF_MAX_DB_BYTES);
    if (ok == 0)
        return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: size field is not octal", shown,
                          off);
    *size = (size_t)sz;
    return CF_OK;
}

/* ---- reading ---- */

static cf_code read_members(TAR *t, const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    memstream *m = mem_get(t->fd);
    size_t total = 0, count = 0;
    char name[T_NAMELEN + 1];
    uint8_t block[TB];

    for (;;) {
        size_t off = m->pos;
        if (off == n)
            return CF_OK; /* EOF without end-of-archive blocks, as ClamAV writes */
        if (n - off < TB)
            return cf_err_set(e, CF_EFORMAT, "tar: partial header block of %zu bytes at offset %zu%s%s%s",
                              n - off, off, count ? " (after member '" : "",
                              count ? img->files[img->nfiles - 1].name : "", count ? "')" : "");
        const uint8_t *hdr = p + off;
        if (all_zero(hdr, TB))
            return CF_OK; /* end of archive; whatever follows is not read by ClamAV either */
        if (hdr[0] == 0)
            return cf_err_set(e, CF_EFORMAT, "tar: header at offset %zu has an empty name", off);

        size_t size = 0;
        cf_code rc = cf_tar_header_check(hdr, off, name, &size, e);
        if (rc != CF_OK)
            return rc;
        if (count >= CF_MAX_MEMBERS)
            return cf_err_set(e, CF_ETOOBIG, "tar: member '%s' at offset %zu: more than %d members", name,
                              off, CF_MAX_MEMBERS);
        if (size > CF_MAX_DB_BYTES - total)
            return cf_err_set(e, CF_ETOOBIG,
                              "tar: member '%s' at offset %zu: data exceeds %lu bytes in total", name, off,
                              CF_MAX_DB_BYTES);
        if (cf_image_find(img, name) >= 0)
            return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: duplicate name", name, off);
        size_t avail = n - off - TB;
        size_t padded = (size + TB - 1) / TB * TB;
        if (avail < size)
            return cf_err_set(e, CF_EFORMAT,
                              "tar: member '%s' at offset %zu: data truncated (%zu of %zu bytes present)",
                              name, off, avail, size);
        if (avail < padded)
            return cf_err_set(e, CF_EFORMAT,
                              "tar: member '%s': partial last block at offset %zu (%zu of 512 bytes)", name,
                              off + TB + padded - TB, avail - (padded - TB));

        if (th_read(t) != 0)
            return cf_err_set(e, CF_EFORMAT, "tar: member '%s' at offset %zu: libtar cannot read the header",
                              name, off);
        if (t->th_buf.gnu_longname != NULL || t->th_buf.gnu_longlink != NULL || !TH_ISREG(t) ||
            strncmp(t->th_buf.name, name, T_NAMELEN) != 0 || (size_t)th_get_size(t) != size ||
            m->pos != off + TB)
            return cf_err_set(e, CF_EFORMAT,
                              "tar: member '%s' at offset %zu: libtar decodes the header differently", name,
                              off);

        rc = cf_image_put(img, name, NULL, 0, e);
        if (rc != CF_OK)
            return rc;
        cf_buf *data = &img->files[img->nfiles - 1].data;
        if (cf_buf_reserve(data, padded) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "tar: out of memory reading member '%s'", name);
        for (size_t got = 0; got < size; got += TB) {
            size_t k = size - got < TB ? size - got : TB;
            /* full blocks go straight into the member; the last partial one via a bounce block */
            uint8_t *dst = k == TB ? data->p + got : block;
            if (tar_block_read(t, dst) != TB)
                return cf_err_set(e, CF_EFORMAT, "tar: member '%s': short read at offset %zu", name,
                                  off + TB + got);
            if (dst == block)
                memcpy(data->p + got, block, k);
        }
        data->n = size;
        total += size;
        count++;
    }
}

cf_code cf_tar_read(const uint8_t *p, size_t n, cf_image *img, cf_err *e)
{
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "tar: archive of %zu bytes exceeds %lu", n, CF_MAX_DB_BYTES);
    TAR *t = NULL;
    cf_code rc = mem_tar_open(&t, p, n, NULL, e);
    if (rc != CF_OK)
        return rc;
    size_t had = img->nfiles;
    rc = read_members(t, p, n, img, e);
    tar_close(t);
    /* leave img as it was on failure */
    while (rc != CF_OK && img->nfiles > had)
        cf_image_remove(img, img->files[img->nfiles - 1].name, NULL);
    return rc;
}

/* ---- writing ---- */

/* Writes the header block of one member through libtar. */
static cf_code write_header(TAR *t, const char *name, size_t size, cf_err *e)
{
    memset(&t->th_buf, 0, sizeof(t->th_buf));
    /* Type and mode before the path: th_set_path() appends '/' when TH_ISDIR(), which
     * decodes the mode field, and libtar's octal decoder returns an uninitialised value
     * for an empty field. */
    th_set_type(t, S_IFREG | 0644);
    th_set_mode(t, 0644);
    th_set_path(t, name);
    if (strncmp(t->th_buf.name, name, T_NAMELEN) != 0)
        return cf_err_set(e, CF_EINVAL, "tar: libtar stores '%s' as '%.100s'", name, t->th_buf.name);
    int_to_oct(0, t->th_buf.uid, 8);
    int_to_oct(0, t->th_buf.gid, 8);
    th_set_mtime(t, 0);
    th_set_size(t, (int)size);
    if (th_write(t) != 0)
        return cf_err_set(e, CF_ENOMEM, "tar: cannot write the header of '%s'", name);
    return CF_OK;
}

static cf_code write_member(TAR *t, const cf_dbfile *f, cf_err *e)
{
    cf_code rc = write_header(t, f->name, f->data.n, e);
    if (rc != CF_OK)
        return rc;
    size_t full = f->data.n / TB * TB;
    for (size_t off = 0; off < full; off += TB)
        if (tar_block_write(t, f->data.p + off) != TB)
            return cf_err_set(e, CF_ENOMEM, "tar: cannot write the data of '%s'", f->name);
    if (full < f->data.n) {
        uint8_t block[TB] = {0};
        memcpy(block, f->data.p + full, f->data.n - full);
        if (tar_block_write(t, block) != TB)
            return cf_err_set(e, CF_ENOMEM, "tar: cannot write the data of '%s'", f->name);
    }
    return CF_OK;
}

/* Fills order[] with member indices: order_first names present in img, then the rest. */
static size_t member_order(const cf_image *img, const char *const *order_first, size_t *order,
                           unsigned char *used)
{
    size_t k = 0;
    for (size_t j = 0; order_first != NULL && order_first[j] != NULL; j++) {
        long i = cf_image_find(img, order_first[j]);
        if (i >= 0 && !used[i]) {
            used[i] = 1;
            order[k++] = (size_t)i;
        }
    }
    for (size_t i = 0; i < img->nfiles; i++)
        if (!used[i])
            order[k++] = i;
    return k;
}

cf_code cf_tar_write(const cf_image *img, const char *const *order_first, cf_buf *out, cf_err *e)
{
    if (img->nfiles > CF_MAX_MEMBERS)
        return cf_err_set(e, CF_ETOOBIG, "tar: more than %d members", CF_MAX_MEMBERS);
    size_t total = 0;
    for (size_t i = 0; i < img->nfiles; i++) {
        const cf_dbfile *f = &img->files[i];
        if (!cf_name_ok(f->name))
            return cf_err_set(e, CF_EINVAL, "tar: member name '%.120s' cannot be stored", f->name);
        if (f->data.n > CF_MAX_DB_BYTES - total)
            return cf_err_set(e, CF_ETOOBIG, "tar: member '%s': data exceeds %lu bytes in total", f->name,
                              CF_MAX_DB_BYTES);
        total += f->data.n;
    }

    size_t *order = malloc((img->nfiles + 1) * sizeof(*order));
    unsigned char *used = calloc(img->nfiles + 1, 1);
    if (order == NULL || used == NULL) {
        free(order);
        free(used);
        return cf_err_set(e, CF_ENOMEM, "out of memory writing a tar");
    }
    size_t k = member_order(img, order_first, order, used);

    size_t start = out->n;
    TAR *t = NULL;
    cf_code rc = mem_tar_open(&t, NULL, 0, out, e);
    for (size_t j = 0; j < k && rc == CF_OK; j++)
        rc = write_member(t, &img->files[order[j]], e);
    if (t != NULL)
        tar_close(t);
    if (rc != CF_OK)
        out->n = start;
    free(order);
    free(used);
    return rc;
}

cf_code cf_tar_header_make(const char *name, uint64_t size, uint8_t hdr[512], cf_err *e)
{
    if (name == NULL || !cf_name_ok(name))
        return cf_err_set(e, CF_EINVAL, "tar: member name '%.120s' cannot be stored", name ? name : "");
    if (size > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "tar: member '%s': %llu bytes exceeds %lu", name,
                          (unsigned long long)size, CF_MAX_DB_BYTES);
    cf_buf out = CF_BUF_INIT;
    TAR *t = NULL;
    cf_code rc = mem_tar_open(&t, NULL, 0, &out, e);
    if (rc == CF_OK)
        rc = write_header(t, name, (size_t)size, e);
    if (t != NULL)
        tar_close(t);
    if (rc == CF_OK && out.n != TB)
        rc = cf_err_set(e, CF_EINVAL, "tar: libtar wrote %zu header bytes for '%s'", out.n, name);
    if (rc == CF_OK)
        memcpy(hdr, out.p, TB);
    cf_buf_free(&out);
    return rc;
}

size_t cf_tar_pad(uint64_t size)
{
    return (size_t)((TB - size % TB) % TB);
}
