/* Shared between tarball.c and dbstream.c: ClamAV's rules for one tar header
 * block (formats.md §2.4-§2.6), so the in-memory and the streaming reader
 * refuse the same archives with the same messages. */
#ifndef CLAMFRESH_TAR_PRIV_H
#define CLAMFRESH_TAR_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/err.h"

#define CF_TAR_BLOCK 512
#define CF_TAR_NAMELEN 100 /* the header's name field */

/* Checks the non-zero header block hdr found at archive offset off: checksum,
 * regular file, name rules, size. Fills name (NUL-terminated) and *size. */
cf_code cf_tar_header_check(const uint8_t *hdr, size_t off, char name[CF_TAR_NAMELEN + 1], size_t *size,
                            cf_err *e);

/* A printable rendering of a header's name field, for messages. */
void cf_tar_header_name(const uint8_t *hdr, char out[CF_TAR_NAMELEN + 1]);

#endif
