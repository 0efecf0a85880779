/* Tar archives held in memory: the libtar + zlib bridge for database bodies
 * (formats.md §2). Pure functions on bytes; nothing here touches the file
 * system. Reading applies ClamAV's loader rules strictly (§2.4–§2.6); writing
 * produces headers every ClamAV reader, libtar and GNU tar accept. */
#ifndef CLAMFRESH_TARBALL_H
#define CLAMFRESH_TARBALL_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"

/* Parses the tar in p[0..n) and appends its members to img in archive order.
 * Regular files only, bare names (cf_name_ok), verified header checksums, no
 * duplicate names, at most CF_MAX_MEMBERS members and CF_MAX_DB_BYTES of data.
 * The archive ends at EOF or at the first all-zero block. On failure img is
 * left as it was. */
cf_code cf_tar_read(const uint8_t *p, size_t n, cf_image *img, cf_err *e);

/* Appends to out a tar holding every member of img. Names listed in
 * order_first (NULL-terminated; the array may be NULL; names absent from img
 * are skipped) come first in that order, then the rest in image order. No
 * end-of-archive blocks are written. */
cf_code cf_tar_write(const cf_image *img, const char *const *order_first, cf_buf *out, cf_err *e);

/* The 512-byte header block cf_tar_write writes for a member called name
 * holding size bytes, byte for byte (for writers that stream the data). */
cf_code cf_tar_header_make(const char *name, uint64_t size, uint8_t hdr[512], cf_err *e);

/* Zero bytes that follow size bytes of member data to fill the last block. */
size_t cf_tar_pad(uint64_t size);

#endif
