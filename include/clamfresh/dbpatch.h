/* An incremental update in one pass (ARCHITECTURE "Bytes flow once"): the
 * local CVD or CLD streams through gunzip (when compressed) and the tar reader;
 * each member a cdiff chain touches passes through its patch filter, every
 * other member is copied through; every output member is hashed as it is
 * written to the staged CLD. The same pass checks the local database against
 * its own signed manifest and the result against the patched one. Memory is
 * bounded by buffers, the scripts and the manifests, not by the database.
 *
 * Nothing here decides policy: the caller (updater.c) has fetched and verified
 * the scripts, chooses the staged file and installs it. */
#ifndef CLAMFRESH_DBPATCH_H
#define CLAMFRESH_DBPATCH_H

#include <stdint.h>

#include "clamfresh/err.h"
#include "clamfresh/image.h"
#include "clamfresh/patch.h"
#include "clamfresh/verify.h"

typedef struct cf_dbpatch_opts {
    const cf_verifyctx *verify; /* keys for both manifests */
    const char *db;             /* the database asked for: the result's manifest is <db>.info */
    uint32_t want_version;      /* the version the chain must produce, exactly */
    const char *spooldir;       /* private directory for members a MOVE makes wait */
    /* The local file is the very file verified in full recently (vrecord.h):
     * a member no patch touches and whose entry in the new manifest equals the
     * one in the old is then copied without being hashed again. */
    int base_trusted;
} cf_dbpatch_opts;

/* Which side a failure came from, so the caller can word it as freshclam does. */
typedef enum cf_dbpatch_fault {
    CF_DBPATCH_NONE,
    CF_DBPATCH_BASE,  /* the local database is unreadable or fails its own manifest */
    CF_DBPATCH_PATCH, /* a script does not apply, or the result fails the new manifest */
    CF_DBPATCH_IO,    /* writing the staged file failed */
} cf_dbpatch_fault;

/* Reads the local database from in_fd (at offset 0; header, then a plain or
 * gzip'd tar), applies plan, and writes an uncompressed CLD to out_fd (an empty
 * regular file, written from offset 0 with pwrite). On success *newhdr is the
 * header of the result, which passed its signed manifest, is named o->db and has
 * version o->want_version. out_fd is not fsynced here. */
cf_code cf_dbpatch_run(const cf_dbpatch_opts *o, int in_fd, cf_patchplan *plan, int out_fd, cf_cvdhdr *newhdr,
                       cf_dbpatch_fault *fault, cf_err *e);

/* CompressLocalDatabase: copies the CLD in plain_fd (header + tar) to out_fd as
 * header + one gzip member (level 9, Z_FILTERED, as ClamAV writes CLDs). */
cf_code cf_dbpatch_compress(int plain_fd, int out_fd, cf_err *e);

/* The name of the first *.info member of the database file in fd (read from
 * offset 0 until that member's header; gzip'd or plain), so that a validly
 * signed database of another name is told apart from the one asked for. */
cf_code cf_dbfile_info_name(int fd, char *out, size_t outsz, cf_err *e);

#endif
