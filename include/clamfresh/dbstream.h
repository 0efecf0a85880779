/* The streaming stages of a database's data path (ARCHITECTURE "Bytes flow
 * once"): gunzip, gzip, a tar reader, the manifest check fed member by member,
 * and the verifying scanner of a whole CVD/CLD built from them. Bytes are
 * pushed in with *_feed in any chunking; memory stays bounded by constants
 * (a 1 MiB work buffer per stage, the .info text, the member names). Pure:
 * nothing here opens a file or a socket.
 *
 * Every stage refuses exactly what the in-memory readers refuse (cf_gz_inflate,
 * cf_tar_read, cf_image_verify_manifest, cf_verify_cvd, cf_verify_cld), with
 * the same codes and messages, so a caller may switch between the two paths
 * without changing what users see. After a failure a stage accepts no more
 * input (feed returns the same error again); free it. */
#ifndef CLAMFRESH_DBSTREAM_H
#define CLAMFRESH_DBSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/dsig.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"
#include "clamfresh/info.h"
#include "clamfresh/sink.h"
#include "clamfresh/verify.h"

/* ---- gzip (RFC 1952, one member) ---- */

typedef struct cf_gzin cf_gzin;

/* Inflates one gzip member into out. More than max_out bytes of output fail
 * with CF_ETOOBIG before out is handed a byte beyond max_out. A corrupt member
 * fails in feed; a truncated member, or bytes after the member, fail in end
 * (CF_EFORMAT; the message counts every byte that followed the member). */
cf_code cf_gzin_new(uint64_t max_out, const cf_sink *out, cf_gzin **g, cf_err *e);
cf_code cf_gzin_feed(cf_gzin *g, const uint8_t *p, size_t n, cf_err *e);
cf_code cf_gzin_end(cf_gzin *g, cf_err *e);
/* Bytes handed to the sink so far. */
uint64_t cf_gzin_total_out(const cf_gzin *g);
void cf_gzin_free(cf_gzin *g);

typedef struct cf_gzout cf_gzout;

/* Deflates into out with cf_gz_deflate's header (no name, mtime 0, OS Unix),
 * level (0..9) and strategy (filtered: Z_FILTERED), so the same input gives
 * the same bytes in any chunking. */
cf_code cf_gzout_new(int level, int filtered, const cf_sink *out, cf_gzout **g, cf_err *e);
cf_code cf_gzout_feed(cf_gzout *g, const uint8_t *p, size_t n, cf_err *e);
cf_code cf_gzout_end(cf_gzout *g, cf_err *e);
void cf_gzout_free(cf_gzout *g);

/* ---- tar reading ---- */

/* What the tar reader reports, member by member. member_begin comes once the
 * header passed every check; member_data hands the data (never the padding)
 * in pieces; member_end comes after the member's last block was complete.
 * A callback's failure stops the reader and is returned as is. */
typedef struct cf_tarin_ops {
    cf_code (*member_begin)(void *arg, const char *name, uint64_t size, cf_err *e);
    cf_code (*member_data)(void *arg, const uint8_t *p, size_t n, cf_err *e);
    cf_code (*member_end)(void *arg, cf_err *e);
    void *arg;
} cf_tarin_ops;

typedef struct cf_tarin cf_tarin;

/* cf_tar_read's rules and messages: regular files only, cf_name_ok names,
 * verified checksums, no duplicate names (hashed), CF_MAX_MEMBERS and
 * CF_MAX_DB_BYTES of data checked when crossed; the archive ends at the first
 * all-zero block (what follows is ignored) or at the end of the stream on a
 * member boundary. cf_tar_read also refuses an archive longer than
 * CF_MAX_DB_BYTES before reading it; here that is found when crossed. */
cf_code cf_tarin_new(const cf_tarin_ops *ops, cf_tarin **t, cf_err *e);
cf_code cf_tarin_feed(cf_tarin *t, const uint8_t *p, size_t n, cf_err *e);
cf_code cf_tarin_end(cf_tarin *t, cf_err *e);
void cf_tarin_free(cf_tarin *t);

