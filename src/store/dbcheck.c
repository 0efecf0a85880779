/* Database files on disk, verified without holding them in memory: the reading
 * (fstat, pread) is the store's, the verdicts are the format layer's (cf_dbscan
 * for the container, cf_signfile_verify_src for the .sign), so a file gives the
 * same verdict, code and message as the same bytes in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/limits.h"
#include "clamfresh/verify.h"

/* ---- the signed bytes of a .sign check, read from a file ---- */

/* pread at the caller's offset: the descriptor's file position is not used,
 * so the caller's stays where it was. */
static long fd_read_at(void *arg, uint8_t *out, size_t len, uint64_t off)
{
    int fd = *(const int *)arg;
    for (;;) {
        ssize_t k = pread(fd, out, len, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        return k < 0 ? -1 : (long)k;
    }
}

cf_signverdict cf_signfile_verify_fd(const cf_certstore *s, const uint8_t *sign, size_t sign_len, int fd,
                                     unsigned flevel, time_t now, char *signer, size_t signer_sz, cf_err *e)
{
    if (signer != NULL && signer_sz > 0)
        signer[0] = '\0';
    struct stat st;
    if (s == NULL || (sign == NULL && sign_len > 0) || fd < 0) {
        cf_err_set(e, CF_EINVAL, ".sign: no certificate store or no bytes");
        return CF_SIGN_UNUSABLE;
    }
    if (fstat(fd, &st) != 0) {
        cf_err_set(e, CF_EIO, ".sign: the signed file cannot be examined: %s", strerror(errno));
        return CF_SIGN_UNUSABLE;
    }
    if (!S_ISREG(st.st_mode)) {
        cf_err_set(e, CF_EIO, ".sign: the signed data is not a regular file");
        return CF_SIGN_UNUSABLE;
    }
    cf_signsrc src = {(size_t)st.st_size, fd_read_at, &fd};
    return cf_signfile_verify_src(s, sign, sign_len, &src, flevel, now, signer, signer_sz, e);
}

/* ---- a container on disk, streamed ---- */

#define FILE_CHUNK (1024 * 1024)

/* Reads up to n bytes at off, retrying short reads; *got receives the count. */
static cf_code pread_full(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got, cf_err *e)
{
    size_t k = 0;
    while (k < n) {
        ssize_t r = pread(fd, p + k, n - k, (off_t)(off + k));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cf_err_set(e, CF_EIO, "read error at offset %llu: %s", (unsigned long long)(off + k),
                              strerror(errno));
        if (r == 0)
            break;
        k += (size_t)r;
    }
    *got = k;
    return CF_OK;
}

/* The .sign check of cf_verify_cvd, run where cf_verify_cvd runs it: after the
 * header parsed and a body was seen. *decided is 0 when the scan itself must
 * report what comes first (a bad header, a truncated file). */
static cf_code file_signcheck(const cf_verifyctx *ctx, int fd, uint64_t n, const uint8_t *sign,
                              size_t sign_len, int *signed_ok, cf_err *e)
{
    *signed_ok = 0;
    if (sign == NULL || ctx->certs == NULL || n <= CF_HDR_SIZE)
        return CF_OK;
    uint8_t hb[CF_HDR_SIZE];
    size_t got = 0;
    cf_code rc = pread_full(fd, hb, sizeof(hb), 0, &got, e);
    if (rc != CF_OK)
        return rc;
    cf_cvdhdr h;
    cf_err he = {0};
    if (got != CF_HDR_SIZE || cf_cvdhdr_parse(hb, got, &h, &he) != CF_OK)
        return CF_OK; /* the scan reports it, before any .sign verdict */
    cf_err se = {0};
    char signer[CF_SIGN_SIGNER_MAX];
    cf_signverdict v = cf_signfile_verify_fd(ctx->certs, sign, sign_len, fd, ctx->flevel, ctx->now, signer,
                                             sizeof(signer), &se);
    if (v == CF_SIGN_VALID)
        *signed_ok = 1;
    else if (v == CF_SIGN_INVALID)
        return cf_err_set(e, CF_ESIG, "detached .sign signature is invalid: %s", se.msg);
    return CF_OK;
}

cf_code cf_verify_file(const cf_verifyctx *ctx, int fd, int is_cvd, const uint8_t *sign, size_t sign_len,
                       cf_cvdhdr *hdr, cf_sigsource *how, cf_err *e)
{
    if (how != NULL)
        *how = CF_SIGSRC_NONE;
    if (hdr != NULL)
        memset(hdr, 0, sizeof(*hdr));
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cf_err_set(e, CF_EIO, "cannot examine the database file: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cf_err_set(e, CF_EIO, "the database is not a regular file");
    uint64_t n = (uint64_t)st.st_size;
    if (n > CF_MAX_DB_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%zu bytes exceeds the database size limit", (size_t)n);
    int signed_ok = 0;
    cf_code rc = is_cvd ? file_signcheck(ctx, fd, n, sign, sign_len, &signed_ok, e) : CF_OK;
    if (rc != CF_OK)
        return rc;

    cf_dbscan *s = NULL;
    rc = cf_dbscan_new(ctx, is_cvd, signed_ok, &s, e);
    if (rc != CF_OK)
        return rc;
    uint8_t *buf = malloc(FILE_CHUNK);
    if (buf == NULL)
        rc = cf_err_set(e, CF_ENOMEM, "out of memory reading a database");
    for (uint64_t off = 0; rc == CF_OK && off < n;) {
        size_t want = n - off < FILE_CHUNK ? (size_t)(n - off) : FILE_CHUNK, got = 0;
        rc = pread_full(fd, buf, want, off, &got, e);
        if (rc == CF_OK && got < want)
            rc = cf_err_set(e, CF_EIO, "the database file shrank to %llu bytes while being read",
                            (unsigned long long)(off + got));
        if (rc == CF_OK)
            rc = cf_dbscan_feed(s, buf, got, e);
        off += got;
    }
    free(buf);
    /* A feed fault is the verdict already (finish would repeat it). */
    if (rc == CF_OK)
        rc = cf_dbscan_finish(s, hdr, e);
    cf_dbscan_free(s);
    if (rc == CF_OK && how != NULL)
        *how = !is_cvd ? CF_SIGSRC_MANIFEST : signed_ok ? CF_SIGSRC_SIGNFILE : CF_SIGSRC_LEGACY;
    return rc;
}
