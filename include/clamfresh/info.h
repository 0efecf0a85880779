/* The signed .info manifest of a database (formats.md §5): parse it, check a
 * database image against it, and write one for publishers. Pure functions on
 * bytes and on cf_image; no files are opened here. */
#ifndef CLAMFRESH_INFO_H
#define CLAMFRESH_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"

/* Declared again in dsig.h; C11 allows the repeated identical typedef. */
typedef struct cf_rsakey cf_rsakey;

typedef struct cf_info_entry {
    char *name;         /* bare member name, cf_name_ok */
    uint64_t size;      /* bytes */
    uint8_t sha256[32]; /* digest of the member's contents */
} cf_info_entry;

typedef struct cf_info {
    cf_cvdhdr hdr;          /* the first line (md5/dsig are normally "X") */
    cf_info_entry *entries; /* in file order */
    size_t n;
    char *dsig;        /* CV64 text after "DSIG:", NUL-terminated; NULL when there is no DSIG line */
    size_t signed_len; /* bytes before the DSIG line, i.e. what the DSIG signs (§5.3); the
                        * whole input when there is no DSIG line */
} cf_info;

#define CF_INFO_INIT                                                                                         \
    {                                                                                                        \
        {{0}, 0, 0, 0, {0}, {0}, {0}, 0}, NULL, 0, NULL, 0                                                   \
    }

/* Parses a manifest strictly by §5.1: LF-terminated lines only (a CR, an empty
 * line, a line of CF_MAX_INFO_LINE bytes or more, or a last line without '\n'
 * is an error), header line first, then name:size:sha256 lines (three fields,
 * decimal size, 64 hex digits, valid and unique names), then optionally one
 * DSIG line which must be the last line. Does not check the signature.
 * On failure *info is left empty; on success free it with cf_info_free. */
cf_code cf_info_parse(const uint8_t *p, size_t n, cf_info *info, cf_err *e);

void cf_info_free(cf_info *info);

/* Parses (as cf_info_parse) and checks the DSIG line with key (§5.3, §4.3).
 * A manifest without a DSIG line fails. out may be NULL; when given it receives
 * the parsed manifest on success (free with cf_info_free). */
cf_code cf_info_verify(const uint8_t *p, size_t n, const cf_rsakey *key, cf_info *out, cf_err *e);

/* Does the name end (case-insensitively) in one of libclamav's database
 * extensions (CLI_DBEXT, §5.4, including .yar/.yara)? */
int cf_info_is_dbext(const char *name);

/* Full check of a database image against its manifest (§5.4, with the stronger
 * rules recommended there and in §6.7):
 *  - the image has exactly one member whose name ends in ".info" (any case);
 *  - it parses (cf_info_parse) and its DSIG verifies with key; when key is NULL
 *    and allow_unsigned is set (CUD), the manifest must have no DSIG line (§5.5);
 *  - when hdr_or_null is given, the header line agrees with it on version, sigs,
 *    flevel and stime (§1.3 step 7);
 *  - every listed entry is a member with that size and SHA-256;
 *  - every member with a database extension is listed.
 * Failures are CF_ESIG (check failed) or CF_EFORMAT (malformed manifest), and
 * the message names the member and the reason. */
cf_code cf_image_verify_manifest(const cf_image *img, const cf_cvdhdr *hdr_or_null, const cf_rsakey *key,
                                 int allow_unsigned, cf_err *e);

/* The header agreement of §1.3 step 7: a manifest's first line (got) against
 * its container's header (want) on version, signatures, f-level and build
 * time; CF_ESIG naming iname and the field that differs. */
cf_code cf_info_check_header(const cf_cvdhdr *got, const cf_cvdhdr *want, const char *iname, cf_err *e);

/* For publishers: writes <dbname>.info from the image's members with header
 * fields h (md5 and dsig are written as "X"), signed with key (DSIG line) or
 * unsigned when key is NULL, and stores it in img (replacing an existing one in
 * place; a new one goes right after COPYING, as sigtool orders it).
 * Entries: every member except COPYING and the manifest itself, in sigtool's
 * order (§2.3): <db>.<ext> in the fixed extension order, then *.cbc sorted by
 * name, then last.hdb, then any other members sorted by name. Fails if the
 * image holds another ".info" member. img->hdr is not changed. */
cf_code cf_info_build(cf_image *img, const char *dbname, const cf_cvdhdr *h, const cf_rsakey *key, cf_err *e);

/* The same manifest text without storing it (for tools that want the bytes). */
cf_code cf_info_format(const cf_image *img, const char *dbname, const cf_cvdhdr *h, const cf_rsakey *key,
                       cf_buf *out, cf_err *e);

#endif