/* (Tar writing: cf_tar_header_make and cf_tar_pad in tarball.h.) */

/* ---- the manifest check, member by member ---- */

typedef struct cf_mcheck cf_mcheck;

/* cf_image_verify_manifest's rules and messages, fed by a reader that sees
 * each member once: cf_mcheck_member for every member in archive order (the
 * .info included), and cf_mcheck_info with the bytes of the member whose name
 * ends in ".info" (when it has at most CF_MAX_INFO_BYTES; a larger one is
 * refused by finish as cf_info_parse would). Faults are reported by finish,
 * in cf_image_verify_manifest's order, so the verdict does not depend on
 * where in the archive they were. */
cf_code cf_mcheck_new(cf_mcheck **m, cf_err *e);
cf_code cf_mcheck_member(cf_mcheck *m, const char *name, uint64_t size, const uint8_t sha256[32], cf_err *e);
cf_code cf_mcheck_info(cf_mcheck *m, const char *name, const uint8_t *p, size_t n, cf_err *e);
/* A reader that hashes a member later (on another thread) records it with any
 * digest and fills the real one in before finish: index counts the members
 * recorded so far from 0 (cf_mcheck_count() - 1 right after the call).
 * CF_EINVAL for an index not recorded. */
size_t cf_mcheck_count(const cf_mcheck *m);
cf_code cf_mcheck_set_digest(cf_mcheck *m, size_t index, const uint8_t sha256[32], cf_err *e);
/* After cf_mcheck_info: the entry the manifest lists for name, or NULL (none,
 * or the manifest did not parse). The manifest is not yet verified then. */
const cf_info_entry *cf_mcheck_expect(const cf_mcheck *m, const char *name);
cf_code cf_mcheck_finish(cf_mcheck *m, const cf_cvdhdr *hdr_or_null, const cf_rsakey *key, int allow_unsigned,
                         cf_err *e);
/* The verified manifest after a successful finish, else NULL. */
const cf_info *cf_mcheck_manifest(const cf_mcheck *m);
void cf_mcheck_free(cf_mcheck *m);

/* ---- the verifying scanner of a whole container ---- */

typedef struct cf_dbscan cf_dbscan;

/* Verifies a CVD (is_cvd) or CLD fed in any chunking: header, body sniffing
 * (§2.1), gunzip or plain tar, SHA-256 of every member, the .info manifest and,
 * for a CVD, the legacy MD5 + RSA dsig over the body (§4.2) unless sign_ok
 * says the caller already accepted a .sign for these bytes (the FIPS refusal
 * of the MD5 route is cf_verify_cvd's). finish returns what cf_verify_cvd
 * (sign resolved as sign_ok says) or cf_verify_cld return for the same bytes:
 * same code, same message. feed fails early once the verdict is certain;
 * otherwise faults wait for finish, because a fault found later in the stream
 * may take precedence (the dsig over the whole body, gzip over tar). */
cf_code cf_dbscan_new(const cf_verifyctx *ctx, int is_cvd, int sign_ok, cf_dbscan **s, cf_err *e);
cf_code cf_dbscan_feed(cf_dbscan *s, const uint8_t *p, size_t n, cf_err *e);
/* The parsed header once 512 bytes were fed and parsed, else NULL. */
const cf_cvdhdr *cf_dbscan_header(const cf_dbscan *s);
/* The verdict. On success *hdr (may be NULL) receives the header; on failure
 * it is zeroed. */
cf_code cf_dbscan_finish(cf_dbscan *s, cf_cvdhdr *hdr, cf_err *e);
/* After a successful finish: the verified manifest (entries, sizes, hashes). */
const cf_info *cf_dbscan_manifest(const cf_dbscan *s);
void cf_dbscan_free(cf_dbscan *s);

#endif
